//! `Agora`, the implementation of the generated `AgoraService` trait. Handlers (generated) do the
//! I/O; these methods hold the rules.

use std::sync::Arc;
use std::sync::RwLock;

use agora_api::rt::{Principal, RequestCtx, ServiceError};
use agora_api::types;
use metrics_exporter_prometheus::PrometheusHandle;

use agora_db::social::{ConnectionList, RequestDirection};

use crate::identity::Identity;
use crate::rate_limits::RateLimits;

/// Where the server is in its life; `/readyz` reports it.
#[derive(Debug, Default)]
pub struct Lifecycle(RwLock<Phase>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Starting,
    Ready,
    /// Migrations are pending and auto-apply is off; names the first pending version.
    SchemaBehind(String),
    Stopping,
}

impl Lifecycle {
    /// Start-up finished.
    pub fn set_ready(&self) {
        self.transition(|p| matches!(p, Phase::Starting).then_some(Phase::Ready));
    }

    /// Start-up finished, but the schema is behind: stay not-ready.
    pub fn set_schema_behind(&self, first_pending: String) {
        self.transition(|p| {
            matches!(p, Phase::Starting).then_some(Phase::SchemaBehind(first_pending.clone()))
        });
    }

    /// Shutdown began (final: never ready again).
    pub fn set_stopping(&self) {
        self.transition(|_| Some(Phase::Stopping));
    }

    fn transition(&self, next: impl Fn(&Phase) -> Option<Phase>) {
        if let Ok(mut phase) = self.0.write()
            && let Some(n) = next(&phase)
        {
            *phase = n;
        }
    }

    /// `None` when ready, else why not.
    pub fn not_ready_reason(&self) -> Option<String> {
        match self.0.read().map(|p| p.clone()).unwrap_or(Phase::Stopping) {
            Phase::Ready => None,
            Phase::Starting => Some("the server is starting".into()),
            Phase::SchemaBehind(v) => Some(format!(
                "the database schema is behind: migration {v} is pending (run `agora migrate up`)"
            )),
            Phase::Stopping => Some("the server is shutting down".into()),
        }
    }
}

/// Build facts baked in by the server's build script.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// The server crate version.
    pub version: &'static str,
    /// The git commit, or `unknown`.
    pub commit: &'static str,
}

impl BuildInfo {
    /// This binary's build.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            commit: option_env!("AGORA_BUILD_COMMIT").unwrap_or("unknown"),
        }
    }
}

/// The service: everything the operations need, built at start-up.
pub struct Agora {
    /// The database.
    pub db: agora_db::Db,
    /// Accounts, sessions and tokens.
    pub identity: Identity,
    /// Friendships, follows and blocks.
    pub social: crate::social::Social,
    /// Posts, likes and comments.
    pub posts: crate::posts::Posts,
    /// The home feed.
    pub feed: crate::feed::Feed,
    /// Conversations and messages.
    pub chat: crate::chat::Chat,
    /// The real-time gateway.
    pub realtime: crate::realtime::Gateway,
    /// Redis-or-in-process primitives.
    pub kv: agora_kv::Kv,
    /// In-app notifications and their settings.
    pub notifications: crate::notifications::Notifications,
    /// Sends Web Push, when `push.vapid_private_key` is set.
    pub pusher: Option<std::sync::Arc<crate::push::Pusher>>,
    /// `push.allow_insecure_endpoints`.
    pub allow_insecure_push_endpoints: bool,
    /// Accepts analytics events (buffered; written by jobs).
    pub analytics: crate::analytics::Analytics,
    /// Checks the one-click unsubscribe links of notification emails.
    pub unsubscribe: crate::email::unsubscribe::UnsubscribeKey,
    /// Abuse limits (the adapter spends them; `login` also spends its per-account budget).
    pub limits: Arc<RateLimits>,
    /// Readiness.
    pub lifecycle: Arc<Lifecycle>,
    /// The Prometheus registry `/metrics` renders.
    pub metrics: PrometheusHandle,
    /// Build facts for `/v1/meta`.
    pub build: BuildInfo,
    /// `Retry-After` while not ready.
    pub retry_after_secs: u64,
}

