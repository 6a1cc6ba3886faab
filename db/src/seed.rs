//! A generated data set of realistic shape for the query-plan tests, benchmarks and the load
//! tool (`agora seed`): users with a few hubs of up to `max_friends` friends, random follows,
//! posts skewed towards the hubs over the last 30 days (UUIDv7 ids of their creation times),
//! likes, comments, notifications, active feed readers, the fanned-out feed of recent posts, the
//! large authors, and chat: small groups (the hub in hundreds of them) and one long direct
//! conversation of the hub.
//!
//! Rows are written in bulk (1,000 per statement on PostgreSQL; on SQLite, which diesel-async
//! cannot batch, one per statement in large transactions). The generator is a fixed-seed
//! splitmix64 so a plan is reproducible; statistical quality is irrelevant here, so no RNG crate
//! is pulled in for it.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::pool::{Db, Target};
use crate::schema::{
    comments, conversation_members, conversations, feed_readers, follows, friendships,
    large_authors, messages, notifications, post_likes, posts, users,
};
use crate::sql_types::{DbTime, DbUuid};
use crate::{Conn, DbError};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// Handles are `<prefix><n>`.
    pub prefix: String,
    /// How many users.
    pub users: u32,
    /// How many posts.
    pub posts: u32,
    /// The biggest friend list (the hubs': user 0 has this many friends, users 1–4 a fifth).
    pub max_friends: u32,
    /// Random friendships per ordinary user (on average twice this many friends).
    pub friends_per_user: u32,
    /// Random follows per user.
    pub follows_per_user: u32,
    /// Posts of the last this many days are fanned out into `feed_entries`.
    pub fanout_days: u32,
    /// Authors with a larger audience become large authors (merged at read time).
    pub fanout_max_audience: u32,
    /// Group conversations of five members with ten messages each; the hub is in the first 300.
    pub conversations: u32,
    /// Messages of the hub's direct conversation with its first friend.
    pub long_conversation: u32,
    /// The argon2 hash every seeded user's password has.
    pub password_hash: String,
    /// The generator's seed.
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Users.
    pub users: u64,
    /// Friendship rows (two per friendship).
    pub friendships: u64,
    /// Follows.
    pub follows: u64,
    /// Posts.
    pub posts: u64,
    /// Likes.
    pub likes: u64,
    /// Comments.
    pub comments: u64,
    /// Notifications.
    pub notifications: u64,
    /// Feed entries.
    pub feed_entries: u64,
    /// Large authors.
    pub large_authors: u64,
    /// Conversations (the groups and the long one).
    pub conversations: u64,
    /// Chat messages.
    pub messages: u64,
    /// The hub (most friends), for tests that need its id.
    pub hub: Option<Uuid>,
    /// The hub's long direct conversation.
    pub long_conversation: Option<Uuid>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            0
        } else {
            (self.next() % u64::from(n)) as u32
        }
    }
}

/// A UUIDv7 of `at` (ids sort by creation time, as real ones do).
fn id_at(at: chrono::DateTime<chrono::Utc>, rng: &mut Rng) -> Uuid {
    let micros = at.timestamp_micros().max(0) as u64;
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        micros / 1_000_000,
        ((micros % 1_000_000) * 1_000) as u32,
    );
    let mut bytes = *Uuid::new_v7(ts).as_bytes();
    // new_v7 randomizes the tail itself; mix in the plan's generator so a plan is repeatable
    // apart from that, and ids of one millisecond never collide.
    let tail = rng.next().to_be_bytes();
    for (b, t) in bytes[8..].iter_mut().zip(tail) {
        *b ^= t & 0x3f;
    }
    Uuid::from_bytes(bytes)
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct UserRow<'a> {
    id: DbUuid,
    handle: String,
    email: String,
    display_name: String,
    password_hash: &'a str,
    role: &'static str,
    created_at: DbTime,
    updated_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = friendships)]
struct FriendRow {
    user_id: DbUuid,
    friend_id: DbUuid,
    id: DbUuid,
    created_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = follows)]
struct FollowRow {
    follower_id: DbUuid,
    followee_id: DbUuid,
    id: DbUuid,
    created_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = posts)]
struct PostRow {
    id: DbUuid,
    author_id: DbUuid,
    body: String,
    visibility: &'static str,
    like_count: i64,
    comment_count: i64,
    created_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = post_likes)]
