//! The sink's metrics: one Prometheus registry ([`prometheus_client`]) behind `/metrics`, and
//! the delivery metrics it holds: connected streams, events and bytes sent, the delivery
//! delay, slow-consumer disconnects, catch-up readers, and per-consumer lag in events.
//!
//! Why a crate: the exposition format (HELP and TYPE lines, label-value escaping, the
//! `_total` of counters, the content type Prometheus negotiates) was written by hand in four
//! places; now each component registers typed metrics once, at wiring ([`Metrics::new`]),
//! and a scrape is one `encode` of the registry in the Prometheus text format 0.0.4.
//!
//! Counters and gauges that code updates are the crate's `Counter`/`Gauge` (an atomic),
//! updated once per written chunk, not per event, so metrics cost nothing measurable on the
//! delivery path. The one histogram, the delivery delay, is also observed once per chunk: the
//! time from the shared reader taking the chunk's oldest event from librdkafka ([`mono_us`],
//! stamped on each event) to the chunk being handed to the client's connection. It is what
//! the sink adds over a plain Kafka consumer, whatever the broker and the network do, and it
//! includes a slow client's back-pressure (a chunk waits until the previous one is taken).
//!
//! Values that only exist at scrape time (per-consumer lag computed from each live stream's
//! positions against the head of the shared topic buffers, buffered bytes, resident memory,
//! the WAL guard's last scan, the reconciler's last pass) are collectors, registered with
//! [`collect`] and written with [`live_gauge`]/[`live_gauges`].
//!
//! Names are written whole, as queries spell them (counters with their `_total`, which the
//! crate appends itself: [`register`] takes it off first), and help texts with their full
//! stop. `ops/check_refs.py` reads the names from the `register`/`live_gauge(s)` calls and the
//! label names from the `EncodeLabelSet` structs.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Metric, Registry};

use crate::kafka::feed::TopicFeed;
use crate::kafka::hub::FeedHub;
use crate::kafka::replay::ReplayStats;
use crate::limits::StreamLimits;
use crate::memory::MemoryGuard;
use crate::sources::SourcesService;

/// The content type of a scrape: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Streams = Arc<Mutex<HashMap<u64, Arc<StreamStats>>>>;

/// The delivery metrics, and the registry `/metrics` encodes.
pub struct Metrics {
    pub events_sent: Counter,
    pub bytes_sent: Counter,
    pub slow_disconnects: Counter,
    /// Whether the last Kafka probe (every 10 s, see `server.rs`) got an answer: 1 or 0.
    pub kafka_reachable: Gauge,
    /// Kafka probes that got no answer since the start.
    pub kafka_probe_failures: Counter,
    /// Seconds from the reader's receipt of a chunk's oldest event to the chunk's hand-off to
    /// the connection (see the module doc); observe with [`Metrics::delivered`].
    delivery_delay: Histogram,
    next_stream: AtomicU64,
    streams: Streams,
    registry: Registry,
}

/// The other components `/metrics` reports on, registered at wiring (`server.rs`).
pub struct Parts<'a> {
    pub hub: &'a Arc<FeedHub>,
    pub replay: &'a ReplayStats,
    pub limits: &'a StreamLimits,
    pub memory: &'a Arc<MemoryGuard>,
    pub sources: &'a Arc<SourcesService>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabels {
    consumer: String,
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

/// Buckets of the delivery delay (seconds): fine below a millisecond, where the sink's own
/// work is, and up to 10 s for streams held back by their clients.
const DELIVERY_DELAY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Microseconds on a monotonic clock that starts with the process; never 0, so 0 can mean
/// "not measured". Events carry it as 8 bytes where an `Instant` would take 16.
pub fn mono_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1
}

impl Default for Metrics {
    /// The delivery metrics alone (tests, benches).
    fn default() -> Self {
        Self::build(None)
    }
}

impl Metrics {
    /// The delivery metrics, with every other component's metrics in the same registry.
    pub fn new(parts: Parts) -> Self {
        Self::build(Some(parts))
    }

    /// A chunk whose oldest live event was received at `oldest_us` ([`mono_us`]) was handed to
    /// its connection just now.
    pub fn delivered(&self, oldest_us: u64) {
        let delay_us = mono_us().saturating_sub(oldest_us);
        self.delivery_delay.observe(delay_us as f64 / 1e6);
    }

