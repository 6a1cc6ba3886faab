//! `TestApp`: a real server on 127.0.0.1:0 (with its own SQLite file unless a test names a
//! database) and a generated client pointed at it.

use agora_server::config::{Config, Sources};
use agora_server::http_server::StartError;

pub struct TestApp {
    pub server: Option<agora_server::RunningServer>,
    pub client: agora_client::Client,
    pub base_url: String,
    /// The database the server uses (to inspect what it wrote).
    pub database_url: String,
    sqlite_file: std::path::PathBuf,
}

impl TestApp {
    /// Starts a server with the default configuration on an ephemeral port.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a server with `AGORA_*` overrides.
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        Self::try_start_with(env).await.expect("the server starts")
    }

    /// Like [`TestApp::start_with`], returning the start-up error.
    pub async fn try_start_with(env: &[(&str, &str)]) -> Result<Self, StartError> {
        let database = std::env::temp_dir().join(format!("agora-e2e-{}.db", unique()));
        let mut vars: Vec<(String, String)> = vec![
            ("AGORA_HTTP__BIND".into(), "127.0.0.1:0".into()),
            (
                "AGORA_DATABASE__URL".into(),
                format!("sqlite://{}", database.display()),
            ),
            // Analytics rows arrive in the background (after a flush interval), which would
            // race every "nothing was written" row count; the analytics tests switch it on.
            ("AGORA_ANALYTICS__ENABLED".into(), "false".into()),
        ];
        // A test's own settings replace the defaults above.
        vars.retain(|(k, _)| !env.iter().any(|(e, _)| e == k));
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let database_url = vars
            .iter()
            .find(|(k, _)| k == "AGORA_DATABASE__URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let config = Config::load(&Sources {
            file: None,
            env: Some(vars),
        })
        .expect("test configuration is valid");
        let server = agora_server::start(&config).await?;
        let base_url = format!("http://{}", server.local_addr());
        let client = agora_client::Client::connect(&base_url).expect("client builds");
        let app = Self {
            server: Some(server),
            client,
            base_url,
            database_url,
            sqlite_file: database,
        };
        if config.jobs.in_process {
            app.settle_periodic_jobs().await;
        }
        Ok(app)
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.sqlite_file.display()));
        }
    }
}

/// The JWT key the identity tests configure, so they can forge tokens with it.
pub const TEST_JWT_KID: &str = "e2e";
/// The secret of [`TEST_JWT_KID`].
pub const TEST_JWT_SECRET: &str = "e2e-signing-secret-0123456789abcdef";

/// `AGORA_AUTH__KEYS` naming the test key ([`TEST_JWT_KID`]`:`[`TEST_JWT_SECRET`]).
pub const TEST_JWT_KEYS: &str = "[\"e2e:e2e-signing-secret-0123456789abcdef\"]";

/// [`TEST_JWT_KEYS`], owned.
pub fn test_jwt_keys() -> String {
    debug_assert_eq!(
        TEST_JWT_KEYS,
        format!("[\"{TEST_JWT_KID}:{TEST_JWT_SECRET}\"]")
    );
    TEST_JWT_KEYS.to_owned()
}

/// Runs an end-to-end body against a server on SQLite and, when `AGORA_TEST_DATABASE_URL` is set,
/// one on PostgreSQL: `e2e_both_backends!(name, &[("AGORA_X", "v")], |app| async move { … })`.
#[macro_export]
macro_rules! e2e_both_backends {
    ($name:ident, $env:expr, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let env: &[(&str, &str)] = $env;
                let $app = $crate::support::TestApp::start_with(env).await;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = agora_db::testing::TestDb::postgres().await else {
                    return;
                };
                let given: &[(&str, &str)] = $env;
                let mut env: Vec<(&str, &str)> = given.to_vec();
                env.push(("AGORA_DATABASE__URL", &db.config.url));
                let $app = $crate::support::TestApp::start_with(&env).await;
                $body.await;
                drop(db);
            }
        }
    };
}

/// The HTTP status of a client call, success or error.
pub fn status<T>(
    result: &Result<
        agora_client::ResponseValue<T>,
        agora_client::Error<agora_client::types::ApiError>,
    >,
) -> u16 {
    match result {
        Ok(r) => r.status().as_u16(),
        Err(agora_client::Error::ErrorResponse(r)) => r.status().as_u16(),
        Err(e) => e.status().map(|s| s.as_u16()).unwrap_or(0),
    }
}

