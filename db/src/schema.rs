//! The tables, once for both backends (see [`crate::sql_types`]).

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Accounts.
    users (id) {
        id -> Uuid,
        handle -> Text,
        email -> Text,
        display_name -> Text,
        bio -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        password_hash -> Text,
        role -> Text,
        created_at -> UtcTime,
        updated_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Sign-ins: one per refresh-token family.
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        created_at -> UtcTime,
        last_used_at -> UtcTime,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        revoked_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Refresh tokens, by the hex SHA-256 of the token.
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Uuid,
        issued_at -> UtcTime,
        used_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// The append-only trail of security-relevant events.
    audit_events (id) {
        id -> Uuid,
        at -> UtcTime,
        actor_user_id -> Nullable<Uuid>,
        action -> Text,
        target -> Nullable<Text>,
        outcome -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// The durable job queue (see `crate::jobs`).
    jobs (id) {
        id -> Uuid,
        queue -> Text,
        kind -> Text,
        payload -> Text,
        priority -> SmallInt,
        state -> Text,
        attempts -> Integer,
        max_attempts -> Integer,
        run_at -> UtcTime,
        created_at -> UtcTime,
        started_at -> Nullable<UtcTime>,
        finished_at -> Nullable<UtcTime>,
        lease_until -> Nullable<UtcTime>,
        lease_token -> Nullable<Uuid>,
        worker -> Nullable<Text>,
        last_error -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        trace_parent -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// One event (or a coalesced group of events) that concerns a user (see `crate::notifications`).
    notifications (id) {
        id -> Uuid,
        user_id -> Uuid,
        kind -> Text,
        event_id -> Uuid,
        subject_type -> Nullable<Text>,
        subject_id -> Nullable<Uuid>,
        open_group -> Nullable<Text>,
        actor_count -> BigInt,
        recent_actors -> Text,
        details -> Text,
        in_app -> Bool,
        created_at -> UtcTime,
        activity_at -> UtcTime,
        read_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Everyone who joined a coalesced notification, once each.
    notification_actors (notification_id, actor_user_id) {
        notification_id -> Uuid,
        actor_user_id -> Uuid,
        at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Per-kind channel choices a user changed from the defaults.
    notification_settings (user_id, kind) {
        user_id -> Uuid,
        kind -> Text,
        in_app -> Bool,
        email -> Bool,
        push -> Bool,
        updated_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// One email per notification at most (see `crate::deliveries`).
    email_deliveries (id) {
        id -> Uuid,
        notification_id -> Uuid,
        user_id -> Uuid,
        address -> Text,
        state -> Text,
        error -> Nullable<Text>,
        created_at -> UtcTime,
        sent_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::UtcTime;

    /// Addresses that are not emailed again (they bounced).
    email_suppressions (address) {
        address -> Text,
        reason -> Text,
        detail -> Nullable<Text>,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Web Push subscriptions of users' browsers.
    push_subscriptions (id) {
        id -> Uuid,
        user_id -> Uuid,
        endpoint -> Text,
        p256dh -> Text,
        auth -> Text,
        user_agent -> Nullable<Text>,
        created_at -> UtcTime,
        last_success_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Product analytics events (daily partitions on PostgreSQL; see `crate::analytics`).
    analytics_events (received_at, id) {
        id -> Uuid,
        received_at -> UtcTime,
        occurred_at -> UtcTime,
        name -> Text,
        source -> Text,
        user_id -> Nullable<Uuid>,
        properties -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Pending friend requests.
    friend_requests (id) {
        id -> Uuid,
        from_user_id -> Uuid,
        to_user_id -> Uuid,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Friendships, one row per direction.
    friendships (user_id, friend_id) {
        user_id -> Uuid,
        friend_id -> Uuid,
        id -> Uuid,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Who follows whom.
    follows (follower_id, followee_id) {
        follower_id -> Uuid,
        followee_id -> Uuid,
        id -> Uuid,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Who blocks whom.
    blocks (blocker_id, blocked_id) {
        blocker_id -> Uuid,
        blocked_id -> Uuid,
        id -> Uuid,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Posts (soft-deleted until cleaned up).
    posts (id) {
        id -> Uuid,
        author_id -> Uuid,
        body -> Text,
        visibility -> Text,
        like_count -> BigInt,
        comment_count -> BigInt,
        idempotency_key -> Nullable<Text>,
        created_at -> UtcTime,
        edited_at -> Nullable<UtcTime>,
        deleted_at -> Nullable<UtcTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Likes, one per user and post.
    post_likes (post_id, user_id) {
        post_id -> Uuid,
        user_id -> Uuid,
        id -> Uuid,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Comments on posts.
    comments (id) {
        id -> Uuid,
        post_id -> Uuid,
        author_id -> Uuid,
        body -> Text,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// The fanned-out home feeds.
    feed_entries (user_id, post_id) {
        user_id -> Uuid,
        post_id -> Uuid,
        author_id -> Uuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// When each user last read their feed.
    feed_readers (user_id) {
        user_id -> Uuid,
        last_read_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Authors whose posts are merged in at read time.
    large_authors (user_id) {
        user_id -> Uuid,
        audience -> BigInt,
        since -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::Uuid;

    /// Who may message each user (absent: friends only).
    chat_settings (user_id) {
        user_id -> Uuid,
        direct_messages_from -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Direct and group conversations.
    conversations (id) {
        id -> Uuid,
        kind -> Text,
        title -> Nullable<Text>,
        direct_pair -> Nullable<Text>,
        created_by -> Uuid,
        last_sequence -> BigInt,
        last_activity_at -> UtcTime,
        created_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Who is in which conversation, and how far they have read.
    conversation_members (conversation_id, user_id) {
        conversation_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        joined_sequence -> BigInt,
        read_sequence -> BigInt,
        joined_at -> UtcTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::{UtcTime, Uuid};

    /// Chat messages, numbered per conversation.
    messages (id) {
        id -> Uuid,
        conversation_id -> Uuid,
        seq -> BigInt,
        sender_id -> Uuid,
        body -> Nullable<Text>,
        client_message_id -> Text,
        created_at -> UtcTime,
        deleted_at -> Nullable<UtcTime>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(notifications -> users (user_id));
diesel::joinable!(notification_actors -> notifications (notification_id));
diesel::joinable!(feed_entries -> posts (post_id));
diesel::joinable!(post_likes -> posts (post_id));
diesel::joinable!(comments -> posts (post_id));
diesel::joinable!(conversation_members -> conversations (conversation_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    audit_events,
    jobs,
    notifications,
    notification_actors,
    notification_settings,
    email_deliveries,
    email_suppressions,
    push_subscriptions,
    analytics_events,
    friend_requests,
    friendships,
    follows,
    blocks,
    posts,
    post_likes,
    comments,
    feed_entries,
    feed_readers,
    large_authors,
    chat_settings,
    conversations,
    conversation_members,
    messages,
);
