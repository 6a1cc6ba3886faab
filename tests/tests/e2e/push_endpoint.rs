//! A push service on loopback for the Web Push tests: an HTTP/1.1 server that records every
//! request (path, headers, body) and answers each path with the status a test set (201 unless
//! told otherwise). The browser's side — decrypting what arrived — is the test's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request the push service received.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The request path.
    pub path: String,
    /// Header names (lowercase) and values.
    pub headers: HashMap<String, String>,
    /// The (encrypted) body.
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    received: Vec<PushRequest>,
    statuses: HashMap<String, u16>,
}

/// The running endpoint; it stops with the test's runtime.
#[derive(Clone)]
pub struct PushEndpoint {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
}

impl PushEndpoint {
    /// Starts listening on an ephemeral loopback port.
    pub async fn start() -> PushEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut reader = BufReader::new(read);
                    // Keep-alive: one request after another on the connection.
                    while let Some(request) = read_request(&mut reader).await {
                        let status = {
                            let mut s = state.lock().expect("state");
                            let status = s.statuses.get(&request.path).copied().unwrap_or(201);
                            s.received.push(request);
                            status
                        };
                        let answer = format!("HTTP/1.1 {status} Push\r\ncontent-length: 0\r\n\r\n");
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        PushEndpoint { addr, state }
    }

    /// The URL of a subscription at `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `status` to pushes to `path` from now on.
    pub fn answer(&self, path: &str, status: u16) {
        self.state
            .lock()
            .expect("state")
            .statuses
            .insert(path.to_owned(), status);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<PushRequest> {
        self.state.lock().expect("state").received.clone()
    }
}

async fn read_request<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Option<PushRequest> {
    let mut line = String::new();
    reader.read_line(&mut line).await.ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(PushRequest {
        path,
        headers,
        body,
    })
}
