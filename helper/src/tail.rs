//! `tumbleweed tail`: follow a consumer's stream (or, for operators, one topic) from a
//! terminal, a consumer-side replacement for `curl -N`.
//!
//! # Design
//!
//! - **Read-only.** It never acknowledges: following a consumer's stream to look at it must not
//!   move the position the consumer's service resumes from. Without `--from` the sink starts
//!   where the consumer last acknowledged (or at its `start`), as for any client.
//! - **Resumes like a client should.** When the connection drops (a sink replica restarts, a
//!   load balancer times out) it reconnects with the last event id as `Last-Event-ID`, so
//!   nothing is shown twice or skipped, backing off from 0.5 s to 10 s. A ticket opens one
//!   stream only, so with `--ticket` a dropped stream ends the command with that explanation.
//! - **Credentials never on the command line.** The consumer token is read from an environment
//!   variable (`--token-env`, `TUMBLEWEED_CONSUMER_TOKEN` by default), like `bootstrap` reads the
//!   admin token: flags land in shell history and `ps`.
//! - **The SSE wire format is parsed by `eventsource-stream`**, not by hand.
//! - **Output.** Change events go to stdout, one per line: a coloured summary (time, op,
//!   table, key, the row after or before) or, with `--json`, the event id and the event object
//!   as one JSON document. Notices (`gap`, `reset`, reconnections) go to stderr, so stdout stays
//!   data. Colour follows `--color` (auto: only on a terminal, and never with `NO_COLOR`).
//!   [`render`] is a pure function, unit tested.

use std::io::Write;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use anyhow::{anyhow, Context, Result};
use clap::{Args, ValueEnum};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::cli::GlobalArgs;
use crate::{Outcome, UsageError};

#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Sink base URL: the `public_url` terraform output for a consumer, `admin_url` for
    /// `--topic` (an admin route); `scripts/run` serves both on 127.0.0.1:8080.
    #[arg(long, value_name = "URL", env = "TUMBLEWEED_SINK_URL")]
    pub sink_url: String,
    /// The consumer whose stream to follow.
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "topic",
        conflicts_with = "topic"
    )]
    pub consumer: Option<String>,
    /// Operators: follow one topic with the admin token instead of a consumer.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Environment variable holding the consumer's token.
    #[arg(long, value_name = "NAME", default_value = "TUMBLEWEED_CONSUMER_TOKEN")]
    pub token_env: String,
    /// Environment variable holding the admin token (with --topic).
    #[arg(long, value_name = "NAME", default_value = "TUMBLEWEED_ADMIN_TOKEN")]
    pub admin_token_env: String,
    /// A single-use stream ticket (`POST /v1/consumers/{name}/tickets`) instead of the token;
    /// it opens one stream, so the command ends when that stream does.
    #[arg(long, value_name = "TICKET", requires = "consumer")]
    pub ticket: Option<String>,
    /// Start after this event id (as `Last-Event-ID`) instead of the last acknowledgement.
    #[arg(long, value_name = "ID")]
    pub from: Option<String>,
    /// With --topic and no --from: where to start.
    #[arg(long, value_enum, default_value_t = TopicStart::Latest, requires = "topic")]
    pub start: TopicStart,
    /// One JSON document per event on stdout: {"id", "event"} (the event as the sink sends it);
    /// the same as `--output json`.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many change events.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Colour the summary lines.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopicStart {
    Earliest,
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// One SSE event as the sink sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// `message` for a change event; `gap`, `reset` or another notice otherwise.
    pub event: String,
    pub id: String,
    pub data: String,
}

/// What a frame becomes on the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// A change event: one stdout line.
    Change(String),
    /// A notice: one stderr line.
    Notice(String),
}

