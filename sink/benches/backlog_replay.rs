//! Backlog replay benchmark on the real local stack (`cargo bench -p tumbleweed-sink --bench
//! backlog_replay`). Prints figures; asserts nothing about speed.
//!
//! A topic holds N retained ≈400-byte Debezium-shaped events, all older than the sink's
//! shared buffer (the sink starts after they were written, so its buffer begins at the head).
//! 1. One consumer created with `start: earliest` replays all N: events/s, the sink's CPU.
//! 2. C consumers replay all N at once: aggregate events/s, how many chunks the sink read
//!    from Kafka against how many requests were shared, the sink's CPU and peak RSS.
//!
//! 3. The same two runs against the peer, KafkaSSE (npm `kafka-sse` 0.4.2, one node-rdkafka
//!    consumer per stream) on the same broker, each stopped after BENCH_PEER_SECONDS (30)
//!    if it has not finished: its rate is what it delivered over the time it took.
//!
//! Sizes come from the environment: BENCH_BACKLOG (N, default 1,000,000), BENCH_CLIENTS (C,
//! 10), BENCH_PARTITIONS (1; the peer runs only on 1), BENCH_COMPRESSION (the producer's
//! `compression.type`, `none` as Kafka Connect's producer defaults to), BENCH_SINK_ARGS (extra
//! sink flags), BENCH_PEER=0 to skip the peer.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tumbleweed_tests::bench::{
    count_events, count_events_until, cpu_secs, env_or, machine_busy_secs, open_stream, rss_kib,
    sink_args_from_env, table_row, KafkaSse,
};
use tumbleweed_tests::sink::{create_topic, SinkProcess};
use tumbleweed_tests::{stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

/// A Debezium-shaped value of about 400 bytes once the sink has framed it.
fn value(i: usize) -> String {
    json!({
        "before": null,
        "after": {"id": i, "customer": "c-0000042", "status": "paid", "amount_cents": 129_900, "note": "benchmark row of the backlog replay", "region": "eu-west-1"},
        "source": {"lsn": 100_000 + i, "txId": 5000 + i, "ts_ms": 1_700_000_000_000i64, "schema": "public", "table": "orders", "db": "bench"},
        "op": "c",
        "ts_ms": 1_700_000_000_000i64,
    })
    .to_string()
}

async fn fill(bootstrap: &str, topic: &str, n: usize) -> Result<()> {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set(
            "compression.type",
            std::env::var("BENCH_COMPRESSION").unwrap_or_else(|_| "none".into()),
        )
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut pending = Vec::with_capacity(10_000);
    for i in 0..n {
        let v = value(i);
        let k = format!("{{\"id\":{i}}}");
        pending.push(
            p.send_result(FutureRecord::to(topic).key(&k).payload(&v))
                .map_err(|(e, _)| e)?,
        );
        if pending.len() == 10_000 {
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

/// Opens `clients` streams of new `earliest` consumers at once and reads `n` events from
/// each; returns (seconds, sink CPU seconds, peak RSS in KiB, machine busy fraction).
async fn replay(
    sink: &SinkProcess,
    topic: &str,
    clients: usize,
    n: usize,
    run: &str,
) -> Result<(f64, f64, u64, f64)> {
    let pid = sink.pid().context("sink pid")?;
    let addr = sink.base.trim_start_matches("http://").to_string();
    let mut tokens = Vec::new();
    for c in 0..clients {
        let name = format!("{run}-{c}");
        let token = sink
            .create_consumer(json!({"name": name, "topics": [topic], "start": "earliest"}))
            .await?;
        tokens.push((name, token));
    }
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_kib(pid)));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let cpu0 = cpu_secs(pid);
    let (busy0, cores) = machine_busy_secs();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (name, token) in tokens {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let path = format!("/v1/consumers/{name}/events");
            let (mut s, first) = open_stream(&addr, &path, &token).await?;
            count_events(&mut s, &first, n).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    let busy = (machine_busy_secs().0 - busy0) / secs / cores as f64;
    sampler.abort();
    Ok((
        secs,
        cpu,
        peak.load(std::sync::atomic::Ordering::Relaxed),
        busy,
    ))
}

/// The peer replays the same history: `clients` KafkaSSE streams from offset 0, each read
/// until it has all `n` events or `limit` has passed. Returns (events delivered in all,
/// seconds, the peer's CPU seconds).
async fn replay_peer(
    peer: &KafkaSse,
    topic: &str,
    clients: usize,
    n: usize,
    limit: Duration,
) -> Result<(usize, f64, f64)> {
    let mut streams = Vec::new();
    for _ in 0..clients {
        streams.push(peer.open(topic, Some(0)).await?);
    }
    let cpu0 = cpu_secs(peer.pid());
    let t0 = Instant::now();
    let deadline = t0 + limit;
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|(mut s, first)| {
            tokio::spawn(async move { count_events_until(&mut s, &first, n, deadline).await })
        })
        .collect();
    let mut delivered = 0;
    for t in tasks {
        delivered += t.await??;
    }
    Ok((
        delivered,
        t0.elapsed().as_secs_f64(),
        cpu_secs(peer.pid()) - cpu0,
    ))
}

async fn metric(sink: &SinkProcess, name: &str) -> Result<f64> {
    let text = sink
        .admin(reqwest::Method::GET, "/metrics")
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN))
}

