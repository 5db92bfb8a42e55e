//! A Kafka broker dies while a consumer streams and a producer writes: nothing is lost and
//! nothing is delivered twice.
//!
//! Single-node stack: the only broker is killed with SIGKILL and started again by
//! `scripts/stack up` (its log survives on disk). Cluster stack: the broker leading partition 0
//! is killed and stays down for a while (the other two keep every partition available with
//! min.insync.replicas=2), then comes back. The producer is idempotent with `acks=all`, so the
//! records in Kafka are exactly the ones written; the sink must hand each to the consumer once,
//! in order per partition, across whatever the outage does to its stream (a reconnection with
//! `Last-Event-ID` is the client's normal move).
//!
//! This file holds one test on purpose: cargo runs test files one after another, so no other
//! test shares the broker outage.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use tumbleweed_tests::sink::{create_topic, debezium_value, read_resuming, SinkProcess};
use tumbleweed_tests::{stack, stack_command, unique_suffix, Stack};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");
const N: i64 = 3000;
const PARTITIONS: i32 = 3;

/// The node to kill: the only one, or the leader of partition 0 of `topic`.
fn victim(stack: &Stack, topic: &str) -> Result<String> {
    if stack.kafka_mode == "single" {
        return Ok("kafka-1".into());
    }
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5))?;
    let leader = md.topics()[0]
        .partitions()
        .iter()
        .find(|p| p.id() == 0)
        .context("partition 0 in metadata")?
        .leader();
    // Broker node ids are 101..103 (as on ECS); their stack names are broker-1..3.
    Ok(format!("broker-{}", leader - 100))
}

/// Writes `N` inserts, round-robin over the partitions, at about 300 per second.
async fn write_all(bootstrap: String, topic: String) -> Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "180000")
        .create()?;
    let mut pending = Vec::new();
    for i in 0..N {
        let key = json!({ "id": i }).to_string();
        let value =
            debezium_value("c", Value::Null, json!({"id": i, "seq": i}), 1000 + i).to_string();
        let rec = FutureRecord::to(&topic)
            .partition((i % PARTITIONS as i64) as i32)
            .key(&key)
            .payload(&value);
        pending.push(producer.send_result(rec).map_err(|(e, _)| e)?);
        if i % 30 == 29 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for f in pending {
        f.await?
            .map_err(|(e, _)| anyhow::anyhow!("a record was not written: {e}"))?;
    }
    Ok(())
}

