//! `/v1/friend-requests`, `/v1/friends`, `/v1/users/{id}/{friends,followers,following,
//! relationship,follow}` and `/v1/me/blocks`: the social graph and what a block hides.

use agora_client::types::{FriendRequestCreate, FriendRequestDirection, RelationshipStatus};

use crate::e2e_both_backends;
use crate::support::{error_body, status, wait_for_notifications};

fn kinds(items: &[agora_client::types::Notification]) -> Vec<String> {
    items
        .iter()
        .map(|n| {
            serde_json::to_value(n.kind)
                .expect("json")
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

e2e_both_backends!(
    a_friend_request_is_sent_listed_accepted_and_ended,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);

        let sent = a
            .send_friend_request()
            .body(FriendRequestCreate {
                user_id: bob.user.id,
            })
            .send()
            .await
            .expect("send")
            .into_inner();
        assert_eq!(sent.status, RelationshipStatus::RequestSent);
        let request_id = sent.request_id.expect("the pending request");
        // Asking again changes nothing and answers the same request.
        let again = a
            .send_friend_request()
            .body(FriendRequestCreate {
                user_id: bob.user.id,
            })
            .send()
            .await
            .expect("send again")
            .into_inner();
        assert_eq!(again.request_id, Some(request_id));

        let incoming = b
            .list_friend_requests()
            .send()
            .await
            .expect("incoming")
            .into_inner();
        assert_eq!(incoming.items.len(), 1);
        assert_eq!(incoming.items[0].id, request_id);
        assert_eq!(incoming.items[0].from.id, ann.user.id);
        let outgoing = a
            .list_friend_requests()
            .direction(FriendRequestDirection::Outgoing)
            .send()
            .await
            .expect("outgoing")
            .into_inner();
        assert_eq!(outgoing.items[0].to.id, bob.user.id);
        let seen_by_bob = b
            .get_relationship()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("rel")
            .into_inner();
        assert_eq!(seen_by_bob.status, RelationshipStatus::RequestReceived);
        assert_eq!(seen_by_bob.request_id, Some(request_id));

        // Only the recipient can accept.
        assert_eq!(
            status(
                &a.accept_friend_request()
                    .request_id(request_id)
                    .send()
                    .await
            ),
            404
        );
        let accepted = b
            .accept_friend_request()
            .request_id(request_id)
            .send()
            .await
            .expect("accept")
            .into_inner();
        assert_eq!(accepted.status, RelationshipStatus::Friends);
        assert_eq!(
            status(
                &b.accept_friend_request()
                    .request_id(request_id)
                    .send()
                    .await
            ),
            404
        );

        let friends = a
            .list_friends()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("friends")
            .into_inner();
        assert_eq!(friends.items.len(), 1);
        assert_eq!(friends.items[0].user.id, bob.user.id);
        let (code, body) = error_body(
            a.send_friend_request()
                .body(FriendRequestCreate {
                    user_id: bob.user.id,
                })
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (409, "already_friends"));

        // Both sides were told, by the jobs pipeline.
        assert!(kinds(&wait_for_notifications(&b, 1).await).contains(&"friend_request".to_owned()));
        assert!(
            kinds(&wait_for_notifications(&a, 1).await).contains(&"friend_accepted".to_owned())
        );

        assert_eq!(
            status(&b.remove_friend().user_id(ann.user.id).send().await),
            204
        );
        let after = a
            .get_relationship()
            .user_id(bob.user.id)
            .send()
            .await
            .expect("rel")
            .into_inner();
        assert_eq!(after.status, RelationshipStatus::None);
        assert_eq!(
            status(&b.remove_friend().user_id(ann.user.id).send().await),
            404
        );
        let friends = a
            .list_friends()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("friends")
            .into_inner();
        assert!(friends.items.is_empty());
    }
);

e2e_both_backends!(
    asking_someone_who_asked_accepts_and_requests_can_be_declined_or_cancelled,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let cat = app.register("cat").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);
        let c = app.client_with_token(&cat.tokens.access_token);

        a.send_friend_request()
            .body(FriendRequestCreate {
                user_id: bob.user.id,
            })
            .send()
            .await
            .expect("a→b");
        let mutual = b
            .send_friend_request()
            .body(FriendRequestCreate {
                user_id: ann.user.id,
            })
            .send()
            .await
            .expect("b→a")
            .into_inner();
        assert_eq!(
            mutual.status,
            RelationshipStatus::Friends,
            "the reverse request accepted"
        );
        assert!(
            b.list_friend_requests()
                .send()
                .await
                .expect("list")
                .into_inner()
                .items
                .is_empty()
        );

        let declined = c
            .send_friend_request()
            .body(FriendRequestCreate {
                user_id: ann.user.id,
            })
            .send()
            .await
            .expect("c→a")
            .into_inner()
            .request_id
            .expect("pending");
        // Neither the sender nor a stranger can decline it; the recipient can, once.
        assert_eq!(
            status(&c.decline_friend_request().request_id(declined).send().await),
            404
        );
        assert_eq!(
            status(&b.decline_friend_request().request_id(declined).send().await),
            404
        );
        assert_eq!(
            status(&a.decline_friend_request().request_id(declined).send().await),
            204
        );
        assert_eq!(
            status(&a.decline_friend_request().request_id(declined).send().await),
            404
        );

        let cancelled = c
            .send_friend_request()
            .body(FriendRequestCreate {
                user_id: bob.user.id,
            })
            .send()
            .await
            .expect("c→b")
            .into_inner()
            .request_id
            .expect("pending");
        assert_eq!(
            status(&b.cancel_friend_request().request_id(cancelled).send().await),
            404
        );
        assert_eq!(
            status(&c.cancel_friend_request().request_id(cancelled).send().await),
            204
        );
        let rel = b
            .get_relationship()
            .user_id(cat.user.id)
            .send()
            .await
            .expect("rel")
            .into_inner();
        assert_eq!(rel.status, RelationshipStatus::None);

        // Bad targets.
        let (code, body) = error_body(
            a.send_friend_request()
                .body(FriendRequestCreate {
                    user_id: ann.user.id,
                })
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (400, "invalid_request"));
        assert_eq!(
            body.details.first().map(|d| d.pointer.as_str()),
            Some("/user_id")
        );
        let (code, body) = error_body(
            a.send_friend_request()
                .body(FriendRequestCreate {
                    user_id: uuid::Uuid::now_v7(),
                })
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (404, "not_found"));
        assert_eq!(
            status(&a.get_relationship().user_id(ann.user.id).send().await),
            400
        );
        let (code, _) = error_body(a.list_friend_requests().page_token("forged").send().await);
        assert_eq!(code, 400);
    }
);

