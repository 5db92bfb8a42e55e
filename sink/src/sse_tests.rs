//! In-process tests of SSE delivery with a fake feed: the stream logic (framing, ids, resume,
//! filters, the end of a stream) run against a [`TopicFeed`] that the test fills by hand
//! instead of a Kafka reader, through [`respond`] and the response body a client would read.
//!
//! No broker is needed: the hub and the replay pool are built against an address nothing
//! listens on and are never asked for anything, because every position here is inside the
//! feed's buffer. What Kafka adds (replay, retention gaps, restarts) is covered on the real
//! stack by sse_delivery.rs, sse_bounds.rs and broker_faults.rs.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::SlowConsumerPolicy;
use crate::event::{self, ChangeEvent};
use crate::filter::{self, FilterRule};
use crate::kafka::feed::BufferLimits;
use crate::kafka::replay::ReplayLimits;
use crate::kafka::{KafkaMeta, KafkaSettings};

const TOPIC: &str = "shop.public.orders";

fn context() -> Arc<SseContext> {
    // Port 9 (discard): nothing answers, and nothing here asks.
    let kafka = KafkaSettings {
        bootstrap: "127.0.0.1:9".into(),
        fetch_wait_max_ms: 50,
    };
    let meta = KafkaMeta::new(&kafka).unwrap();
    let hub = FeedHub::start(
        kafka.clone(),
        meta.clone(),
        BufferLimits::new(1000, 1 << 20, 8 << 20),
    )
    .unwrap();
    Arc::new(SseContext {
        hub: Arc::new(hub),
        metrics: Arc::new(Metrics::default()),
        settings: SseSettings {
            keepalive: Duration::from_secs(30),
            retry_ms: 1500,
            max_chunk_events: 3,
            max_chunk_bytes: 64 << 10,
            max_lag_events: 1_000_000,
            slow_policy: SlowConsumerPolicy::Disconnect,
        },
        shutdown: CancellationToken::new(),
        replay: ReplayPool::new(kafka, meta, ReplayLimits::from_budget(8 << 20, 1)),
        memory: MemoryGuard::new(None),
    })
}

/// A Debezium insert of row `id` at `offset` of partition `p`.
fn insert(p: i32, offset: i64, id: i64) -> ChangeEvent {
    let value = json!({
        "before": null, "after": {"id": id, "status": if id % 2 == 0 { "paid" } else { "new" }},
        "op": "c", "ts_ms": 1,
        "source": {"schema": "public", "table": "orders", "lsn": offset},
    });
    let key = json!({"id": id});
    event::from_record(
        TOPIC,
        p,
        offset,
        1,
        Some(key.to_string().as_bytes()),
        Some(value.to_string().as_bytes()),
    )
    .expect("a Debezium record")
}

/// A feed of `partitions` partitions holding `per_partition` inserts each (ids `p*1000+offset`).
fn feed(partitions: usize, per_partition: i64) -> Arc<TopicFeed> {
    let limits = Arc::new(BufferLimits::new(1000, 1 << 20, 8 << 20));
    let feed = Arc::new(TopicFeed::new(TOPIC, &vec![0; partitions], limits));
    append(&feed, partitions, 0..per_partition);
    feed
}

fn append(feed: &TopicFeed, partitions: usize, offsets: std::ops::Range<i64>) {
    let mut batch: Vec<ChangeEvent> = (0..partitions as i32)
        .flat_map(|p| {
            offsets
                .clone()
                .map(move |o| insert(p, o, p as i64 * 1000 + o))
        })
        .collect();
    feed.append(&mut batch, &mut vec![None; partitions]);
    feed.notify();
}

struct Client {
    body: axum::body::BodyDataStream,
    text: String,
}

