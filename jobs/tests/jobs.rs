//! The job queue on both backends: claiming, leases, retries with backoff, dead letters,
//! idempotency keys, unknown kinds, priorities, schedules and graceful shutdown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_db::audit::{AuditAction, AuditOutcome, NewAuditEvent};
use agora_db::both_backends;
use agora_db::jobs::{ClaimRequest, FailOutcome, JobFilter, JobState, NewJob};
use agora_db::testing::eventually;
use agora_jobs::{
    Backoff, Handler, JobContext, JobError, JobKind, JobsConfig, Queue, Registry, Workers, new_job,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Echo {
    n: u32,
}

impl JobKind for Echo {
    const KIND: &'static str = "test_echo";
    const QUEUE: Queue = Queue::Notify;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flaky {
    key: String,
}

impl JobKind for Flaky {
    const KIND: &'static str = "test_flaky";
    const QUEUE: Queue = Queue::Email;
    const MAX_ATTEMPTS: u32 = 3;
    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(1),
        max: Duration::from_millis(2),
    };

    fn idempotency_key(&self) -> Option<String> {
        Some(self.key.clone())
    }
}

/// Counts runs per payload and fails while `failing` is set.
#[derive(Clone, Default)]
struct Recorder {
    runs: Arc<Mutex<BTreeMap<String, u32>>>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    permanent: Arc<std::sync::atomic::AtomicBool>,
}

impl Recorder {
    fn note(&self, key: String) -> Result<(), JobError> {
        *self.runs.lock().expect("lock").entry(key).or_default() += 1;
        if self.permanent.load(Ordering::SeqCst) {
            return Err(JobError::permanent("refused for good"));
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(JobError::retry("the dependency is down"));
        }
        Ok(())
    }

    fn runs(&self) -> BTreeMap<String, u32> {
        self.runs.lock().expect("lock").clone()
    }
}

impl Handler<Echo> for Recorder {
    async fn run(&self, job: Echo, _ctx: JobContext) -> Result<(), JobError> {
        self.note(format!("echo:{}", job.n))
    }
}

impl Handler<Flaky> for Recorder {
    async fn run(&self, job: Flaky, _ctx: JobContext) -> Result<(), JobError> {
        self.note(format!("flaky:{}", job.key))
    }
}

fn registry(r: &Recorder) -> Registry {
    Registry::new()
        .register::<Echo, _>(r.clone())
        .register::<Flaky, _>(r.clone())
}

fn workers(db: &agora_db::Db, r: &Recorder) -> Workers {
    Workers::new(db.clone(), registry(r), JobsConfig::default())
}

fn audit() -> NewAuditEvent {
    NewAuditEvent::new(AuditAction::JobRetry, AuditOutcome::Success, "test")
}

fn echo(n: u32) -> NewJob {
    new_job(&Echo { n }, None).expect("encodes")
}

fn kinds(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| (*s).to_owned()).collect()
}

fn claim<'a>(queue: &'a str, kinds: &'a [String], lease: Duration) -> ClaimRequest<'a> {
    ClaimRequest {
        queue,
        kinds,
        limit: 10,
        worker: "test",
        lease,
    }
}

both_backends!(a_job_runs_once_and_succeeds, |t| async move {
    let r = Recorder::default();
    let ids = t.db.enqueue(&[echo(1), echo(2)]).await.expect("enqueue");
    assert!(ids.iter().all(Option::is_some));
    assert_eq!(workers(&t.db, &r).run_until_idle().await.expect("run"), 2);
    assert_eq!(
        r.runs(),
        BTreeMap::from([("echo:1".into(), 1), ("echo:2".into(), 1)])
    );
    let job = t.db.get_job(ids[0].expect("id")).await.expect("get");
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts, 1);
    assert!(job.finished_at.is_some() && job.lease_token.is_none());
    assert_eq!(
        workers(&t.db, &r).run_until_idle().await.expect("run"),
        0,
        "nothing runs twice"
    );
});

