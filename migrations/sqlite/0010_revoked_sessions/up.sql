-- The sessions revoked since a moment: what an instance reads every second while Redis (the
-- revocation broadcast) is unreachable, and on every reload of its deny-set. Partial: revoked
-- sessions are few among all.
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
