//! The contract's view of conversations and messages.

use agora_api::rt::ServiceError;
use agora_api::types;
use agora_db::chat::{ConversationKind, ConversationView, DirectMessagesFrom, MemberRole, Message};

use crate::notifications::views::summary;
use crate::paging::stored;

pub(crate) fn kind(k: ConversationKind) -> types::ConversationKind {
    match k {
        ConversationKind::Direct => types::ConversationKind::Direct,
        ConversationKind::Group => types::ConversationKind::Group,
    }
}

fn role(r: MemberRole) -> types::ConversationRole {
    match r {
        MemberRole::Admin => types::ConversationRole::Admin,
        MemberRole::Member => types::ConversationRole::Member,
    }
}

pub(crate) fn direct_messages_from(d: DirectMessagesFrom) -> types::DirectMessagesFrom {
    match d {
        DirectMessagesFrom::Friends => types::DirectMessagesFrom::Friends,
        DirectMessagesFrom::Everyone => types::DirectMessagesFrom::Everyone,
    }
}

pub(crate) fn stored_direct_messages_from(d: types::DirectMessagesFrom) -> DirectMessagesFrom {
    match d {
        types::DirectMessagesFrom::Friends => DirectMessagesFrom::Friends,
        types::DirectMessagesFrom::Everyone => DirectMessagesFrom::Everyone,
    }
}

/// A message as members see it.
pub(crate) fn message(m: Message) -> Result<types::Message, ServiceError> {
    Ok(types::Message {
        id: m.id,
        conversation_id: m.conversation_id,
        sequence: u64::try_from(m.seq)
            .ok()
            .and_then(std::num::NonZeroU64::new)
            .ok_or_else(|| ServiceError::internal("stored message sequence below 1"))?,
        sender: summary(&m.sender)?,
        text: m.body,
        client_message_id: stored(m.client_message_id, "client_message_id")?,
        created_at: m.created_at,
        deleted_at: m.deleted_at,
    })
}

/// A conversation as its viewer sees it.
pub(crate) fn conversation(v: ConversationView) -> Result<types::Conversation, ServiceError> {
    let members = v
        .members
        .iter()
        .map(|m| {
            Ok(types::ConversationMember {
                user: summary(&m.user)?,
                role: role(m.role),
                joined_at: m.joined_at,
            })
        })
        .collect::<Result<_, ServiceError>>()?;
    let c = v.conversation;
    Ok(types::Conversation {
        id: c.id,
        kind: kind(c.kind),
        title: c.title,
        members,
        created_at: c.created_at,
        last_activity_at: c.last_activity_at,
        last_sequence: c.last_sequence,
        read_sequence: v.membership.read_sequence.max(v.membership.joined_sequence),
        unread_count: v.membership.unread(c.last_sequence),
        last_message: v.last_message.map(message).transpose()?,
    })
}
