//! Posts, likes and comments — the rules behind the `posts` operations.
//!
//! Who may see a post is decided here, at read time, for every operation that touches one: a
//! deleted post, a friends-only post of someone who is not (or no longer) the caller's friend,
//! and any post of a user who blocks the caller are all answered 404 `not_found`, the answer for
//! a post that does not exist. Likes and comments notify the author through the jobs pipeline,
//! in the transaction of the write.

pub mod views;

use agora_api::rt::{ErrorCode, Principal, RequestCtx, ServiceError};
use agora_api::types;
use agora_db::audit::{AuditAction, AuditOutcome};
use agora_db::notifications::{NotificationKind, SubjectType};
use agora_db::posts::{Created, NewPost, Post, PostChanges, Visibility};
use agora_db::users::Role;
use agora_db::{Db, ReadPolicy};
use uuid::Uuid;

use crate::db_errors::{ResourceKind, service_error};
use crate::feed::FeedPages;
use crate::feed::jobs::{FanoutPost, PurgePost};
use crate::identity::Identity;
use crate::notifications::NotificationEvent;
use crate::notifications::views::summary;
use crate::paging::{page_size, parse_id_token, split_page, stored};
use crate::social::caller_blocks;
use views::{render_post, render_posts, stored_visibility};

/// Page tokens: `p1.<post id>` (timelines), `m1.<comment id>`, `l1.<like id>`.
const POST_TOKEN: &str = "p1.";
const COMMENT_TOKEN: &str = "m1.";
const LIKE_TOKEN: &str = "l1.";

fn post_not_found() -> ServiceError {
    service_error(agora_db::DbError::NotFound, ResourceKind::Post)
}

fn db_post(e: agora_db::DbError) -> ServiceError {
    service_error(e, ResourceKind::Post)
}

fn db_comment(e: agora_db::DbError) -> ServiceError {
    service_error(e, ResourceKind::Comment)
}

/// A post the caller may see, and how the caller relates to its author.
struct Visible {
    post: Post,
    /// The caller blocks the author (they may read, not interact).
    caller_blocks_author: bool,
}

/// The posts operations; cheap to share.
#[derive(Clone)]
pub struct Posts {
    db: Db,
    identity: Identity,
    /// Cached feed pages this service's writes make stale.
    pages: FeedPages,
}

impl std::fmt::Debug for Posts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Posts").finish_non_exhaustive()
    }
}

impl Posts {
    /// The service (identity audits moderation).
    pub fn new(db: Db, identity: Identity, pages: FeedPages) -> Self {
        Posts {
            db,
            identity,
            pages,
        }
    }

    /// Post `id` if `me` may see it now, else 404.
    async fn visible(&self, me: Uuid, id: Uuid) -> Result<Visible, ServiceError> {
        let policy = ReadPolicy::ForUser(me);
        let post = self.db.get_post(id, policy).await.map_err(db_post)?;
        if post.author_id == me {
            return Ok(Visible {
                post,
                caller_blocks_author: false,
            });
        }
        let ties = self
            .db
            .ties(me, post.author_id, policy)
            .await
            .map_err(db_post)?;
        if ties.blocked_by || (post.visibility == Visibility::Friends && !ties.friends) {
            return Err(post_not_found());
        }
        Ok(Visible {
            post,
            caller_blocks_author: ties.blocking,
        })
    }

    async fn is_admin(&self, me: Uuid) -> Result<bool, ServiceError> {
        let user = self
            .db
            .get_user(me, ReadPolicy::Primary)
            .await
            .map_err(|e| service_error(e, ResourceKind::User))?;
        Ok(user.role.grants(Role::Admin))
    }

    async fn audit_moderation(&self, ctx: &RequestCtx<Principal>, target: String) {
        self.identity
            .audit(
                ctx,
                Some(ctx.principal.user_id),
                AuditAction::ContentModerated,
                Some(target),
                AuditOutcome::Success,
            )
            .await;
    }

