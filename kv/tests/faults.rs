//! Redis failure behaviour against a real Redis: breaker transitions through a chaos proxy, pub/sub
//! resubscription after the connection is killed, and GCRA limits shared across instances with per-instance
//! fallback. Bounds are "completes within a generous timeout" and "eventually within N polls", never a measured
//! duration.

use std::num::NonZeroU32;
use std::time::Duration;

use agora_kv::cache::Lookup;
use agora_kv::testing::{ChaosProxy, TestRedis, eventually};
use agora_kv::{CacheKey, CachePolicy, Kv, Quota, RedisConfig, RedisState};
use bytes::Bytes;

const POLL: Duration = Duration::from_millis(50);
const POLLS: u32 = 200;

/// Command timeout of the fault tests: short, so failures are quick; the slack below absorbs a loaded machine.
const COMMAND_TIMEOUT_MS: u64 = 300;
/// Upper bound for one call while Redis fails: one command timeout plus generous scheduling slack.
const CALL_BOUND: Duration = Duration::from_secs(3);

fn fault_config(mut config: RedisConfig) -> RedisConfig {
    config.command_timeout_ms = COMMAND_TIMEOUT_MS;
    config.connect_timeout_ms = COMMAND_TIMEOUT_MS;
    config
}

async fn connect(config: &RedisConfig) -> Kv {
    Kv::connect(config).await.expect("valid test config")
}

async fn until_up(kv: &Kv) {
    let key = CacheKey::new("probe", "k");
    assert!(
        eventually(POLLS, POLL, || async {
            // A call drives the breaker (an open breaker only probes when called).
            let _ = kv.cache().get(&key).await;
            kv.redis_state() == RedisState::Up
        })
        .await,
        "never up: {:?}",
        kv.status()
    );
}

async fn proxied(redis: &TestRedis) -> (ChaosProxy, Kv) {
    let target = redis.server_addr().await.expect("redis address");
    let proxy = ChaosProxy::start(target).await.expect("proxy starts");
    let kv = connect(&fault_config(redis.config_via(proxy.addr()))).await;
    until_up(&kv).await;
    (proxy, kv)
}

/// Cut mid-test: calls fall back within the command timeout, the breaker opens, the API keeps answering from the
/// in-process fallback; restored: the probe closes the breaker and the state returns to `up`.
#[tokio::test]
async fn cut_opens_the_breaker_and_restore_recovers() {
    let Some(redis) = TestRedis::new("faults::cut_opens_the_breaker_and_restore_recovers") else {
        return;
    };
    let (proxy, kv) = proxied(&redis).await;
    let cache = kv.cache();
    let before = CacheKey::new("profile", "before");
    cache
        .set(
            &before,
            Bytes::from_static(b"in-redis"),
            Duration::from_secs(60),
        )
        .await;
    assert!(matches!(cache.get(&before).await, Lookup::Hit(_)));
    assert_eq!(kv.status().fallbacks, 0);

    proxy.refuse_new(true);
    proxy.cut();
    let threshold = redis.config().breaker_threshold;
    for _ in 0..threshold {
        let lookup = tokio::time::timeout(CALL_BOUND, cache.get(&before))
            .await
            .expect("a failing call returns within the command timeout");
        assert!(
            matches!(lookup, Lookup::Miss(_)),
            "falls through to the caller"
        );
    }
    assert_eq!(kv.redis_state(), RedisState::Down, "{:?}", kv.status());

    // Open: the fallback answers at once, and serves what is written meanwhile.
    let during = CacheKey::new("profile", "during");
    tokio::time::timeout(
        CALL_BOUND,
        cache.set(
            &during,
            Bytes::from_static(b"local"),
            Duration::from_secs(60),
        ),
    )
    .await
    .expect("fails fast");
    assert!(matches!(cache.get(&during).await, Lookup::Hit(v) if v.as_ref() == b"local"));
    assert!(kv.status().fallbacks > threshold as u64);
    // Every other primitive answers too.
    let _ = tokio::time::timeout(
        CALL_BOUND,
        kv.counter()
            .incr_with_expiry("c", 1, Duration::from_secs(5)),
    )
    .await
    .expect("counter answers");
    let _ = tokio::time::timeout(CALL_BOUND, kv.presence().members("room"))
        .await
        .expect("presence answers");

    proxy.restore();
    until_up(&kv).await;
    // Redis kept its data; the fallback entry written during the outage is gone (no stale reads next outage).
    assert!(matches!(cache.get(&before).await, Lookup::Hit(v) if v.as_ref() == b"in-redis"));
    assert!(matches!(cache.get(&during).await, Lookup::Miss(_)));
    assert!(kv.status().pubsub_reconnects >= 1, "{:?}", kv.status());
}

