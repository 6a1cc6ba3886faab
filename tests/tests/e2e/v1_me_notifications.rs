//! `/v1/me/notifications` and `/v1/me/notification-settings`: identity events (a sign-in from
//! a new device, a password change) arrive as in-app notifications through the job pipeline;
//! the badge, mark-read and settings work; refused requests name why and change nothing; and a
//! notification is published on the user's broker channel for every instance.

use agora_client::types::{
    ChangePasswordRequest, ChannelSettingsUpdate, MarkNotificationsReadRequest, Notification,
    NotificationKind, NotificationSettingsUpdate, NotificationSubjectType,
};
use agora_db::testing::{eventually, row_counts};

use crate::e2e_both_backends;
use crate::support::{TestApp, error_body, wait_for_notifications};

async fn notifications(client: &agora_client::Client, unread_only: bool) -> Vec<Notification> {
    client
        .list_notifications()
        .unread_only(unread_only)
        .send()
        .await
        .expect("list")
        .into_inner()
        .items
}

async fn unread(client: &agora_client::Client) -> i64 {
    client
        .get_unread_count()
        .send()
        .await
        .expect("count")
        .into_inner()
        .count
}

e2e_both_backends!(
    a_sign_in_from_a_new_device_and_a_password_change_notify_the_owner,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let client = app.client_with_token(&ann.tokens.access_token);
        // A device the account never used is news; the same device again is not (it enqueues
        // nothing, which the final count of two shows).
        let laptop = app.login_from("ann", "Laptop/1.0").await;
        app.login_from("ann", "Laptop/1.0").await;
        let items = wait_for_notifications(&client, 1).await;
        let n = &items[0];
        assert_eq!(n.kind, NotificationKind::NewLogin);
        assert!(!n.read);
        assert_eq!(
            n.details.get("user_agent").map(String::as_str),
            Some("Laptop/1.0")
        );
        assert_eq!(n.details.get("ip").map(String::as_str), Some("127.0.0.1"));
        let subject = n.subject.as_ref().expect("the session");
        assert_eq!(subject.type_, NotificationSubjectType::Session);
        assert_eq!(n.actor_count, 0);
        assert!(n.actors.is_empty());
        assert!(n.text.contains("new device"), "{}", n.text);
        assert_eq!(unread(&client).await, 1);

        // The change signs every other session out, so read with the laptop's from now on.
        let client = app.client_with_token(&laptop.tokens.access_token);
        client
            .change_password()
            .body(
                ChangePasswordRequest::builder()
                    .current_password("password-of-ann")
                    .new_password("a-new-password-for-ann"),
            )
            .send()
            .await
            .expect("change password");
        let items = wait_for_notifications(&client, 2).await;
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].kind,
            NotificationKind::PasswordChanged,
            "newest first"
        );
        assert_eq!(unread(&client).await, 2);

        // Mark everything read; the answer is the remaining count.
        let left = client
            .mark_notifications_read()
            .body(MarkNotificationsReadRequest::builder())
            .send()
            .await
            .expect("mark")
            .into_inner();
        assert_eq!(left.count, 0);
        assert_eq!(unread(&client).await, 0, "the cached badge was replaced");
        assert!(notifications(&client, true).await.is_empty());
        assert!(notifications(&client, false).await.iter().all(|n| n.read));
    }
);

e2e_both_backends!(
    marking_up_to_an_id_or_by_ids_and_paging,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let client = app.client_with_token(&ann.tokens.access_token);
        for i in 0..5 {
            app.login_from("ann", &format!("Device/{i}")).await;
        }
        let all = wait_for_notifications(&client, 5).await;
        // Pages of two walk the whole list once.
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = client
                .list_notifications()
                .limit(std::num::NonZeroU32::new(2).expect("2"));
            if let Some(t) = &token {
                call = call.page_token(t.clone());
            }
            let page = call.send().await.expect("page").into_inner();
            seen.extend(page.items.iter().map(|n| n.id));
            match page.next_page {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, all.iter().map(|n| n.id).collect::<Vec<_>>());
        // Up to the third newest: it and the two older ones.
        let left = client
            .mark_notifications_read()
            .body(MarkNotificationsReadRequest::builder().up_to(all[2].id))
            .send()
            .await
            .expect("up to")
            .into_inner();
        assert_eq!(left.count, 2);
        let left = client
            .mark_notifications_read()
            .body(MarkNotificationsReadRequest::builder().ids(vec![all[0].id]))
            .send()
            .await
            .expect("ids")
            .into_inner();
        assert_eq!(left.count, 1);
        let unread_ids: Vec<_> = notifications(&client, true)
            .await
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(unread_ids, vec![all[1].id]);
    }
);

