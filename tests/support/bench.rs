//! Small helpers shared by the benchmarks: sizes from the environment and a process's memory
//! and CPU from `/proc` (Linux), so figures are measured the same way in every benchmark.

/// Whether a warm-up round's p99 has stopped falling: it is at least three quarters of the
/// round before's. The benchmarks that warm up (`sustained`, `end_to_end`) run rounds at the
/// measured rate until this holds, because the JVMs under them (the broker, Connect) run far
/// slower for the first minutes of a load (their JIT).
pub fn stopped_falling(p99: f64, previous: f64) -> bool {
    p99 >= 0.75 * previous
}

/// The value of environment variable `name`, or `default` when unset or not a number.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of process `pid`, in KiB (0 if it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of process `pid` so far.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// CPU seconds the whole machine has spent busy (all cores, from `/proc/stat`), and the
/// number of cores: the difference over a run, divided by its length and the cores, is how
/// busy the machine was (the broker and the clients share it with the sink).
pub fn machine_busy_secs() -> (f64, usize) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cores = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    let busy = stat
        .lines()
        .next()
        .map(|l| {
            let f: Vec<f64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
            f.iter().sum::<f64>() - f.get(3).unwrap_or(&0.0) - f.get(4).unwrap_or(&0.0)
        })
        .unwrap_or(0.0);
    (busy / 100.0, cores.max(1))
}

/// Opens a raw HTTP/1.1 SSE request to `addr` (host:port) and returns the socket after the
/// response headers, with the bytes of the body already read. A raw socket rather than an
/// SSE client, so the benchmark's client costs as little CPU as possible.
pub async fn open_stream(
    addr: &str,
    path: &str,
    token: &str,
) -> anyhow::Result<(tokio::net::TcpStream, Vec<u8>)> {
    open_raw(addr, path, Some(&format!("Authorization: Bearer {token}"))).await
}

/// [`open_stream`] with one optional extra header line (`Name: value`).
pub async fn open_raw(
    addr: &str,
    path: &str,
    header: Option<&str>,
) -> anyhow::Result<(tokio::net::TcpStream, Vec<u8>)> {
    let within = std::time::Duration::from_secs(60);
    match tokio::time::timeout(within, open_raw_now(addr, path, header)).await {
        Ok(r) => r,
        Err(_) => anyhow::bail!("{addr}{path} sent no response headers within 60 s"),
    }
}

async fn open_raw_now(
    addr: &str,
    path: &str,
    header: Option<&str>,
) -> anyhow::Result<(tokio::net::TcpStream, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let extra = header.map(|h| format!("{h}\r\n")).unwrap_or_default();
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Accept: text/event-stream\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(4096);
    let mut tmp = [0u8; 4096];
    loop {
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            anyhow::bail!("connection closed before the response headers");
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 200") {
                anyhow::bail!("stream answered: {}", String::from_utf8_lossy(&buf[..end]));
            }
            return Ok((s, buf[end + 4..].to_vec()));
        }
    }
}

/// Reads an SSE body until `n` events (`data:` lines) have arrived; returns how many came
/// (`n`, or an error if the stream closed first). Counts without parsing.
pub async fn count_events(
    s: &mut tokio::net::TcpStream,
    first: &[u8],
    n: usize,
) -> anyhow::Result<usize> {
    count_events_by(s, first, n, None).await
}

/// The counting loop of [`count_events`] and [`count_events_until`]. Without a deadline no
/// timer is armed per read (a timer per read would slow the replay it measures).
async fn count_events_by(
    s: &mut tokio::net::TcpStream,
    first: &[u8],
    n: usize,
    deadline: Option<std::time::Instant>,
) -> anyhow::Result<usize> {
    use tokio::io::AsyncReadExt;
    let finder = memchr::memmem::Finder::new(b"\ndata: ");
    let mut count = finder.find_iter(first).count();
    let mut buf = vec![0u8; 256 * 1024];
    let mut carry = 0usize;
    while count < n {
        let read = match deadline {
            None => s.read(&mut buf[carry..]).await?,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                match tokio::time::timeout(left, s.read(&mut buf[carry..])).await {
                    Err(_) => return Ok(count),
                    Ok(r) => r?,
                }
            }
        };
        if read == 0 {
            anyhow::bail!("stream closed after {count} events");
        }
        let filled = carry + read;
        count += finder.find_iter(&buf[..filled]).count();
        // Keep the last 6 bytes in case the marker spans two reads.
        let keep = filled.min(6);
        buf.copy_within(filled - keep..filled, 0);
        carry = keep;
    }
    Ok(count)
}

