//! The home feed repository: fanned-out entries (`feed_entries`, the truth), who reads
//! (`feed_readers`), and the authors merged in at read time (`large_authors`).
//!
//! Every read checks privacy against the ties as they are now, so an entry that fan-out wrote
//! under an old relationship (a friendship since ended, a follow since dropped, a post since
//! deleted) is never shown; the pruning jobs only keep the table small.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::pool::{Db, Target};
use crate::posts::{Post, PostRow, Visibility};
use crate::schema::{feed_entries, feed_readers, follows, friendships, large_authors, posts};
use crate::sql_types::{DbTime, DbUuid};
use crate::{Conn, DbError, ReadPolicy, dispatch};

/// How many entries one insert statement writes during fan-out.
const FANOUT_CHUNK: usize = 500;

/// A feed entry to insert.
#[derive(Insertable)]
#[diesel(table_name = feed_entries)]
struct Entry {
    user_id: DbUuid,
    post_id: DbUuid,
    author_id: DbUuid,
}

/// Who a post reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    /// Friends, plus followers for a public post (each once), active or not.
    pub total: usize,
    /// Those of them who read their feed since the cut-off.
    pub active: Vec<Uuid>,
}

/// An author whose posts a reader's feed merges in at read time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergedAuthor {
    /// The author.
    pub author_id: Uuid,
    /// The reader is their friend (sees friends-only posts too).
    pub friend: bool,
}

/// Inserts `rows` (ignoring those present): one statement on PostgreSQL; one per row in a
/// transaction on SQLite, where diesel-async cannot batch (diesel_async#277) and a statement
/// costs no round trip.
async fn insert_entries(conn: &mut Conn, rows: &[Entry]) -> Result<usize, diesel::result::Error> {
    match conn {
        Conn::Pg(c) => {
            let c: &mut crate::conn::PgConn = c;
            diesel::insert_into(feed_entries::table)
                .values(rows)
                .on_conflict_do_nothing()
                .execute(c)
                .await
        }
        Conn::Sqlite(c) => {
            let c: &mut crate::conn::SqliteConn = c;
            c.transaction(async |c| {
                let mut n = 0;
                for row in rows {
                    n += diesel::insert_into(feed_entries::table)
                        .values(row)
                        .on_conflict_do_nothing()
                        .execute(c)
                        .await?;
                }
                Ok(n)
            })
            .await
        }
    }
}

