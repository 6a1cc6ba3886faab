//! Web Push end to end: a browser (keys made here) registers a subscription; a sign-in from a
//! new device then arrives in the app, by email (the real SMTP sink) and as a push the local
//! push service receives and this test **decrypts** with the browser's keys (RFC 8291), signed
//! with a VAPID token that verifies against the advertised key (RFC 8292). A 410 deletes its
//! subscription; unusable subscriptions are refused and change nothing.

use agora_client::types::{PushSubscriptionKeys, PushSubscriptionRequest};
use agora_db::testing::{eventually, row_counts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::push_endpoint::PushEndpoint;
use crate::smtp_sink::SmtpSink;
use crate::support::{TestApp, error_body, wait_for_notifications};

/// The server's VAPID private key in these tests.
fn vapid_private() -> String {
    URL_SAFE_NO_PAD.encode([9u8; 32])
}

/// A browser: its P-256 key pair and auth secret.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new(seed: u8) -> Self {
        Browser {
            secret: p256::SecretKey::from_slice(&[seed; 32]).expect("a valid scalar"),
            auth: [seed.wrapping_add(1); 16],
        }
    }

    fn subscription(&self, endpoint: String) -> PushSubscriptionRequest {
        let p256dh =
            URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes());
        PushSubscriptionRequest::builder()
            .endpoint(endpoint)
            .keys(
                PushSubscriptionKeys::builder()
                    .p256dh(p256dh)
                    .auth(URL_SAFE_NO_PAD.encode(self.auth)),
            )
            .try_into()
            .expect("a valid request")
    }

    fn decrypt(&self, body: Vec<u8>) -> serde_json::Value {
        let auth = web_push_native::Auth::from(self.auth);
        let plain = web_push_native::decrypt(body, &self.secret, &auth)
            .expect("decrypts with the browser's keys");
        serde_json::from_slice(&plain).expect("JSON payload")
    }
}

