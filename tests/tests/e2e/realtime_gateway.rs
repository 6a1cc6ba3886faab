//! The gateway's guarantees under misbehaving clients and instances: browser authentication
//! with a first frame or the subprotocol list, token expiry and `reauth`, the per-user connection limit across
//! instances, presence, slow consumers, silent clients, cleanup after thousands of killed
//! sockets, the 1012 drain, and a Redis cut mid-conversation.
//!
//! Clients that misbehave on purpose (never read, never answer pings, vanish) are raw TCP
//! sockets that did the WebSocket handshake ([`RawSocket`]): the typed client answers pings and
//! reads eagerly, which is what a misbehaving client does not do.

use std::time::Duration;

use agora_client::realtime::{Event, Realtime};
use agora_client::types::{
    AuthFrame, AuthFrameType, ClientFrame, PresenceQuery, ReauthFrame, ReauthFrameType,
    RefreshSessionRequest, ServerFrame,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::e2e_both_backends;
use crate::metrics::scrape;
use crate::realtime::{
    PATIENCE, close_code, connect, event, friends_in_a_dm, next, next_message, pong, rest_send,
};
use crate::support::{TestApp, chaos_redis_env, redis_behind_proxy, status};

/// A socket that did the WebSocket handshake and then does only what the test says.
struct RawSocket {
    reader: BufReader<TcpStream>,
}

impl RawSocket {
    /// Upgrades with `Authorization: Bearer token`; `receive_buffer` shrinks the kernel's
    /// receive buffer (a client that stops reading then fills up after a few KiB).
    async fn open(app: &TestApp, token: &str, receive_buffer: Option<u32>) -> RawSocket {
        let addr = app.server.as_ref().expect("running").local_addr();
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let mut stream = socket.connect(addr).await.expect("connect");
        let request = format!(
            "GET /v1/realtime HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("handshake");
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).await.expect("status");
        assert!(status_line.starts_with("HTTP/1.1 101"), "{status_line}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("header");
            if line == "\r\n" {
                break;
            }
        }
        RawSocket { reader }
    }

    /// The next frame's opcode and payload; `None` once the connection ends.
    async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.reader.read_exact(&mut head).await.ok()?;
        let len = match head[1] & 0x7f {
            126 => u64::from(self.reader.read_u16().await.ok()?),
            127 => self.reader.read_u64().await.ok()?,
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).ok()?];
        self.reader.read_exact(&mut payload).await.ok()?;
        Some((head[0] & 0x0f, payload))
    }

    /// Reads (without ever answering a ping) until the server's close frame: its code, or
    /// `None` when the connection ended without one.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            let (opcode, payload) = tokio::time::timeout(PATIENCE, self.frame())
                .await
                .expect("the server ends the connection in time")?;
            if opcode == 8 {
                return payload
                    .get(..2)
                    .map(|code| u16::from_be_bytes([code[0], code[1]]));
            }
        }
    }

    /// Waits for the `ready` frame (so the socket is admitted and holds its lease).
    async fn ready(&mut self) {
        loop {
            let (opcode, payload) = tokio::time::timeout(PATIENCE, self.frame())
                .await
                .expect("ready in time")
                .expect("the socket stays open");
            if opcode == 1 {
                let text = String::from_utf8(payload).expect("text");
                assert!(text.contains(r#""type":"ready""#), "{text}");
                return;
            }
        }
    }

    /// Ends the connection abruptly: a reset, as from a killed process or a lost network.
    fn kill(self) {
        let stream = self.reader.into_inner();
        // A zero linger does not block on drop (the warning's case): it sends a reset.
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
        drop(stream);
    }
}

fn auth_frame(token: &str) -> ClientFrame {
    ClientFrame::AuthFrame(AuthFrame {
        type_: AuthFrameType::Auth,
        token: token.parse().expect("token"),
    })
}

async fn presence(app: &TestApp, token: &str, users: Vec<Uuid>) -> Vec<(Uuid, bool)> {
    app.client_with_token(token)
        .get_presence()
        .body(PresenceQuery { user_ids: users })
        .send()
        .await
        .expect("get_presence")
        .into_inner()
        .users
        .into_iter()
        .map(|u| (u.user_id, u.online))
        .collect()
}

/// The next `presence` frame, skipping others.
async fn next_presence(socket: &mut Realtime) -> (Uuid, bool) {
    loop {
        match event(socket).await {
            Event::Frame(ServerFrame::PresenceFrame(f)) => return (f.user_id, f.online),
            Event::Closed { code, reason } => panic!("closed with {code:?}: {reason}"),
            _ => {}
        }
    }
}

/// Polls until `check` holds (at most 20 s: a tripped Redis breaker cools down for 5).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

e2e_both_backends!(
    a_browser_authenticates_with_its_first_frame_and_nothing_else,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let token = &ann.tokens.access_token;

        let mut socket = Realtime::connect_with(&app.base_url, None)
            .await
            .expect("an upgrade without credentials");
        socket.send(&auth_frame(token)).await.expect("auth");
        match next(&mut socket).await {
            ServerFrame::ReadyFrame(ready) => {
                assert_eq!(ready.user_id, ann.user.id);
                assert!(ready.token_expires_at.is_some());
            }
            other => panic!("expected ready, got {other:?}"),
        }
        pong(&mut socket).await;
        // Once authenticated, another `auth` is refused and the socket stays.
        socket.send(&auth_frame(token)).await.expect("auth again");
        match next(&mut socket).await {
            ServerFrame::ErrorFrame(e) => assert_eq!(e.error_code, "invalid_request"),
            other => panic!("expected an error frame, got {other:?}"),
        }
        pong(&mut socket).await;

        // A first frame that is not `auth`, or a bad token, closes with 1008.
        for first in [
            r#"{"type":"ping"}"#.to_owned(),
            r#"{"type":"auth","token":"not-a-token"}"#.to_owned(),
            "not json".to_owned(),
        ] {
            let mut socket = Realtime::connect_with(&app.base_url, None)
                .await
                .expect("upgrade");
            socket.send_text(&first).await.expect("first frame");
            assert_eq!(close_code(&mut socket).await, Some(1008), "{first}");
        }
    }
);

