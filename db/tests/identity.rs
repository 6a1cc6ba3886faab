//! The identity repositories on both backends: login lookups, profile updates, sessions with
//! refresh-token rotation and reuse detection, and the append-only audit trail.

use agora_db::audit::{AuditAction, AuditCursor, AuditFilter, AuditOutcome, NewAuditEvent};
use agora_db::sessions::{NewSession, Rotation};
use agora_db::users::{NewUser, ProfileChanges, Role};
use agora_db::{DbError, ReadPolicy, both_backends, dispatch};
use diesel_async::SimpleAsyncConnection;

fn new_user(handle: &str) -> NewUser {
    NewUser {
        handle: handle.into(),
        email: format!("{}@example.com", handle.to_lowercase()),
        display_name: "Ann".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

fn new_session(user_id: uuid::Uuid, hash: &str) -> NewSession {
    NewSession {
        user_id,
        user_agent: Some("test".into()),
        ip: Some("127.0.0.1".into()),
        refresh_token_hash: hash.into(),
    }
}

fn long_ago() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::days(1)
}

both_backends!(
    users_are_found_by_handle_in_any_case_or_by_email,
    |t| async move {
        let ann = t.db.create_user(&new_user("Ann_1")).await.expect("create");
        assert_eq!(
            t.db.find_user_by_login("ann_1").await.expect("handle").id,
            ann.id
        );
        assert_eq!(
            t.db.find_user_by_login("ANN_1").await.expect("handle").id,
            ann.id
        );
        assert_eq!(
            t.db.find_user_by_login(" Ann_1@Example.com ")
                .await
                .expect("email")
                .id,
            ann.id
        );
        assert!(matches!(
            t.db.find_user_by_login("nobody").await,
            Err(DbError::NotFound)
        ));
        let by_handle =
            t.db.get_user_by_handle("aNN_1", ReadPolicy::Anyone)
                .await
                .expect("by handle");
        assert_eq!(by_handle.handle, "Ann_1", "shown as typed");
    }
);

both_backends!(
    profile_changes_keep_absent_fields_and_clear_with_none,
    |t| async move {
        let ann = t.db.create_user(&new_user("ann")).await.expect("create");
        let changed =
            t.db.update_profile(
                ann.id,
                &ProfileChanges {
                    bio: Some(Some("hi".into())),
                    avatar_url: Some(Some("https://example.com/a.png".into())),
                    ..Default::default()
                },
            )
            .await
            .expect("update");
        assert_eq!(changed.display_name, "Ann");
        assert_eq!(changed.bio.as_deref(), Some("hi"));
        let cleared =
            t.db.update_profile(
                ann.id,
                &ProfileChanges {
                    display_name: Some("Annie".into()),
                    bio: Some(None),
                    ..Default::default()
                },
            )
            .await
            .expect("update");
        assert_eq!(cleared.display_name, "Annie");
        assert_eq!(cleared.bio, None);
        assert_eq!(
            cleared.avatar_url.as_deref(),
            Some("https://example.com/a.png")
        );
    }
);

both_backends!(
    refresh_tokens_rotate_once_and_reuse_revokes_the_session,
    |t| async move {
        let ann = t.db.create_user(&new_user("ann")).await.expect("create");
        let session =
            t.db.create_session(&new_session(ann.id, "h1"))
                .await
                .expect("session");
        assert_eq!(
            t.db.get_active_session(session.id, ann.id)
                .await
                .expect("active")
                .user_id,
            ann.id
        );
        let first =
            t.db.rotate_refresh_token("h1", "h2", long_ago())
                .await
                .expect("rotate");
        assert!(matches!(first, Rotation::Rotated(s) if s.session_id == session.id));
        let second =
            t.db.rotate_refresh_token("h2", "h3", long_ago())
                .await
                .expect("rotate");
        assert!(matches!(second, Rotation::Rotated(_)));
        // h1 again: theft. The session ends, and with it h3.
        let reuse =
            t.db.rotate_refresh_token("h1", "h4", long_ago())
                .await
                .expect("reuse");
        assert!(matches!(reuse, Rotation::Reused(s) if s.user_id == ann.id));
        assert!(matches!(
            t.db.get_active_session(session.id, ann.id).await,
            Err(DbError::NotFound)
        ));
        assert!(matches!(
            t.db.rotate_refresh_token("h3", "h5", long_ago())
                .await
                .expect("revoked"),
            Rotation::Revoked(_)
        ));
        assert_eq!(
            t.db.rotate_refresh_token("nope", "h6", long_ago())
                .await
                .expect("unknown"),
            Rotation::Unknown
        );
    }
);

both_backends!(old_refresh_tokens_expire_without_revoking, |t| async move {
    let ann = t.db.create_user(&new_user("ann")).await.expect("create");
    let session =
        t.db.create_session(&new_session(ann.id, "h1"))
            .await
            .expect("session");
    let future = chrono::Utc::now() + chrono::Duration::seconds(60);
    assert_eq!(
        t.db.rotate_refresh_token("h1", "h2", future)
            .await
            .expect("expired"),
        Rotation::Expired
    );
    t.db.get_active_session(session.id, ann.id)
        .await
        .expect("an expired token leaves its session live");
});

both_backends!(
    concurrent_rotations_of_one_token_have_one_winner,
    |t| async move {
        let ann = t.db.create_user(&new_user("ann")).await.expect("create");
        t.db.create_session(&new_session(ann.id, "h1"))
            .await
            .expect("session");
        let (a, b) = tokio::join!(
            t.db.rotate_refresh_token("h1", "a2", long_ago()),
            t.db.rotate_refresh_token("h1", "b2", long_ago()),
        );
        let outcomes = [a.expect("a"), b.expect("b")];
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, Rotation::Rotated(_)))
            .count();
        let reused = outcomes
            .iter()
            .filter(|o| matches!(o, Rotation::Reused(_)))
            .count();
        assert_eq!((rotated, reused), (1, 1), "{outcomes:?}");
    }
);

