//! Forward-only, checksummed migrations, embedded in the binary.
//!
//! Each applied migration's SHA-256 (of its `up.sql`, line endings normalized) is recorded in
//! `agora_migration_checksums`. A recorded checksum that no longer matches the embedded one means
//! the migration was edited after it ran: the server refuses to start. Versions the database has
//! but this binary does not know are accepted with a warning — a newer release ran its expand
//! step — which is what makes rolling deploys and rollbacks possible.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use sha2::{Digest, Sha256};

use crate::config::Backend;
use crate::pool::{Db, Target};
use crate::sql_types::DbTime;
use crate::{Conn, DbError, dispatch};

/// One migration as compiled into the binary.
#[derive(Debug)]
pub struct Embedded {
    /// Version (the folder's number).
    pub version: u32,
    /// Name (the folder's name after the number).
    pub name: &'static str,
    /// `migrations/postgres/NNNN_name/up.sql`.
    pub postgres: &'static str,
    /// `migrations/sqlite/NNNN_name/up.sql`.
    pub sqlite: &'static str,
}

impl Embedded {
    /// The SQL for `backend`.
    pub fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Postgres => self.postgres,
            Backend::Sqlite => self.sqlite,
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// SHA-256 of a migration's SQL with CRLF/CR normalized to LF, lowercase hex.
pub fn checksum(sql: &str) -> String {
    let normalized = sql.replace("\r\n", "\n").replace('\r', "\n");
    let digest = Sha256::digest(normalized.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::UtcTime;

    /// What was applied, with the checksum it had.
    agora_migration_checksums (version) {
        version -> BigInt,
        name -> Text,
        sha256 -> Text,
        applied_at -> UtcTime,
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = agora_migration_checksums)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct Recorded {
    version: i64,
    name: String,
    sha256: String,
    applied_at: DbTime,
}

/// The state of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Applied, and its checksum matches.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the embedded SQL changed since: refuse to run.
    Mismatch {
        /// The checksum recorded when it was applied.
        recorded: String,
    },
    /// Applied by a newer binary; this one does not know it (accepted with a warning).
    Unknown,
}

/// One line of `agora migrate status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Version.
    pub version: u32,
    /// Name.
    pub name: String,
    /// The checksum this binary has (for `Unknown`: the recorded one).
    pub sha256: String,
    /// When it was applied, if it was.
    pub applied_at: Option<chrono::DateTime<chrono::Utc>>,
    /// State.
    pub state: State,
}

/// Every version, embedded or recorded, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The entries, by version.
    pub entries: Vec<Entry>,
}

impl Status {
    /// Versions not applied yet.
    pub fn pending(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.state == State::Pending)
            .collect()
    }

    /// Versions whose checksum changed.
    pub fn mismatches(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, State::Mismatch { .. }))
            .collect()
    }

    /// Versions only the database knows.
    pub fn unknown(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.state == State::Unknown)
            .collect()
    }

    /// Problems that make `verify` fail and the server refuse to start (mismatches), each
    /// naming the version and both checksums.
    pub fn refusals(&self) -> Vec<String> {
        self.mismatches()
            .iter()
            .map(|e| match &e.state {
                State::Mismatch { recorded } => format!(
                    "migration {:04}_{} was changed after it was applied: recorded sha256 {recorded}, this binary has {}",
                    e.version, e.name, e.sha256
                ),
                _ => String::new(),
            })
            .collect()
    }

    /// A table for humans.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "version  state      sha256            applied_at                   name\n",
        );
        for e in &self.entries {
            let state = match &e.state {
                State::Applied => "applied",
                State::Pending => "pending",
                State::Mismatch { .. } => "MISMATCH",
                State::Unknown => "unknown",
            };
            let at = e
                .applied_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "{:04}     {state:<10} {:<16}  {at:<28} {}\n",
                e.version,
                &e.sha256[..16.min(e.sha256.len())],
                e.name
            ));
        }
        out
    }
}

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// An applied migration was edited.
    #[error("{}", .0.join("; "))]
    Tampered(Vec<String>),
    /// The database failed.
    #[error("migration {version:04}_{name} failed: {source}")]
    Failed {
        /// Version.
        version: u32,
        /// Name.
        name: String,
        /// Cause.
        source: DbError,
    },
    /// Reading the state failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

