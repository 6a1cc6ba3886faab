//! `Db`: the primary pool, replica pools, and the routing, timeouts and metrics around them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::ConnectionResult;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use futures::FutureExt;
use futures::future::BoxFuture;
use tracing::Instrument;

use crate::config::{Backend, DbConfig, redact_url};
use crate::conn::{Conn, PgConn, PgManager, SqliteConn, SqliteManager};
use crate::error::DbError;
use crate::routing::{ReadPolicy, RecentWriters, WriteMarks};

enum Pool {
    Pg(bb8::Pool<PgManager>),
    Sqlite(bb8::Pool<SqliteManager>),
}

impl Pool {
    async fn get(&self) -> Result<Conn, DbError> {
        Ok(match self {
            Pool::Pg(p) => Conn::Pg(p.get_owned().await?),
            Pool::Sqlite(p) => Conn::Sqlite(crate::conn::SqlitePooled {
                conn: p.get_owned().await?,
                _write_turn: None,
            }),
        })
    }

    fn state(&self) -> bb8::State {
        match self {
            Pool::Pg(p) => p.state(),
            Pool::Sqlite(p) => p.state(),
        }
    }
}

struct Replica {
    label: String,
    pool: Pool,
    healthy: AtomicBool,
}

struct Inner {
    config: DbConfig,
    backend: Backend,
    primary: Pool,
    replicas: Vec<Replica>,
    recent_writers: RecentWriters,
    shared_marks: std::sync::OnceLock<Arc<dyn WriteMarks>>,
    job_wakeup: std::sync::OnceLock<Arc<dyn crate::jobs::JobWakeup>>,
    /// SQLite's one writer, taken in turn by this process's writes: a deferred transaction that
    /// read before it writes cannot wait for the file lock (SQLite answers `database is locked`
    /// at once rather than break its snapshot), so writers queue here instead.
    sqlite_write_turn: Arc<tokio::sync::Mutex<()>>,
}

/// The database: cheap to clone, shared by every repository.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.inner.backend)
            .field("replicas", &self.inner.replicas.len())
            .finish()
    }
}

/// Occupancy of one pool (exported as `db_pool_*` gauges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// `primary` or `replica-N`.
    pub pool: String,
    /// Open connections.
    pub connections: u32,
    /// Open and idle.
    pub idle: u32,
    /// Requests waiting for a connection right now.
    pub waiters: u64,
    /// Acquisitions that gave up after the acquire timeout (cumulative).
    pub acquire_timeouts: u64,
}

/// Which pool served a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The primary.
    Primary,
    /// A replica, by index.
    Replica(usize),
}

impl Db {
    /// Builds the pools. Connections open lazily, so a replica that is down at start-up only
    /// makes reads fall back; the primary is checked with one round trip.
    pub async fn connect(config: &DbConfig) -> Result<Db, DbError> {
        let backend = config.backend();
        let primary = match backend {
            Backend::Postgres => Pool::Pg(pg_pool(&config.url, config)),
            Backend::Sqlite => Pool::Sqlite(sqlite_pool(&config.url, config)?),
        };
        let replicas = config
            .replica_urls
            .iter()
            .enumerate()
            .map(|(i, url)| Replica {
                label: format!("replica-{i} {}", redact_url(url)),
                pool: Pool::Pg(pg_pool(url, config)),
                healthy: AtomicBool::new(true),
            })
            .collect();
        let db = Db {
            inner: Arc::new(Inner {
                config: config.clone(),
                backend,
                primary,
                replicas,
                recent_writers: RecentWriters::default(),
                shared_marks: std::sync::OnceLock::new(),
                job_wakeup: std::sync::OnceLock::new(),
                sqlite_write_turn: Arc::new(tokio::sync::Mutex::new(())),
            }),
        };
        db.ping(Target::Primary).await?;
        Ok(db)
    }

