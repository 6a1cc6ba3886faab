-- Product analytics events: client batches (`track_events`) and server-side events, written in
-- batches by the `write_analytics` job. Daily range partitions on `received_at`, created by the
-- writer for the days it writes and dropped by the retention job after `analytics.retention_days`
-- (dropping a partition is instant and leaves no bloat, unlike DELETE).
CREATE TABLE analytics_events (
    id UUID NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('client', 'server')),
    user_id UUID,
    properties TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (received_at, id)
) PARTITION BY RANGE (received_at);
CREATE INDEX analytics_events_name_idx ON analytics_events (name, received_at);
