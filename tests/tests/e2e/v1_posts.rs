//! `/v1/posts`, `/v1/posts/{id}`, likes and comments, `/v1/users/{id}/posts`: who may read
//! and change a post, idempotent creates, exact counters.

use agora_client::types::{CommentCreate, PostCreate, PostUpdate, PostVisibility};

use crate::e2e_both_backends;
use crate::support::{create_post as post, error_body, status, wait_for_notifications};

e2e_both_backends!(
    friends_only_posts_are_for_current_friends,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let eve = app.register("eve").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);
        let e = app.client_with_token(&eve.tokens.access_token);
        app.befriend(&ann, &bob).await;

        let public = post(&a, "hello world", PostVisibility::Public).await;
        let private = post(&a, "friends only", PostVisibility::Friends).await;
        assert_eq!(public.author.id, ann.user.id);
        assert_eq!(
            (public.like_count, public.comment_count, public.liked_by_me),
            (0, 0, false)
        );

        assert_eq!(status(&b.get_post().post_id(private.id).send().await), 200);
        assert_eq!(status(&e.get_post().post_id(public.id).send().await), 200);
        let (code, body) = error_body(e.get_post().post_id(private.id).send().await);
        assert_eq!((code, body.error_code.as_str()), (404, "not_found"));
        let timeline = |c: agora_client::Client| async move {
            c.list_user_posts()
                .user_id(ann.user.id)
                .send()
                .await
                .expect("timeline")
                .into_inner()
                .items
                .into_iter()
                .map(|p| p.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(timeline(b.clone()).await, vec![private.id, public.id]);
        assert_eq!(timeline(e.clone()).await, vec![public.id]);
        assert_eq!(timeline(a.clone()).await, vec![private.id, public.id]);
        // Likes and comments of a post one cannot see are as missing as the post.
        assert_eq!(status(&e.like_post().post_id(private.id).send().await), 404);
        assert_eq!(
            status(&e.list_comments().post_id(private.id).send().await),
            404
        );

        // The moment the friendship ends, so does the access.
        assert_eq!(
            status(&a.remove_friend().user_id(bob.user.id).send().await),
            204
        );
        assert_eq!(status(&b.get_post().post_id(private.id).send().await), 404);
        assert_eq!(timeline(b.clone()).await, vec![public.id]);
    }
);

e2e_both_backends!(
    only_the_author_edits_and_the_author_or_an_admin_deletes,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let root = app.register("root").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);
        let admin = app.grant_admin("root", &root.tokens.access_token).await;

        let p = post(&a, "first draft", PostVisibility::Public).await;
        assert!(p.edited_at.is_none());
        let edited = a
            .update_post()
            .post_id(p.id)
            .body(PostUpdate::builder().body(Some("second draft".try_into().expect("body"))))
            .send()
            .await
            .expect("edit")
            .into_inner();
        assert_eq!(edited.body.as_str(), "second draft");
        assert_eq!(
            edited.visibility,
            PostVisibility::Public,
            "absent fields keep their value"
        );
        assert!(edited.edited_at.is_some());
        let (code, body) = error_body(
            b.update_post()
                .post_id(p.id)
                .body(PostUpdate::builder().body(Some("mine now".try_into().expect("body"))))
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (403, "forbidden"));
        let (code, _) = error_body(b.delete_post().post_id(p.id).send().await);
        assert_eq!(code, 403);
        assert_eq!(
            a.get_post()
                .post_id(p.id)
                .send()
                .await
                .expect("kept")
                .into_inner()
                .body
                .as_str(),
            "second draft"
        );

        b.like_post().post_id(p.id).send().await.expect("like");
        b.create_comment()
            .post_id(p.id)
            .body(CommentCreate::builder().body("nice"))
            .send()
            .await
            .expect("comment");
        // An admin's deletion of someone else's post is audited.
        assert_eq!(status(&admin.delete_post().post_id(p.id).send().await), 204);
        assert_eq!(status(&a.get_post().post_id(p.id).send().await), 404);
        assert_eq!(status(&a.delete_post().post_id(p.id).send().await), 404);
        let audit = admin
            .list_audit_events()
            .send()
            .await
            .expect("audit")
            .into_inner();
        assert!(
            audit
                .items
                .iter()
                .any(|e| e.action.as_str() == "content_moderated"
                    && e.target.as_deref() == Some(format!("post:{}", p.id).as_str())),
            "the moderation is in the audit log"
        );
        // The purge job removes the row and what hung on it, in the background.
        app.wait_for_queue("fanout").await;
        let db = app.database().await;
        assert!(
            matches!(
                db.post_idempotency_key(p.id).await,
                Err(agora_db::DbError::NotFound)
            ),
            "the deleted post's row was purged"
        );
        let own = post(&a, "mine", PostVisibility::Friends).await;
        assert_eq!(status(&a.delete_post().post_id(own.id).send().await), 204);
        assert!(
            a.list_user_posts()
                .user_id(ann.user.id)
                .send()
                .await
                .expect("timeline")
                .into_inner()
                .items
                .is_empty()
        );
    }
);

