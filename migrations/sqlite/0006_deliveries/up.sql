-- Email and push delivery of notifications.
-- One email per notification at most (the row is claimed before the SMTP transaction, so a
-- retried job never sends twice after a success); addresses that bounced or complained are
-- suppressed until an operator clears them.
-- UUIDs are 16-byte BLOBs; timestamps are microseconds since the Unix epoch (UTC).
CREATE TABLE email_deliveries (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    notification_id BLOB NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'failed', 'suppressed', 'capped')),
    error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE UNIQUE INDEX email_deliveries_notification_id_key ON email_deliveries (notification_id);
-- The per-user daily cap counts today's sends.
CREATE INDEX email_deliveries_user_day_idx ON email_deliveries (user_id, created_at);

CREATE TABLE email_suppressions (
    address TEXT PRIMARY KEY,
    reason TEXT NOT NULL CHECK (reason IN ('bounced')),
    detail TEXT,
    created_at BIGINT NOT NULL
);

-- Web Push subscriptions (RFC 8030 endpoints with the RFC 8291 keys of the browser).
CREATE TABLE push_subscriptions (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    user_agent TEXT,
    created_at BIGINT NOT NULL,
    last_success_at BIGINT
);
-- One subscription per endpoint: registering it again updates it.
CREATE UNIQUE INDEX push_subscriptions_endpoint_key ON push_subscriptions (endpoint);
CREATE INDEX push_subscriptions_user_idx ON push_subscriptions (user_id);
