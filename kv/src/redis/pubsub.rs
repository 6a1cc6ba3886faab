//! The one pub/sub connection of an instance, and the task that keeps it subscribed.
//!
//! A silently dead subscription is the classic pub/sub failure: the socket is gone (or half-open) and the
//! instance simply stops receiving. The task therefore
//! - treats the end of the message stream as a lost connection and reconnects with exponential backoff
//!   (`pubsub_reconnect_min_delay_ms` doubling to `pubsub_reconnect_max_delay_ms`);
//! - PINGs every `pubsub_ping_interval_ms` and reconnects when a PING fails or exceeds the command timeout
//!   (a half-open TCP connection never ends the stream by itself);
//! - after every (re)connect subscribes to every channel that has a local subscriber, before reporting itself
//!   connected.
//!
//! Messages published while the connection is down are lost (pub/sub has no history); `redis_pubsub_reconnects_total`
//! and the `degraded` state make the gap visible.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};

use crate::broker::LocalHub;
use crate::status::Health;

/// Requests from the broker to the pub/sub task.
#[derive(Debug)]
pub(crate) enum PubSubCommand {
    /// Subscribe upstream; the sender is told once Redis confirmed (or dropped if the connection is down).
    Subscribe(String, oneshot::Sender<()>),
}

/// Timing of the pub/sub task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PubSubTiming {
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) reconnect_min_delay: Duration,
    pub(crate) reconnect_max_delay: Duration,
}

/// Spawns the task; it ends when every sender of `commands` is dropped.
pub(crate) fn spawn(
    client: redis::Client,
    prefix: String,
    hub: Arc<LocalHub>,
    health: Arc<Health>,
    timing: PubSubTiming,
    commands: mpsc::UnboundedReceiver<PubSubCommand>,
) {
    let task = PubSubTask {
        client,
        channel_prefix: format!("{prefix}:ch:"),
        hub,
        health,
        timing,
        commands,
    };
    tokio::spawn(task.run());
}

struct PubSubTask {
    client: redis::Client,
    channel_prefix: String,
    hub: Arc<LocalHub>,
    health: Arc<Health>,
    timing: PubSubTiming,
    commands: mpsc::UnboundedReceiver<PubSubCommand>,
}

/// Why a connected session ended.
enum SessionEnd {
    Lost,
    Shutdown,
}

impl PubSubTask {
    async fn run(mut self) {
        let mut delay = self.timing.reconnect_min_delay;
        let mut connected_before = false;
        loop {
            match self.connect().await {
                Some((sink, stream)) => {
                    self.health.set_pubsub_connected(true, connected_before);
                    if connected_before {
                        tracing::info!("redis pub/sub reconnected and resubscribed");
                    }
                    connected_before = true;
                    delay = self.timing.reconnect_min_delay;
                    let end = self.session(sink, stream).await;
                    self.health.set_pubsub_connected(false, false);
                    match end {
                        SessionEnd::Shutdown => return,
                        SessionEnd::Lost => {
                            tracing::warn!("redis pub/sub connection lost; reconnecting")
                        }
                    }
                }
                None => {
                    if !self.wait_disconnected(delay).await {
                        return;
                    }
                    delay = (delay * 2).min(self.timing.reconnect_max_delay);
                }
            }
        }
    }

    /// Connects and subscribes to every live channel; `None` when either step fails.
    async fn connect(&self) -> Option<(PubSubSink, PubSubStream)> {
        let pubsub =
            match tokio::time::timeout(self.timing.connect_timeout, self.client.get_async_pubsub())
                .await
            {
                Ok(Ok(pubsub)) => pubsub,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "redis pub/sub connect failed");
                    return None;
                }
                Err(_) => {
                    tracing::debug!("redis pub/sub connect timed out");
                    return None;
                }
            };
        let (mut sink, stream) = pubsub.split();
        let channels: Vec<String> = self
            .hub
            .live_channels()
            .iter()
            .map(|c| format!("{}{c}", self.channel_prefix))
            .collect();
        if !channels.is_empty() {
            match tokio::time::timeout(self.timing.command_timeout, sink.subscribe(&channels)).await
            {
                Ok(Ok(())) => {}
                _ => {
                    tracing::debug!("redis pub/sub resubscribe failed");
                    return None;
                }
            }
        }
        Some((sink, stream))
    }

    /// Waits `delay` before the next connect attempt, answering subscribe requests meanwhile (they are subscribed
    /// on reconnect because the hub already lists them). False when the broker is gone.
    async fn wait_disconnected(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                command = self.commands.recv() => match command {
                    // Dropping the ack tells the subscriber not to wait for a confirmation that cannot come yet.
                    Some(PubSubCommand::Subscribe(_, ack)) => drop(ack),
                    None => return false,
                },
            }
        }
    }

    async fn session(&mut self, mut sink: PubSubSink, mut stream: PubSubStream) -> SessionEnd {
        let mut ping = tokio::time::interval(self.timing.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; the connection was just proven by the subscribe.
        ping.tick().await;
        let timeout = self.timing.command_timeout;
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return SessionEnd::Lost };
                    let Some(channel) = message.get_channel_name().strip_prefix(&self.channel_prefix) else {
                        continue;
                    };
                    let payload = Bytes::copy_from_slice(message.get_payload_bytes());
                    if !self.hub.dispatch(channel, payload) && self.hub.remove_if_unused(channel) {
                        // Nobody here listens any more: stop receiving this channel.
                        let full = format!("{}{channel}", self.channel_prefix);
                        if !matches!(tokio::time::timeout(timeout, sink.unsubscribe(&full)).await, Ok(Ok(()))) {
                            return SessionEnd::Lost;
                        }
                    }
                }
                command = self.commands.recv() => match command {
                    None => return SessionEnd::Shutdown,
                    Some(PubSubCommand::Subscribe(channel, ack)) => {
                        let full = format!("{}{channel}", self.channel_prefix);
                        match tokio::time::timeout(timeout, sink.subscribe(&full)).await {
                            Ok(Ok(())) => {
                                let _ = ack.send(());
                            }
                            _ => return SessionEnd::Lost,
                        }
                    }
                },
                _ = ping.tick() => {
                    // In subscribed mode PING answers an array, so accept any reply value.
                    match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        _ => return SessionEnd::Lost,
                    }
                }
            }
        }
    }
}
