//! Running the real `tumbleweed-sink` binary in tests, producing to the real broker, and
//! reading SSE streams (parsed with the `eventsource-stream` crate, or raw when a test needs
//! to see comments such as keepalives).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use crate::{unique_suffix, Stack};

/// The admin token every test sink is started with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `tumbleweed-sink` child process with its own port and consumer-registry topic.
pub struct SinkProcess {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
    pub base: String,
    pub http: reqwest::Client,
}

impl SinkProcess {
    /// Starts the sink against the local stack; `extra` adds flags (`--name value` pairs).
    /// Each sink gets its own consumer-registry topic unless `extra` names one.
    pub async fn start(bin: &str, stack: &Stack, extra: &[(&str, &str)]) -> Result<Self> {
        let port = free_port();
        let id = unique_suffix();
        let mut args = vec![
            "--listen".to_string(),
            format!("127.0.0.1:{port}"),
            "--connect-url".into(),
            stack.connect_url.clone(),
        ];
        if !extra.iter().any(|(k, _)| *k == "--kafka-bootstrap") {
            args.push("--kafka-bootstrap".into());
            args.push(stack.kafka_bootstrap.clone());
        }
        // Private registry topics unless the test shares them between replicas.
        if !extra.iter().any(|(k, _)| *k == "--consumers-topic") {
            args.push("--consumers-topic".into());
            args.push(format!("_tw_test_consumers_{id}"));
        }
        // Replicas that share a consumer registry share its cursors too.
        if !extra.iter().any(|(k, _)| *k == "--cursors-topic") {
            let cursors = match extra.iter().find(|(k, _)| *k == "--consumers-topic") {
                Some((_, consumers)) => format!("{consumers}_cursors"),
                None => format!("_tw_test_cursors_{id}"),
            };
            args.push("--cursors-topic".into());
            args.push(cursors);
        }
        if !extra.iter().any(|(k, _)| *k == "--tickets-topic") {
            let tickets = match extra.iter().find(|(k, _)| *k == "--consumers-topic") {
                Some((_, consumers)) => format!("{consumers}_tickets"),
                None => format!("_tw_test_tickets_{id}"),
            };
            args.push("--tickets-topic".into());
            args.push(tickets);
        }
        if !extra.iter().any(|(k, _)| *k == "--stats-topic") {
            let stats = match extra.iter().find(|(k, _)| *k == "--consumers-topic") {
                Some((_, consumers)) => format!("{consumers}_stats"),
                None => format!("_tw_test_stats_{id}"),
            };
            args.push("--stats-topic".into());
            args.push(stats);
        }
        if !extra.iter().any(|(k, _)| *k == "--sources-topic") {
            args.push("--sources-topic".into());
            args.push(format!("_tw_test_sources_{id}"));
        }
        // Topics the sink creates get the stack's replication factor (3 in cluster mode).
        if !extra
            .iter()
            .any(|(k, _)| *k == "--topic-replication-factor")
        {
            args.push("--topic-replication-factor".into());
            args.push(stack.replication_factor.to_string());
        }
        for (k, v) in extra {
            args.push(k.to_string());
            args.push(v.to_string());
        }
        let log = std::env::temp_dir().join(format!("tumbleweed-sink-{id}.log"));
        let mut sink = Self {
            bin: PathBuf::from(bin),
            args,
            env: vec![
                ("TUMBLEWEED_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
                // Test sources give the local stack's (unchecked) password in plain text.
                ("TUMBLEWEED_ALLOW_PLAINTEXT_PASSWORD".into(), "true".into()),
                // Tests write their password files under the temporary directory.
                (
                    "TUMBLEWEED_SECRETS_DIR".into(),
                    std::env::temp_dir().display().to_string(),
                ),
            ],
            child: None,
            log,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        sink.spawn().await?;
        Ok(sink)
    }

    async fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        // TW_SINK_WRAPPER runs the sink under a profiler (e.g. `heaptrack -o /tmp/sink`,
        // `perf record -g -o /tmp/sink.perf --`): for looking, not for figures, since the
        // measured PID is then the wrapper's.
        let wrapper = std::env::var("TW_SINK_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut cmd = match words.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(words).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        let child = cmd
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(
                "RUST_LOG",
                std::env::var("TW_SINK_LOG").unwrap_or_else(|_| "info,rdkafka=warn".into()),
            )
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        let child = self.child.as_mut().unwrap();
        let (http, base, log) = (&self.http, &self.base, &self.log);
        let child = std::sync::Mutex::new(child);
        let healthy = crate::wait_until(
            Duration::from_secs(60),
            Duration::from_millis(100),
            || async {
                if let Some(status) = child.lock().unwrap().try_wait()? {
                    bail!(
                        "the sink exited with {status} during start-up:\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
                let r = http.get(format!("{base}/healthz")).send().await;
                Ok(r.is_ok_and(|r| r.status().is_success()))
            },
            |healthy| *healthy,
        )
        .await?;
        ensure!(
            healthy,
            "the sink was not healthy within 60 s; log:\n{}",
            self.log_text()
        );
        Ok(())
    }

    /// PID of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (no graceful shutdown) and waits for it.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> Result<bool> {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()?;
            return Ok(c.wait()?.success());
        }
        Ok(true)
    }

    /// Starts the same configuration again (same port and registry topic).
    pub async fn restart(&mut self) -> Result<()> {
        self.spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An admin-authenticated request builder.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// Waits until the sink lists `topic` (a source's topic appears with its first record).
    pub async fn wait_topic(&self, topic: &str, timeout: Duration) -> Result<()> {
        crate::eventually(&format!("topic {topic}"), timeout, || async {
            let v: Value = self
                .admin(reqwest::Method::GET, "/v1/topics")
                .send()
                .await?
                .json()
                .await?;
            Ok(v["topics"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["name"] == topic))
                .then_some(()))
        })
        .await
    }

    /// Creates a consumer and returns its token.
    pub async fn create_consumer(&self, body: Value) -> Result<String> {
        let r = self
            .admin(reqwest::Method::POST, "/v1/consumers")
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if status.as_u16() != 201 {
            bail!("creating consumer {body}: {status}: {v}");
        }
        Ok(v["token"]
            .as_str()
            .context("token in response")?
            .to_string())
    }

    /// Opens a consumer's event stream (query-string token, optional Last-Event-ID header).
    pub async fn events(
        &self,
        consumer: &str,
        token: &str,
        last_id: Option<&str>,
    ) -> Result<SseStream> {
        let mut req = self
            .http
            .get(self.url(&format!("/v1/consumers/{consumer}/events")))
            .bearer_auth(token);
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        SseStream::open(req).await
    }

    /// Like [`SinkProcess::events`], but a `503` (Kafka busy: leadership moving after a broker
    /// restart or a topic recreation) is retried until `timeout`, as an SSE client would.
    pub async fn events_when_ready(
        &self,
        consumer: &str,
        token: &str,
        last_id: Option<&str>,
        timeout: Duration,
    ) -> Result<SseStream> {
        crate::wait_until(
            timeout,
            Duration::from_millis(200),
            || async { Ok(self.events(consumer, token, last_id).await) },
            |r| !matches!(r, Err(e) if e.to_string().contains("answered 503")),
        )
        .await?
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One parsed SSE event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    pub data: Value,
}

type ByteStream = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An open SSE response.
pub struct SseStream {
    events: std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent>> + Send>>,
}

impl SseStream {
    /// Sends the request; fails unless the answer is a 200 `text/event-stream`.
    pub async fn open(req: reqwest::RequestBuilder) -> Result<Self> {
        let resp = req.send().await.context("opening the SSE stream")?;
        let status = resp.status();
        if status.as_u16() != 200 {
            let body = resp.text().await.unwrap_or_default();
            bail!("SSE request answered {status}: {body}");
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if ct != "text/event-stream" {
            bail!("SSE request answered content-type {ct:?}");
        }
        let bytes: ByteStream = Box::pin(resp.bytes_stream());
        let events = bytes.eventsource().map(|r| {
            let e = r.map_err(|e| anyhow::anyhow!("SSE parse error: {e}"))?;
            let data = if e.data.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&e.data)
                    .with_context(|| format!("event data is not JSON: {}", e.data))?
            };
            Ok(SseEvent {
                event: e.event,
                id: e.id,
                data,
            })
        });
        Ok(Self {
            events: Box::pin(events),
        })
    }

    /// The next event, `None` if the stream ended, an error after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<SseEvent>> {
        match tokio::time::timeout(timeout, self.events.next()).await {
            Ok(None) => Ok(None),
            Ok(Some(e)) => e.map(Some),
            Err(_) => bail!("no SSE event within {timeout:?}"),
        }
    }

    /// Reads exactly `n` events (a read with a deadline, not a wait: see `crate::wait_until`).
    pub async fn take(&mut self, n: usize, timeout: Duration) -> Result<Vec<SseEvent>> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Ok(Some(e)) => out.push(e),
                Ok(None) => bail!("stream ended after {} of {n} events", out.len()),
                Err(e) => bail!("{e} (after {} of {n} events)", out.len()),
            }
        }
        Ok(out)
    }
}

