//! The feed's background work, all on the `fanout` queue: inserting a new post into its
//! audience's feeds (`fanout_post`), bringing an author's recent posts into a reader's feed
//! after a new friendship or follow (`backfill_feed`), removing entries a ended tie no longer
//! allows (`prune_feed`), and purging a deleted post in batches (`purge_post`).
//!
//! Each is idempotent (entries are inserted with ON CONFLICT DO NOTHING and deleted by key), so
//! a retried or duplicated job changes nothing. Reads check privacy themselves; these jobs make
//! the feed fast and small, never correct.

use std::time::Instant;

use agora_api::rt::TraceContext;
use agora_db::jobs::NewJob;
use agora_db::{Db, ReadPolicy};
use agora_jobs::{Handler, JobContext, JobError, JobKind, Queue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::FeedConfig;
use crate::jobs::traced;

/// Fan a new post out to its audience (the payload; field names are stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanoutPost {
    /// The post.
    pub post_id: Uuid,
}

impl JobKind for FanoutPost {
    const KIND: &'static str = "fanout_post";
    const QUEUE: Queue = Queue::Fanout;
    const PRIORITY: i16 = 10;

    fn idempotency_key(&self) -> Option<String> {
        Some(self.post_id.to_string())
    }
}

impl FanoutPost {
    /// The job row for `post`.
    pub fn job(post: Uuid, trace: &TraceContext) -> Vec<NewJob> {
        traced(&FanoutPost { post_id: post }, trace)
            .into_iter()
            .collect()
    }
}

/// Bring `author`'s recent posts into `reader`'s feed (after a new friendship or follow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillFeed {
    /// Whose feed.
    pub reader: Uuid,
    /// Whose posts.
    pub author: Uuid,
}

impl JobKind for BackfillFeed {
    const KIND: &'static str = "backfill_feed";
    const QUEUE: Queue = Queue::Fanout;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!("{}:{}", self.reader, self.author))
    }
}

impl BackfillFeed {
    /// Both feeds of a new friendship.
    pub fn befriended(a: Uuid, b: Uuid, trace: &TraceContext) -> Vec<NewJob> {
        [(a, b), (b, a)]
            .into_iter()
            .filter_map(|(reader, author)| traced(&BackfillFeed { reader, author }, trace))
            .collect()
    }

    /// The follower's feed after a new follow.
    pub fn followed(reader: Uuid, author: Uuid, trace: &TraceContext) -> Vec<NewJob> {
        traced(&BackfillFeed { reader, author }, trace)
            .into_iter()
            .collect()
    }
}

/// Remove from `reader`'s feed the posts of `author` that the ties no longer allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneFeed {
    /// Whose feed.
    pub reader: Uuid,
    /// Whose posts.
    pub author: Uuid,
}

impl JobKind for PruneFeed {
    const KIND: &'static str = "prune_feed";
    const QUEUE: Queue = Queue::Fanout;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!("{}:{}", self.reader, self.author))
    }
}

impl PruneFeed {
    /// Both feeds, after a tie between `a` and `b` ended.
    pub fn between(a: Uuid, b: Uuid, trace: &TraceContext) -> Vec<NewJob> {
        [(a, b), (b, a)]
            .into_iter()
            .filter_map(|(reader, author)| traced(&PruneFeed { reader, author }, trace))
            .collect()
    }

    /// `reader`'s feed, after they stopped following `author`.
    pub fn reader(reader: Uuid, author: Uuid, trace: &TraceContext) -> Vec<NewJob> {
        traced(&PruneFeed { reader, author }, trace)
            .into_iter()
            .collect()
    }
}

/// Remove a deleted post's likes, comments and feed entries, then the post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgePost {
    /// The post.
    pub post_id: Uuid,
}

impl JobKind for PurgePost {
    const KIND: &'static str = "purge_post";
    const QUEUE: Queue = Queue::Fanout;

    fn idempotency_key(&self) -> Option<String> {
        Some(self.post_id.to_string())
    }
}

impl PurgePost {
    /// The job row for `post`.
    pub fn job(post: Uuid, trace: &TraceContext) -> Vec<NewJob> {
        traced(&PurgePost { post_id: post }, trace)
            .into_iter()
            .collect()
    }
}

/// Runs the feed jobs.
#[derive(Clone)]
pub struct FeedWorker {
    /// The database.
    pub db: Db,
    /// `feed.*`.
    pub config: FeedConfig,
    /// The cached pages the jobs' writes make stale.
    pub pages: super::FeedPages,
}

impl FeedWorker {
    fn active_since(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() - chrono::Duration::days(i64::from(self.config.inactive_after_days))
    }

