//! A slow database answers 503 with `Retry-After` within the statement timeout — never a hang
//! and never a 500 — and the API recovers when the database does (PostgreSQL behind a chaos proxy).

use std::time::Duration;

use agora_db::testing::TestDb;
use agora_kv::testing::ChaosProxy;

use crate::support::{TestApp, status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_is_503_with_retry_after_and_recovers() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let proxy = ChaosProxy::start("127.0.0.1:5432".parse().expect("address"))
        .await
        .expect("proxy");
    let url = t
        .config
        .url
        .replace("127.0.0.1:5432", &proxy.addr().to_string());
    assert_ne!(
        url, t.config.url,
        "the test database URL names 127.0.0.1:5432"
    );
    let app = TestApp::start_with(&[
        ("AGORA_DATABASE__URL", url.as_str()),
        ("AGORA_DATABASE__STATEMENT_TIMEOUT_MS", "300"),
        ("AGORA_DATABASE__ACQUIRE_TIMEOUT_MS", "300"),
    ])
    .await;
    let session = app.register("slowpoke").await;
    let client = app.client_with_token(&session.tokens.access_token);
    client.get_me().send().await.expect("healthy");

    proxy.set_latency(Duration::from_millis(1_500));
    let slow = client.get_me().send().await;
    assert_eq!(status(&slow), 503, "{slow:?}");
    match &slow {
        Err(agora_client::Error::ErrorResponse(r)) => {
            assert_eq!(
                r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
                Some("1")
            );
            assert_eq!(r.error_code.as_str(), "unavailable");
        }
        other => panic!("expected a typed 503, got {other:?}"),
    }
    // Probes do not depend on the database.
    app.client.get_healthz().send().await.expect("alive");

    proxy.set_latency(Duration::ZERO);
    let mut recovered = false;
    for _ in 0..50 {
        if client.get_me().send().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the API answers again once the database is fast");
}
