//! Shared replay of history older than the topic buffers: a pool of Kafka readers that read
//! a partition in *chunks*, and a byte-bounded cache of those chunks that every stream reads.
//!
//! A stream whose position is older than its topic's buffer (a resume from an old cursor, a
//! consumer created with `start: earliest`, a slow stream under the catch-up policy) asks the
//! pool for the chunk that covers its position. Streams replaying the same history therefore
//! share the reading, the parsing and the memory: the first one to reach a position reads it
//! from Kafka, the others find it in the cache, or wait for the read already under way.
//!
//! - **Readers are pooled and capped** (`max_readers`). A reader serves one partition and is
//!   parked after each chunk at the offset where it stopped, still prefetching; the next chunk
//!   of that partition takes it back, so a replay runs as one sequential read. When every
//!   reader is taken, the least recently parked one is closed for the new read, or the read
//!   waits for one. Parked readers close after [`READER_IDLE`].
//! - **Parsing runs beside the reading.** A reader copies records out of the Kafka client
//!   into batches (`PARSE_BATCH` records or `PARSE_BATCH_BYTES`), and each batch is parsed
//!   into events on a blocking thread, at most one per core for the whole pool. Parsing is
//!   most of a replay's CPU; a single task doing both was the ceiling of a one-client
//!   replay (`backlog_replay`).
//! - **The cache is bounded in bytes** and forgets the least recently used chunk first. The
//!   chunk after the one a stream reads is read ahead, by the reader parked there.
//! - **No silent jumps.** Readers run with `auto.offset.reset=error`: a read whose position
//!   retention deleted gets an error, never a reset, and the chunk records the exact range
//!   that was lost (`[lost_from, end)`, up to the log start), which the stream reports as a
//!   gap. Offsets with no record between two records read in one sequence (transaction
//!   markers, aborted or compacted records) are not losses, so they cost no broker call.
//! - Chunks are keyed by the partition's *generation* (see `feed.rs`): a chunk of a log that
//!   was deleted and recreated is never served to a position of the new one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::StreamExt;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::feed::EVENT_OVERHEAD;
use super::{KafkaMeta, KafkaSettings, FETCH_MAX_BYTES, PARTITION_FETCH_MAX_BYTES};
use crate::event::{self, ChangeEvent};
use crate::memory::MemoryGuard;

/// A parked reader nobody took back for this long is closed.
pub const READER_IDLE: Duration = Duration::from_secs(10);
/// How long a read waits for the first record of a chunk.
const FIRST_RECORD_WAIT: Duration = Duration::from_secs(2);
/// Once records flow, a pause this long ends the chunk.
const NEXT_RECORD_WAIT: Duration = Duration::from_millis(20);
/// Most events in one chunk, whatever their size.
const CHUNK_MAX_EVENTS: usize = 16_384;
/// How long a read that failed, or found nothing readable, waits before it answers.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// A stream joins a read under way that started at most this many offsets before it.
const JOIN_WINDOW: i64 = 4_096;
/// Records parsed by one task (see [`Batch`]), and most bytes of them copied out.
const PARSE_BATCH: usize = 512;
const PARSE_BATCH_BYTES: usize = 256 << 10;

/// Records of one partition copied out of the Kafka client, to be parsed into events on a
/// thread of their own: copying a record costs a fraction of parsing it, so the reader goes
/// on while the batches it filled are parsed on the other cores.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    records: Vec<Copied>,
}

/// A record in a [`Batch`]: its offset, its timestamp, and where its key and its value
/// (absent for a null) are in the batch's bytes.
#[derive(Clone, Copy)]
struct Copied {
    offset: i64,
    ts: i64,
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn push(&mut self, offset: i64, ts: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let mut copy = |b: Option<&[u8]>| {
            b.map(|b| {
                self.bytes.extend_from_slice(b);
                (self.bytes.len() - b.len(), self.bytes.len())
            })
        };
        let (key, value) = (copy(key), copy(value));
        self.records.push(Copied {
            offset,
            ts,
            key,
            value,
        });
    }