both_backends!(sessions_are_revoked_only_by_their_owner, |t| async move {
    let ann = t.db.create_user(&new_user("ann")).await.expect("create");
    let bob = t.db.create_user(&new_user("bob")).await.expect("create");
    let session =
        t.db.create_session(&new_session(ann.id, "h1"))
            .await
            .expect("session");
    assert!(
        !t.db
            .revoke_session(session.id, bob.id)
            .await
            .expect("not bob's")
    );
    assert!(
        t.db.revoke_session(session.id, ann.id)
            .await
            .expect("ann's")
    );
    assert!(
        !t.db
            .revoke_session(session.id, ann.id)
            .await
            .expect("already")
    );
});

both_backends!(audit_events_are_append_only, |t| async move {
    let ann = t.db.create_user(&new_user("ann")).await.expect("create");
    for action in [AuditAction::Register, AuditAction::Login] {
        t.db.record_audit_event(&NewAuditEvent {
            actor_user_id: Some(ann.id),
            action,
            target: Some(format!("user:{}", ann.id)),
            outcome: AuditOutcome::Success,
            ip: Some("127.0.0.1".into()),
            user_agent: None,
            request_id: "r1".into(),
        })
        .await
        .expect("record");
    }
    let filter = AuditFilter {
        actor: Some(ann.id),
        ..Default::default()
    };
    let events =
        t.db.list_audit_events(&filter, None, 10, ReadPolicy::Primary)
            .await
            .expect("list");
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["login", "register"], "newest first");
    let mut conn = t.db.write().await.expect("conn");
    let update =
        dispatch!(conn, c => c.batch_execute("UPDATE audit_events SET outcome = 'x'").await);
    assert!(update.is_err(), "updates are refused");
    let delete = dispatch!(conn, c => c.batch_execute("DELETE FROM audit_events").await);
    assert!(delete.is_err(), "deletes are refused");
});

