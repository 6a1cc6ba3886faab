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
