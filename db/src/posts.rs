//! The posts repository: posts, their likes and comments, with counters kept exact in the
//! transaction of each like, unlike, comment and deletion (a counter moves only when a row was
//! really inserted or deleted, so concurrent and repeated likes count once and never go below
//! zero). A deleted post is marked (`deleted_at`) and every read leaves it out at once; its likes,
//! comments and feed entries are removed in batches by a job, then the row itself.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::jobs::{JobWrites, NewJob};
use crate::pool::{Db, Target};
use crate::schema::{blocks, comments, feed_entries, post_likes, posts, users};
use crate::social::Connection;
use crate::sql_types::{DbTime, DbUuid};
use crate::text_enum::text_enum;
use crate::users::UserSummary;
use crate::{DbError, ReadPolicy, dispatch};

text_enum! {
    /// Who may read a post.
    pub enum Visibility {
        /// Anyone; followers get it in their feeds.
        Public => "public",
        /// The author's current friends.
        Friends => "friends",
    }
}

/// A post as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// UUIDv7 (feeds and timelines are ordered by it).
    pub id: Uuid,
    /// The author.
    pub author_id: Uuid,
    /// The text.
    pub body: String,
    /// Who may read it.
    pub visibility: Visibility,
    /// Likes.
    pub like_count: i64,
    /// Comments.
    pub comment_count: i64,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last edit.
    pub edited_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What [`Db::create_post`] needs.
#[derive(Debug, Clone)]
pub struct NewPost {
    /// The author.
    pub author_id: Uuid,
    /// The text.
    pub body: String,
    /// Who may read it.
    pub visibility: Visibility,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
}

/// What [`Db::create_post`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new post (its jobs were enqueued with it).
    New(Post),
    /// The idempotency key was used before: the first post.
    Existing(Post),
}

/// What [`Db::update_post`] changes (`None` keeps the value).
#[derive(Debug, Clone, Default)]
pub struct PostChanges {
    /// New text.
    pub body: Option<String>,
    /// New visibility.
    pub visibility: Option<Visibility>,
}

/// A comment as stored, with its author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// UUIDv7.
    pub id: Uuid,
    /// The post.
    pub post_id: Uuid,
    /// Who wrote it.
    pub author: UserSummary,
    /// The text.
    pub body: String,
    /// When.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = posts)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct PostRow {
    id: DbUuid,
    author_id: DbUuid,
    body: String,
    visibility: String,
    like_count: i64,
    comment_count: i64,
    created_at: DbTime,
    edited_at: Option<DbTime>,
}

impl From<PostRow> for Post {
    fn from(r: PostRow) -> Self {
        Post {
            id: r.id.0,
            author_id: r.author_id.0,
            body: r.body,
            // The CHECK constraint admits only the known visibilities; unknown reads as the
            // narrower one.
            visibility: Visibility::parse(&r.visibility).unwrap_or(Visibility::Friends),
            like_count: r.like_count,
            comment_count: r.comment_count,
            created_at: r.created_at.0,
            edited_at: r.edited_at.map(|t| t.0),
        }
    }
}

/// How many likes, comments or feed entries one cleanup step deletes.
pub const CLEANUP_BATCH: i64 = 1000;

type CommentRow = (
    DbUuid,
    DbUuid,
    String,
    DbTime,
    (DbUuid, String, String, Option<String>),
);

fn comment(row: CommentRow) -> Comment {
    let (id, post_id, body, at, (author_id, handle, display_name, avatar_url)) = row;
    Comment {
        id: id.0,
        post_id: post_id.0,
        author: UserSummary {
            id: author_id.0,
            handle,
            display_name,
            avatar_url,
        },
        body,
        created_at: at.0,
    }
}

impl Db {
    /// Publishes `new` with `jobs` (fan-out), or answers the post its idempotency key already
    /// made (nothing enqueued). Two concurrent creates with one key: the loser finds the
    /// winner's post.
    pub async fn create_post(
        &self,
        new: &NewPost,
        jobs: impl Fn(Uuid) -> Vec<NewJob> + Sync,
    ) -> Result<Created, DbError> {
        for _ in 0..2 {
            match self.create_post_once(new, &jobs).await {
                Err(DbError::Conflict { .. }) if new.idempotency_key.is_some() => continue,
                other => return other,
            }
        }
        self.create_post_once(new, &jobs).await
    }