struct LikeRow {
    post_id: DbUuid,
    user_id: DbUuid,
    id: DbUuid,
    created_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = comments)]
struct CommentRow {
    id: DbUuid,
    post_id: DbUuid,
    author_id: DbUuid,
    body: String,
    created_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = notifications)]
struct NotificationRow {
    id: DbUuid,
    user_id: DbUuid,
    kind: &'static str,
    event_id: DbUuid,
    subject_type: Option<&'static str>,
    subject_id: Option<DbUuid>,
    actor_count: i64,
    recent_actors: String,
    details: &'static str,
    in_app: bool,
    created_at: DbTime,
    activity_at: DbTime,
    read_at: Option<DbTime>,
}

#[derive(Insertable)]
#[diesel(table_name = feed_readers)]
struct ReaderRow {
    user_id: DbUuid,
    last_read_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = conversations)]
struct ConversationRow {
    id: DbUuid,
    kind: &'static str,
    title: Option<String>,
    direct_pair: Option<String>,
    created_by: DbUuid,
    last_sequence: i64,
    last_activity_at: DbTime,
    created_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = conversation_members)]
struct MemberRow {
    conversation_id: DbUuid,
    user_id: DbUuid,
    role: &'static str,
    joined_sequence: i64,
    read_sequence: i64,
    joined_at: DbTime,
}

#[derive(Insertable)]
#[diesel(table_name = messages)]
struct MessageRow {
    id: DbUuid,
    conversation_id: DbUuid,
    seq: i64,
    sender_id: DbUuid,
    body: Option<String>,
    client_message_id: String,
    created_at: DbTime,
}

/// Groups the hub is in (a user in hundreds of conversations).
const HUB_GROUPS: u32 = 300;
/// Members and messages of each seeded group.
const GROUP_SIZE: usize = 5;
const GROUP_MESSAGES: i64 = 10;

const CHUNK: usize = 1000;

/// Inserts `rows` into `$table` in chunks: one statement per chunk on PostgreSQL, one per row
/// inside a transaction per chunk on SQLite.
macro_rules! bulk_insert {
    ($db:expr, $table:ident, $rows:expr) => {{
        let mut written: u64 = 0;
        for chunk in $rows.chunks(CHUNK) {
            let mut conn = $db.write().await?;
            let n = $db
                .run("seed", Target::Primary, async {
                    match &mut conn {
                        Conn::Pg(c) => {
                            let c: &mut crate::conn::PgConn = c;
                            diesel::insert_into($table::table)
                                .values(chunk)
                                .execute(c)
                                .await
                        }
                        Conn::Sqlite(c) => {
                            let c: &mut crate::conn::SqliteConn = c;
                            c.transaction(async |c| {
                                let mut n = 0;
                                for row in chunk {
                                    n += diesel::insert_into($table::table)
                                        .values(row)
                                        .execute(c)
                                        .await?;
                                }
                                Ok(n)
                            })
                            .await
                        }
                    }
                })
                .await?;
            written += n as u64;
        }
        written
    }};
}

