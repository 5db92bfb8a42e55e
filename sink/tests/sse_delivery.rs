//! SSE delivery against the real broker and the real sink binary: resume after a client drop
//! and after SIGKILL, acknowledgements, the ops filter, keepalives, slow consumers, deleted
//! consumers and every authentication and input error a consumer can make.
//!
//! Records are produced straight to the broker in Debezium's JSON shape so each test controls
//! exactly what exists; the path through PostgreSQL and Debezium is `sse_pipeline.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};
use tumbleweed_tests::sink::{
    create_topic, debezium_value, delete_group, delete_records, parse_events, produce,
    read_raw_until, SinkProcess, SseEvent,
};
use tumbleweed_tests::{stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");
const T: Duration = Duration::from_secs(30);

/// `n` insert records spread round-robin over `partitions`, numbered from `first`.
fn inserts(first: i64, n: i64, partitions: i32) -> Vec<(i32, Value, Option<Value>)> {
    (first..first + n)
        .map(|i| {
            let p = (i % partitions as i64) as i32;
            (
                p,
                json!({"id": i}),
                Some(debezium_value(
                    "c",
                    Value::Null,
                    json!({"id": i, "seq": i}),
                    1000 + i,
                )),
            )
        })
        .collect()
}

fn seq(e: &SseEvent) -> i64 {
    e.data["after"]["seq"].as_i64().expect("seq in after")
}

/// Asserts that `events` hold each of `0..n` exactly once and are ordered per partition.
fn assert_exactly_once_in_order(events: &[SseEvent], n: i64) {
    let mut seen = BTreeMap::new();
    let mut last_offset: BTreeMap<i64, i64> = BTreeMap::new();
    for e in events {
        *seen.entry(seq(e)).or_insert(0) += 1;
        let p = e.data["partition"].as_i64().unwrap();
        let o = e.data["offset"].as_i64().unwrap();
        if let Some(prev) = last_offset.insert(p, o) {
            assert!(o > prev, "partition {p}: offset {o} after {prev}");
        }
    }
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    let missing: Vec<i64> = (0..n).filter(|i| !seen.contains_key(i)).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(seen.len() as i64, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_client_drop_and_sigkill_loses_and_repeats_nothing() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_resume_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 3).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 300, 3)).await?;
    let mut sink = SinkProcess::start(SINK, stack, &[("--max-chunk-events", "7")]).await?;
    let token = sink
        .create_consumer(json!({"name": "resumer", "topics": [topic], "start": "earliest"}))
        .await?;

    // First connection: read 120 events, then drop the connection.
    let mut got = Vec::new();
    let mut s = sink.events("resumer", &token, None).await?;
    got.extend(s.take(120, T).await?);
    drop(s);
    let last = got.last().unwrap().id.clone();

    // More events while disconnected; resume strictly after the last event seen.
    produce(&stack.kafka_bootstrap, &topic, &inserts(300, 150, 3)).await?;
    let mut s = sink.events("resumer", &token, Some(&last)).await?;
    got.extend(s.take(200, T).await?);
    drop(s);
    let last = got.last().unwrap().id.clone();

    // SIGKILL the sink, write more, restart it, resume again.
    sink.kill9()?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(450, 50, 3)).await?;
    sink.restart().await?;
    let mut s = sink.events("resumer", &token, Some(&last)).await?;
    got.extend(s.take(500 - 320, T).await?);
    // Nothing more than what exists arrives.
    assert!(
        s.next(Duration::from_millis(500)).await.is_err(),
        "no extra events"
    );
    assert_exactly_once_in_order(&got, 500);
    // The registration survived the restart (it lives in the compacted topic).
    let r = sink
        .admin(Method::GET, "/v1/consumers/resumer")
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_cursor_is_where_a_new_connection_starts() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_ack_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 2).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 40, 2)).await?;
    let sink = SinkProcess::start(SINK, stack, &[]).await?;
    let token = sink
        .create_consumer(json!({"name": "acker", "topics": [topic], "start": "earliest"}))
        .await?;
    let mut s = sink.events("acker", &token, None).await?;
    let first = s.take(25, T).await?;
    drop(s);
    let r = sink
        .http
        .post(sink.url("/v1/consumers/acker/ack"))
        .bearer_auth(&token)
        .json(&json!({"cursor": first.last().unwrap().id}))
        .send()
        .await?;
    ensure!(r.status() == 200, "ack: {} {}", r.status(), r.text().await?);
    // Without Last-Event-ID the stream resumes after the acknowledged event.
    let mut s = sink.events("acker", &token, None).await?;
    let rest = s.take(15, T).await?;
    let mut all = first.clone();
    all.extend(rest);
    assert_exactly_once_in_order(&all, 40);
    let detail: Value = sink
        .admin(Method::GET, "/v1/consumers/acker")
        .send()
        .await?
        .json()
        .await?;
    let acked: i64 = detail["acked_offsets"][&topic]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_i64().unwrap())
        .sum();
    assert_eq!(
        acked, 25,
        "acked offsets cover the 25 acknowledged events: {detail}"
    );
    // A malformed ack is refused.
    let r = sink
        .http
        .post(sink.url("/v1/consumers/acker/ack"))
        .bearer_auth(&token)
        .json(&json!({"cursor": "garbage!"}))
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    Ok(())
}