    async fn create_post_once(
        &self,
        new: &NewPost,
        jobs: &(impl Fn(Uuid) -> Vec<NewJob> + Sync),
    ) -> Result<Created, DbError> {
        let now = DbTime::now();
        let id = Uuid::now_v7();
        let mut conn = self.write().await?;
        let (created, jobs) = self
            .run("create_post", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    if let Some(key) = new.idempotency_key.as_deref() {
                        let existing: Option<PostRow> = posts::table
                            .filter(posts::author_id.eq(DbUuid(new.author_id)))
                            .filter(posts::idempotency_key.eq(key))
                            .select(PostRow::as_select())
                            .first(c)
                            .await
                            .optional()?;
                        if let Some(row) = existing {
                            return Ok((Created::Existing(row.into()), Vec::new()));
                        }
                    }
                    let row: PostRow = diesel::insert_into(posts::table)
                        .values((
                            posts::id.eq(DbUuid(id)),
                            posts::author_id.eq(DbUuid(new.author_id)),
                            posts::body.eq(&new.body),
                            posts::visibility.eq(new.visibility.as_str()),
                            posts::idempotency_key.eq(new.idempotency_key.as_deref()),
                            posts::created_at.eq(now),
                        ))
                        .returning(PostRow::as_returning())
                        .get_result(c)
                        .await?;
                    let jobs = jobs(id);
                    c.enqueue_in_txn(&jobs).await?;
                    Ok::<_, diesel::result::Error>((Created::New(row.into()), jobs))
                }).await)
            })
            .await?;
        self.jobs_committed(&jobs);
        self.wrote(new.author_id).await;
        Ok(created)
    }

    /// The idempotency key a post was created with (to tell a retry from a reuse).
    pub async fn post_idempotency_key(&self, id: Uuid) -> Result<Option<String>, DbError> {
        let mut conn = self.write().await?;
        self.run("post_idempotency_key", Target::Primary, async {
            dispatch!(conn, c => posts::table
                .find(DbUuid(id))
                .select(posts::idempotency_key)
                .first(c)
                .await)
        })
        .await
    }

    /// A post that is not deleted.
    pub async fn get_post(&self, id: Uuid, policy: ReadPolicy) -> Result<Post, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let row: PostRow = self
            .run("get_post", target, async {
                dispatch!(conn, c => posts::table
                    .find(DbUuid(id))
                    .filter(posts::deleted_at.is_null())
                    .select(PostRow::as_select())
                    .first(c)
                    .await)
            })
            .await?;
        Ok(row.into())
    }

    /// Edits post `id` of `author` (sets `edited_at`). `NotFound` when `author` has no such post.
    pub async fn update_post(
        &self,
        id: Uuid,
        author: Uuid,
        changes: &PostChanges,
    ) -> Result<Post, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let row: PostRow = self
            .run("update_post", Target::Primary, async {
                dispatch!(conn, c => {
                    let target = posts::table
                        .filter(posts::id.eq(DbUuid(id)))
                        .filter(posts::author_id.eq(DbUuid(author)))
                        .filter(posts::deleted_at.is_null());
                    diesel::update(target)
                        .set((
                            changes.body.as_deref().map(|b| posts::body.eq(b)),
                            changes.visibility.map(|v| posts::visibility.eq(v.as_str())),
                            posts::edited_at.eq(Some(now)),
                        ))
                        .returning(PostRow::as_returning())
                        .get_result(c)
                        .await
                })
            })
            .await?;
        self.wrote(author).await;
        Ok(row.into())
    }

    /// Marks post `id` deleted (every read leaves it out from now) and enqueues `jobs` (its
    /// cleanup). `NotFound` when it does not exist or is deleted already.
    pub async fn delete_post(&self, id: Uuid, by: Uuid, jobs: &[NewJob]) -> Result<(), DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        self.run("delete_post", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                let n = diesel::update(
                    posts::table
                        .filter(posts::id.eq(DbUuid(id)))
                        .filter(posts::deleted_at.is_null()),
                )
                .set(posts::deleted_at.eq(Some(now)))
                .execute(c)
                .await?;
                if n == 0 {
                    return Err(diesel::result::Error::NotFound);
                }
                c.enqueue_in_txn(jobs).await?;
                Ok::<_, diesel::result::Error>(())
            }).await)
        })
        .await?;
        self.jobs_committed(jobs);
        self.wrote(by).await;
        Ok(())
    }

    /// One step of a deleted post's cleanup: deletes up to [`CLEANUP_BATCH`] feed entries,
    /// likes and comments, and the row once nothing is left. Answers whether it is all gone.
    pub async fn purge_deleted_post(&self, id: Uuid) -> Result<bool, DbError> {
        let mut conn = self.write().await?;
        self.run("purge_deleted_post", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                let post = DbUuid(id);
                let deleted: Option<Option<DbTime>> = posts::table
                    .find(post)
                    .select(posts::deleted_at)
                    .first(c)
                    .await
                    .optional()?;
                match deleted {
                    None => return Ok(true),
                    Some(None) => return Ok(true), // not deleted: nothing to purge
                    Some(Some(_)) => {}
                }
                // One batch of each dependent table, keyed by the post and one more column.
                macro_rules! purge_batch {
                    ($table:ident, $other:ident) => {{
                        let keys: Vec<DbUuid> = $table::table
                            .filter($table::post_id.eq(post))
                            .select($table::$other)
                            .limit(CLEANUP_BATCH)
                            .load(c)
                            .await?;
                        diesel::delete(
                            $table::table
                                .filter($table::post_id.eq(post))
                                .filter($table::$other.eq_any(&keys)),
                        )
                        .execute(c)
                        .await?
                    }};
                }
                let removed = purge_batch!(feed_entries, user_id)
                    + purge_batch!(post_likes, user_id)
                    + purge_batch!(comments, id);
                if removed > 0 {
                    return Ok(false);
                }
                diesel::delete(posts::table.find(post)).execute(c).await?;
                Ok::<_, diesel::result::Error>(true)
            }).await)
        })
        .await
    }

    /// A page of `author`'s posts, newest first, before the post `before`; friends-only ones
    /// only with `include_friends_only`.
    pub async fn list_user_posts(
        &self,
        author: Uuid,
        include_friends_only: bool,
        before: Option<Uuid>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<Post>, DbError> {
        let limit = i64::from(limit);
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<PostRow> = self
            .run("list_user_posts", target, async {
                dispatch!(conn, c => {
                    let mut query = posts::table
                        .filter(posts::author_id.eq(DbUuid(author)))
                        .filter(posts::deleted_at.is_null())
                        .order(posts::id.desc())
                        .limit(limit)
                        .select(PostRow::as_select())
                        .into_boxed();
                    if !include_friends_only {
                        query = query.filter(posts::visibility.eq(Visibility::Public.as_str()));
                    }
                    if let Some(before) = before {
                        query = query.filter(posts::id.lt(DbUuid(before)));
                    }
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(Post::from).collect())
    }

    /// `user` likes post `id` (idempotent): answers whether a like was added and the count.
    /// `jobs` (the author's notification) are enqueued only with a new like. `NotFound` for a
    /// deleted or missing post.
    pub async fn like_post(
        &self,
        id: Uuid,
        user: Uuid,
        jobs: &[NewJob],
    ) -> Result<(bool, i64), DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let (added, count) = self
            .run("like_post", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let target = posts::table
                        .filter(posts::id.eq(DbUuid(id)))
                        .filter(posts::deleted_at.is_null());
                    let _exists: i64 = target.select(posts::like_count).first(c).await?;
                    let n = diesel::insert_into(post_likes::table)
                        .values((
                            post_likes::post_id.eq(DbUuid(id)),
                            post_likes::user_id.eq(DbUuid(user)),
                            post_likes::id.eq(DbUuid(Uuid::now_v7())),
                            post_likes::created_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(c)
                        .await?;
                    let count: i64 = if n > 0 {
                        c.enqueue_in_txn(jobs).await?;
                        diesel::update(target)
                            .set(posts::like_count.eq(posts::like_count + 1))
                            .returning(posts::like_count)
                            .get_result(c)
                            .await?
                    } else {
                        target.select(posts::like_count).first(c).await?
                    };
                    Ok::<_, diesel::result::Error>((n > 0, count))
                }).await)
            })
            .await?;
        if added {
            self.jobs_committed(jobs);
            self.wrote(user).await;
        }
        Ok((added, count))
    }

    /// `user` takes back their like of post `id` (idempotent): answers the count.
    pub async fn unlike_post(&self, id: Uuid, user: Uuid) -> Result<i64, DbError> {
        let mut conn = self.write().await?;
        let (removed, count) = self
            .run("unlike_post", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let target = posts::table
                        .filter(posts::id.eq(DbUuid(id)))
                        .filter(posts::deleted_at.is_null());
                    let n = diesel::delete(
                        post_likes::table
                            .filter(post_likes::post_id.eq(DbUuid(id)))
                            .filter(post_likes::user_id.eq(DbUuid(user))),
                    )
                    .execute(c)
                    .await?;
                    let count: i64 = if n > 0 {
                        diesel::update(target)
                            .set(posts::like_count.eq(posts::like_count - 1))
                            .returning(posts::like_count)
                            .get_result(c)
                            .await?
                    } else {
                        target.select(posts::like_count).first(c).await?
                    };
                    Ok::<_, diesel::result::Error>((n > 0, count))
                }).await)
            })
            .await?;
        if removed {
            self.wrote(user).await;
        }
        Ok(count)
    }

    /// Which of `posts` `user` likes.
    pub async fn liked_posts(
        &self,
        user: Uuid,
        post_ids: &[Uuid],
        policy: ReadPolicy,
    ) -> Result<HashSet<Uuid>, DbError> {
        if post_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let ids: Vec<DbUuid> = post_ids.iter().copied().map(DbUuid).collect();
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<DbUuid> = self
            .run("liked_posts", target, async {
                dispatch!(conn, c => post_likes::table
                    .filter(post_likes::user_id.eq(DbUuid(user)))
                    .filter(post_likes::post_id.eq_any(&ids))
                    .select(post_likes::post_id)
                    .load(c)
                    .await)
            })
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// A page of the likes of post `id`, newest first, after the like `after`.
    pub async fn list_post_likes(
        &self,
        id: Uuid,
        after: Option<Uuid>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<Connection>, DbError> {
        let limit = i64::from(limit);
        let (mut conn, target) = self.read(policy).await?;
        let rows = self
            .run("list_post_likes", target, async {
                dispatch!(conn, c => {
                    let mut query = post_likes::table
                        .inner_join(users::table.on(users::id.eq(post_likes::user_id)))
                        .filter(post_likes::post_id.eq(DbUuid(id)))
                        .order(post_likes::id.desc())
                        .limit(limit)
                        .select((
                            post_likes::id,
                            post_likes::created_at,
                            (users::id, users::handle, users::display_name, users::avatar_url),
                        ))
                        .into_boxed();
                    if let Some(after) = after {
                        query = query.filter(post_likes::id.lt(DbUuid(after)));
                    }
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(crate::social::connection).collect())
    }

    /// Adds a comment by `author` to post `post` (and counts it) with `jobs(comment id)`.
    /// `NotFound` for a deleted or missing post.
    pub async fn create_comment(
        &self,
        post: Uuid,
        author: Uuid,
        body: &str,
        jobs: impl FnOnce(Uuid) -> Vec<NewJob>,
    ) -> Result<Comment, DbError> {
        let now = DbTime::now();
        let id = Uuid::now_v7();
        let jobs = jobs(id);
        let mut conn = self.write().await?;
        let row: CommentRow = self
            .run("create_comment", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let n = diesel::update(
                        posts::table
                            .filter(posts::id.eq(DbUuid(post)))
                            .filter(posts::deleted_at.is_null()),
                    )
                    .set(posts::comment_count.eq(posts::comment_count + 1))
                    .execute(c)
                    .await?;
                    if n == 0 {
                        return Err(diesel::result::Error::NotFound);
                    }
                    diesel::insert_into(comments::table)
                        .values((
                            comments::id.eq(DbUuid(id)),
                            comments::post_id.eq(DbUuid(post)),
                            comments::author_id.eq(DbUuid(author)),
                            comments::body.eq(body),
                            comments::created_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                    c.enqueue_in_txn(&jobs).await?;
                    comments::table
                        .inner_join(users::table.on(users::id.eq(comments::author_id)))
                        .filter(comments::id.eq(DbUuid(id)))
                        .select((
                            comments::id,
                            comments::post_id,
                            comments::body,
                            comments::created_at,
                            (users::id, users::handle, users::display_name, users::avatar_url),
                        ))
                        .first(c)
                        .await
                }).await)
            })
            .await?;
        self.jobs_committed(&jobs);
        self.wrote(author).await;
        Ok(comment(row))
    }

    /// A comment on post `post`.
    pub async fn get_comment(
        &self,
        post: Uuid,
        id: Uuid,
        policy: ReadPolicy,
    ) -> Result<Comment, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let row: CommentRow = self
            .run("get_comment", target, async {
                dispatch!(conn, c => comments::table
                    .inner_join(users::table.on(users::id.eq(comments::author_id)))
                    .filter(comments::id.eq(DbUuid(id)))
                    .filter(comments::post_id.eq(DbUuid(post)))
                    .select((
                        comments::id,
                        comments::post_id,
                        comments::body,
                        comments::created_at,
                        (users::id, users::handle, users::display_name, users::avatar_url),
                    ))
                    .first(c)
                    .await)
            })
            .await?;
        Ok(comment(row))
    }

    /// A page of the comments of post `post`, oldest first, after the comment `after`, leaving
    /// out those of users `viewer` blocks or is blocked by.
    pub async fn list_comments(
        &self,
        post: Uuid,
        viewer: Uuid,
        after: Option<Uuid>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<Comment>, DbError> {
        let limit = i64::from(limit);
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<CommentRow> = self
            .run("list_comments", target, async {
                dispatch!(conn, c => {
                    let blocked_by_viewer = blocks::table
                        .filter(blocks::blocker_id.eq(DbUuid(viewer)))
                        .select(blocks::blocked_id);
                    let blocking_viewer = blocks::table
                        .filter(blocks::blocked_id.eq(DbUuid(viewer)))
                        .select(blocks::blocker_id);
                    let mut query = comments::table
                        .inner_join(users::table.on(users::id.eq(comments::author_id)))
                        .filter(comments::post_id.eq(DbUuid(post)))
                        .filter(comments::author_id.ne_all(blocked_by_viewer))
                        .filter(comments::author_id.ne_all(blocking_viewer))
                        .order(comments::id.asc())
                        .limit(limit)
                        .select((
                            comments::id,
                            comments::post_id,
                            comments::body,
                            comments::created_at,
                            (users::id, users::handle, users::display_name, users::avatar_url),
                        ))
                        .into_boxed();
                    if let Some(after) = after {
                        query = query.filter(comments::id.gt(DbUuid(after)));
                    }
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(comment).collect())
    }

    /// Deletes comment `id` of post `post` (and uncounts it). `NotFound` when there is none.
    pub async fn delete_comment(&self, post: Uuid, id: Uuid, by: Uuid) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        self.run("delete_comment", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                let n = diesel::delete(
                    comments::table
                        .filter(comments::id.eq(DbUuid(id)))
                        .filter(comments::post_id.eq(DbUuid(post))),
                )
                .execute(c)
                .await?;
                if n == 0 {
                    return Err(diesel::result::Error::NotFound);
                }
                diesel::update(posts::table.find(DbUuid(post)))
                    .set(posts::comment_count.eq(posts::comment_count - 1))
                    .execute(c)
                    .await?;
                Ok::<_, diesel::result::Error>(())
            }).await)
        })
        .await?;
        self.wrote(by).await;
        Ok(())
    }
}
