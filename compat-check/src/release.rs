//! The release history of a contract: every released version kept as an immutable file named
//! by its version (`1.0.0.yaml`, `1.1.0.yaml`, …) beside a checksum manifest (`SHA256SUMS`).
//!
//! [`History::verify`] checks the history itself — each file unchanged since it was released,
//! named after its `info.version`, and compatible with its predecessor unless its major number
//! grew — and [`History::release`] appends the current contract once it is a proper successor of
//! the newest release. The build gate compares the working contract with [`History::newest`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use semver::Version;
use sha2::{Digest, Sha256};

use crate::load::Document;
use crate::report::Report;
use crate::{Options, compare_documents};

/// The manifest file in a release directory: `<sha256>  <file>` per line, like `sha256sum`.
pub const MANIFEST: &str = "SHA256SUMS";

/// Why a release history cannot be read or extended.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A document could not be loaded.
    #[error("{0}")]
    Load(String),
    /// The contract cannot be released as it is.
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path, e: std::io::Error) -> ReleaseError {
    ReleaseError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// One released contract.
#[derive(Debug, Clone)]
pub struct Release {
    /// The version its file is named after.
    pub version: Version,
    /// The file.
    pub path: PathBuf,
}

/// The released contracts of a directory, oldest first.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
    /// Releases sorted by version.
    pub releases: Vec<Release>,
    /// What the manifest says, file name → SHA-256 (hex).
    manifest: BTreeMap<String, String>,
    /// Files in the directory that are not `<semver>.yaml`, the manifest or a README.
    strays: Vec<String>,
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl History {
    /// Reads `dir` (a missing directory is an empty history).
    pub fn load(dir: &Path) -> Result<History, ReleaseError> {
        let mut releases = Vec::new();
        let mut strays = Vec::new();
        if dir.exists() {
            for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
                let path = entry.map_err(|e| io(dir, e))?.path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let version = name
                    .strip_suffix(".yaml")
                    .and_then(|v| Version::parse(v).ok());
                match version {
                    Some(version) => releases.push(Release { version, path }),
                    None if name == MANIFEST || name.eq_ignore_ascii_case("README.md") => {}
                    None => strays.push(name),
                }
            }
        }
        releases.sort_by(|a, b| a.version.cmp(&b.version));
        let manifest_path = dir.join(MANIFEST);
        let manifest = if manifest_path.exists() {
            let text =
                std::fs::read_to_string(&manifest_path).map_err(|e| io(&manifest_path, e))?;
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .filter_map(|l| {
                    let (sum, file) = l.split_once("  ")?;
                    Some((file.trim().to_owned(), sum.trim().to_owned()))
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok(History {
            dir: dir.to_owned(),
            releases,
            manifest,
            strays,
        })
    }

    /// The newest release: what the build gate compares the working contract with.
    pub fn newest(&self) -> Option<&Release> {
        self.releases.last()
    }

    /// Every problem of the history: altered or unlisted files, a file not named after its
    /// `info.version`, a release that breaks its predecessor without a major bump. Empty when the
    /// history is sound.
    pub fn verify(&self) -> Result<Vec<String>, ReleaseError> {
        let mut problems = Vec::new();
        for stray in &self.strays {
            problems.push(format!(
                "{stray}: not a release (`<major>.<minor>.<patch>.yaml`), the manifest or a README"
            ));
        }
        let mut docs = Vec::new();
        for r in &self.releases {
            let name = file_name(&r.path);
            let bytes = std::fs::read(&r.path).map_err(|e| io(&r.path, e))?;
            match self.manifest.get(&name) {
                None => problems.push(format!("{name}: not listed in {MANIFEST}")),
                Some(sum) if *sum != sha256_hex(&bytes) => problems.push(format!(
                    "{name}: changed after its release (SHA-256 differs from {MANIFEST}); released contracts are immutable"
                )),
                Some(_) => {}
            }
            let doc =
                Document::from_path(&r.path).map_err(|e| ReleaseError::Load(e.to_string()))?;
            let stated = info_version(&doc);
            if stated.as_ref() != Some(&r.version) {
                problems.push(format!(
                    "{name}: info.version is {} but the file is named {}",
                    stated.map_or("missing".to_owned(), |v| v.to_string()),
                    r.version
                ));
            }
            docs.push(doc);
        }
        for name in self.manifest.keys() {
            if !self.releases.iter().any(|r| file_name(&r.path) == *name) {
                problems.push(format!("{MANIFEST} lists {name}, which is missing"));
            }
        }
        for (i, pair) in self.releases.windows(2).enumerate() {
            let (old, new) = (&pair[0], &pair[1]);
            let report = compare_documents(&docs[i], &docs[i + 1], &Options::default());
            if report.has_breaking() && new.version.major == old.version.major {
                problems.push(format!(
                    "{} breaks {} without a major version bump:\n{}",
                    file_name(&new.path),
                    file_name(&old.path),
                    report.render(crate::Format::Text)
                ));
            }
        }
        Ok(problems)
    }

    /// Checks that `contract` may be released after the newest release, and returns what the
    /// release would be: the version, the comparison, and the smallest bump it needed.
    pub fn plan(&self, contract: &Path) -> Result<Plan, ReleaseError> {
        let doc = Document::from_path(contract).map_err(|e| ReleaseError::Load(e.to_string()))?;
        let version = info_version(&doc).ok_or_else(|| {
            ReleaseError::Refused(format!(
                "{}: info.version must be a semantic version (major.minor.patch)",
                contract.display()
            ))
        })?;
        let Some(newest) = self.newest() else {
            return Ok(Plan {
                version,
                previous: None,
                report: None,
                needed: Bump::Initial,
            });
        };
        let old =
            Document::from_path(&newest.path).map_err(|e| ReleaseError::Load(e.to_string()))?;
        let report = compare_documents(&old, &doc, &Options::default());
        let needed = if report.has_breaking() {
            Bump::Major
        } else if !report.findings.is_empty() {
            Bump::Minor
        } else {
            Bump::Patch
        };
        let prev = &newest.version;
        let next = needed.apply(prev);
        if version < next {
            let why = match needed {
                Bump::Major => "it breaks existing clients (findings below)",
                Bump::Minor => "it adds to or changes the API",
                _ => "each release needs a new version",
            };
            return Err(ReleaseError::Refused(format!(
                "{} is version {version}, but the release after {prev} must be at least {next}: {why}. \
                 Set info.version to {next} and run again.\n{}",
                contract.display(),
                report.render(crate::Format::Text)
            )));
        }
        Ok(Plan {
            version,
            previous: Some(prev.clone()),
            report: Some(report),
            needed,
        })
    }

    /// Releases `contract`: writes `<version>.yaml` (the contract byte for byte) and its line in
    /// the manifest. Refuses what [`History::plan`] refuses, an existing version, and a history
    /// that does not verify.
    pub fn release(&self, contract: &Path) -> Result<Release, ReleaseError> {
        let problems = self.verify()?;
        if !problems.is_empty() {
            return Err(ReleaseError::Refused(format!(
                "the release history is not sound; fix it first:\n  {}",
                problems.join("\n  ")
            )));
        }
        let plan = self.plan(contract)?;
        let path = self.dir.join(format!("{}.yaml", plan.version));
        if path.exists() {
            return Err(ReleaseError::Refused(format!(
                "{} already exists: released contracts are immutable",
                path.display()
            )));
        }
        let bytes = std::fs::read(contract).map_err(|e| io(contract, e))?;
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        std::fs::write(&path, &bytes).map_err(|e| io(&path, e))?;
        let mut manifest = self.manifest.clone();
        manifest.insert(file_name(&path), sha256_hex(&bytes));
        let text: String = manifest
            .iter()
            .map(|(file, sum)| format!("{sum}  {file}\n"))
            .collect();
        let manifest_path = self.dir.join(MANIFEST);
        std::fs::write(&manifest_path, text).map_err(|e| io(&manifest_path, e))?;
        Ok(Release {
            version: plan.version,
            path,
        })
    }
}

/// What releasing the contract would do.
#[derive(Debug)]
pub struct Plan {
    /// The contract's `info.version`.
    pub version: Version,
    /// The newest release, if any.
    pub previous: Option<Version>,
    /// The comparison with it.
    pub report: Option<Report>,
    /// The smallest bump the changes needed.
    pub needed: Bump,
}

/// How much a version must grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    /// The first release: any version.
    Initial,
    /// No change but prose: a new patch version.
    Patch,
    /// Compatible additions or changes.
    Minor,
    /// Breaking changes.
    Major,
}

impl Bump {
    /// The smallest version after `v` with this bump.
    pub fn apply(self, v: &Version) -> Version {
        match self {
            Bump::Initial => v.clone(),
            Bump::Patch => Version::new(v.major, v.minor, v.patch + 1),
            Bump::Minor => Version::new(v.major, v.minor + 1, 0),
            Bump::Major => Version::new(v.major + 1, 0, 0),
        }
    }
}

fn info_version(doc: &Document) -> Option<Version> {
    doc.value
        .pointer("/info/version")
        .and_then(serde_json::Value::as_str)
        .and_then(|v| Version::parse(v).ok())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "openapi: 3.0.3\ninfo: {title: T, version: 1.0.0}\npaths:\n  /a:\n    get:\n      operationId: get_a\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {type: string, maxLength: 10}\n";

    fn with_version(doc: &str, v: &str) -> String {
        doc.replace("version: 1.0.0", &format!("version: {v}"))
    }

    fn tmp() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "compat-release-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tmp");
        d
    }

    #[test]
    fn release_appends_verifies_and_refuses_a_version_that_is_too_small() {
        let root = tmp();
        let dir = root.join("released");
        let contract = root.join("openapi.yaml");
        std::fs::write(&contract, V1).expect("write");
        let first = History::load(&dir)
            .expect("empty")
            .release(&contract)
            .expect("initial");
        assert_eq!(first.version, Version::new(1, 0, 0));

        // A new operation with the same version: refused, naming the next minor version.
        let added = format!(
            "{V1}  /b:\n    get:\n      operationId: get_b\n      responses:\n        '204':\n          description: ok\n"
        );
        std::fs::write(&contract, &added).expect("write");
        let history = History::load(&dir).expect("load");
        let e = history.release(&contract).expect_err("same version");
        assert!(e.to_string().contains("at least 1.1.0"), "{e}");
        std::fs::write(&contract, with_version(&added, "1.1.0")).expect("write");
        history.release(&contract).expect("minor release");

        // A breaking change (maxLength of a response raised) needs 2.0.0.
        let broken = with_version(&added, "1.2.0").replace("maxLength: 10", "maxLength: 20");
        std::fs::write(&contract, &broken).expect("write");
        let history = History::load(&dir).expect("load");
        let e = history.release(&contract).expect_err("breaking");
        assert!(e.to_string().contains("at least 2.0.0"), "{e}");
        std::fs::write(&contract, broken.replace("1.2.0", "2.0.0")).expect("write");
        history.release(&contract).expect("major release");

        let history = History::load(&dir).expect("load");
        assert_eq!(
            history.newest().map(|r| r.version.to_string()).as_deref(),
            Some("2.0.0")
        );
        assert!(history.verify().expect("verify").is_empty());
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn verify_catches_edits_strays_misnamed_files_and_unannounced_breaks() {
        let root = tmp();
        let dir = root.join("released");
        let contract = root.join("openapi.yaml");
        std::fs::write(&contract, V1).expect("write");
        History::load(&dir)
            .expect("empty")
            .release(&contract)
            .expect("initial");
        // Edit the released file in place.
        std::fs::write(
            dir.join("1.0.0.yaml"),
            V1.replace("maxLength: 10", "maxLength: 9"),
        )
        .expect("write");
        // A file added by hand: unlisted, misnamed, and breaking its predecessor in a minor.
        std::fs::write(
            dir.join("1.1.0.yaml"),
            V1.replace("maxLength: 10", "maxLength: 99"),
        )
        .expect("write");
        std::fs::write(dir.join("notes.txt"), "x").expect("write");
        let problems = History::load(&dir).expect("load").verify().expect("verify");
        let all = problems.join("\n");
        assert!(
            all.contains("1.0.0.yaml: changed after its release"),
            "{all}"
        );
        assert!(all.contains("1.1.0.yaml: not listed"), "{all}");
        assert!(
            all.contains("info.version is 1.0.0 but the file is named 1.1.0"),
            "{all}"
        );
        assert!(
            all.contains("breaks 1.0.0.yaml without a major version bump"),
            "{all}"
        );
        assert!(all.contains("notes.txt: not a release"), "{all}");
        let e = History::load(&dir)
            .expect("load")
            .release(&contract)
            .expect_err("an unsound history refuses new releases");
        assert!(e.to_string().contains("not sound"), "{e}");
        let _ = std::fs::remove_dir_all(root);
    }
}
