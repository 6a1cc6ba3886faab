//! `TestApp`: a real server on 127.0.0.1:0 (with its own SQLite file unless a test names a
//! database) and a generated client pointed at it.

use agora_server::config::{Config, Sources};
use agora_server::http_server::StartError;

pub struct TestApp {
    pub server: Option<agora_server::RunningServer>,
    pub client: agora_client::Client,
    pub base_url: String,
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
        ];
        // A test's own settings replace the defaults above.
        vars.retain(|(k, _)| !env.iter().any(|(e, _)| e == k));
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::load(&Sources {
            file: None,
            env: Some(vars),
        })
        .expect("test configuration is valid");
        let server = agora_server::start(&config).await?;
        let base_url = format!("http://{}", server.local_addr());
        let client = agora_client::Client::connect(&base_url).expect("client builds");
        Ok(Self {
            server: Some(server),
            client,
            base_url,
            sqlite_file: database,
        })
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
