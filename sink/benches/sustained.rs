//! Live delivery at a steady rate, the sink against its peer KafkaSSE on the same broker in the
//! same run (`cargo bench -p tumbleweed-sink --bench sustained`; `scripts/bench` runs it with
//! the others and prints one table). Prints figures; asserts nothing about speed.
//!
//! Each scenario opens C streams of a fresh topic from offset 0, then a producer writes R
//! ≈300-byte Debezium-shaped events per second for S seconds, each carrying its send time.
//! Every client counts what it receives and, for every read, the age of the oldest event in
//! it. Figures: events delivered of those offered, latency p50/p99 (producer → client), the
//! server's CPU and peak RSS.
//!
//! 1. live: 1 client, 1,000 events/s (both targets).
//! 2. fan-out: 100 clients × 1,000 events/s (both targets; the peer runs one Kafka consumer
//!    per stream, the sink one reader per topic).
//! 3. sustained: 1,000 clients × 2,000 events/s for 60 s, after warm-up rounds of 10 s at
//!    the same rate until the p99 stops falling (the sink; the peer cannot keep up with 100).
//!
//! Environment: BENCH_SCENARIOS (comma-separated subset of live,fanout,sustained),
//! BENCH_SUSTAINED_CLIENTS (1000), BENCH_SUSTAINED_RATE (2000), BENCH_SUSTAINED_SECONDS (60),
//! BENCH_SUSTAINED_WARMUP (seconds per warm-up round at the same rate, not counted, 10; the
//! rounds go on until one's p99 is at least three quarters of the round before's),
//! BENCH_SUSTAINED_WARMUP_ROUNDS (at most, 6),
//! BENCH_FETCH_WAIT_MS (both servers' fetch.wait.max.ms, 100), BENCH_PEER=0 to skip the peer,
//! BENCH_SINK=0 to run the live and fan-out scenarios against the peer only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tumbleweed_tests::bench::{
    count_with_latency, cpu_secs, debezium_value, env_or, now_us, open_stream, quantile_ms,
    raise_fd_limit, rss_kib, stopped_falling, table_row, KafkaSse,
};
use tumbleweed_tests::sink::{create_topic, SinkProcess};
use tumbleweed_tests::{stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

/// Which server a scenario runs against.
enum Target<'a> {
    Sink(&'a SinkProcess),
    Peer(&'a KafkaSse),
}

impl Target<'_> {
    fn name(&self) -> &'static str {
        match self {
            Target::Sink(_) => "tumbleweed",
            Target::Peer(_) => "kafkasse",
        }
    }

    fn pid(&self) -> Result<u32> {
        match self {
            Target::Sink(s) => s.pid().context("sink pid"),
            Target::Peer(p) => Ok(p.pid()),
        }
    }

    /// Opens `clients` streams of `topic` from offset 0.
    async fn open(
        &self,
        topic: &str,
        clients: usize,
    ) -> Result<Vec<(tokio::net::TcpStream, Vec<u8>)>> {
        let mut out = Vec::with_capacity(clients);
        match self {
            Target::Sink(sink) => {
                let name = format!("c{}", unique_suffix());
                let token = sink
                    .create_consumer(json!({"name": name, "topics": [topic], "start": "earliest"}))
                    .await?;
                let addr = sink.base.trim_start_matches("http://").to_string();
                let path = format!("/v1/consumers/{name}/events");
                for _ in 0..clients {
                    out.push(open_stream(&addr, &path, &token).await?);
                }
            }
            Target::Peer(peer) => {
                for _ in 0..clients {
                    out.push(peer.open(topic, Some(0)).await?);
                }
            }
        }
        Ok(out)
    }
}

struct Outcome {
    offered: usize,
    delivered: usize,
    latencies: Vec<i64>,
    cpu: f64,
    secs: f64,
    peak_rss_kib: u64,
}

