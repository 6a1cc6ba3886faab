//! Agora's database layer. One repository code base runs on PostgreSQL (primary plus read
//! replicas, through tokio-postgres) and on embedded SQLite (bundled, WAL), with diesel-async and
//! bb8 pools. Writes go to the primary; reads go to a healthy replica, fall back to the primary
//! (counted), and stay on the primary for a while after the same user wrote (read-your-writes).
//!
//! Repositories write one diesel query and run it on either backend with [`dispatch!`]; they
//! return domain types and [`DbError`], never diesel types.

pub mod analytics;
pub mod audit;
pub mod chat;
pub mod config;
mod conn;
pub mod deliveries;
mod error;
pub mod feed;
pub mod jobs;
pub mod migrate;
pub mod notifications;
mod pool;
pub mod posts;
mod routing;
pub mod schema;
pub mod seed;
pub mod sessions;
pub mod social;
pub mod sql_types;
#[cfg(feature = "testing")]
pub mod testing;
mod text_enum;
pub mod users;

pub use config::{Backend, DbConfig};
pub use conn::Conn;

/// The concrete connection types, for code that needs to name them.
pub mod conn_types {
    pub use crate::conn::{PgConn, SqliteConn};
}
pub use error::DbError;
pub use pool::{Db, PoolStats, Target};
pub use routing::{MarkFuture, ReadPolicy, WriteMarks};
