//! Redis broker: PUBLISH through the pool; delivery to local subscribers comes from the pub/sub connection.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::RedisCore;
use super::pubsub::PubSubCommand;
use crate::BoxFuture;
use crate::broker::{Broker, Delivery, LocalHub, Subscription};

/// The Redis [`Broker`].
#[derive(Debug)]
pub(crate) struct RedisBroker {
    core: Arc<RedisCore>,
    hub: Arc<LocalHub>,
    /// To the pub/sub task; dropping the broker closes it and ends the task.
    commands: mpsc::UnboundedSender<PubSubCommand>,
}

impl RedisBroker {
    pub(crate) fn new(
        core: Arc<RedisCore>,
        hub: Arc<LocalHub>,
        commands: mpsc::UnboundedSender<PubSubCommand>,
    ) -> Self {
        Self {
            core,
            hub,
            commands,
        }
    }

    async fn publish_impl(&self, channel: &str, payload: Bytes) -> Delivery {
        let redis_channel = self.core.key("ch", channel);
        let sent = payload.clone();
        let result = self
            .core
            .run("broker.publish", |mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(&redis_channel)
                    .arg(sent.as_ref())
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok(_) => Delivery::Cluster,
            Err(e) => {
                // This instance's subscribers still get it. A timed-out PUBLISH may have reached Redis, so a local
                // subscriber can see such a message twice; consumers de-duplicate by event id.
                tracing::debug!(broker.channel = channel, error = %e, "publish falls back to local delivery");
                self.core.health().count_fallback("broker");
                self.hub.dispatch(channel, payload);
                Delivery::Local
            }
        }
    }

    async fn subscribe_impl(&self, channel: &str, capacity: Option<usize>) -> Subscription {
        let (subscription, _first) = self.hub.subscribe(channel, capacity);
        // Always confirm with Redis (SUBSCRIBE is idempotent): an earlier subscriber of the same channel may still be
        // waiting for its own confirmation.
        let (ack, confirmed) = oneshot::channel();
        if self
            .commands
            .send(PubSubCommand::Subscribe(channel.to_owned(), ack))
            .is_ok()
        {
            // Without Redis, the subscription is made at the next (re)connect: nothing to wait for beyond the bound.
            let _ = tokio::time::timeout(self.core.command_timeout(), confirmed).await;
        }
        subscription
    }
}

impl Broker for RedisBroker {
    fn publish<'a>(&'a self, channel: &'a str, payload: Bytes) -> BoxFuture<'a, Delivery> {
        Box::pin(self.publish_impl(channel, payload))
    }

    fn subscribe_buffered<'a>(
        &'a self,
        channel: &'a str,
        capacity: Option<usize>,
    ) -> BoxFuture<'a, Subscription> {
        Box::pin(self.subscribe_impl(channel, capacity))
    }
}
