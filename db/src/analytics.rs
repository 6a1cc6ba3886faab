//! The analytics repository: events written in batches, daily partitions on PostgreSQL, and
//! retention (dropping whole partitions on PostgreSQL, deleting rows on SQLite).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use uuid::Uuid;

use crate::pool::{Db, Target};
use crate::schema::analytics_events;
use crate::sql_types::{DbTime, DbUuid};
use crate::{Conn, DbError, dispatch};

/// One event to store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewEvent {
    /// Chosen when the event is accepted, so a batch written twice (a retried job) stores
    /// each event once.
    pub id: Uuid,
    /// When the server received it (the partition key).
    pub received_at: DateTime<Utc>,
    /// When the client says it happened.
    pub occurred_at: DateTime<Utc>,
    /// `signed_up`, `screen.viewed`, …
    pub name: String,
    /// `client` or `server`.
    pub source: String,
    /// Who, when signed in.
    pub user_id: Option<Uuid>,
    /// A JSON object.
    pub properties: String,
}

#[derive(Insertable)]
#[diesel(table_name = analytics_events)]
struct Insert<'a> {
    id: DbUuid,
    received_at: DbTime,
    occurred_at: DbTime,
    name: &'a str,
    source: &'a str,
    user_id: Option<DbUuid>,
    properties: &'a str,
}

/// The partition of `day` (PostgreSQL).
fn partition_name(day: NaiveDate) -> String {
    format!("analytics_events_p{}", day.format("%Y%m%d"))
}

/// The DDL creating the partition of `day` if it does not exist. Dates are formatted by us, so
/// the statement carries no user input.
fn create_partition_sql(day: NaiveDate) -> String {
    let next = day.succ_opt().unwrap_or(day);
    format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF analytics_events FOR VALUES FROM ('{} 00:00:00+00') TO ('{} 00:00:00+00')",
        partition_name(day),
        day.format("%Y-%m-%d"),
        next.format("%Y-%m-%d"),
    )
}

#[derive(QueryableByName)]
struct PartitionRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

impl Db {
    /// Creates the PostgreSQL partitions of the `days` (no-op on SQLite).
    pub async fn ensure_analytics_partitions(&self, days: &[NaiveDate]) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        if let Conn::Pg(c) = &mut conn {
            let c: &mut crate::conn::PgConn = c;
            let sql: Vec<String> = days.iter().map(|d| create_partition_sql(*d)).collect();
            let sql = sql.join(";\n");
            self.run("ensure_analytics_partitions", Target::Primary, async {
                c.batch_execute(&sql).await
            })
            .await?;
        }
        Ok(())
    }

    /// Inserts a batch of events in one transaction (PostgreSQL partitions for their days are
    /// created first).
    pub async fn insert_analytics_events(&self, events: &[NewEvent]) -> Result<usize, DbError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut days: Vec<NaiveDate> = events.iter().map(|e| e.received_at.date_naive()).collect();
        days.sort_unstable();
        days.dedup();
        self.ensure_analytics_partitions(&days).await?;
        let rows: Vec<Insert<'_>> = events
            .iter()
            .map(|e| Insert {
                id: DbUuid(e.id),
                received_at: DbTime::truncate(e.received_at),
                occurred_at: DbTime::truncate(e.occurred_at),
                name: &e.name,
                source: &e.source,
                user_id: e.user_id.map(DbUuid),
                properties: &e.properties,
            })
            .collect();
        let mut conn = self.write().await?;
        let inserted = self
            .run("insert_analytics_events", Target::Primary, async {
                match &mut conn {
                    Conn::Pg(c) => {
                        let c: &mut crate::conn::PgConn = c;
                        c.transaction(async |c| {
                            let mut n = 0;
                            // Bounded statements (PostgreSQL allows 65535 bind parameters).
                            for chunk in rows.chunks(1000) {
                                n += diesel::insert_into(analytics_events::table)
                                    .values(chunk)
                                    .on_conflict_do_nothing()
                                    .execute(c)
                                    .await?;
                            }
                            Ok::<_, diesel::result::Error>(n)
                        })
                        .await
                    }
                    // Diesel has no multi-row upsert for SQLite; one writer in one transaction
                    // makes row-at-a-time cheap.
                    Conn::Sqlite(c) => {
                        let c: &mut crate::conn::SqliteConn = c;
                        c.transaction(async |c| {
                            let mut n = 0;
                            for row in &rows {
                                n += diesel::insert_into(analytics_events::table)
                                    .values(row)
                                    .on_conflict_do_nothing()
                                    .execute(c)
                                    .await?;
                            }
                            Ok::<_, diesel::result::Error>(n)
                        })
                        .await
                    }
                }
            })
            .await?;
        Ok(inserted)
    }

    /// Drops what is older than `before` (whole daily partitions on PostgreSQL, rows on
    /// SQLite); answers how many partitions (PostgreSQL) or rows (SQLite) went.
    pub async fn purge_analytics_before(&self, before: DateTime<Utc>) -> Result<u64, DbError> {
        let mut conn = self.write().await?;
        match &mut conn {
            Conn::Pg(c) => {
                let c: &mut crate::conn::PgConn = c;
                let parts: Vec<PartitionRow> = self
                    .run("list_analytics_partitions", Target::Primary, async {
                        diesel::sql_query(
                            "SELECT c.relname AS name FROM pg_inherits i \
                             JOIN pg_class c ON c.oid = i.inhrelid \
                             JOIN pg_class p ON p.oid = i.inhparent \
                             WHERE p.relname = 'analytics_events'",
                        )
                        .load(c)
                        .await
                    })
                    .await?;
                let cutoff = partition_name(before.date_naive());
                // Names sort by day; a partition ends before `before`'s day when its name sorts
                // below the cutoff's.
                let old: Vec<String> = parts
                    .into_iter()
                    .map(|p| p.name)
                    .filter(|n| {
                        n.starts_with("analytics_events_p")
                            && n.len() == cutoff.len()
                            && *n < cutoff
                    })
                    .collect();
                for name in &old {
                    let sql = format!("DROP TABLE IF EXISTS {name}");
                    self.run("drop_analytics_partition", Target::Primary, async {
                        c.batch_execute(&sql).await
                    })
                    .await?;
                }
                Ok(old.len() as u64)
            }
            Conn::Sqlite(c) => {
                let c: &mut crate::conn::SqliteConn = c;
                let n = self
                    .run("purge_analytics", Target::Primary, async {
                        diesel::delete(
                            analytics_events::table
                                .filter(analytics_events::received_at.lt(DbTime::truncate(before))),
                        )
                        .execute(c)
                        .await
                    })
                    .await?;
                Ok(n as u64)
            }
        }
    }

    /// Events stored under `name` (for tests and operators).
    pub async fn count_analytics_events(&self, name: &str) -> Result<i64, DbError> {
        let mut conn = self.write().await?;
        self.run("count_analytics_events", Target::Primary, async {
            dispatch!(conn, c => analytics_events::table
                .filter(analytics_events::name.eq(name))
                .count()
                .get_result(c)
                .await)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_named_and_bounded_by_utc_day() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
        assert_eq!(partition_name(day), "analytics_events_p20261231");
        let sql = create_partition_sql(day);
        assert!(
            sql.contains("FROM ('2026-12-31 00:00:00+00') TO ('2027-01-01 00:00:00+00')"),
            "{sql}"
        );
    }
}