    fn build(parts: Option<Parts>) -> Self {
        let mut m = Self {
            events_sent: Counter::default(),
            bytes_sent: Counter::default(),
            slow_disconnects: Counter::default(),
            kafka_reachable: Gauge::default(),
            kafka_probe_failures: Counter::default(),
            delivery_delay: Histogram::new(DELIVERY_DELAY_BUCKETS),
            next_stream: AtomicU64::new(0),
            streams: Streams::default(),
            registry: Registry::default(),
        };
        let r = &mut m.registry;
        let streams = m.streams.clone();
        collect(r, move |enc| {
            live_gauge(
                enc,
                "tumbleweed_sse_connected_streams",
                "Live SSE streams.",
                streams.lock().len() as u64,
            )
        });
        register(
            r,
            "tumbleweed_sse_events_sent_total",
            "Change events written to SSE streams.",
            m.events_sent.clone(),
        );
        register(
            r,
            "tumbleweed_sse_bytes_sent_total",
            "Bytes written to SSE streams.",
            m.bytes_sent.clone(),
        );
        register(
            r,
            "tumbleweed_kafka_reachable",
            "1 when the last metadata request to Kafka (every 10 s) was answered within 5 s, else 0.",
            m.kafka_reachable.clone(),
        );
        register(
            r,
            "tumbleweed_kafka_probe_failures_total",
            "Kafka probes (metadata requests every 10 s) that got no answer within 5 s.",
            m.kafka_probe_failures.clone(),
        );
        register(
            r,
            "tumbleweed_sse_slow_disconnects_total",
            "Streams ended because they fell too far behind.",
            m.slow_disconnects.clone(),
        );
        register(
            r,
            "tumbleweed_sse_delivery_delay_seconds",
            "Time from the sink's Kafka reader receiving a chunk's oldest event to the chunk's hand-off to the client's connection, per chunk (live events from the shared buffer; replayed history is not counted).",
            m.delivery_delay.clone(),
        );
        let streams = m.streams.clone();
        collect(r, move |enc| {
            live_gauges(
                enc,
                "tumbleweed_consumer_lag_events",
                "Events between a consumer's live stream and the head of its topics (largest stream).",
                lag_by_consumer(&streams)
                    .into_iter()
                    .map(|(consumer, lag)| (ConsumerLabels { consumer }, lag)),
            )
        });
        if let Some(parts) = parts {
            register_parts(r, parts);
        }
        m
    }

    /// The registry in the Prometheus text format, as `/metrics` answers it.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }

    /// The `/metrics` answer.
    pub fn scrape(&self) -> axum::response::Response {
        use axum::response::IntoResponse;
        (
            [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
            self.encode(),
        )
            .into_response()
    }

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
        lag_by_consumer(&self.streams)
    }
}

fn lag_by_consumer(streams: &Streams) -> BTreeMap<String, u64> {
    let streams: Vec<_> = streams.lock().values().cloned().collect();
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

/// The metrics of the shared buffers, the replay pool, the stream limits, the memory guard
/// and the sources.
fn register_parts(r: &mut Registry, p: Parts) {
    let s = p.replay;
    register(
        r,
        "tumbleweed_catchup_readers",
        "Pooled Kafka readers replaying history older than the shared buffers (busy or parked).",
        s.readers.clone(),
    );
    register(
        r,
        "tumbleweed_catchup_reader_waits_total",
        "Replay reads that waited because every pooled reader was busy.",
        s.reader_waits.clone(),
    );
    register(
        r,
        "tumbleweed_replay_chunks_read_total",
        "Replay chunks read from Kafka.",
        s.chunks_read.clone(),
    );
    register(
        r,
        "tumbleweed_replay_chunks_shared_total",
        "Replay chunk requests answered from the cache or by a read already under way.",
        s.chunks_shared.clone(),
    );
    register(
        r,
        "tumbleweed_replay_cache_bytes",
        "Bytes of replay chunks held in the cache.",
        s.cache_bytes.clone(),
    );
    let hub = p.hub.clone();
    collect(r, move |enc| {
        let feeds = hub.started();
        live_gauge(
            enc,
            "tumbleweed_topic_readers",
            "Shared topic readers open.",
            feeds.len() as u64,
        )?;
        live_gauge(
            enc,
            "tumbleweed_buffer_bytes",
            "Bytes of events held by the shared buffers.",
            feeds.iter().map(|f| f.buffered_bytes() as u64).sum::<u64>(),
        )
    });
    register(
        r,
        "tumbleweed_buffer_budget_bytes",
        "The global byte budget of the shared buffers.",
        ConstGauge::new(p.hub.limits().bytes_total as u64),
    );
    register(
        r,
        "tumbleweed_sse_streams_refused_total",
        "Streams refused by the stream limits (429/503).",
        p.limits.refused.clone(),
    );
    let memory = p.memory.clone();
    collect(r, move |enc| {
        live_gauge(
            enc,
            "tumbleweed_process_resident_bytes",
            "Resident memory of the sink process (last 100 ms sample).",
            memory.rss() as u64,
        )
    });
    if let Some(limit) = p.memory.limit() {
        register(
            r,
            "tumbleweed_memory_limit_bytes",
            "The configured memory limit (TUMBLEWEED_MEMORY_LIMIT).",
            ConstGauge::new(limit as u64),
        );
    }
    register(
        r,
        "tumbleweed_memory_pressure_samples_total",
        "100 ms samples taken above 85 % of the memory limit (new streams refused, replay reads one at a time).",
        p.memory.pressured_samples.clone(),
    );
    p.sources.register_metrics(r);
}

/// Registers `metric` under its exported `name` (a counter's with `_total`, which the crate
/// adds itself) and `help` (with its full stop, which the crate adds itself too).
pub fn register(r: &mut Registry, name: &'static str, help: &'static str, metric: impl Metric) {
    let name = match metric.metric_type() {
        MetricType::Counter => name
            .strip_suffix("_total")
            .unwrap_or_else(|| panic!("counter {name} must end with _total")),
        _ => name,
    };
    r.register(name, help.strip_suffix('.').unwrap_or(help), metric);
}

/// Registers values read at scrape time: `f` writes them with [`live_gauge`]/[`live_gauges`].
pub fn collect<F>(r: &mut Registry, f: F)
where
    F: Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static,
{
    r.register_collector(Box::new(ScrapeTime(f)));
}

struct ScrapeTime<F>(F);

impl<F> fmt::Debug for ScrapeTime<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScrapeTime")
    }
}