/// Checks the `Authorization: vapid t=…, k=…` header: `k` is the advertised key and `t` an
/// ES256 JWT for the endpoint's origin, signed by it.
fn check_vapid(header: &str, advertised: &str, origin: &str) {
    let (t, k) = header
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .expect("vapid t=…, k=…");
    assert_eq!(k, advertised);
    let point = URL_SAFE_NO_PAD.decode(k).expect("base64url");
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..]),
    )
    .expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(t, &key, &validation)
        .expect("the VAPID token verifies")
        .claims;
    assert_eq!(claims["sub"], "mailto:push-test@agora.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_login_arrives_in_the_app_by_email_and_by_push() {
    let Some(sink) = SmtpSink::start("app_email_and_push") else {
        return;
    };
    let push = PushEndpoint::start().await;
    let vapid = vapid_private();
    let smtp = sink.url();
    let app = TestApp::start_with(&[
        ("AGORA_EMAIL__SMTP_URL", smtp.as_str()),
        ("AGORA_PUSH__VAPID_PRIVATE_KEY", vapid.as_str()),
        ("AGORA_PUSH__SUBJECT", "mailto:push-test@agora.test"),
        ("AGORA_PUSH__ALLOW_INSECURE_ENDPOINTS", "true"),
    ])
    .await;
    let ann = app.register("ann").await;
    let client = app.client_with_token(&ann.tokens.access_token);
    let config = client
        .get_push_config()
        .send()
        .await
        .expect("config")
        .into_inner();
    assert!(config.enabled);
    let advertised = config.vapid_public_key.expect("a key");

    let browser = Browser::new(5);
    let kept = client
        .register_push_subscription()
        .body(browser.subscription(push.url("/sub/kept")))
        .send()
        .await
        .expect("register")
        .into_inner();
    let gone_browser = Browser::new(7);
    push.answer("/sub/gone", 410);
    let gone = client
        .register_push_subscription()
        .body(gone_browser.subscription(push.url("/sub/gone")))
        .send()
        .await
        .expect("register")
        .into_inner();

    app.login_from("ann", "Laptop/1.0").await;

    // In the app.
    let items = wait_for_notifications(&client, 1).await;
    assert_eq!(
        items[0].kind,
        agora_client::types::NotificationKind::NewLogin
    );
    // By email.
    let mails = sink.wait_for(1).await;
    assert!(mails[0].text.contains("Laptop/1.0"));
    // By push, decrypted as the browser would.
    let pushes = eventually("both pushes", async || {
        let got = push.received();
        (got.len() >= 2).then_some(got)
    })
    .await;
    let delivered = pushes
        .iter()
        .find(|p| p.path == "/sub/kept")
        .expect("pushed to the kept browser");
    assert_eq!(
        delivered
            .headers
            .get("content-encoding")
            .map(String::as_str),
        Some("aes128gcm")
    );
    assert!(delivered.headers.contains_key("ttl"));
    check_vapid(
        delivered.headers.get("authorization").expect("VAPID"),
        &advertised,
        &push.url(""),
    );
    let payload = browser.decrypt(delivered.body.clone());
    assert_eq!(payload["kind"], "new_login");
    assert_eq!(payload["id"], items[0].id.to_string());
    assert_eq!(payload["text"], items[0].text);

    // The push service said 410: that subscription is deleted, the other kept.
    let db = app.database().await;
    eventually("the gone subscription to be deleted", async || {
        matches!(
            db.get_push_subscription(gone.id).await,
            Err(agora_db::DbError::NotFound)
        )
        .then_some(())
    })
    .await;
    assert!(db.get_push_subscription(kept.id).await.is_ok());
    let expired = client
        .delete_push_subscription()
        .subscription_id(gone.id)
        .send()
        .await;
    assert_eq!(error_body(expired).0, 404);
    client
        .delete_push_subscription()
        .subscription_id(kept.id)
        .send()
        .await
        .expect("delete own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_subscriptions_are_refused_and_change_nothing() {
    let vapid = vapid_private();
    let app = TestApp::start_with(&[("AGORA_PUSH__VAPID_PRIVATE_KEY", vapid.as_str())]).await;
    let ann = app.register("ann").await;
    let token = ann.tokens.access_token.clone();
    let db = app.database().await;
    let before = row_counts(&db).await.expect("counts");
    let browser = Browser::new(5);
    let good = serde_json::to_value(browser.subscription("https://push.example.com/sub/1".into()))
        .expect("json");
    let cases = [
        (
            "/endpoint",
            serde_json::json!({"endpoint": "http://push.example.com/x", "keys": good["keys"]}),
        ),
        (
            "/endpoint",
            serde_json::json!({"endpoint": "https://127.0.0.1/x", "keys": good["keys"]}),
        ),
        (
            "/endpoint",
            serde_json::json!({"endpoint": "https://169.254.169.254/latest", "keys": good["keys"]}),
        ),
        (
            "/keys/p256dh",
            serde_json::json!({"endpoint": good["endpoint"], "keys": {"p256dh": "A".repeat(87), "auth": good["keys"]["auth"]}}),
        ),
        (
            "/keys/auth",
            serde_json::json!({"endpoint": good["endpoint"], "keys": {"p256dh": good["keys"]["p256dh"], "auth": "A".repeat(30)}}),
        ),
    ];
    for (pointer, body) in cases {
        let (status, answer) = app
            .raw_as(
                Some(&token),
                reqwest::Method::POST,
                "/v1/me/push-subscriptions",
                body,
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error_code"], "invalid_request");
        assert_eq!(answer["details"][0]["pointer"], pointer, "{answer}");
    }
    assert_eq!(row_counts(&db).await.expect("counts"), before);

    // Without a VAPID key, push is off and says so.
    let off = TestApp::start().await;
    let bob = off.register("bob").await;
    let config = off
        .client_with_token(&bob.tokens.access_token)
        .get_push_config()
        .send()
        .await
        .expect("config")
        .into_inner();
    assert!(!config.enabled);
    assert_eq!(config.vapid_public_key, None);
}