async fn run(
    target: &Target<'_>,
    bootstrap: &str,
    clients: usize,
    rate: usize,
    seconds: usize,
) -> Result<Outcome> {
    let topic = format!("bench_live_{}", unique_suffix());
    create_topic(bootstrap, &topic, 1).await?;
    let pid = target.pid()?;
    let streams = target.open(&topic, clients).await?;
    // Let every stream settle (the peer's consumers join and fetch) before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let total = rate * seconds;
    let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    // Clients stop at the end of the run plus 10 s of grace for what is still in flight.
    let deadline = t0 + Duration::from_secs(seconds as u64 + 10);
    let readers: Vec<_> = streams
        .into_iter()
        .map(|(mut s, first)| {
            tokio::spawn(async move { count_with_latency(&mut s, &first, total, deadline).await })
        })
        .collect();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "1")
        .create()?;
    let mut pending = Vec::with_capacity(4096);
    for i in 0..total {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let v = debezium_value(i as i64, now_us());
        let k = format!("{{\"id\":{i}}}");
        pending.push(
            producer
                .send_result(FutureRecord::to(&topic).key(&k).payload(&v))
                .map_err(|(e, _)| e)?,
        );
        if pending.len() >= 4096 {
            for f in pending.drain(..2048) {
                f.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for f in pending {
        f.await?.map_err(|(e, _)| e)?;
    }
    let mut delivered = 0;
    let mut latencies = Vec::new();
    for r in readers {
        let (n, lat) = r.await??;
        delivered += n;
        latencies.extend(lat);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    sampler.abort();
    latencies.sort_unstable();
    Ok(Outcome {
        offered: total * clients,
        delivered,
        latencies,
        cpu,
        secs,
        peak_rss_kib: peak.load(Ordering::Relaxed),
    })
}

fn report(scenario: &str, target: &str, o: &Outcome) {
    let p50 = quantile_ms(&o.latencies, 0.50);
    let p99 = quantile_ms(&o.latencies, 0.99);
    println!(
        "{scenario} [{target}]: delivered {} of {} offered; latency p50 {p50:.1} ms p99 {p99:.1} ms; server CPU {:.0}% of one core; peak RSS {} MiB",
        o.delivered,
        o.offered,
        o.cpu / o.secs * 100.0,
        o.peak_rss_kib / 1024
    );
    let detail = format!(
        "{} of {} delivered, p50 {p50:.1} ms, p99 {p99:.1} ms, CPU {:.0}%, RSS {} MiB",
        o.delivered,
        o.offered,
        o.cpu / o.secs * 100.0,
        o.peak_rss_kib / 1024
    );
    table_row(scenario, target, p99, "ms p99", false, &detail);
}

#[tokio::main]
async fn main() -> Result<()> {
    raise_fd_limit();
    let stack = stack();
    let fetch_wait = std::env::var("BENCH_FETCH_WAIT_MS").unwrap_or_else(|_| "100".into());
    let scenarios = std::env::var("BENCH_SCENARIOS")
        .unwrap_or_else(|_| "live,fanout,sustained".into())
        .split(',')
        .map(str::to_string)
        .collect::<Vec<_>>();
    let with_peer = std::env::var("BENCH_PEER").map_or(true, |v| v != "0");
    let with_sink = std::env::var("BENCH_SINK").map_or(true, |v| v != "0");
    let sink = SinkProcess::start(
        SINK,
        stack,
        &[
            ("--max-streams-per-consumer", "1000000"),
            ("--max-streams", "1000000"),
            ("--max-connections", "1000000"),
            ("--fetch-wait-max-ms", &fetch_wait),
        ],
    )
    .await?;
    let peer = if with_peer {
        Some(KafkaSse::start(&stack.kafka_bootstrap, &fetch_wait).await?)
    } else {
        None
    };
    let mut targets = Vec::new();
    if with_sink {
        targets.push(Target::Sink(&sink));
    }
    if let Some(p) = &peer {
        targets.push(Target::Peer(p));
    }
    let sink_only = [Target::Sink(&sink)];
    let bootstrap = &stack.kafka_bootstrap;
    if scenarios.iter().any(|s| s == "live") {
        let scenario = "live: 1 client, 1,000 ev/s, 10 s";
        for t in &targets {
            let o = run(t, bootstrap, 1, 1000, 10).await?;
            report(scenario, t.name(), &o);
        }
    }
    if scenarios.iter().any(|s| s == "fanout") {
        let scenario = "fan-out: 100 clients × 1,000 ev/s, 10 s";
        for t in &targets {
            let o = run(t, bootstrap, 100, 1000, 10).await?;
            report(scenario, t.name(), &o);
        }
    }
    if scenarios.iter().any(|s| s == "sustained") {
        let clients = env_or("BENCH_SUSTAINED_CLIENTS", 1000);
        let rate = env_or("BENCH_SUSTAINED_RATE", 2000);
        let seconds = env_or("BENCH_SUSTAINED_SECONDS", 60);
        let scenario = format!("sustained: {clients} clients × {rate} ev/s, {seconds} s");
        // Warm-up rounds at the same rate, not counted, until one's p99 stops falling (at
        // least three quarters of the round before), as `end_to_end` does: right after the
        // broker started, rounds gave p99 311 ms, then 74 and 46 ms, and 60 s runs 108, 60
        // and 47 ms (the broker's JIT). In `scripts/bench` the live and fan-out scenarios
        // come first and warm it too.
        let warmup = env_or("BENCH_SUSTAINED_WARMUP", 10);
        let max_rounds = env_or("BENCH_SUSTAINED_WARMUP_ROUNDS", 6);
        let mut previous = f64::INFINITY;
        for round in 1..=max_rounds {
            if warmup == 0 {
                break;
            }
            let o = run(&sink_only[0], bootstrap, clients, rate, warmup).await?;
            let p99 = quantile_ms(&o.latencies, 0.99);
            println!(
                "sustained warm-up round {round} of at most {max_rounds} ({warmup} s, not counted): delivered {} of {}; latency p50 {:.1} ms p99 {p99:.1} ms",
                o.delivered,
                o.offered,
                quantile_ms(&o.latencies, 0.50),
            );
            if stopped_falling(p99, previous) {
                break;
            }
            previous = p99;
        }
        let o = run(&sink_only[0], bootstrap, clients, rate, seconds).await?;
        report(&scenario, "tumbleweed", &o);
        ensure!(
            o.delivered <= o.offered,
            "more delivered than offered: the counting is wrong"
        );
    }
    Ok(())
}
