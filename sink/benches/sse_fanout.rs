//! SSE fan-out benchmark on the real local stack (`cargo bench -p tumbleweed-sink --bench
//! sse_fanout`). Prints figures; asserts nothing about speed.
//!
//! In the order they run:
//! 0. The idle sink (first): its CPU over 10 s with no stream open, what its background
//!    threads cost a deployment that waits for traffic.
//! 1. Idle streams (next, on the still fresh sink): I streams connected and idle. Figure:
//!    the sink's RSS before and after.
//! 2. Throughput: a topic holds N ≈300-byte Debezium-shaped events; C streams of one consumer
//!    read all of them at once from the sink's shared buffer. Figure: events/s delivered in
//!    aggregate, and the sink's CPU time.
//!    Then the same C streams split over 10 consumers with 10 distinct filters (a CEL
//!    predicate delivering 9 events in 10, and a projection). Figures: events/s delivered in
//!    aggregate, the sink's CPU, and the cost of one filter on one event.
//! 3. Latency at a steady 10,000 events/s: producer → SSE client, against producer → a plain
//!    rdkafka consumer with the same fetch settings on the same broker, so the
//!    per-event difference is what the sink adds. The figures cover the window after a
//!    warm-up at the same rate on the fresh topic (BENCH_WARMUP_SECONDS, 2): a topic's first
//!    events can reach the sink's reader late, a start-up cost printed on its own line.
//!    Figures: p50/p99 of both and of the per-event difference. Each receiver reads on its own OS thread (blocking reads) and
//!    stamps an arrival before anything else, so the two do not queue behind each other or the
//!    producer on the benchmark's runtime. The difference also holds what separates two
//!    independent Kafka consumers (each fetch returns when its own request is at the broker,
//!    so a broker pause can fall between the two), which a second plain consumer measures as
//!    the method's floor (its per-event difference to the first); the sink's histogram
//!    `tumbleweed_sse_delivery_delay_seconds` (its reader's receipt of an event → the chunk
//!    handed to the connection), scraped before and after the run, gives the sink's part
//!    alone: its p50/p99 over the run's chunks, and how many it held over 5 ms. The run also
//!    lists the episodes where a receiver trailed the first plain consumer by more than 5 ms,
//!    for the SSE client, a second SSE client of the same consumer (both at once: the sink's
//!    side; one alone: its connection) and the second plain consumer (the machine's).
//!    A relay runs beside them: a third plain consumer whose thread writes each record at once
//!    to a local TCP connection read on another thread. Relay minus plain is what one socket
//!    hop and one wake-up cost on this machine, the least any push server adds.
//!
//! Sizes come from the environment: BENCH_EVENTS (N, default 5000), BENCH_STREAMS (C, 1000),
//! BENCH_IDLE (I, 10000), BENCH_RATE (10000/s), BENCH_SECONDS (latency run, 5, after
//! BENCH_WARMUP_SECONDS of warm-up, 2) and
//! BENCH_FETCH_WAIT_MS (the sink's and the plain consumer's fetch.wait.max.ms, 100).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use memchr::memmem;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use tumbleweed_tests::bench::{
    count_events, cpu_secs, debezium_value as value, env_or, histogram_buckets, histogram_quantile,
    now_us, open_stream, raise_fd_limit, rss_kib, table_row,
};
use tumbleweed_tests::sink::{create_topic, SinkProcess};
use tumbleweed_tests::{stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

fn producer(bootstrap: &str, linger_ms: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms)
        .set("batch.num.messages", "1000")
        .create()?)
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// What a plain consumer of the latency run received: (offset, received µs, payload).
type Received = Vec<(i64, i64, Vec<u8>)>;

/// The plain Kafka consumer of the latency run, on its own thread: every record's arrival is
/// stamped as `poll` hands it over. Its `sent_us` is parsed by [`sent_and_received`] once every
/// receiver is done: parsing here, as soon as this consumer had all, took both cores for
/// milliseconds while the SSE clients still read the last events (an episode at every run's
/// end).
fn plain_receiver(consumer: BaseConsumer, total: usize) -> Result<Received> {
    let mut got: Vec<(i64, i64, Vec<u8>)> = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(120);
    while got.len() < total {
        if Instant::now() > deadline {
            bail!("the plain consumer read {} of {total} events", got.len());
        }
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let recv = now_us();
            let m = m?;
            got.push((m.offset(), recv, m.payload().unwrap_or(b"{}").to_vec()));
        }
    }
    Ok(got)
}

