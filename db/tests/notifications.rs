//! The notifications repository on both backends: idempotent recording, coalescing of a group
//! into one row with an exact distinct-actor count, read state, the list's keyset order,
//! per-kind settings, and the jobs enqueued with identity writes (a new device, a password change).

use std::time::Duration;

use agora_db::jobs::{JobFilter, NewJob};
use agora_db::notifications::{
    ChannelChoice, MarkRead, NewNotification, NotificationCursor, NotificationKind, Recorded,
    SubjectType,
};
use agora_db::sessions::NewSession;
use agora_db::users::NewUser;
use agora_db::{DbError, ReadPolicy, both_backends};
use uuid::Uuid;

const HOUR: Duration = Duration::from_secs(3600);

async fn user(db: &agora_db::Db, handle: &str) -> Uuid {
    db.create_user(&NewUser {
        handle: handle.into(),
        email: format!("{}@example.com", handle.to_lowercase()),
        display_name: handle.into(),
        password_hash: "$argon2id$x".into(),
    })
    .await
    .expect("create user")
    .id
}

fn event(user: Uuid, kind: NotificationKind) -> NewNotification {
    NewNotification {
        user_id: user,
        kind,
        event_id: Uuid::now_v7(),
        actor_id: None,
        subject: None,
        group: None,
        coalesce_window: HOUR,
        details: "{}".into(),
        in_app: true,
    }
}

fn like(user: Uuid, actor: Uuid, post: Uuid, window: Duration) -> NewNotification {
    NewNotification {
        actor_id: Some(actor),
        subject: Some((SubjectType::Post, post)),
        group: Some(format!("post_liked:{post}")),
        coalesce_window: window,
        ..event(user, NotificationKind::PostLiked)
    }
}

fn follow_up(n: Uuid) -> Vec<NewJob> {
    vec![NewJob {
        queue: "email".into(),
        kind: "send_email".into(),
        payload: format!(r#"{{"notification_id":"{n}"}}"#),
        priority: 0,
        max_attempts: 3,
        run_at: chrono::Utc::now(),
        idempotency_key: None,
        trace_parent: None,
    }]
}

async fn jobs_of(db: &agora_db::Db, kind: &str) -> usize {
    let filter = JobFilter {
        kind: Some(kind.into()),
        ..Default::default()
    };
    db.list_jobs(&filter, None, 1000).await.expect("jobs").len()
}

async fn list(
    db: &agora_db::Db,
    user: Uuid,
    unread_only: bool,
) -> Vec<agora_db::notifications::Notification> {
    db.list_notifications(user, unread_only, None, 100, ReadPolicy::Primary)
        .await
        .expect("list")
}

both_backends!(
    an_event_is_recorded_once_and_its_follow_ups_go_with_it,
    |t| async move {
        let ann = user(&t.db, "ann").await;
        let e = event(ann, NotificationKind::NewLogin);
        let Recorded::Created(n) =
            t.db.record_notification(&e, follow_up)
                .await
                .expect("record")
        else {
            panic!("a new event creates a row");
        };
        assert_eq!(n.kind, NotificationKind::NewLogin);
        assert_eq!((n.actor_count, n.read_at), (0, None));
        assert_eq!(jobs_of(&t.db, "send_email").await, 1);
        // The same event again (a retried job): nothing new, no second email.
        assert_eq!(
            t.db.record_notification(&e, follow_up)
                .await
                .expect("again"),
            Recorded::Duplicate
        );
        assert_eq!(jobs_of(&t.db, "send_email").await, 1);
        assert_eq!(list(&t.db, ann, false).await.len(), 1);
        assert_eq!(
            t.db.count_unread_notifications(ann, ReadPolicy::Primary)
                .await
                .expect("count"),
            1
        );
    }
);

both_backends!(
    fifty_likes_of_a_post_are_one_notification_counting_each_person_once,
    |t| async move {
        let ann = user(&t.db, "ann").await;
        let post = Uuid::now_v7();
        let mut likers = Vec::new();
        for i in 0..50 {
            likers.push(user(&t.db, &format!("fan{i}")).await);
        }
        let mut created = 0;
        for liker in &likers {
            match t
                .db
                .record_notification(&like(ann, *liker, post, HOUR), follow_up)
                .await
                .expect("like")
            {
                Recorded::Created(_) => created += 1,
                Recorded::Joined(_) => {}
                Recorded::Duplicate => panic!("a new liker joins"),
            }
        }
        assert_eq!(created, 1, "one row for the post");
        // A second like by someone already counted changes nothing.
        assert_eq!(
            t.db.record_notification(&like(ann, likers[3], post, HOUR), follow_up)
                .await
                .expect("again"),
            Recorded::Duplicate
        );
        let rows = list(&t.db, ann, false).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].actor_count, 50);
        assert_eq!(
            rows[0].recent_actors,
            vec![likers[49], likers[48], likers[47]]
        );
        assert_eq!(
            jobs_of(&t.db, "send_email").await,
            1,
            "only the created row sends"
        );
        // Likes of another post are another notification.
        let other =
            t.db.record_notification(&like(ann, likers[0], Uuid::now_v7(), HOUR), follow_up)
                .await
                .expect("other");
        assert!(matches!(other, Recorded::Created(_)));
    }
);

