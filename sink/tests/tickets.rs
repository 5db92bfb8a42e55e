//! Stream tickets instead of long-lived tokens in URLs, against the real broker and sink:
//! `?token=` is refused unless the operator allows it; a ticket (asked for with the token in
//! the header) opens exactly one stream, within its lifetime, for its own consumer, through
//! any replica. (Reported: EventSource clients put the consumer token in `?token=`, so it
//! landed in load-balancer access logs and browser history, valid until the consumer is
//! deleted.)

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use tumbleweed_tests::sink::{create_topic, debezium_value, produce, SinkProcess, SseStream};
use tumbleweed_tests::{stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");
const T: Duration = Duration::from_secs(30);

async fn ticket(sink: &SinkProcess, consumer: &str, token: &str) -> Result<Value> {
    let r = sink
        .http
        .post(sink.url(&format!("/v1/consumers/{consumer}/tickets")))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(
        r.status() == 201,
        "ticket: {} {}",
        r.status(),
        r.text().await?
    );
    Ok(r.json().await?)
}

async fn status_and_error(sink: &SinkProcess, path: &str) -> Result<(u16, String)> {
    let r = sink.http.get(sink.url(path)).send().await?;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    Ok((status, body["error"].as_str().unwrap_or("").to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_open_one_stream_and_query_tokens_are_off() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let topic = format!("tickets_{id}");
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    produce(
        &stack.kafka_bootstrap,
        &topic,
        &[(
            0,
            json!({"id": 1}),
            Some(debezium_value("c", Value::Null, json!({"id": 1}), 1)),
        )],
    )
    .await?;
    let registry = format!("_tw_test_consumers_{id}");
    let shared = [
        ("--consumers-topic", registry.as_str()),
        ("--ticket-ttl-secs", "2"),
    ];
    let a = SinkProcess::start(SINK, stack, &shared).await?;
    let b = SinkProcess::start(SINK, stack, &shared).await?;
    let token = a
        .create_consumer(json!({"name": "browser", "topics": [topic], "start": "earliest"}))
        .await?;
    let other = a
        .create_consumer(json!({"name": "other", "topics": [topic]}))
        .await?;

    // ?token= is off by default, and says what to do instead.
    let (status, error) =
        status_and_error(&a, &format!("/v1/consumers/browser/events?token={token}")).await?;
    assert_eq!(status, 401);
    assert!(
        error.contains("?ticket=") && error.contains("TUMBLEWEED_ALLOW_QUERY_TOKEN"),
        "{error}"
    );
    // A ticket is not issued for a token in the URL either.
    let r = a
        .http
        .post(a.url(&format!("/v1/consumers/browser/tickets?token={token}")))
        .send()
        .await?;
    assert_eq!(r.status(), 401);

    // A ticket from replica A opens one stream on replica B.
    let t = ticket(&a, "browser", &token).await?;
    let path = t["events_path"].as_str().unwrap().to_string();
    assert!(
        path.starts_with("/v1/consumers/browser/events?ticket=twt_"),
        "{path}"
    );
    assert!(t["expires_at_ms"].as_u64().is_some());
    let mut s = SseStream::open(b.http.get(b.url(&path))).await?;
    let got = s.take(1, T).await?;
    assert_eq!(got[0].data["after"]["id"], json!(1));
    // Used: not again, on either replica.
    for sink in [&a, &b] {
        let (status, error) = status_and_error(sink, &path).await?;
        assert_eq!(status, 401, "a used ticket");
        assert!(error.contains("already used"), "{error}");
    }
    // For its own consumer only.
    let t = ticket(&a, "other", &other).await?;
    let stolen = t["events_path"]
        .as_str()
        .unwrap()
        .replace("/consumers/other/", "/consumers/browser/");
    assert_eq!(status_and_error(&a, &stolen).await?.0, 401);
    // Within its lifetime only.
    let t = ticket(&a, "browser", &token).await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        status_and_error(&a, t["events_path"].as_str().unwrap())
            .await?
            .0,
        401,
        "an expired ticket"
    );
    // The header keeps working, and an operator can turn ?token= back on.
    drop(s);
    let mut s = a.events("browser", &token, None).await?;
    s.take(1, T).await?;
    let c = SinkProcess::start(
        SINK,
        stack,
        &[
            ("--consumers-topic", registry.as_str()),
            ("--allow-query-token", "true"),
        ],
    )
    .await?;
    let mut s = SseStream::open(
        c.http
            .get(c.url(&format!("/v1/consumers/browser/events?token={token}"))),
    )
    .await?;
    s.take(1, T).await?;
    Ok(())
}
