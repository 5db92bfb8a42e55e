//! A key-value log in a compacted Kafka topic, read by every sink replica: the storage under
//! the consumer registry and the source registry.
//!
//! Design: no database of our own. The topic has one partition, so every replica applies the
//! same records in the same order. At open, a replica reads the topic from the beginning (the
//! compacted history is the current state), then tails it on a thread. A write returns only
//! once this replica's reader has applied it, so the caller's next read sees its own write;
//! [`CompactedLog::sync`] waits for everything any replica wrote so far. What a value means,
//! and what applying it does, belongs to the owner (the `apply` callback).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;

use super::acked::AckedProducer;
use super::{KafkaMeta, KafkaSettings};

/// Applies one record: the key, and the value (`None` for a tombstone).
pub type ApplyFn = Box<dyn Fn(&str, Option<&[u8]>) + Send + Sync>;

pub struct CompactedLog {
    topic: String,
    what: &'static str,
    meta: KafkaMeta,
    producer: AckedProducer,
    /// Next offset of the topic that the reader has applied.
    applied: watch::Sender<i64>,
    stop: Arc<AtomicBool>,
}

impl CompactedLog {
    /// Creates the compacted topic if needed, applies everything in it, then keeps tailing it.
    /// `what` names the log in errors and thread names (e.g. "consumer registry").
    pub async fn open(
        settings: &KafkaSettings,
        meta: &KafkaMeta,
        topic: &str,
        replication: i32,
        what: &'static str,
        apply: ApplyFn,
    ) -> Result<Arc<Self>> {
        Self::open_with(
            settings,
            meta,
            topic,
            replication,
            &[("cleanup.policy", "compact")],
            what,
            apply,
        )
        .await
    }

    /// Like [`CompactedLog::open`], with the topic's configs given (for a log whose records
    /// only matter for a while, e.g. `cleanup.policy=compact,delete` with a `retention.ms`).
    pub async fn open_with(
        settings: &KafkaSettings,
        meta: &KafkaMeta,
        topic: &str,
        replication: i32,
        configs: &[(&str, &str)],
        what: &'static str,
        apply: ApplyFn,
    ) -> Result<Arc<Self>> {
        meta.ensure_log_topic(topic, replication, configs)
            .await
            .with_context(|| format!("preparing the {what} topic {topic}"))?;
        let (_, high) = meta.watermarks(topic, 0).await?;
        let producer = AckedProducer::new(
            ClientConfig::new()
                .set("bootstrap.servers", &settings.bootstrap)
                .set("acks", "all")
                .set("enable.idempotence", "false")
                .set("linger.ms", "0")
                .set("log_level", "4"),
            &what.replace(' ', "-"),
        )
        .with_context(|| format!("creating the {what} producer"))?;
        let reader: BaseConsumer = settings
            .consumer_config()
            .create()
            .with_context(|| format!("creating the {what} reader"))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
        reader
            .assign(&tpl)
            .with_context(|| format!("assigning the {what} topic"))?;
        let (applied, _) = watch::channel(0);
        let log = Arc::new(Self {
            topic: topic.to_string(),
            what,
            meta: meta.clone(),
            producer,
            applied,
            stop: Arc::new(AtomicBool::new(false)),
        });
        let tail = log.clone();
        std::thread::Builder::new()
            .name(what.replace(' ', "-"))
            .spawn(move || tail.run(reader, apply))
            .with_context(|| format!("starting the {what} reader"))?;
        if let Err(e) = log.wait_applied(high, Duration::from_secs(30)).await {
            // The caller gets no handle to stop the reader with: stop it here.
            log.shutdown();
            return Err(e.context(format!("loading the {what}")));
        }
        Ok(log)
    }

    fn run(&self, reader: BaseConsumer, apply: ApplyFn) {
        while !self.stop.load(Ordering::Relaxed) {
            match reader.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(e)) => tracing::warn!(log = self.what, error = %e, "reader error"),
                Some(Ok(m)) => {
                    if let Some(key) = m.key() {
                        apply(&String::from_utf8_lossy(key), m.payload());
                    }
                    let next = m.offset() + 1;
                    self.applied.send_modify(|v| *v = (*v).max(next));
                }
            }
        }
    }

    async fn wait_applied(&self, offset: i64, timeout: Duration) -> Result<()> {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|v| *v >= offset))
            .await
            .with_context(|| {
                format!(
                    "the {} reader did not reach offset {offset} within {timeout:?}",
                    self.what
                )
            })?
            .with_context(|| format!("the {} reader stopped", self.what))?;
        Ok(())
    }

    /// Writes `key` (a tombstone when `value` is `None`) and waits until it is applied here.
    pub async fn write(&self, key: &str, value: Option<Vec<u8>>) -> Result<()> {
        let offset = self
            .producer
            .send(&self.topic, key, value.as_deref())
            .await
            .with_context(|| format!("writing to the {} topic {}", self.what, self.topic))?;
        self.wait_applied(offset + 1, Duration::from_secs(10)).await
    }

    /// Waits (up to 5 s) until this replica has applied everything written so far, by any
    /// replica.
    pub async fn sync(&self) -> Result<()> {
        let (_, high) = self.meta.watermarks(&self.topic, 0).await?;
        self.wait_applied(high, Duration::from_secs(5)).await
    }

    /// Stops the reader thread (at shutdown).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
