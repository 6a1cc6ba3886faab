//! The sessions repository: sign-ins and their single-use refresh tokens (stored hashed).
//!
//! A session is a refresh-token family. Rotation marks the presented token used and inserts its
//! successor in one transaction; the mark is a conditional update (`WHERE used_at IS NULL`), so of
//! two concurrent rotations of the same token exactly one wins and the other is seen as reuse.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::jobs::{JobWrites, NewJob};
use crate::pool::{Db, Target};
use crate::schema::{refresh_tokens, sessions, users};
use crate::sql_types::{DbTime, DbUuid};
use crate::{DbError, ReadPolicy, dispatch};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// UUIDv7.
    pub id: Uuid,
    /// Whose session.
    pub user_id: Uuid,
    /// When the user signed in.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The last refresh.
    pub last_used_at: chrono::DateTime<chrono::Utc>,
    /// The `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// The peer address at sign-in.
    pub ip: Option<String>,
    /// When it was revoked (logout, or refresh-token reuse).
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What `create_session` needs.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Whose session.
    pub user_id: Uuid,
    /// The `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// The peer address at sign-in.
    pub ip: Option<String>,
    /// The hash of the session's first refresh token.
    pub refresh_token_hash: String,
}

/// A live session, as the authenticator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    /// Whose session.
    pub user_id: Uuid,
    /// The user's role.
    pub role: crate::users::Role,
}

/// The session a refresh token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef {
    /// The session.
    pub session_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was unused: it is now used and its successor is stored.
    Rotated(SessionRef),
    /// The token had been used before: the whole session is now revoked.
    Reused(SessionRef),
    /// The session was already revoked (nothing changed).
    Revoked(SessionRef),
    /// The token is older than the refresh lifetime (nothing changed).
    Expired,
    /// No such token.
    Unknown,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct Row {
    id: DbUuid,
    user_id: DbUuid,
    created_at: DbTime,
    last_used_at: DbTime,
    user_agent: Option<String>,
    ip: Option<String>,
    revoked_at: Option<DbTime>,
}

impl From<Row> for Session {
    fn from(r: Row) -> Self {
        Session {
            id: r.id.0,
            user_id: r.user_id.0,
            created_at: r.created_at.0,
            last_used_at: r.last_used_at.0,
            user_agent: r.user_agent,
            ip: r.ip,
            revoked_at: r.revoked_at.map(|t| t.0),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
struct Insert<'a> {
    id: DbUuid,
    user_id: DbUuid,
    created_at: DbTime,
    last_used_at: DbTime,
    user_agent: Option<&'a str>,
    ip: Option<&'a str>,
}

#[derive(Insertable)]
#[diesel(table_name = refresh_tokens)]
struct InsertToken<'a> {
    token_hash: &'a str,
    session_id: DbUuid,
    issued_at: DbTime,
}

/// The rows of a new session and its first refresh token, for repositories that create a session
/// inside a larger transaction (registration).
pub(crate) struct SessionRows<'a> {
    session: Insert<'a>,
    token: InsertToken<'a>,
}

impl<'a> SessionRows<'a> {
    pub(crate) fn new(new: &'a NewSession) -> Self {
        let now = DbTime::now();
        let id = DbUuid(Uuid::now_v7());
        SessionRows {
            session: Insert {
                id,
                user_id: DbUuid(new.user_id),
                created_at: now,
                last_used_at: now,
                user_agent: new.user_agent.as_deref(),
                ip: new.ip.as_deref(),
            },
            token: InsertToken {
                token_hash: &new.refresh_token_hash,
                session_id: id,
                issued_at: now,
            },
        }
    }
}

/// Session writes on a connection, for this repository and for others that write sessions inside
/// their own transaction. A trait so that the same call type-checks on each backend's connection
/// inside `dispatch!`.
pub(crate) trait SessionWrites {
    /// Inserts the session and its refresh token (inside the caller's transaction); returns the
    /// session row.
    async fn insert_session_in_txn(
        &mut self,
        rows: &SessionRows<'_>,
    ) -> Result<Row, diesel::result::Error>;

    /// Revokes every live session of `user_id` except `keep`, stamped `at`; returns their ids.
    async fn revoke_sessions_on_conn(
        &mut self,
        user_id: Uuid,
        keep: Option<Uuid>,
        at: DbTime,
    ) -> Result<Vec<Uuid>, diesel::result::Error>;
}