impl Db {
    /// Generates `plan` into this database (new users: it never touches existing rows).
    pub async fn seed(&self, plan: &SeedPlan) -> Result<SeedReport, DbError> {
        let mut rng = Rng(plan.seed);
        let now = chrono::Utc::now();
        let day = chrono::Duration::days(1);
        let n = plan.users as usize;
        let mut report = SeedReport::default();

        // Users, created over the last 90 days, in id order.
        let password_hash = plan.password_hash.as_str();
        let created: Vec<chrono::DateTime<chrono::Utc>> = (0..n)
            .map(|i| now - day * 90 + chrono::Duration::seconds(i as i64))
            .collect();
        let ids: Vec<Uuid> = created.iter().map(|at| id_at(*at, &mut rng)).collect();
        let user_rows: Vec<UserRow<'_>> = (0..n)
            .map(|i| UserRow {
                id: DbUuid(ids[i]),
                handle: format!("{}{i}", plan.prefix),
                email: format!("{}{i}@seed.invalid", plan.prefix).to_lowercase(),
                display_name: format!("Seed user {i}"),
                password_hash,
                role: "user",
                created_at: DbTime::truncate(created[i]),
                updated_at: DbTime::truncate(created[i]),
            })
            .collect();
        report.users = bulk_insert!(self, users, user_rows);
        // (Not `ids.first()`: diesel's QueryDsl::first would shadow the slice method.)
        report.hub = <[Uuid]>::first(&ids).copied();

        // Friendships: hubs, then random pairs. Both directions, one id per friendship.
        let mut pairs: HashSet<(usize, usize)> = HashSet::new();
        let users_u32 = plan.users;
        for (hub, size) in [
            (0usize, plan.max_friends),
            (1, plan.max_friends / 5),
            (2, plan.max_friends / 5),
            (3, plan.max_friends / 5),
            (4, plan.max_friends / 5),
        ] {
            if hub >= n {
                break;
            }
            for k in 0..size.min(users_u32.saturating_sub(1)) {
                let other = (hub + 1 + k as usize) % n;
                if other != hub {
                    pairs.insert((hub.min(other), hub.max(other)));
                }
            }
        }
        for i in 0..n {
            for _ in 0..plan.friends_per_user {
                let j = rng.below(users_u32) as usize;
                if j != i {
                    pairs.insert((i.min(j), i.max(j)));
                }
            }
        }
        let mut friend_rows = Vec::with_capacity(pairs.len() * 2);
        let mut friends_of: Vec<u32> = vec![0; n];
        for (a, b) in pairs {
            let at = created[a.max(b)] + chrono::Duration::hours(1);
            let id = DbUuid(id_at(at, &mut rng));
            for (x, y) in [(a, b), (b, a)] {
                friends_of[x] += 1;
                friend_rows.push(FriendRow {
                    user_id: DbUuid(ids[x]),
                    friend_id: DbUuid(ids[y]),
                    id,
                    created_at: DbTime::truncate(at),
                });
            }
        }
        report.friendships = bulk_insert!(self, friendships, friend_rows);

        // Follows: random, skewed towards the first 1% (the well-known accounts).
        let famous = (users_u32 / 100).max(1);
        let mut follow_pairs: HashSet<(usize, usize)> = HashSet::new();
        for i in 0..n {
            for k in 0..plan.follows_per_user {
                let j = if k % 2 == 0 {
                    rng.below(famous)
                } else {
                    rng.below(users_u32)
                } as usize;
                if j != i {
                    follow_pairs.insert((i, j));
                }
            }
        }
        let mut followers_of: Vec<u32> = vec![0; n];
        let follow_rows: Vec<FollowRow> = follow_pairs
            .into_iter()
            .map(|(i, j)| {
                followers_of[j] += 1;
                let at = created[i.max(j)] + chrono::Duration::hours(2);
                FollowRow {
                    follower_id: DbUuid(ids[i]),
                    followee_id: DbUuid(ids[j]),
                    id: DbUuid(id_at(at, &mut rng)),
                    created_at: DbTime::truncate(at),
                }
            })
            .collect();
        report.follows = bulk_insert!(self, follows, follow_rows);

        // Posts over the last 30 days, a fifth by the famous accounts; likes and comments.
        let window_secs = 30 * 86_400u32;
        let mut times: Vec<u32> = (0..plan.posts).map(|_| rng.below(window_secs)).collect();
        times.sort_unstable();
        let mut post_rows = Vec::with_capacity(plan.posts as usize);
        let mut like_rows = Vec::new();
        let mut comment_rows = Vec::new();
        let mut liked: HashSet<(usize, usize)> = HashSet::new();
        for (p, offset) in times.into_iter().enumerate() {
            let at = now - day * 30 + chrono::Duration::seconds(i64::from(offset));
            let author = if rng.below(5) == 0 {
                rng.below(famous)
            } else {
                rng.below(users_u32)
            } as usize;
            let id = id_at(at, &mut rng);
            let likes = rng.below(3) as usize;
            let mut like_count = 0;
            for _ in 0..likes {
                let liker = rng.below(users_u32) as usize;
                if liked.insert((p, liker)) {
                    like_count += 1;
                    let like_at = at + chrono::Duration::minutes(5);
                    like_rows.push(LikeRow {
                        post_id: DbUuid(id),
                        user_id: DbUuid(ids[liker]),
                        id: DbUuid(id_at(like_at, &mut rng)),
                        created_at: DbTime::truncate(like_at),
                    });
                }
            }
            let comment_count = i64::from(rng.below(2));
            for _ in 0..comment_count {
                let comment_at = at + chrono::Duration::minutes(10);
                comment_rows.push(CommentRow {
                    id: DbUuid(id_at(comment_at, &mut rng)),
                    post_id: DbUuid(id),
                    author_id: DbUuid(ids[rng.below(users_u32) as usize]),
                    body: format!("comment on post {p}"),
                    created_at: DbTime::truncate(comment_at),
                });
            }
            post_rows.push(PostRow {
                id: DbUuid(id),
                author_id: DbUuid(ids[author]),
                body: format!("Seeded post {p}: lorem ipsum dolor sit amet."),
                visibility: if rng.below(10) < 7 {
                    "public"
                } else {
                    "friends"
                },
                like_count,
                comment_count,
                created_at: DbTime::truncate(at),
            });
        }
        report.posts = bulk_insert!(self, posts, post_rows);
        report.likes = bulk_insert!(self, post_likes, like_rows);
        report.comments = bulk_insert!(self, comments, comment_rows);

        // Ten notifications per user, half read.
        let mut notification_rows = Vec::with_capacity(n * 10);
        for (i, user) in ids.iter().enumerate() {
            for k in 0..10u32 {
                let at = now - chrono::Duration::hours(i64::from(k) * 7 + (i % 5) as i64);
                let actor = ids[rng.below(users_u32) as usize];
                notification_rows.push(NotificationRow {
                    id: DbUuid(id_at(at, &mut rng)),
                    user_id: DbUuid(*user),
                    kind: "post_liked",
                    event_id: DbUuid(Uuid::now_v7()),
                    subject_type: Some("user"),
                    subject_id: Some(DbUuid(actor)),
                    actor_count: 1,
                    recent_actors: format!("[\"{actor}\"]"),
                    details: "{}",
                    in_app: true,
                    created_at: DbTime::truncate(at),
                    activity_at: DbTime::truncate(at),
                    read_at: (k >= 5).then(|| DbTime::truncate(at)),
                });
            }
        }
        report.notifications = bulk_insert!(self, notifications, notification_rows);

        // Every user read their feed today.
        let reader_rows: Vec<ReaderRow> = ids
            .iter()
            .map(|id| ReaderRow {
                user_id: DbUuid(*id),
                last_read_at: DbTime::truncate(now),
            })
            .collect();
        bulk_insert!(self, feed_readers, reader_rows);

        // Large authors, then the fan-out of recent posts to everyone else's audience.
        let large: Vec<(DbUuid, i64)> = (0..n)
            .filter(|i| friends_of[*i] + followers_of[*i] > plan.fanout_max_audience)
            .map(|i| (DbUuid(ids[i]), i64::from(friends_of[i] + followers_of[i])))
            .collect();
        let large_rows: Vec<_> = large
            .iter()
            .map(|(id, audience)| {
                (
                    large_authors::user_id.eq(*id),
                    large_authors::audience.eq(*audience),
                    large_authors::since.eq(DbTime::truncate(now)),
                )
            })
            .collect();
        let mut conn = self.write().await?;
        report.large_authors = self
            .run("seed", Target::Primary, async {
                let mut n = 0;
                for row in &large_rows {
                    n += crate::dispatch!(conn, c => diesel::insert_into(large_authors::table)
                        .values(*row)
                        .execute(c)
                        .await)?;
                }
                Ok::<_, diesel::result::Error>(n as u64)
            })
            .await?;
        let since = DbTime::truncate(now - chrono::Duration::days(i64::from(plan.fanout_days)));
        // Server-side, in one statement: the same audience rule as `fanout_post`.
        let fanout = diesel::sql_query(
            "INSERT INTO feed_entries (user_id, post_id, author_id) \
             SELECT f.friend_id, p.id, p.author_id FROM posts p \
               JOIN friendships f ON f.user_id = p.author_id \
              WHERE p.created_at >= $1 AND p.deleted_at IS NULL \
                AND p.author_id NOT IN (SELECT user_id FROM large_authors) \
             UNION \
             SELECT fo.follower_id, p.id, p.author_id FROM posts p \
               JOIN follows fo ON fo.followee_id = p.author_id \
              WHERE p.created_at >= $1 AND p.deleted_at IS NULL AND p.visibility = 'public' \
                AND p.author_id NOT IN (SELECT user_id FROM large_authors)",
        )
        .bind::<crate::sql_types::UtcTime, _>(since);
        let written = self
            .run("seed", Target::Primary, async {
                crate::dispatch!(conn, c => fanout.clone().execute(c).await)
            })
            .await?;
        report.feed_entries = written as u64;
        drop(conn);
        self.seed_chat(plan, &ids, &mut rng, &mut report).await?;
        self.analyze().await?;
        Ok(report)
    }

