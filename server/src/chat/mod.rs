//! Chat: direct and group conversations and their messages — the rules behind the `chat`
//! operations.
//!
//! Who may reach whom: a user is reachable by their friends, or by anyone when their
//! `direct_messages_from` is `everyone`; never across a block. The rule is checked when a direct
//! conversation is opened, when someone is added to a group, and on every message of a direct
//! conversation (so a later block or unfriending stops it). A conversation the caller is not a
//! member of is answered 404 `not_found`, like one that does not exist.

pub mod views;

use agora_api::rt::{ErrorCode, Location, Principal, RequestCtx, ServiceError, Violation};
use agora_api::types;
use agora_db::chat::{ConversationKind, InboxPosition, MessageRange, Refused, Sent};
use agora_db::{Db, ReadPolicy};
use uuid::Uuid;

use crate::db_errors::{ResourceKind, service_error};
use crate::paging::{forged_page_token, page_size, split_page};
use crate::social::{caller_blocks, visible_ties};

/// Page tokens: `i1.<last activity, µs>.<conversation id>` (inbox), `b1.<sequence>` (older
/// messages) and `a1.<sequence>` (newer messages).
const INBOX_TOKEN: &str = "i1.";
const BEFORE_TOKEN: &str = "b1.";
const AFTER_TOKEN: &str = "a1.";

fn db_conversation(e: agora_db::DbError) -> ServiceError {
    service_error(e, ResourceKind::Conversation)
}

fn conversation_not_found() -> ServiceError {
    db_conversation(agora_db::DbError::NotFound)
}

fn invalid(location: Location, pointer: &str, rule: &'static str, message: &str) -> ServiceError {
    ServiceError::invalid(vec![Violation {
        location,
        pointer: pointer.into(),
        rule,
        message: message.into(),
    }])
}

/// The answer for each refusal of the repository (nothing was written).
fn refused(r: Refused) -> ServiceError {
    match r {
        Refused::NotMember => conversation_not_found(),
        Refused::NotAdmin => ServiceError::Forbidden {
            message: "only the group's admins may change its members".into(),
        },
        Refused::NotAGroup => ServiceError::Conflict {
            code: ErrorCode::NotAGroup,
            message: "a direct conversation has its two members for good".into(),
        },
        Refused::Full => ServiceError::Conflict {
            code: ErrorCode::ConversationFull,
            message: format!(
                "a group has at most {} members",
                agora_db::chat::MAX_GROUP_MEMBERS
            ),
        },
        Refused::NoSuchMember => service_error(agora_db::DbError::NotFound, ResourceKind::User),
        Refused::NoSuchMessage => service_error(agora_db::DbError::NotFound, ResourceKind::Message),
        Refused::NotSender => ServiceError::Forbidden {
            message: "only its sender may delete a message".into(),
        },
        Refused::ContentMismatch => ServiceError::Conflict {
            code: ErrorCode::IdempotencyKeyReused,
            message: "this client_message_id was used for a different message".into(),
        },
        Refused::BeyondLast => invalid(
            Location::Body,
            "/sequence",
            "maximum",
            "is beyond the conversation's last message",
        ),
    }
}

fn not_reachable() -> ServiceError {
    ServiceError::Forbidden {
        message: "this user accepts messages from friends only".into(),
    }
}

/// The chat operations; cheap to share.
#[derive(Clone)]
pub struct Chat {
    db: Db,
    /// Live events go to each member's broker channel (`user:{id}`), after the write committed.
    kv: agora_kv::Kv,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat").finish_non_exhaustive()
    }
}

impl Chat {
    /// The service.
    pub fn new(db: Db, kv: agora_kv::Kv) -> Self {
        Chat { db, kv }
    }

    /// Publishes `frame` to the live connections of `users` (serialized once). Best effort: a
    /// client that misses it catches up with `resume` or `list_messages`.
    async fn publish(&self, users: &[Uuid], frame: &types::ServerFrame) {
        crate::notifications::events::publish_frame(&self.kv, users, frame).await;
    }