    /// The events of the batch, in offset order (tombstones have none), parsed on a thread
    /// of tokio's blocking pool under `permit` (a task on the async workers would run on the
    /// reader's own worker: tokio runs the task spawned last first, and no other worker may
    /// take it).
    fn parse(
        self,
        topic: Arc<str>,
        partition: i32,
        permit: OwnedSemaphorePermit,
    ) -> tokio::task::JoinHandle<Vec<Arc<ChangeEvent>>> {
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let at = |r: Option<(usize, usize)>| r.map(|(a, b)| &self.bytes[a..b]);
            self.records
                .iter()
                .filter_map(|r| {
                    event::from_record(&topic, partition, r.offset, r.ts, at(r.key), at(r.value))
                })
                .map(Arc::new)
                .collect()
        })
    }
}

/// Limits of the pool.
#[derive(Debug, Clone)]
pub struct ReplayLimits {
    /// Kafka readers that may exist at once (busy or parked).
    pub max_readers: usize,
    /// Bytes of chunks kept in the cache.
    pub cache_bytes: usize,
    /// A chunk ends once the records read for it hold this many bytes.
    pub chunk_bytes: usize,
    /// librdkafka's prefetch queue of each reader, in KiB.
    pub prefetch_kbytes: usize,
}

impl ReplayLimits {
    /// Limits derived from the buffers' global budget: the cache gets a quarter of it, the
    /// readers' prefetch queues together another quarter.
    pub fn from_budget(budget: usize, max_readers: usize) -> Self {
        let cache_bytes = budget / 4;
        Self {
            max_readers: max_readers.max(1),
            cache_bytes,
            chunk_bytes: (cache_bytes / 16).clamp(64 << 10, 4 << 20),
            prefetch_kbytes: (budget / 4 / max_readers.max(1) / 1024).clamp(256, 4 * 1024),
        }
    }

    /// Most bytes (on the wire) of one fetch response of a reader: a quarter of its prefetch,
    /// between the shared reader's partition share and its whole response.
    pub fn fetch_bytes(&self) -> usize {
        (self.prefetch_kbytes * 1024 / 4).clamp(PARTITION_FETCH_MAX_BYTES, FETCH_MAX_BYTES)
    }
}

/// Consecutive records of one partition as one reader read them: the events of offsets
/// `[start, end)`, in offset order (tombstones and offsets without records are absent).
#[derive(Debug)]
pub struct Chunk {
    pub start: i64,
    pub end: i64,
    pub events: Vec<Arc<ChangeEvent>>,
    /// Offsets `[lost_from, end)` had been deleted by retention when the reader got there.
    pub lost_from: Option<i64>,
    bytes: usize,
    last_used: AtomicU64,
}

impl Chunk {
    pub fn covers(&self, pos: i64) -> bool {
        self.start <= pos && pos < self.end
    }

    /// The events at or after `pos`.
    pub fn events_from(&self, pos: i64) -> &[Arc<ChangeEvent>] {
        let i = self.events.partition_point(|e| e.offset < pos);
        &self.events[i..]
    }

    /// What a stream at `pos`, past every event of the chunk, must report as lost before it
    /// moves to `end`.
    pub fn lost_after(&self, pos: i64) -> Option<(i64, i64)> {
        let from = self.lost_from?.max(pos);
        (from < self.end).then_some((from, self.end))
    }
}

/// Partition of a topic, in one generation of its log.
type Key = (String, usize, u64);

type Fetch = Shared<BoxFuture<'static, Result<Option<Arc<Chunk>>, String>>>;

struct Reader {
    consumer: StreamConsumer,
    _permit: OwnedSemaphorePermit,
}

struct Parked {
    key: Key,
    next: i64,
    reader: Reader,
    since: Instant,
}

