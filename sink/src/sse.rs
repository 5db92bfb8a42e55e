//! SSE delivery: each connection's response body turns buffered change events into
//! `text/event-stream` frames, batched into chunks. The stream's logic is a future that the
//! body itself polls whenever the connection asks for the next chunk, with a slot of one chunk
//! between them: no task or channel per stream (an idle stream holds less memory), one hand-off
//! fewer between an event's arrival and its write (less latency), and a client that reads
//! slowly slows only its own connection, since the connection stops asking while the socket is
//! full. A client that accepts no bytes at all is closed by the connection's write timeout.
//! The connection is usually the lean one of `conn.rs` (a stream opened on its own connection),
//! else hyper's; the body is the same for both.
//!
//! Frames are written directly rather than through a generic SSE encoder because the JSON of
//! each event is shared, pre-serialised bytes; only the `id:` (the cursor) is per stream.
//! - a stream opens with `retry:`; idle streams get a `: keepalive` comment;
//! - every event carries `id:` (cursor after that event) and one `data:` line of JSON;
//! - a position older than the broker's retention produces `event: gap` stating what was
//!   lost, then delivery continues at the oldest retained event — never a silent skip;
//! - a stream that had reached the head and falls more than `max_lag` events behind is ended
//!   with a final comment (policy `disconnect`) and resumes later from its cursor; with
//!   policy `catch-up` it is served from the shared replay instead;
//! - a partition whose log restarted under the stream (topic deleted and recreated, or
//!   truncated) produces `event: reset` stating where the stream was and where it continues;
//!   partitions added to a topic are delivered from their beginning;
//! - history older than the shared buffer is replayed from chunks that every stream replaying
//!   the same history shares (`kafka/replay.rs`); while the read runs the stream waits, with
//!   keepalives, and loses nothing;
//! - deleting the consumer or shutting the server down ends the stream with a comment.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Result;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::sync::CancellationToken;

use crate::config::SlowConsumerPolicy;
use crate::cursor;
use crate::event::ChangeEvent;
use crate::filter::CompiledRule;
use crate::kafka::feed::{Read, TopicFeed};
use crate::kafka::hub::FeedHub;
use crate::kafka::replay::ReplayPool;
use crate::limits::StreamPermit;
use crate::memory::MemoryGuard;
use crate::metrics::{ClientAddr, Metrics, StreamStats};

/// Delivery settings, from the configuration.
#[derive(Debug, Clone)]
pub struct SseSettings {
    pub keepalive: Duration,
    pub retry_ms: u64,
    pub max_chunk_events: usize,
    pub max_chunk_bytes: usize,
    pub max_lag_events: u64,
    pub slow_policy: SlowConsumerPolicy,
}

/// What one stream delivers and from where.
pub struct StreamSpec {
    /// Consumer name (`None` for an operator's live tail).
    pub consumer: Option<String>,
    /// Sorted topic names; `feeds[i]` reads `topics[i]`.
    pub topics: Vec<String>,
    pub feeds: Vec<Arc<TopicFeed>>,
    /// Per topic (`filters[i]` for `topics[i]`): the consumer's filter, `None` delivers every
    /// event as it is.
    pub filters: Vec<Option<Arc<CompiledRule>>>,
    /// Next offset per topic and partition.
    pub positions: Vec<Vec<i64>>,
    /// Cancelled when the consumer is deleted.
    pub closed: CancellationToken,
    /// Frames written before any event (e.g. a reset found while computing positions).
    pub preamble: Vec<String>,
    /// The stream's place under the stream limits, released when it ends.
    pub permit: Option<StreamPermit>,
    /// Where the stream came from (shown on the consumer's page).
    pub client: ClientAddr,
}

/// Shared context of all streams.
pub struct SseContext {
    pub hub: Arc<FeedHub>,
    pub metrics: Arc<Metrics>,
    pub settings: SseSettings,
    pub shutdown: CancellationToken,
    /// Shared replay of history older than the buffers.
    pub replay: Arc<ReplayPool>,
    /// Near the memory limit, streams write smaller chunks (less held in flight).
    pub memory: Arc<MemoryGuard>,
}