e2e_both_backends!(
    a_browser_may_carry_its_token_in_the_subprotocol_list,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let mut socket = Realtime::connect_with_protocol(&app.base_url, &ann.tokens.access_token)
            .await
            .expect("an upgrade offering agora and the token");
        // A browser fails a handshake whose answer selects none of the offered subprotocols.
        assert_eq!(socket.protocol(), Some("agora"));
        match next(&mut socket).await {
            ServerFrame::ReadyFrame(ready) => assert_eq!(ready.user_id, ann.user.id),
            other => panic!("expected ready, got {other:?}"),
        }
        // Already authenticated by the handshake: an `auth` frame is refused, the socket stays.
        socket
            .send(&auth_frame(&ann.tokens.access_token))
            .await
            .expect("auth");
        match next(&mut socket).await {
            ServerFrame::ErrorFrame(e) => assert_eq!(e.error_code, "invalid_request"),
            other => panic!("expected an error frame, got {other:?}"),
        }

        // A bad token in the list closes with 1008 at once, without waiting for a frame.
        let mut refused = Realtime::connect_with_protocol(&app.base_url, "not-a-token")
            .await
            .expect("upgrade");
        assert_eq!(close_code(&mut refused).await, Some(1008));
        // An Authorization header wins over the list: a bad header is refused even beside a
        // good token in the list.
        let addr = app.server.as_ref().expect("running").local_addr();
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET /v1/realtime HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nAuthorization: Basic dXNlcg==\r\n\
             Sec-WebSocket-Protocol: agora, agora.bearer.{}\r\n\r\n",
            ann.tokens.access_token
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("handshake");
        let mut raw = RawSocket {
            reader: BufReader::new(stream),
        };
        let mut answer = String::new();
        loop {
            let mut line = String::new();
            raw.reader.read_line(&mut line).await.expect("header");
            if line == "\r\n" {
                break;
            }
            answer.push_str(&line.to_ascii_lowercase());
        }
        assert!(answer.starts_with("http/1.1 101"), "{answer}");
        assert!(
            answer.contains("sec-websocket-protocol: agora\r\n"),
            "{answer}"
        );
        assert_eq!(raw.close_code().await, Some(1008));
    }
);

