//! Starts the Dropshot server for a configuration and stops it gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agora_api::rt::ApiContext;
use dropshot::{ConfigDropshot, HandlerTaskMode, HttpServer, ServerBuilder};

use crate::config::Config;
use crate::service::{Agora, BuildInfo, Lifecycle};
use crate::telemetry;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The generated API description was rejected by Dropshot (a generator bug).
    #[error("cannot build the API description: {0}")]
    Api(String),
    /// A setting the configuration check let through is unusable (a bug in the check).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The database could not be opened.
    #[error("cannot open the database: {0}")]
    Database(String),
    /// The identity service could not be built (keys, hashing parameters).
    #[error("cannot set up identity: {0}")]
    Identity(String),
    /// The Redis settings are invalid (an unreachable Redis is not an error).
    #[error("invalid Redis settings: {0}")]
    Redis(String),
    /// The recorded migrations do not match this binary (an applied migration was edited).
    #[error("refusing to start: {0}")]
    Migrations(String),
    /// Binding or starting the listener failed.
    #[error("cannot start the HTTP server on {bind}: {message}")]
    Listen { bind: SocketAddr, message: String },
}

/// A started server.
pub struct RunningServer {
    server: HttpServer<ApiContext<Agora>>,
    lifecycle: Arc<Lifecycle>,
    drain: Duration,
    workers: Option<agora_jobs::RunningWorkers>,
    analytics: crate::analytics::Flusher,
    gateway: crate::realtime::Gateway,
}

