//! Consumer filters and projections on the real stack: PostgreSQL → Debezium in Kafka Connect →
//! broker → sink → SSE. A row predicate written over `after` delivers the rows moving into and
//! out of it and the delete of a matching row; projected columns never leave the sink; bad
//! filters are refused with the field and position; a stream whose last events were all
//! filtered out still moves its cursor past them.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tumbleweed_tests::sink::{SinkProcess, SseStream};
use tumbleweed_tests::{read_records, stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

async fn post_consumer(sink: &SinkProcess, body: Value) -> Result<(u16, Value)> {
    let r = sink
        .admin(Method::POST, "/v1/consumers")
        .json(&body)
        .send()
        .await?;
    Ok((r.status().as_u16(), r.json().await?))
}

/// Reads a raw stream for frames that carry an `id:` and no `data:` (the cursor moved past
/// filtered-out events) and returns the last one seen, a second after the first.
async fn id_only_frame(req: reqwest::RequestBuilder, timeout: Duration) -> Result<String> {
    let mut body = req.send().await?.bytes_stream();
    let mut text = String::new();
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut found = None;
    loop {
        let last = text.split("\n\n").filter_map(|frame| {
            let lines: Vec<&str> = frame.lines().collect();
            match lines[..] {
                [only] => only.strip_prefix("id: "),
                _ => None,
            }
        });
        if let Some(id) = last.last() {
            if found.is_none() {
                deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            }
            found = Some(id.to_string());
        }
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk?)),
            Ok(None) => bail!("the stream ended without an id-only frame: {text}"),
            Err(_) => return found.with_context(|| format!("no id-only frame; read: {text}")),
        }
    }
}

/// A consumer's acknowledged offset of each partition of `topic`.
async fn acked(sink: &SinkProcess, name: &str, topic: &str) -> Result<Vec<i64>> {
    let v: Value = sink
        .admin(Method::GET, &format!("/v1/consumers/{name}"))
        .send()
        .await?
        .json()
        .await?;
    v["acked_offsets"][topic]
        .as_array()
        .context("acked_offsets")?
        .iter()
        .map(|o| o.as_i64().context("an acked offset"))
        .collect()
}

