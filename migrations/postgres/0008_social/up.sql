-- The social graph (friend requests, friendships, follows, blocks), posts with their likes and
-- comments, and the home feed: `feed_entries` is the fanned-out truth, `feed_readers` says who
-- reads (fan-out skips the inactive, whose feed is rebuilt when they return) and
-- `large_authors` the authors whose posts are merged in at read time instead of fanned out.

CREATE TABLE friend_requests (
    id UUID PRIMARY KEY,
    from_user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    to_user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    CHECK (from_user_id <> to_user_id)
);
-- One pending request per pair, whichever way: two users asking each other at once collide
-- here, and the loser's retry finds the other request and accepts it.
CREATE UNIQUE INDEX friend_requests_pair_idx ON friend_requests (LEAST(from_user_id, to_user_id), GREATEST(from_user_id, to_user_id));
CREATE INDEX friend_requests_incoming_idx ON friend_requests (to_user_id, id);
CREATE INDEX friend_requests_outgoing_idx ON friend_requests (from_user_id, id);

-- Two rows per friendship, (a, b) and (b, a), sharing one UUIDv7 id: a user's friends are one
-- index range, in the order the friendships began.
CREATE TABLE friendships (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    friend_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, friend_id),
    CHECK (user_id <> friend_id)
);
CREATE INDEX friendships_list_idx ON friendships (user_id, id);

CREATE TABLE follows (
    follower_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_following_idx ON follows (follower_id, id);
CREATE INDEX follows_followers_idx ON follows (followee_id, id);

CREATE TABLE blocks (
    blocker_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_list_idx ON blocks (blocker_id, id);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id, blocker_id);

-- A deleted post keeps its row (deleted_at) until the cleanup job has removed its likes,
-- comments and feed entries in batches; every read filters it out.
CREATE TABLE posts (
    id UUID PRIMARY KEY,
    author_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'friends')),
    like_count BIGINT NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    comment_count BIGINT NOT NULL DEFAULT 0 CHECK (comment_count >= 0),
    idempotency_key TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    edited_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ
);
CREATE INDEX posts_author_idx ON posts (author_id, id);
CREATE UNIQUE INDEX posts_idempotency_idx ON posts (author_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE post_likes (
    post_id UUID NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX post_likes_list_idx ON post_likes (post_id, id);
CREATE INDEX post_likes_user_idx ON post_likes (user_id, post_id);

CREATE TABLE comments (
    id UUID PRIMARY KEY,
    post_id UUID NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX comments_list_idx ON comments (post_id, id);
CREATE INDEX comments_author_idx ON comments (author_id);

-- Post ids are UUIDv7, so (user_id, post_id DESC) is the feed, newest first.
CREATE TABLE feed_entries (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id UUID NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id UUID NOT NULL,
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX feed_entries_author_idx ON feed_entries (user_id, author_id);
CREATE INDEX feed_entries_post_idx ON feed_entries (post_id);

CREATE TABLE feed_readers (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_read_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE large_authors (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    audience BIGINT NOT NULL,
    since TIMESTAMPTZ NOT NULL
);
