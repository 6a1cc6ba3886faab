//! The delivery repositories: which notification was emailed to which address (at most once,
//! within a per-user daily cap, never to a suppressed address), and users' Web Push
//! subscriptions.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::pool::{Db, Target};
use crate::schema::{email_deliveries, email_suppressions, push_subscriptions};
use crate::sql_types::{DbTime, DbUuid};
use crate::text_enum::text_enum;
use crate::{DbError, ReadPolicy, dispatch};

text_enum! {
    /// Where an email delivery is.
    pub enum EmailState {
        /// Claimed: an SMTP transaction is (or was, if the worker died) under way.
        Sending => "sending",
        /// The server accepted it.
        Sent => "sent",
        /// The last attempt failed (the job retries, or the address bounced).
        Failed => "failed",
        /// Not sent: the address is suppressed.
        Suppressed => "suppressed",
        /// Not sent: the user reached the daily cap.
        Capped => "capped",
    }
}

/// What [`Db::claim_email_delivery`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailClaim {
    /// Send it now; report the outcome on this delivery.
    Send(Uuid),
    /// It was sent before (a retried job): nothing to do.
    AlreadySent,
    /// The address bounced before: not sent.
    Suppressed,
    /// The user got `cap` emails today already: not sent.
    Capped,
}

/// A Web Push subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// UUIDv7.
    pub id: Uuid,
    /// Whose browser.
    pub user_id: Uuid,
    /// The push service URL (RFC 8030).
    pub endpoint: String,
    /// The browser's P-256 public key, base64url (RFC 8291 `p256dh`).
    pub p256dh: String,
    /// The browser's 16-byte auth secret, base64url.
    pub auth: String,
    /// The `User-Agent` that registered it.
    pub user_agent: Option<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// The last accepted push.
    pub last_success_at: Option<DateTime<Utc>>,
}

