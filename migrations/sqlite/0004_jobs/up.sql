-- The durable job queue. A job is inserted in the same transaction as the write that causes it
-- (the outbox property); a claim is one UPDATE ... RETURNING (SQLite serializes writers, so no
-- two claims see the same row) and holds a lease the worker renews while running.
-- State: ready (waiting for run_at), running (leased), succeeded, dead.
-- UUIDs are 16-byte BLOBs; timestamps are microseconds since the Unix epoch (UTC).
CREATE TABLE jobs (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    queue TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority SMALLINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('ready', 'running', 'succeeded', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    lease_until BIGINT,
    lease_token BLOB,
    worker TEXT,
    last_error TEXT,
    idempotency_key TEXT,
    trace_parent TEXT
);
CREATE INDEX jobs_ready_idx ON jobs (queue, priority DESC, run_at) WHERE state = 'ready';
CREATE INDEX jobs_running_lease_idx ON jobs (queue, lease_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_pending_key_idx ON jobs (kind, idempotency_key)
    WHERE state = 'ready' AND idempotency_key IS NOT NULL;
CREATE INDEX jobs_finished_idx ON jobs (state, finished_at) WHERE state IN ('succeeded', 'dead');
