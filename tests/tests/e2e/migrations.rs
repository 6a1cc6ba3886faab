//! Start-up and the schema: behind → not ready (naming the version); edited → refuses to start;
//! PostgreSQL → the cluster shape.

use agora_client::Error;
use agora_db::dispatch;
use agora_db::testing::TestDb;
use diesel_async::SimpleAsyncConnection;

use crate::support::TestApp;

#[tokio::test]
async fn a_schema_behind_keeps_the_server_not_ready_naming_the_migration() {
    let app = TestApp::start_with(&[("AGORA_MIGRATIONS__AUTO_APPLY", "false")]).await;
    match app.client.get_readyz().send().await {
        Err(Error::ErrorResponse(r)) => {
            assert_eq!(r.status().as_u16(), 503);
            assert!(r.message.contains("0001_users"), "{}", r.message);
        }
        other => panic!("expected 503, got {other:?}"),
    }
    // The rest of the API still answers.
    app.client.get_healthz().send().await.expect("alive");
}

#[tokio::test]
async fn an_edited_migration_refuses_start_naming_version_and_checksums() {
    let t = TestDb::sqlite().await;
    let mut conn = t.db.write().await.expect("conn");
    dispatch!(conn, c => c.batch_execute("UPDATE agora_migration_checksums SET sha256 = 'abc123' WHERE version = 1").await)
        .expect("tamper");
    drop(conn);
    let err = match TestApp::try_start_with(&[("AGORA_DATABASE__URL", &t.config.url)]).await {
        Ok(_) => panic!("the server must refuse to start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("refusing to start"), "{err}");
    assert!(
        err.contains("0001_users") && err.contains("abc123"),
        "{err}"
    );
}

#[tokio::test]
async fn postgres_is_the_cluster_shape() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let app = TestApp::start_with(&[("AGORA_DATABASE__URL", &t.config.url)]).await;
    let meta = app
        .client
        .get_meta()
        .send()
        .await
        .expect("meta")
        .into_inner();
    assert_eq!(
        serde_json::to_value(meta.deployment_shape).expect("json"),
        "cluster"
    );
}
