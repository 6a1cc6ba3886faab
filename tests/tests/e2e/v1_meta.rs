use crate::support::TestApp;

#[tokio::test]
async fn describes_the_deployment() {
    let app = TestApp::start().await;
    let meta = app
        .client
        .get_meta()
        .send()
        .await
        .expect("meta")
        .into_inner();
    assert_eq!(meta.service, "agora");
    assert_eq!(meta.contract_version, agora_api::CONTRACT_VERSION);
    assert_eq!(meta.version, env!("CARGO_PKG_VERSION"));
    assert!(!meta.build_commit.is_empty());
    assert_eq!(
        serde_json::to_value(meta.deployment_shape).unwrap(),
        "embedded"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_with_a_request_id() {
    let app = TestApp::start().await;
    let response = reqwest::get(format!("{}/v1/nope", app.base_url))
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 404);
    assert!(response.headers().contains_key("x-request-id"));
}