impl agora_api::AgoraService for Agora {
    async fn get_healthz(&self, _ctx: &RequestCtx) -> Result<types::Health, ServiceError> {
        Ok(types::Health {
            status: types::HealthStatus::Ok,
        })
    }

    async fn get_readyz(&self, _ctx: &RequestCtx) -> Result<types::Readiness, ServiceError> {
        match self.lifecycle.not_ready_reason() {
            None => Ok(types::Readiness {
                status: types::ReadinessStatus::Ready,
            }),
            Some(message) => Err(ServiceError::Unavailable {
                message,
                retry_after_secs: self.retry_after_secs,
            }),
        }
    }

    async fn get_metrics(&self, _ctx: &RequestCtx) -> Result<String, ServiceError> {
        self.db.record_pool_metrics();
        Ok(self.metrics.render())
    }

    async fn get_openapi(&self, _ctx: &RequestCtx) -> Result<String, ServiceError> {
        Ok(agora_api::CONTRACT_YAML.to_owned())
    }

    async fn get_meta(&self, _ctx: &RequestCtx) -> Result<types::Meta, ServiceError> {
        Ok(types::Meta {
            service: "agora".into(),
            version: self.build.version.into(),
            contract_version: agora_api::CONTRACT_VERSION.into(),
            build_commit: self.build.commit.into(),
            redis: match self.kv.redis_state() {
                agora_kv::RedisState::Disabled => types::RedisState::Disabled,
                agora_kv::RedisState::Up => types::RedisState::Up,
                agora_kv::RedisState::Degraded => types::RedisState::Degraded,
                agora_kv::RedisState::Down => types::RedisState::Down,
            },
            deployment_shape: match self.db.backend() {
                agora_db::Backend::Sqlite => types::DeploymentShape::Embedded,
                agora_db::Backend::Postgres => types::DeploymentShape::Cluster,
            },
        })
    }

    async fn register(
        &self,
        ctx: &RequestCtx,
        body: types::RegisterRequest,
    ) -> Result<types::Session, ServiceError> {
        let session = self.identity.register(ctx, body).await?;
        self.analytics
            .track_server("signed_up", Some(session.user.id), serde_json::json!({}));
        Ok(session)
    }

    async fn login(
        &self,
        ctx: &RequestCtx,
        body: types::LoginRequest,
    ) -> Result<types::Session, ServiceError> {
        // The adapter spent the per-address budget; the per-account one needs the body. Both
        // come before the password hash, so a flood is refused without costing a hash.
        self.limits.check_auth_account(&body.login).await?;
        let session = self.identity.login(ctx, body).await?;
        self.analytics
            .track_server("logged_in", Some(session.user.id), serde_json::json!({}));
        Ok(session)
    }

    async fn refresh_session(
        &self,
        ctx: &RequestCtx,
        body: types::RefreshSessionRequest,
    ) -> Result<types::TokenPair, ServiceError> {
        self.identity.refresh_session(ctx, body).await
    }

    async fn logout(&self, ctx: &RequestCtx<Principal>) -> Result<(), ServiceError> {
        self.identity.logout(ctx).await
    }

    async fn logout_all(&self, ctx: &RequestCtx<Principal>) -> Result<(), ServiceError> {
        self.identity.logout_all(ctx).await
    }

    async fn list_sessions(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListSessionsQuery,
    ) -> Result<types::SessionInfoResultsPage, ServiceError> {
        self.identity.list_sessions(ctx, query).await
    }

    async fn revoke_session(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::RevokeSessionPath,
    ) -> Result<(), ServiceError> {
        self.identity.revoke_session(ctx, path.session_id).await
    }

    async fn change_password(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::ChangePasswordRequest,
    ) -> Result<(), ServiceError> {
        // `auth` class (x-agora-rate-limit): the adapter spent this user's account budget, so a
        // stolen access token cannot become an oracle for the current password.
        self.identity.change_password(ctx, body).await
    }

    async fn get_me(&self, ctx: &RequestCtx<Principal>) -> Result<types::Me, ServiceError> {
        self.identity.get_me(ctx).await
    }

    async fn update_me(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::UpdateMeRequest,
    ) -> Result<types::Me, ServiceError> {
        self.identity.update_me(ctx, body).await
    }

