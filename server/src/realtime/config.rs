//! `realtime.*` settings: the gateway's limits per connection and per user.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `realtime.*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeConfig {
    /// The server pings this often; a client silent for two intervals is closed (4002), and a
    /// connection's lease lives three intervals unless renewed. Default 25.
    pub heartbeat_secs: u64,
    /// Frames a connection's outbound queue holds before it counts as a slow consumer (4001).
    /// Default 256.
    pub queue_frames: usize,
    /// Bytes of frames the outbound queue holds before the same. Default 1048576 (1 MiB).
    pub queue_bytes: usize,
    /// Invalid client frames in a row that close the connection (1007). Default 5.
    pub invalid_frames: u32,
    /// Messages `resume` replays per conversation. Default 1000.
    pub replay_per_conversation: u32,
    /// Sockets one user may hold across all instances (4000 beyond); per instance while Redis
    /// is unreachable. Default 10.
    pub max_connections_per_user: usize,
    /// Client frames a connection may send per second, sustained. Default 20.
    pub inbound_frames_per_sec: u32,
    /// Client frames a connection may send at once, above the sustained rate. Default 60.
    pub inbound_burst: u32,
    /// Events of one user this instance buffers while their sockets' loops are busy (a chat
    /// send in progress); a socket further behind is closed as a slow consumer (4001) and
    /// resumes. The buffer is allocated whole for every connected user, so it is most of an
    /// idle socket's memory. Default 16.
    pub event_buffer: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            heartbeat_secs: 25,
            queue_frames: 256,
            queue_bytes: 1 << 20,
            invalid_frames: 5,
            replay_per_conversation: 1_000,
            max_connections_per_user: 10,
            inbound_frames_per_sec: 20,
            inbound_burst: 60,
            event_buffer: 16,
        }
    }
}

impl RealtimeConfig {
    /// Every problem of the section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(1..=300).contains(&self.heartbeat_secs) {
            p.push("realtime.heartbeat_secs: 1 to 300".into());
        }
        if !(1..=65_536).contains(&self.queue_frames) {
            p.push("realtime.queue_frames: 1 to 65536".into());
        }
        // A queue must hold at least one frame of the largest size the server sends.
        if !(65_536..=1 << 30).contains(&self.queue_bytes) {
            p.push("realtime.queue_bytes: 65536 to 1073741824".into());
        }
        if self.invalid_frames == 0 {
            p.push("realtime.invalid_frames: at least 1".into());
        }
        if !(1..=10_000).contains(&self.replay_per_conversation) {
            p.push("realtime.replay_per_conversation: 1 to 10000".into());
        }
        if !(1..=1_000).contains(&self.max_connections_per_user) {
            p.push("realtime.max_connections_per_user: 1 to 1000".into());
        }
        if self.inbound_frames_per_sec == 0 {
            p.push("realtime.inbound_frames_per_sec: at least 1".into());
        }
        if self.inbound_burst == 0 {
            p.push("realtime.inbound_burst: at least 1".into());
        }
        if !(1..=4_096).contains(&self.event_buffer) {
            p.push("realtime.event_buffer: 1 to 4096".into());
        }
        p
    }

    /// The ping interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(RealtimeConfig::default().problems().is_empty());
        let bad = RealtimeConfig {
            heartbeat_secs: 0,
            queue_bytes: 10,
            max_connections_per_user: 0,
            ..RealtimeConfig::default()
        };
        let problems = bad.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("realtime.heartbeat_secs"));
    }
}
