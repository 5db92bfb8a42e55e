//! The kill-and-resume test of the client examples (`examples/clients/*`, run by
//! `tests/examples/run.sh`).
//!
//! For each example given with `--example NAME=COMMAND`, against the real local stack and a
//! private sink started here:
//!
//! 1. a consumer `ex-NAME` is created on that example's own table (`public.NAME_items`, one
//!    topic), `start: "earliest"`;
//! 2. the example starts as a child process with the shared contract's environment
//!    (`TUMBLEWEED_URL`, `TUMBLEWEED_CONSUMER`, `TUMBLEWEED_TOKEN`, `OUTPUT`, `ACK_EVERY`,
//!    `ACK_INTERVAL_SECS`);
//! 3. a writer commits `--changes` single-change transactions (inserts, updates, deletes; no
//!    key is ever reused; a row's `ver` counts its versions) at `--rate` per second;
//! 4. once OUTPUT holds a random 25–50 % of them, the example is killed: SIGKILL of its process
//!    group, and a torn half line is appended to OUTPUT (as a write cut short by a crash would
//!    leave it); the browser example (`browser`) instead gets SIGUSR2, on which its runner
//!    closes the page's browser context and opens a new one on the same profile (so the same
//!    localStorage). After a second the example is started again. (The writer waits at 60 %
//!    until the kill, so the kill is always mid-stream, and goes on while the example is down);
//! 5. when OUTPUT covers every committed change (or nothing new came for 30 s), the example
//!    gets SIGTERM, and OUTPUT is checked by (primary key, op, version): every committed
//!    change exactly once, in order per key, nothing that was not committed;
//! 6. lost local state: OUTPUT is deleted (the browser runner starts on a new profile anyway)
//!    and the example started once more, so it connects without a position; five new changes
//!    are written and waited for. What came before them (`replayed_without_output`) followed
//!    the last ack, and must be fewer than half the changes: a resume near the end, not from
//!    the start.
//!
//! One line per example: `example=NAME committed=N delivered=N lost=L duplicated=D
//! out_of_order=O unexpected=U killed_at=K replayed_without_output=R secs=S`. Exit status 0
//! when every example lost, repeated and reordered nothing and resumed from its ack; 1
//! otherwise; 2 when the test could not run.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use tumbleweed_tests::sink::SinkProcess;
use tumbleweed_tests::{eventually, repo_root, slot_active, stack, unique_suffix, Stack};

#[derive(Parser, Debug)]
#[command(
    name = "client-examples",
    about = "Kills each client example mid-stream, restarts it, and checks by primary key that it saw every change exactly once"
)]
struct Args {
    /// An example to test: NAME=COMMAND (the command is split at spaces and run from the
    /// repository root). NAME `browser` is stopped with SIGUSR2 instead of SIGKILL.
    #[arg(long = "example", required = true)]
    examples: Vec<String>,
    /// Changes committed while each example runs.
    #[arg(long, default_value_t = 3000)]
    changes: usize,
    /// Changes committed per second.
    #[arg(long, default_value_t = 300)]
    rate: u32,
    /// Where OUTPUT files and the examples' logs go.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Seed of the writer's choices and the kill points (random when absent; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The tumbleweed-sink binary.
    #[arg(long, env = "TW_SINK_BIN")]
    sink_bin: PathBuf,
}

macro_rules! say {
    ($($arg:tt)*) => { eprintln!("client-examples: {}", format!($($arg)*)) };
}

/// One change: (primary key, op, the row's version: after the change, or before a delete).
type Change = (i64, char, i64);

struct Example {
    name: String,
    command: Vec<String>,
}

fn parse_examples(specs: &[String]) -> Result<Vec<Example>> {
    specs
        .iter()
        .map(|s| {
            let (name, cmd) = s
                .split_once('=')
                .with_context(|| format!("--example {s:?}: expected NAME=COMMAND"))?;
            let command: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                || command.is_empty()
            {
                bail!("--example {s:?}: NAME must be [a-z0-9]+ and COMMAND not empty");
            }
            Ok(Example {
                name: name.to_string(),
                command,
            })
        })
        .collect()
}

