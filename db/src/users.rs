//! The users repository: persistence of accounts, nothing else (rules live in services).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::audit::NewAuditEvent;
use crate::jobs::{JobWrites, NewJob};
use crate::pool::{Db, Target};
use crate::routing::ReadPolicy;
use crate::schema::{audit_events, users};
use crate::sessions::{NewSession, Session, SessionRows, SessionWrites};
use crate::sql_types::{DbTime, DbUuid};
use crate::text_enum::text_enum;
use crate::{DbError, dispatch};

text_enum! {
    /// What an account may do.
    pub enum Role {
        /// Every account.
        User => "user",
        /// Operators: the admin operations.
        Admin => "admin",
    }
}

impl Role {
    /// Whether holding this role grants `required`: `admin` may do what `user` may.
    pub fn grants(self, required: Role) -> bool {
        self == required || self == Role::Admin
    }

    /// The role stored as `text`; an unknown one (a bug, or a newer release's role) grants the
    /// least: `user`.
    pub(crate) fn stored(text: &str) -> Role {
        Role::parse(text).unwrap_or_else(|| {
            tracing::error!(role = text, "unknown stored role; treated as user");
            Role::User
        })
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUIDv7.
    pub id: Uuid,
    /// Unique case-insensitively.
    pub handle: String,
    /// Normalized (lowercase).
    pub email: String,
    /// Shown name.
    pub display_name: String,
    /// Profile text.
    pub bio: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// What the account may do.
    pub role: Role,
    /// Creation time (UTC, microseconds).
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last update (UTC, microseconds).
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Who someone is, in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// The user.
    pub id: Uuid,
    /// Their handle.
    pub handle: String,
    /// Their shown name.
    pub display_name: String,
    /// Their avatar.
    pub avatar_url: Option<String>,
}

/// What `create_user` needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Handle as typed (uniqueness ignores case).
    pub handle: String,
    /// Normalized email.
    pub email: String,
    /// Shown name.
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct Row {
    id: DbUuid,
    handle: String,
    email: String,
    display_name: String,
    bio: Option<String>,
    avatar_url: Option<String>,
    password_hash: String,
    role: String,
    created_at: DbTime,
    updated_at: DbTime,
}

impl From<Row> for User {
    fn from(r: Row) -> Self {
        User {
            id: r.id.0,
            handle: r.handle,
            email: r.email,
            display_name: r.display_name,
            bio: r.bio,
            avatar_url: r.avatar_url,
            password_hash: r.password_hash,
            role: Role::stored(&r.role),
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct Insert<'a> {
    id: DbUuid,
    handle: &'a str,
    email: &'a str,
    display_name: &'a str,
    password_hash: &'a str,
    created_at: DbTime,
    updated_at: DbTime,
}

impl<'a> Insert<'a> {
    fn new(new: &'a NewUser, id: Uuid) -> Self {
        let now = DbTime::now();
        Insert {
            id: DbUuid(id),
            handle: &new.handle,
            email: &new.email,
            display_name: &new.display_name,
            password_hash: &new.password_hash,
            created_at: now,
            updated_at: now,
        }
    }
}

impl Db {
    /// Inserts a user with a new UUIDv7: a fixture for tests (the API registers through
    /// [`Db::register_user`], which also starts the session). A taken handle or email is `DbError::Conflict` naming
    /// the index (`users_handle_key`, `users_email_key`).
    #[cfg(any(test, feature = "testing"))]
    pub async fn create_user(&self, new: &NewUser) -> Result<User, DbError> {
        let insert = Insert::new(new, Uuid::now_v7());
        let mut conn = self.write().await?;
        let row: Row = self
            .run("create_user", Target::Primary, async {
                dispatch!(conn, c => diesel::insert_into(users::table)
                    .values(&insert)
                    .returning(Row::as_returning())
                    .get_result(c)
                    .await)
            })
            .await
            .map_err(name_conflict)?;
        self.wrote(row.id.0).await;
        Ok(row.into())
    }

    /// Registration in one transaction: the account, its first session (with its refresh token)
    /// and the audit event, so a failure at any step leaves none of them. `rest` gets the new
    /// user's id and returns the session and the audit event to write with it. A taken handle or
    /// email is `DbError::Conflict` naming the index, and nothing is written.
    pub async fn register_user(
        &self,
        new: &NewUser,
        rest: impl FnOnce(Uuid) -> (NewSession, NewAuditEvent),
    ) -> Result<(User, Session), DbError> {
        let id = Uuid::now_v7();
        let insert = Insert::new(new, id);
        let (session, audit) = rest(id);
        let session_rows = SessionRows::new(&session);
        let event = audit.to_row();
        let mut conn = self.write().await?;
        let (user, session): (Row, crate::sessions::Row) = self
            .run("register_user", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let user: Row = diesel::insert_into(users::table)
                        .values(&insert)
                        .returning(Row::as_returning())
                        .get_result(c)
                        .await?;
                    let session = c.insert_session_in_txn(&session_rows).await?;
                    diesel::insert_into(audit_events::table).values(&event).execute(c).await?;
                    Ok::<_, diesel::result::Error>((user, session))
                }).await)
            })
            .await
            .map_err(name_conflict)?;
        self.wrote(id).await;
        Ok((user.into(), session.into()))
    }

    /// A password change in one transaction: the new hash, every other live session of the user
    /// revoked (all but `keep`), the audit event and `jobs`. Returns the revoked session ids;
    /// `DbError::NotFound` for an unknown user (nothing written).
    pub async fn change_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Uuid,
        audit: &NewAuditEvent,
        jobs: &[NewJob],
    ) -> Result<Vec<Uuid>, DbError> {
        let event = audit.to_row();
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let revoked: Vec<Uuid> = self
            .run("change_password", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let n = diesel::update(users::table.find(DbUuid(id)))
                        .set((users::password_hash.eq(password_hash), users::updated_at.eq(now)))
                        .execute(c)
                        .await?;
                    if n == 0 {
                        return Err(diesel::result::Error::NotFound);
                    }
                    let revoked = c.revoke_sessions_on_conn(id, Some(keep), now).await?;
                    diesel::insert_into(audit_events::table).values(&event).execute(c).await?;
                    c.enqueue_in_txn(jobs).await?;
                    Ok::<_, diesel::result::Error>(revoked)
                }).await)
            })
            .await?;
        self.jobs_committed(jobs);
        self.wrote(id).await;
        Ok(revoked)
    }

    /// The summaries (id, handle, names, avatar) of the users among `ids` that exist, in no
    /// particular order.
    pub async fn user_summaries(
        &self,
        ids: &[Uuid],
        policy: ReadPolicy,
    ) -> Result<Vec<UserSummary>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<DbUuid> = ids.iter().copied().map(DbUuid).collect();
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<(DbUuid, String, String, Option<String>)> = self
            .run("user_summaries", target, async {
                dispatch!(conn, c => users::table
                    .filter(users::id.eq_any(&ids))
                    .select((users::id, users::handle, users::display_name, users::avatar_url))
                    .load(c)
                    .await)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, handle, display_name, avatar_url)| UserSummary {
                id: id.0,
                handle,
                display_name,
                avatar_url,
            })
            .collect())
    }

    /// A user by id; `policy` routes the read (the user themself reads their own writes).
    pub async fn get_user(&self, id: Uuid, policy: ReadPolicy) -> Result<User, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let row: Row = self
            .run("get_user", target, async {
                dispatch!(conn, c => users::table.find(DbUuid(id)).select(Row::as_select()).first(c).await)
            })
            .await?;
        Ok(row.into())
    }
}

