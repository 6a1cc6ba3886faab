use agora_client::Error;

use crate::support::TestApp;

#[tokio::test]
async fn ready_after_start() {
    let app = TestApp::start().await;
    let response = app.client.get_readyz().send().await.expect("ready");
    assert_eq!(
        serde_json::to_value(response.into_inner()).unwrap(),
        serde_json::json!({"status": "ready"})
    );
}

#[tokio::test]
async fn not_ready_while_draining_with_retry_after_and_the_error_body() {
    let mut app = TestApp::start_with(&[("AGORA_HTTP__SHUTDOWN_DRAIN_SECS", "30")]).await;
    let server = app.server.take().expect("server");
    let shutdown = tokio::spawn(server.shutdown());
    // The lifecycle flips before the drain sleep starts; poll until the answer changes.
    let mut answer = None;
    for _ in 0..200 {
        match app.client.get_readyz().send().await {
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            Err(e) => {
                answer = Some(e);
                break;
            }
        }
    }
    let Some(Error::ErrorResponse(response)) = answer else {
        panic!("readyz never turned unavailable")
    };
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_inner();
    assert_eq!(body.error_code.as_str(), "unavailable");
    assert_eq!(body.message, "the server is shutting down");
    assert_eq!(
        Some(body.request_id),
        header_id,
        "the body carries the request id of the header"
    );
    shutdown.abort();
}