    async fn get_user(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::GetUserPath,
    ) -> Result<types::UserProfile, ServiceError> {
        self.identity.get_user(ctx, path.user_id).await
    }

    async fn get_user_by_handle(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::GetUserByHandlePath,
    ) -> Result<types::UserProfile, ServiceError> {
        self.identity.get_user_by_handle(ctx, &path.handle).await
    }

    async fn list_audit_events(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListAuditEventsQuery,
    ) -> Result<types::AuditEventResultsPage, ServiceError> {
        self.identity.list_audit_events(ctx, query).await
    }

    async fn set_user_role(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::SetUserRolePath,
        body: types::SetRoleRequest,
    ) -> Result<types::UserRole, ServiceError> {
        self.identity.set_user_role(ctx, path.user_id, body).await
    }

    async fn revoke_user_sessions(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::RevokeUserSessionsPath,
    ) -> Result<(), ServiceError> {
        self.identity.revoke_user_sessions(ctx, path.user_id).await
    }

    async fn list_jobs(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListJobsQuery,
    ) -> Result<types::JobResultsPage, ServiceError> {
        crate::jobs::admin::list_jobs(&self.db, &self.identity, ctx, query).await
    }

    async fn retry_job(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::RetryJobPath,
    ) -> Result<types::Job, ServiceError> {
        crate::jobs::admin::retry_job(&self.db, &self.identity, ctx, path.job_id).await
    }

    async fn list_notifications(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListNotificationsQuery,
    ) -> Result<types::NotificationResultsPage, ServiceError> {
        self.notifications.list(ctx, query).await
    }

    async fn get_unread_count(
        &self,
        ctx: &RequestCtx<Principal>,
    ) -> Result<types::UnreadCount, ServiceError> {
        self.notifications.unread_count(ctx).await
    }

    async fn mark_notifications_read(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::MarkNotificationsReadRequest,
    ) -> Result<types::UnreadCount, ServiceError> {
        self.notifications.mark_read(ctx, body).await
    }

    async fn get_notification_settings(
        &self,
        ctx: &RequestCtx<Principal>,
    ) -> Result<types::NotificationSettings, ServiceError> {
        self.notifications.settings(ctx).await
    }

    async fn update_notification_settings(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::NotificationSettingsUpdate,
    ) -> Result<types::NotificationSettings, ServiceError> {
        self.notifications.update_settings(ctx, body).await
    }

    async fn unsubscribe_email(
        &self,
        _ctx: &RequestCtx,
        query: types::UnsubscribeEmailQuery,
    ) -> Result<(), ServiceError> {
        self.notifications
            .unsubscribe(&self.unsubscribe, &query.token)
            .await
    }

    async fn get_push_config(
        &self,
        _ctx: &RequestCtx<Principal>,
    ) -> Result<types::PushConfig, ServiceError> {
        Ok(crate::push::subscriptions::config(self.pusher.as_ref()))
    }

    async fn register_push_subscription(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::PushSubscriptionRequest,
    ) -> Result<types::PushSubscription, ServiceError> {
        crate::push::subscriptions::register(
            &self.db,
            self.allow_insecure_push_endpoints,
            ctx,
            body,
        )
        .await
    }

    async fn delete_push_subscription(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::DeletePushSubscriptionPath,
    ) -> Result<(), ServiceError> {
        crate::push::subscriptions::delete(&self.db, ctx, path.subscription_id).await
    }

    async fn track_events(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::TrackEventsRequest,
    ) -> Result<types::TrackEventsAccepted, ServiceError> {
        crate::analytics::track::track_events(&self.analytics, ctx, body)
    }

    async fn send_friend_request(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::FriendRequestCreate,
    ) -> Result<types::Relationship, ServiceError> {
        self.social.send_friend_request(ctx, body).await
    }

    async fn list_friend_requests(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListFriendRequestsQuery,
    ) -> Result<types::FriendRequestResultsPage, ServiceError> {
        self.social.list_friend_requests(ctx, query).await
    }

    async fn accept_friend_request(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::AcceptFriendRequestPath,
    ) -> Result<types::Relationship, ServiceError> {
        self.social
            .accept_friend_request(ctx, path.request_id)
            .await
    }

