//! The home feed: the posts of the reader's friends and followed users plus their own, newest
//! first.
//!
//! Fan-out on write: a new post is inserted into its active audience's `feed_entries` by the
//! `fanout_post` job ([`jobs`]), off the request path. Authors whose audience exceeds
//! `feed.fanout_max_audience` are not fanned out (one post would write 10,000+ rows); their
//! posts, and the reader's own, are merged in at read time from the posts table — the hybrid of
//! Twitter's and Mastodon's designs. Readers who have not read their feed for
//! `feed.inactive_after_days` are skipped by fan-out, and their feed is rebuilt from their ties
//! when they return.
//!
//! A page is keyed by post id (UUIDv7, time-ordered): a post published while someone pages
//! sorts above the page they are on, so pages never repeat or skip a post. Privacy is checked by
//! the read queries against the ties as they are now; rendered pages are cached in the reader's
//! scope ([`pages`]), which every write that changes what the reader may see bumps.

pub mod jobs;
pub mod pages;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agora_kv::cache::{FEED_PAGE, Lookup};
use agora_kv::memory::MemoryCache;
use agora_kv::{Cache, CacheKey};

use agora_api::rt::{Principal, RequestCtx, ServiceError};
use agora_api::types;
use agora_db::{Db, ReadPolicy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db_errors::{ResourceKind, service_error};
use crate::paging::{page_size, parse_id_token, split_page};
use crate::posts::views::render_posts;
pub use pages::FeedPages;

/// Page tokens of `get_home_feed` are `f1.<last post id>`.
const PAGE_TOKEN: &str = "f1.";

/// `feed.*` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Authors with a larger audience (friends plus followers) are merged in at read time
    /// instead of fanned out. Default 10000.
    pub fanout_max_audience: usize,
    /// Readers who have not read their feed for this many days are skipped by fan-out and
    /// rebuilt on return. Default 7.
    pub inactive_after_days: u32,
    /// How many recent posts of an author a new friendship or follow brings into the feed.
    /// Default 200.
    pub backfill_posts: u32,
    /// How many recent posts a returning reader's rebuilt feed starts with. Default 800.
    pub rebuild_posts: u32,
    /// How often a reader's last read is recorded (a write), at most. Default 3600.
    pub read_record_interval_secs: u64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            fanout_max_audience: 10_000,
            inactive_after_days: 7,
            backfill_posts: 200,
            rebuild_posts: 800,
            read_record_interval_secs: 3600,
        }
    }
}

impl FeedConfig {
    /// Every problem of the section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.inactive_after_days == 0 {
            p.push("feed.inactive_after_days: at least 1".into());
        }
        if self.rebuild_posts == 0 || self.rebuild_posts > 10_000 {
            p.push("feed.rebuild_posts: 1 to 10000".into());
        }
        if self.backfill_posts > 10_000 {
            p.push("feed.backfill_posts: at most 10000".into());
        }
        if self.read_record_interval_secs >= u64::from(self.inactive_after_days) * 86_400 {
            p.push(
                "feed.read_record_interval_secs: must be shorter than feed.inactive_after_days"
                    .into(),
            );
        }
        p
    }
}

/// Readers whose recent read this instance remembers (the soonest to expire go first).
const NOTED_READERS_MAX: usize = 100_000;

/// The feed operation; cheap to share.
#[derive(Clone, Debug)]
pub struct Feed {
    db: Db,
    config: FeedConfig,
    pages: FeedPages,
    /// Readers whose read this instance recorded within `read_record_interval_secs` (entries live
    /// that long): their first page needs no database round trip to know they are active.
    noted: Arc<MemoryCache>,
}

impl Feed {
    /// The service.
    pub fn new(db: Db, config: FeedConfig, pages: FeedPages) -> Self {
        Feed {
            db,
            config,
            pages,
            noted: Arc::new(MemoryCache::new(NOTED_READERS_MAX)),
        }
    }

    /// The job handler of the feed jobs.
    pub fn worker(&self) -> jobs::FeedWorker {
        jobs::FeedWorker {
            db: self.db.clone(),
            config: self.config.clone(),
            pages: self.pages.clone(),
        }
    }

