//! The chat repository: conversations, their members and messages.
//!
//! A message's `seq` is taken by bumping its conversation's `last_sequence` in the transaction
//! that inserts it: the bump's row lock orders concurrent senders (on SQLite the single writer
//! does), so a conversation's sequences are 1, 2, 3, … with no gap and no duplicate. The same lock
//! orders membership changes, which is what keeps a group at its size limit under concurrent adds.
//! A rule that depends on the current state (admin only, group only, size) is decided inside the
//! transaction and answered as a [`Refused`], before anything is written.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::pool::{Db, Target};
use crate::schema::{chat_settings, conversation_members, conversations, messages, users};
use crate::sql_types::{DbTime, DbUuid};
use crate::text_enum::text_enum;
use crate::users::UserSummary;
use crate::{DbError, ReadPolicy, dispatch};

mod send_statement;

/// The most members a group may have.
pub const MAX_GROUP_MEMBERS: i64 = 100;

/// How many times a write that lost a race on a unique index is tried again.
const RACE_RETRIES: usize = 3;

text_enum! {
    /// Who may open a direct conversation with a user or add them to a group.
    pub enum DirectMessagesFrom {
        /// Their friends (the default).
        Friends => "friends",
        /// Anyone not separated from them by a block.
        Everyone => "everyone",
    }
}

text_enum! {
    /// What kind of conversation.
    pub enum ConversationKind {
        /// Two users; one per pair.
        Direct => "direct",
        /// Up to [`MAX_GROUP_MEMBERS`] members with a title.
        Group => "group",
    }
}

text_enum! {
    /// A member's role.
    pub enum MemberRole {
        /// Adds and removes members.
        Admin => "admin",
        /// Reads and writes.
        Member => "member",
    }
}

/// Why a chat write was not done (nothing was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The caller is not a member (or the conversation does not exist).
    NotMember,
    /// The caller is not an admin of the group.
    NotAdmin,
    /// The operation applies to groups only.
    NotAGroup,
    /// The group would exceed [`MAX_GROUP_MEMBERS`].
    Full,
    /// The user acted on is not a member.
    NoSuchMember,
    /// The message does not exist in the conversation.
    NoSuchMessage,
    /// The message is someone else's.
    NotSender,
    /// The `client_message_id` was used for a different text.
    ContentMismatch,
    /// A read position beyond the last message.
    BeyondLast,
}

/// A write's answer: done, or refused with nothing written.
pub type Outcome<T> = Result<T, Refused>;

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// UUIDv7.
    pub id: Uuid,
    /// Direct or group.
    pub kind: ConversationKind,
    /// A group's title.
    pub title: Option<String>,
    /// The last message's sequence (0 before the first).
    pub last_sequence: i64,
    /// The last message or new member.
    pub last_activity_at: chrono::DateTime<chrono::Utc>,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A member, with who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user.
    pub user: UserSummary,
    /// Their role.
    pub role: MemberRole,
    /// When they joined.
    pub joined_at: chrono::DateTime<chrono::Utc>,
}

/// One user's place in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// Their role.
    pub role: MemberRole,
    /// They see the messages after this sequence.
    pub joined_sequence: i64,
    /// They have read up to this sequence.
    pub read_sequence: i64,
}

impl Membership {
    /// Messages after the read position, not counting those before the member joined.
    pub fn unread(&self, last_sequence: i64) -> i64 {
        (last_sequence - self.read_sequence.max(self.joined_sequence)).max(0)
    }
}

/// A message, with its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// UUIDv7.
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// Its position in the conversation.
    pub seq: i64,
    /// Who sent it.
    pub sender: UserSummary,
    /// The text; `None` once deleted.
    pub body: Option<String>,
    /// The sender's idempotency key.
    pub client_message_id: String,
    /// When it was stored.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When its sender deleted it.
    pub deleted_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A conversation as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationView {
    /// The conversation.
    pub conversation: Conversation,
    /// The viewer's place in it.
    pub membership: Membership,
    /// Every member, in the order they joined.
    pub members: Vec<Member>,
    /// The last message the viewer can see.
    pub last_message: Option<Message>,
}

