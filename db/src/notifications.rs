//! The notifications repository: in-app notifications, coalescing, read state and per-kind
//! channel settings.
//!
//! A row records one event for every channel (`in_app` says whether the app lists it; email and
//! push jobs refer to it by id). Events are idempotent by `event_id`, so a retried job records
//! nothing twice. Events with a group key (likes of one post) *join* the open row of that group
//! while it is unread and its latest activity is within the coalescing window: the row's actor
//! count grows by one per distinct actor (a `notification_actors` row each, so a repeated like
//! does not count again) and it moves to the top of the list. Only a *created* row enqueues its
//! follow-up jobs (email, push), in the same transaction, so fifty likes send one push.
//!
//! Concurrent first events of one group race on the unique `(user_id, open_group)` index: the
//! loser's transaction fails with a conflict and runs again at once, then joins the winner's row
//! (a burst of likes on one post is the common case, so this is not left to the job's backoff).

/// How often a record that lost the race for a group's open row runs again before it reports the
/// conflict (to its job, which retries later).
const GROUP_RACE_ATTEMPTS: usize = 3;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::conn::PgConn;
use crate::jobs::{JobWrites, NewJob};
use crate::pool::{Db, Target};
use crate::schema::{notification_actors, notification_settings, notifications};
use crate::sql_types::{DbTime, DbUuid};
use crate::text_enum::text_enum;
use crate::{Conn, DbError, ReadPolicy, dispatch};

/// How many actor ids a row remembers for display ("A, B and 48 others").
pub const RECENT_ACTORS: usize = 3;

text_enum! {
    /// What a notification is about (the contract's `NotificationKind`).
    pub enum NotificationKind {
        /// Someone asked to be friends.
        FriendRequest => "friend_request",
        /// Someone accepted the user's friend request.
        FriendAccepted => "friend_accepted",
        /// Someone liked the user's post (coalesced per post).
        PostLiked => "post_liked",
        /// Someone commented on the user's post.
        PostCommented => "post_commented",
        /// A message arrived while the user had no live connection.
        MessageReceived => "message_received",
        /// The operators said something.
        AdminNotice => "admin_notice",
        /// The account signed in from a device it had not used.
        NewLogin => "new_login",
        /// The account's password changed.
        PasswordChanged => "password_changed",
    }
}

text_enum! {
    /// The kind of thing a notification points at.
    pub enum SubjectType {
        /// A post.
        Post => "post",
        /// A comment.
        Comment => "comment",
        /// A conversation.
        Conversation => "conversation",
        /// A chat message.
        Message => "message",
        /// A sign-in session.
        Session => "session",
        /// A user.
        User => "user",
    }
}

/// An event to record for one recipient.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// The recipient.
    pub user_id: Uuid,
    /// What happened.
    pub kind: NotificationKind,
    /// The event's id: recording the same event twice records it once.
    pub event_id: Uuid,
    /// Who did it, if a person did.
    pub actor_id: Option<Uuid>,
    /// What it is about.
    pub subject: Option<(SubjectType, Uuid)>,
    /// Events with the same key join one row while it is unread and active (e.g. `post_liked:<post>`).
    pub group: Option<String>,
    /// How long after a group's latest activity another event still joins it.
    pub coalesce_window: std::time::Duration,
    /// Kind-specific facts, a JSON object of strings (the latest event's, for a group).
    pub details: String,
    /// Whether the app lists it (the user's `in_app` setting for the kind).
    pub in_app: bool,
}

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// UUIDv7.
    pub id: Uuid,
    /// The recipient.
    pub user_id: Uuid,
    /// What happened.
    pub kind: NotificationKind,
    /// The first event's id.
    pub event_id: Uuid,
    /// What it is about.
    pub subject: Option<(SubjectType, Uuid)>,
    /// Distinct actors so far.
    pub actor_count: i64,
    /// The latest actors, newest first (at most [`RECENT_ACTORS`]).
    pub recent_actors: Vec<Uuid>,
    /// Kind-specific facts (JSON object of strings).
    pub details: String,
    /// Whether the app lists it.
    pub in_app: bool,
    /// When the first event happened.
    pub created_at: DateTime<Utc>,
    /// When the latest event happened.
    pub activity_at: DateTime<Utc>,
    /// When the user read it.
    pub read_at: Option<DateTime<Utc>>,
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new row (its follow-up jobs were enqueued with it).
    Created(Notification),
    /// The event joined an open group's row.
    Joined(Notification),
    /// The event was recorded before (a retried job), or its actor is already in the group.
    Duplicate,
}

