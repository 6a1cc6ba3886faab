//! The social graph repository: friend requests, friendships (a row per direction), follows and
//! blocks, and the ties between two users that the privacy rules read.
//!
//! Each write that changes who sees what runs in one transaction with the jobs it causes
//! (notifications, feed pruning). Writes that two users can race (asking each other at once,
//! accepting while the other blocks) collide on a unique index or a deleted row; the loser
//! either retries (`send_friend_request`) or finds nothing left to act on (`NotFound`).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::jobs::{JobWrites, NewJob};
use crate::pool::{Db, Target};
use crate::schema::{blocks, follows, friend_requests, friendships, users};
use crate::sql_types::{DbTime, DbUuid};
use crate::users::UserSummary;
use crate::{DbError, ReadPolicy, dispatch};

/// How many times a write that lost a race on a unique index is tried again.
const RACE_RETRIES: usize = 3;

/// Everything that ties the caller to another user, read in one go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ties {
    /// They are friends.
    pub friends: bool,
    /// The caller follows them.
    pub following: bool,
    /// They follow the caller.
    pub followed_by: bool,
    /// The caller blocks them.
    pub blocking: bool,
    /// They block the caller.
    pub blocked_by: bool,
    /// The caller's pending request to them.
    pub request_sent: Option<Uuid>,
    /// Their pending request to the caller.
    pub request_received: Option<Uuid>,
}

/// What [`Db::send_friend_request`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FriendRequestOutcome {
    /// A new pending request (its notification was enqueued with it).
    Sent(Uuid),
    /// The same request was pending already; nothing changed.
    AlreadyPending(Uuid),
    /// The other side had asked: that request was accepted (and its sender notified).
    Accepted(Uuid),
    /// They are friends already.
    AlreadyFriends,
    /// One of them blocks the other.
    Blocked,
}

/// One user in a list of friends, followers, followed or blocked users, or likes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The tie's UUIDv7 (the list's keyset).
    pub id: Uuid,
    /// The user.
    pub user: UserSummary,
    /// When the tie began.
    pub since: chrono::DateTime<chrono::Utc>,
}

/// A pending friend request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequest {
    /// UUIDv7.
    pub id: Uuid,
    /// Who asked.
    pub from_user_id: Uuid,
    /// Who was asked.
    pub to_user_id: Uuid,
    /// When.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Which pending requests to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestDirection {
    /// Sent to the user.
    Incoming,
    /// Sent by the user.
    Outgoing,
}

/// Which list of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionList {
    /// The user's friends.
    Friends,
    /// Who follows the user.
    Followers,
    /// Whom the user follows.
    Following,
    /// Whom the user blocks.
    Blocks,
}

type SummaryColumns = (
    users::id,
    users::handle,
    users::display_name,
    users::avatar_url,
);
const SUMMARY: SummaryColumns = (
    users::id,
    users::handle,
    users::display_name,
    users::avatar_url,
);

type ConnectionRow = (DbUuid, DbTime, (DbUuid, String, String, Option<String>));

pub(crate) fn connection(row: ConnectionRow) -> Connection {
    let (id, since, (user_id, handle, display_name, avatar_url)) = row;
    Connection {
        id: id.0,
        user: UserSummary {
            id: user_id.0,
            handle,
            display_name,
            avatar_url,
        },
        since: since.0,
    }
}

/// The connection lists, newest tie first, after the tie `$after`. `$tie` is the table,
/// `$owner` its column naming the list's owner and `$other` the column naming the listed user.
macro_rules! connection_page {
    ($c:expr, $tie:ident, $owner:ident, $other:ident, $user:expr, $after:expr, $limit:expr) => {{
        let mut query = $tie::table
            .inner_join(users::table.on(users::id.eq($tie::$other)))
            .filter($tie::$owner.eq(DbUuid($user)))
            .order($tie::id.desc())
            .limit($limit)
            .select(($tie::id, $tie::created_at, SUMMARY))
            .into_boxed();
        if let Some(after) = $after {
            query = query.filter($tie::id.lt(DbUuid(after)));
        }
        query.load::<ConnectionRow>($c).await
    }};
}

