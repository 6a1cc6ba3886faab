//! The Agora server: the implementation of the generated `AgoraService` trait and everything needed
//! to run it (configuration, telemetry, the HTTP server). The `agora` binary is a thin CLI on top.

pub mod analytics;
pub mod chat;
pub mod config;
pub mod db_errors;
pub mod email;
pub mod features;
pub mod feed;
pub mod http_server;
pub mod identity;
pub mod jobs;
pub mod notifications;
mod paging;
pub mod posts;
pub mod push;
pub mod rate_limits;
pub mod realtime;
pub mod secret;
pub mod seeding;
pub mod service;
pub mod social;
pub mod telemetry;
pub mod write_marks;

pub use config::Config;
pub use http_server::{RunningServer, start};
