//! The local stack is durable, like the production one: after `scripts/stack down` and
//! `scripts/stack up`, the topics and their records, the consumer registry, a consumer's
//! acknowledged position and the source connector with its offsets are all still there, and
//! the rows written while everything was stopped are delivered once each.
//!
//! One test in this file on purpose: the whole stack stops, and cargo runs test files one after
//! another, so no other test sees the outage.

use std::time::Duration;

use anyhow::{ensure, Result};
use reqwest::Method;
use serde_json::json;
use tumbleweed_tests::sink::SinkProcess;
use tumbleweed_tests::{stack, stack_command, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");
const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_stack_down_and_up() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let db = format!("durable_{id}");
    let source = format!("durable_{id}");
    let registry = format!("_tw_test_consumers_durable_{id}");
    let pg = stack.create_database(&db).await?;
    pg.batch_execute("CREATE TABLE public.notes (id int PRIMARY KEY, body text NOT NULL)")
        .await?;
    let mut sink = SinkProcess::start(SINK, stack, &[("--consumers-topic", &registry)]).await?;
    let r = sink
        .admin(Method::POST, "/v1/sources")
        .json(&json!({
            "name": source, "host": stack.pg_host, "port": stack.pg_port, "database": db,
            "user": "postgres", "password": "unused-with-trust", "tables": ["public.notes"],
            "heartbeat_interval_s": 1, "snapshot_mode": "no_data",
        }))
        .send()
        .await?;
    ensure!(
        r.status() == 201,
        "creating the source: {}",
        r.text().await?
    );
    let topic = format!("{source}.public.notes");

    // Rows 1..=5 before the restart; the consumer reads them and acknowledges row 3.
    for i in 1..=5 {
        pg.execute("INSERT INTO public.notes VALUES ($1, 'before')", &[&i])
            .await?;
    }
    sink.wait_topic(&topic, T).await?;
    let token = sink
        .create_consumer(json!({"name": "keeper", "topics": [topic], "start": "earliest"}))
        .await?;
    let mut s = sink.events("keeper", &token, None).await?;
    let first = s.take(5, T).await?;
    drop(s);
    let r = sink
        .http
        .post(sink.url("/v1/consumers/keeper/ack"))
        .bearer_auth(&token)
        .json(&json!({"cursor": first[2].id}))
        .send()
        .await?;
    ensure!(r.status() == 200, "ack: {}", r.text().await?);

    // Everything stops; rows 6..=8 are committed while Kafka and Connect are down.
    sink.terminate()?;
    drop(pg);
    tokio::task::spawn_blocking(|| stack_command(&["down"])).await??;
    tokio::task::spawn_blocking(|| stack_command(&["up"])).await??;
    let pg = stack.pg(&db).await?;
    for i in 6..=8 {
        pg.execute("INSERT INTO public.notes VALUES ($1, 'during')", &[&i])
            .await?;
    }

    // The connector is back on its own (its config and offsets live in Kafka).
    let connectors = stack.connect().list().await?;
    assert!(
        connectors.iter().any(|c| c.contains(&source)),
        "connector survived: {connectors:?}"
    );
    // A new sink on the same registry knows the consumer and resumes after the ack.
    let sink = SinkProcess::start(SINK, stack, &[("--consumers-topic", &registry)]).await?;
    let mut s = sink.events("keeper", &token, None).await?;
    let rest = s.take(5, T).await?;
    let ids: Vec<i64> = rest
        .iter()
        .map(|e| e.data["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![4, 5, 6, 7, 8],
        "after the ack of row 3, each row once"
    );
    assert!(
        s.next(Duration::from_secs(2)).await.is_err(),
        "nothing is delivered twice"
    );
    let r = sink
        .admin(Method::DELETE, &format!("/v1/sources/{source}"))
        .send()
        .await?;
    ensure!(
        r.status().is_success(),
        "deleting the source: {}",
        r.text().await?
    );
    Ok(())
}
