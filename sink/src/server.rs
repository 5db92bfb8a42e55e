//! Wiring and lifecycle: builds every component from the configuration, serves HTTP, and
//! shuts down gracefully — on the shutdown signal, live SSE streams get a final comment
//! telling clients to reconnect with `Last-Event-ID`, then the server stops accepting and
//! drains.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{AdminToken, MetricsTokens};
use crate::config::Config;
use crate::consumers::registry::Registry;
use crate::http::{self, AppState};
use crate::kafka::cursors::CursorStore;
use crate::kafka::feed::BufferLimits;
use crate::kafka::hub::FeedHub;
use crate::kafka::replay::{ReplayLimits, ReplayPool};
use crate::kafka::{KafkaMeta, KafkaSettings};
use crate::limits::StreamLimits;
use crate::memory::MemoryGuard;
use crate::metrics::{Metrics, Parts};
use crate::sources::{SourcesConfig, SourcesService, SourcesTuning};
use crate::sse::{SseContext, SseSettings};
use crate::stats::StatsStore;
use crate::tickets::TicketStore;

/// A started sink: its address and the task serving it.
pub struct RunningSink {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<()>>,
}

/// Where the sink image keeps the operator UI (`tumbleweed image build`, `sink/Dockerfile`).
const IMAGE_UI_DIR: &str = "/usr/share/tumbleweed/ui";

/// The UI directory: configured, else `ui/` under the working directory (a checkout), else
/// the image's copy, whichever holds an `index.html`.
fn ui_dir(config: &Config) -> Option<PathBuf> {
    if let Some(d) = &config.ui_dir {
        return Some(d.clone());
    }
    ["ui", IMAGE_UI_DIR]
        .into_iter()
        .map(PathBuf::from)
        .find(|d| d.join("index.html").is_file())
}

/// What the sink keeps in Kafka, opened in order at start.
struct KafkaStores {
    meta: KafkaMeta,
    registry: Arc<Registry>,
    cursors: Arc<CursorStore>,
    tickets: Arc<TicketStore>,
    stats: Arc<StatsStore>,
    sources: Arc<SourcesService>,
}

/// Opens the Kafka-backed stores, retrying the whole sequence until it succeeds, or fails
/// once `--kafka-start-timeout-secs` have passed (an attempt can take up to 10 s). A deployment starts its services together: the
/// brokers may not answer yet, or answer with fewer brokers than the internal topics'
/// replication factor. Each step is idempotent (a topic that exists is used), so a retry
/// finishes what an earlier attempt began. Each failed attempt is logged with its cause.
async fn open_kafka_stores_retrying(
    config: &Config,
    settings: &KafkaSettings,
) -> Result<KafkaStores> {
    use backon::{ExponentialBuilder, Retryable};
    let timeout = Duration::from_secs(config.kafka_start_timeout_secs);
    let started = std::time::Instant::now();
    let attempt = || open_kafka_stores(config, settings);
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(10))
                .without_max_times(),
        )
        .when(|_| started.elapsed() < timeout)
        .notify(|e: &anyhow::Error, wait: Duration| {
            tracing::warn!(
                "Kafka at {} is not ready ({:.0} s since start): {e:#}; trying again in {:.1} s \
                 (gives up after {} s: TUMBLEWEED_KAFKA_START_TIMEOUT_SECS)",
                config.kafka_bootstrap,
                started.elapsed().as_secs_f64(),
                wait.as_secs_f64(),
                timeout.as_secs(),
            )
        })
        .await
        .with_context(|| {
            format!(
                "gave up on Kafka at {} after {:.0} s (TUMBLEWEED_KAFKA_START_TIMEOUT_SECS={})",
                config.kafka_bootstrap,
                started.elapsed().as_secs_f64(),
                timeout.as_secs()
            )
        })
}

