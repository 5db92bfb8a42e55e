//! CloudWatch metrics without an agent: the sink writes its health as CloudWatch Embedded
//! Metric Format (EMF) lines on stdout, which the ECS `awslogs` driver ships to CloudWatch Logs,
//! where CloudWatch extracts them as metrics.
//!
//! Design: off unless `--emf-namespace` is set (on ECS, `modules/sink` sets it). Every
//! `--emf-interval-secs` one line per dimension set is printed, each a JSON object holding
//! its own `_aws` directive (namespace, dimensions, metric names and units) and the values:
//! - `[["Deployment"]]`: `MaxRetainedWalBytes` (largest slot), `MaxConsumerLagEvents`
//!   (largest consumer), `KafkaReachable` (1/0), `ConnectedStreams`, `ResidentBytes`. Fixed
//!   dimensions, so the Terraform alarms can name them;
//! - `[["Deployment","Slot"]]`: `RetainedWalBytes` of each replication slot;
//! - `[["Deployment","Consumer"]]`: `ConsumerLagEvents` of each consumer with a live stream.
//!
//! The per-slot and per-consumer lines are for drill-down; EMF allows at most 100 metrics per
//! directive, so they are one line per slot or consumer. The snapshot is a plain struct, and
//! [`lines`] a pure function of it, so the format is unit tested against the EMF rules.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::memory::MemoryGuard;
use crate::metrics::Metrics;
use crate::sources::SourcesService;

/// What one EMF interval reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// (slot, retained WAL bytes); a slot name seen on two servers keeps the larger value.
    pub slots: Vec<(String, u64)>,
    /// (consumer, lag in events of its most lagging live stream).
    pub consumer_lag: Vec<(String, u64)>,
    pub kafka_reachable: bool,
    pub connected_streams: usize,
    pub resident_bytes: usize,
}

/// One line's directive plus its values.
fn line(
    namespace: &str,
    timestamp_ms: u64,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, &str, f64)],
) -> String {
    let mut v = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }
    });
    let obj = v.as_object_mut().expect("an object");
    for (k, val) in dimensions {
        obj.insert((*k).to_string(), Value::from(*val));
    }
    for (name, _, val) in metrics {
        obj.insert((*name).to_string(), json!(val));
    }
    v.to_string()
}

/// The EMF lines of `snap` for `deployment` (see the module docs).
pub fn lines(namespace: &str, deployment: &str, timestamp_ms: u64, snap: &Snapshot) -> Vec<String> {
    let max_wal = snap.slots.iter().map(|(_, b)| *b).max().unwrap_or(0);
    let max_lag = snap.consumer_lag.iter().map(|(_, l)| *l).max().unwrap_or(0);
    let mut out = vec![line(
        namespace,
        timestamp_ms,
        &[("Deployment", deployment)],
        &[
            ("MaxRetainedWalBytes", "Bytes", max_wal as f64),
            ("MaxConsumerLagEvents", "Count", max_lag as f64),
            (
                "KafkaReachable",
                "None",
                f64::from(u8::from(snap.kafka_reachable)),
            ),
            ("ConnectedStreams", "Count", snap.connected_streams as f64),
            ("ResidentBytes", "Bytes", snap.resident_bytes as f64),
        ],
    )];
    for (slot, bytes) in &snap.slots {
        out.push(line(
            namespace,
            timestamp_ms,
            &[("Deployment", deployment), ("Slot", slot)],
            &[("RetainedWalBytes", "Bytes", *bytes as f64)],
        ));
    }
    for (consumer, lag) in &snap.consumer_lag {
        out.push(line(
            namespace,
            timestamp_ms,
            &[("Deployment", deployment), ("Consumer", consumer)],
            &[("ConsumerLagEvents", "Count", *lag as f64)],
        ));
    }
    out
}

/// Where the snapshot's values come from.
pub struct Sources {
    pub metrics: Arc<Metrics>,
    pub memory: Arc<MemoryGuard>,
    pub sources: Arc<SourcesService>,
}

