//! The router, in process: the sink is started by `server::start` inside the test (no child
//! process) on the real local stack, and asked for every operation the OpenAPI document lists.
//!
//! Two tables of cases:
//! - every documented operation is routed and guarded as documented: without credentials a
//!   protected one answers 401 (never 404 or 405, which would mean the document names a route
//!   the router does not have), a public one answers;
//! - every admin list answers 200 with a body that deserializes as its `tumbleweed_api` type,
//!   the same type the helper reads.
//!
//! The handlers need the Kafka-backed registries, so these cases run against the real broker;
//! the stream logic itself is tested against a hand-filled feed in `sse_tests.rs`.

use anyhow::Result;
use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tumbleweed_sink::config::Config;
use tumbleweed_tests::sink::{free_port, ADMIN_TOKEN};
use tumbleweed_tests::{stack, unique_suffix};

fn config() -> Config {
    let id = unique_suffix();
    let port = free_port();
    let topic = |what: &str| format!("_tw_test_{what}_{id}");
    let args = [
        "tumbleweed-sink".to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--kafka-bootstrap".into(),
        stack().kafka_bootstrap.clone(),
        "--connect-url".into(),
        stack().connect_url.clone(),
        "--admin-token".into(),
        ADMIN_TOKEN.into(),
        "--consumers-topic".into(),
        topic("consumers"),
        "--cursors-topic".into(),
        topic("cursors"),
        "--tickets-topic".into(),
        topic("tickets"),
        "--stats-topic".into(),
        topic("stats"),
        "--sources-topic".into(),
        topic("sources"),
        "--topic-replication-factor".into(),
        stack().replication_factor.to_string(),
    ];
    Config::try_parse_from(args).expect("a valid configuration")
}

/// Parses `body` as `T` or says which type and what was wrong.
fn typed<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> Result<T> {
    serde_json::from_str(body)
        .map_err(|e| anyhow::anyhow!("{what} is not its API type: {e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_guarded_and_typed() -> Result<()> {
    let sink = tumbleweed_sink::server::start(config()).await?;
    let base = format!("http://{}", sink.addr);
    let http = reqwest::Client::new();
    let doc: Value = serde_json::from_str(&tumbleweed_sink::openapi::json())?;

    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let url = format!(
                "{base}{}",
                path.replace("{name}", "nobody")
                    .replace("{topic}", "nothing")
                    .replace("{via}", "nowhere")
                    .replace("{slot}", "noslot")
            );
            let method = Method::from_bytes(method.to_uppercase().as_bytes())?;
            let resp = http.request(method.clone(), &url).send().await?;
            let status = resp.status();
            let public = op.get("security").is_none();
            if public {
                assert!(
                    status == StatusCode::OK
                        || (path == "/readyz" && status == StatusCode::SERVICE_UNAVAILABLE),
                    "{method} {path}: a public operation answered {status}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path}: expected 401 without credentials (404/405: the router lacks the route)"
                );
                let body: tumbleweed_api::ErrorBody = resp.json().await?;
                assert!(!body.error.is_empty());
            }
            checked += 1;
        }
    }
    assert!(checked >= 21, "only {checked} operations in the document");

    let admin = |path: &str| http.get(format!("{base}{path}")).bearer_auth(ADMIN_TOKEN);
    for path in [
        "/v1/consumers",
        "/v1/topics",
        "/v1/sources",
        "/v1/slots",
        "/v1/kafka/health",
        "/healthz",
        "/readyz",
    ] {
        let resp = admin(path).send().await?;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let body = resp.text().await?;
        match path {
            "/v1/consumers" => drop(typed::<tumbleweed_api::consumers::ConsumerList>(
                path, &body,
            )?),
            "/v1/topics" => {
                let t: tumbleweed_api::service::TopicList = typed(path, &body)?;
                assert!(t.topics.iter().all(|t| !t.name.starts_with('_')), "{body}");
            }
            "/v1/sources" => drop(typed::<tumbleweed_api::sources::SourceList>(path, &body)?),
            "/v1/slots" => drop(typed::<tumbleweed_api::sources::SlotList>(path, &body)?),
            "/v1/kafka/health" => {
                let h: tumbleweed_api::service::ClusterHealth = typed(path, &body)?;
                assert!(!h.brokers.is_empty(), "{body}");
            }
            "/healthz" => drop(typed::<tumbleweed_api::service::Health>(path, &body)?),
            _ => {
                let r: tumbleweed_api::service::Readiness = typed(path, &body)?;
                assert_eq!(r.status, "ok");
            }
        }
    }

    // A 400 names its field, in the API's error shape, for a body and for a query string.
    let resp = http
        .post(format!("{base}/v1/consumers"))
        .bearer_auth(ADMIN_TOKEN)
        .body(r#"{"name": "ok", "topics": "not-a-list"}"#)
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: tumbleweed_api::ErrorBody = resp.json().await?;
    assert_eq!(e.field.as_deref(), Some("topics"), "{}", e.error);
    let resp = admin("/v1/topics/anything/events?start=yesterday")
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: tumbleweed_api::ErrorBody = resp.json().await?;
    assert!(e.error.contains("query string"), "{}", e.error);

    sink.shutdown.cancel();
    sink.task.await??;
    Ok(())
}
