//! Request limits every operation gets before its service runs: header size, and JSON that is
//! too deep to parse. Raw HTTP: the generated client cannot send either.

use reqwest::Method;

use crate::cors::{error_code, request};
use crate::support::TestApp;

#[tokio::test]
async fn oversized_headers_are_refused_before_any_work() {
    let app = TestApp::start_with(&[("AGORA_HTTP__MAX_HEADER_BYTES", "2048")]).await;
    let big = "x".repeat(3000);
    let refused = request(&app, Method::GET, "/healthz", &[("x-padding", &big)]).await;
    assert_eq!(refused.status().as_u16(), 431);
    assert_eq!(error_code(refused).await, "headers_too_large");

    // Before authentication, and before the body is looked at.
    let bearer = format!("Bearer {big}");
    let refused = request(&app, Method::GET, "/v1/me", &[("authorization", &bearer)]).await;
    assert_eq!(refused.status().as_u16(), 431);

    let fine = request(
        &app,
        Method::GET,
        "/healthz",
        &[("x-padding", &big[..1000])],
    )
    .await;
    assert_eq!(fine.status().as_u16(), 200);
}

#[tokio::test]
async fn json_nested_too_deep_is_a_400_and_writes_nothing() {
    let app = TestApp::start().await;
    // 5000 levels: far past serde_json's recursion limit (128), well under the body limit.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let response = reqwest::Client::new()
        .post(format!("{}/v1/accounts", app.base_url))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(error_code(response).await, "invalid_request");
    // The server is still serving, and no account appeared.
    let (code, _) = app
        .raw(
            Method::POST,
            "/v1/sessions",
            serde_json::json!({"login": "[", "password": "whatever-password"}),
        )
        .await;
    assert_eq!(code, 401);
}
