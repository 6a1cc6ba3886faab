//! Configuration: defaults → optional `agora.toml` → `AGORA_*` environment variables, where
//! `AGORA_<KEY>_FILE` reads a secret from a file. The whole configuration is validated before the
//! port is bound, and every problem is reported at once with where its value came from.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use crate::identity::settings::AuthConfig;
pub use crate::secret::Secret;

/// Environment variable prefix; nested keys use `__` (e.g. `AGORA_HTTP__BIND`).
pub const ENV_PREFIX: &str = "AGORA_";

/// The configuration profile: production refuses development-only settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Local development and tests (the default).
    Development,
    /// A real deployment.
    Production,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (the default; what log pipelines ingest).
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `development` (default) or `production`.
    pub profile: Profile,
    /// The HTTP listener.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Metrics.
    pub metrics: MetricsConfig,
    /// The database (`DATABASE_URL`, `DATABASE_REPLICA_URLS` override the URLs).
    pub database: agora_db::DbConfig,
    /// Schema migrations at start-up.
    pub migrations: MigrationsConfig,
    /// Redis, optional (`REDIS_URL` overrides the URL); without it everything runs in process.
    pub redis: agora_kv::RedisConfig,
    /// Abuse limits per request class.
    pub rate_limits: crate::rate_limits::RateLimitConfig,
    /// Accounts, sessions and tokens.
    pub auth: AuthConfig,
    /// Feature flags by key (`x-agora-feature` in the contract): `false` switches the
    /// operations gated by the flag off (503 `feature_disabled`). A missing key is on.
    pub features: std::collections::BTreeMap<String, bool>,
    /// Background jobs: where workers run, leases, retention, per-queue concurrency.
    pub jobs: agora_jobs::JobsConfig,
    /// Notifications: coalescing.
    pub notifications: crate::notifications::NotificationsConfig,
    /// Email delivery (off without `email.smtp_url`).
    pub email: crate::email::EmailConfig,
    /// Web Push delivery (off without `push.vapid_private_key`).
    pub push: crate::push::PushConfig,
    /// Product analytics buffering and retention.
    pub analytics: crate::analytics::AnalyticsConfig,
    /// The home feed: fan-out limits, inactivity, rebuilds.
    pub feed: crate::feed::FeedConfig,
    /// The real-time gateway: heartbeats, queues, per-user connection limits.
    pub realtime: crate::realtime::RealtimeConfig,
}

/// Schema migrations at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationsConfig {
    /// Apply pending migrations at start-up. Default: on in development, off in production,
    /// where a server whose schema is behind stays not-ready until `agora migrate up` ran.
    pub auto_apply: Option<bool>,
}

impl Config {
    /// Whether start-up applies pending migrations.
    pub fn auto_apply_migrations(&self) -> bool {
        self.migrations
            .auto_apply
            .unwrap_or(self.profile == Profile::Development)
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to bind. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// Largest accepted request body, in bytes, unless the contract overrides it per operation
    /// (`x-agora-body-max-bytes`). Default 65536.
    pub request_body_max_bytes: usize,
    /// On shutdown, how long `/readyz` answers 503 before the listener closes, so that load
    /// balancers stop routing here first. Default 0 in development, set it in production.
    pub shutdown_drain_secs: u64,
    /// `Retry-After` sent with 503 answers while starting or stopping. Default 1.
    pub unavailable_retry_after_secs: u64,
    /// Browser origins allowed to call the API (`scheme://host[:port]`, or `*` for any). Default
    /// none: no cross-origin access.
    pub cors_allowed_origins: Parsed<agora_api::rt::CorsOrigins>,
    /// How long browsers may cache a preflight answer, in seconds. Default 600.
    pub cors_max_age_secs: u64,
    /// Largest accepted request-header section, in bytes (names, values, separators); larger is
    /// answered 431. Default 16384.
    pub max_header_bytes: usize,
    /// Load balancers and proxies (addresses or CIDR networks) whose `X-Forwarded-For` names
    /// the client. Default none: the peer address is the client.
    pub trusted_proxies: Parsed<agora_api::rt::TrustedProxies>,
    /// `Retry-After` sent with 503 `feature_disabled` while a feature is switched off. Default 60.
    pub feature_disabled_retry_after_secs: u64,
}

impl HttpConfig {
    /// Every problem of the section, each `http.<key>: <what is wrong>`.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.request_body_max_bytes == 0 {
            p.push("http.request_body_max_bytes: must be greater than 0".into());
        }
        if self.max_header_bytes < 1024 {
            p.push("http.max_header_bytes: must be at least 1024".into());
        }
        p
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (default) or `pretty`.
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `agora=debug,info`. Default `info`.
    pub level: String,
}

