//! `Db::seed` on both backends: the shape it promises (hub friend lists, posts, fanned-out
//! feeds that the privacy rules admit).

use agora_db::seed::SeedPlan;
use agora_db::social::ConnectionList;
use agora_db::{Db, ReadPolicy};

fn plan() -> SeedPlan {
    SeedPlan {
        prefix: "s".into(),
        users: 300,
        posts: 3_000,
        max_friends: 200,
        friends_per_user: 3,
        follows_per_user: 4,
        fanout_days: 30,
        fanout_max_audience: 150,
        conversations: 50,
        long_conversation: 500,
        password_hash: "not-a-real-hash".into(),
        seed: 1,
    }
}

async fn check(db: &Db) {
    let report = db.seed(&plan()).await.expect("seed");
    assert_eq!((report.users, report.posts), (300, 3_000));
    assert!(report.likes > 0 && report.comments > 0 && report.notifications == 3_000);
    assert!(
        report.large_authors > 0,
        "the hubs exceed an audience of 150: {report:?}"
    );
    assert_eq!(
        (report.conversations, report.messages),
        (51, 50 * 10 + 500),
        "fifty groups of ten messages and the long conversation"
    );
    let hub = report.hub.expect("hub");
    let long = report.long_conversation.expect("the long conversation");
    let (_, membership) = db
        .membership(long, hub, ReadPolicy::Primary)
        .await
        .expect("membership")
        .expect("the hub is in its long conversation");
    assert_eq!(membership.unread(500), 500);
    let inbox = db
        .list_conversations(hub, None, 100, ReadPolicy::Primary)
        .await
        .expect("inbox");
    assert_eq!(
        inbox.len(),
        51,
        "the hub is in every group and the long conversation"
    );
    let mut friends = 0;
    let mut after = None;
    loop {
        let page = db
            .list_connections(
                ConnectionList::Friends,
                hub,
                after,
                100,
                ReadPolicy::Primary,
            )
            .await
            .expect("friends");
        friends += page.len();
        match page.last() {
            Some(last) if page.len() == 100 => after = Some(last.id),
            _ => break,
        }
    }
    assert!(friends >= 200, "the hub has its friend list: {friends}");
    let user = db
        .get_user_by_handle("s7", ReadPolicy::Primary)
        .await
        .expect("a seeded user by handle");
    assert_eq!(user.email, "s7@seed.invalid");
    // The fan-out wrote entries the read-time rules admit.
    let mut fed = 0;
    for handle in ["s10", "s20", "s30", "s40"] {
        let reader = db
            .get_user_by_handle(handle, ReadPolicy::Primary)
            .await
            .expect("reader");
        fed += db
            .feed_entries_page(reader.id, None, 50, ReadPolicy::Primary)
            .await
            .expect("feed")
            .len();
    }
    assert!(fed > 0, "seeded feeds are readable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_sqlite() {
    let t = agora_db::testing::TestDb::sqlite().await;
    check(&t.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_postgres() {
    let Some(t) = agora_db::testing::TestDb::postgres().await else {
        return;
    };
    check(&t.db).await;
}