e2e_both_backends!(
    a_socket_closes_with_4003_at_its_tokens_expiry_unless_reauthed,
    &[("AGORA_AUTH__ACCESS_TTL_SECS", "3")],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let mut expiring = connect(&app, &ann.tokens.access_token).await;
        let mut renewed = connect(&app, &ann.tokens.access_token).await;

        // A token of another user is refused; the socket keeps its own.
        renewed
            .send(&ClientFrame::ReauthFrame(ReauthFrame {
                type_: ReauthFrameType::Reauth,
                token: bob.tokens.access_token.parse().expect("token"),
            }))
            .await
            .expect("reauth");
        match next(&mut renewed).await {
            ServerFrame::ErrorFrame(e) => assert_eq!(e.error_code, "forbidden"),
            other => panic!("expected an error frame, got {other:?}"),
        }
        // A token issued later (expiry has a one-second resolution) of the same user.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let fresh = app
            .client
            .refresh_session()
            .body(RefreshSessionRequest::builder().refresh_token(ann.tokens.refresh_token.clone()))
            .send()
            .await
            .expect("refresh")
            .into_inner();
        renewed
            .send(&ClientFrame::ReauthFrame(ReauthFrame {
                type_: ReauthFrameType::Reauth,
                token: fresh.access_token.parse().expect("token"),
            }))
            .await
            .expect("reauth");
        let renewed_until = match next(&mut renewed).await {
            ServerFrame::ReauthedFrame(f) => f.token_expires_at,
            other => panic!("expected reauthed, got {other:?}"),
        };

        assert_eq!(close_code(&mut expiring).await, Some(4003));
        assert!(
            chrono::Utc::now() < renewed_until,
            "the renewed token has not expired yet"
        );
        pong(&mut renewed).await;
        assert_eq!(close_code(&mut renewed).await, Some(4003));
    }
);

e2e_both_backends!(
    friends_see_each_other_come_and_go_and_get_presence_tells_only_friends,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        app.befriend(&ann, &bob).await;
        let (ta, tb) = (&ann.tokens.access_token, &bob.tokens.access_token);
        let everyone = vec![ann.user.id, carol.user.id, Uuid::now_v7()];
        assert_eq!(
            presence(&app, tb, everyone.clone()).await,
            [(ann.user.id, false)]
        );

        let mut bob_socket = connect(&app, tb).await;
        let first = connect(&app, ta).await;
        assert_eq!(next_presence(&mut bob_socket).await, (ann.user.id, true));
        assert_eq!(
            presence(&app, tb, everyone.clone()).await,
            [(ann.user.id, true)]
        );
        // A second socket of ann's is no news; closing one of two leaves her online.
        let mut second = connect(&app, ta).await;
        first.close().await;
        pong(&mut second).await;
        assert_eq!(
            presence(&app, tb, everyone.clone()).await,
            [(ann.user.id, true)]
        );
        second.close().await;
        assert_eq!(next_presence(&mut bob_socket).await, (ann.user.id, false));
        assert_eq!(presence(&app, tb, everyone).await, [(ann.user.id, false)]);

        // The query is validated like any body.
        let empty = app
            .client_with_token(tb)
            .get_presence()
            .body(PresenceQuery { user_ids: vec![] })
            .send()
            .await;
        assert_eq!(status(&empty), 400);
    }
);

