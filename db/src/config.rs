//! Database settings (the server embeds them under `[database]`; `DATABASE_URL` and
//! `DATABASE_REPLICA_URLS` override the URLs).

use serde::{Deserialize, Serialize};

/// Which engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
    /// Embedded SQLite (`sqlite://path` or a plain file path).
    Sqlite,
}

impl Backend {
    /// The backend a URL names.
    pub fn of(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Database settings. Every timeout and size is a named value with a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbConfig {
    /// The primary. Default: `sqlite://data/agora.db` (under the working directory).
    pub url: String,
    /// Read replicas (PostgreSQL only). Default: none.
    pub replica_urls: Vec<String>,
    /// Connections per pool. Default 16 (SQLite: at most 4 are used; it has one writer anyway).
    pub pool_size: u32,
    /// How long a request waits for a pooled connection before answering 503. Default 2000 ms.
    pub acquire_timeout_ms: u64,
    /// How long opening a connection may take. Default 5000 ms.
    pub connect_timeout_ms: u64,
    /// Upper bound for any one statement (PostgreSQL `statement_timeout`, and a client-side
    /// timeout on both backends). Default 5000 ms.
    pub statement_timeout_ms: u64,
    /// After a user writes, how long their reads stay on the primary. Default 5000 ms.
    pub read_your_writes_ms: u64,
    /// How often an unhealthy replica is probed. Default 5000 ms.
    pub replica_probe_interval_ms: u64,
    /// SQLite: how long a writer waits for the lock. Default 5000 ms.
    pub sqlite_busy_timeout_ms: u64,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/agora.db".into(),
            replica_urls: Vec::new(),
            pool_size: 16,
            acquire_timeout_ms: 2000,
            connect_timeout_ms: 5000,
            statement_timeout_ms: 5000,
            read_your_writes_ms: 5000,
            replica_probe_interval_ms: 5000,
            sqlite_busy_timeout_ms: 5000,
        }
    }
}

impl DbConfig {
    /// The primary's backend.
    pub fn backend(&self) -> Backend {
        Backend::of(&self.url)
    }

    /// Problems with these settings, for the server's all-at-once configuration report.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.backend() == Backend::Sqlite && !self.replica_urls.is_empty() {
            p.push("database.replica_urls: replicas need a PostgreSQL primary".into());
        }
        for (i, r) in self.replica_urls.iter().enumerate() {
            if Backend::of(r) != Backend::Postgres {
                p.push(format!("database.replica_urls[{i}]: not a postgres:// URL"));
            }
        }
        if self.pool_size == 0 {
            p.push("database.pool_size: must be at least 1".into());
        }
        for (name, v) in [
            ("acquire_timeout_ms", self.acquire_timeout_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("statement_timeout_ms", self.statement_timeout_ms),
            ("replica_probe_interval_ms", self.replica_probe_interval_ms),
        ] {
            if v == 0 {
                p.push(format!("database.{name}: must be greater than 0"));
            }
        }
        p
    }

    /// The SQLite file path of a `sqlite://` URL (or a plain path).
    pub fn sqlite_path(url: &str) -> &str {
        url.strip_prefix("sqlite://").unwrap_or(url)
    }
}

/// A URL with its password replaced, for logs and `config check`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_and_redaction() {
        assert_eq!(Backend::of("postgres://u@h/db"), Backend::Postgres);
        assert_eq!(Backend::of("sqlite://data/x.db"), Backend::Sqlite);
        assert_eq!(Backend::of("/tmp/x.db"), Backend::Sqlite);
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:<redacted>@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