#[derive(Default)]
struct State {
    cache: HashMap<Key, BTreeMap<i64, Arc<Chunk>>>,
    cache_bytes: usize,
    inflight: HashMap<Key, Vec<(i64, Fetch)>>,
    parked: Vec<Parked>,
}

/// Counters for `/metrics` (registered in `crate::metrics`).
#[derive(Debug, Default)]
pub struct ReplayStats {
    /// Readers open now (busy or parked).
    pub readers: Gauge,
    /// Reads that found every reader taken and waited for one.
    pub reader_waits: Counter,
    /// Chunks read from Kafka.
    pub chunks_read: Counter,
    /// Requests answered from the cache or by joining a read under way.
    pub chunks_shared: Counter,
    /// Bytes of chunks in the cache.
    pub cache_bytes: Gauge,
}

/// The pool of replay readers and the chunk cache (one per sink).
pub struct ReplayPool {
    kafka: KafkaSettings,
    meta: KafkaMeta,
    limits: ReplayLimits,
    permits: Arc<Semaphore>,
    /// Reads waiting for a place under the cap.
    waiting: AtomicUsize,
    /// While the process is near its memory limit, reads run one at a time (this gate).
    memory: Option<Arc<MemoryGuard>>,
    pressure_gate: Arc<Semaphore>,
    /// Batches of records being parsed at once, by every reader: one per core.
    parsers: Arc<Semaphore>,
    state: Mutex<State>,
    tick: AtomicU64,
    pub stats: ReplayStats,
}