impl Db {
    /// The audience of a post by `author` with `visibility`; `active` keeps those who read
    /// their feed at or after `active_since`.
    pub async fn feed_audience(
        &self,
        author: Uuid,
        visibility: Visibility,
        active_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Audience, DbError> {
        let since = DbTime::truncate(active_since);
        let mut conn = self.write().await?;
        let (friends, followers) = self
            .run("feed_audience", Target::Primary, async {
                dispatch!(conn, c => {
                    let friends: Vec<(DbUuid, Option<DbTime>)> = friendships::table
                        .left_join(feed_readers::table.on(feed_readers::user_id.eq(friendships::friend_id)))
                        .filter(friendships::user_id.eq(DbUuid(author)))
                        .select((friendships::friend_id, feed_readers::last_read_at.nullable()))
                        .load(c)
                        .await?;
                    let followers: Vec<(DbUuid, Option<DbTime>)> = if visibility == Visibility::Public {
                        follows::table
                            .left_join(feed_readers::table.on(feed_readers::user_id.eq(follows::follower_id)))
                            .filter(follows::followee_id.eq(DbUuid(author)))
                            .select((follows::follower_id, feed_readers::last_read_at.nullable()))
                            .load(c)
                            .await?
                    } else {
                        Vec::new()
                    };
                    Ok::<_, diesel::result::Error>((friends, followers))
                })
            })
            .await?;
        let mut seen = HashSet::new();
        let mut audience = Audience::default();
        for (user, read_at) in friends.into_iter().chain(followers) {
            if !seen.insert(user.0) {
                continue;
            }
            audience.total += 1;
            if read_at.is_some_and(|t| t >= since) {
                audience.active.push(user.0);
            }
        }
        Ok(audience)
    }

    /// Inserts post `post` by `author` into the feeds of `readers` (idempotent: a retried
    /// fan-out writes nothing twice). `NotFound`/`Conflict` when the post is gone.
    pub async fn insert_feed_entries(
        &self,
        post: Uuid,
        author: Uuid,
        readers: &[Uuid],
    ) -> Result<(), DbError> {
        let rows: Vec<Entry> = readers
            .iter()
            .map(|reader| Entry {
                user_id: DbUuid(*reader),
                post_id: DbUuid(post),
                author_id: DbUuid(author),
            })
            .collect();
        self.write_entries("insert_feed_entries", &rows).await
    }

    /// Inserts `entries` (post, author) into `reader`'s feed (idempotent). `Conflict` when one
    /// of the posts is gone.
    pub async fn add_to_feed(&self, reader: Uuid, entries: &[(Uuid, Uuid)]) -> Result<(), DbError> {
        let rows: Vec<Entry> = entries
            .iter()
            .map(|(post, author)| Entry {
                user_id: DbUuid(reader),
                post_id: DbUuid(*post),
                author_id: DbUuid(*author),
            })
            .collect();
        self.write_entries("add_to_feed", &rows).await
    }

    /// Writes `rows` in statements of [`FANOUT_CHUNK`].
    async fn write_entries(&self, operation: &'static str, rows: &[Entry]) -> Result<(), DbError> {
        for chunk in rows.chunks(FANOUT_CHUNK) {
            let mut conn = self.write().await?;
            self.run(operation, Target::Primary, insert_entries(&mut conn, chunk))
                .await?;
        }
        Ok(())
    }

    /// Records that `author`'s audience is too large to fan out to: readers merge their posts
    /// in at read time from now on.
    pub async fn mark_large_author(&self, author: Uuid, audience: usize) -> Result<(), DbError> {
        let now = DbTime::now();
        let audience = i64::try_from(audience).unwrap_or(i64::MAX);
        let mut conn = self.write().await?;
        self.run("mark_large_author", Target::Primary, async {
            dispatch!(conn, c => diesel::insert_into(large_authors::table)
                .values((
                    large_authors::user_id.eq(DbUuid(author)),
                    large_authors::audience.eq(audience),
                    large_authors::since.eq(now),
                ))
                .on_conflict(large_authors::user_id)
                .do_update()
                .set(large_authors::audience.eq(audience))
                .execute(c)
                .await)
        })
        .await?;
        Ok(())
    }

    /// The large authors `reader` is a friend or follower of.
    pub async fn merged_authors(
        &self,
        reader: Uuid,
        policy: ReadPolicy,
    ) -> Result<Vec<MergedAuthor>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let (friends, followed) = self
            .run("merged_authors", target, async {
                dispatch!(conn, c => {
                    let friends: Vec<DbUuid> = large_authors::table
                        .inner_join(friendships::table.on(friendships::friend_id.eq(large_authors::user_id)))
                        .filter(friendships::user_id.eq(DbUuid(reader)))
                        .select(large_authors::user_id)
                        .load(c)
                        .await?;
                    let followed: Vec<DbUuid> = large_authors::table
                        .inner_join(follows::table.on(follows::followee_id.eq(large_authors::user_id)))
                        .filter(follows::follower_id.eq(DbUuid(reader)))
                        .select(large_authors::user_id)
                        .load(c)
                        .await?;
                    Ok::<_, diesel::result::Error>((friends, followed))
                })
            })
            .await?;
        let friend_set: HashSet<Uuid> = friends.iter().map(|f| f.0).collect();
        let mut out: Vec<MergedAuthor> = friends
            .into_iter()
            .map(|f| MergedAuthor {
                author_id: f.0,
                friend: true,
            })
            .collect();
        out.extend(
            followed
                .into_iter()
                .filter(|f| !friend_set.contains(&f.0))
                .map(|f| MergedAuthor {
                    author_id: f.0,
                    friend: false,
                }),
        );
        Ok(out)
    }

