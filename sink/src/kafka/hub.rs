//! The hub: one shared Kafka reader for every open topic feed, and the feeds' lifecycle.
//!
//! Design: a single librdkafka consumer (no group; partitions assigned explicitly) on one
//! thread reads every partition of every open topic and hands each record, parsed once, to
//! its topic's [`TopicFeed`]. One client instead of one per topic: a librdkafka client costs
//! threads and buffers (about 1 MiB measured per topic reader), which the byte budget cannot
//! see, and its prefetch is one queue bounded by the budget (`reader_prefetch_kbytes`), not one
//! per topic.
//!
//! Lifecycle of a feed: opened on first use (its partitions assigned at `max(low, high -
//! capacity)` so the buffer is warm for the first subscriber), kept while streams or requests
//! hold it, closed after `idle` without a user (its partitions unassigned).
//!
//! Nothing moves silently: the reader never lets librdkafka reset a position
//! (`auto.offset.reset=error`). An out-of-range position makes the hub examine every open
//! partition against its watermarks (the error does not say which one): records deleted under
//! the reader, or a log that restarted below what was read (see `feed.rs`). Every
//! [`REFRESH_EVERY`] the hub also looks for partitions added to open topics and reads them from
//! their beginning. That check runs beside the reader, not on its thread, and asks the
//! separate metadata client; only a topic that did grow is then looked up by the reader's own
//! client (which must know a partition to read it). A metadata request for every topic on the
//! reader's thread held every live event for its round trip: 8–11 ms every 5 s with 500
//! topics on the broker (the `sse_fanout` latency run's episodes), more with more topics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use parking_lot::{Mutex, RwLock};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::feed::{BufferLimits, Examined, TopicFeed};
use super::{KafkaMeta, KafkaSettings, METADATA_TIMEOUT};
use crate::event::{self, ChangeEvent};

/// Most records the reader takes in one batch before it notifies the streams.
const READER_BATCH: usize = 4096;

/// Longest the reader parses one batch before it notifies the streams (µs since it took the
/// batch's first record): librdkafka hands over a whole fetch at once, and without this cap the
/// first event of a 50-record fetch waited for the parsing of the other 49 (about 150 µs at
/// 10,000 ev/s) before any stream could send it. Streams that are busy are not woken, so a
/// catching-up reader still appends in large batches for them to read.
const BATCH_WITHIN_US: u64 = 50;

/// How often the reader checks open topics for added partitions.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

type FeedCell = Arc<tokio::sync::OnceCell<Arc<TopicFeed>>>;

/// What one poll round read for a topic: its feed, the events, and the next offset of each
/// partition that delivered records (tombstones included).
type TopicBatch = (Arc<TopicFeed>, Vec<ChangeEvent>, Vec<Option<i64>>);

/// The shared reader: the consumer, and which feed each topic's records go to.
struct Reader {
    consumer: BaseConsumer,
    routes: RwLock<HashMap<String, Arc<TopicFeed>>>,
    /// Serialises assignment changes (open, close, refresh, reposition).
    assign: Mutex<()>,
    stop: AtomicBool,
}

/// Owns the topic feeds and the shared reader that fills them.
pub struct FeedHub {
    settings: KafkaSettings,
    meta: KafkaMeta,
    limits: Arc<BufferLimits>,
    feeds: Mutex<HashMap<String, (FeedCell, Instant)>>,
    reader: Arc<Reader>,
}