/// Offset → (sent, received) in microseconds, from what a plain consumer received.
fn sent_and_received(got: Received) -> Result<std::collections::HashMap<i64, (i64, i64)>> {
    got.into_iter()
        .map(|(offset, recv, payload)| {
            let v: serde_json::Value = serde_json::from_slice(&payload)?;
            Ok((
                offset,
                (v["after"]["sent_us"].as_i64().unwrap_or(recv), recv),
            ))
        })
        .collect()
}

/// Prints the episodes of the latency run where `who` trailed the plain consumer by more than
/// 5 ms (events sent within 100 ms of each other form one episode): when they began, counted
/// from the first event, how far it trailed at most, and how many events. Episodes at a
/// regular interval point at periodic work; the second plain consumer's show the machine's.
fn print_stalls(who: &str, trail: &mut [(i64, i64)]) {
    const OVER_US: i64 = 5_000;
    trail.sort_unstable();
    let Some(&(t0, _)) = trail.first() else {
        return;
    };
    // (began µs after the first event, last send, worst trail, events)
    let mut episodes: Vec<(i64, i64, i64, usize)> = Vec::new();
    for &(sent, d) in trail.iter().filter(|(_, d)| *d > OVER_US) {
        match episodes.last_mut() {
            Some(e) if sent - e.1 <= 100_000 => {
                e.1 = sent;
                e.2 = e.2.max(d);
                e.3 += 1;
            }
            _ => episodes.push((sent - t0, sent, d, 1)),
        }
    }
    let list: Vec<String> = episodes
        .iter()
        .map(|(at, _, worst, n)| {
            format!(
                "at {:.2} s up to {:.1} ms ({n} events)",
                *at as f64 / 1e6,
                *worst as f64 / 1e3
            )
        })
        .collect();
    println!(
        "latency: {} episodes where {who} trailed the plain consumer by more than {} ms{}{}",
        episodes.len(),
        OVER_US / 1000,
        if list.is_empty() { "" } else { ": " },
        list.join("; ")
    );
}

/// The SSE client of the latency run, on its own thread with blocking reads: every frame is
/// stamped with the time of the read that completed it. Returns offset → received (µs).
fn sse_receiver(
    mut sse: std::net::TcpStream,
    total: usize,
    who: &str,
) -> Result<std::collections::HashMap<i64, i64>> {
    use std::io::Read;
    sse.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut sse_recv = std::collections::HashMap::with_capacity(total);
    let mut buf = vec![0u8; 256 * 1024];
    let mut pending_text: Vec<u8> = Vec::new();
    let frame_end = memmem::Finder::new(b"\n\n");
    let offset_marker = memmem::Finder::new(b"\"offset\":");
    while sse_recv.len() < total {
        let n = sse
            .read(&mut buf)
            .with_context(|| format!("{who}: reading the latency stream"))?;
        if n == 0 {
            bail!(
                "{who}: the latency stream closed after {} of {total} events",
                sse_recv.len()
            );
        }
        let recv = now_us();
        pending_text.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(end) = frame_end.find(&pending_text[start..]) {
            let frame = &pending_text[start..start + end];
            if let Some(pos) = offset_marker.find(frame) {
                let digits: String = frame[pos + 9..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .map(|b| *b as char)
                    .collect();
                sse_recv.insert(digits.parse::<i64>()?, recv);
            }
            start += end + 2;
        }
        pending_text.drain(..start);
    }
    Ok(sse_recv)
}

/// The relay of the latency run: the least any push server adds to a plain consumer. Its own
/// plain consumer (same settings) polls on this thread and writes every record at once, as an
/// SSE-shaped frame, to a local TCP connection (`TCP_NODELAY`, as the sink's), which an
/// [`sse_receiver`] reads on another thread. Its difference to the plain consumer is one
/// socket write and one wake-up of a reading thread on this machine, which no SSE server can
/// avoid; the sink adds a hand-off between its reader and a runtime worker on top.
fn relay_sender(consumer: BaseConsumer, mut out: std::net::TcpStream, total: usize) -> Result<()> {
    use std::io::Write;
    out.set_nodelay(true)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut frame = Vec::with_capacity(1024);
    let mut sent = 0;
    while sent < total {
        if Instant::now() > deadline {
            bail!("the relay read {sent} of {total} events");
        }
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            frame.clear();
            write!(frame, "data: {{\"offset\":{},\"value\":", m.offset())?;
            frame.extend_from_slice(m.payload().unwrap_or(b"{}"));
            frame.extend_from_slice(b"}\n\n");
            out.write_all(&frame)
                .context("writing to the relay's connection")?;
            sent += 1;
        }
    }
    Ok(())
}

