//! Redis health as seen by one instance (`up`, `degraded`, `down`), for GET /v1/meta and the `redis_state` gauge.
//!
//! This is information, never a readiness signal: every primitive keeps answering from its in-process fallback,
//! so an instance with Redis down is still ready to serve.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

use crate::breaker::{Breaker, BreakerPhase};

/// Redis health of this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisState {
    /// No `REDIS_URL`: everything runs in process by configuration.
    Disabled,
    /// Commands succeed and the pub/sub connection is subscribed.
    Up,
    /// Redis is used but recent commands failed, a probe is in flight, or pub/sub is reconnecting.
    Degraded,
    /// The breaker is open: calls go straight to the in-process fallback.
    Down,
}

impl RedisState {
    /// Every state, in gauge order.
    pub const ALL: [RedisState; 4] = [
        RedisState::Disabled,
        RedisState::Up,
        RedisState::Degraded,
        RedisState::Down,
    ];

    /// The lowercase name used in JSON and as the gauge's `state` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisState::Disabled => "disabled",
            RedisState::Up => "up",
            RedisState::Degraded => "degraded",
            RedisState::Down => "down",
        }
    }
}

/// A snapshot of Redis health for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KvStatus {
    /// The combined state.
    pub state: RedisState,
    /// Whether the pub/sub connection is currently subscribed (false when disabled).
    pub pubsub_connected: bool,
    /// How many times the pub/sub connection was re-established after a loss.
    pub pubsub_reconnects: u64,
    /// Calls answered by an in-process fallback because Redis failed or the breaker was open.
    pub fallbacks: u64,
}

/// Shared by the Redis primitives and the pub/sub task of one instance.
#[derive(Debug)]
pub(crate) struct Health {
    pub(crate) breaker: Option<Breaker>,
    pubsub_connected: AtomicBool,
    pubsub_reconnects: AtomicU64,
    fallbacks: AtomicU64,
}

impl Health {
    pub(crate) fn disabled() -> Arc<Self> {
        Arc::new(Self {
            breaker: None,
            pubsub_connected: AtomicBool::new(false),
            pubsub_reconnects: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        })
    }

    pub(crate) fn redis(breaker: Breaker) -> Arc<Self> {
        let health = Arc::new(Self {
            breaker: Some(breaker),
            pubsub_connected: AtomicBool::new(false),
            pubsub_reconnects: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        });
        health.publish();
        health
    }

    pub(crate) fn status(&self) -> KvStatus {
        KvStatus {
            state: self.state(),
            pubsub_connected: self.pubsub_connected.load(Ordering::Relaxed),
            pubsub_reconnects: self.pubsub_reconnects.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn state(&self) -> RedisState {
        let Some(breaker) = &self.breaker else {
            return RedisState::Disabled;
        };
        match breaker.phase() {
            BreakerPhase::Open => RedisState::Down,
            BreakerPhase::HalfOpen | BreakerPhase::Closed { failures: 1.. } => RedisState::Degraded,
            BreakerPhase::Closed { failures: 0 } => {
                if self.pubsub_connected.load(Ordering::Relaxed) {
                    RedisState::Up
                } else {
                    RedisState::Degraded
                }
            }
        }
    }

    /// Counts one call answered by an in-process fallback.
    pub(crate) fn count_fallback(&self, primitive: &'static str) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("kv_fallback_total", "primitive" => primitive).increment(1);
    }

    pub(crate) fn set_pubsub_connected(&self, connected: bool, reconnect: bool) {
        self.pubsub_connected.store(connected, Ordering::Relaxed);
        if reconnect {
            self.pubsub_reconnects.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("redis_pubsub_reconnects_total").increment(1);
        }
        self.publish();
    }

    /// Sets `redis_state{state=...}`: 1 for the current state, 0 for the others (one gauge per state, so
    /// dashboards can graph and alert on `redis_state{state="down"} == 1` without decoding numbers).
    pub(crate) fn publish(&self) {
        let current = self.state();
        for state in RedisState::ALL {
            let value = if state == current { 1.0 } else { 0.0 };
            metrics::gauge!("redis_state", "state" => state.as_str()).set(value);
        }
    }
}
