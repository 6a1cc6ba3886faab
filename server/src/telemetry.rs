//! Logging (tracing → JSON lines on stdout) and the Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat, MetricsConfig};

/// Installs the global tracing subscriber. Later calls (tests start many servers) are no-ops.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let result = match config.format {
        LogFormat::Json => {
            tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stdout))
        }
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .try_init()
            .map_err(|_| ())
            .or(Ok(())),
    };
    // An error only means a subscriber is already installed (a second server in one process).
    drop(result);
}

/// The JSON log format: one flat object per event (span fields are repeated on the request line
/// itself, so log pipelines need no span handling).
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(true)
        .with_writer(writer)
        .finish()
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder once and returns its handle.
pub fn metrics_handle(config: &MetricsConfig) -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    &config.latency_buckets_seconds,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then this handle stays empty, which
            // the metrics test would show.
            drop(metrics::set_global_recorder(recorder));
            describe();
            handle
        })
        .clone()
}

fn describe() {
    agora_jobs::metrics::describe();
    metrics::describe_counter!(
        "http_requests_total",
        "Requests answered, by operation, method and status."
    );
    metrics::describe_counter!(
        "http_errors_total",
        "Error answers, by operation, status class and error code."
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from the request reaching the adapter to the answer, by operation."
    );
    metrics::describe_gauge!(
        "http_requests_in_flight",
        "Requests being handled, by operation."
    );
    describe_delivery();
}

/// Notification channels and analytics (see `runbooks/notifications.md`).
fn describe_delivery() {
    for (name, help) in [
        (
            "emails_sent_total",
            "Emails the SMTP server accepted, by notification kind.",
        ),
        (
            "emails_skipped_total",
            "Emails not sent, by reason (suppressed, daily_cap).",
        ),
        (
            "email_send_failures_total",
            "Failed SMTP sends, by class (transient: retried; permanent: the address is suppressed).",
        ),
        (
            "pushes_sent_total",
            "Web pushes the push service accepted, by notification kind.",
        ),
        (
            "push_failures_total",
            "Failed pushes, by class (transient: retried; permanent: refused).",
        ),
        (
            "push_subscriptions_expired_total",
            "Subscriptions deleted because the push service answered 404 or 410.",
        ),
        (
            "analytics_events_accepted_total",
            "Analytics events taken into the buffer.",
        ),
        (
            "analytics_events_dropped_total",
            "Analytics events dropped, by reason (buffer_full, enqueue_failed, disabled, encode).",
        ),
        (
            "analytics_events_written_total",
            "Analytics events stored by write_analytics jobs.",
        ),
    ] {
        metrics::describe_counter!(name, help);
    }
}
