//! Kafka consumption and administration. The sink never gives each SSE connection a Kafka
//! consumer of its own:
//! - [`hub`]: one shared Kafka reader for every open topic, and the feeds' lifecycle;
//! - [`feed`]: each topic's buffer of recent events per partition, which wakes the streams
//!   that wait on it;
//! - [`replay`]: history older than that buffer, read in chunks by a capped pool of readers
//!   into a byte-bounded cache that every stream replaying the same history shares;
//! - [`cursors`]: acknowledged cursors, in the sink's own compacted topic;
//! - [`compacted`]: a key-value log in a compacted topic (the consumer and source registries);
//! - [`acked`]: the producer under those logs, whose sends resolve with the broker's offset;
//! - this module: client settings, metadata and watermarks (blocking librdkafka calls are
//!   run on tokio's blocking pool).

pub mod acked;
pub mod compacted;
pub mod cursors;
pub mod feed;
pub mod hub;
pub mod replay;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

/// How long a metadata or watermark request may take before it is reported as a failure.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Most bytes (on the wire, compressed) of one fetch response of a reader. librdkafka refuses
/// less than `message.max.bytes` (1,000,000 by default).
pub const FETCH_MAX_BYTES: usize = 1 << 20;
/// Most bytes (on the wire) one partition adds to a fetch response. A batch larger than this
/// is still returned whole (Kafka always returns the first batch), so nothing gets stuck.
pub const PARTITION_FETCH_MAX_BYTES: usize = 256 << 10;

/// What [`KafkaMeta::cluster_health`] found (`GET /v1/kafka/health`): the API's type.
pub use tumbleweed_api::service::ClusterHealth;

/// Settings shared by every librdkafka client the sink creates.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub bootstrap: String,
    pub fetch_wait_max_ms: u64,
}

impl KafkaSettings {
    /// A consumer configuration without a group: partitions are assigned explicitly.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("group.id", "tumbleweed-sink-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            .set("socket.nagle.disable", "true")
            // Fetch sizes count bytes on the wire, compressed: librdkafka decompresses a whole
            // response before its queue limit (`queued.max.messages.kbytes`, counted in
            // decompressed payload) is checked again, and a queued record pins its whole
            // decompressed batch. With lz4 at 10-15x, librdkafka's defaults (50 MiB per
            // response, 1 MiB per partition) let one response of the shared reader, opening
            // 200 topics at once, hold 150 MiB. Small responses bound that to a few MiB per
            // reader; a local round trip per MiB costs a replay little (see `backlog_replay`).
            .set("fetch.max.bytes", FETCH_MAX_BYTES.to_string())
            .set(
                "max.partition.fetch.bytes",
                PARTITION_FETCH_MAX_BYTES.to_string(),
            )
            .set("log_level", "4");
        c
    }
}

/// Whether a Kafka error says a partition's leader is moving or not yet known here: an
/// answer that changes once the client refreshes its metadata.
fn leadership_moving(e: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::NotLeaderForPartition | C::LeaderNotAvailable | C::UnknownTopicOrPartition)
    )
}

/// Metadata and watermark look-ups, through one long-lived client.
#[derive(Clone)]
pub struct KafkaMeta {
    consumer: Arc<BaseConsumer>,
    admin: Arc<AdminClient<DefaultClientContext>>,
}

/// A topic as listed by `GET /v1/topics` (the API's type).
pub use tumbleweed_api::service::TopicInfo;

