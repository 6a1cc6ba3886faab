//! VAPID (RFC 8292): the server's P-256 key, its public half for browsers'
//! `applicationServerKey`, and the `Authorization: vapid t=<JWT>, k=<key>` header of each push.
//! The JWT is signed with `jsonwebtoken` (ES256), the library the token code already uses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde::Serialize;

/// The server's VAPID key.
#[derive(Clone)]
pub struct VapidKey {
    encoding: jsonwebtoken::EncodingKey,
    public: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: u64,
    sub: &'a str,
}

impl VapidKey {
    /// The key whose 32-byte scalar is `private`, base64url (padding optional).
    pub fn from_base64url(private: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(private.trim().trim_end_matches('='))
            .map_err(|_| "is not base64url".to_owned())?;
        let secret = p256::SecretKey::from_slice(&bytes)
            .map_err(|_| "is not a P-256 private key (32 bytes, base64url)".to_owned())?;
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode: {e}"))?;
        let public = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        Ok(VapidKey {
            encoding: jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
            public,
        })
    }

    /// The uncompressed public key, base64url: the browser's `applicationServerKey`.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header value for a push to `origin` (scheme://host[:port]), valid
    /// for 12 hours (the RFC's maximum is 24).
    pub fn authorization(&self, origin: &str, subject: &str) -> Result<String, String> {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs()
            + 12 * 3600;
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let jwt = jsonwebtoken::encode(
            &header,
            &Claims {
                aud: origin,
                exp,
                sub: subject,
            },
            &self.encoding,
        )
        .map_err(|e| e.to_string())?;
        Ok(format!("vapid t={jwt}, k={}", self.public))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_carries_a_verifiable_es256_token_for_the_origin() {
        let key = VapidKey::from_base64url(&URL_SAFE_NO_PAD.encode([7u8; 32])).expect("key");
        let value = key
            .authorization("https://push.example.net", "mailto:ops@example.com")
            .expect("signs");
        let (t, k) = value
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .expect("vapid t=…, k=…");
        assert_eq!(k, key.public_key());
        let point = URL_SAFE_NO_PAD.decode(k).expect("base64url");
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..]),
        )
        .expect("public key");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["https://push.example.net"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(t, &decoding, &validation)
            .expect("verifies")
            .claims;
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        assert!(VapidKey::from_base64url("short").is_err());
        assert!(VapidKey::from_base64url(&URL_SAFE_NO_PAD.encode([0u8; 32])).is_err());
    }
}
