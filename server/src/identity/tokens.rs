//! Tokens: short-lived access JWTs signed from a key ring, and opaque refresh tokens.
//!
//! Access tokens are HS256 JWTs whose `kid` names the ring key that signed them. The first key
//! signs; every key verifies, so a new key is rolled out by putting it first and the old one
//! stays second until the longest-lived token it signed has expired. Verification pins the
//! algorithm (no `none`, no other HMAC or public-key algorithm) and checks `iss`, `aud` and `exp`.
//!
//! Refresh tokens are 256 random bits (base64url); only their SHA-256 is stored.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::settings::AuthConfig;
use crate::secret::Secret;

/// The signing key used when none is configured, in development only (production refuses it).
pub const DEVELOPMENT_KEY: &str = "dev:agora-development-signing-key-never-use-in-production";

/// The one algorithm tokens are signed and accepted with.
const ALGORITHM: Algorithm = Algorithm::HS256;

/// Shortest accepted key secret, in bytes (HS256 wants at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// The user's role when the token was issued (`user`, `admin`); roles change by revoking
    /// the user's sessions, so a token's role is current for its whole life.
    #[serde(default = "default_role")]
    pub role: String,
    /// The session id.
    pub sid: String,
    /// A unique token id.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// Who a verified access token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The user.
    pub user_id: Uuid,
    /// The role claim.
    pub role: String,
    /// The session.
    pub session_id: Uuid,
    /// When the token expires (its `exp`).
    pub expires_at: std::time::SystemTime,
}

fn default_role() -> String {
    "user".to_owned()
}

/// Why a token was refused; for the log only (clients get one generic answer).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The header names no key, or one the ring does not have.
    #[error("unknown or missing key id")]
    UnknownKey,
    /// Signature, algorithm, expiry, issuer, audience or shape.
    #[error("rejected: {0}")]
    Rejected(#[from] jsonwebtoken::errors::Error),
    /// `sub` or `sid` is not a UUID.
    #[error("malformed subject or session id")]
    Malformed,
    /// Signing failed (a bug).
    #[error("cannot sign: {0}")]
    Signing(String),
    /// The system's random source failed.
    #[error("no randomness: {0}")]
    Random(String),
}

/// Splits a configured key `kid:secret`; the problem in words otherwise.
pub fn parse_key(value: &str) -> Result<(&str, &str), String> {
    match value.split_once(':') {
        Some((kid, secret)) if !kid.is_empty() && secret.len() >= MIN_SECRET_BYTES => {
            Ok((kid, secret))
        }
        Some((kid, _)) if !kid.is_empty() => Err(format!(
            "key {kid:?}: the secret must be at least {MIN_SECRET_BYTES} bytes"
        )),
        _ => Err("each key is `kid:secret` with a non-empty kid".into()),
    }
}

struct RingKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Signs and verifies access tokens.
pub struct KeyRing {
    signing_kid: String,
    keys: HashMap<String, RingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl_secs: u64,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing_kid", &self.signing_kid)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// The ring for `config` (the development key when no key is configured; configuration
    /// validation has already refused that in production).
    pub fn new(config: &AuthConfig) -> Result<KeyRing, String> {
        let dev = Secret::from(DEVELOPMENT_KEY);
        let configured: Vec<&Secret> = if config.keys.is_empty() {
            vec![&dev]
        } else {
            config.keys.iter().collect()
        };
        let mut keys = HashMap::new();
        let mut signing_kid = None;
        for secret in configured {
            let (kid, value) = parse_key(secret.expose())?;
            signing_kid.get_or_insert_with(|| kid.to_owned());
            keys.insert(
                kid.to_owned(),
                RingKey {
                    encoding: EncodingKey::from_secret(value.as_bytes()),
                    decoding: DecodingKey::from_secret(value.as_bytes()),
                },
            );
        }
        let signing_kid = signing_kid.ok_or("no signing key")?;
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = config.leeway_secs;
        Ok(KeyRing {
            signing_kid,
            keys,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl_secs: config.access_ttl_secs,
        })
    }

    /// Seconds an access token lives.
    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    /// A signed access token for `user_id` in `session_id`.
    pub fn issue_access(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: &str,
    ) -> Result<String, TokenError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = AccessClaims {
            sub: user_id.to_string(),
            role: role.to_owned(),
            sid: session_id.to_string(),
            jti: Uuid::new_v4().to_string(),
            iat: now,
            exp: now + self.access_ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let key = self
            .keys
            .get(&self.signing_kid)
            .ok_or_else(|| TokenError::Signing("the signing key is not in the ring".into()))?;
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Verifies an access token: known `kid`, HS256 only, valid signature, `iss`, `aud`, `exp`.
    pub fn verify_access(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        // `decode` also refuses any `alg` but the pinned one before looking at the signature.
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation)?;
        let user_id = Uuid::parse_str(&data.claims.sub).map_err(|_| TokenError::Malformed)?;
        let session_id = Uuid::parse_str(&data.claims.sid).map_err(|_| TokenError::Malformed)?;
        Ok(Verified {
            user_id,
            session_id,
            role: data.claims.role,
            expires_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(data.claims.exp),
        })
    }
}

/// A new refresh token and the hash to store for it.
pub fn new_refresh_token() -> Result<(String, String), TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    Ok((token, hash))
}

/// The stored form of a refresh token: hex SHA-256.
pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn ring(keys: &[&str]) -> KeyRing {
        let mut config = Config::default().auth;
        config.keys = keys.iter().map(|k| Secret::from(*k)).collect();
        KeyRing::new(&config).expect("ring")
    }

    const K1: &str = "k1:0123456789abcdef0123456789abcdef";
    const K2: &str = "k2:fedcba9876543210fedcba9876543210";

    #[test]
    fn tokens_round_trip_and_name_their_key() {
        let r = ring(&[K1]);
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let token = r.issue_access(user, session, "user").expect("issue");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.alg, Algorithm::HS256);
        let v = r.verify_access(&token).expect("valid");
        assert_eq!((v.user_id, v.session_id), (user, session));
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_the_old_key_is_dropped() {
        let old = ring(&[K1]);
        let token = old
            .issue_access(Uuid::now_v7(), Uuid::now_v7(), "user")
            .expect("issue");
        let rotated = ring(&[K2, K1]);
        assert!(rotated.verify_access(&token).is_ok());
        let new_token = rotated
            .issue_access(Uuid::now_v7(), Uuid::now_v7(), "user")
            .expect("issue");
        assert_eq!(
            jsonwebtoken::decode_header(&new_token)
                .expect("header")
                .kid
                .as_deref(),
            Some("k2")
        );
        assert!(matches!(
            ring(&[K2]).verify_access(&token),
            Err(TokenError::UnknownKey)
        ));
    }

    #[test]
    fn refresh_tokens_are_256_bits_and_stored_hashed() {
        let (token, hash) = new_refresh_token().expect("token");
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).expect("base64url").len(), 32);
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, token);
        assert_eq!(hash_refresh_token(&token), hash);
        assert_ne!(new_refresh_token().expect("token").0, token);
    }

    #[test]
    fn keys_need_a_kid_and_a_long_secret() {
        assert!(parse_key(K1).is_ok());
        assert!(parse_key("k1:short").is_err());
        assert!(parse_key(":0123456789abcdef0123456789abcdef").is_err());
        assert!(parse_key("no-colon").is_err());
    }
}
