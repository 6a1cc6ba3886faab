//! The analytics repository on both backends: batches written once per event id, and retention
//! (whole daily partitions on PostgreSQL, rows on SQLite).

use agora_db::analytics::NewEvent;
use agora_db::both_backends;
use chrono::{Duration, Utc};

fn event(name: &str, days_ago: i64) -> NewEvent {
    let at = Utc::now() - Duration::days(days_ago);
    NewEvent {
        id: uuid::Uuid::now_v7(),
        received_at: at,
        occurred_at: at,
        name: name.into(),
        source: "client".into(),
        user_id: None,
        properties: r#"{"screen":"home"}"#.into(),
    }
}

both_backends!(
    a_batch_is_stored_once_per_event_even_when_written_twice,
    |t| async move {
        let batch: Vec<NewEvent> = (0..1200).map(|_| event("screen.viewed", 0)).collect();
        assert_eq!(
            t.db.insert_analytics_events(&batch).await.expect("insert"),
            1200
        );
        // A retried job writes the same batch again.
        assert_eq!(
            t.db.insert_analytics_events(&batch).await.expect("again"),
            0
        );
        assert_eq!(
            t.db.count_analytics_events("screen.viewed")
                .await
                .expect("count"),
            1200
        );
        assert_eq!(t.db.insert_analytics_events(&[]).await.expect("empty"), 0);
    }
);

both_backends!(
    retention_removes_old_days_and_keeps_recent_ones,
    |t| async move {
        let batch = vec![
            event("old", 100),
            event("old", 95),
            event("recent", 1),
            event("recent", 0),
        ];
        t.db.insert_analytics_events(&batch).await.expect("insert");
        let purged =
            t.db.purge_analytics_before(Utc::now() - Duration::days(90))
                .await
                .expect("purge");
        assert_eq!(
            purged, 2,
            "two partitions (PostgreSQL) or two rows (SQLite)"
        );
        assert_eq!(t.db.count_analytics_events("old").await.expect("old"), 0);
        assert_eq!(
            t.db.count_analytics_events("recent").await.expect("recent"),
            2
        );
        assert_eq!(
            t.db.purge_analytics_before(Utc::now() - Duration::days(90))
                .await
                .expect("again"),
            0
        );
    }
);
