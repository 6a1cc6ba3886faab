//! Test utilities (feature `testing`): Redis fixtures that skip or fail by environment, and a TCP chaos proxy.
//!
//! Redis tests read `AGORA_TEST_REDIS_URL`. Without it they print that they were skipped and pass, except under
//! `CI=true`, where a missing Redis is a failure. Each [`TestRedis`] owns a random key prefix, so tests run in
//! parallel on one Redis, and deletes its keys when dropped (also when the test panics).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::config::RedisConfig;

/// The environment variable naming the test Redis.
pub const REDIS_URL_ENV: &str = "AGORA_TEST_REDIS_URL";

/// The test Redis URL; `None` (after printing why) when unset, and a panic when unset under `CI=true`.
pub fn test_redis_url(test: &str) -> Option<String> {
    match std::env::var(REDIS_URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{REDIS_URL_ENV} is not set and CI=true: Redis tests must run in CI ({test})"
                );
            }
            eprintln!("skipped {test}: set {REDIS_URL_ENV}=redis://127.0.0.1:6379 to run it");
            None
        }
    }
}

/// A test's share of the test Redis: a unique key prefix, cleaned up on drop.
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    prefix: String,
}

impl TestRedis {
    /// A fresh prefix on the test Redis, or `None` when the test is skipped (see [`test_redis_url`]).
    pub fn new(test: &str) -> Option<Self> {
        let url = test_redis_url(test)?;
        Some(Self {
            url,
            prefix: format!("agora-test-{}", uuid::Uuid::new_v4().simple()),
        })
    }

    /// The Redis URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This test's key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A config on this prefix with test-friendly timings: generous command timeout (loaded CI machines), small
    /// breaker threshold, short cool-down and pub/sub intervals so failure tests finish quickly.
    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            url: Some(self.url.clone()),
            key_prefix: self.prefix.clone(),
            command_timeout_ms: 1_000,
            connect_timeout_ms: 1_000,
            breaker_threshold: 3,
            breaker_cooldown_ms: 300,
            pubsub_ping_interval_ms: 200,
            pubsub_reconnect_min_delay_ms: 20,
            pubsub_reconnect_max_delay_ms: 200,
            ..RedisConfig::default()
        }
    }

    /// [`Self::config`] with the URL's host and port replaced by `addr` (a [`ChaosProxy`] in front of Redis).
    pub fn config_via(&self, addr: SocketAddr) -> RedisConfig {
        let mut config = self.config();
        config.url = Some(replace_authority(&self.url, addr));
        config
    }

    /// A direct connection for assertions and fault injection (CLIENT KILL …).
    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url.as_str())?
            .get_multiplexed_async_connection()
            .await
    }

    /// The address of the Redis server, for pointing a [`ChaosProxy`] at it.
    pub async fn server_addr(&self) -> io::Result<SocketAddr> {
        let client = redis::Client::open(self.url.as_str()).map_err(io::Error::other)?;
        match client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port) => {
                tokio::net::lookup_host((host.as_str(), *port))
                    .await?
                    .next()
                    .ok_or_else(|| io::Error::other("redis host does not resolve"))
            }
            other => Err(io::Error::other(format!("not a TCP address: {other}"))),
        }
    }

    /// Keys currently under this prefix.
    pub fn keys(&self) -> redis::RedisResult<Vec<String>> {
        let mut conn = redis::Client::open(self.url.as_str())?.get_connection()?;
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(1_000)
                .query(&mut conn)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    fn cleanup(&self) -> redis::RedisResult<()> {
        let keys = self.keys()?;
        if !keys.is_empty() {
            let mut conn = redis::Client::open(self.url.as_str())?.get_connection()?;
            redis::cmd("DEL").arg(&keys).query::<()>(&mut conn)?;
        }
        Ok(())
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop cannot await, and it must also run when the test panicked.
        if let Err(e) = self.cleanup() {
            eprintln!("could not clean up test keys {}:*: {e}", self.prefix);
        }
    }
}

fn replace_authority(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let credentials = authority
        .rsplit_once('@')
        .map(|(c, _)| format!("{c}@"))
        .unwrap_or_default();
    format!("{scheme}://{credentials}{addr}{path}")
}

