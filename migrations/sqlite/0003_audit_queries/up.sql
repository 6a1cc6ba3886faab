-- The admin audit log lists newest first, optionally by action: keyset pages on (at, id).
CREATE INDEX audit_events_at_id_idx ON audit_events (at, id);
CREATE INDEX audit_events_action_at_idx ON audit_events (action, at);
