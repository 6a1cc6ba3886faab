//! `/v1/realtime`: the typed socket (`agora_client::realtime`) against a real server — live
//! delivery, sends over the socket, resume without gaps or duplicates, refused frames and close
//! codes, and delivery across two instances sharing PostgreSQL and Redis.

use std::time::Duration;

use agora_client::realtime::{Event, Realtime};
use agora_client::types::{
    ClientFrame, ConversationCreate, ConversationKind, ConversationPosition, MessageCreate,
    PingFrame, PingFrameType, ResumeFrame, ResumeFrameType, SendMessageFrame, SendMessageFrameType,
    ServerFrame, TypingFrame, TypingFrameType,
};
use uuid::Uuid;

use crate::e2e_both_backends;
use crate::support::TestApp;

/// Waits this long for a frame before the test fails (generous: CI shares two cores).
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) async fn connect(app: &TestApp, token: &str) -> Realtime {
    let mut socket = Realtime::connect(&app.base_url, token)
        .await
        .expect("the upgrade succeeds");
    match next(&mut socket).await {
        ServerFrame::ReadyFrame(_) => socket,
        other => panic!("the first frame is ready, got {other:?}"),
    }
}

pub(crate) async fn event(socket: &mut Realtime) -> Event {
    tokio::time::timeout(PATIENCE, socket.next())
        .await
        .expect("a frame in time")
        .expect("the socket works")
}

/// The next frame, skipping notifications and presence: the friend requests and sign-ins a
/// test makes are notified by background jobs, and friends' sockets come and go, live, at
/// moments the test does not control.
pub(crate) async fn next(socket: &mut Realtime) -> ServerFrame {
    loop {
        match event(socket).await {
            Event::Frame(ServerFrame::NotificationFrame(_) | ServerFrame::PresenceFrame(_)) => {
                continue;
            }
            Event::Frame(frame) => return frame,
            Event::Unknown { frame_type, .. } => {
                panic!("a frame type not in the contract: {frame_type}")
            }
            Event::Closed { code, reason } => panic!("closed with {code:?}: {reason}"),
        }
    }
}

/// The next message frame's (sequence, text), skipping other frames.
pub(crate) async fn next_message(socket: &mut Realtime) -> (u64, Option<String>) {
    loop {
        if let ServerFrame::MessageFrame(f) = next(socket).await {
            return (f.message.sequence.get(), f.message.text);
        }
    }
}

/// Pings and expects the pong next (so nothing else was queued before it).
pub(crate) async fn pong(socket: &mut Realtime) {
    socket
        .send(&ClientFrame::PingFrame(PingFrame {
            type_: PingFrameType::Ping,
        }))
        .await
        .expect("ping");
    match next(socket).await {
        ServerFrame::PongFrame(_) => {}
        other => panic!("expected pong, got {other:?}"),
    }
}

/// The close code the server ends with, skipping frames before it.
pub(crate) async fn close_code(socket: &mut Realtime) -> Option<u16> {
    loop {
        if let Event::Closed { code, .. } = event(socket).await {
            return code;
        }
    }
}

pub(crate) async fn dm(app: &TestApp, a: &str, b: Uuid) -> Uuid {
    app.client_with_token(a)
        .create_conversation()
        .body(ConversationCreate {
            kind: ConversationKind::Direct,
            member_ids: vec![b],
            title: None,
        })
        .send()
        .await
        .expect("create_conversation")
        .into_inner()
        .id
}

/// Two friends, ann and bob, and their direct conversation.
pub(crate) async fn friends_in_a_dm(
    app: &TestApp,
) -> (
    agora_client::types::Session,
    agora_client::types::Session,
    Uuid,
) {
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    app.befriend(&ann, &bob).await;
    let conversation = dm(app, &ann.tokens.access_token, bob.user.id).await;
    (ann, bob, conversation)
}

pub(crate) async fn rest_send(
    app: &TestApp,
    token: &str,
    conversation: Uuid,
    text: &str,
    id: &str,
) {
    app.client_with_token(token)
        .send_message()
        .conversation_id(conversation)
        .body(MessageCreate {
            text: text.parse().expect("text"),
            client_message_id: id.parse().expect("id"),
        })
        .send()
        .await
        .expect("send_message");
}

pub(crate) fn socket_send(conversation: Uuid, text: &str, id: &str) -> ClientFrame {
    ClientFrame::SendMessageFrame(SendMessageFrame {
        type_: SendMessageFrameType::SendMessage,
        conversation_id: conversation,
        text: text.parse().expect("text"),
        client_message_id: id.parse().expect("id"),
    })
}