e2e_both_backends!(
    a_retried_create_returns_the_first_post,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let create = |body: &'static str| {
            a.create_post()
                .idempotency_key("retry-key-0001")
                .body(PostCreate::builder().body(body))
                .send()
        };
        let first = create("once").await.expect("first").into_inner();
        let retry = create("once").await.expect("retry").into_inner();
        assert_eq!(first.id, retry.id);
        assert_eq!(
            first.visibility,
            PostVisibility::Public,
            "the default visibility"
        );
        let (code, body) = error_body(create("something else").await);
        assert_eq!(
            (code, body.error_code.as_str()),
            (409, "idempotency_key_reused")
        );
        let posts = a
            .list_user_posts()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("timeline")
            .into_inner();
        assert_eq!(posts.items.len(), 1, "no duplicate");
        // Concurrent retries of one key: still one post.
        let racing: Vec<_> = futures::future::join_all((0..6).map(|_| {
            a.create_post()
                .idempotency_key("retry-key-0002")
                .body(PostCreate::builder().body("raced"))
                .send()
        }))
        .await;
        let ids: std::collections::HashSet<_> = racing
            .into_iter()
            .map(|r| r.expect("created").into_inner().id)
            .collect();
        assert_eq!(ids.len(), 1, "{ids:?}");
    }
);

e2e_both_backends!(
    bad_posts_and_comments_are_refused_and_write_nothing,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let token = ann.tokens.access_token.as_str();
        for (body, pointer) in [
            (serde_json::json!({"body": ""}), "/body"),
            (serde_json::json!({"body": "   "}), "/body"),
            (serde_json::json!({"body": "x".repeat(5001)}), "/body"),
            (
                serde_json::json!({"body": "ok", "visibility": "secret"}),
                "/visibility",
            ),
            (serde_json::json!({"body": "ok", "extra": 1}), "/extra"),
        ] {
            let (code, json) = app
                .raw_as(
                    Some(token),
                    reqwest::Method::POST,
                    "/v1/posts",
                    body.clone(),
                )
                .await;
            assert_eq!(
                (code, json["error_code"].as_str()),
                (400, Some("invalid_request")),
                "{body}"
            );
            assert_eq!(
                json["details"][0]["pointer"].as_str(),
                Some(pointer),
                "{json}"
            );
        }
        // 5,000 characters (not bytes) is the limit.
        let (code, _) = app
            .raw_as(
                Some(token),
                reqwest::Method::POST,
                "/v1/posts",
                serde_json::json!({"body": "é".repeat(5000)}),
            )
            .await;
        assert_eq!(code, 201);
        let a = app.client_with_token(token);
        let posts = a
            .list_user_posts()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("timeline")
            .into_inner();
        assert_eq!(posts.items.len(), 1, "only the valid post was written");
        let id = posts.items[0].id;
        let (code, json) = app
            .raw_as(
                Some(token),
                reqwest::Method::POST,
                &format!("/v1/posts/{id}/comments"),
                serde_json::json!({"body": "y".repeat(2001)}),
            )
            .await;
        assert_eq!(
            (code, json["details"][0]["pointer"].as_str()),
            (400, Some("/body"))
        );
        let p = a
            .get_post()
            .post_id(id)
            .send()
            .await
            .expect("post")
            .into_inner();
        assert_eq!(p.comment_count, 0);
        assert_eq!(
            status(&a.get_post().post_id(uuid::Uuid::now_v7()).send().await),
            404
        );
        let (code, _) = error_body(
            a.list_user_posts()
                .user_id(ann.user.id)
                .page_token("p1.nope")
                .send()
                .await,
        );
        assert_eq!(code, 400);
    }
);