    async fn publish_to_members(&self, conversation: Uuid, me: Uuid, frame: &types::ServerFrame) {
        match self
            .db
            .member_ids(conversation, ReadPolicy::ForUser(me))
            .await
        {
            Ok(members) => self.publish(&members, frame).await,
            Err(e) => tracing::warn!(error = %e, "cannot read the members to publish to"),
        }
    }

    /// `typing` frames: the other members of `conversation` learn that `me` types.
    pub async fn typing(&self, me: Uuid, conversation: Uuid) -> Result<(), ServiceError> {
        let members = self
            .db
            .member_ids(conversation, ReadPolicy::ForUser(me))
            .await
            .map_err(db_conversation)?;
        if !members.contains(&me) {
            return Err(conversation_not_found());
        }
        let others: Vec<Uuid> = members.into_iter().filter(|m| *m != me).collect();
        let frame = types::ServerFrame::TypingEventFrame(types::TypingEventFrame {
            type_: types::TypingEventFrameType::Typing,
            conversation_id: conversation,
            user_id: me,
        });
        self.publish(&others, &frame).await;
        Ok(())
    }

    /// Whether `me` may open a conversation with `other` or add them to one: 404 when `other`
    /// is unknown or blocks `me`, 409 when `me` blocks them, 403 when they take messages from
    /// friends only and are not `me`'s friend.
    async fn check_reachable(&self, me: Uuid, other: Uuid) -> Result<(), ServiceError> {
        let ties = visible_ties(&self.db, me, other).await?;
        if ties.blocking {
            return Err(caller_blocks());
        }
        if ties.friends {
            return Ok(());
        }
        let open = self
            .db
            .chat_settings(other, ReadPolicy::ForUser(me))
            .await
            .map_err(db_conversation)?;
        match open {
            agora_db::chat::DirectMessagesFrom::Everyone => Ok(()),
            agora_db::chat::DirectMessagesFrom::Friends => Err(not_reachable()),
        }
    }

    async fn view(&self, id: Uuid, me: Uuid) -> Result<types::Conversation, ServiceError> {
        let view = self
            .db
            .conversation_view(id, me, ReadPolicy::ForUser(me))
            .await
            .map_err(db_conversation)?
            .ok_or_else(conversation_not_found)?;
        views::conversation(view)
    }

    /// `get_chat_settings`.
    pub async fn get_settings(
        &self,
        ctx: &RequestCtx<Principal>,
    ) -> Result<types::ChatSettings, ServiceError> {
        let me = ctx.principal.user_id;
        let from = self
            .db
            .chat_settings(me, ReadPolicy::ForUser(me))
            .await
            .map_err(db_conversation)?;
        Ok(types::ChatSettings {
            direct_messages_from: views::direct_messages_from(from),
        })
    }

    /// `update_chat_settings`.
    pub async fn update_settings(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::ChatSettings,
    ) -> Result<types::ChatSettings, ServiceError> {
        let me = ctx.principal.user_id;
        self.db
            .set_chat_settings(
                me,
                views::stored_direct_messages_from(body.direct_messages_from),
            )
            .await
            .map_err(db_conversation)?;
        Ok(body)
    }