    /// `create_post`.
    pub async fn create_post(
        &self,
        ctx: &RequestCtx<Principal>,
        headers: types::CreatePostHeaders,
        body: types::PostCreate,
    ) -> Result<types::Post, ServiceError> {
        let me = ctx.principal.user_id;
        let new = NewPost {
            author_id: me,
            body: body.body.to_string(),
            visibility: body
                .visibility
                .map_or(Visibility::Public, stored_visibility),
            idempotency_key: headers.idempotency_key.map(|k| k.to_string()),
        };
        let created = self
            .db
            .create_post(&new, |id| FanoutPost::job(id, &ctx.trace))
            .await
            .map_err(db_post)?;
        let post = match created {
            Created::New(post) => {
                // The author's own posts are merged into their feed at read time.
                self.pages.changed_for(&[me]).await;
                post
            }
            Created::Existing(post) => {
                if post.body != new.body || post.visibility != new.visibility {
                    return Err(ServiceError::Conflict {
                        code: ErrorCode::IdempotencyKeyReused,
                        message: "this Idempotency-Key was used for a different post".into(),
                    });
                }
                post
            }
        };
        render_post(&self.db, me, post).await
    }

    /// `get_post`.
    pub async fn get_post(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
    ) -> Result<types::Post, ServiceError> {
        let me = ctx.principal.user_id;
        let visible = self.visible(me, id).await?;
        render_post(&self.db, me, visible.post).await
    }

    /// `update_post`.
    pub async fn update_post(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
        body: types::PostUpdate,
    ) -> Result<types::Post, ServiceError> {
        let me = ctx.principal.user_id;
        let visible = self.visible(me, id).await?;
        if visible.post.author_id != me {
            return Err(ServiceError::Forbidden {
                message: "only the author may edit a post".into(),
            });
        }
        let changes = PostChanges {
            body: body.body.map(|b| b.to_string()),
            visibility: body.visibility.map(stored_visibility),
        };
        let post = self
            .db
            .update_post(id, me, &changes)
            .await
            .map_err(db_post)?;
        self.pages.changed_for_everyone().await;
        render_post(&self.db, me, post).await
    }

    /// `delete_post`: the author, or an admin (audited).
    pub async fn delete_post(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        let me = ctx.principal.user_id;
        let visible = self.visible(me, id).await?;
        let moderated = visible.post.author_id != me;
        if moderated && !self.is_admin(me).await? {
            return Err(ServiceError::Forbidden {
                message: "only the author or an admin may delete a post".into(),
            });
        }
        self.db
            .delete_post(id, me, &PurgePost::job(id, &ctx.trace))
            .await
            .map_err(db_post)?;
        self.pages.changed_for_everyone().await;
        if moderated {
            self.audit_moderation(ctx, format!("post:{id}")).await;
        }
        Ok(())
    }

    /// `list_user_posts`.
    pub async fn list_user_posts(
        &self,
        ctx: &RequestCtx<Principal>,
        author: Uuid,
        query: types::ListUserPostsQuery,
    ) -> Result<types::PostResultsPage, ServiceError> {
        let me = ctx.principal.user_id;
        let size = page_size(query.limit);
        let before = query
            .page_token
            .as_deref()
            .map(|t| parse_id_token(t, POST_TOKEN))
            .transpose()?;
        let include_friends_only = if author == me {
            true
        } else {
            crate::social::visible_ties(&self.db, me, author)
                .await?
                .friends
        };
        let posts = self
            .db
            .list_user_posts(
                author,
                include_friends_only,
                before,
                size + 1,
                ReadPolicy::ForUser(me),
            )
            .await
            .map_err(db_post)?;
        let (posts, next_page) = split_page(posts, size, |p| format!("{POST_TOKEN}{}", p.id));
        let items = render_posts(&self.db, me, posts).await?;
        Ok(types::PostResultsPage { items, next_page })
    }

    /// `like_post`.
    pub async fn like_post(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
    ) -> Result<types::LikeState, ServiceError> {
        let me = ctx.principal.user_id;
        let visible = self.visible(me, id).await?;
        if visible.caller_blocks_author {
            return Err(caller_blocks());
        }
        let author = visible.post.author_id;
        let jobs = if author == me {
            Vec::new()
        } else {
            NotificationEvent::new(author, NotificationKind::PostLiked)
                .actor(me)
                .subject(SubjectType::Post, id)
                .jobs(&ctx.trace)
        };
        let (_, like_count) = self.db.like_post(id, me, &jobs).await.map_err(db_post)?;
        // `liked_by_me` in the liker's cached pages.
        self.pages.changed_for(&[me]).await;
        Ok(types::LikeState {
            post_id: id,
            liked: true,
            like_count,
        })
    }

    /// `unlike_post`.
    pub async fn unlike_post(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
    ) -> Result<types::LikeState, ServiceError> {
        let me = ctx.principal.user_id;
        self.visible(me, id).await?;
        let like_count = self.db.unlike_post(id, me).await.map_err(db_post)?;
        self.pages.changed_for(&[me]).await;
        Ok(types::LikeState {
            post_id: id,
            liked: false,
            like_count,
        })
    }