impl ReplayPool {
    pub fn new(kafka: KafkaSettings, meta: KafkaMeta, limits: ReplayLimits) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(limits.max_readers)),
            waiting: AtomicUsize::new(0),
            memory: None,
            pressure_gate: Arc::new(Semaphore::new(1)),
            parsers: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            kafka,
            meta,
            limits,
            state: Mutex::new(State::default()),
            tick: AtomicU64::new(0),
            stats: ReplayStats::default(),
        })
    }

    /// The same pool, reading one chunk at a time while `memory` is under pressure.
    pub fn with_memory(self: Arc<Self>, memory: Arc<MemoryGuard>) -> Arc<Self> {
        let mut pool = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("with_memory is called at construction"));
        pool.memory = Some(memory);
        Arc::new(pool)
    }

    pub fn limits(&self) -> &ReplayLimits {
        &self.limits
    }

    /// The chunk of `partition` of `topic` (log generation `generation`) that covers `pos`.
    /// `until` is where the caller's buffer of recent events starts: a read stops there, and
    /// nothing is read ahead past it. Waits up to `wait` for a read; `None` when it is not
    /// ready yet (ask again: the read goes on) or when the partition holds nothing at `pos`.
    pub async fn chunk(
        self: &Arc<Self>,
        topic: &str,
        partition: usize,
        generation: u64,
        pos: i64,
        until: i64,
        wait: Duration,
    ) -> Result<Option<Arc<Chunk>>> {
        let key: Key = (topic.to_string(), partition, generation);
        let fetch = {
            let mut st = self.state.lock();
            if let Some(c) = self.cached(&st, &key, pos) {
                self.stats.chunks_shared.inc();
                self.read_ahead(&mut st, &key, &c, until);
                return Ok(Some(c));
            }
            let joined = st.inflight.get(&key).and_then(|v| {
                v.iter()
                    .find(|(start, _)| *start <= pos && pos - *start <= JOIN_WINDOW)
                    .map(|(_, f)| f.clone())
            });
            match joined {
                Some(f) => {
                    self.stats.chunks_shared.inc();
                    f
                }
                None => self.start_fetch(&mut st, key.clone(), pos, until),
            }
        };
        let got = match tokio::time::timeout(wait, fetch).await {
            Err(_) => return Ok(None),
            Ok(r) => r.map_err(|e| anyhow::anyhow!(e))?,
        };
        let Some(c) = got.filter(|c| c.covers(pos)) else {
            return Ok(None);
        };
        c.last_used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let mut st = self.state.lock();
        self.read_ahead(&mut st, &key, &c, until);
        Ok(Some(c))
    }

    fn cached(&self, st: &State, key: &Key, pos: i64) -> Option<Arc<Chunk>> {
        let (_, c) = st.cache.get(key)?.range(..=pos).next_back()?;
        c.covers(pos).then(|| {
            c.last_used
                .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
            c.clone()
        })
    }

    /// Starts reading the chunk after `c` with the reader parked there, so the stream finds
    /// it ready (the parsing runs beside the stream's writing). At most one read ahead per
    /// parked reader; the new chunk is the most recently used, so the cache forgets chunks
    /// already read before it.
    fn read_ahead(self: &Arc<Self>, st: &mut State, key: &Key, c: &Chunk, until: i64) {
        if c.lost_from.is_some()
            || c.end >= until
            || self.cached(st, key, c.end).is_some()
            || st
                .inflight
                .get(key)
                .is_some_and(|v| v.iter().any(|(s, _)| *s == c.end))
            || !st.parked.iter().any(|r| &r.key == key && r.next == c.end)
        {
            return;
        }
        // The read goes on by itself (a spawned task); whoever needs the chunk joins it.
        drop(self.start_fetch(st, key.clone(), c.end, until));
    }

    fn start_fetch(self: &Arc<Self>, st: &mut State, key: Key, pos: i64, until: i64) -> Fetch {
        let pool = self.clone();
        let k = key.clone();
        let task = tokio::spawn(async move {
            let read = pool.read_chunk(&k, pos, until).await;
            let mut st = pool.state.lock();
            if let Some(v) = st.inflight.get_mut(&k) {
                v.retain(|(s, _)| *s != pos);
                if v.is_empty() {
                    st.inflight.remove(&k);
                }
            }
            match read {
                Ok(Some(c)) => {
                    let c = Arc::new(c);
                    pool.insert(&mut st, k, c.clone());
                    Ok(Some(c))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(format!("{e:#}")),
            }
        });
        let fetch: Fetch = async move {
            match task.await {
                Ok(r) => r,
                Err(e) => Err(format!("replay read failed: {e}")),
            }
        }
        .boxed()
        .shared();
        st.inflight
            .entry(key)
            .or_default()
            .push((pos, fetch.clone()));
        fetch
    }

    fn insert(&self, st: &mut State, key: Key, c: Arc<Chunk>) {
        c.last_used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        st.cache_bytes += c.bytes;
        if let Some(old) = st.cache.entry(key).or_default().insert(c.start, c) {
            st.cache_bytes -= old.bytes;
        }
        // Forget the least recently used chunks until the cache fits its budget.
        while st.cache_bytes > self.limits.cache_bytes {
            let oldest = st
                .cache
                .iter()
                .flat_map(|(k, m)| m.values().map(move |c| (k, c)))
                .min_by_key(|(_, c)| c.last_used.load(Ordering::Relaxed))
                .map(|(k, c)| (k.clone(), c.start));
            let Some((k, start)) = oldest else { break };
            let chunks = st.cache.get_mut(&k).expect("found above");
            let gone = chunks.remove(&start).expect("found above");
            if chunks.is_empty() {
                st.cache.remove(&k);
            }
            st.cache_bytes -= gone.bytes;
        }
        self.stats.cache_bytes.set(st.cache_bytes as i64);
    }

    /// Reads one chunk of `key` from `pos` (and not past `until`), with the reader parked
    /// there if there is one.
    async fn read_chunk(&self, key: &Key, pos: i64, until: i64) -> Result<Option<Chunk>> {
        let (topic, partition, _) = key;
        let p = *partition as i32;
        let _gate = match &self.memory {
            Some(m) if m.under_pressure() => Some(
                self.pressure_gate
                    .clone()
                    .acquire_owned()
                    .await
                    .context("the replay pool is closed")?,
            ),
            _ => None,
        };
        let parked = {
            let mut st = self.state.lock();
            st.parked
                .iter()
                .position(|r| &r.key == key && r.next == pos)
                .map(|i| st.parked.swap_remove(i).reader)
        };
        let reader = match parked {
            Some(r) => r,
            None => self.open_reader(topic, p, pos).await?,
        };
        let t0 = Instant::now();
        // Records are copied out of librdkafka into batches, and each full batch is parsed
        // on a blocking thread (see `Batch`): the parsing, most of a replay's CPU, runs on
        // the other cores while this task goes on reading. The chunk's size is reckoned on
        // the records' own bytes while reading (an event is smaller than its Debezium record).
        let topic_name: Arc<str> = Arc::from(topic.as_str());
        let mut parsing = Vec::new();
        let mut batch = Batch::default();
        let mut count = 0;
        let mut bytes = 0;
        let mut next = pos;
        let mut wait = FIRST_RECORD_WAIT;
        let mut out_of_range = false;
        let mut failed = None;
        // One message stream for the whole chunk (each `recv` would register a waker slot).
        let mut records = reader.consumer.stream();
        while bytes < self.limits.chunk_bytes && count < CHUNK_MAX_EVENTS && next < until {
            // A record already fetched is taken without arming a timer (most are: librdkafka
            // prefetches), and the read yields to other tasks once its budget is spent, so
            // a chunk of thousands of records does not hold a worker.
            tokio::task::consume_budget().await;
            let next_record = match records.next().now_or_never() {
                Some(r) => Ok(r),
                None => tokio::time::timeout(wait, records.next()).await,
            };
            let m = match next_record.map(|r| r.expect("Kafka message streams never end")) {
                Err(_) => break,
                Ok(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                    out_of_range = true;
                    break;
                }
                // A client error (a broker connection lost, all brokers down): the read ends
                // with what it has, and the stream asks again (see below).
                Ok(Err(e)) => {
                    failed = Some(e);
                    break;
                }
                Ok(Ok(m)) => m,
            };
            wait = NEXT_RECORD_WAIT;
            if m.partition() != p || m.offset() < next {
                continue;
            }
            next = m.offset() + 1;
            let ts = m.timestamp().to_millis().unwrap_or(0);
            if m.payload().is_some() {
                count += 1;
                bytes += m.payload_len() + m.key_len() + EVENT_OVERHEAD;
            }
            batch.push(m.offset(), ts, m.key(), m.payload());
            if batch.len() == PARSE_BATCH || batch.bytes.len() >= PARSE_BATCH_BYTES {
                let permit = self.parse_permit().await;
                parsing.push(std::mem::take(&mut batch).parse(topic_name.clone(), p, permit));
            }
        }
        drop(records);
        let permit = self.parse_permit().await;
        parsing.push(batch.parse(topic_name, p, permit));
        let mut events = Vec::with_capacity(count);
        for parsed in parsing {
            match parsed.await {
                Ok(parsed) => events.extend(parsed),
                Err(e) => {
                    self.close(reader);
                    return Err(anyhow::anyhow!("a replay parsing task failed: {e}"));
                }
            }
        }
        let bytes = events.iter().map(|e| e.json.len() + EVENT_OVERHEAD).sum();
        if let Some(e) = failed {
            // Every stream sharing this read would end on an error it can do nothing about:
            // keep what was read, drop the reader (a new one reconnects), and have the streams
            // ask again after a pause, with keepalives meanwhile.
            self.close(reader);
            tracing::warn!(error = %e, topic = %topic, partition = p, "replay read interrupted; retrying");
            if next > pos {
                self.stats.chunks_read.inc();
                return Ok(Some(self.chunk_of(pos, next, events, bytes, None)));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
            return Ok(None);
        }
        if out_of_range {
            // Retention deleted what the reader was about to read (or the log restarted
            // below it): the reader stops for good.
            self.close(reader);
            let (low, high) = self.meta.watermarks(topic, p).await?;
            let chunk = if low > next {
                Some(self.chunk_of(pos, low, events, bytes, Some(next)))
            } else {
                (next > pos).then(|| self.chunk_of(pos, next, events, bytes, None))
            };
            if chunk.is_none() {
                // Neither deleted nor readable: the log restarted below the position (topic
                // recreated, truncated), which the topic's buffer announces to the stream as
                // a reset. Until it does, ask again at a calm pace.
                tracing::warn!(
                    topic = %topic, partition = p, position = next, low, high,
                    "replay position out of range but not deleted; waiting for the topic's reset"
                );
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            if chunk.is_some() {
                self.stats.chunks_read.inc();
            }
            return Ok(chunk);
        }
        // Offsets the reader passed without a record (markers) belong to the chunk too.
        let end = reader_position(&reader.consumer, topic, p)
            .unwrap_or(next)
            .max(next);
        if end >= until {
            // The rest is in the topic's buffer: nobody will ask this reader for more.
            self.close(reader);
        } else {
            self.park(key.clone(), end, reader);
        }
        if end == pos {
            return Ok(None);
        }
        self.stats.chunks_read.inc();
        tracing::debug!(
            topic = %topic, partition = p, start = pos, end, events = events.len(), bytes,
            ms = t0.elapsed().as_secs_f64() * 1e3,
            "replay chunk read"
        );
        Ok(Some(self.chunk_of(pos, end, events, bytes, None)))
    }

    /// A place to parse one batch; waits while every core parses one.
    async fn parse_permit(&self) -> OwnedSemaphorePermit {
        self.parsers
            .clone()
            .acquire_owned()
            .await
            .expect("the parsers' semaphore is never closed")
    }

    fn chunk_of(
        &self,
        start: i64,
        end: i64,
        events: Vec<Arc<ChangeEvent>>,
        bytes: usize,
        lost_from: Option<i64>,
    ) -> Chunk {
        Chunk {
            start,
            end,
            events,
            lost_from,
            bytes: bytes + 256,
            last_used: AtomicU64::new(0),
        }
    }

    /// A new reader of `topic`/`p` at `pos`, under the cap: the least recently parked reader
    /// is closed to make room, else the read waits for one.
    async fn open_reader(&self, topic: &str, p: i32, pos: i64) -> Result<Reader> {
        // Counted as waiting before looking, so a reader parked meanwhile is handed over
        // (`park`) rather than kept until it idles out.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self.take_permit().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit?;
        self.open_consumer(topic, p, pos, permit)
    }

    async fn take_permit(&self) -> Result<OwnedSemaphorePermit> {
        Ok(match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let oldest = {
                    let mut st = self.state.lock();
                    let i = (0..st.parked.len()).min_by_key(|&i| st.parked[i].since);
                    i.map(|i| st.parked.swap_remove(i).reader)
                };
                match oldest {
                    Some(r) => self.close(r),
                    None => {
                        self.stats.reader_waits.inc();
                    }
                }
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .context("the replay pool's semaphore was closed")?
            }
        })
    }

    fn open_consumer(
        &self,
        topic: &str,
        p: i32,
        pos: i64,
        permit: OwnedSemaphorePermit,
    ) -> Result<Reader> {
        let consumer: StreamConsumer = self
            .kafka
            .consumer_config()
            .set("auto.offset.reset", "error")
            .set(
                "queued.max.messages.kbytes",
                self.limits.prefetch_kbytes.to_string(),
            )
            // A reader reads one partition: its responses may be larger than the shared
            // reader's, up to a quarter of its prefetch (a response is decompressed whole;
            // see `KafkaSettings::consumer_config`).
            .set(
                "max.partition.fetch.bytes",
                self.limits.fetch_bytes().to_string(),
            )
            // librdkafka backs off for up to a second once its queue is full; a replay drains
            // the queue quickly and should not wait that long for the next fetch.
            .set("fetch.queue.backoff.ms", "1")
            .create()
            .context("creating a replay reader")?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(pos))?;
        consumer
            .assign(&tpl)
            .with_context(|| format!("assigning {topic}/{p} to a replay reader"))?;
        self.stats.readers.inc();
        Ok(Reader {
            consumer,
            _permit: permit,
        })
    }

    /// Parks a reader at `next` for the partition's next chunk, unless a read is waiting for
    /// a place under the cap: then the least recently parked reader (this one if it is the
    /// only one) is closed for it.
    fn park(&self, key: Key, next: i64, reader: Reader) {
        let handed_over = {
            let mut st = self.state.lock();
            st.parked.push(Parked {
                key,
                next,
                reader,
                since: Instant::now(),
            });
            if self.waiting.load(Ordering::SeqCst) > 0 {
                let i = (0..st.parked.len())
                    .min_by_key(|&i| st.parked[i].since)
                    .expect("one was just parked");
                Some(st.parked.swap_remove(i).reader)
            } else {
                None
            }
        };
        if let Some(r) = handed_over {
            self.close(r);
        }
    }

    /// Closes parked readers nobody took back for [`READER_IDLE`]; every second until
    /// `shutdown`, then all of them.
    pub fn spawn_janitor(self: &Arc<Self>, shutdown: CancellationToken) {
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => {}
                }
                let Some(pool) = pool.upgrade() else { return };
                let stop = shutdown.is_cancelled();
                let idle: Vec<Reader> = {
                    let mut st = pool.state.lock();
                    let (old, keep) = std::mem::take(&mut st.parked)
                        .into_iter()
                        .partition(|r| stop || r.since.elapsed() >= READER_IDLE);
                    st.parked = keep;
                    old.into_iter().map(|r: Parked| r.reader).collect()
                };
                for r in idle {
                    pool.close(r);
                }
                if stop {
                    return;
                }
            }
        });
    }
}

