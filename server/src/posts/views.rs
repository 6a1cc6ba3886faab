//! The contract's view of posts: each with its author's summary, its counts and whether the
//! reader likes it — two queries for a whole page, whatever its size.

use std::collections::HashMap;

use agora_api::rt::ServiceError;
use agora_api::types;
use agora_db::posts::{Post, Visibility};
use agora_db::users::UserSummary;
use agora_db::{Db, ReadPolicy};
use uuid::Uuid;

use crate::db_errors::{ResourceKind, service_error};
use crate::notifications::views::summary;
use crate::paging::stored;

/// The contract's visibility.
pub(crate) fn visibility(v: Visibility) -> types::PostVisibility {
    match v {
        Visibility::Public => types::PostVisibility::Public,
        Visibility::Friends => types::PostVisibility::Friends,
    }
}

/// The stored visibility.
pub(crate) fn stored_visibility(v: types::PostVisibility) -> Visibility {
    match v {
        types::PostVisibility::Public => Visibility::Public,
        types::PostVisibility::Friends => Visibility::Friends,
    }
}

/// `posts` as `reader` sees them, in the same order. A post whose author's account is gone is
/// left out.
pub async fn render_posts(
    db: &Db,
    reader: Uuid,
    posts: Vec<Post>,
) -> Result<Vec<types::Post>, ServiceError> {
    let policy = ReadPolicy::ForUser(reader);
    let mut authors: Vec<Uuid> = posts.iter().map(|p| p.author_id).collect();
    authors.sort_unstable();
    authors.dedup();
    let users: HashMap<Uuid, UserSummary> = db
        .user_summaries(&authors, policy)
        .await
        .map_err(|e| service_error(e, ResourceKind::User))?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let ids: Vec<Uuid> = posts.iter().map(|p| p.id).collect();
    let liked = db
        .liked_posts(reader, &ids, policy)
        .await
        .map_err(|e| service_error(e, ResourceKind::Post))?;
    let mut out = Vec::with_capacity(posts.len());
    for post in posts {
        let Some(author) = users.get(&post.author_id) else {
            continue;
        };
        out.push(types::Post {
            id: post.id,
            author: summary(author)?,
            body: stored(post.body, "post body")?,
            visibility: visibility(post.visibility),
            like_count: post.like_count,
            comment_count: post.comment_count,
            liked_by_me: liked.contains(&post.id),
            created_at: post.created_at,
            edited_at: post.edited_at,
        });
    }
    Ok(out)
}

/// One post as `reader` sees it.
pub async fn render_post(db: &Db, reader: Uuid, post: Post) -> Result<types::Post, ServiceError> {
    render_posts(db, reader, vec![post])
        .await?
        .pop()
        .ok_or_else(|| service_error(agora_db::DbError::NotFound, ResourceKind::Post))
}
