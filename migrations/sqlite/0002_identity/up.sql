-- Sessions, their refresh tokens, and the audit trail of identity events.
-- A session is one sign-in (a refresh-token family); revoking it ends every token it issued.
-- UUIDs are 16-byte BLOBs; timestamps are microseconds since the Unix epoch (UTC).
CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    user_id BLOB NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    user_agent TEXT,
    ip TEXT,
    revoked_at BIGINT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Refresh tokens are stored only as the hex SHA-256 of the token; each is used at most once.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL REFERENCES sessions (id),
    issued_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

-- Append-only: never holds secrets or raw tokens. No foreign key on the actor, so the trail
-- outlives the account.
CREATE TABLE audit_events (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    at BIGINT NOT NULL,
    actor_user_id BLOB,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT NOT NULL
);
CREATE INDEX audit_events_actor_user_id_at_idx ON audit_events (actor_user_id, at);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