async fn open_kafka_stores(config: &Config, settings: &KafkaSettings) -> Result<KafkaStores> {
    let meta = KafkaMeta::new(settings)?;
    meta.reachable(Duration::from_secs(10))
        .await
        .with_context(|| format!("cannot reach Kafka at {}", config.kafka_bootstrap))?;
    let rf = i32::from(config.topic_replication_factor);
    // A store opened by an attempt that fails further on must not leave its reader running.
    let mut opened = StopOnDrop::default();
    let registry = Registry::open(settings, &meta, &config.consumers_topic, rf).await?;
    opened.push(&registry, |r| r.shutdown());
    let cursors = CursorStore::open(settings, &meta, &config.cursors_topic, rf).await?;
    opened.push(&cursors, |c| c.shutdown());
    let tickets = TicketStore::open(
        settings,
        &meta,
        &config.tickets_topic,
        rf,
        Duration::from_secs(config.ticket_ttl_secs),
    )
    .await?;
    opened.push(&tickets, |t| t.shutdown());
    let stats = StatsStore::open(
        settings,
        &meta,
        &config.stats_topic,
        rf,
        Duration::from_secs(config.stats_interval_secs),
        Duration::from_secs(config.stats_window_secs),
    )
    .await?;
    opened.push(&stats, |s| s.shutdown());
    let sources = SourcesService::open_with_tuning(
        SourcesConfig {
            connect_url: config.connect_url.clone(),
            kafka_bootstrap: config.kafka_bootstrap.clone(),
            wal_warn_bytes: config.wal_warn_bytes,
            wal_critical_bytes: config.wal_critical_bytes,
            wal_check_interval: Duration::from_secs(config.wal_check_secs.max(1)),
            sources_topic: config.sources_topic.clone(),
            deployment_id: config.deployment_id.clone(),
            allow_plaintext_password: config.allow_plaintext_password,
            secrets_dir: config.secrets_dir.clone(),
        },
        SourcesTuning {
            topic_replication_factor: config.topic_replication_factor,
            default_sslmode: config.source_default_sslmode,
            default_sslrootcert: config.source_default_sslrootcert.clone(),
            connect_rds_ca_path: config.connect_rds_ca_path.clone(),
            ..SourcesTuning::default()
        },
    )
    .await?;
    opened.disarm();
    Ok(KafkaStores {
        meta,
        registry,
        cursors,
        tickets,
        stats,
        sources,
    })
}

/// Stops what it holds when dropped, unless disarmed.
#[derive(Default)]
struct StopOnDrop(Vec<Box<dyn FnOnce() + Send>>);

impl StopOnDrop {
    fn push<T: Send + Sync + 'static>(&mut self, store: &Arc<T>, stop: fn(&T)) {
        let store = store.clone();
        self.0.push(Box::new(move || stop(&store)));
    }

    fn disarm(&mut self) {
        self.0.clear();
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for stop in self.0.drain(..) {
            stop();
        }
    }
}