impl LogConfig {
    /// Every problem of the section, each `log.<key>: <what is wrong>`.
    pub fn problems(&self) -> Vec<String> {
        match tracing_subscriber::EnvFilter::try_new(&self.level) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("log.level: {e}")],
        }
    }
}

/// Metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Histogram buckets for request latency, in seconds, ascending.
    pub latency_buckets_seconds: Vec<f64>,
}

impl MetricsConfig {
    /// Every problem of the section, each `metrics.<key>: <what is wrong>`.
    pub fn problems(&self) -> Vec<String> {
        let b = &self.latency_buckets_seconds;
        let ascending = b.windows(2).all(|w| w[0] < w[1]);
        if b.is_empty() || !ascending || b.iter().any(|x| !x.is_finite() || *x <= 0.0) {
            vec!["metrics.latency_buckets_seconds: must be positive and strictly ascending".into()]
        } else {
            Vec::new()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::Development,
            http: HttpConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
                request_body_max_bytes: 64 * 1024,
                shutdown_drain_secs: 0,
                unavailable_retry_after_secs: 1,
                cors_allowed_origins: Parsed::default(),
                cors_max_age_secs: 600,
                max_header_bytes: agora_api::rt::DEFAULT_MAX_HEADER_BYTES,
                trusted_proxies: Parsed::default(),
                feature_disabled_retry_after_secs: 60,
            },
            log: LogConfig {
                format: LogFormat::Json,
                level: "info".into(),
            },
            metrics: MetricsConfig {
                latency_buckets_seconds: vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            },
            database: agora_db::DbConfig::default(),
            migrations: MigrationsConfig { auto_apply: None },
            redis: agora_kv::RedisConfig::default(),
            rate_limits: crate::rate_limits::RateLimitConfig::default(),
            auth: AuthConfig::default(),
            features: std::collections::BTreeMap::new(),
            jobs: agora_jobs::JobsConfig::default(),
            notifications: crate::notifications::NotificationsConfig::default(),
            email: crate::email::EmailConfig::default(),
            push: crate::push::PushConfig::default(),
            analytics: crate::analytics::AnalyticsConfig::default(),
            feed: crate::feed::FeedConfig::default(),
            realtime: crate::realtime::RealtimeConfig::default(),
        }
    }
}

/// A list setting parsed once, when the configuration loads: a bad entry is a configuration
/// problem (with its source), and the server uses the parsed value. It shows, compares and
/// serializes as written.
#[derive(Debug, Clone, Default)]
pub struct Parsed<T> {
    written: Vec<String>,
    value: T,
}

impl<T> Parsed<T> {
    /// The parsed value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The entries as written.
    pub fn written(&self) -> &[String] {
        &self.written
    }
}

/// A type a list setting parses into.
pub trait ParseList: Sized {
    /// Why an entry is refused.
    type Error: fmt::Display;
    /// Parses every entry.
    fn parse_list(entries: &[String]) -> Result<Self, Self::Error>;
}

impl ParseList for agora_api::rt::CorsOrigins {
    type Error = agora_api::rt::cors::BadOrigin;
    fn parse_list(entries: &[String]) -> Result<Self, Self::Error> {
        Self::parse(entries)
    }
}

impl ParseList for agora_api::rt::TrustedProxies {
    type Error = agora_api::rt::BadProxy;
    fn parse_list(entries: &[String]) -> Result<Self, Self::Error> {
        Self::new(entries)
    }
}

impl<T> PartialEq for Parsed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

impl<T> Serialize for Parsed<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.written.serialize(serializer)
    }
}

impl<'de, T: ParseList> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = Vec::<String>::deserialize(deserializer)?;
        let value = T::parse_list(&written).map_err(serde::de::Error::custom)?;
        Ok(Parsed { written, value })
    }
}

/// Every problem found in the configuration.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// A TOML file; when `None`, `agora.toml` in the working directory is used if it exists.
    pub file: Option<PathBuf>,
    /// Environment variables (name, value); `None` reads the process environment.
    pub env: Option<Vec<(String, String)>>,
}

