//! A Tumbleweed consumer in Rust with reqwest and eventsource-stream.
//!
//! Exactly once, by storing the position with the result: processing an event appends one JSON
//! line (with the event's SSE id) to OUTPUT in one write; on start the last complete line says
//! where to resume (`Last-Event-ID`). Acks tell the sink the position too, for a restart that
//! has lost OUTPUT. See ../README.md for the contract shared by all the examples.
//!
//! ```sh
//! TUMBLEWEED_URL=http://127.0.0.1:8080 TUMBLEWEED_CONSUMER=billing TUMBLEWEED_TOKEN=twc_… \
//! OUTPUT=events.jsonl cargo run -p tumbleweed-client-example
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;

macro_rules! say {
    ($($arg:tt)*) => { eprintln!("consumer: {}", format!($($arg)*)) };
}

struct Config {
    base: String,
    consumer: String,
    token: String,
    output: String,
    ack_every: usize,
    ack_interval: Duration,
}

fn env(name: &str, default: Option<&str>) -> Result<String, Error> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => default
            .map(str::to_string)
            .ok_or_else(|| format!("{name} is not set").into()),
    }
}

impl Config {
    fn from_env() -> Result<Self, Error> {
        Ok(Self {
            base: env("TUMBLEWEED_URL", None)?
                .trim_end_matches('/')
                .to_string(),
            consumer: env("TUMBLEWEED_CONSUMER", None)?,
            token: env("TUMBLEWEED_TOKEN", None)?,
            output: env("OUTPUT", Some("events.jsonl"))?,
            ack_every: env("ACK_EVERY", Some("100"))?.parse()?,
            ack_interval: Duration::from_secs_f64(env("ACK_INTERVAL_SECS", Some("5"))?.parse()?),
        })
    }
}

/// Opens OUTPUT for appending, cuts off a torn last line (a write that a crash interrupted) and
/// returns the file with the id of the last complete line (`None` when there is none).
fn open_output(path: &str) -> Result<(File, Option<String>), Error> {
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let size = f.metadata()?.len();
    let (mut pos, mut tail) = (size, Vec::new());
    let newlines = |tail: &[u8]| {
        let last = tail.iter().rposition(|&b| b == b'\n');
        let prev = last.and_then(|l| tail[..l].iter().rposition(|&b| b == b'\n'));
        (last, prev)
    };
    // Read backwards until the last newline and the one before it (or the file's start).
    while pos > 0 {
        if let (Some(_), Some(_)) = newlines(&tail) {
            break;
        }
        let n = pos.min(65536);
        pos -= n;
        let mut block = vec![0; n as usize];
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
    }
    let (last, prev) = newlines(&tail);
    // Everything after the last newline is torn.
    let end = last.map_or(0, |l| pos + l as u64 + 1);
    if end < size {
        say!("cutting a torn last line ({} bytes) off {path}", size - end);
        f.set_len(end)?;
    }
    let last_id = match last {
        None => None,
        Some(l) => {
            let line: Value = serde_json::from_slice(&tail[prev.map_or(0, |p| p + 1)..l])?;
            line["id"].as_str().map(str::to_string)
        }
    };
    Ok((f, last_id))
}

struct State {
    out: File,
    /// The id of the last event written to OUTPUT.
    last_id: Option<String>,
    acked_id: Option<String>,
    since_ack: usize,
}

struct Consumer {
    config: Config,
    http: reqwest::Client,
    /// The stream writes, the ack timer reads.
    state: Mutex<State>,
}

impl Consumer {
    /// "Processes" one change: one line, one write (O_APPEND; survives a kill -9).
    async fn process(&self, id: &str, change: Value) -> Result<(), Error> {
        let row = if change["op"] == "d" {
            &change["before"]
        } else {
            &change["after"]
        };
        let mut line = json!({
            "id": id, "topic": change["topic"], "table": change["table"],
            "op": change["op"], "key": change["key"], "row": row,
        })
        .to_string();
        line.push('\n');
        let due = {
            let mut st = self.state.lock().unwrap();
            st.out.write_all(line.as_bytes())?;
            st.last_id = Some(id.to_string());
            st.since_ack += 1;
            st.since_ack >= self.config.ack_every
        };
        if due {
            self.ack().await;
        }
        Ok(())
    }

