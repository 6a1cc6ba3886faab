//! In-process broker: publish delivers to this instance's subscribers only.

use std::sync::Arc;

use bytes::Bytes;

use crate::BoxFuture;
use crate::broker::{Broker, Delivery, LocalHub, Subscription};

/// Broker for one process.
#[derive(Debug, Clone)]
pub struct MemoryBroker {
    hub: Arc<LocalHub>,
}

impl MemoryBroker {
    /// A broker buffering `channel_capacity` messages per channel for slow subscribers.
    pub fn new(channel_capacity: usize) -> Self {
        Self {
            hub: Arc::new(LocalHub::new(channel_capacity)),
        }
    }
}

impl Broker for MemoryBroker {
    fn publish<'a>(&'a self, channel: &'a str, payload: Bytes) -> BoxFuture<'a, Delivery> {
        if !self.hub.dispatch(channel, payload) {
            self.hub.remove_if_unused(channel);
        }
        Box::pin(std::future::ready(Delivery::Local))
    }

    fn subscribe_buffered<'a>(
        &'a self,
        channel: &'a str,
        capacity: Option<usize>,
    ) -> BoxFuture<'a, Subscription> {
        let (subscription, _first) = self.hub.subscribe(channel, capacity);
        Box::pin(std::future::ready(subscription))
    }
}
