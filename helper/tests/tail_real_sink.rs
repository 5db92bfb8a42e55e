//! `tumbleweed tail` against the real sink binary on the real local stack: it prints a
//! consumer's events as JSON or as coloured lines, starts after `--from`, follows the stream
//! through a sink restart without showing an event twice or skipping one, never moves the
//! consumer's acknowledged position, and says what to do when the token is missing or a ticket
//! has been used.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{run, sink_binary, stderr, stdout, tumbleweed};
use serde_json::{json, Value};
use tumbleweed_tests::sink::{create_topic, debezium_value, produce, SinkProcess};
use tumbleweed_tests::{stack, unique_suffix};

fn rows(from: usize, to: usize) -> Vec<(i32, Value, Option<Value>)> {
    (from..to)
        .map(|n| {
            (
                0,
                json!({"id": n}),
                Some(debezium_value(
                    if n % 3 == 2 { "u" } else { "c" },
                    Value::Null,
                    json!({"id": n, "name": format!("row-{n}")}),
                    n as i64,
                )),
            )
        })
        .collect()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_resumes_and_never_acks() {
    let stack = stack();
    let id = unique_suffix();
    let topic = format!("tail_{id}");
    create_topic(&stack.kafka_bootstrap, &topic, 1)
        .await
        .unwrap();
    produce(&stack.kafka_bootstrap, &topic, &rows(0, 5))
        .await
        .unwrap();
    let mut sink = SinkProcess::start(sink_binary().to_str().unwrap(), stack, &[])
        .await
        .unwrap();
    let token = sink
        .create_consumer(json!({"name": "watch", "topics": [topic], "start": "earliest"}))
        .await
        .unwrap();
    let tail = |extra: &[&str]| {
        let mut c = tumbleweed(None);
        c.args(["tail", "--sink-url", &sink.base, "--consumer", "watch"])
            .env("TUMBLEWEED_CONSUMER_TOKEN", &token)
            .env_remove("NO_COLOR")
            .args(extra);
        c
    };

    // JSON: every event with its id, in order.
    let o = run(&mut tail(&["--json", "--count", "5"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let all = json_lines(&stdout(&o));
    let offsets: Vec<i64> = all
        .iter()
        .map(|v| v["event"]["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
    assert_eq!(all[2]["event"]["after"]["name"], "row-2");

    // --from: after that event.
    let third = all[2]["id"].as_str().unwrap();
    let o = run(&mut tail(&["--json", "--count", "2", "--from", third]));
    assert!(o.status.success(), "{}", stderr(&o));
    let offsets: Vec<i64> = json_lines(&stdout(&o))
        .iter()
        .map(|v| v["event"]["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![3, 4]);

    // Pretty, coloured on request: op word, table and key on each line.
    let o = run(&mut tail(&["--count", "3", "--color", "always"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("\u{1b}[") && text.contains("insert") && text.contains("update"),
        "{text:?}"
    );
    assert!(text.contains(r#"key={"id":0}"#), "{text}");
    let o = run(&mut tail(&["--count", "1", "--color", "never"]));
    assert!(!stdout(&o).contains('\u{1b}'), "{:?}", stdout(&o));

    // Through a sink restart: the tail reconnects from its last id; nothing twice, nothing lost.
    let mut child = tail(&["--json", "--count", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let line = line.unwrap();
            tx.send(serde_json::from_str(&line).unwrap()).unwrap();
        }
    });
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(
            rx.recv_timeout(Duration::from_secs(30))
                .expect("the first five events"),
        );
    }
    sink.kill9().unwrap();
    produce(&stack.kafka_bootstrap, &topic, &rows(5, 10))
        .await
        .unwrap();
    sink.restart().await.unwrap();
    for _ in 0..5 {
        seen.push(
            rx.recv_timeout(Duration::from_secs(60))
                .expect("the events written while the sink was down"),
        );
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("reconnecting"), "it says it reconnects: {err}");
    let offsets: Vec<i64> = seen
        .iter()
        .map(|v| v["event"]["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());

    // Looking never moved the consumer's position.
    let detail: Value = sink
        .admin(reqwest::Method::GET, "/v1/consumers/watch")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["acked_at_ms"], Value::Null, "{detail}");

    // No token: one line naming the variable, exit 2.
    let o = run(tumbleweed(None)
        .args(["tail", "--sink-url", &sink.base, "--consumer", "watch"])
        .env_remove("TUMBLEWEED_CONSUMER_TOKEN"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("TUMBLEWEED_CONSUMER_TOKEN"),
        "{}",
        stderr(&o)
    );
    // A wrong token: the sink's answer, exit 1.
    let o = run(tumbleweed(None)
        .args(["tail", "--sink-url", &sink.base, "--consumer", "watch"])
        .env("TUMBLEWEED_CONSUMER_TOKEN", "wrong"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));

    // A ticket opens one stream: the second use is refused.
    let ticket: Value = sink
        .http
        .post(sink.url("/v1/consumers/watch/tickets"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = ticket["ticket"].as_str().expect("a ticket").to_string();
    let with_ticket = || {
        run(tumbleweed(None)
            .args(["tail", "--sink-url", &sink.base, "--consumer", "watch"])
            .args(["--ticket", &ticket, "--json", "--count", "1"])
            .env_remove("TUMBLEWEED_CONSUMER_TOKEN"))
    };
    let o = with_ticket();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&stdout(&o)).len(), 1);
    let o = with_ticket();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));
}
