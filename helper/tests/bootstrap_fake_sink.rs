//! `tumbleweed bootstrap` client flow against a stand-in for the sink's API (fixed answers
//! per path). The end-to-end test against the real sink comes once the sink exists.

mod common;

use common::{run, serve_json, stderr, stdout, tumbleweed};

const PIPELINE: &str = r#"
sources:
  - name: pg-main
    host: db.internal
    database: app
    user: debezium
    password: ${PG_PASSWORD}
    tables: [public.orders, public.items]
    mode: tables
consumers:
  - name: billing
    topics: [pg-main.public.orders]
    start: earliest
"#;

fn bootstrap(port: u16, dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, PIPELINE).unwrap();
    run(tumbleweed(None)
        .args(["bootstrap", "--file"])
        .arg(&file)
        .args([
            "--sink-url",
            &format!("http://127.0.0.1:{port}"),
            "--wait-timeout",
            "10",
        ])
        .env("TUMBLEWEED_ADMIN_TOKEN", "admin")
        .env("PG_PASSWORD", "very-secret-pw")
        .args(extra))
}

#[test]
fn creates_missing_entries_and_saves_tokens_privately() {
    let port = serve_json(vec![
        ("/healthz", 200, "{}".into()),
        ("/v1/sources", 201, "{}".into()),
        ("/v1/consumers", 201, r#"{"token":"tok-billing-1"}"#.into()),
    ]);
    let d = tempfile::tempdir().unwrap();
    let tokens = d.path().join("tokens.json");
    let o = bootstrap(port, d.path(), &["--tokens-out", tokens.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains("source pg-main: created") && out.contains("consumer billing: created"),
        "{out}"
    );
    assert!(!out.contains("very-secret-pw") && !stderr(&o).contains("very-secret-pw"));
    assert!(
        !out.contains("tok-billing-1"),
        "token goes to the file only"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tokens).unwrap()).unwrap();
    assert_eq!(saved["billing"], "tok-billing-1");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn matching_entries_mean_nothing_to_do() {
    let port = serve_json(vec![
        ("/healthz", 200, "{}".into()),
        (
            "/v1/sources/pg-main",
            200,
            r#"{"name":"pg-main","host":"db.internal","port":5432,"database":"app","user":"debezium","tables":["public.items","public.orders"],"mode":"tables","heartbeat_interval_s":10}"#.into(),
        ),
        ("/v1/consumers/billing", 200, r#"{"name":"billing","topics":["pg-main.public.orders"],"start":"earliest","ops":["c","u","d"]}"#.into()),
    ]);
    let d = tempfile::tempdir().unwrap();
    let o = bootstrap(port, d.path(), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("nothing to do"));
}

#[test]
fn drift_is_reported_by_field_and_not_replaced() {
    let port = serve_json(vec![
        ("/healthz", 200, "{}".into()),
        (
            "/v1/sources/pg-main",
            200,
            r#"{"name":"pg-main","host":"db.other","port":5432,"database":"app","user":"debezium","tables":["public.orders"],"mode":"tables"}"#.into(),
        ),
        ("/v1/consumers/billing", 200, r#"{"name":"billing","topics":["pg-main.public.orders"],"start":"earliest"}"#.into()),
    ]);
    let d = tempfile::tempdir().unwrap();
    let o = bootstrap(port, d.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("source pg-main: differs (host, tables); left as is"),
        "{}",
        stdout(&o)
    );
    let o = bootstrap(port, d.path(), &["--allow-drift"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn unhealthy_sink_times_out_with_one_line() {
    let port = serve_json(vec![("/healthz", 503, "{}".into())]);
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("p.json");
    std::fs::write(&file, r#"{"consumers":[]}"#).unwrap();
    let o = run(tumbleweed(None)
        .args(["bootstrap", "--file"])
        .arg(&file)
        .args([
            "--sink-url",
            &format!("http://127.0.0.1:{port}"),
            "--wait-timeout",
            "1",
        ])
        .env("TUMBLEWEED_ADMIN_TOKEN", "admin"));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("was not healthy after 1s (last: HTTP 503"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1);
}
