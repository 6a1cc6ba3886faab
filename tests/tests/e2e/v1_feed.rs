//! `GET /v1/feed`: friends', followed users' and one's own posts, newest first; privacy at read
//! time; stable pages while posting; large authors merged in at read time.

use agora_client::types::PostVisibility;

use crate::e2e_both_backends;
use crate::support::{TestApp, create_post, home_feed, status};

async fn post(client: &agora_client::Client, body: &str, visibility: PostVisibility) -> uuid::Uuid {
    create_post(client, body, visibility).await.id
}

/// Every page of `client`'s feed, `limit` at a time, after fan-out settled.
async fn feed(app: &TestApp, client: &agora_client::Client, limit: u32) -> Vec<uuid::Uuid> {
    app.wait_for_queue("fanout").await;
    home_feed(client, limit)
        .await
        .0
        .iter()
        .map(|p| p.id)
        .collect()
}

e2e_both_backends!(
    the_feed_holds_friends_followed_and_own_posts_by_the_rules,
    &[],
    |app| async move {
        let me = app.register("myself").await;
        let friend = app.register("friend").await;
        let star = app.register("star").await;
        let stranger = app.register("stranger").await;
        let m = app.client_with_token(&me.tokens.access_token);
        let f = app.client_with_token(&friend.tokens.access_token);
        let s = app.client_with_token(&star.tokens.access_token);
        let x = app.client_with_token(&stranger.tokens.access_token);
        // Reading the feed once makes `me` an active reader whom fan-out writes to.
        assert!(feed(&app, &m, 20).await.is_empty());
        app.befriend(&me, &friend).await;
        m.follow_user()
            .user_id(star.user.id)
            .send()
            .await
            .expect("follow");

        let f_public = post(&f, "friend public", PostVisibility::Public).await;
        let f_private = post(&f, "friend friends-only", PostVisibility::Friends).await;
        let s_public = post(&s, "star public", PostVisibility::Public).await;
        let _s_private = post(&s, "star friends-only", PostVisibility::Friends).await;
        let _x_public = post(&x, "stranger", PostVisibility::Public).await;
        let mine = post(&m, "my own", PostVisibility::Friends).await;
        assert_eq!(
            feed(&app, &m, 20).await,
            vec![mine, s_public, f_private, f_public]
        );
        // Small pages give the same sequence.
        assert_eq!(
            feed(&app, &m, 1).await,
            vec![mine, s_public, f_private, f_public]
        );

        // Unfollowing removes the star's posts; ending the friendship the friend's friends-only
        // post, while the friend's public post stays as long as `me` follows them.
        m.follow_user()
            .user_id(friend.user.id)
            .send()
            .await
            .expect("follow friend");
        assert_eq!(
            status(&m.unfollow_user().user_id(star.user.id).send().await),
            204
        );
        assert_eq!(
            status(&m.remove_friend().user_id(friend.user.id).send().await),
            204
        );
        assert_eq!(feed(&app, &m, 20).await, vec![mine, f_public]);

        // A deleted post vanishes at once, and a block hides everything of the other side.
        assert_eq!(status(&f.delete_post().post_id(f_public).send().await), 204);
        assert_eq!(feed(&app, &m, 20).await, vec![mine]);
        let again = post(&f, "friend again", PostVisibility::Public).await;
        assert_eq!(feed(&app, &m, 20).await, vec![again, mine]);
        assert_eq!(
            status(&f.block_user().user_id(me.user.id).send().await),
            204
        );
        assert_eq!(feed(&app, &m, 20).await, vec![mine]);
    }
);

