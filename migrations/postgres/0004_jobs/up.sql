-- The durable job queue. A job is inserted in the same transaction as the write that causes it
-- (the outbox property); workers claim ready jobs with FOR UPDATE SKIP LOCKED and hold a lease
-- they renew while running. State: ready (waiting for run_at), running (leased), succeeded, dead.
CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    queue TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority SMALLINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('ready', 'running', 'succeeded', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    lease_until TIMESTAMPTZ,
    lease_token UUID,
    worker TEXT,
    last_error TEXT,
    idempotency_key TEXT,
    trace_parent TEXT
);
-- What a claim scans: ready jobs of one queue, best priority first, then oldest run_at.
CREATE INDEX jobs_ready_idx ON jobs (queue, priority DESC, run_at) WHERE state = 'ready';
-- Running jobs whose lease expired (their worker died) are claimed again.
CREATE INDEX jobs_running_lease_idx ON jobs (queue, lease_until) WHERE state = 'running';
-- At most one job per kind and key waits to run; a second enqueue is folded into it.
CREATE UNIQUE INDEX jobs_pending_key_idx ON jobs (kind, idempotency_key)
    WHERE state = 'ready' AND idempotency_key IS NOT NULL;
-- Retention deletes succeeded jobs by age; operators list dead ones.
CREATE INDEX jobs_finished_idx ON jobs (state, finished_at) WHERE state IN ('succeeded', 'dead');