fn paint(text: &str, style: Style, color: bool) -> String {
    if color {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// The terminal line of `frame` (pure: the unit tests pin the format).
pub fn render(frame: &Frame, json_out: bool, color: bool) -> Rendered {
    if frame.event != "message" {
        let text = format!("{}: {} (id {})", frame.event, frame.data, frame.id);
        let style = Style::new()
            .fg_color(Some(AnsiColor::Magenta.into()))
            .bold();
        return Rendered::Notice(paint(&text, style, color));
    }
    let ev: Value = serde_json::from_str(&frame.data).unwrap_or(Value::String(frame.data.clone()));
    if json_out {
        return Rendered::Change(json!({ "id": frame.id, "event": ev }).to_string());
    }
    let op = ev["op"].as_str().unwrap_or("?");
    let (word, colour) = match op {
        "c" => ("insert", AnsiColor::Green),
        "u" => ("update", AnsiColor::Yellow),
        "d" => ("delete", AnsiColor::Red),
        "r" => ("read  ", AnsiColor::Blue),
        _ => ("other ", AnsiColor::White),
    };
    let when = ev["source"]["ts_ms"]
        .as_i64()
        .and_then(time_of_day)
        .unwrap_or_else(|| "--:--:--.---".into());
    let table = ev["table"]
        .as_str()
        .or_else(|| ev["topic"].as_str())
        .unwrap_or("?");
    let row = if op == "d" {
        &ev["before"]
    } else {
        &ev["after"]
    };
    let dim = Style::new().dimmed();
    Rendered::Change(format!(
        "{} {} {} {} {} {}",
        paint(&when, dim, color),
        paint(
            word,
            Style::new().fg_color(Some(colour.into())).bold(),
            color
        ),
        paint(table, Style::new().bold(), color),
        paint(&format!("key={}", ev["key"]), dim, color),
        row,
        paint(
            &format!("@{}/{}", ev["partition"], ev["offset"]),
            dim,
            color
        ),
    ))
}

/// `HH:MM:SS.mmm` (UTC) of a millisecond timestamp.
fn time_of_day(ms: i64) -> Option<String> {
    if ms < 0 {
        return None;
    }
    let day_ms = ms % 86_400_000;
    Some(format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    ))
}

enum Credential {
    Bearer(String),
    Ticket(String),
}

fn env_token(name: &str, what: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(t) if !t.is_empty() => Ok(t),
        _ => Err(UsageError(format!(
            "{what} not found: set the environment variable {name} (or name another with --{})",
            if what.starts_with("admin") {
                "admin-token-env"
            } else {
                "token-env"
            }
        ))
        .into()),
    }
}

/// Why a stream ended.
enum Ended {
    /// Enough events (--count).
    Done,
    /// The connection dropped or the server closed it: reconnect.
    Dropped(String),
}

