//! `track_events`: client batches and server-side events reach the database through the buffer
//! and the `write_analytics` job; a refused batch keeps nothing; a full buffer drops (and
//! counts) instead of blocking; the `analytics` class is its own budget.

use agora_client::types::{AnalyticsEvent, TrackEventsRequest};
use agora_db::testing::eventually;

use crate::e2e_both_backends;
use crate::support::{TestApp, error_body};

fn batch(name: &str, n: usize) -> TrackEventsRequest {
    let events: Vec<AnalyticsEvent> = (0..n)
        .map(|i| {
            AnalyticsEvent::builder()
                .name(name)
                .properties(serde_json::Map::from_iter([(
                    "i".to_owned(),
                    serde_json::json!(i),
                )]))
                .try_into()
                .expect("valid event")
        })
        .collect();
    TrackEventsRequest::builder()
        .events(events)
        .try_into()
        .expect("valid batch")
}

async fn stored(db: &agora_db::Db, name: &str, n: i64) {
    eventually("events to be written", async || {
        (db.count_analytics_events(name).await.ok()? == n).then_some(())
    })
    .await;
}

e2e_both_backends!(
    client_and_server_events_are_written_in_batches,
    &[
        ("AGORA_ANALYTICS__ENABLED", "true"),
        ("AGORA_ANALYTICS__FLUSH_INTERVAL_MS", "50")
    ],
    |app| async move {
        let ann = app.register("ann").await;
        let client = app.client_with_token(&ann.tokens.access_token);
        let answer = client
            .track_events()
            .body(batch("screen.viewed", 100))
            .send()
            .await
            .expect("accepted");
        assert_eq!(answer.status().as_u16(), 202);
        let answer = answer.into_inner();
        assert_eq!((answer.accepted, answer.dropped), (100, 0));
        let db = app.database().await;
        stored(&db, "screen.viewed", 100).await;
        stored(&db, "signed_up", 1).await;
        app.login_from("ann", "Laptop/1.0").await;
        stored(&db, "logged_in", 1).await;
    }
);

e2e_both_backends!(
    a_refused_batch_keeps_nothing,
    &[
        ("AGORA_ANALYTICS__ENABLED", "true"),
        ("AGORA_ANALYTICS__FLUSH_INTERVAL_MS", "50")
    ],
    |app| async move {
        let ann = app.register("ann").await;
        let token = ann.tokens.access_token.clone();
        let big = "x".repeat(5000);
        let cases = [
            (
                serde_json::json!({"events": [{"name": "ok.event"}, {"name": "big.event", "properties": {"blob": big}}]}),
                "/events/1/properties",
            ),
            (
                serde_json::json!({"events": [{"name": "Not.Valid"}]}),
                "/events/0/name",
            ),
            (serde_json::json!({"events": []}), "/events"),
            (
                serde_json::json!({"events": (0..101).map(|_| serde_json::json!({"name": "a"})).collect::<Vec<_>>()}),
                "/events",
            ),
        ];
        for (body, pointer) in cases {
            let (status, answer) = app
                .raw_as(Some(&token), reqwest::Method::POST, "/v1/events", body)
                .await;
            assert_eq!(status, 400, "{answer}");
            assert_eq!(answer["error_code"], "invalid_request");
            assert_eq!(answer["details"][0]["pointer"], pointer, "{answer}");
        }
        // A later batch is written; the valid event of the refused batch never was.
        let client = app.client_with_token(&token);
        client
            .track_events()
            .body(batch("sentinel", 1))
            .send()
            .await
            .expect("accepted");
        let db = app.database().await;
        stored(&db, "sentinel", 1).await;
        assert_eq!(
            db.count_analytics_events("ok.event").await.expect("count"),
            0
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_drops_and_counts_instead_of_blocking() {
    let app = TestApp::start_with(&[
        ("AGORA_ANALYTICS__ENABLED", "true"),
        ("AGORA_ANALYTICS__BUFFER_EVENTS", "5"),
        ("AGORA_ANALYTICS__BATCH_SIZE", "5000"),
        ("AGORA_ANALYTICS__FLUSH_INTERVAL_MS", "600000"),
    ])
    .await;
    let ann = app.register("ann").await;
    let client = app.client_with_token(&ann.tokens.access_token);
    let answer = client
        .track_events()
        .body(batch("flood", 100))
        .send()
        .await
        .expect("answers at once")
        .into_inner();
    // The buffer also holds the server's own `signed_up`.
    assert_eq!(answer.accepted + answer.dropped, 100);
    assert!(answer.accepted <= 5 && answer.dropped >= 95, "{answer:?}");
    let metrics = crate::metrics::scrape(&app).await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("analytics_events_dropped_total{reason=\"buffer_full\"}"))
        .expect("the drop counter");
    let dropped: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(dropped >= 95.0, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_has_its_own_budget() {
    let app = TestApp::start_with(&[
        ("AGORA_ANALYTICS__ENABLED", "true"),
        ("AGORA_RATE_LIMITS__CLASSES__ANALYTICS__REQUESTS", "2"),
        ("AGORA_RATE_LIMITS__CLASSES__ANALYTICS__WINDOW_SECS", "3600"),
    ])
    .await;
    let ann = app.register("ann").await;
    let client = app.client_with_token(&ann.tokens.access_token);
    for _ in 0..2 {
        client
            .track_events()
            .body(batch("a", 1))
            .send()
            .await
            .expect("within budget");
    }
    let (status, err) = error_body(client.track_events().body(batch("a", 1)).send().await);
    assert_eq!((status, err.error_code.as_str()), (429, "rate_limited"));
    // Writes of other classes are unaffected.
    client
        .mark_notifications_read()
        .body(agora_client::types::MarkNotificationsReadRequest::builder())
        .send()
        .await
        .expect("the write class is not spent");
}
