//! `agora admin notify`: an operator's notice to one user, delivered like every notification
//! (in the app, by email and push per the user's settings for `admin_notice`) and audited.

use agora_db::audit::{AuditAction, AuditOutcome, NewAuditEvent};
use agora_db::notifications::NotificationKind;
use agora_db::{Db, DbError, ReadPolicy};

use super::NotificationEvent;

/// Longest notice, in characters.
pub const MAX_NOTICE_CHARS: usize = 2000;

/// Why a notice was not sent.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// No account has the handle.
    #[error("no user has the handle {0:?}")]
    UnknownUser(String),
    /// Empty or too long.
    #[error("the message must be 1 to {MAX_NOTICE_CHARS} characters")]
    BadMessage,
    /// The job could not be encoded (a bug).
    #[error("{0}")]
    Encode(String),
    /// The database failed.
    #[error("{0}")]
    Db(#[from] DbError),
}

/// Queues `message` as an `admin_notice` for the user `handle`; answers the user's id.
pub async fn notify_from_cli(
    db: &Db,
    handle: &str,
    message: &str,
) -> Result<uuid::Uuid, NoticeError> {
    let message = message.trim();
    if message.is_empty() || message.chars().count() > MAX_NOTICE_CHARS {
        return Err(NoticeError::BadMessage);
    }
    let user = match db.get_user_by_handle(handle, ReadPolicy::Primary).await {
        Ok(u) => u,
        Err(DbError::NotFound) => return Err(NoticeError::UnknownUser(handle.to_owned())),
        Err(e) => return Err(e.into()),
    };
    let job = NotificationEvent::new(user.id, NotificationKind::AdminNotice)
        .detail("message", message)
        .job_without_trace()
        .map_err(|e| NoticeError::Encode(e.to_string()))?;
    let os_user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let audit = NewAuditEvent {
        target: Some(format!("user:{}", user.id)),
        user_agent: Some(format!("agora admin (os user {os_user})")),
        ..NewAuditEvent::new(
            AuditAction::AdminNotice,
            AuditOutcome::Success,
            format!("cli:{}", uuid::Uuid::now_v7()),
        )
    };
    db.enqueue_audited(&[job], &audit).await?;
    Ok(user.id)
}