macro_rules! impl_session_writes {
    ($($conn:ty),*) => {$(
        impl SessionWrites for $conn {
            async fn insert_session_in_txn(
                &mut self,
                rows: &SessionRows<'_>,
            ) -> Result<Row, diesel::result::Error> {
                let row: Row = diesel::insert_into(sessions::table)
                    .values(&rows.session)
                    .returning(Row::as_returning())
                    .get_result(self)
                    .await?;
                diesel::insert_into(refresh_tokens::table)
                    .values(&rows.token)
                    .execute(self)
                    .await?;
                Ok(row)
            }

            async fn revoke_sessions_on_conn(
                &mut self,
                user_id: Uuid,
                keep: Option<Uuid>,
                at: DbTime,
            ) -> Result<Vec<Uuid>, diesel::result::Error> {
                let keep = DbUuid(keep.unwrap_or(Uuid::nil()));
                let ids: Vec<DbUuid> = diesel::update(sessions::table
                        .filter(sessions::user_id.eq(DbUuid(user_id)))
                        .filter(sessions::id.ne(keep))
                        .filter(sessions::revoked_at.is_null()))
                    .set(sessions::revoked_at.eq(Some(at)))
                    .returning(sessions::id)
                    .get_results(self)
                    .await?;
                Ok(ids.into_iter().map(|id| id.0).collect())
            }
        }
    )*};
}

impl_session_writes!(crate::conn_types::PgConn, crate::conn_types::SqliteConn);

impl Db {
    /// Creates a session with its first refresh token, in one transaction.
    pub async fn create_session(&self, new: &NewSession) -> Result<Session, DbError> {
        let (session, _) = self
            .create_session_noting_device(new, |_| Vec::new())
            .await?;
        Ok(session)
    }