e2e_both_backends!(
    pages_neither_repeat_nor_skip_while_posts_arrive,
    &[],
    |app| async move {
        let reader = app.register("reader").await;
        let author = app.register("author").await;
        let r = app.client_with_token(&reader.tokens.access_token);
        let a = app.client_with_token(&author.tokens.access_token);
        assert!(feed(&app, &r, 20).await.is_empty());
        app.befriend(&reader, &author).await;
        let mut before = Vec::new();
        for i in 0..25 {
            before.push(post(&a, &format!("post {i}"), PostVisibility::Public).await);
        }
        before.reverse();
        app.wait_for_queue("fanout").await;

        let first = r
            .get_home_feed()
            .limit(std::num::NonZeroU32::new(10).expect("10"))
            .send()
            .await
            .expect("p1")
            .into_inner();
        let mut seen: Vec<_> = first.items.iter().map(|p| p.id).collect();
        // New posts arrive between pages.
        for i in 0..5 {
            post(&a, &format!("late {i}"), PostVisibility::Public).await;
        }
        app.wait_for_queue("fanout").await;
        let mut token = first.next_page;
        while let Some(t) = token {
            let page = r
                .get_home_feed()
                .limit(std::num::NonZeroU32::new(10).expect("10"))
                .page_token(t)
                .send()
                .await
                .expect("page")
                .into_inner();
            seen.extend(page.items.iter().map(|p| p.id));
            token = page.next_page;
        }
        assert_eq!(
            seen, before,
            "the pages hold exactly the posts that existed, in order"
        );
        let fresh = feed(&app, &r, 100).await;
        assert_eq!(fresh.len(), 30, "a fresh read has the late posts on top");
    }
);

e2e_both_backends!(
    large_authors_are_merged_in_at_read_time,
    &[("AGORA_FEED__FANOUT_MAX_AUDIENCE", "1")],
    |app| async move {
        let star = app.register("star").await;
        let fan1 = app.register("fan1").await;
        let fan2 = app.register("fan2").await;
        let s = app.client_with_token(&star.tokens.access_token);
        let f1 = app.client_with_token(&fan1.tokens.access_token);
        let f2 = app.client_with_token(&fan2.tokens.access_token);
        for fan in [&f1, &f2] {
            assert!(feed(&app, fan, 20).await.is_empty());
            fan.follow_user()
                .user_id(star.user.id)
                .send()
                .await
                .expect("follow");
        }
        let p = post(&s, "to the masses", PostVisibility::Public).await;
        let q = post(&s, "friends only: nobody", PostVisibility::Friends).await;
        app.wait_for_queue("fanout").await;
        let db = app.database().await;
        let entries = db
            .feed_entries_page(fan1.user.id, None, 10, agora_db::ReadPolicy::Primary)
            .await
            .expect("entries");
        assert!(entries.is_empty(), "an audience of 2 > 1 is not fanned out");
        for fan in [&f1, &f2] {
            assert_eq!(
                feed(&app, fan, 20).await,
                vec![p],
                "merged in; {q} stays private"
            );
        }
        // Unfollowing takes the merged posts away too.
        f2.unfollow_user()
            .user_id(star.user.id)
            .send()
            .await
            .expect("unfollow");
        assert!(feed(&app, &f2, 20).await.is_empty());
    }
);

e2e_both_backends!(
    a_first_read_rebuilds_the_feed_fan_out_skipped,
    &[],
    |app| async move {
        let author = app.register("author").await;
        let late = app.register("late").await;
        let a = app.client_with_token(&author.tokens.access_token);
        let l = app.client_with_token(&late.tokens.access_token);
        // `late` follows before ever reading: fan-out skips them (not an active reader).
        l.follow_user()
            .user_id(author.user.id)
            .send()
            .await
            .expect("follow");
        let p1 = post(&a, "one", PostVisibility::Public).await;
        let p2 = post(&a, "two", PostVisibility::Public).await;
        app.wait_for_queue("fanout").await;
        let db = app.database().await;
        assert!(
            db.feed_entries_page(late.user.id, None, 10, agora_db::ReadPolicy::Primary)
                .await
                .expect("entries")
                .is_empty(),
            "nothing fanned out to a reader who never read"
        );
        assert_eq!(
            feed(&app, &l, 20).await,
            vec![p2, p1],
            "rebuilt on the first read"
        );
        let p3 = post(&a, "three", PostVisibility::Public).await;
        assert_eq!(
            feed(&app, &l, 20).await,
            vec![p3, p2, p1],
            "active now: fanned out"
        );
    }
);