impl Client {
    fn open(
        ctx: &Arc<SseContext>,
        feed: &Arc<TopicFeed>,
        spec: impl FnOnce(&mut StreamSpec),
    ) -> Self {
        let mut s = StreamSpec {
            consumer: Some("test".into()),
            topics: vec![TOPIC.into()],
            feeds: vec![feed.clone()],
            filters: vec![None],
            positions: vec![vec![0; feed.partition_count()]],
            closed: CancellationToken::new(),
            preamble: Vec::new(),
            permit: None,
            client: Default::default(),
        };
        spec(&mut s);
        let response = respond(ctx.clone(), s);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            body: response.into_body().into_data_stream(),
            text: String::new(),
        }
    }

    /// Reads until `done` holds for the frames so far (or fails after 5 s).
    async fn until(&mut self, done: impl Fn(&[Frame]) -> bool) -> Vec<Frame> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let frames = frames(&self.text);
            if done(&frames) {
                return frames;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(chunk)) => self
                    .text
                    .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
                Ok(None) => return frames,
                Err(_) => panic!("no such frames within 5 s; got:\n{}", self.text),
            }
        }
    }

    /// Whether the body ended (the server closed the stream).
    async fn ended(&mut self) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.body.next()).await {
                Ok(Some(chunk)) => self
                    .text
                    .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// One SSE frame as a client parses it: `id`, `event`, `data` and comments.
#[derive(Debug, Clone, Default)]
struct Frame {
    id: Option<String>,
    data: Option<Value>,
    comment: Option<String>,
    retry: Option<u64>,
}

fn frames(text: &str) -> Vec<Frame> {
    let complete = &text[..text.rfind("\n\n").map_or(0, |i| i + 2)];
    complete
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let mut frame = Frame::default();
            for line in f.lines() {
                if let Some(c) = line.strip_prefix(": ") {
                    frame.comment = Some(c.to_string());
                } else if let Some(v) = line.strip_prefix("id: ") {
                    frame.id = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    frame.data = Some(serde_json::from_str(v).unwrap());
                } else if let Some(v) = line.strip_prefix("retry: ") {
                    frame.retry = Some(v.parse().unwrap());
                }
            }
            frame
        })
        .collect()
}

fn ids_of(frames: &[Frame]) -> Vec<i64> {
    frames
        .iter()
        .filter_map(|f| f.data.as_ref())
        .filter_map(|d| d["after"]["id"].as_i64())
        .collect()
}

fn positions(id: &str) -> Vec<Vec<i64>> {
    crate::cursor::decode(id, crate::cursor::fingerprint(&[TOPIC.to_string()]), 1).unwrap()
}

#[tokio::test]
async fn delivers_in_order_with_resumable_ids() {
    let ctx = context();
    let feed = feed(2, 5);
    let mut c = Client::open(&ctx, &feed, |_| {});
    let got = c.until(|f| ids_of(f).len() == 10).await;
    assert_eq!(
        got[0].retry,
        Some(1500),
        "the first frame sets the retry delay"
    );
    // Per partition, in offset order.
    let ids = ids_of(&got);
    for p in 0..2 {
        let of_p: Vec<i64> = ids.iter().copied().filter(|i| i / 1000 == p).collect();
        assert_eq!(of_p, (0..5).map(|o| p * 1000 + o).collect::<Vec<_>>());
    }
    // The last id is every partition's next offset: a resume from it reads nothing again.
    let last = got.iter().rev().find_map(|f| f.id.clone()).unwrap();
    assert_eq!(positions(&last), vec![vec![5, 5]]);
    // Every event frame's id covers the events up to it.
    let mut seen = [0i64; 2];
    for f in &got {
        if let (Some(id), Some(d)) = (&f.id, &f.data) {
            seen[d["partition"].as_u64().unwrap() as usize] = d["offset"].as_i64().unwrap() + 1;
            assert_eq!(positions(id)[0], seen.to_vec());
        }
    }
}

#[tokio::test]
async fn resumes_from_a_position_and_follows_new_events() {
    let ctx = context();
    let feed = feed(2, 5);
    let mut c = Client::open(&ctx, &feed, |s| s.positions = vec![vec![3, 5]]);
    let got = c.until(|f| ids_of(f).len() == 2).await;
    assert_eq!(ids_of(&got), vec![3, 4], "only what follows the position");
    append(&feed, 2, 5..7);
    let got = c.until(|f| ids_of(f).len() == 6).await;
    let mut live = ids_of(&got)[2..].to_vec();
    live.sort();
    assert_eq!(live, vec![5, 6, 1005, 1006]);
}

