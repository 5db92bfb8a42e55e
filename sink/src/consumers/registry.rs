//! Consumer registrations, stored in a compacted Kafka topic (key: consumer name, value: the
//! registration as JSON, tombstone: deleted) through [`CompactedLog`]: every sink replica
//! converges on the same registrations, and a replica's own writes are visible to it before
//! the API answers.
//!
//! Each registration carries a cancellation token: when a consumer is deleted (through any
//! replica), the token is cancelled and that consumer's live streams end.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::kafka::compacted::CompactedLog;
use crate::kafka::{KafkaMeta, KafkaSettings};

pub use tumbleweed_api::consumers::StartFrom;

/// A registered consumer, as stored. The token exists only as its SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerRecord {
    pub name: String,
    /// Sorted and de-duplicated.
    pub topics: Vec<String>,
    pub start: StartFrom,
    /// Operation filter (`c`, `u`, `d`, `r`, …); `None` delivers everything.
    pub ops: Option<Vec<String>>,
    /// Filters and projections by topic (or `*`); see [`crate::filter`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: crate::filter::Filters,
    pub token_sha256: String,
    pub created_at_ms: u64,
}

struct Entry {
    record: Arc<ConsumerRecord>,
    closed: CancellationToken,
}

pub struct Registry {
    log: Arc<CompactedLog>,
    entries: Arc<RwLock<HashMap<String, Entry>>>,
    /// When a lookup of an unknown name last synced the registry (see `find_throttled`).
    last_miss_sync: parking_lot::Mutex<Option<std::time::Instant>>,
}