    async fn is_active(&self, reader: Uuid) -> Result<bool, JobError> {
        let since = self.active_since();
        Ok(self
            .db
            .feed_last_read(reader)
            .await?
            .is_some_and(|at| at >= since))
    }
}

impl Handler<FanoutPost> for FeedWorker {
    async fn run(&self, job: FanoutPost, _ctx: JobContext) -> Result<(), JobError> {
        let started = Instant::now();
        let post = match self.db.get_post(job.post_id, ReadPolicy::Primary).await {
            Ok(post) => post,
            // Deleted before it was fanned out: nothing to do.
            Err(agora_db::DbError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let audience = self
            .db
            .feed_audience(post.author_id, post.visibility, self.active_since())
            .await?;
        if audience.total > self.config.fanout_max_audience {
            self.db
                .mark_large_author(post.author_id, audience.total)
                .await?;
            metrics::counter!("feed_fanout_skipped_total", "reason" => "large_author").increment(1);
            return Ok(());
        }
        match self
            .db
            .insert_feed_entries(post.id, post.author_id, &audience.active)
            .await
        {
            // Purged while fanning out (the foreign key refused the entries).
            Err(agora_db::DbError::Conflict { .. }) => return Ok(()),
            other => other?,
        }
        self.pages.changed_for(&audience.active).await;
        metrics::counter!("feed_entries_written_total").increment(audience.active.len() as u64);
        metrics::histogram!("feed_fanout_duration_seconds").record(started.elapsed().as_secs_f64());
        // Post → last entry written: what a reader waits for at most.
        let lag = (chrono::Utc::now() - post.created_at)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!("feed_fanout_lag_seconds").record(lag.as_secs_f64());
        Ok(())
    }
}

impl Handler<BackfillFeed> for FeedWorker {
    async fn run(&self, job: BackfillFeed, _ctx: JobContext) -> Result<(), JobError> {
        // An inactive reader's feed is rebuilt when they return; a large author's posts are
        // merged in at read time.
        if !self.is_active(job.reader).await? {
            return Ok(());
        }
        let ties = self
            .db
            .ties(job.reader, job.author, ReadPolicy::Primary)
            .await?;
        let (any, public) = if ties.friends {
            (vec![job.author], vec![])
        } else if ties.following {
            (vec![], vec![job.author])
        } else {
            return Ok(());
        };
        let posts = self
            .db
            .posts_by_authors(
                &any,
                &public,
                None,
                self.config.backfill_posts,
                ReadPolicy::Primary,
            )
            .await?;
        insert_entries(&self.db, &self.pages, job.reader, &posts).await?;
        metrics::counter!("feed_entries_written_total").increment(posts.len() as u64);
        Ok(())
    }
}

/// Inserts `posts` into `reader`'s feed (a post purged meanwhile is skipped), then marks the
/// reader's cached pages stale.
pub(crate) async fn insert_entries(
    db: &Db,
    pages: &super::FeedPages,
    reader: Uuid,
    posts: &[agora_db::posts::Post],
) -> Result<(), agora_db::DbError> {
    add_entries(db, reader, posts).await?;
    pages.changed_for(&[reader]).await;
    Ok(())
}

async fn add_entries(
    db: &Db,
    reader: Uuid,
    posts: &[agora_db::posts::Post],
) -> Result<(), agora_db::DbError> {
    let entries: Vec<(Uuid, Uuid)> = posts.iter().map(|p| (p.id, p.author_id)).collect();
    match db.add_to_feed(reader, &entries).await {
        // One of them was purged since it was read: insert one by one, skipping it.
        Err(agora_db::DbError::Conflict { .. }) => {
            for entry in &entries {
                match db.add_to_feed(reader, std::slice::from_ref(entry)).await {
                    Err(agora_db::DbError::Conflict { .. }) => {}
                    other => other?,
                }
            }
            Ok(())
        }
        other => other,
    }
}

impl Handler<PruneFeed> for FeedWorker {
    async fn run(&self, job: PruneFeed, _ctx: JobContext) -> Result<(), JobError> {
        let ties = self
            .db
            .ties(job.reader, job.author, ReadPolicy::Primary)
            .await?;
        if ties.friends {
            return Ok(());
        }
        let removed = self
            .db
            .prune_feed(job.reader, job.author, ties.following)
            .await?;
        self.pages.changed_for(&[job.reader]).await;
        metrics::counter!("feed_entries_pruned_total").increment(removed);
        Ok(())
    }
}

impl Handler<PurgePost> for FeedWorker {
    async fn run(&self, job: PurgePost, _ctx: JobContext) -> Result<(), JobError> {
        // Batches in their own transactions, so a post with a million likes never holds one
        // long transaction; a crash resumes where it stopped.
        while !self.db.purge_deleted_post(job.post_id).await? {}
        Ok(())
    }
}
