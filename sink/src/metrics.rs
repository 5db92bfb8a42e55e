//! Prometheus metrics of the sink: connected streams, events and bytes sent, slow-consumer
//! disconnects, catch-up readers, and per-consumer lag in events (computed at scrape time
//! from each live stream's positions against the head of the shared topic buffers).
//!
//! Counters are plain atomics updated once per written chunk, not per event, so metrics cost
//! nothing measurable on the delivery path.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::kafka::feed::TopicFeed;
use crate::kafka::replay::ReplayStats;

#[derive(Default)]
pub struct Metrics {
    pub events_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub slow_disconnects: AtomicU64,
    /// Whether the last Kafka probe (every 10 s, see `server.rs`) got an answer: 1 or 0.
    pub kafka_reachable: AtomicU64,
    /// Kafka probes that got no answer since the start.
    pub kafka_probe_failures: AtomicU64,
    next_stream: AtomicU64,
    streams: Mutex<HashMap<u64, Arc<StreamStats>>>,
}

/// What the metrics know about one live stream.
pub struct StreamStats {
    /// Consumer name, or `None` for an operator's live tail.
    pub consumer: Option<String>,
    pub feeds: Vec<Arc<TopicFeed>>,
    /// Next offsets per topic and partition, updated after every chunk.
    pub positions: Mutex<Vec<Vec<i64>>>,
    /// When the stream opened (ms since the epoch).
    pub since_ms: u64,
    /// Who opened it, as far as this server can tell.
    pub client: ClientAddr,
}

/// Who opened a stream (as received: behind a load balancer only the last `X-Forwarded-For`
/// entry can be trusted), and a live stream as `GET /v1/consumers/{name}` shows it: the API's
/// types.
pub use tumbleweed_api::consumers::{ClientAddr, StreamView};

impl StreamStats {
    /// Events between this stream's positions and the heads of its topics.
    pub fn lag(&self) -> u64 {
        let positions = self.positions.lock();
        self.feeds
            .iter()
            .zip(positions.iter())
            .map(|(feed, pos)| {
                pos.iter()
                    .enumerate()
                    .filter(|(p, _)| *p < feed.partition_count())
                    .map(|(p, &o)| (feed.head(p) - o).max(0) as u64)
                    .sum::<u64>()
            })
            .sum()
    }
}

/// Keeps a stream registered while it lives.
pub struct StreamGuard {
    metrics: Arc<Metrics>,
    id: u64,
    pub stats: Arc<StreamStats>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.metrics.streams.lock().remove(&self.id);
    }
}

impl Metrics {
    pub fn register(self: &Arc<Self>, stats: StreamStats) -> StreamGuard {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(stats);
        self.streams.lock().insert(id, stats.clone());
        StreamGuard {
            metrics: self.clone(),
            id,
            stats,
        }
    }

    pub fn connected_streams(&self) -> usize {
        self.streams.lock().len()
    }

    /// The live streams of `consumer` on this replica, oldest first.
    pub fn streams_of(&self, consumer: &str) -> Vec<StreamView> {
        let streams: Vec<_> = self
            .streams
            .lock()
            .values()
            .filter(|s| s.consumer.as_deref() == Some(consumer))
            .cloned()
            .collect();
        let mut out: Vec<StreamView> = streams
            .iter()
            .map(|s| StreamView {
                since_ms: s.since_ms,
                client: s.client.clone(),
                lag_events: s.lag(),
            })
            .collect();
        out.sort_by_key(|v| v.since_ms);
        out
    }

    /// Lag (events) of each consumer with live streams: the largest of its streams.
    pub fn consumer_lag(&self) -> BTreeMap<String, u64> {
        let streams: Vec<_> = self.streams.lock().values().cloned().collect();
        let mut out = BTreeMap::new();
        for s in streams {
            if let Some(c) = &s.consumer {
                let lag = s.lag();
                let e = out.entry(c.clone()).or_insert(0);
                *e = (*e).max(lag);
            }
        }
        out
    }

    /// Prometheus text exposition of the delivery metrics.
    pub fn render(&self, out: &mut String, replay: &ReplayStats) {
        let mut gauge = |name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        gauge(
            "tumbleweed_sse_connected_streams",
            "Live SSE streams.",
            "gauge",
            self.connected_streams().to_string(),
        );
        gauge(
            "tumbleweed_sse_events_sent_total",
            "Change events written to SSE streams.",
            "counter",
            self.events_sent.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tumbleweed_sse_bytes_sent_total",
            "Bytes written to SSE streams.",
            "counter",
            self.bytes_sent.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tumbleweed_kafka_reachable",
            "1 when the last metadata request to Kafka (every 10 s) was answered within 5 s, else 0.",
            "gauge",
            self.kafka_reachable.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tumbleweed_kafka_probe_failures_total",
            "Kafka probes (metadata requests every 10 s) that got no answer within 5 s.",
            "counter",
            self.kafka_probe_failures
                .load(Ordering::Relaxed)
                .to_string(),
        );
        gauge(
            "tumbleweed_sse_slow_disconnects_total",
            "Streams ended because they fell too far behind.",
            "counter",
            self.slow_disconnects.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tumbleweed_catchup_readers",
            "Pooled Kafka readers replaying history older than the shared buffers (busy or parked).",
            "gauge",
            replay.readers.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tumbleweed_catchup_reader_waits_total",
            "Replay reads that waited because every pooled reader was busy.",
            "counter",
            replay.reader_waits.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tumbleweed_replay_chunks_read_total",
            "Replay chunks read from Kafka.",
            "counter",
            replay.chunks_read.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tumbleweed_replay_chunks_shared_total",
            "Replay chunk requests answered from the cache or by a read already under way.",
            "counter",
            replay.chunks_shared.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "tumbleweed_replay_cache_bytes",
            "Bytes of replay chunks held in the cache.",
            "gauge",
            replay.cache_bytes.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP tumbleweed_consumer_lag_events Events between a consumer's live stream and the head of its topics (largest stream).\n# TYPE tumbleweed_consumer_lag_events gauge"
        );
        for (consumer, lag) in self.consumer_lag() {
            let _ = writeln!(
                out,
                "tumbleweed_consumer_lag_events{{consumer=\"{consumer}\"}} {lag}"
            );
        }
    }
}
