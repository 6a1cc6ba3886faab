//! Embeds `migrations/{postgres,sqlite}/NNNN_name/up.sql` into the crate as a sorted table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = PathBuf::from("../migrations");
    println!("cargo:rerun-if-changed=../migrations");
    match generate(&root) {
        Ok(code) => {
            let Some(out) = std::env::var_os("OUT_DIR") else {
                eprintln!("error: OUT_DIR is not set");
                return ExitCode::FAILURE;
            };
            if let Err(e) = std::fs::write(PathBuf::from(out).join("migrations.rs"), code) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: migrations: {e}");
            ExitCode::FAILURE
        }
    }
}

/// (version → (name, path)) for one backend's folder.
fn scan(dir: &Path) -> Result<BTreeMap<u32, (String, PathBuf)>, String> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        println!("cargo:rerun-if-changed={}", entry.path().display());
        if !entry.path().is_dir() {
            continue;
        }
        let folder = entry.file_name().to_string_lossy().into_owned();
        let (version, name) = folder
            .split_once('_')
            .and_then(|(v, n)| Some((v.parse::<u32>().ok()?, n.to_owned())))
            .ok_or_else(|| format!("{}: folder {folder:?} is not NNNN_name", dir.display()))?;
        let up = entry.path().join("up.sql");
        if !up.is_file() {
            return Err(format!("{}: missing up.sql", entry.path().display()));
        }
        println!("cargo:rerun-if-changed={}", up.display());
        if out.insert(version, (name, up)).is_some() {
            return Err(format!(
                "{}: version {version} appears twice",
                dir.display()
            ));
        }
    }
    Ok(out)
}

fn generate(root: &Path) -> Result<String, String> {
    let pg = scan(&root.join("postgres"))?;
    let sqlite = scan(&root.join("sqlite"))?;
    let pg_keys: Vec<_> = pg.iter().map(|(v, (n, _))| (v, n)).collect();
    let sqlite_keys: Vec<_> = sqlite.iter().map(|(v, (n, _))| (v, n)).collect();
    if pg_keys != sqlite_keys {
        return Err(format!(
            "postgres/ and sqlite/ must hold the same versions and names: {pg_keys:?} vs {sqlite_keys:?}"
        ));
    }
    let mut code = String::from(
        "/// Every migration this binary knows, in version order.\npub static EMBEDDED: &[Embedded] = &[\n",
    );
    for (version, (name, pg_path)) in &pg {
        let sqlite_path = &sqlite[version].1;
        let abs = |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
        writeln!(
            code,
            "    Embedded {{ version: {version}, name: {name:?}, postgres: include_str!({:?}), sqlite: include_str!({:?}) }},",
            abs(pg_path)?,
            abs(sqlite_path)?
        )
        .map_err(|e| e.to_string())?;
    }
    code.push_str("];\n");
    Ok(code)
}
