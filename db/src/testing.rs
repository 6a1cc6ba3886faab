//! Test harness: every test gets its own database — a PostgreSQL database cloned from a migrated
//! template (so tests run in parallel and leave nothing behind), or a fresh SQLite file.
//!
//! PostgreSQL tests read `AGORA_TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`).
//! Without it they print that they were skipped; with `CI=true` a missing URL is a failure.

use std::path::PathBuf;

use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use tokio::sync::OnceCell;

use crate::conn::PgConn;
use crate::{Db, DbConfig, migrate};

/// A database for one test; dropped (PostgreSQL) or deleted (SQLite) at the end.
pub struct TestDb {
    /// The database under test, migrated.
    pub db: Db,
    /// Its configuration (URL included), to build more pools or servers on it.
    pub config: DbConfig,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("url", &self.config.url)
            .finish()
    }
}

/// `AGORA_TEST_DATABASE_URL`, or `None` (after saying so) when PostgreSQL tests are skipped.
pub fn postgres_url() -> Option<String> {
    match std::env::var("AGORA_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but AGORA_TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI"
            )
        }
        _ => {
            eprintln!("skipped: AGORA_TEST_DATABASE_URL is not set (PostgreSQL tests need it)");
            None
        }
    }
}

impl TestDb {
    /// A migrated SQLite database in a temp file.
    pub async fn sqlite() -> TestDb {
        Self::sqlite_with(DbConfig::default()).await
    }

    /// Like [`TestDb::sqlite`] with settings (the URL is replaced).
    pub async fn sqlite_with(mut config: DbConfig) -> TestDb {
        let path = std::env::temp_dir().join(format!("agora-test-{}.db", uuid::Uuid::new_v4()));
        config.url = format!("sqlite://{}", path.display());
        let db = Db::connect(&config).await.expect("sqlite opens");
        migrate::up(&db).await.expect("migrations apply on sqlite");
        TestDb {
            db,
            config,
            cleanup: Cleanup::Sqlite(path),
        }
    }

    /// A fresh database of `backend` with nothing applied (for migration tests), or `None`
    /// when PostgreSQL tests are skipped.
    pub async fn empty(backend: crate::Backend) -> Option<TestDb> {
        match backend {
            crate::Backend::Sqlite => {
                let path =
                    std::env::temp_dir().join(format!("agora-empty-{}.db", uuid::Uuid::new_v4()));
                let config = DbConfig {
                    url: format!("sqlite://{}", path.display()),
                    ..DbConfig::default()
                };
                let db = Db::connect(&config).await.expect("sqlite opens");
                Some(TestDb {
                    db,
                    config,
                    cleanup: Cleanup::Sqlite(path),
                })
            }
            crate::Backend::Postgres => {
                let admin_url = postgres_url()?;
                let name = format!("agora_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConn::establish(&admin_url)
                    .await
                    .expect("admin connection");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create database");
                let config = DbConfig {
                    url: with_database(&admin_url, &name),
                    ..DbConfig::default()
                };
                let db = Db::connect(&config).await.expect("opens");
                Some(TestDb {
                    db,
                    config,
                    cleanup: Cleanup::Postgres { admin_url, name },
                })
            }
        }
    }

    /// A migrated PostgreSQL database of its own, or `None` when PostgreSQL tests are skipped.
    pub async fn postgres() -> Option<TestDb> {
        Self::postgres_with(DbConfig::default()).await
    }

    /// Like [`TestDb::postgres`] with settings (the URL is replaced).
    pub async fn postgres_with(mut config: DbConfig) -> Option<TestDb> {
        let admin_url = postgres_url()?;
        let template = template(&admin_url).await;
        let name = format!("agora_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConn::establish(&admin_url)
            .await
            .expect("admin connection");
        // Two clones of one template at the same instant can collide; retry briefly.
        let mut attempt = 0;
        loop {
            match admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .await
            {
                Ok(()) => break,
                Err(e)
                    if attempt < 20 && e.to_string().contains("being accessed by other users") =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => panic!("CREATE DATABASE {name}: {e}"),
            }
        }
        config.url = with_database(&admin_url, &name);
        let db = Db::connect(&config).await.expect("test database opens");
        Some(TestDb {
            db,
            config,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }
}

/// The migrated template for this binary's migrations (named by their checksums, so a changed
/// migration gets a new template), created once per process and reused across runs.
async fn template(admin_url: &str) -> String {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let all: String = migrate::EMBEDDED.iter().map(|m| migrate::checksum(m.postgres)).collect();
            let name = format!("agora_tpl_{}", &migrate::checksum(&all)[..16]);
            let mut admin = PgConn::establish(admin_url).await.expect("admin connection");
            let exists = admin.batch_execute(&format!("CREATE DATABASE {name}")).await.is_err();
            if !exists {
                let config = DbConfig { url: with_database(admin_url, &name), ..DbConfig::default() };
                let db = Db::connect(&config).await.expect("template opens");
                if let Err(e) = migrate::up(&db).await {
                    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    panic!("migrating the template failed: {e}");
                }
                // Clone sources must have no connections.
                drop(db);
                let _ = admin
                    .batch_execute(&format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    ))
                    .await;
            }
            name
        })
        .await
        .clone()
}

/// The same server URL pointing at another database.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rsplit_once('/') {
        Some((server, _)) if server.contains("://") && !server.ends_with('/') => server.to_owned(),
        _ => base.trim_end_matches('/').to_owned(),
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                // Drop runs outside async; use a small runtime on its own thread.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async {
                        if let Ok(mut admin) = PgConn::establish(&admin_url).await {
                            let _ = admin
                                .batch_execute(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Runs a test body on both backends: `both_backends!(name, |t| async move { ... })`, where `t`
/// is a [`TestDb`]. The PostgreSQL variant is skipped (with a message) outside CI when no
/// `AGORA_TEST_DATABASE_URL` is set.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$t:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $t = $crate::testing::TestDb::sqlite().await;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($t) = $crate::testing::TestDb::postgres().await else {
                    return;
                };
                $body.await;
            }
        }
    };
}