impl ReplayPool {
    /// Closes a reader off the async threads (librdkafka's destroy blocks until its threads
    /// end); its place under the cap is free once it is gone.
    fn close(&self, reader: Reader) {
        self.stats.readers.dec();
        drop(tokio::task::spawn_blocking(move || drop(reader)));
    }
}

fn reader_position(consumer: &StreamConsumer, topic: &str, p: i32) -> Option<i64> {
    let tpl = consumer.position().ok()?;
    match tpl.find_partition(topic, p)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_scale_with_the_budget_within_bounds() {
        // The default budget (512 MiB, 16 readers): a 32 MiB cache of 2 MiB chunks, 4 MiB of
        // prefetch per reader, 1 MiB fetches.
        let l = ReplayLimits::from_budget(512 << 20, 16);
        assert_eq!(l.cache_bytes, 128 << 20);
        assert_eq!(l.chunk_bytes, 4 << 20);
        assert_eq!(l.prefetch_kbytes, 4 * 1024);
        assert_eq!(l.fetch_bytes(), FETCH_MAX_BYTES);
        // A small budget: the floors hold, so a reader still makes progress.
        let l = ReplayLimits::from_budget(16 << 20, 16);
        assert_eq!(l.chunk_bytes, 256 << 10);
        assert_eq!(l.prefetch_kbytes, 256);
        assert_eq!(l.fetch_bytes(), PARTITION_FETCH_MAX_BYTES);
        // 64 MiB (the memory benchmark): 1 MiB of prefetch, 256 KiB fetches.
        let l = ReplayLimits::from_budget(64 << 20, 16);
        assert_eq!(l.prefetch_kbytes, 1024);
        assert_eq!(l.fetch_bytes(), 256 << 10);
        assert_eq!(ReplayLimits::from_budget(64 << 20, 0).max_readers, 1);
    }
}
