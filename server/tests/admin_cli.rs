//! `agora admin grant|demote <handle>`: the binary, against a real (SQLite) database.

use std::process::Command;

use agora_db::audit::AuditFilter;
use agora_db::users::NewUser;
use agora_db::{Db, DbConfig, ReadPolicy};

fn agora(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
    // The test harness's own AGORA_TEST_* variables would be read as (unknown) settings.
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("AGORA_")) {
        command.env_remove(name);
    }
    let out = command
        .args(args)
        .env("AGORA_DATABASE__URL", database_url)
        .env("AGORA_LOG__LEVEL", "warn")
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_and_demote_change_the_role_and_are_audited() {
    let file = std::env::temp_dir().join(format!("agora-admin-cli-{}.db", std::process::id()));
    let url = format!("sqlite://{}", file.display());

    // A database whose schema is behind is refused: nothing is written through it.
    let (ok, _, stderr) = agora(&url, &["admin", "grant", "ann"]);
    assert!(!ok);
    assert!(stderr.contains("agora migrate"), "{stderr}");

    let (ok, _, stderr) = agora(&url, &["migrate", "up"]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = agora(&url, &["admin", "grant", "ghost"]);
    assert!(!ok);
    assert!(
        stderr.contains("no user has the handle \"ghost\""),
        "{stderr}"
    );

    let db = Db::connect(&DbConfig {
        url: url.clone(),
        ..Default::default()
    })
    .await
    .expect("database");
    let ann = db
        .create_user(&NewUser {
            handle: "Ann".into(),
            email: "ann@example.com".into(),
            display_name: "Ann".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        })
        .await
        .expect("ann");

    let (ok, stdout, stderr) = agora(&url, &["admin", "grant", "ann"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("now has the role admin"), "{stdout}");
    let role = |db: Db| async move {
        db.get_user(ann.id, ReadPolicy::Primary)
            .await
            .expect("ann")
            .role
    };
    assert_eq!(role(db.clone()).await, agora_db::users::Role::Admin);
    let (ok, _, stderr) = agora(&url, &["admin", "demote", "ANN"]);
    assert!(ok, "{stderr}");
    assert_eq!(role(db.clone()).await, agora_db::users::Role::User);

    let events = db
        .list_audit_events(
            &AuditFilter {
                action: Some("role_change".into()),
                ..Default::default()
            },
            None,
            10,
            ReadPolicy::Primary,
        )
        .await
        .expect("audit");
    let targets: Vec<_> = events.iter().filter_map(|e| e.target.clone()).collect();
    assert_eq!(
        targets,
        [
            format!("user:{} role=user", ann.id),
            format!("user:{} role=admin", ann.id),
        ]
    );
    assert!(events.iter().all(|e| {
        e.actor_user_id.is_none()
            && e.request_id.starts_with("cli:")
            && e.user_agent
                .as_deref()
                .is_some_and(|ua| ua.starts_with("agora admin"))
    }));
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

#[test]
fn help_lists_the_admin_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["admin", "--help"])
        .output()
        .expect("the binary runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("grant") && help.contains("demote"), "{help}");
}
