//! Sources survive Kafka Connect: the sink's declared sources are the source of truth and the
//! reconciler puts Connect back in line, while a writer commits rows the whole time.
//!
//! 1. The connector is deleted through Connect's REST API, behind the sink's back: the
//!    reconciler creates it again (from the declaration, whose password is a `file:`
//!    reference), and every row committed meanwhile reaches the SSE consumer.
//!    Then its config is edited in Connect: the declared config is put back.
//! 2. Connect is killed with SIGKILL: while it is away, `GET /v1/slots` still lists the
//!    source's slot with its retained WAL and `GET /v1/sources` still lists the source; after
//!    `scripts/stack up` the connector runs again and every row is delivered.
//!
//! Against a distributed worker (as on ECS) Connect itself keeps the connector across the
//! kill; against a standalone one (`TW_CONNECT_MODE=standalone`, which `scripts/test` also
//! runs) the restarted worker has none, and the reconciler brings it back.
//!
//! One test on purpose: Connect's outage must not hit other tests (cargo runs test files one
//! after another).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};
use tumbleweed_tests::sink::{read_resuming, SinkProcess};
use tumbleweed_tests::{eventually, stack, stack_command, unique_suffix, Stack};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

/// Inserts rows 1, 2, 3… about every 10 ms until `stop`; returns how many it committed.
fn start_writer(
    stack: &Stack,
    db: String,
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicI32>,
) -> tokio::task::JoinHandle<Result<()>> {
    let stack = stack.clone();
    tokio::spawn(async move {
        let pg = stack.pg(&db).await?;
        while !stop.load(Ordering::Relaxed) {
            let id = committed.load(Ordering::Relaxed) + 1;
            pg.execute("INSERT INTO public.ledger VALUES ($1, 'x')", &[&id])
                .await
                .context("writer insert")?;
            committed.store(id, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    })
}

async fn source_view(sink: &SinkProcess, name: &str) -> Result<Value> {
    let r = sink
        .admin(Method::GET, &format!("/v1/sources/{name}"))
        .send()
        .await?;
    ensure!(r.status() == 200, "GET source: {}", r.status());
    Ok(r.json().await?)
}

async fn wait_running(sink: &SinkProcess, name: &str, within: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    eventually(
        &format!("the connector of {name} to run again"),
        within,
        || async {
            let v = source_view(sink, name).await?;
            let tasks_ok = v["tasks"]
                .as_array()
                .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == "RUNNING"));
            Ok((v["connector_state"] == "RUNNING" && tasks_ok).then_some(()))
        },
    )
    .await?;
    Ok(t0.elapsed())
}

