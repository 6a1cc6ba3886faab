//! Benchmarks of the real-time gateway: memory per idle socket, many concurrent sockets,
//! send → delivered latency across instances, and fan-out to a group.
//!
//! goose models request/response transactions; a socket whose events arrive unasked, and a
//! latency that ends on another connection than the one that sent, are outside its model. These
//! are measured with the generated real-time client (`agora_client::realtime`), and report the
//! same percentiles as `agora-load`: every delivery's latency is kept and sorted, no sampling.
//! Each message's text carries its send time (wall clock, microseconds), so a delivery's
//! latency is measured on the receiving socket, in this one process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agora_client::realtime::{Event, Realtime};
use agora_client::types::{
    ChatSettings, ClientFrame, ConversationCreate, ConversationKind, DirectMessagesFrom,
    RegisterRequest, SendMessageFrame, SendMessageFrameType, ServerFrame, Session,
};
use tokio::sync::watch;
use uuid::Uuid;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A REST call failed.
    #[error("{0}: {1}")]
    Api(&'static str, String),
    /// A socket failed.
    #[error("socket: {0}")]
    Socket(String),
}

fn api<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> BenchError {
    move |e| BenchError::Api(what, e.to_string())
}

/// The accounts a run registers: `{prefix}{n}`, all with one password.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// Handle prefix (unique per run, so runs do not collide).
    pub prefix: String,
    /// Their password.
    pub password: String,
}

impl Accounts {
    /// A fresh prefix for this run.
    pub fn fresh(password: &str) -> Self {
        let run = Uuid::now_v7().simple().to_string();
        Accounts {
            prefix: format!("rt{}x", &run[run.len() - 8..]),
            password: password.to_owned(),
        }
    }

    /// Registers account `n` on `base_url`.
    pub async fn register(&self, base_url: &str, n: usize) -> Result<Session, BenchError> {
        let handle = format!("{}{n}", self.prefix);
        let client = agora_client::Client::connect(base_url).map_err(api("client"))?;
        let session = client
            .register()
            .body(
                RegisterRequest::builder()
                    .handle(handle.clone())
                    .email(format!("{handle}@bench.invalid"))
                    .password(self.password.clone())
                    .display_name(handle),
            )
            .send()
            .await
            .map_err(api("register"))?
            .into_inner();
        Ok(session)
    }
}

fn client(base_url: &str, token: &str) -> Result<agora_client::Client, BenchError> {
    let client = agora_client::Client::connect(base_url).map_err(api("client"))?;
    client.credentials().set_token(token);
    Ok(client)
}

/// Lets anyone open a conversation with the account (the benchmarks skip friendships).
async fn open_to_everyone(base_url: &str, session: &Session) -> Result<(), BenchError> {
    client(base_url, &session.tokens.access_token)?
        .update_chat_settings()
        .body(ChatSettings {
            direct_messages_from: DirectMessagesFrom::Everyone,
        })
        .send()
        .await
        .map_err(api("update_chat_settings"))?;
    Ok(())
}

