//! The short CI variant of the load test: every scenario runs for a second against an
//! in-process server on a small seeded data set, and must answer every request successfully.
//! (The full runs, with figures, are `agora-load` by hand: README "Load tests".)

use agora_server::config::{Config, Sources};
use goose::config::{GooseConfiguration, Scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_clean() {
    let t = agora_db::testing::TestDb::sqlite().await;
    let env: Vec<(String, String)> = [
        ("AGORA_HTTP__BIND", "127.0.0.1:0"),
        ("AGORA_DATABASE__URL", t.config.url.as_str()),
        ("AGORA_ANALYTICS__ENABLED", "false"),
        ("AGORA_RATE_LIMITS__READ_PER_USER__REQUESTS", "100000000"),
        ("AGORA_RATE_LIMITS__WRITE_PER_USER__REQUESTS", "100000000"),
        ("AGORA_RATE_LIMITS__AUTH_PER_IP__REQUESTS", "100000000"),
        ("AGORA_RATE_LIMITS__AUTH_PER_ACCOUNT__REQUESTS", "100000000"),
        ("AGORA_RATE_LIMITS__CHAT_PER_USER__REQUESTS", "100000000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::load(&Sources {
        file: None,
        env: Some(env),
    })
    .expect("configuration");
    let args = agora_server::seeding::SeedArgs {
        users: 20,
        posts: 400,
        max_friends: 10,
        friends_per_user: 3,
        follows_per_user: 3,
        fanout_days: 30,
        conversations: 10,
        long_conversation: 50,
        prefix: "load".into(),
        password: "seed-password".into(),
        seed: 3,
    };
    agora_server::seeding::seed(&t.db, &config, &args)
        .await
        .expect("seed");
    let server = agora_server::start(&config).await.expect("server");
    agora_load::scenarios::use_accounts(agora_load::scenarios::Accounts {
        prefix: "load".into(),
        count: 20,
        password: "seed-password".into(),
    });
    for scenario in [
        "healthz", "login", "profile", "feed", "feedread", "post", "chat",
    ] {
        let mut goose = GooseConfiguration::default();
        goose.host = Some(format!("http://{}", server.local_addr()));
        goose.users = Some(2);
        goose.increase_rate = Some("2".into());
        goose.run_time = Some("1".into());
        goose.quiet = 1;
        goose.no_print_metrics = true;
        goose.scenarios = Some(Scenarios {
            active: vec![scenario.into()],
        });
        let metrics = agora_load::attack(goose).await.expect("attack");
        let summary = agora_load::summary::Summary::of(&metrics);
        assert_eq!(
            summary.failures(),
            0,
            "{scenario}:\n{}",
            summary.render(None)
        );
        assert!(
            summary.operations.values().map(|o| o.ok).sum::<usize>() > 0,
            "{scenario} made requests"
        );
    }
}