/// The error body of a failed client call.
pub fn error_body<T: std::fmt::Debug>(
    result: Result<
        agora_client::ResponseValue<T>,
        agora_client::Error<agora_client::types::ApiError>,
    >,
) -> (u16, agora_client::types::ApiError) {
    match result {
        Err(agora_client::Error::ErrorResponse(r)) => (r.status().as_u16(), r.into_inner()),
        other => panic!("expected an error response, got {other:?}"),
    }
}

impl TestApp {
    /// Registers `handle` (password `password-of-<handle>`) and returns the session.
    pub async fn register(&self, handle: &str) -> agora_client::types::Session {
        self.register_with_email(handle, &format!("{}@example.com", handle.to_lowercase()))
            .await
    }

    /// Registers `handle` with `email` (password `password-of-<handle>`).
    pub async fn register_with_email(
        &self,
        handle: &str,
        email: &str,
    ) -> agora_client::types::Session {
        self.client
            .register()
            .body(
                agora_client::types::RegisterRequest::builder()
                    .handle(handle)
                    .email(email)
                    .password(format!("password-of-{handle}"))
                    .display_name(format!("User {handle}")),
            )
            .send()
            .await
            .expect("register")
            .into_inner()
    }

    /// Makes `handle` an admin the way an operator does it (`agora admin grant <handle>`) and
    /// returns a client with `token`.
    pub async fn grant_admin(&self, handle: &str, token: &str) -> agora_client::Client {
        let db = self.database().await;
        let user = agora_server::identity::admin::set_role_from_cli(&db, handle, true)
            .await
            .expect("grant");
        assert_eq!(user.role, agora_db::users::Role::Admin);
        self.client_with_token(token)
    }

    /// Waits (briefly) until the workers enqueued their periodic maintenance jobs, which they
    /// do right after start: tests that compare row counts must not see them arrive.
    async fn settle_periodic_jobs(&self) {
        let db = self.database().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for kind in ["purge_succeeded_jobs", "purge_analytics"] {
            let filter = agora_db::jobs::JobFilter {
                kind: Some(kind.into()),
                ..Default::default()
            };
            while std::time::Instant::now() < deadline
                && db
                    .list_jobs(&filter, None, 1)
                    .await
                    .map(|j| j.is_empty())
                    .unwrap_or(false)
            {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }

    /// The server's database, to inspect what it wrote.
    pub async fn database(&self) -> agora_db::Db {
        agora_db::Db::connect(&agora_db::DbConfig {
            url: self.database_url.clone(),
            ..Default::default()
        })
        .await
        .expect("the server's database")
    }

    /// A client for the same server that sends `token`.
    pub fn client_with_token(&self, token: &str) -> agora_client::Client {
        let client = agora_client::Client::connect(&self.base_url).expect("client builds");
        client.credentials().set_token(token);
        client
    }

    /// A client for the same server that sends `User-Agent: <agent>` (a device, to the server).
    pub fn client_with_user_agent(&self, agent: &str) -> agora_client::Client {
        let http = reqwest::Client::builder()
            .user_agent(agent)
            .build()
            .expect("client builds");
        agora_client::Client::new_with_client(
            &self.base_url,
            http,
            agora_client::Credentials::default(),
        )
    }

    /// Signs `handle` (registered by [`TestApp::register`]) in from the device `agent`.
    pub async fn login_from(&self, handle: &str, agent: &str) -> agora_client::types::Session {
        self.client_with_user_agent(agent)
            .login()
            .body(
                agora_client::types::LoginRequest::builder()
                    .login(handle)
                    .password(format!("password-of-{handle}")),
            )
            .send()
            .await
            .expect("login")
            .into_inner()
    }

    /// A raw JSON request (for inputs the typed client refuses to build).
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.raw_as(None, method, path, body).await
    }

    /// [`TestApp::raw`], sending `token` as the bearer token when given.
    pub async fn raw_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base_url))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("answers");
        let status = response.status().as_u16();
        let json = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, json)
    }
}

