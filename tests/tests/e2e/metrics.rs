use futures::TryStreamExt;

use crate::support::TestApp;

/// The `/metrics` text of `app`.
pub async fn scrape(app: &TestApp) -> String {
    let response = app.client.get_metrics().send().await.expect("metrics");
    let bytes: Vec<u8> = response
        .into_inner()
        .into_inner()
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .expect("body");
    String::from_utf8(bytes).expect("utf-8")
}

#[tokio::test]
async fn counts_requests_and_buckets_latency_per_operation() {
    let app = TestApp::start().await;
    app.client.get_meta().send().await.expect("meta");
    let text = scrape(&app).await;
    // The recorder is process-wide (tests share it), so assert presence, not exact counts.
    assert!(
        text.contains(r#"http_requests_total{operation_id="get_meta",method="GET",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{operation_id="get_meta",method="GET",le="0.005"}"#),
        "latency is a histogram with real buckets: {text}"
    );
    assert!(
        text.contains("# TYPE http_request_duration_seconds histogram"),
        "{text}"
    );
}