impl Config {
    /// Loads and validates the configuration.
    pub fn load(sources: &Sources) -> Result<Config, ConfigErrors> {
        let figment = figment(sources)?;
        // Each setting is extracted on its own first, because serde stops at the first bad
        // field and the operator deserves the whole list.
        let mut problems = field_problems(&figment);
        problems.extend(section_problems(&figment));
        problems.extend(cross_problems(&figment));
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        figment
            .extract()
            .map_err(|e| ConfigErrors(describe(&figment, e)))
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        // Secret settings are typed `Secret`, whose Serialize writes a placeholder; database
        // URLs may carry a password and are redacted here.
        let mut shown = self.clone();
        shown.database.url = agora_db::config::redact_url(&shown.database.url);
        for url in &mut shown.database.replica_urls {
            *url = agora_db::config::redact_url(url);
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

fn figment(sources: &Sources) -> Result<Figment, ConfigErrors> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    let file = match &sources.file {
        Some(f) => {
            if !f.exists() {
                return Err(ConfigErrors(vec![format!(
                    "config file {}: does not exist",
                    f.display()
                )]));
            }
            Some(f.clone())
        }
        None => Some(PathBuf::from("agora.toml")).filter(|p| p.exists()),
    };
    if let Some(f) = file {
        figment = figment.merge(Toml::file_exact(f));
    }
    let vars = match &sources.env {
        Some(v) => v.clone(),
        None => std::env::vars().collect(),
    };
    let (vars, mut problems) = resolve_file_vars(vars);
    let vars = aliases(vars);
    let env: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    for (k, _) in &env {
        if k == "AGORA_CONFIG" {
            continue;
        }
        let key = k[ENV_PREFIX.len()..]
            .to_ascii_lowercase()
            .replace("__", ".");
        if !KNOWN_KEYS.contains(&key.as_str()) && !is_dynamic_key(&key) {
            problems.push(format!(
                "{k}: unknown setting {key:?} (known: {})",
                KNOWN_KEYS.join(", ")
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigErrors(problems));
    }
    figment = figment.merge(EnvVars(env));
    Ok(figment)
}

/// Keys named after the contract or the job queues rather than listed in [`KNOWN_KEYS`]:
/// `features.<flag>` and `rate_limits.classes.<class>.requests|window_secs`, for the flags and
/// classes it declares, and `jobs.queues.<queue>.concurrency`.
fn is_dynamic_key(key: &str) -> bool {
    if let Some(rest) = key.strip_prefix("jobs.queues.")
        && let Some((queue, field)) = rest.split_once('.')
    {
        return agora_jobs::Queue::parse(queue).is_some() && field == "concurrency";
    }
    if let Some(flag) = key.strip_prefix("features.") {
        return agora_api::FEATURES.contains(&flag);
    }
    if let Some(rest) = key.strip_prefix("rate_limits.classes.")
        && let Some((class, field)) = rest.split_once('.')
    {
        return agora_api::RATE_LIMIT_CLASSES.contains(&class)
            && matches!(field, "requests" | "window_secs");
    }
    false
}

/// The conventional names deployment platforms set, as aliases of our keys.
const ALIASES: &[(&str, &str)] = &[
    ("DATABASE_URL", "AGORA_DATABASE__URL"),
    ("DATABASE_REPLICA_URLS", "AGORA_DATABASE__REPLICA_URLS"),
    ("REDIS_URL", "AGORA_REDIS__URL"),
];

fn aliases(vars: Vec<(String, String)>) -> Vec<(String, String)> {
    vars.into_iter()
        .map(
            |(k, v)| match ALIASES.iter().find(|(alias, _)| *alias == k) {
                Some((_, key)) if k == "DATABASE_REPLICA_URLS" => {
                    // A comma-separated list, as the variable is documented.
                    let list: Vec<String> = v
                        .split(',')
                        .map(str::trim)
                        .filter(|u| !u.is_empty())
                        .map(|u| format!("{u:?}"))
                        .collect();
                    ((*key).to_owned(), format!("[{}]", list.join(",")))
                }
                Some((_, key)) => ((*key).to_owned(), v),
                None => (k, v),
            },
        )
        .collect()
}

/// `AGORA_*` variables as a figment provider. figment's own `Env` reads only the process
/// environment; this takes an explicit list (tests, `config check`) and names each variable in
/// error messages as it was spelled.
struct EnvVars(Vec<(String, String)>);

impl figment::Provider for EnvVars {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("environment variable")
            .interpolater(|_, keys| format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase()))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut dict = figment::value::Dict::new();
        for (k, v) in &self.0 {
            if k == "AGORA_CONFIG" {
                continue;
            }
            let key = k[ENV_PREFIX.len()..]
                .to_ascii_lowercase()
                .replace("__", ".");
            let value: figment::value::Value = v.parse().unwrap_or_else(|_| v.as_str().into());
            if let figment::value::Value::Dict(_, nested) = figment::util::nest(&key, value) {
                merge(&mut dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

fn merge(into: &mut figment::value::Dict, from: figment::value::Dict) {
    use figment::value::Value;
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Dict(_, a)), Value::Dict(_, b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Every setting with its type: the source of both the typo check on environment variables and
/// the per-field extraction that reports every value of the wrong type at once. What a
/// well-typed value must satisfy is each section's own `problems()` (see [`section_problems`]).
macro_rules! settings {
    ($($key:literal => $ty:ty;)*) => {
        /// Every settable key.
        const KNOWN_KEYS: &[&str] = &[$($key),*];

        fn field_problems(figment: &Figment) -> Vec<String> {
            let mut problems = Vec::new();
            $(
                match figment.extract_inner::<$ty>($key) {
                    // An optional setting left unset is absent, not wrong.
                    Err(e) if stringify!($ty).starts_with("Option")
                        && matches!(e.kind, figment::error::Kind::MissingField(_)) => {}
                    Err(e) => problems.extend(describe_at(figment, $key, e)),
                    Ok(_) => {}
                }
            )*
            problems
        }
    };
}

settings! {
    "profile" => Profile;
    "http.bind" => SocketAddr;
    "http.request_body_max_bytes" => usize;
    "http.shutdown_drain_secs" => u64;
    "http.unavailable_retry_after_secs" => u64;
    "http.cors_allowed_origins" => Parsed<agora_api::rt::CorsOrigins>;
    "http.cors_max_age_secs" => u64;
    "http.trusted_proxies" => Parsed<agora_api::rt::TrustedProxies>;
    "http.feature_disabled_retry_after_secs" => u64;
    "http.max_header_bytes" => usize;
    "log.format" => LogFormat;
    "log.level" => String;
    "database.url" => String;
    "database.replica_urls" => Vec<String>;
    "database.pool_size" => u32;
    "database.acquire_timeout_ms" => u64;
    "database.connect_timeout_ms" => u64;
    "database.statement_timeout_ms" => u64;
    "database.read_your_writes_ms" => u64;
    "database.replica_probe_interval_ms" => u64;
    "database.sqlite_busy_timeout_ms" => u64;
    "migrations.auto_apply" => Option<bool>;
    "rate_limits.auth_per_ip.requests" => u32;
    "rate_limits.auth_per_ip.window_secs" => u64;
    "rate_limits.auth_per_account.requests" => u32;
    "rate_limits.auth_per_account.window_secs" => u64;
    "rate_limits.write_per_user.requests" => u32;
    "rate_limits.write_per_user.window_secs" => u64;
    "rate_limits.chat_per_user.requests" => u32;
    "rate_limits.chat_per_user.window_secs" => u64;
    "rate_limits.read_per_user.requests" => u32;
    "rate_limits.read_per_user.window_secs" => u64;
    "rate_limits.session_per_user.requests" => u32;
    "rate_limits.session_per_user.window_secs" => u64;
    "rate_limits.classes" => std::collections::BTreeMap<String, crate::rate_limits::Limit>;
    "features" => std::collections::BTreeMap<String, bool>;
    "jobs.in_process" => bool;
    "jobs.lease_secs" => u64;
    "jobs.poll_interval_ms" => u64;
    "jobs.drain_secs" => u64;
    "jobs.stats_interval_secs" => u64;
    "jobs.succeeded_retention_secs" => u64;
    "jobs.queues" => std::collections::BTreeMap<String, agora_jobs::QueueConfig>;
    "notifications.coalesce_window_secs" => u64;
    "email.smtp_url" => Option<Secret>;
    "email.smtp_password" => Option<Secret>;
    "email.from" => String;
    "email.daily_cap" => u32;
    "email.timeout_secs" => u64;
    "email.public_base_url" => Option<String>;
    "email.unsubscribe_key" => Option<Secret>;
    "push.vapid_private_key" => Option<Secret>;
    "push.subject" => String;
    "push.ttl_secs" => u32;
    "push.timeout_secs" => u64;
    "push.allow_insecure_endpoints" => bool;
    "analytics.enabled" => bool;
    "analytics.buffer_events" => usize;
    "analytics.batch_size" => usize;
    "analytics.flush_interval_ms" => u64;
    "analytics.retention_days" => u32;
    "feed.fanout_max_audience" => usize;
    "feed.inactive_after_days" => u32;
    "feed.backfill_posts" => u32;
    "feed.rebuild_posts" => u32;
    "feed.read_record_interval_secs" => u64;
    "realtime.heartbeat_secs" => u64;
    "realtime.queue_frames" => usize;
    "realtime.queue_bytes" => usize;
    "realtime.invalid_frames" => u32;
    "realtime.replay_per_conversation" => u32;
    "realtime.max_connections_per_user" => usize;
    "realtime.inbound_frames_per_sec" => u32;
    "realtime.inbound_burst" => u32;
    "realtime.event_buffer" => usize;
    "redis.url" => Option<String>;
    "redis.key_prefix" => String;
    "redis.pool_size" => u32;
    "redis.connect_timeout_ms" => u64;
    "redis.command_timeout_ms" => u64;
    "redis.breaker_threshold" => u32;
    "redis.breaker_cooldown_ms" => u64;
    "redis.pubsub_ping_interval_ms" => u64;
    "redis.pubsub_reconnect_min_delay_ms" => u64;
    "redis.pubsub_reconnect_max_delay_ms" => u64;
    "redis.broker_channel_capacity" => usize;
    "redis.memory_cache_max_entries" => usize;
    "auth.issuer" => String;
    "auth.audience" => String;
    "auth.access_ttl_secs" => u64;
    "auth.refresh_ttl_secs" => u64;
    "auth.leeway_secs" => u64;
    "auth.keys" => Vec<Secret>;
    "auth.argon2_memory_kib" => u32;
    "auth.argon2_iterations" => u32;
    "auth.argon2_parallelism" => u32;
    "auth.hash_concurrency" => usize;
    "metrics.latency_buckets_seconds" => Vec<f64>;
}

/// One validation style for every section: each section type checks its own values and returns
/// `<section>.<key>: <what is wrong>` lines; here they are collected for the sections that parsed
/// (a section with a badly typed field was reported by `field_problems`) and each is told where
/// its value came from. Then the checks across sections.
fn section_problems(figment: &Figment) -> Vec<String> {
    fn section<T: serde::de::DeserializeOwned>(
        figment: &Figment,
        key: &str,
        problems: fn(&T) -> Vec<String>,
    ) -> Vec<String> {
        figment
            .extract_inner::<T>(key)
            .map(|section| problems(&section))
            .unwrap_or_default()
    }
    let mut p = Vec::new();
    p.extend(section(figment, "http", HttpConfig::problems));
    p.extend(section(figment, "log", LogConfig::problems));
    p.extend(section(figment, "metrics", MetricsConfig::problems));
    p.extend(section(figment, "database", agora_db::DbConfig::problems));
    p.extend(section(figment, "redis", agora_kv::RedisConfig::problems));
    p.extend(section(
        figment,
        "rate_limits",
        crate::rate_limits::RateLimitConfig::problems,
    ));
    p.extend(section(figment, "auth", AuthConfig::problems));
    p.extend(section(figment, "features", crate::features::problems));
    p.extend(section(figment, "jobs", agora_jobs::JobsConfig::problems));
    p.extend(section(
        figment,
        "notifications",
        crate::notifications::NotificationsConfig::problems,
    ));
    p.extend(section(
        figment,
        "email",
        crate::email::EmailConfig::problems,
    ));
    p.extend(section(figment, "feed", crate::feed::FeedConfig::problems));
    p.extend(section(
        figment,
        "realtime",
        crate::realtime::RealtimeConfig::problems,
    ));
    p.into_iter()
        .map(|line| with_source(figment, line))
        .collect()
}

/// `key: message` → `key: message [from <source>]`, when the key's value came from somewhere
/// other than the defaults.
fn with_source(figment: &Figment, line: String) -> String {
    let Some((key, _)) = line.split_once(": ") else {
        return line;
    };
    let key = key.split('[').next().unwrap_or(key);
    match source_of(figment, key) {
        source if source == "defaults" => line,
        source => format!("{line} [from {source}]"),
    }
}

/// Checks across sections.
fn cross_problems(figment: &Figment) -> Vec<String> {
    let mut p = Vec::new();
    let production = matches!(
        figment.extract_inner::<Profile>("profile"),
        Ok(Profile::Production)
    );
    if production && let Ok(keys) = figment.extract_inner::<Vec<Secret>>("auth.keys") {
        let dev = crate::identity::tokens::DEVELOPMENT_KEY;
        let dev_secret = dev.split_once(':').map(|(_, s)| s).unwrap_or(dev);
        if keys.is_empty() {
            p.push("auth.keys: production needs its own signing keys (set AGORA_AUTH__KEYS_FILE); the development key is refused".into());
        } else if keys
            .iter()
            .any(|k| k.expose() == dev || k.expose().ends_with(dev_secret))
        {
            p.push(format!(
                "auth.keys: the development key is refused in production [from {}]",
                source_of(figment, "auth.keys")
            ));
        }
    }
    if production
        && figment.extract_inner::<Secret>("email.smtp_url").is_ok()
        && figment
            .extract_inner::<String>("email.public_base_url")
            .is_err()
    {
        p.push("email.public_base_url: production email needs the public URL of this API for unsubscribe links".into());
    }
    if production
        && matches!(
            figment.extract_inner::<bool>("push.allow_insecure_endpoints"),
            Ok(true)
        )
    {
        p.push("push.allow_insecure_endpoints: refused in production (it lets users make the server call internal addresses)".into());
    }
    let profile = figment.extract_inner::<Profile>("profile");
    let bind = figment.extract_inner::<SocketAddr>("http.bind");
    if let (Ok(Profile::Production), Ok(bind)) = (profile, bind)
        && bind.ip().is_loopback()
    {
        p.push(format!(
                "http.bind: {bind} is a loopback address; production must listen where the load balancer can reach it [from {}]",
                source_of(figment, "http.bind")
            ));
    }
    p
}

fn source_of(figment: &Figment, key: &str) -> String {
    let path: Vec<String> = key.split('.').map(str::to_owned).collect();
    figment
        .find_metadata(key)
        .map(|m| source_name(m, &path))
        .unwrap_or_else(|| "defaults".into())
}

fn source_name(m: &figment::Metadata, path: &[String]) -> String {
    match &m.source {
        Some(source) => format!("{} {source}", m.name),
        // The environment names its variable; the defaults have no place to name.
        None => format!(
            "{} {}",
            m.name,
            m.interpolate(&figment::Profile::Default, path)
        ),
    }
}

/// `AGORA_X_FILE=/path` becomes `AGORA_X=<file contents, trailing newline trimmed>`.
fn resolve_file_vars(vars: Vec<(String, String)>) -> (Vec<(String, String)>, Vec<String>) {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (k, v) in vars {
        match k
            .strip_suffix("_FILE")
            .filter(|_| k.starts_with(ENV_PREFIX))
        {
            Some(base) => match std::fs::read_to_string(Path::new(&v)) {
                Ok(content) => out.push((
                    base.to_owned(),
                    content.trim_end_matches(['\n', '\r']).to_owned(),
                )),
                Err(e) => problems.push(format!("{k}: cannot read {v}: {e}")),
            },
            None => out.push((k, v)),
        }
    }
    (out, problems)
}

/// Turns figment's errors into lines naming the key and where its value came from.
fn describe(figment: &Figment, error: figment::Error) -> Vec<String> {
    describe_at(figment, "", error)
}

fn describe_at(figment: &Figment, key: &str, error: figment::Error) -> Vec<String> {
    error
        .into_iter()
        .map(|e| {
            // figment fills the full path for `extract_inner`; `extract` errors carry it too.
            let path: Vec<String> = if e.path.is_empty() {
                key.split('.')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            } else {
                e.path.clone()
            };
            let key = path.join(".");
            let source = e
                .metadata
                .as_ref()
                .or_else(|| figment.find_metadata(&key))
                .map(|m| source_name(m, &path))
                .unwrap_or_else(|| "defaults".into());
            let key = if key.is_empty() { "<root>".into() } else { key };
            format!("{key}: {} [from {source}]", e.kind)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Sources {
        Sources {
            file: Some(PathBuf::from("/nonexistent-agora-test.toml")).filter(|_| false),
            env: Some(
                vars.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    const PRODUCTION_KEYS: &str = r#"["k1:0123456789abcdef0123456789abcdef"]"#;

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(&env(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.http.request_body_max_bytes, 65536);
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let c = Config::load(&env(&[
            ("AGORA_HTTP__BIND", "127.0.0.1:9999"),
            ("AGORA_LOG__FORMAT", "pretty"),
        ]))
        .unwrap();
        assert_eq!(c.http.bind.port(), 9999);
        assert_eq!(c.log.format, LogFormat::Pretty);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_source() {
        let err = Config::load(&env(&[
            ("AGORA_HTTP__BIND", "not-an-address"),
            ("AGORA_LOG__FORMAT", "xml"),
            ("AGORA_HTTP__BNID", "x"),
        ]))
        .unwrap_err();
        // The unknown key is caught before extraction.
        assert_eq!(err.0.len(), 1, "{err}");
        assert!(err.0[0].contains("AGORA_HTTP__BNID"), "{err}");

        let err = Config::load(&env(&[
            ("AGORA_HTTP__BIND", "not-an-address"),
            ("AGORA_LOG__FORMAT", "xml"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("http.bind"), "{text}");
        assert!(text.contains("log.format"), "{text}");
        assert!(
            text.contains("AGORA_"),
            "names the environment as the source: {text}"
        );
    }

    #[test]
    fn semantic_checks() {
        let err = Config::load(&env(&[
            ("AGORA_HTTP__REQUEST_BODY_MAX_BYTES", "0"),
            ("AGORA_PROFILE", "production"),
            ("AGORA_AUTH__KEYS", PRODUCTION_KEYS),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn database_aliases_and_redaction() {
        let c = Config::load(&env(&[
            ("DATABASE_URL", "postgres://app:pw@db:5432/agora"),
            (
                "DATABASE_REPLICA_URLS",
                "postgres://app:pw@r1/agora, postgres://app:pw@r2/agora",
            ),
        ]))
        .unwrap();
        assert_eq!(c.database.url, "postgres://app:pw@db:5432/agora");
        assert_eq!(c.database.replica_urls.len(), 2);
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("pw@"), "{shown}");
        let c = Config::load(&env(&[("REDIS_URL", "redis://:hunter2@cache:6379/0")])).unwrap();
        assert_eq!(
            c.redis.url.as_deref(),
            Some("redis://:hunter2@cache:6379/0")
        );
        assert!(!c.to_redacted_toml().contains("hunter2"));
        let err =
            Config::load(&env(&[("DATABASE_REPLICA_URLS", "postgres://r1/agora")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("replicas need a PostgreSQL primary"),
            "{err}"
        );
    }

    #[test]
    fn migrations_auto_apply_follows_the_profile() {
        assert!(Config::load(&env(&[])).unwrap().auto_apply_migrations());
        let c = Config::load(&env(&[
            ("AGORA_PROFILE", "production"),
            ("AGORA_HTTP__BIND", "0.0.0.0:8080"),
            ("AGORA_AUTH__KEYS", PRODUCTION_KEYS),
        ]))
        .unwrap();
        assert!(!c.auto_apply_migrations());
        let c = Config::load(&env(&[("AGORA_MIGRATIONS__AUTO_APPLY", "false")])).unwrap();
        assert!(!c.auto_apply_migrations());
    }

    #[test]
    fn auth_keys_are_validated_and_production_refuses_the_development_key() {
        let prod = [
            ("AGORA_PROFILE", "production"),
            ("AGORA_HTTP__BIND", "0.0.0.0:8080"),
        ];
        let err = Config::load(&env(&prod)).unwrap_err();
        assert!(err.to_string().contains("auth.keys"), "{err}");
        let dev = format!("[{:?}]", crate::identity::tokens::DEVELOPMENT_KEY);
        let err = Config::load(&env(&[prod[0], prod[1], ("AGORA_AUTH__KEYS", &dev)])).unwrap_err();
        assert!(
            err.to_string().contains("development key is refused"),
            "{err}"
        );
        let good =
            r#"["k2:0123456789abcdef0123456789abcdef", "k1:fedcba9876543210fedcba9876543210"]"#;
        let c = Config::load(&env(&[prod[0], prod[1], ("AGORA_AUTH__KEYS", good)])).unwrap();
        assert_eq!(c.auth.keys.len(), 2);
        assert!(!c.to_redacted_toml().contains("0123456789abcdef"));
        let err = Config::load(&env(&[(
            "AGORA_AUTH__KEYS",
            r#"["k1:short", "k1:0123456789abcdef0123456789abcdef"]"#,
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        let err = Config::load(&env(&[
            ("AGORA_AUTH__ARGON2_MEMORY_KIB", "1"),
            ("AGORA_AUTH__HASH_CONCURRENCY", "0"),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn feature_flags_name_only_what_the_contract_declares() {
        let c = Config::load(&env(&[("AGORA_FEATURES__REGISTRATION", "false")])).unwrap();
        assert_eq!(c.features.get("registration"), Some(&false));
        let err = Config::load(&env(&[("AGORA_FEATURES__REGISTRATON", "false")]))
            .expect_err("a misspelt flag is refused");
        assert!(
            err.to_string().contains("AGORA_FEATURES__REGISTRATON"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("agora-features-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("agora.toml");
        std::fs::write(&file, "[features]\nregistraton = false\n").unwrap();
        let err = Config::load(&Sources {
            file: Some(file),
            env: Some(vec![]),
        })
        .expect_err("a misspelt flag in the file is refused");
        assert!(err.to_string().contains("unknown feature flag"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn rate_limit_classes_are_budgeted() {
        let c = Config::load(&env(&[
            ("AGORA_RATE_LIMITS__READ_PER_USER__REQUESTS", "5"),
            ("AGORA_RATE_LIMITS__SESSION_PER_USER__WINDOW_SECS", "10"),
        ]))
        .unwrap();
        assert_eq!(c.rate_limits.read_per_user.requests, 5);
        assert_eq!(c.rate_limits.session_per_user.window_secs, 10);
        let err = Config::load(&env(&[("AGORA_RATE_LIMITS__CLASSES__NOPE__REQUESTS", "5")]))
            .expect_err("a class the contract does not name");
        assert!(err.to_string().contains("unknown setting"), "{err}");
    }

    #[test]
    fn job_settings_load_and_misspelt_queues_are_refused() {
        let c = Config::load(&env(&[
            ("AGORA_JOBS__IN_PROCESS", "false"),
            ("AGORA_JOBS__QUEUES__EMAIL__CONCURRENCY", "6"),
        ]))
        .unwrap();
        assert!(!c.jobs.in_process);
        assert_eq!(c.jobs.concurrency(agora_jobs::Queue::Email), 6);
        let err = Config::load(&env(&[("AGORA_JOBS__QUEUES__EMIAL__CONCURRENCY", "6")]))
            .expect_err("a misspelt queue");
        assert!(
            err.to_string()
                .contains("AGORA_JOBS__QUEUES__EMIAL__CONCURRENCY"),
            "{err}"
        );
        let err = Config::load(&env(&[("AGORA_JOBS__LEASE_SECS", "1")])).expect_err("too short");
        assert!(err.to_string().contains("jobs.lease_secs"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let s: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
    }

    #[test]
    fn file_variables_are_read() {
        let dir = std::env::temp_dir().join(format!("agora-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("level");
        std::fs::write(&f, "debug\n").unwrap();
        let c = Config::load(&env(&[("AGORA_LOG__LEVEL_FILE", f.to_str().unwrap())])).unwrap();
        assert_eq!(c.log.level, "debug");
        let err =
            Config::load(&env(&[("AGORA_LOG__LEVEL_FILE", "/nonexistent/secret")])).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn email_settings_are_checked_together() {
        let c = Config::load(&env(&[
            ("AGORA_EMAIL__SMTP_URL", "smtp://127.0.0.1:2525"),
            ("AGORA_EMAIL__DAILY_CAP", "3"),
        ]))
        .unwrap();
        assert_eq!(c.email.daily_cap, 3);
        assert_eq!(
            c.email.smtp_url.as_ref().map(Secret::expose),
            Some("smtp://127.0.0.1:2525")
        );
        let err = Config::load(&env(&[
            ("AGORA_EMAIL__SMTP_URL", "http://mail.example.com"),
            ("AGORA_EMAIL__FROM", "not an address"),
            ("AGORA_EMAIL__DAILY_CAP", "0"),
            ("AGORA_NOTIFICATIONS__COALESCE_WINDOW_SECS", "999999999"),
        ]))
        .unwrap_err()
        .to_string();
        for key in [
            "email.smtp_url",
            "email.from",
            "email.daily_cap",
            "notifications.coalesce_window_secs",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
        let err = Config::load(&env(&[
            ("AGORA_PROFILE", "production"),
            ("AGORA_HTTP__BIND", "0.0.0.0:8080"),
            (
                "AGORA_AUTH__KEYS",
                "[\"k1:0123456789abcdef0123456789abcdef-prod\"]",
            ),
            ("AGORA_EMAIL__SMTP_URL", "smtps://mail.example.com"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("email.public_base_url"), "{err}");
        let shown = Config::load(&env(&[("AGORA_EMAIL__SMTP_URL", "smtp://u:pw@host:25")]))
            .unwrap()
            .to_redacted_toml();
        assert!(
            !shown.contains("pw@"),
            "the URL's password never prints: {shown}"
        );
    }
}