both_backends!(
    an_idempotency_key_folds_enqueues_while_a_job_waits,
    |t| async move {
        let job = new_job(&Flaky { key: "k".into() }, None).expect("encodes");
        let first =
            t.db.enqueue(std::slice::from_ref(&job))
                .await
                .expect("enqueue")[0];
        let second =
            t.db.enqueue(std::slice::from_ref(&job))
                .await
                .expect("enqueue")[0];
        assert!(first.is_some());
        assert_eq!(second, None, "folded into the waiting job");
        // Once it runs, the state it read may be stale: a new enqueue is a new job.
        let kinds = kinds(&[Flaky::KIND]);
        let claimed =
            t.db.claim_jobs(&claim("email", &kinds, Duration::from_secs(30)))
                .await
                .expect("claim");
        assert_eq!(claimed.len(), 1);
        let third =
            t.db.enqueue(std::slice::from_ref(&job))
                .await
                .expect("enqueue")[0];
        assert!(third.is_some());
        // The running one failing now cannot return to `ready` beside the new one: it is dropped.
        let token = claimed[0].lease_token.expect("token");
        let outcome =
            t.db.fail_job(claimed[0].id, token, "boom", Some(chrono::Utc::now()))
                .await
                .expect("fail");
        assert_eq!(outcome, FailOutcome::Superseded);
        let all =
            t.db.list_jobs(&JobFilter::default(), None, 10)
                .await
                .expect("list");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, third.expect("id"));
    }
);

both_backends!(
    an_unknown_kind_waits_for_a_worker_that_knows_it,
    |t| async move {
        let r = Recorder::default();
        let mut future = echo(1);
        future.kind = "added_in_a_newer_release".into();
        let id = t.db.enqueue(&[future, echo(2)]).await.expect("enqueue")[0].expect("id");
        assert_eq!(workers(&t.db, &r).run_until_idle().await.expect("run"), 1);
        let job = t.db.get_job(id).await.expect("get");
        assert_eq!(job.state, JobState::Ready, "neither failed nor dropped");
        assert_eq!(job.attempts, 0);
        assert_eq!(job.last_error, None);
    }
);

both_backends!(
    a_failing_job_backs_off_dies_and_can_be_retried,
    |t| async move {
        let r = Recorder::default();
        r.failing.store(true, Ordering::SeqCst);
        let id =
            t.db.enqueue(&[new_job(&Flaky { key: "f".into() }, None).expect("encodes")])
                .await
                .expect("enqueue")[0]
                .expect("id");
        let w = workers(&t.db, &r);
        let dead = eventually("the job to go dead", async || {
            w.run_until_idle().await.expect("run");
            let job = t.db.get_job(id).await.expect("get");
            (job.state == JobState::Dead).then_some(job)
        })
        .await;
        assert_eq!(dead.attempts, 3, "MAX_ATTEMPTS attempts, then dead");
        assert_eq!(dead.last_error.as_deref(), Some("the dependency is down"));
        assert_eq!(r.runs()["flaky:f"], 3);
        assert_eq!(
            w.run_until_idle().await.expect("run"),
            0,
            "dead jobs stay dead"
        );

        r.failing.store(false, Ordering::SeqCst);
        let revived = t.db.retry_dead_job(id, &audit()).await.expect("retry");
        assert_eq!((revived.state, revived.attempts), (JobState::Ready, 0));
        assert_eq!(w.run_until_idle().await.expect("run"), 1);
        assert_eq!(
            t.db.get_job(id).await.expect("get").state,
            JobState::Succeeded
        );
        assert!(
            matches!(
                t.db.retry_dead_job(id, &audit()).await,
                Err(agora_db::DbError::NotFound)
            ),
            "only dead jobs are retried"
        );
    }
);