/// Reads the ties of `me` to `other` on one connection.
macro_rules! ties_on {
    ($c:expr, $me:expr, $other:expr) => {{
        let (me, other) = (DbUuid($me), DbUuid($other));
        // One statement, one round trip: every privacy check asks it.
        let (friends, following, followed_by, blocking, blocked_by, sent, received): (
            bool,
            bool,
            bool,
            bool,
            bool,
            Option<DbUuid>,
            Option<DbUuid>,
        ) = diesel::select((
            diesel::dsl::exists(
                friendships::table
                    .filter(friendships::user_id.eq(me))
                    .filter(friendships::friend_id.eq(other)),
            ),
            diesel::dsl::exists(
                follows::table
                    .filter(follows::follower_id.eq(me))
                    .filter(follows::followee_id.eq(other)),
            ),
            diesel::dsl::exists(
                follows::table
                    .filter(follows::follower_id.eq(other))
                    .filter(follows::followee_id.eq(me)),
            ),
            diesel::dsl::exists(
                blocks::table
                    .filter(blocks::blocker_id.eq(me))
                    .filter(blocks::blocked_id.eq(other)),
            ),
            diesel::dsl::exists(
                blocks::table
                    .filter(blocks::blocker_id.eq(other))
                    .filter(blocks::blocked_id.eq(me)),
            ),
            friend_requests::table
                .filter(friend_requests::from_user_id.eq(me))
                .filter(friend_requests::to_user_id.eq(other))
                .select(friend_requests::id)
                .single_value(),
            friend_requests::table
                .filter(friend_requests::from_user_id.eq(other))
                .filter(friend_requests::to_user_id.eq(me))
                .select(friend_requests::id)
                .single_value(),
        ))
        .get_result($c)
        .await?;
        Ok::<Ties, diesel::result::Error>(Ties {
            friends,
            following,
            followed_by,
            blocking,
            blocked_by,
            request_sent: sent.map(|id| id.0),
            request_received: received.map(|id| id.0),
        })
    }};
}

/// One direction of a friendship.
#[derive(Insertable)]
#[diesel(table_name = friendships)]
struct FriendshipRow {
    user_id: DbUuid,
    friend_id: DbUuid,
    id: DbUuid,
    created_at: DbTime,
}

/// Inserts both rows of a new friendship.
macro_rules! befriend_in_txn {
    ($c:expr, $a:expr, $b:expr, $now:expr) => {{
        let id = DbUuid(Uuid::now_v7());
        let row = |user, friend| FriendshipRow {
            user_id: DbUuid(user),
            friend_id: DbUuid(friend),
            id,
            created_at: $now,
        };
        // Two statements: diesel-async cannot batch inserts on SQLite (diesel_async#277).
        diesel::insert_into(friendships::table)
            .values(&row($a, $b))
            .execute($c)
            .await?;
        diesel::insert_into(friendships::table)
            .values(&row($b, $a))
            .execute($c)
            .await
    }};
}

