//! `GET/PATCH /v1/me`: the signed-in account; bearer required.

use agora_client::types::UpdateMeRequest;

use crate::e2e_both_backends;
use crate::support::{TestApp, error_body, status};

e2e_both_backends!(
    profile_updates_change_present_fields_and_clear_empty_ones,
    &[],
    |app| async move {
        let session = app.register("ann").await;
        let client = app.client_with_token(&session.tokens.access_token);
        let me = client
            .update_me()
            .body(
                UpdateMeRequest::builder()
                    .bio(Some("hello".try_into().expect("bio")))
                    .avatar_url(Some("https://example.com/ann.png".try_into().expect("url"))),
            )
            .send()
            .await
            .expect("update")
            .into_inner();
        assert_eq!(
            me.display_name.as_str(),
            "User ann",
            "absent fields are kept"
        );
        assert_eq!(me.bio.as_deref().map(|b| b.as_str()), Some("hello"));
        let me = client
            .update_me()
            .body(
                UpdateMeRequest::builder()
                    .display_name(Some("Annie".try_into().expect("name")))
                    .bio(Some("".try_into().expect("bio"))),
            )
            .send()
            .await
            .expect("update")
            .into_inner();
        assert_eq!(me.display_name.as_str(), "Annie");
        assert!(me.bio.is_none(), "an empty bio clears it");
        assert!(me.avatar_url.is_some());
        let again = client.get_me().send().await.expect("me").into_inner();
        assert_eq!(again.display_name.as_str(), "Annie");
        assert_eq!(again.email, "ann@example.com");
    }
);

#[tokio::test]
async fn without_a_token_it_is_401_with_www_authenticate() {
    let app = TestApp::start().await;
    let result = app.client.get_me().send().await;
    assert_eq!(status(&result), 401);
    match &result {
        Err(agora_client::Error::ErrorResponse(r)) => {
            assert!(r.headers().contains_key("www-authenticate"));
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let (_, body) = error_body(result);
    assert_eq!(body.error_code.as_str(), "unauthenticated");
}

#[tokio::test]
async fn an_invalid_avatar_url_is_400() {
    let app = TestApp::start().await;
    let session = app.register("ann").await;
    let response = reqwest::Client::new()
        .patch(format!("{}/v1/me", app.base_url))
        .bearer_auth(&session.tokens.access_token)
        .json(&serde_json::json!({"avatar_url": "javascript:alert(1)"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
}

/// Two instances on one database and one Redis: a profile one instance cached is fresh on the
/// other the moment it changes (the cache entry is deleted after the commit), and through the
/// in-process cache of an instance without Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_profile_changes_everywhere_at_once() {
    let Some(redis) = agora_kv::testing::TestRedis::new("a_cached_profile_changes") else {
        return;
    };
    let config = redis.config();
    let url = config.url.clone().expect("url");
    let shared = agora_db::testing::TestDb::sqlite().await;
    let env = [
        ("AGORA_REDIS__URL", url.as_str()),
        ("AGORA_REDIS__KEY_PREFIX", config.key_prefix.as_str()),
        ("AGORA_DATABASE__URL", shared.config.url.as_str()),
    ];
    let one = TestApp::start_with(&env).await;
    let two = TestApp::start_with(&env).await;
    let ann = one.register("ann").await;
    let bob = one.register("bob").await;
    let ann_on_one = one.client_with_token(&ann.tokens.access_token);
    let ann_on_two = two.client_with_token(&ann.tokens.access_token);
    let bob_on_two = two.client_with_token(&bob.tokens.access_token);
    // Fill the caches through the other instance.
    for _ in 0..2 {
        assert_eq!(
            ann_on_two
                .get_me()
                .send()
                .await
                .expect("me")
                .into_inner()
                .display_name
                .as_str(),
            "User ann"
        );
        let profile = bob_on_two
            .get_user_by_handle()
            .handle("ANN")
            .send()
            .await
            .expect("by handle")
            .into_inner();
        assert_eq!(profile.display_name.as_str(), "User ann");
    }
    for name in ["Annie", "Ann B."] {
        ann_on_one
            .update_me()
            .body(UpdateMeRequest::builder().display_name(Some(name.try_into().expect("name"))))
            .send()
            .await
            .expect("update");
        assert_eq!(
            ann_on_two
                .get_me()
                .send()
                .await
                .expect("me")
                .into_inner()
                .display_name
                .as_str(),
            name
        );
        let by_id = bob_on_two
            .get_user()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("by id")
            .into_inner();
        assert_eq!(by_id.display_name.as_str(), name);
        let by_handle = bob_on_two
            .get_user_by_handle()
            .handle("ann")
            .send()
            .await
            .expect("by handle")
            .into_inner();
        assert_eq!(by_handle.display_name.as_str(), name);
    }
}
