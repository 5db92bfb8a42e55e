//! Bounds and topic changes, against the real broker and the real sink binary:
//! - partitions added to a topic are delivered, to live streams and to resumes;
//! - a topic deleted and recreated under a stream is announced with `event: reset`, never a
//!   silent jump, and a cursor of the old topic resumes on the new one the same way;
//! - stream limits answer 429 (per consumer) and 503 (whole sink) with `Retry-After`, and a
//!   connection over the connection limit gets a 503;
//! - a client that stops reading is closed by the write timeout and frees its place;
//! - catch-up readers are capped, and streams waiting for one lose nothing;
//! - the shared buffers stay inside their byte budget, and unused topic readers are closed;
//! - internal topics cannot be tailed.
//!
//! Each test starts its own sink with the limits it needs, on topics of its own.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};
use tumbleweed_tests::sink::{
    add_partitions, create_topic, debezium_value, produce, recreate_topic, SinkProcess, SseEvent,
    SseStream,
};
use tumbleweed_tests::{eventually, stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");
const T: Duration = Duration::from_secs(30);

/// `n` inserts numbered from `first`, all to `partition`, each with a payload of `pad` bytes.
fn inserts_to(partition: i32, first: i64, n: i64, pad: usize) -> Vec<(i32, Value, Option<Value>)> {
    let filler = "x".repeat(pad);
    (first..first + n)
        .map(|i| {
            (
                partition,
                json!({"id": i}),
                Some(debezium_value(
                    "c",
                    Value::Null,
                    json!({"id": i, "seq": i, "pad": filler}),
                    1000 + i,
                )),
            )
        })
        .collect()
}

fn seq(e: &SseEvent) -> i64 {
    e.data["after"]["seq"].as_i64().expect("seq in after")
}

/// A metric's value from the sink's `/metrics`.
async fn metric(sink: &SinkProcess, name: &str) -> Result<f64> {
    let text = sink
        .admin(reqwest::Method::GET, "/metrics")
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("metric {name} not in /metrics"))
}

/// Partitions added while a stream is open are read from their beginning; a cursor that
/// covers them resumes on a sink that has not seen them yet. (Reported: a partition added
/// after a topic's reader started was never served until restart.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_to_a_topic_are_delivered() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let topic = format!("bounds_grow_{id}");
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts_to(0, 0, 5, 0)).await?;
    let registry = format!("_tw_test_consumers_{id}");
    let shared = [("--consumers-topic", registry.as_str())];
    let a = SinkProcess::start(SINK, stack, &shared).await?;
    let token = a
        .create_consumer(json!({"name": "grower", "topics": [topic], "start": "earliest"}))
        .await?;
    let mut s = a.events("grower", &token, None).await?;
    let mut got = s.take(5, T).await?;

    add_partitions(&stack.kafka_bootstrap, &topic, 3).await?;
    let mut more = inserts_to(1, 5, 5, 0);
    more.extend(inserts_to(2, 10, 5, 0));
    more.extend(inserts_to(0, 15, 5, 0));
    produce(&stack.kafka_bootstrap, &topic, &more).await?;
    got.extend(s.take(15, T).await?);
    let mut seqs: Vec<i64> = got.iter().map(seq).collect();
    seqs.sort();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    let last = got.last().unwrap().id.clone();
    drop(s);

    // A replica that never read the topic resumes from a cursor covering 3 partitions.
    let b = SinkProcess::start(SINK, stack, &shared).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts_to(2, 20, 3, 0)).await?;
    let mut s = b
        .events_when_ready("grower", &token, Some(&last), T)
        .await?;
    let rest = s.take(3, T).await?;
    assert_eq!(rest.iter().map(seq).collect::<Vec<_>>(), vec![20, 21, 22]);
    assert!(
        s.next(Duration::from_millis(800)).await.is_err(),
        "nothing more"
    );
    Ok(())
}

