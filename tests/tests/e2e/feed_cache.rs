//! The cached home feed against real Redis: a cached page never outlives a change of what its reader may
//! see — on another instance either — and with Redis cut mid-test the feed is served from the database,
//! correct, paginated and with the same status codes; once Redis is back, nothing cached before or during
//! the outage is served stale.

use std::time::Duration;

use agora_client::types::{PostVisibility, Session};
use agora_kv::testing::{TestRedis, eventually};

use crate::support::{
    TestApp, chaos_redis_env, create_post, home_feed, redis_behind_proxy, redis_state, status,
    test_jwt_keys,
};

async fn post(client: &agora_client::Client, body: &str, visibility: PostVisibility) -> uuid::Uuid {
    create_post(client, body, visibility).await.id
}

/// Every page of the feed, `limit` at a time: (post ids, statuses of the page calls, liked ids).
async fn pages(
    client: &agora_client::Client,
    limit: u32,
) -> (Vec<uuid::Uuid>, Vec<u16>, Vec<uuid::Uuid>) {
    let (posts, statuses) = home_feed(client, limit).await;
    let liked = posts
        .iter()
        .filter(|p| p.liked_by_me)
        .map(|p| p.id)
        .collect();
    (posts.iter().map(|p| p.id).collect(), statuses, liked)
}

async fn ids(client: &agora_client::Client) -> Vec<uuid::Uuid> {
    pages(client, 2).await.0
}

struct Cast {
    me: Session,
    friend: Session,
    mine: uuid::Uuid,
    f_public: uuid::Uuid,
    f_private: uuid::Uuid,
}

/// `me` (an active reader) befriended `friend`, who posted one public and one friends-only post.
async fn cast(app: &TestApp) -> Cast {
    let me = app.register("reader").await;
    let friend = app.register("friend").await;
    let m = app.client_with_token(&me.tokens.access_token);
    let f = app.client_with_token(&friend.tokens.access_token);
    assert!(ids(&m).await.is_empty(), "an active reader from here on");
    app.befriend(&me, &friend).await;
    let mine = post(&m, "mine", PostVisibility::Public).await;
    let f_public = post(&f, "friend public", PostVisibility::Public).await;
    let f_private = post(&f, "friend private", PostVisibility::Friends).await;
    app.wait_for_queue("fanout").await;
    Cast {
        me,
        friend,
        mine,
        f_public,
        f_private,
    }
}

/// Two instances on one PostgreSQL database and one Redis: pages cached on A obey writes made on B at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_page_never_outlives_a_change_made_on_another_instance() {
    let Some(redis) = TestRedis::new("feed_cache::across_instances") else {
        return;
    };
    let Some(db) = agora_db::testing::TestDb::postgres().await else {
        return;
    };
    let config = redis.config();
    let url = config.url.clone().expect("url");
    let keys = test_jwt_keys();
    let mut env = chaos_redis_env(&url, &config.key_prefix);
    env.push(("AGORA_DATABASE__URL", &db.config.url));
    env.push(("AGORA_AUTH__KEYS", &keys));
    let a = TestApp::start_with(&env).await;
    let b = TestApp::start_with(&env).await;
    let c = cast(&a).await;
    let on_a = a.client_with_token(&c.me.tokens.access_token);
    let me_on_b = b.client_with_token(&c.me.tokens.access_token);
    let friend_on_b = b.client_with_token(&c.friend.tokens.access_token);

    let all = vec![c.f_private, c.f_public, c.mine];
    assert_eq!(ids(&on_a).await, all, "cached on A");
    assert_eq!(ids(&on_a).await, all, "served again");
    // Every reader has their own pages: a stranger's first page, on either instance, is theirs.
    let stranger = a.register("stranger").await;
    for app in [&a, &b] {
        let x = app.client_with_token(&stranger.tokens.access_token);
        assert!(
            ids(&x).await.is_empty(),
            "a stranger was served another reader's page"
        );
    }

    // The reader's own like, on B: `liked_by_me` on A's next read.
    assert_eq!(
        status(&me_on_b.like_post().post_id(c.f_public).send().await),
        200
    );
    assert_eq!(pages(&on_a, 2).await.2, vec![c.f_public]);

    // The friendship ends on B: the friends-only post is gone from A's next read.
    assert_eq!(
        status(
            &friend_on_b
                .remove_friend()
                .user_id(c.me.user.id)
                .send()
                .await
        ),
        204
    );
    assert_eq!(ids(&on_a).await, vec![c.mine]);

    // A post deleted on B: gone from every cached page.
    let again = post(&me_on_b, "again", PostVisibility::Public).await;
    assert_eq!(ids(&on_a).await, vec![again, c.mine]);
    assert_eq!(
        status(&me_on_b.delete_post().post_id(again).send().await),
        204
    );
    assert_eq!(ids(&on_a).await, vec![c.mine]);
    drop(db);
}

async fn redis_cut(database_url: Option<&str>) {
    let Some((_redis, proxy, config)) = redis_behind_proxy("feed_cache::redis_cut").await else {
        return;
    };
    let url = config.url.clone().expect("url");
    let mut env = chaos_redis_env(&url, &config.key_prefix);
    if let Some(db) = database_url {
        env.push(("AGORA_DATABASE__URL", db));
    }
    let app = TestApp::start_with(&env).await;
    assert!(
        eventually(100, Duration::from_millis(50), || async {
            redis_state(&app).await == "up"
        })
        .await,
        "Redis reported up"
    );
    let c = cast(&app).await;
    let m = app.client_with_token(&c.me.tokens.access_token);
    let f = app.client_with_token(&c.friend.tokens.access_token);
    let all = vec![c.f_private, c.f_public, c.mine];
    let (before, statuses, _) = pages(&m, 2).await;
    assert_eq!(before, all);

    // Refuse first, then cut: a reconnect accepted in between would survive the cut.
    proxy.refuse_new(true);
    proxy.cut();
    let (during, during_statuses, _) = pages(&m, 2).await;
    assert_eq!(during, all, "the database serves the same feed");
    assert_eq!(during_statuses, statuses, "with the same status codes");
    assert_ne!(redis_state(&app).await, "up", "the outage was noticed");

    // Privacy holds during the outage.
    assert_eq!(
        status(&f.remove_friend().user_id(c.me.user.id).send().await),
        204
    );
    // Neither friends nor following: none of the friend's posts, public ones included.
    assert_eq!(ids(&m).await, vec![c.mine]);
    let fresh = post(&m, "while redis is down", PostVisibility::Public).await;
    assert_eq!(ids(&m).await, vec![fresh, c.mine]);

    // Back: the page cached before the outage (which showed the friends-only post) is never served.
    proxy.restore();
    assert!(
        eventually(200, Duration::from_millis(50), || async {
            let _ = m.get_home_feed().send().await;
            redis_state(&app).await == "up"
        })
        .await,
        "Redis recovered once restored"
    );
    let (after, after_statuses, _) = pages(&m, 2).await;
    assert_eq!(after, vec![fresh, c.mine]);
    assert_eq!(after_statuses, vec![200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_survives_a_redis_cut_sqlite() {
    redis_cut(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_survives_a_redis_cut_postgres() {
    let Some(db) = agora_db::testing::TestDb::postgres().await else {
        return;
    };
    redis_cut(Some(&db.config.url)).await;
    drop(db);
}
