//! Identity: accounts, sign-in sessions, tokens and profiles — the rules behind the `identity`
//! operations, and the bearer-token [`Authenticator`].
//!
//! A session is one sign-in. Its access tokens are short-lived JWTs ([`tokens`]); its refresh
//! token is single-use and rotated on every refresh. Presenting a refresh token that was already
//! used means two parties hold it, so the whole session is revoked and the event is audited.
//! The authenticator checks the token and then that its session is not revoked: in the
//! in-process deny-set ([`revocations`]) while that set is complete, in the database otherwise.

pub mod admin;
pub mod passwords;
pub mod profiles;
pub mod revocations;
pub mod settings;
pub mod tokens;

use std::sync::Arc;

use agora_api::rt::{AuthFuture, Authenticator, ErrorCode, Principal, RequestCtx, ServiceError};
use agora_api::types;
use agora_db::audit::{AuditAction, AuditOutcome, NewAuditEvent};
use agora_db::notifications::{NotificationKind, SubjectType};
use agora_db::sessions::{NewSession, Rotation};
use agora_db::users::{NewUser, ProfileChanges, Role, User};
use agora_db::{Db, DbError, ReadPolicy};

use crate::db_errors::{ResourceKind, service_error};
use crate::notifications::NotificationEvent;
use crate::paging::{page_size, split_page, stored};
use passwords::{PasswordError, Passwords};
use profiles::{CachedProfile, Profiles};
use settings::AuthConfig;
use tokens::{KeyRing, TokenError};

/// Longest `User-Agent` kept with a session or audit event, in bytes.
const USER_AGENT_MAX_BYTES: usize = 512;

/// Page tokens of `list_sessions` are `s1.<last session id>`: opaque to clients, validated here.
const PAGE_TOKEN_PREFIX: &str = "s1.";

fn parse_page_token(token: &str) -> Result<uuid::Uuid, ServiceError> {
    crate::paging::parse_id_token(token, PAGE_TOKEN_PREFIX)
}

/// The one answer to a failed sign-in, whatever failed.
const BAD_CREDENTIALS: &str = "invalid handle, email or password";
/// The one answer to a refused access token, whatever was wrong with it.
const BAD_ACCESS_TOKEN: &str = "the access token is invalid or expired";
/// The one answer to a refused refresh token.
const BAD_REFRESH_TOKEN: &str = "the refresh token is invalid or expired";

/// The identity service; cheap to share.
#[derive(Clone)]
pub struct Identity {
    db: Db,
    passwords: Passwords,
    keys: Arc<KeyRing>,
    refresh_ttl_secs: u64,
    revocations: Arc<revocations::Revocations>,
    profiles: Profiles,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("keys", &self.keys)
            .finish()
    }
}

/// Why the identity service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Bad key ring.
    #[error("auth.keys: {0}")]
    Keys(String),
    /// Bad hashing parameters, or the dummy hash failed.
    #[error("auth: {0}")]
    Passwords(#[from] PasswordError),
}

fn unauthenticated(message: &str) -> ServiceError {
    ServiceError::Unauthenticated {
        message: message.into(),
    }
}

/// The answer to a registration whose handle or email is taken. Handles are public (profiles
/// are looked up by handle), so `handle_taken` reveals nothing new; `email_taken` tells that an
/// account uses the address, which a sign-up form cannot avoid telling — the `auth` budget per
/// client address bounds how fast anyone can ask.
fn registration_conflict(constraint: &str) -> ServiceError {
    let (code, message) = match constraint {
        agora_db::users::HANDLE_KEY => (ErrorCode::HandleTaken, "the handle is already in use"),
        agora_db::users::EMAIL_KEY => (ErrorCode::EmailTaken, "the email is already in use"),
        _ => (ErrorCode::Conflict, "the handle or email is already in use"),
    };
    ServiceError::Conflict {
        code,
        message: message.into(),
    }
}

fn hashing_failed(e: PasswordError) -> ServiceError {
    ServiceError::internal(e)
}

