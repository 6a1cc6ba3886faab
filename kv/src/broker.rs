//! The broker: publish bytes (or JSON) on named channels; each subscriber gets its own receiver.
//!
//! Delivery is at most once and best effort, like Redis pub/sub itself: a subscriber that falls more than
//! `broker_channel_capacity` messages behind loses the oldest ones (counted in `broker_lagged_messages_total`),
//! and messages published while the pub/sub connection is being re-established are lost. Consumers that need
//! every event (the realtime hub) recover from their durable source by offset after a gap.
//!
//! Every instance fans messages out locally through one [`tokio::sync::broadcast`] channel per channel name
//! (`LocalHub`); the Redis broker feeds that hub from its single pub/sub connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

use crate::BoxFuture;

/// How far a published message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to the shared broker (Redis): subscribers on every instance get it.
    Cluster,
    /// Delivered to this instance's subscribers only (in process by design, or Redis is failing).
    Local,
}

/// Publish/subscribe on named channels. Object-safe (boxed futures) so services hold an `Arc<dyn Broker>`.
pub trait Broker: Send + Sync {
    /// Publishes `payload` on `channel`; never fails (falls back to local delivery).
    fn publish<'a>(&'a self, channel: &'a str, payload: Bytes) -> BoxFuture<'a, Delivery>;
    /// Subscribes to `channel`. With Redis this waits (up to the command timeout) until Redis confirmed the
    /// subscription, so a message published after it returns is received.
    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Subscription> {
        self.subscribe_buffered(channel, None)
    }

    /// [`subscribe`](Broker::subscribe), with a buffer of `capacity` messages instead of
    /// `broker_channel_capacity` when this instance has no subscriber of `channel` yet (the buffer belongs to the
    /// channel and its later subscribers share it). For the many channels of one subscriber each (a user's events,
    /// held by their sockets): the buffer is allocated whole, so its size is memory every such channel costs.
    fn subscribe_buffered<'a>(
        &'a self,
        channel: &'a str,
        capacity: Option<usize>,
    ) -> BoxFuture<'a, Subscription>;
}

impl dyn Broker {
    /// Publishes `value` as JSON.
    pub async fn publish_json<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        value: &T,
    ) -> Result<Delivery, serde_json::Error> {
        let bytes = serde_json::to_vec(value)?;
        Ok(self.publish(channel, bytes.into()).await)
    }
}

/// What [`Subscription::recv_or_lost`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The next message.
    Message(Bytes),
    /// This many messages were lost: the subscriber fell `broker_channel_capacity` behind.
    Lost(u64),
}

/// One subscriber's view of one channel.
#[derive(Debug)]
pub struct Subscription {
    /// Shared with the hub's entry: every subscriber holds the name, and there are many.
    channel: Arc<str>,
    rx: broadcast::Receiver<Bytes>,
}

impl Subscription {
    /// The channel name.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The next message; `None` once the broker is gone. Messages lost to lag are skipped (and counted).
    pub async fn recv(&mut self) -> Option<Bytes> {
        loop {
            match self.rx.recv().await {
                Ok(bytes) => return Some(bytes),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(broker.channel = %self.channel, broker.lost = n, "slow subscriber lost messages");
                    metrics::counter!("broker_lagged_messages_total").increment(n);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next message, or how many were lost to lag since the last one (counted like
    /// [`recv`](Self::recv)); `None` once the broker is gone. For a consumer that must notice a
    /// gap to recover it from its durable source.
    pub async fn recv_or_lost(&mut self) -> Option<Received> {
        match self.rx.recv().await {
            Ok(bytes) => Some(Received::Message(bytes)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(broker.channel = %self.channel, broker.lost = n, "slow subscriber lost messages");
                metrics::counter!("broker_lagged_messages_total").increment(n);
                Some(Received::Lost(n))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next message decoded from JSON.
    pub async fn recv_json<T: DeserializeOwned>(&mut self) -> Option<Result<T, serde_json::Error>> {
        let bytes = self.recv().await?;
        Some(serde_json::from_slice(&bytes))
    }

    /// The messages as a stream.
    pub fn into_stream(self) -> impl Stream<Item = Bytes> + Send + 'static {
        futures_util::stream::unfold(self, |mut sub| async move {
            let next = sub.recv().await?;
            Some((next, sub))
        })
    }
}

/// Per-instance fan-out: one broadcast channel per channel name with at least one subscriber.
#[derive(Debug)]
pub(crate) struct LocalHub {
    capacity: usize,
    channels: Mutex<HashMap<Arc<str>, broadcast::Sender<Bytes>>>,
}

impl LocalHub {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, broadcast::Sender<Bytes>>> {
        // Map operations cannot be left half-done by a panic, so a poisoned lock is still consistent.
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new receiver for `channel`, and whether the channel had no subscriber before (it must be subscribed
    /// upstream).
    /// `capacity` sizes the channel's buffer if this subscriber creates it (the hub's default when `None`).
    pub(crate) fn subscribe(&self, channel: &str, capacity: Option<usize>) -> (Subscription, bool) {
        let mut channels = self.lock();
        let (name, rx, first) = match channels.get_key_value(channel) {
            Some((name, tx)) => (Arc::clone(name), tx.subscribe(), tx.receiver_count() == 0),
            None => {
                let (tx, rx) = broadcast::channel(capacity.unwrap_or(self.capacity).max(1));
                let name: Arc<str> = channel.into();
                channels.insert(Arc::clone(&name), tx);
                (name, rx, true)
            }
        };
        (Subscription { channel: name, rx }, first)
    }

    /// Delivers to this instance's subscribers; returns false when `channel` has none.
    pub(crate) fn dispatch(&self, channel: &str, payload: Bytes) -> bool {
        let channels = self.lock();
        match channels.get(channel) {
            Some(tx) => tx.send(payload).is_ok(),
            None => false,
        }
    }

    /// Forgets `channel` if nobody listens; true when it was removed (and may be unsubscribed upstream).
    pub(crate) fn remove_if_unused(&self, channel: &str) -> bool {
        let mut channels = self.lock();
        match channels.get(channel) {
            Some(tx) if tx.receiver_count() == 0 => {
                channels.remove(channel);
                true
            }
            _ => false,
        }
    }

    /// Channels with at least one subscriber (what the pub/sub connection must be subscribed to); drops the rest.
    pub(crate) fn live_channels(&self) -> Vec<String> {
        let mut channels = self.lock();
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels.keys().map(|name| name.to_string()).collect()
    }
}