    async fn decline_friend_request(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::DeclineFriendRequestPath,
    ) -> Result<(), ServiceError> {
        self.social
            .delete_friend_request(ctx, path.request_id, RequestDirection::Incoming)
            .await
    }

    async fn cancel_friend_request(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::CancelFriendRequestPath,
    ) -> Result<(), ServiceError> {
        self.social
            .delete_friend_request(ctx, path.request_id, RequestDirection::Outgoing)
            .await
    }

    async fn remove_friend(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::RemoveFriendPath,
    ) -> Result<(), ServiceError> {
        self.social.remove_friend(ctx, path.user_id).await
    }

    async fn list_friends(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::ListFriendsPath,
        query: types::ListFriendsQuery,
    ) -> Result<types::UserConnectionResultsPage, ServiceError> {
        self.social
            .list_connections(
                ctx,
                ConnectionList::Friends,
                path.user_id,
                query.limit,
                query.page_token.as_deref(),
            )
            .await
    }

    async fn get_relationship(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::GetRelationshipPath,
    ) -> Result<types::Relationship, ServiceError> {
        self.social.get_relationship(ctx, path.user_id).await
    }

    async fn follow_user(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::FollowUserPath,
    ) -> Result<types::Relationship, ServiceError> {
        self.social.follow_user(ctx, path.user_id).await
    }

    async fn unfollow_user(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::UnfollowUserPath,
    ) -> Result<(), ServiceError> {
        self.social.unfollow_user(ctx, path.user_id).await
    }

    async fn list_followers(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::ListFollowersPath,
        query: types::ListFollowersQuery,
    ) -> Result<types::UserConnectionResultsPage, ServiceError> {
        self.social
            .list_connections(
                ctx,
                ConnectionList::Followers,
                path.user_id,
                query.limit,
                query.page_token.as_deref(),
            )
            .await
    }

    async fn list_following(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::ListFollowingPath,
        query: types::ListFollowingQuery,
    ) -> Result<types::UserConnectionResultsPage, ServiceError> {
        self.social
            .list_connections(
                ctx,
                ConnectionList::Following,
                path.user_id,
                query.limit,
                query.page_token.as_deref(),
            )
            .await
    }

    async fn list_blocks(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListBlocksQuery,
    ) -> Result<types::UserConnectionResultsPage, ServiceError> {
        self.social.list_blocks(ctx, query).await
    }

    async fn block_user(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::BlockUserPath,
    ) -> Result<(), ServiceError> {
        self.social.block_user(ctx, path.user_id).await
    }

    async fn unblock_user(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::UnblockUserPath,
    ) -> Result<(), ServiceError> {
        self.social.unblock_user(ctx, path.user_id).await
    }

    async fn create_post(
        &self,
        ctx: &RequestCtx<Principal>,
        headers: types::CreatePostHeaders,
        body: types::PostCreate,
    ) -> Result<types::Post, ServiceError> {
        self.posts.create_post(ctx, headers, body).await
    }

    async fn get_post(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::GetPostPath,
    ) -> Result<types::Post, ServiceError> {
        self.posts.get_post(ctx, path.post_id).await
    }

    async fn update_post(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::UpdatePostPath,
        body: types::PostUpdate,
    ) -> Result<types::Post, ServiceError> {
        self.posts.update_post(ctx, path.post_id, body).await
    }

    async fn delete_post(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::DeletePostPath,
    ) -> Result<(), ServiceError> {
        self.posts.delete_post(ctx, path.post_id).await
    }

    async fn list_user_posts(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::ListUserPostsPath,
        query: types::ListUserPostsQuery,
    ) -> Result<types::PostResultsPage, ServiceError> {
        self.posts.list_user_posts(ctx, path.user_id, query).await
    }

    async fn like_post(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::LikePostPath,
    ) -> Result<types::LikeState, ServiceError> {
        self.posts.like_post(ctx, path.post_id).await
    }

    async fn unlike_post(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::UnlikePostPath,
    ) -> Result<types::LikeState, ServiceError> {
        self.posts.unlike_post(ctx, path.post_id).await
    }

