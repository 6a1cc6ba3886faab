//! Conformance corpus: every directory under tests/corpus holds old.yaml, new.yaml and the
//! expected rule ids (warnings and breaking only; info findings are free to come and go).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use compat_check::{Document, Level, Options, Severity, compare_documents};

fn expected_ids(dir: &Path) -> BTreeSet<String> {
    fs::read_to_string(dir.join("expected.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    assert!(dirs.len() > 50, "corpus looks empty: {}", dirs.len());
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let load = |f: &str| {
            let p = dir.join(f);
            Document::from_path(&p).map_err(|e| format!("{name}: {e}"))
        };
        let (old, new) = match (load("old.yaml"), load("new.yaml")) {
            (Ok(o), Ok(n)) => (o, n),
            (Err(e), _) | (_, Err(e)) => {
                failures.push(e);
                continue;
            }
        };
        let level = match fs::read_to_string(dir.join("level"))
            .unwrap_or_default()
            .trim()
        {
            "wire" => Level::Wire,
            _ => Level::Client,
        };
        let opts = Options {
            level,
            today: Some("2026-01-01".to_owned()),
            ..Options::default()
        };
        let report = compare_documents(&old, &new, &opts);
        let got: BTreeSet<String> = report
            .findings
            .iter()
            .filter(|f| f.severity > Severity::Info)
            .map(|f| f.rule.to_owned())
            .collect();
        let want = expected_ids(dir);
        if got != want {
            failures.push(format!(
                "{name}: expected {want:?}, got {got:?}\n{}",
                report.render(compat_check::Format::Text)
            ));
        }
        // Reflexivity on every corpus document: nothing at all, not even info.
        for doc in [&old, &new] {
            let same = compare_documents(doc, doc, &opts);
            if !same.findings.is_empty() {
                failures.push(format!("{name}: self-comparison found {:?}", same.findings));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn readme_lists_every_rule_and_corpus_covers_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let mut covered = BTreeSet::new();
    if let Ok(rd) = fs::read_dir(root.join("tests/corpus")) {
        for e in rd.filter_map(Result::ok) {
            covered.extend(expected_ids(&e.path()));
            covered.insert(e.file_name().to_string_lossy().into_owned());
        }
    }
    for rule in compat_check::RULES {
        assert!(
            readme.contains(&format!("`{}`", rule.id)),
            "README misses {}",
            rule.id
        );
        if rule.severity > Severity::Info {
            assert!(covered.contains(rule.id), "no corpus case for {}", rule.id);
        }
    }
}