impl FeedHub {
    /// Creates the shared reader and starts its thread.
    pub fn start(settings: KafkaSettings, meta: KafkaMeta, limits: BufferLimits) -> Result<Self> {
        let prefetch = limits.reader_prefetch_kbytes();
        let consumer: BaseConsumer = settings
            .consumer_config()
            .set("queued.max.messages.kbytes", prefetch.to_string())
            // When the prefetch queue is over its limit, librdkafka waits this long before the
            // next fetch (default 1 s): a live burst would then stall every stream for a
            // second. The reader drains the queue continuously, so 1 ms only costs a fetch.
            .set("fetch.queue.backoff.ms", "1")
            // Never jump: an out-of-range position is examined (see `reposition`).
            .set("auto.offset.reset", "error")
            .create()
            .context("creating the shared topic reader")?;
        let reader = Arc::new(Reader {
            consumer,
            routes: RwLock::new(HashMap::new()),
            assign: Mutex::new(()),
            stop: AtomicBool::new(false),
        });
        let run = reader.clone();
        std::thread::Builder::new()
            .name("topic-reader".into())
            .spawn(move || run.run())
            .context("starting the shared topic reader")?;
        Ok(Self {
            settings,
            meta,
            limits: Arc::new(limits),
            feeds: Mutex::new(HashMap::new()),
            reader,
        })
    }

    /// The feed of `topic`, opening it if this is the first use.
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
                self.open(topic)
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

    async fn open(&self, topic: &str) -> Result<Arc<TopicFeed>> {
        let count = self
            .meta
            .partition_count(topic)
            .await?
            .with_context(|| format!("topic {topic} does not exist"))?;
        // Warm the buffer with no more history than its share of the byte budget can keep
        // (counting 1 KiB per event until sizes are known): reading further back only to
        // evict it again costs the fetch and, while it lasts, the memory.
        self.limits.open_feeds.fetch_add(1, Ordering::Relaxed);
        let share = self.limits.warm_events(count);
        self.limits.open_feeds.fetch_sub(1, Ordering::Relaxed);
        let capacity = (self.limits.events_per_partition as i64).min(share);
        let mut begins = Vec::with_capacity(count);
        for p in 0..count as i32 {
            let (low, high) = self.meta.watermarks(topic, p).await?;
            begins.push(low.max(high - capacity));
        }
        self.limits.open_feeds.fetch_add(1, Ordering::Relaxed);
        let feed = Arc::new(TopicFeed::new(topic, &begins, self.limits.clone()));
        let reader = self.reader.clone();
        let route = feed.clone();
        tokio::task::spawn_blocking(move || reader.add(route, 0, &begins))
            .await
            .context("feed open task")??;
        Ok(feed)
    }

    /// Makes `feed` read every partition the broker has now (blocking: a metadata request).
    pub fn refresh(&self, feed: &TopicFeed) -> Result<()> {
        self.reader.refresh(&feed.topic)
    }

    /// Closes the feeds that no stream or request has held for `idle`. Returns how many were
    /// closed.
    pub fn close_idle(&self, idle: Duration) -> usize {
        let mut closing = Vec::new();
        self.feeds.lock().retain(|_, (cell, last_used)| {
            // Held elsewhere: by a request that is opening it (the cell), or by streams (the
            // feed; the map's cell and the reader's route hold one reference each).
            let in_use =
                Arc::strong_count(cell) > 1 || cell.get().is_some_and(|f| Arc::strong_count(f) > 2);
            if in_use {
                *last_used = Instant::now();
                return true;
            }
            if cell.get().is_none() || last_used.elapsed() < idle {
                return true;
            }
            closing.extend(cell.get().cloned());
            false
        });
        for feed in &closing {
            if let Err(e) = self.reader.remove(feed) {
                tracing::warn!(topic = %feed.topic, error = format!("{e:#}"), "could not unassign a closed feed");
            }
            self.limits.open_feeds.fetch_sub(1, Ordering::Relaxed);
        }
        closing.len()
    }

