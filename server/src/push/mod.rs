//! Web Push delivery of notifications: RFC 8030 requests to the browser's push service, the
//! payload encrypted for the subscription's keys (RFC 8291, `aes128gcm`, by `web-push-native`),
//! signed with the server's VAPID key (RFC 8292). A 404 or 410 from the push service means the
//! subscription is gone: it is deleted. Native mobile providers can be added behind
//! [`Pusher::send`]'s outcome type later.

pub mod config;
pub mod send;
pub mod subscriptions;
pub mod vapid;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use config::PushConfig;
pub use send::{SendPush, SendPushHandler};
use vapid::VapidKey;

/// How a push request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Accepted by the push service.
    Accepted,
    /// The subscription no longer exists (404, 410): forget it.
    Gone,
    /// Worth retrying (429, 5xx, a timeout).
    Retry(String),
    /// Refused for good (400, 403, 413, a bad stored key).
    Refused(String),
}

/// Sends pushes; built once when `push.vapid_private_key` is set.
pub struct Pusher {
    key: VapidKey,
    subject: String,
    ttl: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("key", &self.key)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why the pusher could not be built (the configuration check lets none of these through).
#[derive(Debug, thiserror::Error)]
#[error("push: {0}")]
pub struct PusherError(String);

fn decode(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).ok()
}

impl Pusher {
    /// The pusher for `config`, or `None` when push is off (said once in the log).
    pub fn from_config(config: &PushConfig) -> Result<Option<Arc<Pusher>>, PusherError> {
        let Some(key) = &config.vapid_private_key else {
            tracing::info!("push.vapid_private_key is not set: push is off");
            return Ok(None);
        };
        let key = VapidKey::from_base64url(key.expose()).map_err(PusherError)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            // A push service answers; it never redirects to somewhere else to call.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PusherError(e.to_string()))?;
        tracing::info!(push.public_key = key.public_key(), "push is on");
        Ok(Some(Arc::new(Pusher {
            key,
            subject: config.subject.clone(),
            ttl: Duration::from_secs(u64::from(config.ttl_secs)),
            http,
        })))
    }

    /// The VAPID public key for browsers' `applicationServerKey`.
    pub fn public_key(&self) -> &str {
        self.key.public_key()
    }

    /// Encrypts `payload` for the subscription and posts it to its endpoint.
    pub async fn send(
        &self,
        subscription: &agora_db::deliveries::PushSubscription,
        payload: Vec<u8>,
    ) -> PushOutcome {
        let request = match self.request(subscription, payload) {
            Ok(r) => r,
            Err(e) => return PushOutcome::Refused(e),
        };
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let response = self
            .http
            .post(&url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await;
        match response {
            Ok(r) => {
                let status = r.status().as_u16();
                match status {
                    200..=299 => PushOutcome::Accepted,
                    404 | 410 => PushOutcome::Gone,
                    429 | 500..=599 => {
                        PushOutcome::Retry(format!("push service answered {status}"))
                    }
                    _ => PushOutcome::Refused(format!("push service answered {status}")),
                }
            }
            Err(e) => PushOutcome::Retry(format!("push request failed: {e}")),
        }
    }

    fn request(
        &self,
        subscription: &agora_db::deliveries::PushSubscription,
        payload: Vec<u8>,
    ) -> Result<http::Request<Vec<u8>>, String> {
        let endpoint: http::Uri = subscription
            .endpoint
            .parse()
            .map_err(|e| format!("stored endpoint: {e}"))?;
        let ua_public = decode(&subscription.p256dh)
            .and_then(|b| p256::PublicKey::from_sec1_bytes(&b).ok())
            .ok_or("stored p256dh is not a P-256 key")?;
        let auth: [u8; 16] = decode(&subscription.auth)
            .and_then(|b| b.try_into().ok())
            .ok_or("stored auth is not 16 bytes")?;
        let auth = web_push_native::Auth::from(auth);
        let origin = match (endpoint.scheme_str(), endpoint.authority()) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
            _ => return Err("stored endpoint has no origin".into()),
        };
        let mut request = web_push_native::WebPushBuilder::new(endpoint, ua_public, auth)
            .with_valid_duration(self.ttl)
            .build(payload)
            .map_err(|e| format!("cannot encrypt: {e}"))?;
        let authorization = self.key.authorization(&origin, &self.subject)?;
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&authorization).map_err(|e| e.to_string())?,
        );
        Ok(request)
    }
}