const CREATE_TABLE_PG: &str = "CREATE TABLE IF NOT EXISTS agora_migration_checksums (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)";
const CREATE_TABLE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS agora_migration_checksums (
    version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at BIGINT NOT NULL)";
/// Serializes concurrent migrators (instances starting together) on PostgreSQL.
const PG_ADVISORY_LOCK: i64 = 0x6167_6f72_615f_6d67; // "agora_mg"

/// Compares the database's record with the embedded migrations.
pub async fn status(db: &Db) -> Result<Status, DbError> {
    status_with(db, EMBEDDED).await
}

/// `status` against an explicit migration list (tests use this to simulate other binaries).
pub async fn status_with(db: &Db, embedded: &[Embedded]) -> Result<Status, DbError> {
    let mut conn = db.write().await?;
    status_on_conn(db, &mut conn, embedded).await
}

async fn status_on_conn(
    db: &Db,
    conn: &mut Conn,
    embedded: &[Embedded],
) -> Result<Status, DbError> {
    let backend = db.backend();
    let create = match backend {
        Backend::Postgres => CREATE_TABLE_PG,
        Backend::Sqlite => CREATE_TABLE_SQLITE,
    };
    db.run("migrate.create_table", Target::Primary, async {
        dispatch!(*conn, c => c.batch_execute(create).await)
    })
    .await?;
    let recorded: Vec<Recorded> = db
        .run("migrate.status", Target::Primary, async {
            dispatch!(*conn, c => agora_migration_checksums::table
                .select(Recorded::as_select())
                .order(agora_migration_checksums::version)
                .load(c)
                .await)
        })
        .await?;
    let mut entries = Vec::new();
    for m in embedded {
        let sha = checksum(m.sql(backend));
        let found = recorded.iter().find(|r| r.version == i64::from(m.version));
        let (state, applied_at) = match found {
            None => (State::Pending, None),
            Some(r) if r.sha256 == sha => (State::Applied, Some(r.applied_at.0)),
            Some(r) => (
                State::Mismatch {
                    recorded: r.sha256.clone(),
                },
                Some(r.applied_at.0),
            ),
        };
        entries.push(Entry {
            version: m.version,
            name: m.name.to_owned(),
            sha256: sha,
            applied_at,
            state,
        });
    }
    for r in &recorded {
        if !embedded.iter().any(|m| i64::from(m.version) == r.version) {
            entries.push(Entry {
                version: u32::try_from(r.version).unwrap_or(u32::MAX),
                name: r.name.clone(),
                sha256: r.sha256.clone(),
                applied_at: Some(r.applied_at.0),
                state: State::Unknown,
            });
        }
    }
    entries.sort_by_key(|e| e.version);
    Ok(Status { entries })
}

/// Applies pending migrations in order, each in its own transaction together with its checksum
/// record. Refuses (and applies nothing) when an applied migration was edited. Returns the
/// versions applied.
pub async fn up(db: &Db) -> Result<Vec<u32>, MigrateError> {
    up_with(db, EMBEDDED).await
}

