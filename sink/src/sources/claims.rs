//! Which source claims each replication slot, and so which slots are orphans.
//!
//! Design: dropping a slot destroys a connector's position for good, and several deployments
//! (or a hand-made Debezium connector) may share one database. So a slot is an orphan only when
//! all of these hold:
//! - its name carries this deployment's prefix (`tw_<deployment>_`, see
//!   [`super::model::slot_prefix`]): other deployments' slots, pre-deployment-id slots
//!   (`tumbleweed_…`) and everyone else's are never ours to drop;
//! - no declared source names it. A declaration is read as raw JSON, not parsed into a
//!   source: a config the sink cannot parse still claims its slot (by `slot.name`, or, when
//!   even that is missing, by both names its source could have);
//! - no connector in Kafka Connect names it, whoever created that connector;
//! - Kafka Connect could be read at all, with every connector's config. When it cannot,
//!   nothing is an orphan.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::connect::KEY_SOURCE;
use super::model::{legacy_slot_name, slot_name, slot_prefix, CONNECTOR_PREFIX};
use super::registry::DeclaredSource;

/// Slot name → the source (or connector) that claims it.
#[derive(Debug, Clone, Default)]
pub struct SlotClaims {
    by_slot: BTreeMap<String, String>,
    /// This deployment's slot prefix.
    prefix: String,
    /// Whether Kafka Connect's connectors were read; without them nothing is an orphan.
    connect_read: bool,
}

impl SlotClaims {
    /// Claims of `declared` sources and, when Connect could be read, of its `connectors`
    /// (name → config).
    pub fn new<'a, 'b>(
        deployment: &str,
        declared: impl IntoIterator<Item = &'b DeclaredSource>,
        connectors: Option<impl IntoIterator<Item = (&'a String, &'a Map<String, Value>)>>,
    ) -> Self {
        let mut claims = Self {
            prefix: slot_prefix(deployment),
            connect_read: connectors.is_some(),
            ..Self::default()
        };
        for d in declared {
            claims.claim(deployment, &d.name, &d.config, true);
        }
        for (name, config) in connectors.into_iter().flatten() {
            // Connect lists a connector it is still adding (or cannot read) without its
            // config: which slot it needs is unknown, so no slot can be called an orphan.
            if !config.contains_key("connector.class") {
                claims.connect_read = false;
            }
            let owner = config
                .get(KEY_SOURCE)
                .and_then(Value::as_str)
                .unwrap_or(name.as_str());
            let ours = name.starts_with(CONNECTOR_PREFIX) || config.contains_key(KEY_SOURCE);
            claims.claim(deployment, owner, config, ours);
        }
        claims
    }

    fn claim(&mut self, deployment: &str, owner: &str, config: &Map<String, Value>, ours: bool) {
        match config.get("slot.name").and_then(Value::as_str) {
            Some(slot) => {
                self.by_slot
                    .entry(slot.to_string())
                    .or_insert_with(|| owner.to_string());
            }
            // Without `slot.name` Debezium uses "debezium"; one of ours could have either name.
            None if ours => {
                let bare = owner.strip_prefix(CONNECTOR_PREFIX).unwrap_or(owner);
                for slot in [slot_name(deployment, bare), legacy_slot_name(bare)] {
                    self.by_slot
                        .entry(slot)
                        .or_insert_with(|| owner.to_string());
                }
            }
            None => {
                self.by_slot
                    .entry("debezium".into())
                    .or_insert_with(|| owner.to_string());
            }
        }
    }

    /// The source claiming `slot`.
    pub fn owner(&self, slot: &str) -> Option<&str> {
        self.by_slot.get(slot).map(String::as_str)
    }

    /// Whether `slot` carries this deployment's prefix.
    pub fn owned(&self, slot: &str) -> bool {
        slot.starts_with(&self.prefix)
    }

    /// Whether `slot` may be dropped as an orphan (see the module doc).
    pub fn orphan(&self, slot: &str) -> bool {
        self.connect_read && self.owned(slot) && self.owner(slot).is_none()
    }

    /// Whether Kafka Connect was read (orphans can only be told when it was).
    pub fn connect_read(&self) -> bool {
        self.connect_read
    }

    /// This deployment's slot prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn only_unclaimed_slots_with_this_deployments_prefix_are_orphans() {
        let declared = [
            DeclaredSource::new("a", map(json!({"slot.name": "tw_prod_a"})), 1),
            // Unparsable as a source (no host, no port), yet its slot is claimed.
            DeclaredSource::new(
                "b",
                map(json!({"slot.name": "tw_prod_b", "database.port": "x"})),
                1,
            ),
            // Created before deployment ids: no slot.name at all.
            DeclaredSource::new("c", map(json!({"database.hostname": "db"})), 1),
        ];
        let connectors = [
            (
                "hand-made".to_string(),
                map(json!({"connector.class": "pg", "slot.name": "tw_prod_x"})),
            ),
            (
                "tumbleweed-d".to_string(),
                map(json!({"connector.class": "pg", "topic.prefix": "d"})),
            ),
        ];
        let claims = SlotClaims::new(
            "prod",
            declared.iter(),
            Some(connectors.iter().map(|(n, c)| (n, c))),
        );
        assert_eq!(claims.owner("tw_prod_a"), Some("a"));
        assert_eq!(claims.owner("tw_prod_b"), Some("b"));
        assert_eq!(claims.owner("tw_prod_c"), Some("c"));
        assert_eq!(claims.owner("tumbleweed_c"), Some("c"));
        assert_eq!(claims.owner("tw_prod_x"), Some("hand-made"));
        assert_eq!(claims.owner("tw_prod_d"), Some("tumbleweed-d"));
        for claimed in [
            "tw_prod_a",
            "tw_prod_b",
            "tw_prod_c",
            "tw_prod_x",
            "tw_prod_d",
        ] {
            assert!(!claims.orphan(claimed), "{claimed}");
        }
        assert!(claims.orphan("tw_prod_gone"));
        // Another deployment's, a legacy one, someone else's: never ours.
        for foreign in [
            "tw_staging_gone",
            "tw_prod2_gone",
            "tumbleweed_gone",
            "debezium",
        ] {
            assert!(!claims.orphan(foreign), "{foreign}");
        }
        // A connector listed without its config (Connect is still adding it): no orphans.
        let unknown = [("tumbleweed-e".to_string(), Map::new())];
        let partial = SlotClaims::new(
            "prod",
            declared.iter(),
            Some(unknown.iter().map(|(n, c)| (n, c))),
        );
        assert!(!partial.orphan("tw_prod_gone"));
        // Connect unreadable: no orphans at all.
        let blind = SlotClaims::new(
            "prod",
            declared.iter(),
            None::<Vec<(&String, &Map<String, Value>)>>,
        );
        assert!(blind.owned("tw_prod_gone"));
        assert!(!blind.orphan("tw_prod_gone"));
    }
}
