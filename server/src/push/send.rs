//! The `send_push` job: one notification to one subscription.

use std::sync::Arc;

use agora_db::{Db, DbError, ReadPolicy};
use agora_jobs::{Handler, JobContext, JobError, JobKind, Queue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PushOutcome, Pusher};

/// Push this notification to this subscription (the job payload; field names are stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendPush {
    /// The notification.
    pub notification_id: Uuid,
    /// The browser subscription.
    pub subscription_id: Uuid,
}

impl JobKind for SendPush {
    const KIND: &'static str = "send_push";
    const QUEUE: Queue = Queue::Push;
    // A push is stale within hours; the service keeps it for `push.ttl_secs` anyway.
    const MAX_ATTEMPTS: u32 = 5;
}

/// What the service worker receives (decrypted), as JSON.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    id: Uuid,
    kind: &'a str,
    text: &'a str,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// Runs `send_push` jobs.
#[derive(Clone)]
pub struct SendPushHandler {
    pub(crate) db: Db,
    pub(crate) pusher: Arc<Pusher>,
}

impl Handler<SendPush> for SendPushHandler {
    async fn run(&self, job: SendPush, _ctx: JobContext) -> Result<(), JobError> {
        let subscription = match self.db.get_push_subscription(job.subscription_id).await {
            Ok(s) => s,
            // Unsubscribed since.
            Err(DbError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // Reading it as the subscription's current owner: a browser that changed hands does
        // not get the previous owner's notification.
        let notification = match self
            .db
            .get_notification(
                subscription.user_id,
                job.notification_id,
                ReadPolicy::Primary,
            )
            .await
        {
            Ok(n) => n,
            Err(DbError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let kind = notification.kind;
        let Some(view) =
            crate::notifications::views::render_one(&self.db, notification, ReadPolicy::Primary)
                .await
                .map_err(JobError::retry)?
        else {
            return Ok(());
        };
        let payload = serde_json::to_vec(&Payload {
            id: view.id,
            kind: kind.as_str(),
            text: &view.text,
            updated_at: view.updated_at,
        })
        .map_err(JobError::permanent)?;
        match self.pusher.send(&subscription, payload).await {
            PushOutcome::Accepted => {
                metrics::counter!("pushes_sent_total", "kind" => kind.as_str()).increment(1);
                self.db.push_succeeded(subscription.id).await?;
                Ok(())
            }
            PushOutcome::Gone => {
                metrics::counter!("push_subscriptions_expired_total").increment(1);
                match self
                    .db
                    .delete_push_subscription(subscription.id, None)
                    .await
                {
                    Ok(()) | Err(DbError::NotFound) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            PushOutcome::Retry(e) => {
                metrics::counter!("push_failures_total", "class" => "transient").increment(1);
                Err(JobError::Retry(e))
            }
            PushOutcome::Refused(e) => {
                metrics::counter!("push_failures_total", "class" => "permanent").increment(1);
                Err(JobError::Permanent(e))
            }
        }
    }
}