/// Waits, off the runtime's workers, for a receiver thread of the latency run.
async fn joined<T: Send + 'static>(
    handle: std::thread::JoinHandle<Result<T>>,
    what: &'static str,
) -> Result<T> {
    tokio::task::spawn_blocking(move || {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("{what} panicked"))?
    })
    .await?
}

/// Opens one stream per `(path, token)` at once and reads `each` events from every one;
/// returns the events delivered in all.
async fn fan_out(addr: &str, streams: Vec<(String, String)>, each: usize) -> Result<usize> {
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|(path, token)| {
            let addr = addr.to_string();
            tokio::spawn(async move {
                let (mut s, first) = open_stream(&addr, &path, &token).await?;
                count_events(&mut s, &first, each).await
            })
        })
        .collect();
    let mut delivered = 0usize;
    for t in tasks {
        delivered += t.await??;
    }
    Ok(delivered)
}

#[tokio::main]
async fn main() -> Result<()> {
    raise_fd_limit();
    let n_events = env_or("BENCH_EVENTS", 5000);
    let n_streams = env_or("BENCH_STREAMS", 1000);
    let n_idle = env_or("BENCH_IDLE", 10_000);
    let rate = env_or("BENCH_RATE", 10_000);
    let seconds = env_or("BENCH_SECONDS", 5);
    let warm_seconds = env_or("BENCH_WARMUP_SECONDS", 2);
    let stack = stack();
    let fetch_wait = std::env::var("BENCH_FETCH_WAIT_MS").unwrap_or_else(|_| "100".into());
    let sink = SinkProcess::start(
        SINK,
        stack,
        &[
            ("--buffer-events-per-partition", "50000"),
            // One consumer holds every stream here; lift the per-consumer and total limits.
            ("--max-streams-per-consumer", "1000000"),
            ("--max-streams", "1000000"),
            ("--max-connections", "1000000"),
            ("--fetch-wait-max-ms", &fetch_wait),
        ],
    )
    .await?;
    println!("sink fetch.wait.max.ms = {fetch_wait}");
    let addr = sink.base.trim_start_matches("http://").to_string();
    let pid = sink.pid().context("sink pid")?;
    println!("sink pid {pid}, RSS at start {} MiB", rss_kib(pid) / 1024);

    // --- 0. the idle sink's own CPU (no stream, no event): its background threads -----------
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, t0) = (cpu_secs(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_cpu = (cpu_secs(pid) - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    println!("idle sink: {idle_cpu:.1}% of one core over 10 s with no stream open");
    table_row(
        "idle sink: CPU with no stream open, 10 s",
        "tumbleweed",
        idle_cpu,
        "% of a core",
        false,
        "its background threads: Kafka clients, logs, timers",
    );

    // --- 1. idle streams (next, on the still fresh sink) -----------------------------------------------------------------
    let idle_topic = format!("bench_idle_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &idle_topic, 1).await?;
    let idle_token = sink
        .create_consumer(json!({"name": "idle", "topics": [idle_topic], "start": "latest"}))
        .await?;
    let before = rss_kib(pid);
    let mut idle = Vec::with_capacity(n_idle);
    for _ in 0..n_idle {
        idle.push(
            open_stream(&addr, "/v1/consumers/idle/events", &idle_token)
                .await?
                .0,
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let metrics = sink
        .admin(reqwest::Method::GET, "/metrics")
        .send()
        .await?
        .text()
        .await?;
    let connected = metrics
        .lines()
        .find(|l| l.starts_with("tumbleweed_sse_connected_streams "))
        .unwrap_or("?")
        .to_string();
    println!(
        "idle: {n_idle} idle streams: sink RSS {} MiB (was {} MiB before them; {:.1} KiB per stream); {connected}",
        after / 1024,
        before / 1024,
        (after.saturating_sub(before)) as f64 / n_idle as f64
    );
    table_row(
        &format!("{n_idle} idle streams: memory per stream"),
        "tumbleweed",
        (after.saturating_sub(before)) as f64 / n_idle as f64,
        "KiB",
        false,
        &format!("sink RSS {} MiB (from {} MiB)", after / 1024, before / 1024),
    );
    drop(idle);

    // --- 2. throughput -------------------------------------------------------------------
    let topic = format!("bench_fanout_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    let p = producer(&stack.kafka_bootstrap, "10")?;
    let mut pending = Vec::new();
    for i in 0..n_events as i64 {
        let v = value(i, 0);
        let k = format!("{{\"id\":{i}}}");
        pending.push(
            p.send_result(FutureRecord::to(&topic).key(&k).payload(&v))
                .map_err(|(e, _)| e)?,
        );
    }
    for f in pending {
        f.await?.map_err(|(e, _)| e)?;
    }
    let token = sink
        .create_consumer(json!({"name": "fanout", "topics": [topic], "start": "earliest"}))
        .await?;
    // Warm the shared reader with one full read.
    let mut warm = sink.events("fanout", &token, None).await?;
    let sample = warm.take(n_events, Duration::from_secs(60)).await?;
    drop(warm);
    let frame_bytes = sample[0].data.to_string().len() + sample[0].id.len() + 12;
    println!(
        "throughput: {n_events} events of ~{frame_bytes} bytes per frame, {n_streams} streams"
    );
    let path = "/v1/consumers/fanout/events";
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    let streams = vec![(path.to_string(), token.clone()); n_streams];
    let delivered = fan_out(&addr, streams, n_events).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    println!(
        "throughput: {delivered} events delivered in {elapsed:.2} s = {:.0} events/s aggregate ({:.0} MB/s); sink CPU {cpu:.1} s ({:.0}% of one core)",
        delivered as f64 / elapsed,
        delivered as f64 * frame_bytes as f64 / elapsed / 1e6,
        cpu / elapsed * 100.0
    );
    table_row(
        &format!("burst fan-out: {n_events} events to {n_streams} streams (aggregate)"),
        "tumbleweed",
        delivered as f64 / elapsed,
        "ev/s",
        true,
        &format!("{elapsed:.2} s, sink CPU {:.0}%", cpu / elapsed * 100.0),
    );

    // --- 2b. the same fan-out through 10 distinct filters --------------------------------------
    // Ten consumers, each with its own predicate (delivering 9 events in 10) and a projection,
    // share the streams equally: every event is evaluated and re-serialised once per filter,
    // whatever the number of streams.
    let n_filters = 10usize;
    let mut tokens = Vec::with_capacity(n_filters);
    for k in 0..n_filters {
        let filters = json!({"*": {"where": format!("after.id % {n_filters} != {k}"),
            "exclude_columns": ["note"]}});
        tokens.push(
            sink.create_consumer(json!({"name": format!("filtered{k}"), "topics": [topic],
                "start": "earliest", "filters": filters}))
                .await?,
        );
    }
    let expected = n_events - n_events.div_ceil(n_filters);
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    let streams = (0..n_streams)
        .map(|i| {
            let k = i % n_filters;
            (
                format!("/v1/consumers/filtered{k}/events"),
                tokens[k].clone(),
            )
        })
        .collect();
    let delivered = fan_out(&addr, streams, expected).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    println!(
        "filtered: {n_streams} streams over {n_filters} distinct filters (predicate + projection, {expected} of {n_events} events each): {delivered} delivered in {elapsed:.2} s = {:.0} events/s aggregate; sink CPU {cpu:.1} s ({:.0}% of one core)",
        delivered as f64 / elapsed,
        cpu / elapsed * 100.0
    );
    table_row(
        &format!("filtered fan-out: {n_streams} streams, {n_filters} distinct filters (aggregate)"),
        "tumbleweed",
        delivered as f64 / elapsed,
        "ev/s",
        true,
        &format!("{elapsed:.2} s, sink CPU {:.0}%", cpu / elapsed * 100.0),
    );
    // The cost of one filter on one event, measured here on the same rules: parse the event,
    // run the predicate (twice when it fails and the event has a `before`), project and
    // serialise. Each event is fresh, so nothing comes from the memo.
    let mut per_filter = Vec::new();
    for (label, rule) in [
        ("predicate", json!({"where": "after.id % 10 != 3"})),
        (
            "predicate + projection",
            json!({"where": "after.id % 10 != 3", "exclude_columns": ["note"]}),
        ),
        (
            "projection",
            json!({"columns": ["id", "status", "amount_cents"]}),
        ),
    ] {
        let rule: tumbleweed_sink::filter::FilterRule = serde_json::from_value(rule)?;
        let compiled = tumbleweed_sink::filter::compile("*", &rule, None)?;
        let events: Vec<_> = (0..20_000i64)
            .filter_map(|i| {
                let v = value(i, 0);
                let k = format!("{{\"id\":{i}}}");
                tumbleweed_sink::event::from_record(
                    &topic,
                    0,
                    i,
                    0,
                    Some(k.as_bytes()),
                    Some(v.as_bytes()),
                )
            })
            .collect();
        let t = Instant::now();
        let kept = events
            .iter()
            .filter(|e| compiled.apply(e).is_some())
            .count();
        let us = t.elapsed().as_secs_f64() * 1e6 / events.len() as f64;
        per_filter.push(format!(
            "{label} {us:.2} µs ({kept} of {} kept)",
            events.len()
        ));
    }
    println!(
        "filtered: cost per filter per event (once, shared by every stream with that filter): {}",
        per_filter.join("; ")
    );

    // --- 3. latency at a steady rate -----------------------------------------------------
    let lat_topic = format!("bench_latency_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &lat_topic, 1).await?;
    let lat_token = sink
        .create_consumer(json!({"name": "latency", "topics": [lat_topic], "start": "latest"}))
        .await?;
    let (sse, _) = open_stream(&addr, "/v1/consumers/latency/events", &lat_token).await?;
    // A second SSE client of the same consumer: when both trail the plain consumer at the same
    // moment the sink held the events; when one does alone, its connection or thread did.
    let (sse2, _) = open_stream(&addr, "/v1/consumers/latency/events", &lat_token).await?;
    // Two plain consumers with the same settings: the first is the reference, the second
    // measures what separates any two independent consumers of the same records (the method's
    // own floor).
    let plain = |group: &str| -> Result<BaseConsumer> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_bootstrap)
            .set("group.id", group)
            .set("fetch.wait.max.ms", &fetch_wait)
            .create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&lat_topic, 0, Offset::End)?;
        c.assign(&tpl)?;
        Ok(c)
    };
    let (baseline, second) = (plain("bench-baseline")?, plain("bench-baseline-2")?);
    // The relay (see `relay_sender`): a third plain consumer writing to a local connection.
    let relay_consumer = plain("bench-relay")?;
    let relay_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let relay_out = std::net::TcpStream::connect(relay_listener.local_addr()?)?;
    let (relay_in, _) = relay_listener.accept()?;
    // Both receivers run on their own OS thread with blocking reads and stamp an arrival
    // before doing anything else with it, so neither waits for a runtime worker busy with the
    // other or with the producer's timer: what is compared is the two paths, not the
    // benchmark's scheduling.
    // The producer runs `warm_seconds` at the same rate before the measured window: a fresh
    // topic's first events reach the sink's reader late (its first fetches of the partition),
    // which is a topic's start, not the steady rate the target is about. The warm-up's figures
    // are printed on their own line, not dropped.
    let total = rate * (warm_seconds + seconds);
    let base = std::thread::spawn(move || plain_receiver(baseline, total));
    let base2 = std::thread::spawn(move || plain_receiver(second, total));
    let sse = sse.into_std()?;
    sse.set_nonblocking(false)?;
    let sse_reader = std::thread::spawn(move || sse_receiver(sse, total, "the SSE client"));
    let sse2 = sse2.into_std()?;
    sse2.set_nonblocking(false)?;
    let sse_reader2 =
        std::thread::spawn(move || sse_receiver(sse2, total, "the second SSE client"));
    let relay_writer = std::thread::spawn(move || relay_sender(relay_consumer, relay_out, total));
    let relay_reader =
        std::thread::spawn(move || sse_receiver(relay_in, total, "the relay's reader"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let scrape = || async {
        sink.admin(reqwest::Method::GET, "/metrics")
            .send()
            .await?
            .text()
            .await
    };
    let prod = producer(&stack.kafka_bootstrap, "5")?;
    let lat_topic2 = lat_topic.clone();
    let start = Instant::now();
    // Events sent from here on are the measured window's.
    let measured_from_us = now_us() + (warm_seconds * 1_000_000) as i64;
    let producing = tokio::spawn(async move {
        let mut pending = Vec::new();
        for i in 0..total as i64 {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let v = value(i, now_us());
            let k = format!("{{\"id\":{i}}}");
            pending.push(
                prod.send_result(FutureRecord::to(&lat_topic2).key(&k).payload(&v))
                    .map_err(|(e, _)| e)?,
            );
        }
        for f in pending {
            f.await?.map_err(|(e, _)| e)?;
        }
        Ok::<_, anyhow::Error>(())
    });
    // The sink's histogram over the measured window only.
    tokio::time::sleep_until((start + Duration::from_secs(warm_seconds as u64)).into()).await;
    let scrape_before = scrape().await?;
    let sse_recv = joined(sse_reader, "the SSE receiver").await?;
    let sse_recv2 = joined(sse_reader2, "the second SSE receiver").await?;
    // Both halves are joined before either error is returned: a failed writer closes the
    // connection, and the reader's "closed" would otherwise hide the writer's cause.
    let relay_sent = joined(relay_writer, "the relay").await;
    let relay_recv = joined(relay_reader, "the relay's reader").await;
    relay_sent?;
    let relay_recv = relay_recv?;
    producing.await??;
    let scrape_after = scrape().await?;
    let base_map = sent_and_received(joined(base, "the plain consumer").await?)?;
    let base2_map = sent_and_received(joined(base2, "the second plain consumer").await?)?;
    let mut sse_lat = Vec::with_capacity(total);
    let mut base_lat = Vec::with_capacity(total);
    let mut added = Vec::with_capacity(total);
    let mut floor = Vec::with_capacity(total);
    // (send time, SSE minus plain) per event, to find the episodes where the SSE trailed.
    let mut trail = Vec::with_capacity(total);
    let mut trail_floor = Vec::with_capacity(total);
    let mut trail_sse2 = Vec::with_capacity(total);
    let mut relay_added = Vec::with_capacity(total);
    let mut trail_relay = Vec::with_capacity(total);
    let mut warm_added = Vec::new();
    let mut trail_warm = Vec::new();
    for (offset, (sent, base_recv)) in &base_map {
        if let (Some(sse_at), Some((_, other))) = (sse_recv.get(offset), base2_map.get(offset)) {
            if *sent < measured_from_us {
                warm_added.push(sse_at - base_recv);
                trail_warm.push((*sent, sse_at - base_recv));
                continue;
            }
            sse_lat.push(sse_at - sent);
            base_lat.push(base_recv - sent);
            added.push(sse_at - base_recv);
            floor.push(other - base_recv);
            trail.push((*sent, sse_at - base_recv));
            trail_floor.push((*sent, other - base_recv));
            if let Some(sse2_at) = sse_recv2.get(offset) {
                trail_sse2.push((*sent, sse2_at - base_recv));
            }
            if let Some(relay_at) = relay_recv.get(offset) {
                relay_added.push(relay_at - base_recv);
                trail_relay.push((*sent, relay_at - base_recv));
            }
        }
    }
    warm_added.sort_unstable();
    println!(
        "latency, warm-up ({warm_seconds} s at {rate} events/s on the fresh topic, not counted below): SSE minus plain consumer p50 {:.2} ms p99 {:.2} ms max {:.2} ms; the measured window began at Unix time {:.3} s (to match episodes with the broker's GC log)",
        percentile(&warm_added, 0.50),
        percentile(&warm_added, 0.99),
        percentile(&warm_added, 1.0),
        measured_from_us as f64 / 1e6,
    );
    print_stalls("the SSE client during the warm-up", &mut trail_warm);
    print_stalls("the SSE client", &mut trail);
    print_stalls("the second SSE client", &mut trail_sse2);
    print_stalls("the second plain consumer", &mut trail_floor);
    print_stalls("the relay", &mut trail_relay);
    sse_lat.sort_unstable();
    base_lat.sort_unstable();
    added.sort_unstable();
    floor.sort_unstable();
    relay_added.sort_unstable();
    println!(
        "latency at {rate} events/s for {seconds} s after the warm-up ({} events): producer→SSE p50 {:.2} ms p99 {:.2} ms; producer→plain consumer p50 {:.2} ms p99 {:.2} ms; added by the sink (same event, SSE minus plain consumer) p50 {:.2} ms p99 {:.2} ms; the two distributions' p99s apart {:.2} ms; the method's floor (a second plain consumer minus the first, same events) p50 {:.2} ms p99 {:.2} ms",
        sse_lat.len(),
        percentile(&sse_lat, 0.50),
        percentile(&sse_lat, 0.99),
        percentile(&base_lat, 0.50),
        percentile(&base_lat, 0.99),
        percentile(&added, 0.50),
        percentile(&added, 0.99),
        percentile(&sse_lat, 0.99) - percentile(&base_lat, 0.99),
        percentile(&floor, 0.50),
        percentile(&floor, 0.99),
    );
    println!(
        "latency, the relay over the same window (a plain consumer writing each record at once to a local TCP connection, read on another thread: the least any push server adds): relay minus plain consumer p50 {:.2} ms p99 {:.2} ms ({} events)",
        percentile(&relay_added, 0.50),
        percentile(&relay_added, 0.99),
        relay_added.len(),
    );
    table_row(
        &format!("added latency at {rate} ev/s: SSE minus a plain Kafka consumer"),
        "tumbleweed",
        percentile(&added, 0.99),
        "ms p99",
        false,
        &format!(
            "p50 {:.2} ms; producer→SSE p99 {:.1} ms, producer→plain consumer p99 {:.1} ms; the method's floor (a second plain consumer minus the first) p99 {:.2} ms; a minimal relay (plain consumer → local TCP) minus the plain consumer p99 {:.2} ms",
            percentile(&added, 0.50),
            percentile(&sse_lat, 0.99),
            percentile(&base_lat, 0.99),
            percentile(&floor, 0.99),
            percentile(&relay_added, 0.99)
        ),
    );
    const DELAY: &str = "tumbleweed_sse_delivery_delay_seconds";
    let (own50, chunks) = histogram_quantile(&scrape_before, &scrape_after, DELAY, 0.50);
    let (own99, _) = histogram_quantile(&scrape_before, &scrape_after, DELAY, 0.99);
    // Chunks the sink itself held more than 5 ms: the trailing episodes above that it saw.
    let at_most_5ms = |scrape: &str| {
        histogram_buckets(scrape, DELAY)
            .iter()
            .find(|(le, _)| *le == 0.005)
            .map_or(0.0, |b| b.1)
    };
    let over_5ms = chunks - (at_most_5ms(&scrape_after) - at_most_5ms(&scrape_before));
    println!(
        "the sink's own delivery delay over the same run (its reader's receipt → chunk handed to the connection, {chunks} chunks, from its histogram): p50 {:.3} ms p99 {:.3} ms; {over_5ms} chunks over 5 ms",
        own50 * 1e3,
        own99 * 1e3
    );
    table_row(
        &format!("added latency at {rate} ev/s: the sink's own delivery delay"),
        "tumbleweed",
        own99 * 1e3,
        "ms p99",
        false,
        &format!(
            "p50 {:.3} ms; Kafka receipt → chunk handed to the connection, {chunks} chunks (tumbleweed_sse_delivery_delay_seconds)",
            own50 * 1e3
        ),
    );
    println!("sink RSS at the end {} MiB", rss_kib(pid) / 1024);
    Ok(())
}
