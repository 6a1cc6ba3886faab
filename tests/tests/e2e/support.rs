//! `TestApp`: a real server on 127.0.0.1:0 and a generated client pointed at it.

use agora_server::config::{Config, Sources};

pub struct TestApp {
    pub server: Option<agora_server::RunningServer>,
    pub client: agora_client::Client,
    pub base_url: String,
}

impl TestApp {
    /// Starts a server with the default configuration on an ephemeral port.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a server with `AGORA_*` overrides.
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let mut vars: Vec<(String, String)> =
            vec![("AGORA_HTTP__BIND".into(), "127.0.0.1:0".into())];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::load(&Sources {
            file: None,
            env: Some(vars),
        })
        .expect("test configuration is valid");
        let server = agora_server::start(&config)
            .await
            .expect("the server starts");
        let base_url = format!("http://{}", server.local_addr());
        let client = agora_client::Client::connect(&base_url).expect("client builds");
        Self {
            server: Some(server),
            client,
            base_url,
        }
    }
}
