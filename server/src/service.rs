//! `Agora`, the implementation of the generated `AgoraService` trait. Handlers (generated) do the
//! I/O; these methods hold the rules.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use agora_api::rt::{RequestCtx, ServiceError};
use agora_api::types;
use metrics_exporter_prometheus::PrometheusHandle;

/// Where the server is in its life; `/readyz` reports it.
#[derive(Debug, Default)]
pub struct Lifecycle(AtomicU8);

const STARTING: u8 = 0;
const READY: u8 = 1;
const STOPPING: u8 = 2;

impl Lifecycle {
    /// Start-up finished.
    pub fn set_ready(&self) {
        // Never go back from stopping to ready.
        let _ = self
            .0
            .compare_exchange(STARTING, READY, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Shutdown began.
    pub fn set_stopping(&self) {
        self.0.store(STOPPING, Ordering::SeqCst);
    }

    fn state(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
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

/// The service.
pub struct Agora {
    lifecycle: Arc<Lifecycle>,
    metrics: PrometheusHandle,
    build: BuildInfo,
    retry_after_secs: u64,
}

impl Agora {
    /// Builds the service.
    pub fn new(
        lifecycle: Arc<Lifecycle>,
        metrics: PrometheusHandle,
        build: BuildInfo,
        retry_after_secs: u64,
    ) -> Self {
        Self {
            lifecycle,
            metrics,
            build,
            retry_after_secs,
        }
    }
}

impl agora_api::AgoraService for Agora {
    async fn get_healthz(&self, _ctx: &RequestCtx) -> Result<types::Health, ServiceError> {
        Ok(types::Health {
            status: types::HealthStatus::Ok,
        })
    }

    async fn get_readyz(&self, _ctx: &RequestCtx) -> Result<types::Readiness, ServiceError> {
        let reason = match self.lifecycle.state() {
            READY => {
                return Ok(types::Readiness {
                    status: types::ReadinessStatus::Ready,
                });
            }
            STARTING => "the server is starting",
            _ => "the server is shutting down",
        };
        Err(ServiceError::Unavailable {
            message: reason.to_owned(),
            retry_after_secs: self.retry_after_secs,
        })
    }

    async fn get_metrics(&self, _ctx: &RequestCtx) -> Result<String, ServiceError> {
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
            // Only the embedded shape exists so far; the cluster shape arrives with PostgreSQL/Redis.
            deployment_shape: types::DeploymentShape::Embedded,
        })
    }
}
