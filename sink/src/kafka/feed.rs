//! The shared reader of one topic, and the hub that owns one per topic.
//!
//! A [`TopicFeed`] runs one librdkafka consumer (no group, every partition assigned) on a
//! dedicated thread. It turns each record into a [`ChangeEvent`] once and appends it to a
//! bounded per-partition buffer of recent events, then bumps a `watch` counter. Streams keep
//! their own position per partition, copy what is new out of the buffer under a short read
//! lock, and sleep on the counter when there is nothing new: an event costs one parse however
//! many streams receive it, and waking is batched because the reader drains everything that
//! is ready before it notifies.
//!
//! A buffer covers the offset range `[start, next)`; events inside it are the deliverable ones
//! (tombstones are skipped, so offsets can have holes). A stream whose position is below
//! `start` has been overtaken and must catch up from Kafka (see `catchup`).
//!
//! Bounded: a buffer holds at most `events_per_partition` events and its share of a byte
//! budget: the smaller of the per-topic budget and the global budget divided among the open
//! feeds, split over the topic's partitions. A feed nobody has used for [`IDLE_CLOSE`] is
//! closed by the hub (its thread and Kafka client go away).
//!
//! The topic may change under the reader, and no change is a silent jump:
//! - partitions added to the topic are found by a metadata check every [`REFRESH_EVERY`] (or
//!   on demand, [`TopicFeed::refresh`]) and read from their beginning;
//! - the reader never lets librdkafka reset its position (`auto.offset.reset=error`). When a
//!   position is out of range, the partition's watermarks say what happened: records deleted
//!   under the reader (the buffer restarts at the log start, and streams that were behind get
//!   a gap notice from the catch-up path), or a log that restarted below what was read (the
//!   topic was deleted and recreated, or truncated). The latter bumps the partition's
//!   *generation*: a stream still holding a position of the old log gets [`Read::Restarted`]
//!   and tells its client before it continues.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use parking_lot::{Mutex, RwLock};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::{KafkaMeta, KafkaSettings, METADATA_TIMEOUT};
use crate::event::{self, ChangeEvent};

/// Most records the reader takes in one batch before it notifies the streams.
const READER_BATCH: usize = 4096;

/// How often a reader checks the topic's metadata for added partitions.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// A feed unused (no stream, no request) for this long is closed.
pub const IDLE_CLOSE: Duration = Duration::from_secs(60);

/// Memory an event costs in a buffer beyond its JSON: the `ChangeEvent`, its `Arc` and the
/// queue slot (an estimate; the byte budget counts this plus the JSON's length).
const EVENT_OVERHEAD: usize = 96;

/// Memory limits of the buffers, shared by every feed of a hub.
#[derive(Debug)]
pub struct BufferLimits {
    /// Most events kept per partition.
    pub events_per_partition: usize,
    /// Most bytes kept per topic.
    pub bytes_per_topic: usize,
    /// Most bytes kept by all topics together.
    pub bytes_total: usize,
    /// Feeds open now (the global budget is divided among them).
    open_feeds: AtomicUsize,
}

impl BufferLimits {
    pub fn new(events_per_partition: usize, bytes_per_topic: usize, bytes_total: usize) -> Self {
        Self {
            events_per_partition,
            bytes_per_topic,
            bytes_total,
            open_feeds: AtomicUsize::new(0),
        }
    }

    /// Byte budget of one partition of a topic with `partitions` partitions.
    fn partition_bytes(&self, partitions: usize) -> usize {
        let feeds = self.open_feeds.load(Ordering::Relaxed).max(1);
        let topic = self.bytes_per_topic.min(self.bytes_total / feeds);
        (topic / partitions.max(1)).max(1)
    }

    /// librdkafka's prefetch queue for a new feed: a quarter of its share of the global
    /// budget, between 64 KiB and 16 MiB.
    fn prefetch_kbytes(&self) -> usize {
        let feeds = self.open_feeds.load(Ordering::Relaxed) + 1;
        (self.bytes_total / 4 / feeds / 1024).clamp(64, 16 * 1024)
    }