impl<F> Collector for ScrapeTime<F>
where
    F: Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        (self.0)(&mut encoder)
    }
}

/// Writes one gauge without labels, read at scrape time.
pub fn live_gauge(
    enc: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    value: impl prometheus_client::encoding::EncodeGaugeValue,
) -> fmt::Result {
    let gauge = ConstGauge::new(value);
    gauge.encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// Writes one gauge family, read at scrape time: a sample per label set (HELP and TYPE also
/// when there is none).
pub fn live_gauges<L, V>(
    enc: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    rows: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    V: prometheus_client::encoding::EncodeGaugeValue,
{
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// `registry` in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

/// What `register_metrics` puts in a registry of its own, encoded (tests).
pub fn encode_with(f: impl FnOnce(&mut Registry)) -> String {
    let mut r = Registry::default();
    f(&mut r);
    encode(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text is the one the hand-written exposition produced: same names, types and help,
    /// counters with `_total` on every line.
    #[test]
    fn delivery_metrics_keep_their_exposition() {
        let m = Metrics::default();
        m.events_sent.inc_by(5);
        m.kafka_reachable.set(1);
        let out = m.encode();
        for want in [
            "# HELP tumbleweed_sse_connected_streams Live SSE streams.\n# TYPE tumbleweed_sse_connected_streams gauge\ntumbleweed_sse_connected_streams 0\n",
            "# HELP tumbleweed_sse_events_sent_total Change events written to SSE streams.\n# TYPE tumbleweed_sse_events_sent_total counter\ntumbleweed_sse_events_sent_total 5\n",
            "# HELP tumbleweed_kafka_reachable 1 when the last metadata request to Kafka (every 10 s) was answered within 5 s, else 0.\n# TYPE tumbleweed_kafka_reachable gauge\ntumbleweed_kafka_reachable 1\n",
            "# HELP tumbleweed_consumer_lag_events Events between a consumer's live stream and the head of its topics (largest stream).\n# TYPE tumbleweed_consumer_lag_events gauge\n",
        ] {
            assert!(out.contains(want), "{want:?} not in:\n{out}");
        }
        assert!(
            !out.contains("# EOF"),
            "Prometheus text 0.0.4, not OpenMetrics"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let out = encode_with(|r| {
            collect(r, |enc| {
                live_gauges(
                    enc,
                    "tumbleweed_consumer_lag_events",
                    "Lag.",
                    [(
                        ConsumerLabels {
                            consumer: "a\"b\\c\nd".into(),
                        },
                        1u64,
                    )],
                )
            })
        });
        assert!(
            out.contains("tumbleweed_consumer_lag_events{consumer=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{out}"
        );
    }
}
