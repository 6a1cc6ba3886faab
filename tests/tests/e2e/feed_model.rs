//! The home feed against its specification: for random sequences of befriend, unfriend,
//! follow, unfollow, block, unblock, post, delete and read operations by four users, every
//! user's feed (all pages) equals the feed a simple model computes — the model *is* the rule of
//! who sees what: the posts, not deleted, of oneself, of one's current friends, and the public
//! posts of those one follows, newest first.
//!
//! One real server per backend serves all cases (each case registers four new users), driven
//! through the generated client; fan-out runs in the server's workers and is waited for before
//! each comparison.

use std::collections::BTreeSet;

use agora_client::types::{FriendRequestCreate, PostCreate, PostVisibility, RelationshipStatus};
use proptest::prelude::*;
use uuid::Uuid;

use crate::support::TestApp;

const USERS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Befriend(usize, usize),
    Unfriend(usize, usize),
    Follow(usize, usize),
    Unfollow(usize, usize),
    Block(usize, usize),
    Unblock(usize, usize),
    Post(usize, bool),
    /// Deletes the author's nth post (modulo how many they have).
    Delete(usize, usize),
    /// Reads the first page (makes the user an active reader).
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    let pair = (0..USERS, 0..USERS).prop_filter("two users", |(a, b)| a != b);
    prop_oneof![
        3 => pair.clone().prop_map(|(a, b)| Op::Befriend(a, b)),
        1 => pair.clone().prop_map(|(a, b)| Op::Unfriend(a, b)),
        2 => pair.clone().prop_map(|(a, b)| Op::Follow(a, b)),
        1 => pair.clone().prop_map(|(a, b)| Op::Unfollow(a, b)),
        1 => pair.clone().prop_map(|(a, b)| Op::Block(a, b)),
        1 => pair.prop_map(|(a, b)| Op::Unblock(a, b)),
        4 => (user.clone(), any::<bool>()).prop_map(|(a, public)| Op::Post(a, public)),
        1 => (user.clone(), 0..8usize).prop_map(|(a, n)| Op::Delete(a, n)),
        2 => user.prop_map(Op::Read),
    ]
}

/// The specification.
#[derive(Debug, Default)]
struct Model {
    friends: BTreeSet<(usize, usize)>,
    follows: BTreeSet<(usize, usize)>,
    blocks: BTreeSet<(usize, usize)>,
    /// (id, author, public), in creation order.
    posts: Vec<(Uuid, usize, bool)>,
}

impl Model {
    fn friends(&self, a: usize, b: usize) -> bool {
        self.friends.contains(&(a.min(b), a.max(b)))
    }

    fn blocked(&self, a: usize, b: usize) -> bool {
        self.blocks.contains(&(a, b)) || self.blocks.contains(&(b, a))
    }

    fn feed(&self, reader: usize) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .posts
            .iter()
            .filter(|(_, author, public)| {
                *author == reader
                    || self.friends(reader, *author)
                    || (*public && self.follows.contains(&(reader, *author)))
            })
            .map(|(id, _, _)| *id)
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    }
}

struct Case<'a> {
    app: &'a TestApp,
    clients: Vec<agora_client::Client>,
    ids: Vec<Uuid>,
    model: Model,
}