impl Db {
    /// The ties of `me` to `other`.
    pub async fn ties(&self, me: Uuid, other: Uuid, policy: ReadPolicy) -> Result<Ties, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        self.run("ties", target, async {
            dispatch!(conn, c => ties_on!(c, me, other))
        })
        .await
    }

    /// Whether `blocker` blocks `blocked`.
    pub async fn blocks(
        &self,
        blocker: Uuid,
        blocked: Uuid,
        policy: ReadPolicy,
    ) -> Result<bool, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let n: i64 = self
            .run("blocks", target, async {
                dispatch!(conn, c => blocks::table
                    .filter(blocks::blocker_id.eq(DbUuid(blocker)))
                    .filter(blocks::blocked_id.eq(DbUuid(blocked)))
                    .count()
                    .get_result(c)
                    .await)
            })
            .await?;
        Ok(n > 0)
    }

    /// `from` asks `to` to be friends: accepts `to`'s pending request if there is one (enqueuing
    /// `on_accept(request)`), keeps a pending one of `from`, or creates one (enqueuing
    /// `on_send(request)`). Checks blocks and an existing friendship in the same transaction.
    pub async fn send_friend_request(
        &self,
        from: Uuid,
        to: Uuid,
        on_send: impl Fn(Uuid) -> Vec<NewJob> + Sync,
        on_accept: impl Fn(Uuid) -> Vec<NewJob> + Sync,
    ) -> Result<FriendRequestOutcome, DbError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .send_friend_request_once(from, to, &on_send, &on_accept)
                .await
            {
                Err(DbError::Conflict { .. }) if attempt < RACE_RETRIES => continue,
                other => return other,
            }
        }
    }

    async fn send_friend_request_once(
        &self,
        from: Uuid,
        to: Uuid,
        on_send: &(impl Fn(Uuid) -> Vec<NewJob> + Sync),
        on_accept: &(impl Fn(Uuid) -> Vec<NewJob> + Sync),
    ) -> Result<FriendRequestOutcome, DbError> {
        let now = DbTime::now();
        let new_id = Uuid::now_v7();
        let mut conn = self.write().await?;
        let (outcome, jobs) = self
            .run("send_friend_request", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let ties = ties_on!(c, from, to)?;
                    if ties.blocking || ties.blocked_by {
                        return Ok((FriendRequestOutcome::Blocked, Vec::new()));
                    }
                    if ties.friends {
                        return Ok((FriendRequestOutcome::AlreadyFriends, Vec::new()));
                    }
                    if let Some(request) = ties.request_sent {
                        return Ok((FriendRequestOutcome::AlreadyPending(request), Vec::new()));
                    }
                    if let Some(request) = ties.request_received {
                        diesel::delete(friend_requests::table.find(DbUuid(request)))
                            .execute(c)
                            .await?;
                        befriend_in_txn!(c, from, to, now)?;
                        let jobs = on_accept(request);
                        c.enqueue_in_txn(&jobs).await?;
                        return Ok((FriendRequestOutcome::Accepted(request), jobs));
                    }
                    diesel::insert_into(friend_requests::table)
                        .values((
                            friend_requests::id.eq(DbUuid(new_id)),
                            friend_requests::from_user_id.eq(DbUuid(from)),
                            friend_requests::to_user_id.eq(DbUuid(to)),
                            friend_requests::created_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                    let jobs = on_send(new_id);
                    c.enqueue_in_txn(&jobs).await?;
                    Ok::<_, diesel::result::Error>((FriendRequestOutcome::Sent(new_id), jobs))
                }).await)
            })
            .await?;
        self.jobs_committed(&jobs);
        if matches!(
            outcome,
            FriendRequestOutcome::Sent(_) | FriendRequestOutcome::Accepted(_)
        ) {
            self.wrote(from).await;
        }
        Ok(outcome)
    }

    /// `me` accepts the pending request `request` sent to them: the two become friends and
    /// `jobs(sender)` are enqueued. `NotFound` when no such request is addressed to `me`.
    pub async fn accept_friend_request(
        &self,
        me: Uuid,
        request: Uuid,
        jobs: impl FnOnce(Uuid) -> Vec<NewJob> + Send,
    ) -> Result<Uuid, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let (sender, jobs) = self
            .run("accept_friend_request", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    // Deleting first takes the row: a concurrent block, decline or cancel
                    // either went before (nothing left: NotFound) or waits for this commit.
                    let sender: DbUuid = diesel::delete(
                        friend_requests::table
                            .filter(friend_requests::id.eq(DbUuid(request)))
                            .filter(friend_requests::to_user_id.eq(DbUuid(me))),
                    )
                    .returning(friend_requests::from_user_id)
                    .get_result(c)
                    .await?;
                    befriend_in_txn!(c, me, sender.0, now)?;
                    let jobs = jobs(sender.0);
                    c.enqueue_in_txn(&jobs).await?;
                    Ok::<_, diesel::result::Error>((sender.0, jobs))
                }).await)
            })
            .await?;
        self.jobs_committed(&jobs);
        self.wrote(me).await;
        Ok(sender)
    }

    /// Deletes the pending request `request`: one sent to `me` (`incoming`, a decline) or by
    /// `me` (`outgoing`, a cancel). `NotFound` when there is none.
    pub async fn delete_friend_request(
        &self,
        me: Uuid,
        request: Uuid,
        direction: RequestDirection,
    ) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        let n = self
            .run("delete_friend_request", Target::Primary, async {
                dispatch!(conn, c => {
                    let target = friend_requests::table.filter(friend_requests::id.eq(DbUuid(request)));
                    match direction {
                        RequestDirection::Incoming => diesel::delete(
                            target.filter(friend_requests::to_user_id.eq(DbUuid(me))),
                        )
                        .execute(c)
                        .await,
                        RequestDirection::Outgoing => diesel::delete(
                            target.filter(friend_requests::from_user_id.eq(DbUuid(me))),
                        )
                        .execute(c)
                        .await,
                    }
                })
            })
            .await?;
        if n == 0 {
            return Err(DbError::NotFound);
        }
        self.wrote(me).await;
        Ok(())
    }

    /// Ends the friendship of `me` and `other` (both rows) and enqueues `jobs`. `NotFound` when
    /// they are not friends.
    pub async fn remove_friend(
        &self,
        me: Uuid,
        other: Uuid,
        jobs: &[NewJob],
    ) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        self.run("remove_friend", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                let n = diesel::delete(friendships::table.filter(
                    friendships::user_id.eq(DbUuid(me)).and(friendships::friend_id.eq(DbUuid(other)))
                        .or(friendships::user_id.eq(DbUuid(other)).and(friendships::friend_id.eq(DbUuid(me)))),
                ))
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
        self.wrote(me).await;
        Ok(())
    }

    /// `me` follows `other` (idempotent; `jobs` are enqueued only for a new follow). Answers
    /// `false` without writing when either blocks the other.
    pub async fn follow(&self, me: Uuid, other: Uuid, jobs: &[NewJob]) -> Result<bool, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let (allowed, created) = self
            .run("follow", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let blocked: i64 = blocks::table
                        .filter(
                            blocks::blocker_id.eq(DbUuid(me)).and(blocks::blocked_id.eq(DbUuid(other)))
                                .or(blocks::blocker_id.eq(DbUuid(other)).and(blocks::blocked_id.eq(DbUuid(me)))),
                        )
                        .count()
                        .get_result(c)
                        .await?;
                    if blocked > 0 {
                        return Ok((false, false));
                    }
                    let n = diesel::insert_into(follows::table)
                        .values((
                            follows::follower_id.eq(DbUuid(me)),
                            follows::followee_id.eq(DbUuid(other)),
                            follows::id.eq(DbUuid(Uuid::now_v7())),
                            follows::created_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(c)
                        .await?;
                    if n > 0 {
                        c.enqueue_in_txn(jobs).await?;
                    }
                    Ok::<_, diesel::result::Error>((true, n > 0))
                }).await)
            })
            .await?;
        if created {
            self.jobs_committed(jobs);
            self.wrote(me).await;
        }
        Ok(allowed)
    }

    /// `me` stops following `other` (idempotent; `jobs` are enqueued only when a follow ended).
    pub async fn unfollow(&self, me: Uuid, other: Uuid, jobs: &[NewJob]) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        let removed = self
            .run("unfollow", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let n = diesel::delete(
                        follows::table
                            .filter(follows::follower_id.eq(DbUuid(me)))
                            .filter(follows::followee_id.eq(DbUuid(other))),
                    )
                    .execute(c)
                    .await?;
                    if n > 0 {
                        c.enqueue_in_txn(jobs).await?;
                    }
                    Ok::<_, diesel::result::Error>(n > 0)
                }).await)
            })
            .await?;
        if removed {
            self.jobs_committed(jobs);
            self.wrote(me).await;
        }
        Ok(())
    }

    /// `me` blocks `other`: the block, and the end of every friendship, follow and pending
    /// request between them, commit together with `jobs` (idempotent).
    pub async fn block(&self, me: Uuid, other: Uuid, jobs: &[NewJob]) -> Result<(), DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        self.run("block", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                let (a, b) = (DbUuid(me), DbUuid(other));
                diesel::insert_into(blocks::table)
                    .values((
                        blocks::blocker_id.eq(a),
                        blocks::blocked_id.eq(b),
                        blocks::id.eq(DbUuid(Uuid::now_v7())),
                        blocks::created_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)
                    .await?;
                diesel::delete(friend_requests::table.filter(
                    friend_requests::from_user_id.eq(a).and(friend_requests::to_user_id.eq(b))
                        .or(friend_requests::from_user_id.eq(b).and(friend_requests::to_user_id.eq(a))),
                ))
                .execute(c)
                .await?;
                diesel::delete(friendships::table.filter(
                    friendships::user_id.eq(a).and(friendships::friend_id.eq(b))
                        .or(friendships::user_id.eq(b).and(friendships::friend_id.eq(a))),
                ))
                .execute(c)
                .await?;
                diesel::delete(follows::table.filter(
                    follows::follower_id.eq(a).and(follows::followee_id.eq(b))
                        .or(follows::follower_id.eq(b).and(follows::followee_id.eq(a))),
                ))
                .execute(c)
                .await?;
                c.enqueue_in_txn(jobs).await?;
                Ok::<_, diesel::result::Error>(())
            }).await)
        })
        .await?;
        self.jobs_committed(jobs);
        self.wrote(me).await;
        Ok(())
    }

    /// `me` unblocks `other` (idempotent).
    pub async fn unblock(&self, me: Uuid, other: Uuid) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        let n = self
            .run("unblock", Target::Primary, async {
                dispatch!(conn, c => diesel::delete(
                    blocks::table
                        .filter(blocks::blocker_id.eq(DbUuid(me)))
                        .filter(blocks::blocked_id.eq(DbUuid(other))),
                )
                .execute(c)
                .await)
            })
            .await?;
        if n > 0 {
            self.wrote(me).await;
        }
        Ok(())
    }

    /// A page of `list` of `user`, newest tie first, after the tie `after`.
    pub async fn list_connections(
        &self,
        list: ConnectionList,
        user: Uuid,
        after: Option<Uuid>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<Connection>, DbError> {
        let limit = i64::from(limit);
        let (mut conn, target) = self.read(policy).await?;
        let rows = self
            .run("list_connections", target, async {
                dispatch!(conn, c => match list {
                    ConnectionList::Friends => {
                        connection_page!(c, friendships, user_id, friend_id, user, after, limit)
                    }
                    ConnectionList::Followers => {
                        connection_page!(c, follows, followee_id, follower_id, user, after, limit)
                    }
                    ConnectionList::Following => {
                        connection_page!(c, follows, follower_id, followee_id, user, after, limit)
                    }
                    ConnectionList::Blocks => {
                        connection_page!(c, blocks, blocker_id, blocked_id, user, after, limit)
                    }
                })
            })
            .await?;
        Ok(rows.into_iter().map(connection).collect())
    }

    /// A page of the pending requests of `user` in `direction`, newest first, after `after`.
    pub async fn list_friend_requests(
        &self,
        user: Uuid,
        direction: RequestDirection,
        after: Option<Uuid>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<FriendRequest>, DbError> {
        let limit = i64::from(limit);
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<(DbUuid, DbUuid, DbUuid, DbTime)> = self
            .run("list_friend_requests", target, async {
                dispatch!(conn, c => {
                    let mut query = friend_requests::table
                        .order(friend_requests::id.desc())
                        .limit(limit)
                        .select((
                            friend_requests::id,
                            friend_requests::from_user_id,
                            friend_requests::to_user_id,
                            friend_requests::created_at,
                        ))
                        .into_boxed();
                    query = match direction {
                        RequestDirection::Incoming => {
                            query.filter(friend_requests::to_user_id.eq(DbUuid(user)))
                        }
                        RequestDirection::Outgoing => {
                            query.filter(friend_requests::from_user_id.eq(DbUuid(user)))
                        }
                    };
                    if let Some(after) = after {
                        query = query.filter(friend_requests::id.lt(DbUuid(after)));
                    }
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, from, to, at)| FriendRequest {
                id: id.0,
                from_user_id: from.0,
                to_user_id: to.0,
                created_at: at.0,
            })
            .collect())
    }

    /// The friends of `user` (all of them: the fan-out audience).
    pub async fn friend_ids(&self, user: Uuid, policy: ReadPolicy) -> Result<Vec<Uuid>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<DbUuid> = self
            .run("friend_ids", target, async {
                dispatch!(conn, c => friendships::table
                    .filter(friendships::user_id.eq(DbUuid(user)))
                    .select(friendships::friend_id)
                    .load(c)
                    .await)
            })
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