    /// Up to `limit` fanned-out posts of `reader`'s feed before the post `before`, newest
    /// first, that `reader` may see now: not deleted, by a current friend, or public and by
    /// someone `reader` follows.
    pub async fn feed_entries_page(
        &self,
        reader: Uuid,
        before: Option<Uuid>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<Post>, DbError> {
        let limit = i64::from(limit);
        let me = DbUuid(reader);
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<PostRow> = self
            .run("feed_entries_page", target, async {
                dispatch!(conn, c => {
                    let friend = diesel::dsl::exists(
                        friendships::table
                            .filter(friendships::user_id.eq(me))
                            .filter(friendships::friend_id.eq(posts::author_id)),
                    );
                    let followed = diesel::dsl::exists(
                        follows::table
                            .filter(follows::follower_id.eq(me))
                            .filter(follows::followee_id.eq(posts::author_id)),
                    );
                    let mut query = feed_entries::table
                        .inner_join(posts::table)
                        .filter(feed_entries::user_id.eq(me))
                        .filter(posts::deleted_at.is_null())
                        .filter(friend.or(posts::visibility.eq(Visibility::Public.as_str()).and(followed)))
                        .order(feed_entries::post_id.desc())
                        .limit(limit)
                        .select(PostRow::as_select())
                        .into_boxed();
                    if let Some(before) = before {
                        query = query.filter(feed_entries::post_id.lt(DbUuid(before)));
                    }
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(Post::from).collect())
    }

    /// Up to `limit` posts before `before`, newest first, by `any_of` (every visibility) or by
    /// `public_of` (public ones): the read-time part of a feed (the reader's own posts, large
    /// authors) and the source of a rebuild.
    pub async fn posts_by_authors(
        &self,
        any_of: &[Uuid],
        public_of: &[Uuid],
        before: Option<Uuid>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<Post>, DbError> {
        if any_of.is_empty() && public_of.is_empty() {
            return Ok(Vec::new());
        }
        let limit = i64::from(limit);
        let any: Vec<DbUuid> = any_of.iter().copied().map(DbUuid).collect();
        let public: Vec<DbUuid> = public_of.iter().copied().map(DbUuid).collect();
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<PostRow> = self
            .run("posts_by_authors", target, async {
                dispatch!(conn, c => {
                    let mut query = posts::table
                        .filter(posts::deleted_at.is_null())
                        .filter(posts::author_id.eq_any(&any).or(posts::author_id
                            .eq_any(&public)
                            .and(posts::visibility.eq(Visibility::Public.as_str()))))
                        .order(posts::id.desc())
                        .limit(limit)
                        .select(PostRow::as_select())
                        .into_boxed();
                    if let Some(before) = before {
                        query = query.filter(posts::id.lt(DbUuid(before)));
                    }
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(Post::from).collect())
    }

    /// Whom `reader` follows (all of them: a rebuild's sources).
    pub async fn following_ids(
        &self,
        reader: Uuid,
        policy: ReadPolicy,
    ) -> Result<Vec<Uuid>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<DbUuid> = self
            .run("following_ids", target, async {
                dispatch!(conn, c => follows::table
                    .filter(follows::follower_id.eq(DbUuid(reader)))
                    .select(follows::followee_id)
                    .load(c)
                    .await)
            })
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// When `reader` last read their feed (as recorded: at most once per refresh interval).
    pub async fn feed_last_read(
        &self,
        reader: Uuid,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, DbError> {
        let mut conn = self.write().await?;
        let at: Option<DbTime> = self
            .run("feed_last_read", Target::Primary, async {
                dispatch!(conn, c => feed_readers::table
                    .find(DbUuid(reader))
                    .select(feed_readers::last_read_at)
                    .first(c)
                    .await
                    .optional())
            })
            .await?;
        Ok(at.map(|t| t.0))
    }

    /// Records that `reader` read their feed now.
    pub async fn touch_feed_reader(&self, reader: Uuid) -> Result<(), DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        self.run("touch_feed_reader", Target::Primary, async {
            dispatch!(conn, c => diesel::insert_into(feed_readers::table)
                .values((feed_readers::user_id.eq(DbUuid(reader)), feed_readers::last_read_at.eq(now)))
                .on_conflict(feed_readers::user_id)
                .do_update()
                .set(feed_readers::last_read_at.eq(now))
                .execute(c)
                .await)
        })
        .await?;
        Ok(())
    }

    /// Removes from `reader`'s feed the entries by `author` that the ties no longer allow:
    /// all of them when `keep_public` is false, the friends-only ones otherwise.
    pub async fn prune_feed(
        &self,
        reader: Uuid,
        author: Uuid,
        keep_public: bool,
    ) -> Result<u64, DbError> {
        let mut conn = self.write().await?;
        let n = self
            .run("prune_feed", Target::Primary, async {
                dispatch!(conn, c => {
                    let entries = feed_entries::table
                        .filter(feed_entries::user_id.eq(DbUuid(reader)))
                        .filter(feed_entries::author_id.eq(DbUuid(author)));
                    if keep_public {
                        let friends_only = posts::table
                            .filter(posts::author_id.eq(DbUuid(author)))
                            .filter(posts::visibility.eq(Visibility::Friends.as_str()))
                            .select(posts::id);
                        diesel::delete(entries.filter(feed_entries::post_id.eq_any(friends_only)))
                            .execute(c)
                            .await
                    } else {
                        diesel::delete(entries).execute(c).await
                    }
                })
            })
            .await?;
        Ok(n as u64)
    }
}
