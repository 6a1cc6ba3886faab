//! The social graph: friend requests and friendships, follows and blocks — the rules behind the
//! `social` operations. Every write that changes who sees what enqueues its feed work (backfill
//! after a new tie, pruning after an ended one) and its notifications in the same transaction.
//!
//! A user who blocks the caller is answered exactly as a user who does not exist (404
//! `not_found`), so a block is never revealed; the caller's own blocks answer 409
//! `user_blocked`, since the caller knows about them.

use agora_api::rt::{ErrorCode, Location, Principal, RequestCtx, ServiceError, Violation};
use agora_api::types;
use agora_db::jobs::NewJob;
use agora_db::notifications::{NotificationKind, SubjectType};
use agora_db::social::{Connection, ConnectionList, FriendRequestOutcome, RequestDirection, Ties};
use agora_db::{Db, ReadPolicy};
use uuid::Uuid;

use crate::db_errors::{ResourceKind, service_error};
use crate::feed::FeedPages;
use crate::feed::jobs::{BackfillFeed, PruneFeed};
use crate::notifications::NotificationEvent;
use crate::notifications::views::summary;
use crate::paging::{page_size, parse_id_token, split_page};

/// Page tokens of the user lists are `c1.<tie id>`; of friend requests `r1.<request id>`.
const CONNECTION_TOKEN: &str = "c1.";
const REQUEST_TOKEN: &str = "r1.";

/// The answer for a user the caller may not know about (missing, or blocking the caller).
pub(crate) fn user_not_found() -> ServiceError {
    service_error(agora_db::DbError::NotFound, ResourceKind::User)
}

/// The answer when the caller blocks the user they act on.
pub(crate) fn caller_blocks() -> ServiceError {
    ServiceError::Conflict {
        code: ErrorCode::UserBlocked,
        message: "you block this user; unblock them first".into(),
    }
}

fn not_yourself(location: Location) -> ServiceError {
    ServiceError::invalid(vec![Violation {
        location,
        pointer: "/user_id".into(),
        rule: "not_self",
        message: "must be another user than the caller".into(),
    }])
}

fn db_error(e: agora_db::DbError) -> ServiceError {
    service_error(e, ResourceKind::User)
}

fn relationship(other: Uuid, ties: &Ties) -> types::Relationship {
    let (status, request_id) = if ties.blocking {
        (types::RelationshipStatus::Blocking, None)
    } else if ties.friends {
        (types::RelationshipStatus::Friends, None)
    } else if let Some(id) = ties.request_sent {
        (types::RelationshipStatus::RequestSent, Some(id))
    } else if let Some(id) = ties.request_received {
        (types::RelationshipStatus::RequestReceived, Some(id))
    } else {
        (types::RelationshipStatus::None, None)
    };
    types::Relationship {
        user_id: other,
        status,
        request_id,
        following: ties.following,
        followed_by: ties.followed_by,
    }
}

fn connection_page(
    rows: Vec<Connection>,
    size: u32,
) -> Result<types::UserConnectionResultsPage, ServiceError> {
    let (rows, next_page) = split_page(rows, size, |c| format!("{CONNECTION_TOKEN}{}", c.id));
    let items = rows
        .iter()
        .map(|c| {
            Ok(types::UserConnection {
                user: summary(&c.user)?,
                since: c.since,
            })
        })
        .collect::<Result<_, ServiceError>>()?;
    Ok(types::UserConnectionResultsPage { items, next_page })
}

/// The ties of `me` to `other`, or 404 when `other` does not exist or blocks `me` (one answer
/// for both). Every operation that names another user starts here.
pub(crate) async fn visible_ties(db: &Db, me: Uuid, other: Uuid) -> Result<Ties, ServiceError> {
    // The user must exist; the read follows the caller's own writes.
    db.get_user(other, ReadPolicy::ForUser(me))
        .await
        .map_err(db_error)?;
    let ties = db
        .ties(me, other, ReadPolicy::ForUser(me))
        .await
        .map_err(db_error)?;
    if ties.blocked_by {
        return Err(user_not_found());
    }
    Ok(ties)
}

/// The social operations; cheap to share.
#[derive(Clone, Debug)]
pub struct Social {
    db: Db,
    /// Every tie change makes both sides' cached feed pages stale.
    pages: FeedPages,
}

impl Social {
    /// The service.
    pub fn new(db: Db, pages: FeedPages) -> Self {
        Social { db, pages }
    }

    /// After a committed change of the ties between `a` and `b`, before answering.
    async fn ties_changed(&self, a: Uuid, b: Uuid) {
        self.pages.changed_for(&[a, b]).await;
    }

    async fn visible_ties(&self, me: Uuid, other: Uuid) -> Result<Ties, ServiceError> {
        visible_ties(&self.db, me, other).await
    }

