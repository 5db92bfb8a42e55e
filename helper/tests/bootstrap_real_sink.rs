//! `tumbleweed bootstrap` against the real sink binary on the real local stack: a source on a
//! fresh PostgreSQL database and a consumer are created, a second run changes nothing, a
//! changed declaration is reported as drift and left alone, and an unreachable sink is one
//! clear line.

mod common;

use std::path::Path;

use common::{run, sink_binary, stderr, stdout, tumbleweed};
use serde_json::json;
use tumbleweed_tests::sink::{create_topic, SinkProcess, ADMIN_TOKEN};
use tumbleweed_tests::{stack, unique_suffix};

fn bootstrap(url: &str, file: &Path, extra: &[&str]) -> std::process::Output {
    run(tumbleweed(None)
        .args(["bootstrap", "--file"])
        .arg(file)
        .args(["--sink-url", url, "--wait-timeout", "30"])
        .env("TUMBLEWEED_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PG_PASSWORD", "very-secret-pw")
        .args(extra))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_creates_then_changes_nothing_then_reports_drift() {
    let stack = stack();
    let id = unique_suffix();
    let db = format!("bootstrap_{id}");
    let source = format!("bs_{id}");
    let pg = stack.create_database(&db).await.unwrap();
    pg.batch_execute("CREATE TABLE public.orders (id int PRIMARY KEY, item text)")
        .await
        .unwrap();
    // The consumer's topic exists before bootstrap (a source's topic appears with its
    // first event, so a pipeline file would normally name topics that already carry data).
    let topic = format!("bootstrap_topic_{id}");
    create_topic(&stack.kafka_bootstrap, &topic, 1)
        .await
        .unwrap();
    let sink = SinkProcess::start(sink_binary().to_str().unwrap(), stack, &[])
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.json");
    let pipeline = |tables: &[&str]| {
        json!({
            "sources": [{"name": source, "host": stack.pg_host, "port": stack.pg_port,
                         "database": db, "user": "postgres", "password": "${PG_PASSWORD}",
                         "tables": tables, "mode": "tables", "heartbeat_interval_s": 5}],
            "consumers": [
                {"name": format!("billing-{id}"), "topics": [topic], "start": "earliest"},
                {"name": format!("paid-{id}"), "topics": [topic], "filters": {"*": {
                    "ops": ["c", "u"], "where": "after.status == 'paid'", "columns": ["id", "status"]}}},
            ],
        })
        .to_string()
    };
    std::fs::write(&file, pipeline(&["public.orders"])).unwrap();
    let tokens = dir.path().join("tokens.json");

    let o = bootstrap(
        &sink.base,
        &file,
        &["--tokens-out", tokens.to_str().unwrap()],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    assert!(out.contains(&format!("source {source}: created")), "{out}");
    assert!(
        out.contains(&format!("consumer billing-{id}: created")),
        "{out}"
    );
    assert!(!out.contains("very-secret-pw") && !stderr(&o).contains("very-secret-pw"));
    // The sink really has them, and the saved token opens the consumer's stream.
    let r = sink
        .admin(reqwest::Method::GET, &format!("/v1/sources/{source}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The filtered consumer has its filter as declared (the second run below compares it).
    let v: serde_json::Value = sink
        .admin(reqwest::Method::GET, &format!("/v1/consumers/paid-{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["filters"]["*"]["where"],
        json!("after.status == 'paid'"),
        "{v}"
    );
    assert_eq!(v["filters"]["*"]["columns"], json!(["id", "status"]), "{v}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tokens).unwrap()).unwrap();
    let token = saved[format!("billing-{id}")].as_str().unwrap().to_string();
    sink.events(&format!("billing-{id}"), &token, None)
        .await
        .expect("the bootstrapped token opens the stream");

    // Second run: nothing to do.
    let o = bootstrap(&sink.base, &file, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to do"), "{}", stdout(&o));

    // A changed declaration is drift: reported by field, exit 1, nothing replaced.
    std::fs::write(&file, pipeline(&["public.orders", "public.other"])).unwrap();
    let o = bootstrap(&sink.base, &file, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("differs (tables)"), "{}", stdout(&o));
    let v: serde_json::Value = sink
        .admin(reqwest::Method::GET, &format!("/v1/sources/{source}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tables"], json!(["public.orders"]), "left as is");

    // Clean up the source (slot and publication).
    let r = sink
        .admin(reqwest::Method::DELETE, &format!("/v1/sources/{source}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

#[test]
fn unreachable_sink_times_out_with_one_line() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.json");
    std::fs::write(&file, r#"{"sources": [], "consumers": []}"#).unwrap();
    let o = run(tumbleweed(None)
        .args(["bootstrap", "--file"])
        .arg(&file)
        .args([
            "--sink-url",
            &format!("http://127.0.0.1:{port}"),
            "--wait-timeout",
            "2",
        ])
        .env("TUMBLEWEED_ADMIN_TOKEN", ADMIN_TOKEN));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("healthz") || err.contains("healthy"), "{err}");
}
