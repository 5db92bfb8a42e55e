//! PostgreSQL sources: Debezium connectors in Kafka Connect, replication slots, heartbeat and
//! the WAL guard.
//!
//! Operators add a source with `POST /v1/sources`; the sink checks the database is ready for
//! logical decoding, creates a heartbeat table, declares the source in its own registry
//! ([`registry`], a compacted topic) and registers a Debezium PostgreSQL connector (pgoutput,
//! slot and publication `tw_<deployment>_<name>`, topics `<name>.<schema>.<table>`). The registry is
//! the source of truth; Kafka Connect holds a copy that the reconciler ([`reconcile`]) keeps in
//! line. Removing a source stops its connector, withdraws the declaration, drops its slot and
//! publication, then deletes the connector (see [`api`]). The WAL guard ([`wal_guard`]) watches how much WAL every slot on the source
//! servers retains, because an abandoned slot fills the source's disk (on RDS: until the
//! instance stops accepting writes).
//!
//! Files, one concept each: [`model`] (request/response types and validation), [`connect`]
//! (Kafka Connect client, connector config), [`registry`] (declared sources), [`reconcile`]
//! (Connect back in line with the declarations), [`secret`] (passwords by reference),
//! [`postgres`] (readiness, slots, publications), [`claims`] (whose slot is whose: orphans),
//! [`wal_guard`] (slot scans, metrics, threshold warnings), [`tls`] (sslmode, sslrootcert:
//! verified TLS), [`api`] (handlers).

pub mod api;
pub mod claims;
pub mod connect;
pub mod model;
pub mod postgres;
pub mod reconcile;
pub mod registry;
pub mod secret;
pub mod tls;
pub mod wal_guard;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get};
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

use self::connect::ConnectClient;
use self::reconcile::ReconcileState;
use self::registry::SourceRegistry;
use self::wal_guard::GuardState;
use crate::kafka::{KafkaMeta, KafkaSettings};

/// Settings the sources service needs from the sink's configuration.
#[derive(Debug, Clone)]
pub struct SourcesConfig {
    pub connect_url: String,
    pub kafka_bootstrap: String,
    pub wal_warn_bytes: u64,
    pub wal_critical_bytes: u64,
    pub wal_check_interval: Duration,
    /// Compacted topic holding the declared sources (shared by replicas).
    pub sources_topic: String,
    /// This deployment's id, in the name of every slot it creates (see [`claims`]).
    pub deployment_id: String,
    /// Whether a source may give its password in plain text (`TUMBLEWEED_ALLOW_PLAINTEXT_PASSWORD`).
    pub allow_plaintext_password: bool,
    /// The directory password files must lie in (`TUMBLEWEED_SECRETS_DIR`); `None` refuses
    /// file references.
    pub secrets_dir: Option<std::path::PathBuf>,
}

/// Settings with sensible defaults, kept apart from [`SourcesConfig`] so that its literal
/// construction stays valid; pass them with [`SourcesService::open_with_tuning`].
#[derive(Debug, Clone)]
pub struct SourcesTuning {
    /// Replication factor of the topics Debezium creates (1 locally, 3 on a real cluster).
    pub topic_replication_factor: u16,
    /// Partitions of the topics Debezium creates (1 keeps a table's events in commit order).
    pub topic_partitions: u32,
    /// How long a deletion waits for the slot to be released before terminating its holder.
    pub slot_release_timeout: Duration,
    /// How long a creation waits for the connector to run before answering.
    pub create_wait: Duration,
    /// `sslmode` of a creation request that gives none.
    pub default_sslmode: tls::SslMode,
    /// `sslrootcert` of a creation request that gives none (used when the mode verifies).
    pub default_sslrootcert: Option<String>,
    /// Where the Connect workers read the Amazon RDS CA bundle (`sslrootcert: rds`).
    pub connect_rds_ca_path: String,
}

impl Default for SourcesTuning {
    fn default() -> Self {
        Self {
            topic_replication_factor: 1,
            topic_partitions: 1,
            slot_release_timeout: Duration::from_secs(10),
            create_wait: Duration::from_secs(30),
            default_sslmode: tls::SslMode::default(),
            default_sslrootcert: None,
            connect_rds_ca_path: connect::DEFAULT_CONNECT_RDS_CA_PATH.to_string(),
        }
    }
}

