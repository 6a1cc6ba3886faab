//! The command line's exit codes: 0 compatible, 1 breaking, 2 could not compare.

use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_compat-check"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"))
        .output();
    match out {
        Ok(o) => (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (-1, String::new(), e.to_string()),
    }
}

#[test]
fn exit_codes() {
    let (code, out, _) = run(&[
        "noop-added-operation/old.yaml",
        "noop-added-operation/new.yaml",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(&["operation-removed/old.yaml", "operation-removed/new.yaml"]);
    assert_eq!(code, 1, "{out}");
    let (code, out, _) = run(&[
        "operation-id-changed/old.yaml",
        "operation-id-changed/new.yaml",
        "--level",
        "wire",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = run(&["missing.yaml", "operation-removed/new.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.yaml"), "{err}");
    let (code, _, _) = run(&["operation-removed/old.yaml"]);
    assert_eq!(code, 2);
}

#[test]
fn invalid_documents_exit_2_with_position() {
    let dir = std::env::temp_dir().join(format!("compat-check-cli-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let bad = dir.join("bad.json");
    let _ = std::fs::write(&bad, "{\n  \"openapi\": \"3.0.3\",\n  \"paths\": {,}\n}\n");
    let bad = bad.to_string_lossy().into_owned();
    let (code, _, err) = run(&[&bad, "operation-removed/new.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.json:3:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
