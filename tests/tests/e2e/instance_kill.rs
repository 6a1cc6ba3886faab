//! An instance that dies without a goodbye (`kill -9`: no close frames, no lease releases, no
//! offline announcements): its users reconnect to another instance and resume with nothing lost,
//! and the leases it held expire, so the per-user limit does not lock them out for good.
//!
//! The killed instance is a child process (`agora-instance`, which serves as `agora serve`
//! does); the surviving one runs in the test, both on one PostgreSQL database and one Redis.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

use agora_client::realtime::{Event, Realtime};
use agora_client::types::{
    ClientFrame, ConversationPosition, ResumeFrame, ResumeFrameType, ServerFrame,
};
use agora_db::testing::{TestDb, eventually};
use agora_kv::testing::TestRedis;

use crate::realtime::{connect, dm, next, next_message, pong, rest_send};
use crate::support::TestApp;

/// A server in its own process, killed (SIGKILL) when dropped if the test has not done so.
struct ChildInstance {
    child: Child,
    base_url: String,
}

impl ChildInstance {
    fn start(env: &[(&str, &str)]) -> ChildInstance {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agora-instance"));
        // The harness's own AGORA_TEST_* variables would be read as (unknown) settings.
        for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("AGORA_")) {
            command.env_remove(name);
        }
        command
            .envs(env.iter().copied())
            .env("AGORA_HTTP__BIND", "127.0.0.1:0")
            .env("AGORA_LOG__LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("the instance starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the instance prints its address");
        assert!(
            !line.trim().is_empty(),
            "the instance exited before serving"
        );
        ChildInstance {
            child,
            base_url: format!("http://{}", line.trim()),
        }
    }

    /// `kill -9`, and waits for the process to be gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildInstance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A socket on `base_url` once the server admits it: while the dead instance's lease still
/// counts, the per-user limit refuses with 4000.
async fn admitted(base_url: &str, token: &str) -> Realtime {
    eventually("the dead instance's lease expires", async || {
        let mut socket = Realtime::connect(base_url, token).await.ok()?;
        match socket.next().await {
            Ok(Event::Frame(ServerFrame::ReadyFrame(_))) => Some(socket),
            Ok(Event::Closed {
                code: Some(4000), ..
            }) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                None
            }
            other => panic!("expected ready or 4000, got {other:?}"),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_loses_no_message_once_its_users_resume_on_another() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(redis) = TestRedis::new("instance_kill") else {
        return;
    };
    let redis_config = redis.config();
    let redis_url = redis_config.url.clone().expect("url");
    let env = [
        ("AGORA_DATABASE__URL", db.config.url.as_str()),
        ("AGORA_REDIS__URL", redis_url.as_str()),
        ("AGORA_REDIS__KEY_PREFIX", redis_config.key_prefix.as_str()),
        ("AGORA_ANALYTICS__ENABLED", "false"),
        // One socket per user: bob's socket on the killed instance holds his only lease, and
        // only its expiry (three heartbeats) lets him in elsewhere.
        ("AGORA_REALTIME__MAX_CONNECTIONS_PER_USER", "1"),
        ("AGORA_REALTIME__HEARTBEAT_SECS", "1"),
    ];
    let survivor = TestApp::start_with(&env).await;
    let mut doomed = ChildInstance::start(&env);

    let ann = survivor.register("ann").await;
    let bob = survivor.register("bob").await;
    survivor.befriend(&ann, &bob).await;
    let (ta, tb) = (&ann.tokens.access_token, &bob.tokens.access_token);
    let conversation = dm(&survivor, ta, bob.user.id).await;

    let mut bob_socket = Realtime::connect(&doomed.base_url, tb)
        .await
        .expect("the upgrade on the doomed instance");
    match next(&mut bob_socket).await {
        ServerFrame::ReadyFrame(_) => {}
        other => panic!("expected ready, got {other:?}"),
    }
    rest_send(&survivor, ta, conversation, "before", "k1").await;
    assert_eq!(
        next_message(&mut bob_socket).await,
        (1, Some("before".into()))
    );

    doomed.kill();
    // Sent while bob has no socket anywhere.
    rest_send(&survivor, ta, conversation, "during", "k2").await;
    rest_send(&survivor, ta, conversation, "still during", "k3").await;

    let mut bob_socket = admitted(&survivor.base_url, tb).await;
    bob_socket
        .send(&ClientFrame::ResumeFrame(ResumeFrame {
            type_: ResumeFrameType::Resume,
            positions: vec![ConversationPosition {
                conversation_id: conversation,
                sequence: 1,
            }],
        }))
        .await
        .expect("resume");
    assert_eq!(
        next_message(&mut bob_socket).await,
        (2, Some("during".into()))
    );
    assert_eq!(
        next_message(&mut bob_socket).await,
        (3, Some("still during".into()))
    );
    match next(&mut bob_socket).await {
        ServerFrame::ResumedFrame(r) => assert_eq!(r.replayed, 2),
        other => panic!("expected resumed, got {other:?}"),
    }
    rest_send(&survivor, ta, conversation, "after", "k4").await;
    assert_eq!(
        next_message(&mut bob_socket).await,
        (4, Some("after".into()))
    );
    pong(&mut bob_socket).await;
    // The survivor's own socket of ann is unaffected by it all.
    let mut ann_socket = connect(&survivor, ta).await;
    pong(&mut ann_socket).await;
}
