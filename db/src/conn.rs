//! A pooled connection to either backend, and [`dispatch!`], which runs the same diesel query on
//! whichever backend the connection is — each expansion type-checked against its own backend.

use diesel::SqliteConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

/// An async PostgreSQL connection.
pub type PgConn = AsyncPgConnection;
/// A SQLite connection driven from async code (queries run on the blocking pool).
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
pub(crate) type PgManager = AsyncDieselConnectionManager<PgConn>;
pub(crate) type SqliteManager = AsyncDieselConnectionManager<SqliteConn>;

/// A pooled SQLite connection, holding the process's write turn when it was checked out for
/// writing.
pub struct SqlitePooled {
    pub(crate) conn: bb8::PooledConnection<'static, SqliteManager>,
    pub(crate) _write_turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for SqlitePooled {
    type Target = SqliteConn;

    fn deref(&self) -> &SqliteConn {
        &self.conn
    }
}

impl std::ops::DerefMut for SqlitePooled {
    fn deref_mut(&mut self) -> &mut SqliteConn {
        &mut self.conn
    }
}

/// A connection checked out of a pool; returned to it on drop.
#[expect(
    clippy::large_enum_variant,
    reason = "a Conn lives on one stack frame for one query; boxing would allocate per checkout"
)]
pub enum Conn {
    /// PostgreSQL.
    Pg(bb8::PooledConnection<'static, PgManager>),
    /// SQLite.
    Sqlite(SqlitePooled),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Pg(_) => "Conn::Pg",
            Conn::Sqlite(_) => "Conn::Sqlite",
        })
    }
}

/// Runs `$body` with `$c` bound to the concrete connection of `$conn` (a `Conn` place).
///
/// ```ignore
/// let user = dispatch!(conn, c => users::table.find(id).first::<UserRow>(c).await)?;
/// ```
#[macro_export]
macro_rules! dispatch {
    ($conn:expr, $c:ident => $body:expr) => {
        match &mut $conn {
            $crate::Conn::Pg(pooled) => {
                let $c: &mut $crate::conn_types::PgConn = &mut **pooled;
                $body
            }
            $crate::Conn::Sqlite(pooled) => {
                let $c: &mut $crate::conn_types::SqliteConn = &mut **pooled;
                $body
            }
        }
    };
}