e2e_both_backends!(
    a_client_that_stops_reading_is_closed_as_a_slow_consumer_while_others_keep_receiving,
    &[
        ("AGORA_REALTIME__QUEUE_FRAMES", "8"),
        ("AGORA_RATE_LIMITS__CHAT_PER_USER__REQUESTS", "100000"),
    ],
    |app| async move {
        let (ann, bob, conversation) = friends_in_a_dm(&app).await;
        let (ta, tb) = (&ann.tokens.access_token, &bob.tokens.access_token);
        let mut stalled = RawSocket::open(&app, tb, Some(4096)).await;
        stalled.ready().await;
        let mut reading = connect(&app, tb).await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<u64>();
        // Reads as fast as messages come, up to the last one sent.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut last = None;
            let mut stopped = stopped;
            loop {
                tokio::select! {
                    message = next_message(&mut reading) => {
                        got.push(message.0);
                        if Some(message.0) == last { return got; }
                    }
                    n = &mut stopped, if last.is_none() => {
                        let n = n.expect("the count");
                        if got.last() == Some(&n) { return got; }
                        last = Some(n);
                    }
                }
            }
        });
        let gateway = app.server.as_ref().expect("running").gateway();
        assert_eq!(gateway.stats().connections, 2);
        let text = "x".repeat(2_000);
        let mut sent = 0u64;
        while gateway.stats().connections == 2 {
            for _ in 0..20 {
                sent += 1;
                rest_send(&app, ta, conversation, &text, &format!("m{sent}")).await;
            }
            assert!(sent < 4_000, "the stalled socket was never closed");
        }
        stop.send(sent).expect("the reader waits");
        // The reading socket got every message, in order, meanwhile.
        let got = tokio::time::timeout(PATIENCE * 3, reader)
            .await
            .expect("the reader finishes")
            .expect("joins");
        assert_eq!(got, (1..=sent).collect::<Vec<_>>());
        // The stalled one was ended: with 4001 if its close frame got through the full
        // buffers, else without a close frame; never left open.
        let code = stalled.close_code().await;
        assert!(matches!(code, None | Some(4001)), "{code:?}");
        assert!(
            scrape(&app)
                .await
                .contains("realtime_slow_consumer_closes_total"),
            "slow consumers are counted"
        );
    }
);

/// Keeps a typed socket answering pings (it does while it reads) until told to stop; gives it
/// back.
fn keep_alive(
    mut socket: Realtime,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Realtime>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return socket,
                () = pong(&mut socket) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    (stop, task)
}

e2e_both_backends!(
    a_client_that_answers_no_pings_is_reaped_with_4002,
    &[("AGORA_REALTIME__HEARTBEAT_SECS", "1")],
    |app| async move {
        let ann = app.register("ann").await;
        let mut silent = RawSocket::open(&app, &ann.tokens.access_token, None).await;
        // The typed client answers pings while it reads: it stays.
        let (stop, alive) = keep_alive(connect(&app, &ann.tokens.access_token).await);
        assert_eq!(silent.close_code().await, Some(4002));
        let server = app.server.as_ref().expect("running").gateway();
        eventually("the reaped socket is counted out", async || {
            server.stats().connections == 1 && server.stats().leases == 1
        })
        .await;
        stop.send(()).expect("still pinging");
        let mut alive = alive.await.expect("joins");
        pong(&mut alive).await;
    }
);

