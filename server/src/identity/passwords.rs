//! Password hashing: argon2id, off the async runtime and under a concurrency cap.
//!
//! Hashing is deliberately expensive (memory and CPU), so it runs on the blocking pool and at
//! most `hash_concurrency` hashes run at once: a flood of logins queues for a permit instead of
//! starving every other request of CPU and memory. A login for an unknown account verifies
//! against a dummy hash made once with the same parameters, so it costs the same time as a wrong
//! password and the two cannot be told apart.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::AuthConfig;

/// Why hashing failed (never because of the password itself).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The parameters are invalid (configuration validation prevents this).
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    /// Hashing failed, or its blocking task died.
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("params", &self.params)
            .field("permits", &self.permits.available_permits())
            .finish()
    }
}

/// The argon2id parameters of `config`.
pub fn params(config: &AuthConfig) -> Result<Params, PasswordError> {
    Params::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        None,
    )
    .map_err(|e| PasswordError::Params(e.to_string()))
}

fn hasher(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Passwords {
    /// Builds the hasher and computes the dummy hash (one hash's time, off the runtime).
    pub async fn new(config: &AuthConfig) -> Result<Passwords, PasswordError> {
        let params = params(config)?;
        let p = params.clone();
        let dummy = tokio::task::spawn_blocking(move || {
            hasher(p)
                .hash_password(b"agora-dummy-password-for-unknown-accounts")
                .map(|h| h.to_string())
        })
        .await
        .map_err(|e| PasswordError::Hashing(e.to_string()))?
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(Passwords {
            params,
            permits: Arc::new(Semaphore::new(config.hash_concurrency.max(1))),
            dummy_hash: dummy.into(),
        })
    }

    /// The PHC string for `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = password.as_bytes().to_vec();
        self.blocking(move || {
            hasher(params)
                .hash_password(&password)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hashing(e.to_string()))
        })
        .await
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown account) verifies
    /// against the dummy and answers `false`, taking the same time.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let phc: Arc<str> = stored
            .map(Arc::from)
            .unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.as_bytes().to_vec();
        let params = self.params.clone();
        let matches = self
            .blocking(move || {
                // A stored hash that does not parse matches nothing (and takes no time; such a
                // row is a bug, not something an attacker can choose).
                let Ok(parsed) = PasswordHash::new(&phc) else {
                    return Ok(false);
                };
                Ok(hasher(params).verify_password(&password, &parsed).is_ok())
            })
            .await?;
        Ok(known && matches)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cheap() -> AuthConfig {
        let mut c = Config::default().auth;
        c.argon2_memory_kib = 1024;
        c.argon2_iterations = 1;
        c
    }

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id_with_the_configured_parameters() {
        let p = Passwords::new(&cheap()).await.expect("passwords");
        let hash = p.hash("correct horse battery").await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert_ne!(
            hash,
            p.hash("correct horse battery").await.expect("hash"),
            "salted"
        );
        assert!(
            p.verify("correct horse battery", Some(&hash))
                .await
                .expect("verify")
        );
        assert!(
            !p.verify("wrong horse battery", Some(&hash))
                .await
                .expect("verify")
        );
        assert!(
            !p.verify("correct horse battery", None)
                .await
                .expect("dummy")
        );
        assert!(
            !p.verify("x", Some("not a phc string"))
                .await
                .expect("garbage")
        );
    }

    #[test]
    fn the_defaults_are_owasp() {
        let c = Config::default().auth;
        assert_eq!(
            (
                c.argon2_memory_kib,
                c.argon2_iterations,
                c.argon2_parallelism
            ),
            (19456, 2, 1)
        );
    }
}
