//! `/v1/admin/jobs`: listing the job queue and retrying dead jobs — admin only, audited, and a
//! refused retry changes nothing.

use agora_client::types::{Job, JobState};
use agora_db::audit::AuditFilter;
use agora_db::jobs::{ClaimRequest, NewJob};
use futures::TryStreamExt;

use crate::e2e_both_backends;
use crate::support::{TestApp, error_body};

/// A kind this server has no handler for, so its workers leave these jobs alone.
const KIND: &str = "e2e_probe";

fn probe(key: Option<&str>) -> NewJob {
    NewJob {
        queue: "notify".into(),
        kind: KIND.into(),
        payload: "{}".into(),
        priority: 0,
        max_attempts: 1,
        run_at: chrono::Utc::now(),
        idempotency_key: key.map(str::to_owned),
        trace_parent: None,
    }
}

/// Enqueues a probe and lets it fail for good: a dead job with `error` as its last error.
async fn dead_job(db: &agora_db::Db, key: Option<&str>, error: &str) -> uuid::Uuid {
    let id = db.enqueue(&[probe(key)]).await.expect("enqueue")[0].expect("id");
    let kinds = vec![KIND.to_owned()];
    let claimed = db
        .claim_jobs(&ClaimRequest {
            queue: "notify",
            kinds: &kinds,
            limit: 1,
            worker: "e2e",
            lease: std::time::Duration::from_secs(30),
        })
        .await
        .expect("claim");
    assert_eq!(claimed[0].id, id, "make dead jobs before waiting ones");
    let token = claimed[0].lease_token.expect("token");
    db.fail_job(id, token, error, None).await.expect("fail");
    id
}

async fn admin(app: &TestApp) -> agora_client::Client {
    let boss = app.register("boss").await;
    app.grant_admin("boss", &boss.tokens.access_token).await
}

e2e_both_backends!(
    an_admin_lists_jobs_and_revives_a_dead_one,
    &[],
    |app| async move {
        let admin = admin(&app).await;
        let db = app.database().await;
        let dead = dead_job(&db, None, "smtp said 451").await;
        let waiting = db.enqueue(&[probe(None)]).await.expect("enqueue")[0].expect("id");

        let page = admin.list_jobs().send().await.expect("list").into_inner();
        let ids: Vec<_> = page
            .items
            .iter()
            .filter(|j| j.kind.as_str() == KIND)
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, [waiting, dead], "newest first");

        let dead_only: Vec<Job> = admin
            .list_jobs()
            .state(JobState::Dead)
            .limit(std::num::NonZeroU32::new(1).expect("1"))
            .stream()
            .try_collect()
            .await
            .expect("dead jobs");
        assert_eq!(dead_only.len(), 1);
        assert_eq!(dead_only[0].id, dead);
        assert_eq!(dead_only[0].last_error.as_deref(), Some("smtp said 451"));
        assert_eq!(
            (dead_only[0].attempts, dead_only[0].max_attempts.get()),
            (1, 1)
        );
        let by_kind = admin
            .list_jobs()
            .kind(KIND)
            .queue("email")
            .send()
            .await
            .expect("list")
            .into_inner();
        assert!(by_kind.items.is_empty(), "filters combine");

        let revived = admin
            .retry_job()
            .job_id(dead)
            .send()
            .await
            .expect("retry")
            .into_inner();
        assert_eq!((revived.state, revived.attempts), (JobState::Ready, 0));
        assert_eq!(
            revived.last_error.as_deref(),
            Some("smtp said 451"),
            "kept until the next failure"
        );

        let events = db
            .list_audit_events(
                &AuditFilter::default(),
                None,
                20,
                agora_db::ReadPolicy::Primary,
            )
            .await
            .expect("audit");
        let retry = events
            .iter()
            .find(|e| e.action == "job_retry")
            .expect("the retry is audited");
        assert_eq!(
            retry.target.as_deref(),
            Some(format!("job:{dead}").as_str())
        );
        assert!(
            events.iter().any(|e| e.action == "jobs_read"),
            "listing is audited"
        );
    }
);

e2e_both_backends!(
    a_refused_retry_names_why_and_changes_nothing,
    &[],
    |app| async move {
        let admin = admin(&app).await;
        let db = app.database().await;
        let dead = dead_job(&db, Some("same"), "boom").await;
        let waiting = db.enqueue(&[probe(None)]).await.expect("enqueue")[0].expect("id");
        db.enqueue(&[probe(Some("same"))]).await.expect("enqueue");
        let before = agora_db::testing::row_counts(&db).await.expect("counts");

        let (code, body) = error_body(admin.retry_job().job_id(waiting).send().await);
        assert_eq!((code, body.error_code.as_str()), (409, "job_not_dead"));
        let (code, body) = error_body(admin.retry_job().job_id(dead).send().await);
        assert_eq!(
            (code, body.error_code.as_str()),
            (409, "job_pending_duplicate")
        );
        let (code, body) = error_body(admin.retry_job().job_id(uuid::Uuid::now_v7()).send().await);
        assert_eq!((code, body.error_code.as_str()), (404, "not_found"));
        let (code, body) = error_body(admin.list_jobs().page_token("j1.not-a-uuid").send().await);
        assert_eq!((code, body.error_code.as_str()), (400, "invalid_request"));

        assert_eq!(
            agora_db::testing::row_counts(&db).await.expect("counts"),
            before,
            "no job, no audit event"
        );
        assert_eq!(
            db.get_job(dead).await.expect("get").state,
            agora_db::jobs::JobState::Dead
        );
    }
);