    /// `create_conversation`.
    pub async fn create_conversation(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::ConversationCreate,
    ) -> Result<types::Conversation, ServiceError> {
        let me = ctx.principal.user_id;
        let members = body.member_ids;
        if members.contains(&me) {
            return Err(invalid(
                Location::Body,
                "/member_ids",
                "not_self",
                "lists the other members; the caller is one already",
            ));
        }
        let id = match body.kind {
            types::ConversationKind::Direct => {
                if body.title.is_some() {
                    return Err(invalid(
                        Location::Body,
                        "/title",
                        "direct_untitled",
                        "a direct conversation has no title",
                    ));
                }
                let [other] = members.as_slice() else {
                    return Err(invalid(
                        Location::Body,
                        "/member_ids",
                        "maxItems",
                        "a direct conversation has exactly one other member",
                    ));
                };
                self.check_reachable(me, *other).await?;
                let (id, _new) = self
                    .db
                    .open_direct_conversation(me, *other)
                    .await
                    .map_err(db_conversation)?;
                id
            }
            types::ConversationKind::Group => {
                let Some(title) = body.title.as_deref() else {
                    return Err(invalid(
                        Location::Body,
                        "/title",
                        "required",
                        "a group needs a title",
                    ));
                };
                for &other in &members {
                    self.check_reachable(me, other).await?;
                }
                self.db
                    .create_group(me, title, &members)
                    .await
                    .map_err(db_conversation)?
            }
        };
        self.view(id, me).await
    }

    /// `list_conversations`.
    pub async fn list_conversations(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListConversationsQuery,
    ) -> Result<types::ConversationResultsPage, ServiceError> {
        let me = ctx.principal.user_id;
        let size = page_size(query.limit);
        let after = query
            .page_token
            .as_deref()
            .map(parse_inbox_token)
            .transpose()?;
        let rows = self
            .db
            .list_conversations(me, after, size + 1, ReadPolicy::ForUser(me))
            .await
            .map_err(db_conversation)?;
        let (rows, next_page) = split_page(rows, size, |v| {
            format!(
                "{INBOX_TOKEN}{}.{}",
                v.conversation.last_activity_at.timestamp_micros(),
                v.conversation.id
            )
        });
        let items = rows
            .into_iter()
            .map(views::conversation)
            .collect::<Result<_, _>>()?;
        Ok(types::ConversationResultsPage { items, next_page })
    }

    /// `get_conversation`.
    pub async fn get_conversation(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
    ) -> Result<types::Conversation, ServiceError> {
        self.view(id, ctx.principal.user_id).await
    }

    /// `add_conversation_members`.
    pub async fn add_members(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
        body: types::ConversationMembersAdd,
    ) -> Result<types::Conversation, ServiceError> {
        let me = ctx.principal.user_id;
        let users: Vec<Uuid> = body
            .member_ids
            .iter()
            .copied()
            .filter(|u| *u != me)
            .collect();
        // Membership first, so a non-member learns nothing about the users they name.
        let (conversation, _) = self
            .db
            .membership(id, me, ReadPolicy::ForUser(me))
            .await
            .map_err(db_conversation)?
            .ok_or_else(conversation_not_found)?;
        if conversation.kind != ConversationKind::Group {
            return Err(refused(Refused::NotAGroup));
        }
        let present = self
            .db
            .member_ids(id, ReadPolicy::ForUser(me))
            .await
            .map_err(db_conversation)?;
        for &user in users.iter().filter(|u| !present.contains(u)) {
            self.check_reachable(me, user).await?;
        }
        self.db
            .add_members(id, me, &users)
            .await
            .map_err(db_conversation)?
            .map_err(refused)?;
        self.view(id, me).await
    }

    /// `remove_conversation_member`.
    pub async fn remove_member(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
        user: Uuid,
    ) -> Result<(), ServiceError> {
        let me = ctx.principal.user_id;
        if user == me {
            return Err(invalid(
                Location::Path,
                "/user_id",
                "not_self",
                "is the caller: use leave_conversation",
            ));
        }
        self.db
            .remove_member(id, me, user)
            .await
            .map_err(db_conversation)?
            .map_err(refused)
    }

    /// `leave_conversation`.
    pub async fn leave(&self, ctx: &RequestCtx<Principal>, id: Uuid) -> Result<(), ServiceError> {
        self.db
            .leave_conversation(id, ctx.principal.user_id)
            .await
            .map_err(db_conversation)?
            .map_err(refused)
    }