/// Waits up to 30 s for a line of the sink's `/metrics`.
async fn wait_for_metric(sink: &SinkProcess, line: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = sink
            .admin(reqwest::Method::GET, "/metrics")
            .send()
            .await?
            .text()
            .await?;
        if text.lines().any(|l| l == line) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no {line:?} in /metrics within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits up to `secs` for `GET /v1/kafka/health` to answer 200 with a body that `want`
/// accepts (`what` names it in the error); returns that body.
async fn wait_for_health(
    sink: &SinkProcess,
    what: &str,
    secs: u64,
    want: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = sink
            .admin(reqwest::Method::GET, "/v1/kafka/health")
            .send()
            .await?;
        let ok = r.status().is_success();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if ok && want(&body) {
            return Ok(body);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "/v1/kafka/health never showed {what} within {secs} s; last: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_broker_while_streaming_loses_and_repeats_nothing() -> Result<()> {
    let stack = stack();
    let topic = format!("broker_fault_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, PARTITIONS).await?;
    let sink = SinkProcess::start(SINK, stack, &[]).await?;
    let token = sink
        .create_consumer(json!({"name": "survivor", "topics": [topic], "start": "earliest"}))
        .await?;
    let node = victim(stack, &topic)?;

    let writer = tokio::spawn(write_all(stack.kafka_bootstrap.clone(), topic.clone()));
    let deadline = Instant::now() + Duration::from_secs(180);
    let reader = read_resuming(&sink, "survivor", &token, N as usize, deadline);
    let fault = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        stack_command(&["kill", &node])?;
        // Single node: nothing serves until it is back, and the sink says so in
        // `tumbleweed_kafka_reachable` (probed every 10 s). Cluster: two brokers carry on.
        // Cluster: `/v1/kafka/health` (what `tumbleweed kafka roll` waits on) shows two
        // brokers and under-replicated partitions.
        if stack.kafka_mode == "single" {
            wait_for_metric(&sink, "tumbleweed_kafka_reachable 0").await?;
            let r = sink
                .admin(reqwest::Method::GET, "/v1/kafka/health")
                .send()
                .await?;
            anyhow::ensure!(
                r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && r.headers().contains_key("retry-after"),
                "no broker: /v1/kafka/health answers 503 with Retry-After, got {}",
                r.status()
            );
            // Every handler that needs Kafka says the same (it used to be a 500 in some),
            // without naming the brokers.
            for (method, path) in [
                (reqwest::Method::GET, "/v1/consumers/survivor".to_string()),
                (reqwest::Method::DELETE, "/v1/consumers/nosuch".into()),
                (reqwest::Method::GET, format!("/v1/topics/{topic}/events")),
            ] {
                let r = sink.admin(method.clone(), &path).send().await?;
                let (status, retry) = (r.status(), r.headers().contains_key("retry-after"));
                let body = r.text().await?;
                anyhow::ensure!(
                    status == reqwest::StatusCode::SERVICE_UNAVAILABLE && retry,
                    "no broker: {method} {path} answers 503 with Retry-After, got {status} {body}"
                );
                anyhow::ensure!(
                    !body.contains(&stack.kafka_bootstrap),
                    "{method} {path} names the broker: {body}"
                );
            }
        } else {
            wait_for_health(
                &sink,
                "2 brokers and under-replicated partitions",
                60,
                |h| {
                    h["brokers"].as_array().map(Vec::len) == Some(2)
                        && count(h, "under_replicated") > 0
                        && count(h, "offline") == 0
                },
            )
            .await?;
        }
        tokio::task::spawn_blocking(|| stack_command(&["up"])).await??;
        if stack.kafka_mode == "single" {
            wait_for_metric(&sink, "tumbleweed_kafka_reachable 1").await?;
        }
        let brokers = if stack.kafka_mode == "single" { 1 } else { 3 };
        let healed = wait_for_health(&sink, "every broker back and in sync", 120, |h| {
            h["brokers"].as_array().map(Vec::len) == Some(brokers)
                && count(h, "under_replicated") == 0
                && count(h, "offline") == 0
        })
        .await?;
        anyhow::ensure!(
            count(&healed, "partitions") >= PARTITIONS as u64,
            "the health counts every partition: {healed}"
        );
        anyhow::Ok(())
    };
    let (read, fault) = tokio::join!(reader, fault);
    fault.context("the fault")?;
    writer.await??;
    let (events, reconnects) = read?;

    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    let mut last_offset: BTreeMap<i64, i64> = BTreeMap::new();
    for e in &events {
        *seen
            .entry(e.data["after"]["seq"].as_i64().expect("seq"))
            .or_default() += 1;
        let p = e.data["partition"].as_i64().unwrap();
        let o = e.data["offset"].as_i64().unwrap();
        if let Some(prev) = last_offset.insert(p, o) {
            assert!(o > prev, "partition {p}: offset {o} after {prev}");
        }
    }
    let duplicated = seen.values().filter(|c| **c > 1).count();
    let lost: Vec<i64> = (0..N).filter(|i| !seen.contains_key(i)).collect();
    println!(
        "killed {node} ({} mode): written={N} delivered={} lost={} duplicated={duplicated} reconnections={reconnects}",
        stack.kafka_mode,
        seen.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(duplicated, 0, "duplicates");
    Ok(())
}