/// Reads a consumer's stream until `want` events arrived, reconnecting with the last id
/// whenever the stream ends or fails (as an EventSource would). A gap notice is an error.
/// Returns the events and the number of reconnections. (Reads against a deadline, with its own
/// reconnect pauses: not a `crate::wait_until` wait.)
pub async fn read_resuming(
    sink: &SinkProcess,
    consumer: &str,
    token: &str,
    want: usize,
    deadline: Instant,
) -> Result<(Vec<SseEvent>, usize)> {
    let mut got: Vec<SseEvent> = Vec::new();
    let mut reconnects = 0;
    while got.len() < want {
        if Instant::now() > deadline {
            bail!(
                "only {} of {want} events within the deadline ({reconnects} reconnections)",
                got.len()
            );
        }
        let last = got.last().map(|e| e.id.clone());
        let mut s = match sink.events(consumer, token, last.as_deref()).await {
            Ok(s) => s,
            Err(_) => {
                reconnects += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match s.next(left.min(Duration::from_secs(20))).await {
                Ok(Some(e)) if e.event == "gap" => bail!("unexpected gap notice: {e:?}"),
                Ok(Some(e)) => {
                    got.push(e);
                    if got.len() >= want {
                        break;
                    }
                }
                _ => {
                    reconnects += 1;
                    break;
                }
            }
        }
    }
    Ok((got, reconnects))
}

/// Reads the raw body of an SSE response until `needle` appears or `timeout` passes, and
/// returns everything read (used where comments matter: keepalives, final notices). A read
/// with a deadline, not a `crate::wait_until` wait.
pub async fn read_raw_until(
    req: reqwest::RequestBuilder,
    needle: &str,
    timeout: Duration,
) -> Result<String> {
    let resp = req.send().await?;
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let deadline = Instant::now() + timeout;
    while !text.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, body.next()).await {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk?)),
            Ok(None) => break,
            Err(_) => bail!("{needle:?} not seen within {timeout:?}; read: {text}"),
        }
    }
    Ok(text)
}