both_backends!(
    permanent_failures_and_undecodable_payloads_die_at_once,
    |t| async move {
        let r = Recorder::default();
        r.permanent.store(true, Ordering::SeqCst);
        let mut garbage = echo(7);
        garbage.payload = r#"{"n":"not a number"}"#.into();
        let ids = t.db.enqueue(&[echo(1), garbage]).await.expect("enqueue");
        workers(&t.db, &r).run_until_idle().await.expect("run");
        let refused = t.db.get_job(ids[0].expect("id")).await.expect("get");
        assert_eq!((refused.state, refused.attempts), (JobState::Dead, 1));
        assert_eq!(refused.last_error.as_deref(), Some("refused for good"));
        let undecodable = t.db.get_job(ids[1].expect("id")).await.expect("get");
        assert_eq!(undecodable.state, JobState::Dead);
        assert!(
            undecodable
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("does not decode")),
            "{undecodable:?}"
        );
        assert!(!r.runs().contains_key("echo:7"), "the handler never saw it");
    }
);

both_backends!(
    an_expired_lease_is_claimed_again_and_the_old_holder_cannot_finish,
    |t| async move {
        let id = t.db.enqueue(&[echo(1)]).await.expect("enqueue")[0].expect("id");
        let k = kinds(&[Echo::KIND]);
        let first =
            t.db.claim_jobs(&claim("notify", &k, Duration::from_millis(1)))
                .await
                .expect("claim");
        assert_eq!(first.len(), 1);
        let old = first[0].lease_token.expect("token");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = eventually("the expired job to be claimed again", async || {
            let c =
                t.db.claim_jobs(&claim("notify", &k, Duration::from_secs(30)))
                    .await
                    .expect("claim");
            (!c.is_empty()).then_some(c)
        })
        .await;
        assert_eq!(second[0].id, id);
        assert_eq!(second[0].attempts, 2, "the lost attempt counts");
        let new = second[0].lease_token.expect("token");
        assert_ne!(old, new);
        assert!(
            !t.db.complete_job(id, old).await.expect("complete"),
            "a lost lease cannot complete"
        );
        assert!(
            !t.db
                .renew_job_lease(id, old, Duration::from_secs(30))
                .await
                .expect("renew")
        );
        assert_eq!(
            t.db.fail_job(id, old, "late", None).await.expect("fail"),
            FailOutcome::LeaseLost
        );
        assert!(
            t.db.renew_job_lease(id, new, Duration::from_secs(30))
                .await
                .expect("renew")
        );
        assert!(t.db.complete_job(id, new).await.expect("complete"));
    }
);

both_backends!(
    a_job_whose_worker_dies_on_its_last_attempt_is_buried,
    |t| async move {
        let mut job = echo(1);
        job.max_attempts = 1;
        let id = t.db.enqueue(&[job]).await.expect("enqueue")[0].expect("id");
        let k = kinds(&[Echo::KIND]);
        t.db.claim_jobs(&claim("notify", &k, Duration::from_millis(1)))
            .await
            .expect("claim");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            t.db.claim_jobs(&claim("notify", &k, Duration::from_secs(30)))
                .await
                .expect("claim")
                .is_empty(),
            "no attempts left"
        );
        assert_eq!(
            t.db.bury_lost_jobs("notify").await.expect("bury"),
            vec![Echo::KIND.to_owned()]
        );
        let dead = t.db.get_job(id).await.expect("get");
        assert_eq!(dead.state, JobState::Dead);
        assert!(dead.last_error.is_some_and(|e| e.contains("lease expired")));
    }
);

