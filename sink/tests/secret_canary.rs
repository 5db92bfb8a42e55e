//! No database password in the clear, anywhere: a source names its password by reference
//! (`password_secret`), and a canary password is then searched for in every place it could
//! leak to: Kafka Connect's REST answers, every record of every Kafka topic (Connect's config,
//! offset and status topics and the sink's own registries included), the sink's log and
//! Connect's log, and the sink's API answers. A plain `password` is refused unless the sink
//! allows it for local use.
//!
//! The search is shown able to fail: the same function finds a marker written on purpose into
//! a topic and into a captured row, and the searched answers and logs do name the source.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tumbleweed_tests::sink::SinkProcess;
use tumbleweed_tests::{eventually, repo_root, stack, unique_suffix, Stack};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

/// Every topic of the broker whose records (key, value or a header) contain `needle`, with
/// the number of such records.
fn topics_containing(bootstrap: &str, needle: &[u8]) -> Result<BTreeMap<String, usize>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("tw-canary-{}", unique_suffix()))
        .set("enable.auto.commit", "false")
        // Transactional topics too, aborted records included: nothing may hold the secret.
        .set("isolation.level", "read_uncommitted")
        .set("fetch.wait.max.ms", "10")
        .create()
        .context("creating the Kafka consumer")?;
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .context("listing the topics")?;
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(t.name(), p.id(), Duration::from_secs(10))
                .with_context(|| format!("watermarks of {}/{}", t.name(), p.id()))?;
            if high > low {
                ends.insert((t.name().to_string(), p.id()), high);
                tpl.add_partition_offset(t.name(), p.id(), Offset::Offset(low))?;
            }
        }
    }
    consumer.assign(&tpl)?;
    let contains =
        |b: Option<&[u8]>| b.is_some_and(|b| b.windows(needle.len()).any(|w| w == needle));
    let mut found = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !ends.is_empty() {
        ensure!(
            std::time::Instant::now() < deadline,
            "reading every topic took over 120 s; {} partitions left",
            ends.len()
        );
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            // The high watermark counts transaction markers and compacted-away offsets, which
            // are never delivered: a partition is done when the consumer's position reached it.
            for e in consumer.position()?.elements() {
                let key = (e.topic().to_string(), e.partition());
                if let (Offset::Offset(pos), Some(end)) = (e.offset(), ends.get(&key)) {
                    if pos >= *end {
                        ends.remove(&key);
                    }
                }
            }
            continue;
        };
        let msg = msg.context("reading a record")?;
        let hit = contains(msg.key())
            || contains(msg.payload())
            || msg
                .headers()
                .is_some_and(|h| h.iter().any(|h| contains(h.value)));
        if hit {
            *found.entry(msg.topic().to_string()).or_default() += 1;
        }
        let key = (msg.topic().to_string(), msg.partition());
        if ends.get(&key).is_some_and(|end| msg.offset() + 1 >= *end) {
            ends.remove(&key);
        }
    }
    Ok(found)
}

/// The answers of every Kafka Connect REST resource that describes `connector`, by path.
async fn connect_answers(stack: &Stack, connector: &str) -> Result<Vec<(String, String)>> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for path in [
        "/connectors".to_string(),
        "/connectors?expand=info&expand=status".into(),
        format!("/connectors/{connector}"),
        format!("/connectors/{connector}/config"),
        format!("/connectors/{connector}/status"),
        format!("/connectors/{connector}/tasks"),
        format!("/connectors/{connector}/tasks/0/status"),
        format!("/connectors/{connector}/topics"),
        format!("/connectors/{connector}/offsets"),
    ] {
        let r = http
            .get(format!("{}{path}", stack.connect_url))
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        ensure!(status.is_success(), "GET {path}: {status} {body}");
        out.push((path, body));
    }
    Ok(out)
}

/// The answers of the sink's API that describe sources, slots and health, by path.
async fn sink_answers(sink: &SinkProcess, source: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for path in [
        "/v1/sources".to_string(),
        format!("/v1/sources/{source}"),
        "/v1/slots".into(),
        "/v1/stats".into(),
        "/v1/topics".into(),
        "/v1/kafka/health".into(),
        "/metrics".into(),
    ] {
        let r = sink.admin(Method::GET, &path).send().await?;
        let status = r.status();
        let body = r.text().await?;
        ensure!(status.is_success(), "GET {path}: {status} {body}");
        out.push((path, body));
    }
    Ok(out)
}

fn leaks<'a>(answers: &'a [(String, String)], needle: &str) -> Vec<&'a str> {
    answers
        .iter()
        .filter(|(_, body)| body.contains(needle))
        .map(|(path, _)| path.as_str())
        .collect()
}

