//! One behaviour suite, run against both implementations: in process (`memory::*`) and real Redis (`redis::*`).
//!
//! Each test is an `async fn(&Kv)`; the `suite!` macro instantiates it per backend. In-process tests run with
//! tokio's clock paused (sleeps auto-advance, so TTL tests take no real time); Redis tests use real time with
//! short TTLs and "eventually within N polls", never a wall-clock assertion. Redis tests also check that no call
//! fell back, so a passing Redis test really exercised Redis.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use agora_kv::cache::Lookup;
use agora_kv::testing::{TestRedis, eventually};
use agora_kv::{
    CacheKey, CachePolicy, Decision, Delivery, Kv, Quota, Received, RedisConfig, RedisState,
};
use bytes::Bytes;
use futures_util::StreamExt;

const POLL: Duration = Duration::from_millis(25);
const POLLS: u32 = 200;

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $name() {
                    let kv = agora_kv::Kv::in_process(&agora_kv::RedisConfig::default());
                    super::$name(&kv).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(redis) = super::TestRedis::new(concat!("suite::redis::", stringify!($name))) else {
                        return;
                    };
                    let kv = super::redis_kv(&redis.config()).await;
                    super::$name(&kv).await;
                    let status = kv.status();
                    assert_eq!(status.fallbacks, 0, "a call fell back: Redis was not exercised ({status:?})");
                    assert_ne!(status.state, super::RedisState::Down);
                }
            )*
        }
    };
}

suite!(
    cache_miss_fill_hit,
    cache_entries_expire,
    cache_delete_removes_one_key,
    cache_invalidate_namespace_drops_all_its_keys,
    cache_fill_after_invalidation_is_dropped,
    cache_invalidate_scopes_drops_only_their_keys,
    cache_fill_after_scope_invalidation_is_dropped,
    cache_scopes_keep_their_own_entries,
    cache_get_or_compute_computes_once,
    broker_fans_out_per_channel,
    broker_json_and_stream,
    broker_publish_without_subscribers_is_fine,
    broker_reports_what_a_slow_subscriber_lost,
    a_channels_first_subscriber_sizes_its_buffer,
    counter_counts_within_a_window,
    rate_limit_burst_then_limited,
    rate_limit_refills_at_the_rate,
    rate_limit_keys_are_independent,
    presence_add_remove_members,
    presence_members_expire_individually,
    presence_readd_extends_a_member,
    presence_admit_bounds_a_set,
    presence_admit_is_atomic_under_contention,
);

