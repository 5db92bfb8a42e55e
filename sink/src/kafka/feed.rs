//! The recent-event buffer of one topic, shared by every stream of that topic.
//!
//! The hub's shared reader (`hub.rs`) turns each record into a [`ChangeEvent`] once and
//! appends it to a bounded per-partition buffer of recent events, then bumps the feed's
//! `watch` counter. Streams keep their own position per partition, copy what is new out of the
//! buffer under a short read lock, and sleep on the counter when there is nothing new: an event
//! costs one parse however many streams receive it, and waking is batched because the reader
//! drains everything that is ready before it notifies.
//!
//! A buffer covers the offset range `[start, next)`; events inside it are the deliverable ones
//! (tombstones are skipped, so offsets can have holes). A stream whose position is below
//! `start` has been overtaken and must catch up from Kafka (see `replay`).
//!
//! Bounded: a buffer holds at most `events_per_partition` events and its share of a byte
//! budget: the smaller of the per-topic budget and the global budget divided among the open
//! feeds, split over the topic's partitions. When another feed opens, the others [`trim`] to
//! their smaller share.
//!
//! The topic may change under the reader, and no change is a silent jump: partitions added to
//! the topic get buffers of their own (streams read them from their [`origin`]), and a
//! partition whose log restarted below what was read (the topic was deleted and recreated, or
//! truncated) gets a new *generation*: a stream still holding a position of the old log gets
//! [`Read::Restarted`] and tells its client before it continues.
//!
//! [`trim`]: TopicFeed::trim
//! [`origin`]: TopicFeed::origin

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::event::ChangeEvent;

/// Memory an event costs in a buffer beyond its JSON: the `ChangeEvent`, its `Arc` and the
/// queue slot (an estimate; the byte budget counts this plus the JSON's length).
pub(crate) const EVENT_OVERHEAD: usize = 96;

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
    pub(crate) open_feeds: AtomicUsize,
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

    /// Events of history to read into each partition's buffer when a topic with `partitions`
    /// partitions opens: its byte share at 1 KiB per event (at least 16).
    pub fn warm_events(&self, partitions: usize) -> i64 {
        ((self.partition_bytes(partitions) / 1024) as i64).max(16)
    }

    /// librdkafka's prefetch queue of the hub's shared reader: an eighth of the budget,
    /// between 1 and 64 MiB.
    pub fn reader_prefetch_kbytes(&self) -> usize {
        (self.bytes_total / 8 / 1024).clamp(1024, 64 * 1024)
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

/// What the reader must do after examining a partition whose position was out of range.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Examined {
    /// The log restarted below what was read: read again from its start.
    Restarted { from: i64 },
    /// Records were deleted before the reader got them: read from the log start.
    Deleted { from: i64 },
    /// Nothing wrong with this partition.
    Fine,
}

/// The recent-event buffer of one topic.
pub struct TopicFeed {
    pub topic: String,
    partitions: RwLock<Vec<RwLock<PartitionBuffer>>>,
    limits: Arc<BufferLimits>,
    changed: watch::Sender<u64>,
    /// Events appended since the feed opened (the health history's events/s per topic).
    appended: AtomicU64,
}

impl TopicFeed {
    /// A feed whose partitions begin at `begins`.
    pub(crate) fn new(topic: &str, begins: &[i64], limits: Arc<BufferLimits>) -> Self {
        let capacity = limits.events_per_partition;
        let (changed, _) = watch::channel(0);
        Self {
            topic: topic.to_string(),
            partitions: RwLock::new(
                begins
                    .iter()
                    .map(|&b| RwLock::new(PartitionBuffer::new(b, capacity)))
                    .collect(),
            ),
            limits,
            changed,
            appended: AtomicU64::new(0),
        }
    }

    /// Events appended since the feed opened (deliverable ones: tombstones are not counted).
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Number of partitions the feed reads now (it grows when partitions are added).
    pub fn partition_count(&self) -> usize {
        self.partitions.read().len()
    }

    /// A receiver that changes whenever new events were appended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Wakes the streams of this feed.
    pub(crate) fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
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