/// The admin API of the private sink; answers (status, JSON body).
async fn api(
    sink: &SinkProcess,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = sink
        .admin(method.clone(), path)
        .timeout(Duration::from_secs(120));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req
        .send()
        .await
        .with_context(|| format!("{method} {path}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// The writer's model of one table: live rows and their versions.
struct Writer {
    live: Vec<(i64, i64)>,
    next_key: i64,
}

impl Writer {
    fn new() -> Self {
        Self {
            live: Vec::new(),
            next_key: 1,
        }
    }

    /// The next change and its SQL.
    fn next(&mut self, rng: &mut StdRng, table: &str) -> (Change, String) {
        if self.live.len() < 20 || rng.random_bool(0.4) {
            let k = self.next_key;
            self.next_key += 1;
            self.live.push((k, 1));
            (
                (k, 'c', 1),
                format!("INSERT INTO public.{table} (id, ver, note) VALUES ({k}, 1, 'row {k}')"),
            )
        } else {
            let i = rng.random_range(0..self.live.len());
            if rng.random_bool(0.25) {
                let (k, v) = self.live.swap_remove(i);
                (
                    (k, 'd', v),
                    format!("DELETE FROM public.{table} WHERE id = {k}"),
                )
            } else {
                let (k, v) = &mut self.live[i];
                *v += 1;
                (
                    (*k, 'u', *v),
                    format!(
                        "UPDATE public.{table} SET ver = {v}, note = 'row {k} v{v}' WHERE id = {k}"
                    ),
                )
            }
        }
    }
}

/// What OUTPUT holds: every complete line parsed into its change (an incomplete last line is
/// skipped: the example may be writing it, or was killed in it and cuts it off on start).
fn read_output(path: &Path, topic: &str) -> Result<Vec<Change>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .map(|(n, line)| {
            let v: Value = serde_json::from_str(line).with_context(|| {
                format!("{} line {}: not JSON: {line:?}", path.display(), n + 1)
            })?;
            let bad = || format!("{} line {}: {line}", path.display(), n + 1);
            if v["topic"] != topic {
                bail!("{}: topic is not {topic}", bad());
            }
            if v["id"].as_str().is_none_or(str::is_empty) {
                bail!("{}: no SSE id", bad());
            }
            let op = v["op"]
                .as_str()
                .and_then(|o| o.chars().next())
                .with_context(bad)?;
            let key = v["key"]["id"].as_i64().with_context(bad)?;
            let ver = v["row"]["ver"].as_i64().with_context(bad)?;
            if v["row"]["id"].as_i64() != Some(key) {
                bail!("{}: row and key disagree", bad());
            }
            Ok((key, op, ver))
        })
        .collect()
}

#[derive(Debug, Default)]
struct Verdict {
    committed: usize,
    delivered: usize,
    lost: usize,
    duplicated: usize,
    out_of_order: usize,
    unexpected: usize,
    /// Changes delivered again after OUTPUT was deleted (those after the last ack).
    replayed: Option<usize>,
}

impl Verdict {
    fn of(committed: &[Change], output: &[Change]) -> Self {
        let committed_set: HashSet<Change> = committed.iter().copied().collect();
        let mut seen: HashMap<Change, usize> = HashMap::new();
        let mut last_ver: HashMap<i64, i64> = HashMap::new();
        let mut v = Verdict {
            committed: committed_set.len(),
            ..Default::default()
        };
        for c in output {
            let n = seen.entry(*c).or_default();
            *n += 1;
            if *n > 1 {
                v.duplicated += 1;
                continue;
            }
            if !committed_set.contains(c) {
                v.unexpected += 1;
            }
            // Versions of one key only grow (a delete carries the version it removed, after
            // the update that made it: same number, later op).
            let rank = c.2 * 2 + i64::from(c.1 == 'd');
            if let Some(prev) = last_ver.insert(c.0, rank) {
                if prev >= rank {
                    v.out_of_order += 1;
                }
            }
        }
        v.delivered = committed_set
            .iter()
            .filter(|c| seen.contains_key(c))
            .count();
        v.lost = v.committed - v.delivered;
        v
    }

    fn pass(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.unexpected == 0
            // Resumed near the end, from an ack, not from the start.
            && self.replayed.is_none_or(|r| r < self.committed / 2)
    }
}

/// A running example (its own process group, so a kill reaches whatever it started).
struct Running {
    child: Child,
}

impl Running {
    fn start(ex: &Example, env: &[(&str, String)], log: &Path) -> Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(&ex.command[0])
            .args(&ex.command[1..])
            .current_dir(repo_root())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting example {}: {:?}", ex.name, ex.command))?;
        Ok(Self { child })
    }

    fn signal_group(&self, sig: i32) {
        // SAFETY: kill(2) with the negated id of the process group the child leads.
        unsafe {
            libc::kill(-(self.child.id() as i32), sig);
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the child's own pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn kill9(&mut self) {
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM to the example (which stops what it started), then SIGKILL to its process
    /// group after 10 s.
    async fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.exited().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill9();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill9();
        }
    }
}

struct Ctx {
    stack: Stack,
    sink: SinkProcess,
    db: String,
    work: PathBuf,
}

fn topic_of(db: &str, name: &str) -> String {
    format!("{db}.public.{name}_items")
}

async fn run_example(
    ctx: &Ctx,
    ex: &Example,
    args: &Args,
    rng: &mut StdRng,
) -> Result<(Verdict, usize, f64)> {
    let t0 = Instant::now();
    let table = format!("{}_items", ex.name);
    let topic = topic_of(&ctx.db, &ex.name);
    let consumer = format!("ex-{}", ex.name);
    let token = ctx
        .sink
        .create_consumer(json!({"name": consumer, "topics": [topic], "start": "earliest"}))
        .await?;
    let output = ctx.work.join(format!("{}.jsonl", ex.name));
    let log = ctx.work.join(format!("{}.log", ex.name));
    for p in [&output, &log] {
        let _ = std::fs::remove_file(p);
    }
    let env = [
        ("TUMBLEWEED_URL", ctx.sink.base.clone()),
        ("TUMBLEWEED_CONSUMER", consumer.clone()),
        ("TUMBLEWEED_TOKEN", token),
        ("OUTPUT", output.display().to_string()),
        ("ACK_EVERY", "50".to_string()),
        ("ACK_INTERVAL_SECS", "1".to_string()),
    ];
    let mut running = Running::start(ex, &env, &log)?;

    // The writer: the warm-up row (key 0) is already there; one change per transaction.
    let pg = ctx.stack.pg(&ctx.db).await?;
    let committed: Arc<Mutex<Vec<Change>>> = Arc::new(Mutex::new(vec![(0, 'c', 1)]));
    let mut model = Writer::new();
    let plan: Vec<(Change, String)> = (0..args.changes).map(|_| model.next(rng, &table)).collect();
    // The writer waits at 60 % until the example has been killed, so the kill (at 25–50 %) is
    // always mid-stream, however slowly the example starts.
    let (killed_tx, killed_rx) = tokio::sync::watch::channel(false);
    let gate = args.changes * 3 / 5;
    let writer = {
        let committed = committed.clone();
        let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
        let mut killed_rx = killed_rx;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for (i, (change, sql)) in plan.into_iter().enumerate() {
                if i == gate {
                    killed_rx
                        .wait_for(|k| *k)
                        .await
                        .context("the test ended before the kill")?;
                }
                tick.tick().await;
                pg.batch_execute(&sql)
                    .await
                    .with_context(|| format!("committing {sql}"))?;
                committed.lock().unwrap().push(change);
            }
            anyhow::Ok(())
        })
    };

    // Kill once OUTPUT holds 25–50 % of the changes.
    let kill_at = rng.random_range(args.changes / 4..=args.changes / 2).max(1);
    let killed_at = eventually(
        &format!("example {} to process {kill_at} changes", ex.name),
        Duration::from_secs(60),
        || {
            let n = read_output(&output, &topic).map(|o| o.len());
            let exited = running.exited();
            async move {
                if let Some(status) = exited {
                    bail!("example exited by itself ({status}) before the kill");
                }
                Ok(n?.checked_sub(kill_at).map(|extra| kill_at + extra))
            }
        },
    )
    .await?;
    if ex.name == "browser" {
        say!(
            "{}: closing the page's browser context at {killed_at} changes (SIGUSR2 to the runner)",
            ex.name
        );
        running.signal(libc::SIGUSR2);
        let _ = killed_tx.send(true);
    } else {
        say!("{}: SIGKILL at {killed_at} changes", ex.name);
        running.kill9();
        let _ = killed_tx.send(true);
        // What a crash in the middle of a write leaves: half a line, no newline.
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&output)?
            .write_all(br#"{"id":"torn-by-the-test","topic":"#)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        running = Running::start(ex, &env, &log)?;
    }
    writer.await??;
    let written_at = Instant::now();
    let committed = committed.lock().unwrap().clone();

    // Drain: until every committed change is in OUTPUT, or 30 s without progress.
    let want: HashSet<Change> = committed.iter().copied().collect();
    let (mut last_len, mut last_progress) = (0, Instant::now());
    loop {
        if let Some(status) = running.exited() {
            bail!(
                "example {} exited ({status}); its log is {}",
                ex.name,
                log.display()
            );
        }
        let out = read_output(&output, &topic)?;
        let have: HashSet<Change> = out.iter().copied().collect();
        if want.is_subset(&have) {
            break;
        }
        if out.len() != last_len {
            (last_len, last_progress) = (out.len(), Instant::now());
        } else if last_progress.elapsed() > Duration::from_secs(30) {
            say!(
                "{}: no progress for 30 s with {} of {} changes",
                ex.name,
                have.intersection(&want).count(),
                want.len()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    say!(
        "{}: caught up {:.1}s after the writer's last commit",
        ex.name,
        written_at.elapsed().as_secs_f64()
    );
    // A moment for stray copies, then a clean stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    running.stop().await;
    say!("{}: stopped in {:.1}s", ex.name, t.elapsed().as_secs_f64());
    let out = read_output(&output, &topic)?;
    let mut verdict = Verdict::of(&committed, &out);
    verdict.replayed =
        Some(lost_state(ctx, ex, &env, &log, &output, &topic, &mut model, rng).await?);
    let _ = api(
        &ctx.sink,
        Method::DELETE,
        &format!("/v1/consumers/{consumer}"),
        None,
    )
    .await;
    Ok((verdict, killed_at, t0.elapsed().as_secs_f64()))
}

/// Lost local state: OUTPUT is deleted (the browser runner starts with a new profile anyway)
/// and the example started again, so it connects without a position and the sink resumes it
/// after its last ack. Five new changes are written and waited for (so it did connect); returns
/// how many changes came before them: those after the last ack.
#[allow(clippy::too_many_arguments)]
async fn lost_state(
    ctx: &Ctx,
    ex: &Example,
    env: &[(&str, String)],
    log: &Path,
    output: &Path,
    topic: &str,
    model: &mut Writer,
    rng: &mut StdRng,
) -> Result<usize> {
    let t = Instant::now();
    std::fs::remove_file(output)?;
    let mut again = Running::start(ex, env, log)?;
    let pg = ctx.stack.pg(&ctx.db).await?;
    let mut fresh = HashSet::new();
    for _ in 0..5 {
        let (change, sql) = model.next(rng, &format!("{}_items", ex.name));
        pg.batch_execute(&sql).await?;
        fresh.insert(change);
    }
    eventually(
        &format!(
            "example {} to deliver 5 new changes after losing its output",
            ex.name
        ),
        Duration::from_secs(60),
        || {
            let out = read_output(output, topic);
            let exited = again.exited();
            let fresh = &fresh;
            async move {
                if let Some(status) = exited {
                    bail!("example exited by itself ({status})");
                }
                let out: HashSet<Change> = out?.into_iter().collect();
                Ok(fresh.is_subset(&out).then_some(()))
            }
        },
    )
    .await?;
    again.stop().await;
    say!(
        "{}: resumed from its ack without OUTPUT in {:.1}s",
        ex.name,
        t.elapsed().as_secs_f64()
    );
    let out = read_output(output, topic)?;
    Ok(out.iter().filter(|c| !fresh.contains(c)).count())
}

async fn setup(stack: &Stack, sink: &SinkProcess, db: &str, examples: &[Example]) -> Result<()> {
    let pg = stack.create_database(db).await?;
    let mut sql = String::new();
    for ex in examples {
        let t = format!("{}_items", ex.name);
        sql.push_str(&format!(
            "CREATE TABLE public.{t} (id bigint PRIMARY KEY, ver bigint NOT NULL, note text NOT NULL);
             ALTER TABLE public.{t} REPLICA IDENTITY FULL;"
        ));
    }
    pg.batch_execute(&sql)
        .await
        .context("creating the tables")?;
    let tables: Vec<String> = examples
        .iter()
        .map(|e| format!("public.{}_items", e.name))
        .collect();
    let body = json!({
        "name": db, "host": stack.pg_host, "port": stack.pg_port, "database": db,
        "user": "postgres", "password": "not-needed-with-trust",
        "tables": tables, "heartbeat_interval_s": 1, "snapshot_mode": "no_data",
    });
    let (status, v) = api(sink, Method::POST, "/v1/sources", Some(body)).await?;
    if status != 201 {
        bail!("declaring source {db}: {status}: {v}");
    }
    let slot = format!("tw_local_{db}");
    eventually(
        &format!("replication slot {slot} to be active"),
        Duration::from_secs(90),
        || async { Ok(slot_active(&pg, &slot).await?.filter(|a| *a)) },
    )
    .await?;
    // A first row per table, so that each topic exists before its consumer is created.
    for ex in examples {
        pg.batch_execute(&format!(
            "INSERT INTO public.{}_items (id, ver, note) VALUES (0, 1, 'warm-up')",
            ex.name
        ))
        .await?;
    }
    for ex in examples {
        sink.wait_topic(&topic_of(db, &ex.name), Duration::from_secs(90))
            .await?;
    }
    Ok(())
}

async fn cleanup(ctx: &Ctx, examples: &[Example]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match api(
            &ctx.sink,
            Method::DELETE,
            &format!("/v1/sources/{}", ctx.db),
            None,
        )
        .await
        {
            Ok((200 | 404, _)) => break,
            other if Instant::now() > deadline => {
                say!("cleanup: source {} is left: {other:?}", ctx.db);
                break;
            }
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    if let Ok(pg) = ctx.stack.pg("postgres").await {
        if let Err(e) = pg
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                ctx.db
            ))
            .await
        {
            say!("cleanup: dropping database {}: {e}", ctx.db);
        }
    }
    let mut topics: Vec<String> = examples
        .iter()
        .map(|e| topic_of(&ctx.db, &e.name))
        .collect();
    topics.push(format!("__debezium-heartbeat.{}", ctx.db));
    topics.push(format!("{}.public.tumbleweed_heartbeat", ctx.db));
    if let Err(e) = delete_topics(&ctx.stack.kafka_bootstrap, &topics).await {
        say!("cleanup: deleting topics: {e:#}");
    }
}

async fn delete_topics(bootstrap: &str, topics: &[String]) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    admin.delete_topics(&names, &AdminOptions::new()).await?;
    Ok(())
}