fn token_failed(e: TokenError) -> ServiceError {
    ServiceError::internal(e)
}

fn user_agent<P>(ctx: &RequestCtx<P>) -> Option<String> {
    ctx.user_agent.as_ref().map(|ua| {
        let mut end = ua.len().min(USER_AGENT_MAX_BYTES);
        while !ua.is_char_boundary(end) {
            end -= 1;
        }
        ua[..end].to_owned()
    })
}

fn me(user: CachedProfile) -> Result<types::Me, ServiceError> {
    Ok(types::Me {
        id: user.id,
        handle: stored(user.handle, "handle")?,
        email: user.email,
        display_name: stored(user.display_name, "display_name")?,
        bio: user.bio.map(|b| stored(b, "bio")).transpose()?,
        avatar_url: user
            .avatar_url
            .map(|a| stored(a, "avatar_url"))
            .transpose()?,
        created_at: user.created_at,
    })
}

fn profile(user: CachedProfile) -> Result<types::UserProfile, ServiceError> {
    Ok(types::UserProfile {
        id: user.id,
        handle: stored(user.handle, "handle")?,
        display_name: stored(user.display_name, "display_name")?,
        bio: user.bio.map(|b| stored(b, "bio")).transpose()?,
        avatar_url: user
            .avatar_url
            .map(|a| stored(a, "avatar_url"))
            .transpose()?,
        created_at: user.created_at,
    })
}

impl Identity {
    /// Builds the service (computes the dummy hash: one hash's time).
    pub async fn new(
        db: Db,
        kv: agora_kv::Kv,
        config: &AuthConfig,
    ) -> Result<Identity, IdentityError> {
        let keys = KeyRing::new(config).map_err(IdentityError::Keys)?;
        let revocation_ttl =
            std::time::Duration::from_secs(config.access_ttl_secs + config.leeway_secs);
        let profiles = Profiles::new(db.clone(), kv.clone());
        let revocations = revocations::Revocations::start(db.clone(), kv, revocation_ttl).await;
        Ok(Identity {
            db,
            passwords: Passwords::new(config).await?,
            keys: Arc::new(keys),
            refresh_ttl_secs: config.refresh_ttl_secs,
            revocations,
            profiles,
        })
    }

    /// The bearer-token verifier for the generated adapter.
    pub fn authenticator(&self) -> Arc<dyn Authenticator> {
        Arc::new(self.clone())
    }

    /// The `x-agora-role` decider for the generated adapter.
    pub fn authorizer(&self) -> Arc<dyn agora_api::rt::Authorizer> {
        Arc::new(self.clone())
    }

    /// Appends an audit event; a failure is logged, never shown to the caller (the operation it
    /// records has already happened or been refused).
    pub(crate) async fn audit<P>(
        &self,
        ctx: &RequestCtx<P>,
        actor: Option<uuid::Uuid>,
        action: AuditAction,
        target: Option<String>,
        outcome: AuditOutcome,
    ) {
        let event = self.audit_event(ctx, actor, action, target, outcome);
        if let Err(e) = self.db.record_audit_event(&event).await {
            tracing::error!(audit.action = action.as_str(), error = %e, "cannot record the audit event");
        }
    }

    /// The audit event of `action` in this request, for repositories that write it in the same
    /// transaction as the change it records.
    pub(crate) fn audit_event<P>(
        &self,
        ctx: &RequestCtx<P>,
        actor: Option<uuid::Uuid>,
        action: AuditAction,
        target: Option<String>,
        outcome: AuditOutcome,
    ) -> NewAuditEvent {
        NewAuditEvent {
            actor_user_id: actor,
            action,
            target,
            outcome,
            ip: Some(ctx.client_ip.to_string()),
            user_agent: user_agent(ctx),
            request_id: ctx.request_id.clone(),
        }
    }