/// Counts each committed row among the delivered events: (delivered, lost, duplicated).
fn count(events: &[tumbleweed_tests::sink::SseEvent], committed: i32) -> (usize, usize, usize) {
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for e in events {
        if let Some(id) = e.data["after"]["id"].as_i64() {
            *seen.entry(id).or_default() += 1;
        }
    }
    let lost = (1..=committed as i64)
        .filter(|i| !seen.contains_key(i))
        .count();
    let duplicated = seen.values().filter(|c| **c > 1).count();
    (seen.len(), lost, duplicated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_come_back_after_connect_loses_them_and_nothing_is_lost() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let (db, source) = (format!("rec_{id}"), format!("rec_{id}"));
    let pg = stack.create_database(&db).await?;
    pg.batch_execute("CREATE TABLE public.ledger (id int PRIMARY KEY, note text NOT NULL)")
        .await?;
    // The password by reference: Connect reads the file through its DirectoryConfigProvider.
    // (The local cluster trusts loopback, so what matters here is that the reference is what
    // gets stored, and that it is enough to re-create the connector.)
    let secret_dir = std::env::temp_dir().join(format!("tw-secret-{id}"));
    std::fs::create_dir_all(&secret_dir)?;
    let secret = secret_dir.join("pg-password");
    std::fs::write(&secret, "not-needed-with-trust\n")?;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;

    let sink = SinkProcess::start(SINK, stack, &[("--reconcile-interval-secs", "1")]).await?;
    let r = sink
        .admin(Method::POST, "/v1/sources")
        .json(&json!({
            "name": source, "host": stack.pg_host, "port": stack.pg_port, "database": db,
            "user": "postgres", "password_secret": format!("file:{}", secret.display()),
            "tables": ["public.ledger"], "heartbeat_interval_s": 1, "snapshot_mode": "no_data",
        }))
        .send()
        .await?;
    let status = r.status();
    let created: Value = r.json().await?;
    ensure!(status == 201, "creating the source: {status}: {created}");
    assert_eq!(
        created["password_secret"],
        format!("file:{}", secret.display())
    );
    let connector = created["connector"].as_str().unwrap().to_string();
    // Connect holds the placeholder, never the password.
    let config: Value = reqwest::get(format!(
        "{}/connectors/{connector}/config",
        stack.connect_url
    ))
    .await?
    .json()
    .await?;
    assert_eq!(
        config["database.password"],
        format!("${{dir:{}:pg-password}}", secret_dir.display())
    );

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicI32::new(0));
    let writer = start_writer(stack, db.clone(), stop.clone(), committed.clone());
    let topic = format!("{source}.public.ledger");
    sink.wait_topic(&topic, Duration::from_secs(60)).await?;
    let token = sink
        .create_consumer(json!({"name": "auditor", "topics": [topic], "start": "earliest"}))
        .await?;

    // 1. The connector disappears behind the sink's back (after the reconciler's grace for
    // creations in progress, 5 s).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let deleted_at = Instant::now();
    stack.connect().delete(&connector).await?;
    eventually(
        "the reconciler to re-create the connector",
        Duration::from_secs(30),
        || async {
            let v = source_view(&sink, &source).await?;
            Ok(v["reconciler"]["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["action"] == "recreated")
                .then_some(()))
        },
    )
    .await?;
    wait_running(&sink, &source, Duration::from_secs(30)).await?;
    let back = deleted_at.elapsed();
    let v = source_view(&sink, &source).await?;
    assert!(
        v["reconciler"]["last_reconciled_ms"].as_u64().is_some(),
        "{v}"
    );

    // 1b. Someone edits the connector in Connect: the declared config is put back.
    let http = reqwest::Client::new();
    let config_url = format!("{}/connectors/{connector}/config", stack.connect_url);
    let mut edited: Value = http.get(&config_url).send().await?.json().await?;
    edited["poll.interval.ms"] = json!("5000");
    let r = http.put(&config_url).json(&edited).send().await?;
    ensure!(
        r.status().is_success(),
        "editing the connector: {}",
        r.status()
    );
    eventually(
        "the declared config to be back",
        Duration::from_secs(30),
        || async {
            let now: Value = http.get(&config_url).send().await?.json().await?;
            Ok((now["poll.interval.ms"] == "5").then_some(()))
        },
    )
    .await?;
    let v = source_view(&sink, &source).await?;
    assert!(
        v["reconciler"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "config_restored"),
        "reconciler actions: {v}"
    );
    wait_running(&sink, &source, Duration::from_secs(30)).await?;
    // The reconciler's view as gauges: the connector RUNNING, Connect reachable.
    let running =
        format!("tumbleweed_source_connector_state{{source=\"{source}\",state=\"RUNNING\"}} 1");
    metric_shows(&sink, &[&running, "tumbleweed_connect_reachable 1"]).await?;

    // 2. Connect dies. The source and its slot stay visible.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = Instant::now();
    tokio::task::spawn_blocking(|| stack_command(&["kill", "connect"])).await??;
    let r = sink.admin(Method::GET, "/v1/slots").send().await?;
    ensure!(
        r.status() == 200,
        "slots while Connect is away: {}",
        r.status()
    );
    let slots: Value = r.json().await?;
    let slot = slots["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == format!("tw_local_{source}"))
        .with_context(|| format!("the source's slot while Connect is away: {slots}"))?
        .clone();
    assert!(slot["retained_bytes"].as_i64().is_some(), "{slot}");
    assert_eq!(
        slot["orphan"], false,
        "a declared source's slot is never an orphan: {slot}"
    );
    let listed: Value = sink
        .admin(Method::GET, "/v1/sources")
        .send()
        .await?
        .json()
        .await?;
    assert!(
        listed["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == source.as_str()),
        "the source is still listed while Connect is away: {listed}"
    );
    // The next pass finds Connect gone, which the gauge says.
    metric_shows(&sink, &["tumbleweed_connect_reachable 0"]).await?;
    tokio::task::spawn_blocking(|| stack_command(&["up"])).await??;
    wait_running(&sink, &source, Duration::from_secs(30)).await?;
    let back_after_kill = killed_at.elapsed();
    if stack.connect_mode == "standalone" {
        // The restarted worker had no connector: the reconciler made it again.
        let v = source_view(&sink, &source).await?;
        let recreated = v["reconciler"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"] == "recreated")
            .count();
        assert_eq!(recreated, 2, "after the delete and after the kill: {v}");
    }

    // Writing stops; every committed row must arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await??;
    let committed = committed.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(90);
    let (events, reconnects) =
        read_resuming(&sink, "auditor", &token, committed as usize, deadline)
            .await
            .unwrap_or_else(|e| panic!("reading the stream: {e:#}"));
    // Anything beyond the committed rows would be a duplicate: give it a moment to show.
    let mut extra = sink
        .events("auditor", &token, Some(&events.last().unwrap().id))
        .await?;
    let mut all = events;
    while let Ok(Some(e)) = extra.next(Duration::from_secs(2)).await {
        all.push(e);
    }
    let (delivered, lost, duplicated) = count(&all, committed);
    println!(
        "connector deleted then Connect ({}) killed: committed={committed} delivered={delivered} lost={lost} duplicated={duplicated} \
         running again {:.1}s after the delete and {:.1}s after the kill (Connect restarted 2 s after it), reconnections={reconnects}",
        stack.connect_mode,
        back.as_secs_f64(),
        back_after_kill.as_secs_f64()
    );
    assert_eq!(lost, 0, "every committed row is delivered");
    let r = sink
        .admin(Method::DELETE, &format!("/v1/sources/{source}"))
        .send()
        .await?;
    ensure!(
        r.status() == 200,
        "deleting the source: {}",
        r.text().await?
    );
    std::fs::remove_dir_all(secret_dir)?;
    Ok(())
}

/// Waits (up to 20 s) until the sink's `/metrics` has every one of `lines`.
async fn metric_shows(sink: &SinkProcess, lines: &[&str]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = sink
            .admin(Method::GET, "/metrics")
            .send()
            .await?
            .text()
            .await?;
        if lines.iter().all(|l| text.lines().any(|t| t == *l)) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "/metrics never showed {lines:?}; it has:\n{}",
            text.lines()
                .filter(|l| l.contains("connect_reachable") || l.contains("connector_state"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