    /// librdkafka's prefetch queue for each of `readers` catch-up readers: together a quarter
    /// of the global budget, each between 256 KiB and 4 MiB.
    pub fn catchup_prefetch_kbytes(&self, readers: usize) -> usize {
        (self.bytes_total / 4 / readers.max(1) / 1024).clamp(256, 4 * 1024)
    }
}

struct PartitionBuffer {
    /// First offset covered by the buffer.
    start: i64,
    /// Next offset the reader will see (the head of the partition as far as we know).
    next: i64,
    events: VecDeque<Arc<ChangeEvent>>,
    /// Bytes held by `events` (JSON plus [`EVENT_OVERHEAD`] each).
    bytes: usize,
    /// Bumped each time the partition's log restarted below what was read.
    generation: u64,
    /// Where the reader began this partition (its log start when the partition was found).
    origin: i64,
}

impl PartitionBuffer {
    fn new(begin: i64, capacity: usize) -> Self {
        Self {
            start: begin,
            next: begin,
            events: VecDeque::with_capacity(capacity.min(1024)),
            bytes: 0,
            generation: 0,
            origin: begin,
        }
    }

    /// Drops the oldest events until at most `capacity` events and `budget` bytes remain
    /// (but keeps one, so a stream at the head always finds its place).
    fn evict(&mut self, capacity: usize, budget: usize) {
        while self.events.len() > capacity || (self.bytes > budget && self.events.len() > 1) {
            let old = self.events.pop_front().expect("non-empty");
            self.bytes -= old.json.len() + EVENT_OVERHEAD;
            self.start = old.offset + 1;
        }
    }

    /// Drops everything and restarts at `at`.
    fn restart_at(&mut self, at: i64) {
        self.events.clear();
        self.bytes = 0;
        self.start = at;
        self.next = at;
    }
}

/// What a stream found when it looked for events at its position.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// Copied this many events; the stream's new position is `next`.
    Events { count: usize, next: i64 },
    /// The position is older than the buffer, which starts at `start`.
    Behind { start: i64 },
    /// The partition's log restarted (topic recreated or truncated) since the stream's
    /// generation: its position means nothing now; the new log is read from `to`.
    Restarted { generation: u64, to: i64 },
}

/// The shared reader and recent-event buffer of one topic.
pub struct TopicFeed {
    pub topic: String,
    partitions: RwLock<Vec<RwLock<PartitionBuffer>>>,
    limits: Arc<BufferLimits>,
    consumer: BaseConsumer,
    changed: watch::Sender<u64>,
    stop: AtomicBool,
    /// Serialises growth and repositioning (reader thread and [`TopicFeed::refresh`]).
    assign: Mutex<()>,
}

impl TopicFeed {
    /// Number of partitions the feed reads now (it grows when partitions are added).
    pub fn partition_count(&self) -> usize {
        self.partitions.read().len()
    }

    /// A receiver that changes whenever new events were appended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Next offset of partition `p` (what a stream starting at "latest" begins with).
    pub fn head(&self, p: usize) -> i64 {
        self.partitions.read()[p].read().next
    }

    /// First offset still buffered for partition `p`.
    pub fn start(&self, p: usize) -> i64 {
        self.partitions.read()[p].read().start
    }

    /// Where the reader began partition `p`: a stream that learns of a partition added after
    /// it started begins there.
    pub fn origin(&self, p: usize) -> i64 {
        self.partitions.read()[p].read().origin
    }

    /// The generation of partition `p` (see [`Read::Restarted`]).
    pub fn generation(&self, p: usize) -> u64 {
        self.partitions.read()[p].read().generation
    }

