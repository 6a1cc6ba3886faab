//! The push operations: the VAPID key for browsers, and registering or deleting a browser's
//! subscription. A subscription's endpoint is a URL the server will call, so it must be
//! `https://` on a public host (unless `push.allow_insecure_endpoints`), and its keys must be
//! usable (a P-256 point and a 16-byte secret) before it is stored.

use std::net::IpAddr;
use std::sync::Arc;

use agora_api::rt::{Location, Principal, RequestCtx, ServiceError, Violation};
use agora_api::types;
use agora_db::Db;
use agora_db::deliveries::NewPushSubscription;

use super::{Pusher, decode};
use crate::db_errors::{ResourceKind, service_error};

fn invalid(pointer: &str, rule: &'static str, message: &str) -> ServiceError {
    ServiceError::invalid(vec![Violation {
        location: Location::Body,
        pointer: pointer.into(),
        rule,
        message: message.into(),
    }])
}

/// Whether `host` (an IP literal) is loopback, private, link-local or otherwise not public.
fn internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| internal_ip(IpAddr::V4(v4)))
        }
    }
}

/// Refuses endpoints the server must not call.
fn check_endpoint(endpoint: &str, allow_insecure: bool) -> Result<(), ServiceError> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| invalid("/endpoint", "format", "is not a URL"))?;
    let host = uri
        .host()
        .ok_or_else(|| invalid("/endpoint", "format", "has no host"))?;
    if allow_insecure {
        return match uri.scheme_str() {
            Some("https" | "http") => Ok(()),
            _ => Err(invalid("/endpoint", "format", "must be an http(s) URL")),
        };
    }
    if uri.scheme_str() != Some("https") {
        return Err(invalid("/endpoint", "format", "must be an https:// URL"));
    }
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let internal = match literal.parse::<IpAddr>() {
        Ok(ip) => internal_ip(ip),
        Err(_) => literal.eq_ignore_ascii_case("localhost") || literal.ends_with(".localhost"),
    };
    if internal {
        return Err(invalid(
            "/endpoint",
            "format",
            "must be a public push service",
        ));
    }
    Ok(())
}

/// `get_push_config`.
pub fn config(pusher: Option<&Arc<Pusher>>) -> types::PushConfig {
    types::PushConfig {
        enabled: pusher.is_some(),
        vapid_public_key: pusher.map(|p| p.public_key().to_owned()),
    }
}

/// `register_push_subscription`.
pub async fn register(
    db: &Db,
    allow_insecure: bool,
    ctx: &RequestCtx<Principal>,
    body: types::PushSubscriptionRequest,
) -> Result<types::PushSubscription, ServiceError> {
    let endpoint = body.endpoint.to_string();
    check_endpoint(&endpoint, allow_insecure)?;
    let p256dh = body.keys.p256dh.to_string();
    let auth = body.keys.auth.to_string();
    if decode(&p256dh)
        .and_then(|b| p256::PublicKey::from_sec1_bytes(&b).ok())
        .is_none()
    {
        return Err(invalid(
            "/keys/p256dh",
            "format",
            "is not a P-256 public key (base64url)",
        ));
    }
    if decode(&auth).is_none_or(|b| b.len() != 16) {
        return Err(invalid(
            "/keys/auth",
            "format",
            "is not a 16-byte secret (base64url)",
        ));
    }
    let saved = db
        .save_push_subscription(&NewPushSubscription {
            user_id: ctx.principal.user_id,
            endpoint,
            p256dh,
            auth,
            user_agent: ctx.user_agent.clone(),
        })
        .await
        .map_err(|e| service_error(e, ResourceKind::PushSubscription))?;
    Ok(types::PushSubscription {
        id: saved.id,
        endpoint: saved.endpoint,
        created_at: saved.created_at,
    })
}

/// `delete_push_subscription`: only the caller's own; anyone else's is 404.
pub async fn delete(
    db: &Db,
    ctx: &RequestCtx<Principal>,
    id: uuid::Uuid,
) -> Result<(), ServiceError> {
    db.delete_push_subscription(id, Some(ctx.principal.user_id))
        .await
        .map_err(|e| service_error(e, ResourceKind::PushSubscription))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_endpoints_unless_insecure_is_allowed() {
        for ok in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/x",
        ] {
            assert!(check_endpoint(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://push.example.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://[::1]/x",
            "https://[::ffff:192.168.0.1]/x",
            "https://localhost:8443/x",
            "https://169.254.169.254/latest",
            "ftp://push.example.com/",
            "not a url",
        ] {
            assert!(check_endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(check_endpoint("http://127.0.0.1:9999/push", true).is_ok());
        assert!(check_endpoint("ftp://127.0.0.1/", true).is_err());
    }
}