    /// The primary's backend.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// A connection to the primary, for writes and transactions.
    pub async fn write(&self) -> Result<Conn, DbError> {
        if self.inner.backend != Backend::Sqlite {
            return self.inner.primary.get().await;
        }
        // The turn first, then the connection: a writer waiting for its turn holds no
        // connection, so readers are never starved by queued writers.
        let wait = Duration::from_millis(self.inner.config.acquire_timeout_ms);
        let turn = tokio::time::timeout(wait, self.inner.sqlite_write_turn.clone().lock_owned())
            .await
            .map_err(|_| DbError::Unavailable {
                reason: format!("no SQLite write turn within {} ms", wait.as_millis()),
            })?;
        let mut conn = self.inner.primary.get().await?;
        if let Conn::Sqlite(pooled) = &mut conn {
            pooled._write_turn = Some(turn);
        }
        Ok(conn)
    }

    /// A connection for a read, routed per `policy`.
    pub async fn read(&self, policy: ReadPolicy) -> Result<(Conn, Target), DbError> {
        let window = Duration::from_millis(self.inner.config.read_your_writes_ms);
        let to_primary = match policy {
            ReadPolicy::Primary => true,
            ReadPolicy::ForUser(user) => {
                self.inner.recent_writers.is_recent(user, window)
                    || (!self.inner.replicas.is_empty() && self.marked_elsewhere(user).await)
            }
            ReadPolicy::Anyone => false,
        };
        if to_primary || self.inner.replicas.is_empty() {
            return Ok((self.write().await?, Target::Primary));
        }
        // Spread reads over the healthy replicas.
        let n = self.inner.replicas.len();
        let start = rand_index(n);
        for k in 0..n {
            let i = (start + k) % n;
            let replica = &self.inner.replicas[i];
            if !replica.healthy.load(Ordering::Relaxed) {
                continue;
            }
            match replica.pool.get().await {
                Ok(conn) => return Ok((conn, Target::Replica(i))),
                Err(e) => {
                    tracing::warn!(replica = %replica.label, error = %e, "replica unavailable; reads fall back");
                    self.mark_unhealthy(i);
                }
            }
        }
        metrics::counter!("db_read_fallback_total").increment(1);
        Ok((self.write().await?, Target::Primary))
    }

    /// Records that `user` wrote, so their reads stay on the primary for the configured window.
    pub async fn wrote(&self, user: uuid::Uuid) {
        let window = Duration::from_millis(self.inner.config.read_your_writes_ms);
        self.inner.recent_writers.record(user, window);
        if let Some(marks) = self
            .inner
            .shared_marks
            .get()
            .filter(|_| !self.inner.replicas.is_empty())
        {
            // Awaited, so the mark exists before the client can send its next request (possibly
            // to another instance).
            marks.mark(user, window).await;
        }
    }

    /// Shares write marks with other instances (call once at start-up).
    pub fn share_write_marks(&self, marks: Arc<dyn WriteMarks>) {
        let _ = self.inner.shared_marks.set(marks);
    }

    /// Lets this process's job workers hear of jobs committed through this `Db` at once (call
    /// once, when the workers start).
    pub fn set_job_wakeup(&self, wakeup: Arc<dyn crate::jobs::JobWakeup>) {
        let _ = self.inner.job_wakeup.set(wakeup);
    }

    pub(crate) fn job_wakeup(&self) -> Option<&Arc<dyn crate::jobs::JobWakeup>> {
        self.inner.job_wakeup.get()
    }

    /// The primary's URL (for connections outside the pools, such as the job listener).
    pub(crate) fn primary_url(&self) -> &str {
        &self.inner.config.url
    }

    async fn marked_elsewhere(&self, user: uuid::Uuid) -> bool {
        match self.inner.shared_marks.get() {
            Some(marks) => marks.is_marked(user).await,
            None => false,
        }
    }