    /// Copies up to `max` events of partition `p` at or after `from` into `out`, for a stream
    /// whose position belongs to `generation` of the partition's log.
    pub fn read(
        &self,
        p: usize,
        from: i64,
        generation: u64,
        max: usize,
        out: &mut Vec<Arc<ChangeEvent>>,
    ) -> Read {
        let parts = self.partitions.read();
        let buf = parts[p].read();
        if buf.generation != generation {
            return Read::Restarted {
                generation: buf.generation,
                to: buf.origin,
            };
        }
        if from < buf.start {
            return Read::Behind { start: buf.start };
        }
        if from >= buf.next {
            return Read::Events {
                count: 0,
                next: from,
            };
        }
        let idx = buf.events.partition_point(|e| e.offset < from);
        let available = buf.events.len() - idx;
        let count = available.min(max);
        out.extend(buf.events.range(idx..idx + count).cloned());
        let next = if count == available {
            buf.next
        } else {
            buf.events[idx + count].offset
        };
        Read::Events { count, next }
    }

    /// Evicts down to this feed's current share of the budget (which shrinks when another
    /// feed opens).
    pub fn trim(&self) {
        let parts = self.partitions.read();
        let budget = self.limits.partition_bytes(parts.len());
        for buf in parts.iter() {
            buf.write().evict(self.limits.events_per_partition, budget);
        }
    }

    /// Bytes held by the buffers of this topic.
    pub fn buffered_bytes(&self) -> usize {
        self.partitions.read().iter().map(|b| b.read().bytes).sum()
    }

    /// Starts the reader of `topic` at `max(low, high - capacity)` of every partition, so the
    /// buffer is warm from the first subscriber on.
    async fn open(
        settings: &KafkaSettings,
        meta: &KafkaMeta,
        topic: &str,
        limits: Arc<BufferLimits>,
    ) -> Result<Arc<Self>> {
        let count = meta
            .partition_count(topic)
            .await?
            .with_context(|| format!("topic {topic} does not exist"))?;
        let capacity = limits.events_per_partition;
        let prefetch = limits.prefetch_kbytes();
        let mut partitions = Vec::with_capacity(count);
        let mut tpl = TopicPartitionList::new();
        for p in 0..count as i32 {
            let (low, high) = meta.watermarks(topic, p).await?;
            let begin = low.max(high - capacity as i64);
            partitions.push(RwLock::new(PartitionBuffer::new(begin, capacity)));
            tpl.add_partition_offset(topic, p, Offset::Offset(begin))?;
        }
        let consumer: BaseConsumer = settings
            .consumer_config()
            .set("queued.max.messages.kbytes", prefetch.to_string())
            .set("max.partition.fetch.bytes", (prefetch * 1024).to_string())
            // Never jump: an out-of-range position is examined (see `reposition`).
            .set("auto.offset.reset", "error")
            .create()
            .context("creating a topic reader")?;
        consumer
            .assign(&tpl)
            .with_context(|| format!("assigning the partitions of {topic}"))?;
        let (changed, _) = watch::channel(0);
        limits.open_feeds.fetch_add(1, Ordering::Relaxed);
        let feed = Arc::new(Self {
            topic: topic.to_string(),
            partitions: RwLock::new(partitions),
            limits,
            consumer,
            changed,
            stop: AtomicBool::new(false),
            assign: Mutex::new(()),
        });
        let reader = feed.clone();
        std::thread::Builder::new()
            .name(format!("feed-{topic}"))
            .spawn(move || reader.run())
            .context("starting a topic reader thread")?;
        Ok(feed)
    }

