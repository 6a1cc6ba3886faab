//! `/v1/sessions` (login, refresh, logout) and what the bearer check refuses: the session
//! lifecycle, refresh-token reuse, and forged, tampered or expired access tokens.

use std::time::Duration;

use agora_client::types::{LoginRequest, RefreshSessionRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::e2e_both_backends;
use crate::support::{TEST_JWT_KID, TEST_JWT_SECRET, TestApp, error_body, status, test_jwt_keys};

async fn login(
    app: &TestApp,
    login: &str,
    password: &str,
) -> Result<
    agora_client::ResponseValue<agora_client::types::Session>,
    agora_client::Error<agora_client::types::ApiError>,
> {
    app.client
        .login()
        .body(LoginRequest::builder().login(login).password(password))
        .send()
        .await
}

async fn refresh(
    app: &TestApp,
    token: &str,
) -> Result<
    agora_client::ResponseValue<agora_client::types::TokenPair>,
    agora_client::Error<agora_client::types::ApiError>,
> {
    app.client
        .refresh_session()
        .body(RefreshSessionRequest::builder().refresh_token(token))
        .send()
        .await
}

async fn me_status(app: &TestApp, access_token: &str) -> u16 {
    status(&app.client_with_token(access_token).get_me().send().await)
}

e2e_both_backends!(the_session_lifecycle, &[], |app| async move {
    let registered = app.register("ann").await;
    // Sign in again by email (any case), then by handle (any case): two more sessions.
    let by_email = login(&app, "ANN@example.com", "password-of-ann")
        .await
        .expect("login by email")
        .into_inner();
    assert_eq!(by_email.user.id, registered.user.id);
    let session = login(&app, "Ann", "password-of-ann")
        .await
        .expect("login by handle")
        .into_inner();
    let me = app
        .client_with_token(&session.tokens.access_token)
        .get_me()
        .send()
        .await
        .expect("me")
        .into_inner();
    assert_eq!(me.handle.as_str(), "ann");

    // Refresh rotates: the new pair works, and the old refresh token is used up.
    let rotated = refresh(&app, &session.tokens.refresh_token)
        .await
        .expect("refresh")
        .into_inner();
    assert_ne!(rotated.refresh_token, session.tokens.refresh_token);
    assert_eq!(me_status(&app, &rotated.access_token).await, 200);
    let rotated_again = refresh(&app, &rotated.refresh_token)
        .await
        .expect("refresh")
        .into_inner();
    assert_eq!(me_status(&app, &rotated_again.access_token).await, 200);

    // Presenting the first refresh token again is theft: 401, and the whole session ends.
    let (code, body) = error_body(refresh(&app, &session.tokens.refresh_token).await);
    assert_eq!((code, body.error_code.as_str()), (401, "unauthenticated"));
    assert_eq!(
        me_status(&app, &rotated_again.access_token).await,
        401,
        "the session's newest access token is revoked"
    );
    assert_eq!(
        status(&refresh(&app, &rotated_again.refresh_token).await),
        401,
        "and its newest refresh token"
    );
    // Other sessions are untouched.
    assert_eq!(me_status(&app, &by_email.tokens.access_token).await, 200);

    // Logout ends this session only.
    let client = app.client_with_token(&by_email.tokens.access_token);
    let out = client.logout().send().await.expect("logout");
    assert_eq!(out.status().as_u16(), 204);
    assert_eq!(me_status(&app, &by_email.tokens.access_token).await, 401);
    assert_eq!(
        status(&refresh(&app, &by_email.tokens.refresh_token).await),
        401
    );
    assert_eq!(me_status(&app, &registered.tokens.access_token).await, 200);

    // The audit trail has each step, and no token or password anywhere in it.
    let _ = login(&app, "ann", "wrong password!").await;
    let db = app.database().await;
    let filter = agora_db::audit::AuditFilter {
        actor: Some(registered.user.id),
        ..Default::default()
    };
    let mut events = db
        .list_audit_events(&filter, None, 100, agora_db::ReadPolicy::Primary)
        .await
        .expect("audit events");
    events.reverse();
    let steps: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("register", "success"),
            ("login", "success"),
            ("login", "success"),
            ("refresh_token_reuse", "session_revoked"),
            ("logout", "success"),
            ("login", "failure"),
        ]
    );
    let text = format!("{events:?}");
    for secret in [
        &session.tokens.refresh_token,
        &session.tokens.access_token,
        &"password-of-ann".to_owned(),
    ] {
        assert!(
            !text.contains(secret.as_str()),
            "the audit trail holds no secrets"
        );
    }
    assert!(
        events
            .iter()
            .all(|e| !e.request_id.is_empty() && e.ip.is_some())
    );
});

e2e_both_backends!(
    unknown_account_and_wrong_password_look_the_same,
    &[],
    |app| async move {
        app.register("ann").await;
        let (wrong_code, wrong) = error_body(login(&app, "ann", "not-the-password").await);
        let (unknown_code, unknown) = error_body(login(&app, "nobody", "not-the-password").await);
        let (email_code, unknown_email) =
            error_body(login(&app, "nobody@example.com", "not-the-password").await);
        assert_eq!((wrong_code, unknown_code, email_code), (401, 401, 401));
        assert_eq!(wrong.error_code.as_str(), "unauthenticated");
        assert_eq!(wrong.message, unknown.message);
        assert_eq!(wrong.message, unknown_email.message);
        let (code, _) = error_body(refresh(&app, "never-issued").await);
        assert_eq!(code, 401);
    }
);

