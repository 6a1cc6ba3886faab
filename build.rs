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

/// The newest `openapi/released/vN.yaml`.
fn baseline() -> Result<Option<PathBuf>, String> {
    let dir = match std::fs::read_dir(RELEASED) {
        Ok(dir) => dir,
        Err(_) => return Ok(None),
    };
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in dir {
        let path = entry.map_err(|e| e.to_string())?.path();
        let major = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.strip_prefix('v'))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(major) = major.filter(|_| path.extension().is_some_and(|e| e == "yaml"))
            && best.as_ref().is_none_or(|(m, _)| major > *m)
        {
            best = Some((major, path));
        }
    }
    Ok(best.map(|(_, p)| p))
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
