//! Notifications: what happened that concerns a user, in the app, by email and by push.
//!
//! Domains enqueue a [`NotificationEvent`] job in the transaction of the write that causes it;
//! the job ([`deliver`]) records the notification (coalescing likes of one post into one),
//! publishes it on the user's broker channel ([`events`]) and queues email and push per the
//! user's settings ([`channels`]). The operations here read and mark what was recorded.

pub mod channels;
pub mod deliver;
pub mod events;
pub mod notice;
pub mod text;
pub mod unread;
pub mod views;

use std::time::Duration;

use agora_api::rt::{Location, Principal, RequestCtx, ServiceError, Violation};
use agora_api::types;
use agora_db::notifications::{MarkRead, NotificationCursor};
use agora_db::{Db, ReadPolicy};
use serde::{Deserialize, Serialize};

pub use deliver::{Deliver, NotificationEvent};

use crate::db_errors::{ResourceKind, service_error};
use crate::paging::{forged_page_token, page_size, split_page};

/// `notifications.*` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// How long after a group's latest activity (likes of one post) another event still joins
    /// it instead of making a new notification. Default 3600.
    pub coalesce_window_secs: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            coalesce_window_secs: 3600,
        }
    }
}

impl NotificationsConfig {
    /// Every problem of the section.
    pub fn problems(&self) -> Vec<String> {
        if self.coalesce_window_secs > 7 * 24 * 3600 {
            vec!["notifications.coalesce_window_secs: at most 604800 (7 days)".into()]
        } else {
            Vec::new()
        }
    }
}

/// Page tokens of `list_notifications` are `n1.<activity µs>.<id>`.
const PAGE_TOKEN_PREFIX: &str = "n1.";

fn page_token(n: &types::Notification) -> String {
    format!(
        "{PAGE_TOKEN_PREFIX}{}.{}",
        n.updated_at.timestamp_micros(),
        n.id
    )
}

fn parse_page_token(token: &str) -> Result<NotificationCursor, ServiceError> {
    let (micros, id) = token
        .strip_prefix(PAGE_TOKEN_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .ok_or_else(forged_page_token)?;
    let activity_at = micros
        .parse::<i64>()
        .ok()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(forged_page_token)?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| forged_page_token())?;
    Ok(NotificationCursor { activity_at, id })
}