    /// A new session for `user` and its first token pair.
    async fn start_session<P>(
        &self,
        ctx: &RequestCtx<P>,
        user: &User,
    ) -> Result<(uuid::Uuid, types::TokenPair), ServiceError> {
        let (refresh, refresh_hash) = tokens::new_refresh_token().map_err(token_failed)?;
        let agent = user_agent(ctx);
        let ip = ctx.client_ip.to_string();
        // A sign-in from a device the account never used tells the owner, in the same
        // transaction as the session (so a notice exists exactly when the session does).
        let mut notice = None;
        let (session, _) = self
            .db
            .create_session_noting_device(
                &NewSession {
                    user_id: user.id,
                    user_agent: agent.clone(),
                    ip: Some(ip.clone()),
                    refresh_token_hash: refresh_hash,
                },
                |session_id| {
                    let event = NotificationEvent::new(user.id, NotificationKind::NewLogin)
                        .subject(SubjectType::Session, session_id)
                        .detail("ip", ip.clone())
                        .detail("user_agent", agent.clone().unwrap_or_default());
                    match event.job(&ctx.trace) {
                        Ok(job) => vec![job],
                        Err(e) => {
                            notice = Some(e);
                            Vec::new()
                        }
                    }
                },
            )
            .await
            .map_err(|e| service_error(e, ResourceKind::Session))?;
        if let Some(e) = notice {
            tracing::error!(error = %e, "cannot encode the new-login notification");
        }
        let pair = self.token_pair(user.id, session.id, user.role, refresh)?;
        Ok((session.id, pair))
    }

    fn token_pair(
        &self,
        user_id: uuid::Uuid,
        session_id: uuid::Uuid,
        role: Role,
        refresh_token: String,
    ) -> Result<types::TokenPair, ServiceError> {
        Ok(types::TokenPair {
            access_token: self
                .keys
                .issue_access(user_id, session_id, role.as_str())
                .map_err(token_failed)?,
            refresh_token,
            token_type: types::TokenPairTokenType::Bearer,
            expires_in: i64::try_from(self.keys.access_ttl_secs()).unwrap_or(i64::MAX),
        })
    }

    /// `register`: creates the account and signs it in.
    pub async fn register(
        &self,
        ctx: &RequestCtx,
        body: types::RegisterRequest,
    ) -> Result<types::Session, ServiceError> {
        let password_hash = self
            .passwords
            .hash(&body.password)
            .await
            .map_err(hashing_failed)?;
        let new = NewUser {
            handle: body.handle.to_string(),
            email: body.email.trim().to_lowercase(),
            display_name: body.display_name.to_string(),
            password_hash,
        };
        let (refresh, refresh_hash) = tokens::new_refresh_token().map_err(token_failed)?;
        // The account, its session and the audit event commit together or not at all.
        let registered = self
            .db
            .register_user(&new, |user_id| {
                let session = NewSession {
                    user_id,
                    user_agent: user_agent(ctx),
                    ip: Some(ctx.client_ip.to_string()),
                    refresh_token_hash: refresh_hash,
                };
                let target = Some(format!("user:{user_id}"));
                let audit = self.audit_event(
                    ctx,
                    Some(user_id),
                    AuditAction::Register,
                    target,
                    AuditOutcome::Success,
                );
                (session, audit)
            })
            .await;
        let (user, session) = match registered {
            Ok(registered) => registered,
            Err(DbError::Conflict { constraint }) => {
                self.audit(
                    ctx,
                    None,
                    AuditAction::Register,
                    None,
                    AuditOutcome::Conflict,
                )
                .await;
                return Err(registration_conflict(&constraint));
            }
            Err(e) => return Err(service_error(e, ResourceKind::User)),
        };
        let tokens = self.token_pair(user.id, session.id, user.role, refresh)?;
        Ok(types::Session {
            user: me(user.into())?,
            tokens,
        })
    }