fn connect_log() -> PathBuf {
    let home = std::env::var_os("TW_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".local"));
    home.join("logs").join("connect.log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_password_appears_in_no_topic_log_or_answer() -> Result<()> {
    let stack = stack();
    let id = unique_suffix();
    let canary = format!("Canary-{id}-pw");
    let (name, db, role) = (
        format!("cn_{id}"),
        format!("canary_{id}"),
        format!("canary_{id}"),
    );
    let pg = stack.create_database(&db).await?;
    // The local stack trusts loopback, so the password is not checked, but it is what the
    // sink and Connect are given (a superuser, so that the grants do not matter here).
    let admin = stack.pg("postgres").await?;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{canary}'"
        ))
        .await?;
    pg.batch_execute("CREATE TABLE public.items (id int PRIMARY KEY, note text)")
        .await?;
    let dir = std::env::temp_dir().join(format!("tw-canary-{id}"));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("pg-password");
    std::fs::write(&file, format!("{canary}\n"))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;

    let sink = SinkProcess::start(SINK, stack, &[("--allow-plaintext-password", "false")]).await?;
    let body = |password: Value| {
        let mut b = json!({
            "name": name, "host": stack.pg_host, "port": stack.pg_port, "database": db,
            "user": role, "tables": ["public.items"], "heartbeat_interval_s": 0,
        });
        b.as_object_mut()
            .unwrap()
            .extend(password.as_object().unwrap().clone());
        b
    };

    // A plain password is refused, and named in the error as the field to change.
    let r = sink
        .admin(Method::POST, "/v1/sources")
        .json(&body(json!({"password": canary})))
        .send()
        .await?;
    let (status, refusal) = (r.status(), r.text().await?);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refusal}");
    let refusal: Value = serde_json::from_str(&refusal)?;
    assert_eq!(refusal["field"], json!("password"), "{refusal}");
    assert!(refusal["error"]
        .as_str()
        .unwrap()
        .contains("password_secret"));

    // A reference may name only source secrets: no other variable of the sink, no file
    // outside its secrets directory (either would be sent to the database as a password).
    for reference in ["env:TUMBLEWEED_ADMIN_TOKEN", "file:/etc/hostname"] {
        let r = sink
            .admin(Method::POST, "/v1/sources")
            .json(&body(json!({ "password_secret": reference })))
            .send()
            .await?;
        let (status, text) = (r.status(), r.text().await?);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reference}: {text}");
        let e: Value = serde_json::from_str(&text)?;
        assert_eq!(e["field"], json!("password_secret"), "{e}");
    }

    // By reference it is accepted, and the connector streams.
    let r = sink
        .admin(Method::POST, "/v1/sources")
        .json(&body(
            json!({"password_secret": format!("file:{}", file.display())}),
        ))
        .send()
        .await?;
    let (status, created) = (r.status(), r.text().await?);
    assert_eq!(status, StatusCode::CREATED, "{created}");
    pg.batch_execute("INSERT INTO public.items VALUES (1, 'first')")
        .await?;
    let topic = format!("{name}.public.items");
    sink.wait_topic(&topic, Duration::from_secs(60)).await?;
    let connector = format!("tumbleweed-{name}");
    eventually(
        "the connector's task to run",
        Duration::from_secs(60),
        || async {
            let status: Value = reqwest::get(format!(
                "{}/connectors/{connector}/status",
                stack.connect_url
            ))
            .await?
            .json()
            .await?;
            Ok((status["tasks"][0]["state"] == json!("RUNNING")).then_some(()))
        },
    )
    .await?;

    // Everywhere the password could have gone.
    let mut answers = connect_answers(stack, &connector).await?;
    let config = &answers
        .iter()
        .find(|(p, _)| p.ends_with("/config"))
        .context("config answer")?
        .1;
    // What Connect holds is the placeholder its DirectoryConfigProvider resolves.
    assert!(
        config.contains(&format!("${{dir:{}:pg-password}}", dir.display())),
        "{config}"
    );
    answers.extend(sink_answers(&sink, &name).await?);
    answers.push(("POST /v1/sources (refused)".into(), refusal.to_string()));
    answers.push(("POST /v1/sources".into(), created));
    assert_eq!(leaks(&answers, &canary), Vec::<&str>::new());
    let in_topics = topics_containing(&stack.kafka_bootstrap, canary.as_bytes())?;
    assert!(
        in_topics.is_empty(),
        "the canary is in topics {in_topics:?}"
    );
    let sink_log = sink.log_text();
    assert!(
        sink_log.contains(&name),
        "the sink's log is empty: {sink_log}"
    );
    assert!(
        !sink_log.contains(&canary),
        "the canary is in the sink's log"
    );
    let connect_log = std::fs::read_to_string(connect_log())
        .with_context(|| format!("reading {}", connect_log().display()))?;
    assert!(
        connect_log.contains(&connector),
        "Connect's log does not mention {connector}: wrong file?"
    );
    assert!(
        !connect_log.contains(&canary),
        "the canary is in Connect's log"
    );

    // The same searches find a marker that is there on purpose.
    let marker = format!("Marker-{id}");
    let marker_topic = format!("_tw_test_marker_{id}");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()?;
    producer
        .send(
            FutureRecord::to(&marker_topic)
                .key("k")
                .payload(&format!("{{\"note\":\"{marker}\"}}")),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)?;
    let found = topics_containing(&stack.kafka_bootstrap, marker.as_bytes())?;
    assert_eq!(found.get(&marker_topic), Some(&1), "{found:?}");
    pg.batch_execute(&format!("INSERT INTO public.items VALUES (2, '{marker}')"))
        .await?;
    eventually(
        "the marker row in the topic",
        Duration::from_secs(60),
        || async {
            Ok(
                topics_containing(&stack.kafka_bootstrap, marker.as_bytes())?
                    .contains_key(&topic)
                    .then_some(()),
            )
        },
    )
    .await?;
    // The answers searched above do describe this source: its role name is in them.
    assert!(
        leaks(&answers, &role).len() >= 3,
        "{:?}",
        leaks(&answers, &role)
    );

    let r = sink
        .admin(Method::DELETE, &format!("/v1/sources/{name}"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await?);
    drop(pg);
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await?;
    admin.batch_execute(&format!("DROP ROLE {role}")).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
