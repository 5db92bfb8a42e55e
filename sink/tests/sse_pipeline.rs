//! The whole product path on the real local stack, driven only through the sink's API:
//! PostgreSQL → (source created with `POST /v1/sources`) Debezium in Kafka Connect → broker →
//! sink → an SSE consumer. Then the source is deleted and its slot must be gone.

use std::time::Duration;

use anyhow::{ensure, Result};
use reqwest::Method;
use serde_json::{json, Value};
use tumbleweed_tests::sink::SinkProcess;
use tumbleweed_tests::{slot_active, stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_changes_reach_an_sse_consumer_through_a_source_created_by_the_api() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let db = format!("e2e_{id}");
    let source = format!("e2e_{id}");
    let pg = stack.create_database(&db).await?;
    pg.batch_execute(
        "CREATE TABLE public.orders (id int PRIMARY KEY, item text NOT NULL, qty int NOT NULL);
         ALTER TABLE public.orders REPLICA IDENTITY FULL;
         INSERT INTO public.orders VALUES (1, 'lamp', 1);",
    )
    .await?;
    let sink = SinkProcess::start(SINK, stack, &[]).await?;

    let r = sink
        .admin(Method::POST, "/v1/sources")
        .json(&json!({
            "name": source, "host": stack.pg_host, "port": stack.pg_port, "database": db,
            "user": "postgres", "password": "secret-not-echoed", "tables": ["public.orders"],
            "heartbeat_interval_s": 1,
        }))
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    ensure!(status == 201, "creating the source: {status}: {body}");
    assert!(
        !body.to_string().contains("secret-not-echoed"),
        "password never returned"
    );

    // The snapshot of the existing row creates the topic.
    let topic = format!("{source}.public.orders");
    sink.wait_topic(&topic, Duration::from_secs(60)).await?;
    let token = sink
        .create_consumer(json!({"name": "orders", "topics": [topic], "start": "earliest"}))
        .await?;
    let mut s = sink.events("orders", &token, None).await?;
    let snapshot = s.take(1, Duration::from_secs(30)).await?;
    assert_eq!(snapshot[0].data["op"], "r");
    assert_eq!(
        snapshot[0].data["after"],
        json!({"id": 1, "item": "lamp", "qty": 1})
    );

    pg.batch_execute("INSERT INTO public.orders VALUES (2, 'desk', 1)")
        .await?;
    pg.batch_execute("UPDATE public.orders SET qty = 3 WHERE id = 1")
        .await?;
    pg.batch_execute("DELETE FROM public.orders WHERE id = 2")
        .await?;
    let got = s.take(3, Duration::from_secs(30)).await?;
    let summary: Vec<(String, Value, Value)> = got
        .iter()
        .map(|e| {
            (
                e.data["op"].as_str().unwrap().to_string(),
                e.data["before"].clone(),
                e.data["after"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "c".into(),
                Value::Null,
                json!({"id": 2, "item": "desk", "qty": 1})
            ),
            (
                "u".into(),
                json!({"id": 1, "item": "lamp", "qty": 1}),
                json!({"id": 1, "item": "lamp", "qty": 3})
            ),
            (
                "d".into(),
                json!({"id": 2, "item": "desk", "qty": 1}),
                Value::Null
            ),
        ]
    );
    for e in &got {
        assert_eq!(e.data["table"], "public.orders");
        assert!(e.data["source"]["lsn"].as_i64().unwrap() > 0);
        assert!(e.data["source"]["txId"].as_i64().is_some());
    }
    drop(s);

    // Deleting the source removes the connector, the slot and the publication.
    let slot = format!("tw_local_{source}");
    let r = sink
        .admin(Method::DELETE, &format!("/v1/sources/{source}"))
        .send()
        .await?;
    ensure!(
        r.status().is_success(),
        "delete: {} {}",
        r.status(),
        r.text().await?
    );
    assert_eq!(slot_active(&pg, &slot).await?, None, "slot {slot} dropped");
    let publications = pg
        .query("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&slot])
        .await?;
    assert!(publications.is_empty(), "publication dropped");

    // The same name can be used again: the old connector's WAL position was forgotten, so the
    // new source starts from a fresh snapshot instead of failing on the dropped slot.
    let r = sink
        .admin(Method::POST, "/v1/sources")
        .json(&json!({
            "name": source, "host": stack.pg_host, "port": stack.pg_port, "database": db,
            "user": "postgres", "password": "x", "tables": ["public.orders"],
        }))
        .send()
        .await?;
    let status = r.status();
    ensure!(
        status == 201,
        "re-creating the source: {status}: {}",
        r.text().await?
    );
    let r = sink
        .admin(Method::DELETE, &format!("/v1/sources/{source}"))
        .send()
        .await?;
    ensure!(r.status().is_success(), "second delete: {}", r.status());
    Ok(())
}
