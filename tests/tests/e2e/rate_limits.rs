//! Abuse limits on sign-in: brute force gets 429 with `Retry-After` and the RateLimit headers; the
//! limit holds across two instances sharing Redis, and falls back per instance when Redis is cut.

use agora_client::types::LoginRequest;

use crate::support::{TestApp, redis_behind_proxy, status};

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
    let Some((_redis, proxy, config)) =
        redis_behind_proxy("the_limit_holds_across_instances").await
    else {
        return;
    };
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

/// A wrong-password login from `forwarded_for` (sent as `X-Forwarded-For`); the status.
async fn login_via(app: &TestApp, login: &str, forwarded_for: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/sessions", app.base_url))
        .header("x-forwarded-for", forwarded_for)
        .json(&serde_json::json!({"login": login, "password": "not-the-password"}))
        .send()
        .await
        .expect("answers")
}

const TWO_PER_IP: [(&str, &str); 2] = [
    ("AGORA_RATE_LIMITS__AUTH_PER_IP__REQUESTS", "2"),
    ("AGORA_RATE_LIMITS__AUTH_PER_IP__WINDOW_SECS", "60"),
];

/// Behind a trusted load balancer each client has its own per-IP budget, and the address a
/// client writes into `X-Forwarded-For` itself is not believed.
#[tokio::test]
async fn per_ip_limits_see_the_client_behind_a_trusted_proxy() {
    let mut env = TWO_PER_IP.to_vec();
    env.push(("AGORA_HTTP__TRUSTED_PROXIES", "[\"127.0.0.1/32\", \"::1\"]"));
    let app = TestApp::start_with(&env).await;
    for i in 0..2 {
        let r = login_via(&app, &format!("a{i}"), "198.51.100.1").await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = login_via(&app, "a3", "198.51.100.1").await;
    assert_eq!(r.status().as_u16(), 429);
    assert!(
        r.headers()["ratelimit-policy"]
            .to_str()
            .unwrap_or_default()
            .starts_with("\"auth-ip\"")
    );
    // A spoofed left-most entry does not buy a new budget: the proxy's entry is the client.
    let r = login_via(&app, "a4", "203.0.113.77, 198.51.100.1").await;
    assert_eq!(r.status().as_u16(), 429);
    // Another client behind the same proxy is unaffected.
    let r = login_via(&app, "a5", "198.51.100.2").await;
    assert_eq!(r.status().as_u16(), 401);

    // Sessions record the forwarded address too.
    app.register("forwarded").await;
    let logged_in = reqwest::Client::new()
        .post(format!("{}/v1/sessions", app.base_url))
        .header("x-forwarded-for", "198.51.100.3")
        .json(&serde_json::json!({"login": "forwarded", "password": "password-of-forwarded"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(logged_in.status().as_u16(), 200);
    let body: serde_json::Value = logged_in.json().await.expect("session");
    let token = body["tokens"]["access_token"].as_str().unwrap_or_default();
    let sessions = app
        .client_with_token(token)
        .list_sessions()
        .send()
        .await
        .expect("sessions")
        .into_inner();
    let current = sessions.items.iter().find(|s| s.current).expect("current");
    assert_eq!(current.ip.as_deref(), Some("198.51.100.3"));
}

/// Without trusted proxies, `X-Forwarded-For` is ignored: sending it changes nothing.
#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::start_with(&TWO_PER_IP).await;
    for (i, xff) in ["198.51.100.1", "198.51.100.2"].into_iter().enumerate() {
        let r = login_via(&app, &format!("b{i}"), xff).await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = login_via(&app, "b3", "198.51.100.3").await;
    assert_eq!(
        r.status().as_u16(),
        429,
        "every attempt came from 127.0.0.1"
    );
}

/// Content writes are limited per user (`write`), and password checks with a stolen token are
/// limited per account like sign-ins (`auth-account`): a 429 changes nothing.
#[tokio::test]
async fn writes_and_password_checks_are_limited_per_user() {
    use agora_client::types::{ChangePasswordRequest, UpdateMeRequest};
    let app = TestApp::start_with(&[
        ("AGORA_RATE_LIMITS__WRITE_PER_USER__REQUESTS", "2"),
        ("AGORA_RATE_LIMITS__AUTH_PER_ACCOUNT__REQUESTS", "2"),
    ])
    .await;
    let ann = app.register("ann").await;
    let client = app.client_with_token(&ann.tokens.access_token);
    let rename = |name: &'static str| {
        client
            .update_me()
            .body(UpdateMeRequest::builder().display_name(Some(name.try_into().expect("name"))))
            .send()
    };
    assert_eq!(status(&rename("One").await), 200);
    assert_eq!(status(&rename("Two").await), 200);
    let limited = rename("Three").await;
    let Err(agora_client::Error::ErrorResponse(r)) = &limited else {
        panic!("expected 429, got {limited:?}")
    };
    assert_eq!(r.status().as_u16(), 429);
    assert!(
        r.headers()["ratelimit-policy"]
            .to_str()
            .unwrap_or_default()
            .starts_with("\"write\";q=2")
    );
    let me = client.get_me().send().await.expect("me").into_inner();
    assert_eq!(
        me.display_name.as_str(),
        "Two",
        "the limited write wrote nothing"
    );
    // Another user's budget is their own.
    let bob = app.register("bob").await;
    let bob_client = app.client_with_token(&bob.tokens.access_token);
    let renamed = bob_client
        .update_me()
        .body(UpdateMeRequest::builder().display_name(Some("Bobby".try_into().expect("name"))))
        .send()
        .await;
    assert_eq!(status(&renamed), 200);

    let guess = |password: &'static str| {
        client
            .change_password()
            .body(
                ChangePasswordRequest::builder()
                    .current_password(password)
                    .new_password("a-new-password-123"),
            )
            .send()
    };
    assert_eq!(status(&guess("guess-one").await), 401);
    assert_eq!(status(&guess("guess-two").await), 401);
    assert_eq!(
        status(&guess("password-of-ann").await),
        429,
        "even the right one"
    );
    // The password did not change.
    let old = app
        .client
        .login()
        .body(
            LoginRequest::builder()
                .login("ann")
                .password("password-of-ann"),
        )
        .send()
        .await;
    assert_eq!(status(&old), 200);
}

/// The adapter spends the budget before it validates: invalid writes count, so probing the
/// schema is not free, and the limited caller gets 429 rather than a validation answer.
#[tokio::test]
async fn invalid_requests_spend_the_budget_too() {
    let app = TestApp::start_with(&[("AGORA_RATE_LIMITS__WRITE_PER_USER__REQUESTS", "2")]).await;
    let ann = app.register("ann").await;
    let patch = |body: serde_json::Value| {
        reqwest::Client::new()
            .patch(format!("{}/v1/me", app.base_url))
            .bearer_auth(&ann.tokens.access_token)
            .json(&body)
            .send()
    };
    for _ in 0..2 {
        let r = patch(serde_json::json!({"display_name": 7}))
            .await
            .expect("answers");
        assert_eq!(r.status().as_u16(), 400);
    }
    let r = patch(serde_json::json!({"display_name": "Valid"}))
        .await
        .expect("answers");
    assert_eq!(
        r.status().as_u16(),
        429,
        "the invalid writes spent the budget"
    );
    let r = patch(serde_json::json!({"display_name": 7}))
        .await
        .expect("answers");
    assert_eq!(r.status().as_u16(), 429, "429 before validation");
}