/// A Redis-backed Kv whose pub/sub connection is up, so broker tests do not race the first connect.
async fn redis_kv(config: &RedisConfig) -> Kv {
    let kv = Kv::connect(config).await.expect("valid test config");
    assert!(
        eventually(POLLS, POLL, || async { kv.status().pubsub_connected }).await,
        "pub/sub never connected: {:?}",
        kv.status()
    );
    kv
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn is_hit(lookup: &Lookup, expected: &[u8]) -> bool {
    matches!(lookup, Lookup::Hit(v) if v.as_ref() == expected)
}

async fn cache_miss_fill_hit(kv: &Kv) {
    let cache = kv.cache();
    let key = CacheKey::new("profile", "u1");
    let Lookup::Miss(fill) = cache.get(&key).await else {
        panic!("fresh key must miss");
    };
    cache.fill(&key, fill, b("alice"), ms(60_000)).await;
    assert!(is_hit(&cache.get(&key).await, b"alice"));
    // Same key in another namespace is another entry.
    assert!(matches!(
        cache.get(&CacheKey::new("other", "u1")).await,
        Lookup::Miss(_)
    ));
}

async fn cache_entries_expire(kv: &Kv) {
    let cache = kv.cache();
    let key = CacheKey::new("profile", "short");
    cache.set(&key, b("v"), ms(100)).await;
    assert!(is_hit(&cache.get(&key).await, b"v"));
    assert!(
        eventually(POLLS, POLL, || async {
            matches!(cache.get(&key).await, Lookup::Miss(_))
        })
        .await,
        "entry never expired"
    );
}

async fn cache_delete_removes_one_key(kv: &Kv) {
    let cache = kv.cache();
    let (a, b_key) = (CacheKey::new("profile", "a"), CacheKey::new("profile", "b"));
    cache.set(&a, b("1"), ms(60_000)).await;
    cache.set(&b_key, b("2"), ms(60_000)).await;
    cache.delete(&a).await;
    assert!(matches!(cache.get(&a).await, Lookup::Miss(_)));
    assert!(is_hit(&cache.get(&b_key).await, b"2"));
    // Deleting a missing key is fine.
    cache.delete(&a).await;
}

async fn cache_invalidate_namespace_drops_all_its_keys(kv: &Kv) {
    let cache = kv.cache();
    let keys: Vec<_> = (0..5)
        .map(|i| CacheKey::new("feed", format!("k{i}")))
        .collect();
    for k in &keys {
        cache.set(k, b("x"), ms(60_000)).await;
    }
    let bystander = CacheKey::new("profile", "k0");
    cache.set(&bystander, b("y"), ms(60_000)).await;
    cache.invalidate_namespace("feed").await;
    for k in &keys {
        assert!(
            matches!(cache.get(k).await, Lookup::Miss(_)),
            "{k:?} survived invalidation"
        );
    }
    assert!(
        is_hit(&cache.get(&bystander).await, b"y"),
        "other namespaces are untouched"
    );
    // The namespace works again after invalidation.
    cache.set(&keys[0], b("new"), ms(60_000)).await;
    assert!(is_hit(&cache.get(&keys[0]).await, b"new"));
}

async fn cache_fill_after_invalidation_is_dropped(kv: &Kv) {
    let cache = kv.cache();
    let key = CacheKey::new("feed", "race");
    let Lookup::Miss(fill) = cache.get(&key).await else {
        panic!("fresh key must miss");
    };
    // A writer invalidates while the reader computes from now-stale data.
    cache.invalidate_namespace("feed").await;
    cache.fill(&key, fill, b("stale"), ms(60_000)).await;
    assert!(
        matches!(cache.get(&key).await, Lookup::Miss(_)),
        "stale fill became visible"
    );
}

const SCOPED: CachePolicy = CachePolicy {
    name: "example_feed",
    key_format: "scope {user_id}, key {page}",
    ttl: Duration::from_secs(60),
    invalidation: "test only",
    on_miss: "compute",
    on_redis_failure: "miss",
    fallback: false,
};

async fn cache_invalidate_scopes_drops_only_their_keys(kv: &Kv) {
    let cache = kv.cache();
    let (a1, a2) = (SCOPED.scoped_key("a", "p1"), SCOPED.scoped_key("a", "p2"));
    let (b1, c1) = (SCOPED.scoped_key("b", "p1"), SCOPED.scoped_key("c", "p1"));
    let plain = SCOPED.key("p1");
    for key in [&a1, &a2, &b1, &c1, &plain] {
        cache.set(key, b("v"), ms(60_000)).await;
    }
    assert!(is_hit(&cache.get(&a1).await, b"v"));
    assert!(
        is_hit(&cache.get(&plain).await, b"v"),
        "an unscoped key of the same name is another key"
    );
    cache
        .invalidate_scopes(SCOPED.name, &["a".to_owned(), "b".to_owned()], SCOPED.ttl)
        .await;
    for key in [&a1, &a2, &b1] {
        assert!(matches!(cache.get(key).await, Lookup::Miss(_)), "{key:?}");
    }
    assert!(
        is_hit(&cache.get(&c1).await, b"v"),
        "other scopes are untouched"
    );
    assert!(is_hit(&cache.get(&plain).await, b"v"));
    // A scope works again after invalidation, and a namespace bump still covers scoped keys.
    cache.set(&a1, b("new"), ms(60_000)).await;
    assert!(is_hit(&cache.get(&a1).await, b"new"));
    cache.invalidate_namespace(SCOPED.name).await;
    assert!(matches!(cache.get(&a1).await, Lookup::Miss(_)));
    assert!(matches!(cache.get(&c1).await, Lookup::Miss(_)));
    cache.delete(&a1).await;
}

async fn cache_scopes_keep_their_own_entries(kv: &Kv) {
    let cache = kv.cache();
    // Same key, same (initial) scope versions, different scopes: one reader's page is never another's.
    let (a, b_key) = (
        SCOPED.scoped_key("a", "first"),
        SCOPED.scoped_key("b", "first"),
    );
    cache.set(&a, b("a's page"), ms(60_000)).await;
    assert!(
        matches!(cache.get(&b_key).await, Lookup::Miss(_)),
        "b read a's entry"
    );
    let Lookup::Miss(fill) = cache.get(&b_key).await else {
        panic!("must miss");
    };
    cache.fill(&b_key, fill, b("b's page"), ms(60_000)).await;
    assert!(is_hit(&cache.get(&a).await, b"a's page"));
    assert!(is_hit(&cache.get(&b_key).await, b"b's page"));
}

async fn cache_fill_after_scope_invalidation_is_dropped(kv: &Kv) {
    let cache = kv.cache();
    let key = SCOPED.scoped_key("reader", "first");
    let Lookup::Miss(fill) = cache.get(&key).await else {
        panic!("fresh key must miss");
    };
    // The reader's friendship ends while their page is computed from the old ties.
    cache
        .invalidate_scopes(SCOPED.name, &["reader".to_owned()], SCOPED.ttl)
        .await;
    cache.fill(&key, fill, b("stale"), ms(60_000)).await;
    assert!(
        matches!(cache.get(&key).await, Lookup::Miss(_)),
        "stale fill became visible"
    );
    // A fill after a fresh miss lands.
    let Lookup::Miss(fill) = cache.get(&key).await else {
        panic!("must miss");
    };
    cache.fill(&key, fill, b("fresh"), ms(60_000)).await;
    assert!(is_hit(&cache.get(&key).await, b"fresh"));
}

async fn cache_get_or_compute_computes_once(kv: &Kv) {
    const POLICY: CachePolicy = CachePolicy {
        name: "example_profile",
        key_format: "{user_id}",
        ttl: Duration::from_secs(60),
        invalidation: "test only",
        on_miss: "compute",
        on_redis_failure: "fallback",
        fallback: true,
    };
    let calls = AtomicU32::new(0);
    for _ in 0..3 {
        let value: Result<Vec<String>, std::convert::Infallible> = kv
            .cache()
            .get_or_compute(&POLICY, "u1", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(vec!["a".to_owned(), "b".to_owned()])
            })
            .await;
        assert_eq!(value.expect("infallible"), ["a", "b"]);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Errors pass through and are not cached.
    let failed: Result<u32, &str> = kv
        .cache()
        .get_or_compute(&POLICY, "u2", || async { Err("db down") })
        .await;
    assert_eq!(failed, Err("db down"));
    assert!(matches!(
        kv.cache().get(&POLICY.key("u2")).await,
        Lookup::Miss(_)
    ));
}

async fn recv_within(sub: &mut agora_kv::Subscription) -> Option<Bytes> {
    tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .ok()
        .flatten()
}

async fn broker_fans_out_per_channel(kv: &Kv) {
    let broker = kv.broker();
    let mut a1 = broker.subscribe("room.a").await;
    let mut a2 = broker.subscribe("room.a").await;
    let mut other = broker.subscribe("room.b").await;
    let delivery = broker.publish("room.a", b("hello")).await;
    let expected = if kv.redis_state() == RedisState::Disabled {
        Delivery::Local
    } else {
        Delivery::Cluster
    };
    assert_eq!(delivery, expected);
    assert_eq!(recv_within(&mut a1).await.as_deref(), Some(&b"hello"[..]));
    assert_eq!(recv_within(&mut a2).await.as_deref(), Some(&b"hello"[..]));
    // room.b got nothing from room.a: its first message is its own.
    broker.publish("room.b", b("b-only")).await;
    assert_eq!(
        recv_within(&mut other).await.as_deref(),
        Some(&b"b-only"[..])
    );
    // Order is kept per channel.
    for i in 0..20 {
        broker.publish("room.a", Bytes::from(format!("m{i}"))).await;
    }
    for i in 0..20 {
        assert_eq!(
            recv_within(&mut a1).await,
            Some(Bytes::from(format!("m{i}")))
        );
    }
}

async fn broker_json_and_stream(kv: &Kv) {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Event {
        id: u32,
        text: String,
    }
    let broker = kv.broker();
    let mut sub = broker.subscribe("events").await;
    let event = Event {
        id: 7,
        text: "hi".into(),
    };
    broker
        .publish_json("events", &event)
        .await
        .expect("serializes");
    let got: Event = tokio::time::timeout(Duration::from_secs(5), sub.recv_json())
        .await
        .expect("delivered")
        .expect("open")
        .expect("decodes");
    assert_eq!(got, event);
    assert_eq!(sub.channel(), "events");

    let mut stream = Box::pin(broker.subscribe("stream").await.into_stream());
    broker.publish("stream", b("s1")).await;
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("delivered");
    assert_eq!(first, Some(b("s1")));
}

/// Reads `sub` until it gets `last` (published messages reach Redis subscribers a moment later).
async fn receive_until(sub: &mut agora_kv::Subscription, last: Bytes) {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), sub.recv_or_lost())
            .await
            .expect("delivered");
        if next == Some(Received::Message(last.clone())) {
            return;
        }
    }
}