/// Thousands of sockets opened and killed (reset or closed mid-stream, by 50 users at the limit
/// of 10 each): afterwards no socket, lease or presence is left, on this instance or in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gauge_returns_to_zero_after_thousands_of_killed_sockets() {
    let redis = agora_kv::testing::TestRedis::new("realtime_cleanup");
    let config = redis.as_ref().map(|r| r.config());
    let url = config
        .as_ref()
        .and_then(|c| c.url.clone())
        .unwrap_or_default();
    let prefix = config
        .as_ref()
        .map(|c| c.key_prefix.clone())
        .unwrap_or_default();
    let mut env = vec![
        ("AGORA_REALTIME__MAX_CONNECTIONS_PER_USER", "10"),
        ("AGORA_RATE_LIMITS__AUTH_PER_IP__REQUESTS", "1000"),
    ];
    if redis.is_some() {
        env.push(("AGORA_REDIS__URL", &url));
        env.push(("AGORA_REDIS__KEY_PREFIX", &prefix));
    }
    let app = TestApp::start_with(&env).await;
    let watcher = app.register("watcher").await;
    let mut users = Vec::new();
    for i in 0..50 {
        let user = app.register(&format!("user{i}")).await;
        app.befriend(&watcher, &user).await;
        users.push(user);
    }
    let gateway = app.server.as_ref().expect("running").gateway();
    for round in 0..4 {
        let opening = users
            .iter()
            .flat_map(|u| (0..10).map(|_| RawSocket::open(&app, &u.tokens.access_token, None)));
        let mut sockets = futures::future::join_all(opening).await;
        for socket in &mut sockets {
            socket.ready().await;
        }
        assert_eq!(gateway.stats().connections, 500, "round {round}");
        assert_eq!(gateway.stats().leases, 500, "round {round}");
        assert_eq!(gateway.stats().users, 50, "round {round}");
        // One over the limit is refused while the ten are held.
        let mut extra = RawSocket::open(&app, &users[0].tokens.access_token, None).await;
        assert_eq!(extra.close_code().await, Some(4000));
        for (i, socket) in sockets.into_iter().enumerate() {
            if i % 2 == 0 {
                socket.kill();
            } else {
                drop(socket);
            }
        }
        eventually("every socket and lease is given back", async || {
            gateway.stats()
                == agora_server::realtime::GatewayStats {
                    connections: 0,
                    leases: 0,
                    users: 0,
                }
        })
        .await;
    }
    // A connect storm this size may trip the Redis breaker on two loaded cores; removals that
    // could not reach Redis then are retried once it answers, so this converges too.
    let ids: Vec<Uuid> = users.iter().map(|u| u.user.id).collect();
    eventually("nobody is online, here or in Redis", async || {
        let online = presence(&app, &watcher.tokens.access_token, ids.clone()).await;
        let in_redis = redis.as_ref().map_or(0, |r| {
            r.keys()
                .expect("keys")
                .iter()
                .filter(|k| k.contains("rt:conns"))
                .count()
        });
        online.iter().all(|(_, on)| !on) && in_redis == 0
    })
    .await;
    assert!(
        scrape(&app)
            .await
            .contains("realtime_closes_total{code=\"4000\"}"),
        "refusals are counted by close code"
    );
}

e2e_both_backends!(
    a_draining_instance_closes_its_sockets_with_1012,
    &[("AGORA_HTTP__SHUTDOWN_DRAIN_SECS", "1")],
    |app| async move {
        let mut app = app;
        let ann = app.register("ann").await;
        let mut sockets = Vec::new();
        for _ in 0..3 {
            sockets.push(connect(&app, &ann.tokens.access_token).await);
        }
        let server = app.server.take().expect("running");
        let stopping = tokio::spawn(server.shutdown());
        for socket in &mut sockets {
            assert_eq!(close_code(socket).await, Some(1012));
        }
        stopping.await.expect("joins").expect("stops");
    }
);

/// Redis goes away mid-conversation: REST answers as before, and the sockets of one instance
/// keep getting the messages (the broker delivers locally), then everything recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_redis_mid_conversation_changes_no_status_and_keeps_local_sockets_working() {
    let Some((_redis, proxy, config)) = redis_behind_proxy("realtime_redis_cut").await else {
        return;
    };
    let url = config.url.clone().expect("url");
    let app = TestApp::start_with(&chaos_redis_env(&url, &config.key_prefix)).await;
    let (ann, bob, conversation) = friends_in_a_dm(&app).await;
    let (ta, tb) = (&ann.tokens.access_token, &bob.tokens.access_token);
    let mut bob_socket = connect(&app, tb).await;
    rest_send(&app, ta, conversation, "before", "m1").await;
    assert_eq!(next_message(&mut bob_socket).await.0, 1);

    proxy.cut();
    rest_send(&app, ta, conversation, "during", "m2").await;
    assert_eq!(
        next_message(&mut bob_socket).await,
        (2, Some("during".into()))
    );
    // New sockets are admitted and counted on this instance alone meanwhile.
    let mut ann_socket = connect(&app, ta).await;
    pong(&mut ann_socket).await;
    assert_eq!(
        presence(&app, tb, vec![ann.user.id]).await,
        [(ann.user.id, true)]
    );

    proxy.restore();
    rest_send(&app, ta, conversation, "after", "m3").await;
    assert_eq!(next_message(&mut bob_socket).await.0, 3);
    // Ann's own message reaches her socket admitted during the cut, once.
    assert_eq!(next_message(&mut ann_socket).await.0, 3);
}