    /// `send_message`.
    pub async fn send_message(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
        body: types::MessageCreate,
    ) -> Result<types::Message, ServiceError> {
        Ok(self.store_message(ctx, id, body).await?.0)
    }

    /// Sends a message (REST or socket): the stored message, and whether it is new (then it
    /// was published to every member) or the one its `client_message_id` stored before.
    pub async fn store_message(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
        body: types::MessageCreate,
    ) -> Result<(types::Message, bool), ServiceError> {
        let me = ctx.principal.user_id;
        let (conversation, _) = self
            .db
            .membership(id, me, ReadPolicy::ForUser(me))
            .await
            .map_err(db_conversation)?
            .ok_or_else(conversation_not_found)?;
        // A direct conversation's two members never change: read once, for the reachability
        // check and for the publish.
        let direct_members = if conversation.kind == ConversationKind::Direct {
            let members = self
                .db
                .member_ids(id, ReadPolicy::ForUser(me))
                .await
                .map_err(db_conversation)?;
            self.check_direct_peer(me, &members).await?;
            Some(members)
        } else {
            None
        };
        let sent = self
            .db
            .send_message(id, me, body.text.as_str(), body.client_message_id.as_str())
            .await
            .map_err(db_conversation)?
            .map_err(refused)?;
        match sent {
            Sent::New(m) => {
                let message = views::message(m)?;
                let frame = types::ServerFrame::MessageFrame(types::MessageFrame {
                    type_: types::MessageFrameType::Message,
                    message: message.clone(),
                });
                match direct_members {
                    Some(members) => self.publish(&members, &frame).await,
                    None => self.publish_to_members(id, me, &frame).await,
                }
                Ok((message, true))
            }
            Sent::Existing(m) => Ok((views::message(m)?, false)),
        }
    }

    /// A direct conversation carries messages only while its other member is still reachable.
    async fn check_direct_peer(&self, me: Uuid, members: &[Uuid]) -> Result<(), ServiceError> {
        let Some(&other) = members.iter().find(|&&m| m != me) else {
            return Ok(());
        };
        match self.check_reachable(me, other).await {
            // They block the caller: the conversation stays, the user behind it is hidden.
            Err(ServiceError::NotFound { .. }) => Err(ServiceError::Forbidden {
                message: "this conversation no longer accepts your messages".into(),
            }),
            other => other,
        }
    }

