//! Acknowledged cursors, stored as the Kafka consumer-group offsets of group
//! `tumbleweed.<consumer>`: standard tooling (`kafka-consumer-groups`) shows each consumer's
//! lag, and every sink replica reads the same positions.
//!
//! The sink never joins these groups; it commits and fetches offsets for explicit
//! partitions. One client per group is cached, since creating one costs a coordinator look-up.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaSettings, METADATA_TIMEOUT};

/// Kafka consumer group that holds the acknowledged positions of a consumer.
pub fn group_id(consumer: &str) -> String {
    format!("tumbleweed.{consumer}")
}

pub struct GroupOffsets {
    settings: KafkaSettings,
    clients: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

impl GroupOffsets {
    pub fn new(settings: KafkaSettings) -> Self {
        Self {
            settings,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, consumer: &str) -> Result<Arc<BaseConsumer>> {
        if let Some(c) = self.clients.lock().get(consumer) {
            return Ok(c.clone());
        }
        let client: BaseConsumer = self
            .settings
            .consumer_config()
            .set("group.id", group_id(consumer))
            .create()
            .context("creating an offsets client")?;
        let client = Arc::new(client);
        self.clients
            .lock()
            .insert(consumer.to_string(), client.clone());
        Ok(client)
    }

    /// Forgets a consumer's acknowledged positions: deletes its group (the sink never joins
    /// it, so the group has no members) and the cached client. A group that does not exist is
    /// not an error.
    pub async fn forget(&self, consumer: &str) -> Result<()> {
        use rdkafka::admin::{AdminClient, AdminOptions};
        use rdkafka::client::DefaultClientContext;
        use rdkafka::types::RDKafkaErrorCode;
        self.clients.lock().remove(consumer);
        let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.settings.bootstrap)
            .create()
            .context("creating an admin client")?;
        let group = group_id(consumer);
        let results = admin
            .delete_groups(
                &[&group],
                &AdminOptions::new().request_timeout(Some(METADATA_TIMEOUT)),
            )
            .await
            .with_context(|| format!("deleting group {group}"))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((g, e)) => anyhow::bail!("deleting group {g}: {e}"),
            }
        }
        Ok(())
    }

    /// Stores `positions[topic][partition]` (next offsets) as the consumer's group offsets.
    pub async fn commit(
        &self,
        consumer: &str,
        topics: &[String],
        positions: &[Vec<i64>],
    ) -> Result<()> {
        let client = self.client(consumer)?;
        let mut tpl = TopicPartitionList::new();
        for (t, offsets) in topics.iter().zip(positions) {
            for (p, &o) in offsets.iter().enumerate() {
                tpl.add_partition_offset(t, p as i32, Offset::Offset(o))?;
            }
        }
        let consumer = consumer.to_string();
        tokio::task::spawn_blocking(move || {
            client
                .commit(&tpl, CommitMode::Sync)
                .with_context(|| format!("committing the offsets of group {}", group_id(&consumer)))
        })
        .await
        .context("commit task")?
    }

    /// The committed next offsets per topic and partition (`None` where nothing was acked).
    pub async fn fetch(
        &self,
        consumer: &str,
        topics: &[(String, usize)],
    ) -> Result<Vec<Vec<Option<i64>>>> {
        let client = self.client(consumer)?;
        let mut tpl = TopicPartitionList::new();
        for (t, n) in topics {
            for p in 0..*n as i32 {
                tpl.add_partition(t, p);
            }
        }
        let topics = topics.to_vec();
        let consumer = consumer.to_string();
        tokio::task::spawn_blocking(move || {
            let got = client
                .committed_offsets(tpl, METADATA_TIMEOUT)
                .with_context(|| format!("reading the offsets of group {}", group_id(&consumer)))?;
            Ok(topics
                .iter()
                .map(|(t, n)| {
                    (0..*n as i32)
                        .map(|p| match got.find_partition(t, p).map(|e| e.offset()) {
                            Some(Offset::Offset(o)) if o >= 0 => Some(o),
                            _ => None,
                        })
                        .collect()
                })
                .collect())
        })
        .await
        .context("offset fetch task")?
    }
}