/// Owns source administration; cheap to share behind an `Arc`.
pub struct SourcesService {
    config: SourcesConfig,
    tuning: SourcesTuning,
    connect: ConnectClient,
    registry: Arc<SourceRegistry>,
    reconcile: Arc<ReconcileState>,
    /// Passwords given in plain text, learned from creations and from Connect's copies: the
    /// registry never holds them, the WAL guard still needs them while Connect is away.
    passwords: RwLock<HashMap<String, String>>,
    guard: Arc<GuardState>,
}

impl SourcesService {
    pub async fn open(config: SourcesConfig) -> anyhow::Result<Arc<Self>> {
        Self::open_with_tuning(config, SourcesTuning::default()).await
    }

    /// Like [`SourcesService::open`], with non-default tuning (e.g. topic replication factor).
    /// Opens (creating if needed) the source registry topic.
    pub async fn open_with_tuning(
        config: SourcesConfig,
        tuning: SourcesTuning,
    ) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            config.wal_warn_bytes < config.wal_critical_bytes,
            "the WAL warning threshold must be below the critical one"
        );
        let connect = ConnectClient::new(&config.connect_url)?;
        let settings = KafkaSettings {
            bootstrap: config.kafka_bootstrap.clone(),
            fetch_wait_max_ms: 100,
        };
        let meta = KafkaMeta::new(&settings)?;
        let registry = SourceRegistry::open(
            &settings,
            &meta,
            &config.sources_topic,
            i32::from(tuning.topic_replication_factor),
        )
        .await?;
        Ok(Arc::new(Self {
            config,
            tuning,
            connect,
            registry,
            reconcile: Arc::default(),
            passwords: RwLock::new(HashMap::new()),
            guard: Arc::default(),
        }))
    }

    /// A plain-text password seen for `source` (from its creation or Connect's copy).
    fn known_password(&self, source: &str) -> Option<String> {
        self.passwords.read().get(source).cloned()
    }

    fn learn_password(&self, source: &str, raw: &str) {
        if secret::SecretRef::from_placeholder(raw).is_none() {
            self.passwords
                .write()
                .insert(source.to_string(), raw.to_string());
        }
    }

    /// Stops the registry reader (at shutdown).
    pub fn shutdown(&self) {
        self.registry.shutdown();
    }

    pub fn config(&self) -> &SourcesConfig {
        &self.config
    }

    pub fn tuning(&self) -> &SourcesTuning {
        &self.tuning
    }

    /// Admin routes (`/v1/sources…`, `/v1/slots…`); the caller applies admin authentication.
    pub fn routes(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/v1/sources", get(api::list).post(api::create))
            .route("/v1/sources/{name}", get(api::get).delete(api::delete))
            .route("/v1/slots", get(api::slots))
            .route("/v1/slots/{source}/{slot}", delete(api::drop_orphan))
            .with_state(Arc::clone(self))
    }

    /// Starts the periodic WAL guard; it stops when `shutdown` is cancelled.
    pub fn spawn_wal_guard(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            let interval = svc.config.wal_check_interval.max(Duration::from_secs(1));
            loop {
                let pass = async {
                    match svc.stored_all().await {
                        Ok(sources) => {
                            let claims = svc.slot_claims().await;
                            let scan = wal_guard::scan(
                                &sources,
                                &claims,
                                svc.config.wal_warn_bytes,
                                svc.config.wal_critical_bytes,
                            )
                            .await;
                            for e in &scan.errors {
                                tracing::warn!(server = %e.server, sources = ?e.sources, error = %e.error, "WAL guard cannot read a source server");
                            }
                            svc.guard.record(&scan);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e.message, "WAL guard cannot list the sources")
                        }
                    }
                };
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = pass => {}
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        })
    }

    /// (server, slot, retained WAL bytes) of every slot the WAL guard last saw.
    pub fn retained_wal(&self) -> Vec<(String, String, u64)> {
        self.guard.retained()
    }

    /// Registers the WAL guard's and the reconciler's metrics (see `crate::metrics`).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.guard.register_metrics(registry);
        self.reconcile.register_metrics(registry);
    }
}