/// What [`Db::send_message`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored now.
    New(Message),
    /// The `client_message_id` was sent before with this text: the stored message.
    Existing(Message),
}

/// Where a page of messages starts and which way it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRange {
    /// Newest first, below the sequence (`None`: from the newest).
    Before(Option<i64>),
    /// Oldest first, above the sequence.
    After(i64),
}

/// The keyset position of a conversation in an inbox (by last activity, newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxPosition {
    /// Its last activity.
    pub last_activity_at: chrono::DateTime<chrono::Utc>,
    /// Its id (ties).
    pub id: Uuid,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversations)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct ConversationRow {
    id: DbUuid,
    kind: String,
    title: Option<String>,
    last_sequence: i64,
    last_activity_at: DbTime,
    created_at: DbTime,
}

impl From<ConversationRow> for Conversation {
    fn from(r: ConversationRow) -> Self {
        Conversation {
            id: r.id.0,
            // The CHECK constraint admits only the known kinds.
            kind: ConversationKind::parse(&r.kind).unwrap_or(ConversationKind::Group),
            title: r.title,
            last_sequence: r.last_sequence,
            last_activity_at: r.last_activity_at.0,
            created_at: r.created_at.0,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversation_members)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct MembershipRow {
    role: String,
    joined_sequence: i64,
    read_sequence: i64,
}

impl From<MembershipRow> for Membership {
    fn from(r: MembershipRow) -> Self {
        Membership {
            // The CHECK constraint admits only the known roles; unknown reads as the weaker one.
            role: MemberRole::parse(&r.role).unwrap_or(MemberRole::Member),
            joined_sequence: r.joined_sequence,
            read_sequence: r.read_sequence,
        }
    }
}

type SummaryRow = (DbUuid, String, String, Option<String>);

fn summary((id, handle, display_name, avatar_url): SummaryRow) -> UserSummary {
    UserSummary {
        id: id.0,
        handle,
        display_name,
        avatar_url,
    }
}

type MessageRow = (
    DbUuid,
    DbUuid,
    i64,
    Option<String>,
    String,
    DbTime,
    Option<DbTime>,
    SummaryRow,
);

/// A `client_message_id` sent before: the stored message if the text is the same. A deleted
/// message answers as stored: its text is gone, so a retry cannot be told from a reuse, and a
/// retry must not resurrect it.
fn same_send(stored: Message, body: &str) -> Result<Sent, Refused> {
    if stored.body.as_deref().is_some_and(|b| b != body) {
        Err(Refused::ContentMismatch)
    } else {
        Ok(Sent::Existing(stored))
    }
}

fn message(row: MessageRow) -> Message {
    let (id, conversation_id, seq, body, client_message_id, created_at, deleted_at, sender) = row;
    Message {
        id: id.0,
        conversation_id: conversation_id.0,
        seq,
        sender: summary(sender),
        body,
        client_message_id,
        created_at: created_at.0,
        deleted_at: deleted_at.map(|t| t.0),
    }
}

/// The columns of a [`MessageRow`], messages joined to their senders.
macro_rules! message_columns {
    () => {
        (
            messages::id,
            messages::conversation_id,
            messages::seq,
            messages::body,
            messages::client_message_id,
            messages::created_at,
            messages::deleted_at,
            (
                users::id,
                users::handle,
                users::display_name,
                users::avatar_url,
            ),
        )
    };
}

/// Messages joined to their senders.
macro_rules! messages_with_senders {
    () => {
        messages::table.inner_join(users::table.on(users::id.eq(messages::sender_id)))
    };
}

/// The canonical key of a pair's direct conversation.
fn direct_pair(a: Uuid, b: Uuid) -> String {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    format!("{low}:{high}")
}

/// Inserts one membership.
macro_rules! insert_member {
    ($c:expr, $conversation:expr, $user:expr, $role:expr, $joined_sequence:expr, $now:expr) => {
        diesel::insert_into(conversation_members::table)
            .values((
                conversation_members::conversation_id.eq(DbUuid($conversation)),
                conversation_members::user_id.eq(DbUuid($user)),
                conversation_members::role.eq($role.as_str()),
                conversation_members::joined_sequence.eq($joined_sequence),
                conversation_members::read_sequence.eq($joined_sequence),
                conversation_members::joined_at.eq($now),
            ))
            .execute($c)
            .await
    };
}

/// Locks conversation `id` (the row lock on PostgreSQL, the write lock on SQLite) without
/// changing it, so a refusal decided after it leaves nothing written: answers its kind and last
/// sequence, `None` when it does not exist.
macro_rules! lock_conversation {
    ($c:expr, $id:expr) => {{
        diesel::update(conversations::table.find(DbUuid($id)))
            .set(conversations::last_sequence.eq(conversations::last_sequence))
            .returning((conversations::kind, conversations::last_sequence))
            .get_result::<(String, i64)>($c)
            .await
            .optional()
    }};
}

/// Marks activity in conversation `id` (the inbox order), taking the next sequence when `$bump`
/// is 1: answers the last sequence after it.
macro_rules! bump_conversation {
    ($c:expr, $id:expr, $now:expr, $bump:expr) => {{
        diesel::update(conversations::table.find(DbUuid($id)))
            .set((
                conversations::last_sequence.eq(conversations::last_sequence + $bump),
                conversations::last_activity_at.eq($now),
            ))
            .returning(conversations::last_sequence)
            .get_result::<i64>($c)
            .await
            .optional()
    }};
}

/// `user`'s membership of `conversation`, read on `$c`.
macro_rules! membership_on {
    ($c:expr, $conversation:expr, $user:expr) => {
        conversation_members::table
            .find((DbUuid($conversation), DbUuid($user)))
            .select(MembershipRow::as_select())
            .first::<MembershipRow>($c)
            .await
            .optional()
    };
}

/// Locks group `conversation` for a membership change by `by`, who must be one of its admins:
/// answers its last sequence, or why not.
macro_rules! lock_group_as_admin {
    ($c:expr, $conversation:expr, $by:expr) => {{
        match membership_on!($c, $conversation, $by)? {
            None => Err(Refused::NotMember),
            Some(me) => match lock_conversation!($c, $conversation)? {
                None => Err(Refused::NotMember),
                Some((kind, _)) if kind != ConversationKind::Group.as_str() => {
                    Err(Refused::NotAGroup)
                }
                Some(_) if Membership::from(me).role != MemberRole::Admin => Err(Refused::NotAdmin),
                Some((_, last_sequence)) => Ok(last_sequence),
            },
        }
    }};
}

impl Db {
    /// Who may message `user`.
    pub async fn chat_settings(
        &self,
        user: Uuid,
        policy: ReadPolicy,
    ) -> Result<DirectMessagesFrom, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let stored: Option<String> = self
            .run("chat_settings", target, async {
                dispatch!(conn, c => chat_settings::table
                    .find(DbUuid(user))
                    .select(chat_settings::direct_messages_from)
                    .first(c)
                    .await
                    .optional())
            })
            .await?;
        Ok(stored
            .as_deref()
            .and_then(DirectMessagesFrom::parse)
            .unwrap_or(DirectMessagesFrom::Friends))
    }

    /// Sets who may message `user`.
    pub async fn set_chat_settings(
        &self,
        user: Uuid,
        from: DirectMessagesFrom,
    ) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        self.run("set_chat_settings", Target::Primary, async {
            dispatch!(conn, c => diesel::insert_into(chat_settings::table)
                .values((
                    chat_settings::user_id.eq(DbUuid(user)),
                    chat_settings::direct_messages_from.eq(from.as_str()),
                ))
                .on_conflict(chat_settings::user_id)
                .do_update()
                .set(chat_settings::direct_messages_from.eq(from.as_str()))
                .execute(c)
                .await)
        })
        .await?;
        self.wrote(user).await;
        Ok(())
    }