e2e_both_backends!(
    likes_are_idempotent_exact_under_concurrency_and_notify_once,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let p = post(&a, "like me", PostVisibility::Public).await;
        let mut fans = Vec::new();
        for i in 0..6 {
            fans.push(app.register(&format!("fan{i}")).await);
        }
        let clients: Vec<_> = fans
            .iter()
            .map(|f| app.client_with_token(&f.tokens.access_token))
            .collect();
        // Every fan likes twice, all at once.
        let likes = futures::future::join_all(clients.iter().flat_map(|c| {
            [
                c.like_post().post_id(p.id).send(),
                c.like_post().post_id(p.id).send(),
            ]
        }))
        .await;
        assert!(likes.iter().all(|r| r.is_ok()), "{likes:?}");
        let seen = clients[0]
            .get_post()
            .post_id(p.id)
            .send()
            .await
            .expect("post")
            .into_inner();
        assert_eq!(seen.like_count, 6);
        assert!(seen.liked_by_me);
        let likers = a
            .list_post_likes()
            .post_id(p.id)
            .send()
            .await
            .expect("likes")
            .into_inner();
        let liker_ids: std::collections::HashSet<_> =
            likers.items.iter().map(|l| l.user.id).collect();
        let fan_ids: std::collections::HashSet<_> = fans.iter().map(|f| f.user.id).collect();
        assert_eq!(liker_ids, fan_ids);

        for _ in 0..2 {
            let state = clients[0]
                .unlike_post()
                .post_id(p.id)
                .send()
                .await
                .expect("unlike")
                .into_inner();
            assert_eq!(
                (state.liked, state.like_count),
                (false, 5),
                "idempotent, never below the truth"
            );
        }
        // Liking one's own post counts, and notifies nobody.
        a.like_post().post_id(p.id).send().await.expect("own like");
        app.wait_for_queue("notify").await;
        let notes = wait_for_notifications(&a, 1).await;
        let liked: Vec<_> = notes
            .iter()
            .filter(|n| serde_json::to_value(n.kind).expect("json") == "post_liked")
            .collect();
        assert_eq!(liked.len(), 1, "likes of one post coalesce: {notes:?}");
        assert_eq!(
            liked[0].actor_count, 6,
            "six distinct fans (the unlike does not uncount, the author is not one)"
        );
    }
);

e2e_both_backends!(
    comments_read_oldest_first_and_are_deleted_by_those_allowed,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let cat = app.register("cat").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);
        let c = app.client_with_token(&cat.tokens.access_token);
        let p = post(&a, "discuss", PostVisibility::Public).await;
        let comment = |client: agora_client::Client, text: &'static str| async move {
            client
                .create_comment()
                .post_id(p.id)
                .body(CommentCreate::builder().body(text))
                .send()
                .await
        };
        let first = comment(b.clone(), "first!").await.expect("b").into_inner();
        let second = comment(c.clone(), "second").await.expect("c").into_inner();
        let third = comment(a.clone(), "thanks").await.expect("a").into_inner();
        let listed = c
            .list_comments()
            .post_id(p.id)
            .send()
            .await
            .expect("list")
            .into_inner();
        let ids: Vec<_> = listed.items.iter().map(|x| x.id).collect();
        assert_eq!(ids, vec![first.id, second.id, third.id], "oldest first");
        assert_eq!(
            a.get_post()
                .post_id(p.id)
                .send()
                .await
                .expect("post")
                .into_inner()
                .comment_count,
            3
        );

        // A stranger cannot delete bob's comment; its author and the post's author can.
        let (code, _) = error_body(
            c.delete_comment()
                .post_id(p.id)
                .comment_id(first.id)
                .send()
                .await,
        );
        assert_eq!(code, 403);
        assert_eq!(
            status(
                &a.delete_comment()
                    .post_id(p.id)
                    .comment_id(first.id)
                    .send()
                    .await
            ),
            204
        );
        assert_eq!(
            status(
                &c.delete_comment()
                    .post_id(p.id)
                    .comment_id(second.id)
                    .send()
                    .await
            ),
            204
        );
        assert_eq!(
            status(
                &a.delete_comment()
                    .post_id(p.id)
                    .comment_id(second.id)
                    .send()
                    .await
            ),
            404
        );
        assert_eq!(
            a.get_post()
                .post_id(p.id)
                .send()
                .await
                .expect("post")
                .into_inner()
                .comment_count,
            1
        );

        // The author heard of both others' comments, not of their own.
        app.wait_for_queue("notify").await;
        let notes = wait_for_notifications(&a, 2).await;
        let commented = notes
            .iter()
            .filter(|n| serde_json::to_value(n.kind).expect("json") == "post_commented")
            .count();
        assert_eq!(commented, 2);

        // Blocks: the blocker may not comment on or like the blocked user's post; comments of a
        // user who blocks the reader are left out.
        assert_eq!(
            status(&a.block_user().user_id(cat.user.id).send().await),
            204
        );
        assert_eq!(
            status(&comment(a.clone(), "still mine").await),
            201,
            "her own post, whatever she blocks"
        );
        let cats = post(&c, "cat's post", PostVisibility::Public).await;
        assert_eq!(status(&c.get_post().post_id(cats.id).send().await), 200);
        let (code, body) = error_body(a.like_post().post_id(cats.id).send().await);
        assert_eq!((code, body.error_code.as_str()), (409, "user_blocked"));
        assert_eq!(
            status(&c.like_post().post_id(p.id).send().await),
            404,
            "ann blocks cat: her post is hidden from cat"
        );
    }
);
