//! The hot paths' query plans on PostgreSQL, over a generated data set of realistic size
//! (10,000 users, 200,000 posts, a friend list of 5,000, 6,000 group chats with the hub in 300 of
//! them and a conversation of 100,000 messages; `Db::seed`).
//!
//! Not hand-written SQL: the repository methods run for real against the data set while the
//! connection's instrumentation records every statement diesel sends. Each recorded query is
//! then prepared and explained with PostgreSQL's *generic* plan (`plan_cache_mode =
//! force_generic_plan`, the plan a cached prepared statement ends up with, whatever its
//! parameters). A plan fails when it scans a large table sequentially or sorts many rows.

use std::sync::{Arc, Mutex};

use agora_db::chat::{InboxPosition, MessageRange};
use agora_db::notifications::NotificationCursor;
use agora_db::posts::Visibility;
use agora_db::seed::SeedPlan;
use agora_db::social::ConnectionList;
use agora_db::{Conn, Db, DbConfig, ReadPolicy};
use diesel::connection::InstrumentationEvent;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

/// A table with more rows than this must never be read by a sequential scan.
const LARGE_TABLE_ROWS: f64 = 5_000.0;
/// A sort of more rows than this is a sort the indexes should have made unnecessary.
const LARGE_SORT_ROWS: f64 = 5_000.0;

#[derive(diesel::QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

#[derive(diesel::QueryableByName)]
struct TableSize {
    #[diesel(sql_type = diesel::sql_types::Text)]
    relname: String,
    #[diesel(sql_type = diesel::sql_types::Float)]
    reltuples: f32,
}

/// Every statement the (single) pooled connection runs from now on.
async fn record(db: &Db) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let mut conn = db.write().await.expect("conn");
    let Conn::Pg(c) = &mut conn else {
        panic!("a PostgreSQL connection");
    };
    let c: &mut agora_db::conn_types::PgConn = c;
    c.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let text = query.to_string();
            // Display is `<sql> -- binds: [...]`: keep the SQL with its $n placeholders.
            let sql = text
                .rsplit_once(" -- binds: ")
                .map_or(text.as_str(), |(s, _)| s);
            if let Ok(mut seen) = sink.lock() {
                seen.push(sql.to_owned());
            }
        }
    });
    seen
}

fn params(sql: &str) -> usize {
    let mut max = 0;
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let digits: String = sql[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                max = max.max(n);
            }
        }
        i += 1;
    }
    max
}

/// The generic plan of `sql` (placeholders unbound).
async fn generic_plan(admin: &mut agora_db::conn_types::PgConn, sql: &str) -> Vec<String> {
    admin
        .batch_execute("DEALLOCATE ALL")
        .await
        .expect("deallocate");
    admin
        .batch_execute(&format!("PREPARE hot AS {sql}"))
        .await
        .unwrap_or_else(|e| panic!("prepare {sql}: {e}"));
    let nulls = vec!["NULL"; params(sql)].join(", ");
    let execute = if nulls.is_empty() {
        "EXPLAIN EXECUTE hot".to_owned()
    } else {
        format!("EXPLAIN EXECUTE hot({nulls})")
    };
    let lines: Vec<PlanLine> = diesel::sql_query(execute)
        .load(admin)
        .await
        .unwrap_or_else(|e| panic!("explain {sql}: {e}"));
    lines.into_iter().map(|l| l.line).collect()
}