    /// `list_post_likes`.
    pub async fn list_post_likes(
        &self,
        ctx: &RequestCtx<Principal>,
        id: Uuid,
        query: types::ListPostLikesQuery,
    ) -> Result<types::UserConnectionResultsPage, ServiceError> {
        let me = ctx.principal.user_id;
        self.visible(me, id).await?;
        let size = page_size(query.limit);
        let after = query
            .page_token
            .as_deref()
            .map(|t| parse_id_token(t, LIKE_TOKEN))
            .transpose()?;
        let rows = self
            .db
            .list_post_likes(id, after, size + 1, ReadPolicy::ForUser(me))
            .await
            .map_err(db_post)?;
        let (rows, next_page) = split_page(rows, size, |l| format!("{LIKE_TOKEN}{}", l.id));
        let items = rows
            .iter()
            .map(|l| {
                Ok(types::UserConnection {
                    user: summary(&l.user)?,
                    since: l.since,
                })
            })
            .collect::<Result<_, ServiceError>>()?;
        Ok(types::UserConnectionResultsPage { items, next_page })
    }

    /// `create_comment`.
    pub async fn create_comment(
        &self,
        ctx: &RequestCtx<Principal>,
        post: Uuid,
        body: types::CommentCreate,
    ) -> Result<types::Comment, ServiceError> {
        let me = ctx.principal.user_id;
        let visible = self.visible(me, post).await?;
        if visible.caller_blocks_author {
            return Err(caller_blocks());
        }
        let author = visible.post.author_id;
        let comment = self
            .db
            .create_comment(post, me, &body.body, |comment| {
                if author == me {
                    return Vec::new();
                }
                NotificationEvent::new(author, NotificationKind::PostCommented)
                    .actor(me)
                    .subject(SubjectType::Post, post)
                    .detail("comment_id", comment.to_string())
                    .jobs(&ctx.trace)
            })
            .await
            .map_err(db_post)?;
        comment_view(comment)
    }

    /// `list_comments`.
    pub async fn list_comments(
        &self,
        ctx: &RequestCtx<Principal>,
        post: Uuid,
        query: types::ListCommentsQuery,
    ) -> Result<types::CommentResultsPage, ServiceError> {
        let me = ctx.principal.user_id;
        self.visible(me, post).await?;
        let size = page_size(query.limit);
        let after = query
            .page_token
            .as_deref()
            .map(|t| parse_id_token(t, COMMENT_TOKEN))
            .transpose()?;
        let rows = self
            .db
            .list_comments(post, me, after, size + 1, ReadPolicy::ForUser(me))
            .await
            .map_err(db_comment)?;
        let (rows, next_page) = split_page(rows, size, |c| format!("{COMMENT_TOKEN}{}", c.id));
        let items = rows
            .into_iter()
            .map(comment_view)
            .collect::<Result<_, _>>()?;
        Ok(types::CommentResultsPage { items, next_page })
    }

    /// `delete_comment`: its author, the post's author, or an admin (audited).
    pub async fn delete_comment(
        &self,
        ctx: &RequestCtx<Principal>,
        post: Uuid,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        let me = ctx.principal.user_id;
        let visible = self.visible(me, post).await?;
        let comment = self
            .db
            .get_comment(post, id, ReadPolicy::ForUser(me))
            .await
            .map_err(db_comment)?;
        let moderated = comment.author.id != me && visible.post.author_id != me;
        if moderated && !self.is_admin(me).await? {
            return Err(ServiceError::Forbidden {
                message: "only the comment's author, the post's author or an admin may delete it"
                    .into(),
            });
        }
        self.db
            .delete_comment(post, id, me)
            .await
            .map_err(db_comment)?;
        if moderated {
            self.audit_moderation(ctx, format!("comment:{id}")).await;
        }
        Ok(())
    }
}

fn comment_view(c: agora_db::posts::Comment) -> Result<types::Comment, ServiceError> {
    Ok(types::Comment {
        id: c.id,
        post_id: c.post_id,
        author: summary(&c.author)?,
        body: stored(c.body, "comment body")?,
        created_at: c.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use views::visibility;

    #[test]
    fn visibilities_round_trip() {
        for v in [Visibility::Public, Visibility::Friends] {
            assert_eq!(stored_visibility(visibility(v)), v);
        }
    }
}
