use futures::TryStreamExt;

use crate::support::TestApp;

#[tokio::test]
async fn serves_the_contract_byte_for_byte() {
    let app = TestApp::start().await;
    let response = app.client.get_openapi().send().await.expect("contract");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        content_type.as_deref(),
        Some("application/yaml; charset=utf-8")
    );
    let bytes: Vec<u8> = response
        .into_inner()
        .into_inner()
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .expect("body");
    assert_eq!(String::from_utf8(bytes).unwrap(), agora_api::CONTRACT_YAML);
}