async fn ack(sink: &SinkProcess, name: &str, token: &str, cursor: &str) -> Result<()> {
    let r = sink
        .http
        .post(sink.url(&format!("/v1/consumers/{name}/ack")))
        .bearer_auth(token)
        .json(&json!({ "cursor": cursor }))
        .send()
        .await?;
    ensure!(r.status().is_success(), "ack: {}", r.text().await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_follow_rows_in_and_out_and_projections_hide_columns() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let (db, source) = (format!("flt_{id}"), format!("flt_{id}"));
    let pg = stack.create_database(&db).await?;
    pg.batch_execute(
        "CREATE TABLE public.orders (id int PRIMARY KEY, status text NOT NULL,
             amount_cents int NOT NULL, email text);
         ALTER TABLE public.orders REPLICA IDENTITY FULL;
         INSERT INTO public.orders VALUES (1, 'paid', 5000, 'one@example.com');",
    )
    .await?;
    let sink = SinkProcess::start(SINK, stack, &[]).await?;
    let r = sink
        .admin(Method::POST, "/v1/sources")
        .json(&json!({
            "name": source, "host": stack.pg_host, "port": stack.pg_port, "database": db,
            "user": "postgres", "password": "x", "tables": ["public.orders"],
            "heartbeat_interval_s": 0,
        }))
        .send()
        .await?;
    ensure!(r.status() == 201, "source: {}", r.text().await?);
    let topic = format!("{source}.public.orders");
    sink.wait_topic(&topic, Duration::from_secs(60)).await?;

    // Refused at creation, naming the field (and where the predicate breaks).
    let (status, body) = post_consumer(
        &sink,
        json!({"name": "bad", "topics": [topic], "filters": {&topic: {"where": "after.status == "}}}),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], json!(format!("filters.{topic}.where")));
    assert_eq!(body["position"], json!({"line": 1, "column": 17}), "{body}");
    // The snapshot row makes the table's columns and types known.
    let (status, body) = post_consumer(
        &sink,
        json!({"name": "bad", "topics": [topic], "filters": {"*": {"exclude_columns": ["emial"]}}}),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], json!("filters.*.exclude_columns"));
    assert!(
        body["error"].as_str().unwrap().contains("\"emial\""),
        "{body}"
    );
    let (status, body) = post_consumer(
        &sink,
        json!({"name": "bad", "topics": [topic], "filters": {"*": {"where": "after.status > 3"}}}),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("type error"),
        "{body}"
    );
    let (status, body) = post_consumer(
        &sink,
        json!({"name": "bad", "topics": [topic], "filters": {"other.topic": {"ops": ["c"]}}}),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], json!("filters.other.topic"));

    // The editor's preview: the server's parser, then the filter run on recent events.
    let preview = |filter: Value| {
        sink.admin(Method::POST, "/v1/filters/preview")
            .json(&json!({"topic": topic, "filter": filter}))
            .send()
    };
    let r = preview(json!({"where": "after.status == 'paid' &&"})).await?;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await?;
    assert_eq!(
        body["field"],
        json!(format!("filters.{topic}.where")),
        "{body}"
    );
    assert!(body["position"]["column"].as_u64().unwrap() > 20, "{body}");
    let body: Value = preview(json!({"where": "after.amount_cents > 1000", "columns": ["id"]}))
        .await?
        .json()
        .await?;
    assert_eq!(body["checked"], json!(1), "{body}");
    assert_eq!(body["delivered"], json!(1), "{body}");
    assert_eq!(
        body["events"][0]["event"]["after"],
        json!({"id": 1}),
        "{body}"
    );
    let body: Value = preview(json!({"where": "after.status == 'open'"}))
        .await?
        .json()
        .await?;
    assert_eq!(body["delivered"], json!(0), "{body}");
    assert_eq!(body["events"][0]["delivered"], json!(false), "{body}");

    let filters = json!({&topic: {
        "where": "after.status == 'paid' && after.amount_cents > 1000",
        "exclude_columns": ["email"],
    }});
    let token = sink
        .create_consumer(
            json!({"name": "paid", "topics": [topic], "start": "earliest",
            "filters": filters}),
        )
        .await?;
    let v: Value = sink
        .admin(Method::GET, "/v1/consumers/paid")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(v["filters"], filters, "the filter is part of the consumer");

    pg.batch_execute(
        "INSERT INTO public.orders VALUES (2, 'open', 5000, 'two@example.com');
         INSERT INTO public.orders VALUES (3, 'paid', 10, 'three@example.com');
         UPDATE public.orders SET status = 'paid' WHERE id = 2;
         UPDATE public.orders SET status = 'refunded' WHERE id = 1;
         UPDATE public.orders SET amount_cents = 20 WHERE id = 3;
         DELETE FROM public.orders WHERE id = 2;
         INSERT INTO public.orders VALUES (4, 'paid', 9000, 'four@example.com');",
    )
    .await?;
    let mut s = sink.events("paid", &token, None).await?;
    let got = s.take(5, Duration::from_secs(60)).await?;
    let summary: Vec<(String, Value, Value)> = got
        .iter()
        .map(|e| {
            let d = &e.data;
            let row = |v: &Value| v.get("id").cloned().unwrap_or(Value::Null);
            (
                d["op"].as_str().unwrap().to_string(),
                row(&d["before"]),
                row(&d["after"]),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("r".into(), Value::Null, json!(1)), // snapshot: matches
            ("u".into(), json!(2), json!(2)),    // moves in
            ("u".into(), json!(1), json!(1)),    // moves out
            ("d".into(), json!(2), Value::Null), // a matching row deleted
            ("c".into(), Value::Null, json!(4)),
        ],
        "inserts of 2 and 3 and the update of 3 never matched"
    );
    assert_eq!(got[2].data["before"]["status"], json!("paid"));
    assert_eq!(
        got[2].data["after"]["status"],
        json!("refunded"),
        "the real after"
    );
    for e in &got {
        let text = e.data.to_string();
        assert!(
            !text.contains("example.com"),
            "email projected away: {text}"
        );
        assert!(e.data["key"]["id"].is_i64(), "the key is kept: {text}");
    }
    // Nothing else is delivered: a newer matching row comes next, not a filtered one.
    drop(s);

    // Filtered-out events move the cursor: after two non-matching inserts, the stream writes
    // an id-only frame, and acknowledging it covers them.
    let last = got[4].id.clone();
    pg.batch_execute(
        "INSERT INTO public.orders VALUES (5, 'open', 1, NULL);
         INSERT INTO public.orders VALUES (6, 'open', 1, NULL);",
    )
    .await?;
    let req = sink
        .http
        .get(sink.url("/v1/consumers/paid/events"))
        .bearer_auth(&token)
        .header("Last-Event-ID", &last);
    let moved = id_only_frame(req, Duration::from_secs(60)).await?;
    // The last record's offset + 1 (the broker's end offset can be past it: Connect writes
    // transactionally, and each commit marker takes an offset of its own).
    let records = read_records(&stack.kafka_bootstrap, &topic, 10, Duration::from_secs(30)).await?;
    let end = vec![records.last().context("records")?.offset + 1];
    ack(&sink, "paid", &token, &last).await?;
    let at_last_event = acked(&sink, "paid", &topic).await?;
    assert!(
        at_last_event.iter().sum::<i64>() + 2 <= end.iter().sum::<i64>(),
        "{at_last_event:?} {end:?}"
    );
    ack(&sink, "paid", &token, &moved).await?;
    assert_eq!(
        acked(&sink, "paid", &topic).await?,
        end,
        "the id-only cursor is past every filtered event"
    );
    // A resume from it delivers the next match.
    let mut s = sink.events("paid", &token, Some(&moved)).await?;
    pg.batch_execute("INSERT INTO public.orders VALUES (7, 'paid', 2000, 'x@example.com');")
        .await?;
    let next = s.take(1, Duration::from_secs(60)).await?;
    assert_eq!(
        next[0].data["after"],
        json!({"id": 7, "status": "paid", "amount_cents": 2000})
    );
    drop(s);

    // Per-topic ops with a column list, on the same topic, for a second consumer.
    let token = sink
        .create_consumer(
            json!({"name": "deletes", "topics": [topic], "start": "earliest",
            "filters": {"*": {"ops": ["d"], "columns": ["id"]}}}),
        )
        .await?;
    let mut s: SseStream = sink.events("deletes", &token, None).await?;
    let d = s.take(1, Duration::from_secs(60)).await?;
    assert_eq!(d[0].data["op"], json!("d"));
    assert_eq!(d[0].data["before"], json!({"id": 2}));

    let r = sink
        .admin(Method::DELETE, &format!("/v1/sources/{source}"))
        .send()
        .await?;
    ensure!(
        r.status().is_success(),
        "delete source: {}",
        r.text().await?
    );
    Ok(())
}