/// Raises this process's open-file limit to its hard limit (benchmarks open many sockets).
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(1 << 20);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// Extra sink flags from `BENCH_SINK_ARGS` ("--flag value --flag value"), to try a setting
/// without editing the benchmark.
pub fn sink_args_from_env() -> Vec<(String, String)> {
    let raw = std::env::var("BENCH_SINK_ARGS").unwrap_or_default();
    let words: Vec<&str> = raw.split_whitespace().collect();
    words
        .chunks(2)
        .map(|c| {
            (
                c[0].to_string(),
                c.get(1).copied().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// One line of the benchmark table (`scripts/bench` gathers them from every benchmark and
/// prints one table with the ratio). `scenario` names the row; `target` is `tumbleweed` or
/// `kafkasse`; `value` is the figure the ratio compares, in `unit`; `higher_is_better` says
/// which way the ratio reads; `detail` is the rest of the cell.
pub fn table_row(
    scenario: &str,
    target: &str,
    value: f64,
    unit: &str,
    higher_is_better: bool,
    detail: &str,
) {
    let better = if higher_is_better { "higher" } else { "lower" };
    println!("TABLE\t{scenario}\t{target}\t{value}\t{unit}\t{better}\t{detail}");
}

/// The benchmark's peer: Wikimedia's KafkaSSE (npm `kafka-sse` 0.4.2) served by
/// `sink/benches/kafkasse/server.js` on the same broker, one node-rdkafka consumer per stream,
/// as that library works. `scripts/bench` installs it (`npm ci` in that directory).
pub struct KafkaSse {
    child: std::process::Child,
    pub addr: String,
}

impl KafkaSse {
    /// Starts the peer on a free port with the same `fetch.wait.max.ms` as the sink.
    pub async fn start(bootstrap: &str, fetch_wait_ms: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        let dir = crate::repo_root().join("sink/benches/kafkasse");
        anyhow::ensure!(
            dir.join("node_modules/kafka-sse").is_dir(),
            "the KafkaSSE peer is not installed: run `npm ci` in {} (scripts/bench does)",
            dir.display()
        );
        let port = crate::sink::free_port();
        let child = std::process::Command::new("node")
            .arg(dir.join("server.js"))
            .env("KAFKASSE_PORT", port.to_string())
            .env("KAFKA_BOOTSTRAP", bootstrap)
            .env("KAFKASSE_FETCH_WAIT_MS", fetch_wait_ms)
            // node-rdkafka runs every consumer's blocking consume and connect on libuv's thread
            // pool, 4 threads by default: with more streams than that, new streams wait
            // forever for a free thread. 128 lets 100 streams run, as a team would configure it.
            .env("UV_THREADPOOL_SIZE", "128")
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting node for the KafkaSSE peer")?;
        let addr = format!("127.0.0.1:{port}");
        let peer = Self { child, addr };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while tokio::net::TcpStream::connect(&peer.addr).await.is_err() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the KafkaSSE peer did not listen on {} within 20 s",
                peer.addr
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(peer)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens a stream of `topic` from its end (`from = None`) or from `offset` of partition
    /// 0, in KafkaSSE's own `Last-Event-ID` form.
    pub async fn open(
        &self,
        topic: &str,
        from: Option<i64>,
    ) -> anyhow::Result<(tokio::net::TcpStream, Vec<u8>)> {
        let header = from.map(|o| {
            format!(r#"Last-Event-ID: [{{"topic":"{topic}","partition":0,"offset":{o}}}]"#)
        });
        open_raw(&self.addr, &format!("/{topic}"), header.as_deref()).await
    }
}

impl Drop for KafkaSse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Like [`count_events`], but stops at `deadline` as well: returns the events counted by then
/// (for a peer too slow to finish in reasonable time: its rate is the count over the time).
pub async fn count_events_until(
    s: &mut tokio::net::TcpStream,
    first: &[u8],
    n: usize,
    deadline: std::time::Instant,
) -> anyhow::Result<usize> {
    count_events_by(s, first, n, Some(deadline)).await
}

/// A Debezium-shaped value of about 300 bytes once the sink has framed it, carrying its send
/// time (`sent_us`, see [`now_us`]) for latency figures.
pub fn debezium_value(i: i64, sent_us: i64) -> String {
    serde_json::json!({
        "before": null,
        "after": {"id": i, "sent_us": sent_us, "customer": "c-0000042", "status": "paid", "amount_cents": 129_900, "note": "benchmark row"},
        "source": {"lsn": 100_000 + i, "txId": 5000 + i, "ts_ms": 1_700_000_000_000i64, "schema": "public", "table": "orders", "db": "bench"},
        "op": "c",
        "ts_ms": 1_700_000_000_000i64,
    })
    .to_string()
}

/// Microseconds since the Unix epoch (the benchmarks put it in each event as `sent_us`).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Reads an SSE body until `n` events have arrived or `deadline` passes, and measures
/// latency: for every read, now minus the `sent_us` of the first complete event in it (the
/// oldest event of that read, so the figure is the read's worst). With a live stream most
/// reads hold one event. Returns (events, latencies in µs).
pub async fn count_with_latency(
    s: &mut tokio::net::TcpStream,
    first: &[u8],
    n: usize,
    deadline: std::time::Instant,
) -> anyhow::Result<(usize, Vec<i64>)> {
    use tokio::io::AsyncReadExt;
    let data = memchr::memmem::Finder::new(b"\ndata: ");
    let sent = memchr::memmem::Finder::new(b"\"sent_us\":");
    let mut count = data.find_iter(first).count();
    let mut lat = Vec::with_capacity(n.min(1 << 20));
    let mut buf = vec![0u8; 256 * 1024];
    let mut carry = 0usize;
    while count < n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let read = match tokio::time::timeout(left, s.read(&mut buf[carry..])).await {
            Err(_) => break,
            Ok(r) => r?,
        };
        if read == 0 {
            anyhow::bail!("stream closed after {count} events");
        }
        let at = now_us();
        let filled = carry + read;
        count += data.find_iter(&buf[..filled]).count();
        if let Some(pos) = sent.find(&buf[carry..filled]) {
            let digits = &buf[carry + pos + 10..filled];
            let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
            // A number cut by the end of the read is skipped, not misread.
            if len > 0 && len < digits.len() {
                if let Some(v) = std::str::from_utf8(&digits[..len])
                    .ok()
                    .and_then(|d| d.parse::<i64>().ok())
                {
                    lat.push(at - v);
                }
            }
        }
        let keep = filled.min(6);
        buf.copy_within(filled - keep..filled, 0);
        carry = keep;
    }
    Ok((count, lat))
}

/// The `p` quantile (0–1) of sorted microseconds, in milliseconds.
pub fn quantile_ms(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The buckets of histogram `name` in a Prometheus text scrape: (upper bound, cumulative
/// count) in the scrape's order (ascending, `+Inf` last).
pub fn histogram_buckets(scrape: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The `q` quantile (0–1) of what histogram `name` observed between two scrapes, interpolated
/// within its bucket as Prometheus's `histogram_quantile` does (in the histogram's unit), and
/// how many observations there were. NaN when there were none.
pub fn histogram_quantile(before: &str, after: &str, name: &str, q: f64) -> (f64, f64) {
    let old = histogram_buckets(before, name);
    let new = histogram_buckets(after, name);
    let delta: Vec<(f64, f64)> = new
        .iter()
        .map(|&(le, n)| {
            let was = old.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - was)
        })
        .collect();
    let total = delta.last().map_or(0.0, |b| b.1);
    if total <= 0.0 {
        return (f64::NAN, 0.0);
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, n) in &delta {
        if n >= rank {
            if le.is_infinite() {
                return (lower, total);
            }
            let within = if n > below {
                (rank - below) / (n - below)
            } else {
                1.0
            };
            return (lower + (le - lower) * within, total);
        }
        (lower, below) = (le, n);
    }
    (lower, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str =
        "h_bucket{le=\"0.001\"} 10\nh_bucket{le=\"0.01\"} 10\nh_bucket{le=\"+Inf\"} 10\n";
    const AFTER: &str = "h_bucket{le=\"0.001\"} 100\nh_bucket{le=\"0.01\"} 109\nh_bucket{le=\"+Inf\"} 110\nh_count 110\n";

    #[test]
    fn quantiles_of_the_observations_between_two_scrapes() {
        // 90 observations ≤ 1 ms, 9 in (1, 10] ms, 1 above.
        let (p50, n) = histogram_quantile(BEFORE, AFTER, "h", 0.5);
        assert_eq!(n, 100.0);
        assert!((p50 - 0.001 * 50.0 / 90.0).abs() < 1e-12, "{p50}");
        let (p95, _) = histogram_quantile(BEFORE, AFTER, "h", 0.95);
        assert!((p95 - (0.001 + 0.009 * 5.0 / 9.0)).abs() < 1e-12, "{p95}");
        // In the +Inf bucket: its lower bound, as Prometheus answers.
        assert_eq!(histogram_quantile(BEFORE, AFTER, "h", 0.999).0, 0.01);
        assert!(histogram_quantile(AFTER, AFTER, "h", 0.5).0.is_nan());
    }
}