impl RunningServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The real-time gateway of this instance (its live figures).
    pub fn gateway(&self) -> &crate::realtime::Gateway {
        &self.gateway
    }

    /// Stops taking traffic: `/readyz` turns 503, then after the drain period the listener closes
    /// and in-flight requests finish.
    pub async fn shutdown(self) -> Result<(), String> {
        self.lifecycle.set_stopping();
        tracing::info!(drain_secs = self.drain.as_secs(), "shutting down");
        // Sockets go over most of the window (not all: each needs a moment to say goodbye
        // before the listener closes).
        self.gateway.drain(self.drain.mul_f64(0.8));
        tokio::time::sleep(self.drain).await;
        let closed = self.server.close().await;
        // Buffered analytics become a job before the workers stop (it waits for the next ones).
        self.analytics.shutdown().await;
        // After the listener: requests that enqueue jobs have finished, and the workers get their
        // own drain window to finish what they run.
        if let Some(workers) = self.workers {
            workers.shutdown().await;
        }
        closed
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<(), String> {
        wait_for_signal().await;
        self.shutdown().await
    }

    /// [`RunningServer::run_until_signal`] as a process ends it: success, or the shutdown's
    /// failure printed and a failure code.
    pub async fn run_to_exit(self) -> std::process::ExitCode {
        match self.run_until_signal().await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shutdown failed: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Starts serving `config`. Logging and metrics are set up first; readiness turns on at the end.
pub async fn start(config: &Config) -> Result<RunningServer, StartError> {
    telemetry::init_logging(&config.log);
    let metrics = telemetry::metrics_handle(&config.metrics);
    let lifecycle = Arc::new(Lifecycle::default());
    let db = agora_db::Db::connect(&config.database)
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    let schema = agora_db::migrate::check_at_startup(&db, config.auto_apply_migrations())
        .await
        .map_err(|e| StartError::Migrations(e.to_string()))?;
    tokio::spawn(db.clone().probe_replicas_forever());
    // Never waits for Redis: an unreachable Redis only means the in-process fallbacks serve.
    let kv = agora_kv::Kv::connect(&config.redis)
        .await
        .map_err(|e| StartError::Redis(e.to_string()))?;
    db.share_write_marks(Arc::new(crate::write_marks::CounterWriteMarks(
        kv.counter().clone(),
    )));
    let identity = crate::identity::Identity::new(db.clone(), kv.clone(), &config.auth)
        .await
        .map_err(|e| StartError::Identity(e.to_string()))?;
    let authenticator = identity.authenticator();
    let authorizer = identity.authorizer();
    let limits = Arc::new(crate::rate_limits::RateLimits::new(
        kv.rate_limiter().clone(),
        config.rate_limits.clone(),
    ));
    let features = Arc::new(crate::features::ConfiguredFlags::new(
        config.features.clone(),
        config.http.feature_disabled_retry_after_secs,
    ));
    let mut jobs_config = config.clone();
    let jobs_db = db.clone();
    let jobs_kv = kv.clone();
    let notifications = crate::notifications::Notifications::new(
        db.clone(),
        kv.clone(),
        config.notifications.clone(),
    );
    let pusher = crate::push::Pusher::from_config(&config.push)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let (analytics, flusher) = crate::analytics::Analytics::start(db.clone(), &config.analytics);
    crate::identity::profiles::Profiles::follow_invalidations(kv.clone());
    let pages = crate::feed::FeedPages::new(kv.cache().clone());
    let chat = crate::chat::Chat::new(db.clone(), kv.clone());
    let gateway = crate::realtime::Gateway::new(
        crate::realtime::GatewayParts {
            chat: chat.clone(),
            db: db.clone(),
            kv: kv.clone(),
            authenticator: authenticator.clone(),
        },
        config.realtime,
    );
    let service = Agora {
        social: crate::social::Social::new(db.clone(), pages.clone()),
        posts: crate::posts::Posts::new(db.clone(), identity.clone(), pages.clone()),
        feed: crate::feed::Feed::new(db.clone(), config.feed.clone(), pages),
        chat: chat.clone(),
        realtime: gateway.clone(),
        db,
        identity,
        kv,
        notifications,
        unsubscribe: crate::email::unsubscribe_key(config),
        analytics,
        pusher: pusher.clone(),
        allow_insecure_push_endpoints: config.push.allow_insecure_endpoints,
        limits: limits.clone(),
        lifecycle: lifecycle.clone(),
        metrics,
        build: BuildInfo::current(),
        retry_after_secs: config.http.unavailable_retry_after_secs,
    };
    let api = agora_api::api_description::<Agora>().map_err(|e| StartError::Api(e.to_string()))?;
    // Parsed when the configuration loaded.
    let cors = agora_api::rt::CorsPolicy::new(
        config.http.cors_allowed_origins.value().clone(),
        config.http.cors_max_age_secs,
    );
    let proxies = config.http.trusted_proxies.value().clone();
    let context = ApiContext::new(service, authenticator)
        .with_authorizer(authorizer)
        .with_rate_limiter(limits)
        .with_features(features)
        .with_cors(cors)
        .with_trusted_proxies(proxies)
        .with_max_header_bytes(config.http.max_header_bytes);
    let dropshot_config = ConfigDropshot {
        bind_address: config.http.bind,
        default_request_body_max_bytes: config.http.request_body_max_bytes,
        // Detached: a client that disconnects does not cancel a handler half-way through a write.
        default_handler_task_mode: HandlerTaskMode::Detached,
        ..Default::default()
    };
    // Dropshot logs through slog; request logging lives in the generated adapter (tracing), so
    // Dropshot's own per-request lines are dropped rather than written in a second format.
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let server = ServerBuilder::new(api, context, log)
        .config(dropshot_config)
        .start()
        .map_err(|e| StartError::Listen {
            bind: config.http.bind,
            message: e.to_string(),
        })?;
    // Links in emails point at the address actually bound (port 0 becomes the real port)
    // unless `email.public_base_url` says where the public reaches this API.
    jobs_config.http.bind = server.local_addr();
    let mailer =
        crate::email::mailer(&jobs_config).map_err(|e| StartError::Config(e.to_string()))?;
    let jobs = crate::jobs::JobDeps {
        db: jobs_db,
        kv: jobs_kv,
        config: jobs_config,
        mailer,
        pusher,
    };
    let mut workers = None;
    match schema {
        agora_db::migrate::StartupCheck::Ready => {
            if config.jobs.in_process {
                workers = Some(crate::jobs::start_workers(&jobs, &[]));
            } else {
                tracing::info!("jobs.in_process is off: `agora worker` processes run the jobs");
            }
            lifecycle.set_ready();
        }
        agora_db::migrate::StartupCheck::Behind { first_pending } => {
            tracing::warn!(first_pending = %first_pending, "schema is behind and auto-apply is off; staying not-ready, no job workers");
            lifecycle.set_schema_behind(first_pending);
        }
    }
    tracing::info!(addr = %server.local_addr(), "agora listening");
    Ok(RunningServer {
        server,
        lifecycle,
        drain: Duration::from_secs(config.http.shutdown_drain_secs),
        workers,
        analytics: flusher,
        gateway,
    })
}