/// Which notifications [`Db::mark_notifications_read`] marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkRead {
    /// Every one.
    All,
    /// This one and every one listed after it (older activity).
    UpTo(Uuid),
    /// These (ids of other users are ignored).
    Ids(Vec<Uuid>),
}

/// Where a list page starts: after this item of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationCursor {
    /// The last item's activity time.
    pub activity_at: DateTime<Utc>,
    /// The last item's id.
    pub id: Uuid,
}

/// One kind's channel choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelChoice {
    /// The kind.
    pub kind: NotificationKind,
    /// Listed in the app.
    pub in_app: bool,
    /// Emailed.
    pub email: bool,
    /// Pushed.
    pub push: bool,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = notifications)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct Row {
    id: DbUuid,
    user_id: DbUuid,
    kind: String,
    event_id: DbUuid,
    subject_type: Option<String>,
    subject_id: Option<DbUuid>,
    actor_count: i64,
    recent_actors: String,
    details: String,
    in_app: bool,
    created_at: DbTime,
    activity_at: DbTime,
    read_at: Option<DbTime>,
}

impl From<Row> for Notification {
    fn from(r: Row) -> Self {
        let subject = match (
            r.subject_type.as_deref().and_then(SubjectType::parse),
            r.subject_id,
        ) {
            (Some(t), Some(id)) => Some((t, id.0)),
            _ => None,
        };
        Notification {
            id: r.id.0,
            user_id: r.user_id.0,
            // The CHECK constraint admits only the known kinds.
            kind: NotificationKind::parse(&r.kind).unwrap_or(NotificationKind::AdminNotice),
            event_id: r.event_id.0,
            subject,
            actor_count: r.actor_count,
            recent_actors: serde_json::from_str(&r.recent_actors).unwrap_or_default(),
            details: r.details,
            in_app: r.in_app,
            created_at: r.created_at.0,
            activity_at: r.activity_at.0,
            read_at: r.read_at.map(|t| t.0),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = notifications)]
struct Insert<'a> {
    id: DbUuid,
    user_id: DbUuid,
    kind: &'static str,
    event_id: DbUuid,
    subject_type: Option<&'static str>,
    subject_id: Option<DbUuid>,
    open_group: Option<&'a str>,
    actor_count: i64,
    recent_actors: String,
    details: &'a str,
    in_app: bool,
    created_at: DbTime,
    activity_at: DbTime,
}

fn actors_json(actors: &[Uuid]) -> String {
    serde_json::to_string(actors).unwrap_or_else(|_| "[]".to_owned())
}

/// `actor` first, then the previous ones without it, at most [`RECENT_ACTORS`].
fn with_recent(previous: &str, actor: Uuid) -> String {
    let previous: Vec<Uuid> = serde_json::from_str(previous).unwrap_or_default();
    let mut actors = vec![actor];
    actors.extend(previous.into_iter().filter(|a| *a != actor));
    actors.truncate(RECENT_ACTORS);
    actors_json(&actors)
}

/// The open row of a group, locked on PostgreSQL so concurrent joins serialize (SQLite has one
/// writer at a time already).
macro_rules! open_group_query {
    ($new:expr, $group:expr) => {
        notifications::table
            .filter(notifications::user_id.eq(DbUuid($new.user_id)))
            .filter(notifications::open_group.eq($group))
            .select((
                notifications::id,
                notifications::activity_at,
                notifications::recent_actors,
            ))
    };
}

