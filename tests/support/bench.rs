//! Small helpers shared by the benchmarks: sizes from the environment and a process's memory
//! and CPU from `/proc` (Linux), so figures are measured the same way in every benchmark.

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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n");
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
    use tokio::io::AsyncReadExt;
    let finder = memchr::memmem::Finder::new(b"\ndata: ");
    let mut count = finder.find_iter(first).count();
    let mut buf = vec![0u8; 256 * 1024];
    let mut carry = 0usize;
    while count < n {
        let read = s.read(&mut buf[carry..]).await?;
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