/// `up` with an explicit migration list (tests).
pub async fn up_with(db: &Db, embedded: &[Embedded]) -> Result<Vec<u32>, MigrateError> {
    let backend = db.backend();
    let mut lock = db.write().await?;
    if backend == Backend::Postgres {
        db.run("migrate.lock", Target::Primary, async {
            dispatch!(lock, c => c.batch_execute(&format!("SELECT pg_advisory_lock({PG_ADVISORY_LOCK})")).await)
        })
        .await?;
    }
    // One connection for the whole run: it holds the advisory lock, and a pool of one suffices.
    let result = apply_pending(db, &mut lock, embedded).await;
    if backend == Backend::Postgres {
        // Also released when the connection closes; unlock explicitly so the pooled connection
        // does not keep it.
        let _ = db
            .run("migrate.unlock", Target::Primary, async {
                dispatch!(lock, c => c.batch_execute(&format!("SELECT pg_advisory_unlock({PG_ADVISORY_LOCK})")).await)
            })
            .await;
    }
    result
}

async fn apply_pending(
    db: &Db,
    conn: &mut Conn,
    embedded: &[Embedded],
) -> Result<Vec<u32>, MigrateError> {
    let backend = db.backend();
    let status = status_on_conn(db, conn, embedded).await?;
    let refusals = status.refusals();
    if !refusals.is_empty() {
        return Err(MigrateError::Tampered(refusals));
    }
    let mut applied = Vec::new();
    for entry in status.pending() {
        let Some(m) = embedded.iter().find(|m| m.version == entry.version) else {
            continue;
        };
        let sql = m.sql(backend);
        let record = (
            agora_migration_checksums::version.eq(i64::from(m.version)),
            agora_migration_checksums::name.eq(m.name),
            agora_migration_checksums::sha256.eq(checksum(sql)),
            agora_migration_checksums::applied_at.eq(DbTime::now()),
        );
        let result = db
            .run("migrate.apply", Target::Primary, async {
                dispatch!(*conn, c => c.transaction(async |c| {
                    c.batch_execute(sql).await?;
                    diesel::insert_into(agora_migration_checksums::table).values(record).execute(c).await?;
                    Ok::<(), diesel::result::Error>(())
                }).await)
            })
            .await;
        result.map_err(|source| MigrateError::Failed {
            version: m.version,
            name: m.name.to_owned(),
            source,
        })?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        applied.push(m.version);
    }
    Ok(applied)
}

/// What start-up should do given the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupCheck {
    /// Everything applied (maybe with newer unknown versions, logged as a warning).
    Ready,
    /// Versions are pending and auto-apply is off: stay not-ready, naming the first.
    Behind {
        /// The first pending version, `NNNN_name`.
        first_pending: String,
    },
}

/// The start-up gate: refuse on tampering, apply or report pending versions, warn on unknown ones.
pub async fn check_at_startup(db: &Db, auto_apply: bool) -> Result<StartupCheck, MigrateError> {
    let status = status(db).await?;
    let refusals = status.refusals();
    if !refusals.is_empty() {
        return Err(MigrateError::Tampered(refusals));
    }
    for e in status.unknown() {
        tracing::warn!(
            version = e.version,
            name = %e.name,
            "the database has a migration this binary does not know (a newer release ran it); continuing"
        );
    }
    let pending = status.pending();
    if pending.is_empty() {
        return Ok(StartupCheck::Ready);
    }
    if auto_apply {
        up(db).await?;
        return Ok(StartupCheck::Ready);
    }
    let first = pending[0];
    Ok(StartupCheck::Behind {
        first_pending: format!("{:04}_{}", first.version, first.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_ignore_line_endings() {
        assert_eq!(checksum("a\r\nb\n"), checksum("a\nb\n"));
        assert_ne!(checksum("a\nb\n"), checksum("a\nc\n"));
        assert_eq!(checksum("").len(), 64);
    }

    #[test]
    fn embedded_versions_are_ordered_and_paired() {
        assert!(!EMBEDDED.is_empty());
        assert!(EMBEDDED.windows(2).all(|w| w[0].version < w[1].version));
        for m in EMBEDDED {
            assert!(
                !m.postgres.trim().is_empty() && !m.sqlite.trim().is_empty(),
                "{}",
                m.name
            );
        }
    }
}
