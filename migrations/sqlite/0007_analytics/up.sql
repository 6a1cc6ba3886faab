-- Product analytics events: client batches (`track_events`) and server-side events, written in
-- batches by the `write_analytics` job. One table (no partitions in SQLite); the retention job
-- deletes rows older than `analytics.retention_days`.
-- UUIDs are 16-byte BLOBs; timestamps are microseconds since the Unix epoch (UTC).
CREATE TABLE analytics_events (
    id BLOB NOT NULL CHECK (length(id) = 16),
    received_at BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('client', 'server')),
    user_id BLOB,
    properties TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (received_at, id)
);
CREATE INDEX analytics_events_name_idx ON analytics_events (name, received_at);