/// Creates a topic with `partitions` partitions on the broker, replicated as the stack's
/// topics are (1, or 3 in cluster mode).
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let res = admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(crate::stack().replication_factor),
            )],
            &AdminOptions::new(),
        )
        .await?;
    for r in res {
        r.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
    }
    // Wait until metadata and watermarks answer for every partition.
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "tw-test-probe")
        .create()?;
    let usable = crate::wait_until(
        Duration::from_secs(15),
        Duration::from_millis(100),
        || async {
            Ok((0..partitions).all(|p| {
                probe
                    .fetch_watermarks(topic, p, Duration::from_secs(2))
                    .is_ok()
            }))
        },
        |usable| *usable,
    )
    .await?;
    ensure!(usable, "topic {topic} not usable after creation");
    Ok(())
}

/// Grows `topic` to `total` partitions (Kafka's CreatePartitions).
pub async fn add_partitions(bootstrap: &str, topic: &str, total: usize) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    for r in admin
        .create_partitions([&NewPartitions::new(topic, total)], &AdminOptions::new())
        .await
        .with_context(|| format!("CreatePartitions {topic} to {total}"))?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("CreatePartitions {t}: {e}"))?;
    }
    Ok(())
}

/// Deletes `topic` and waits until a topic of the same name can be created again (then
/// creates it with `partitions` partitions): a topic deleted and recreated, as an operator
/// might do to "reset" it.
pub async fn recreate_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    for r in admin
        .delete_topics(&[topic], &AdminOptions::new())
        .await
        .with_context(|| format!("DeleteTopics {topic}"))?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("DeleteTopics {t}: {e}"))?;
    }
    // An error is "still being deleted" until the 30 s are over.
    crate::wait_until(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async { Ok(create_topic(bootstrap, topic, partitions).await) },
        Result::is_ok,
    )
    .await?
    .with_context(|| format!("recreating {topic} after its deletion"))
}

