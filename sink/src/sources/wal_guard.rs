//! The WAL guard: how much WAL each replication slot keeps on the source servers, with a
//! severity, Prometheus gauges and a warning when a slot crosses a threshold.
//!
//! Design: replication slots are cluster-wide, and a slot in any database retains WAL for the
//! whole cluster, so the guard works per server (`host:port`), not per database: for each
//! server hosting sources it connects once, with the credentials of the first of its sources
//! that can log in, and lists every slot of the cluster (physical ones too). Each slot names the
//! source connection that reached it (`via`), which is how an orphan (a slot with this deployment's prefix that
//! no source claims, see [`super::claims`]; its own credentials are gone too) is later dropped: through any
//! live source on the same server. An unreachable server is one entry of `errors`, never a
//! failure of the whole scan.
//!
//! The last scan (periodic or from `GET /v1/slots`) is kept in memory for `/metrics`; severity
//! changes are logged once, when they happen (`warn` on the way up, `info` on the way down).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::join_all;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::registry::Registry;
use serde::Serialize;

use super::claims::SlotClaims;
use super::connect::StoredSource;
use super::model::{SlotStatus, SlotView};
use super::postgres;
use crate::metrics;

/// A source database the WAL guard could not read (the API's type).
pub use tumbleweed_api::sources::ScanError;

/// One pass over all source servers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scan {
    pub slots: Vec<SlotView>,
    pub errors: Vec<ScanError>,
}