/// What registering a subscription needs.
#[derive(Debug, Clone)]
pub struct NewPushSubscription {
    /// Whose browser.
    pub user_id: Uuid,
    /// The push service URL.
    pub endpoint: String,
    /// `p256dh`, base64url.
    pub p256dh: String,
    /// `auth`, base64url.
    pub auth: String,
    /// The registering `User-Agent`.
    pub user_agent: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = push_subscriptions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct PushRow {
    id: DbUuid,
    user_id: DbUuid,
    endpoint: String,
    p256dh: String,
    auth: String,
    user_agent: Option<String>,
    created_at: DbTime,
    last_success_at: Option<DbTime>,
}

impl From<PushRow> for PushSubscription {
    fn from(r: PushRow) -> Self {
        PushSubscription {
            id: r.id.0,
            user_id: r.user_id.0,
            endpoint: r.endpoint,
            p256dh: r.p256dh,
            auth: r.auth,
            user_agent: r.user_agent,
            created_at: r.created_at.0,
            last_success_at: r.last_success_at.map(|t| t.0),
        }
    }
}

/// Midnight UTC of `at`'s day: the daily cap's window.
fn day_start(at: DateTime<Utc>) -> DbTime {
    let midnight = at
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(at);
    DbTime::truncate(midnight)
}

impl Db {
    /// Decides, in one transaction, whether notification `notification_id` is emailed to
    /// `address` now: not when it was sent before, when the address is suppressed, or when
    /// `user_id` already got `cap` emails today (UTC). A `Send` claims the delivery (state
    /// `sending`); report the outcome with [`Db::finish_email_delivery`].
    pub async fn claim_email_delivery(
        &self,
        notification_id: Uuid,
        user_id: Uuid,
        address: &str,
        cap: u32,
    ) -> Result<EmailClaim, DbError> {
        let now = DbTime::now();
        let today = day_start(now.0);
        let cap = i64::from(cap);
        let mut conn = self.write().await?;
        self.run("claim_email_delivery", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                let existing: Option<(DbUuid, String)> = email_deliveries::table
                    .filter(email_deliveries::notification_id.eq(DbUuid(notification_id)))
                    .select((email_deliveries::id, email_deliveries::state))
                    .first(c)
                    .await
                    .optional()?;
                if existing.as_ref().is_some_and(|(_, s)| s == EmailState::Sent.as_str()) {
                    return Ok(EmailClaim::AlreadySent);
                }
                let suppressed: i64 = email_suppressions::table
                    .filter(email_suppressions::address.eq(address))
                    .count()
                    .get_result(c)
                    .await?;
                let sent_today: i64 = email_deliveries::table
                    .filter(email_deliveries::user_id.eq(DbUuid(user_id)))
                    .filter(email_deliveries::created_at.ge(today))
                    .filter(email_deliveries::state.eq_any([EmailState::Sent.as_str(), EmailState::Sending.as_str()]))
                    .filter(email_deliveries::notification_id.ne(DbUuid(notification_id)))
                    .count()
                    .get_result(c)
                    .await?;
                let id = existing.as_ref().map_or_else(Uuid::now_v7, |(id, _)| id.0);
                let (state, claim) = if suppressed > 0 {
                    (EmailState::Suppressed, EmailClaim::Suppressed)
                } else if sent_today >= cap {
                    (EmailState::Capped, EmailClaim::Capped)
                } else {
                    (EmailState::Sending, EmailClaim::Send(id))
                };
                match existing {
                    Some(_) => {
                        diesel::update(email_deliveries::table.find(DbUuid(id)))
                            .set((
                                email_deliveries::state.eq(state.as_str()),
                                email_deliveries::address.eq(address),
                            ))
                            .execute(c)
                            .await?;
                    }
                    None => {
                        diesel::insert_into(email_deliveries::table)
                            .values((
                                email_deliveries::id.eq(DbUuid(id)),
                                email_deliveries::notification_id.eq(DbUuid(notification_id)),
                                email_deliveries::user_id.eq(DbUuid(user_id)),
                                email_deliveries::address.eq(address),
                                email_deliveries::state.eq(state.as_str()),
                                email_deliveries::created_at.eq(now),
                            ))
                            .execute(c)
                            .await?;
                    }
                }
                Ok::<_, diesel::result::Error>(claim)
            }).await)
        })
        .await
    }

    /// Records how a claimed delivery ended: `Ok` sent, `Err(error)` failed. A failure with
    /// `bounced` also suppresses the address, in the same transaction.
    pub async fn finish_email_delivery(
        &self,
        delivery: Uuid,
        outcome: Result<(), &str>,
        bounced: bool,
    ) -> Result<(), DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        self.run("finish_email_delivery", Target::Primary, async {
            dispatch!(conn, c => c.transaction(async |c| {
                match outcome {
                    Ok(()) => {
                        diesel::update(email_deliveries::table.find(DbUuid(delivery)))
                            .set((
                                email_deliveries::state.eq(EmailState::Sent.as_str()),
                                email_deliveries::sent_at.eq(Some(now)),
                                email_deliveries::error.eq(None::<String>),
                            ))
                            .execute(c)
                            .await?;
                    }
                    Err(error) => {
                        let address: String = diesel::update(email_deliveries::table.find(DbUuid(delivery)))
                            .set((
                                email_deliveries::state.eq(EmailState::Failed.as_str()),
                                email_deliveries::error.eq(Some(error)),
                            ))
                            .returning(email_deliveries::address)
                            .get_result(c)
                            .await?;
                        if bounced {
                            diesel::insert_into(email_suppressions::table)
                                .values((
                                    email_suppressions::address.eq(&address),
                                    email_suppressions::reason.eq("bounced"),
                                    email_suppressions::detail.eq(Some(error)),
                                    email_suppressions::created_at.eq(now),
                                ))
                                .on_conflict_do_nothing()
                                .execute(c)
                                .await?;
                        }
                    }
                }
                Ok::<_, diesel::result::Error>(())
            }).await)
        })
        .await
    }

    /// The state of the email of a notification, if one was attempted.
    pub async fn email_delivery_state(
        &self,
        notification_id: Uuid,
    ) -> Result<Option<EmailState>, DbError> {
        let mut conn = self.write().await?;
        let state: Option<String> = self
            .run("email_delivery_state", Target::Primary, async {
                dispatch!(conn, c => email_deliveries::table
                    .filter(email_deliveries::notification_id.eq(DbUuid(notification_id)))
                    .select(email_deliveries::state)
                    .first(c)
                    .await
                    .optional())
            })
            .await?;
        Ok(state.as_deref().and_then(EmailState::parse))
    }

    /// Whether `address` is suppressed (it bounced).
    pub async fn is_email_suppressed(&self, address: &str) -> Result<bool, DbError> {
        let mut conn = self.write().await?;
        let n: i64 = self
            .run("is_email_suppressed", Target::Primary, async {
                dispatch!(conn, c => email_suppressions::table
                    .filter(email_suppressions::address.eq(address))
                    .count()
                    .get_result(c)
                    .await)
            })
            .await?;
        Ok(n > 0)
    }

    /// Lets `address` be emailed again (after the owner fixed their mailbox); whether it was
    /// suppressed.
    pub async fn unsuppress_email(&self, address: &str) -> Result<bool, DbError> {
        let mut conn = self.write().await?;
        let n = self
            .run("unsuppress_email", Target::Primary, async {
                dispatch!(conn, c => diesel::delete(email_suppressions::table.find(address))
                    .execute(c)
                    .await)
            })
            .await?;
        Ok(n > 0)
    }

    /// Registers a subscription; an endpoint registered before (by anyone: a browser profile
    /// that changed hands) moves to this user with the new keys.
    pub async fn save_push_subscription(
        &self,
        new: &NewPushSubscription,
    ) -> Result<PushSubscription, DbError> {
        let now = DbTime::now();
        let id = DbUuid(Uuid::now_v7());
        let mut conn = self.write().await?;
        let row: PushRow = self
            .run("save_push_subscription", Target::Primary, async {
                dispatch!(conn, c => diesel::insert_into(push_subscriptions::table)
                    .values((
                        push_subscriptions::id.eq(id),
                        push_subscriptions::user_id.eq(DbUuid(new.user_id)),
                        push_subscriptions::endpoint.eq(&new.endpoint),
                        push_subscriptions::p256dh.eq(&new.p256dh),
                        push_subscriptions::auth.eq(&new.auth),
                        push_subscriptions::user_agent.eq(new.user_agent.as_deref()),
                        push_subscriptions::created_at.eq(now),
                    ))
                    .on_conflict(push_subscriptions::endpoint)
                    .do_update()
                    .set((
                        push_subscriptions::user_id.eq(DbUuid(new.user_id)),
                        push_subscriptions::p256dh.eq(&new.p256dh),
                        push_subscriptions::auth.eq(&new.auth),
                        push_subscriptions::user_agent.eq(new.user_agent.as_deref()),
                    ))
                    .returning(PushRow::as_returning())
                    .get_result(c)
                    .await)
            })
            .await?;
        self.wrote(new.user_id).await;
        Ok(row.into())
    }

    /// The subscriptions of `user_id`, oldest first.
    pub async fn push_subscriptions(
        &self,
        user_id: Uuid,
        policy: ReadPolicy,
    ) -> Result<Vec<PushSubscription>, DbError> {
        let (mut conn, target) = self.read(policy).await?;
        let rows: Vec<PushRow> = self
            .run("push_subscriptions", target, async {
                dispatch!(conn, c => push_subscriptions::table
                    .filter(push_subscriptions::user_id.eq(DbUuid(user_id)))
                    .order(push_subscriptions::id.asc())
                    .select(PushRow::as_select())
                    .load(c)
                    .await)
            })
            .await?;
        Ok(rows.into_iter().map(PushSubscription::from).collect())
    }

    /// One subscription by id.
    pub async fn get_push_subscription(&self, id: Uuid) -> Result<PushSubscription, DbError> {
        let mut conn = self.write().await?;
        let row: PushRow = self
            .run("get_push_subscription", Target::Primary, async {
                dispatch!(conn, c => push_subscriptions::table
                    .find(DbUuid(id))
                    .select(PushRow::as_select())
                    .first(c)
                    .await)
            })
            .await?;
        Ok(row.into())
    }

    /// Deletes subscription `id`; with `owner`, only when it is theirs. `NotFound` otherwise.
    pub async fn delete_push_subscription(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        let n = self
            .run("delete_push_subscription", Target::Primary, async {
                dispatch!(conn, c => {
                    let mut query = diesel::delete(push_subscriptions::table)
                        .filter(push_subscriptions::id.eq(DbUuid(id)))
                        .into_boxed();
                    if let Some(owner) = owner {
                        query = query.filter(push_subscriptions::user_id.eq(DbUuid(owner)));
                    }
                    query.execute(c).await
                })
            })
            .await?;
        if n == 0 {
            return Err(DbError::NotFound);
        }
        if let Some(owner) = owner {
            self.wrote(owner).await;
        }
        Ok(())
    }

    /// Notes an accepted push on subscription `id`.
    pub async fn push_succeeded(&self, id: Uuid) -> Result<(), DbError> {
        let now = DbTime::now();
        let mut conn = self.write().await?;
        self.run("push_succeeded", Target::Primary, async {
            dispatch!(conn, c => diesel::update(push_subscriptions::table.find(DbUuid(id)))
                .set(push_subscriptions::last_success_at.eq(Some(now)))
                .execute(c)
                .await)
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_window_starts_at_utc_midnight() {
        let at = DateTime::parse_from_rfc3339("2026-12-03T17:45:12.5Z")
            .expect("valid")
            .with_timezone(&Utc);
        let start = day_start(at).0;
        assert_eq!(start.to_rfc3339(), "2026-12-03T00:00:00+00:00");
    }
}