/// A black hole (connections open, nothing answers) is caught by the command timeout, not by TCP errors.
#[tokio::test]
async fn blackhole_times_out_and_opens_the_breaker() {
    let Some(redis) = TestRedis::new("faults::blackhole_times_out_and_opens_the_breaker") else {
        return;
    };
    let (proxy, kv) = proxied(&redis).await;
    proxy.set_blackhole(true);
    let key = CacheKey::new("profile", "k");
    assert!(
        eventually(10, Duration::ZERO, || async {
            tokio::time::timeout(CALL_BOUND, kv.cache().get(&key))
                .await
                .expect("bounded by the command timeout");
            kv.redis_state() == RedisState::Down
        })
        .await,
        "breaker never opened: {:?}",
        kv.status()
    );
    proxy.restore();
    until_up(&kv).await;
}

/// Degraded in between: a failure below the threshold shows `degraded`, a success returns to `up`.
#[tokio::test]
async fn single_failure_is_degraded_not_down() {
    let Some(redis) = TestRedis::new("faults::single_failure_is_degraded_not_down") else {
        return;
    };
    let (proxy, kv) = proxied(&redis).await;
    proxy.set_blackhole(true);
    let _ = kv.counter().get("x").await;
    assert_eq!(kv.redis_state(), RedisState::Degraded);
    proxy.restore();
    until_up(&kv).await;
}

async fn delivered_eventually(
    kv_pub: &Kv,
    sub: &mut agora_kv::Subscription,
    channel: &str,
) -> bool {
    for i in 0..POLLS {
        let body = format!("ping-{i}");
        kv_pub
            .broker()
            .publish(channel, Bytes::from(body.clone()))
            .await;
        // Drain anything older; stop at this round's message or after a short wait.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), sub.recv()).await {
                Ok(Some(got)) if got.as_ref() == body.as_bytes() => return true,
                Ok(Some(_)) => continue,
                Ok(None) => return false,
                Err(_) => break,
            }
        }
    }
    false
}

/// `CLIENT KILL TYPE pubsub` on the instance's pub/sub connection: the task reconnects, resubscribes and delivery
/// resumes. The kill is scoped with `ADDR` to this test's connection (found through the proxy), so parallel
/// tests keep their subscriptions.
#[tokio::test]
async fn pubsub_resubscribes_after_client_kill() {
    let Some(redis) = TestRedis::new("faults::pubsub_resubscribes_after_client_kill") else {
        return;
    };
    let (proxy, subscriber) = proxied(&redis).await;
    let publisher = connect(&fault_config(redis.config())).await;
    let mut sub = subscriber.broker().subscribe("room").await;
    assert!(
        delivered_eventually(&publisher, &mut sub, "room").await,
        "delivery before the kill"
    );

    let mut admin = redis.connection().await.expect("admin connection");
    let mut killed = 0;
    for addr in proxy.upstream_addrs() {
        killed += redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .arg("ADDR")
            .arg(addr.to_string())
            .query_async::<i64>(&mut admin)
            .await
            .expect("CLIENT KILL");
    }
    assert_eq!(killed, 1, "exactly the pub/sub connection of this instance");
    assert!(
        eventually(POLLS, POLL, || async {
            subscriber.status().pubsub_reconnects >= 1
        })
        .await,
        "never reconnected: {:?}",
        subscriber.status()
    );
    assert!(
        delivered_eventually(&publisher, &mut sub, "room").await,
        "delivery after the kill"
    );
    // Subscriptions made after the reconnect work as well.
    let mut late = subscriber.broker().subscribe("late").await;
    assert!(delivered_eventually(&publisher, &mut late, "late").await);
}

/// The proxy cuts every connection (commands and pub/sub): delivery resumes on its own.
#[tokio::test]
async fn pubsub_resubscribes_after_network_cut() {
    let Some(redis) = TestRedis::new("faults::pubsub_resubscribes_after_network_cut") else {
        return;
    };
    let (proxy, subscriber) = proxied(&redis).await;
    let publisher = connect(&fault_config(redis.config())).await;
    let mut sub = subscriber.broker().subscribe("room").await;
    assert!(delivered_eventually(&publisher, &mut sub, "room").await);
    proxy.cut();
    assert!(
        delivered_eventually(&publisher, &mut sub, "room").await,
        "delivery after the cut"
    );
    assert!(subscriber.status().pubsub_reconnects >= 1);
}

fn quota(burst: u32) -> Quota {
    Quota::new(
        NonZeroU32::new(1).expect("1 > 0"),
        Duration::from_secs(3_600),
        NonZeroU32::new(burst).expect("burst > 0"),
    )
}