    /// Bytes held by the buffers of this topic.
    pub fn buffered_bytes(&self) -> usize {
        self.partitions.read().iter().map(|b| b.read().bytes).sum()
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

    /// Appends a batch read from Kafka (in offset order per partition), then applies `heads`:
    /// the next offset of each partition that delivered records, tombstones included. Records
    /// at or below what a partition already has are ignored (a stale fetch).
    pub(crate) fn append(&self, batch: &mut Vec<ChangeEvent>, heads: &mut [Option<i64>]) {
        let parts = self.partitions.read();
        let capacity = self.limits.events_per_partition;
        let budget = self.limits.partition_bytes(parts.len());
        // The batch is in offset order per partition; take each partition's lock once per run.
        let mut appended = 0u64;
        let mut events = batch.drain(..).peekable();
        while let Some(first) = events.next() {
            let p = first.partition as usize;
            let Some(slot) = parts.get(p) else { continue };
            let mut buf = slot.write();
            let push = |buf: &mut PartitionBuffer, ev: ChangeEvent| {
                if ev.offset < buf.next {
                    return 0;
                }
                buf.next = ev.offset + 1;
                buf.bytes += ev.json.len() + EVENT_OVERHEAD;
                buf.events.push_back(Arc::new(ev));
                1
            };
            appended += push(&mut buf, first);
            while let Some(ev) = events.next_if(|e| e.partition as usize == p) {
                appended += push(&mut buf, ev);
            }
            buf.evict(capacity, budget);
        }
        self.appended.fetch_add(appended, Ordering::Relaxed);
        // Records that were not delivered (tombstones) still move the head.
        for (p, head) in heads.iter_mut().enumerate() {
            if let (Some(next), Some(slot)) = (head.take(), parts.get(p)) {
                let mut buf = slot.write();
                buf.next = buf.next.max(next);
            }
        }
    }

    /// Adds partitions `partition_count()..` beginning at `begins`. Returns the first new
    /// partition's index.
    pub(crate) fn add_partitions(&self, begins: &[i64]) -> usize {
        let capacity = self.limits.events_per_partition;
        let mut parts = self.partitions.write();
        let first = parts.len();
        parts.extend(
            begins
                .iter()
                .map(|&b| RwLock::new(PartitionBuffer::new(b, capacity))),
        );
        first
    }

    /// Partition `p`'s position is out of range; `low`/`high` are its watermarks now. Decides
    /// what happened and resets the buffer accordingly.
    pub(crate) fn examine(&self, p: usize, low: i64, high: i64) -> Examined {
        let parts = self.partitions.read();
        let mut buf = parts[p].write();
        if high < buf.next {
            // The log restarted below what we read: the topic was deleted and recreated, or
            // truncated. Positions of the old log mean nothing in the new one.
            tracing::warn!(topic = %self.topic, partition = p, read_up_to = buf.next, end_now = high,
                "the partition's log restarted (topic recreated or truncated); streams are told and continue on the new log");
            buf.restart_at(low);
            buf.origin = low;
            buf.generation += 1;
            Examined::Restarted { from: low }
        } else if low > buf.next {
            // Retention deleted records before the reader got them. Streams positioned there
            // are behind the buffer and get a gap notice from the catch-up path.
            tracing::warn!(topic = %self.topic, partition = p, from = buf.next, to = low,
                "records were deleted before the topic reader read them");
            buf.restart_at(low);
            Examined::Deleted { from: low }
        } else {
            Examined::Fine
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    fn event(offset: i64, bytes: usize) -> Arc<ChangeEvent> {
        Arc::new(ChangeEvent {
            partition: 0,
            offset,
            op: b'c',
            timestamp_ms: 0,
            json: bytes::Bytes::from(vec![b'x'; bytes]),
            derived: Default::default(),
            received_us: 0,
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

    /// An operation on a two-partition feed, as the hub's reader and the streams do them.
    #[derive(Debug, Clone)]
    enum Op {
        /// Records read from Kafka for partition `p`: each is a deliverable event of that
        /// many bytes, or a tombstone (`None`: a hole in the offsets).
        Append {
            p: usize,
            records: Vec<Option<usize>>,
        },
        /// Another feed opened or closed: the byte share changes, then the feed trims.
        Feeds(usize),
        /// The partition's log restarted at `low` (topic recreated).
        Restart { p: usize, low: i64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0..2usize, prop::collection::vec(prop::option::weighted(0.8, 1..300usize), 1..40))
                .prop_map(|(p, records)| Op::Append { p, records }),
            1 => (1..6usize).prop_map(Op::Feeds),
            1 => (0..2usize, 0..5i64).prop_map(|(p, low)| Op::Restart { p, low }),
        ]
    }

    /// What the feed must hold: every deliverable event appended to each partition since its
    /// log (re)started, in order, and the next offset.
    #[derive(Default, Clone)]
    struct Model {
        events: Vec<(i64, usize)>,
        next: i64,
        generation: u64,
    }

    fn check(
        feed: &TopicFeed,
        models: &[Model],
        from: &[i64],
        max: usize,
    ) -> Result<(), TestCaseError> {
        let capacity = feed.limits.events_per_partition;
        let budget = feed.limits.partition_bytes(2);
        for (p, m) in models.iter().enumerate() {
            let (start, next) = (feed.start(p), feed.head(p));
            prop_assert_eq!(next, m.next, "head of partition {}", p);
            prop_assert_eq!(feed.generation(p), m.generation);
            // The buffer is exactly the model's suffix from `start`: ordered, no event lost
            // inside it, tombstones left out, and within its bounds.
            let kept: Vec<(i64, usize)> = m
                .events
                .iter()
                .copied()
                .filter(|(o, _)| *o >= start)
                .collect();
            let parts = feed.partitions.read();
            let buf = parts[p].read();
            let held: Vec<(i64, usize)> = buf
                .events
                .iter()
                .map(|e| (e.offset, e.json.len()))
                .collect();
            prop_assert_eq!(&held, &kept);
            prop_assert!(buf.events.len() <= capacity);
            prop_assert!(
                buf.bytes <= budget || buf.events.len() == 1,
                "{} bytes over {}",
                buf.bytes,
                budget
            );
            prop_assert_eq!(
                buf.bytes,
                held.iter().map(|(_, b)| b + EVENT_OVERHEAD).sum::<usize>()
            );
            prop_assert!(start <= next);
            drop(buf);
            drop(parts);

            // A stream reading from `from` in steps of `max` gets Behind below the buffer,
            // else every buffered event at or after `from`, once, in order, ending at the head.
            let mut pos = from[p];
            let mut got = Vec::new();
            let mut out = Vec::new();
            loop {
                out.clear();
                match feed.read(p, pos, m.generation, max, &mut out) {
                    Read::Behind { start: s } => {
                        prop_assert!(pos < start && s == start && got.is_empty());
                        break;
                    }
                    Read::Events { count, next } => {
                        prop_assert_eq!(count, out.len());
                        prop_assert!(count <= max);
                        got.extend(out.iter().map(|e| (e.offset, e.json.len())));
                        prop_assert!(next >= pos);
                        pos = next;
                        if count == 0 {
                            let expected: Vec<_> = kept
                                .iter()
                                .copied()
                                .filter(|(o, _)| *o >= from[p])
                                .collect();
                            prop_assert_eq!(&got, &expected);
                            if from[p] <= m.next {
                                prop_assert_eq!(pos, m.next, "a stream at the end is at the head");
                            }
                            break;
                        }
                    }
                    Read::Restarted { .. } => prop_assert!(false, "same generation"),
                }
            }
            // A position of an older generation is told where the new log begins.
            if m.generation > 0 {
                out.clear();
                prop_assert_eq!(
                    feed.read(p, from[p], m.generation - 1, max, &mut out),
                    Read::Restarted {
                        generation: m.generation,
                        to: feed.origin(p)
                    }
                );
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn streams_see_every_buffered_event_once_in_order(
            ops in prop::collection::vec(op(), 1..60),
            capacity in 1..50usize,
            per_topic in 200..20_000usize,
            from in (0..400i64, 0..400i64),
            max in 1..20usize,
        ) {
            let limits = Arc::new(BufferLimits::new(capacity, per_topic, 3 * per_topic));
            limits.open_feeds.store(1, Ordering::Relaxed);
            let feed = TopicFeed::new("t", &[0, 0], limits.clone());
            let mut models = vec![Model::default(), Model::default()];
            for op in ops {
                match op {
                    Op::Append { p, records } => {
                        let m = &mut models[p];
                        let mut batch = Vec::new();
                        let mut offset = m.next;
                        for r in &records {
                            if let Some(bytes) = r {
                                batch.push(ChangeEvent {
                                    partition: p as i32,
                                    offset,
                                    op: b'c',
                                    timestamp_ms: 0,
                                    json: bytes::Bytes::from(vec![b'x'; *bytes]),
                                    derived: Default::default(),
                                    received_us: 0,
                                });
                                m.events.push((offset, *bytes));
                            }
                            offset += 1;
                        }
                        m.next = offset;
                        let mut heads = [None, None];
                        heads[p] = Some(offset);
                        feed.append(&mut batch, &mut heads);
                        // A stale fetch of the same records changes nothing.
                        let mut again: Vec<ChangeEvent> = records.iter().enumerate().filter_map(|(i, r)| r.map(|b| ChangeEvent {
                            partition: p as i32,
                            offset: offset - records.len() as i64 + i as i64,
                            op: b'c',
                            timestamp_ms: 0,
                            json: bytes::Bytes::from(vec![b'y'; b]),
                            derived: Default::default(),
                            received_us: 0,
                        })).collect();
                        feed.append(&mut again, &mut [None, None]);
                    }
                    Op::Feeds(n) => {
                        limits.open_feeds.store(n, Ordering::Relaxed);
                        feed.trim();
                    }
                    Op::Restart { p, low } => {
                        // Only a log that ends below what was read is a restart.
                        if low < models[p].next {
                            prop_assert_eq!(feed.examine(p, low, low), Examined::Restarted { from: low });
                            models[p] = Model { events: vec![], next: low, generation: models[p].generation + 1 };
                        }
                    }
                }
                check(&feed, &models, &[from.0, from.1], max)?;
            }
        }
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
            limits.reader_prefetch_kbytes(),
            12_800,
            "an eighth of the budget, in KiB"
        );
    }
}
