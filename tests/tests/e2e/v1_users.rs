//! `GET /v1/users/{user_id}` and `GET /v1/handles/{handle}`: public profiles (no email).

use crate::e2e_both_backends;
use crate::support::{error_body, status};

e2e_both_backends!(
    profiles_by_id_and_by_handle_in_any_case,
    &[],
    |app| async move {
        let ann = app.register("Ann").await;
        let bob = app.register("bob").await;
        let client = app.client_with_token(&bob.tokens.access_token);
        let by_id = client
            .get_user()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("by id")
            .into_inner();
        assert_eq!(by_id.handle.as_str(), "Ann");
        let json = serde_json::to_value(&by_id).expect("json");
        assert!(json.get("email").is_none(), "no email in a profile: {json}");
        let by_handle = client
            .get_user_by_handle()
            .handle("aNN")
            .send()
            .await
            .expect("by handle")
            .into_inner();
        assert_eq!(by_handle.id, ann.user.id);
        let (code, body) = error_body(client.get_user_by_handle().handle("nobody").send().await);
        assert_eq!((code, body.error_code.as_str()), (404, "not_found"));
        let missing = client.get_user().user_id(uuid::Uuid::now_v7()).send().await;
        assert_eq!(status(&missing), 404);
        assert_eq!(
            status(&app.client.get_user().user_id(ann.user.id).send().await),
            401,
            "profiles need a signed-in caller"
        );
    }
);