e2e_both_backends!(
    follows_are_one_way_idempotent_and_listed,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let cat = app.register("cat").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let c = app.client_with_token(&cat.tokens.access_token);

        for _ in 0..2 {
            let rel = a
                .follow_user()
                .user_id(bob.user.id)
                .send()
                .await
                .expect("follow")
                .into_inner();
            assert!(rel.following && !rel.followed_by);
            assert_eq!(
                rel.status,
                RelationshipStatus::None,
                "a follow is not a friendship"
            );
        }
        c.follow_user()
            .user_id(bob.user.id)
            .send()
            .await
            .expect("follow");
        let followers = a
            .list_followers()
            .user_id(bob.user.id)
            .send()
            .await
            .expect("followers")
            .into_inner();
        let ids: Vec<_> = followers.items.iter().map(|f| f.user.id).collect();
        assert_eq!(ids, vec![cat.user.id, ann.user.id], "newest follow first");
        // Pages of one.
        let first = a
            .list_followers()
            .user_id(bob.user.id)
            .limit(std::num::NonZeroU32::new(1).expect("1"))
            .send()
            .await
            .expect("p1")
            .into_inner();
        let token = first.next_page.expect("a second page");
        let second = a
            .list_followers()
            .user_id(bob.user.id)
            .limit(std::num::NonZeroU32::new(1).expect("1"))
            .page_token(token)
            .send()
            .await
            .expect("p2")
            .into_inner();
        assert_eq!(
            (first.items[0].user.id, second.items[0].user.id),
            (cat.user.id, ann.user.id)
        );
        assert!(second.next_page.is_none());
        let following = a
            .list_following()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("following")
            .into_inner();
        assert_eq!(following.items[0].user.id, bob.user.id);

        for _ in 0..2 {
            assert_eq!(
                status(&a.unfollow_user().user_id(bob.user.id).send().await),
                204
            );
        }
        let rel = a
            .get_relationship()
            .user_id(bob.user.id)
            .send()
            .await
            .expect("rel")
            .into_inner();
        assert!(!rel.following);
        assert_eq!(
            status(&a.follow_user().user_id(ann.user.id).send().await),
            400
        );
        assert_eq!(
            status(&a.follow_user().user_id(uuid::Uuid::now_v7()).send().await),
            404
        );
    }
);

