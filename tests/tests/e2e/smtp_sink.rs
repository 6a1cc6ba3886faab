//! A real SMTP server for the email tests: `tools/smtp-sink/sink.py` (aiosmtpd) in its own
//! process, writing each received message to a directory. `AGORA_TEST_SMTP_SINK` (set by
//! `scripts/test.sh`) names the command; without it the tests skip, and fail under `CI=true`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope recipients.
    pub rcpt_tos: Vec<String>,
    /// Header name (lowercase) and decoded value, in order.
    pub headers: Vec<(String, String)>,
    /// The decoded `text/plain` part.
    pub text: String,
    /// The decoded `text/html` part.
    pub html: String,
}

impl Received {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running sink; stopped on drop.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl SmtpSink {
    /// Starts a sink, or `None` (after saying why) when `AGORA_TEST_SMTP_SINK` is unset.
    pub fn start(test: &str) -> Option<SmtpSink> {
        let Ok(command) = std::env::var("AGORA_TEST_SMTP_SINK") else {
            assert!(
                std::env::var("CI").is_err(),
                "{test}: AGORA_TEST_SMTP_SINK is unset under CI (run scripts/test.sh)"
            );
            eprintln!("{test}: skipped, AGORA_TEST_SMTP_SINK is unset (scripts/test.sh sets it)");
            return None;
        };
        let mut parts = command.split_whitespace();
        let program = parts.next().expect("a command");
        let dir = std::env::temp_dir().join(format!(
            "agora-smtp-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        let mut child = Command::new(program)
            .args(parts)
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SMTP sink starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the sink says where it listens");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected sink output {line:?}"));
        Some(SmtpSink { child, port, dir })
    }

    /// `smtp://127.0.0.1:<port>` (plain SMTP on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<_> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let raw = std::fs::read(&eml).expect("message");
                let meta: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(eml.with_extension("json")).expect("envelope"),
                )
                .expect("json");
                parse(&raw, &meta)
            })
            .collect()
    }

    /// Waits until `n` messages arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        agora_db::testing::eventually("emails to arrive", async || {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

fn parse(raw: &[u8], meta: &serde_json::Value) -> Received {
    let mail = mailparse::parse_mail(raw).expect("a MIME message");
    let headers = mail
        .headers
        .iter()
        .map(|h| (h.get_key().to_ascii_lowercase(), h.get_value()))
        .collect();
    let mut text = String::new();
    let mut html = String::new();
    let mut parts = vec![&mail];
    while let Some(part) = parts.pop() {
        parts.extend(part.subparts.iter());
        match part.ctype.mimetype.as_str() {
            "text/plain" => text = part.get_body().expect("text body"),
            "text/html" => html = part.get_body().expect("html body"),
            _ => {}
        }
    }
    let rcpt_tos = meta["rcpt_tos"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Received {
        rcpt_tos,
        headers,
        text,
        html,
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
