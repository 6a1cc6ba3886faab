//! Cached home-feed pages (`feed_page` in `agora_kv::cache::POLICIES` and `runbooks/caching.md`) and the
//! invalidations every writer that changes a feed must make.
//!
//! A page is cached in its reader's scope. Whatever changes what a reader may see, or how a page renders for
//! them, bumps that scope after it commits and before it answers — a tie change bumps both sides — so the next
//! read of anyone involved is computed from the database, and a page computed concurrently from the old state
//! is stored where nobody reads it. Edits and deletions of a post reach every reader who has it, so they bump
//! the whole namespace. Others' likes, comments and profile edits are not invalidations: pages show them
//! within the TTL.

use std::sync::Arc;

use agora_kv::{Cache, cache::FEED_PAGE};
use uuid::Uuid;

/// The feed-page cache; cheap to share.
#[derive(Clone)]
pub struct FeedPages {
    cache: Arc<dyn Cache>,
}

impl std::fmt::Debug for FeedPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedPages").finish_non_exhaustive()
    }
}

impl FeedPages {
    /// Pages cached in `cache` (the kv cache: Redis, or in process).
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        FeedPages { cache }
    }

    /// The cache the pages live in.
    pub(crate) fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The cached pages of `readers` are stale (one round trip for all of them).
    pub async fn changed_for(&self, readers: &[Uuid]) {
        if readers.is_empty() {
            return;
        }
        let scopes: Vec<String> = readers.iter().map(Uuid::to_string).collect();
        self.cache
            .invalidate_scopes(FEED_PAGE.name, &scopes, FEED_PAGE.ttl)
            .await;
    }

    /// Every cached page may be stale (a post was edited or deleted).
    pub async fn changed_for_everyone(&self) {
        self.cache.invalidate_namespace(FEED_PAGE.name).await;
    }
}