/// Deletes consumer group `group` with its committed offsets, as the broker does on its own
/// once a group has had no member for `offsets.retention.minutes`. A group that does not exist
/// is not an error.
pub async fn delete_group(bootstrap: &str, group: &str) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    for r in admin
        .delete_groups(&[group], &AdminOptions::new())
        .await
        .with_context(|| format!("DeleteGroups {group}"))?
    {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
            Err((g, e)) => bail!("DeleteGroups {g}: {e}"),
        }
    }
    Ok(())
}

/// Deletes the records of `topic`[`partition`] before `offset` (Kafka's DeleteRecords, what
/// retention does to old segments) and returns the partition's new low watermark.
pub async fn delete_records(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::{Offset, TopicPartitionList};
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    let res = admin
        .delete_records(&tpl, &AdminOptions::new())
        .await
        .with_context(|| format!("DeleteRecords {topic}[{partition}] before {offset}"))?;
    let elem = res
        .find_partition(topic, partition)
        .with_context(|| format!("DeleteRecords answered without {topic}[{partition}]"))?;
    elem.error()
        .map_err(|e| anyhow::anyhow!("DeleteRecords {topic}[{partition}]: {e}"))?;
    match elem.offset() {
        Offset::Offset(low) => Ok(low),
        other => bail!("DeleteRecords {topic}[{partition}] answered {other:?}"),
    }
}

/// A Debezium-shaped change record (JSON without schemas), as the connector writes it.
pub fn debezium_value(op: &str, before: Value, after: Value, lsn: i64) -> Value {
    json!({
        "before": before,
        "after": after,
        "source": {"lsn": lsn, "txId": lsn / 10, "ts_ms": 1_700_000_000_000i64, "schema": "public", "table": "t", "db": "test"},
        "op": op,
        "ts_ms": 1_700_000_000_000i64,
    })
}

/// Produces `(partition, key, value)` records and waits until every one is acknowledged.
pub async fn produce(
    bootstrap: &str,
    topic: &str,
    records: &[(i32, Value, Option<Value>)],
) -> Result<()> {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()?;
    let mut pending = Vec::with_capacity(records.len());
    for (p, key, value) in records {
        let key = key.to_string();
        let value = value.as_ref().map(|v| v.to_string());
        let mut rec = FutureRecord::<String, String>::to(topic)
            .partition(*p)
            .key(&key);
        if let Some(v) = value.as_ref() {
            rec = rec.payload(v);
        }
        // Enqueue now (the record is copied into librdkafka); wait for delivery later.
        let delivery = producer.send_result(rec).map_err(|(e, _)| e)?;
        pending.push(delivery);
        if pending.len() >= 2000 {
            for f in pending.drain(..) {
                f.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for f in pending {
        f.await?.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// Parses a raw SSE body (as read by [`read_raw_until`]) into its events.
pub fn parse_events(text: &str) -> Vec<SseEvent> {
    let chunks = futures::stream::iter(vec![Ok::<_, std::convert::Infallible>(Bytes::from(
        text.to_string(),
    ))]);
    futures::executor::block_on(
        chunks
            .eventsource()
            .filter_map(|e| async move { e.ok() })
            .map(|e| SseEvent {
                event: e.event,
                id: e.id,
                data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
            })
            .collect(),
    )
}
