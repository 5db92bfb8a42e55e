//! SSE delivery: one task per connection turns buffered change events into `text/event-stream`
//! frames, batched into chunks, and hands them to the HTTP body through a channel of two
//! chunks — memory per connection is bounded, and a client that reads slowly slows only its
//! own task.
//!
//! Frames are written directly rather than through a generic SSE encoder because the JSON of
//! each event is shared, pre-serialised bytes; only the `id:` (the cursor) is per stream.
//! - a stream opens with `retry:`; idle streams get a `: keepalive` comment;
//! - every event carries `id:` (cursor after that event) and one `data:` line of JSON;
//! - a position older than the broker's retention produces `event: gap` stating what was
//!   lost, then delivery continues at the oldest retained event — never a silent skip;
//! - a stream that had reached the head and falls more than `max_lag` events behind is ended
//!   with a final comment (policy `disconnect`) and resumes later from its cursor; with
//!   policy `catch-up` it is served from a dedicated reader instead;
//! - a partition whose log restarted under the stream (topic deleted and recreated, or
//!   truncated) produces `event: reset` stating where the stream was and where it continues;
//!   partitions added to a topic are delivered from their beginning;
//! - catch-up readers are capped (`max_catchup_readers`): a stream that needs one while all
//!   are taken waits for one, with keepalives, and loses nothing;
//! - deleting the consumer or shutting the server down ends the stream with a comment.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::SlowConsumerPolicy;
use crate::cursor;
use crate::event::{ChangeEvent, OpCode};
use crate::kafka::catchup::{CatchUp, Hole};
use crate::kafka::feed::{Read, TopicFeed};
use crate::kafka::hub::FeedHub;
use crate::limits::StreamPermit;
use crate::metrics::{Metrics, StreamStats};

/// Delivery settings, from the configuration.
#[derive(Debug, Clone)]
pub struct SseSettings {
    pub keepalive: Duration,
    pub retry_ms: u64,
    pub max_chunk_events: usize,
    pub max_chunk_bytes: usize,
    pub max_lag_events: u64,
    pub slow_policy: SlowConsumerPolicy,
    /// Catch-up readers that may exist at once (their prefetch shares a quarter of the
    /// buffer budget).
    pub max_catchup_readers: usize,
}

/// What one stream delivers and from where.
pub struct StreamSpec {
    /// Consumer name (`None` for an operator's live tail).
    pub consumer: Option<String>,
    /// Sorted topic names; `feeds[i]` reads `topics[i]`.
    pub topics: Vec<String>,
    pub feeds: Vec<Arc<TopicFeed>>,
    /// Operation filter; `None` delivers every operation.
    pub ops: Option<Vec<OpCode>>,
    /// Next offset per topic and partition.
    pub positions: Vec<Vec<i64>>,
    /// Cancelled when the consumer is deleted.
    pub closed: CancellationToken,
    /// Frames written before any event (e.g. a reset found while computing positions).
    pub preamble: Vec<String>,
    /// The stream's place under the stream limits, released when it ends.
    pub permit: Option<StreamPermit>,
}

/// Shared context of all streams.
pub struct SseContext {
    pub hub: Arc<FeedHub>,
    pub metrics: Arc<Metrics>,
    pub settings: SseSettings,
    pub shutdown: CancellationToken,
    /// Catch-up readers that may exist at once (one per topic of a stream that is behind).
    pub catchup_readers: Arc<Semaphore>,
}

/// Starts the stream's task and returns the `text/event-stream` response.
pub fn respond(ctx: Arc<SseContext>, spec: StreamSpec) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        let mut stream = Stream::new(ctx, spec, tx);
        if let Err(e) = stream.run().await {
            tracing::warn!(error = format!("{e:#}"), "SSE stream ended with an error");
            let _ = stream.tx.try_send(Bytes::from(format!(": error: {e}\n\n")));
        }
    });
    let body = Body::from_stream(tokio_stream_adapter(rx).map(Ok::<Bytes, Infallible>));
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