/// How often a lookup of an unknown consumer name may sync the registry with the broker.
const MISS_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub use tumbleweed_api::names::valid_consumer_name as valid_name;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Registry {
    /// Creates the registry topic if needed, loads every registration and starts tailing.
    pub async fn open(
        settings: &KafkaSettings,
        meta: &KafkaMeta,
        topic: &str,
        replication: i32,
    ) -> Result<Arc<Self>> {
        let entries: Arc<RwLock<HashMap<String, Entry>>> = Arc::default();
        let target = entries.clone();
        let apply = Box::new(move |name: &str, value: Option<&[u8]>| {
            match value
                .map(serde_json::from_slice::<ConsumerRecord>)
                .transpose()
            {
                Ok(r) => apply(&mut target.write(), name, r),
                Err(e) => tracing::warn!(%name, error = %e, "unreadable registration skipped"),
            }
        });
        let log = CompactedLog::open(
            settings,
            meta,
            topic,
            replication,
            "consumer registry",
            apply,
        )
        .await?;
        Ok(Arc::new(Self {
            log,
            entries,
            last_miss_sync: parking_lot::Mutex::new(None),
        }))
    }

    /// Waits (up to 5 s) until this replica has applied everything written to the registry
    /// so far, by any replica: a consumer created through another replica a moment ago is
    /// then known here too.
    pub async fn sync(&self) -> Result<()> {
        self.log.sync().await
    }

    /// Like [`Registry::get_with_close`], but an unknown name is looked up again after
    /// [`Registry::sync`], so a registration made on another replica is found.
    pub async fn find(
        &self,
        name: &str,
    ) -> Result<Option<(Arc<ConsumerRecord>, CancellationToken)>> {
        if let Some(found) = self.get_with_close(name) {
            return Ok(Some(found));
        }
        self.sync().await?;
        Ok(self.get_with_close(name))
    }

    /// For unauthenticated callers: like [`Registry::find`], but a miss triggers at most one
    /// registry sync per second for the whole process, so requests naming unknown consumers
    /// cannot turn into a stream of broker calls.
    pub async fn find_throttled(
        &self,
        name: &str,
    ) -> Result<Option<(Arc<ConsumerRecord>, CancellationToken)>> {
        if let Some(found) = self.get_with_close(name) {
            return Ok(Some(found));
        }
        let due = {
            let mut last = self.last_miss_sync.lock();
            let due = last.is_none_or(|t| t.elapsed() >= MISS_SYNC_EVERY);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            self.sync().await?;
        }
        Ok(self.get_with_close(name))
    }

    pub fn get(&self, name: &str) -> Option<Arc<ConsumerRecord>> {
        self.entries.read().get(name).map(|e| e.record.clone())
    }

    /// The registration and the token that is cancelled when it is deleted or replaced.
    pub fn get_with_close(&self, name: &str) -> Option<(Arc<ConsumerRecord>, CancellationToken)> {
        self.entries
            .read()
            .get(name)
            .map(|e| (e.record.clone(), e.closed.clone()))
    }

    pub fn list(&self) -> Vec<Arc<ConsumerRecord>> {
        let entries = self.entries.read();
        let sorted: BTreeMap<_, _> = entries.iter().map(|(k, e)| (k, e.record.clone())).collect();
        sorted.into_values().collect()
    }

    /// Stores a new registration; fails if the name is taken (here or on another replica).
    pub async fn create(&self, record: ConsumerRecord) -> Result<Arc<ConsumerRecord>, CreateError> {
        if self
            .find(&record.name)
            .await
            .map_err(CreateError::Other)?
            .is_some()
        {
            return Err(CreateError::Exists);
        }
        let name = record.name.clone();
        let digest = record.token_sha256.clone();
        let json = serde_json::to_vec(&record).expect("a registration serialises");
        self.log
            .write(&name, Some(json))
            .await
            .map_err(CreateError::Other)?;
        match self.get(&name) {
            Some(r) if r.token_sha256 == digest => Ok(r),
            Some(winner) => {
                // We lost a race with another replica. Our record is now the last one for this
                // key, which is what log compaction would keep: write the winner again.
                let json = serde_json::to_vec(winner.as_ref()).expect("a registration serialises");
                self.log
                    .write(&name, Some(json))
                    .await
                    .map_err(CreateError::Other)?;
                Err(CreateError::Exists)
            }
            None => Err(CreateError::Other(anyhow::anyhow!(
                "registration of {name} was not applied"
            ))),
        }
    }

    /// Deletes a registration (a tombstone); live streams of the consumer end.
    pub async fn delete(&self, name: &str) -> Result<bool> {
        if self.find(name).await?.is_none() {
            return Ok(false);
        }
        self.log.write(name, None).await?;
        if self.get(name).is_some() {
            bail!("deletion of {name} was not applied");
        }
        Ok(true)
    }
}

impl Registry {
    /// Stops the reader thread (at shutdown).
    pub fn shutdown(&self) {
        self.log.shutdown();
    }
}

/// Applies one record of the registry log to the registrations.
fn apply(entries: &mut HashMap<String, Entry>, name: &str, record: Option<ConsumerRecord>) {
    match record {
        None => {
            if let Some(old) = entries.remove(name) {
                old.closed.cancel();
            }
        }
        Some(r) => {
            // First writer wins: two replicas creating the same name at once both write,
            // and every replica applies the log in the same order, so all keep the first
            // registration (the loser re-writes it, see `create`).
            if let Some(existing) = entries.get_mut(name) {
                if existing.record.token_sha256 == r.token_sha256 {
                    existing.record = Arc::new(r);
                } else {
                    tracing::warn!(%name, "a concurrent registration of the same name was ignored");
                }
                return;
            }
            entries.insert(
                name.to_string(),
                Entry {
                    record: Arc::new(r),
                    closed: CancellationToken::new(),
                },
            );
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a consumer with this name already exists")]
    Exists,
    #[error(transparent)]
    Other(anyhow::Error),
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn consumer_names() {
        for ok in ["a", "0", "billing", "orders-v2", "a_b-c", &"x".repeat(63)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "_a",
            "A",
            "a b",
            "a'b",
            "é",
            &"x".repeat(64),
            "a.b",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
