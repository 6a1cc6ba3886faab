//! The primary behind a chaos proxy: a slow database answers `Timeout` within the statement
//! timeout (the API maps it to 503), a cut one `Unavailable`, and both recover when restored.

use std::time::Duration;

use agora_db::testing::TestDb;
use agora_db::{Db, DbConfig, DbError, ReadPolicy};
use agora_kv::testing::ChaosProxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_cut_databases_fail_fast_and_recover() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let server: std::net::SocketAddr = "127.0.0.1:5432".parse().expect("address");
    let proxy = ChaosProxy::start(server).await.expect("proxy");
    let url = t
        .config
        .url
        .replace("127.0.0.1:5432", &proxy.addr().to_string());
    assert_ne!(
        url, t.config.url,
        "the test database URL names 127.0.0.1:5432"
    );
    let config = DbConfig {
        url,
        statement_timeout_ms: 300,
        acquire_timeout_ms: 300,
        connect_timeout_ms: 300,
        ..DbConfig::default()
    };
    let db = Db::connect(&config).await.expect("through the proxy");
    let user =
        t.db.create_user(&agora_db::users::NewUser {
            handle: "chaos".into(),
            email: "chaos@example.com".into(),
            display_name: "C".into(),
            password_hash: "x".into(),
        })
        .await
        .expect("created");
    db.get_user(user.id, ReadPolicy::Anyone)
        .await
        .expect("healthy read");

    // Slow: every packet is delayed past the statement timeout.
    proxy.set_latency(Duration::from_millis(1_000));
    match db.get_user(user.id, ReadPolicy::Anyone).await {
        Err(DbError::Timeout { timeout_ms: 300 } | DbError::Unavailable { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    proxy.set_latency(Duration::ZERO);

    // Cut: connections die and new ones are refused.
    proxy.refuse_new(true);
    proxy.cut();
    match db.get_user(user.id, ReadPolicy::Anyone).await {
        Err(DbError::Unavailable { .. } | DbError::Timeout { .. }) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }

    // Restored: the pool opens fresh connections.
    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if db.get_user(user.id, ReadPolicy::Anyone).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "reads work again once the database is reachable");
    assert!(db.stats()[0].connections >= 1);
}
