//! The one mapping from database errors to service errors (and so to HTTP): an unavailable or
//! slow database is a 503 with `Retry-After`, never a hang and never a 500.

use agora_api::rt::ServiceError;
use agora_db::DbError;

/// `Retry-After` for database unavailability, in seconds.
pub const DB_RETRY_AFTER_SECS: u64 = 1;

/// Maps a database error. `what` names the resource for `NotFound`/`Conflict` messages.
pub fn service_error(error: DbError, what: &str) -> ServiceError {
    match error {
        DbError::NotFound => ServiceError::NotFound {
            message: format!("{what} not found"),
        },
        DbError::Conflict { constraint } => ServiceError::Conflict {
            message: format!("{what} conflicts ({constraint})"),
        },
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
        let f = ApiFailure::from_service(service_error(e, "user"), "r");
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
}