e2e_both_backends!(
    settings_have_defaults_and_turning_in_app_off_hides_new_ones,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let client = app.client_with_token(&ann.tokens.access_token);
        let defaults = client
            .get_notification_settings()
            .send()
            .await
            .expect("get")
            .into_inner();
        assert!(defaults.friend_request.email && defaults.friend_request.in_app);
        assert!(
            !defaults.post_liked.email,
            "likes are not emailed by default"
        );
        assert!(defaults.post_liked.push);
        let changed = client
            .update_notification_settings()
            .body(
                NotificationSettingsUpdate::builder().new_login(Some(
                    ChannelSettingsUpdate::builder()
                        .in_app(false)
                        .try_into()
                        .expect("valid"),
                )),
            )
            .send()
            .await
            .expect("update")
            .into_inner();
        assert!(!changed.new_login.in_app);
        assert!(
            changed.new_login.email,
            "untouched channels keep their value"
        );
        assert!(changed.friend_request.email && changed.friend_request.push);
        let again = client
            .get_notification_settings()
            .send()
            .await
            .expect("get")
            .into_inner();
        assert!(!again.new_login.in_app && again.new_login.email && again.new_login.push);

        app.login_from("ann", "Hidden/1.0").await;
        // The job ran (the row exists for the other channels) but the app does not list it.
        let db = app.database().await;
        let filter = agora_db::jobs::JobFilter {
            kind: Some("deliver_notification".into()),
            state: Some(agora_db::jobs::JobState::Succeeded),
            ..Default::default()
        };
        eventually("the delivery job to finish", async || {
            let done = db.list_jobs(&filter, None, 10).await.expect("jobs");
            (!done.is_empty()).then_some(())
        })
        .await;
        assert!(notifications(&client, false).await.is_empty());
        assert_eq!(unread(&client).await, 0);
    }
);

e2e_both_backends!(
    refused_requests_name_why_and_write_nothing,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let token = ann.tokens.access_token.clone();
        let client = app.client_with_token(&token);
        app.login_from("ann", "Device/x").await;
        let items = wait_for_notifications(&client, 1).await;
        let bo = app.register("bob").await;
        let bo_client = app.client_with_token(&bo.tokens.access_token);
        app.login_from("bob", "Device/y").await;
        let bos = wait_for_notifications(&bo_client, 1).await;
        let db = app.database().await;
        let before = row_counts(&db).await.expect("counts");

        for body in [
            serde_json::json!({"up_to": items[0].id, "ids": [items[0].id]}),
            serde_json::json!({"ids": []}),
            serde_json::json!({"everything": true}),
        ] {
            let (status, answer) = app
                .raw_as(
                    Some(&token),
                    reqwest::Method::POST,
                    "/v1/me/notifications/read",
                    body,
                )
                .await;
            assert_eq!(
                (status, answer["error_code"].as_str()),
                (400, Some("invalid_request")),
                "{answer}"
            );
        }

        // Someone else's notification is unknown to ann.
        let (status, err) = error_body(
            client
                .mark_notifications_read()
                .body(MarkNotificationsReadRequest::builder().up_to(bos[0].id))
                .send()
                .await,
        );
        assert_eq!((status, err.error_code.as_str()), (404, "not_found"));

        let (status, err) = error_body(
            client
                .list_notifications()
                .page_token("s1.not-ours")
                .send()
                .await,
        );
        assert_eq!((status, err.error_code.as_str()), (400, "invalid_request"));

        let (status, body) = app
            .raw_as(
                Some(&token),
                reqwest::Method::PATCH,
                "/v1/me/notification-settings",
                serde_json::json!({"post_liked": {"email": true}, "no_such_kind": {"email": true}}),
            )
            .await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
        let (status, _) = app
            .raw_as(
                None,
                reqwest::Method::GET,
                "/v1/me/notifications",
                serde_json::Value::Null,
            )
            .await;
        assert_eq!(status, 401);

        assert_eq!(
            row_counts(&db).await.expect("counts"),
            before,
            "nothing was written"
        );
        assert_eq!(
            notifications(&client, true).await.len(),
            1,
            "ann's notification is still unread"
        );
        let settings = client
            .get_notification_settings()
            .send()
            .await
            .expect("get")
            .into_inner();
        assert!(
            !settings.post_liked.email,
            "the refused update changed nothing"
        );
    }
);

