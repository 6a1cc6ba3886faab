use crate::support::TestApp;

#[tokio::test]
async fn answers_ok_with_a_request_id() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get_healthz()
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(
        serde_json::to_value(response.into_inner()).unwrap(),
        serde_json::json!({"status": "ok"})
    );
}
