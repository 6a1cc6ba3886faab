//! The short CI variant of the real-time benchmarks: each runs small against two in-process
//! instances sharing PostgreSQL and Redis, and must deliver everything it sent and keep every
//! socket open. (The full runs, with figures, are `scripts/bench-realtime.sh` by hand.)

use std::time::Duration;

use agora_load::realtime::{self, Accounts};
use agora_server::config::{Config, Sources};

async fn instance(database: &str, redis: &agora_kv::RedisConfig) -> agora_server::RunningServer {
    let url = redis.url.clone().unwrap_or_default();
    let env: Vec<(String, String)> = [
        ("AGORA_HTTP__BIND", "127.0.0.1:0"),
        ("AGORA_DATABASE__URL", database),
        ("AGORA_REDIS__URL", url.as_str()),
        ("AGORA_REDIS__KEY_PREFIX", redis.key_prefix.as_str()),
        ("AGORA_ANALYTICS__ENABLED", "false"),
        ("AGORA_RATE_LIMITS__AUTH_PER_IP__REQUESTS", "100000000"),
        ("AGORA_RATE_LIMITS__CHAT_PER_USER__REQUESTS", "100000000"),
        ("AGORA_REALTIME__MAX_CONNECTIONS_PER_USER", "100"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::load(&Sources {
        file: None,
        env: Some(env),
    })
    .expect("configuration");
    agora_server::start(&config).await.expect("server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_realtime_benchmark_runs_clean_across_two_instances() {
    let Some(db) = agora_db::testing::TestDb::postgres().await else {
        return;
    };
    let Some(redis) = agora_kv::testing::TestRedis::new("load_realtime_smoke") else {
        return;
    };
    let one = instance(&db.config.url, &redis.config()).await;
    let two = instance(&db.config.url, &redis.config()).await;
    let urls = vec![
        format!("http://{}", one.local_addr()),
        format!("http://{}", two.local_addr()),
    ];

    let held = realtime::hold(
        &Accounts::fresh("bench-password"),
        &urls,
        200,
        4,
        Duration::from_secs(1),
        Some(std::process::id()),
    )
    .await
    .expect("connections");
    assert_eq!((held.opened, held.alive), (200, 200), "{}", held.render());
    assert!(held.rss_kib.is_some(), "this process's memory is read");

    let delivery = realtime::delivery(
        &Accounts::fresh("bench-password"),
        &urls[0],
        &urls[1],
        5,
        50,
        2,
    )
    .await
    .expect("delivery");
    assert!(delivery.sent > 0);
    assert_eq!(
        delivery.micros.len(),
        delivery.expected,
        "{}",
        delivery.render("delivery")
    );

    let fanout = realtime::fanout(&Accounts::fresh("bench-password"), &urls, 10, 10, 20)
        .await
        .expect("fan-out");
    assert_eq!(fanout.expected, 90);
    assert_eq!(
        fanout.micros.len(),
        fanout.expected,
        "{}",
        fanout.render("fan-out")
    );
}
