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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use parking_lot::{Mutex, RwLock};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::{KafkaMeta, KafkaSettings};
use crate::event::{self, ChangeEvent};

/// Most records the reader takes in one batch before it notifies the streams.
const READER_BATCH: usize = 4096;

struct PartitionBuffer {
    /// First offset covered by the buffer.
    start: i64,
    /// Next offset the reader will see (the head of the partition as far as we know).
    next: i64,
    events: VecDeque<Arc<ChangeEvent>>,
}

/// What a stream found when it looked for events at its position.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// Copied this many events; the stream's new position is `next`.
    Events { count: usize, next: i64 },
    /// The position is older than the buffer, which starts at `start`.
    Behind { start: i64 },
}

/// The shared reader and recent-event buffer of one topic.
pub struct TopicFeed {
    pub topic: String,
    partitions: Vec<RwLock<PartitionBuffer>>,
    capacity: usize,
    changed: watch::Sender<u64>,
    stop: AtomicBool,
}

impl TopicFeed {
    /// Number of partitions the feed reads (as known when it started).
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// A receiver that changes whenever new events were appended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Next offset of partition `p` (what a stream starting at "latest" begins with).
    pub fn head(&self, p: usize) -> i64 {
        self.partitions[p].read().next
    }

    /// First offset still buffered for partition `p`.
    pub fn start(&self, p: usize) -> i64 {
        self.partitions[p].read().start
    }

    /// Copies up to `max` events of partition `p` at or after `from` into `out`.
    pub fn read(&self, p: usize, from: i64, max: usize, out: &mut Vec<Arc<ChangeEvent>>) -> Read {
        let buf = self.partitions[p].read();
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

    /// Starts the reader of `topic` at `max(low, high - capacity)` of every partition, so the
    /// buffer is warm from the first subscriber on.
    async fn open(
        settings: &KafkaSettings,
        meta: &KafkaMeta,
        topic: &str,
        capacity: usize,
    ) -> Result<Arc<Self>> {
        let count = meta
            .partition_count(topic)
            .await?
            .with_context(|| format!("topic {topic} does not exist"))?;
        let mut partitions = Vec::with_capacity(count);
        let mut tpl = TopicPartitionList::new();
        for p in 0..count as i32 {
            let (low, high) = meta.watermarks(topic, p).await?;
            let begin = low.max(high - capacity as i64);
            partitions.push(RwLock::new(PartitionBuffer {
                start: begin,
                next: begin,
                events: VecDeque::with_capacity(capacity.min(1024)),
            }));
            tpl.add_partition_offset(topic, p, Offset::Offset(begin))?;
        }
        let consumer: BaseConsumer = settings
            .consumer_config()
            .set("queued.max.messages.kbytes", "16384")
            .create()
            .context("creating a topic reader")?;
        consumer
            .assign(&tpl)
            .with_context(|| format!("assigning the partitions of {topic}"))?;
        let (changed, _) = watch::channel(0);
        let feed = Arc::new(Self {
            topic: topic.to_string(),
            partitions,
            capacity,
            changed,
            stop: AtomicBool::new(false),
        });
        let reader = feed.clone();
        std::thread::Builder::new()
            .name(format!("feed-{topic}"))
            .spawn(move || reader.run(consumer))
            .context("starting a topic reader thread")?;
        Ok(feed)
    }

    fn run(&self, consumer: BaseConsumer) {
        let mut batch: Vec<ChangeEvent> = Vec::with_capacity(256);
        let mut heads: Vec<Option<i64>> = vec![None; self.partitions.len()];
        let mut last_warning = None;
        while !self.stop.load(Ordering::Relaxed) {
            let mut timeout = Duration::from_millis(100);
            let mut taken = 0;
            while taken < READER_BATCH {
                match consumer.poll(timeout) {
                    None => break,
                    Some(Err(e)) => {
                        // A deleted topic or an unreachable broker repeats on every poll:
                        // log it at most every 10 s.
                        if last_warning.is_none_or(|t: std::time::Instant| {
                            t.elapsed() > Duration::from_secs(10)
                        }) {
                            tracing::warn!(topic = %self.topic, error = %e, "topic reader error");
                            last_warning = Some(std::time::Instant::now());
                        }
                        break;
                    }
                    Some(Ok(m)) => {
                        taken += 1;
                        let p = m.partition();
                        if p < 0 || p as usize >= heads.len() {
                            continue; // a partition added after start: not served
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
        // The batch is in offset order per partition; take each partition's lock once per run.
        let mut events = batch.drain(..).peekable();
        while let Some(first) = events.next() {
            let p = first.partition as usize;
            let mut buf = self.partitions[p].write();
            buf.next = buf.next.max(first.offset + 1);
            buf.events.push_back(Arc::new(first));
            while let Some(ev) = events.next_if(|e| e.partition as usize == p) {
                buf.next = buf.next.max(ev.offset + 1);
                buf.events.push_back(Arc::new(ev));
            }
            while buf.events.len() > self.capacity {
                let old = buf.events.pop_front().expect("non-empty");
                buf.start = old.offset + 1;
            }
        }
        // Records that were not delivered (tombstones) still move the head.
        for (p, head) in heads.iter_mut().enumerate() {
            if let Some(next) = head.take() {
                let mut buf = self.partitions[p].write();
                buf.next = buf.next.max(next);
            }
        }
    }
}

impl TopicFeed {
    /// Stops the reader thread (at shutdown).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Owns the topic feeds: one per topic, started on first use and kept for the process's life.
pub struct FeedHub {
    settings: KafkaSettings,
    meta: KafkaMeta,
    capacity: usize,
    feeds: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<TopicFeed>>>>>,
}

impl FeedHub {
    pub fn new(settings: KafkaSettings, meta: KafkaMeta, capacity: usize) -> Self {
        Self {
            settings,
            meta,
            capacity,
            feeds: Mutex::new(HashMap::new()),
        }
    }

    /// The feed of `topic`, starting its reader if this is the first use.
    pub async fn feed(&self, topic: &str) -> Result<Arc<TopicFeed>> {
        let cell = self
            .feeds
            .lock()
            .entry(topic.to_string())
            .or_default()
            .clone();
        let feed = cell
            .get_or_try_init(|| TopicFeed::open(&self.settings, &self.meta, topic, self.capacity))
            .await?;
        Ok(feed.clone())
    }

    /// The feeds started so far (for metrics).
    pub fn started(&self) -> Vec<Arc<TopicFeed>> {
        self.feeds
            .lock()
            .values()
            .filter_map(|c| c.get().cloned())
            .collect()
    }

    pub fn meta(&self) -> &KafkaMeta {
        &self.meta
    }

    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }
}