    /// `send_friend_request`.
    pub async fn send_friend_request(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::FriendRequestCreate,
    ) -> Result<types::Relationship, ServiceError> {
        let me = ctx.principal.user_id;
        let other = body.user_id;
        if other == me {
            return Err(not_yourself(Location::Body));
        }
        let ties = self.visible_ties(me, other).await?;
        if ties.blocking {
            return Err(caller_blocks());
        }
        let notify = |user: Uuid, kind: NotificationKind, request: Uuid| -> Vec<NewJob> {
            let event = NotificationEvent::new(user, kind)
                .actor(me)
                .subject(SubjectType::User, me)
                .detail("request_id", request.to_string());
            event.jobs(&ctx.trace)
        };
        let outcome = self
            .db
            .send_friend_request(
                me,
                other,
                |request| notify(other, NotificationKind::FriendRequest, request),
                |request| {
                    let mut jobs = notify(other, NotificationKind::FriendAccepted, request);
                    jobs.extend(BackfillFeed::befriended(me, other, &ctx.trace));
                    jobs
                },
            )
            .await
            .map_err(db_error)?;
        if matches!(outcome, FriendRequestOutcome::Accepted(_)) {
            self.ties_changed(me, other).await;
        }
        match outcome {
            FriendRequestOutcome::AlreadyFriends => Err(ServiceError::Conflict {
                code: ErrorCode::AlreadyFriends,
                message: "you are friends already".into(),
            }),
            // A block that appeared since the check above: the same answers as if it had been
            // there (the caller's own is a conflict, theirs is not revealed).
            FriendRequestOutcome::Blocked => {
                let ties = self.visible_ties(me, other).await?;
                Err(if ties.blocking {
                    caller_blocks()
                } else {
                    user_not_found()
                })
            }
            FriendRequestOutcome::Sent(_)
            | FriendRequestOutcome::AlreadyPending(_)
            | FriendRequestOutcome::Accepted(_) => self.relationship_with(me, other).await,
        }
    }

    async fn relationship_with(
        &self,
        me: Uuid,
        other: Uuid,
    ) -> Result<types::Relationship, ServiceError> {
        let ties = self
            .db
            .ties(me, other, ReadPolicy::Primary)
            .await
            .map_err(db_error)?;
        Ok(relationship(other, &ties))
    }

