//! The database layer on both backends: migrations, checksums, repositories, errors, limits.

use agora_db::migrate::{self, Embedded, StartupCheck, State};
use agora_db::testing::TestDb;
use agora_db::users::NewUser;
use agora_db::{DbConfig, DbError, ReadPolicy, both_backends, dispatch};
use diesel_async::SimpleAsyncConnection;

fn new_user(handle: &str) -> NewUser {
    NewUser {
        handle: handle.into(),
        email: format!("{}@example.com", handle.to_lowercase()),
        display_name: "Ann".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

both_backends!(migrations_apply_once_and_record_checksums, |t| async move {
    let status = migrate::status(&t.db).await.expect("status");
    assert!(
        status.entries.iter().all(|e| e.state == State::Applied),
        "{}",
        status.render()
    );
    assert_eq!(status.entries.len(), migrate::EMBEDDED.len());
    for (entry, embedded) in status.entries.iter().zip(migrate::EMBEDDED) {
        assert_eq!(
            entry.sha256,
            migrate::checksum(embedded.sql(t.db.backend()))
        );
        assert!(entry.applied_at.is_some());
    }
    assert_eq!(
        migrate::up(&t.db).await.expect("idempotent"),
        Vec::<u32>::new()
    );
    assert_eq!(
        migrate::check_at_startup(&t.db, false)
            .await
            .expect("ready"),
        StartupCheck::Ready
    );
});

both_backends!(
    a_changed_checksum_refuses_start_naming_both,
    |t| async move {
        let mut conn = t.db.write().await.expect("conn");
        dispatch!(conn, c => c.batch_execute("UPDATE agora_migration_checksums SET sha256 = 'deadbeef' WHERE version = 1").await)
        .expect("tamper");
        drop(conn);
        let err = migrate::check_at_startup(&t.db, true)
            .await
            .expect_err("refuses");
        let text = err.to_string();
        assert!(text.contains("0001_users"), "{text}");
        assert!(
            text.contains("deadbeef"),
            "names the recorded checksum: {text}"
        );
        assert!(
            text.contains(&migrate::checksum(migrate::EMBEDDED[0].sql(t.db.backend()))),
            "names ours: {text}"
        );
        assert!(migrate::up(&t.db).await.is_err(), "up refuses too");
    }
);

both_backends!(
    an_unknown_newer_migration_is_accepted_with_a_warning,
    |t| async move {
        static NEWER: &[Embedded] = &[Embedded {
            version: 9999,
            name: "from_the_future",
            postgres: "CREATE TABLE future_things (id BIGINT PRIMARY KEY)",
            sqlite: "CREATE TABLE future_things (id BIGINT PRIMARY KEY)",
        }];
        let all: Vec<Embedded> = migrate::EMBEDDED
            .iter()
            .map(|m| Embedded {
                version: m.version,
                name: m.name,
                postgres: m.postgres,
                sqlite: m.sqlite,
            })
            .chain(NEWER.iter().map(|m| Embedded {
                version: m.version,
                name: m.name,
                postgres: m.postgres,
                sqlite: m.sqlite,
            }))
            .collect();
        // A newer binary ran its expand step...
        assert_eq!(
            migrate::up_with(&t.db, &all)
                .await
                .expect("newer binary migrates"),
            vec![9999]
        );
        // ...and this older binary still starts.
        let status = migrate::status(&t.db).await.expect("status");
        assert_eq!(status.unknown().len(), 1);
        assert_eq!(
            migrate::check_at_startup(&t.db, false)
                .await
                .expect("starts"),
            StartupCheck::Ready
        );
    }
);

both_backends!(
    pending_migrations_without_auto_apply_keep_the_server_behind,
    |t| async move {
        // A database of the same backend with nothing applied.
        let Some(empty) = TestDb::empty(t.db.backend()).await else {
            return;
        };
        match migrate::check_at_startup(&empty.db, false)
            .await
            .expect("checks")
        {
            StartupCheck::Behind { first_pending } => assert_eq!(first_pending, "0001_users"),
            other => panic!("expected Behind, got {other:?}"),
        }
        assert_eq!(
            migrate::check_at_startup(&empty.db, true)
                .await
                .expect("applies"),
            StartupCheck::Ready
        );
        assert!(
            migrate::status(&empty.db)
                .await
                .expect("status")
                .pending()
                .is_empty()
        );
    }
);

both_backends!(users_round_trip_with_microsecond_times, |t| async move {
    let created = t.db.create_user(&new_user("Ann_1")).await.expect("created");
    assert_eq!(created.id.get_version_num(), 7, "ids are UUIDv7");
    let read =
        t.db.get_user(created.id, ReadPolicy::Anyone)
            .await
            .expect("read back");
    assert_eq!(
        read, created,
        "what was written reads back exactly (timestamps included)"
    );
    let updated =
        t.db.update_profile(
            created.id,
            &agora_db::users::ProfileChanges {
                display_name: Some("Annie".into()),
                ..Default::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(updated.display_name, "Annie");
    assert!(updated.updated_at >= created.updated_at);
    assert!(matches!(
        t.db.get_user(uuid::Uuid::now_v7(), ReadPolicy::Anyone)
            .await,
        Err(DbError::NotFound)
    ));
});

both_backends!(handles_are_unique_case_insensitively, |t| async move {
    t.db.create_user(&new_user("Ann_2")).await.expect("first");
    let mut dup = new_user("ANN_2");
    dup.email = "other@example.com".into();
    match t.db.create_user(&dup).await {
        Err(DbError::Conflict { constraint }) => assert_eq!(constraint, "users_handle_key"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let mut dup_email = new_user("someone_else");
    dup_email.email = "ann_2@example.com".into();
    match t.db.create_user(&dup_email).await {
        Err(DbError::Conflict { constraint }) => assert_eq!(constraint, "users_email_key"),
        other => panic!("expected a conflict, got {other:?}"),
    }
});

/// Pool exhaustion answers `Unavailable` after the acquire timeout, never an endless wait.
#[tokio::test]
async fn an_exhausted_pool_is_unavailable() {
    let t = TestDb::sqlite_with(DbConfig {
        pool_size: 1,
        acquire_timeout_ms: 100,
        ..DbConfig::default()
    })
    .await;
    let held = t.db.write().await.expect("the only connection");
    match t.db.write().await {
        Err(DbError::Unavailable { .. }) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    drop(held);
    t.db.write().await.expect("available again");
}

/// A statement running past the statement timeout is stopped (PostgreSQL enforces it server-side).
#[tokio::test]
async fn a_slow_statement_times_out() {
    let Some(t) = TestDb::postgres_with(DbConfig {
        statement_timeout_ms: 200,
        ..DbConfig::default()
    })
    .await
    else {
        return;
    };
    let mut conn = t.db.write().await.expect("conn");
    let result =
        t.db.run("sleep", agora_db::Target::Primary, async {
            dispatch!(conn, c => c.batch_execute("SELECT pg_sleep(5)").await)
        })
        .await;
    assert!(
        matches!(result, Err(DbError::Timeout { timeout_ms: 200 })),
        "{result:?}"
    );
}
