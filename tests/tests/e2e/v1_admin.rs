//! `/v1/admin/*`: the audit log, roles and signing a user out everywhere — admin only, checked
//! against the database on every request, every attempt audited.

use agora_client::types::{AuditEvent, Role, SetRoleRequest};
use futures::TryStreamExt;

use crate::e2e_both_backends;
use crate::support::{TestApp, error_body, status};

/// `handle` becomes an admin the way an operator does it: `agora admin grant <handle>`.
async fn grant_admin(app: &TestApp, handle: &str) {
    let db = app.database().await;
    let user = agora_server::identity::admin::set_role_from_cli(&db, handle, true)
        .await
        .expect("grant");
    assert_eq!(user.role, agora_db::users::Role::Admin);
}

async fn audit_events(client: &agora_client::Client, action: &str) -> Vec<AuditEvent> {
    client
        .list_audit_events()
        .action(action)
        .stream()
        .try_collect()
        .await
        .expect("audit events")
}

e2e_both_backends!(admin_routes_refuse_everyone_else, &[], |app| async move {
    let ann = app.register("ann").await;
    let client = app.client_with_token(&ann.tokens.access_token);

    let (code, body) = error_body(client.list_audit_events().send().await);
    assert_eq!((code, body.error_code.as_str()), (403, "forbidden"));
    let (code, body) = error_body(
        client
            .set_user_role()
            .user_id(ann.user.id)
            .body(SetRoleRequest { role: Role::Admin })
            .send()
            .await,
    );
    assert_eq!((code, body.error_code.as_str()), (403, "forbidden"));
    let (code, _) = error_body(
        client
            .revoke_user_sessions()
            .user_id(ann.user.id)
            .send()
            .await,
    );
    assert_eq!(code, 403);
    assert_eq!(status(&app.client.list_audit_events().send().await), 401);

    // Nothing changed, and each attempt is on the record.
    assert_eq!(status(&client.get_me().send().await), 200);
    let db = app.database().await;
    let denied = db
        .list_audit_events(
            &agora_db::audit::AuditFilter {
                actor: Some(ann.user.id),
                action: Some("admin_denied".into()),
                ..Default::default()
            },
            None,
            10,
            agora_db::ReadPolicy::Primary,
        )
        .await
        .expect("events");
    let targets: Vec<_> = denied.iter().filter_map(|e| e.target.clone()).collect();
    assert_eq!(
        targets,
        [
            "operation:revoke_user_sessions",
            "operation:set_user_role",
            "operation:list_audit_events",
        ]
    );
    assert!(denied.iter().all(|e| e.outcome == "forbidden"));
});

