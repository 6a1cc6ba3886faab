//! The `deliver_notification` job: a domain event that concerns one user is recorded (created,
//! or coalesced into an open group), then shown live and queued for email and push according to
//! the user's settings for its kind. Domains never do this on the request path: they enqueue
//! the job in the transaction of the write that causes it ([`NotificationEvent::job`]).

use std::collections::BTreeMap;
use std::time::Duration;

use agora_db::notifications::{
    NewNotification, Notification, NotificationKind, Recorded, SubjectType,
};
use agora_db::{Db, ReadPolicy};
use agora_jobs::{Handler, JobContext, JobError, JobKind, Queue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{channels, events, unread};

/// A notification to deliver (the job payload). Field names are stored: never rename them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEvent {
    /// The event's id; delivering it twice records it once.
    pub event_id: Uuid,
    /// The recipient.
    pub user_id: Uuid,
    /// `NotificationKind` text.
    pub kind: String,
    /// Who did it.
    #[serde(default)]
    pub actor_id: Option<Uuid>,
    /// `SubjectType` text and id.
    #[serde(default)]
    pub subject: Option<(String, Uuid)>,
    /// Kind-specific facts.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

impl JobKind for NotificationEvent {
    const KIND: &'static str = "deliver_notification";
    const QUEUE: Queue = Queue::Notify;
}

impl NotificationEvent {
    /// A new event of `kind` for `user_id`.
    pub fn new(user_id: Uuid, kind: NotificationKind) -> Self {
        NotificationEvent {
            event_id: Uuid::now_v7(),
            user_id,
            kind: kind.as_str().to_owned(),
            actor_id: None,
            subject: None,
            details: BTreeMap::new(),
        }
    }

    /// With the person who caused it.
    pub fn actor(mut self, actor: Uuid) -> Self {
        self.actor_id = Some(actor);
        self
    }

    /// About `id` of type `t`.
    pub fn subject(mut self, t: SubjectType, id: Uuid) -> Self {
        self.subject = Some((t.as_str().to_owned(), id));
        self
    }

    /// With one more fact.
    pub fn detail(mut self, key: &str, value: impl Into<String>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The job row, for a cause outside any request (the command line).
    pub fn job_without_trace(&self) -> Result<agora_db::jobs::NewJob, agora_jobs::EncodeError> {
        agora_jobs::new_job(self, None)
    }

    /// The job row, carrying the request's trace.
    pub fn job(
        &self,
        trace: &agora_api::rt::TraceContext,
    ) -> Result<agora_db::jobs::NewJob, agora_jobs::EncodeError> {
        agora_jobs::new_job(
            self,
            agora_jobs::trace::child_traceparent(&trace.trace_id, trace.sampled),
        )
    }

    /// [`NotificationEvent::job`] for a repository call's job list (an encoding failure is
    /// logged and leaves the notification out, never the write).
    pub fn jobs(&self, trace: &agora_api::rt::TraceContext) -> Vec<agora_db::jobs::NewJob> {
        crate::jobs::traced(self, trace).into_iter().collect()
    }
}

/// Runs `deliver_notification` jobs.
#[derive(Clone)]
pub struct Deliver {
    pub(crate) db: Db,
    pub(crate) kv: agora_kv::Kv,
    pub(crate) coalesce_window: Duration,
    /// Whether email is configured (`email.smtp_url`).
    pub(crate) email: bool,
    /// Whether push is configured (`push.vapid_private_key`).
    pub(crate) push: bool,
}

/// The coalescing key of an event: likes of one post join one notification.
fn group_of(kind: NotificationKind, subject: Option<(SubjectType, Uuid)>) -> Option<String> {
    match (kind, subject) {
        (NotificationKind::PostLiked, Some((SubjectType::Post, post))) => {
            Some(format!("post_liked:{post}"))
        }
        _ => None,
    }
}

impl Handler<NotificationEvent> for Deliver {
    async fn run(&self, event: NotificationEvent, ctx: JobContext) -> Result<(), JobError> {
        let kind = NotificationKind::parse(&event.kind).ok_or_else(|| {
            JobError::permanent(format!("unknown notification kind {:?}", event.kind))
        })?;
        let subject = match &event.subject {
            Some((t, id)) => Some((
                SubjectType::parse(t)
                    .ok_or_else(|| JobError::permanent(format!("unknown subject type {t:?}")))?,
                *id,
            )),
            None => None,
        };
        let stored = self
            .db
            .notification_settings(event.user_id, ReadPolicy::Primary)
            .await?;
        let choice = channels::effective_for(&stored, kind);
        let new = NewNotification {
            user_id: event.user_id,
            kind,
            event_id: event.event_id,
            actor_id: event.actor_id,
            subject,
            group: group_of(kind, subject),
            coalesce_window: self.coalesce_window,
            details: serde_json::to_string(&event.details).map_err(JobError::permanent)?,
            in_app: choice.in_app,
        };
        // The follow-ups continue this job's trace.
        let trace = ctx
            .trace_parent
            .as_deref()
            .and_then(agora_jobs::trace::trace_id_of)
            .and_then(|t| agora_jobs::trace::child_traceparent(t, true));
        let email = self.email && choice.email;
        // Read before the transaction: a browser registered meanwhile misses this one push.
        let subscriptions = if self.push && choice.push {
            self.db
                .push_subscriptions(event.user_id, ReadPolicy::Primary)
                .await?
        } else {
            Vec::new()
        };
        let mut encode_error = None;
        let recorded = self
            .db
            .record_notification(&new, |notification_id| {
                let mut jobs = Vec::new();
                for subscription in &subscriptions {
                    let job = crate::push::SendPush {
                        notification_id,
                        subscription_id: subscription.id,
                    };
                    match agora_jobs::new_job(&job, trace.clone()) {
                        Ok(job) => jobs.push(job),
                        Err(e) => encode_error = Some(e),
                    }
                }
                if email {
                    let job = crate::email::SendEmail {
                        notification_id,
                        user_id: event.user_id,
                    };
                    match agora_jobs::new_job(&job, trace.clone()) {
                        Ok(job) => jobs.push(job),
                        Err(e) => encode_error = Some(e),
                    }
                }
                jobs
            })
            .await?;
        if let Some(e) = encode_error {
            return Err(JobError::permanent(e));
        }
        match recorded {
            Recorded::Created(n) => self.announce(n, events::Change::Created, trace).await,
            Recorded::Joined(n) => self.announce(n, events::Change::Updated, trace).await,
            Recorded::Duplicate => Ok(()),
        }
    }
}

impl Deliver {
    /// Drops the cached badge and tells the user's live connections.
    async fn announce(
        &self,
        n: Notification,
        change: events::Change,
        trace: Option<String>,
    ) -> Result<(), JobError> {
        let user = n.user_id;
        unread::forget(&self.kv, user).await;
        if !n.in_app {
            return Ok(());
        }
        let unread_count = unread::count(&self.db, &self.kv, user).await?;
        let view = super::views::render_one(&self.db, n, ReadPolicy::Primary)
            .await
            .map_err(JobError::retry)?;
        if let Some(notification) = &view {
            let event = events::UserEvent::Notification {
                change,
                notification,
                unread_count,
            };
            events::publish_event(&self.kv, user, &event, trace).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_likes_of_a_post_coalesce() {
        let post = Uuid::now_v7();
        assert_eq!(
            group_of(NotificationKind::PostLiked, Some((SubjectType::Post, post))),
            Some(format!("post_liked:{post}"))
        );
        assert_eq!(
            group_of(
                NotificationKind::PostCommented,
                Some((SubjectType::Post, post))
            ),
            None
        );
        assert_eq!(group_of(NotificationKind::NewLogin, None), None);
    }

    #[test]
    fn the_payload_reads_back_and_tolerates_missing_optional_fields() {
        let user = Uuid::now_v7();
        let event = NotificationEvent::new(user, NotificationKind::NewLogin)
            .subject(SubjectType::Session, Uuid::now_v7())
            .detail("ip", "127.0.0.1");
        let json = serde_json::to_string(&event).expect("encodes");
        assert_eq!(
            serde_json::from_str::<NotificationEvent>(&json).expect("decodes"),
            event
        );
        let minimal = format!(
            r#"{{"event_id":"{}","user_id":"{user}","kind":"admin_notice"}}"#,
            Uuid::now_v7()
        );
        assert!(serde_json::from_str::<NotificationEvent>(&minimal).is_ok());
    }
}
