//! `send_message` on PostgreSQL as one statement.
//!
//! The portable path is a transaction of six statements (membership, an earlier send of the same
//! `client_message_id`, the sequence bump, the insert, the sender's read position, the stored
//! row with its sender), seven round trips with `COMMIT`, on the hottest write of the chat. Data-
//! modifying CTEs do the same in one: atomic as a statement, the sequence still assigned under the
//! conversation row's lock. SQLite has no data-modifying CTEs and keeps the transaction.
//!
//! A concurrent send of the same `client_message_id` cannot see the other's row (one snapshot):
//! both bump, the second insert violates the unique index, the whole statement rolls back (its
//! bump too) and the caller's retry finds the stored message — as the transaction did.

use diesel::OptionalExtension as _;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::RunQueryDsl;

use super::{Message, MessageRow};
use crate::conn_types::PgConn;
use crate::sql_types::{DbTime, DbUuid, UtcTime, Uuid as SqlUuid};

const SEND: &str = "\
WITH member AS (
    SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND user_id = $2
), earlier AS (
    SELECT id FROM messages
    WHERE conversation_id = $1 AND sender_id = $2 AND client_message_id = $3
), bumped AS (
    UPDATE conversations SET last_sequence = last_sequence + 1, last_activity_at = $4
    WHERE id = $1 AND EXISTS (SELECT 1 FROM member) AND NOT EXISTS (SELECT 1 FROM earlier)
    RETURNING last_sequence
), inserted AS (
    INSERT INTO messages (id, conversation_id, seq, sender_id, body, client_message_id, created_at)
    SELECT $5, $1, last_sequence, $2, $6, $3, $4 FROM bumped
    RETURNING id, conversation_id, seq, body, client_message_id, created_at, deleted_at
), marked AS (
    UPDATE conversation_members SET read_sequence = inserted.seq FROM inserted
    WHERE conversation_members.conversation_id = $1 AND conversation_members.user_id = $2
)
SELECT true AS fresh, i.id, i.conversation_id, i.seq, i.body, i.client_message_id, i.created_at,
       i.deleted_at, u.id AS sender_id, u.handle, u.display_name, u.avatar_url
FROM inserted i JOIN users u ON u.id = $2
UNION ALL
SELECT false, m.id, m.conversation_id, m.seq, m.body, m.client_message_id, m.created_at,
       m.deleted_at, u.id, u.handle, u.display_name, u.avatar_url
FROM messages m JOIN users u ON u.id = m.sender_id
WHERE m.id IN (SELECT id FROM earlier) AND EXISTS (SELECT 1 FROM member)";

#[derive(diesel::QueryableByName)]
struct SentRow {
    #[diesel(sql_type = Bool)]
    fresh: bool,
    #[diesel(sql_type = SqlUuid)]
    id: DbUuid,
    #[diesel(sql_type = SqlUuid)]
    conversation_id: DbUuid,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Nullable<Text>)]
    body: Option<String>,
    #[diesel(sql_type = Text)]
    client_message_id: String,
    #[diesel(sql_type = UtcTime)]
    created_at: DbTime,
    #[diesel(sql_type = Nullable<UtcTime>)]
    deleted_at: Option<DbTime>,
    #[diesel(sql_type = SqlUuid)]
    sender_id: DbUuid,
    #[diesel(sql_type = Text)]
    handle: String,
    #[diesel(sql_type = Text)]
    display_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    avatar_url: Option<String>,
}

/// What the statement found: `None` when `sender` is not a member (or the conversation is
/// gone); else the message and whether this call stored it.
pub(super) async fn send(
    c: &mut PgConn,
    conversation: uuid::Uuid,
    sender: uuid::Uuid,
    body: &str,
    client_message_id: &str,
    id: uuid::Uuid,
    now: DbTime,
) -> diesel::QueryResult<Option<(bool, Message)>> {
    let row: Option<SentRow> = diesel::sql_query(SEND)
        .bind::<SqlUuid, _>(DbUuid(conversation))
        .bind::<SqlUuid, _>(DbUuid(sender))
        .bind::<Text, _>(client_message_id)
        .bind::<UtcTime, _>(now)
        .bind::<SqlUuid, _>(DbUuid(id))
        .bind::<Text, _>(body)
        .get_result(c)
        .await
        .optional()?;
    Ok(row.map(|r| {
        let stored: MessageRow = (
            r.id,
            r.conversation_id,
            r.seq,
            r.body,
            r.client_message_id,
            r.created_at,
            r.deleted_at,
            (r.sender_id, r.handle, r.display_name, r.avatar_url),
        );
        (r.fresh, super::message(stored))
    }))
}