/// A topic deleted and recreated under a live stream: the stream says so with one
/// `event: reset` (where it was, where it continues) and delivers the new topic from its
/// start; resuming with a cursor of the old topic does the same. (Reported: a recreated topic
/// was not detected.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_is_announced_with_a_reset() -> Result<()> {
    let stack = stack();
    let topic = format!("bounds_recreate_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts_to(0, 0, 10, 0)).await?;
    let sink = SinkProcess::start(SINK, stack, &[]).await?;
    let token = sink
        .create_consumer(json!({"name": "phoenix", "topics": [topic], "start": "earliest"}))
        .await?;
    let mut s = sink.events("phoenix", &token, None).await?;
    let old = s.take(10, T).await?;
    let old_cursor = old.last().unwrap().id.clone();

    recreate_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts_to(0, 100, 3, 0)).await?;
    let next = s.take(4, Duration::from_secs(60)).await?;
    assert_eq!(next[0].event, "reset", "{next:?}");
    assert_eq!(next[0].data["topic"], json!(topic));
    assert_eq!(next[0].data["partition"], json!(0));
    assert_eq!(next[0].data["from"], json!(10));
    assert_eq!(next[0].data["to"], json!(0));
    assert_eq!(
        next[1..].iter().map(seq).collect::<Vec<_>>(),
        vec![100, 101, 102]
    );
    drop(s);

    // The old topic's cursor, on a new connection: the same notice, then the new topic.
    let mut s = sink
        .events_when_ready("phoenix", &token, Some(&old_cursor), T)
        .await?;
    let again = s.take(4, T).await?;
    assert_eq!(again[0].event, "reset", "{again:?}");
    assert_eq!(again[0].data["from"], json!(10));
    assert_eq!(
        again[1..].iter().map(seq).collect::<Vec<_>>(),
        vec![100, 101, 102]
    );
    Ok(())
}

/// More streams than a consumer may hold get 429, more than the sink serves get 503, both with
/// `Retry-After`; a place freed by a closed stream is taken again. A connection over the
/// connection limit gets one 503 and is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_connection_limits_answer_with_retry_after() -> Result<()> {
    let stack = stack();
    let topic = format!("bounds_limits_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    let sink = SinkProcess::start(
        SINK,
        stack,
        &[
            ("--max-streams-per-consumer", "2"),
            ("--max-streams", "3"),
            ("--max-connections", "6"),
        ],
    )
    .await?;
    let ta = sink
        .create_consumer(json!({"name": "a", "topics": [topic]}))
        .await?;
    let tb = sink
        .create_consumer(json!({"name": "b", "topics": [topic]}))
        .await?;
    let open = |name: &'static str, token: String| {
        let url = sink.url(&format!("/v1/consumers/{name}/events"));
        async move {
            // A client per stream: each stream is a connection of its own.
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
        }
    };
    let a1 = SseStream::open(
        reqwest::Client::new()
            .get(sink.url("/v1/consumers/a/events"))
            .bearer_auth(&ta),
    )
    .await?;
    let _a2 = SseStream::open(
        reqwest::Client::new()
            .get(sink.url("/v1/consumers/a/events"))
            .bearer_auth(&ta),
    )
    .await?;
    let r = open("a", ta.clone()).await?;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await?;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("TUMBLEWEED_MAX_STREAMS_PER_CONSUMER"),
        "{body}"
    );
    let _b1 = SseStream::open(
        reqwest::Client::new()
            .get(sink.url("/v1/consumers/b/events"))
            .bearer_auth(&tb),
    )
    .await?;
    let r = open("b", tb.clone()).await?;
    assert_eq!(r.status(), 503, "the sink is full");
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await?;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("TUMBLEWEED_MAX_STREAMS"),
        "{body}"
    );
    // Both refusals are counted. Read before the place is freed: the retries below may be
    // refused too until the sink has seen `a1` close, and each of those counts as well.
    let refused = metric(&sink, "tumbleweed_sse_streams_refused_total").await?;
    assert_eq!(refused, 2.0);
    drop(a1);
    let b2 = eventually("a freed place", Duration::from_secs(10), || {
        let req = reqwest::Client::new()
            .get(sink.url("/v1/consumers/b/events"))
            .bearer_auth(&tb);
        async move { Ok(SseStream::open(req).await.ok()) }
    })
    .await?;
    drop(b2);

    // Connections: hold idle ones open until one is refused.
    let mut held = Vec::new();
    let mut refused_at = None;
    for i in 0..10 {
        let mut tcp =
            tokio::net::TcpStream::connect(sink.base.trim_start_matches("http://")).await?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await??;
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        if head.starts_with("HTTP/1.1 503") {
            ensure!(
                head.to_ascii_lowercase().contains("retry-after: 5"),
                "{head}"
            );
            ensure!(head.contains("TUMBLEWEED_MAX_CONNECTIONS"), "{head}");
            refused_at = Some(i);
            break;
        }
        ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(tcp);
    }
    let refused_at = refused_at.context("no connection was refused")?;
    ensure!(
        refused_at <= 6,
        "refused only after {refused_at} held connections (limit 6)"
    );
    drop(held);
    eventually(
        "a connection admitted again",
        Duration::from_secs(10),
        || {
            let url = sink.url("/healthz");
            async move {
                let r = reqwest::Client::new().get(url).send().await;
                Ok(r.ok().filter(|r| r.status() == 200).map(|_| ()))
            }
        },
    )
    .await?;
    Ok(())
}

