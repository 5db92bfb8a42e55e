//! The health history behind `GET /v1/stats` and the UI's charts: events per second by topic,
//! lag by consumer, retained WAL by replication slot, and connected streams, over the last
//! 15 minutes at 5-second resolution (`--stats-window-secs`, `--stats-interval-secs`).
//!
//! Why not an external time-series database: operators should see a trend in the UI they
//! already have, with nothing else to run. Prometheus and CloudWatch (`metrics`, `emf`) remain
//! the place for long-term history and alerting.
//!
//! Design: several replicas serve behind a load balancer without stickiness, and a stream
//! lives on one of them, so a replica's own numbers are not the deployment's. Every replica
//! writes one [`Sample`] per interval to a log topic (`_tumbleweed_stats`, kept a little
//! longer than the window) and reads everyone's through the same [`CompactedLog`] reader the
//! registries use. Any replica therefore answers for the whole deployment, and a restarted
//! replica has the history at once. Samples fall into buckets of one interval; within a bucket
//! the replicas' samples are merged: streams and events sent add up, a topic's rate and a
//! consumer's lag take the largest value (two replicas reading one topic see the same rate;
//! a consumer's lag is its most lagging stream), and so does a slot's retained WAL (every
//! replica measures the same slot).
//!
//! Rendering is a pure function of the buckets, unit tested; the sampler only computes rates
//! from counters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::consumers::registry::now_ms;
use crate::kafka::compacted::CompactedLog;
use crate::kafka::hub::FeedHub;
use crate::kafka::{KafkaMeta, KafkaSettings};
use crate::metrics::Metrics;
use crate::sources::SourcesService;

/// What one replica measured over one interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_ms: u64,
    pub replica: String,
    pub connected_streams: u64,
    pub events_sent_per_sec: f64,
    /// Events read per second by topic (topics this replica has a reader for).
    #[serde(default)]
    pub topics: BTreeMap<String, f64>,
    /// Lag in events of each consumer with a live stream here (its most lagging stream).
    #[serde(default)]
    pub consumer_lag: BTreeMap<String, u64>,
    /// Retained WAL bytes by replication slot.
    #[serde(default)]
    pub retained_wal: BTreeMap<String, u64>,
}

/// Samples by bucket (start of the interval, ms) and replica.
#[derive(Debug)]
pub struct History {
    interval_ms: u64,
    window_ms: u64,
    buckets: BTreeMap<u64, BTreeMap<String, Sample>>,
}

impl History {
    pub fn new(interval: Duration, window: Duration) -> Self {
        Self {
            interval_ms: (interval.as_millis() as u64).max(1),
            window_ms: window.as_millis() as u64,
            buckets: BTreeMap::new(),
        }
    }

    /// Adds a sample (a later sample of the same replica in the same bucket replaces it) and
    /// forgets buckets that left the window before `now_ms`.
    pub fn insert(&mut self, sample: Sample, now_ms: u64) {
        let bucket = sample.t_ms - sample.t_ms % self.interval_ms;
        if bucket + self.window_ms >= now_ms {
            self.buckets
                .entry(bucket)
                .or_default()
                .insert(sample.replica.clone(), sample);
        }
        let oldest = now_ms.saturating_sub(self.window_ms);
        self.buckets = self.buckets.split_off(&oldest);
    }