    /// The direct conversation of `a` and `b`, created when they have none. Answers its id and
    /// whether it is new.
    pub async fn open_direct_conversation(
        &self,
        a: Uuid,
        b: Uuid,
    ) -> Result<(Uuid, bool), DbError> {
        let pair = direct_pair(a, b);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.open_direct_once(a, b, &pair).await {
                // Both opened it at once: the loser's retry finds the winner's.
                Err(DbError::Conflict { .. }) if attempt < RACE_RETRIES => continue,
                other => return other,
            }
        }
    }

    async fn open_direct_once(
        &self,
        a: Uuid,
        b: Uuid,
        pair: &str,
    ) -> Result<(Uuid, bool), DbError> {
        let now = DbTime::now();
        let id = Uuid::now_v7();
        let mut conn = self.write().await?;
        let opened = self
            .run("open_direct_conversation", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let existing: Option<DbUuid> = conversations::table
                        .filter(conversations::direct_pair.eq(pair))
                        .select(conversations::id)
                        .first(c)
                        .await
                        .optional()?;
                    if let Some(existing) = existing {
                        return Ok((existing.0, false));
                    }
                    diesel::insert_into(conversations::table)
                        .values((
                            conversations::id.eq(DbUuid(id)),
                            conversations::kind.eq(ConversationKind::Direct.as_str()),
                            conversations::direct_pair.eq(pair),
                            conversations::created_by.eq(DbUuid(a)),
                            conversations::last_activity_at.eq(now),
                            conversations::created_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                    insert_member!(c, id, a, MemberRole::Member, 0_i64, now)?;
                    insert_member!(c, id, b, MemberRole::Member, 0_i64, now)?;
                    Ok::<_, diesel::result::Error>((id, true))
                }).await)
            })
            .await?;
        self.wrote(a).await;
        Ok(opened)
    }

    /// A new group titled `title`, `creator` its admin and `members` its members.
    pub async fn create_group(
        &self,
        creator: Uuid,
        title: &str,
        members: &[Uuid],
    ) -> Result<Uuid, DbError> {
        let now = DbTime::now();
        let id = Uuid::now_v7();
        let mut conn = self.write().await?;
        self.run("create_group", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                diesel::insert_into(conversations::table)
                    .values((
                        conversations::id.eq(DbUuid(id)),
                        conversations::kind.eq(ConversationKind::Group.as_str()),
                        conversations::title.eq(title),
                        conversations::created_by.eq(DbUuid(creator)),
                        conversations::last_activity_at.eq(now),
                        conversations::created_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
                insert_member!(c, id, creator, MemberRole::Admin, 0_i64, now)?;
                // One statement per row: diesel-async cannot batch inserts on SQLite
                // (diesel_async#277); a group has at most 100.
                for &member in members {
                    insert_member!(c, id, member, MemberRole::Member, 0_i64, now)?;
                }
                Ok::<_, diesel::result::Error>(())
            }).await)
        })
        .await?;
        self.wrote(creator).await;
        Ok(id)
    }

    /// `user`'s membership of `conversation`, with the conversation; `None` when they are not a
    /// member (or it does not exist).
    pub async fn membership(
        &self,
        conversation: Uuid,
        user: Uuid,
        policy: ReadPolicy,
    ) -> Result<Option<(Conversation, Membership)>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let row: Option<(ConversationRow, MembershipRow)> = self
            .run("chat_membership", target, async {
                dispatch!(conn, c => conversation_members::table
                    .inner_join(conversations::table)
                    .filter(conversation_members::conversation_id.eq(DbUuid(conversation)))
                    .filter(conversation_members::user_id.eq(DbUuid(user)))
                    .select((ConversationRow::as_select(), MembershipRow::as_select()))
                    .first(c)
                    .await
                    .optional())
            })
            .await?;
        Ok(row.map(|(c, m)| (c.into(), m.into())))
    }

    /// The ids of `conversation`'s members.
    pub async fn member_ids(
        &self,
        conversation: Uuid,
        policy: ReadPolicy,
    ) -> Result<Vec<Uuid>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let ids: Vec<DbUuid> = self
            .run("chat_member_ids", target, async {
                dispatch!(conn, c => conversation_members::table
                    .filter(conversation_members::conversation_id.eq(DbUuid(conversation)))
                    .select(conversation_members::user_id)
                    .load(c)
                    .await)
            })
            .await?;
        Ok(ids.into_iter().map(|id| id.0).collect())
    }

    /// Conversation `id` as `viewer` sees it; `None` unless they are a member.
    pub async fn conversation_view(
        &self,
        id: Uuid,
        viewer: Uuid,
        policy: ReadPolicy,
    ) -> Result<Option<ConversationView>, DbError> {
        let Some((conversation, membership)) = self.membership(id, viewer, policy).await? else {
            return Ok(None);
        };
        let mut views = self
            .complete_views(vec![(conversation, membership)], policy)
            .await?;
        Ok(views.pop())
    }

    /// A page of `viewer`'s conversations, most recently active first, after `after`.
    pub async fn list_conversations(
        &self,
        viewer: Uuid,
        after: Option<InboxPosition>,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<ConversationView>, DbError> {
        let limit = i64::from(limit);
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<(ConversationRow, MembershipRow)> = self
            .run("list_conversations", target, async {
                dispatch!(conn, c => {
                    let mut query = conversation_members::table
                        .inner_join(conversations::table)
                        .filter(conversation_members::user_id.eq(DbUuid(viewer)))
                        .order((conversations::last_activity_at.desc(), conversations::id.desc()))
                        .limit(limit)
                        .select((ConversationRow::as_select(), MembershipRow::as_select()))
                        .into_boxed();
                    if let Some(after) = after {
                        let at = DbTime(after.last_activity_at);
                        query = query.filter(
                            conversations::last_activity_at.lt(at).or(conversations::last_activity_at
                                .eq(at)
                                .and(conversations::id.lt(DbUuid(after.id)))),
                        );
                    }
                    query.load(c).await
                })
            })
            .await?;
        // The views take a connection of their own: a small pool must not wait on this one.
        drop(conn);
        let pairs = rows
            .into_iter()
            .map(|(c, m)| (c.into(), m.into()))
            .collect();
        self.complete_views(pairs, policy).await
    }

    /// Adds each conversation's members and last visible message, in two statements for all.
    async fn complete_views(
        &self,
        pairs: Vec<(Conversation, Membership)>,
        policy: ReadPolicy,
    ) -> Result<Vec<ConversationView>, DbError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<DbUuid> = pairs.iter().map(|(c, _)| DbUuid(c.id)).collect();
        let (mut conn, target) = self.read(policy).await?;
        type MemberRow = (DbUuid, String, DbTime, SummaryRow);
        let (member_rows, last_rows): (Vec<MemberRow>, Vec<MessageRow>) = self
            .run("chat_views", target, async {
                dispatch!(conn, c => {
                    let members = conversation_members::table
                        .inner_join(users::table.on(users::id.eq(conversation_members::user_id)))
                        .filter(conversation_members::conversation_id.eq_any(&ids))
                        .select((
                            conversation_members::conversation_id,
                            conversation_members::role,
                            conversation_members::joined_at,
                            (users::id, users::handle, users::display_name, users::avatar_url),
                        ))
                        .load::<MemberRow>(c)
                        .await?;
                    let last = messages_with_senders!()
                        .inner_join(
                            conversations::table.on(conversations::id
                                .eq(messages::conversation_id)
                                .and(messages::seq.eq(conversations::last_sequence))),
                        )
                        .filter(messages::conversation_id.eq_any(&ids))
                        // Named on both sides, so the planner reaches each conversation by its key.
                        .filter(conversations::id.eq_any(&ids))
                        .select(message_columns!())
                        .load::<MessageRow>(c)
                        .await?;
                    Ok::<_, diesel::result::Error>((members, last))
                })
            })
            .await?;
        let mut members: std::collections::HashMap<Uuid, Vec<Member>> =
            std::collections::HashMap::new();
        for (conversation, role, joined_at, user) in member_rows {
            members.entry(conversation.0).or_default().push(Member {
                user: summary(user),
                role: MemberRole::parse(&role).unwrap_or(MemberRole::Member),
                joined_at: joined_at.0,
            });
        }
        let mut last: std::collections::HashMap<Uuid, Message> = last_rows
            .into_iter()
            .map(message)
            .map(|m| (m.conversation_id, m))
            .collect();
        Ok(pairs
            .into_iter()
            .map(|(conversation, membership)| {
                let mut list = members.remove(&conversation.id).unwrap_or_default();
                list.sort_by_key(|m| (m.joined_at, m.user.id));
                let last_message = last
                    .remove(&conversation.id)
                    .filter(|m| m.seq > membership.joined_sequence);
                ConversationView {
                    conversation,
                    membership,
                    members: list,
                    last_message,
                }
            })
            .collect())
    }

    /// `by` (an admin) adds `users` to group `conversation`; members already in it stay as they
    /// are. Answers how many joined.
    pub async fn add_members(
        &self,
        conversation: Uuid,
        by: Uuid,
        users: &[Uuid],
    ) -> Result<Outcome<usize>, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let outcome = self
            .run("add_conversation_members", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let last_sequence = match lock_group_as_admin!(c, conversation, by) {
                        Ok(last) => last,
                        Err(refused) => return Ok(Err(refused)),
                    };
                    let present: Vec<DbUuid> = conversation_members::table
                        .filter(conversation_members::conversation_id.eq(DbUuid(conversation)))
                        .select(conversation_members::user_id)
                        .load(c)
                        .await?;
                    let new: Vec<Uuid> = users
                        .iter()
                        .copied()
                        .filter(|u| !present.iter().any(|p| p.0 == *u))
                        .collect();
                    if present.len() as i64 + new.len() as i64 > MAX_GROUP_MEMBERS {
                        return Ok(Err(Refused::Full));
                    }
                    for &user in &new {
                        insert_member!(c, conversation, user, MemberRole::Member, last_sequence, now)?;
                    }
                    if !new.is_empty() {
                        bump_conversation!(c, conversation, now, 0_i64)?;
                    }
                    Ok::<_, diesel::result::Error>(Ok(new.len()))
                }).await)
            })
            .await?;
        self.wrote(by).await;
        Ok(outcome)
    }

    /// `by` (an admin) removes `user` (another member) from group `conversation`.
    pub async fn remove_member(
        &self,
        conversation: Uuid,
        by: Uuid,
        user: Uuid,
    ) -> Result<Outcome<()>, DbError> {
        let mut conn = self.write().await?;
        let outcome = self
            .run("remove_conversation_member", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    if let Err(refused) = lock_group_as_admin!(c, conversation, by) {
                        return Ok(Err(refused));
                    }
                    let n = diesel::delete(
                        conversation_members::table.find((DbUuid(conversation), DbUuid(user))),
                    )
                    .execute(c)
                    .await?;
                    if n == 0 {
                        return Ok(Err(Refused::NoSuchMember));
                    }
                    Ok::<_, diesel::result::Error>(Ok(()))
                }).await)
            })
            .await?;
        self.wrote(by).await;
        Ok(outcome)
    }

    /// `user` leaves group `conversation`; when no admin is left, the longest-standing member
    /// becomes one.
    pub async fn leave_conversation(
        &self,
        conversation: Uuid,
        user: Uuid,
    ) -> Result<Outcome<()>, DbError> {
        let mut conn = self.write().await?;
        let outcome = self
            .run("leave_conversation", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    if membership_on!(c, conversation, user)?.is_none() {
                        return Ok(Err(Refused::NotMember));
                    }
                    let Some((kind, _)) = lock_conversation!(c, conversation)? else {
                        return Ok(Err(Refused::NotMember));
                    };
                    if kind != ConversationKind::Group.as_str() {
                        return Ok(Err(Refused::NotAGroup));
                    }
                    diesel::delete(
                        conversation_members::table.find((DbUuid(conversation), DbUuid(user))),
                    )
                    .execute(c)
                    .await?;
                    let in_group = conversation_members::table
                        .filter(conversation_members::conversation_id.eq(DbUuid(conversation)));
                    let admins: i64 = in_group
                        .filter(conversation_members::role.eq(MemberRole::Admin.as_str()))
                        .count()
                        .get_result(c)
                        .await?;
                    if admins == 0 {
                        let heir: Option<DbUuid> = in_group
                            .order((conversation_members::joined_at, conversation_members::user_id))
                            .select(conversation_members::user_id)
                            .first(c)
                            .await
                            .optional()?;
                        if let Some(heir) = heir {
                            diesel::update(conversation_members::table.find((DbUuid(conversation), heir)))
                                .set(conversation_members::role.eq(MemberRole::Admin.as_str()))
                                .execute(c)
                                .await?;
                        }
                    }
                    Ok::<_, diesel::result::Error>(Ok(()))
                }).await)
            })
            .await?;
        self.wrote(user).await;
        Ok(outcome)
    }

    /// `sender` sends `body` to `conversation` under `client_message_id`: stored with the next
    /// sequence (the sender's read position moves to it), or the message that id already stored.
    pub async fn send_message(
        &self,
        conversation: Uuid,
        sender: Uuid,
        body: &str,
        client_message_id: &str,
    ) -> Result<Outcome<Sent>, DbError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .send_message_once(conversation, sender, body, client_message_id)
                .await
            {
                // The same id sent twice at once: the loser's retry finds the winner's message.
                Err(DbError::Conflict { .. }) if attempt < RACE_RETRIES => continue,
                other => return other,
            }
        }
    }

    async fn send_message_once(
        &self,
        conversation: Uuid,
        sender: Uuid,
        body: &str,
        client_message_id: &str,
    ) -> Result<Outcome<Sent>, DbError> {
        let now = DbTime::now();
        let id = Uuid::now_v7();
        let mut conn = self.write().await?;
        if let crate::Conn::Pg(pooled) = &mut conn {
            let c: &mut crate::conn_types::PgConn = pooled;
            let sent = self
                .run("send_message", Target::Primary, async {
                    send_statement::send(c, conversation, sender, body, client_message_id, id, now)
                        .await
                })
                .await?;
            self.wrote(sender).await;
            return Ok(match sent {
                None => Err(Refused::NotMember),
                Some((true, stored)) => Ok(Sent::New(stored)),
                Some((false, stored)) => same_send(stored, body),
            });
        }
        let outcome = self
            .run("send_message", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    if membership_on!(c, conversation, sender)?.is_none() {
                        return Ok(Err(Refused::NotMember));
                    }
                    let existing: Option<MessageRow> = messages_with_senders!()
                        .filter(messages::conversation_id.eq(DbUuid(conversation)))
                        .filter(messages::sender_id.eq(DbUuid(sender)))
                        .filter(messages::client_message_id.eq(client_message_id))
                        .select(message_columns!())
                        .first(c)
                        .await
                        .optional()?;
                    if let Some(row) = existing {
                        return Ok(same_send(message(row), body));
                    }
                    let Some(seq) = bump_conversation!(c, conversation, now, 1_i64)? else {
                        return Ok(Err(Refused::NotMember));
                    };
                    diesel::insert_into(messages::table)
                        .values((
                            messages::id.eq(DbUuid(id)),
                            messages::conversation_id.eq(DbUuid(conversation)),
                            messages::seq.eq(seq),
                            messages::sender_id.eq(DbUuid(sender)),
                            messages::body.eq(body),
                            messages::client_message_id.eq(client_message_id),
                            messages::created_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                    diesel::update(conversation_members::table.find((DbUuid(conversation), DbUuid(sender))))
                        .set(conversation_members::read_sequence.eq(seq))
                        .execute(c)
                        .await?;
                    let row: MessageRow = messages_with_senders!()
                        .filter(messages::id.eq(DbUuid(id)))
                        .select(message_columns!())
                        .first(c)
                        .await?;
                    Ok::<_, diesel::result::Error>(Ok(Sent::New(message(row))))
                }).await)
            })
            .await?;
        self.wrote(sender).await;
        Ok(outcome)
    }

    /// A page of `conversation`'s messages after sequence `visible_after` (what a member sees),
    /// in `range`.
    pub async fn list_messages(
        &self,
        conversation: Uuid,
        visible_after: i64,
        range: MessageRange,
        limit: u32,
        policy: ReadPolicy,
    ) -> Result<Vec<Message>, DbError> {
        let limit = i64::from(limit);
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<MessageRow> = self
            .run("list_messages", target, async {
                dispatch!(conn, c => {
                    let mut query = messages_with_senders!()
                        .filter(messages::conversation_id.eq(DbUuid(conversation)))
                        .filter(messages::seq.gt(visible_after))
                        .limit(limit)
                        .select(message_columns!())
                        .into_boxed();
                    query = match range {
                        MessageRange::Before(before) => {
                            let q = query.order(messages::seq.desc());
                            match before {
                                Some(b) => q.filter(messages::seq.lt(b)),
                                None => q,
                            }
                        }
                        MessageRange::After(after) => query
                            .order(messages::seq.asc())
                            .filter(messages::seq.gt(after)),
                    };
                    query.load(c).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(message).collect())
    }

    /// `by` deletes their message `id` in `conversation` (its text goes; its place stays):
    /// answers its sequence, or `None` when it was deleted before (nothing changes).
    pub async fn delete_message(
        &self,
        conversation: Uuid,
        id: Uuid,
        by: Uuid,
    ) -> Result<Outcome<Option<i64>>, DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        let outcome = self
            .run("delete_message", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let Some(me) = membership_on!(c, conversation, by)? else {
                        return Ok(Err(Refused::NotMember));
                    };
                    let found: Option<(DbUuid, i64)> = messages::table
                        .filter(messages::id.eq(DbUuid(id)))
                        .filter(messages::conversation_id.eq(DbUuid(conversation)))
                        .select((messages::sender_id, messages::seq))
                        .first(c)
                        .await
                        .optional()?;
                    let Some((sender, seq)) = found else {
                        return Ok(Err(Refused::NoSuchMessage));
                    };
                    // A message from before the member joined is not theirs to know about.
                    if seq <= Membership::from(me).joined_sequence {
                        return Ok(Err(Refused::NoSuchMessage));
                    }
                    if sender.0 != by {
                        return Ok(Err(Refused::NotSender));
                    }
                    let n = diesel::update(
                        messages::table
                            .filter(messages::id.eq(DbUuid(id)))
                            .filter(messages::deleted_at.is_null()),
                    )
                    .set((
                        messages::body.eq(None::<String>),
                        messages::deleted_at.eq(Some(now)),
                    ))
                    .execute(c)
                    .await?;
                    Ok::<_, diesel::result::Error>(Ok((n > 0).then_some(seq)))
                }).await)
            })
            .await?;
        self.wrote(by).await;
        Ok(outcome)
    }

    /// Moves `user`'s read position in `conversation` forward to `seq` (never back). Answers
    /// the membership after it, the conversation's last sequence and whether the position moved.
    pub async fn mark_read(
        &self,
        conversation: Uuid,
        user: Uuid,
        seq: i64,
    ) -> Result<Outcome<(Membership, i64, bool)>, DbError> {
        let mut conn = self.write().await?;
        let outcome = self
            .run("mark_conversation_read", Target::Primary, async {
                dispatch!(conn, c => c.transaction(async |c| {
                    let Some(before) = membership_on!(c, conversation, user)? else {
                        return Ok(Err(Refused::NotMember));
                    };
                    let last: i64 = conversations::table
                        .find(DbUuid(conversation))
                        .select(conversations::last_sequence)
                        .first(c)
                        .await?;
                    if seq > last {
                        return Ok(Err(Refused::BeyondLast));
                    }
                    let mut membership = Membership::from(before);
                    let moved = seq > membership.read_sequence.max(membership.joined_sequence);
                    if moved {
                        diesel::update(
                            conversation_members::table.find((DbUuid(conversation), DbUuid(user))),
                        )
                        .filter(conversation_members::read_sequence.lt(seq))
                        .set(conversation_members::read_sequence.eq(seq))
                        .execute(c)
                        .await?;
                        membership.read_sequence = seq;
                    }
                    Ok::<_, diesel::result::Error>(Ok((membership, last, moved)))
                }).await)
            })
            .await?;
        self.wrote(user).await;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_has_one_key_whichever_way_it_is_named() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(direct_pair(a, b), direct_pair(b, a));
        assert_ne!(direct_pair(a, b), direct_pair(a, Uuid::now_v7()));
    }

    #[test]
    fn unread_counts_from_the_later_of_joining_and_reading() {
        let m = Membership {
            role: MemberRole::Member,
            joined_sequence: 10,
            read_sequence: 4,
        };
        assert_eq!(m.unread(15), 5);
        assert_eq!(m.unread(10), 0);
        let read = Membership {
            read_sequence: 12,
            ..m
        };
        assert_eq!(read.unread(15), 3);
        assert_eq!(read.unread(12), 0);
    }
}