/// The body of the recording transaction, for either backend; `$open` is the (maybe locking)
/// query for the group's open row.
macro_rules! record_in_txn {
    ($c:expr, $new:expr, $id:expr, $now:expr, $window_start:expr, $jobs:expr, $open:expr) => {{
        let new: &NewNotification = $new;
        let seen: i64 = notifications::table
            .filter(notifications::user_id.eq(DbUuid(new.user_id)))
            .filter(notifications::event_id.eq(DbUuid(new.event_id)))
            .count()
            .get_result($c)
            .await?;
        if seen > 0 {
            return Ok(Recorded::Duplicate);
        }
        if let Some(group) = new.group.as_deref() {
            let open: Option<(DbUuid, DbTime, String)> = $open(group).first($c).await.optional()?;
            if let Some((open_id, activity_at, recent)) = open {
                if activity_at >= $window_start {
                    let (joined, recent) = match new.actor_id {
                        Some(actor) => {
                            let n = diesel::insert_into(notification_actors::table)
                                .values((
                                    notification_actors::notification_id.eq(open_id),
                                    notification_actors::actor_user_id.eq(DbUuid(actor)),
                                    notification_actors::at.eq($now),
                                ))
                                .on_conflict_do_nothing()
                                .execute($c)
                                .await?;
                            (n as i64, with_recent(&recent, actor))
                        }
                        None => (0, recent),
                    };
                    if new.actor_id.is_some() && joined == 0 {
                        return Ok(Recorded::Duplicate);
                    }
                    let row: Row = diesel::update(notifications::table.find(open_id))
                        .set((
                            notifications::actor_count.eq(notifications::actor_count + joined),
                            notifications::recent_actors.eq(recent),
                            notifications::details.eq(&new.details),
                            notifications::activity_at.eq($now),
                        ))
                        .returning(Row::as_returning())
                        .get_result($c)
                        .await?;
                    return Ok(Recorded::Joined(row.into()));
                }
                // The window closed: the group's next event starts a new row.
                diesel::update(notifications::table.find(open_id))
                    .set(notifications::open_group.eq(None::<String>))
                    .execute($c)
                    .await?;
            }
        }
        let actors: Vec<Uuid> = new.actor_id.into_iter().collect();
        let insert = Insert {
            id: DbUuid($id),
            user_id: DbUuid(new.user_id),
            kind: new.kind.as_str(),
            event_id: DbUuid(new.event_id),
            subject_type: new.subject.map(|(t, _)| t.as_str()),
            subject_id: new.subject.map(|(_, id)| DbUuid(id)),
            open_group: new.group.as_deref(),
            actor_count: actors.len() as i64,
            recent_actors: actors_json(&actors),
            details: &new.details,
            in_app: new.in_app,
            created_at: $now,
            activity_at: $now,
        };
        let row: Row = diesel::insert_into(notifications::table)
            .values(&insert)
            .returning(Row::as_returning())
            .get_result($c)
            .await?;
        if let Some(actor) = new.actor_id {
            diesel::insert_into(notification_actors::table)
                .values((
                    notification_actors::notification_id.eq(DbUuid($id)),
                    notification_actors::actor_user_id.eq(DbUuid(actor)),
                    notification_actors::at.eq($now),
                ))
                .execute($c)
                .await?;
        }
        $c.enqueue_in_txn($jobs).await?;
        Ok(Recorded::Created(row.into()))
    }};
}

#[derive(Queryable)]
struct SettingRow {
    kind: String,
    in_app: bool,
    email: bool,
    push: bool,
}

impl Db {
    /// Records `new` for its recipient: creates a row (and enqueues `follow_ups(id)` with it),
    /// joins the group's open row, or does nothing for an event already recorded. A concurrent
    /// first event of the same group is retried here a few times; if it still conflicts this
    /// answers `DbError::Conflict`: retry it later.
    pub async fn record_notification(
        &self,
        new: &NewNotification,
        follow_ups: impl FnOnce(Uuid) -> Vec<NewJob>,
    ) -> Result<Recorded, DbError> {
        let id = Uuid::now_v7();
        let jobs = follow_ups(id);
        let mut attempt = 1;
        loop {
            match self.record_notification_once(new, id, &jobs).await {
                Err(DbError::Conflict { constraint })
                    if constraint.contains("open_group") && attempt < GROUP_RACE_ATTEMPTS =>
                {
                    attempt += 1;
                    metrics::counter!("notifications_group_races_total").increment(1);
                }
                other => return other,
            }
        }
    }

