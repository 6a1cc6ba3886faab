//! `push.*` settings. Without `push.vapid_private_key` push is off (logged once at start).

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Web Push delivery of notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// The VAPID private key (RFC 8292): the 32-byte P-256 scalar, base64url, as web-push
    /// tools generate it (`AGORA_PUSH__VAPID_PRIVATE_KEY_FILE`). Unset: push is off.
    pub vapid_private_key: Option<Secret>,
    /// The VAPID contact push services may use: `mailto:` or `https:` URL.
    pub subject: String,
    /// How long a push service keeps an undelivered message, in seconds (`TTL`).
    pub ttl_secs: u32,
    /// One push request's time limit, in seconds.
    pub timeout_secs: u64,
    /// Accept `http://` endpoints and endpoints on loopback or private addresses. Only for
    /// tests and development: it lets a user make the server call internal addresses.
    pub allow_insecure_endpoints: bool,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            vapid_private_key: None,
            subject: "mailto:ops@agora.invalid".into(),
            ttl_secs: 86_400,
            timeout_secs: 10,
            allow_insecure_endpoints: false,
        }
    }
}

impl PushConfig {
    /// Every problem of the section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(key) = &self.vapid_private_key
            && let Err(e) = super::vapid::VapidKey::from_base64url(key.expose())
        {
            p.push(format!("push.vapid_private_key: {e}"));
        }
        if !(self.subject.starts_with("mailto:") || self.subject.starts_with("https://")) {
            p.push("push.subject: must be a mailto: or https:// URL (RFC 8292)".into());
        }
        if self.timeout_secs == 0 {
            p.push("push.timeout_secs: must be at least 1".into());
        }
        p
    }
}