    /// `login`: checks the credentials and starts a session. An unknown account and a wrong
    /// password take the same time and get the same answer.
    pub async fn login(
        &self,
        ctx: &RequestCtx,
        body: types::LoginRequest,
    ) -> Result<types::Session, ServiceError> {
        let user = match self.db.find_user_by_login(&body.login).await {
            Ok(user) => Some(user),
            Err(DbError::NotFound) => None,
            Err(e) => return Err(service_error(e, ResourceKind::User)),
        };
        let valid = self
            .passwords
            .verify(
                &body.password,
                user.as_ref().map(|u| u.password_hash.as_str()),
            )
            .await
            .map_err(hashing_failed)?;
        let user = match user {
            Some(user) if valid => user,
            other => {
                // The typed login is not recorded: it may be a password typed in the wrong field.
                let actor = other.map(|u| u.id);
                let target = actor.map(|id| format!("user:{id}"));
                self.audit(
                    ctx,
                    actor,
                    AuditAction::Login,
                    target,
                    AuditOutcome::Failure,
                )
                .await;
                return Err(unauthenticated(BAD_CREDENTIALS));
            }
        };
        let (session_id, tokens) = self.start_session(ctx, &user).await?;
        self.audit(
            ctx,
            Some(user.id),
            AuditAction::Login,
            Some(format!("session:{session_id}")),
            AuditOutcome::Success,
        )
        .await;
        Ok(types::Session {
            user: me(user.into())?,
            tokens,
        })
    }

    /// `refresh_session`: rotates the refresh token; a reused one revokes the session.
    pub async fn refresh_session(
        &self,
        ctx: &RequestCtx,
        body: types::RefreshSessionRequest,
    ) -> Result<types::TokenPair, ServiceError> {
        let presented = tokens::hash_refresh_token(&body.refresh_token);
        let (next, next_hash) = tokens::new_refresh_token().map_err(token_failed)?;
        let ttl = chrono::Duration::seconds(
            i64::try_from(self.refresh_ttl_secs).unwrap_or(i64::MAX / 1000),
        );
        let issued_after = chrono::Utc::now() - ttl;
        let rotation = self
            .db
            .rotate_refresh_token(&presented, &next_hash, issued_after)
            .await
            .map_err(|e| service_error(e, ResourceKind::Session))?;
        match rotation {
            Rotation::Rotated(s) => {
                // The role as it is now (a role change revokes sessions, but read it anyway).
                let active = self
                    .db
                    .get_active_session(s.session_id, s.user_id)
                    .await
                    .map_err(|e| service_error(e, ResourceKind::Session))?;
                self.token_pair(s.user_id, s.session_id, active.role, next)
            }
            Rotation::Reused(s) => {
                self.revocations.revoke(s.session_id).await;
                tracing::warn!(user.id = %s.user_id, session.id = %s.session_id, "refresh token reused; session revoked");
                self.audit(
                    ctx,
                    Some(s.user_id),
                    AuditAction::RefreshTokenReuse,
                    Some(format!("session:{}", s.session_id)),
                    AuditOutcome::SessionRevoked,
                )
                .await;
                Err(unauthenticated(BAD_REFRESH_TOKEN))
            }
            Rotation::Revoked(_) | Rotation::Expired | Rotation::Unknown => {
                Err(unauthenticated(BAD_REFRESH_TOKEN))
            }
        }
    }

    /// `logout`: revokes the caller's session.
    pub async fn logout(&self, ctx: &RequestCtx<Principal>) -> Result<(), ServiceError> {
        let p = &ctx.principal;
        self.db
            .revoke_session(p.session_id, p.user_id)
            .await
            .map_err(|e| service_error(e, ResourceKind::Session))?;
        self.revocations.revoke(p.session_id).await;
        self.audit(
            ctx,
            Some(p.user_id),
            AuditAction::Logout,
            Some(format!("session:{}", p.session_id)),
            AuditOutcome::Success,
        )
        .await;
        Ok(())
    }