    async fn record_notification_once(
        &self,
        new: &NewNotification,
        id: Uuid,
        jobs: &[NewJob],
    ) -> Result<Recorded, DbError> {
        let now = DbTime::now();
        let window = chrono::Duration::from_std(new.coalesce_window).unwrap_or_default();
        let window_start = DbTime::truncate(now.0 - window);
        let mut conn = self.write().await?;
        let recorded = self
            .run("record_notification", Target::Primary, async {
                match &mut conn {
                    Conn::Pg(c) => {
                        let c: &mut PgConn = c;
                        c.transaction(async |c| {
                            record_in_txn!(c, new, id, now, window_start, jobs, |group| {
                                open_group_query!(new, group).for_update()
                            })
                        })
                        .await
                    }
                    Conn::Sqlite(c) => {
                        let c: &mut crate::conn::SqliteConn = c;
                        c.transaction(async |c| {
                            record_in_txn!(c, new, id, now, window_start, jobs, |group| {
                                open_group_query!(new, group)
                            })
                        })
                        .await
                    }
                }
            })
            .await?;
        if matches!(recorded, Recorded::Created(_)) {
            self.jobs_committed(jobs);
        }
        if !matches!(recorded, Recorded::Duplicate) {
            self.wrote(new.user_id).await;
        }
        Ok(recorded)
    }