both_backends!(higher_priority_and_due_jobs_run_first, |t| async move {
    let mut low = echo(1);
    low.priority = -1;
    let mut high = echo(2);
    high.priority = 5;
    let mut later = echo(3);
    later.priority = 9;
    later.run_at = chrono::Utc::now() + chrono::Duration::hours(1);
    t.db.enqueue(&[low, echo(4), high, later])
        .await
        .expect("enqueue");
    let k = kinds(&[Echo::KIND]);
    let claimed =
        t.db.claim_jobs(&claim("notify", &k, Duration::from_secs(30)))
            .await
            .expect("claim");
    let order: Vec<String> = claimed.iter().map(|j| j.payload.clone()).collect();
    assert_eq!(
        order,
        [r#"{"n":2}"#, r#"{"n":4}"#, r#"{"n":1}"#],
        "the scheduled job is not due"
    );
    let stats = t.db.job_stats().await.expect("stats");
    let notify = stats.iter().find(|s| s.queue == "notify").expect("notify");
    assert_eq!((notify.running, notify.scheduled, notify.due), (3, 1, 0));
});

both_backends!(retention_deletes_old_succeeded_jobs_only, |t| async move {
    let r = Recorder::default();
    let ids = t.db.enqueue(&[echo(1), echo(2)]).await.expect("enqueue");
    workers(&t.db, &r).run_until_idle().await.expect("run");
    let mut dead = echo(3);
    dead.kind = "unknown".into();
    t.db.enqueue(&[dead]).await.expect("enqueue");
    let future = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        t.db.purge_succeeded_jobs(chrono::Utc::now() - chrono::Duration::hours(1), 100)
            .await
            .expect("purge"),
        0
    );
    assert_eq!(
        t.db.purge_succeeded_jobs(future, 1).await.expect("purge"),
        1,
        "batched"
    );
    assert_eq!(
        t.db.purge_succeeded_jobs(future, 100).await.expect("purge"),
        1
    );
    assert!(matches!(
        t.db.get_job(ids[0].expect("id")).await,
        Err(agora_db::DbError::NotFound)
    ));
    assert_eq!(
        t.db.list_jobs(&JobFilter::default(), None, 10)
            .await
            .expect("list")
            .len(),
        1,
        "the waiting job stays"
    );
});

/// Blocks until released; counts attempts.
#[derive(Clone, Default)]
struct Blocker {
    started: Arc<AtomicU32>,
    release: Arc<tokio::sync::Notify>,
}

impl Handler<Echo> for Blocker {
    async fn run(&self, _job: Echo, _ctx: JobContext) -> Result<(), JobError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.release.notified().await;
        Ok(())
    }
}

both_backends!(
    shutdown_hands_back_jobs_that_outlive_the_drain_window,
    |t| async move {
        let b = Blocker::default();
        let config = JobsConfig {
            drain_secs: 0,
            ..JobsConfig::default()
        };
        let running = Workers::new(
            t.db.clone(),
            Registry::new().register::<Echo, _>(b.clone()),
            config,
        )
        .queues(&[Queue::Notify])
        .start();
        let id = t.db.enqueue(&[echo(1)]).await.expect("enqueue")[0].expect("id");
        eventually("the job to start", async || {
            (b.started.load(Ordering::SeqCst) == 1).then_some(())
        })
        .await;
        running.shutdown().await;
        let job = t.db.get_job(id).await.expect("get");
        assert_eq!(
            (job.state, job.attempts),
            (JobState::Ready, 0),
            "handed back, attempt not counted"
        );
        assert!(job.lease_token.is_none());
    }
);

both_backends!(
    shutdown_lets_running_jobs_finish_within_the_drain_window,
    |t| async move {
        let b = Blocker::default();
        let running = Workers::new(
            t.db.clone(),
            Registry::new().register::<Echo, _>(b.clone()),
            JobsConfig::default(),
        )
        .queues(&[Queue::Notify])
        .start();
        let id = t.db.enqueue(&[echo(1)]).await.expect("enqueue")[0].expect("id");
        eventually("the job to start", async || {
            (b.started.load(Ordering::SeqCst) == 1).then_some(())
        })
        .await;
        let stopping = tokio::spawn(running.shutdown());
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.release.notify_one();
        stopping.await.expect("shutdown");
        assert_eq!(
            t.db.get_job(id).await.expect("get").state,
            JobState::Succeeded
        );
    }
);