/// The per-user limit is one count across instances (the leases are in Redis), and a closed
/// socket's place is free again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_user_connection_limit_holds_across_instances() {
    let Some((_db, _redis, _, one, two)) = crate::revocation::two_instances_with(
        "realtime_connection_limit",
        false,
        &[("AGORA_REALTIME__MAX_CONNECTIONS_PER_USER", "3")],
    )
    .await
    else {
        return;
    };
    let ann = one.register("ann").await;
    let token = &ann.tokens.access_token;
    let first = connect(&one, token).await;
    let _second = connect(&one, token).await;
    let _third = connect(&two, token).await;
    for app in [&one, &two] {
        let mut refused = Realtime::connect(&app.base_url, token)
            .await
            .expect("the upgrade succeeds");
        assert_eq!(close_code(&mut refused).await, Some(4000));
    }
    first.close().await;
    eventually("the closed socket's place is free", async || {
        let mut socket = Realtime::connect(&two.base_url, token)
            .await
            .expect("upgrade");
        matches!(
            event(&mut socket).await,
            Event::Frame(ServerFrame::ReadyFrame(_))
        )
    })
    .await;
}

/// A message sent in a trace carries it: its broker envelope (what another instance's gateway
/// receives) names the sender's trace id, and its delivery to a socket is timed
/// (`realtime_delivery_seconds`, publish → written to the socket).
#[tokio::test]
async fn a_delivery_carries_the_sender_s_trace_and_is_timed() {
    let Some(redis) = agora_kv::testing::TestRedis::new("realtime_trace") else {
        return;
    };
    let config = redis.config();
    let url = config.url.clone().expect("url");
    let app = TestApp::start_with(&[
        ("AGORA_REDIS__URL", url.as_str()),
        ("AGORA_REDIS__KEY_PREFIX", config.key_prefix.as_str()),
    ])
    .await;
    let (ann, bob, conversation) = friends_in_a_dm(&app).await;
    let mut socket = connect(&app, &bob.tokens.access_token).await;
    let other_instance = agora_kv::Kv::connect(&config).await.expect("kv");
    let mut channel = other_instance
        .broker()
        .subscribe(&format!("user:{}", bob.user.id))
        .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/conversations/{conversation}/messages",
            app.base_url
        ))
        .bearer_auth(&ann.tokens.access_token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&serde_json::json!({ "text": "traced", "client_message_id": "t1" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 201);

    let payload = tokio::time::timeout(PATIENCE, channel.recv())
        .await
        .expect("published in time")
        .expect("channel open");
    let (envelope, frame) =
        agora_server::notifications::events::open(&payload).expect("an event envelope");
    let traceparent = envelope.traceparent.expect("the sender's trace");
    let joined = agora_api::rt::TraceContext::from_traceparent(Some(&traceparent));
    assert_eq!(joined.trace_id, trace_id);
    assert_ne!(
        joined.parent_span_id.as_deref(),
        Some("00f067aa0ba902b7"),
        "a child span of the request's"
    );
    let frame: serde_json::Value = serde_json::from_str(frame).expect("the frame's JSON");
    assert_eq!(frame["type"], "message");
    assert_eq!(frame["message"]["text"], "traced");

    assert_eq!(next_message(&mut socket).await.1.as_deref(), Some("traced"));
    eventually("the delivery is timed", async || {
        scrape(&app)
            .await
            .contains("realtime_delivery_seconds_count")
    })
    .await;
}
