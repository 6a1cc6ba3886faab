//! One JSON log line per request, with the fields operators search by, and an incoming W3C
//! `traceparent` joining the caller's trace. Its own test binary: it installs the global subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

use agora_server::config::{Config, Sources};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn each_request_writes_one_json_line_joining_the_callers_trace() {
    let buffer = Buffer::default();
    let filter = tracing_subscriber::EnvFilter::new("info");
    tracing::subscriber::set_global_default(agora_server::telemetry::json_subscriber(
        filter,
        buffer.clone(),
    ))
    .expect("first subscriber in this binary");

    let database = std::env::temp_dir().join(format!("agora-log-line-{}.db", std::process::id()));
    let vars = vec![
        ("AGORA_HTTP__BIND".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "AGORA_DATABASE__URL".to_owned(),
            format!("sqlite://{}", database.display()),
        ),
    ];
    let config = Config::load(&Sources {
        file: None,
        env: Some(vars),
    })
    .expect("config");
    let server = agora_server::start(&config).await.expect("starts");
    let url = format!("http://{}/v1/meta", server.local_addr());
    let response = reqwest::Client::new()
        .get(&url)
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .expect("answers");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let ready = reqwest::get(format!("http://{}/readyz", server.local_addr()))
        .await
        .expect("answers");
    assert_eq!(ready.status().as_u16(), 200);

    let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v["request_id"] == request_id.as_str())
        .collect();
    assert_eq!(lines.len(), 1, "exactly one line for the request: {text}");
    let line = &lines[0];
    assert_eq!(
        line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "joined the caller's trace"
    );
    assert_eq!(line["operation_id"], "get_meta");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/v1/meta");
    assert_eq!(line["status"], 200);
    assert!(
        line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{line}"
    );
    assert_eq!(line["target"], "agora::request");
    let readyz: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"operation_id\":\"get_readyz\""))
        .collect();
    assert_eq!(readyz.len(), 1, "{text}");
    assert!(
        !readyz[0].contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "no traceparent, a new trace"
    );
}
