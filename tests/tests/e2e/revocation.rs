//! A revoked session's access token stops working on every instance: broadcast through Redis
//! into each instance's deny-set while Redis is up, checked in the database while it is not.
//! Two instances share PostgreSQL and Redis, as in the cluster shape.

use std::time::Duration;

use agora_db::testing::TestDb;
use agora_kv::testing::{ChaosProxy, TestRedis};

use crate::support::{TestApp, redis_state, status};

/// Polls `get_me` on `app` with `token` until it answers 401, at most `attempts` times 20 ms apart.
async fn rejected_within(app: &TestApp, token: &str, attempts: u32) -> bool {
    let client = app.client_with_token(token);
    for _ in 0..attempts {
        if status(&client.get_me().send().await) == 401 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

pub(crate) async fn two_instances(
    test: &str,
    via_proxy: bool,
) -> Option<(TestDb, TestRedis, Option<ChaosProxy>, TestApp, TestApp)> {
    two_instances_with(test, via_proxy, &[]).await
}

/// [`two_instances`] with more `AGORA_*` settings for both.
pub(crate) async fn two_instances_with(
    test: &str,
    via_proxy: bool,
    extra: &[(&str, &str)],
) -> Option<(TestDb, TestRedis, Option<ChaosProxy>, TestApp, TestApp)> {
    let db = TestDb::postgres().await?;
    let redis = TestRedis::new(test)?;
    let proxy = if via_proxy {
        Some(
            ChaosProxy::start(redis.server_addr().await.expect("address"))
                .await
                .expect("proxy"),
        )
    } else {
        None
    };
    let config = match &proxy {
        Some(p) => redis.config_via(p.addr()),
        None => redis.config(),
    };
    let url = config.url.clone().expect("url");
    let mut env = vec![
        ("AGORA_DATABASE__URL", db.config.url.as_str()),
        ("AGORA_REDIS__URL", url.as_str()),
        ("AGORA_REDIS__KEY_PREFIX", config.key_prefix.as_str()),
        ("AGORA_REDIS__COMMAND_TIMEOUT_MS", "300"),
        ("AGORA_REDIS__BREAKER_THRESHOLD", "1"),
        ("AGORA_REDIS__PUBSUB_PING_INTERVAL_MS", "100"),
    ];
    env.extend_from_slice(extra);
    let one = TestApp::start_with(&env).await;
    let two = TestApp::start_with(&env).await;
    for app in [&one, &two] {
        let mut up = false;
        for _ in 0..100 {
            if redis_state(app).await == "up" {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "Redis is up for both instances");
    }
    Some((db, redis, proxy, one, two))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_instance_rejects_the_token_on_the_other_within_a_second() {
    let Some((_db, _redis, _, one, two)) =
        two_instances("logout_rejects_on_the_other", false).await
    else {
        return;
    };
    let session = one.register("roamer").await;
    let token = session.tokens.access_token.clone();
    let on_two = two.client_with_token(&token);
    on_two
        .get_me()
        .send()
        .await
        .expect("the token works on instance two");
    // Once more: served from the deny-set path, with no revocation known yet.
    on_two.get_me().send().await.expect("still works");

    let logout = one.client_with_token(&token).logout().send().await;
    assert_eq!(status(&logout), 204);
    // 50 polls 20 ms apart: one second.
    assert!(
        rejected_within(&two, &token, 50).await,
        "instance two rejects the token within a second"
    );
    assert!(
        rejected_within(&one, &token, 1).await,
        "instance one rejects it at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_database_decides() {
    let Some((_db, _redis, proxy, one, two)) =
        two_instances("with_redis_down_the_database_decides", true).await
    else {
        return;
    };
    let proxy = proxy.expect("proxy");
    let session = one.register("offline").await;
    let token = session.tokens.access_token.clone();
    two.client_with_token(&token)
        .get_me()
        .send()
        .await
        .expect("works");

    proxy.refuse_new(true);
    proxy.cut();
    for app in [&one, &two] {
        let mut noticed = false;
        for _ in 0..100 {
            if redis_state(app).await != "up" {
                noticed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(noticed, "the outage is noticed");
    }
    let logout = one.client_with_token(&token).logout().send().await;
    assert_eq!(status(&logout), 204);
    assert!(
        rejected_within(&two, &token, 1).await,
        "instance two asks the database and rejects at once"
    );

    // Redis back: instance two reloads what it missed and keeps rejecting.
    proxy.restore();
    for _ in 0..200 {
        if redis_state(&two).await == "up" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        rejected_within(&two, &token, 1).await,
        "still rejected from the reloaded deny-set"
    );
}