    /// `list_friend_requests`.
    pub async fn list_friend_requests(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListFriendRequestsQuery,
    ) -> Result<types::FriendRequestResultsPage, ServiceError> {
        let me = ctx.principal.user_id;
        let size = page_size(query.limit);
        let after = query
            .page_token
            .as_deref()
            .map(|t| parse_id_token(t, REQUEST_TOKEN))
            .transpose()?;
        let direction = match query.direction {
            Some(types::FriendRequestDirection::Outgoing) => RequestDirection::Outgoing,
            Some(types::FriendRequestDirection::Incoming) | None => RequestDirection::Incoming,
        };
        let rows = self
            .db
            .list_friend_requests(me, direction, after, size + 1, ReadPolicy::ForUser(me))
            .await
            .map_err(db_error)?;
        let (rows, next_page) = split_page(rows, size, |r| format!("{REQUEST_TOKEN}{}", r.id));
        let mut ids: Vec<Uuid> = rows
            .iter()
            .flat_map(|r| [r.from_user_id, r.to_user_id])
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let users: std::collections::HashMap<Uuid, _> = self
            .db
            .user_summaries(&ids, ReadPolicy::ForUser(me))
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            // An account deleted since: its request goes with it (ON DELETE CASCADE).
            let (Some(from), Some(to)) = (users.get(&r.from_user_id), users.get(&r.to_user_id))
            else {
                continue;
            };
            items.push(types::FriendRequest {
                id: r.id,
                from: summary(from)?,
                to: summary(to)?,
                created_at: r.created_at,
            });
        }
        Ok(types::FriendRequestResultsPage { items, next_page })
    }

    /// `accept_friend_request`.
    pub async fn accept_friend_request(
        &self,
        ctx: &RequestCtx<Principal>,
        request: Uuid,
    ) -> Result<types::Relationship, ServiceError> {
        let me = ctx.principal.user_id;
        let sender = self
            .db
            .accept_friend_request(me, request, |sender| {
                let event = NotificationEvent::new(sender, NotificationKind::FriendAccepted)
                    .actor(me)
                    .subject(SubjectType::User, me)
                    .detail("request_id", request.to_string());
                let mut jobs = event.jobs(&ctx.trace);
                jobs.extend(BackfillFeed::befriended(me, sender, &ctx.trace));
                jobs
            })
            .await
            .map_err(|e| service_error(e, ResourceKind::FriendRequest))?;
        self.ties_changed(me, sender).await;
        self.relationship_with(me, sender).await
    }

    /// `decline_friend_request` and `cancel_friend_request`.
    pub async fn delete_friend_request(
        &self,
        ctx: &RequestCtx<Principal>,
        request: Uuid,
        direction: RequestDirection,
    ) -> Result<(), ServiceError> {
        self.db
            .delete_friend_request(ctx.principal.user_id, request, direction)
            .await
            .map_err(|e| service_error(e, ResourceKind::FriendRequest))
    }

    /// `remove_friend`.
    pub async fn remove_friend(
        &self,
        ctx: &RequestCtx<Principal>,
        other: Uuid,
    ) -> Result<(), ServiceError> {
        let me = ctx.principal.user_id;
        let jobs = PruneFeed::between(me, other, &ctx.trace);
        self.db
            .remove_friend(me, other, &jobs)
            .await
            .map_err(|e| service_error(e, ResourceKind::Friendship))?;
        self.ties_changed(me, other).await;
        Ok(())
    }

    /// `list_friends`, `list_followers`, `list_following`.
    pub async fn list_connections(
        &self,
        ctx: &RequestCtx<Principal>,
        list: ConnectionList,
        user: Uuid,
        limit: Option<std::num::NonZeroU32>,
        page_token: Option<&str>,
    ) -> Result<types::UserConnectionResultsPage, ServiceError> {
        let me = ctx.principal.user_id;
        if user != me {
            self.visible_ties(me, user).await?;
        }
        self.connections(me, list, user, limit, page_token).await
    }

    async fn connections(
        &self,
        me: Uuid,
        list: ConnectionList,
        user: Uuid,
        limit: Option<std::num::NonZeroU32>,
        page_token: Option<&str>,
    ) -> Result<types::UserConnectionResultsPage, ServiceError> {
        let size = page_size(limit);
        let after = page_token
            .map(|t| parse_id_token(t, CONNECTION_TOKEN))
            .transpose()?;
        let rows = self
            .db
            .list_connections(list, user, after, size + 1, ReadPolicy::ForUser(me))
            .await
            .map_err(db_error)?;
        connection_page(rows, size)
    }

    /// `list_blocks`.
    pub async fn list_blocks(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListBlocksQuery,
    ) -> Result<types::UserConnectionResultsPage, ServiceError> {
        let me = ctx.principal.user_id;
        self.connections(
            me,
            ConnectionList::Blocks,
            me,
            query.limit,
            query.page_token.as_deref(),
        )
        .await
    }

    /// `get_relationship`.
    pub async fn get_relationship(
        &self,
        ctx: &RequestCtx<Principal>,
        other: Uuid,
    ) -> Result<types::Relationship, ServiceError> {
        let me = ctx.principal.user_id;
        if other == me {
            return Err(not_yourself(Location::Path));
        }
        let ties = self.visible_ties(me, other).await?;
        Ok(relationship(other, &ties))
    }

    /// `follow_user`.
    pub async fn follow_user(
        &self,
        ctx: &RequestCtx<Principal>,
        other: Uuid,
    ) -> Result<types::Relationship, ServiceError> {
        let me = ctx.principal.user_id;
        if other == me {
            return Err(not_yourself(Location::Path));
        }
        let ties = self.visible_ties(me, other).await?;
        if ties.blocking {
            return Err(caller_blocks());
        }
        let jobs = BackfillFeed::followed(me, other, &ctx.trace);
        let allowed = self.db.follow(me, other, &jobs).await.map_err(db_error)?;
        if !allowed {
            // A block that appeared since the check.
            let ties = self.visible_ties(me, other).await?;
            return Err(if ties.blocking {
                caller_blocks()
            } else {
                user_not_found()
            });
        }
        self.ties_changed(me, other).await;
        self.relationship_with(me, other).await
    }

    /// `unfollow_user`.
    pub async fn unfollow_user(
        &self,
        ctx: &RequestCtx<Principal>,
        other: Uuid,
    ) -> Result<(), ServiceError> {
        let me = ctx.principal.user_id;
        if other == me {
            return Err(not_yourself(Location::Path));
        }
        self.visible_ties(me, other).await?;
        let jobs = PruneFeed::reader(me, other, &ctx.trace);
        self.db.unfollow(me, other, &jobs).await.map_err(db_error)?;
        self.ties_changed(me, other).await;
        Ok(())
    }

    /// `block_user`.
    pub async fn block_user(
        &self,
        ctx: &RequestCtx<Principal>,
        other: Uuid,
    ) -> Result<(), ServiceError> {
        let me = ctx.principal.user_id;
        if other == me {
            return Err(not_yourself(Location::Path));
        }
        // Blocking someone who blocks the caller is allowed (and reveals nothing): both
        // blocks then stand.
        self.db
            .get_user(other, ReadPolicy::ForUser(me))
            .await
            .map_err(db_error)?;
        let jobs = PruneFeed::between(me, other, &ctx.trace);
        self.db.block(me, other, &jobs).await.map_err(db_error)?;
        self.ties_changed(me, other).await;
        Ok(())
    }

    /// `unblock_user`.
    pub async fn unblock_user(
        &self,
        ctx: &RequestCtx<Principal>,
        other: Uuid,
    ) -> Result<(), ServiceError> {
        let me = ctx.principal.user_id;
        if other == me {
            return Err(not_yourself(Location::Path));
        }
        self.db
            .get_user(other, ReadPolicy::ForUser(me))
            .await
            .map_err(db_error)?;
        self.db.unblock(me, other).await.map_err(db_error)?;
        self.ties_changed(me, other).await;
        Ok(())
    }
}
