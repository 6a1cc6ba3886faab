//! After migrating, PostgreSQL and SQLite have the same schema: tables, columns, nullability,
//! indexes (names and uniqueness). Types differ by design (see `agora_db::sql_types`).

use std::collections::BTreeSet;

use agora_db::testing::TestDb;
use agora_db::{Target, dispatch};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_async::RunQueryDsl;

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Bool)]
    not_null: bool,
}

#[derive(QueryableByName)]
struct Index {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    index_name: String,
    #[diesel(sql_type = BigInt)]
    is_unique: i64,
}

type Shape = (
    BTreeSet<(String, String, bool)>,
    BTreeSet<(String, String, bool)>,
);

async fn pg_shape(t: &TestDb) -> Shape {
    let mut conn = t.db.write().await.expect("conn");
    let columns: Vec<Column> = t
        .db
        .run("catalog", Target::Primary, async {
            dispatch!(conn, c => diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name, (is_nullable = 'NO') AS not_null
                 FROM information_schema.columns WHERE table_schema = 'public'"
            ).load(c).await)
        })
        .await
        .expect("columns");
    let indexes: Vec<Index> = t
        .db
        .run("catalog", Target::Primary, async {
            dispatch!(conn, c => diesel::sql_query(
                "SELECT t.relname::text AS table_name, i.relname::text AS index_name, (CASE WHEN ix.indisunique THEN 1 ELSE 0 END)::int8 AS is_unique
                 FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
                 JOIN pg_namespace n ON n.oid = t.relnamespace
                 WHERE n.nspname = 'public' AND NOT ix.indisprimary"
            ).load(c).await)
        })
        .await
        .expect("indexes");
    shape(columns, indexes)
}

async fn sqlite_shape(t: &TestDb) -> Shape {
    let mut conn = t.db.write().await.expect("conn");
    let columns: Vec<Column> = t
        .db
        .run("catalog", Target::Primary, async {
            dispatch!(conn, c => diesel::sql_query(
                "SELECT m.name AS table_name, p.name AS column_name, (p.\"notnull\" OR p.pk > 0) AS not_null
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
            ).load(c).await)
        })
        .await
        .expect("columns");
    let indexes: Vec<Index> =
        t.db.run("catalog", Target::Primary, async {
            dispatch!(conn, c => diesel::sql_query(
                "SELECT m.name AS table_name, l.name AS index_name, l.\"unique\" AS is_unique
                 FROM sqlite_master m JOIN pragma_index_list(m.name) l
                 WHERE m.type = 'table' AND l.origin = 'c'"
            ).load(c).await)
        })
        .await
        .expect("indexes");
    shape(columns, indexes)
}

fn shape(columns: Vec<Column>, indexes: Vec<Index>) -> Shape {
    (
        columns
            .into_iter()
            .map(|c| (c.table_name, c.column_name, c.not_null))
            .collect(),
        indexes
            .into_iter()
            .map(|i| (i.table_name, i.index_name, i.is_unique != 0))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_sqlite_schemas_match() {
    let Some(pg) = TestDb::postgres().await else {
        return;
    };
    let sqlite = TestDb::sqlite().await;
    let (pg_columns, pg_indexes) = pg_shape(&pg).await;
    let (sqlite_columns, sqlite_indexes) = sqlite_shape(&sqlite).await;
    assert!(!pg_columns.is_empty());
    let only_pg: Vec<_> = pg_columns.difference(&sqlite_columns).collect();
    let only_sqlite: Vec<_> = sqlite_columns.difference(&pg_columns).collect();
    assert!(
        only_pg.is_empty() && only_sqlite.is_empty(),
        "columns differ: only in postgres {only_pg:?}, only in sqlite {only_sqlite:?}"
    );
    assert_eq!(pg_indexes, sqlite_indexes, "indexes differ");
}
