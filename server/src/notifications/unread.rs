//! The unread badge: counted on the database, cached per user (`unread_notifications` policy),
//! dropped from the cache whenever the user's notifications change.

use agora_db::{Db, DbError, ReadPolicy};
use agora_kv::Kv;
use agora_kv::cache::UNREAD_NOTIFICATIONS;

/// The unread count of `user`, from the cache when it has it.
pub async fn count(db: &Db, kv: &Kv, user: uuid::Uuid) -> Result<i64, DbError> {
    kv.cache()
        .get_or_compute(&UNREAD_NOTIFICATIONS, &user.to_string(), || {
            db.count_unread_notifications(user, ReadPolicy::ForUser(user))
        })
        .await
}

/// Forgets the cached count of `user` (after a write that changes it).
pub async fn forget(kv: &Kv, user: uuid::Uuid) {
    kv.cache()
        .delete(&UNREAD_NOTIFICATIONS.key(user.to_string()))
        .await;
}

/// Caches a count just read from the primary.
pub async fn remember(kv: &Kv, user: uuid::Uuid, count: i64) {
    if let Ok(bytes) = serde_json::to_vec(&count) {
        kv.cache()
            .set(
                &UNREAD_NOTIFICATIONS.key(user.to_string()),
                bytes.into(),
                UNREAD_NOTIFICATIONS.ttl,
            )
            .await;
    }
}
