//! Generates the contract crate's code from `openapi.yaml` into `OUT_DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    println!("cargo:rerun-if-changed=openapi.yaml");
    let source = match std::fs::read_to_string("openapi.yaml") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read openapi.yaml: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match agora_codegen::generate(
        "openapi.yaml",
        &source,
        &agora_codegen::Options::default(),
    ) {
        Ok(code) => code,
        Err(e) => {
            // Cargo shows build-script stderr on failure; the message names the JSON pointer.
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        eprintln!("error: OUT_DIR is not set (build.rs runs under cargo)");
        return ExitCode::FAILURE;
    };
    let out = PathBuf::from(out_dir).join("agora_api.rs");
    if let Err(e) = std::fs::write(&out, code) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
