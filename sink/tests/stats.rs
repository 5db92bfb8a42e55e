//! The health history behind the UI's charts (`GET /v1/stats`) and a consumer's live streams
//! (`GET /v1/consumers/{name}`), against the real broker and two sink replicas: a stream
//! served by one replica shows in the other's history (the replicas share it through a Kafka
//! topic), the topic's events/s follow what was produced, and a restarted replica still has the
//! minutes before its restart.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tumbleweed_tests::sink::{create_topic, debezium_value, produce, SinkProcess, SseStream};
use tumbleweed_tests::{eventually, stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

async fn get(sink: &SinkProcess, path: &str) -> Result<Value> {
    let r = sink.admin(reqwest::Method::GET, path).send().await?;
    anyhow::ensure!(r.status() == 200, "{path}: {}", r.status());
    Ok(r.json().await?)
}

/// The non-null values of one series.
fn values(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_shared_by_replicas_and_survives_a_restart() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let topic = format!("stats_{id}");
    create_topic(&stack.kafka_bootstrap, &topic, 2).await?;
    let registry = format!("_tw_test_consumers_{id}");
    let shared = [
        ("--consumers-topic", registry.as_str()),
        ("--stats-interval-secs", "1"),
        ("--stats-window-secs", "120"),
    ];
    let a = SinkProcess::start(SINK, stack, &shared).await?;
    let mut b = SinkProcess::start(SINK, stack, &shared).await?;
    let token = a
        .create_consumer(json!({"name": "orders", "topics": [topic], "start": "earliest"}))
        .await?;

    // Nothing measured yet about this topic or consumer; the shape is there.
    let empty = get(&b, "/v1/stats").await?;
    assert_eq!(empty["interval_secs"], 1, "{empty}");
    assert_eq!(empty["window_secs"], 120);
    assert!(empty["events_per_sec_by_topic"].get(&topic).is_none());

    // A stream on replica A, through a load balancer that says who the client is.
    let mut stream = SseStream::open(
        a.http
            .get(a.url("/v1/consumers/orders/events"))
            .bearer_auth(&token)
            .header("X-Forwarded-For", "203.0.113.7"),
    )
    .await?;
    // ~200 events/s for 4 s.
    let started = Instant::now();
    let mut produced = 0usize;
    for round in 0..20 {
        let batch: Vec<_> = (0..40)
            .map(|i| {
                let n = round * 40 + i;
                (
                    n % 2,
                    json!({"id": n}),
                    Some(debezium_value("c", Value::Null, json!({"id": n}), n as i64)),
                )
            })
            .collect();
        produce(&stack.kafka_bootstrap, &topic, &batch).await?;
        produced += batch.len();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let produce_secs = started.elapsed().as_secs_f64();
    let got = stream.take(produced, Duration::from_secs(30)).await?;
    assert_eq!(got.len(), produced);

    // Replica B, which serves no stream, shows A's stream, topic rate and consumer lag.
    let view = eventually(
        "replica B's history to show A's topic, consumer and stream",
        Duration::from_secs(20),
        || async {
            let v = get(&b, "/v1/stats").await?;
            let rates = values(&v["events_per_sec_by_topic"][&topic]);
            let lag = values(&v["consumer_lag_events"]["orders"]);
            let streams = values(&v["connected_streams"]);
            let read: f64 = rates.iter().sum();
            Ok(
                (read >= produced as f64 * 0.5 && !lag.is_empty() && streams.contains(&1.0))
                    .then_some(v),
            )
        },
    )
    .await?;
    let rates = values(&view["events_per_sec_by_topic"][&topic]);
    let peak = rates.iter().cloned().fold(0.0, f64::max);
    let offered = produced as f64 / produce_secs;
    // Each 1-s sample counts what the reader appended in that second: their sum is the events
    // read (within the samples that landed), and no second saw more than a few batches.
    let read: f64 = rates.iter().sum();
    assert!(
        read <= produced as f64 * 1.2 && peak <= offered * 3.0,
        "rates {rates:?} for {produced} events at {offered:.0}/s"
    );
    let t = view["t_ms"].as_array().context("t_ms")?;
    assert_eq!(
        view["connected_streams"].as_array().map(Vec::len),
        Some(t.len()),
        "every series is on the time axis"
    );
    assert!(values(&view["events_sent_per_sec"])
        .iter()
        .any(|v| *v > 0.0));

    // The consumer's page on A lists its live stream with the client's addresses; B serves
    // none of its streams.
    let on_a = get(&a, "/v1/consumers/orders").await?;
    let streams = on_a["streams"].as_array().context("streams")?;
    assert_eq!(streams.len(), 1, "{on_a}");
    assert_eq!(streams[0]["client"]["forwarded_for"], "203.0.113.7");
    assert!(
        streams[0]["client"]["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{on_a}"
    );
    assert!(streams[0]["since_ms"].as_u64().unwrap_or(0) > 1_600_000_000_000);
    assert_eq!(streams[0]["lag_events"], 0);
    assert_eq!(get(&b, "/v1/consumers/orders").await?["streams"], json!([]));

    // A restarted replica has the history from before its restart at once.
    let before = view["t_ms"][0].as_u64().context("first sample")?;
    b.kill9()?;
    b.restart().await?;
    let after = get(&b, "/v1/stats").await?;
    let first = after["t_ms"][0].as_u64().context("history after restart")?;
    assert!(first <= before, "history starts at {first}, was {before}");
    assert!(!values(&after["events_per_sec_by_topic"][&topic]).is_empty());

    // The stream ends: the history shows no stream, and the consumer no lag, from then on.
    drop(stream);
    eventually(
        "the closed stream to leave the history",
        Duration::from_secs(20),
        || async {
            let v = get(&b, "/v1/stats").await?;
            let last_streams = v["connected_streams"]
                .as_array()
                .and_then(|a| a.last().cloned());
            let last_lag = v["consumer_lag_events"]["orders"]
                .as_array()
                .and_then(|a| a.last().cloned());
            Ok((last_streams == Some(json!(0)) && last_lag == Some(Value::Null)).then_some(()))
        },
    )
    .await?;
    // And the admin API needs the admin token.
    let r = a.http.get(a.url("/v1/stats")).send().await?;
    assert_eq!(r.status(), 401);
    Ok(())
}