/// Returns the `text/event-stream` response whose body runs the stream.
pub fn respond(ctx: Arc<SseContext>, spec: StreamSpec) -> Response {
    let outbox = Arc::new(Outbox::default());
    let mut stream = Stream::new(ctx, spec, outbox.clone());
    let run = async move {
        if let Err(e) = stream.run().await {
            tracing::warn!(error = format!("{e:#}"), "SSE stream ended with an error");
            stream.out.clear();
            stream.out.put_slice(format!(": error: {e}\n\n").as_bytes());
            stream.flush().await;
        }
    };
    let body = Body::from_stream(SseBody {
        run: Some(Box::pin(run)),
        outbox,
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// The hand-off between a stream's future and its body: one chunk.
///
/// Waiting for room needs no waker: the slot is only ever full while the body is polling the
/// stream's future, and the body empties it before that poll returns, so the next poll (when
/// the connection wants the next chunk) finds room.
#[derive(Default)]
struct Outbox(parking_lot::Mutex<Option<Bytes>>);

impl Outbox {
    fn take(&self) -> Option<Bytes> {
        self.0.lock().take()
    }

    /// Puts `chunk` in the slot once it is empty.
    async fn put(&self, chunk: Bytes) {
        std::future::poll_fn(|_| {
            if self.0.lock().is_none() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        *self.0.lock() = Some(chunk);
    }
}

/// The response body: polls the stream's future, then hands the connection what it put in the
/// slot.
/// Dropped when the client goes away (or the write timeout closes the connection), which drops
/// the stream and releases its place under the limits.
struct SseBody {
    /// `None` once the stream has ended.
    run: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    outbox: Arc<Outbox>,
}

impl futures::Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(run) = self.run.as_mut() {
            if run.as_mut().poll(cx).is_ready() {
                self.run = None;
            }
        }
        match self.outbox.take() {
            Some(chunk) => Poll::Ready(Some(Ok(chunk))),
            None if self.run.is_none() => Poll::Ready(None),
            // The stream's future registered what it waits for (events, a timer, the end).
            None => Poll::Pending,
        }
    }
}

struct Stream {
    ctx: Arc<SseContext>,
    spec: StreamSpec,
    outbox: Arc<Outbox>,
    fingerprint: u32,
    /// Per topic and partition: the generation of the partition's log that the position
    /// belongs to (see [`Read::Restarted`]).
    generations: Vec<Vec<u64>>,
    reached_head: bool,
    stats: Option<Arc<StreamStats>>,
    out: BytesMut,
    events: Vec<Arc<ChangeEvent>>,
    /// Average size of a delivered event's JSON (moving average), to size chunks in bytes.
    avg_event_bytes: usize,
    scratch: Vec<u8>,
    /// The cursor of the current positions, base64url (see [`Stream::encode_id`]).
    id: Vec<u8>,
    /// Filtered-out events moved the positions past the last `id:` written: the next chunk
    /// ends with an `id:`-only frame, so a resume does not read them again.
    id_behind: bool,
    /// When the oldest live event in `out` was received from Kafka (`metrics::mono_us`), 0
    /// when `out` holds none: the chunk's delivery delay is measured from it.
    oldest_us: u64,
}

impl Stream {
    fn new(ctx: Arc<SseContext>, spec: StreamSpec, outbox: Arc<Outbox>) -> Self {
        let fingerprint = cursor::fingerprint(&spec.topics);
        let generations = spec
            .feeds
            .iter()
            .zip(&spec.positions)
            .map(|(f, pos)| (0..pos.len()).map(|p| f.generation(p)).collect())
            .collect();
        Self {
            ctx,
            spec,
            outbox,
            fingerprint,
            generations,
            reached_head: false,
            stats: None,
            out: BytesMut::new(),
            events: Vec::new(),
            avg_event_bytes: 256,
            scratch: Vec::new(),
            id: Vec::new(),
            id_behind: false,
            oldest_us: 0,
        }
    }

    async fn run(&mut self) -> Result<()> {
        let guard = self.ctx.metrics.register(StreamStats {
            consumer: self.spec.consumer.clone(),
            feeds: self.spec.feeds.clone(),
            positions: parking_lot::Mutex::new(self.spec.positions.clone()),
            since_ms: crate::consumers::registry::now_ms(),
            client: std::mem::take(&mut self.spec.client),
        });
        self.stats = Some(guard.stats.clone());
        let mut changed: Vec<_> = self.spec.feeds.iter().map(|f| f.subscribe()).collect();
        self.out
            .put_slice(format!("retry: {}\n\n", self.ctx.settings.retry_ms).as_bytes());
        for frame in std::mem::take(&mut self.spec.preamble) {
            self.out.put_slice(frame.as_bytes());
        }
        self.flush().await;
        loop {
            if let Some(notice) = self.closing_notice() {
                self.out.put_slice(notice);
                self.flush().await;
                return Ok(());
            }
            for rx in changed.iter_mut() {
                rx.borrow_and_update();
            }
            let (sent, catching) = self.collect().await?;
            if self.id_behind {
                // Only filtered-out events since the last id: an `id:`-only frame moves the
                // client's Last-Event-ID past them (the SSE spec sets the last event ID even
                // when no event is dispatched), and the loop reads on rather than waiting.
                self.encode_id();
                self.out.reserve(self.id.len() + 6);
                self.out.put_slice(b"id: ");
                self.out.put_slice(&self.id);
                self.out.put_slice(b"\n\n");
            }
            if sent > 0 || !self.out.is_empty() {
                *guard.stats.positions.lock() = self.spec.positions.clone();
                self.flush().await;
                if self.is_slow() {
                    return self.end_slow().await;
                }
                continue;
            }
            if !catching {
                self.reached_head = true;
            }
            // An idle stream holds no chunk memory (the chunk reserved by `collect` is let go).
            self.out = BytesMut::new();
            // Nothing to send: wait for new events, the keepalive, or the end.
            let wait_new = async {
                if catching {
                    // A replay read is under way (see `collect`); check back soon.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } else if changed.len() == 1 {
                    let _ = changed[0].changed().await;
                } else {
                    let futs = changed.iter_mut().map(|rx| Box::pin(rx.changed()));
                    let _ = futures::future::select_all(futs).await;
                }
            };
            tokio::select! {
                _ = wait_new => {}
                _ = tokio::time::sleep(self.ctx.settings.keepalive) => {
                    self.out.put_slice(b": keepalive\n\n");
                    self.flush().await;
                }
                // The notice is written at the top of the loop.
                _ = self.spec.closed.cancelled() => {}
                _ = self.ctx.shutdown.cancelled() => {}
            }
        }
    }

    /// The final comment when the consumer was deleted or the server is stopping.
    fn closing_notice(&self) -> Option<&'static [u8]> {
        if self.spec.closed.is_cancelled() {
            Some(b": consumer deleted; stream closed\n\n")
        } else if self.ctx.shutdown.is_cancelled() {
            Some(b": server shutting down; reconnect with Last-Event-ID\n\n")
        } else {
            None
        }
    }

    /// Whether the stream had reached the head and is now more than `max_lag` events behind
    /// (only under the `disconnect` policy).
    fn is_slow(&self) -> bool {
        let Some(stats) = &self.stats else {
            return false;
        };
        self.ctx.settings.slow_policy == SlowConsumerPolicy::Disconnect
            && self.reached_head
            && stats.lag() > self.ctx.settings.max_lag_events
    }

    async fn end_slow(&mut self) -> Result<()> {
        let lag = self.stats.as_ref().map(|s| s.lag()).unwrap_or(0);
        self.ctx.metrics.slow_disconnects.inc();
        let msg = format!(
            ": disconnected: too far behind ({lag} events); reconnect with Last-Event-ID to resume\n\n"
        );
        self.out.put_slice(msg.as_bytes());
        // Queued behind the chunks the client has not read yet; a client that reads nothing
        // more is closed by the connection's write timeout.
        self.flush().await;
        Ok(())
    }

    /// Hands the pending output to the body, once the previous chunk was taken.
    async fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        // A chunk reserves `max_chunk_bytes` up front; one that holds much less (a few live
        // events) is copied out at its size, so queued chunks pin only what they carry, and
        // the buffer is reused. A full one is handed over as it is.
        let chunk = if self.out.capacity() > 2 * self.out.len() + 4096 {
            let small = Bytes::copy_from_slice(&self.out);
            self.out.clear();
            small
        } else {
            std::mem::take(&mut self.out).freeze()
        };
        let len = chunk.len() as u64;
        let oldest = std::mem::take(&mut self.oldest_us);
        self.outbox.put(chunk).await;
        self.ctx.metrics.bytes_sent.inc_by(len);
        if oldest != 0 {
            self.ctx.metrics.delivered(oldest);
        }
    }

    /// Writes up to one chunk of events into `out`. Returns (events delivered, whether some
    /// partition is older than its buffer and being replayed).
    async fn collect(&mut self) -> Result<(usize, bool)> {
        // Events per chunk: the count limit, or fewer when events are large, so a chunk stays
        // near `max_chunk_bytes`.
        let per_event = self.avg_event_bytes + 64;
        let chunk_bytes = if self.ctx.memory.under_pressure() {
            self.ctx.settings.max_chunk_bytes / 8
        } else {
            self.ctx.settings.max_chunk_bytes
        };
        let max = (chunk_bytes / per_event).clamp(1, self.ctx.settings.max_chunk_events);
        if self.out.capacity() == 0 {
            // Sized once for the whole chunk: growing it by doubling would hold up to twice
            // the chunk size, three times over (one chunk being sent, two queued).
            self.out.reserve(chunk_bytes + 1024);
        }
        let mut sent = 0;
        let mut catching = false;
        for ti in 0..self.spec.feeds.len() {
            let feed = self.spec.feeds[ti].clone();
            // Partitions added to the topic since the stream started: from their beginning.
            for p in self.spec.positions[ti].len()..feed.partition_count() {
                self.spec.positions[ti].push(feed.origin(p));
                self.generations[ti].push(feed.generation(p));
            }
            for p in 0..feed.partition_count() {
                if sent >= max {
                    break;
                }
                if self.generations[ti][p] != feed.generation(p) {
                    self.restarted(ti, p);
                }
                self.events.clear();
                let from = self.spec.positions[ti][p];
                match feed.read(
                    p,
                    from,
                    self.generations[ti][p],
                    max - sent,
                    &mut self.events,
                ) {
                    Read::Events { next, .. } => {
                        let events = std::mem::take(&mut self.events);
                        sent += self.write_events(ti, p, &events);
                        self.events = events;
                        // Written: let the events go.
                        self.events.clear();
                        self.spec.positions[ti][p] = next;
                    }
                    Read::Behind { .. } => {
                        catching = true;
                        sent += self.replay(ti, p, max - sent, sent == 0).await?;
                    }
                    // Raced with a restart after the check above: handled on the next pass.
                    Read::Restarted { .. } => {}
                }
            }
        }
        Ok((sent, catching))
    }

    /// Partition `p` of topic `ti` restarted under the stream (topic recreated or truncated):
    /// tell the client where it was and where it continues, and read the new log.
    fn restarted(&mut self, ti: usize, p: usize) {
        let feed = self.spec.feeds[ti].clone();
        let from = self.spec.positions[ti][p];
        let to = feed.origin(p);
        self.generations[ti][p] = feed.generation(p);
        self.spec.positions[ti][p] = to;
        self.encode_id();
        let frame = reset_frame(self.id_str(), &feed.topic, p, from, to);
        self.out.put_slice(frame.as_bytes());
    }

    /// Partition `p` of topic `ti` is older than the shared buffer: deliver up to `max` events
    /// from the replay chunk that covers the position (shared with every stream replaying the
    /// same history), and report what retention deleted before the chunk was read as a gap.
    /// Waits for the chunk only when nothing else was written yet (`may_wait`).
    async fn replay(&mut self, ti: usize, p: usize, max: usize, may_wait: bool) -> Result<usize> {
        let topic = self.spec.feeds[ti].topic.clone();
        let pos = self.spec.positions[ti][p];
        let until = self.spec.feeds[ti].start(p);
        let wait = if may_wait {
            Duration::from_millis(200)
        } else {
            Duration::ZERO
        };
        // Boxed: a replay read is the rare path, and its future would otherwise make every
        // stream's state (held by idle streams too) larger.
        let read = self
            .ctx
            .replay
            .chunk(&topic, p, self.generations[ti][p], pos, until, wait);
        let Some(chunk) = Box::pin(read).await? else {
            return Ok(0);
        };
        let events = chunk.events_from(pos);
        let take = events.len().min(max);
        let sent = self.write_events(ti, p, &events[..take]);
        if take < events.len() {
            // The rest of the chunk on the next pass (the position is after the last written).
            return Ok(sent);
        }
        let at = self.spec.positions[ti][p];
        if let Some((from, to)) = chunk.lost_after(at) {
            self.spec.positions[ti][p] = to;
            self.encode_id();
            let frame = gap_frame(self.id_str(), &topic, p, from, to);
            self.out.put_slice(frame.as_bytes());
        }
        self.spec.positions[ti][p] = self.spec.positions[ti][p].max(chunk.end);
        Ok(sent)
    }

    /// The current cursor as text, for the frames that format it.
    fn id_str(&self) -> &str {
        std::str::from_utf8(&self.id).expect("a cursor is base64url, ASCII")
    }

    /// Sets `self.id` to the cursor of the current positions (every caller writes it).
    fn encode_id(&mut self) {
        self.id_behind = false;
        self.id.clear();
        cursor::encode_into(
            self.fingerprint,
            &self.spec.positions,
            &mut self.scratch,
            &mut self.id,
        );
    }

    /// Appends frames for `events` (all of topic `ti`, partition `p`, in offset order).
    fn write_events(&mut self, ti: usize, p: usize, events: &[Arc<ChangeEvent>]) -> usize {
        let mut sent = 0;
        for e in events {
            self.spec.positions[ti][p] = e.offset + 1;
            let filtered;
            let json: &[u8] = match &self.spec.filters[ti] {
                None => &e.json,
                Some(rule) => match rule.apply(e) {
                    Some(out) => {
                        filtered = out;
                        &filtered
                    }
                    None => {
                        self.id_behind = true;
                        continue;
                    }
                },
            };
            self.encode_id();
            self.avg_event_bytes = (self.avg_event_bytes * 7 + json.len()) / 8;
            self.out.reserve(json.len() + self.id.len() + 16);
            self.out.put_slice(b"id: ");
            self.out.put_slice(&self.id);
            self.out.put_slice(b"\ndata: ");
            self.out.put_slice(json);
            self.out.put_slice(b"\n\n");
            if e.received_us != 0 && (self.oldest_us == 0 || e.received_us < self.oldest_us) {
                self.oldest_us = e.received_us;
            }
            sent += 1;
        }
        if sent > 0 {
            self.ctx.metrics.events_sent.inc_by(sent as u64);
        }
        sent
    }
}

/// The `event: gap` frame telling a consumer that offsets `from..to` of a partition were
/// removed by the broker's retention before it read them; `id` resumes after the gap.
pub fn gap_frame(id: &str, topic: &str, partition: usize, from: i64, to: i64) -> String {
    let data = serde_json::json!({
        "topic": topic,
        "partition": partition,
        "from": from,
        "to": to,
        "lost": to - from,
    });
    format!("event: gap\nid: {id}\ndata: {data}\n\n")
}

/// The `event: reset` frame telling a consumer that a partition's log restarted (the topic
/// was deleted and recreated, or truncated): its position `from` belonged to the old log, and
/// delivery continues at `to` of the new one; `id` resumes there.
pub fn reset_frame(id: &str, topic: &str, partition: usize, from: i64, to: i64) -> String {
    let data = serde_json::json!({
        "topic": topic,
        "partition": partition,
        "from": from,
        "to": to,
        "reason": "the partition's log restarted below this position (topic deleted and recreated, or truncated)",
    });
    format!("event: reset\nid: {id}\ndata: {data}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The frame's shape; the broker-produced case (records deleted under a cursor) is
    // `cursor_older_than_the_log_start_gets_one_gap_notice_then_continues` in
    // tests/sse_delivery.rs.
    #[test]
    fn gap_frame_states_what_was_lost() {
        let f = gap_frame("AbC", "db.public.t", 2, 5, 12);
        assert!(f.starts_with("event: gap\nid: AbC\ndata: "), "{f}");
        assert!(f.ends_with("\n\n"));
        let data: serde_json::Value =
            serde_json::from_str(f.lines().nth(2).unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(
            data,
            serde_json::json!({"topic": "db.public.t", "partition": 2, "from": 5, "to": 12, "lost": 7})
        );
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod fake_feed_tests;