/// With one replay reader for the whole sink, three streams that start far behind the
/// buffer, each on its own topic, take turns: each receives every event once, in order.
/// A client that stops reading, with more to send than the socket buffers hold, is closed
/// once it has accepted nothing for the write timeout: its connection ends and its place under
/// the per-consumer limit is free again. (Before, its stream waited forever for a reader that
/// never came back, and held the place: a second stream of the consumer got 429.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_frees_its_place() -> Result<()> {
    use tokio::io::AsyncReadExt;
    let stack = stack();
    let topic = format!("bounds_stalled_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    // ≈ 24 MB: far more than the client's receive and the server's send buffers hold.
    produce(
        &stack.kafka_bootstrap,
        &topic,
        &inserts_to(0, 0, 3000, 8000),
    )
    .await?;
    let sink = SinkProcess::start(
        SINK,
        stack,
        &[
            ("--max-streams-per-consumer", "1"),
            ("--write-timeout-secs", "2"),
        ],
    )
    .await?;
    let token = sink
        .create_consumer(json!({"name": "stalled", "topics": [topic], "start": "earliest"}))
        .await?;
    let addr = sink.base.trim_start_matches("http://").to_string();
    // A raw connection that reads the response head and then nothing.
    let (mut stalled, _head) =
        tumbleweed_tests::bench::open_stream(&addr, "/v1/consumers/stalled/events", &token).await?;
    // The place is taken while the client is stalled...
    let r = sink
        .http
        .get(sink.url("/v1/consumers/stalled/events"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(r.status(), 429, "the stalled stream holds the only place");
    drop(r);
    // ...and freed by the write timeout, without the client doing anything.
    eventually("the stalled stream to be closed", T, || async {
        let n = metric(&sink, "tumbleweed_sse_connected_streams").await?;
        Ok((n == 0.0).then_some(()))
    })
    .await?;
    let mut s = SseStream::open(
        sink.http
            .get(sink.url("/v1/consumers/stalled/events"))
            .bearer_auth(&token),
    )
    .await?;
    assert_eq!(s.take(1, T).await?.len(), 1, "a new stream is served");
    // The stalled connection was closed: reading it now drains what the buffers held, then
    // finds its end (well short of the 24 MB the topic holds).
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0usize;
    loop {
        let n = tokio::time::timeout(T, stalled.read(&mut buf))
            .await
            .context("the stalled connection is still open")?
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        read += n;
    }
    assert!(read < 20_000_000, "{read} bytes came after the stall");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_catch_up_readers_make_streams_wait_not_lose() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let topics: Vec<String> = (0..3).map(|i| format!("bounds_catchup_{i}_{id}")).collect();
    for t in &topics {
        create_topic(&stack.kafka_bootstrap, t, 1).await?;
        produce(&stack.kafka_bootstrap, t, &inserts_to(0, 0, 600, 0)).await?;
    }
    let sink = SinkProcess::start(
        SINK,
        stack,
        &[
            ("--max-catchup-readers", "1"),
            ("--buffer-events-per-partition", "16"),
            ("--max-chunk-events", "20"),
            // Small chunks, so every stream needs the reader many times.
            ("--buffer-bytes", "1048576"),
        ],
    )
    .await?;
    let mut tasks = Vec::new();
    for (name, topic) in ["c1", "c2", "c3"].iter().zip(&topics) {
        let token = sink
            .create_consumer(json!({"name": name, "topics": [topic], "start": "earliest"}))
            .await?;
        let req = sink
            .http
            .get(sink.url(&format!("/v1/consumers/{name}/events")))
            .bearer_auth(token);
        tasks.push(tokio::spawn(async move {
            let mut s = SseStream::open(req).await?;
            s.take(600, Duration::from_secs(90)).await
        }));
    }
    for t in tasks {
        let got = t.await??;
        assert_eq!(
            got.iter().map(seq).collect::<Vec<_>>(),
            (0..600).collect::<Vec<_>>()
        );
    }
    let waits = metric(&sink, "tumbleweed_catchup_reader_waits_total").await?;
    assert!(waits > 0.0, "the streams had to wait for the single reader");
    ensure!(
        metric(&sink, "tumbleweed_catchup_readers").await? <= 1.0,
        "never more than the one reader"
    );
    Ok(())
}

/// Streams replaying the same history share the reading: once one stream has replayed a
/// topic, two more consumers replaying it from the start are served from the replay cache,
/// and the sink reads nothing more from Kafka for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_replaying_the_same_history_share_one_read() -> Result<()> {
    let stack = stack();
    let topic = format!("bounds_shared_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(&stack.kafka_bootstrap, &topic, &inserts_to(0, 0, 3000, 0)).await?;
    let sink = SinkProcess::start(
        SINK,
        stack,
        &[
            ("--buffer-events-per-partition", "16"),
            // 16 MiB: chunks of 256 KiB, so the replay takes several chunks.
            ("--buffer-bytes", "16777216"),
        ],
    )
    .await?;
    let replay = |name: &'static str| {
        let sink = &sink;
        let topic = topic.clone();
        async move {
            let token = sink
                .create_consumer(json!({"name": name, "topics": [topic], "start": "earliest"}))
                .await?;
            let mut s = sink.events(name, &token, None).await?;
            let got = s.take(3000, Duration::from_secs(60)).await?;
            assert_eq!(
                got.iter().map(seq).collect::<Vec<_>>(),
                (0..3000).collect::<Vec<_>>(),
                "{name}"
            );
            anyhow::Ok(())
        }
    };
    replay("first").await?;
    let read = metric(&sink, "tumbleweed_replay_chunks_read_total").await?;
    ensure!(
        read >= 1.0,
        "the first replay read chunks from Kafka ({read})"
    );
    let (a, b) = tokio::join!(replay("second"), replay("third"));
    a?;
    b?;
    assert_eq!(
        metric(&sink, "tumbleweed_replay_chunks_read_total").await?,
        read,
        "the later replays read nothing more from Kafka"
    );
    ensure!(metric(&sink, "tumbleweed_replay_chunks_shared_total").await? >= 2.0 * read);
    Ok(())
}

/// Three topics of ~1 KB events, each larger than the whole 1 MiB budget: the buffers hold at
/// most the budget, streams still receive everything (older events through catch-up), and
/// the topic readers close once nobody uses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_keep_to_the_byte_budget_and_idle_readers_close() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let topics: Vec<String> = (0..3).map(|i| format!("bounds_budget_{i}_{id}")).collect();
    for t in &topics {
        create_topic(&stack.kafka_bootstrap, t, 2).await?;
        let mut records = inserts_to(0, 0, 1000, 1000);
        records.extend(inserts_to(1, 1000, 1000, 1000));
        produce(&stack.kafka_bootstrap, t, &records).await?;
    }
    let budget = 1 << 20;
    let sink = SinkProcess::start(
        SINK,
        stack,
        &[
            ("--buffer-bytes", &budget.to_string()),
            ("--buffer-bytes-per-topic", &budget.to_string()),
            ("--feed-idle-secs", "1"),
        ],
    )
    .await?;
    let mut streams = Vec::new();
    for t in &topics {
        let req = sink.admin(
            Method::GET,
            &format!("/v1/topics/{t}/events?start=earliest"),
        );
        let mut s = SseStream::open(req).await?;
        let got = s.take(2000, Duration::from_secs(60)).await?;
        let mut seqs: Vec<i64> = got.iter().map(seq).collect();
        seqs.sort();
        assert_eq!(seqs, (0..2000).collect::<Vec<_>>(), "{t}");
        streams.push(s);
    }
    let readers = metric(&sink, "tumbleweed_topic_readers").await?;
    assert_eq!(readers, 3.0);
    let held = metric(&sink, "tumbleweed_buffer_bytes").await?;
    assert!(
        held <= budget as f64,
        "buffers hold {held} bytes, over the {budget} budget"
    );
    assert!(held > 0.0, "the buffers hold something");
    drop(streams);
    let start = Instant::now();
    eventually(
        "the unused readers closed",
        Duration::from_secs(20),
        || async { Ok((metric(&sink, "tumbleweed_topic_readers").await? == 0.0).then_some(())) },
    )
    .await?;
    println!("readers closed {:?} after the streams", start.elapsed());
    Ok(())
}

/// Internal topics (`_…`: Connect's configs, the sink's registries and cursors) are not
/// streamed by the live tail, whatever exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_topics_cannot_be_tailed() -> Result<()> {
    let sink = SinkProcess::start(SINK, stack(), &[]).await?;
    for t in [
        "_tumbleweed_connect_configs",
        "_tumbleweed_cursors",
        "__consumer_offsets",
    ] {
        let r = sink
            .admin(Method::GET, &format!("/v1/topics/{t}/events"))
            .send()
            .await?;
        assert_eq!(r.status(), 404, "{t}");
    }
    Ok(())
}
