//! The admin operations: the audit log, roles, and signing a user out everywhere; and the
//! [`Authorizer`] behind `x-agora-role`. The generated adapter asks it before any admin method
//! runs: it reads the caller's role in the primary database (not the token's claim, which lags by
//! up to one access-token lifetime), and audits every refusal.

use agora_api::rt::{
    Authorizer, ErrorCode, Operation, PolicyFuture, Principal, RequestCtx, ServiceError,
};
use agora_api::types;
use agora_db::audit::{
    AuditAction, AuditCursor, AuditEvent, AuditFilter, AuditOutcome, NewAuditEvent,
};
use agora_db::users::{Role, User};
use agora_db::{Db, DbError, ReadPolicy};

use super::Identity;
use crate::db_errors::{ResourceKind, service_error};
use crate::paging::{forged_page_token, page_size, split_page, stored};

/// Audit page tokens are `a1.<microseconds since the epoch>.<event id>`: the keyset of the last
/// event returned.
const AUDIT_PAGE_TOKEN_PREFIX: &str = "a1.";

fn role_name(role: types::Role) -> Role {
    match role {
        types::Role::User => Role::User,
        types::Role::Admin => Role::Admin,
    }
}

fn role_of(user: &User) -> types::Role {
    match user.role {
        Role::User => types::Role::User,
        Role::Admin => types::Role::Admin,
    }
}

fn audit_page_token(last: &AuditEvent) -> String {
    format!(
        "{AUDIT_PAGE_TOKEN_PREFIX}{}.{}",
        last.at.timestamp_micros(),
        last.id
    )
}

fn parse_audit_page_token(token: &str) -> Result<AuditCursor, ServiceError> {
    let parsed = token
        .strip_prefix(AUDIT_PAGE_TOKEN_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(micros, id)| {
            let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?;
            let id = uuid::Uuid::parse_str(id).ok()?;
            Some(AuditCursor { at, id })
        });
    parsed.ok_or_else(forged_page_token)
}

fn not_found_user(e: DbError) -> ServiceError {
    match e {
        DbError::NotFound => ServiceError::NotFound {
            message: "user not found".into(),
        },
        other => service_error(other, ResourceKind::User),
    }
}

fn event(e: AuditEvent) -> Result<types::AuditEvent, ServiceError> {
    Ok(types::AuditEvent {
        id: e.id,
        at: e.at,
        actor_user_id: e.actor_user_id,
        action: stored(e.action, "audit action")?,
        target: e.target,
        outcome: e.outcome,
        ip: e.ip,
        user_agent: e.user_agent,
        request_id: e.request_id,
    })
}

impl Authorizer for Identity {
    fn authorize<'a>(
        &'a self,
        ctx: &'a RequestCtx<Principal>,
        operation: &'static Operation,
        required: &'static str,
    ) -> PolicyFuture<'a, ()> {
        Box::pin(async move {
            let p = &ctx.principal;
            let role = match self.db.get_user(p.user_id, ReadPolicy::Primary).await {
                Ok(user) => Some(user.role),
                // The account is gone but its token is not yet expired: no role at all.
                Err(DbError::NotFound) => None,
                Err(e) => return Err(service_error(e, ResourceKind::User)),
            };
            // A role the contract names but this server does not know is held by nobody.
            let granted = Role::parse(required);
            if let (Some(role), Some(required)) = (role, granted)
                && role.grants(required)
            {
                return Ok(());
            }
            let target = Some(format!("operation:{}", operation.id));
            self.audit(
                ctx,
                Some(p.user_id),
                AuditAction::AdminDenied,
                target,
                AuditOutcome::Forbidden,
            )
            .await;
            Err(ServiceError::Forbidden {
                message: format!("this operation requires the {required} role"),
            })
        })
    }
}

impl Identity {
    /// `list_audit_events`: the audit log, newest first, filtered and keyset-paginated.
    pub async fn list_audit_events(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListAuditEventsQuery,
    ) -> Result<types::AuditEventResultsPage, ServiceError> {
        let limit = page_size(query.limit);
        let after = query
            .page_token
            .as_deref()
            .map(parse_audit_page_token)
            .transpose()?;
        let filter = AuditFilter {
            actor: query.actor,
            action: query.action.map(|a| a.to_string()),
            since: query.since,
            until: query.until,
        };
        // The read itself is audited first, so a page always shows who is reading.
        self.audit(
            ctx,
            Some(ctx.principal.user_id),
            AuditAction::AuditRead,
            None,
            AuditOutcome::Success,
        )
        .await;
        let events = self
            .db
            .list_audit_events(&filter, after, limit + 1, ReadPolicy::Primary)
            .await
            .map_err(|e| service_error(e, ResourceKind::AuditEvent))?;
        let (events, next_page) = split_page(events, limit, audit_page_token);
        let items = events.into_iter().map(event).collect::<Result<_, _>>()?;
        Ok(types::AuditEventResultsPage { items, next_page })
    }