#[tokio::test]
async fn filtered_out_events_move_the_id_without_an_event() {
    let ctx = context();
    let feed = feed(1, 6);
    let rule = FilterRule {
        predicate: Some("after.status == 'paid'".into()),
        ..Default::default()
    };
    let compiled = filter::compile(TOPIC, &rule, None).unwrap();
    let mut c = Client::open(&ctx, &feed, |s| s.filters = vec![Some(compiled.clone())]);
    let got = c.until(|f| ids_of(f).len() == 3).await;
    assert_eq!(ids_of(&got), vec![0, 2, 4]);
    // Odd rows only from here on: nothing is dispatched, but the id moves past them.
    let mut batch = vec![insert(0, 6, 7), insert(0, 7, 9)];
    feed.append(&mut batch, &mut [None]);
    feed.notify();
    let got = c
        .until(|f| {
            f.iter().any(|f| {
                f.data.is_none()
                    && f.id
                        .as_deref()
                        .is_some_and(|id| positions(id) == vec![vec![8]])
            })
        })
        .await;
    assert_eq!(ids_of(&got), vec![0, 2, 4], "no odd row was delivered");
}

#[tokio::test]
async fn a_deleted_consumer_or_a_shutdown_ends_the_stream_with_a_notice() {
    for (case, by_shutdown) in [("deleted", false), ("shutdown", true)] {
        let ctx = context();
        let feed = feed(1, 1);
        let closed = CancellationToken::new();
        let mut c = Client::open(&ctx, &feed, |s| s.closed = closed.clone());
        c.until(|f| ids_of(f).len() == 1).await;
        if by_shutdown {
            ctx.shutdown.cancel();
        } else {
            closed.cancel();
        }
        assert!(c.ended().await, "{case}: the stream did not end");
        let notice = frames(&c.text).last().unwrap().comment.clone().unwrap();
        let expected = if by_shutdown {
            "server shutting down"
        } else {
            "consumer deleted"
        };
        assert!(notice.starts_with(expected), "{case}: {notice}");
    }
}

#[tokio::test]
async fn a_preamble_is_written_before_any_event() {
    let ctx = context();
    let feed = feed(1, 2);
    let reset = reset_frame("cursor", TOPIC, 0, 10, 0);
    let mut c = Client::open(&ctx, &feed, |s| s.preamble = vec![reset.clone()]);
    let got = c.until(|f| ids_of(f).len() == 2).await;
    let reset_at = c.text.find("event: reset").expect("the reset frame");
    assert!(reset_at < c.text.find("\"after\"").unwrap(), "{}", c.text);
    let first_data = got.iter().find_map(|f| f.data.clone()).unwrap();
    assert!(
        first_data.get("after").is_none(),
        "the reset comes first: {first_data}"
    );
    assert_eq!(ids_of(&got), vec![0, 1]);
}

/// The value of `tumbleweed_sse_delivery_delay_seconds{suffix}` in a scrape.
fn delay_metric(ctx: &SseContext, suffix: &str) -> f64 {
    let name = format!("tumbleweed_sse_delivery_delay_seconds{suffix} ");
    let text = ctx.metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(&name))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn chunks_report_the_delay_since_the_reader_received_their_oldest_event() {
    let ctx = context();
    // Events without a receipt time (history read for a replay) are not measured.
    let feed = feed(1, 3);
    let mut c = Client::open(&ctx, &feed, |_| {});
    c.until(|f| ids_of(f).len() == 3).await;
    assert_eq!(delay_metric(&ctx, "_count"), 0.0);

    // Live events the reader received 30 ms before the stream could take them.
    crate::metrics::mono_us();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let received = crate::metrics::mono_us();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut batch: Vec<ChangeEvent> = (3..5)
        .map(|o| {
            let mut e = insert(0, o, o);
            e.received_us = received;
            e
        })
        .collect();
    feed.append(&mut batch, &mut [None]);
    feed.notify();
    c.until(|f| ids_of(f).len() == 5).await;
    let chunks = delay_metric(&ctx, "_count");
    assert!(chunks >= 1.0, "one observation per chunk with live events");
    assert_eq!(
        delay_metric(&ctx, "_bucket{le=\"0.025\"}"),
        0.0,
        "the delay runs from the receipt, 30 ms before"
    );
    let sum = delay_metric(&ctx, "_sum");
    assert!(sum >= 0.03 * chunks, "sum {sum} over {chunks} chunks");
    assert!(sum < 5.0 * chunks, "sum {sum} over {chunks} chunks");
}
