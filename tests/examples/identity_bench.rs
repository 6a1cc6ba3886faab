//! Identity load benchmark (not a test): login throughput with the configured argon2 parameters,
//! and the latency of an authenticated `get_me` under concurrent load. A real server on a
//! loopback port, driven by the generated client, in this process.
//!
//! ```text
//! cargo run --release -p agora-tests --example identity_bench -- [logins] [get_me requests] [concurrency]
//! ```
//! Defaults: 64 logins, 20000 `get_me`, 16 concurrent callers. SQLite unless
//! `AGORA_BENCH_DATABASE_URL` names a PostgreSQL database (its `users` must be empty of `bench_*`
//! handles: use a scratch database); Redis when `AGORA_BENCH_REDIS_URL` is set. Other `AGORA_*`
//! variables (e.g. `AGORA_AUTH__ARGON2_MEMORY_KIB`) configure the server as usual.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_client::types::{LoginRequest, RegisterRequest};
use agora_server::config::{Config, Sources};

const PASSWORD: &str = "bench-password-0123";

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Latency percentiles of `samples` (sorted in place).
fn report(name: &str, samples: &mut [Duration], wall: Duration) {
    samples.sort();
    let pct = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    println!(
        "{name}: {} requests in {:.2} s = {:.1}/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        samples.len(),
        wall.as_secs_f64(),
        samples.len() as f64 / wall.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
    );
}

/// Runs `total` calls of `call` with `concurrency` callers; returns each latency and the wall time.
async fn drive<F, Fut>(total: usize, concurrency: usize, call: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (call, next) = (call.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break latencies;
                }
                let t = Instant::now();
                call(i).await;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    (all, start.elapsed())
}

#[tokio::main]
async fn main() {
    let logins = arg(1, 64);
    let requests = arg(2, 20_000);
    let concurrency = arg(3, 16).max(1);

    let sqlite = std::env::temp_dir().join(format!("agora-bench-{}.db", std::process::id()));
    let database_url = std::env::var("AGORA_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", sqlite.display()));
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AGORA_") && !k.starts_with("AGORA_BENCH_"))
        .collect();
    env.extend([
        ("AGORA_HTTP__BIND".into(), "127.0.0.1:0".into()),
        ("AGORA_DATABASE__URL".into(), database_url.clone()),
        ("AGORA_LOG__LEVEL".into(), "warn".into()),
        // The benchmark measures the work, not the abuse limits.
        (
            "AGORA_RATE_LIMITS__AUTH_PER_IP__REQUESTS".into(),
            "1000000".into(),
        ),
        (
            "AGORA_RATE_LIMITS__AUTH_PER_ACCOUNT__REQUESTS".into(),
            "1000000".into(),
        ),
    ]);
    if let Ok(redis) = std::env::var("AGORA_BENCH_REDIS_URL") {
        env.push(("AGORA_REDIS__URL".into(), redis));
    }
    let config = match Config::load(&Sources {
        file: None,
        env: Some(env),
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let server = agora_server::start(&config)
        .await
        .expect("the server starts");
    let base = format!("http://{}", server.local_addr());
    let a = &config.auth;
    println!(
        "server: {} on {}; argon2id m={} KiB t={} p={}, hash_concurrency={}; {} cores; callers={concurrency}",
        base,
        if database_url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        a.argon2_memory_kib,
        a.argon2_iterations,
        a.argon2_parallelism,
        a.hash_concurrency,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let client = Arc::new(agora_client::Client::connect(&base).expect("client"));
    let run = std::process::id();
    let handle = move |i: usize| format!("bench_{run}_{i}");

    // Registration hashes once per account; it also creates the accounts the logins use.
    let accounts = logins.clamp(1, 256);
    let c = client.clone();
    let (mut reg, wall) = drive(accounts, concurrency, move |i| {
        let c = c.clone();
        async move {
            let h = handle(i);
            c.register()
                .body(
                    RegisterRequest::builder()
                        .handle(h.clone())
                        .email(format!("{h}@bench.invalid"))
                        .password(PASSWORD)
                        .display_name("Bench"),
                )
                .send()
                .await
                .expect("register");
        }
    })
    .await;
    report("register", &mut reg, wall);

    let c = client.clone();
    let (mut login, wall) = drive(logins, concurrency, move |i| {
        let c = c.clone();
        async move {
            c.login()
                .body(
                    LoginRequest::builder()
                        .login(handle(i % accounts))
                        .password(PASSWORD),
                )
                .send()
                .await
                .expect("login");
        }
    })
    .await;
    report("login", &mut login, wall);

    // One signed-in client per caller, as a fleet of users would be.
    let mut tokens = Vec::new();
    for i in 0..concurrency.min(accounts) {
        let session = client
            .login()
            .body(LoginRequest::builder().login(handle(i)).password(PASSWORD))
            .send()
            .await
            .expect("login")
            .into_inner();
        tokens.push(session.tokens.access_token);
    }
    let clients: Arc<Vec<agora_client::Client>> = Arc::new(
        tokens
            .iter()
            .map(|t| {
                let c = agora_client::Client::connect(&base).expect("client");
                c.credentials().set_token(t);
                c
            })
            .collect(),
    );
    // Warm-up: connections, caches, the replica probe; not measured.
    let warm = clients.clone();
    let _ = drive(requests / 10, concurrency, move |i| {
        let c = warm[i % warm.len()].clone();
        async move {
            c.get_me().send().await.expect("get_me");
        }
    })
    .await;
    let reads = clients.clone();
    let (mut me, wall) = drive(requests, concurrency, move |i| {
        let c = clients[i % clients.len()].clone();
        async move {
            c.get_me().send().await.expect("get_me");
        }
    })
    .await;
    report("get_me (authenticated)", &mut me, wall);

    // The same reads while a login flood keeps every hashing slot busy: hashing runs on the
    // blocking pool behind a semaphore, so reads should stay in the same range.
    let flood_on = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut flood = Vec::new();
    for w in 0..concurrency {
        let (c, on) = (client.clone(), flood_on.clone());
        flood.push(tokio::spawn(async move {
            let mut n = 0usize;
            while on.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = c
                    .login()
                    .body(
                        LoginRequest::builder()
                            .login(handle((w + n) % accounts))
                            .password(PASSWORD),
                    )
                    .send()
                    .await;
                n += 1;
            }
            n
        }));
    }
    let flooded = reads.clone();
    let (mut during, wall) = drive(requests / 4, concurrency, move |i| {
        let c = flooded[i % flooded.len()].clone();
        async move {
            c.get_me().send().await.expect("get_me");
        }
    })
    .await;
    flood_on.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut logins_during = 0;
    for f in flood {
        logins_during += f.await.unwrap_or(0);
    }
    report("get_me during a login flood", &mut during, wall);
    println!("  (logins completed meanwhile: {logins_during})");

    let _ = server.shutdown().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sqlite.display()));
    }
}