both_backends!(a_read_or_stale_group_starts_a_new_row, |t| async move {
    let ann = user(&t.db, "ann").await;
    let [bo, cy, di] = [
        user(&t.db, "bo").await,
        user(&t.db, "cy").await,
        user(&t.db, "di").await,
    ];
    let post = Uuid::now_v7();
    t.db.record_notification(&like(ann, bo, post, HOUR), follow_up)
        .await
        .expect("first");
    t.db.mark_notifications_read(ann, &MarkRead::All)
        .await
        .expect("read");
    let after_read =
        t.db.record_notification(&like(ann, cy, post, HOUR), follow_up)
            .await
            .expect("after read");
    assert!(
        matches!(after_read, Recorded::Created(_)),
        "a read notification is not reopened"
    );
    // A zero window: the group's last activity is already outside it.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let stale =
        t.db.record_notification(&like(ann, di, post, Duration::ZERO), follow_up)
            .await
            .expect("stale");
    assert!(matches!(stale, Recorded::Created(_)));
    assert_eq!(list(&t.db, ann, false).await.len(), 3);
    assert_eq!(list(&t.db, ann, true).await.len(), 2);
});

both_backends!(
    the_list_is_latest_activity_first_and_pages_without_repeats,
    |t| async move {
        let ann = user(&t.db, "ann").await;
        let bo = user(&t.db, "bo").await;
        let post = Uuid::now_v7();
        let Recorded::Created(liked) =
            t.db.record_notification(&like(ann, bo, post, HOUR), follow_up)
                .await
                .expect("like")
        else {
            panic!("created");
        };
        let mut ids = Vec::new();
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            match t
                .db
                .record_notification(&event(ann, NotificationKind::AdminNotice), |_| Vec::new())
                .await
                .expect("notice")
            {
                Recorded::Created(n) => ids.push(n.id),
                other => panic!("{other:?}"),
            }
        }
        // Someone joins the like: it moves to the top.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let cy = user(&t.db, "cy").await;
        t.db.record_notification(&like(ann, cy, post, HOUR), follow_up)
            .await
            .expect("join");
        let all = list(&t.db, ann, false).await;
        assert_eq!(all[0].id, liked.id);
        assert_eq!(all[0].actor_count, 2);
        // Pages of two, following the cursor, see every row once.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page =
                t.db.list_notifications(ann, false, after, 2, ReadPolicy::Primary)
                    .await
                    .expect("page");
            let Some(last) = page.last() else { break };
            after = Some(NotificationCursor {
                activity_at: last.activity_at,
                id: last.id,
            });
            seen.extend(page.iter().map(|n| n.id));
        }
        assert_eq!(seen, all.iter().map(|n| n.id).collect::<Vec<_>>());
    }
);