/// Builds the sink and starts serving on `config.listen`.
pub async fn start(config: Config) -> Result<RunningSink> {
    config.validate()?;
    let shutdown = CancellationToken::new();
    let settings = KafkaSettings {
        bootstrap: config.kafka_bootstrap.clone(),
        fetch_wait_max_ms: config.fetch_wait_max_ms,
    };
    let KafkaStores {
        meta,
        registry,
        cursors,
        tickets,
        stats,
        sources,
    } = open_kafka_stores_retrying(&config, &settings).await?;
    let hub = Arc::new(FeedHub::start(
        settings.clone(),
        meta,
        BufferLimits::new(
            config.buffer_events_per_partition,
            config.buffer_bytes_per_topic,
            config.buffer_bytes,
        ),
    )?);
    hub.spawn_idle_closer(Duration::from_secs(config.feed_idle_secs), shutdown.clone());
    hub.spawn_partition_watch(shutdown.clone());
    let memory = MemoryGuard::new(config.memory_limit);
    memory.spawn_sampler(shutdown.clone());
    let replay = ReplayPool::new(
        settings.clone(),
        hub.meta().clone(),
        ReplayLimits::from_budget(config.buffer_bytes, config.max_catchup_readers as usize),
    )
    .with_memory(memory.clone());
    replay.spawn_janitor(shutdown.clone());
    let limits = StreamLimits::with_memory(
        config.max_streams as usize,
        config.max_streams_per_consumer as usize,
        memory.clone(),
    );
    let metrics = Arc::new(Metrics::new(Parts {
        hub: &hub,
        replay: &replay.stats,
        limits: &limits,
        memory: &memory,
        sources: &sources,
    }));
    let sse = Arc::new(SseContext {
        hub: hub.clone(),
        metrics: metrics.clone(),
        settings: SseSettings {
            keepalive: config.keepalive(),
            retry_ms: config.sse_retry_ms,
            max_chunk_events: config.max_chunk_events,
            max_chunk_bytes: config.max_chunk_bytes as usize,
            max_lag_events: config.max_lag_events,
            slow_policy: config.slow_consumer_policy,
        },
        shutdown: shutdown.clone(),
        replay,
        memory: memory.clone(),
    });
    sources.spawn_wal_guard(shutdown.clone());
    spawn_kafka_probe(hub.meta().clone(), metrics.clone(), shutdown.clone());
    sources.spawn_reconciler(
        Duration::from_secs(config.reconcile_interval_secs),
        shutdown.clone(),
    );
    if let Some(namespace) = &config.emf_namespace {
        crate::emf::spawn(
            namespace.clone(),
            config.emf_deployment.clone(),
            Duration::from_secs(config.emf_interval_secs),
            crate::emf::Sources {
                metrics: metrics.clone(),
                memory: memory.clone(),
                sources: sources.clone(),
            },
            shutdown.clone(),
        );
    }
    stats.spawn_sampler(
        crate::stats::Probe {
            metrics: metrics.clone(),
            sources: sources.clone(),
            hub: hub.clone(),
        },
        shutdown.clone(),
    );
    let sources_for_shutdown = sources.clone();
    let stats_for_shutdown = stats.clone();
    let state = Arc::new(AppState {
        registry: registry.clone(),
        hub: hub.clone(),
        cursors: cursors.clone(),
        tickets: tickets.clone(),
        stats,
        allow_query_token: config.allow_query_token,
        memory: memory.clone(),
        limits,
        sse,
        metrics,
        sources,
    });
    let app = http::router(
        state,
        AdminToken::new(&config.admin_token),
        MetricsTokens::new(&config.admin_token, config.metrics_token.as_deref()),
        ui_dir(&config),
    );
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        crate::conn::serve(
            listener,
            app,
            stop,
            config.max_connections as usize,
            config.write_timeout(),
        )
        .await;
        registry.shutdown();
        cursors.shutdown();
        tickets.shutdown();
        stats_for_shutdown.shutdown();
        sources_for_shutdown.shutdown();
        hub.shutdown();
        Ok(())
    });
    Ok(RunningSink {
        addr,
        shutdown,
        task,
    })
}

/// Asks Kafka for metadata every 10 s and records whether it answered within 5 s
/// (`tumbleweed_kafka_reachable`), so an alert can say "Kafka unreachable" without anything
/// having to fail first. Logs the first failure and the recovery, not every probe.
fn spawn_kafka_probe(meta: KafkaMeta, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    metrics.kafka_reachable.set(1);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                _ = shutdown.cancelled() => return,
            }
            let was = metrics.kafka_reachable.get() == 1;
            match meta.reachable(Duration::from_secs(5)).await {
                Ok(()) => {
                    if !was {
                        tracing::info!("Kafka answers again");
                    }
                    metrics.kafka_reachable.set(1);
                }
                Err(e) => {
                    if was {
                        tracing::warn!(error = format!("{e:#}"), "Kafka did not answer the probe");
                    }
                    metrics.kafka_reachable.set(0);
                    metrics.kafka_probe_failures.inc();
                }
            }
        }
    });
}