/// Expects the next frame to be the `error` frame refusing the send `id` with `code`.
pub(crate) async fn refused_send(socket: &mut Realtime, code: &str, id: &str) {
    match next(socket).await {
        ServerFrame::ErrorFrame(e) => {
            assert_eq!(e.error_code, code);
            assert_eq!(e.client_message_id.as_deref().map(String::as_str), Some(id));
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
}

e2e_both_backends!(
    messages_reach_every_member_socket_live_whether_sent_by_rest_or_socket,
    &[],
    |app| async move {
        let (ann, bob, conversation) = friends_in_a_dm(&app).await;
        let (ta, tb) = (&ann.tokens.access_token, &bob.tokens.access_token);
        let mut ann_socket = connect(&app, ta).await;
        let mut bob_socket = connect(&app, tb).await;

        rest_send(&app, ta, conversation, "over REST", "r1").await;
        assert_eq!(
            next_message(&mut bob_socket).await,
            (1, Some("over REST".into()))
        );
        // The sender's own sockets get it too (their other devices).
        assert_eq!(
            next_message(&mut ann_socket).await,
            (1, Some("over REST".into()))
        );

        bob_socket
            .send(&socket_send(conversation, "over the socket", "s1"))
            .await
            .expect("send");
        assert_eq!(
            next_message(&mut ann_socket).await,
            (2, Some("over the socket".into()))
        );
        assert_eq!(
            next_message(&mut bob_socket).await,
            (2, Some("over the socket".into()))
        );
        // A retried socket send answers the stored message to its sender only, stores nothing.
        bob_socket
            .send(&socket_send(conversation, "over the socket", "s1"))
            .await
            .expect("retry");
        assert_eq!(
            next_message(&mut bob_socket).await,
            (2, Some("over the socket".into()))
        );
        let stored = app
            .client_with_token(ta)
            .get_conversation()
            .conversation_id(conversation)
            .send()
            .await
            .expect("get")
            .into_inner();
        assert_eq!(stored.last_sequence, 2);

        // Typing reaches the others, not the typist; ping answers pong.
        ann_socket
            .send(&ClientFrame::TypingFrame(TypingFrame {
                type_: TypingFrameType::Typing,
                conversation_id: conversation,
            }))
            .await
            .expect("typing");
        match next(&mut bob_socket).await {
            ServerFrame::TypingEventFrame(t) => assert_eq!(t.user_id, ann.user.id),
            other => panic!("expected typing, got {other:?}"),
        }
        ann_socket
            .send(&ClientFrame::PingFrame(PingFrame {
                type_: PingFrameType::Ping,
            }))
            .await
            .expect("ping");
        assert!(matches!(
            next(&mut ann_socket).await,
            ServerFrame::PongFrame(_)
        ));

        // A refused send names its client_message_id; the connection stays.
        bob_socket
            .send(&socket_send(Uuid::now_v7(), "nowhere", "n1"))
            .await
            .expect("send");
        refused_send(&mut bob_socket, "not_found", "n1").await;
    }
);

e2e_both_backends!(
    resume_replays_what_a_socket_missed_without_gaps_or_duplicates,
    &[],
    |app| async move {
        let (ann, bob, conversation) = friends_in_a_dm(&app).await;
        let (ta, tb) = (&ann.tokens.access_token, &bob.tokens.access_token);

        let mut bob_socket = connect(&app, tb).await;
        rest_send(&app, ta, conversation, "one", "1").await;
        assert_eq!(next_message(&mut bob_socket).await.0, 1);
        bob_socket.close().await;

        // Missed while away.
        for (text, id) in [("two", "2"), ("three", "3")] {
            rest_send(&app, ta, conversation, text, id).await;
        }
        let mut bob_socket = connect(&app, tb).await;
        bob_socket
            .send(&ClientFrame::ResumeFrame(ResumeFrame {
                type_: ResumeFrameType::Resume,
                positions: vec![
                    ConversationPosition {
                        conversation_id: conversation,
                        sequence: 1,
                    },
                    // A conversation bob is not in is skipped.
                    ConversationPosition {
                        conversation_id: Uuid::now_v7(),
                        sequence: 0,
                    },
                ],
            }))
            .await
            .expect("resume");
        assert_eq!(next_message(&mut bob_socket).await, (2, Some("two".into())));
        assert_eq!(
            next_message(&mut bob_socket).await,
            (3, Some("three".into()))
        );
        match next(&mut bob_socket).await {
            ServerFrame::ResumedFrame(r) => assert_eq!(r.replayed, 2),
            other => panic!("expected resumed, got {other:?}"),
        }
        // Live delivery goes on after the replay, once per message.
        rest_send(&app, ta, conversation, "four", "4").await;
        assert_eq!(
            next_message(&mut bob_socket).await,
            (4, Some("four".into()))
        );
        // Nothing was delivered twice: the pong comes next.
        pong(&mut bob_socket).await;
    }
);

e2e_both_backends!(
    invalid_frames_get_error_frames_and_the_contracts_close_codes,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let token = &ann.tokens.access_token;
        let mut socket = connect(&app, token).await;
        // A frame missing fields: an error frame naming each pointer; the socket stays.
        socket
            .send_text(r#"{"type":"send_message","conversation_id":"not-a-uuid"}"#)
            .await
            .expect("send");
        match next(&mut socket).await {
            ServerFrame::ErrorFrame(e) => {
                assert_eq!(e.error_code, "invalid_request");
                assert!(!e.details.is_empty(), "{e:?}");
            }
            other => panic!("expected an error frame, got {other:?}"),
        }
        // Five in a row close the connection with 1007.
        for _ in 0..5 {
            socket.send_text("not json").await.expect("send");
        }
        assert_eq!(close_code(&mut socket).await, Some(1007));

        // A frame over 64 KiB: 1009.
        let mut socket = connect(&app, token).await;
        let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70 * 1024));
        let _ = socket.send_text(&big).await;
        assert_eq!(close_code(&mut socket).await, Some(1009));

        // A bad token: refused at the upgrade with 1008 (policy).
        let mut refused = Realtime::connect(&app.base_url, "not-a-token")
            .await
            .expect("the upgrade itself succeeds");
        assert_eq!(close_code(&mut refused).await, Some(1008));
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_on_one_instance_reaches_sockets_on_both() {
    let Some((_db, _redis, _, one, two)) =
        crate::revocation::two_instances("realtime_two_instances", false).await
    else {
        return;
    };
    let ann = one.register("ann").await;
    let bob = one.register("bob").await;
    one.befriend(&ann, &bob).await;
    let (ta, tb) = (&ann.tokens.access_token, &bob.tokens.access_token);
    let conversation = dm(&one, ta, bob.user.id).await;
    let mut bob_on_one = connect(&one, tb).await;
    let mut bob_on_two = connect(&two, tb).await;
    let mut ann_on_two = connect(&two, ta).await;

    rest_send(&one, ta, conversation, "across", "x1").await;
    assert_eq!(
        next_message(&mut bob_on_one).await,
        (1, Some("across".into()))
    );
    assert_eq!(
        next_message(&mut bob_on_two).await,
        (1, Some("across".into()))
    );
    assert_eq!(
        next_message(&mut ann_on_two).await,
        (1, Some("across".into()))
    );
    // And back: a socket send on instance two reaches instance one.
    bob_on_two
        .send(&socket_send(conversation, "and back", "x2"))
        .await
        .expect("send");
    assert_eq!(
        next_message(&mut bob_on_one).await,
        (2, Some("and back".into()))
    );
}

e2e_both_backends!(
    with_chat_switched_off_the_socket_stays_and_chat_frames_are_refused,
    &[("AGORA_FEATURES__CHAT", "false")],
    |app| async move {
        let ann = app.register("ann").await;
        let mut socket = connect(&app, &ann.tokens.access_token).await;
        socket
            .send(&socket_send(Uuid::now_v7(), "hello", "f1"))
            .await
            .expect("send");
        refused_send(&mut socket, "feature_disabled", "f1").await;
        pong(&mut socket).await;
    }
);

e2e_both_backends!(
    socket_sends_spend_the_contracts_chat_budget_shared_with_rest,
    &[
        ("AGORA_RATE_LIMITS__CHAT_PER_USER__REQUESTS", "2"),
        ("AGORA_RATE_LIMITS__CHAT_PER_USER__WINDOW_SECS", "3600"),
    ],
    |app| async move {
        let (ann, _bob, conversation) = friends_in_a_dm(&app).await;
        let token = &ann.tokens.access_token;
        let mut socket = connect(&app, token).await;
        rest_send(&app, token, conversation, "one", "b1").await;
        assert_eq!(next_message(&mut socket).await, (1, Some("one".into())));
        socket
            .send(&socket_send(conversation, "two", "b2"))
            .await
            .expect("send");
        assert_eq!(next_message(&mut socket).await, (2, Some("two".into())));
        // The budget the REST send and the first frame spent is the frame's, from the contract
        // (`x-agora-rate-limit: chat` on SendMessageFrame): the third send is refused, named.
        socket
            .send(&socket_send(conversation, "three", "b3"))
            .await
            .expect("send");
        refused_send(&mut socket, "rate_limited", "b3").await;
        // Nothing was stored, and REST now answers 429 from the same budget.
        let refused = app
            .client_with_token(token)
            .send_message()
            .conversation_id(conversation)
            .body(MessageCreate {
                text: "four".parse().expect("text"),
                client_message_id: "b4".parse().expect("id"),
            })
            .send()
            .await;
        assert_eq!(
            refused.err().and_then(|e| e.status()).map(|s| s.as_u16()),
            Some(429)
        );
        let history = app
            .client_with_token(token)
            .list_messages()
            .conversation_id(conversation)
            .send()
            .await
            .expect("list_messages")
            .into_inner();
        assert_eq!(history.items.len(), 2);
        // Frames without a budget (ping) still work on the same socket.
        pong(&mut socket).await;
    }
);

e2e_both_backends!(
    frames_beyond_the_connections_inbound_limit_are_refused_unread,
    &[
        ("AGORA_REALTIME__INBOUND_FRAMES_PER_SEC", "1"),
        ("AGORA_REALTIME__INBOUND_BURST", "3"),
    ],
    |app| async move {
        let ann = app.register("ann").await;
        let mut socket = connect(&app, &ann.tokens.access_token).await;
        let ping = ClientFrame::PingFrame(PingFrame {
            type_: PingFrameType::Ping,
        });
        for _ in 0..10 {
            socket.send(&ping).await.expect("ping");
        }
        let (mut pongs, mut refused) = (0, 0);
        while pongs + refused < 10 {
            match next(&mut socket).await {
                ServerFrame::PongFrame(_) => pongs += 1,
                ServerFrame::ErrorFrame(e) => {
                    assert_eq!(e.error_code, "rate_limited");
                    assert_eq!(e.client_message_id, None);
                    refused += 1;
                }
                other => panic!("expected pong or error, got {other:?}"),
            }
        }
        // The burst is 3 and one frame a second refills: most of ten frames sent at once are
        // refused, each answered, and the socket stays open.
        assert!(
            pongs >= 3 && refused >= 1,
            "{pongs} pongs, {refused} refused"
        );
    }
);

e2e_both_backends!(
    logging_out_closes_the_sessions_sockets_with_1008,
    &[],
    |app| async move {
        let ann = app.register("ann").await;
        let token = &ann.tokens.access_token;
        let mut socket = connect(&app, token).await;
        // Another session of the same user keeps its socket.
        let other = app.login_from("ann", "second-device").await;
        let mut other_socket = connect(&app, &other.tokens.access_token).await;
        app.client_with_token(token)
            .logout()
            .send()
            .await
            .expect("logout");
        assert_eq!(close_code(&mut socket).await, Some(1008));
        // Still open: it answers a ping.
        pong(&mut other_socket).await;
    }
);

/// With Redis cut, the revocation broadcast does not leave the revoking instance: the other
/// reads the revoked sessions from the shared database instead and closes the socket all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_a_logout_still_closes_the_sessions_socket_on_the_other_instance() {
    let Some((_db, _redis, proxy, one, two)) =
        crate::revocation::two_instances("realtime_revocation_redis_down", true).await
    else {
        return;
    };
    let proxy = proxy.expect("proxy");
    let ann = one.register("ann").await;
    let token = &ann.tokens.access_token;
    let mut on_two = connect(&two, token).await;
    proxy.refuse_new(true);
    proxy.cut();
    for app in [&one, &two] {
        let mut noticed = false;
        for _ in 0..100 {
            if crate::support::redis_state(app).await != "up" {
                noticed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(noticed, "the outage is noticed");
    }
    one.client_with_token(token)
        .logout()
        .send()
        .await
        .expect("logout");
    assert_eq!(close_code(&mut on_two).await, Some(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_closes_the_sessions_socket_on_the_other() {
    let Some((_db, _redis, _, one, two)) =
        crate::revocation::two_instances("realtime_revocation", false).await
    else {
        return;
    };
    let ann = one.register("ann").await;
    let token = &ann.tokens.access_token;
    let mut on_two = connect(&two, token).await;
    one.client_with_token(token)
        .logout()
        .send()
        .await
        .expect("logout");
    // Within the one second the issue allows (PATIENCE is only the test's upper bound).
    let closed = tokio::time::timeout(Duration::from_secs(1), close_code(&mut on_two)).await;
    assert_eq!(closed.ok().flatten(), Some(1008));
}