/// What `update_profile` changes: `None` keeps a field; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New bio, or `Some(None)` to clear it.
    pub bio: Option<Option<String>>,
    /// New avatar URL, or `Some(None)` to clear it.
    pub avatar_url: Option<Option<String>>,
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct Changes<'a> {
    display_name: Option<&'a str>,
    bio: Option<Option<&'a str>>,
    avatar_url: Option<Option<&'a str>>,
    updated_at: DbTime,
}

diesel::define_sql_function! {
    /// SQL `lower(text)`, on both backends (the handle index is on `lower(handle)`).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

impl Db {
    /// The user a sign-in names: by email when `login` contains `@` (compared normalized), else
    /// by handle regardless of case. Reads the primary: credentials feed a write decision.
    pub async fn find_user_by_login(&self, login: &str) -> Result<User, DbError> {
        let (mut conn, target) = self.read(ReadPolicy::Primary).await?;
        let row: Row = if login.contains('@') {
            let email = login.trim().to_lowercase();
            self.run("find_user_by_login", target, async {
                dispatch!(conn, c => users::table.filter(users::email.eq(&email)).select(Row::as_select()).first(c).await)
            })
            .await?
        } else {
            self.run("find_user_by_login", target, async {
                dispatch!(conn, c => users::table.filter(lower(users::handle).eq(lower(login))).select(Row::as_select()).first(c).await)
            })
            .await?
        };
        Ok(row.into())
    }

    /// A user by handle, regardless of case.
    pub async fn get_user_by_handle(
        &self,
        handle: &str,
        policy: ReadPolicy,
    ) -> Result<User, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let row: Row = self
            .run("get_user_by_handle", target, async {
                dispatch!(conn, c => users::table.filter(lower(users::handle).eq(lower(handle))).select(Row::as_select()).first(c).await)
            })
            .await?;
        Ok(row.into())
    }

    /// Sets the role (touches `updated_at`) and appends `audit`, in one transaction: a role never
    /// changes without its audit event. `DbError::NotFound` for an unknown id (nothing written).
    pub async fn set_user_role(
        &self,
        id: Uuid,
        role: Role,
        audit: &NewAuditEvent,
    ) -> Result<User, DbError> {
        let role = role.as_str();
        let event = audit.to_row();
        let mut conn = self.write().await?;
        let row: Row = self
            .run("set_user_role", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let row: Row = diesel::update(users::table.find(DbUuid(id)))
                        .set((users::role.eq(role), users::updated_at.eq(DbTime::now())))
                        .returning(Row::as_returning())
                        .get_result(c)
                        .await?;
                    diesel::insert_into(audit_events::table).values(&event).execute(c).await?;
                    Ok::<Row, diesel::result::Error>(row)
                }).await)
            })
            .await?;
        self.wrote(id).await;
        Ok(row.into())
    }

    /// Applies profile changes (touches `updated_at` even when nothing else changes).
    pub async fn update_profile(
        &self,
        id: Uuid,
        changes: &ProfileChanges,
    ) -> Result<User, DbError> {
        let set = Changes {
            display_name: changes.display_name.as_deref(),
            bio: changes.bio.as_ref().map(|b| b.as_deref()),
            avatar_url: changes.avatar_url.as_ref().map(|a| a.as_deref()),
            updated_at: DbTime::now(),
        };
        let mut conn = self.write().await?;
        let row: Row = self
            .run("update_profile", Target::Primary, async {
                dispatch!(conn, c => diesel::update(users::table.find(DbUuid(id)))
                    .set(&set)
                    .returning(Row::as_returning())
                    .get_result(c)
                    .await)
            })
            .await?;
        self.wrote(id).await;
        Ok(row.into())
    }
}

/// SQLite reports a unique violation by its columns, not the index name; name it as PostgreSQL does.
/// The constraint a taken handle violates (as [`DbError::Conflict`] names it).
pub const HANDLE_KEY: &str = "users_handle_key";
/// The constraint a taken email violates.
pub const EMAIL_KEY: &str = "users_email_key";

/// Names the unique index a conflicting insert hit the same way on both backends (SQLite reports
/// the column, PostgreSQL the index).
fn name_conflict(e: DbError) -> DbError {
    match e {
        DbError::Conflict { constraint } if constraint.contains("handle") => DbError::Conflict {
            constraint: HANDLE_KEY.into(),
        },
        DbError::Conflict { constraint } if constraint.contains("email") => DbError::Conflict {
            constraint: EMAIL_KEY.into(),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_admin_grants_user() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(*role));
        }
        assert!(Role::Admin.grants(Role::User) && Role::Admin.grants(Role::Admin));
        assert!(Role::User.grants(Role::User) && !Role::User.grants(Role::Admin));
        assert_eq!(
            Role::stored("superuser"),
            Role::User,
            "unknown grants the least"
        );
    }
}