/// A subscriber that falls a whole channel buffer behind is told how many messages it lost,
/// then gets the newest ones in order.
async fn broker_reports_what_a_slow_subscriber_lost(kv: &Kv) {
    let capacity = RedisConfig::default().broker_channel_capacity;
    let total = capacity + 100;
    let broker = kv.broker();
    let mut slow = broker.subscribe("busy").await;
    let mut keeping_up = broker.subscribe("busy").await;
    for i in 0..total {
        broker.publish("busy", Bytes::from(format!("m{i}"))).await;
    }
    // Once the last message reached this subscriber it reached the channel: `slow` is behind.
    receive_until(&mut keeping_up, Bytes::from(format!("m{}", total - 1))).await;
    let lost = u64::try_from(total - capacity).expect("small");
    assert_eq!(slow.recv_or_lost().await, Some(Received::Lost(lost)));
    for i in (total - capacity)..total {
        assert_eq!(
            slow.recv_or_lost().await,
            Some(Received::Message(Bytes::from(format!("m{i}"))))
        );
    }
}

/// `subscribe_buffered` sizes the channel's buffer on this instance; a later subscriber shares
/// it, whatever it asks.
async fn a_channels_first_subscriber_sizes_its_buffer(kv: &Kv) {
    let broker = kv.broker();
    let mut small = broker.subscribe_buffered("small", Some(4)).await;
    // Asks for more, gets the channel's buffer.
    let mut late = broker.subscribe_buffered("small", Some(64)).await;
    let mut witness = broker.subscribe("small").await;
    for i in 0..10 {
        broker.publish("small", Bytes::from(format!("m{i}"))).await;
    }
    // Once the last message reached this subscriber it reached the channel.
    receive_until(&mut witness, Bytes::from("m9")).await;
    for sub in [&mut small, &mut late] {
        assert_eq!(sub.recv_or_lost().await, Some(Received::Lost(6)));
        for i in 6..10 {
            assert_eq!(
                sub.recv_or_lost().await,
                Some(Received::Message(Bytes::from(format!("m{i}"))))
            );
        }
    }
}

