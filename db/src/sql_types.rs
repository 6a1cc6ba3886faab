//! Column types that mean the same on both backends: a UUID (native `uuid` in PostgreSQL, a
//! 16-byte BLOB in SQLite) and a UTC timestamp with microsecond precision (`timestamptz` in
//! PostgreSQL, microseconds since the Unix epoch as BIGINT in SQLite). With these, one `table!`
//! schema serves both backends and the same query type-checks against each.

use std::io::Write;

use chrono::{DateTime, TimeZone, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sqlite::{Sqlite, SqliteValue};

/// SQL type of UUID columns.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Binary"))]
pub struct Uuid;

/// SQL type of timestamp columns.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Long"))]
pub struct UtcTime;

// Timestamps compare chronologically on both backends (timestamptz; microseconds as BIGINT), so
// MIN/MAX mean what they say.
impl diesel::sql_types::SqlOrd for UtcTime {}

/// A UUID value for [`Uuid`] columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[diesel(sql_type = Uuid)]
pub struct DbUuid(pub uuid::Uuid);

/// A UTC instant for [`UtcTime`] columns (microsecond precision on both backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[diesel(sql_type = UtcTime)]
pub struct DbTime(pub DateTime<Utc>);

impl DbTime {
    /// Now, truncated to microseconds so a value reads back exactly as written.
    pub fn now() -> Self {
        Self::from_micros(Utc::now().timestamp_micros())
    }

    /// `at`, truncated to the stored precision (microseconds), so comparisons with stored
    /// values mean the same on both backends.
    pub fn truncate(at: DateTime<Utc>) -> Self {
        Self::from_micros(at.timestamp_micros())
    }

    fn from_micros(micros: i64) -> Self {
        Self(Utc.timestamp_micros(micros).single().unwrap_or_default())
    }
}

impl ToSql<Uuid, Pg> for DbUuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<Uuid, Pg> for DbUuid {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        Ok(DbUuid(uuid::Uuid::from_slice(value.as_bytes())?))
    }
}

impl ToSql<Uuid, Sqlite> for DbUuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.as_bytes().as_slice());
        Ok(IsNull::No)
    }
}

impl FromSql<Uuid, Sqlite> for DbUuid {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        Ok(DbUuid(uuid::Uuid::from_slice(value.read_blob())?))
    }
}

/// PostgreSQL counts timestamps in microseconds from 2000-01-01.
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

impl ToSql<UtcTime, Pg> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let micros = self.0.timestamp_micros() - PG_EPOCH_OFFSET_MICROS;
        out.write_all(&micros.to_be_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<UtcTime, Pg> for DbTime {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let bytes: [u8; 8] = value
            .as_bytes()
            .try_into()
            .map_err(|_| "a timestamptz is 8 bytes")?;
        Ok(DbTime::from_micros(
            i64::from_be_bytes(bytes) + PG_EPOCH_OFFSET_MICROS,
        ))
    }
}

impl ToSql<UtcTime, Sqlite> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.timestamp_micros());
        Ok(IsNull::No)
    }
}

impl FromSql<UtcTime, Sqlite> for DbTime {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        Ok(DbTime::from_micros(value.read_long()))
    }
}
