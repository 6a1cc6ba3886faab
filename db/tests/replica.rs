//! Read routing against a real streaming replica (scripts/pg-replica.sh): reads go to the replica,
//! a user's own reads stay on the primary under replication lag, and reads fall back to the
//! primary — counted — when the replica is unreachable, and return to it once it answers again.
//!
//! Needs `AGORA_TEST_DATABASE_URL` and `AGORA_TEST_REPLICA_URL` (the standby's server URL, e.g.
//! `postgres://postgres@127.0.0.1:5433`); skipped without them, a failure under `CI=true`.

use std::sync::Arc;
use std::time::Duration;

use agora_db::testing::eventually;
use agora_db::testing::{TestDb, with_database};
use agora_db::users::NewUser;
use agora_db::{Db, DbConfig, DbError, ReadPolicy, Target, dispatch};
use diesel_async::SimpleAsyncConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn replica_url() -> Option<String> {
    match std::env::var("AGORA_TEST_REPLICA_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but AGORA_TEST_REPLICA_URL is not set (start one with scripts/pg-replica.sh start)"
            )
        }
        _ => {
            eprintln!("skipped: AGORA_TEST_REPLICA_URL is not set (scripts/pg-replica.sh start)");
            None
        }
    }
}

fn user(handle: &str) -> NewUser {
    NewUser {
        handle: handle.into(),
        email: format!("{handle}@example.com"),
        display_name: handle.into(),
        password_hash: "x".into(),
    }
}

async fn on_replica(db: &Db, sql: &str) {
    let (mut conn, target) = db
        .read(ReadPolicy::Anyone)
        .await
        .expect("a replica connection");
    assert_eq!(target, Target::Replica(0));
    dispatch!(conn, c => c.batch_execute(sql).await).expect(sql);
}

/// Write marks shared by two `Db` instances, standing in for Redis.
#[derive(Default)]
struct SharedMarks(std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>);

impl agora_db::WriteMarks for SharedMarks {
    fn mark(&self, user: uuid::Uuid, _window: Duration) -> agora_db::MarkFuture<'_, ()> {
        if let Ok(mut set) = self.0.lock() {
            set.insert(user);
        }
        Box::pin(async {})
    }

    fn is_marked(&self, user: uuid::Uuid) -> agora_db::MarkFuture<'_, bool> {
        let marked = self
            .0
            .lock()
            .map(|set| set.contains(&user))
            .unwrap_or(false);
        Box::pin(async move { marked })
    }
}