    /// `logout_all`: revokes every session of the caller, this one included.
    pub async fn logout_all(&self, ctx: &RequestCtx<Principal>) -> Result<(), ServiceError> {
        let p = &ctx.principal;
        let revoked = self
            .db
            .revoke_all_sessions(p.user_id, None)
            .await
            .map_err(|e| service_error(e, ResourceKind::Session))?;
        self.revoke_everywhere(&revoked).await;
        let target = Some(format!("user:{}", p.user_id));
        self.audit(
            ctx,
            Some(p.user_id),
            AuditAction::LogoutAll,
            target,
            AuditOutcome::Success,
        )
        .await;
        Ok(())
    }

    /// Puts revoked sessions in every instance's deny-set.
    async fn revoke_everywhere(&self, sessions: &[uuid::Uuid]) {
        for session in sessions {
            self.revocations.revoke(*session).await;
        }
    }

    /// `list_sessions`: the caller's live sessions, newest first, keyset-paginated on the id.
    pub async fn list_sessions(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListSessionsQuery,
    ) -> Result<types::SessionInfoResultsPage, ServiceError> {
        let p = &ctx.principal;
        let limit = page_size(query.limit);
        let after = query
            .page_token
            .as_deref()
            .map(parse_page_token)
            .transpose()?;
        // One more than asked tells whether a next page exists.
        let sessions = self
            .db
            .list_sessions(p.user_id, after, limit + 1)
            .await
            .map_err(|e| service_error(e, ResourceKind::Session))?;
        let (sessions, next_page) =
            split_page(sessions, limit, |s| format!("{PAGE_TOKEN_PREFIX}{}", s.id));
        let items = sessions
            .into_iter()
            .map(|s| types::SessionInfo {
                current: s.id == p.session_id,
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                user_agent: s.user_agent,
                ip: s.ip,
            })
            .collect();
        Ok(types::SessionInfoResultsPage { items, next_page })
    }

    /// `revoke_session`: signs one of the caller's devices out; anyone else's session is 404.
    pub async fn revoke_session(
        &self,
        ctx: &RequestCtx<Principal>,
        session_id: uuid::Uuid,
    ) -> Result<(), ServiceError> {
        let p = &ctx.principal;
        let revoked = self
            .db
            .revoke_session(session_id, p.user_id)
            .await
            .map_err(|e| service_error(e, ResourceKind::Session))?;
        if !revoked {
            return Err(ServiceError::NotFound {
                message: "session not found".into(),
            });
        }
        self.revocations.revoke(session_id).await;
        let target = Some(format!("session:{session_id}"));
        self.audit(
            ctx,
            Some(p.user_id),
            AuditAction::SessionRevoke,
            target,
            AuditOutcome::Success,
        )
        .await;
        Ok(())
    }

    /// `change_password`: checks the current password, stores the new hash and revokes every
    /// other session of the caller.
    pub async fn change_password(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::ChangePasswordRequest,
    ) -> Result<(), ServiceError> {
        let p = &ctx.principal;
        let user = self
            .db
            .get_user(p.user_id, ReadPolicy::Primary)
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        let valid = self
            .passwords
            .verify(&body.current_password, Some(user.password_hash.as_str()))
            .await
            .map_err(hashing_failed)?;
        let target = Some(format!("user:{}", p.user_id));
        if !valid {
            self.audit(
                ctx,
                Some(p.user_id),
                AuditAction::PasswordChange,
                target,
                AuditOutcome::Failure,
            )
            .await;
            return Err(unauthenticated("the current password is wrong"));
        }
        let hash = self
            .passwords
            .hash(&body.new_password)
            .await
            .map_err(hashing_failed)?;
        // The hash, the other sessions' revocation, the audit event and the owner's notice
        // commit together.
        let success = self.audit_event(
            ctx,
            Some(p.user_id),
            AuditAction::PasswordChange,
            target,
            AuditOutcome::Success,
        );
        let notice = NotificationEvent::new(p.user_id, NotificationKind::PasswordChanged)
            .detail("ip", ctx.client_ip.to_string())
            .job(&ctx.trace)
            .map_err(ServiceError::internal)?;
        let revoked = self
            .db
            .change_password(p.user_id, &hash, p.session_id, &success, &[notice])
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        self.revoke_everywhere(&revoked).await;
        Ok(())
    }

