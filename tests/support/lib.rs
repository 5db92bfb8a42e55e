//! Shared support for the integration tests: the real local stack and small clients for it.
//!
//! Every test calls [`stack()`], which runs `scripts/stack up` once per test process. That
//! command is idempotent: it installs what is missing, starts the parts that are not running
//! and prints the connection settings, which are parsed here. There is no silent skip: if the
//! stack cannot be started the test fails with the script's own error line.
//!
//! Tests isolate themselves by name, not by stack: each one creates its own database, slot,
//! publication and topic prefix from [`unique_suffix`], so they can run in parallel.

pub mod bench;
pub mod sink;
pub mod tls_pg;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

/// Connection settings of the running local stack, as printed by `scripts/stack up`.
#[derive(Debug, Clone)]
pub struct Stack {
    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication on loopback).
    pub pg_url: String,
    pub pg_host: String,
    pub pg_port: u16,
    /// `host:port[,host:port…]` of the Kafka brokers.
    pub kafka_bootstrap: String,
    /// `single` (one KRaft node) or `cluster` (3 controllers + 3 brokers).
    pub kafka_mode: String,
    /// Replication factor for the topics tests create (1, or 3 in cluster mode).
    pub replication_factor: i32,
    /// Base URL of the Kafka Connect REST API.
    pub connect_url: String,
    /// `distributed` (as on ECS) or `standalone` (forgets its connectors when it restarts).
    pub connect_mode: String,
}

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Starts the local stack if needed (once per process) and returns its settings.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| match start_stack() {
        Ok(stack) => stack,
        Err(e) => panic!("the local stack is not available: {e:#}"),
    })
}

fn start_stack() -> Result<Stack> {
    let script = repo_root().join("scripts/stack");
    let out = Command::new(&script)
        .arg("up")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("scripts/stack up failed:\n{stderr}");
    }
    let vars: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let get = |k: &str| {
        vars.get(k)
            .cloned()
            .with_context(|| format!("scripts/stack up did not print {k}"))
    };
    Ok(Stack {
        pg_url: get("TW_PG_URL")?,
        pg_host: get("TW_PG_HOST")?,
        pg_port: get("TW_PG_PORT")?.parse().context("TW_PG_PORT")?,
        kafka_bootstrap: get("TW_KAFKA_BOOTSTRAP")?,
        kafka_mode: get("TW_KAFKA_MODE")?,
        replication_factor: get("TW_KAFKA_REPLICATION_FACTOR")?
            .parse()
            .context("TW_KAFKA_REPLICATION_FACTOR")?,
        connect_url: get("TW_CONNECT_URL")?,
        connect_mode: get("TW_CONNECT_MODE")?,
    })
}