/// A TCP forwarder the test can switch off (connections refused) and on again.
async fn switchable_proxy(target: String) -> (u16, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = watch::channel(true);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            if !*rx.borrow() {
                drop(inbound);
                continue;
            }
            let target = target.clone();
            let mut off = rx.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = off.wait_for(|on| !on) => {}
                }
            });
        }
    });
    (port, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_route_to_the_replica_fall_back_and_keep_read_your_writes() {
    let Some(replica_server) = replica_url() else {
        return;
    };
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let db_name = t
        .config
        .url
        .rsplit('/')
        .next()
        .expect("a database name")
        .to_owned();
    let replica_db_url = with_database(&replica_server, &db_name);

    // The test database was created on the primary; wait for it to exist on the standby.
    eventually("the database to replicate", async || {
        let config = DbConfig {
            url: replica_db_url.clone(),
            ..DbConfig::default()
        };
        Db::connect(&config).await.ok()
    })
    .await;

    let config = DbConfig {
        replica_urls: vec![replica_db_url.clone()],
        read_your_writes_ms: 60_000,
        ..t.config.clone()
    };
    let db = Db::connect(&config).await.expect("primary + replica");

    // 1. Reads go to the replica, which is a standby.
    let (mut conn, target) = db.read(ReadPolicy::Anyone).await.expect("read");
    assert_eq!(target, Target::Replica(0));
    let in_recovery: Vec<String> = dispatch!(conn, c => {
        use diesel_async::RunQueryDsl;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("pg_is_in_recovery()::text")).load(c).await
    })
    .expect("query");
    assert_eq!(
        in_recovery,
        vec!["true".to_owned()],
        "the read was served by the standby"
    );
    drop(conn);
    let ann = db
        .create_user(&user("ann"))
        .await
        .expect("write on the primary");
    eventually("the write to replicate", async || {
        db.get_user(ann.id, ReadPolicy::Anyone).await.ok()
    })
    .await;

    // 2. Read-your-writes under lag: pause replay on the standby, then write.
    on_replica(&db, "SELECT pg_wal_replay_pause()").await;
    let bob = db
        .create_user(&user("bob"))
        .await
        .expect("write while the standby lags");
    let own = db.get_user(bob.id, ReadPolicy::ForUser(bob.id)).await;
    assert_eq!(own.expect("bob sees his own write").id, bob.id);
    assert!(
        matches!(
            db.get_user(bob.id, ReadPolicy::Anyone).await,
            Err(DbError::NotFound)
        ),
        "others read the lagging replica (proves the lag is real)"
    );
    // Behind a load balancer the next request may reach another instance: with shared marks
    // (Redis in production; a shared set here) that instance also reads from the primary.
    let marks = Arc::new(SharedMarks::default());
    db.share_write_marks(marks.clone());
    let other_instance = Db::connect(&config).await.expect("a second instance");
    other_instance.share_write_marks(marks);
    let carol = db
        .create_user(&user("carol"))
        .await
        .expect("write on instance one");
    let seen = other_instance
        .get_user(carol.id, ReadPolicy::ForUser(carol.id))
        .await;
    assert_eq!(
        seen.expect("carol sees her write on instance two").id,
        carol.id
    );
    assert!(matches!(
        other_instance.get_user(carol.id, ReadPolicy::Anyone).await,
        Err(DbError::NotFound)
    ));
    on_replica(&db, "SELECT pg_wal_replay_resume()").await;
    eventually("replay to catch up", async || {
        db.get_user(bob.id, ReadPolicy::Anyone).await.ok()
    })
    .await;

    // 3. Fallback: the replica behind a proxy we switch off, then on again.
    let replica_addr = replica_server
        .rsplit('@')
        .next()
        .expect("host:port")
        .to_owned();
    let (port, switch) = switchable_proxy(replica_addr).await;
    let proxied = with_database(&format!("postgres://postgres@127.0.0.1:{port}"), &db_name);
    let config = DbConfig {
        replica_urls: vec![proxied],
        acquire_timeout_ms: 500,
        ..config
    };
    let db = Db::connect(&config)
        .await
        .expect("primary + proxied replica");
    assert_eq!(
        db.read(ReadPolicy::Anyone).await.expect("read").1,
        Target::Replica(0)
    );
    switch.send_replace(false);
    // Pooled connections die with the proxy; new ones are refused.
    let mut fell_back = false;
    for _ in 0..50 {
        let (mut conn, target) = db
            .read(ReadPolicy::Anyone)
            .await
            .expect("reads keep working");
        if target == Target::Primary {
            fell_back = true;
            break;
        }
        // A pooled replica connection may still be open: use it so a dead one is noticed.
        let _ = db
            .run("probe", target, async {
                dispatch!(conn, c => c.batch_execute("SELECT 1").await)
            })
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fell_back, "reads fell back to the primary");
    assert_eq!(db.replica_health(), vec![false]);
    assert_eq!(
        db.get_user(ann.id, ReadPolicy::Anyone)
            .await
            .expect("served by the primary")
            .id,
        ann.id
    );
    switch.send_replace(true);
    // The proxy takes a moment to accept again; a probe before that still sees it down.
    eventually("the replica to answer a probe", async || {
        db.probe_replicas().await;
        (db.replica_health() == vec![true]).then_some(())
    })
    .await;
    assert_eq!(
        db.replica_health(),
        vec![true],
        "the replica is used again once it answers"
    );
    assert_eq!(
        db.read(ReadPolicy::Anyone).await.expect("read").1,
        Target::Replica(0)
    );
}