    /// `get_me`.
    pub async fn get_me(&self, ctx: &RequestCtx<Principal>) -> Result<types::Me, ServiceError> {
        let id = ctx.principal.user_id;
        let user = self
            .profiles
            .by_id(id, ReadPolicy::ForUser(id))
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        me(user)
    }

    /// `update_me`: present fields change; an empty `bio` or `avatar_url` clears it.
    pub async fn update_me(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::UpdateMeRequest,
    ) -> Result<types::Me, ServiceError> {
        let clearable = |v: String| if v.is_empty() { None } else { Some(v) };
        let changes = ProfileChanges {
            display_name: body.display_name.map(|d| d.to_string()),
            bio: body.bio.map(|b| clearable(b.to_string())),
            avatar_url: body.avatar_url.map(|a| clearable(a.to_string())),
        };
        let user = self
            .db
            .update_profile(ctx.principal.user_id, &changes)
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        self.profiles.forget(user.id).await;
        me(user.into())
    }

    /// `get_user`: a public profile.
    pub async fn get_user(
        &self,
        ctx: &RequestCtx<Principal>,
        id: uuid::Uuid,
    ) -> Result<types::UserProfile, ServiceError> {
        let user = self
            .profiles
            .by_id(id, ReadPolicy::ForUser(ctx.principal.user_id))
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        self.visible_profile(ctx, user).await
    }

    /// `user`'s profile, or the answer for a missing user when `user` blocks the caller (a
    /// block is never revealed).
    async fn visible_profile(
        &self,
        ctx: &RequestCtx<Principal>,
        user: CachedProfile,
    ) -> Result<types::UserProfile, ServiceError> {
        let me = ctx.principal.user_id;
        if user.id != me
            && self
                .db
                .blocks(user.id, me, ReadPolicy::ForUser(me))
                .await
                .map_err(|e| service_error(e, ResourceKind::User))?
        {
            return Err(service_error(DbError::NotFound, ResourceKind::User));
        }
        profile(user)
    }

    /// `get_user_by_handle`: a public profile, by handle in any case.
    pub async fn get_user_by_handle(
        &self,
        ctx: &RequestCtx<Principal>,
        handle: &str,
    ) -> Result<types::UserProfile, ServiceError> {
        let user = self
            .profiles
            .by_handle(handle, ReadPolicy::ForUser(ctx.principal.user_id))
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        self.visible_profile(ctx, user).await
    }
}

impl Authenticator for Identity {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        Box::pin(async move {
            let verified = self.keys.verify_access(token).map_err(|e| {
                tracing::debug!(auth.reason = %e, "access token refused");
                unauthenticated(BAD_ACCESS_TOKEN)
            })?;
            if self.revocations.complete().await {
                // The common path: no database read.
                if self.revocations.is_denied(verified.session_id) {
                    tracing::debug!(session.id = %verified.session_id, "access token of a revoked session");
                    return Err(unauthenticated(BAD_ACCESS_TOKEN));
                }
                return Ok(Principal {
                    user_id: verified.user_id,
                    session_id: verified.session_id,
                    roles: vec![verified.role],
                    expires_at: Some(verified.expires_at),
                });
            }
            match self
                .db
                .get_active_session(verified.session_id, verified.user_id)
                .await
            {
                Ok(session) => Ok(Principal {
                    user_id: session.user_id,
                    session_id: verified.session_id,
                    roles: vec![session.role.as_str().to_owned()],
                    expires_at: Some(verified.expires_at),
                }),
                Err(DbError::NotFound) => {
                    tracing::debug!(session.id = %verified.session_id, "access token of a revoked session");
                    Err(unauthenticated(BAD_ACCESS_TOKEN))
                }
                Err(e) => Err(service_error(e, ResourceKind::Session)),
            }
        })
    }
}