impl Case<'_> {
    async fn apply(&mut self, op: &Op) {
        let m = &mut self.model;
        match *op {
            Op::Befriend(a, b) => {
                let sent = self.clients[a]
                    .send_friend_request()
                    .body(FriendRequestCreate {
                        user_id: self.ids[b],
                    })
                    .send()
                    .await;
                let allowed = !m.blocked(a, b) && !m.friends(a, b);
                assert_eq!(sent.is_ok(), allowed, "{op:?}: {sent:?}");
                if let Ok(rel) = sent {
                    let rel = rel.into_inner();
                    if rel.status == RelationshipStatus::RequestSent {
                        let id = rel.request_id.expect("pending request");
                        self.clients[b]
                            .accept_friend_request()
                            .request_id(id)
                            .send()
                            .await
                            .expect("accept");
                    }
                    m.friends.insert((a.min(b), a.max(b)));
                }
            }
            Op::Unfriend(a, b) => {
                let r = self.clients[a]
                    .remove_friend()
                    .user_id(self.ids[b])
                    .send()
                    .await;
                assert_eq!(r.is_ok(), m.friends(a, b), "{op:?}");
                m.friends.remove(&(a.min(b), a.max(b)));
            }
            Op::Follow(a, b) => {
                let r = self.clients[a]
                    .follow_user()
                    .user_id(self.ids[b])
                    .send()
                    .await;
                assert_eq!(r.is_ok(), !m.blocked(a, b), "{op:?}: {r:?}");
                if r.is_ok() {
                    m.follows.insert((a, b));
                }
            }
            Op::Unfollow(a, b) => {
                let r = self.clients[a]
                    .unfollow_user()
                    .user_id(self.ids[b])
                    .send()
                    .await;
                // A user who blocks the caller is not found, even to unfollow.
                assert_eq!(r.is_ok(), !m.blocks.contains(&(b, a)), "{op:?}: {r:?}");
                m.follows.remove(&(a, b));
            }
            Op::Block(a, b) => {
                self.clients[a]
                    .block_user()
                    .user_id(self.ids[b])
                    .send()
                    .await
                    .expect("block");
                m.blocks.insert((a, b));
                m.friends.remove(&(a.min(b), a.max(b)));
                m.follows.remove(&(a, b));
                m.follows.remove(&(b, a));
            }
            Op::Unblock(a, b) => {
                self.clients[a]
                    .unblock_user()
                    .user_id(self.ids[b])
                    .send()
                    .await
                    .expect("unblock");
                m.blocks.remove(&(a, b));
            }
            Op::Post(a, public) => {
                let visibility = if public {
                    PostVisibility::Public
                } else {
                    PostVisibility::Friends
                };
                let id = self.clients[a]
                    .create_post()
                    .body(PostCreate::builder().body("a post").visibility(visibility))
                    .send()
                    .await
                    .expect("post")
                    .into_inner()
                    .id;
                m.posts.push((id, a, public));
            }
            Op::Delete(a, n) => {
                let own: Vec<usize> = (0..m.posts.len()).filter(|i| m.posts[*i].1 == a).collect();
                if own.is_empty() {
                    return;
                }
                let index = own[n % own.len()];
                let id = m.posts[index].0;
                self.clients[a]
                    .delete_post()
                    .post_id(id)
                    .send()
                    .await
                    .expect("delete");
                m.posts.remove(index);
            }
            Op::Read(a) => {
                self.clients[a].get_home_feed().send().await.expect("read");
            }
        }
    }

    /// Every page of `user`'s feed, 3 at a time.
    async fn feed(&self, user: usize) -> Vec<Uuid> {
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = self.clients[user]
                .get_home_feed()
                .limit(std::num::NonZeroU32::new(3).expect("3"));
            if let Some(t) = token.take() {
                call = call.page_token(t);
            }
            let page = call.send().await.expect("feed").into_inner();
            ids.extend(page.items.iter().map(|p| p.id));
            match page.next_page {
                Some(t) => token = Some(t),
                None => return ids,
            }
        }
    }

    async fn check(&self, after: &str) {
        self.app.wait_for_queue("fanout").await;
        for user in 0..USERS {
            assert_eq!(
                self.feed(user).await,
                self.model.feed(user),
                "user {user} after {after}"
            );
        }
    }
}

async fn run_case(app: &TestApp, case: usize, ops: &[Op]) {
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for u in 0..USERS {
        let session = app.register(&format!("m{case}u{u}")).await;
        ids.push(session.user.id);
        clients.push(app.client_with_token(&session.tokens.access_token));
    }
    let mut run = Case {
        app,
        clients,
        ids,
        model: Model::default(),
    };
    for (i, op) in ops.iter().enumerate() {
        run.apply(op).await;
        if i % 8 == 7 {
            run.check(&format!("op {i} ({op:?})")).await;
        }
    }
    run.check("the last op").await;
}

fn property(database: Option<&str>, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Every case registers four users from one address: lift the sign-up budget.
    let mut env: Vec<(&str, &str)> = vec![
        ("AGORA_RATE_LIMITS__AUTH_PER_IP__REQUESTS", "1000000"),
        ("AGORA_RATE_LIMITS__WRITE_PER_USER__REQUESTS", "1000000"),
        ("AGORA_RATE_LIMITS__READ_PER_USER__REQUESTS", "1000000"),
    ];
    env.extend(database.map(|url| ("AGORA_DATABASE__URL", url)));

    let app = rt.block_on(TestApp::start_with(&env));
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let config = ProptestConfig {
        cases,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..40))| {
        let case = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(run_case(&app, case, &ops));
    });
}

#[test]
fn the_feed_equals_the_model_sqlite() {
    property(None, 24);
}

#[test]
fn the_feed_equals_the_model_postgres() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(db) = rt.block_on(agora_db::testing::TestDb::postgres()) else {
        return;
    };
    property(Some(&db.config.url), 12);
    drop(db);
}