both_backends!(audit_events_filter_and_page_newest_first, |t| async move {
    let ann = t.db.create_user(&new_user("ann")).await.expect("ann");
    let bob = t.db.create_user(&new_user("bob")).await.expect("bob");
    let record = |actor: uuid::Uuid, action: &'static str| NewAuditEvent {
        actor_user_id: Some(actor),
        ..NewAuditEvent::new(
            AuditAction::parse(action).expect("an action"),
            AuditOutcome::Success,
            "r",
        )
    };
    for action in ["register", "login", "logout", "login", "login"] {
        t.db.record_audit_event(&record(ann.id, action))
            .await
            .expect("ann's");
    }
    let middle = chrono::Utc::now();
    t.db.record_audit_event(&record(bob.id, "login"))
        .await
        .expect("bob's");

    // Ann's events, two per page, newest first, every one exactly once.
    let by_ann = AuditFilter {
        actor: Some(ann.id),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut after: Option<AuditCursor> = None;
    loop {
        let page =
            t.db.list_audit_events(&by_ann, after, 2, ReadPolicy::Primary)
                .await
                .expect("page");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.into());
        seen.extend(page.iter().map(|e| e.action.clone()));
    }
    assert_eq!(seen, ["login", "login", "logout", "login", "register"]);

    let logins = AuditFilter {
        action: Some("login".into()),
        ..Default::default()
    };
    let all_logins =
        t.db.list_audit_events(&logins, None, 100, ReadPolicy::Primary)
            .await
            .expect("logins");
    assert_eq!(all_logins.len(), 4);
    assert_eq!(all_logins[0].actor_user_id, Some(bob.id), "newest first");

    let before_middle = AuditFilter {
        action: Some("login".into()),
        until: Some(middle),
        ..Default::default()
    };
    let early =
        t.db.list_audit_events(&before_middle, None, 100, ReadPolicy::Primary)
            .await
            .expect("until");
    assert!(early.iter().all(|e| e.actor_user_id == Some(ann.id)));
    assert_eq!(early.len(), 3);
    let after_middle = AuditFilter {
        since: Some(middle),
        ..Default::default()
    };
    let late =
        t.db.list_audit_events(&after_middle, None, 100, ReadPolicy::Primary)
            .await
            .expect("since");
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].actor_user_id, Some(bob.id));
});

both_backends!(a_role_changes_only_with_its_audit_event, |t| async move {
    let ann = t.db.create_user(&new_user("ann")).await.expect("ann");
    let event = |target: uuid::Uuid| NewAuditEvent {
        target: Some(format!("user:{target} role=admin")),
        ..NewAuditEvent::new(AuditAction::RoleChange, AuditOutcome::Success, "cli:test")
    };
    let ghost = uuid::Uuid::now_v7();
    let missing = t.db.set_user_role(ghost, Role::Admin, &event(ghost)).await;
    assert!(matches!(missing, Err(DbError::NotFound)), "{missing:?}");
    let granted =
        t.db.set_user_role(ann.id, Role::Admin, &event(ann.id))
            .await
            .expect("grant");
    assert_eq!(granted.role, Role::Admin);
    let changes = AuditFilter {
        action: Some("role_change".into()),
        ..Default::default()
    };
    let events =
        t.db.list_audit_events(&changes, None, 10, ReadPolicy::Primary)
            .await
            .expect("events");
    let targets: Vec<_> = events.iter().filter_map(|e| e.target.clone()).collect();
    assert_eq!(
        targets,
        [format!("user:{} role=admin", ann.id)],
        "the failed change left no event"
    );
});

fn session_for(user_id: uuid::Uuid, hash: &str) -> (NewSession, NewAuditEvent) {
    (
        new_session(user_id, hash),
        NewAuditEvent {
            actor_user_id: Some(user_id),
            target: Some(format!("user:{user_id}")),
            ..NewAuditEvent::new(AuditAction::Register, AuditOutcome::Success, "r")
        },
    )
}