/// Runs `scripts/stack ARGS…` (e.g. `kill connect`, `up`) and fails with its error line.
pub fn stack_command(args: &[&str]) -> Result<()> {
    let out = Command::new(repo_root().join("scripts/stack"))
        .args(args)
        .output()
        .context("running scripts/stack")?;
    if !out.status.success() {
        bail!(
            "scripts/stack {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A short random lowercase suffix, valid in database, slot and topic names.
pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

impl Stack {
    /// URL of database `db` on the stack's PostgreSQL.
    pub fn pg_url_for(&self, db: &str) -> String {
        format!("postgres://postgres@{}:{}/{db}", self.pg_host, self.pg_port)
    }

    /// Connects to database `db`; the connection task runs on the current runtime.
    pub async fn pg(&self, db: &str) -> Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.pg_url_for(db), tokio_postgres::NoTls)
            .await
            .with_context(|| format!("connecting to database {db}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// Creates a fresh database and returns a client connected to it.
    pub async fn create_database(&self, db: &str) -> Result<tokio_postgres::Client> {
        let admin = self.pg("postgres").await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{db}\""))
            .await
            .with_context(|| format!("creating database {db}"))?;
        self.pg(db).await
    }

    pub fn connect(&self) -> ConnectClient {
        ConnectClient {
            base: self.connect_url.clone(),
            http: reqwest::Client::new(),
        }
    }
}

/// A minimal client of the Kafka Connect REST API, for tests.
pub struct ConnectClient {
    base: String,
    http: reqwest::Client,
}

impl ConnectClient {
    /// Registers a connector, retrying while the worker answers 409 (rebalance in progress).
    pub async fn create(&self, name: &str, config: Value) -> Result<()> {
        let (status, body) = wait_until(
            Duration::from_secs(60),
            Duration::from_millis(500),
            || async {
                let resp = self
                    .http
                    .post(format!("{}/connectors", self.base))
                    .json(&json!({ "name": name, "config": config }))
                    .send()
                    .await
                    .context("POST /connectors")?;
                let status = resp.status();
                Ok((status, resp.text().await.unwrap_or_default()))
            },
            |(status, _)| status.as_u16() != 409,
        )
        .await?;
        ensure!(
            status.is_success(),
            "creating connector {name}: {status}: {body}"
        );
        Ok(())
    }

    /// Returns `(connector state, task states)` from `/connectors/{name}/status`.
    pub async fn status(&self, name: &str) -> Result<(String, Vec<String>)> {
        let v: Value = self
            .http
            .get(format!("{}/connectors/{name}/status", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let connector = v["connector"]["state"].as_str().unwrap_or("").to_string();
        let tasks = v["tasks"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| t["state"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        Ok((connector, tasks))
    }

    /// Waits until the connector and all (at least one) of its tasks are RUNNING.
    pub async fn wait_running(&self, name: &str, timeout: Duration) -> Result<()> {
        let running = |(c, tasks): &(String, Vec<String>)| {
            c == "RUNNING" && !tasks.is_empty() && tasks.iter().all(|t| t == "RUNNING")
        };
        let failed = |(c, tasks): &(String, Vec<String>)| {
            c == "FAILED" || tasks.iter().any(|t| t == "FAILED")
        };
        // A status Connect cannot give yet (404 before the connector exists) is "not yet".
        let last = wait_until(
            timeout,
            Duration::from_millis(200),
            || async { Ok(self.status(name).await) },
            |s| s.as_ref().is_ok_and(|s| running(s) || failed(s)),
        )
        .await?;
        match last {
            Ok(s) if running(&s) => Ok(()),
            Ok(s) if failed(&s) => {
                let trace = self.trace(name).await.unwrap_or_default();
                bail!("connector {name} failed: {trace}")
            }
            other => bail!(
                "connector {name} not RUNNING after {timeout:?}; last status {:?}",
                Some(format!("{other:?}"))
            ),
        }
    }

    async fn trace(&self, name: &str) -> Result<String> {
        let v: Value = self
            .http
            .get(format!("{}/connectors/{name}/status", self.base))
            .send()
            .await?
            .json()
            .await?;
        Ok(v.to_string())
    }

    /// Deletes a connector (404 counts as already deleted).
    pub async fn delete(&self, name: &str) -> Result<()> {
        let resp = self
            .http
            .delete(format!("{}/connectors/{name}", self.base))
            .send()
            .await
            .with_context(|| format!("DELETE /connectors/{name}"))?;
        if resp.status().is_success() || resp.status().as_u16() == 404 {
            Ok(())
        } else {
            bail!("deleting connector {name}: {}", resp.status())
        }
    }

    /// Names of the registered connectors.
    pub async fn list(&self) -> Result<Vec<String>> {
        Ok(self
            .http
            .get(format!("{}/connectors", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// The one wait of the test support: calls `check` (at once, then every `every`) until `done`
/// holds for its answer or `timeout` has passed, and returns the last answer, done or not, so
/// the caller words its own timeout; an error from `check` ends the wait at once. (Like the
/// sink's `wait::until`; the support crate cannot depend on the sink, whose tests use it.)
/// Reading a stream until a deadline is not a wait of this kind: that is a `tokio::time::timeout`
/// on the remaining time (`SseStream::take`, `read_raw_until`, `read_resuming`, `read_records`).
pub async fn wait_until<T, F, Fut>(
    timeout: Duration,
    every: Duration,
    mut check: F,
    done: impl Fn(&T) -> bool,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let started = Instant::now();
    loop {
        let answer = check().await?;
        if done(&answer) || started.elapsed() >= timeout {
            return Ok(answer);
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    wait_until(timeout, Duration::from_millis(100), check, Option::is_some)
        .await?
        .with_context(|| format!("timed out after {timeout:?} waiting for {what}"))
}

/// Slot state as seen in `pg_replication_slots`: `None` when the slot does not exist,
/// `Some(active)` otherwise.
pub async fn slot_active(pg: &tokio_postgres::Client, slot: &str) -> Result<Option<bool>> {
    let row = pg
        .query_opt(
            "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .context("reading pg_replication_slots")?;
    Ok(row.map(|r| r.get::<_, bool>(0)))
}

/// One record read back from the broker, with key and value parsed as JSON (`None` for a
/// null key or a tombstone).
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Value>,
    pub value: Option<Value>,
}

/// Reads `count` records of partition 0 of `topic` from the beginning, waiting up to `timeout`
/// for the topic to appear and the records to arrive. No consumer group is used (the partition
/// is assigned directly), so nothing waits for a group to form.
pub async fn read_records(
    bootstrap: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Record>> {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("tw-test-{}", unique_suffix()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .context("creating the Kafka consumer")?;
    let deadline = Instant::now() + timeout;
    // Debezium creates the topic with its first event: wait for it in the metadata.
    let appeared = wait_until(
        timeout,
        Duration::from_millis(200),
        || async {
            let md = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .context("fetching metadata")?;
            Ok(md
                .topics()
                .iter()
                .any(|t| t.name() == topic && !t.partitions().is_empty()))
        },
        |appeared| *appeared,
    )
    .await?;
    ensure!(appeared, "topic {topic} did not appear within {timeout:?}");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl).context("assigning the partition")?;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match tokio::time::timeout(left, consumer.recv()).await {
            Ok(m) => m.context("reading from the broker")?,
            Err(_) => bail!(
                "read {} of {count} records from {topic} before the {timeout:?} timeout: {out:?}",
                out.len()
            ),
        };
        let parse = |b: Option<&[u8]>| -> Result<Option<Value>> {
            b.map(|b| serde_json::from_slice(b).context("record is not JSON"))
                .transpose()
        };
        out.push(Record {
            partition: msg.partition(),
            offset: msg.offset(),
            key: parse(msg.key())?,
            value: parse(msg.payload())?,
        });
    }
    Ok(out)
}
