//! `client-gen`: writes and freshness-checks the TypeScript client's generated artifacts.
//!
//! `client-gen ts` regenerates `ts-client/src/schema.d.ts` (openapi-typescript, run with node from
//! `ts-client/node_modules`, installed by `npm ci` when missing) and `ts-client/API.md` (the
//! operation → call reference) and `ts-client/src/error-codes.ts` (the contract's error codes). `client-gen ts --check` writes nothing and exits 1 with a diff
//! summary when a committed artifact differs from what the contract generates.

mod api_md;
mod diff;
mod error_codes;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use clap::{Parser, Subcommand};

/// Generates the artifacts that are derived from `openapi.yaml`.
#[derive(Debug, Parser)]
#[command(name = "client-gen", version)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Regenerate ts-client/src/schema.d.ts, ts-client/src/error-codes.ts and ts-client/API.md from openapi.yaml.
    Ts {
        /// Write nothing; fail (exit 1) with a diff summary when the committed files are stale.
        #[arg(long)]
        check: bool,
    },
}

/// One generated file: where it lives (relative to the repository root) and what it should hold.
struct Artifact {
    path: &'static str,
    content: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Ts { check } => ts(check),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("client-gen: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn ts(check: bool) -> Result<ExitCode, String> {
    let root = repo_root()?;
    let ts_dir = root.join("ts-client");
    let contract = root.join("openapi.yaml");
    let contract_text = read(&contract)?;

    ensure_node_modules(&ts_dir)?;
    let artifacts = [
        Artifact {
            path: "ts-client/src/schema.d.ts",
            content: openapi_typescript(&ts_dir, &contract)?,
        },
        Artifact {
            path: "ts-client/API.md",
            content: api_md::render(&contract_text)?,
        },
        Artifact {
            path: "ts-client/src/error-codes.ts",
            content: error_codes::render(&contract_text)?,
        },
    ];

    let mut stale = 0;
    for artifact in &artifacts {
        let path = root.join(artifact.path);
        let committed = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        if committed.as_deref() == Some(artifact.content.as_str()) {
            println!("up to date: {}", artifact.path);
            continue;
        }
        if check {
            stale += 1;
            match &committed {
                Some(old) => print!("{}", diff::summary(artifact.path, old, &artifact.content)),
                None => println!("stale: {} is missing", artifact.path),
            }
        } else {
            std::fs::write(&path, &artifact.content)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("wrote: {}", artifact.path);
        }
    }
    if stale > 0 {
        println!(
            "{stale} generated file(s) are stale; regenerate them with `cargo run -p client-gen -- ts` and commit the result"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The repository root: where this crate was built from, or else the nearest directory above the
/// working directory that holds `openapi.yaml` and `ts-client/` (e.g. a binary copied elsewhere).
fn repo_root() -> Result<PathBuf, String> {
    let is_root = |dir: &Path| dir.join("openapi.yaml").is_file() && dir.join("ts-client").is_dir();
    if let Some(parent) = Path::new(env!("CARGO_MANIFEST_DIR")).parent()
        && is_root(parent)
    {
        return Ok(parent.to_path_buf());
    }
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    cwd.ancestors()
        .find(|dir| is_root(dir))
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            format!(
                "no directory holding openapi.yaml and ts-client/ at or above {}",
                cwd.display()
            )
        })
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The pinned openapi-typescript lives in ts-client's node_modules; install it (exactly as locked)
/// when absent, so a fresh clone needs no manual step. Without lifecycle scripts: the package's
/// `prepare` compiles against src/schema.d.ts, which may be the very file being regenerated.
fn ensure_node_modules(ts_dir: &Path) -> Result<(), String> {
    if openapi_typescript_cli(ts_dir).is_file() {
        return Ok(());
    }
    eprintln!("client-gen: ts-client/node_modules is missing; running `npm ci`");
    // stdout goes to our stderr so that `--check` output stays the diff summary alone.
    let status = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(ts_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("cannot run npm (is Node.js installed?): {e}"))?;
    if !status.success() {
        return Err(format!(
            "`npm ci` in {} failed ({status})",
            ts_dir.display()
        ));
    }
    if !openapi_typescript_cli(ts_dir).is_file() {
        return Err("`npm ci` did not install openapi-typescript".to_owned());
    }
    Ok(())
}

fn openapi_typescript_cli(ts_dir: &Path) -> PathBuf {
    ts_dir.join("node_modules/openapi-typescript/bin/cli.js")
}

/// Runs openapi-typescript on the contract and returns the `.d.ts` it prints. Run with node
/// directly (not npx) so a missing install fails instead of downloading an unpinned version.
fn openapi_typescript(ts_dir: &Path, contract: &Path) -> Result<String, String> {
    let output = Command::new("node")
        .arg(openapi_typescript_cli(ts_dir))
        .arg(contract)
        .current_dir(ts_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run node (is Node.js installed?): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "openapi-typescript failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|e| format!("openapi-typescript printed invalid UTF-8: {e}"))
}