    /// Every [`REFRESH_EVERY`] until `stop`, looks for partitions added to open topics (through
    /// the metadata client) and starts reading them from their beginning.
    pub fn spawn_partition_watch(self: &Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REFRESH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stop.cancelled() => return,
                }
                if hub.reader.routes.read().is_empty() {
                    continue;
                }
                let counts = match hub.meta.topic_partitions().await {
                    Ok(counts) => counts,
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), "topic metadata check failed");
                        continue;
                    }
                };
                let feeds: Vec<Arc<TopicFeed>> =
                    hub.reader.routes.read().values().cloned().collect();
                for feed in feeds {
                    let known = feed.partition_count();
                    if counts.get(&feed.topic).is_none_or(|&n| n <= known) {
                        continue;
                    }
                    // The reader's own client learns of the partitions (its metadata for the
                    // topic) before it can read them.
                    let reader = hub.reader.clone();
                    let topic = feed.topic.clone();
                    let added = tokio::task::spawn_blocking(move || reader.refresh(&topic)).await;
                    if let Some(e) = match added {
                        Ok(r) => r.err(),
                        Err(e) => Some(e.into()),
                    } {
                        tracing::warn!(topic = %feed.topic, error = format!("{e:#}"), "could not read the partitions added to a topic");
                    }
                }
            }
        });
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
                        let h = hub.clone();
                        let n = tokio::task::spawn_blocking(move || h.close_idle(idle)).await.unwrap_or(0);
                        if n > 0 {
                            tracing::info!(closed = n, "closed unused topic feeds");
                        }
                    }
                    _ = stop.cancelled() => return,
                }
            }
        });
    }

    /// The feeds open now (for metrics).
    pub fn started(&self) -> Vec<Arc<TopicFeed>> {
        self.feeds
            .lock()
            .values()
            .filter_map(|(c, _)| c.get().cloned())
            .collect()
    }

    /// Stops the shared reader (at shutdown).
    pub fn shutdown(&self) {
        self.reader.stop.store(true, Ordering::Relaxed);
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

impl Reader {
    /// Routes `feed`'s records to it and assigns its partitions `first..` at `begins`.
    fn add(&self, feed: Arc<TopicFeed>, first: usize, begins: &[i64]) -> Result<()> {
        let _serial = self.assign.lock();
        let mut tpl = TopicPartitionList::new();
        for (i, &b) in begins.iter().enumerate() {
            tpl.add_partition_offset(&feed.topic, (first + i) as i32, Offset::Offset(b))?;
        }
        self.routes.write().insert(feed.topic.clone(), feed.clone());
        self.consumer
            .incremental_assign(&tpl)
            .with_context(|| format!("assigning the partitions of {}", feed.topic))
    }

    /// Stops reading `feed`'s topic.
    fn remove(&self, feed: &TopicFeed) -> Result<()> {
        let _serial = self.assign.lock();
        self.routes.write().remove(&feed.topic);
        let mut tpl = TopicPartitionList::new();
        for p in 0..feed.partition_count() {
            tpl.add_partition(&feed.topic, p as i32);
        }
        self.consumer
            .incremental_unassign(&tpl)
            .with_context(|| format!("unassigning the partitions of {}", feed.topic))
    }

    /// Starts reading partitions added to `topic` since it was opened, from their beginning.
    fn refresh(&self, topic: &str) -> Result<()> {
        let Some(feed) = self.routes.read().get(topic).cloned() else {
            return Ok(()); // closed meanwhile
        };
        let md = self
            .consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .context("reading topic metadata")?;
        let Some(count) = md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len())
        else {
            return Ok(());
        };
        let known = feed.partition_count();
        if count <= known {
            return Ok(());
        }
        let _serial = self.assign.lock();
        if feed.partition_count() != known {
            return Ok(()); // someone else added them meanwhile
        }
        let mut begins = Vec::with_capacity(count - known);
        for p in known..count {
            let (low, _) = self
                .consumer
                .fetch_watermarks(topic, p as i32, METADATA_TIMEOUT)
                .with_context(|| format!("reading watermarks of {topic}[{p}]"))?;
            begins.push(low);
        }
        feed.add_partitions(&begins);
        let mut tpl = TopicPartitionList::new();
        for (i, &b) in begins.iter().enumerate() {
            tpl.add_partition_offset(topic, (known + i) as i32, Offset::Offset(b))?;
        }
        self.consumer
            .incremental_assign(&tpl)
            .with_context(|| format!("assigning the new partitions of {topic}"))?;
        tracing::info!(
            topic,
            from = known,
            to = count,
            "partitions added to the topic are now read"
        );
        feed.notify();
        Ok(())
    }

    /// Some position was out of range: examine every open partition against its watermarks
    /// and move the reader where each log now is. Every partition is assigned again (at its
    /// buffer's head where nothing happened): the error does not say which partition stopped
    /// fetching, and a stopped partition must not stay stopped.
    fn reposition(&self) -> Result<()> {
        let _serial = self.assign.lock();
        let feeds: Vec<Arc<TopicFeed>> = self.routes.read().values().cloned().collect();
        for feed in feeds {
            let mut all = TopicPartitionList::new();
            let mut changed = false;
            for p in 0..feed.partition_count() {
                let (low, high) = self
                    .consumer
                    .fetch_watermarks(&feed.topic, p as i32, METADATA_TIMEOUT)
                    .with_context(|| format!("reading watermarks of {}[{p}]", feed.topic))?;
                let at = match feed.examine(p, low, high) {
                    Examined::Fine => feed.head(p),
                    Examined::Restarted { from } | Examined::Deleted { from } => {
                        changed = true;
                        from
                    }
                };
                all.add_partition_offset(&feed.topic, p as i32, Offset::Offset(at))?;
            }
            // Re-assigning restarts fetching, which stopped at the error.
            self.consumer.incremental_unassign(&all)?;
            self.consumer.incremental_assign(&all)?;
            if changed {
                feed.notify();
            }
        }
        Ok(())
    }

    fn run(&self) {
        let mut batches: HashMap<String, TopicBatch> = HashMap::new();
        let mut last_warning: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let mut timeout = Duration::from_millis(100);
            let mut taken = 0;
            let mut reposition = false;
            // When the batch's first and latest records were taken (`metrics::mono_us`).
            let (mut first_us, mut last_us) = (0, 0);
            while taken < READER_BATCH && last_us - first_us < BATCH_WITHIN_US {
                match self.consumer.poll(timeout) {
                    None => break,
                    Some(Err(KafkaError::MessageConsumption(
                        RDKafkaErrorCode::AutoOffsetReset,
                    ))) => {
                        reposition = true;
                        break;
                    }
                    Some(Err(e)) => {
                        // A deleted topic or an unreachable broker repeats on every poll:
                        // log it at most every 10 s.
                        if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                            tracing::warn!(error = %e, "topic reader error");
                            last_warning = Some(Instant::now());
                        }
                        break;
                    }
                    Some(Ok(m)) => {
                        taken += 1;
                        last_us = crate::metrics::mono_us();
                        if first_us == 0 {
                            first_us = last_us;
                        }
                        let topic = m.topic();
                        if !batches.contains_key(topic) {
                            let Some(feed) = self.routes.read().get(topic).cloned() else {
                                continue; // a feed closed a moment ago
                            };
                            batches.insert(topic.to_string(), (feed, Vec::new(), Vec::new()));
                        }
                        let (feed, batch, heads) = batches.get_mut(topic).expect("inserted");
                        let p = m.partition() as usize;
                        if heads.len() <= p {
                            heads.resize(feed.partition_count().max(p + 1), None);
                        }
                        heads[p] = Some(m.offset() + 1);
                        let ts = m.timestamp().to_millis().unwrap_or(0);
                        if let Some(mut ev) = event::from_record(
                            topic,
                            m.partition(),
                            m.offset(),
                            ts,
                            m.key(),
                            m.payload(),
                        ) {
                            ev.received_us = last_us;
                            batch.push(ev);
                        }
                    }
                }
                timeout = Duration::ZERO;
            }
            for (_, (feed, mut batch, mut heads)) in batches.drain() {
                feed.append(&mut batch, &mut heads);
                feed.notify();
            }
            if reposition {
                if let Err(e) = self.reposition() {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not reposition the topic reader"
                    );
                }
            }
        }
    }
}