    /// The history as `GET /v1/stats` answers it: one time axis at a regular interval up to
    /// the newest bucket, and one array per series on it, `null` where nothing was measured.
    pub fn render(&self, now_ms: u64) -> Value {
        let oldest = now_ms.saturating_sub(self.window_ms);
        let live: Vec<(&u64, &BTreeMap<String, Sample>)> = self.buckets.range(oldest..).collect();
        let Some((&last, _)) = live.last() else {
            return self.shape(
                Vec::new(),
                json!([]),
                json!([]),
                json!({}),
                json!({}),
                json!({}),
                0,
            );
        };
        let first = live[0].0;
        let times: Vec<u64> = (*first..=last).step_by(self.interval_ms as usize).collect();
        let at: HashMap<u64, &BTreeMap<String, Sample>> =
            live.iter().map(|(t, s)| (**t, *s)).collect();
        let merged = |t: &u64| at.get(t).map(|by_replica| by_replica.values());
        let streams: Vec<Option<u64>> = times
            .iter()
            .map(|t| merged(t).map(|s| s.map(|x| x.connected_streams).sum()))
            .collect();
        let sent: Vec<Option<f64>> = times
            .iter()
            .map(|t| merged(t).map(|s| round(s.map(|x| x.events_sent_per_sec).sum())))
            .collect();
        // One series per name seen in the window, the largest value of the replicas.
        fn series<V: Copy + PartialOrd + Serialize>(
            times: &[u64],
            at: &HashMap<u64, &BTreeMap<String, Sample>>,
            pick: impl Fn(&Sample) -> &BTreeMap<String, V>,
        ) -> Value {
            let names: BTreeSet<&String> = at
                .values()
                .flat_map(|r| r.values().flat_map(|s| pick(s).keys()))
                .collect();
            let mut out = serde_json::Map::new();
            for name in names {
                let values: Vec<Option<V>> = times
                    .iter()
                    .map(|t| {
                        at.get(t).and_then(|r| {
                            r.values().filter_map(|s| pick(s).get(name).copied()).fold(
                                None,
                                |acc: Option<V>, v| match acc {
                                    Some(a) if a >= v => Some(a),
                                    _ => Some(v),
                                },
                            )
                        })
                    })
                    .collect();
                out.insert(name.clone(), json!(values));
            }
            Value::Object(out)
        }
        let topics = series(&times, &at, |s| &s.topics);
        let topics = round_series(topics);
        let lag = series(&times, &at, |s| &s.consumer_lag);
        let wal = series(&times, &at, |s| &s.retained_wal);
        let replicas = at.get(&last).map(|r| r.len()).unwrap_or_default();
        self.shape(
            times,
            json!(streams),
            json!(sent),
            topics,
            lag,
            wal,
            replicas,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn shape(
        &self,
        times: Vec<u64>,
        streams: Value,
        sent: Value,
        topics: Value,
        lag: Value,
        wal: Value,
        replicas: usize,
    ) -> Value {
        json!({
            "interval_secs": self.interval_ms / 1000,
            "window_secs": self.window_ms / 1000,
            "replicas": replicas,
            "t_ms": times,
            "connected_streams": streams,
            "events_sent_per_sec": sent,
            "events_per_sec_by_topic": topics,
            "consumer_lag_events": lag,
            "retained_wal_bytes": wal,
        })
    }
}

/// Rates to one decimal: the chart needs no more, and the answer stays small.
fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round_series(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, arr)| {
                    let arr = arr
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|x| {
                                    x.as_f64()
                                        .map(round)
                                        .map(Value::from)
                                        .unwrap_or(Value::Null)
                                })
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default();
                    (k, Value::Array(arr))
                })
                .collect(),
        ),
        other => other,
    }
}

/// Where the sampler reads its numbers.
pub struct Probe {
    pub metrics: Arc<Metrics>,
    pub sources: Arc<SourcesService>,
    pub hub: Arc<FeedHub>,
}

/// Counters at the previous sample, to turn them into rates.
#[derive(Default)]
struct Previous {
    at: Option<Instant>,
    events_sent: u64,
    /// Per topic: the feed (by address, a reopened feed counts from 0 again) and its count.
    appended: HashMap<String, (usize, u64)>,
}

