//! Password hashing: argon2id on a fixed set of dedicated threads, each reusing one memory block.
//!
//! Hashing is deliberately expensive: 19 MiB and tens of milliseconds per hash with the OWASP
//! parameters. Two things must hold under a login flood. CPU: at most `hash_concurrency` hashes
//! run at once, and the rest wait (asynchronously) for a permit instead of starving every other
//! request. Memory: every hash needs its 19 MiB, and when each call allocates it afresh, glibc
//! keeps the freed block in the arena of whichever thread ran it (up to 8 arenas per core), so a
//! flood on the blocking pool left ~590 MiB resident for good. Here each of the `hash_concurrency`
//! worker threads allocates its block once and hands it to argon2's caller-provided-memory API
//! for every hash, so the resident memory of hashing is `hash_concurrency` blocks, whatever the
//! load (`examples/login_flood_rss` measures it).
//!
//! A login for an unknown account verifies against a dummy hash made once with the same
//! parameters, so it costs the same time as a wrong password and the two cannot be told apart.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use super::settings::AuthConfig;

/// Why hashing failed (never because of the password itself).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The parameters are invalid (configuration validation prevents this).
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    /// Hashing failed, or its worker is gone.
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// Hashes and verifies passwords; cheap to clone (the workers are shared).
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    jobs: SyncSender<Job>,
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
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

/// Work for a hashing thread.
enum Job {
    /// A new PHC string for the password, with a fresh salt.
    Hash {
        password: Vec<u8>,
        reply: oneshot::Sender<Result<String, PasswordError>>,
    },
    /// Whether the password matches the PHC string.
    Verify {
        password: Vec<u8>,
        phc: Arc<str>,
        reply: oneshot::Sender<bool>,
    },
}

/// One hashing thread's state: the parameters new hashes use and the memory every hash reuses.
struct Worker {
    params: Params,
    memory: Vec<Block>,
}

impl Worker {
    fn new(params: Params) -> Self {
        let memory = vec![Block::new(); params.block_count()];
        Worker { params, memory }
    }

    /// The memory for `params`: the worker's own block, grown once if an older stored hash
    /// used more (its parameters came from this deployment's configuration, not from input).
    fn memory_for(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.memory.len() < needed {
            self.memory.resize(needed, Block::new());
        }
        &mut self.memory[..needed]
    }

    fn hash(&mut self, password: &[u8]) -> Result<String, PasswordError> {
        let failed = |e: &dyn std::fmt::Display| PasswordError::Hashing(e.to_string());
        let salt = Salt::generate();
        let params = self.params.clone();
        let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        argon2
            .hash_password_into_with_memory(password, &salt, &mut out, self.memory_for(&params))
            .map_err(|e| failed(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
            salt: Some(salt),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(phc.to_string())
    }

    fn verify(&mut self, password: &[u8], phc: &str) -> bool {
        // A stored hash that does not parse matches nothing (and takes no time; such a row is a
        // bug, not something an attacker can choose).
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
            return false;
        };
        let version = parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from);
        let Ok(version) = version else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let argon2 = Argon2::new(algorithm, version, params.clone());
        if argon2
            .hash_password_into_with_memory(password, salt, &mut out, self.memory_for(&params))
            .is_err()
        {
            return false;
        }
        // `Output`'s equality is constant-time.
        Output::new(&out).is_ok_and(|computed| computed == *expected)
    }
}

/// Starts `threads` hashing threads serving `jobs`; they end when every sender is dropped.
fn start_workers(
    threads: usize,
    params: &Params,
    jobs: Receiver<Job>,
) -> Result<(), PasswordError> {
    let jobs = Arc::new(Mutex::new(jobs));
    for i in 0..threads {
        let jobs = jobs.clone();
        let mut worker = Worker::new(params.clone());
        std::thread::Builder::new()
            .name(format!("agora-hash-{i}"))
            .spawn(move || {
                loop {
                    // The lock is held only to take the next job, not while hashing.
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(Job::Hash { password, reply }) => {
                            let _ = reply.send(worker.hash(&password));
                        }
                        Ok(Job::Verify {
                            password,
                            phc,
                            reply,
                        }) => {
                            let _ = reply.send(worker.verify(&password, &phc));
                        }
                        Err(_) => return,
                    }
                }
            })
            .map_err(|e| PasswordError::Hashing(format!("cannot start a hashing thread: {e}")))?;
    }
    Ok(())
}

impl Passwords {
    /// Starts the hashing threads and computes the dummy hash (one hash's time).
    pub async fn new(config: &AuthConfig) -> Result<Passwords, PasswordError> {
        let params = params(config)?;
        let threads = config.hash_concurrency.max(1);
        // Every permit holder has a thread: a sent job never waits in the channel.
        let (jobs, rx) = sync_channel(threads);
        start_workers(threads, &params, rx)?;
        let mut passwords = Passwords {
            permits: Arc::new(Semaphore::new(threads)),
            jobs,
            dummy_hash: Arc::from(""),
        };
        passwords.dummy_hash = passwords
            .hash("agora-dummy-password-for-unknown-accounts")
            .await?
            .into();
        Ok(passwords)
    }

    /// The PHC string for `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.as_bytes().to_vec();
        self.submit(|reply| Job::Hash { password, reply }).await?
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
        let matches = self
            .submit(|reply| Job::Verify {
                password,
                phc,
                reply,
            })
            .await?;
        Ok(known && matches)
    }

    /// Runs a job on a hashing thread. The permit is held until the answer arrives, so at most
    /// `hash_concurrency` jobs are ever in flight and each finds its thread free.
    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<T>) -> Job,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(job(reply))
            .map_err(|e| PasswordError::Hashing(format!("hashing queue: {e}")))?;
        answer.await.map_err(gone)
    }
}

fn gone(_: oneshot::error::RecvError) -> PasswordError {
    PasswordError::Hashing("the hashing thread is gone".into())
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

    #[tokio::test]
    async fn hashes_interoperate_with_the_standard_argon2_verifier_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let p = Passwords::new(&cheap()).await.expect("passwords");
        let ours = p.hash("a long enough password").await.expect("hash");
        let standard = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            params(&cheap()).expect("params"),
        );
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(
            standard
                .verify_password(b"a long enough password", &parsed)
                .is_ok()
        );
        // A hash stored before (argon2's own allocation path), with other parameters.
        let older = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(2048, 1, 1, None).expect("params"),
        )
        .hash_password(b"stored long ago")
        .expect("hash")
        .to_string();
        assert!(
            p.verify("stored long ago", Some(&older))
                .await
                .expect("verify")
        );
        assert!(
            !p.verify("stored long agO", Some(&older))
                .await
                .expect("verify")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_queues_for_the_threads_instead_of_failing() {
        let mut config = cheap();
        config.hash_concurrency = 2;
        let p = Passwords::new(&config).await.expect("passwords");
        let hash = p.hash("flood").await.expect("hash");
        let calls: Vec<_> = (0..64)
            .map(|i| {
                let (p, hash) = (p.clone(), hash.clone());
                tokio::spawn(async move {
                    let password = if i % 2 == 0 { "flood" } else { "wrong" };
                    p.verify(password, Some(&hash))
                        .await
                        .map(|ok| ok == (i % 2 == 0))
                })
            })
            .collect();
        for call in calls {
            assert!(
                call.await.expect("task").expect("verified"),
                "every answer is right"
            );
        }
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
