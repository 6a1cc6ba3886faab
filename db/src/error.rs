//! Database errors, converted from diesel and bb8 in exactly one place.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong talking to the database, in terms a service can act on.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No row matched.
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint rejected the write; `constraint` names it when known.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// No connection could be had in time, or the database is unreachable: retry later (503).
    #[error("database unavailable: {reason}")]
    Unavailable { reason: String },
    /// The statement ran past the statement timeout.
    #[error("statement timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    /// Anything else (a bug, a schema mismatch): context for the log only.
    #[error("database error: {0}")]
    Internal(String),
}

impl DbError {
    /// The label used in the `db_errors_total` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            DbError::NotFound => "not_found",
            DbError::Conflict { .. } => "conflict",
            DbError::Unavailable { .. } => "unavailable",
            DbError::Timeout { .. } => "timeout",
            DbError::Internal(_) => "internal",
        }
    }
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => DbError::NotFound,
            DieselError::DatabaseError(kind, info) => {
                let constraint = info
                    .constraint_name()
                    .unwrap_or_else(|| info.message())
                    .to_owned();
                match kind {
                    DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation => {
                        DbError::Conflict { constraint }
                    }
                    // No SQLSTATE: the statement never reached a server (a connection that died
                    // since its last use: the pool does not ping on checkout).
                    DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::UnableToSendCommand => DbError::Unavailable {
                        reason: info.message().to_owned(),
                    },
                    // PostgreSQL's statement_timeout answers SQLSTATE 57014, which diesel files
                    // under Unknown; its message is stable.
                    _ if info.message().contains("statement timeout") => {
                        DbError::Timeout { timeout_ms: 0 }
                    }
                    _ => DbError::Internal(info.message().to_owned()),
                }
            }
            other => DbError::Internal(other.to_string()),
        }
    }
}

impl From<diesel_async::pooled_connection::PoolError> for DbError {
    fn from(e: diesel_async::pooled_connection::PoolError) -> Self {
        DbError::Unavailable {
            reason: e.to_string(),
        }
    }
}

impl<E: std::fmt::Display> From<bb8::RunError<E>> for DbError {
    fn from(e: bb8::RunError<E>) -> Self {
        match e {
            bb8::RunError::TimedOut => DbError::Unavailable {
                reason: "no database connection available in time".into(),
            },
            bb8::RunError::User(e) => DbError::Unavailable {
                reason: e.to_string(),
            },
        }
    }
}
