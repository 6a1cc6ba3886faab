//! End-to-end tests: the real server on an ephemeral loopback port, driven only through the
//! generated Rust client. Modules mirror the URL tree.

mod push_endpoint;
mod smtp_sink;
mod support;

mod authorization;
mod cors;
mod db_outage;
mod feed_cache;
mod feed_model;
mod healthz;
mod instance_kill;
mod limits;
mod metrics;
mod migrations;
mod openapi;
mod rate_limits;
mod readyz;
mod realtime;
mod realtime_gateway;
mod redis_outage;
mod revocation;
mod v1_accounts;
mod v1_admin;
mod v1_admin_jobs;
mod v1_chat;
mod v1_email;
mod v1_events;
mod v1_feed;
mod v1_me;
mod v1_me_notifications;
mod v1_me_sessions;
mod v1_meta;
mod v1_posts;
mod v1_push;
mod v1_sessions;
mod v1_social;
mod v1_users;
