//! The audit repository: an append-only trail of security-relevant events (the schema refuses
//! updates and deletes). Callers never pass secrets or raw tokens.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::pool::{Db, Target};
use crate::routing::ReadPolicy;
use crate::schema::audit_events;
use crate::sql_types::{DbTime, DbUuid};
use crate::{DbError, dispatch};

/// An event to record.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    /// Who acted, when known.
    pub actor_user_id: Option<Uuid>,
    /// What was attempted, e.g. `login`, `register`, `logout`, `refresh_token_reuse`.
    pub action: String,
    /// What it was done to, e.g. `session:<id>`.
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

/// A recorded event.
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
struct Row {
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

impl Db {
    /// Appends an event.
    pub async fn record_audit_event(&self, event: &NewAuditEvent) -> Result<(), DbError> {
        let row = Row {
            id: DbUuid(Uuid::now_v7()),
            at: DbTime::now(),
            actor_user_id: event.actor_user_id.map(DbUuid),
            action: event.action.clone(),
            target: event.target.clone(),
            outcome: event.outcome.clone(),
            ip: event.ip.clone(),
            user_agent: event.user_agent.clone(),
            request_id: event.request_id.clone(),
        };
        let mut conn = self.write().await?;
        self.run("record_audit_event", Target::Primary, async {
            dispatch!(conn, c => diesel::insert_into(audit_events::table).values(&row).execute(c).await)
        })
        .await?;
        Ok(())
    }

    /// The events of one actor, oldest first (at most `limit`).
    pub async fn list_audit_events_by_actor(
        &self,
        actor: Uuid,
        limit: i64,
        policy: ReadPolicy,
    ) -> Result<Vec<AuditEvent>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<Row> = self
            .run("list_audit_events_by_actor", target, async {
                dispatch!(conn, c => audit_events::table
                    .filter(audit_events::actor_user_id.eq(DbUuid(actor)))
                    .order((audit_events::at.asc(), audit_events::id.asc()))
                    .limit(limit)
                    .select(Row::as_select())
                    .load(c)
                    .await)
            })
            .await?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }
}