fn tokio_stream_adapter(mut rx: mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

enum Outcome {
    Continue,
    End,
}

struct Stream {
    ctx: Arc<SseContext>,
    spec: StreamSpec,
    tx: mpsc::Sender<Bytes>,
    fingerprint: u32,
    /// Per topic: the catch-up reader, which partitions it serves, and the hole it reported
    /// that was examined (see `read_catchup`).
    catchups: Vec<Option<Catching>>,
    /// Per topic and partition: the generation of the partition's log that the position
    /// belongs to (see [`Read::Restarted`]).
    generations: Vec<Vec<u64>>,
    /// Some partition is behind but every catch-up reader is taken: try again shortly.
    waiting_for_reader: bool,
    reached_head: bool,
    /// Set when the stream was found too slow while the client was not reading.
    slow: bool,
    stats: Option<Arc<StreamStats>>,
    out: BytesMut,
    events: Vec<Arc<ChangeEvent>>,
    /// Average size of a delivered event's JSON (moving average), to size chunks in bytes.
    avg_event_bytes: usize,
    scratch: Vec<u8>,
    id: String,
}

/// A topic's catch-up reader, the partitions it serves, the hole it reported that the
/// stream already examined, and its place under the cap on catch-up readers.
type Catching = (CatchUp, Vec<bool>, Option<Hole>, OwnedSemaphorePermit);

impl Stream {
    fn new(ctx: Arc<SseContext>, spec: StreamSpec, tx: mpsc::Sender<Bytes>) -> Self {
        let fingerprint = cursor::fingerprint(&spec.topics);
        let catchups = spec.topics.iter().map(|_| None).collect();
        let generations = spec
            .feeds
            .iter()
            .zip(&spec.positions)
            .map(|(f, pos)| (0..pos.len()).map(|p| f.generation(p)).collect())
            .collect();
        Self {
            ctx,
            spec,
            tx,
            fingerprint,
            catchups,
            generations,
            waiting_for_reader: false,
            reached_head: false,
            slow: false,
            stats: None,
            out: BytesMut::new(),
            events: Vec::new(),
            avg_event_bytes: 256,
            scratch: Vec::new(),
            id: String::new(),
        }
    }

    async fn run(&mut self) -> Result<()> {
        let guard = self.ctx.metrics.register(StreamStats {
            consumer: self.spec.consumer.clone(),
            feeds: self.spec.feeds.clone(),
            positions: parking_lot::Mutex::new(self.spec.positions.clone()),
        });
        self.stats = Some(guard.stats.clone());
        let mut changed: Vec<_> = self.spec.feeds.iter().map(|f| f.subscribe()).collect();
        self.out
            .put_slice(format!("retry: {}\n\n", self.ctx.settings.retry_ms).as_bytes());
        for frame in std::mem::take(&mut self.spec.preamble) {
            self.out.put_slice(frame.as_bytes());
        }
        if let Outcome::End = self.flush().await {
            return Ok(());
        }
        loop {
            if let Some(notice) = self.closing_notice() {
                self.out.put_slice(notice);
                let _ = self.flush().await;
                return Ok(());
            }
            for rx in changed.iter_mut() {
                rx.borrow_and_update();
            }
            let (sent, catching) = self.collect().await?;
            if sent > 0 || !self.out.is_empty() {
                *guard.stats.positions.lock() = self.spec.positions.clone();
                if let Outcome::End = self.flush().await {
                    return Ok(());
                }
                if self.slow || self.is_slow() {
                    return self.end_slow().await;
                }
                continue;
            }
            if !catching {
                self.reached_head = true;
            }
            // Nothing to send: wait for new events, the keepalive, or the end.
            let wait_new = async {
                if catching {
                    // The catch-up reader is polled by `collect`; check back soon.
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
                    if let Outcome::End = self.flush().await {
                        return Ok(());
                    }
                }
                // The notice is written at the top of the loop.
                _ = self.spec.closed.cancelled() => {}
                _ = self.ctx.shutdown.cancelled() => {}
                _ = self.tx.closed() => return Ok(()),
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

    /// The stream must end while the client is not reading: queue what is pending and the
    /// final notice if the client makes room within a second, then end either way.
    async fn give_up(&mut self, pending: Bytes) -> Outcome {
        let mut last = BytesMut::from(&pending[..]);
        last.put_slice(self.closing_notice().unwrap_or(b""));
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.send(last.freeze())).await;
        Outcome::End
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
        self.ctx
            .metrics
            .slow_disconnects
            .fetch_add(1, Ordering::Relaxed);
        let msg = format!(
            ": disconnected: too far behind ({lag} events); reconnect with Last-Event-ID to resume\n\n"
        );
        self.out.put_slice(msg.as_bytes());
        // The client may be reading slowly: give the notice time to be queued behind the
        // chunks it has not read yet, then end the stream either way.
        let chunk = self.out.split().freeze();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.tx.send(chunk)).await;
        Ok(())
    }

    /// Sends the pending output. Returns `End` when the client is gone or the stream must stop.
    async fn flush(&mut self) -> Outcome {
        if self.out.is_empty() {
            return Outcome::Continue;
        }
        // Taking the buffer leaves no allocation behind: an idle stream holds no chunk memory.
        let chunk = std::mem::take(&mut self.out).freeze();
        let len = chunk.len() as u64;
        // While the client is not reading, keep checking whether it has become too slow.
        let mut check = tokio::time::interval(Duration::from_millis(500));
        check.tick().await;
        // A clone of the sender, so the permit borrows it rather than `self`.
        let tx = self.tx.clone();
        let permit = loop {
            tokio::select! {
                // Room in the channel always wins, so a final notice is not lost to a race.
                biased;
                p = tx.reserve() => break p.map_err(|_| ()),
                _ = self.spec.closed.cancelled() => break Err(()),
                _ = self.ctx.shutdown.cancelled() => break Err(()),
                _ = check.tick(), if !self.slow => {
                    if self.is_slow() {
                        self.slow = true;
                    }
                }
            }
        };
        match permit {
            Ok(p) => {
                p.send(chunk);
                self.ctx
                    .metrics
                    .bytes_sent
                    .fetch_add(len, Ordering::Relaxed);
                Outcome::Continue
            }
            Err(()) if self.closing_notice().is_some() => self.give_up(chunk).await,
            Err(()) => Outcome::End,
        }
    }

    /// Writes up to one chunk of events into `out`. Returns (events delivered, whether some
    /// partition is still being caught up).
    async fn collect(&mut self) -> Result<(usize, bool)> {
        // Events per chunk: the count limit, or fewer when events are large, so a chunk stays
        // near `max_chunk_bytes`.
        let per_event = self.avg_event_bytes + 64;
        let max = (self.ctx.settings.max_chunk_bytes / per_event)
            .clamp(1, self.ctx.settings.max_chunk_events);
        let mut sent = 0;
        let mut catching = false;
        self.waiting_for_reader = false;
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
                if self.is_catching(ti, p) {
                    continue;
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
                        // Written: let the events go (catch-up events are held by nothing else).
                        self.events.clear();
                        self.spec.positions[ti][p] = next;
                    }
                    Read::Behind { .. } => self.start_catchup(ti, p).await?,
                    // Raced with a restart after the check above: handled on the next pass.
                    Read::Restarted { .. } => {}
                }
            }
            if self.catchups[ti].is_some() {
                catching = true;
                if sent < max {
                    sent += self.read_catchup(ti, max - sent, sent == 0).await?;
                }
            }
        }
        Ok((sent, catching || self.waiting_for_reader))
    }

    /// Partition `p` of topic `ti` restarted under the stream (topic recreated or truncated):
    /// tell the client where it was and where it continues, and read the new log. A catch-up
    /// reader of the topic is dropped (it read the old log); partitions still behind start
    /// another.
    fn restarted(&mut self, ti: usize, p: usize) {
        let feed = self.spec.feeds[ti].clone();
        let from = self.spec.positions[ti][p];
        let to = feed.origin(p);
        self.generations[ti][p] = feed.generation(p);
        self.spec.positions[ti][p] = to;
        if self.catchups[ti].take().is_some() {
            self.ctx
                .metrics
                .catchup_readers
                .fetch_sub(1, Ordering::Relaxed);
        }
        self.encode_id();
        let frame = reset_frame(&self.id, &feed.topic, p, from, to);
        self.out.put_slice(frame.as_bytes());
    }

    fn is_catching(&self, ti: usize, p: usize) -> bool {
        self.catchups[ti]
            .as_ref()
            .is_some_and(|(_, parts, _, _)| parts.get(p).copied().unwrap_or(false))
    }

    /// Partition `p` of topic `ti` is older than the shared buffer: report a gap if the broker
    /// no longer has it, then read it from a dedicated catch-up reader.
    async fn start_catchup(&mut self, ti: usize, p: usize) -> Result<()> {
        let feed = self.spec.feeds[ti].clone();
        if self.catchups[ti].is_none() && self.ctx.catchup_readers.available_permits() == 0 {
            // Every catch-up reader is taken: wait without asking the broker anything (the
            // gap check below runs once a reader is free).
            self.waiting_for_reader = true;
            self.ctx
                .metrics
                .catchup_waits
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let (low, _high) = self
            .ctx
            .hub
            .meta()
            .watermarks(&feed.topic, p as i32)
            .await?;
        let pos = self.spec.positions[ti][p];
        if pos < low {
            self.spec.positions[ti][p] = low;
            self.encode_id();
            let frame = gap_frame(&self.id, &feed.topic, p, pos, low);
            self.out.put_slice(frame.as_bytes());
            if low >= feed.start(p) {
                return Ok(());
            }
        }
        let (mut parts, permit) = match self.catchups[ti].take() {
            Some((_, parts, _, permit)) => {
                self.ctx
                    .metrics
                    .catchup_readers
                    .fetch_sub(1, Ordering::Relaxed);
                (parts, permit)
            }
            None => match self.ctx.catchup_readers.clone().try_acquire_owned() {
                Ok(permit) => (vec![false; feed.partition_count()], permit),
                Err(_) => {
                    // Every catch-up reader is taken: stay where we are and ask again soon.
                    self.waiting_for_reader = true;
                    self.ctx
                        .metrics
                        .catchup_waits
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
            },
        };
        parts.resize(feed.partition_count(), false);
        parts[p] = true;
        let starts: Vec<(i32, i64)> = parts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(q, _)| (q as i32, self.spec.positions[ti][q]))
            .collect();
        let reader = CatchUp::new(
            self.ctx.hub.settings(),
            &feed.topic,
            &starts,
            self.ctx
                .hub
                .limits()
                .catchup_prefetch_kbytes(self.ctx.settings.max_catchup_readers),
        )?;
        self.ctx
            .metrics
            .catchup_readers
            .fetch_add(1, Ordering::Relaxed);
        self.catchups[ti] = Some((reader, parts, None, permit));
        Ok(())
    }

    async fn read_catchup(&mut self, ti: usize, max: usize, may_wait: bool) -> Result<usize> {
        let feed = self.spec.feeds[ti].clone();
        let Some((reader, parts, accepted, _)) = self.catchups[ti].as_mut() else {
            return Ok(0);
        };
        self.events.clear();
        let wait = if may_wait {
            Duration::from_millis(200)
        } else {
            Duration::ZERO
        };
        let outcome = reader
            .read(
                max,
                wait,
                &mut self.spec.positions[ti],
                &mut self.events,
                accepted.take(),
            )
            .await?;
        let mut hole = outcome.hole;
        let mut reader_moved = false;
        if outcome.taken == 0 && hole.is_none() {
            // Nothing came: offsets without records (markers) are skipped, but a position that
            // moved is examined as a hole first.
            for (p, catching) in parts.iter().enumerate() {
                if *catching {
                    if let Some(at) = reader.position(p as i32) {
                        let pos = self.spec.positions[ti][p];
                        if at > pos && hole.is_none() {
                            reader_moved = true;
                            hole = Some(Hole {
                                partition: p,
                                from: pos,
                                to: at,
                            });
                        }
                    }
                }
            }
        }
        let events = std::mem::take(&mut self.events);
        // Positions were advanced by the reader; rewind them for the frames' cursors.
        let sent = self.write_catchup_events(ti, &events);
        self.events = events;
        // Written: let the events go (catch-up events are held by nothing else).
        self.events.clear();
        if let Some(h) = hole {
            self.examine_hole(ti, h, reader_moved).await?;
        }
        // Partitions that reached the shared buffer leave catch-up.
        let Some((_, parts, _, _)) = self.catchups[ti].as_mut() else {
            return Ok(sent);
        };
        for (p, catching) in parts.iter_mut().enumerate() {
            if *catching && self.spec.positions[ti][p] >= feed.start(p) {
                *catching = false;
            }
        }
        if parts.iter().all(|c| !*c) {
            self.catchups[ti] = None;
            self.ctx
                .metrics
                .catchup_readers
                .fetch_sub(1, Ordering::Relaxed);
        }
        Ok(sent)
    }

    /// A catch-up reader found no record in `[from, to)` of a partition. If the log start
    /// has moved past `from`, those events are gone: one gap notice up to the log start.
    /// Whatever is left of the hole (offsets without records, such as transaction markers) is
    /// then accepted: the position moves to `to` now if the reader moved there without a
    /// record (`reader_moved`), else with the record at `to` on the next read.
    async fn examine_hole(&mut self, ti: usize, hole: Hole, reader_moved: bool) -> Result<()> {
        let topic = self.spec.feeds[ti].topic.clone();
        let (low, _) = self
            .ctx
            .hub
            .meta()
            .watermarks(&topic, hole.partition as i32)
            .await?;
        let p = hole.partition;
        if low > hole.from {
            let to = low.min(hole.to);
            self.spec.positions[ti][p] = to;
            self.encode_id();
            let frame = gap_frame(&self.id, &topic, p, hole.from, to);
            self.out.put_slice(frame.as_bytes());
        }
        if reader_moved {
            let pos = &mut self.spec.positions[ti][p];
            *pos = (*pos).max(hole.to);
            return Ok(());
        }
        let pos = self.spec.positions[ti][p];
        if let Some((_, _, accepted, _)) = self.catchups[ti].as_mut() {
            *accepted = (pos < hole.to).then_some(Hole {
                partition: p,
                from: pos,
                to: hole.to,
            });
        }
        Ok(())
    }

    /// Writes frames for events read by a catch-up reader. The reader already moved the
    /// positions past the whole batch, so each frame's cursor is rebuilt from the batch.
    fn write_catchup_events(&mut self, ti: usize, events: &[Arc<ChangeEvent>]) -> usize {
        if events.is_empty() {
            return 0;
        }
        let after: Vec<i64> = self.spec.positions[ti].clone();
        // Rewind each partition to its first event in the batch, then replay.
        for e in events.iter().rev() {
            self.spec.positions[ti][e.partition as usize] = e.offset;
        }
        let mut sent = 0;
        for e in events {
            sent += self.write_events(ti, e.partition as usize, std::slice::from_ref(e));
        }
        self.spec.positions[ti] = after;
        sent
    }

    /// Sets `self.id` to the cursor of the current positions.
    fn encode_id(&mut self) {
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
            if let Some(ops) = &self.spec.ops {
                if !ops.contains(&e.op) {
                    continue;
                }
            }
            self.encode_id();
            self.avg_event_bytes = (self.avg_event_bytes * 7 + e.json.len()) / 8;
            self.out.reserve(e.json.len() + self.id.len() + 16);
            self.out.put_slice(b"id: ");
            self.out.put_slice(self.id.as_bytes());
            self.out.put_slice(b"\ndata: ");
            self.out.put_slice(&e.json);
            self.out.put_slice(b"\n\n");
            sent += 1;
        }
        if sent > 0 {
            self.ctx
                .metrics
                .events_sent
                .fetch_add(sent as u64, Ordering::Relaxed);
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
