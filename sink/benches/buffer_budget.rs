//! Memory bound benchmark on the real local stack (`cargo bench -p tumbleweed-sink --bench
//! buffer_budget`). Prints figures; asserts nothing about memory or speed.
//!
//! T topics (BENCH_TOPICS, default 200) of one partition each hold E events (BENCH_EVENTS,
//! 2000) of about 1 KB. The sink runs with a global buffer budget of B MiB (BENCH_BUDGET_MIB,
//! 64) and 8 MiB per topic, and a memory limit of L MiB (BENCH_MEMORY_LIMIT_MIB, 5 × B: the
//! sizing rule). One live-tail stream per topic reads its topic from the earliest event to the
//! end, at once: most of it through the shared replay (16 pooled readers), the rest from the
//! shared buffers; a stream refused for memory (503) is asked again. The streams then stay
//! open at the head. BENCH_SINK_ARGS adds sink flags; BENCH_COMPRESSION (lz4) is the
//! producer's compression.
//!
//! Figures: the sink's RSS before any stream, its peak while the streams read (sampled every
//! 100 ms), and after; the bytes its buffers hold (`tumbleweed_buffer_bytes`) against the
//! budget; events/s.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tumbleweed_tests::bench::{env_or, rss_kib, sink_args_from_env, table_row};
use tumbleweed_tests::sink::{create_topic, SinkProcess, ADMIN_TOKEN};
use tumbleweed_tests::{stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let n_topics = env_or("BENCH_TOPICS", 200);
    let n_events = env_or("BENCH_EVENTS", 2000);
    let budget_mib = env_or("BENCH_BUDGET_MIB", 64);
    let limit_mib = env_or("BENCH_MEMORY_LIMIT_MIB", 5 * budget_mib);
    let compression = std::env::var("BENCH_COMPRESSION").unwrap_or_else(|_| "lz4".into());
    let stack = stack();
    let id = unique_suffix();
    let topics: Vec<String> = (0..n_topics)
        .map(|i| format!("bench_budget_{id}_{i}"))
        .collect();

    let started = Instant::now();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("linger.ms", "20")
        .set("compression.type", &compression)
        .create()?;
    let pad = "x".repeat(900);
    for t in &topics {
        create_topic(&stack.kafka_bootstrap, t, 1).await?;
        let mut pending = Vec::with_capacity(n_events);
        for i in 0..n_events {
            let value = json!({
                "payload": {"op": "c", "before": null, "after": {"id": i, "pad": pad},
                    "source": {"lsn": i, "txId": i, "ts_ms": 0, "schema": "public", "table": "t"}}
            })
            .to_string();
            let key = json!({"id": i}).to_string();
            pending.push(
                producer
                    .send_result(FutureRecord::to(t).key(&key).payload(&value))
                    .map_err(|(e, _)| e)?,
            );
        }
        for p in pending {
            p.await?.map_err(|(e, _)| e)?;
        }
    }
    println!(
        "produced {n_topics} topics × {n_events} events of ~1 KB ({compression}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let budget = (budget_mib << 20).to_string();
    let per_topic = (8usize << 20).to_string();
    let limit = (limit_mib << 20).to_string();
    let extra = sink_args_from_env();
    let mut args: Vec<(&str, &str)> = vec![
        ("--buffer-bytes", &budget),
        ("--buffer-bytes-per-topic", &per_topic),
        ("--max-streams", "100000"),
        ("--memory-limit", &limit),
    ];
    args.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let sink = SinkProcess::start(SINK, stack, &args).await?;
    let pid = sink.pid().context("sink pid")?;
    let base_kib = rss_kib(pid);
    println!(
        "sink RSS before any stream: {} MiB; buffer budget {budget_mib} MiB; memory limit {limit_mib} MiB",
        base_kib / 1024
    );

    let peak = Arc::new(AtomicU64::new(base_kib));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let read_start = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for t in &topics {
        let url = sink.url(&format!("/v1/topics/{t}/events?start=earliest"));
        let delivered = delivered.clone();
        let want = n_events as u64;
        readers.push(tokio::spawn(async move {
            // A stream refused for memory (503, Retry-After) is asked again, as a client
            // would; the benchmark does not wait the whole Retry-After.
            let resp = loop {
                let resp = reqwest::Client::new()
                    .get(&url)
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await?;
                if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                break resp.error_for_status()?;
            };
            let mut body = resp.bytes_stream();
            let needle = b"\ndata: ";
            let finder = memchr::memmem::Finder::new(needle);
            let mut seen = 0u64;
            // Count frames (a marker can straddle two chunks: keep the last bytes); keep the
            // connection open afterwards (returned to the caller).
            let mut window: Vec<u8> = Vec::new();
            while seen < want {
                let chunk = body.next().await.context("stream ended")??;
                window.extend_from_slice(&chunk);
                let n = finder.find_iter(&window).count() as u64;
                let keep = window.len().min(needle.len() - 1);
                window.drain(..window.len() - keep);
                seen += n;
                delivered.fetch_add(n, Ordering::Relaxed);
            }
            anyhow::Ok(body)
        }));
    }
    let mut open = Vec::new();
    for r in readers {
        open.push(r.await??);
    }
    let secs = read_start.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    // Let the allocators give back what the catch-up phase freed (jemalloc decays dirty
    // pages over 10 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let metrics = sink
        .admin(reqwest::Method::GET, "/metrics")
        .send()
        .await?
        .text()
        .await?;
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let total = delivered.load(Ordering::Relaxed);
    println!(
        "{n_topics} streams read {total} events in {secs:.1} s ({:.0} events/s); replay reader waits {}; streams refused for memory then retried {}; 100 ms samples above 85 % of the limit {}",
        total as f64 / secs,
        metric("tumbleweed_catchup_reader_waits_total"),
        metric("tumbleweed_sse_streams_refused_total"),
        metric("tumbleweed_memory_pressure_samples_total")
    );
    println!(
        "buffers hold {:.1} MiB of the {budget_mib} MiB budget across {} topic readers",
        metric("tumbleweed_buffer_bytes") / (1 << 20) as f64,
        metric("tumbleweed_topic_readers")
    );
    let after = rss_kib(pid);
    let peak_mib = peak.load(Ordering::Relaxed) / 1024;
    println!(
        "sink RSS: before {} MiB, peak while reading {peak_mib} MiB (+{} MiB; limit {limit_mib} MiB), with {n_topics} streams at the head {} MiB (+{} MiB)",
        base_kib / 1024,
        (peak.load(Ordering::Relaxed) - base_kib) / 1024,
        after / 1024,
        after.saturating_sub(base_kib) / 1024,
    );
    println!(
        "peak RSS {peak_mib} MiB is {} the {limit_mib} MiB limit ({:.0} %); peak / budget = {:.1}",
        if peak_mib < limit_mib as u64 {
            "under"
        } else {
            "OVER"
        },
        100.0 * peak_mib as f64 / limit_mib as f64,
        peak_mib as f64 / budget_mib as f64,
    );
    table_row(
        &format!("memory: {n_topics} topics replayed at once, {budget_mib} MiB buffer budget"),
        "tumbleweed",
        peak_mib as f64,
        "MiB peak RSS",
        false,
        &format!(
            "limit {limit_mib} MiB; {:.0} events/s; {} MiB at rest",
            total as f64 / secs,
            after / 1024
        ),
    );
    drop(open);
    Ok(())
}
