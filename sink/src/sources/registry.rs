//! The declared sources: the sink's own durable record of what each source should be, in a
//! compacted topic shared by the replicas (key: source name, value: the declaration as JSON,
//! tombstone: deleted).
//!
//! Why: Kafka Connect's connector list is a copy that can be lost (a standalone worker's
//! restart, a lost config topic, an operator's `DELETE /connectors/…`). The registry is the
//! source of truth; the reconciler (`reconcile`) puts Connect back in line with it, and the
//! WAL guard reads the slots of declared sources whatever Connect says.
//!
//! A declaration is the connector config the sink wants in Connect. Its `database.password`
//! is kept only when it is a config-provider placeholder (`password_secret`): a password given
//! in plain text is never written here, so such a source can be restarted or corrected, but
//! not re-created, without Connect's own copy.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::secret::SecretRef;
use crate::kafka::compacted::CompactedLog;
use crate::kafka::{KafkaMeta, KafkaSettings};

const PASSWORD: &str = "database.password";

/// One declared source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeclaredSource {
    pub name: String,
    /// The Debezium connector config; `database.password` only as a placeholder.
    pub config: Map<String, Value>,
    pub declared_at_ms: u64,
}

impl DeclaredSource {
    /// The declaration of a connector config; a literal password is left out.
    pub fn new(name: &str, mut config: Map<String, Value>, declared_at_ms: u64) -> Self {
        let literal = config
            .get(PASSWORD)
            .and_then(Value::as_str)
            .is_some_and(|p| SecretRef::from_placeholder(p).is_none());
        if literal {
            config.remove(PASSWORD);
        }
        Self {
            name: name.to_string(),
            config,
            declared_at_ms,
        }
    }

    /// Whether the declaration alone can re-create the connector (its password is a
    /// reference, or there is none).
    pub fn complete_with(&self, password: Option<&str>) -> Option<Map<String, Value>> {
        let mut config = self.config.clone();
        if !config.contains_key(PASSWORD) {
            config.insert(PASSWORD.into(), Value::String(password?.to_string()));
        }
        Some(config)
    }

    /// Whether Connect's `actual` config says what the declaration says. Keys Connect adds
    /// (`name`) are ignored, and so is a literal password that the declaration does not hold.
    pub fn matches(&self, actual: &Map<String, Value>) -> bool {
        let declared_ok = self.config.iter().all(|(k, v)| actual.get(k) == Some(v));
        let no_extra = actual
            .keys()
            .all(|k| k == "name" || k == PASSWORD || self.config.contains_key(k));
        declared_ok && no_extra
    }
}

/// The declared sources, as this replica has applied them.
pub struct SourceRegistry {
    log: Arc<CompactedLog>,
    entries: Arc<RwLock<BTreeMap<String, Arc<DeclaredSource>>>>,
}

impl SourceRegistry {
    /// Creates the topic if needed, loads every declaration and starts tailing.
    pub async fn open(
        settings: &KafkaSettings,
        meta: &KafkaMeta,
        topic: &str,
        replication: i32,
    ) -> Result<Arc<Self>> {
        let entries: Arc<RwLock<BTreeMap<String, Arc<DeclaredSource>>>> = Arc::default();
        let target = entries.clone();
        let apply = Box::new(move |name: &str, value: Option<&[u8]>| {
            match value
                .map(serde_json::from_slice::<DeclaredSource>)
                .transpose()
            {
                Ok(Some(d)) => {
                    target.write().insert(name.to_string(), Arc::new(d));
                }
                Ok(None) => {
                    target.write().remove(name);
                }
                Err(e) => {
                    tracing::warn!(%name, error = %e, "unreadable source declaration skipped")
                }
            }
        });
        let log = CompactedLog::open(settings, meta, topic, replication, "source registry", apply)
            .await?;
        Ok(Arc::new(Self { log, entries }))
    }

    pub fn get(&self, name: &str) -> Option<Arc<DeclaredSource>> {
        self.entries.read().get(name).cloned()
    }

    /// Every declared source, by name.
    pub fn list(&self) -> Vec<Arc<DeclaredSource>> {
        self.entries.read().values().cloned().collect()
    }

    /// Stores (or replaces) a declaration.
    pub async fn put(&self, declared: &DeclaredSource) -> Result<()> {
        let json = serde_json::to_vec(declared)?;
        self.log.write(&declared.name, Some(json)).await
    }

    /// Removes a declaration (a tombstone); nothing happens if there is none.
    pub async fn remove(&self, name: &str) -> Result<()> {
        if self.get(name).is_some() {
            self.log.write(name, None).await?;
        }
        Ok(())
    }

    /// Waits until everything any replica declared so far is applied here.
    pub async fn sync(&self) -> Result<()> {
        self.log.sync().await
    }

    pub fn shutdown(&self) {
        self.log.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(password: &str) -> Map<String, Value> {
        json!({"slot.name": "tumbleweed_a", PASSWORD: password})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn literal_passwords_are_never_declared_and_placeholders_are() {
        let d = DeclaredSource::new("a", config("hunter2"), 1);
        assert!(!serde_json::to_string(&d).unwrap().contains("hunter2"));
        assert_eq!(d.complete_with(None), None);
        assert_eq!(
            d.complete_with(Some("hunter2")).unwrap()[PASSWORD],
            "hunter2"
        );
        let d = DeclaredSource::new("a", config("${env:PG_PW}"), 1);
        assert_eq!(d.complete_with(None).unwrap()[PASSWORD], "${env:PG_PW}");
    }

    #[test]
    fn drift_is_any_declared_key_changed_or_an_extra_key() {
        let d = DeclaredSource::new("a", config("hunter2"), 1);
        let mut actual = config("whatever-connect-has");
        actual.insert("name".into(), json!("tumbleweed-a"));
        assert!(d.matches(&actual));
        actual.insert("slot.name".into(), json!("other"));
        assert!(!d.matches(&actual));
        let mut actual = config("x");
        actual.insert("snapshot.mode".into(), json!("always"));
        assert!(!d.matches(&actual));
    }
}