#[tokio::test]
async fn access_tokens_expire() {
    let app = TestApp::start_with(&[
        ("AGORA_AUTH__ACCESS_TTL_SECS", "1"),
        ("AGORA_AUTH__LEEWAY_SECS", "0"),
    ])
    .await;
    let session = app.register("ann").await;
    assert_eq!(session.tokens.expires_in, 1);
    assert_eq!(me_status(&app, &session.tokens.access_token).await, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(me_status(&app, &session.tokens.access_token).await, 401);
    // The refresh token still renews the session.
    let pair = refresh(&app, &session.tokens.refresh_token)
        .await
        .expect("refresh")
        .into_inner();
    assert_eq!(me_status(&app, &pair.access_token).await, 200);
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The claims the server issues for `sub`/`sid`, with `changes` merged in.
fn claims(sub: &str, sid: &str, changes: Value) -> Value {
    let mut c = json!({
        "sub": sub, "sid": sid, "jti": "x", "iat": now(), "exp": now() + 600,
        "iss": "agora", "aud": "agora-api",
    });
    if let (Some(c), Some(changes)) = (c.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn sign(alg: Algorithm, kid: Option<&str>, secret: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

#[tokio::test]
async fn forged_and_tampered_access_tokens_are_refused() {
    let keys = test_jwt_keys();
    let app = TestApp::start_with(&[("AGORA_AUTH__KEYS", keys.as_str())]).await;
    let session = app.register("ann").await;
    let (sub, sid) = (session.user.id.to_string(), {
        let payload = session
            .tokens
            .access_token
            .split('.')
            .nth(1)
            .expect("payload");
        let c: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        c["sid"].as_str().expect("sid").to_owned()
    });
    let good = claims(&sub, &sid, json!({}));

    // Control: a token forged exactly as the server signs is accepted, so each refusal below is
    // caused by the one thing that differs.
    let control = sign(Algorithm::HS256, Some(TEST_JWT_KID), TEST_JWT_SECRET, &good);
    assert_eq!(me_status(&app, &control).await, 200);

    let mut refused: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT", "kid": TEST_JWT_KID})),
                b64(&good)
            ),
        ),
        (
            "HS384 with the right key",
            sign(Algorithm::HS384, Some(TEST_JWT_KID), TEST_JWT_SECRET, &good),
        ),
        (
            "HS512 with the right key",
            sign(Algorithm::HS512, Some(TEST_JWT_KID), TEST_JWT_SECRET, &good),
        ),
        (
            "the wrong key",
            sign(
                Algorithm::HS256,
                Some(TEST_JWT_KID),
                "another-secret-0123456789abcdef-xyz",
                &good,
            ),
        ),
        (
            "an unknown kid",
            sign(Algorithm::HS256, Some("other"), TEST_JWT_SECRET, &good),
        ),
        (
            "no kid",
            sign(Algorithm::HS256, None, TEST_JWT_SECRET, &good),
        ),
        (
            "the wrong audience",
            sign(
                Algorithm::HS256,
                Some(TEST_JWT_KID),
                TEST_JWT_SECRET,
                &claims(&sub, &sid, json!({"aud": "other-api"})),
            ),
        ),
        (
            "the wrong issuer",
            sign(
                Algorithm::HS256,
                Some(TEST_JWT_KID),
                TEST_JWT_SECRET,
                &claims(&sub, &sid, json!({"iss": "evil"})),
            ),
        ),
        (
            "no audience",
            sign(Algorithm::HS256, Some(TEST_JWT_KID), TEST_JWT_SECRET, &{
                let mut c = good.clone();
                c.as_object_mut().expect("object").remove("aud");
                c
            }),
        ),
        (
            "expired",
            sign(
                Algorithm::HS256,
                Some(TEST_JWT_KID),
                TEST_JWT_SECRET,
                &claims(
                    &sub,
                    &sid,
                    json!({"iat": now() - 7200, "exp": now() - 3600}),
                ),
            ),
        ),
        (
            "no expiry",
            sign(Algorithm::HS256, Some(TEST_JWT_KID), TEST_JWT_SECRET, &{
                let mut c = good.clone();
                c.as_object_mut().expect("object").remove("exp");
                c
            }),
        ),
        // Tokens for a session that never existed, or naming another user, can only be made
        // with the signing key: the authenticator trusts its own signature and checks
        // revocation in the deny-set (no database read per request), so such tokens are a key
        // compromise, answered by rotating the key ring, not by this check.
        ("garbage", "not.a.jwt".to_owned()),
    ];
    // RS256 in the header over an HMAC signature made with the ring's secret (algorithm confusion).
    let rs_input = format!(
        "{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT", "kid": TEST_JWT_KID})),
        b64(&good)
    );
    let rs_sig = jsonwebtoken::crypto::sign(
        rs_input.as_bytes(),
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .expect("sign");
    refused.push((
        "RS256 header over an HMAC signature",
        format!("{rs_input}.{rs_sig}"),
    ));
    // A real token whose payload was edited (another user), signature kept.
    let real = &session.tokens.access_token;
    let parts: Vec<&str> = real.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims(&uuid::Uuid::now_v7().to_string(), &sid, json!({}))),
        parts[2]
    );
    refused.push(("a tampered payload", tampered));

    for (what, token) in &refused {
        let result = app.client_with_token(token).get_me().send().await;
        let (code, body) = error_body(result);
        assert_eq!(code, 401, "{what}");
        assert_eq!(
            body.message, "the access token is invalid or expired",
            "{what}: one answer for every refusal"
        );
    }
    assert_eq!(
        me_status(&app, real).await,
        200,
        "the real token still works"
    );
}
