//! Read-through cache of account profiles (`user_profile`, `user_handle` in
//! `agora_kv::cache`): `get_me`, `get_user` and `get_user_by_handle` answer from it.
//!
//! An update deletes the entry after its commit, deletes it again [`SECOND_DELETE_AFTER`]
//! later (a reader that missed, read the old row just before the commit and fills just after
//! the first delete would otherwise bring the old profile back for a whole TTL), and announces
//! the key on the broker channel [`INVALIDATE_CHANNEL`] so every instance also drops it from its
//! in-process fallback cache. The password hash and the role are never cached.

use agora_db::users::User;
use agora_db::{Db, DbError, ReadPolicy};
use agora_kv::Kv;
use agora_kv::cache::{SECOND_DELETE_AFTER, USER_HANDLE, USER_PROFILE};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The broker channel that carries cache keys to drop on every instance.
pub const INVALIDATE_CHANNEL: &str = "cache.invalidate";

/// What is cached of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedProfile {
    /// The account.
    pub id: Uuid,
    /// As typed at registration.
    pub handle: String,
    /// Normalized.
    pub email: String,
    /// Shown name.
    pub display_name: String,
    /// Profile text.
    pub bio: Option<String>,
    /// Avatar.
    pub avatar_url: Option<String>,
    /// Registration time.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<User> for CachedProfile {
    fn from(u: User) -> Self {
        CachedProfile {
            id: u.id,
            handle: u.handle,
            email: u.email,
            display_name: u.display_name,
            bio: u.bio,
            avatar_url: u.avatar_url,
            created_at: u.created_at,
        }
    }
}

/// One message on [`INVALIDATE_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invalidation {
    /// The policy (namespace).
    pub policy: String,
    /// The key inside it.
    pub key: String,
}

/// The profile cache; cheap to share.
#[derive(Clone)]
pub struct Profiles {
    db: Db,
    kv: Kv,
}

impl Profiles {
    /// The cache over `db`.
    pub fn new(db: Db, kv: Kv) -> Self {
        Profiles { db, kv }
    }

    /// The profile of `id`, read with `policy` on a miss.
    pub async fn by_id(&self, id: Uuid, policy: ReadPolicy) -> Result<CachedProfile, DbError> {
        self.kv
            .cache()
            .get_or_compute(&USER_PROFILE, &id.to_string(), || async {
                self.db.get_user(id, policy).await.map(CachedProfile::from)
            })
            .await
    }

    /// The profile of `handle` (any letter case).
    pub async fn by_handle(
        &self,
        handle: &str,
        policy: ReadPolicy,
    ) -> Result<CachedProfile, DbError> {
        let key = handle.to_lowercase();
        let id: Uuid = self
            .kv
            .cache()
            .get_or_compute(&USER_HANDLE, &key, || async {
                self.db
                    .get_user_by_handle(handle, policy)
                    .await
                    .map(|u| u.id)
            })
            .await?;
        self.by_id(id, policy).await
    }

    /// Drops `id`'s profile everywhere, now and once more a moment later.
    pub async fn forget(&self, id: Uuid) {
        let key = USER_PROFILE.key(id.to_string());
        self.kv.cache().delete(&key).await;
        let message = Invalidation {
            policy: USER_PROFILE.name.to_owned(),
            key: id.to_string(),
        };
        if let Err(e) = self
            .kv
            .broker()
            .publish_json(INVALIDATE_CHANNEL, &message)
            .await
        {
            tracing::warn!(error = %e, "cache invalidation not announced");
        }
        let cache = self.kv.cache().clone();
        tokio::spawn(async move {
            tokio::time::sleep(SECOND_DELETE_AFTER).await;
            cache.delete(&key).await;
        });
    }

    /// Drops the keys other instances announce from this instance's caches, until the
    /// process ends.
    pub fn follow_invalidations(kv: Kv) {
        tokio::spawn(async move {
            let mut subscription = kv.broker().subscribe(INVALIDATE_CHANNEL).await;
            while let Some(message) = subscription.recv_json::<Invalidation>().await {
                match message {
                    Ok(m) if agora_kv::POLICIES.iter().any(|p| p.name == m.policy) => {
                        kv.cache()
                            .delete(&agora_kv::CacheKey::new(m.policy, m.key))
                            .await;
                    }
                    Ok(m) => {
                        tracing::warn!(cache.policy = %m.policy, "invalidation of an unknown policy")
                    }
                    Err(e) => tracing::warn!(error = %e, "undecodable cache invalidation"),
                }
            }
        });
    }
}