    fn run(&self) {
        let mut batch: Vec<ChangeEvent> = Vec::with_capacity(256);
        let mut heads: Vec<Option<i64>> = Vec::new();
        let mut last_warning: Option<Instant> = None;
        let mut last_refresh = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if last_refresh.elapsed() >= REFRESH_EVERY {
                last_refresh = Instant::now();
                if let Err(e) = self.refresh() {
                    tracing::warn!(topic = %self.topic, error = format!("{e:#}"), "topic metadata check failed");
                }
            }
            heads.resize(self.partition_count(), None);
            let mut timeout = Duration::from_millis(100);
            let mut taken = 0;
            while taken < READER_BATCH {
                match self.consumer.poll(timeout) {
                    None => break,
                    Some(Err(KafkaError::MessageConsumption(
                        RDKafkaErrorCode::AutoOffsetReset,
                    ))) => {
                        // Flush what was read before the reset, then examine every partition.
                        self.append(&mut batch, &mut heads);
                        if let Err(e) = self.reposition() {
                            tracing::warn!(topic = %self.topic, error = format!("{e:#}"), "could not reposition the topic reader");
                        }
                        break;
                    }
                    Some(Err(e)) => {
                        // A deleted topic or an unreachable broker repeats on every poll:
                        // log it at most every 10 s.
                        if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                            tracing::warn!(topic = %self.topic, error = %e, "topic reader error");
                            last_warning = Some(Instant::now());
                        }
                        break;
                    }
                    Some(Ok(m)) => {
                        taken += 1;
                        let p = m.partition();
                        if p < 0 || p as usize >= heads.len() {
                            continue; // not assigned yet: read once `refresh` adds it
                        }
                        heads[p as usize] = Some(m.offset() + 1);
                        let ts = m.timestamp().to_millis().unwrap_or(0);
                        if let Some(ev) =
                            event::from_record(&self.topic, p, m.offset(), ts, m.key(), m.payload())
                        {
                            batch.push(ev);
                        }
                    }
                }
                timeout = Duration::ZERO;
            }
            if taken == 0 {
                continue;
            }
            self.append(&mut batch, &mut heads);
            self.changed.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    fn append(&self, batch: &mut Vec<ChangeEvent>, heads: &mut [Option<i64>]) {
        let parts = self.partitions.read();
        let capacity = self.limits.events_per_partition;
        let budget = self.limits.partition_bytes(parts.len());
        // The batch is in offset order per partition; take each partition's lock once per run.
        let mut events = batch.drain(..).peekable();
        while let Some(first) = events.next() {
            let p = first.partition as usize;
            let mut buf = parts[p].write();
            let push = |buf: &mut PartitionBuffer, ev: ChangeEvent| {
                buf.next = buf.next.max(ev.offset + 1);
                buf.bytes += ev.json.len() + EVENT_OVERHEAD;
                buf.events.push_back(Arc::new(ev));
            };
            push(&mut buf, first);
            while let Some(ev) = events.next_if(|e| e.partition as usize == p) {
                push(&mut buf, ev);
            }
            buf.evict(capacity, budget);
        }
        // Records that were not delivered (tombstones) still move the head.
        for (p, head) in heads.iter_mut().enumerate() {
            if let Some(next) = head.take() {
                let mut buf = parts[p].write();
                buf.next = buf.next.max(next);
            }
        }
    }