    /// `set_user_role`: grants or withdraws `admin`. Not on oneself: an admin who could demote
    /// themselves could also leave the deployment without one by mistake.
    pub async fn set_user_role(
        &self,
        ctx: &RequestCtx<Principal>,
        user_id: uuid::Uuid,
        body: types::SetRoleRequest,
    ) -> Result<types::UserRole, ServiceError> {
        let actor = Some(ctx.principal.user_id);
        let role = role_name(body.role);
        let target = Some(format!("user:{user_id} role={role}"));
        if user_id == ctx.principal.user_id {
            self.audit(
                ctx,
                actor,
                AuditAction::RoleChange,
                target,
                AuditOutcome::Conflict,
            )
            .await;
            return Err(ServiceError::Conflict {
                code: ErrorCode::OwnRoleChange,
                message:
                    "an admin cannot change their own role; another admin (or `agora admin`) must"
                        .into(),
            });
        }
        let success = self.audit_event(
            ctx,
            actor,
            AuditAction::RoleChange,
            target.clone(),
            AuditOutcome::Success,
        );
        let user = match self.db.set_user_role(user_id, role, &success).await {
            Ok(user) => user,
            Err(e) => {
                self.audit(
                    ctx,
                    actor,
                    AuditAction::RoleChange,
                    target,
                    AuditOutcome::Failure,
                )
                .await;
                return Err(not_found_user(e));
            }
        };
        Ok(types::UserRole {
            user_id: user.id,
            role: role_of(&user),
            handle: stored(user.handle, "handle")?,
        })
    }

    /// `revoke_user_sessions`: signs a user out everywhere.
    pub async fn revoke_user_sessions(
        &self,
        ctx: &RequestCtx<Principal>,
        user_id: uuid::Uuid,
    ) -> Result<(), ServiceError> {
        let actor = Some(ctx.principal.user_id);
        let target = Some(format!("user:{user_id}"));
        if let Err(e) = self.db.get_user(user_id, ReadPolicy::Primary).await {
            self.audit(
                ctx,
                actor,
                AuditAction::UserSessionsRevoke,
                target,
                AuditOutcome::Failure,
            )
            .await;
            return Err(not_found_user(e));
        }
        let revoked = self
            .db
            .revoke_all_sessions(user_id, None)
            .await
            .map_err(|e| service_error(e, ResourceKind::Session))?;
        self.revoke_everywhere(&revoked).await;
        self.audit(
            ctx,
            actor,
            AuditAction::UserSessionsRevoke,
            target,
            AuditOutcome::Success,
        )
        .await;
        Ok(())
    }
}

/// Why `agora admin` could not change a role.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// No account has that handle.
    #[error("no user has the handle {0:?}")]
    UnknownHandle(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] DbError),
}

/// Sets the role of the account `handle` from the command line, audited with no actor (the
/// operator is at a shell, not signed in) and the operating-system user in the user-agent field.
pub async fn set_role_from_cli(db: &Db, handle: &str, admin: bool) -> Result<User, GrantError> {
    let user = match db.get_user_by_handle(handle, ReadPolicy::Primary).await {
        Ok(user) => user,
        Err(DbError::NotFound) => return Err(GrantError::UnknownHandle(handle.to_owned())),
        Err(e) => return Err(e.into()),
    };
    let role = if admin { Role::Admin } else { Role::User };
    let os_user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let audit = NewAuditEvent {
        target: Some(format!("user:{} role={role}", user.id)),
        user_agent: Some(format!("agora admin (os user {os_user})")),
        ..NewAuditEvent::new(
            AuditAction::RoleChange,
            AuditOutcome::Success,
            format!("cli:{}", uuid::Uuid::now_v7()),
        )
    };
    Ok(db.set_user_role(user.id, role, &audit).await?)
}