both_backends!(
    marking_read_all_up_to_or_by_ids_only_touches_the_callers_rows,
    |t| async move {
        let ann = user(&t.db, "ann").await;
        let bo = user(&t.db, "bo").await;
        let mut ids = Vec::new();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if let Recorded::Created(n) =
                t.db.record_notification(&event(ann, NotificationKind::AdminNotice), |_| Vec::new())
                    .await
                    .expect("record")
            {
                ids.push(n.id);
            }
        }
        let Recorded::Created(bos) =
            t.db.record_notification(&event(bo, NotificationKind::AdminNotice), |_| Vec::new())
                .await
                .expect("bo")
        else {
            panic!("created");
        };
        // Up to the second oldest: it and the oldest.
        assert_eq!(
            t.db.mark_notifications_read(ann, &MarkRead::UpTo(ids[1]))
                .await
                .expect("up to"),
            2
        );
        let unread: Vec<Uuid> = list(&t.db, ann, true).await.iter().map(|n| n.id).collect();
        assert_eq!(unread, vec![ids[3], ids[2]]);
        // Someone else's id is ignored; ids already read count nothing.
        assert_eq!(
            t.db.mark_notifications_read(ann, &MarkRead::Ids(vec![ids[3], ids[0], bos.id]))
                .await
                .expect("ids"),
            1
        );
        assert!(matches!(
            t.db.mark_notifications_read(ann, &MarkRead::UpTo(bos.id))
                .await,
            Err(DbError::NotFound)
        ));
        assert_eq!(
            t.db.mark_notifications_read(ann, &MarkRead::All)
                .await
                .expect("all"),
            1
        );
        assert_eq!(
            t.db.count_unread_notifications(ann, ReadPolicy::Primary)
                .await
                .expect("ann"),
            0
        );
        assert_eq!(
            t.db.count_unread_notifications(bo, ReadPolicy::Primary)
                .await
                .expect("bo"),
            1
        );
    }
);

both_backends!(
    rows_not_shown_in_the_app_are_neither_listed_nor_counted,
    |t| async move {
        let ann = user(&t.db, "ann").await;
        let hidden = NewNotification {
            in_app: false,
            ..event(ann, NotificationKind::NewLogin)
        };
        assert!(matches!(
            t.db.record_notification(&hidden, follow_up)
                .await
                .expect("record"),
            Recorded::Created(_)
        ));
        assert!(list(&t.db, ann, false).await.is_empty());
        assert_eq!(
            t.db.count_unread_notifications(ann, ReadPolicy::Primary)
                .await
                .expect("count"),
            0
        );
        assert_eq!(
            jobs_of(&t.db, "send_email").await,
            1,
            "other channels still go"
        );
    }
);

both_backends!(settings_store_per_kind_and_overwrite, |t| async move {
    let ann = user(&t.db, "ann").await;
    assert!(
        t.db.notification_settings(ann, ReadPolicy::Primary)
            .await
            .expect("none")
            .is_empty()
    );
    let choice = |email| ChannelChoice {
        kind: NotificationKind::PostLiked,
        in_app: true,
        email,
        push: false,
    };
    t.db.save_notification_settings(ann, &[choice(true)])
        .await
        .expect("save");
    t.db.save_notification_settings(ann, &[choice(false)])
        .await
        .expect("overwrite");
    assert_eq!(
        t.db.notification_settings(ann, ReadPolicy::Primary)
            .await
            .expect("read"),
        vec![choice(false)]
    );
});

both_backends!(
    a_session_from_an_unseen_user_agent_enqueues_its_notice,
    |t| async move {
        let ann = user(&t.db, "ann").await;
        let session = |agent: Option<&str>, hash: &str| NewSession {
            user_id: ann,
            user_agent: agent.map(str::to_owned),
            ip: Some("127.0.0.1".into()),
            refresh_token_hash: hash.into(),
        };
        let notice = |_| follow_up(Uuid::nil());
        let (_, first) =
            t.db.create_session_noting_device(&session(Some("phone"), "h1"), notice)
                .await
                .expect("first");
        assert!(!first, "the first sign-in has nothing to compare with");
        let (_, same) =
            t.db.create_session_noting_device(&session(Some("phone"), "h2"), notice)
                .await
                .expect("same");
        assert!(!same);
        let (_, laptop) =
            t.db.create_session_noting_device(&session(Some("laptop"), "h3"), notice)
                .await
                .expect("laptop");
        assert!(laptop);
        let (_, anonymous) =
            t.db.create_session_noting_device(&session(None, "h4"), notice)
                .await
                .expect("no agent");
        assert!(anonymous);
        let (_, anonymous_again) =
            t.db.create_session_noting_device(&session(None, "h5"), notice)
                .await
                .expect("again");
        assert!(!anonymous_again);
        assert_eq!(jobs_of(&t.db, "send_email").await, 2);
    }
);

