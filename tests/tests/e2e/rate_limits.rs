//! Abuse limits on sign-in: brute force gets 429 with `Retry-After` and the RateLimit headers; the
//! limit holds across two instances sharing Redis, and falls back per instance when Redis is cut.

use agora_client::types::LoginRequest;
use agora_kv::testing::{ChaosProxy, TestRedis};

use crate::support::{TestApp, status};

async fn login(
    app: &TestApp,
    login: &str,
) -> Result<
    (),
    (
        u16,
        Option<agora_client::Error<agora_client::types::ApiError>>,
    ),
> {
    let result = app
        .client
        .login()
        .body(
            LoginRequest::builder()
                .login(login)
                .password("not-the-password"),
        )
        .send()
        .await;
    match status(&result) {
        401 => Ok(()),
        other => Err((other, result.err())),
    }
}

fn assert_limited(
    outcome: Result<
        (),
        (
            u16,
            Option<agora_client::Error<agora_client::types::ApiError>>,
        ),
    >,
    policy: &str,
) {
    let Err((429, Some(agora_client::Error::ErrorResponse(r)))) = outcome else {
        panic!("expected 429, got {outcome:?}")
    };
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after: u64 = header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1, "{retry_after}");
    assert_eq!(
        header("ratelimit-policy").as_deref(),
        Some(format!("\"{policy}\";q=3;w=60").as_str())
    );
    assert_eq!(
        header("ratelimit").as_deref(),
        Some(format!("\"{policy}\";r=0;t={retry_after}").as_str())
    );
    assert_eq!(r.error_code.as_str(), "rate_limited");
}

const THREE_PER_MINUTE: &[(&str, &str)] = &[
    ("AGORA_RATE_LIMITS__AUTH_PER_ACCOUNT__REQUESTS", "3"),
    ("AGORA_RATE_LIMITS__AUTH_PER_ACCOUNT__WINDOW_SECS", "60"),
];

#[tokio::test]
async fn brute_force_on_one_account_is_limited() {
    let app = TestApp::start_with(THREE_PER_MINUTE).await;
    for _ in 0..3 {
        login(&app, "victim")
            .await
            .expect("a wrong password is a 401, not yet limited");
    }
    assert_limited(login(&app, "VICTIM").await, "auth-account");
    login(&app, "someone_else")
        .await
        .expect("other accounts are not affected");
}

/// Two instances, one Redis (and one database file): the account's limit is shared. With Redis
/// cut, each instance falls back to its own in-process limiter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_across_instances_and_falls_back_per_instance() {
    let Some(redis) = TestRedis::new("the_limit_holds_across_instances") else {
        return;
    };
    let proxy = ChaosProxy::start(redis.server_addr().await.expect("redis address"))
        .await
        .expect("proxy");
    let config = redis.config_via(proxy.addr());
    let url = config.url.clone().expect("url");
    // One database for both instances; the harness deletes it when the test ends.
    let shared = agora_db::testing::TestDb::sqlite().await;
    let database = shared.config.url.clone();
    let mut env: Vec<(&str, &str)> = THREE_PER_MINUTE.to_vec();
    env.extend([
        ("AGORA_REDIS__URL", url.as_str()),
        ("AGORA_REDIS__KEY_PREFIX", config.key_prefix.as_str()),
        ("AGORA_REDIS__COMMAND_TIMEOUT_MS", "300"),
        ("AGORA_REDIS__BREAKER_THRESHOLD", "1"),
        ("AGORA_DATABASE__URL", database.as_str()),
    ]);
    let one = TestApp::start_with(&env).await;
    let two = TestApp::start_with(&env).await;

    login(&one, "shared").await.expect("1");
    login(&two, "shared").await.expect("2");
    login(&one, "shared").await.expect("3");
    assert_limited(login(&two, "shared").await, "auth-account");
    assert_limited(login(&one, "shared").await, "auth-account");

    // Redis gone: each instance limits on its own, so a new account gets three tries per instance.
    proxy.refuse_new(true);
    proxy.cut();
    for app in [&one, &two] {
        for _ in 0..3 {
            login(app, "fallback")
                .await
                .expect("within this instance's own limit");
        }
        assert_limited(login(app, "fallback").await, "auth-account");
    }
}
