//! Acknowledged cursors, stored in the sink's own compacted topic (`--cursors-topic`, key: the
//! consumer name, value: its acknowledged positions as JSON, tombstone: forgotten) through
//! [`CompactedLog`], so every replica resumes a consumer from the same place.
//!
//! Why not consumer-group offsets (the first design): Kafka drops a group's offsets after
//! `offsets.retention.minutes` (7 days by default) without a member, and the sink never joins
//! the groups it commits for. A consumer away for longer reconnected at its `start` position
//! and silently skipped everything still retained. A compacted topic keeps the last value of
//! every key for as long as the key exists, so a cursor lives exactly as long as its consumer.
//!
//! Each stored cursor names the registration it belongs to (`consumer_created_at_ms`): an ack
//! that was in flight while its consumer was deleted cannot be inherited by a new consumer of
//! the same name, because the new registration has another creation time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{Context, Result};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::compacted::CompactedLog;
use super::{KafkaMeta, KafkaSettings};
use crate::consumers::registry::{now_ms, ConsumerRecord};

/// A consumer's acknowledged positions, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    /// Next offset per topic and partition.
    pub positions: BTreeMap<String, Vec<i64>>,
    /// When the ack was stored (ms since the epoch).
    pub acked_at_ms: u64,
    /// `created_at_ms` of the registration that acked: a cursor of an earlier consumer of the
    /// same name is ignored.
    pub consumer_created_at_ms: u64,
}

pub struct CursorStore {
    log: Arc<CompactedLog>,
    cursors: Arc<RwLock<HashMap<String, Acked>>>,
}

impl CursorStore {
    /// Creates the cursor topic if needed, loads every cursor and starts tailing.
    pub async fn open(
        settings: &KafkaSettings,
        meta: &KafkaMeta,
        topic: &str,
        replication: i32,
    ) -> Result<Arc<Self>> {
        let cursors: Arc<RwLock<HashMap<String, Acked>>> = Arc::default();
        let target = cursors.clone();
        let apply = Box::new(move |name: &str, value: Option<&[u8]>| {
            match value.map(serde_json::from_slice::<Acked>).transpose() {
                Ok(Some(a)) => {
                    target.write().insert(name.to_string(), a);
                }
                Ok(None) => {
                    target.write().remove(name);
                }
                Err(e) => tracing::warn!(%name, error = %e, "unreadable cursor skipped"),
            }
        });
        let log =
            CompactedLog::open(settings, meta, topic, replication, "cursor store", apply).await?;
        Ok(Arc::new(Self { log, cursors }))
    }

    /// Stores `positions[i]` (next offsets of `topics[i]`'s partitions) as `consumer`'s cursor.
    pub async fn store(
        &self,
        consumer: &ConsumerRecord,
        topics: &[String],
        positions: &[Vec<i64>],
    ) -> Result<Acked> {
        let acked = Acked {
            positions: topics
                .iter()
                .cloned()
                .zip(positions.iter().cloned())
                .collect(),
            acked_at_ms: now_ms(),
            consumer_created_at_ms: consumer.created_at_ms,
        };
        let json = serde_json::to_vec(&acked).expect("a cursor serialises");
        self.log
            .write(&consumer.name, Some(json))
            .await
            .with_context(|| format!("storing the cursor of consumer {}", consumer.name))?;
        Ok(acked)
    }

    /// The consumer's last acknowledgement, as this replica knows it now (no broker call).
    pub fn get(&self, consumer: &ConsumerRecord) -> Option<Acked> {
        self.cursors
            .read()
            .get(&consumer.name)
            .filter(|a| a.consumer_created_at_ms == consumer.created_at_ms)
            .cloned()
    }

    /// The consumer's last acknowledgement, after catching up with every replica's writes.
    pub async fn load(&self, consumer: &ConsumerRecord) -> Result<Option<Acked>> {
        self.log
            .sync()
            .await
            .context("reading the acknowledged cursors")?;
        Ok(self.get(consumer))
    }

    /// Forgets the cursor of consumer `name` (a tombstone). Nothing stored is not an error.
    pub async fn forget(&self, name: &str) -> Result<()> {
        self.log
            .write(name, None)
            .await
            .with_context(|| format!("deleting the cursor of consumer {name}"))
    }

    /// Stops the reader thread (at shutdown).
    pub fn shutdown(&self) {
        self.log.shutdown();
    }
}

impl Acked {
    /// Positions per partition for `topics` with `counts[i]` partitions each: `None` where
    /// nothing was acked (a topic or partition the ack did not cover).
    pub fn for_partitions(&self, topics: &[(String, usize)]) -> Vec<Vec<Option<i64>>> {
        topics
            .iter()
            .map(|(t, n)| {
                let stored = self.positions.get(t);
                (0..*n)
                    .map(|p| stored.and_then(|s| s.get(p).copied()))
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_the_ack_did_not_cover_have_no_position() {
        let acked = Acked {
            positions: BTreeMap::from([("a".to_string(), vec![5, 7])]),
            acked_at_ms: 1,
            consumer_created_at_ms: 1,
        };
        assert_eq!(
            acked.for_partitions(&[("a".into(), 3), ("b".into(), 1)]),
            vec![vec![Some(5), Some(7), None], vec![None]]
        );
    }
}