/// What is wrong with `plan`, if anything.
fn problems(plan: &[String], large: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for line in plan {
        if let Some(rest) = line.split("Seq Scan on ").nth(1) {
            let table = rest.split_whitespace().next().unwrap_or_default();
            if large.iter().any(|t| t == table) {
                out.push(format!("sequential scan of {table}"));
            }
        }
        let trimmed = line.trim_start().trim_start_matches("->  ");
        if trimmed.starts_with("Sort  ") || trimmed.starts_with("Incremental Sort  ") {
            let rows = line
                .split("rows=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|r| r.parse::<f64>().ok())
                .unwrap_or(0.0);
            if rows > LARGE_SORT_ROWS {
                out.push(format!("a sort of ~{rows} rows"));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_path_queries_use_indexes_on_a_realistic_data_set() {
    let Some(t) = agora_db::testing::TestDb::postgres_with(DbConfig {
        pool_size: 1,
        statement_timeout_ms: 1_800_000,
        ..DbConfig::default()
    })
    .await
    else {
        return;
    };
    let db = &t.db;
    let report = db
        .seed(&SeedPlan {
            prefix: "plan".into(),
            users: 10_000,
            posts: 200_000,
            max_friends: 5_000,
            friends_per_user: 5,
            follows_per_user: 10,
            fanout_days: 1,
            // The hubs are large authors, so the read-time merge has work to do.
            fanout_max_audience: 900,
            conversations: 6_000,
            long_conversation: 100_000,
            password_hash: "not-a-real-hash".into(),
            seed: 7,
        })
        .await
        .expect("seed");
    assert!(report.large_authors > 0, "{report:?}");
    let hub = report.hub.expect("a hub");

    // Ids to ask with: a friend of the hub, one of their posts, a post with comments.
    let policy = ReadPolicy::Primary;
    let hub_friends = db
        .list_connections(ConnectionList::Friends, hub, None, 100, policy)
        .await
        .expect("friends");
    assert_eq!(hub_friends.len(), 100);
    let reader = hub_friends[3].user.id;
    let hub_posts = db
        .list_user_posts(hub, true, None, 50, policy)
        .await
        .expect("posts");
    let post = hub_posts
        .iter()
        .find(|p| p.comment_count > 0)
        .unwrap_or(&hub_posts[0])
        .id;
    let cursor = hub_posts[10].id;

    let seen = record(db).await;
    // The hot paths, as the services call them.
    let feed = db
        .feed_entries_page(reader, None, 21, policy)
        .await
        .expect("feed");
    db.feed_entries_page(reader, feed.last().map(|p| p.id), 21, policy)
        .await
        .expect("feed page 2");
    let merged = db.merged_authors(reader, policy).await.expect("merged");
    let any: Vec<_> = std::iter::once(reader)
        .chain(merged.iter().filter(|m| m.friend).map(|m| m.author_id))
        .collect();
    let public: Vec<_> = merged
        .iter()
        .filter(|m| !m.friend)
        .map(|m| m.author_id)
        .collect();
    db.posts_by_authors(&any, &public, Some(cursor), 21, policy)
        .await
        .expect("merge-in");
    db.ties(reader, hub, policy).await.expect("ties");
    db.blocks(hub, reader, policy).await.expect("blocks");
    for list in [
        ConnectionList::Friends,
        ConnectionList::Followers,
        ConnectionList::Following,
        ConnectionList::Blocks,
    ] {
        db.list_connections(list, hub, Some(hub_friends[50].id), 21, policy)
            .await
            .expect("list");
    }
    db.list_user_posts(hub, false, Some(cursor), 21, policy)
        .await
        .expect("timeline");
    let ids: Vec<_> = hub_posts.iter().map(|p| p.id).collect();
    db.get_post(post, policy).await.expect("get_post");
    db.liked_posts(reader, &ids, policy).await.expect("liked");
    db.list_post_likes(post, None, 21, policy)
        .await
        .expect("likes");
    db.list_comments(post, reader, None, 21, policy)
        .await
        .expect("comments");
    let authors: Vec<_> = hub_friends.iter().map(|c| c.user.id).collect();
    db.user_summaries(&authors, policy)
        .await
        .expect("summaries");
    db.feed_audience(
        hub,
        Visibility::Public,
        chrono::Utc::now() - chrono::Duration::days(7),
    )
    .await
    .expect("audience");
    db.feed_last_read(reader).await.expect("last read");
    let notes = db
        .list_notifications(reader, false, None, 21, policy)
        .await
        .expect("notifications");
    let last = notes.last().expect("seeded notifications");
    db.list_notifications(
        reader,
        true,
        Some(NotificationCursor {
            activity_at: last.activity_at,
            id: last.id,
        }),
        21,
        policy,
    )
    .await
    .expect("unread page");
    db.count_unread_notifications(reader, policy)
        .await
        .expect("badge");
    // Chat: the hub's inbox (hundreds of conversations), its long conversation both ways and
    // the resume replay (`after`), membership checks and a send.
    let long = report.long_conversation.expect("a long conversation");
    let inbox = db
        .list_conversations(hub, None, 21, policy)
        .await
        .expect("inbox");
    let last = inbox.last().expect("the hub's conversations");
    db.list_conversations(
        hub,
        Some(InboxPosition {
            last_activity_at: last.conversation.last_activity_at,
            id: last.conversation.id,
        }),
        21,
        policy,
    )
    .await
    .expect("inbox page 2");
    db.conversation_view(long, hub, policy)
        .await
        .expect("view")
        .expect("the hub is a member");
    db.member_ids(long, policy).await.expect("members");
    for range in [
        MessageRange::Before(None),
        MessageRange::Before(Some(50_000)),
        MessageRange::After(99_000),
    ] {
        db.list_messages(long, 0, range, 51, policy)
            .await
            .expect("messages");
    }
    db.send_message(long, hub, "plan", "plan-1")
        .await
        .expect("send")
        .expect("a member sends");

    let statements: Vec<String> = {
        let mut all = seen.lock().expect("recorded").clone();
        // Reads, and statements led by a CTE (the one-statement send).
        all.retain(|s| {
            let head = s.trim_start().to_uppercase();
            head.starts_with("SELECT") || head.starts_with("WITH")
        });
        all.dedup();
        all
    };
    assert!(
        statements.len() >= 20,
        "recorded {} queries",
        statements.len()
    );
    assert!(
        statements.iter().any(|s| s.contains("WITH member AS")),
        "the one-statement send is among the checked statements"
    );

    let mut admin = <agora_db::conn_types::PgConn as AsyncConnection>::establish(&t.config.url)
        .await
        .expect("admin connection");
    admin
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .expect("generic plans");
    let large: Vec<String> = diesel::sql_query(
        "SELECT relname::text AS relname, reltuples FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
    )
    .load::<TableSize>(&mut admin)
    .await
    .expect("table sizes")
    .into_iter()
    .filter(|t| f64::from(t.reltuples) > LARGE_TABLE_ROWS)
    .map(|t| t.relname)
    .collect();
    for table in [
        "posts",
        "feed_entries",
        "friendships",
        "follows",
        "post_likes",
        "comments",
        "notifications",
        "users",
        "messages",
        "conversation_members",
        "conversations",
    ] {
        assert!(
            large.iter().any(|t| t == table),
            "{table} is large in the data set: {large:?}"
        );
    }
    let mut failures = Vec::new();
    for sql in &statements {
        let plan = generic_plan(&mut admin, sql).await;
        let found = problems(&plan, &large);
        if !found.is_empty() {
            failures.push(format!(
                "{}\n  {sql}\n{}",
                found.join("; "),
                plan.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "plans without indexes:\n\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn the_plan_checker_flags_scans_and_big_sorts() {
    let large = vec!["posts".to_owned()];
    let bad = vec![
        "Limit  (cost=1.00..2.00 rows=21 width=8)".to_owned(),
        "  ->  Sort  (cost=1.00..2.00 rows=200000 width=8)".to_owned(),
        "        ->  Seq Scan on posts  (cost=0.00..1.00 rows=200000 width=8)".to_owned(),
    ];
    assert_eq!(problems(&bad, &large).len(), 2);
    let good = vec![
        "Limit  (cost=0.42..2.00 rows=21 width=8)".to_owned(),
        "  ->  Index Scan Backward using posts_author_idx on posts  (cost=0.42..9.00 rows=40 width=8)".to_owned(),
        "  ->  Seq Scan on large_authors  (cost=0.00..1.00 rows=5 width=16)".to_owned(),
        "  ->  Sort  (cost=1.00..2.00 rows=40 width=8)".to_owned(),
    ];
    assert!(problems(&good, &large).is_empty());
    assert_eq!(params("SELECT 1 WHERE a = $1 AND b < $12"), 12);
}