async fn broker_publish_without_subscribers_is_fine(kv: &Kv) {
    let broker = kv.broker();
    broker.publish("nobody", b("x")).await;
    // A subscriber that came and went leaves nothing that breaks later publishes.
    drop(broker.subscribe("nobody").await);
    broker.publish("nobody", b("y")).await;
    let mut sub = broker.subscribe("nobody").await;
    broker.publish("nobody", b("z")).await;
    // "y" may still be in flight to this instance when the new subscriber joins; what matters is that "z" arrives.
    let mut got = recv_within(&mut sub).await;
    if got == Some(b("y")) {
        got = recv_within(&mut sub).await;
    }
    assert_eq!(got, Some(b("z")));
}

async fn counter_counts_within_a_window(kv: &Kv) {
    let counter = kv.counter();
    assert_eq!(counter.get("logins").await, 0);
    assert_eq!(counter.incr_with_expiry("logins", 1, ms(300)).await, 1);
    assert_eq!(counter.incr_with_expiry("logins", 1, ms(300)).await, 2);
    assert_eq!(counter.incr_with_expiry("logins", 5, ms(300)).await, 7);
    assert_eq!(counter.get("logins").await, 7);
    assert_eq!(counter.incr_with_expiry("other", 1, ms(60_000)).await, 1);
    // The window expires as a whole; the next increment starts a new one.
    assert!(
        eventually(POLLS, POLL, || async { counter.get("logins").await == 0 }).await,
        "window never expired"
    );
    assert_eq!(counter.incr_with_expiry("logins", 1, ms(60_000)).await, 1);
    assert_eq!(counter.get("other").await, 1);
}

fn quota(rate: u32, per: Duration, burst: u32) -> Quota {
    Quota::new(
        NonZeroU32::new(rate).expect("rate > 0"),
        per,
        NonZeroU32::new(burst).expect("burst > 0"),
    )
}