    /// Creates a session like [`Db::create_session`], and tells whether it comes from a new
    /// device: the user had sessions before, none with this `User-Agent`. For a new device the
    /// jobs `on_new_device(session_id)` returns are enqueued in the same transaction.
    pub async fn create_session_noting_device(
        &self,
        new: &NewSession,
        on_new_device: impl FnOnce(Uuid) -> Vec<NewJob>,
    ) -> Result<(Session, bool), DbError> {
        let rows = SessionRows::new(new);
        let jobs = on_new_device(rows.session.id.0);
        let jobs = jobs.as_slice();
        let user = DbUuid(new.user_id);
        let agent = new.user_agent.as_deref();
        let mut conn = self.write().await?;
        let (row, new_device): (Row, bool) = self
            .run("create_session", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let before: i64 = sessions::table
                        .filter(sessions::user_id.eq(user))
                        .count()
                        .get_result(c)
                        .await?;
                    let same_agent: i64 = match agent {
                        Some(agent) => sessions::table
                            .filter(sessions::user_id.eq(user))
                            .filter(sessions::user_agent.eq(agent))
                            .count()
                            .get_result(c)
                            .await?,
                        None => sessions::table
                            .filter(sessions::user_id.eq(user))
                            .filter(sessions::user_agent.is_null())
                            .count()
                            .get_result(c)
                            .await?,
                    };
                    let new_device = before > 0 && same_agent == 0;
                    let row = c.insert_session_in_txn(&rows).await?;
                    if new_device {
                        c.enqueue_in_txn(jobs).await?;
                    }
                    Ok::<_, diesel::result::Error>((row, new_device))
                }).await)
            })
            .await?;
        if new_device {
            self.jobs_committed(jobs);
        }
        self.wrote(new.user_id).await;
        Ok((row.into(), new_device))
    }

    /// The session `id` of `user_id` when it is not revoked, with the user's role; `NotFound`
    /// otherwise. Reads the primary, so a revocation is seen at once (replicas lag).
    pub async fn get_active_session(
        &self,
        id: Uuid,
        user_id: Uuid,
    ) -> Result<ActiveSession, DbError> {
        let mut conn = self.write().await?;
        let (user, role): (DbUuid, String) = self
            .run("get_active_session", Target::Primary, async {
                dispatch!(conn, c => sessions::table
                    .inner_join(users::table)
                    .filter(sessions::id.eq(DbUuid(id)))
                    .filter(sessions::user_id.eq(DbUuid(user_id)))
                    .filter(sessions::revoked_at.is_null())
                    .select((users::id, users::role))
                    .first(c)
                    .await)
            })
            .await?;
        Ok(ActiveSession {
            user_id: user.0,
            role: crate::users::Role::stored(&role),
        })
    }

    /// Live sessions of `user_id`, newest first, after `after` (keyset on the UUIDv7 id).
    pub async fn list_sessions(
        &self,
        user_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Session>, DbError> {
        let (mut conn, target) = self.read(ReadPolicy::ForUser(user_id)).await?;
        let limit = i64::from(limit);
        let rows: Vec<Row> = self
            .run("list_sessions", target, async {
                dispatch!(conn, c => {
                    let mut query = sessions::table
                        .filter(sessions::user_id.eq(DbUuid(user_id)))
                        .filter(sessions::revoked_at.is_null())
                        .order(sessions::id.desc())
                        .limit(limit)
                        .select(Row::as_select())
                        .into_boxed();
                    if let Some(after) = after {
                        query = query.filter(sessions::id.lt(DbUuid(after)));
                    }
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(Session::from).collect())
    }

    /// Revokes every live session of `user_id` except `keep`; returns the ids it revoked.
    pub async fn revoke_all_sessions(
        &self,
        user_id: Uuid,
        keep: Option<Uuid>,
    ) -> Result<Vec<Uuid>, DbError> {
        let mut conn = self.write().await?;
        let ids = self
            .run("revoke_all_sessions", Target::Primary, async {
                dispatch!(conn, c => c.revoke_sessions_on_conn(user_id, keep, DbTime::now()).await)
            })
            .await?;
        self.wrote(user_id).await;
        Ok(ids)
    }

    /// Sessions revoked at or after `since` (primary): what an instance may have missed of the
    /// revocation broadcast while Redis was unreachable.
    pub async fn recently_revoked_sessions(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Uuid>, DbError> {
        let mut conn = self.write().await?;
        let ids: Vec<DbUuid> = self
            .run("recently_revoked_sessions", Target::Primary, async {
                dispatch!(conn, c => sessions::table
                    .filter(sessions::revoked_at.ge(DbTime(since)))
                    .select(sessions::id)
                    .load(c)
                    .await)
            })
            .await?;
        Ok(ids.into_iter().map(|id| id.0).collect())
    }

    /// Revokes session `id` of `user_id` (the ownership check is part of the update). Returns
    /// whether this call revoked it; `false` when it was already revoked or is not theirs.
    pub async fn revoke_session(&self, id: Uuid, user_id: Uuid) -> Result<bool, DbError> {
        let mut conn = self.write().await?;
        let n = self
            .run("revoke_session", Target::Primary, async {
                dispatch!(conn, c => diesel::update(sessions::table
                        .filter(sessions::id.eq(DbUuid(id)))
                        .filter(sessions::user_id.eq(DbUuid(user_id)))
                        .filter(sessions::revoked_at.is_null()))
                    .set(sessions::revoked_at.eq(Some(DbTime::now())))
                    .execute(c)
                    .await)
            })
            .await?;
        self.wrote(user_id).await;
        Ok(n > 0)
    }

    /// Presents the refresh token hashed `presented`: when it is unused, younger than
    /// `issued_after` and its session live, marks it used and stores `successor` in its place.
    /// A token used before revokes its session. One transaction; see [`Rotation`].
    pub async fn rotate_refresh_token(
        &self,
        presented: &str,
        successor: &str,
        issued_after: chrono::DateTime<chrono::Utc>,
    ) -> Result<Rotation, DbError> {
        let now = DbTime::now();
        let issued_after = DbTime(issued_after);
        let mut conn = self.write().await?;
        let outcome = self
            .run("rotate_refresh_token", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    // The write comes first: on SQLite it takes the write lock at once (no
                    // read-to-write upgrade to deadlock on); on PostgreSQL it locks the row.
                    let marked = diesel::update(refresh_tokens::table
                            .filter(refresh_tokens::token_hash.eq(presented))
                            .filter(refresh_tokens::used_at.is_null())
                            .filter(refresh_tokens::issued_at.gt(issued_after)))
                        .set(refresh_tokens::used_at.eq(Some(now)))
                        .execute(c)
                        .await?;
                    let found: Option<(DbUuid, DbUuid, Option<DbTime>, Option<DbTime>)> = refresh_tokens::table
                        .inner_join(sessions::table)
                        .filter(refresh_tokens::token_hash.eq(presented))
                        .select((sessions::id, sessions::user_id, refresh_tokens::used_at, sessions::revoked_at))
                        .first(c)
                        .await
                        .optional()?;
                    let Some((session_id, user_id, used_at, revoked_at)) = found else {
                        return Ok::<Rotation, diesel::result::Error>(Rotation::Unknown);
                    };
                    let session = SessionRef { session_id: session_id.0, user_id: user_id.0 };
                    if marked == 1 {
                        if revoked_at.is_some() {
                            return Ok(Rotation::Revoked(session));
                        }
                        diesel::insert_into(refresh_tokens::table)
                            .values(&InsertToken { token_hash: successor, session_id, issued_at: now })
                            .execute(c)
                            .await?;
                        diesel::update(sessions::table.find(session_id))
                            .set(sessions::last_used_at.eq(now))
                            .execute(c)
                            .await?;
                        return Ok(Rotation::Rotated(session));
                    }
                    if used_at.is_none() {
                        // Unused but not marked: only the age filter can have excluded it.
                        return Ok(Rotation::Expired);
                    }
                    if revoked_at.is_some() {
                        return Ok(Rotation::Revoked(session));
                    }
                    diesel::update(sessions::table.find(session_id).filter(sessions::revoked_at.is_null()))
                        .set(sessions::revoked_at.eq(Some(now)))
                        .execute(c)
                        .await?;
                    Ok(Rotation::Reused(session))
                }).await)
            })
            .await?;
        if let Rotation::Rotated(s) | Rotation::Reused(s) = &outcome {
            self.wrote(s.user_id).await;
        }
        Ok(outcome)
    }
}
