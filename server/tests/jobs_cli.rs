//! `agora jobs …` and `agora worker`: the binary, against a real (SQLite) database.

use std::process::{Command, Stdio};
use std::time::Duration;

use agora_db::audit::AuditFilter;
use agora_db::jobs::{ClaimRequest, JobFilter, JobState, NewJob};
use agora_db::testing::eventually;
use agora_db::{Db, DbConfig, ReadPolicy};

fn command(database_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
    // The test harness's own AGORA_TEST_* variables would be read as (unknown) settings.
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("AGORA_")) {
        command.env_remove(name);
    }
    command
        .args(args)
        .env("AGORA_DATABASE__URL", database_url)
        .env("AGORA_LOG__LEVEL", "warn");
    command
}

fn agora(database_url: &str, args: &[&str]) -> (i32, String, String) {
    let out = command(database_url, args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn probe(key: Option<&str>) -> NewJob {
    NewJob {
        queue: "email".into(),
        kind: "cli_probe".into(),
        payload: r#"{"to":"ann"}"#.into(),
        priority: 0,
        max_attempts: 1,
        run_at: chrono::Utc::now(),
        idempotency_key: key.map(str::to_owned),
        trace_parent: None,
    }
}

async fn dead(db: &Db, key: Option<&str>) -> uuid::Uuid {
    // Due before any other probe, so the claim below takes this one.
    let mut job = probe(key);
    job.run_at -= chrono::Duration::days(1);
    let id = db.enqueue(&[job]).await.expect("enqueue")[0].expect("id");
    let kinds = vec!["cli_probe".to_owned()];
    let claimed = db
        .claim_jobs(&ClaimRequest {
            queue: "email",
            kinds: &kinds,
            limit: 1,
            worker: "test",
            lease: Duration::from_secs(30),
        })
        .await
        .expect("claim");
    assert_eq!(claimed[0].id, id);
    let token = claimed[0].lease_token.expect("token");
    db.fail_job(id, token, "550 mailbox unavailable", None)
        .await
        .expect("fail");
    id
}

async fn migrated(name: &str) -> (String, Db) {
    let file = std::env::temp_dir().join(format!("agora-{name}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let url = format!("sqlite://{}", file.display());
    let (code, _, stderr) = agora(&url, &["migrate", "up"]);
    assert_eq!(code, 0, "{stderr}");
    let db = Db::connect(&DbConfig {
        url: url.clone(),
        ..Default::default()
    })
    .await
    .expect("database");
    (url, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_inspect_retry_and_discard_jobs() {
    let (url, db) = migrated("jobs-cli").await;
    let id = dead(&db, None).await;
    let id_text = id.to_string();

    let (code, stdout, stderr) = agora(&url, &["jobs", "stats"]);
    assert_eq!(code, 0, "{stderr}");
    let email = stdout
        .lines()
        .find(|l| l.starts_with("email "))
        .expect("an email line");
    assert_eq!(
        email.split_whitespace().collect::<Vec<_>>()[..6],
        ["email", "0", "0", "0", "0", "1"]
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("maintenance ")),
        "every queue is listed:\n{stdout}"
    );

    let (code, stdout, _) = agora(&url, &["jobs", "list", "--state", "dead"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&id_text) && stdout.contains("550 mailbox unavailable"),
        "{stdout}"
    );
    let (code, stdout, _) = agora(&url, &["jobs", "list", "--state", "ready"]);
    assert_eq!(code, 0);
    assert!(!stdout.contains(&id_text), "{stdout}");
    let (code, _, stderr) = agora(&url, &["jobs", "list", "--state", "limbo"]);
    assert_eq!(code, 2, "a clap usage error");
    assert!(
        stderr.contains("known: ready, running, succeeded, dead"),
        "{stderr}"
    );

    let (code, stdout, _) = agora(&url, &["jobs", "show", &id_text]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("\"to\": \"ann\""),
        "the payload, pretty:\n{stdout}"
    );
    assert!(stdout.contains("state:           dead"), "{stdout}");

    let (code, stdout, stderr) = agora(&url, &["jobs", "retry", &id_text]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("is due again"), "{stdout}");
    let job = db.get_job(id).await.expect("job");
    assert_eq!((job.state, job.attempts), (JobState::Ready, 0));
    let (code, _, stderr) = agora(&url, &["jobs", "retry", &id_text]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is ready, not dead"), "{stderr}");

    // --all-dead retries every dead job, and says which ones a waiting duplicate covers.
    let a = dead(&db, None).await;
    let b = dead(&db, Some("dup")).await;
    db.enqueue(&[probe(Some("dup"))]).await.expect("enqueue");
    let (code, stdout, stderr) = agora(&url, &["jobs", "retry", "--all-dead"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("retried 1 dead job(s)"), "{stdout}");
    assert!(stdout.contains(&format!("skipped {b}")), "{stdout}");
    assert_eq!(db.get_job(a).await.expect("a").state, JobState::Ready);

    let (code, stdout, stderr) = agora(&url, &["jobs", "discard", &b.to_string()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("discarded"), "{stdout}");
    assert!(matches!(
        db.get_job(b).await,
        Err(agora_db::DbError::NotFound)
    ));
    let (code, _, stderr) = agora(&url, &["jobs", "discard", &b.to_string()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no job"), "{stderr}");
    let (code, _, stderr) = agora(&url, &["jobs", "retry"]);
    assert_eq!(code, 2, "an id or --all-dead is required: {stderr}");

    let events = db
        .list_audit_events(&AuditFilter::default(), None, 50, ReadPolicy::Primary)
        .await
        .expect("audit");
    let retries = events.iter().filter(|e| e.action == "job_retry").count();
    let discards: Vec<_> = events
        .iter()
        .filter(|e| e.action == "job_discard")
        .collect();
    assert_eq!(retries, 2, "one per retried job");
    assert_eq!(discards.len(), 1);
    assert_eq!(
        discards[0].target.as_deref(),
        Some(format!("job:{b}").as_str())
    );
    assert!(discards[0].request_id.starts_with("cli:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_runs_its_queues_and_stops_on_sigterm() {
    let (url, db) = migrated("worker-cli").await;
    let (code, _, stderr) = agora(&url, &["worker", "--queues", "maintenance,nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no queue \"nope\""), "{stderr}");

    let child = command(&url, &["worker", "--queues", "maintenance"])
        .env("AGORA_JOBS__DRAIN_SECS", "1")
        .env("AGORA_JOBS__QUEUES__MAINTENANCE__CONCURRENCY", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("worker");
    let pid = child.id();
    // The maintenance queue's periodic purge is enqueued and run by this process.
    let job = eventually("the worker to run the purge job", async || {
        let jobs = db
            .list_jobs(
                &JobFilter {
                    kind: Some("purge_succeeded_jobs".into()),
                    state: Some(JobState::Succeeded),
                    ..Default::default()
                },
                None,
                1,
            )
            .await
            .expect("jobs");
        jobs.into_iter().next()
    })
    .await;
    assert!(job.worker.is_some_and(|w| w.ends_with(&format!(":{pid}"))));
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("exit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_notice_is_queued_from_the_command_line() {
    let (url, db) = migrated("notify-cli").await;
    db.create_user(&agora_db::users::NewUser {
        handle: "Ann".into(),
        email: "ann@example.com".into(),
        display_name: "Ann".into(),
        password_hash: "$argon2id$x".into(),
    })
    .await
    .expect("user");
    let (code, stdout, stderr) = agora(
        &url,
        &["admin", "notify", "ann", "--message", "Hello from ops"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("notice queued for ann"), "{stdout}");
    let filter = JobFilter {
        kind: Some("deliver_notification".into()),
        ..Default::default()
    };
    let jobs = db.list_jobs(&filter, None, 10).await.expect("jobs");
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0].payload.contains("Hello from ops"),
        "{}",
        jobs[0].payload
    );
    let (code, _, stderr) = agora(&url, &["admin", "notify", "nobody", "--message", "x"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no user has the handle"), "{stderr}");
    assert_eq!(
        db.list_jobs(&filter, None, 10).await.expect("jobs").len(),
        1
    );
}