    /// `list_messages`.
    pub async fn list_messages(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
        query: types::ListMessagesQuery,
    ) -> Result<types::MessageResultsPage, ServiceError> {
        let me = ctx.principal.user_id;
        let range = match query.page_token.as_deref() {
            Some(token) => parse_message_token(token)?,
            None => match (query.before, query.after) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        Location::Query,
                        "/after",
                        "exclusive",
                        "cannot be combined with before",
                    ));
                }
                (_, Some(after)) => MessageRange::After(after),
                // Beyond i64 is beyond every message.
                (before, None) => {
                    MessageRange::Before(before.map(|b| i64::try_from(b.get()).unwrap_or(i64::MAX)))
                }
            },
        };
        let (_, membership) = self
            .db
            .membership(id, me, ReadPolicy::ForUser(me))
            .await
            .map_err(db_conversation)?
            .ok_or_else(conversation_not_found)?;
        let size = page_size(query.limit);
        let rows = self
            .db
            .list_messages(
                id,
                membership.joined_sequence,
                range,
                size + 1,
                ReadPolicy::ForUser(me),
            )
            .await
            .map_err(db_conversation)?;
        let (rows, next_page) = split_page(rows, size, |m| match range {
            MessageRange::Before(_) => format!("{BEFORE_TOKEN}{}", m.seq),
            MessageRange::After(_) => format!("{AFTER_TOKEN}{}", m.seq),
        });
        let items = rows
            .into_iter()
            .map(views::message)
            .collect::<Result<_, _>>()?;
        Ok(types::MessageResultsPage { items, next_page })
    }

    /// `delete_message`.
    pub async fn delete_message(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
        message: Uuid,
    ) -> Result<(), ServiceError> {
        let me = ctx.principal.user_id;
        let deleted = self
            .db
            .delete_message(id, message, me)
            .await
            .map_err(db_conversation)?
            .map_err(refused)?;
        if let Some(sequence) = deleted {
            let frame = types::ServerFrame::MessageDeletedFrame(types::MessageDeletedFrame {
                type_: types::MessageDeletedFrameType::MessageDeleted,
                conversation_id: id,
                message_id: message,
                sequence,
            });
            self.publish_to_members(id, me, &frame).await;
        }
        Ok(())
    }

    /// `mark_conversation_read`.
    pub async fn mark_read(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
        body: types::ReadPosition,
    ) -> Result<types::ReadState, ServiceError> {
        let me = ctx.principal.user_id;
        let (membership, last, moved) = self
            .db
            .mark_read(id, me, body.sequence)
            .await
            .map_err(db_conversation)?
            .map_err(refused)?;
        if moved {
            let frame = types::ServerFrame::ReadReceiptFrame(types::ReadReceiptFrame {
                type_: types::ReadReceiptFrameType::Read,
                conversation_id: id,
                user_id: me,
                sequence: membership.read_sequence,
            });
            self.publish_to_members(id, me, &frame).await;
        }
        Ok(types::ReadState {
            conversation_id: id,
            read_sequence: membership.read_sequence.max(membership.joined_sequence),
            unread_count: membership.unread(last),
        })
    }
}

fn parse_inbox_token(token: &str) -> Result<InboxPosition, ServiceError> {
    let rest = token
        .strip_prefix(INBOX_TOKEN)
        .ok_or_else(forged_page_token)?;
    let (micros, id) = rest.split_once('.').ok_or_else(forged_page_token)?;
    let micros: i64 = micros.parse().map_err(|_| forged_page_token())?;
    let last_activity_at =
        chrono::DateTime::from_timestamp_micros(micros).ok_or_else(forged_page_token)?;
    let id = Uuid::parse_str(id).map_err(|_| forged_page_token())?;
    Ok(InboxPosition {
        last_activity_at,
        id,
    })
}

fn parse_message_token(token: &str) -> Result<MessageRange, ServiceError> {
    let seq = |rest: &str| rest.parse::<i64>().ok().filter(|s| *s >= 0);
    if let Some(s) = token.strip_prefix(BEFORE_TOKEN).and_then(seq) {
        return Ok(MessageRange::Before(Some(s)));
    }
    if let Some(s) = token.strip_prefix(AFTER_TOKEN).and_then(seq) {
        return Ok(MessageRange::After(s));
    }
    Err(forged_page_token())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_read_back_what_they_name() {
        let id = Uuid::now_v7();
        let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("time");
        let token = format!("{INBOX_TOKEN}{}.{id}", at.timestamp_micros());
        assert_eq!(
            parse_inbox_token(&token).ok(),
            Some(InboxPosition {
                last_activity_at: at,
                id
            })
        );
        assert_eq!(
            parse_message_token("b1.42").ok(),
            Some(MessageRange::Before(Some(42)))
        );
        assert_eq!(
            parse_message_token("a1.0").ok(),
            Some(MessageRange::After(0))
        );
    }

    #[test]
    fn forged_tokens_are_refused() {
        for token in ["", "i1.", "i1.x.y", "i1.12", "i1.12.not-a-uuid", "b1.5"] {
            assert!(parse_inbox_token(token).is_err(), "{token}");
        }
        for token in ["", "b1.", "b1.-3", "a1.z", "p1.5", "i1.5"] {
            assert!(parse_message_token(token).is_err(), "{token}");
        }
    }
}
