//! Job-system figures on PostgreSQL (a benchmark, not a test: it prints, it asserts nothing).
//!
//! ```sh
//! AGORA_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p agora-jobs --example jobs_bench -- [jobs=20000] [samples=500] [writes=2000]
//! ```
//!
//! 1. **Throughput**: `jobs` no-op jobs enqueued up front, then one worker process with
//!    concurrency 4 on their queue; jobs per second until the last one succeeded.
//! 2. **Enqueue → start latency** with LISTEN/NOTIFY: workers idle with a 60 s poll, a second
//!    pool (another process, as far as the workers can tell) enqueues one job at a time; the
//!    handler records start time minus the job's `created_at`. p50/p90/p99 of `samples`.
//! 3. **The cost of an enqueue inside a write**: the password-change transaction (hash update,
//!    sessions revoked, audit row) run `writes` times with no job and with one job (insert +
//!    NOTIFY), interleaved; p50 and p99 of each and the difference.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora_db::audit::{AuditAction, AuditOutcome, NewAuditEvent};
use agora_db::sessions::NewSession;
use agora_db::testing::TestDb;
use agora_db::users::NewUser;
use agora_db::{Db, DbConfig};
use agora_jobs::{
    Handler, JobContext, JobError, JobKind, JobsConfig, Queue, QueueConfig, Registry, Workers,
    new_job,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Noop;

impl JobKind for Noop {
    const KIND: &'static str = "bench_noop";
    const QUEUE: Queue = Queue::Fanout;
}

#[derive(Clone, Default)]
struct Latencies(Arc<Mutex<Vec<Duration>>>);

impl Handler<Noop> for Latencies {
    async fn run(&self, _job: Noop, ctx: JobContext) -> Result<(), JobError> {
        let waited = (chrono::Utc::now() - ctx.enqueued_at)
            .to_std()
            .unwrap_or_default();
        if let Ok(mut v) = self.0.lock() {
            v.push(waited);
        }
        Ok(())
    }
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn config(poll_ms: u64) -> JobsConfig {
    JobsConfig {
        poll_interval_ms: poll_ms,
        queues: [("fanout".to_owned(), QueueConfig { concurrency: 4 })].into(),
        ..Default::default()
    }
}

async fn succeeded(db: &Db) -> usize {
    db.job_stats()
        .await
        .ok()
        .and_then(|s| s.into_iter().find(|q| q.queue == "fanout"))
        .map_or(0, |q| q.succeeded as usize)
}

async fn throughput(t: &TestDb, jobs: usize) {
    let rows: Vec<_> = (0..jobs)
        .map(|_| new_job(&Noop, None).expect("encodes"))
        .collect();
    for chunk in rows.chunks(1000) {
        t.db.enqueue(chunk).await.expect("enqueue");
    }
    let registry = Registry::new().register(Latencies::default());
    let start = Instant::now();
    let running = Workers::new(t.db.clone(), registry, config(50)).start();
    while succeeded(&t.db).await < jobs {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    running.shutdown().await;
    println!(
        "throughput: {jobs} no-op jobs, 1 process x 4 workers: {:.0} jobs/s ({:.2} s)",
        jobs as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

async fn latency(t: &TestDb, samples: usize) {
    let latencies = Latencies::default();
    let registry = Registry::new().register(latencies.clone());
    let running = Workers::new(t.db.clone(), registry, config(60_000)).start();
    // Another pool: its commits wake the workers only through NOTIFY.
    let other = Db::connect(&DbConfig {
        url: t.config.url.clone(),
        ..Default::default()
    })
    .await
    .expect("second pool");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..samples {
        other
            .enqueue(&[new_job(&Noop, None).expect("encodes")])
            .await
            .expect("enqueue");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.0.lock().map(|v| v.len()).unwrap_or(0) < samples && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.shutdown().await;
    let mut v = latencies.0.lock().map(|v| v.clone()).unwrap_or_default();
    v.sort();
    println!(
        "enqueue->start via NOTIFY ({} samples, poll 60 s): p50 {}  p90 {}  p99 {}  max {}",
        v.len(),
        ms(pct(&v, 0.5)),
        ms(pct(&v, 0.9)),
        ms(pct(&v, 0.99)),
        ms(v.last().copied().unwrap_or_default())
    );
}

async fn write_cost(t: &TestDb, writes: usize) {
    let user =
        t.db.create_user(&NewUser {
            handle: "bench".into(),
            email: "bench@example.com".into(),
            display_name: "Bench".into(),
            password_hash: "$argon2id$x".into(),
        })
        .await
        .expect("user");
    let session =
        t.db.create_session(&NewSession {
            user_id: user.id,
            user_agent: None,
            ip: None,
            refresh_token_hash: "bench".into(),
        })
        .await
        .expect("session");
    let audit = NewAuditEvent {
        actor_user_id: Some(user.id),
        action: AuditAction::PasswordChange,
        target: None,
        outcome: AuditOutcome::Success,
        ip: None,
        user_agent: None,
        request_id: "bench".into(),
    };
    let job = [new_job(&Noop, None).expect("encodes")];
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for i in 0..writes * 2 {
        let jobs: &[agora_db::jobs::NewJob] = if i % 2 == 0 { &[] } else { &job };
        let start = Instant::now();
        t.db.change_password(user.id, "$argon2id$y", session.id, &audit, jobs)
            .await
            .expect("write");
        let took = start.elapsed();
        if i % 2 == 0 {
            without.push(took);
        } else {
            with.push(took);
        }
    }
    without.sort();
    with.sort();
    let (a, b) = (pct(&without, 0.5), pct(&with, 0.5));
    println!(
        "write transaction ({writes} each, interleaved): without job p50 {} p99 {}; with one job p50 {} p99 {}; p50 difference {:+.3} ms",
        ms(a),
        ms(pct(&without, 0.99)),
        ms(b),
        ms(pct(&with, 0.99)),
        (b.as_secs_f64() - a.as_secs_f64()) * 1000.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (jobs, samples, writes) = (arg(1, 20_000), arg(2, 500), arg(3, 2000));
    let Some(t) = TestDb::postgres().await else {
        eprintln!("set AGORA_TEST_DATABASE_URL to a PostgreSQL database");
        std::process::exit(2);
    };
    throughput(&t, jobs).await;
    latency(&t, samples).await;
    write_cost(&t, writes).await;
}