e2e_both_backends!(
    a_block_ends_every_tie_and_hides_the_blocker,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let a = app.client_with_token(&ann.tokens.access_token);
        let b = app.client_with_token(&bob.tokens.access_token);
        app.befriend(&ann, &bob).await;
        a.follow_user()
            .user_id(bob.user.id)
            .send()
            .await
            .expect("a follows b");
        b.follow_user()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("b follows a");

        for _ in 0..2 {
            assert_eq!(
                status(&b.block_user().user_id(ann.user.id).send().await),
                204,
                "idempotent"
            );
        }
        let rel = b
            .get_relationship()
            .user_id(ann.user.id)
            .send()
            .await
            .expect("rel")
            .into_inner();
        assert_eq!(rel.status, RelationshipStatus::Blocking);
        assert!(
            !rel.following && !rel.followed_by,
            "follows ended both ways"
        );
        assert!(
            b.list_friends()
                .user_id(bob.user.id)
                .send()
                .await
                .expect("friends")
                .into_inner()
                .items
                .is_empty()
        );
        let blocks = b.list_blocks().send().await.expect("blocks").into_inner();
        assert_eq!(blocks.items[0].user.id, ann.user.id);

        // To the blocked user, the blocker does not exist: the same 404 as a missing user.
        let missing = error_body(a.get_user().user_id(uuid::Uuid::now_v7()).send().await).1;
        let hidden = error_body(a.get_user().user_id(bob.user.id).send().await).1;
        assert_eq!(
            (hidden.error_code.as_str(), hidden.message.as_str()),
            (missing.error_code.as_str(), missing.message.as_str())
        );
        assert_eq!(
            status(&a.get_user_by_handle().handle("bob").send().await),
            404
        );
        assert_eq!(
            status(&a.get_relationship().user_id(bob.user.id).send().await),
            404
        );
        assert_eq!(
            status(&a.list_friends().user_id(bob.user.id).send().await),
            404
        );
        assert_eq!(
            status(&a.list_followers().user_id(bob.user.id).send().await),
            404
        );
        assert_eq!(
            status(&a.follow_user().user_id(bob.user.id).send().await),
            404
        );
        assert_eq!(
            status(
                &a.send_friend_request()
                    .body(FriendRequestCreate {
                        user_id: bob.user.id
                    })
                    .send()
                    .await
            ),
            404
        );
        // The blocker knows: their own attempts are a conflict.
        let (code, body) = error_body(b.follow_user().user_id(ann.user.id).send().await);
        assert_eq!((code, body.error_code.as_str()), (409, "user_blocked"));
        let (code, body) = error_body(
            b.send_friend_request()
                .body(FriendRequestCreate {
                    user_id: ann.user.id,
                })
                .send()
                .await,
        );
        assert_eq!((code, body.error_code.as_str()), (409, "user_blocked"));
        assert_eq!(status(&b.get_user().user_id(ann.user.id).send().await), 200);

        assert_eq!(
            status(&b.unblock_user().user_id(ann.user.id).send().await),
            204
        );
        assert_eq!(
            status(&b.unblock_user().user_id(ann.user.id).send().await),
            204
        );
        assert_eq!(status(&a.get_user().user_id(bob.user.id).send().await), 200);
        let rel = a
            .get_relationship()
            .user_id(bob.user.id)
            .send()
            .await
            .expect("rel")
            .into_inner();
        assert_eq!(
            rel.status,
            RelationshipStatus::None,
            "nothing the block ended comes back"
        );
        assert_eq!(
            status(&b.block_user().user_id(bob.user.id).send().await),
            400
        );
        assert_eq!(
            status(&b.block_user().user_id(uuid::Uuid::now_v7()).send().await),
            404
        );
    }
);
