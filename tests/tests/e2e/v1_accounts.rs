//! `POST /v1/accounts` (register): sign-up, uniqueness, validation from the contract.

use agora_client::types::RegisterRequest;
use serde_json::json;

use crate::e2e_both_backends;
use crate::support::{TestApp, error_body};

e2e_both_backends!(
    registering_signs_in_with_a_normalized_email,
    &[],
    |app| async move {
        let response = app
            .client
            .register()
            .body(
                RegisterRequest::builder()
                    .handle("Ann_1")
                    .email("Ann@Example.COM")
                    .password("a long enough password")
                    .display_name("Ann"),
            )
            .send()
            .await
            .expect("register");
        assert_eq!(response.status().as_u16(), 201);
        let session = response.into_inner();
        assert_eq!(session.user.handle.as_str(), "Ann_1", "shown as typed");
        assert_eq!(session.user.email, "ann@example.com");
        assert_eq!(session.tokens.token_type.to_string(), "Bearer");
        assert_eq!(session.tokens.expires_in, 900);
        assert_ne!(session.tokens.access_token, session.tokens.refresh_token);
        let me = app
            .client_with_token(&session.tokens.access_token)
            .get_me()
            .send()
            .await
            .expect("the new session works")
            .into_inner();
        assert_eq!(me.id, session.user.id);
    }
);

e2e_both_backends!(
    a_taken_handle_in_any_case_or_email_is_409,
    &[],
    |app| async move {
        app.register("ann").await;
        let attempt = |handle: &str, email: &str| {
            app.client.register().body(
                RegisterRequest::builder()
                    .handle(handle)
                    .email(email)
                    .password("a long enough password")
                    .display_name("Other"),
            )
        };
        let db = app.database().await;
        let before = agora_db::testing::row_counts(&db).await.expect("counts");
        let (status, by_handle) = error_body(attempt("ANN", "other@example.com").send().await);
        assert_eq!(
            (status, by_handle.error_code.as_str()),
            (409, "handle_taken")
        );
        let (status, by_email) = error_body(attempt("other", "Ann@example.com").send().await);
        assert_eq!((status, by_email.error_code.as_str()), (409, "email_taken"));
        for body in [&by_handle, &by_email] {
            assert!(
                !body.message.contains("users_") && !body.message.contains("key"),
                "no constraint names in answers: {}",
                body.message
            );
        }
        // Only the two `conflict` audit events were written; no user, session or token.
        let mut after = agora_db::testing::row_counts(&db).await.expect("counts");
        assert_eq!(
            after.get("audit_events"),
            before.get("audit_events").map(|n| n + 2).as_ref()
        );
        after.insert("audit_events".into(), before["audit_events"]);
        assert_eq!(after, before);
    }
);

#[tokio::test]
async fn invalid_input_is_400_naming_every_field() {
    let app = TestApp::start().await;
    let (status, body) = app
        .raw(
            reqwest::Method::POST,
            "/v1/accounts",
            json!({"handle": "no-dashes", "email": "not an email", "password": "short", "display_name": "X"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], "invalid_request");
    let mut named: Vec<(String, String)> = body["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| {
            (
                d["pointer"].as_str().unwrap_or_default().to_owned(),
                d["rule"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            ("/email".to_owned(), "format".to_owned()),
            ("/handle".to_owned(), "pattern".to_owned()),
            ("/password".to_owned(), "minLength".to_owned()),
        ],
        "{body}"
    );
    let (status, body) = app
        .raw(
            reqwest::Method::POST,
            "/v1/accounts",
            json!({"handle": "ab", "email": "a@example.com", "password": "x".repeat(257), "display_name": "X", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let rules: Vec<&str> = body["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["rule"].as_str())
        .collect();
    assert!(rules.contains(&"minLength"), "short handle: {body}");
    assert!(rules.contains(&"maxLength"), "long password: {body}");
    assert!(
        rules.contains(&"additionalProperties"),
        "no smuggled fields: {body}"
    );
}

/// `x-agora-feature: registration`: switched off, sign-up answers 503 `feature_disabled` with
/// `Retry-After` before the body is even validated, and creates nothing.
#[tokio::test]
async fn registration_can_be_switched_off() {
    let app = TestApp::start_with(&[
        ("AGORA_FEATURES__REGISTRATION", "false"),
        ("AGORA_HTTP__FEATURE_DISABLED_RETRY_AFTER_SECS", "120"),
    ])
    .await;
    let db = app.database().await;
    let before = agora_db::testing::row_counts(&db).await.expect("counts");
    for body in [
        json!({"handle": "ann", "email": "ann@example.com", "password": "a long enough password", "display_name": "Ann"}),
        json!({"handle": 7}),
    ] {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/accounts", app.base_url))
            .json(&body)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers()["retry-after"], "120");
        let error: serde_json::Value = response.json().await.expect("json");
        assert_eq!(error["error_code"], "feature_disabled", "{error}");
    }
    let (status, error) = error_body(
        app.client
            .register()
            .body(
                RegisterRequest::builder()
                    .handle("ann")
                    .email("ann@example.com")
                    .password("a long enough password")
                    .display_name("Ann"),
            )
            .send()
            .await,
    );
    assert_eq!(
        (status, error.error_code.as_str()),
        (503, "feature_disabled")
    );
    assert_eq!(
        agora_db::testing::row_counts(&db).await.expect("counts"),
        before,
        "nothing was created"
    );
    // Sign-in is not gated by the flag.
    let login = app
        .client
        .login()
        .body(
            agora_client::types::LoginRequest::builder()
                .login("nobody")
                .password("not-the-password"),
        )
        .send()
        .await;
    assert_eq!(crate::support::status(&login), 401);
}