    /// Checks the topic's partition count and starts reading partitions added since the last
    /// check, from their beginning. Blocking (metadata request); safe from any thread.
    pub fn refresh(&self) -> Result<()> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.topic), METADATA_TIMEOUT)
            .with_context(|| format!("reading metadata of topic {}", self.topic))?;
        let count = md
            .topics()
            .iter()
            .find(|t| t.name() == self.topic && t.error().is_none())
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        let _serial = self.assign.lock();
        let known = self.partition_count();
        if count <= known {
            return Ok(());
        }
        let capacity = self.limits.events_per_partition;
        let mut added = Vec::new();
        for p in known..count {
            let (low, _) = self
                .consumer
                .fetch_watermarks(&self.topic, p as i32, METADATA_TIMEOUT)
                .with_context(|| format!("reading watermarks of {}[{p}]", self.topic))?;
            added.push(RwLock::new(PartitionBuffer::new(low, capacity)));
        }
        let mut tpl = TopicPartitionList::new();
        for (i, _) in added.iter().enumerate() {
            let p = known + i;
            let begin = added[i].read().start;
            tpl.add_partition_offset(&self.topic, p as i32, Offset::Offset(begin))?;
        }
        self.partitions.write().extend(added);
        self.consumer
            .incremental_assign(&tpl)
            .with_context(|| format!("assigning the new partitions of {}", self.topic))?;
        tracing::info!(topic = %self.topic, from = known, to = count, "partitions added to the topic are now read");
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
        Ok(())
    }

    /// The reader's position was out of range in some partition: compare each partition with
    /// its watermarks and move the reader where the log now is, saying why.
    fn reposition(&self) -> Result<()> {
        let _serial = self.assign.lock();
        let parts = self.partitions.read();
        let mut tpl = TopicPartitionList::new();
        for (p, buf) in parts.iter().enumerate() {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, p as i32, METADATA_TIMEOUT)
                .with_context(|| format!("reading watermarks of {}[{p}]", self.topic))?;
            let mut buf = buf.write();
            if high < buf.next {
                // The log restarted below what we read: the topic was deleted and recreated,
                // or truncated. Positions of the old log mean nothing in the new one.
                tracing::warn!(topic = %self.topic, partition = p, read_up_to = buf.next, end_now = high,
                    "the partition's log restarted (topic recreated or truncated); streams are told and continue on the new log");
                buf.restart_at(low);
                buf.origin = low;
                buf.generation += 1;
            } else if low > buf.next {
                // Retention deleted records before the reader got them. Streams positioned
                // there are behind the buffer and get a gap notice from the catch-up path.
                tracing::warn!(topic = %self.topic, partition = p, from = buf.next, to = low,
                    "records were deleted before the topic reader read them");
                buf.restart_at(low);
            }
            tpl.add_partition_offset(&self.topic, p as i32, Offset::Offset(buf.next))?;
        }
        drop(parts);
        self.consumer
            .assign(&tpl)
            .with_context(|| format!("reassigning the partitions of {}", self.topic))?;
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
        Ok(())
    }

    /// Stops the reader thread (at shutdown, or when the hub closes an unused feed).
    pub fn shutdown(&self) {
        if !self.stop.swap(true, Ordering::Relaxed) {
            self.limits.open_feeds.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

type FeedCell = Arc<tokio::sync::OnceCell<Arc<TopicFeed>>>;

/// Owns the topic feeds: one per topic, started on first use and closed after
/// [`IDLE_CLOSE`] without a user.
pub struct FeedHub {
    settings: KafkaSettings,
    meta: KafkaMeta,
    limits: Arc<BufferLimits>,
    feeds: Mutex<HashMap<String, (FeedCell, Instant)>>,
}

impl FeedHub {
    pub fn new(settings: KafkaSettings, meta: KafkaMeta, limits: BufferLimits) -> Self {
        Self {
            settings,
            meta,
            limits: Arc::new(limits),
            feeds: Mutex::new(HashMap::new()),
        }
    }

    /// The feed of `topic`, starting its reader if this is the first use.
    pub async fn feed(&self, topic: &str) -> Result<Arc<TopicFeed>> {
        let cell = {
            let mut feeds = self.feeds.lock();
            let entry = feeds
                .entry(topic.to_string())
                .or_insert_with(|| (FeedCell::default(), Instant::now()));
            entry.1 = Instant::now();
            entry.0.clone()
        };
        let mut opened = false;
        let feed = cell
            .get_or_try_init(|| {
                opened = true;
                TopicFeed::open(&self.settings, &self.meta, topic, self.limits.clone())
            })
            .await?;
        if opened {
            // One more feed shares the global budget: the others give their excess back.
            for other in self.started() {
                other.trim();
            }
        }
        Ok(feed.clone())
    }

    /// Closes the feeds that no stream or request has held for [`IDLE_CLOSE`]. Returns how
    /// many were closed.
    pub fn close_idle(&self, idle: Duration) -> usize {
        let mut closed = 0;
        self.feeds.lock().retain(|_, (cell, last_used)| {
            // Held elsewhere: by a request that is opening it (the cell), or by streams (the
            // feed; the map's cell and the reader thread hold one reference each).
            let in_use =
                Arc::strong_count(cell) > 1 || cell.get().is_some_and(|f| Arc::strong_count(f) > 2);
            if in_use {
                *last_used = Instant::now();
                return true;
            }
            if cell.get().is_none() || last_used.elapsed() < idle {
                return true;
            }
            if let Some(f) = cell.get() {
                f.shutdown();
            }
            closed += 1;
            false
        });
        closed
    }

    /// Closes idle feeds every few seconds until `stop`.
    pub fn spawn_idle_closer(
        self: &Arc<Self>,
        idle: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval((idle / 4).max(Duration::from_millis(250)));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        let n = hub.close_idle(idle);
                        if n > 0 {
                            tracing::info!(closed = n, "closed unused topic readers");
                        }
                    }
                    _ = stop.cancelled() => return,
                }
            }
        });
    }

    /// The feeds started so far (for metrics).
    pub fn started(&self) -> Vec<Arc<TopicFeed>> {
        self.feeds
            .lock()
            .values()
            .filter_map(|(c, _)| c.get().cloned())
            .collect()
    }

    pub fn meta(&self) -> &KafkaMeta {
        &self.meta
    }

    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    pub fn limits(&self) -> &BufferLimits {
        &self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(offset: i64, bytes: usize) -> Arc<ChangeEvent> {
        Arc::new(ChangeEvent {
            partition: 0,
            offset,
            op: b'c',
            timestamp_ms: 0,
            json: bytes::Bytes::from(vec![b'x'; bytes]),
        })
    }

    fn filled(n: i64, bytes: usize) -> PartitionBuffer {
        let mut buf = PartitionBuffer::new(0, 16);
        for o in 0..n {
            buf.events.push_back(event(o, bytes));
            buf.bytes += bytes + EVENT_OVERHEAD;
            buf.next = o + 1;
        }
        buf
    }

    #[test]
    fn eviction_keeps_to_the_event_count_and_the_byte_budget() {
        let mut buf = filled(10, 100);
        buf.evict(6, usize::MAX);
        assert_eq!((buf.start, buf.events.len()), (4, 6));
        // Three events' worth of bytes.
        buf.evict(6, 3 * (100 + EVENT_OVERHEAD));
        assert_eq!((buf.start, buf.events.len(), buf.next), (7, 3, 10));
        assert_eq!(buf.bytes, 3 * (100 + EVENT_OVERHEAD));
        // A budget smaller than one event still keeps the newest one.
        buf.evict(6, 1);
        assert_eq!((buf.start, buf.events.len()), (9, 1));
    }

    #[test]
    fn the_global_budget_is_shared_by_the_open_feeds() {
        let limits = BufferLimits::new(1000, 64 << 20, 100 << 20);
        limits.open_feeds.store(1, Ordering::Relaxed);
        assert_eq!(
            limits.partition_bytes(4),
            (64 << 20) / 4,
            "capped per topic"
        );
        limits.open_feeds.store(10, Ordering::Relaxed);
        assert_eq!(
            limits.partition_bytes(2),
            (10 << 20) / 2,
            "a tenth of the total"
        );
        assert_eq!(
            limits.prefetch_kbytes(),
            2327,
            "a quarter of a feed's share, in KiB"
        );
        limits.open_feeds.store(1000, Ordering::Relaxed);
        assert_eq!(limits.prefetch_kbytes(), 64, "never below 64 KiB");
        assert_eq!(limits.catchup_prefetch_kbytes(64), 400);
    }
}