impl Sources {
    /// The values now.
    pub fn snapshot(&self) -> Snapshot {
        let mut slots: std::collections::BTreeMap<String, u64> = Default::default();
        for (_, slot, bytes) in self.sources.retained_wal() {
            let e = slots.entry(slot).or_default();
            *e = (*e).max(bytes);
        }
        Snapshot {
            slots: slots.into_iter().collect(),
            consumer_lag: self.metrics.consumer_lag().into_iter().collect(),
            kafka_reachable: self.metrics.kafka_reachable.get() == 1,
            connected_streams: self.metrics.connected_streams(),
            resident_bytes: self.memory.rss(),
        }
    }
}

/// Prints the EMF lines every `every` until `shutdown`.
pub fn spawn(
    namespace: String,
    deployment: String,
    every: Duration,
    from: Sources,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled() => return,
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let text: String = lines(&namespace, &deployment, now, &from.snapshot())
                .into_iter()
                .map(|l| l + "\n")
                .collect();
            // One write, so the lines are not interleaved with log lines.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks one line against the EMF specification's rules: a root `_aws` with a
    /// millisecond `Timestamp` and `CloudWatchMetrics` directives; every dimension key and
    /// metric name present at the root, dimensions as strings and metrics as numbers; at
    /// most 30 dimensions per set and 100 metrics per directive; names 1-255 characters; a
    /// unit CloudWatch knows.
    fn check_emf(l: &str) -> Value {
        let v: Value = serde_json::from_str(l).expect("one JSON object per line");
        assert!(!l.contains('\n'));
        let aws = &v["_aws"];
        assert!(aws["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        for d in aws["CloudWatchMetrics"].as_array().unwrap() {
            assert!(!d["Namespace"].as_str().unwrap().is_empty());
            for set in d["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for k in set {
                    assert!(
                        v[k.as_str().unwrap()].is_string(),
                        "dimension {k} at the root"
                    );
                }
            }
            let metrics = d["Metrics"].as_array().unwrap();
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().unwrap();
                assert!((1..=255).contains(&name.len()));
                assert!(v[name].is_number(), "metric {name} is a number at the root");
                assert!(["Bytes", "Count", "None"].contains(&m["Unit"].as_str().unwrap()));
            }
        }
        v
    }

    #[test]
    fn lines_follow_the_emf_rules_and_the_alarm_contract() {
        let snap = Snapshot {
            slots: vec![("tumbleweed_a".into(), 5 << 30), ("tumbleweed_b".into(), 7)],
            consumer_lag: vec![("billing".into(), 12), ("search".into(), 40_000)],
            kafka_reachable: true,
            connected_streams: 3,
            resident_bytes: 100 << 20,
        };
        let ls = lines("Tumbleweed", "tw-prod", 1_760_000_000_000, &snap);
        assert_eq!(ls.len(), 1 + 2 + 2);
        let head = check_emf(&ls[0]);
        // The names and dimensions the Terraform alarms use (modules/sink).
        assert_eq!(
            head["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Tumbleweed"
        );
        assert_eq!(
            head["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Deployment"]])
        );
        assert_eq!(head["Deployment"], "tw-prod");
        assert_eq!(head["MaxRetainedWalBytes"], json!((5u64 << 30) as f64));
        assert_eq!(head["MaxConsumerLagEvents"], json!(40_000.0));
        assert_eq!(head["KafkaReachable"], json!(1.0));
        assert_eq!(head["ConnectedStreams"], json!(3.0));
        let slot = check_emf(&ls[1]);
        assert_eq!(
            slot["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Deployment", "Slot"]])
        );
        assert_eq!(slot["Slot"], "tumbleweed_a");
        let consumer = check_emf(&ls[4]);
        assert_eq!(consumer["Consumer"], "search");
        assert_eq!(consumer["ConsumerLagEvents"], json!(40_000.0));

        // Nothing to report: the fixed line still says so (0, not missing data).
        let quiet = lines(
            "Tumbleweed",
            "tw-prod",
            1_760_000_000_000,
            &Snapshot::default(),
        );
        assert_eq!(quiet.len(), 1);
        let v = check_emf(&quiet[0]);
        assert_eq!(v["MaxRetainedWalBytes"], json!(0.0));
        assert_eq!(v["KafkaReachable"], json!(0.0));
    }
}