/// Connects and waits for `ready`.
pub async fn connect(base_url: &str, token: &str) -> Result<Realtime, BenchError> {
    let mut socket = Realtime::connect(base_url, token)
        .await
        .map_err(|e| BenchError::Socket(e.to_string()))?;
    loop {
        match socket.next().await {
            Ok(Event::Frame(ServerFrame::ReadyFrame(_))) => return Ok(socket),
            Ok(Event::Closed { code, reason }) => {
                return Err(BenchError::Socket(format!(
                    "closed with {code:?}: {reason}"
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(BenchError::Socket(e.to_string())),
        }
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Latencies of deliveries, microseconds, and what was sent.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    /// Messages sent.
    pub sent: usize,
    /// Deliveries expected (sent × recipients each).
    pub expected: usize,
    /// Every delivery's latency, sorted.
    pub micros: Vec<u64>,
    /// The seconds the sending took.
    pub seconds: f64,
    /// Senders the server closed before they were done (4001 when the instance is saturated
    /// and their own echoes piled up): they stop sending, the rest goes on.
    pub senders_closed: usize,
}

impl Latencies {
    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        let rank = ((self.micros.len() as f64) * q).ceil() as usize;
        self.micros[rank.clamp(1, self.micros.len()) - 1] as f64 / 1000.0
    }

    /// One line: counts, rate, p50/p95/p99/max.
    pub fn render(&self, what: &str) -> String {
        let closed = match self.senders_closed {
            0 => String::new(),
            n => format!("; {n} senders closed by the server"),
        };
        format!(
            "{what}: {} sent ({:.0}/s), {} of {} deliveries; p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms{closed}",
            self.sent,
            self.sent as f64 / self.seconds.max(f64::EPSILON),
            self.micros.len(),
            self.expected,
            self.quantile_ms(0.50),
            self.quantile_ms(0.95),
            self.quantile_ms(0.99),
            self.quantile_ms(1.0),
        )
    }
}

/// Reads a socket until `stop`, recording each bench message's latency.
fn record(
    mut socket: Realtime,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            tokio::select! {
                _ = stop.changed() => return got,
                event = socket.next() => match event {
                    Ok(Event::Frame(ServerFrame::MessageFrame(f))) => {
                        if let Some(sent) = f.message.text.as_deref().and_then(|t| t.strip_prefix("bench ")).and_then(|t| t.parse::<u64>().ok()) {
                            got.push(now_micros().saturating_sub(sent));
                        }
                    }
                    Ok(Event::Closed { .. }) | Err(_) => return got,
                    Ok(_) => {}
                },
            }
        }
    })
}

fn bench_frame(conversation: Uuid, n: usize) -> Result<ClientFrame, BenchError> {
    Ok(ClientFrame::SendMessageFrame(SendMessageFrame {
        type_: SendMessageFrameType::SendMessage,
        conversation_id: conversation,
        text: format!("bench {}", now_micros())
            .parse()
            .map_err(api("text"))?,
        client_message_id: format!("b{n}").parse().map_err(api("client_message_id"))?,
    }))
}

/// Sends over `socket` to `conversation` every `every`, `count` messages, reading (and
/// dropping) what arrives meanwhile so the socket is never a slow consumer; `true` when the
/// server closed it before it was done (the sweep goes on: a saturated instance is a result).
fn send_steadily(
    mut socket: Realtime,
    conversation: Uuid,
    every: Duration,
    count: usize,
    sent: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Result<bool, BenchError>> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut n = 0;
        while n < count {
            tokio::select! {
                _ = tick.tick() => {
                    socket.send(&bench_frame(conversation, n)?).await.map_err(|e| BenchError::Socket(e.to_string()))?;
                    sent.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                event = socket.next() => {
                    if let Ok(Event::Closed { .. }) = event {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    })
}

/// How long receivers wait for the last deliveries after the last send.
const SETTLE: Duration = Duration::from_secs(2);

/// `pairs` direct conversations: senders on `sender_url`, recipients on `recipient_url`, `rate`
/// messages a second in all for `seconds`; the latency of each delivery to a recipient.
pub async fn delivery(
    accounts: &Accounts,
    sender_url: &str,
    recipient_url: &str,
    pairs: usize,
    rate: u32,
    seconds: u64,
) -> Result<Latencies, BenchError> {
    let mut senders = Vec::new();
    let mut conversations = Vec::new();
    let mut recipients = Vec::new();
    for i in 0..pairs {
        let sender = accounts.register(sender_url, 2 * i).await?;
        let recipient = accounts.register(sender_url, 2 * i + 1).await?;
        open_to_everyone(sender_url, &recipient).await?;
        let conversation = client(sender_url, &sender.tokens.access_token)?
            .create_conversation()
            .body(ConversationCreate {
                kind: ConversationKind::Direct,
                member_ids: vec![recipient.user.id],
                title: None,
            })
            .send()
            .await
            .map_err(api("create_conversation"))?
            .into_inner()
            .id;
        senders.push(sender);
        recipients.push(recipient);
        conversations.push(conversation);
    }
    let (stop, stopped) = watch::channel(false);
    let mut readers = Vec::new();
    for r in &recipients {
        readers.push(record(
            connect(recipient_url, &r.tokens.access_token).await?,
            stopped.clone(),
        ));
    }
    let per_sender = (f64::from(rate) / pairs as f64).max(f64::MIN_POSITIVE);
    let every = Duration::from_secs_f64(1.0 / per_sender);
    let count = ((per_sender * seconds as f64).round() as usize).max(1);
    let sent = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let mut sending = Vec::new();
    for (s, c) in senders.iter().zip(&conversations) {
        let socket = connect(sender_url, &s.tokens.access_token).await?;
        sending.push(send_steadily(socket, *c, every, count, sent.clone()));
    }
    let mut closed = 0;
    for task in sending {
        if task
            .await
            .map_err(|e| BenchError::Socket(e.to_string()))??
        {
            closed += 1;
        }
    }
    gather(
        started,
        stop,
        readers,
        sent.load(Ordering::Relaxed),
        1,
        closed,
    )
    .await
}

/// Lets deliveries settle, stops the readers and collects their latencies: `sent` messages
/// sent since `started`, each due to `recipients` readers.
async fn gather(
    started: std::time::Instant,
    stop: watch::Sender<bool>,
    readers: Vec<tokio::task::JoinHandle<Vec<u64>>>,
    sent: usize,
    recipients: usize,
    senders_closed: usize,
) -> Result<Latencies, BenchError> {
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let _ = stop.send(true);
    let mut micros = Vec::new();
    for r in readers {
        micros.extend(r.await.map_err(|e| BenchError::Socket(e.to_string()))?);
    }
    micros.sort_unstable();
    Ok(Latencies {
        sent,
        expected: sent * recipients,
        micros,
        seconds,
        senders_closed,
    })
}

/// One group of `members` (the sender included), members' sockets alternating between the
/// instances; the sender sends `messages` at `rate` a second; each delivery's latency.
pub async fn fanout(
    accounts: &Accounts,
    urls: &[String],
    members: usize,
    messages: usize,
    rate: u32,
) -> Result<Latencies, BenchError> {
    let first = urls
        .first()
        .ok_or_else(|| BenchError::Socket("no server".into()))?;
    let sender = accounts.register(first, 0).await?;
    let mut others = Vec::new();
    for i in 1..members {
        let member = accounts.register(first, i).await?;
        open_to_everyone(first, &member).await?;
        others.push(member);
    }
    let group = client(first, &sender.tokens.access_token)?
        .create_conversation()
        .body(ConversationCreate {
            kind: ConversationKind::Group,
            member_ids: others.iter().map(|m| m.user.id).collect(),
            title: Some("fan-out bench".parse().map_err(api("title"))?),
        })
        .send()
        .await
        .map_err(api("create_conversation"))?
        .into_inner()
        .id;
    let (stop, stopped) = watch::channel(false);
    let mut readers = Vec::new();
    for (i, m) in others.iter().enumerate() {
        let url = &urls[i % urls.len()];
        readers.push(record(
            connect(url, &m.tokens.access_token).await?,
            stopped.clone(),
        ));
    }
    let sent = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let socket = connect(first, &sender.tokens.access_token).await?;
    let closed = send_steadily(
        socket,
        group,
        Duration::from_secs_f64(1.0 / f64::from(rate.max(1))),
        messages,
        sent.clone(),
    )
    .await
    .map_err(|e| BenchError::Socket(e.to_string()))??;
    gather(
        started,
        stop,
        readers,
        sent.load(Ordering::Relaxed),
        others.len(),
        usize::from(closed),
    )
    .await
}

/// What holding many idle sockets cost.
#[derive(Debug, Clone)]
pub struct Held {
    /// Sockets opened (each got `ready`).
    pub opened: usize,
    /// Accounts they belong to (each connected user also costs the server its event buffer).
    pub users: usize,
    /// Sockets still open after the hold.
    pub alive: usize,
    /// Seconds opening them took.
    pub open_seconds: f64,
    /// The server's resident memory before and after, in KiB (when its pid was given).
    pub rss_kib: Option<(u64, u64)>,
}

impl Held {
    /// One line: counts and memory per socket.
    pub fn render(&self) -> String {
        let memory = match self.rss_kib {
            Some((before, after)) => format!(
                "; server RSS {before} KiB → {after} KiB: {:.2} KiB per socket",
                after.saturating_sub(before) as f64 / self.opened.max(1) as f64
            ),
            None => String::new(),
        };
        format!(
            "connections: {} of {} users opened in {:.1} s, {} alive after the hold{memory}",
            self.opened, self.users, self.open_seconds, self.alive
        )
    }
}

/// The resident set of process `pid`, KiB (Linux `/proc`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Opens `count` idle authenticated sockets round-robin over `urls`, as `users` accounts, holds
/// them `hold` (each answering pings), and reads the server's memory before and after.
pub async fn hold(
    accounts: &Accounts,
    urls: &[String],
    count: usize,
    users: usize,
    hold: Duration,
    server_pid: Option<u32>,
) -> Result<Held, BenchError> {
    let first = urls
        .first()
        .ok_or_else(|| BenchError::Socket("no server".into()))?;
    let mut tokens = Vec::new();
    for i in 0..users.max(1) {
        tokens.push(accounts.register(first, i).await?.tokens.access_token);
    }
    // Let the registrations' background work (notifications, jobs) settle out of the figure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server_pid.and_then(rss_kib);
    let alive = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = watch::channel(false);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    // A few hundred handshakes at a time: a connect storm is not what this measures.
    for chunk in (0..count).collect::<Vec<_>>().chunks(200) {
        let opening = chunk.iter().map(|&i| {
            let url = &urls[i % urls.len()];
            let token = &tokens[i % tokens.len()];
            connect(url, token)
        });
        for socket in futures::future::join_all(opening).await {
            let mut socket = socket?;
            let alive = alive.clone();
            let mut stopped = stopped.clone();
            alive.fetch_add(1, Ordering::Relaxed);
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stopped.changed() => return,
                        event = socket.next() => {
                            if matches!(event, Ok(Event::Closed { .. }) | Err(_)) {
                                alive.fetch_sub(1, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                }
            }));
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(hold).await;
    let after = server_pid.and_then(rss_kib);
    let still = alive.load(Ordering::Relaxed);
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(Held {
        opened: count,
        users: users.max(1),
        alive: still,
        open_seconds,
        rss_kib: before.zip(after),
    })
}