/// Two instances sharing Redis share one limit.
#[tokio::test]
async fn gcra_limit_holds_across_instances() {
    let Some(redis) = TestRedis::new("faults::gcra_limit_holds_across_instances") else {
        return;
    };
    let a = connect(&redis.config()).await;
    let b = connect(&redis.config()).await;
    let q = quota(5);
    let mut allowed = 0;
    for i in 0..20 {
        let kv = if i % 2 == 0 { &a } else { &b };
        if kv
            .rate_limiter()
            .check("login:10.0.0.1", q)
            .await
            .is_allowed()
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5, "burst 5 shared by both instances");
    assert_eq!(a.status().fallbacks + b.status().fallbacks, 0);
}

/// An instance whose Redis is unreachable limits on its own (per instance), and stays answering.
#[tokio::test]
async fn gcra_falls_back_per_instance_when_redis_is_unreachable() {
    let Some(redis) =
        TestRedis::new("faults::gcra_falls_back_per_instance_when_redis_is_unreachable")
    else {
        return;
    };
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let cut_off = connect(&fault_config(redis.config_via(closed))).await;
    let healthy = connect(&redis.config()).await;
    let q = quota(5);
    let key = "login:10.0.0.2";
    let shared_allowed = count_allowed(&healthy, key, q, 10).await;
    assert_eq!(shared_allowed, 5);
    // The cut-off instance has not seen those: its own fallback allows its own burst.
    let local_allowed = count_allowed(&cut_off, key, q, 10).await;
    assert_eq!(local_allowed, 5);
    assert_eq!(cut_off.redis_state(), RedisState::Down);
    assert!(cut_off.status().fallbacks >= 10);
    assert_eq!(healthy.status().fallbacks, 0);
}

async fn count_allowed(kv: &Kv, key: &str, q: Quota, tries: u32) -> u32 {
    let mut allowed = 0;
    for _ in 0..tries {
        let decision = tokio::time::timeout(CALL_BOUND, kv.rate_limiter().check(key, q))
            .await
            .expect("bounded");
        if decision.is_allowed() {
            allowed += 1;
        }
    }
    allowed
}

/// A namespace invalidated while Redis was unreachable is bumped in Redis before this instance reads Redis again,
/// so no instance keeps serving what was invalidated during the outage.
#[tokio::test]
async fn invalidations_missed_during_an_outage_are_replayed() {
    let Some(redis) = TestRedis::new("faults::invalidations_missed_during_an_outage_are_replayed")
    else {
        return;
    };
    let (proxy, writer) = proxied(&redis).await;
    let other = connect(&redis.config()).await;
    let key = CacheKey::new("feed", "u1");
    other
        .cache()
        .set(&key, Bytes::from_static(b"old"), Duration::from_secs(60))
        .await;
    assert!(matches!(writer.cache().get(&key).await, Lookup::Hit(_)));

    proxy.refuse_new(true);
    proxy.cut();
    tokio::time::timeout(CALL_BOUND, writer.cache().invalidate_namespace("feed"))
        .await
        .expect("bounded");
    // Still in Redis for now: the other instance sees the old value until the writer is back.
    assert!(matches!(other.cache().get(&key).await, Lookup::Hit(_)));

    proxy.restore();
    until_up(&writer).await;
    assert!(matches!(writer.cache().get(&key).await, Lookup::Miss(_)));
    assert!(
        matches!(other.cache().get(&key).await, Lookup::Miss(_)),
        "replayed into Redis"
    );
}

/// A key whose policy allows no fallback misses while Redis fails (nothing is served from, or stored in, a
/// per-instance copy that other instances' invalidations cannot reach), and a scope invalidated during the outage
/// takes its whole namespace with it once Redis answers.
#[tokio::test]
async fn no_fallback_keys_miss_while_redis_fails() {
    const POLICY: CachePolicy = CachePolicy {
        name: "faults_feed",
        key_format: "scope {user}, key {page}",
        ttl: Duration::from_secs(60),
        invalidation: "test only",
        on_miss: "compute",
        on_redis_failure: "miss",
        fallback: false,
    };
    let Some(redis) = TestRedis::new("faults::no_fallback_keys_miss_while_redis_fails") else {
        return;
    };
    let (proxy, writer) = proxied(&redis).await;
    let other = connect(&redis.config()).await;
    let mine = POLICY.scoped_key("u1", "first");
    let theirs = POLICY.scoped_key("u2", "first");
    for key in [&mine, &theirs] {
        other
            .cache()
            .set(key, Bytes::from_static(b"old"), Duration::from_secs(60))
            .await;
    }

    proxy.refuse_new(true);
    proxy.cut();
    let during = tokio::time::timeout(CALL_BOUND, writer.cache().get(&mine))
        .await
        .expect("bounded");
    let Lookup::Miss(fill) = during else {
        panic!("no fallback: a failing Redis is a miss");
    };
    writer
        .cache()
        .fill(
            &mine,
            fill,
            Bytes::from_static(b"outage"),
            Duration::from_secs(60),
        )
        .await;
    writer
        .cache()
        .set(
            &mine,
            Bytes::from_static(b"outage"),
            Duration::from_secs(60),
        )
        .await;
    assert!(
        matches!(writer.cache().get(&mine).await, Lookup::Miss(_)),
        "nothing was kept in process"
    );
    tokio::time::timeout(
        CALL_BOUND,
        writer
            .cache()
            .invalidate_scopes(POLICY.name, &["u1".to_owned()], POLICY.ttl),
    )
    .await
    .expect("bounded");

    proxy.restore();
    until_up(&writer).await;
    assert!(matches!(writer.cache().get(&mine).await, Lookup::Miss(_)));
    assert!(
        matches!(other.cache().get(&theirs).await, Lookup::Miss(_)),
        "the scope bump that could not reach Redis was replayed as a namespace bump"
    );
}