both_backends!(registration_commits_all_or_nothing, |t| async move {
    use agora_db::testing::{fail_writes_to, row_counts, stop_failing};
    let empty = row_counts(&t.db).await.expect("counts");
    // A failure after the user row (the session), then after the session (the audit event).
    for table in ["sessions", "audit_events"] {
        fail_writes_to(&t.db, table, "INSERT")
            .await
            .expect("inject");
        let failed =
            t.db.register_user(&new_user("ann"), |id| session_for(id, "h1"))
                .await;
        assert!(failed.is_err(), "{table}: the injected failure surfaces");
        assert_eq!(
            row_counts(&t.db).await.expect("counts"),
            empty,
            "{table}: nothing of the registration remains"
        );
        stop_failing(&t.db, table, "INSERT").await.expect("clear");
    }
    let (user, session) =
        t.db.register_user(&new_user("ann"), |id| session_for(id, "h1"))
            .await
            .expect("registers");
    assert_eq!(session.user_id, user.id);
    let counts = row_counts(&t.db).await.expect("counts");
    for table in ["users", "sessions", "refresh_tokens", "audit_events"] {
        assert_eq!(counts.get(table), Some(&1), "{table}: {counts:?}");
    }
    // A taken handle is a conflict, and writes nothing either.
    let mut dup = new_user("ANN");
    dup.email = "other@example.com".into();
    assert!(matches!(
        t.db.register_user(&dup, |id| session_for(id, "h2")).await,
        Err(DbError::Conflict { .. })
    ));
    assert_eq!(row_counts(&t.db).await.expect("counts"), counts);
});

both_backends!(a_password_change_commits_all_or_nothing, |t| async move {
    use agora_db::testing::{fail_writes_to, row_counts, stop_failing};
    let (ann, current) =
        t.db.register_user(&new_user("ann"), |id| session_for(id, "h1"))
            .await
            .expect("registers");
    let other =
        t.db.create_session(&new_session(ann.id, "h2"))
            .await
            .expect("a second device");
    let audit = NewAuditEvent {
        actor_user_id: Some(ann.id),
        ..NewAuditEvent::new(AuditAction::PasswordChange, AuditOutcome::Success, "r")
    };
    let before = row_counts(&t.db).await.expect("counts");
    // After the new hash (the sessions' revocation), then after both (the audit event).
    for (table, op) in [("sessions", "UPDATE"), ("audit_events", "INSERT")] {
        fail_writes_to(&t.db, table, op).await.expect("inject");
        let failed =
            t.db.change_password(ann.id, "$argon2id$new", current.id, &audit, &[])
                .await;
        assert!(failed.is_err(), "{table}: the injected failure surfaces");
        stop_failing(&t.db, table, op).await.expect("clear");
        let stored =
            t.db.get_user(ann.id, ReadPolicy::Primary)
                .await
                .expect("ann");
        assert_eq!(
            stored.password_hash, ann.password_hash,
            "{table}: the old hash stays"
        );
        t.db.get_active_session(other.id, ann.id)
            .await
            .expect("the other device stays signed in");
        assert_eq!(row_counts(&t.db).await.expect("counts"), before);
    }
    let revoked =
        t.db.change_password(ann.id, "$argon2id$new", current.id, &audit, &[])
            .await
            .expect("changes");
    assert_eq!(revoked, [other.id]);
    let stored =
        t.db.get_user(ann.id, ReadPolicy::Primary)
            .await
            .expect("ann");
    assert_eq!(stored.password_hash, "$argon2id$new");
    t.db.get_active_session(current.id, ann.id)
        .await
        .expect("this device stays signed in");
    assert!(matches!(
        t.db.change_password(uuid::Uuid::now_v7(), "x", current.id, &audit, &[])
            .await,
        Err(DbError::NotFound)
    ));
});
