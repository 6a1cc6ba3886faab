//! Many workers, real processes: no job runs twice at once across workers (PostgreSQL, SKIP
//! LOCKED), a NOTIFY from another process wakes a worker long before its poll, and a worker
//! killed with SIGKILL mid-job leaves the job to be run again once its lease expires (both
//! backends; the killed worker is this test binary re-run as a child process).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_db::jobs::{JobFilter, JobState};
use agora_db::testing::TestDb;
use agora_db::testing::eventually;
use agora_db::{Db, DbConfig};
use agora_jobs::{
    Handler, JobContext, JobError, JobKind, JobsConfig, Queue, Registry, Workers, new_job,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Count {
    n: u32,
}

impl JobKind for Count {
    const KIND: &'static str = "test_count";
    const QUEUE: Queue = Queue::Fanout;
}

/// Records, per job, how many attempts ran and the most that ever ran at the same time.
#[derive(Clone, Default)]
struct Counter {
    runs: Arc<Mutex<BTreeMap<u32, u32>>>,
    in_flight: Arc<Mutex<BTreeMap<u32, u32>>>,
    overlaps: Arc<AtomicU32>,
    done: Arc<AtomicU32>,
}

impl Handler<Count> for Counter {
    async fn run(&self, job: Count, _ctx: JobContext) -> Result<(), JobError> {
        {
            let mut f = self.in_flight.lock().expect("lock");
            let n = f.entry(job.n).or_default();
            *n += 1;
            if *n > 1 {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
        }
        *self.runs.lock().expect("lock").entry(job.n).or_default() += 1;
        // Long enough for claims of other workers to race with this one.
        tokio::time::sleep(Duration::from_millis(2)).await;
        *self
            .in_flight
            .lock()
            .expect("lock")
            .entry(job.n)
            .or_default() -= 1;
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A second pool on the same database: what another process would have.
async fn another_process(config: &DbConfig) -> Db {
    Db::connect(config).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_workers_never_run_one_job_twice() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    const JOBS: u32 = 400;
    let counter = Counter::default();
    let config = JobsConfig {
        queues: [(
            "fanout".to_owned(),
            agora_jobs::QueueConfig { concurrency: 4 },
        )]
        .into(),
        ..JobsConfig::default()
    };
    let mut running = Vec::new();
    for i in 0..4 {
        let db = another_process(&t.config).await;
        running.push(
            Workers::new(
                db,
                Registry::new().register::<Count, _>(counter.clone()),
                config.clone(),
            )
            .queues(&[Queue::Fanout])
            .named(format!("worker-{i}"))
            .start(),
        );
    }
    let jobs: Vec<_> = (0..JOBS)
        .map(|n| new_job(&Count { n }, None).expect("encodes"))
        .collect();
    for chunk in jobs.chunks(50) {
        t.db.enqueue(chunk).await.expect("enqueue");
    }
    eventually("every job to finish", async || {
        (counter.done.load(Ordering::SeqCst) >= JOBS).then_some(())
    })
    .await;
    for r in running {
        r.shutdown().await;
    }
    let runs = counter.runs.lock().expect("lock").clone();
    assert_eq!(runs.len() as u32, JOBS, "every job ran");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "jobs run more than once: {twice:?}");
    assert_eq!(counter.overlaps.load(Ordering::SeqCst), 0);
    let workers: std::collections::BTreeSet<String> =
        t.db.list_jobs(
            &JobFilter {
                state: Some(JobState::Succeeded),
                ..Default::default()
            },
            None,
            1000,
        )
        .await
        .expect("list")
        .into_iter()
        .filter_map(|j| j.worker)
        .collect();
    assert!(workers.len() > 1, "the work was shared: {workers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_from_another_process_wakes_an_idle_worker() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let counter = Counter::default();
    // With an hour between polls, only the NOTIFY can start the job during this test.
    let config = JobsConfig {
        poll_interval_ms: 3_600_000,
        ..JobsConfig::default()
    };
    let worker_db = another_process(&t.config).await;
    let running = Workers::new(
        worker_db,
        Registry::new().register::<Count, _>(counter.clone()),
        config,
    )
    .queues(&[Queue::Fanout])
    .start();
    // The listener connects asynchronously; keep enqueuing until one wakes the worker.
    let mut n = 0;
    eventually("a NOTIFY to wake the worker", async || {
        t.db.enqueue(&[new_job(&Count { n }, None).expect("encodes")])
            .await
            .expect("enqueue");
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
        (counter.done.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    running.shutdown().await;
}

// ---- SIGKILL mid-job -------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hang {}

impl JobKind for Hang {
    const KIND: &'static str = "test_hang";
    const QUEUE: Queue = Queue::Push;
}

/// In the child: never finishes. In the parent: succeeds.
struct HangOrSucceed {
    hang: bool,
}

impl Handler<Hang> for HangOrSucceed {
    async fn run(&self, _job: Hang, _ctx: JobContext) -> Result<(), JobError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

const CHILD_ENV: &str = "AGORA_JOBS_TEST_CHILD_DB";

fn short_lease() -> JobsConfig {
    JobsConfig {
        lease_secs: 2,
        poll_interval_ms: 100,
        ..JobsConfig::default()
    }
}

/// Not a test on its own: the worker process that `a_killed_worker_s_job_runs_again_after_its_lease`
/// starts and kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by a_killed_worker_s_job_runs_again_after_its_lease"]
async fn child_worker_process() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = Db::connect(&DbConfig {
        url,
        ..DbConfig::default()
    })
    .await
    .expect("connect");
    let _running = Workers::new(
        db,
        Registry::new().register::<Hang, _>(HangOrSucceed { hang: true }),
        short_lease(),
    )
    .queues(&[Queue::Push])
    .named("doomed")
    .start();
    std::future::pending::<()>().await;
}

async fn killed_worker_job_runs_again(t: TestDb) {
    let id =
        t.db.enqueue(&[new_job(&Hang {}, None).expect("encodes")])
            .await
            .expect("enqueue")[0]
            .expect("id");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "child_worker_process",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, &t.config.url)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the worker process");
    eventually("the child to claim the job", async || {
        let job = t.db.get_job(id).await.expect("get");
        (job.state == JobState::Running && job.worker.as_deref() == Some("doomed")).then_some(())
    })
    .await;
    // SIGKILL: no drain, no release — only the lease can bring the job back.
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let w = Workers::new(
        t.db.clone(),
        Registry::new().register::<Hang, _>(HangOrSucceed { hang: false }),
        short_lease(),
    )
    .queues(&[Queue::Push])
    .named("survivor");
    let job = eventually("the job to run again after its lease", async || {
        w.run_until_idle().await.expect("run");
        let job = t.db.get_job(id).await.expect("get");
        (job.state == JobState::Succeeded).then_some(job)
    })
    .await;
    assert_eq!(job.attempts, 2, "the killed attempt counts");
    assert_eq!(job.worker.as_deref(), Some("survivor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_job_runs_again_after_its_lease_postgres() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    killed_worker_job_runs_again(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_job_runs_again_after_its_lease_sqlite() {
    killed_worker_job_runs_again(TestDb::sqlite().await).await;
}
