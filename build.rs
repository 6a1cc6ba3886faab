//! Build of the contract crate: first the compatibility gate (the current contract against the
//! released baseline), then the generator, into `OUT_DIR`. A breaking change without a major
//! version bump or a waiver stops here, before any service code compiles.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const CONTRACT: &str = "openapi.yaml";
const RELEASED: &str = "openapi/released";
const WAIVERS: &str = "openapi/waivers.yaml";

fn main() -> ExitCode {
    println!("cargo:rerun-if-changed={CONTRACT}");
    println!("cargo:rerun-if-changed={RELEASED}");
    println!("cargo:rerun-if-changed={WAIVERS}");
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Cargo shows a build script's stderr when it fails.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    gate()?;
    let source =
        std::fs::read_to_string(CONTRACT).map_err(|e| format!("cannot read {CONTRACT}: {e}"))?;
    let code = agora_codegen::generate(CONTRACT, &source, &agora_codegen::Options::default())
        .map_err(|e| e.to_string())?;
    let out_dir =
        std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set (build.rs runs under cargo)")?;
    let out = PathBuf::from(out_dir).join("agora_api.rs");
    std::fs::write(&out, code).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// The newest release in `openapi/released/` (`<major>.<minor>.<patch>.yaml`). The history
/// itself (checksums, each release compatible with its predecessor) is verified by
/// `compat-check history` in CI and by the contract tests.
fn baseline() -> Result<Option<PathBuf>, String> {
    let history =
        compat_check::release::History::load(Path::new(RELEASED)).map_err(|e| e.to_string())?;
    Ok(history.newest().map(|r| r.path.clone()))
}

fn gate() -> Result<(), String> {
    let Some(baseline) = baseline()? else {
        println!(
            "cargo:warning=no released contract in {RELEASED}/: the compatibility gate has nothing to compare"
        );
        return Ok(());
    };
    let old = compat_check::Document::from_path(&baseline).map_err(|e| e.to_string())?;
    let new = compat_check::Document::from_path(Path::new(CONTRACT)).map_err(|e| e.to_string())?;
    let waivers = if Path::new(WAIVERS).exists() {
        compat_check::load_waivers(Path::new(WAIVERS)).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    match compat_check::gate(&old, &new, &waivers) {
        compat_check::GateOutcome::Breaking(report) => Err(format!(
            "{CONTRACT} breaks compatibility with {} and info.version's major number did not change.\n\
             Make the change compatible, bump the major version, or waive it in {WAIVERS} \
             (see compat-check/README.md).\n\n{}",
            baseline.display(),
            report.render(compat_check::Format::Text)
        )),
        compat_check::GateOutcome::MajorBump { from, to, .. } => {
            println!(
                "cargo:warning=breaking contract changes accepted by the major version bump {from} -> {to}"
            );
            Ok(())
        }
        compat_check::GateOutcome::Compatible(_) => Ok(()),
    }
}