impl Probe {
    fn sample(&self, replica: &str, prev: &mut Previous) -> Sample {
        let now = Instant::now();
        let secs = prev
            .at
            .map(|t| now.duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        let rate = |delta: u64| if secs > 0.0 { delta as f64 / secs } else { 0.0 };
        let sent = self.metrics.events_sent.get();
        let events_sent_per_sec = rate(sent.saturating_sub(prev.events_sent));
        let mut topics = BTreeMap::new();
        let mut appended = HashMap::new();
        for feed in self.hub.started() {
            let id = Arc::as_ptr(&feed) as usize;
            let count = feed.appended();
            let before = match prev.appended.get(&feed.topic) {
                Some(&(same, before)) if same == id && before <= count => before,
                // A new feed: everything it read since it opened happened in this interval
                // at most (it opened after the last sample).
                _ => 0,
            };
            if prev.at.is_some() {
                topics.insert(feed.topic.clone(), rate(count - before));
            }
            appended.insert(feed.topic.clone(), (id, count));
        }
        let mut retained_wal: BTreeMap<String, u64> = BTreeMap::new();
        for (_, slot, bytes) in self.sources.retained_wal() {
            let e = retained_wal.entry(slot).or_default();
            *e = (*e).max(bytes);
        }
        *prev = Previous {
            at: Some(now),
            events_sent: sent,
            appended,
        };
        Sample {
            t_ms: now_ms(),
            replica: replica.to_string(),
            connected_streams: self.metrics.connected_streams() as u64,
            events_sent_per_sec,
            topics,
            consumer_lag: self.metrics.consumer_lag(),
            retained_wal,
        }
    }
}

/// The shared health history of the deployment.
pub struct StatsStore {
    log: Arc<CompactedLog>,
    history: Arc<Mutex<History>>,
    replica: String,
    interval: Duration,
}

impl StatsStore {
    /// Creates the stats topic if needed, loads the samples still in it and starts tailing.
    pub async fn open(
        settings: &KafkaSettings,
        meta: &KafkaMeta,
        topic: &str,
        replication: i32,
        interval: Duration,
        window: Duration,
    ) -> Result<Arc<Self>> {
        let history = Arc::new(Mutex::new(History::new(interval, window)));
        let target = history.clone();
        let apply = Box::new(move |_key: &str, value: Option<&[u8]>| {
            let Some(value) = value else { return };
            match serde_json::from_slice::<Sample>(value) {
                Ok(sample) => target.lock().insert(sample, now_ms()),
                Err(e) => tracing::warn!(error = %e, "unreadable stats sample skipped"),
            }
        });
        // Kept a little longer than the window; small segments so that retention can act.
        let retention = (window + Duration::from_secs(300)).as_millis().to_string();
        let segment = (window / 3)
            .max(Duration::from_secs(60))
            .as_millis()
            .to_string();
        let log = CompactedLog::open_with(
            settings,
            meta,
            topic,
            replication,
            &[
                ("cleanup.policy", "delete"),
                ("retention.ms", &retention),
                ("segment.ms", &segment),
            ],
            "stats history",
            apply,
        )
        .await?;
        Ok(Arc::new(Self {
            log,
            history,
            replica: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
            interval,
        }))
    }

    /// The history now (see [`History::render`]).
    pub fn view(&self) -> Value {
        self.history.lock().render(now_ms())
    }

