//! Stored notifications as the contract's `Notification`: actors resolved to user summaries,
//! the summary text rendered, details decoded.

use std::collections::HashMap;

use agora_api::rt::ServiceError;
use agora_api::types;
use agora_db::notifications::{Notification, NotificationKind, SubjectType};
use agora_db::users::UserSummary;
use agora_db::{Db, ReadPolicy};

use super::text;
use crate::db_errors::{ResourceKind, service_error};
use crate::paging::stored;

fn kind(k: NotificationKind) -> types::NotificationKind {
    match k {
        NotificationKind::FriendRequest => types::NotificationKind::FriendRequest,
        NotificationKind::FriendAccepted => types::NotificationKind::FriendAccepted,
        NotificationKind::PostLiked => types::NotificationKind::PostLiked,
        NotificationKind::PostCommented => types::NotificationKind::PostCommented,
        NotificationKind::MessageReceived => types::NotificationKind::MessageReceived,
        NotificationKind::AdminNotice => types::NotificationKind::AdminNotice,
        NotificationKind::NewLogin => types::NotificationKind::NewLogin,
        NotificationKind::PasswordChanged => types::NotificationKind::PasswordChanged,
    }
}

fn subject(t: SubjectType, id: uuid::Uuid) -> types::NotificationSubject {
    let type_ = match t {
        SubjectType::Post => types::NotificationSubjectType::Post,
        SubjectType::Comment => types::NotificationSubjectType::Comment,
        SubjectType::Conversation => types::NotificationSubjectType::Conversation,
        SubjectType::Message => types::NotificationSubjectType::Message,
        SubjectType::Session => types::NotificationSubjectType::Session,
        SubjectType::User => types::NotificationSubjectType::User,
    };
    types::NotificationSubject { type_, id }
}

pub(crate) fn summary(u: &UserSummary) -> Result<types::UserSummary, ServiceError> {
    Ok(types::UserSummary {
        id: u.id,
        handle: stored(u.handle.clone(), "handle")?,
        display_name: stored(u.display_name.clone(), "display_name")?,
        avatar_url: u.avatar_url.clone(),
    })
}

/// The contract's view of `notifications` (one query for all their actors). An actor whose
/// account is gone is left out of `actors` but still counted.
pub async fn render(
    db: &Db,
    notifications: Vec<Notification>,
    policy: ReadPolicy,
) -> Result<Vec<types::Notification>, ServiceError> {
    let mut ids: Vec<uuid::Uuid> = notifications
        .iter()
        .flat_map(|n| n.recent_actors.iter().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let users: HashMap<uuid::Uuid, UserSummary> = db
        .user_summaries(&ids, policy)
        .await
        .map_err(|e| service_error(e, ResourceKind::User))?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    notifications
        .into_iter()
        .map(|n| {
            let actors: Vec<&UserSummary> = n
                .recent_actors
                .iter()
                .filter_map(|id| users.get(id))
                .collect();
            let names: Vec<String> = actors.iter().map(|u| u.display_name.clone()).collect();
            Ok(types::Notification {
                id: n.id,
                kind: kind(n.kind),
                read: n.read_at.is_some(),
                created_at: n.created_at,
                updated_at: n.activity_at,
                actor_count: n.actor_count,
                actors: actors.into_iter().map(summary).collect::<Result<_, _>>()?,
                subject: n.subject.map(|(t, id)| subject(t, id)),
                text: text::summary(n.kind, &names, n.actor_count),
                details: serde_json::from_str(&n.details).unwrap_or_default(),
            })
        })
        .collect()
}

/// The contract's view of one notification (`None` only if rendering dropped it, which it does
/// not; callers treat that as nothing to deliver).
pub async fn render_one(
    db: &Db,
    notification: Notification,
    policy: ReadPolicy,
) -> Result<Option<types::Notification>, ServiceError> {
    Ok(render(db, vec![notification], policy)
        .await?
        .into_iter()
        .next())
}
