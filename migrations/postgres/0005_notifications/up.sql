-- In-app notifications, the people behind coalesced ones, and per-kind channel settings.
-- A notification row is the record of one event (or of a coalesced group of events) for every
-- channel: `in_app` says whether the app lists it; email and push jobs refer to it.
CREATE TABLE notifications (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('friend_request', 'friend_accepted', 'post_liked',
        'post_commented', 'message_received', 'admin_notice', 'new_login', 'password_changed')),
    -- The event that created it: a retried job finds it and does nothing.
    event_id UUID NOT NULL,
    subject_type TEXT,
    subject_id UUID,
    -- While set, events with the same key (e.g. likes of one post) join this row instead of
    -- adding rows; cleared when the coalescing window closes or the row is read.
    open_group TEXT,
    actor_count BIGINT NOT NULL DEFAULT 0 CHECK (actor_count >= 0),
    -- JSON array of the latest actor ids, newest first (at most 3).
    recent_actors TEXT NOT NULL DEFAULT '[]',
    -- JSON object of kind-specific strings.
    details TEXT NOT NULL DEFAULT '{}',
    in_app BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    activity_at TIMESTAMPTZ NOT NULL,
    read_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX notifications_event_idx ON notifications (user_id, event_id);
CREATE UNIQUE INDEX notifications_open_group_idx ON notifications (user_id, open_group)
    WHERE open_group IS NOT NULL;
-- The list, newest activity first, and the unread badge.
CREATE INDEX notifications_list_idx ON notifications (user_id, activity_at DESC, id DESC)
    WHERE in_app;
CREATE INDEX notifications_unread_idx ON notifications (user_id)
    WHERE in_app AND read_at IS NULL;

-- Everyone who joined a coalesced notification, once each (a repeated like does not count twice).
CREATE TABLE notification_actors (
    notification_id UUID NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    actor_user_id UUID NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (notification_id, actor_user_id)
);

-- Only the kinds a user changed; the others have the defaults of the code.
CREATE TABLE notification_settings (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    in_app BOOLEAN NOT NULL,
    email BOOLEAN NOT NULL,
    push BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, kind)
);