    /// Runs one query with the statement timeout, a span, and metrics.
    pub async fn run<T, F>(
        &self,
        operation: &'static str,
        target: Target,
        query: F,
    ) -> Result<T, DbError>
    where
        F: Future<Output = Result<T, diesel::result::Error>>,
    {
        let timeout_ms = self.inner.config.statement_timeout_ms;
        let backend = match self.inner.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        };
        let pool = match target {
            Target::Primary => "primary",
            Target::Replica(_) => "replica",
        };
        let span = tracing::debug_span!(
            "db.query",
            db.operation = operation,
            db.backend = backend,
            db.pool = pool
        );
        let start = std::time::Instant::now();
        let result =
            match tokio::time::timeout(Duration::from_millis(timeout_ms), query.instrument(span))
                .await
            {
                Ok(r) => r.map_err(DbError::from),
                Err(_) => Err(DbError::Timeout { timeout_ms }),
            };
        let result = result.map_err(|e| match e {
            DbError::Timeout { .. } => DbError::Timeout { timeout_ms },
            other => other,
        });
        metrics::histogram!("db_query_duration_seconds", "operation" => operation, "backend" => backend, "pool" => pool)
            .record(start.elapsed().as_secs_f64());
        if let Err(e) = &result
            && !matches!(e, DbError::NotFound)
        {
            metrics::counter!("db_errors_total", "operation" => operation, "kind" => e.kind())
                .increment(1);
        }
        result
    }

    /// Pool occupancy, for gauges.
    pub fn stats(&self) -> Vec<PoolStats> {
        let mut out = vec![stats("primary", &self.inner.primary)];
        for (i, r) in self.inner.replicas.iter().enumerate() {
            out.push(stats(&format!("replica-{i}"), &r.pool));
        }
        out
    }

    /// Publishes pool gauges (call from the metrics scrape).
    pub fn record_pool_metrics(&self) {
        for s in self.stats() {
            metrics::gauge!("db_pool_connections", "pool" => s.pool.clone())
                .set(f64::from(s.connections));
            metrics::gauge!("db_pool_idle", "pool" => s.pool.clone()).set(f64::from(s.idle));
            metrics::gauge!("db_pool_waiters", "pool" => s.pool.clone()).set(s.waiters as f64);
            metrics::counter!("db_pool_acquire_timeouts_total", "pool" => s.pool)
                .absolute(s.acquire_timeouts);
        }
    }

    /// Whether each replica is currently used for reads.
    pub fn replica_health(&self) -> Vec<bool> {
        self.inner
            .replicas
            .iter()
            .map(|r| r.healthy.load(Ordering::Relaxed))
            .collect()
    }

    /// Probes unhealthy replicas until the process ends; returns immediately without replicas.
    pub async fn probe_replicas_forever(self) {
        if self.inner.replicas.is_empty() {
            return;
        }
        let every = Duration::from_millis(self.inner.config.replica_probe_interval_ms);
        loop {
            tokio::time::sleep(every).await;
            self.probe_replicas().await;
        }
    }

    /// One probe round: a replica that answers `SELECT 1` is used for reads again.
    pub async fn probe_replicas(&self) {
        for (i, r) in self.inner.replicas.iter().enumerate() {
            if !r.healthy.load(Ordering::Relaxed) && self.ping(Target::Replica(i)).await.is_ok() {
                tracing::info!(replica = %r.label, "replica healthy again");
                r.healthy.store(true, Ordering::Relaxed);
                metrics::gauge!("db_replica_healthy", "pool" => format!("replica-{i}")).set(1.0);
            }
        }
    }

    fn mark_unhealthy(&self, i: usize) {
        if let Some(r) = self.inner.replicas.get(i) {
            r.healthy.store(false, Ordering::Relaxed);
            metrics::gauge!("db_replica_healthy", "pool" => format!("replica-{i}")).set(0.0);
        }
    }

    /// `SELECT 1` on a pool.
    pub async fn ping(&self, target: Target) -> Result<(), DbError> {
        let pool = match target {
            Target::Primary => &self.inner.primary,
            Target::Replica(i) => match self.inner.replicas.get(i) {
                Some(r) => &r.pool,
                None => return Err(DbError::Internal(format!("no replica {i}"))),
            },
        };
        let mut conn = pool.get().await?;
        self.run("ping", target, async {
            crate::dispatch!(conn, c => c.batch_execute("SELECT 1").await)
        })
        .await
    }
}

