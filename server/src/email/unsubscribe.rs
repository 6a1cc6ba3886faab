//! One-click unsubscribe links (RFC 8058): `u1.<user>.<kind>.<signature>`, an HMAC-SHA256 over
//! the user and the notification kind, so a link turns off exactly one kind's email for exactly
//! one user and cannot be forged or edited into another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

use agora_db::notifications::NotificationKind;

const PREFIX: &str = "u1";

/// Signs and checks unsubscribe tokens.
#[derive(Clone)]
pub struct UnsubscribeKey(Vec<u8>);

impl std::fmt::Debug for UnsubscribeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsubscribeKey(<redacted>)")
    }
}

impl UnsubscribeKey {
    /// A key from secret bytes.
    pub fn new(secret: &[u8]) -> Self {
        UnsubscribeKey(secret.to_vec())
    }

    /// A key derived from another secret (the token signing key) for this purpose only.
    pub fn derived_from(secret: &[u8]) -> Self {
        UnsubscribeKey(Self::mac(secret, b"agora email unsubscribe v1"))
    }

    fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    fn message(user: Uuid, kind: NotificationKind) -> String {
        format!("{PREFIX}.{}.{}", user.simple(), kind.as_str())
    }

    /// The token that turns off `kind` emails for `user`.
    pub fn token(&self, user: Uuid, kind: NotificationKind) -> String {
        let message = Self::message(user, kind);
        let signature = URL_SAFE_NO_PAD.encode(Self::mac(&self.0, message.as_bytes()));
        format!("{message}.{signature}")
    }

    /// The user and kind of a genuine token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<(Uuid, NotificationKind)> {
        let mut parts = token.split('.');
        let (prefix, user, kind, signature) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != PREFIX || parts.next().is_some() {
            return None;
        }
        let user = Uuid::try_parse(user).ok()?;
        let kind = NotificationKind::parse(kind)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).ok()?;
        mac.update(Self::message(user, kind).as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&signature).ok()?;
        Some((user, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_one_user_and_kind_and_resists_edits() {
        let key = UnsubscribeKey::derived_from(b"signing secret");
        let user = Uuid::now_v7();
        let token = key.token(user, NotificationKind::FriendRequest);
        assert_eq!(
            key.verify(&token),
            Some((user, NotificationKind::FriendRequest))
        );
        let edited = token.replace("friend_request", "new_login");
        assert_eq!(key.verify(&edited), None, "the kind is signed");
        let other = Uuid::now_v7();
        let moved = token.replace(&user.simple().to_string(), &other.simple().to_string());
        assert_eq!(key.verify(&moved), None, "the user is signed");
        assert_eq!(
            UnsubscribeKey::derived_from(b"another").verify(&token),
            None
        );
        for bad in ["", "u1", "u1.x.y.z", &format!("{token}.extra"), "u2.a.b.c"] {
            assert_eq!(key.verify(bad), None, "{bad}");
        }
    }
}
