//! Email through a real SMTP server (aiosmtpd on loopback): a new-device sign-in is emailed once
//! with text and HTML parts and RFC 8058 one-click unsubscribe headers; the unsubscribe link
//! switches that kind off; a 550 answer suppresses the address; a 451 answer is retried; the
//! daily cap holds; a forged unsubscribe token is refused and changes nothing.

use agora_db::deliveries::EmailState;
use agora_db::jobs::{JobFilter, JobState};
use agora_db::testing::{eventually, row_counts};

use crate::smtp_sink::SmtpSink;
use crate::support::{TestApp, wait_for_notifications};

async fn app_with_email(
    sink: &SmtpSink,
    extra: &[(&str, &str)],
    database: Option<&str>,
) -> TestApp {
    let url = sink.url();
    let mut env: Vec<(&str, &str)> = vec![
        ("AGORA_EMAIL__SMTP_URL", url.as_str()),
        ("AGORA_EMAIL__FROM", "Agora <no-reply@agora.test>"),
    ];
    if let Some(db) = database {
        env.push(("AGORA_DATABASE__URL", db));
    }
    env.extend_from_slice(extra);
    TestApp::start_with(&env).await
}

/// The email delivery of `user`'s newest notification, once there are `count` and its state
/// is final.
async fn final_email_state(db: &agora_db::Db, user: uuid::Uuid, count: usize) -> EmailState {
    eventually("the email delivery to finish", async || {
        let all = db
            .list_notifications(user, false, None, 100, agora_db::ReadPolicy::Primary)
            .await
            .ok()?;
        if all.len() < count {
            return None;
        }
        let newest = all.into_iter().next()?;
        match db.email_delivery_state(newest.id).await.ok()? {
            Some(EmailState::Sending) | None => None,
            Some(state) => Some(state),
        }
    })
    .await
}

