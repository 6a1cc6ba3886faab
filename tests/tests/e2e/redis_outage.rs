//! Redis is optional by design: its state shows in /v1/meta, and cutting it mid-test changes no
//! HTTP status code — readiness included — and it recovers when restored.

use std::time::Duration;

use agora_kv::testing::eventually;

use crate::support::{TestApp, chaos_redis_env, redis_behind_proxy, redis_state};

async fn statuses(app: &TestApp) -> Vec<u16> {
    vec![
        app.client
            .get_healthz()
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
        app.client
            .get_readyz()
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
        app.client
            .get_meta()
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
        app.client
            .get_metrics()
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
    ]
}

#[tokio::test]
async fn without_redis_the_state_is_disabled() {
    let app = TestApp::start().await;
    assert_eq!(redis_state(&app).await, "disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_redis_changes_no_status_code_and_it_recovers() {
    let Some((_redis, proxy, config)) =
        redis_behind_proxy("cutting_redis_changes_no_status_code").await
    else {
        return;
    };
    let url = config.url.clone().expect("url");
    let prefix = config.key_prefix.clone();
    let app = TestApp::start_with(&chaos_redis_env(&url, &prefix)).await;
    assert!(
        eventually(100, Duration::from_millis(50), || async {
            redis_state(&app).await == "up"
        })
        .await,
        "Redis reported up"
    );
    let healthy = statuses(&app).await;
    assert_eq!(healthy, vec![200, 200, 200, 200]);

    // Refuse first, then cut: a reconnect accepted in between would survive the cut.
    proxy.refuse_new(true);
    proxy.cut();
    assert!(
        eventually(100, Duration::from_millis(50), || async {
            redis_state(&app).await != "up"
        })
        .await,
        "the outage is noticed"
    );
    assert_eq!(
        statuses(&app).await,
        healthy,
        "no status code changed while Redis is down"
    );

    proxy.restore();
    assert!(
        eventually(200, Duration::from_millis(50), || async {
            redis_state(&app).await == "up"
        })
        .await,
        "Redis recovered once restored"
    );
    assert_eq!(statuses(&app).await, healthy);
}