    /// Samples every interval until `shutdown`, writes each sample to the stats topic (and
    /// keeps it locally when the write fails, so this replica's chart goes on).
    pub fn spawn_sampler(self: &Arc<Self>, probe: Probe, shutdown: CancellationToken) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut prev = Previous::default();
            // A first reading sets the counters, so the first sample's rates are real.
            probe.sample(&store.replica, &mut prev);
            let mut tick = tokio::time::interval(store.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                let sample = probe.sample(&store.replica, &mut prev);
                let bytes = serde_json::to_vec(&sample).expect("a sample serialises");
                if let Err(e) = store.log.write(&store.replica, Some(bytes)).await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not write the stats sample; kept on this replica only"
                    );
                    store.history.lock().insert(sample, now_ms());
                }
            }
        });
    }

    /// Stops the reader (at shutdown).
    pub fn shutdown(&self) {
        self.log.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: u64, replica: &str) -> Sample {
        Sample {
            t_ms,
            replica: replica.into(),
            ..Sample::default()
        }
    }

    const T0: u64 = 1_760_000_000_000;

    #[test]
    fn replicas_merge_per_bucket_and_missing_intervals_are_null() {
        let mut h = History::new(Duration::from_secs(5), Duration::from_secs(60));
        let mut a = sample(T0 + 1_000, "a");
        a.connected_streams = 3;
        a.events_sent_per_sec = 100.04;
        a.topics.insert("orders".into(), 50.0);
        a.consumer_lag.insert("billing".into(), 7);
        a.retained_wal.insert("slot_1".into(), 1_000);
        let mut b = sample(T0 + 2_500, "b");
        b.connected_streams = 2;
        b.events_sent_per_sec = 20.0;
        b.topics.insert("orders".into(), 49.0);
        b.consumer_lag.insert("billing".into(), 40);
        b.consumer_lag.insert("search".into(), 1);
        b.retained_wal.insert("slot_1".into(), 1_200);
        h.insert(a, T0 + 3_000);
        h.insert(b, T0 + 3_000);
        // Nothing in the next bucket, then replica a alone.
        let mut a2 = sample(T0 + 11_000, "a");
        a2.connected_streams = 1;
        a2.topics.insert("orders".into(), 10.0);
        h.insert(a2, T0 + 12_000);

        let v = h.render(T0 + 12_000);
        assert_eq!(v["interval_secs"], 5);
        assert_eq!(v["t_ms"], json!([T0, T0 + 5_000, T0 + 10_000]));
        assert_eq!(v["replicas"], 1, "replicas in the newest bucket");
        assert_eq!(v["connected_streams"], json!([5, null, 1]));
        assert_eq!(v["events_sent_per_sec"], json!([120.0, null, 0.0]));
        assert_eq!(
            v["events_per_sec_by_topic"]["orders"],
            json!([50.0, null, 10.0])
        );
        assert_eq!(v["consumer_lag_events"]["billing"], json!([40, null, null]));
        assert_eq!(v["consumer_lag_events"]["search"], json!([1, null, null]));
        assert_eq!(
            v["retained_wal_bytes"]["slot_1"],
            json!([1_200, null, null])
        );
    }

    #[test]
    fn the_window_forgets_old_buckets_and_a_later_sample_replaces_its_bucket() {
        let mut h = History::new(Duration::from_secs(5), Duration::from_secs(60));
        let mut old = sample(T0, "a");
        old.connected_streams = 9;
        h.insert(old, T0);
        let mut first = sample(T0 + 70_000, "a");
        first.connected_streams = 1;
        h.insert(first, T0 + 70_000);
        let mut again = sample(T0 + 71_000, "a");
        again.connected_streams = 2;
        h.insert(again, T0 + 71_000);
        let v = h.render(T0 + 71_000);
        assert_eq!(v["t_ms"], json!([T0 + 70_000]));
        assert_eq!(v["connected_streams"], json!([2]));
        // A sample older than the window is not taken at all.
        h.insert(sample(T0 + 1_000, "b"), T0 + 71_000);
        assert_eq!(h.render(T0 + 71_000)["t_ms"], json!([T0 + 70_000]));
        // Nothing at all: empty arrays, not an error.
        let empty = History::new(Duration::from_secs(5), Duration::from_secs(60)).render(T0);
        assert_eq!(empty["t_ms"], json!([]));
        assert_eq!(empty["events_per_sec_by_topic"], json!({}));
    }

    #[test]
    fn samples_round_trip_through_json() {
        let mut s = sample(T0, "r1");
        s.topics.insert("t".into(), 1.5);
        let bytes = serde_json::to_vec(&s).unwrap();
        assert_eq!(serde_json::from_slice::<Sample>(&bytes).unwrap(), s);
        // Older or newer replicas may omit maps: still readable.
        let minimal: Sample = serde_json::from_str(
            r#"{"t_ms":1,"replica":"x","connected_streams":0,"events_sent_per_sec":0}"#,
        )
        .unwrap();
        assert!(minimal.topics.is_empty());
    }
}