    async fn list_post_likes(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::ListPostLikesPath,
        query: types::ListPostLikesQuery,
    ) -> Result<types::UserConnectionResultsPage, ServiceError> {
        self.posts.list_post_likes(ctx, path.post_id, query).await
    }

    async fn create_comment(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::CreateCommentPath,
        body: types::CommentCreate,
    ) -> Result<types::Comment, ServiceError> {
        self.posts.create_comment(ctx, path.post_id, body).await
    }

    async fn list_comments(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::ListCommentsPath,
        query: types::ListCommentsQuery,
    ) -> Result<types::CommentResultsPage, ServiceError> {
        self.posts.list_comments(ctx, path.post_id, query).await
    }

    async fn delete_comment(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::DeleteCommentPath,
    ) -> Result<(), ServiceError> {
        self.posts
            .delete_comment(ctx, path.post_id, path.comment_id)
            .await
    }

    async fn get_home_feed(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::GetHomeFeedQuery,
    ) -> Result<types::PostResultsPage, ServiceError> {
        self.feed.get_home_feed(ctx, query).await
    }

    async fn get_chat_settings(
        &self,
        ctx: &RequestCtx<Principal>,
    ) -> Result<types::ChatSettings, ServiceError> {
        self.chat.get_settings(ctx).await
    }

    async fn update_chat_settings(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::ChatSettings,
    ) -> Result<types::ChatSettings, ServiceError> {
        self.chat.update_settings(ctx, body).await
    }

    async fn create_conversation(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::ConversationCreate,
    ) -> Result<types::Conversation, ServiceError> {
        self.chat.create_conversation(ctx, body).await
    }

    async fn list_conversations(
        &self,
        ctx: &RequestCtx<Principal>,
        query: types::ListConversationsQuery,
    ) -> Result<types::ConversationResultsPage, ServiceError> {
        self.chat.list_conversations(ctx, query).await
    }

    async fn get_conversation(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::GetConversationPath,
    ) -> Result<types::Conversation, ServiceError> {
        self.chat.get_conversation(ctx, path.conversation_id).await
    }

    async fn add_conversation_members(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::AddConversationMembersPath,
        body: types::ConversationMembersAdd,
    ) -> Result<types::Conversation, ServiceError> {
        self.chat.add_members(ctx, path.conversation_id, body).await
    }

    async fn remove_conversation_member(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::RemoveConversationMemberPath,
    ) -> Result<(), ServiceError> {
        self.chat
            .remove_member(ctx, path.conversation_id, path.user_id)
            .await
    }

    async fn leave_conversation(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::LeaveConversationPath,
    ) -> Result<(), ServiceError> {
        self.chat.leave(ctx, path.conversation_id).await
    }

    async fn send_message(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::SendMessagePath,
        body: types::MessageCreate,
    ) -> Result<types::Message, ServiceError> {
        self.chat
            .send_message(ctx, path.conversation_id, body)
            .await
    }

    async fn list_messages(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::ListMessagesPath,
        query: types::ListMessagesQuery,
    ) -> Result<types::MessageResultsPage, ServiceError> {
        self.chat
            .list_messages(ctx, path.conversation_id, query)
            .await
    }

    async fn delete_message(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::DeleteMessagePath,
    ) -> Result<(), ServiceError> {
        self.chat
            .delete_message(ctx, path.conversation_id, path.message_id)
            .await
    }

    async fn mark_conversation_read(
        &self,
        ctx: &RequestCtx<Principal>,
        path: types::MarkConversationReadPath,
        body: types::ReadPosition,
    ) -> Result<types::ReadState, ServiceError> {
        self.chat.mark_read(ctx, path.conversation_id, body).await
    }

    async fn get_presence(
        &self,
        ctx: &RequestCtx<Principal>,
        body: types::PresenceQuery,
    ) -> Result<types::PresenceList, ServiceError> {
        self.realtime.presence(ctx, body).await
    }

    async fn connect_realtime(
        &self,
        ctx: &RequestCtx<Principal>,
        socket: agora_api::rt::FrameSocket<types::ClientFrame, types::ServerFrame>,
    ) -> Result<(), ServiceError> {
        self.realtime.serve(ctx, socket).await
    }
}