    /// The chat part of [`Db::seed`].
    async fn seed_chat(
        &self,
        plan: &SeedPlan,
        ids: &[Uuid],
        rng: &mut Rng,
        report: &mut SeedReport,
    ) -> Result<(), DbError> {
        let n = ids.len();
        if n < GROUP_SIZE {
            return Ok(());
        }
        let now = chrono::Utc::now();
        let users_u32 = n as u32;
        let mut conversation_rows = Vec::new();
        let mut member_rows = Vec::new();
        let mut message_rows = Vec::new();
        let add_messages = |rows: &mut Vec<MessageRow>,
                            conversation: Uuid,
                            members: &[Uuid],
                            count: i64,
                            rng: &mut Rng| {
            for seq in 1..=count {
                let at = now - chrono::Duration::seconds(count - seq + 1);
                rows.push(MessageRow {
                    id: DbUuid(id_at(at, rng)),
                    conversation_id: DbUuid(conversation),
                    seq,
                    sender_id: DbUuid(members[(seq as usize) % members.len()]),
                    body: Some(format!("message {seq}")),
                    client_message_id: format!("seed-{seq}"),
                    created_at: DbTime::truncate(at),
                });
            }
        };
        let member = |conversation: Uuid, user: Uuid, role: &'static str, at| MemberRow {
            conversation_id: DbUuid(conversation),
            user_id: DbUuid(user),
            role,
            joined_sequence: 0,
            read_sequence: 0,
            joined_at: DbTime::truncate(at),
        };
        for g in 0..plan.conversations {
            let at = now - chrono::Duration::minutes(i64::from(g));
            let id = id_at(at, rng);
            let mut members: Vec<Uuid> = Vec::with_capacity(GROUP_SIZE);
            if g < HUB_GROUPS {
                members.push(ids[0]);
            }
            while members.len() < GROUP_SIZE {
                let user = ids[rng.below(users_u32) as usize];
                if !members.contains(&user) {
                    members.push(user);
                }
            }
            conversation_rows.push(ConversationRow {
                id: DbUuid(id),
                kind: "group",
                title: Some(format!("Group {g}")),
                direct_pair: None,
                created_by: DbUuid(members[0]),
                last_sequence: GROUP_MESSAGES,
                last_activity_at: DbTime::truncate(at),
                created_at: DbTime::truncate(at),
            });
            for (k, user) in members.iter().enumerate() {
                member_rows.push(member(
                    id,
                    *user,
                    if k == 0 { "admin" } else { "member" },
                    at,
                ));
            }
            add_messages(&mut message_rows, id, &members, GROUP_MESSAGES, rng);
        }
        if plan.long_conversation > 0 {
            // User 1 is the hub's first friend (see the friendships above).
            let (hub, friend) = (ids[0], ids[1]);
            let id = id_at(now, rng);
            let (low, high) = if hub < friend {
                (hub, friend)
            } else {
                (friend, hub)
            };
            let count = i64::from(plan.long_conversation);
            conversation_rows.push(ConversationRow {
                id: DbUuid(id),
                kind: "direct",
                title: None,
                direct_pair: Some(format!("{low}:{high}")),
                created_by: DbUuid(hub),
                last_sequence: count,
                last_activity_at: DbTime::truncate(now),
                created_at: DbTime::truncate(now - chrono::Duration::days(30)),
            });
            member_rows.push(member(id, hub, "member", now));
            member_rows.push(member(id, friend, "member", now));
            add_messages(&mut message_rows, id, &[hub, friend], count, rng);
            report.long_conversation = Some(id);
        }
        report.conversations = bulk_insert!(self, conversations, conversation_rows);
        bulk_insert!(self, conversation_members, member_rows);
        report.messages = bulk_insert!(self, messages, message_rows);
        Ok(())
    }

    /// Refreshes the planner's statistics (PostgreSQL `ANALYZE`, SQLite `ANALYZE`).
    pub async fn analyze(&self) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        self.run("analyze", Target::Primary, async {
            crate::dispatch!(conn, c => diesel_async::SimpleAsyncConnection::batch_execute(c, "ANALYZE").await)
        })
        .await
    }
}