async fn new_device_login_is_emailed_once_and_one_click_unsubscribes(database: Option<&str>) {
    let Some(sink) = SmtpSink::start("new_device_login_is_emailed") else {
        return;
    };
    let app = app_with_email(&sink, &[], database).await;
    let ann = app.register_with_email("ann", "ann@example.com").await;
    app.login_from("ann", "Laptop/1.0").await;
    let mails = sink.wait_for(1).await;
    let mail = &mails[0];
    assert_eq!(mail.rcpt_tos, vec!["ann@example.com".to_owned()]);
    assert!(
        mail.header("From")
            .is_some_and(|f| f.contains("no-reply@agora.test"))
    );
    assert!(
        mail.header("Subject")
            .is_some_and(|s| s.contains("New sign-in")),
        "{:?}",
        mail.header("Subject")
    );
    assert!(mail.text.contains("Hi User ann,"), "{}", mail.text);
    assert!(mail.text.contains("Laptop/1.0"), "{}", mail.text);
    assert!(mail.html.contains("<li>Device: Laptop"), "{}", mail.html);
    assert_eq!(
        mail.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let link = mail
        .header("List-Unsubscribe")
        .and_then(|v| v.strip_prefix('<'))
        .and_then(|v| v.strip_suffix('>'))
        .expect("a List-Unsubscribe URL")
        .to_owned();
    assert!(
        link.starts_with(&format!("{}/v1/email/unsubscribe?token=u1.", app.base_url)),
        "{link}"
    );

    // What a mail client does for one-click unsubscribe (RFC 8058 §3.1).
    let answer = reqwest::Client::new()
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status().as_u16(), 204);
    let client = app.client_with_token(&ann.tokens.access_token);
    let settings = client
        .get_notification_settings()
        .send()
        .await
        .expect("settings")
        .into_inner();
    assert!(!settings.new_login.email, "that kind is no longer emailed");
    assert!(
        settings.new_login.in_app && settings.friend_request.email,
        "nothing else changed"
    );
    // Repeating it is fine.
    let again = reqwest::Client::new()
        .post(&link)
        .send()
        .await
        .expect("answers");
    assert_eq!(again.status().as_u16(), 204);

    // The next new device is still shown in the app, and not emailed.
    app.login_from("ann", "Phone/2.0").await;
    let items = wait_for_notifications(&client, 2).await;
    assert_eq!(items.len(), 2);
    let db = app.database().await;
    let filter = JobFilter {
        kind: Some("deliver_notification".into()),
        state: Some(JobState::Succeeded),
        ..Default::default()
    };
    eventually("both deliveries to finish", async || {
        (db.list_jobs(&filter, None, 10).await.ok()?.len() == 2).then_some(())
    })
    .await;
    assert_eq!(
        db.email_delivery_state(items[0].id).await.expect("state"),
        None
    );
    assert_eq!(sink.received().len(), 1, "no second email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_device_login_is_emailed_once_and_one_click_unsubscribes_sqlite() {
    new_device_login_is_emailed_once_and_one_click_unsubscribes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_device_login_is_emailed_once_and_one_click_unsubscribes_postgres() {
    let Some(db) = agora_db::testing::TestDb::postgres().await else {
        return;
    };
    new_device_login_is_emailed_once_and_one_click_unsubscribes(Some(&db.config.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_suppresses_the_address_and_a_transient_one_is_retried() {
    let Some(sink) = SmtpSink::start("bounces") else {
        return;
    };
    let app = app_with_email(&sink, &[], None).await;
    let db = app.database().await;
    let bouncer = app
        .register_with_email("bouncer", "bounce@example.com")
        .await;
    app.login_from("bouncer", "Laptop/1.0").await;
    assert_eq!(
        final_email_state(&db, bouncer.user.id, 1).await,
        EmailState::Failed
    );
    assert!(
        db.is_email_suppressed("bounce@example.com")
            .await
            .expect("suppressed")
    );
    app.login_from("bouncer", "Phone/1.0").await;
    assert_eq!(
        final_email_state(&db, bouncer.user.id, 2).await,
        EmailState::Suppressed
    );
    // What `agora email unsuppress` does once the owner fixed the mailbox.
    assert!(
        db.unsuppress_email("bounce@example.com")
            .await
            .expect("unsuppress")
    );
    assert!(
        !db.is_email_suppressed("bounce@example.com")
            .await
            .expect("cleared")
    );
    assert!(
        !db.unsuppress_email("bounce@example.com")
            .await
            .expect("again")
    );

    let busy = app
        .register_with_email("busybody", "busy@example.com")
        .await;
    app.login_from("busybody", "Laptop/1.0").await;
    let filter = JobFilter {
        kind: Some("send_email".into()),
        state: Some(JobState::Ready),
        ..Default::default()
    };
    let retrying = eventually("the 451 to be retried later", async || {
        db.list_jobs(&filter, None, 10)
            .await
            .ok()?
            .into_iter()
            .find(|j| j.attempts == 1)
    })
    .await;
    assert!(
        retrying
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("451")),
        "{retrying:?}"
    );
    assert!(
        !db.is_email_suppressed("busy@example.com")
            .await
            .expect("not suppressed")
    );
    assert_eq!(
        final_email_state(&db, busy.user.id, 1).await,
        EmailState::Failed
    );
    assert!(sink.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_cap_holds() {
    let Some(sink) = SmtpSink::start("daily_cap") else {
        return;
    };
    let app = app_with_email(&sink, &[("AGORA_EMAIL__DAILY_CAP", "2")], None).await;
    let db = app.database().await;
    let ann = app.register_with_email("ann", "ann@example.com").await;
    for (i, expected) in [EmailState::Sent, EmailState::Sent, EmailState::Capped]
        .into_iter()
        .enumerate()
    {
        app.login_from("ann", &format!("Device/{i}")).await;
        assert_eq!(
            final_email_state(&db, ann.user.id, i + 1).await,
            expected,
            "login {i}"
        );
    }
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_unsubscribe_token_is_refused_and_changes_nothing() {
    let app = TestApp::start().await;
    let ann = app.register("ann").await;
    let db = app.database().await;
    let before = row_counts(&db).await.expect("counts");
    let forged = format!("u1.{}.friend_request.AAAA", ann.user.id.simple());
    for token in [forged.as_str(), "garbage"] {
        let answer = reqwest::Client::new()
            .post(format!(
                "{}/v1/email/unsubscribe?token={token}",
                app.base_url
            ))
            .send()
            .await
            .expect("answers");
        assert_eq!(answer.status().as_u16(), 400);
        let body: serde_json::Value = answer.json().await.expect("json");
        assert_eq!(body["error_code"], "invalid_request");
        assert_eq!(body["details"][0]["pointer"], "/token");
    }
    let missing = reqwest::Client::new()
        .post(format!("{}/v1/email/unsubscribe", app.base_url))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status().as_u16(), 400);
    assert_eq!(row_counts(&db).await.expect("counts"), before);
}