    /// Tells the sink the position of what OUTPUT holds (after an fsync: never ahead of it).
    async fn ack(&self) {
        let cursor = {
            let mut st = self.state.lock().unwrap();
            let Some(cursor) = st
                .last_id
                .clone()
                .filter(|c| Some(c) != st.acked_id.as_ref())
            else {
                return;
            };
            st.since_ack = 0;
            if let Err(e) = st.out.sync_data() {
                say!("fsync failed: {e}");
                return;
            }
            cursor
        };
        let url = format!(
            "{}/v1/consumers/{}/ack",
            self.config.base, self.config.consumer
        );
        let res = self
            .http
            .post(url)
            .bearer_auth(&self.config.token)
            .json(&json!({ "cursor": cursor }))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {
                self.state.lock().unwrap().acked_id = Some(cursor);
            }
            Ok(r) => say!(
                "ack failed (will retry): {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(e) => say!("ack failed (will retry): {e}"),
        }
    }

    /// Reads the stream, reconnecting with the position in OUTPUT after any break.
    async fn run(&self) {
        let url = format!(
            "{}/v1/consumers/{}/events",
            self.config.base, self.config.consumer
        );
        let mut backoff = Duration::from_secs(1);
        loop {
            let last_id = self.state.lock().unwrap().last_id.clone();
            let mut req = self
                .http
                .get(&url)
                .bearer_auth(&self.config.token)
                .header("Accept", "text/event-stream");
            if let Some(id) = &last_id {
                req = req.header("Last-Event-ID", id);
            }
            match req.send().await {
                Ok(resp)
                    if resp.status() == reqwest::StatusCode::OK
                        && resp
                            .headers()
                            .get("content-type")
                            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream")) =>
                {
                    say!("connected");
                    backoff = Duration::from_secs(1);
                    let mut events = resp.bytes_stream().eventsource();
                    loop {
                        // Longer than the sink's 15 s keepalive: a silent, dead connection
                        // is noticed and reopened.
                        match tokio::time::timeout(Duration::from_secs(45), events.next()).await {
                            Ok(Some(Ok(e))) => {
                                if let Some(retry) = e.retry {
                                    backoff = retry;
                                }
                                match e.event.as_str() {
                                    "message" => {
                                        let change: Value = match serde_json::from_str(&e.data) {
                                            Ok(v) => v,
                                            Err(err) => {
                                                say!("error: event {} is not JSON: {err}", e.id);
                                                std::process::exit(1);
                                            }
                                        };
                                        if let Err(err) = self.process(&e.id, change).await {
                                            say!("error: processing event {}: {err}", e.id);
                                            std::process::exit(1);
                                        }
                                    }
                                    "gap" => say!("gap: events lost to retention: {}", e.data),
                                    "reset" => say!(
                                        "reset: topic recreated, continuing on its new log: {}",
                                        e.data
                                    ),
                                    other => say!("ignoring an event of type {other:?}"),
                                }
                            }
                            Ok(Some(Err(e))) => {
                                say!("connection lost ({e})");
                                break;
                            }
                            Ok(None) => {
                                say!("the stream ended");
                                break;
                            }
                            Err(_) => {
                                say!("nothing for 45 s, not even a keepalive");
                                break;
                            }
                        }
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    say!(
                        "stream refused: {status} {}",
                        resp.text().await.unwrap_or_default()
                    );
                }
                Err(e) => say!("connecting failed: {e}"),
            }
            say!("reconnecting in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            say!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (out, last_id) = match open_output(&config.output) {
        Ok(v) => v,
        Err(e) => {
            say!("error: opening {}: {e}", config.output);
            return ExitCode::FAILURE;
        }
    };
    match &last_id {
        Some(id) => say!("resuming after {id} (from {})", config.output),
        None => {
            say!("no output yet: the sink starts after the last ack, or at the consumer's start")
        }
    }
    let consumer = Arc::new(Consumer {
        http: reqwest::Client::new(),
        state: Mutex::new(State {
            out,
            last_id,
            acked_id: None,
            since_ack: 0,
        }),
        config,
    });
    let timer = {
        let consumer = consumer.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(consumer.config.ack_interval);
            every.tick().await;
            loop {
                every.tick().await;
                consumer.ack().await;
            }
        })
    };
    tokio::select! {
        _ = consumer.run() => {}
        _ = shutdown_signal() => {}
    }
    timer.abort();
    consumer.ack().await;
    ExitCode::SUCCESS
}