both_backends!(
    a_password_change_enqueues_with_its_transaction_or_not_at_all,
    |t| async move {
        let ann = user(&t.db, "ann").await;
        let (current, _) =
            t.db.create_session_noting_device(
                &NewSession {
                    user_id: ann,
                    user_agent: None,
                    ip: None,
                    refresh_token_hash: "h".into(),
                },
                |_| Vec::new(),
            )
            .await
            .expect("session");
        let audit = agora_db::audit::NewAuditEvent {
            actor_user_id: Some(ann),
            action: agora_db::audit::AuditAction::PasswordChange,
            target: None,
            outcome: agora_db::audit::AuditOutcome::Success,
            ip: None,
            user_agent: None,
            request_id: "r".into(),
        };
        let jobs = follow_up(ann);
        t.db.change_password(ann, "$argon2id$new", current.id, &audit, &jobs)
            .await
            .expect("change");
        assert_eq!(jobs_of(&t.db, "send_email").await, 1);
        let missing =
            t.db.change_password(Uuid::now_v7(), "$argon2id$new", current.id, &audit, &jobs)
                .await;
        assert!(matches!(missing, Err(DbError::NotFound)));
        assert_eq!(
            jobs_of(&t.db, "send_email").await,
            1,
            "the rolled-back change enqueued nothing"
        );
    }
);

/// Concurrent likes race for the group's first row; the losers run again at once and join it
/// (no conflict reaches their jobs), and the count is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_likes_on_postgres_make_one_row_with_an_exact_count() {
    let Some(t) = agora_db::testing::TestDb::postgres().await else {
        return;
    };
    let ann = user(&t.db, "ann").await;
    let post = Uuid::now_v7();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let db = t.db.clone();
        let liker = user(&t.db, &format!("fan{i}")).await;
        tasks.push(tokio::spawn(async move {
            let e = like(ann, liker, post, HOUR);
            match db.record_notification(&e, |_| Vec::new()).await {
                Ok(r) => r,
                Err(e) => panic!("the race reached the caller: {e}"),
            }
        }));
    }
    let mut created = 0;
    for task in tasks {
        if matches!(task.await.expect("task"), Recorded::Created(_)) {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    let rows = list(&t.db, ann, false).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor_count, 24);
}

#[derive(diesel::QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The plan of `sql` with sequential scans discouraged: which index the query shape can use.
async fn plan(t: &agora_db::testing::TestDb, sql: &str) -> String {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    let mut conn = t.db.write().await.expect("conn");
    let agora_db::Conn::Pg(c) = &mut conn else {
        panic!("a PostgreSQL connection");
    };
    let c: &mut agora_db::conn_types::PgConn = c;
    c.batch_execute("SET enable_seqscan = off")
        .await
        .expect("set");
    if sql.starts_with("ANALYZE") {
        c.batch_execute(sql).await.expect("analyze");
        return String::new();
    }
    let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN {sql}"))
        .load(c)
        .await
        .expect("explain");
    c.batch_execute("RESET enable_seqscan")
        .await
        .expect("reset");
    lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The two queries every client runs most (the list and the unread badge) are served by the
/// partial indexes made for them, not by scanning a user's whole history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_and_the_badge_use_their_indexes_on_postgres() {
    let Some(t) = agora_db::testing::TestDb::postgres().await else {
        return;
    };
    let ann = user(&t.db, "ann").await;
    // A realistic shape: a long read history and a few unread on top.
    for i in 0..205 {
        if i == 200 {
            t.db.mark_notifications_read(ann, &MarkRead::All)
                .await
                .expect("read");
        }
        t.db.record_notification(&event(ann, NotificationKind::AdminNotice), |_| Vec::new())
            .await
            .expect("record");
    }
    plan(&t, "ANALYZE notifications").await;
    let list = plan(
        &t,
        &format!(
            "SELECT * FROM notifications WHERE user_id = '{ann}' AND in_app = true \
             ORDER BY activity_at DESC, id DESC LIMIT 21"
        ),
    )
    .await;
    assert!(list.contains("notifications_list_idx"), "{list}");
    assert!(!list.contains("Sort"), "the index gives the order: {list}");
    let badge = plan(
        &t,
        &format!(
            "SELECT count(*) FROM notifications WHERE user_id = '{ann}' AND in_app = true \
             AND read_at IS NULL"
        ),
    )
    .await;
    assert!(badge.contains("notifications_unread_idx"), "{badge}");
}
