//! `/v1/me/sessions` and `/v1/me/password`: the caller's devices, signing out one or all, and
//! changing the password (which signs every other device out).

use agora_client::types::{ChangePasswordRequest, LoginRequest, Session};
use futures::TryStreamExt;

use crate::e2e_both_backends;
use crate::support::{TestApp, error_body, status};

async fn login(app: &TestApp, handle: &str, password: &str) -> Session {
    app.client
        .login()
        .body(LoginRequest::builder().login(handle).password(password))
        .send()
        .await
        .expect("login")
        .into_inner()
}

async fn works(app: &TestApp, token: &str) -> bool {
    status(&app.client_with_token(token).get_me().send().await) == 200
}

e2e_both_backends!(
    sessions_are_listed_newest_first_page_by_page,
    &[],
    |app| async move {
        let first = app.register("lister").await;
        let second = login(&app, "lister", "password-of-lister").await;
        let third = login(&app, "lister", "password-of-lister").await;
        let client = app.client_with_token(&third.tokens.access_token);

        let page = client
            .list_sessions()
            .limit(std::num::NonZeroU32::new(2).expect("2"))
            .send()
            .await
            .expect("page one")
            .into_inner();
        assert_eq!(page.items.len(), 2);
        assert!(page.items[0].current, "the newest is this session");
        assert!(page.items[0].id > page.items[1].id, "newest first");
        assert!(page.next_page.is_some());

        // The generated stream helper follows next_page to the end.
        let all: Vec<_> = client
            .list_sessions()
            .limit(std::num::NonZeroU32::new(2).expect("2"))
            .stream()
            .try_collect()
            .await
            .expect("every page");
        assert_eq!(all.len(), 3);
        assert_eq!(all.iter().filter(|s| s.current).count(), 1);
        let _ = (first, second);

        let (code, body) = error_body(client.list_sessions().page_token("forged").send().await);
        assert_eq!(code, 400);
        let detail = &body.details[0];
        assert_eq!(
            (detail.pointer.as_str(), detail.rule.as_str()),
            ("/page_token", "page_token")
        );
    }
);

e2e_both_backends!(
    one_device_or_all_of_them_can_be_signed_out,
    &[],
    |app| async move {
        let phone = app.register("multi").await;
        let laptop = login(&app, "multi", "password-of-multi").await;
        let tablet = login(&app, "multi", "password-of-multi").await;
        let other = app.register("stranger").await;

        let revoke = app
            .client_with_token(&laptop.tokens.access_token)
            .revoke_session()
            .session_id(phone_session(&app, &phone).await)
            .send()
            .await;
        assert_eq!(status(&revoke), 204);
        assert!(
            !works(&app, &phone.tokens.access_token).await,
            "the revoked device is signed out"
        );
        assert!(works(&app, &laptop.tokens.access_token).await);

        // Someone else's session is not found, whatever its id.
        let foreign = app
            .client_with_token(&laptop.tokens.access_token)
            .revoke_session()
            .session_id(phone_session(&app, &other).await)
            .send()
            .await;
        assert_eq!(status(&foreign), 404);
        assert!(works(&app, &other.tokens.access_token).await);

        let all = app
            .client_with_token(&tablet.tokens.access_token)
            .logout_all()
            .send()
            .await;
        assert_eq!(status(&all), 204);
        for token in [&laptop.tokens.access_token, &tablet.tokens.access_token] {
            assert!(!works(&app, token).await, "every session is signed out");
        }
    }
);

/// The session id of a signed-in session, read through its own token.
async fn phone_session(app: &TestApp, session: &Session) -> uuid::Uuid {
    let page = app
        .client_with_token(&session.tokens.access_token)
        .list_sessions()
        .send()
        .await
        .expect("sessions")
        .into_inner();
    page.items
        .iter()
        .find(|s| s.current)
        .expect("the current session")
        .id
}

e2e_both_backends!(
    changing_the_password_signs_other_devices_out,
    &[],
    |app| async move {
        let old = app.register("changer").await;
        let here = login(&app, "changer", "password-of-changer").await;
        let client = app.client_with_token(&here.tokens.access_token);

        let wrong = client
            .change_password()
            .body(
                ChangePasswordRequest::builder()
                    .current_password("nope")
                    .new_password("a-new-password-123"),
            )
            .send()
            .await;
        assert_eq!(status(&wrong), 401);

        let changed = client
            .change_password()
            .body(
                ChangePasswordRequest::builder()
                    .current_password("password-of-changer")
                    .new_password("a-new-password-123"),
            )
            .send()
            .await;
        assert_eq!(status(&changed), 204);
        assert!(
            works(&app, &here.tokens.access_token).await,
            "this session stays signed in"
        );
        assert!(
            !works(&app, &old.tokens.access_token).await,
            "other sessions are signed out"
        );
        let old_password = app
            .client
            .login()
            .body(
                LoginRequest::builder()
                    .login("changer")
                    .password("password-of-changer"),
            )
            .send()
            .await;
        assert_eq!(status(&old_password), 401);
        login(&app, "changer", "a-new-password-123").await;
    }
);
