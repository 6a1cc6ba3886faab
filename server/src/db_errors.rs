//! The one mapping from database errors to service errors (and so to HTTP): an unavailable or
//! slow database is a 503 with `Retry-After`, never a hang and never a 500; a conflict or a
//! missing row names only a [`ResourceKind`], never a constraint or a database message (those go
//! to the log line).

use agora_api::rt::{ErrorCode, ServiceError};
use agora_db::DbError;

/// What an operation was about, for the words of a `not_found` or `conflict` answer. A closed
/// list, so a client-facing message can only ever name one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// An account.
    User,
    /// A sign-in session.
    Session,
    /// An audit-log entry.
    AuditEvent,
    /// A background job.
    Job,
    /// A notification.
    Notification,
    /// A Web Push subscription.
    PushSubscription,
    /// A pending friend request.
    FriendRequest,
    /// A friendship.
    Friendship,
    /// A post.
    Post,
    /// A comment.
    Comment,
    /// A chat conversation.
    Conversation,
    /// A chat message.
    Message,
}

impl ResourceKind {
    /// The noun clients read.
    pub fn noun(self) -> &'static str {
        match self {
            ResourceKind::User => "user",
            ResourceKind::Session => "session",
            ResourceKind::AuditEvent => "audit event",
            ResourceKind::Job => "job",
            ResourceKind::Notification => "notification",
            ResourceKind::PushSubscription => "push subscription",
            ResourceKind::FriendRequest => "friend request",
            ResourceKind::Friendship => "friendship",
            ResourceKind::Post => "post",
            ResourceKind::Comment => "comment",
            ResourceKind::Conversation => "conversation",
            ResourceKind::Message => "message",
        }
    }
}

/// `Retry-After` for database unavailability, in seconds.
pub const DB_RETRY_AFTER_SECS: u64 = 1;

/// Maps a database error about a `kind` of resource.
pub fn service_error(error: DbError, kind: ResourceKind) -> ServiceError {
    let noun = kind.noun();
    match error {
        DbError::NotFound => ServiceError::NotFound {
            message: format!("{noun} not found"),
        },
        DbError::Conflict { constraint } => {
            // The constraint is an internal name: the log line has it, the answer does not.
            tracing::info!(db.constraint = %constraint, "write conflicted");
            ServiceError::Conflict {
                code: ErrorCode::Conflict,
                message: format!("the {noun} conflicts with an existing one"),
            }
        }
        DbError::Unavailable { reason } => {
            tracing::warn!(db.error = %reason, "database unavailable");
            ServiceError::Unavailable {
                message: "the database is unavailable; retry shortly".into(),
                retry_after_secs: DB_RETRY_AFTER_SECS,
            }
        }
        DbError::Timeout { timeout_ms } => {
            tracing::warn!(db.timeout_ms = timeout_ms, "database statement timed out");
            ServiceError::Unavailable {
                message: "the database is too slow to answer; retry shortly".into(),
                retry_after_secs: DB_RETRY_AFTER_SECS,
            }
        }
        DbError::Internal(context) => ServiceError::internal(context),
    }
}

#[cfg(test)]
mod tests {
    use agora_api::rt::ApiFailure;

    use super::*;

    fn status(e: DbError) -> (u16, Option<u64>) {
        let f = ApiFailure::from_service(service_error(e, ResourceKind::User), "r");
        (f.status.as_u16(), f.retry_after_secs)
    }

    #[test]
    fn slow_or_unavailable_databases_are_503_with_retry_after() {
        assert_eq!(
            status(DbError::Timeout { timeout_ms: 5000 }),
            (503, Some(DB_RETRY_AFTER_SECS))
        );
        assert_eq!(
            status(DbError::Unavailable {
                reason: "pool".into()
            }),
            (503, Some(DB_RETRY_AFTER_SECS))
        );
        assert_eq!(status(DbError::NotFound), (404, None));
        assert_eq!(
            status(DbError::Conflict {
                constraint: "users_handle_key".into()
            }),
            (409, None)
        );
        assert_eq!(status(DbError::Internal("boom".into())), (500, None));
    }

    #[test]
    fn answers_never_carry_constraints_or_database_messages() {
        for e in [
            DbError::Conflict {
                constraint: "users_handle_key".into(),
            },
            DbError::Conflict {
                constraint: "duplicate key value violates unique constraint".into(),
            },
            DbError::Internal("relation \"users\" does not exist".into()),
        ] {
            let f = ApiFailure::from_service(service_error(e, ResourceKind::User), "r");
            let body = serde_json::to_string(&*f.body).expect("json");
            for leak in ["users_", "constraint", "relation", "duplicate"] {
                assert!(!body.contains(leak), "{body}");
            }
        }
    }
}