impl KafkaMeta {
    pub fn new(settings: &KafkaSettings) -> Result<Self> {
        let consumer: BaseConsumer = settings
            .consumer_config()
            .create()
            .context("creating the Kafka metadata client")?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap)
            .set("log_level", "4")
            .create()
            .context("creating the Kafka admin client")?;
        Ok(Self {
            consumer: Arc::new(consumer),
            admin: Arc::new(admin),
        })
    }

    /// Partition counts of all topics that consumers may subscribe to (internal topics, whose
    /// names start with `_`, are left out).
    pub async fn topic_partitions(&self) -> Result<BTreeMap<String, usize>> {
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || {
            let md = consumer
                .fetch_metadata(None, METADATA_TIMEOUT)
                .context("reading topic metadata from the broker")?;
            Ok(md
                .topics()
                .iter()
                .filter(|t| !t.name().starts_with('_') && !t.partitions().is_empty())
                .map(|t| (t.name().to_string(), t.partitions().len()))
                .collect())
        })
        .await
        .context("metadata task")?
    }

    /// Partition count of one topic, `None` if the broker does not know it.
    pub async fn partition_count(&self, topic: &str) -> Result<Option<usize>> {
        let consumer = self.consumer.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let md = consumer
                .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
                .with_context(|| format!("reading metadata of topic {topic}"))?;
            Ok(md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len())
                .filter(|n| *n > 0))
        })
        .await
        .context("metadata task")?
    }

    /// `(low, high)` watermarks of one partition. Asked again for about 1.5 s while the
    /// cluster answers that leadership is moving (a broker restarted, a topic just created or
    /// recreated): those answers last until librdkafka has refreshed its metadata.
    pub async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        use backon::{ExponentialBuilder, Retryable};
        let ask = || {
            let consumer = self.consumer.clone();
            let topic = topic.to_string();
            async move {
                tokio::task::spawn_blocking(move || {
                    consumer.fetch_watermarks(&topic, partition, METADATA_TIMEOUT)
                })
                .await
                // Only a panic or a runtime shutdown ends the task early.
                .map_err(|_| KafkaError::Canceled)?
            }
        };
        ask.retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_max_times(5),
        )
        .when(leadership_moving)
        .await
        .with_context(|| format!("reading watermarks of {topic}[{partition}]"))
    }

    /// Topics with their partition counts and end offsets.
    pub async fn topics(&self) -> Result<Vec<TopicInfo>> {
        let mut out = Vec::new();
        for (name, partitions) in self.topic_partitions().await? {
            let mut end_offsets = Vec::with_capacity(partitions);
            for p in 0..partitions as i32 {
                end_offsets.push(self.watermarks(&name, p).await?.1);
            }
            out.push(TopicInfo {
                name,
                partitions,
                end_offsets,
            });
        }
        Ok(out)
    }

    /// Whether the broker answers a metadata request within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> Result<()> {
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .context("the Kafka broker did not answer a metadata request")
        })
        .await
        .context("metadata task")?
    }

    /// The cluster as its metadata shows it: the brokers, and how many partitions (internal
    /// topics included) have fewer in-sync replicas than replicas, or no leader. What a rolling
    /// restart waits on before it restarts the next node (`tumbleweed kafka roll`).
    pub async fn cluster_health(&self) -> Result<ClusterHealth> {
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || {
            let md = consumer
                .fetch_metadata(None, METADATA_TIMEOUT)
                .context("the Kafka broker did not answer a metadata request")?;
            let mut h = ClusterHealth {
                brokers: md.brokers().iter().map(|b| b.id()).collect(),
                topics: md.topics().len(),
                ..ClusterHealth::default()
            };
            h.brokers.sort_unstable();
            for p in md.topics().iter().flat_map(|t| t.partitions()) {
                h.partitions += 1;
                if p.leader() < 0 {
                    h.offline += 1;
                }
                if p.isr().len() < p.replicas().len() {
                    h.under_replicated += 1;
                }
            }
            Ok(h)
        })
        .await
        .context("metadata task")?
    }

    /// Creates a single-partition compacted topic unless it exists.
    pub async fn ensure_compacted_topic(&self, topic: &str, replication: i32) -> Result<()> {
        self.ensure_log_topic(topic, replication, &[("cleanup.policy", "compact")])
            .await
    }

    /// Creates a single-partition topic with `configs` unless it exists.
    pub async fn ensure_log_topic(
        &self,
        topic: &str,
        replication: i32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        if self.partition_count(topic).await?.is_some() {
            return Ok(());
        }
        let mut new = NewTopic::new(topic, 1, TopicReplication::Fixed(replication));
        for (k, v) in configs {
            new = new.set(k, v);
        }
        let results = self
            .admin
            .create_topics(
                [&new],
                &AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT)),
            )
            .await
            .with_context(|| format!("creating topic {topic}"))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => anyhow::bail!("creating topic {t}: {code}"),
            }
        }
        // The broker may answer metadata and watermark requests for the new topic only after
        // a moment; wait until it does so callers can use the topic at once.
        let usable = crate::wait::until(
            Duration::from_secs(15),
            Duration::from_millis(100),
            || async {
                Ok::<_, anyhow::Error>(
                    self.partition_count(topic).await?.is_some()
                        && self.watermarks(topic, 0).await.is_ok(),
                )
            },
            |usable| *usable,
        )
        .await?;
        anyhow::ensure!(
            usable,
            "topic {topic} was created but is not usable after 15 s"
        );
        Ok(())
    }
}