pub async fn run(g: &GlobalArgs, mut a: TailArgs) -> Result<Outcome> {
    // `--output json` (the global flag) means the same as `--json`.
    a.json |= g.output == crate::OutputFormat::Json;
    let base = a.sink_url.trim_end_matches('/').to_string();
    reqwest::Url::parse(&base)
        .map_err(|e| UsageError(format!("--sink-url {base:?} is not a URL: {e}")))?;
    let (path, credential) = match (&a.consumer, &a.topic) {
        (Some(c), _) => {
            let cred = match &a.ticket {
                Some(t) => Credential::Ticket(t.clone()),
                None => Credential::Bearer(env_token(&a.token_env, "the consumer's token")?),
            };
            (format!("/v1/consumers/{c}/events"), cred)
        }
        (None, Some(t)) => (
            format!("/v1/topics/{t}/events"),
            Credential::Bearer(env_token(&a.admin_token_env, "admin token")?),
        ),
        (None, None) => unreachable!("clap requires --consumer or --topic"),
    };
    let color = match a.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stdout())
        }
    };
    // No overall timeout: a stream is long-lived. Connecting is bounded.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let mut last_id = a.from.clone();
    let mut shown = 0u64;
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut url = reqwest::Url::parse(&format!("{base}{path}"))?;
        if a.topic.is_some() && last_id.is_none() && a.start == TopicStart::Earliest {
            url.query_pairs_mut().append_pair("start", "earliest");
        }
        let mut req = http.get(url.clone()).header("Accept", "text/event-stream");
        match &credential {
            Credential::Bearer(t) => req = req.bearer_auth(t),
            Credential::Ticket(t) => {
                let mut u = url.clone();
                u.query_pairs_mut().append_pair("ticket", t);
                req = http.get(u).header("Accept", "text/event-stream");
            }
        }
        if let Some(id) = &last_id {
            req = req.header("Last-Event-ID", id);
        }
        let ended = match req.send().await {
            Err(e) => Ended::Dropped(format!("cannot reach {base}: {e}")),
            Ok(resp) if resp.status().is_success() => {
                backoff = Duration::from_millis(500);
                follow(resp, &a, color, &mut last_id, &mut shown).await?
            }
            Ok(resp) => {
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let msg = body["error"].as_str().unwrap_or("").to_string();
                if status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                {
                    Ended::Dropped(format!("{status}: {msg}"))
                } else {
                    return Err(anyhow!("the sink answered {status}: {msg}"))
                        .with_context(|| format!("opening {path}"));
                }
            }
        };
        match ended {
            Ended::Done => return Ok(Outcome::Success),
            Ended::Dropped(why) => {
                if matches!(credential, Credential::Ticket(_)) {
                    return Err(anyhow!(
                        "the stream ended ({why}); a ticket opens one stream: ask for a new ticket \
                         and run again with --from {}",
                        last_id.as_deref().unwrap_or("<last id>")
                    ));
                }
                eprintln!(
                    "{}",
                    paint(
                        &format!(
                            "stream ended ({why}); reconnecting in {:.1} s from {}",
                            backoff.as_secs_f64(),
                            last_id.as_deref().unwrap_or("the last acknowledgement")
                        ),
                        Style::new().fg_color(Some(AnsiColor::Magenta.into())),
                        color
                    )
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Prints the frames of one open stream until it ends or `--count` is reached.
async fn follow(
    resp: reqwest::Response,
    a: &TailArgs,
    color: bool,
    last_id: &mut Option<String>,
    shown: &mut u64,
) -> Result<Ended> {
    let mut events = resp.bytes_stream().eventsource();
    let stdout = std::io::stdout();
    while let Some(item) = events.next().await {
        let ev = match item {
            Ok(ev) => ev,
            Err(e) => return Ok(Ended::Dropped(e.to_string())),
        };
        let frame = Frame {
            event: ev.event,
            id: ev.id,
            data: ev.data,
        };
        match render(&frame, a.json, color) {
            Rendered::Change(line) => {
                let mut out = stdout.lock();
                writeln!(out, "{line}").context("writing to stdout")?;
                out.flush().context("writing to stdout")?;
                *shown += 1;
            }
            Rendered::Notice(line) => eprintln!("{line}"),
        }
        if !frame.id.is_empty() {
            *last_id = Some(frame.id);
        }
        if a.count.is_some_and(|n| *shown >= n) {
            return Ok(Ended::Done);
        }
    }
    Ok(Ended::Dropped("the server closed the stream".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(op: &str) -> Frame {
        Frame {
            event: "message".into(),
            id: "AAEC".into(),
            data: json!({
                "topic": "shop.public.orders", "partition": 0, "offset": 41, "key": {"id": 7},
                "op": op, "table": "public.orders",
                "before": {"id": 7, "status": "new"}, "after": if op == "d" { Value::Null } else { json!({"id": 7, "status": "paid"}) },
                "source": {"lsn": 1, "txId": 2, "ts_ms": 1_760_000_123_456u64},
            })
            .to_string(),
        }
    }

    #[test]
    fn a_change_is_one_plain_line_without_colour() {
        let Rendered::Change(line) = render(&change("u"), false, false) else {
            panic!("a change")
        };
        assert_eq!(
            line,
            r#"08:55:23.456 update public.orders key={"id":7} {"id":7,"status":"paid"} @0/41"#
        );
        // A delete shows the row before.
        let Rendered::Change(line) = render(&change("d"), false, false) else {
            panic!("a change")
        };
        assert!(
            line.contains(r#"delete public.orders key={"id":7} {"id":7,"status":"new"}"#),
            "{line}"
        );
    }

    #[test]
    fn colour_wraps_the_parts_in_ansi_styles_and_resets() {
        let Rendered::Change(line) = render(&change("c"), false, true) else {
            panic!("a change")
        };
        assert!(
            line.contains("\u{1b}[") && line.contains("insert"),
            "{line:?}"
        );
        assert!(line.ends_with("\u{1b}[0m"), "{line:?}");
    }

    #[test]
    fn json_output_keeps_the_id_and_the_event_object() {
        let Rendered::Change(line) = render(&change("c"), true, true) else {
            panic!("a change")
        };
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["id"], "AAEC");
        assert_eq!(v["event"]["offset"], 41);
        assert!(!line.contains('\u{1b}'), "no colour in JSON");
    }

    #[test]
    fn notices_go_to_stderr_with_their_data() {
        let gap = Frame {
            event: "gap".into(),
            id: "x".into(),
            data: r#"{"from":10,"to":60,"lost":50}"#.into(),
        };
        assert_eq!(
            render(&gap, false, false),
            Rendered::Notice(r#"gap: {"from":10,"to":60,"lost":50} (id x)"#.into())
        );
    }
}