/// An invalid URL is a configuration error; an unreachable Redis is not an error at all.
#[tokio::test]
async fn connect_fails_only_on_invalid_config() {
    let bad = RedisConfig::default().with_url("http://not-redis");
    assert!(Kv::connect(&bad).await.is_err());
    let unreachable = fault_config(RedisConfig::default().with_url("redis://127.0.0.1:1"));
    let kv = Kv::connect(&unreachable)
        .await
        .expect("unreachable Redis still connects");
    assert!(matches!(
        tokio::time::timeout(CALL_BOUND, kv.cache().get(&CacheKey::new("p", "k"))).await,
        Ok(Lookup::Miss(_))
    ));
    assert_ne!(kv.redis_state(), RedisState::Up);
    assert_eq!(
        Kv::in_process(&RedisConfig::default()).redis_state(),
        RedisState::Disabled
    );
}

/// A presence removal made while Redis is cut is retried once Redis answers again, so the member
/// does not linger there for its whole TTL (a second instance reading Redis sees it gone).
#[tokio::test]
async fn presence_removals_during_an_outage_reach_redis_after_it() {
    let Some(redis) = TestRedis::new("faults::presence_removals_during_an_outage") else {
        return;
    };
    let (proxy, kv) = proxied(&redis).await;
    let direct = connect(&fault_config(redis.config())).await;
    kv.presence()
        .add("room", "leaving", Duration::from_secs(600))
        .await;
    kv.presence()
        .add("room", "staying", Duration::from_secs(600))
        .await;
    assert_eq!(
        direct.presence().members("room").await,
        ["leaving", "staying"]
    );

    proxy.refuse_new(true);
    proxy.cut();
    tokio::time::timeout(CALL_BOUND, kv.presence().remove("room", "leaving"))
        .await
        .expect("the removal answers while Redis is cut");
    assert_eq!(
        direct.presence().members("room").await,
        ["leaving", "staying"],
        "the cut removal did not reach Redis"
    );

    proxy.restore();
    until_up(&kv).await;
    assert!(
        eventually(POLLS, POLL, || async {
            // Any presence call of the instance that kept the removal retries it.
            let _ = kv.presence().members("elsewhere").await;
            direct.presence().members("room").await == ["staying"]
        })
        .await,
        "the kept removal never reached Redis"
    );
}

/// A member admitted while Redis is cut is replayed into Redis once it answers: it shows there
/// to other processes and counts in the bound, so the cluster-wide limit holds again.
#[tokio::test]
async fn presence_admissions_during_an_outage_reach_redis_after_it() {
    let Some(redis) = TestRedis::new("faults::presence_admissions_during_an_outage") else {
        return;
    };
    let (proxy, kv) = proxied(&redis).await;
    let direct = connect(&fault_config(redis.config())).await;
    let ttl = Duration::from_secs(600);
    assert_eq!(kv.presence().admit("user", "before", ttl, 3).await, Some(1));

    proxy.refuse_new(true);
    proxy.cut();
    let during = tokio::time::timeout(CALL_BOUND, kv.presence().admit("user", "during", ttl, 3))
        .await
        .expect("the admission answers while Redis is cut");
    assert_eq!(during, Some(2), "the fallback holds this process's members");
    assert_eq!(direct.presence().members("user").await, ["before"]);

    proxy.restore();
    until_up(&kv).await;
    // The kept admission is replayed before this one is counted: the set is then full.
    assert_eq!(kv.presence().admit("user", "third", ttl, 3).await, Some(3));
    assert_eq!(kv.presence().admit("user", "fourth", ttl, 3).await, None);
    assert_eq!(
        direct.presence().members("user").await,
        ["before", "during", "third"]
    );
    // Removing it now takes it out of Redis as well.
    kv.presence().remove("user", "during").await;
    assert_eq!(direct.presence().members("user").await, ["before", "third"]);
}