e2e_both_backends!(
    an_admin_reads_the_log_and_manages_roles,
    &[],
    |app| async move {
        let boss = app.register("boss").await;
        let ann = app.register("ann").await;
        grant_admin(&app, "BOSS").await;
        // The token boss already holds works for admin routes at once: the role is read per request.
        let admin = app.client_with_token(&boss.tokens.access_token);
        let ann_client = app.client_with_token(&ann.tokens.access_token);

        // The command-line grant is on the record, with no actor and a `cli:` request id.
        let changes = audit_events(&admin, "role_change").await;
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].actor_user_id, None);
        assert!(
            changes[0].request_id.starts_with("cli:"),
            "{:?}",
            changes[0]
        );
        assert_eq!(
            changes[0].target.as_deref(),
            Some(format!("user:{} role=admin", boss.user.id).as_str())
        );

        // Filters: by actor, by action, and by time; pages of one follow next_page to the end.
        let anns: Vec<AuditEvent> = admin
            .list_audit_events()
            .actor(ann.user.id)
            .limit(std::num::NonZeroU32::new(1).expect("1"))
            .stream()
            .try_collect()
            .await
            .expect("ann's events");
        let actions: Vec<_> = anns.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["register"]);
        let registrations = audit_events(&admin, "register").await;
        assert_eq!(registrations.len(), 2);
        assert!(registrations[0].at >= registrations[1].at, "newest first");
        let later = admin
            .list_audit_events()
            .action("register")
            .since(registrations[0].at)
            .send()
            .await
            .expect("since")
            .into_inner();
        assert_eq!(later.items.len(), 1);
        assert_eq!(later.items[0].actor_user_id, Some(ann.user.id));
        let earlier = admin
            .list_audit_events()
            .action("register")
            .until(registrations[0].at)
            .send()
            .await
            .expect("until")
            .into_inner();
        assert_eq!(earlier.items.len(), 1);
        assert_eq!(earlier.items[0].actor_user_id, Some(boss.user.id));
        // Reading the log is itself audited.
        assert!(!audit_events(&admin, "audit_read").await.is_empty());

        // Bad filters and forged page tokens are 400s naming the parameter.
        let (code, body) = error_body(
            admin
                .list_audit_events()
                .page_token("a1.not-a-cursor")
                .send()
                .await,
        );
        assert_eq!(
            (code, body.details[0].pointer.as_str()),
            (400, "/page_token")
        );
        let (code, body) = app
            .raw(
                reqwest::Method::GET,
                "/v1/admin/audit-events?action=Not%20An%20Action",
                serde_json::Value::Null,
            )
            .await;
        assert_eq!(code, 401, "no token: refused before validation: {body}");

        // Roles: ann becomes an admin and can read the log with the token she has.
        let granted = admin
            .set_user_role()
            .user_id(ann.user.id)
            .body(SetRoleRequest { role: Role::Admin })
            .send()
            .await
            .expect("grant")
            .into_inner();
        assert_eq!(granted.role, Role::Admin);
        assert_eq!(granted.handle.as_str(), "ann");
        assert_eq!(status(&ann_client.list_audit_events().send().await), 200);
        // Nobody changes their own role over the API.
        let (code, body) = error_body(
            admin
                .set_user_role()
                .user_id(boss.user.id)
                .body(SetRoleRequest { role: Role::User })
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (409, "own_role_change"));
        // Demotion takes effect on the next request.
        admin
            .set_user_role()
            .user_id(ann.user.id)
            .body(SetRoleRequest { role: Role::User })
            .send()
            .await
            .expect("demote");
        assert_eq!(status(&ann_client.list_audit_events().send().await), 403);
        let unknown = uuid::Uuid::now_v7();
        let (code, body) = error_body(
            admin
                .set_user_role()
                .user_id(unknown)
                .body(SetRoleRequest { role: Role::Admin })
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (404, "not_found"));
        let outcomes: Vec<_> = audit_events(&admin, "role_change")
            .await
            .into_iter()
            .map(|e| e.outcome)
            .collect();
        assert_eq!(
            outcomes,
            ["failure", "success", "conflict", "success", "success"]
        );

        // Signing ann out everywhere ends her token and her refresh token.
        admin
            .revoke_user_sessions()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("revoke");
        assert_eq!(status(&ann_client.get_me().send().await), 401);
        let refreshed = app
            .client
            .refresh_session()
            .body(
                agora_client::types::RefreshSessionRequest::builder()
                    .refresh_token(ann.tokens.refresh_token.clone()),
            )
            .send()
            .await;
        assert_eq!(status(&refreshed), 401);
        let (code, _) = error_body(admin.revoke_user_sessions().user_id(unknown).send().await);
        assert_eq!(code, 404);
        let revokes = audit_events(&admin, "user_sessions_revoke").await;
        let outcomes: Vec<_> = revokes.iter().map(|e| e.outcome.as_str()).collect();
        assert_eq!(outcomes, ["failure", "success"]);
        assert!(
            revokes
                .iter()
                .all(|e| e.actor_user_id == Some(boss.user.id))
        );
    }
);

e2e_both_backends!(audit_filters_are_validated, &[], |app| async move {
    let boss = app.register("boss").await;
    grant_admin(&app, "boss").await;
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/admin/audit-events?action=Not%20An%20Action&actor=nope",
            app.base_url
        ))
        .bearer_auth(&boss.tokens.access_token)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error_code"], "invalid_request");
    let mut pointers: Vec<_> = body["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["pointer"].as_str().unwrap_or_default().to_owned())
        .collect();
    pointers.sort();
    assert_eq!(pointers, ["/action", "/actor"]);
});
