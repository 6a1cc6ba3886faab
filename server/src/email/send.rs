//! The `send_email` job: one notification, emailed once, to the user's current address.

use std::sync::Arc;

use agora_db::deliveries::EmailClaim;
use agora_db::{Db, DbError, ReadPolicy};
use agora_jobs::{Handler, JobContext, JobError, JobKind, Queue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::templates::{EmailContext, kind_label};
use super::{Mailer, Outgoing, SendError};

/// Email this notification (the job payload; field names are stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendEmail {
    /// The notification.
    pub notification_id: Uuid,
    /// Its recipient.
    pub user_id: Uuid,
}

impl JobKind for SendEmail {
    const KIND: &'static str = "send_email";
    const QUEUE: Queue = Queue::Email;
}

/// Runs `send_email` jobs.
#[derive(Clone)]
pub struct SendEmailHandler {
    pub(crate) db: Db,
    pub(crate) mailer: Arc<Mailer>,
}

fn skipped(reason: &'static str) {
    metrics::counter!("emails_skipped_total", "reason" => reason).increment(1);
}

impl Handler<SendEmail> for SendEmailHandler {
    async fn run(&self, job: SendEmail, _ctx: JobContext) -> Result<(), JobError> {
        let notification = match self
            .db
            .get_notification(job.user_id, job.notification_id, ReadPolicy::Primary)
            .await
        {
            Ok(n) => n,
            // Deleted since (with its account): nothing to tell.
            Err(DbError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let user = match self.db.get_user(job.user_id, ReadPolicy::Primary).await {
            Ok(u) => u,
            Err(DbError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let claim = self
            .db
            .claim_email_delivery(notification.id, user.id, &user.email, self.mailer.daily_cap)
            .await?;
        let delivery = match claim {
            EmailClaim::Send(id) => id,
            EmailClaim::AlreadySent => return Ok(()),
            EmailClaim::Suppressed => {
                skipped("suppressed");
                return Ok(());
            }
            EmailClaim::Capped => {
                skipped("daily_cap");
                return Ok(());
            }
        };
        let kind = notification.kind;
        let Some(view) =
            crate::notifications::views::render_one(&self.db, notification, ReadPolicy::Primary)
                .await
                .map_err(JobError::retry)?
        else {
            return Ok(());
        };
        let unsubscribe_url = self.mailer.unsubscribe_url(user.id, kind);
        let details = view.details.clone();
        let ctx = EmailContext {
            user_name: &user.display_name,
            text: &view.text,
            details: &details,
            when: view.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            unsubscribe_url: &unsubscribe_url,
            kind_label: kind_label(kind),
        };
        let (text, html) = self
            .mailer
            .templates
            .render(kind, &ctx)
            .map_err(JobError::permanent)?;
        let to = user
            .email
            .parse()
            .map_err(|e| JobError::permanent(format!("the stored address does not parse: {e}")))?;
        let mail = Outgoing {
            to,
            subject: view.text.clone(),
            text,
            html,
            unsubscribe_url,
        };
        let kind_label = kind.as_str();
        match self.mailer.send(&mail).await {
            Ok(()) => {
                self.db
                    .finish_email_delivery(delivery, Ok(()), false)
                    .await?;
                metrics::counter!("emails_sent_total", "kind" => kind_label).increment(1);
                Ok(())
            }
            Err(SendError::Permanent(e)) => {
                // The address does not take mail: stop emailing it (the job is done).
                tracing::warn!(email.error = %e, "email bounced; the address is suppressed");
                self.db
                    .finish_email_delivery(delivery, Err(&e), true)
                    .await?;
                metrics::counter!("email_send_failures_total", "class" => "permanent").increment(1);
                Ok(())
            }
            Err(SendError::Transient(e)) => {
                self.db
                    .finish_email_delivery(delivery, Err(&e), false)
                    .await?;
                metrics::counter!("email_send_failures_total", "class" => "transient").increment(1);
                Err(JobError::Retry(e))
            }
            Err(SendError::Compose(e)) => {
                self.db
                    .finish_email_delivery(delivery, Err(&e), false)
                    .await?;
                Err(JobError::Permanent(e))
            }
        }
    }
}