/// An acknowledged cursor does not expire while its consumer exists. (Reported: acks were the
/// offsets of consumer group `tumbleweed.<name>`, which the broker drops after
/// `offsets.retention.minutes` without a member; the consumer then reconnected at `latest` and
/// silently skipped everything still retained.) The broker's expiry is reproduced by deleting
/// that group, and the sink is restarted so nothing it remembers can hide the loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_cursor_outlives_the_brokers_group_offset_expiry() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_expiry_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 2).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 6, 2)).await?;
    let mut sink = SinkProcess::start(SINK, stack, &[]).await?;
    let token = sink
        .create_consumer(json!({"name": "traveller", "topics": [topic], "start": "latest"}))
        .await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(6, 20, 2)).await?;
    let mut s = sink.events("traveller", &token, None).await?;
    let first = s.take(8, T).await?;
    drop(s);
    let r = sink
        .http
        .post(sink.url("/v1/consumers/traveller/ack"))
        .bearer_auth(&token)
        .json(&json!({"cursor": first.last().unwrap().id}))
        .send()
        .await?;
    ensure!(r.status() == 200, "ack: {} {}", r.status(), r.text().await?);
    let acked: Value = r.json().await?;
    assert!(acked["acked_at_ms"].as_u64().is_some(), "{acked}");

    delete_group(&stack.kafka_bootstrap, "tumbleweed.traveller").await?;
    sink.terminate()?;
    sink.restart().await?;
    let mut s = sink.events("traveller", &token, None).await?;
    let rest = s.take(12, T).await?;
    let mut all = first;
    all.extend(rest);
    let mut seqs: Vec<i64> = all.iter().map(seq).collect();
    seqs.sort();
    assert_eq!(
        seqs,
        (6..26).collect::<Vec<_>>(),
        "everything after the creation, once"
    );
    assert!(
        s.next(Duration::from_millis(800)).await.is_err(),
        "nothing older follows"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_clear_and_carry_the_right_status() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let topic_a = format!("sse_err_a_{id}");
    let topic_b = format!("sse_err_b_{id}");
    create_topic(&stack.kafka_bootstrap, &topic_a, 1).await?;
    create_topic(&stack.kafka_bootstrap, &topic_b, 1).await?;
    produce(&stack.kafka_bootstrap, &topic_a, &inserts(0, 3, 1)).await?;
    produce(&stack.kafka_bootstrap, &topic_b, &inserts(0, 3, 1)).await?;
    let sink = SinkProcess::start(SINK, stack, &[]).await?;
    let token_a = sink
        .create_consumer(json!({"name": "a", "topics": [topic_a], "start": "earliest"}))
        .await?;
    let token_b = sink
        .create_consumer(json!({"name": "b", "topics": [topic_b], "start": "earliest"}))
        .await?;
    let error_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        (status, v["error"].as_str().unwrap_or("").to_string())
    };

    // Admin API.
    let (st, msg) = error_of(sink.http.get(sink.url("/v1/consumers")).send().await?).await;
    assert_eq!(
        (st, msg.contains("missing admin token")),
        (401, true),
        "{msg}"
    );
    let (st, msg) = error_of(
        sink.http
            .get(sink.url("/v1/consumers"))
            .bearer_auth("wrong-token")
            .send()
            .await?,
    )
    .await;
    assert_eq!((st, msg.as_str()), (401, "invalid admin token"));
    let create = |body: Value| sink.admin(Method::POST, "/v1/consumers").json(&body).send();
    let r = create(json!({"name": "c", "topics": ["no_such_topic"]})).await?;
    let v: Value = r.json().await?;
    assert_eq!(
        v["field"], "topics",
        "errors name the field they concern: {v}"
    );
    let (st, msg) =
        error_of(create(json!({"name": "c", "topics": ["no_such_topic"]})).await?).await;
    assert_eq!(st, 400);
    assert!(
        msg.contains("unknown topic") && msg.contains(&topic_a),
        "{msg}"
    );
    let (st, msg) = error_of(create(json!({"name": "Bad Name", "topics": [topic_a]})).await?).await;
    assert_eq!(st, 400);
    assert!(msg.contains("invalid consumer name"), "{msg}");
    let (st, msg) = error_of(create(json!({"name": "a", "topics": [topic_a]})).await?).await;
    assert_eq!((st, msg.contains("already exists")), (409, true), "{msg}");
    let (st, msg) =
        error_of(create(json!({"name": "c", "topics": [topic_a], "ops": ["x"]})).await?).await;
    assert_eq!((st, msg.contains("unknown op")), (400, true), "{msg}");
    let (st, _) =
        error_of(create(json!({"name": "c", "topics": [topic_a], "start": "middle"})).await?).await;
    assert_eq!(st, 400);
    let (st, _) = error_of(
        sink.admin(Method::GET, "/v1/consumers/nobody")
            .send()
            .await?,
    )
    .await;
    assert_eq!(st, 404);

    // Consumer endpoints.
    let events = |name: &str| {
        sink.http
            .get(sink.url(&format!("/v1/consumers/{name}/events")))
    };
    let (st, msg) = error_of(events("a").send().await?).await;
    assert_eq!(
        (st, msg.contains("missing consumer credential")),
        (401, true),
        "{msg}"
    );
    // A wrong token and an unknown name get the same answer: names cannot be probed.
    let (st, msg) = error_of(events("a").bearer_auth(&token_b).send().await?).await;
    assert_eq!(
        (st, msg.as_str()),
        (401, "unknown consumer or invalid token")
    );
    let (st, msg) = error_of(events("nobody").bearer_auth(&token_a).send().await?).await;
    assert_eq!(
        (st, msg.as_str()),
        (401, "unknown consumer or invalid token")
    );
    let (st, msg) = error_of(
        events("a")
            .bearer_auth(&token_a)
            .header("Last-Event-ID", "%%%not-a-cursor")
            .send()
            .await?,
    )
    .await;
    assert_eq!((st, msg.contains("malformed cursor")), (400, true), "{msg}");
    // A cursor issued for consumer b's topic is refused on consumer a.
    let mut sb = sink.events("b", &token_b, None).await?;
    let b_id = sb.take(1, T).await?.remove(0).id;
    let (st, msg) = error_of(
        events("a")
            .bearer_auth(&token_a)
            .query(&[("last_event_id", b_id.as_str())])
            .send()
            .await?,
    )
    .await;
    assert_eq!((st, msg.contains("other topics")), (400, true), "{msg}");
    // Browsers' EventSource uses a ticket; ?token= is refused by default (tests/tickets.rs).
    let (st, _) = error_of(
        events("a")
            .query(&[("token", token_a.as_str())])
            .send()
            .await?,
    )
    .await;
    assert_eq!(st, 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_filter_keepalive_and_deletion_while_streaming() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_ops_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    let records = vec![
        (
            0,
            json!({"id": 1}),
            Some(debezium_value(
                "c",
                Value::Null,
                json!({"id": 1, "seq": 0}),
                1,
            )),
        ),
        (
            0,
            json!({"id": 1}),
            Some(debezium_value(
                "u",
                json!({"id": 1}),
                json!({"id": 1, "seq": 1}),
                2,
            )),
        ),
        (
            0,
            json!({"id": 1}),
            Some(debezium_value(
                "d",
                json!({"id": 1, "seq": 1}),
                Value::Null,
                3,
            )),
        ),
        (0, json!({"id": 1}), None), // the delete's tombstone: never delivered
        (
            0,
            json!({"id": 2}),
            Some(debezium_value(
                "c",
                Value::Null,
                json!({"id": 2, "seq": 3}),
                4,
            )),
        ),
    ];
    produce(&stack.kafka_bootstrap, &topic, &records).await?;
    let sink = SinkProcess::start(SINK, stack, &[("--sse-keepalive-secs", "1")]).await?;
    let token = sink
        .create_consumer(
            json!({"name": "deletes", "topics": [topic], "start": "earliest", "ops": ["d"]}),
        )
        .await?;
    let all = sink
        .create_consumer(json!({"name": "everything", "topics": [topic], "start": "earliest"}))
        .await?;
    let mut s = sink.events("deletes", &token, None).await?;
    let got = s.take(1, T).await?;
    assert_eq!(got[0].data["op"], "d");
    assert_eq!(got[0].data["before"], json!({"id": 1, "seq": 1}));
    assert_eq!(got[0].data["table"], "public.t");
    assert!(
        s.next(Duration::from_millis(800)).await.is_err(),
        "only the delete passes the filter"
    );
    let mut s_all = sink.events("everything", &all, None).await?;
    let ops: Vec<String> = s_all
        .take(4, T)
        .await?
        .iter()
        .map(|e| e.data["op"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ops, ["c", "u", "d", "c"], "tombstones are not delivered");

    // An idle stream receives comment keepalives (interval 1 s here).
    let raw = read_raw_until(
        sink.http
            .get(sink.url("/v1/consumers/everything/events"))
            .bearer_auth(&all)
            .header("Last-Event-ID", s_all_last(&sink, &all).await?),
        ": keepalive",
        Duration::from_secs(5),
    )
    .await?;
    assert!(raw.starts_with("retry: "), "{raw}");

    // Deleting the consumer closes its live streams with a final comment.
    assert_deletion_closes_stream(&sink, &sink, "deletes", &token).await?;
    // …and its token no longer opens a stream.
    let r = sink
        .http
        .get(sink.url("/v1/consumers/deletes/events"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    Ok(())
}

/// The id of the last event of consumer `everything` (4 events exist).
async fn s_all_last(sink: &SinkProcess, token: &str) -> Result<String> {
    let mut s = sink.events("everything", token, None).await?;
    Ok(s.take(4, T).await?.pop().unwrap().id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_disconnected_then_resumes_without_loss() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_slow_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 10, 1)).await?;
    let sink = SinkProcess::start(
        SINK,
        stack,
        &[("--max-lag-events", "200"), ("--max-chunk-events", "50")],
    )
    .await?;
    let token = sink
        .create_consumer(json!({"name": "slowpoke", "topics": [topic], "start": "earliest"}))
        .await?;
    let resp = sink
        .http
        .get(sink.url("/v1/consumers/slowpoke/events"))
        .bearer_auth(&token)
        .send()
        .await?;
    let mut body = resp.bytes_stream();
    use futures::StreamExt;
    let mut text = String::new();
    // Read until the first 10 events are in: the stream has reached the head.
    while text.matches("\ndata: ").count() < 10 {
        text.push_str(&String::from_utf8_lossy(&body.next().await.unwrap()?));
    }
    // Stop reading while 3,000 large events (≈ 24 MB, more than socket buffers hold) arrive.
    let pad = "x".repeat(8000);
    let big: Vec<_> = (10..3010)
        .map(|i| {
            (
                0,
                json!({"id": i}),
                Some(debezium_value(
                    "c",
                    Value::Null,
                    json!({"id": i, "seq": i, "pad": pad}),
                    i,
                )),
            )
        })
        .collect();
    produce(&stack.kafka_bootstrap, &topic, &big).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Now read everything the server still sends: it must end with the disconnect notice.
    while let Ok(Some(chunk)) = tokio::time::timeout(T, body.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk?));
    }
    assert!(
        text.trim_end()
            .ends_with("reconnect with Last-Event-ID to resume"),
        "stream ends with the slow-consumer notice; tail: {}",
        &text[text.len().saturating_sub(300)..]
    );
    assert!(text.contains(": disconnected: too far behind"));
    // Resume from the last event received: the rest arrives, nothing twice.
    let first: Vec<SseEvent> = parse_events(&text);
    let last_id = first.last().unwrap().id.clone();
    let mut s = sink.events("slowpoke", &token, Some(&last_id)).await?;
    let rest = s.take(3010 - first.len(), Duration::from_secs(60)).await?;
    let mut all = first;
    all.extend(rest);
    assert_exactly_once_in_order(&all, 3010);
    let metrics = sink
        .admin(reqwest::Method::GET, "/metrics")
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("tumbleweed_sse_slow_disconnects_total 1"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_report_streams_and_lag() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_metrics_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 5, 1)).await?;
    let sink = SinkProcess::start(
        SINK,
        stack,
        &[
            ("--emf-namespace", "TumbleweedTest"),
            ("--emf-deployment", "tw-test"),
            ("--emf-interval-secs", "1"),
        ],
    )
    .await?;
    let health: Value = sink
        .http
        .get(sink.url("/healthz"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        health,
        json!({"status": "ok"}),
        "liveness asks nothing of Kafka"
    );
    let ready: Value = sink
        .http
        .get(sink.url("/readyz"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["broker"], "reachable", "{ready}");
    let token = sink
        .create_consumer(json!({"name": "watched", "topics": [topic], "start": "earliest"}))
        .await?;
    let mut s = sink.events("watched", &token, None).await?;
    s.take(5, T).await?;
    let metrics = sink
        .admin(reqwest::Method::GET, "/metrics")
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("tumbleweed_sse_connected_streams 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tumbleweed_sse_events_sent_total 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tumbleweed_kafka_reachable 1"),
        "{metrics}"
    );
    // The shared reader stamped the events: the chunks that carried them were timed.
    let delayed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tumbleweed_sse_delivery_delay_seconds_count "))
        .unwrap_or_else(|| panic!("no delivery delay histogram in {metrics}"))
        .parse()?;
    assert!(delayed >= 1.0, "{metrics}");
    assert!(
        metrics.contains("tumbleweed_consumer_lag_events{consumer=\"watched\"} 0"),
        "{metrics}"
    );
    let topics: Value = sink
        .admin(Method::GET, "/v1/topics")
        .send()
        .await?
        .json()
        .await?;
    let ours = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == topic.as_str())
        .cloned()
        .unwrap();
    assert_eq!(ours["partitions"], 1);
    assert_eq!(ours["end_offsets"], json!([5]));

    // The same health as CloudWatch EMF lines on stdout (what the ECS log driver ships and the
    // Terraform alarms read): the fixed line with the open stream, and the consumer's line.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let log = sink.log_text();
    let emf: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\""))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let head = emf
        .iter()
        .rev()
        .find(|v| v["ConnectedStreams"].is_number())
        .with_context(|| format!("no EMF line in the log:\n{log}"))?;
    assert_eq!(
        head["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "TumbleweedTest"
    );
    assert_eq!(head["Deployment"], "tw-test");
    assert_eq!(head["ConnectedStreams"], json!(1.0), "{head}");
    assert_eq!(head["KafkaReachable"], json!(1.0), "{head}");
    assert_eq!(head["MaxConsumerLagEvents"], json!(0.0), "{head}");
    assert!(
        head["ResidentBytes"].as_f64().unwrap_or(0.0) > 1e6,
        "{head}"
    );
    assert!(
        emf.iter()
            .any(|v| v["Consumer"] == "watched" && v["ConsumerLagEvents"] == json!(0.0)),
        "a line per consumer with a live stream"
    );
    drop(s);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_registrations_and_agree_on_a_concurrent_create() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let topic = format!("sse_replicas_{id}");
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 5, 1)).await?;
    let registry = format!("_tw_test_shared_registry_{id}");
    let shared = [("--consumers-topic", registry.as_str())];
    let a = SinkProcess::start(SINK, stack, &shared).await?;
    let b = SinkProcess::start(SINK, stack, &shared).await?;

    // Created on A, usable on B.
    let token = a
        .create_consumer(json!({"name": "shared", "topics": [topic], "start": "earliest"}))
        .await?;
    let mut on_b = b.events("shared", &token, None).await?;
    assert_eq!(on_b.take(5, T).await?.len(), 5);

    // The same name created on both at once: one wins everywhere.
    let body = json!({"name": "racer", "topics": [topic], "start": "earliest"});
    let (ra, rb) = tokio::join!(
        a.admin(Method::POST, "/v1/consumers").json(&body).send(),
        b.admin(Method::POST, "/v1/consumers").json(&body).send(),
    );
    let (ra, rb) = (ra?, rb?);
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "exactly one create wins");
    let winner: Value = if ra.status() == 201 {
        ra.json().await?
    } else {
        rb.json().await?
    };
    let racer_token = winner["token"].as_str().unwrap().to_string();
    for sink in [&a, &b] {
        let mut s = sink.events("racer", &racer_token, None).await?;
        assert_eq!(
            s.take(1, T).await?.len(),
            1,
            "the winning token works on every replica"
        );
    }

    // Deleted on A: the stream on B is closed too.
    assert_deletion_closes_stream(&a, &b, "shared", &token).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_streams_to_reconnect_and_exits_cleanly() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_term_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    let mut sink = SinkProcess::start(SINK, stack, &[]).await?;
    let token = sink
        .create_consumer(json!({"name": "leaver", "topics": [topic], "start": "latest"}))
        .await?;
    let reading = tokio::spawn(read_raw_until(
        sink.http
            .get(sink.url("/v1/consumers/leaver/events"))
            .bearer_auth(&token),
        "server shutting down",
        Duration::from_secs(20),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let clean = tokio::task::spawn_blocking(move || sink.terminate()).await??;
    let text = reading.await??;
    assert!(
        text.contains(": server shutting down; reconnect with Last-Event-ID"),
        "{text}"
    );
    assert!(clean, "the sink exits with status 0 after SIGTERM");
    Ok(())
}

/// Opens `consumer`'s stream on `streaming`, deletes the consumer through `deleting` (the same
/// sink or another replica) and asserts the stream ends with the deletion notice.
async fn assert_deletion_closes_stream(
    deleting: &SinkProcess,
    streaming: &SinkProcess,
    consumer: &str,
    token: &str,
) -> Result<()> {
    let closing = tokio::spawn(read_raw_until(
        streaming
            .http
            .get(streaming.url(&format!("/v1/consumers/{consumer}/events")))
            .bearer_auth(token),
        "consumer deleted",
        Duration::from_secs(20),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = deleting
        .admin(Method::DELETE, &format!("/v1/consumers/{consumer}"))
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let text = closing.await??;
    assert!(text.contains(": consumer deleted"), "{text}");
    Ok(())
}

/// A cursor older than the partition's log start (the broker deleted those records, as
/// retention does) yields exactly one `event: gap` naming what was lost, then the stream goes
/// on from the log start with nothing else skipped. A sink that still holds the deleted
/// records in its replay cache delivers them instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_older_than_the_log_start_gets_one_gap_notice_then_continues() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_gap_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 100, 1)).await?;
    // A 16-event buffer: the shared reader starts at offset 84, so older cursors are read
    // from Kafka itself, where the deleted records are really gone.
    let sink = SinkProcess::start(SINK, stack, &[("--buffer-events-per-partition", "16")]).await?;
    let token = sink
        .create_consumer(json!({"name": "gappy", "topics": [topic], "start": "earliest"}))
        .await?;
    let mut s = sink.events("gappy", &token, None).await?;
    let first = s.take(10, T).await?;
    drop(s);
    assert_eq!(
        first.iter().map(seq).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    let cursor = first.last().unwrap().id.clone();

    let low = delete_records(&stack.kafka_bootstrap, &topic, 0, 60).await?;
    assert_eq!(low, 60, "the broker's new log start");

    // This sink read those records before they were deleted and still holds them in its
    // replay cache: it delivers them, so nothing is lost and no gap is announced.
    let mut s = sink.events("gappy", &token, Some(&cursor)).await?;
    let cached = s.take(5, T).await?;
    drop(s);
    assert_eq!(
        cached.iter().map(seq).collect::<Vec<_>>(),
        (10..15).collect::<Vec<_>>(),
        "{cached:?}"
    );
    // A sink that never read them (another replica, or this one restarted) asks Kafka,
    // where they are gone.
    let mut sink = sink;
    sink.terminate()?;
    sink.restart().await?;
    let mut s = sink
        .events_when_ready("gappy", &token, Some(&cursor), T)
        .await?;
    let gap = s.next(T).await?.expect("a gap notice");
    assert_eq!(gap.event, "gap", "first frame: {gap:?}");
    assert_eq!(
        gap.data,
        json!({"topic": topic, "partition": 0, "from": 10, "to": 60, "lost": 50})
    );
    let rest = s.take(40, T).await?;
    assert!(
        rest.iter()
            .all(|e| e.event.is_empty() || e.event == "message"),
        "only events after the gap: {rest:?}"
    );
    assert_eq!(
        rest.iter().map(seq).collect::<Vec<_>>(),
        (60..100).collect::<Vec<_>>()
    );
    // The stream is live after the gap: new records arrive, and no second notice.
    produce(&stack.kafka_bootstrap, &topic, &inserts(100, 5, 1)).await?;
    let live = s.take(5, T).await?;
    assert_eq!(
        live.iter().map(seq).collect::<Vec<_>>(),
        (100..105).collect::<Vec<_>>()
    );

    // The gap notice's own id resumes at the log start, without a second notice.
    let mut s = sink.events("gappy", &token, Some(&gap.id)).await?;
    let again = s.take(45, T).await?;
    assert_eq!(
        again.iter().map(seq).collect::<Vec<_>>(),
        (60..105).collect::<Vec<_>>()
    );
    Ok(())
}

/// `start: "latest"` means the end of each partition when the consumer is created: the
/// history before it is never sent, and what is written after it is, however late the first
/// connection comes. (Reported: a fresh sink replayed the 100 older events.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_starts_at_the_end_as_of_the_consumer_creation() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_latest_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 2).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 100, 2)).await?;
    let sink = SinkProcess::start(SINK, stack, &[]).await?;
    let token = sink
        .create_consumer(json!({"name": "newsy", "topics": [topic], "start": "latest"}))
        .await?;
    // Written after the creation, before the first connection.
    produce(&stack.kafka_bootstrap, &topic, &inserts(100, 4, 2)).await?;
    let mut s = sink.events("newsy", &token, None).await?;
    let got = s.take(4, T).await?;
    let mut seqs: Vec<i64> = got.iter().map(seq).collect();
    seqs.sort();
    assert_eq!(
        seqs,
        vec![100, 101, 102, 103],
        "only what came after the creation"
    );
    assert!(
        s.next(Duration::from_millis(800)).await.is_err(),
        "nothing older follows"
    );
    Ok(())
}

/// Deleting a consumer deletes its acknowledged position: a new consumer of the same name
/// starts from its own `start`. (Reported: the new one inherited the old acks and received
/// only 5 of 10 events.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_consumers_acks_are_not_inherited() -> Result<()> {
    let stack = stack();
    let topic = format!("sse_forget_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 10, 1)).await?;
    let sink = SinkProcess::start(SINK, stack, &[]).await?;
    let body = json!({"name": "phoenix", "topics": [topic], "start": "earliest"});
    let token = sink.create_consumer(body.clone()).await?;
    let mut s = sink.events("phoenix", &token, None).await?;
    let first = s.take(5, T).await?;
    drop(s);
    let r = sink
        .http
        .post(sink.url("/v1/consumers/phoenix/ack"))
        .bearer_auth(&token)
        .json(&json!({"cursor": first[4].id}))
        .send()
        .await?;
    ensure!(r.status() == 200, "ack: {}", r.text().await?);
    let r = sink
        .admin(Method::DELETE, "/v1/consumers/phoenix")
        .send()
        .await?;
    assert_eq!(r.status(), 204);

    let token = sink.create_consumer(body).await?;
    let detail: Value = sink
        .admin(Method::GET, "/v1/consumers/phoenix")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(detail["acked_offsets"][&topic], json!([null]), "{detail}");
    let mut s = sink.events("phoenix", &token, None).await?;
    let all = s.take(10, T).await?;
    assert_eq!(
        all.iter().map(seq).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    Ok(())
}

/// A replay read whose position was deleted under it (retention) never jumps anywhere: the
/// reader gets an out-of-range error (not librdkafka's reset, which by default went to the end
/// of the partition, skipping every retained event without a notice), and the chunk states
/// exactly what was lost, up to the log start; the next chunks continue there, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_read_reports_deleted_records_as_lost_not_a_jump() -> Result<()> {
    use tumbleweed_sink::kafka::replay::{ReplayLimits, ReplayPool};
    use tumbleweed_sink::kafka::{KafkaMeta, KafkaSettings};
    let stack = stack();
    let topic = format!("sse_hole_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts(0, 100, 1)).await?;
    delete_records(&stack.kafka_bootstrap, &topic, 0, 60).await?;
    let settings = KafkaSettings {
        bootstrap: stack.kafka_bootstrap.clone(),
        fetch_wait_max_ms: 100,
    };
    let meta = KafkaMeta::new(&settings)?;
    let pool = ReplayPool::new(settings, meta, ReplayLimits::from_budget(64 << 20, 4));
    let wait = Duration::from_secs(10);
    let first = pool
        .chunk(&topic, 0, 0, 10, i64::MAX, wait)
        .await?
        .expect("a chunk for offset 10");
    assert_eq!((first.start, first.end), (10, 60), "{first:?}");
    assert!(first.events.is_empty(), "nothing was read past the hole");
    assert_eq!(first.lost_after(10), Some((10, 60)));
    assert_eq!(
        first.lost_after(25),
        Some((25, 60)),
        "a stream inside the hole"
    );
    let mut pos = 60;
    let mut got = Vec::new();
    while pos < 100 {
        let c = pool
            .chunk(&topic, 0, 0, pos, i64::MAX, wait)
            .await?
            .with_context(|| format!("no chunk at {pos}"))?;
        assert_eq!(c.lost_from, None, "nothing lost after the log start");
        got.extend(c.events_from(pos).iter().map(|e| e.offset));
        pos = c.end;
    }
    assert_eq!(got, (60..100).collect::<Vec<_>>());
    Ok(())
}
