//! Memory under a login flood (a benchmark, not a test): starts the real `agora` binary on the
//! embedded defaults, with the auth limits raised so the flood gets through, measures its resident
//! memory idle, then sends N concurrent logins and measures it again (and its high-water mark).
//! The budget is idle + 2 × hash_concurrency × argon2 memory: each hashing thread owns one block,
//! and nothing else should grow with the flood.
//!
//! ```text
//! cargo build --release -p agora-server
//! cargo run --release -p agora-tests --example login_flood_rss -- [logins] [hash_concurrency]
//! ```
//! Defaults: 1000 logins, hash_concurrency 2. Exit status 1 when the budget is exceeded.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "flood-password-0123";
const ARGON2_MEMORY_KIB: u64 = 19456;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The `agora` binary next to this example's directory (`target/<profile>/agora`).
fn agora_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .expect("target/<profile>/examples/");
    profile_dir.join("agora")
}

struct Server {
    child: Child,
    base: String,
    _dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start(hash_concurrency: usize) -> Server {
    let binary = agora_binary();
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --release -p agora-server` first",
        binary.display()
    );
    let dir = std::env::temp_dir().join(format!("agora-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let child = Command::new(&binary)
        .arg("serve")
        .env("AGORA_HTTP__BIND", format!("127.0.0.1:{port}"))
        .env(
            "AGORA_DATABASE__URL",
            format!("sqlite://{}/flood.db", dir.display()),
        )
        .env("AGORA_LOG__LEVEL", "warn")
        .env("AGORA_AUTH__HASH_CONCURRENCY", hash_concurrency.to_string())
        .env("AGORA_RATE_LIMITS__AUTH_PER_IP__REQUESTS", "1000000")
        .env("AGORA_RATE_LIMITS__AUTH_PER_ACCOUNT__REQUESTS", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("agora starts");
    // Owned by the guard at once: it is killed and reaped on every path, panics included.
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await
            && r.status().is_success()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("agora did not become ready");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let logins = arg(1, 1000);
    let permits = arg(2, 2);
    let server = start(permits).await;
    let pid = server.child.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("client");
    let register = http
        .post(format!("{}/v1/accounts", server.base))
        .json(&serde_json::json!({
            "handle": "flood", "email": "flood@example.com",
            "password": PASSWORD, "display_name": "Flood",
        }))
        .send()
        .await
        .expect("register");
    assert_eq!(register.status().as_u16(), 201, "register");
    // Settle: the first requests allocate what any server allocates once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle, _) = memory_kib(pid);

    let started = Instant::now();
    let calls: Vec<_> = (0..logins)
        .map(|_| {
            let (http, base) = (http.clone(), server.base.clone());
            tokio::spawn(async move {
                http.post(format!("{base}/v1/sessions"))
                    .json(&serde_json::json!({"login": "flood", "password": PASSWORD}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    let mut ok = 0;
    for call in calls {
        if call.await.unwrap_or(0) == 200 {
            ok += 1;
        }
    }
    let wall = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, peak) = memory_kib(pid);
    let budget = idle + 2 * permits as u64 * ARGON2_MEMORY_KIB;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{logins} concurrent logins ({ok} answered 200) in {:.1} s, hash_concurrency {permits}",
        wall.as_secs_f64()
    );
    println!(
        "RSS idle {:.1} MiB, after {:.1} MiB, peak {:.1} MiB; budget idle + 2 x {permits} x 19 MiB = {:.1} MiB ({:.0}% of it at peak)",
        mib(idle),
        mib(after),
        mib(peak),
        mib(budget),
        100.0 * peak as f64 / budget as f64
    );
    if peak > budget || ok != logins {
        println!("OVER BUDGET or failed logins");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
