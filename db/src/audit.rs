//! The audit repository: an append-only trail of security-relevant events (the schema refuses
//! updates and deletes). Callers never pass secrets or raw tokens.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::pool::{Db, Target};
use crate::routing::ReadPolicy;
use crate::schema::audit_events;
use crate::sql_types::{DbTime, DbUuid};
use crate::text_enum::text_enum;
use crate::{DbError, dispatch};

text_enum! {
    /// What an audit event records.
    pub enum AuditAction {
        /// An account was created (or the attempt conflicted).
        Register => "register",
        /// A sign-in, successful or not.
        Login => "login",
        /// A refresh token was presented a second time (the session is revoked).
        RefreshTokenReuse => "refresh_token_reuse",
        /// A session was signed out.
        Logout => "logout",
        /// Every session of a user was signed out by that user.
        LogoutAll => "logout_all",
        /// One of a user's sessions was revoked by that user.
        SessionRevoke => "session_revoke",
        /// A password change, successful or not.
        PasswordChange => "password_change",
        /// A role was granted or withdrawn.
        RoleChange => "role_change",
        /// An admin signed a user out everywhere.
        UserSessionsRevoke => "user_sessions_revoke",
        /// An admin read the audit log.
        AuditRead => "audit_read",
        /// A caller without the role tried a role-gated operation.
        AdminDenied => "admin_denied",
        /// An admin listed background jobs.
        JobsRead => "jobs_read",
        /// A dead job was retried (by an admin, or `agora jobs retry`).
        JobRetry => "job_retry",
        /// A job was discarded (`agora jobs discard`).
        JobDiscard => "job_discard",
        /// An operator sent an admin notice.
        AdminNotice => "admin_notice",
        /// An admin deleted someone else's post or comment.
        ContentModerated => "content_moderated",
    }
}

text_enum! {
    /// How an audited attempt ended.
    pub enum AuditOutcome {
        /// It happened.
        Success => "success",
        /// It was refused (wrong password, unknown target).
        Failure => "failure",
        /// It conflicted with the current state (a taken handle, one's own role).
        Conflict => "conflict",
        /// The caller lacked the role.
        Forbidden => "forbidden",
        /// A reused refresh token: the session was revoked.
        SessionRevoked => "session_revoked",
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    /// Who acted, when known.
    pub actor_user_id: Option<Uuid>,
    /// What was attempted.
    pub action: AuditAction,
    /// What it was done to, e.g. `session:<id>`.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The peer address.
    pub ip: Option<String>,
    /// The `User-Agent`.
    pub user_agent: Option<String>,
    /// The request that caused it.
    pub request_id: String,
}

impl NewAuditEvent {
    /// An event with no actor, target, address or user agent.
    pub fn new(action: AuditAction, outcome: AuditOutcome, request_id: impl Into<String>) -> Self {
        NewAuditEvent {
            actor_user_id: None,
            action,
            target: None,
            outcome,
            ip: None,
            user_agent: None,
            request_id: request_id.into(),
        }
    }
}

/// A recorded event. Action and outcome are read back as text: the log is history, and may hold
/// values that a newer release wrote during a rolling deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// UUIDv7 (so ids sort by time).
    pub id: Uuid,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who acted, when known.
    pub actor_user_id: Option<Uuid>,
    /// What was attempted.
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The peer address.
    pub ip: Option<String>,
    /// The `User-Agent`.
    pub user_agent: Option<String>,
    /// The request that caused it.
    pub request_id: String,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct Row {
    id: DbUuid,
    at: DbTime,
    actor_user_id: Option<DbUuid>,
    action: String,
    target: Option<String>,
    outcome: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: String,
}

impl From<Row> for AuditEvent {
    fn from(r: Row) -> Self {
        AuditEvent {
            id: r.id.0,
            at: r.at.0,
            actor_user_id: r.actor_user_id.map(|u| u.0),
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            ip: r.ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
        }
    }
}

impl NewAuditEvent {
    /// The row to insert, stamped now (for repositories that write an event in their own
    /// transaction).
    pub(crate) fn to_row(&self) -> Row {
        Row {
            id: DbUuid(Uuid::now_v7()),
            at: DbTime::now(),
            actor_user_id: self.actor_user_id.map(DbUuid),
            action: self.action.as_str().to_owned(),
            target: self.target.clone(),
            outcome: self.outcome.as_str().to_owned(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl Db {
    /// Appends an event.
    pub async fn record_audit_event(&self, event: &NewAuditEvent) -> Result<(), DbError> {
        let row = event.to_row();
        let mut conn = self.write().await?;
        self.run("record_audit_event", Target::Primary, async {
            dispatch!(conn, c => diesel::insert_into(audit_events::table).values(&row).execute(c).await)
        })
        .await?;
        Ok(())
    }

    /// Events matching `filter`, newest first (`at` then `id`, descending), after `after`, at
    /// most `limit`.
    pub async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        after: Option<AuditCursor>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<AuditEvent>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let limit = i64::from(limit);
        let rows: Vec<Row> = self
            .run("list_audit_events", target, async {
                dispatch!(conn, c => {
                    let mut query = audit_events::table
                        .order((audit_events::at.desc(), audit_events::id.desc()))
                        .limit(limit)
                        .select(Row::as_select())
                        .into_boxed();
                    if let Some(actor) = filter.actor {
                        query = query.filter(audit_events::actor_user_id.eq(DbUuid(actor)));
                    }
                    if let Some(action) = &filter.action {
                        query = query.filter(audit_events::action.eq(action.clone()));
                    }
                    if let Some(since) = filter.since {
                        query = query.filter(audit_events::at.ge(DbTime::truncate(since)));
                    }
                    if let Some(until) = filter.until {
                        query = query.filter(audit_events::at.lt(DbTime::truncate(until)));
                    }
                    if let Some(cursor) = after {
                        let at = DbTime::truncate(cursor.at);
                        query = query.filter(
                            audit_events::at
                                .lt(at)
                                .or(audit_events::at.eq(at).and(audit_events::id.lt(DbUuid(cursor.id)))),
                        );
                    }
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }
}

/// Which events [`Db::list_audit_events`] returns; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this actor's events.
    pub actor: Option<Uuid>,
    /// Only this action.
    pub action: Option<String>,
    /// At or after.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Strictly before.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Where a page ended: the last event's `at` and `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    /// The last event's time.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The last event's id.
    pub id: Uuid,
}

impl From<&AuditEvent> for AuditCursor {
    fn from(e: &AuditEvent) -> Self {
        AuditCursor { at: e.at, id: e.id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_outcomes_round_trip_as_snake_case_text() {
        let snake = |s: &str| s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
            assert!(snake(a.as_str()), "{a}");
        }
        for o in AuditOutcome::ALL {
            assert_eq!(AuditOutcome::parse(o.as_str()), Some(*o));
            assert!(snake(o.as_str()), "{o}");
        }
    }
}