async fn rate_limit_burst_then_limited(kv: &Kv) {
    let limiter = kv.rate_limiter();
    let q = quota(1, Duration::from_secs(3_600), 3);
    for remaining in [2, 1, 0] {
        assert_eq!(
            limiter.check("login:1.2.3.4", q).await,
            Decision::Allowed { remaining }
        );
    }
    match limiter.check("login:1.2.3.4", q).await {
        Decision::Limited { retry_after } => {
            // One emission interval (an hour) minus the little time the test took.
            assert!(retry_after <= Duration::from_secs(3_600), "{retry_after:?}");
            assert!(retry_after > Duration::from_secs(3_000), "{retry_after:?}");
        }
        other => panic!("fourth request within the hour allowed: {other:?}"),
    }
}

async fn rate_limit_refills_at_the_rate(kv: &Kv) {
    let limiter = kv.rate_limiter();
    let q = quota(10, Duration::from_secs(1), 1);
    assert!(limiter.check("refill", q).await.is_allowed());
    assert!(
        eventually(POLLS, POLL, || async {
            limiter.check("refill", q).await.is_allowed()
        })
        .await,
        "never refilled"
    );
}

async fn rate_limit_keys_are_independent(kv: &Kv) {
    let limiter = kv.rate_limiter();
    let q = quota(1, Duration::from_secs(3_600), 1);
    assert!(limiter.check("user:a", q).await.is_allowed());
    assert!(!limiter.check("user:a", q).await.is_allowed());
    assert!(limiter.check("user:b", q).await.is_allowed());
}

async fn presence_add_remove_members(kv: &Kv) {
    let presence = kv.presence();
    assert!(presence.members("room:1").await.is_empty());
    presence.add("room:1", "bob", ms(60_000)).await;
    presence.add("room:1", "alice", ms(60_000)).await;
    presence.add("room:2", "carol", ms(60_000)).await;
    assert_eq!(presence.members("room:1").await, ["alice", "bob"]);
    presence.remove("room:1", "bob").await;
    assert_eq!(presence.members("room:1").await, ["alice"]);
    assert_eq!(presence.members("room:2").await, ["carol"]);
    presence.remove("room:1", "nobody").await;
}

async fn presence_members_expire_individually(kv: &Kv) {
    let presence = kv.presence();
    presence.add("room", "brief", ms(150)).await;
    presence.add("room", "stays", ms(60_000)).await;
    assert_eq!(presence.members("room").await, ["brief", "stays"]);
    assert!(
        eventually(POLLS, POLL, || async {
            presence.members("room").await == ["stays"]
        })
        .await,
        "short-lived member never expired"
    );
}

async fn presence_readd_extends_a_member(kv: &Kv) {
    let presence = kv.presence();
    presence.add("room", "heartbeat", ms(150)).await;
    // The heartbeat: re-adding with a long TTL outlives the first one.
    presence.add("room", "heartbeat", ms(60_000)).await;
    presence.add("room", "brief", ms(150)).await;
    assert!(
        eventually(POLLS, POLL, || async {
            presence.members("room").await == ["heartbeat"]
        })
        .await,
        "expected only the refreshed member"
    );
}

async fn presence_admit_bounds_a_set(kv: &Kv) {
    let presence = kv.presence();
    assert_eq!(presence.admit("conns", "a", ms(60_000), 2).await, Some(1));
    assert_eq!(presence.admit("conns", "b", ms(60_000), 2).await, Some(2));
    assert_eq!(presence.admit("conns", "c", ms(60_000), 2).await, None);
    assert_eq!(
        presence.members("conns").await,
        ["a", "b"],
        "a refusal adds nothing"
    );
    // A held member is refreshed even when the set is full.
    assert_eq!(presence.admit("conns", "a", ms(60_000), 2).await, Some(2));
    presence.remove("conns", "b").await;
    assert_eq!(presence.admit("conns", "c", ms(60_000), 2).await, Some(2));
    // An expired member frees its place.
    presence.add("short", "gone", ms(100)).await;
    assert!(
        eventually(POLLS, POLL, || async {
            presence.admit("short", "next", ms(60_000), 1).await == Some(1)
        })
        .await,
        "an expired member kept its place"
    );
}

async fn presence_admit_is_atomic_under_contention(kv: &Kv) {
    let presence = kv.presence();
    let tries = (0..40).map(|i| {
        let member = format!("m{i}");
        async move { presence.admit("crowd", &member, ms(60_000), 5).await }
    });
    let admitted = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .flatten()
        .count();
    assert_eq!(admitted, 5);
    assert_eq!(presence.members("crowd").await.len(), 5);
}