async fn async_main(args: Args) -> ExitCode {
    let examples = match parse_examples(&args.examples) {
        Ok(e) => e,
        Err(e) => {
            say!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    say!(
        "seed={seed} changes={} rate={}/s examples={}",
        args.changes,
        args.rate,
        examples
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| repo_root().join("tests/artifacts/examples"));
    if let Err(e) = std::fs::create_dir_all(&work) {
        say!("error: creating {}: {e}", work.display());
        return ExitCode::from(2);
    }
    let stack = match tokio::task::spawn_blocking(|| std::panic::catch_unwind(stack)).await {
        Ok(Ok(s)) => s.clone(),
        _ => {
            say!("error: the local stack is not available (see above); run `scripts/stack up`");
            return ExitCode::from(2);
        }
    };
    let t0 = Instant::now();
    let sink = match SinkProcess::start(&args.sink_bin.to_string_lossy(), &stack, &[]).await {
        Ok(s) => s,
        Err(e) => {
            say!("error: starting the sink: {e:#}");
            return ExitCode::from(2);
        }
    };
    let ctx = Ctx {
        db: format!("tw_examples_{}", unique_suffix()),
        stack,
        sink,
        work,
    };
    say!("sink on {}; database and source {}", ctx.sink.base, ctx.db);
    if let Err(e) = setup(&ctx.stack, &ctx.sink, &ctx.db, &examples).await {
        say!("error: setting up the source: {e:#}");
        cleanup(&ctx, &examples).await;
        return ExitCode::from(2);
    }
    say!("source streaming after {:.1}s", t0.elapsed().as_secs_f64());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut failed = Vec::new();
    let mut lines = Vec::new();
    for ex in &examples {
        match run_example(&ctx, ex, &args, &mut rng).await {
            Ok((v, killed_at, secs)) => {
                let line = format!(
                    "example={} committed={} delivered={} lost={} duplicated={} out_of_order={} unexpected={} killed_at={killed_at} replayed_without_output={} secs={secs:.1}",
                    ex.name, v.committed, v.delivered, v.lost, v.duplicated, v.out_of_order, v.unexpected,
                    v.replayed.map_or("-".to_string(), |r| r.to_string()),
                );
                println!("{line}");
                if !v.pass() {
                    failed.push(ex.name.clone());
                }
                lines.push(line);
            }
            Err(e) => {
                let line = format!("example={} error: {e:#}", ex.name);
                println!("{line}");
                say!(
                    "{}: its log is {}",
                    ex.name,
                    ctx.work.join(format!("{}.log", ex.name)).display()
                );
                failed.push(ex.name.clone());
                lines.push(line);
            }
        }
    }
    cleanup(&ctx, &examples).await;
    say!("done in {:.1}s", t0.elapsed().as_secs_f64());
    if failed.is_empty() {
        println!("{} passed, 0 failed", examples.len());
        ExitCode::SUCCESS
    } else {
        println!(
            "{} passed, {} failed",
            examples.len() - failed.len(),
            failed.len()
        );
        say!(
            "FAILED: {} (outputs and logs in {})",
            failed.join(", "),
            ctx.work.display()
        );
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say!("error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async_main(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_counts_losses_copies_reorders_and_strangers() {
        let committed = [(1, 'c', 1), (1, 'u', 2), (1, 'd', 2), (2, 'c', 1)];
        let v = Verdict::of(&committed, &committed);
        assert!(v.pass(), "{v:?}");
        assert_eq!(v.delivered, 4);
        let v = Verdict::of(
            &committed,
            &[
                (1, 'c', 1),
                (1, 'd', 2),
                (1, 'u', 2),
                (1, 'c', 1),
                (3, 'c', 1),
            ],
        );
        assert_eq!(
            (v.lost, v.duplicated, v.out_of_order, v.unexpected),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn the_writer_never_reuses_a_key_and_versions_follow_each_other() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut w = Writer::new();
        let mut ver: HashMap<i64, i64> = HashMap::new();
        let mut deleted = HashSet::new();
        for _ in 0..2000 {
            let ((k, op, v), _) = w.next(&mut rng, "t");
            assert!(!deleted.contains(&k));
            match op {
                'c' => assert!(ver.insert(k, v).is_none() && v == 1),
                'u' => assert_eq!(ver.insert(k, v), Some(v - 1)),
                'd' => {
                    assert_eq!(ver.get(&k), Some(&v));
                    deleted.insert(k);
                }
                _ => unreachable!(),
            }
        }
    }
}