/// The notification operations; cheap to share.
#[derive(Clone)]
pub struct Notifications {
    db: Db,
    kv: agora_kv::Kv,
    config: NotificationsConfig,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Notifications {
    /// The service.
    pub fn new(db: Db, kv: agora_kv::Kv, config: NotificationsConfig) -> Self {
        Notifications { db, kv, config }
    }

    /// The job handler that delivers notifications; `email` and `push` say which channels
    /// are on.
    pub fn deliverer(&self, email: bool, push: bool) -> Deliver {
        Deliver {
            db: self.db.clone(),
            kv: self.kv.clone(),
            coalesce_window: Duration::from_secs(self.config.coalesce_window_secs),
            email,
            push,
        }
    }

    /// `list_notifications`.
    pub async fn list(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListNotificationsQuery,
    ) -> Result<types::NotificationResultsPage, ServiceError> {
        let user = ctx.principal.user_id;
        let limit = page_size(query.limit);
        let after = query
            .page_token
            .as_deref()
            .map(parse_page_token)
            .transpose()?;
        let policy = ReadPolicy::ForUser(user);
        let rows = self
            .db
            .list_notifications(
                user,
                query.unread_only.unwrap_or(false),
                after,
                limit + 1,
                policy,
            )
            .await
            .map_err(|e| service_error(e, ResourceKind::Notification))?;
        let views = views::render(&self.db, rows, policy).await?;
        let (items, next_page) = split_page(views, limit, page_token);
        Ok(types::NotificationResultsPage { items, next_page })
    }

    /// `get_unread_count`.
    pub async fn unread_count(
        &self,
        ctx: &RequestCtx<Principal>,
    ) -> Result<types::UnreadCount, ServiceError> {
        let count = unread::count(&self.db, &self.kv, ctx.principal.user_id)
            .await
            .map_err(|e| service_error(e, ResourceKind::Notification))?;
        Ok(types::UnreadCount { count })
    }

    /// `mark_notifications_read`.
    pub async fn mark_read(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::MarkNotificationsReadRequest,
    ) -> Result<types::UnreadCount, ServiceError> {
        let user = ctx.principal.user_id;
        let which = match (body.up_to, body.ids.is_empty()) {
            (Some(_), false) => {
                return Err(ServiceError::invalid(vec![Violation {
                    location: Location::Body,
                    pointer: "/ids".into(),
                    rule: "not",
                    message: "send either `up_to` or `ids`, not both".into(),
                }]));
            }
            (Some(id), true) => MarkRead::UpTo(id),
            (None, false) => MarkRead::Ids(body.ids),
            (None, true) => MarkRead::All,
        };
        let changed = self
            .db
            .mark_notifications_read(user, &which)
            .await
            .map_err(|e| service_error(e, ResourceKind::Notification))?;
        let count = self
            .db
            .count_unread_notifications(user, ReadPolicy::Primary)
            .await
            .map_err(|e| service_error(e, ResourceKind::Notification))?;
        if changed > 0 {
            unread::remember(&self.kv, user, count).await;
        }
        Ok(types::UnreadCount { count })
    }

    /// `get_notification_settings`.
    pub async fn settings(
        &self,
        ctx: &RequestCtx<Principal>,
    ) -> Result<types::NotificationSettings, ServiceError> {
        let user = ctx.principal.user_id;
        let stored = self
            .db
            .notification_settings(user, ReadPolicy::ForUser(user))
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        Ok(channels::to_view(&stored))
    }

    /// `unsubscribe_email`: switches off the email of the kind the signed token names.
    pub async fn unsubscribe(
        &self,
        key: &crate::email::unsubscribe::UnsubscribeKey,
        token: &str,
    ) -> Result<(), ServiceError> {
        let (user, kind) = key.verify(token).ok_or_else(|| {
            ServiceError::invalid(vec![Violation {
                location: Location::Query,
                pointer: "/token".into(),
                rule: "token",
                message: "is not an unsubscribe token this server signed".into(),
            }])
        })?;
        let stored = self
            .db
            .notification_settings(user, ReadPolicy::Primary)
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        let mut choice = channels::effective_for(&stored, kind);
        if !choice.email {
            return Ok(());
        }
        choice.email = false;
        match self.db.save_notification_settings(user, &[choice]).await {
            Ok(()) => {
                tracing::info!(user_id = %user, kind = kind.as_str(), "email unsubscribed");
                Ok(())
            }
            // The account is gone: nothing is emailed to it anyway.
            Err(agora_db::DbError::Conflict { .. }) => Ok(()),
            Err(e) => Err(service_error(e, ResourceKind::User)),
        }
    }

    /// `update_notification_settings`.
    pub async fn update_settings(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::NotificationSettingsUpdate,
    ) -> Result<types::NotificationSettings, ServiceError> {
        let user = ctx.principal.user_id;
        let stored = self
            .db
            .notification_settings(user, ReadPolicy::Primary)
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        let changed = channels::apply(&stored, &body);
        if !changed.is_empty() {
            self.db
                .save_notification_settings(user, &changed)
                .await
                .map_err(|e| service_error(e, ResourceKind::User))?;
        }
        let mut merged = stored;
        merged.retain(|c| !changed.iter().any(|n| n.kind == c.kind));
        merged.extend(changed);
        Ok(channels::to_view(&merged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_forgeries_are_refused() {
        let id = uuid::Uuid::now_v7();
        let at = chrono::DateTime::from_timestamp_micros(1_767_000_000_123_456).expect("valid");
        let token = format!("n1.{}.{id}", at.timestamp_micros());
        assert_eq!(
            parse_page_token(&token).expect("ours"),
            NotificationCursor {
                activity_at: at,
                id
            }
        );
        for bad in [
            "",
            "n1.",
            "n1.x.y",
            "s1.123.abc",
            &format!("n1.{id}"),
            "n1.99999999999999999999.x",
        ] {
            assert!(parse_page_token(bad).is_err(), "{bad}");
        }
    }
}
