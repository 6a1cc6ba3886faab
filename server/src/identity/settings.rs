//! `[auth]`: the identity service's settings. Owned here, with the service, so configuration
//! depends on identity and not the other way round.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Accounts, sessions and tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The `iss` of access tokens. Default `agora`.
    pub issuer: String,
    /// The `aud` of access tokens. Default `agora-api`.
    pub audience: String,
    /// Access-token lifetime, in seconds. Default 900 (15 minutes).
    pub access_ttl_secs: u64,
    /// Refresh-token lifetime, in seconds; each refresh issues a new one. Default 2592000 (30 days).
    pub refresh_ttl_secs: u64,
    /// Clock skew tolerated on `exp`, in seconds. Default 30.
    pub leeway_secs: u64,
    /// The JWT key ring, `kid:secret` each (secret at least 32 bytes); the first signs, all verify.
    /// Empty (the default) uses a built-in development key, which production refuses.
    pub keys: Vec<Secret>,
    /// argon2id memory, in KiB. Default 19456 (OWASP).
    pub argon2_memory_kib: u32,
    /// argon2id iterations. Default 2 (OWASP).
    pub argon2_iterations: u32,
    /// argon2id lanes. Default 1 (OWASP).
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; more wait for a turn. Default: half the CPU cores, at
    /// least 1, so a login flood leaves the other half to every other request (measured with
    /// `examples/identity_bench`: see runbooks/security.md).
    pub hash_concurrency: usize,
}

/// Half the cores this process may use, at least 1.
fn half_the_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "agora".into(),
            audience: "agora-api".into(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            leeway_secs: 30,
            keys: Vec::new(),
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: half_the_cores(),
        }
    }
}

impl AuthConfig {
    /// Every problem of the section, each `auth.<key>: <what is wrong>`.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (key, value) in [("issuer", &self.issuer), ("audience", &self.audience)] {
            if value.trim().is_empty() {
                p.push(format!("auth.{key}: must not be empty"));
            }
        }
        for (key, value) in [
            ("access_ttl_secs", self.access_ttl_secs),
            ("refresh_ttl_secs", self.refresh_ttl_secs),
        ] {
            if value == 0 {
                p.push(format!("auth.{key}: must be greater than 0"));
            }
        }
        let mut kids = std::collections::BTreeSet::new();
        for key in &self.keys {
            match super::tokens::parse_key(key.expose()) {
                Err(e) => p.push(format!("auth.keys: {e}")),
                Ok((kid, _)) if !kids.insert(kid) => {
                    p.push(format!("auth.keys: key id {kid:?} appears twice"));
                }
                Ok(_) => {}
            }
        }
        if let Err(e) = super::passwords::params(self) {
            p.push(format!("auth.argon2_memory_kib: {e}"));
        }
        // Each permit is a thread holding one argon2 block from start-up: bound the memory it pins.
        if self.hash_concurrency == 0 || self.hash_concurrency > 64 {
            p.push(
                "auth.hash_concurrency: must be between 1 and 64 (each is a thread holding argon2_memory_kib)"
                    .into(),
            );
        }
        p
    }
}