/// The number of rows in every table of `db` (migration bookkeeping excluded), for tests that
/// show a refused or failed request wrote nothing: compare the counts before and after.
pub async fn row_counts(
    db: &Db,
) -> Result<std::collections::BTreeMap<String, i64>, crate::DbError> {
    use diesel::QueryableByName;
    use diesel::sql_types::{BigInt, Text};
    use diesel_async::RunQueryDsl;

    #[derive(QueryableByName)]
    struct Table {
        #[diesel(sql_type = Text)]
        name: String,
    }
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let catalog = match db.backend() {
        crate::Backend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        crate::Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
    };
    let mut conn = db.write().await?;
    let tables: Vec<Table> = db
        .run("test_catalog", crate::Target::Primary, async {
            crate::dispatch!(conn, c => diesel::sql_query(catalog).load(c).await)
        })
        .await?;
    let mut counts = std::collections::BTreeMap::new();
    for table in tables {
        if table.name.starts_with("agora_migration") || table.name == "__diesel_schema_migrations" {
            continue;
        }
        // Table names come from the catalog, not from input.
        let sql = format!("SELECT COUNT(*) AS n FROM \"{}\"", table.name);
        let count: Count = db
            .run("test_count", crate::Target::Primary, async {
                crate::dispatch!(conn, c => diesel::sql_query(&sql).get_result(c).await)
            })
            .await?;
        counts.insert(table.name, count.n);
    }
    Ok(counts)
}

/// Makes every `op` (`INSERT`, `UPDATE` or `DELETE`) on `table` fail from now on, with a trigger
/// that raises: a real database failure in the middle of a transaction, for tests that show a
/// multi-statement write leaves nothing behind. [`stop_failing`] removes it.
pub async fn fail_writes_to(db: &Db, table: &str, op: &str) -> Result<(), crate::DbError> {
    let name = format!("agora_test_fail_{table}_{}", op.to_lowercase());
    let sql = match db.backend() {
        crate::Backend::Postgres => format!(
            "CREATE OR REPLACE FUNCTION agora_test_fail() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER {name} BEFORE {op} ON {table} FOR EACH ROW EXECUTE FUNCTION agora_test_fail();"
        ),
        crate::Backend::Sqlite => format!(
            "CREATE TRIGGER {name} BEFORE {op} ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ),
    };
    batch(db, &sql).await
}

/// Removes what [`fail_writes_to`] installed.
pub async fn stop_failing(db: &Db, table: &str, op: &str) -> Result<(), crate::DbError> {
    let name = format!("agora_test_fail_{table}_{}", op.to_lowercase());
    let sql = match db.backend() {
        crate::Backend::Postgres => format!("DROP TRIGGER IF EXISTS {name} ON {table};"),
        crate::Backend::Sqlite => format!("DROP TRIGGER IF EXISTS {name};"),
    };
    batch(db, &sql).await
}

async fn batch(db: &Db, sql: &str) -> Result<(), crate::DbError> {
    let mut conn = db.write().await?;
    db.run("test_ddl", crate::Target::Primary, async {
        crate::dispatch!(conn, c => c.batch_execute(sql).await)
    })
    .await
}

/// Retries `f` every 20 ms until it returns `Some`, failing the test after 60 s: for effects
/// that happen in the background (replication, workers). A bound on liveness, not a timing
/// assertion.
pub async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
