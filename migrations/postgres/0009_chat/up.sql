-- Chat: conversations (direct: one per pair; group: up to 100 members), their members with each
-- member's read position, and messages numbered per conversation without gaps.

CREATE TABLE chat_settings (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    direct_messages_from TEXT NOT NULL CHECK (direct_messages_from IN ('friends', 'everyone'))
);

-- `last_sequence` is bumped in the transaction that stores a message: the row lock orders the
-- conversation's senders, so sequences have no gaps and no duplicates. `direct_pair`
-- ("<smaller id>:<larger id>") makes a second direct conversation of a pair impossible.
CREATE TABLE conversations (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    title TEXT,
    direct_pair TEXT,
    created_by UUID NOT NULL,
    last_sequence BIGINT NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    last_activity_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CHECK ((kind = 'direct') = (direct_pair IS NOT NULL))
);
CREATE UNIQUE INDEX conversations_direct_pair_idx ON conversations (direct_pair) WHERE direct_pair IS NOT NULL;

-- A member sees the messages after `joined_sequence`; `read_sequence` only moves forward.
CREATE TABLE conversation_members (
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    joined_sequence BIGINT NOT NULL CHECK (joined_sequence >= 0),
    read_sequence BIGINT NOT NULL CHECK (read_sequence >= 0),
    joined_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
-- A user's conversations (the inbox is this range joined to conversations, sorted by activity).
CREATE INDEX conversation_members_user_idx ON conversation_members (user_id, conversation_id);

CREATE TABLE messages (
    id UUID PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL CHECK (seq >= 1),
    sender_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT,
    client_message_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ
);
-- History in both directions and the resume replay are ranges of this index.
CREATE UNIQUE INDEX messages_sequence_idx ON messages (conversation_id, seq);
-- A retried send finds the stored message.
CREATE UNIQUE INDEX messages_client_id_idx ON messages (conversation_id, sender_id, client_message_id);