fn stats(name: &str, pool: &Pool) -> PoolStats {
    let s = pool.state();
    let st = &s.statistics;
    // Started acquisitions that have not finished one way or another are the ones waiting.
    let finished = st.get_direct + st.get_waited + st.get_timed_out;
    PoolStats {
        pool: name.to_owned(),
        connections: s.connections,
        idle: s.idle_connections,
        waiters: st.get_started.saturating_sub(finished),
        acquire_timeouts: st.get_timed_out,
    }
}

fn rand_index(n: usize) -> usize {
    // Spreading load needs no cryptographic randomness: the low bits of a v4 UUID will do.
    (uuid::Uuid::new_v4().as_u128() % n as u128) as usize
}

fn pg_pool(url: &str, config: &DbConfig) -> bb8::Pool<PgManager> {
    let statement_timeout_ms = config.statement_timeout_ms;
    let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
    let mut manager_config = ManagerConfig::<PgConn>::default();
    // No `SELECT 1` per checkout: a feed read checks out a connection for each of its
    // statements, and the ping doubled their round trips. A connection that broke (server
    // restart, killed backend) fails its next statement, is marked broken and is dropped by the
    // pool; the request answers 503 `unavailable` and the next one gets a fresh connection.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup =
        Box::new(move |url| pg_setup(url.to_owned(), statement_timeout_ms, connect_timeout));
    let manager = AsyncDieselConnectionManager::<PgConn>::new_with_config(url, manager_config);
    bb8::Pool::builder()
        .max_size(config.pool_size)
        .connection_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .build_unchecked(manager)
}

fn pg_setup(
    url: String,
    statement_timeout_ms: u64,
    connect_timeout: Duration,
) -> BoxFuture<'static, ConnectionResult<PgConn>> {
    async move {
        let mut conn = match tokio::time::timeout(connect_timeout, PgConn::establish(&url)).await {
            Ok(conn) => conn?,
            Err(_) => {
                return Err(diesel::ConnectionError::BadConnection(
                    "connect timed out".into(),
                ));
            }
        };
        // The server enforces the bound too, so a runaway statement stops even if the client
        // stopped waiting for it.
        conn.batch_execute(&format!("SET statement_timeout = {statement_timeout_ms}"))
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        Ok(conn)
    }
    .boxed()
}

fn sqlite_pool(url: &str, config: &DbConfig) -> Result<bb8::Pool<SqliteManager>, DbError> {
    let path = DbConfig::sqlite_path(url).to_owned();
    if let Some(dir) = std::path::Path::new(&path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Unavailable {
            reason: format!("{}: {e}", dir.display()),
        })?;
    }
    let busy_ms = config.sqlite_busy_timeout_ms;
    let mut manager_config = ManagerConfig::<SqliteConn>::default();
    // A file in this process cannot go away between statements; the ping is pure cost.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| sqlite_setup(url.to_owned(), busy_ms));
    let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, manager_config);
    // SQLite has one writer; a few connections serve concurrent reads under WAL.
    Ok(bb8::Pool::builder()
        .max_size(config.pool_size.min(4))
        .connection_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .build_unchecked(manager))
}

fn sqlite_setup(path: String, busy_ms: u64) -> BoxFuture<'static, ConnectionResult<SqliteConn>> {
    async move {
        let mut conn = SqliteConn::establish(&path).await?;
        conn.batch_execute(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {busy_ms};"
        ))
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        Ok(conn)
    }
    .boxed()
}