    /// `get_home_feed`.
    pub async fn get_home_feed(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::GetHomeFeedQuery,
    ) -> Result<types::PostResultsPage, ServiceError> {
        let me = ctx.principal.user_id;
        let size = page_size(query.limit);
        let before = query
            .page_token
            .as_deref()
            .map(|t| parse_id_token(t, PAGE_TOKEN))
            .transpose()?;
        if before.is_none() {
            // A first page is where a returning reader comes back.
            self.note_read(me).await?;
        }
        let key = FEED_PAGE.scoped_key(
            me.to_string(),
            format!(
                "{}:{size}",
                before.map_or_else(|| "first".to_owned(), |b| b.to_string())
            ),
        );
        self.pages
            .cache()
            .get_or_compute_key(&FEED_PAGE, &key, || async {
                let posts = self.page(me, before, size + 1).await.map_err(db)?;
                let (posts, next_page) =
                    split_page(posts, size, |p| format!("{PAGE_TOKEN}{}", p.id));
                let items = render_posts(&self.db, me, posts).await?;
                Ok(types::PostResultsPage { items, next_page })
            })
            .await
    }

    /// Up to `limit` posts of `reader`'s feed before `before`: the fanned-out entries merged
    /// with the reader's own posts and those of the large authors they follow or befriended.
    pub async fn page(
        &self,
        reader: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<agora_db::posts::Post>, agora_db::DbError> {
        let policy = ReadPolicy::ForUser(reader);
        let entries = self
            .db
            .feed_entries_page(reader, before, limit, policy)
            .await?;
        let merged = self.db.merged_authors(reader, policy).await?;
        let mut any: Vec<Uuid> = vec![reader];
        let mut public: Vec<Uuid> = Vec::new();
        for author in merged {
            if author.friend {
                any.push(author.author_id);
            } else {
                public.push(author.author_id);
            }
        }
        let read_time = self
            .db
            .posts_by_authors(&any, &public, before, limit, policy)
            .await?;
        let mut seen = HashSet::new();
        let mut posts: Vec<_> = entries
            .into_iter()
            .chain(read_time)
            .filter(|p| seen.insert(p.id))
            .collect();
        posts.sort_unstable_by_key(|p| std::cmp::Reverse(p.id));
        posts.truncate(limit as usize);
        Ok(posts)
    }

    /// Records the read (at most once per `read_record_interval_secs`), rebuilding the feed of
    /// a reader who was inactive (fan-out skipped them) or never read it.
    async fn note_read(&self, reader: Uuid) -> Result<(), ServiceError> {
        let key = CacheKey::new("feed_read_noted", reader.to_string());
        if let Lookup::Hit(_) = self.noted.get(&key).await {
            return Ok(());
        }
        self.record_read(reader).await?;
        let interval = Duration::from_secs(self.config.read_record_interval_secs);
        self.noted.set(&key, bytes::Bytes::new(), interval).await;
        Ok(())
    }

    async fn record_read(&self, reader: Uuid) -> Result<(), ServiceError> {
        let now = chrono::Utc::now();
        let last = self.db.feed_last_read(reader).await.map_err(db)?;
        let inactive_since =
            now - chrono::Duration::days(i64::from(self.config.inactive_after_days));
        let record_after = now
            - chrono::Duration::seconds(
                i64::try_from(self.config.read_record_interval_secs).unwrap_or(i64::MAX),
            );
        match last {
            Some(at) if at >= record_after => return Ok(()),
            Some(at) if at >= inactive_since => {}
            _ => self.rebuild(reader).await.map_err(db)?,
        }
        // Recorded after the rebuild: a fan-out that sees the reader active from here on adds
        // what the rebuild could not have seen.
        self.db.touch_feed_reader(reader).await.map_err(db)
    }

    async fn rebuild(&self, reader: Uuid) -> Result<(), agora_db::DbError> {
        let started = std::time::Instant::now();
        let friends = self.db.friend_ids(reader, ReadPolicy::Primary).await?;
        let friend_set: HashSet<Uuid> = friends.iter().copied().collect();
        let followed: Vec<Uuid> = self
            .db
            .following_ids(reader, ReadPolicy::Primary)
            .await?
            .into_iter()
            .filter(|u| !friend_set.contains(u))
            .collect();
        let posts = self
            .db
            .posts_by_authors(
                &friends,
                &followed,
                None,
                self.config.rebuild_posts,
                ReadPolicy::Primary,
            )
            .await?;
        jobs::insert_entries(&self.db, &self.pages, reader, &posts).await?;
        metrics::counter!("feed_rebuilds_total").increment(1);
        metrics::histogram!("feed_rebuild_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }
}

fn db(e: agora_db::DbError) -> ServiceError {
    service_error(e, ResourceKind::Post)
}