/// The Redis state an instance reports in `GET /v1/meta` (`disabled`, `up`, `degraded`, `down`).
pub async fn redis_state(app: &TestApp) -> String {
    let meta = app
        .client
        .get_meta()
        .send()
        .await
        .expect("meta answers 200")
        .into_inner();
    serde_json::to_value(meta.redis)
        .expect("json")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the client's user has at least `n` notifications (the in-process workers
/// deliver them); answers them newest first.
pub async fn wait_for_notifications(
    client: &agora_client::Client,
    n: usize,
) -> Vec<agora_client::types::Notification> {
    agora_db::testing::eventually("notifications to arrive", async || {
        let items = client
            .list_notifications()
            .send()
            .await
            .ok()?
            .into_inner()
            .items;
        (items.len() >= n).then_some(items)
    })
    .await
}

impl TestApp {
    /// Waits until no job of `queue` is ready or running: the workers finished what the
    /// requests so far enqueued (feed fan-out, pruning, purges).
    pub async fn wait_for_queue(&self, queue: &str) {
        let db = self.database().await;
        agora_db::testing::eventually(&format!("the {queue} queue to drain"), async || {
            for state in [
                agora_db::jobs::JobState::Ready,
                agora_db::jobs::JobState::Running,
            ] {
                let filter = agora_db::jobs::JobFilter {
                    state: Some(state),
                    queue: Some(queue.into()),
                    kind: None,
                };
                if !db.list_jobs(&filter, None, 1).await.ok()?.is_empty() {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }

    /// Makes `a` and `b` friends (a asks, b accepts).
    pub async fn befriend(
        &self,
        a: &agora_client::types::Session,
        b: &agora_client::types::Session,
    ) {
        let request = self
            .client_with_token(&a.tokens.access_token)
            .send_friend_request()
            .body(agora_client::types::FriendRequestCreate { user_id: b.user.id })
            .send()
            .await
            .expect("send_friend_request")
            .into_inner();
        let request_id = request.request_id.expect("a pending request");
        self.client_with_token(&b.tokens.access_token)
            .accept_friend_request()
            .request_id(request_id)
            .send()
            .await
            .expect("accept_friend_request");
    }
}

/// Creates a post as `client`'s user.
pub async fn create_post(
    client: &agora_client::Client,
    body: &str,
    visibility: agora_client::types::PostVisibility,
) -> agora_client::types::Post {
    client
        .create_post()
        .body(
            agora_client::types::PostCreate::builder()
                .body(body)
                .visibility(visibility),
        )
        .send()
        .await
        .expect("create_post")
        .into_inner()
}

/// `AGORA_REDIS__*` for a server whose Redis is behind a chaos proxy: short command timeouts, a
/// breaker that opens on the first failure and quick pub/sub reconnects, so a cut is noticed and a
/// restore recovered within a test's patience.
pub fn chaos_redis_env<'a>(url: &'a str, prefix: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AGORA_REDIS__URL", url),
        ("AGORA_REDIS__KEY_PREFIX", prefix),
        ("AGORA_REDIS__COMMAND_TIMEOUT_MS", "300"),
        ("AGORA_REDIS__BREAKER_THRESHOLD", "1"),
        ("AGORA_REDIS__BREAKER_COOLDOWN_MS", "200"),
        ("AGORA_REDIS__PUBSUB_PING_INTERVAL_MS", "100"),
        ("AGORA_REDIS__PUBSUB_RECONNECT_MAX_DELAY_MS", "200"),
    ]
}

/// A test Redis (named after the test) behind a chaos proxy: the Redis, the proxy and the
/// configuration that reaches Redis through it; `None` when no test Redis is configured.
pub async fn redis_behind_proxy(
    name: &str,
) -> Option<(
    agora_kv::testing::TestRedis,
    agora_kv::testing::ChaosProxy,
    agora_kv::RedisConfig,
)> {
    let redis = agora_kv::testing::TestRedis::new(name)?;
    let proxy =
        agora_kv::testing::ChaosProxy::start(redis.server_addr().await.expect("redis address"))
            .await
            .expect("proxy");
    let config = redis.config_via(proxy.addr());
    Some((redis, proxy, config))
}

/// Every page of `client`'s home feed, `limit` at a time: the posts in order, and the status of
/// each page call.
pub async fn home_feed(
    client: &agora_client::Client,
    limit: u32,
) -> (Vec<agora_client::types::Post>, Vec<u16>) {
    let (mut posts, mut statuses) = (Vec::new(), Vec::new());
    let mut token: Option<String> = None;
    loop {
        let mut call = client
            .get_home_feed()
            .limit(std::num::NonZeroU32::new(limit).expect("limit"));
        if let Some(t) = token.take() {
            call = call.page_token(t);
        }
        let result = call.send().await;
        statuses.push(status(&result));
        let page = result.expect("feed page").into_inner();
        posts.extend(page.items);
        match page.next_page {
            Some(next) => token = Some(next),
            None => return (posts, statuses),
        }
    }
}