/// With Redis, a notification is published on `user:{id}` for every instance: a second
/// instance's broker (a separate `Kv`) receives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_published_on_the_users_channel_across_instances() {
    let Some(redis) = agora_kv::testing::TestRedis::new("notification_published") else {
        return;
    };
    let config = redis.config();
    let url = config.url.clone().expect("url");
    let app = TestApp::start_with(&[
        ("AGORA_REDIS__URL", url.as_str()),
        ("AGORA_REDIS__KEY_PREFIX", config.key_prefix.as_str()),
    ])
    .await;
    let ann = app.register("ann").await;
    let other_instance = agora_kv::Kv::connect(&config).await.expect("kv");
    let mut channel = other_instance
        .broker()
        .subscribe(&format!("user:{}", ann.user.id))
        .await;
    app.login_from("ann", "Tablet/2.0").await;
    let payload = tokio::time::timeout(std::time::Duration::from_secs(30), channel.recv())
        .await
        .expect("published in time")
        .expect("channel open");
    let (envelope, frame) =
        agora_server::notifications::events::open(&payload).expect("an event envelope");
    // The delivery job continues the login's trace.
    assert!(envelope.traceparent.is_some(), "{envelope:?}");
    let message: serde_json::Value = serde_json::from_str(frame).expect("json");
    assert_eq!(message["type"], "notification");
    assert_eq!(message["change"], "created");
    assert_eq!(message["notification"]["kind"], "new_login");
    assert_eq!(message["unread_count"], 1);
}

e2e_both_backends!(
    an_operator_notice_reaches_the_user_and_is_audited,
    &[],
    |app| async move {
        use agora_server::notifications::notice::{NoticeError, notify_from_cli};
        let ann = app.register("ann").await;
        let client = app.client_with_token(&ann.tokens.access_token);
        let db = app.database().await;
        // What `agora admin notify ann --message …` does.
        let user = notify_from_cli(&db, "ANN", "Maintenance tonight at 22:00 UTC")
            .await
            .expect("queued");
        assert_eq!(user, ann.user.id);
        let items = wait_for_notifications(&client, 1).await;
        assert_eq!(items[0].kind, NotificationKind::AdminNotice);
        assert_eq!(
            items[0].details.get("message").map(String::as_str),
            Some("Maintenance tonight at 22:00 UTC")
        );
        let audited = db
            .list_audit_events(
                &agora_db::audit::AuditFilter {
                    action: Some("admin_notice".into()),
                    ..Default::default()
                },
                None,
                10,
                agora_db::ReadPolicy::Primary,
            )
            .await
            .expect("audit");
        assert_eq!(audited.len(), 1);
        assert_eq!(
            audited[0].target.as_deref(),
            Some(format!("user:{user}").as_str())
        );

        let before = row_counts(&db).await.expect("counts");
        assert!(matches!(
            notify_from_cli(&db, "nobody", "hello").await,
            Err(NoticeError::UnknownUser(_))
        ));
        assert!(matches!(
            notify_from_cli(&db, "ann", "   ").await,
            Err(NoticeError::BadMessage)
        ));
        assert!(matches!(
            notify_from_cli(&db, "ann", &"x".repeat(2001)).await,
            Err(NoticeError::BadMessage)
        ));
        assert_eq!(
            row_counts(&db).await.expect("counts"),
            before,
            "refusals write nothing"
        );
    }
);