/// Polls `check` up to `attempts` times, `pause` apart, until it returns true. Tests use this instead of asserting
/// wall-clock durations.
pub async fn eventually<F, Fut>(attempts: u32, pause: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..attempts {
        if check().await {
            return true;
        }
        tokio::time::sleep(pause).await;
    }
    false
}

/// A TCP proxy on `127.0.0.1:0` forwarding to a target, with faults on demand: latency, cutting every
/// connection, refusing new ones, and black-holing traffic (connections stay open but nothing passes, like a
/// network partition without resets).
#[derive(Debug)]
pub struct ChaosProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    accept: AbortHandle,
}

#[derive(Debug)]
struct ProxyShared {
    target: SocketAddr,
    refuse: AtomicBool,
    latency: Mutex<Duration>,
    blackhole: watch::Sender<bool>,
    next_id: AtomicU64,
    /// Live connections: task to abort on cut, and the upstream socket's local address (what the target sees).
    connections: Mutex<HashMap<u64, (AbortHandle, SocketAddr)>>,
}

impl ProxyShared {
    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (AbortHandle, SocketAddr)>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn latency(&self) -> Duration {
        *self.latency.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ChaosProxy {
    /// Starts forwarding to `target`.
    pub async fn start(target: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (blackhole, _) = watch::channel(false);
        let shared = Arc::new(ProxyShared {
            target,
            refuse: AtomicBool::new(false),
            latency: Mutex::new(Duration::ZERO),
            blackhole,
            next_id: AtomicU64::new(0),
            connections: Mutex::new(HashMap::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone())).abort_handle();
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Delays every forwarded chunk by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        *self
            .shared
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = latency;
    }

    /// Closes every open connection (both sides see the socket close).
    pub fn cut(&self) {
        for (_, (task, _)) in self.shared.connections().drain() {
            task.abort();
        }
    }

    /// Accepts and immediately closes new connections while `refuse` is true.
    pub fn refuse_new(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Holds every byte in both directions while `on` (connections stay open; the peer just never answers).
    pub fn set_blackhole(&self, on: bool) {
        self.shared.blackhole.send_replace(on);
    }

    /// Removes every fault (existing cut connections stay closed; new ones work).
    pub fn restore(&self) {
        self.set_latency(Duration::ZERO);
        self.refuse_new(false);
        self.set_blackhole(false);
    }

    /// The local addresses of open proxy→target connections: the client addresses the target sees (e.g. for
    /// `CLIENT KILL ADDR`).
    pub fn upstream_addrs(&self) -> Vec<SocketAddr> {
        self.shared
            .connections()
            .values()
            .map(|(_, a)| *a)
            .collect()
    }

    /// Number of open proxied connections.
    pub fn connection_count(&self) -> usize {
        self.shared.connections().len()
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<ProxyShared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if shared.refuse.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let Ok(upstream) = TcpStream::connect(shared.target).await else {
            continue;
        };
        let Ok(upstream_addr) = upstream.local_addr() else {
            continue;
        };
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        // Registered under the lock before the task can finish and deregister itself.
        let mut connections = shared.connections();
        let task = tokio::spawn(relay(client, upstream, shared.clone(), id));
        connections.insert(id, (task.abort_handle(), upstream_addr));
    }
}

async fn relay(client: TcpStream, upstream: TcpStream, shared: Arc<ProxyShared>, id: u64) {
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::select! {
        () = pump(client_read, upstream_write, &shared) => {}
        () = pump(upstream_read, client_write, &shared) => {}
    }
    shared.connections().remove(&id);
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: &ProxyShared,
) {
    let mut blackhole = shared.blackhole.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if blackhole.wait_for(|on| !on).await.is_err() {
            return;
        }
        let latency = shared.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_is_replaced_keeping_credentials_and_db() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().expect("addr");
        assert_eq!(
            replace_authority("redis://127.0.0.1:6379", addr),
            "redis://127.0.0.1:4242"
        );
        assert_eq!(
            replace_authority("redis://u:p@host:6379/3", addr),
            "redis://u:p@127.0.0.1:4242/3"
        );
    }
}