    /// A notification of `user_id` by id (`NotFound` for another user's).
    pub async fn get_notification(
        &self,
        user_id: Uuid,
        id: Uuid,
        policy: ReadPolicy,
    ) -> Result<Notification, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let row: Row = self
            .run("get_notification", target, async {
                dispatch!(conn, c => notifications::table
                    .filter(notifications::id.eq(DbUuid(id)))
                    .filter(notifications::user_id.eq(DbUuid(user_id)))
                    .select(Row::as_select())
                    .first(c)
                    .await)
            })
            .await?;
        Ok(row.into())
    }

    /// The in-app notifications of `user_id`, latest activity first, after `after`, at most
    /// `limit`; only unread ones with `unread_only`.
    pub async fn list_notifications(
        &self,
        user_id: Uuid,
        unread_only: bool,
        after: Option<NotificationCursor>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<Notification>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let limit = i64::from(limit);
        let rows: Vec<Row> = self
            .run("list_notifications", target, async {
                dispatch!(conn, c => {
                    let mut query = notifications::table
                        .filter(notifications::user_id.eq(DbUuid(user_id)))
                        .filter(notifications::in_app.eq(true))
                        .order((notifications::activity_at.desc(), notifications::id.desc()))
                        .limit(limit)
                        .select(Row::as_select())
                        .into_boxed();
                    if unread_only {
                        query = query.filter(notifications::read_at.is_null());
                    }
                    if let Some(cursor) = after {
                        let at = DbTime::truncate(cursor.activity_at);
                        query = query.filter(
                            notifications::activity_at.lt(at).or(notifications::activity_at
                                .eq(at)
                                .and(notifications::id.lt(DbUuid(cursor.id)))),
                        );
                    }
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(Notification::from).collect())
    }

    /// How many in-app notifications of `user_id` are unread.
    pub async fn count_unread_notifications(
        &self,
        user_id: Uuid,
        policy: ReadPolicy,
    ) -> Result<i64, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        self.run("count_unread_notifications", target, async {
            dispatch!(conn, c => notifications::table
                .filter(notifications::user_id.eq(DbUuid(user_id)))
                .filter(notifications::in_app.eq(true))
                .filter(notifications::read_at.is_null())
                .count()
                .get_result(c)
                .await)
        })
        .await
    }

    /// Marks notifications of `user_id` read (and closes their groups, so the next event of a
    /// group starts a new unread row); answers how many changed. `MarkRead::UpTo` an id that is
    /// not the user's is `NotFound`.
    pub async fn mark_notifications_read(
        &self,
        user_id: Uuid,
        which: &MarkRead,
    ) -> Result<u64, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let changed = self
            .run("mark_notifications_read", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let mut query = diesel::update(notifications::table)
                        .filter(notifications::user_id.eq(DbUuid(user_id)))
                        .filter(notifications::read_at.is_null())
                        .into_boxed();
                    match which {
                        MarkRead::All => {}
                        MarkRead::UpTo(id) => {
                            let (at, id): (DbTime, DbUuid) = notifications::table
                                .filter(notifications::id.eq(DbUuid(*id)))
                                .filter(notifications::user_id.eq(DbUuid(user_id)))
                                .select((notifications::activity_at, notifications::id))
                                .first(c)
                                .await?;
                            query = query.filter(notifications::activity_at.lt(at).or(
                                notifications::activity_at.eq(at).and(notifications::id.le(id)),
                            ));
                        }
                        MarkRead::Ids(ids) => {
                            let ids: Vec<DbUuid> = ids.iter().copied().map(DbUuid).collect();
                            query = query.filter(notifications::id.eq_any(ids));
                        }
                    }
                    let n = query
                        .set((
                            notifications::read_at.eq(Some(now)),
                            notifications::open_group.eq(None::<String>),
                        ))
                        .execute(c)
                        .await?;
                    Ok::<_, diesel::result::Error>(n as u64)
                }).await)
            })
            .await?;
        if changed > 0 {
            self.wrote(user_id).await;
        }
        Ok(changed)
    }

    /// The kinds whose channels `user_id` changed (the others have the defaults).
    pub async fn notification_settings(
        &self,
        user_id: Uuid,
        policy: ReadPolicy,
    ) -> Result<Vec<ChannelChoice>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<SettingRow> = self
            .run("notification_settings", target, async {
                dispatch!(conn, c => notification_settings::table
                    .filter(notification_settings::user_id.eq(DbUuid(user_id)))
                    .select((
                        notification_settings::kind,
                        notification_settings::in_app,
                        notification_settings::email,
                        notification_settings::push,
                    ))
                    .load(c)
                    .await)
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(ChannelChoice {
                    kind: NotificationKind::parse(&r.kind)?,
                    in_app: r.in_app,
                    email: r.email,
                    push: r.push,
                })
            })
            .collect())
    }

    /// Stores the complete choices of each given kind for `user_id` (one transaction).
    pub async fn save_notification_settings(
        &self,
        user_id: Uuid,
        choices: &[ChannelChoice],
    ) -> Result<(), DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        self.run("save_notification_settings", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                for choice in choices {
                    diesel::insert_into(notification_settings::table)
                        .values((
                            notification_settings::user_id.eq(DbUuid(user_id)),
                            notification_settings::kind.eq(choice.kind.as_str()),
                            notification_settings::in_app.eq(choice.in_app),
                            notification_settings::email.eq(choice.email),
                            notification_settings::push.eq(choice.push),
                            notification_settings::updated_at.eq(now),
                        ))
                        .on_conflict((notification_settings::user_id, notification_settings::kind))
                        .do_update()
                        .set((
                            notification_settings::in_app.eq(choice.in_app),
                            notification_settings::email.eq(choice.email),
                            notification_settings::push.eq(choice.push),
                            notification_settings::updated_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                }
                Ok::<_, diesel::result::Error>(())
            }).await)
        })
        .await?;
        self.wrote(user_id).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_actors_put_the_newest_first_once_and_keep_three() {
        let [a, b, c, d] = [1u128, 2, 3, 4].map(Uuid::from_u128);
        let one = with_recent("[]", a);
        let two = with_recent(&one, b);
        assert_eq!(two, actors_json(&[b, a]));
        assert_eq!(
            with_recent(&two, a),
            actors_json(&[a, b]),
            "a repeat moves up"
        );
        let four = with_recent(&with_recent(&two, c), d);
        assert_eq!(four, actors_json(&[d, c, b]));
        assert_eq!(with_recent("not json", a), actors_json(&[a]));
    }
}