#[tokio::main]
async fn main() -> Result<()> {
    let n = env_or("BENCH_BACKLOG", 1_000_000);
    let clients = env_or("BENCH_CLIENTS", 10);
    let partitions = env_or("BENCH_PARTITIONS", 1);
    let stack = stack();
    let topic = format!("bench_backlog_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, partitions as i32).await?;
    let t = Instant::now();
    fill(&stack.kafka_bootstrap, &topic, n).await?;
    println!(
        "backlog: {n} events in {partitions} partition(s) written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let extra = sink_args_from_env();
    let args: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let sink = SinkProcess::start(SINK, stack, &args).await?;
    let pid = sink.pid().context("sink pid")?;
    println!("sink RSS at start {} MiB", rss_kib(pid) / 1024);

    let (secs, cpu, peak, busy) = replay(&sink, &topic, 1, n, "one").await?;
    println!(
        "1 client: {n} events in {secs:.2} s = {:.0} events/s; sink CPU {:.0}% of one core; machine {:.0}% busy; peak RSS {} MiB",
        n as f64 / secs,
        cpu / secs * 100.0,
        busy * 100.0,
        peak / 1024
    );
    let one = format!("backlog: 1 client replays {n} retained events");
    table_row(
        &one,
        "tumbleweed",
        n as f64 / secs,
        "ev/s",
        true,
        &format!(
            "{secs:.1} s, CPU {:.0}%, peak RSS {} MiB",
            cpu / secs * 100.0,
            peak / 1024
        ),
    );
    let read0 = metric(&sink, "tumbleweed_replay_chunks_read_total").await?;
    let shared0 = metric(&sink, "tumbleweed_replay_chunks_shared_total").await?;
    let (secs, cpu, peak, busy) = replay(&sink, &topic, clients, n, "many").await?;
    let read = metric(&sink, "tumbleweed_replay_chunks_read_total").await? - read0;
    let shared = metric(&sink, "tumbleweed_replay_chunks_shared_total").await? - shared0;
    println!(
        "{clients} clients at once: {} events in {secs:.2} s = {:.0} events/s aggregate; chunks read from Kafka {read}, requests shared {shared}; sink CPU {:.0}% of one core; machine {:.0}% busy; peak RSS {} MiB",
        n * clients,
        (n * clients) as f64 / secs,
        cpu / secs * 100.0,
        busy * 100.0,
        peak / 1024
    );
    let many = format!("backlog: {clients} clients replay {n} at once (aggregate)");
    table_row(
        &many,
        "tumbleweed",
        (n * clients) as f64 / secs,
        "ev/s",
        true,
        &format!(
            "{secs:.1} s, {read} chunks read from Kafka for all, CPU {:.0}%, peak RSS {} MiB",
            cpu / secs * 100.0,
            peak / 1024
        ),
    );

    if std::env::var("BENCH_PEER").is_ok_and(|v| v == "0") || partitions != 1 {
        return Ok(());
    }
    let limit = Duration::from_secs(env_or("BENCH_PEER_SECONDS", 30) as u64);
    let fetch_wait = std::env::var("BENCH_FETCH_WAIT_MS").unwrap_or_else(|_| "100".into());
    let peer = KafkaSse::start(&stack.kafka_bootstrap, &fetch_wait).await?;
    for (scenario, c) in [(one, 1), (many, clients)] {
        let (delivered, secs, cpu) = replay_peer(&peer, &topic, c, n, limit).await?;
        let finished = if delivered == n * c {
            "all".to_string()
        } else {
            format!(
                "stopped at {} s with {delivered} of {}",
                limit.as_secs(),
                n * c
            )
        };
        println!(
            "peer (KafkaSSE), {c} client(s): {delivered} events in {secs:.2} s = {:.0} events/s ({finished}); peer CPU {:.0}% of one core",
            delivered as f64 / secs,
            cpu / secs * 100.0
        );
        table_row(
            &scenario,
            "kafkasse",
            delivered as f64 / secs,
            "ev/s",
            true,
            &format!("{finished}, CPU {:.0}%", cpu / secs * 100.0),
        );
    }
    Ok(())
}
