//! PostgreSQL sources: Debezium connectors in Kafka Connect, replication slots, heartbeat and
//! the WAL guard (placeholder; built by the sources issue).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Settings the sources service needs from the sink's configuration.
#[derive(Debug, Clone)]
pub struct SourcesConfig {
    pub connect_url: String,
    pub kafka_bootstrap: String,
    pub wal_warn_bytes: u64,
    pub wal_critical_bytes: u64,
    pub wal_check_interval: Duration,
}

/// Owns source administration; cheap to share behind an `Arc`.
pub struct SourcesService {
    #[allow(dead_code)]
    config: SourcesConfig,
}

impl SourcesService {
    pub fn new(config: SourcesConfig) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self { config }))
    }

    /// Admin routes (`/v1/sources…`, `/v1/slots…`); the caller applies admin authentication.
    pub fn routes(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
    }

    /// Starts the periodic WAL guard; it stops when `shutdown` is cancelled.
    pub fn spawn_wal_guard(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { shutdown.cancelled().await })
    }

    /// Appends this service's Prometheus metrics (text format) to `out`.
    pub fn write_metrics(&self, _out: &mut String) {}
}