/// Reads every slot of every server hosting one of `sources`; `claims` tells whose each is.
pub async fn scan(sources: &[StoredSource], claims: &SlotClaims, warn: u64, critical: u64) -> Scan {
    let mut by_server: BTreeMap<String, Vec<&StoredSource>> = BTreeMap::new();
    for s in sources {
        by_server.entry(s.db.server()).or_default().push(s);
    }
    let passes = by_server.into_iter().map(|(server, group)| async move {
        let mut last_error = String::new();
        for s in &group {
            let client = match postgres::connect(&s.db).await {
                Ok(c) => c,
                Err(e) => {
                    last_error = e.message;
                    continue;
                }
            };
            return match postgres::list_slots(&client).await {
                Ok(raw) => Ok(raw
                    .into_iter()
                    .map(|r| r.view(&server, &s.name, claims, warn, critical))
                    .collect::<Vec<_>>()),
                Err(e) => Err(ScanError {
                    server,
                    sources: group.iter().map(|s| s.name.clone()).collect(),
                    error: format!("{e:#}"),
                }),
            };
        }
        Err(ScanError {
            sources: group.iter().map(|s| s.name.clone()).collect(),
            server,
            error: last_error,
        })
    });
    let mut out = Scan::default();
    for r in join_all(passes).await {
        match r {
            Ok(slots) => out.slots.extend(slots),
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// The guard's memory: the last scan and each slot's last severity.
#[derive(Default)]
pub struct GuardState {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    last: Option<Scan>,
    statuses: HashMap<(String, String), SlotStatus>,
}

impl GuardState {
    /// Keeps `scan` for the metrics and logs severity changes since the previous one.
    pub fn record(&self, scan: &Scan) {
        let mut inner = self.inner.lock();
        let mut next = HashMap::with_capacity(scan.slots.len());
        for s in &scan.slots {
            let key = (s.server.clone(), s.slot.clone());
            let before = inner.statuses.get(&key).copied().unwrap_or(SlotStatus::Ok);
            if s.status > before {
                tracing::warn!(
                    slot = %s.slot,
                    server = %s.server,
                    database = s.database.as_deref().unwrap_or(""),
                    source = s.source.as_deref().unwrap_or(""),
                    retained_bytes = s.retained_bytes.unwrap_or(0),
                    wal_status = s.wal_status.as_deref().unwrap_or(""),
                    active = s.active,
                    orphan = s.orphan,
                    "replication slot retains too much WAL: now {}",
                    s.status.as_str()
                );
            } else if s.status < before {
                tracing::info!(slot = %s.slot, server = %s.server, "replication slot back to {}", s.status.as_str());
            }
            next.insert(key, s.status);
        }
        inner.statuses = next;
        inner.last = Some(scan.clone());
    }

    /// (server, slot, retained WAL bytes) of every slot in the last scan.
    pub fn retained(&self) -> Vec<(String, String, u64)> {
        let inner = self.inner.lock();
        inner
            .last
            .iter()
            .flat_map(|scan| &scan.slots)
            .map(|s| {
                (
                    s.server.clone(),
                    s.slot.clone(),
                    s.retained_bytes.unwrap_or(0).max(0) as u64,
                )
            })
            .collect()
    }

    /// Registers the gauges of the last scan (none before the first): per slot, retained WAL,
    /// whether it is active and whether it is an orphan; and the servers it could not read.
    pub fn register_metrics(self: &Arc<Self>, registry: &mut Registry) {
        let state = Arc::clone(self);
        metrics::collect(registry, move |enc| {
            let inner = state.inner.lock();
            let Some(scan) = &inner.last else {
                return Ok(());
            };
            let rows = |value: fn(&SlotView) -> i64| {
                scan.slots
                    .iter()
                    .map(move |s| (SlotLabels::of(s), value(s)))
            };
            metrics::live_gauges(
                enc,
                "tumbleweed_slot_retained_wal_bytes",
                "WAL retained by a replication slot (pg_current_wal_lsn() - restart_lsn).",
                rows(|s| s.retained_bytes.unwrap_or(0)),
            )?;
            metrics::live_gauges(
                enc,
                "tumbleweed_slot_active",
                "Whether a replication slot is in use (1) or not (0).",
                rows(|s| i64::from(s.active)),
            )?;
            metrics::live_gauges(
                enc,
                "tumbleweed_slot_orphan",
                "Whether a Tumbleweed slot has lost its source (1) or not (0).",
                rows(|s| i64::from(s.orphan)),
            )?;
            metrics::live_gauge(
                enc,
                "tumbleweed_wal_guard_unreachable_servers",
                "Source servers the last WAL guard pass could not read.",
                scan.errors.len() as u64,
            )
        });
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlotLabels {
    source: String,
    slot: String,
    database: String,
    server: String,
}

impl SlotLabels {
    fn of(s: &SlotView) -> Self {
        Self {
            source: s.source.clone().unwrap_or_default(),
            slot: s.slot.clone(),
            database: s.database.clone().unwrap_or_default(),
            server: s.server.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str, status: SlotStatus) -> SlotView {
        SlotView {
            slot: name.into(),
            server: "db:5432".into(),
            database: Some("app".into()),
            slot_type: "logical".into(),
            plugin: Some("pgoutput".into()),
            active: true,
            active_pid: Some(7),
            retained_bytes: Some(42),
            wal_status: Some("reserved".into()),
            safe_wal_size: None,
            owned: true,
            source: Some("a\"b".into()),
            orphan: false,
            via: "a".into(),
            status,
        }
    }

    #[test]
    fn metrics_render_with_escaped_labels() {
        let g = Arc::new(GuardState::default());
        let out = metrics::encode_with(|r| g.register_metrics(r));
        assert!(out.is_empty(), "no scan yet, no metrics");
        g.record(&Scan {
            slots: vec![slot("tumbleweed_a", SlotStatus::Warn)],
            errors: vec![],
        });
        let out = metrics::encode_with(|r| g.register_metrics(r));
        assert!(out.contains(
            "tumbleweed_slot_retained_wal_bytes{source=\"a\\\"b\",slot=\"tumbleweed_a\",database=\"app\",server=\"db:5432\"} 42"
        ), "{out}");
        assert!(out.contains("tumbleweed_slot_active{source=\"a\\\"b\",slot=\"tumbleweed_a\",database=\"app\",server=\"db:5432\"} 1"));
    }
}
