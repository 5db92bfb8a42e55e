//! Helpers shared by the `sources_*` integration tests: the sources API served in-process on
//! 127.0.0.1:0 against the real local stack, a small JSON client for it, and checks that a
//! source left nothing behind.
#![allow(dead_code)]

use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tumbleweed_sink::sources::{SourcesConfig, SourcesService, SourcesTuning};
use tumbleweed_tests::Stack;

/// The sources API served in-process.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub service: std::sync::Arc<SourcesService>,
}

fn sources_topic() -> &'static str {
    static TOPIC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOPIC.get_or_init(|| format!("_tw_test_sources_{}", tumbleweed_tests::unique_suffix()))
}

/// Default thresholds (1 GiB / 10 GiB).
pub async fn serve(stack: &Stack) -> Api {
    serve_with(stack, 1 << 30, 10 << 30).await
}

/// Serves the routes with the given WAL thresholds.
pub async fn serve_with(stack: &Stack, warn: u64, critical: u64) -> Api {
    let config = SourcesConfig {
        connect_url: stack.connect_url.clone(),
        kafka_bootstrap: stack.kafka_bootstrap.clone(),
        wal_warn_bytes: warn,
        wal_critical_bytes: critical,
        wal_check_interval: Duration::from_secs(1),
        // One registry per test process: every service a test starts sees the same sources,
        // as replicas do.
        sources_topic: sources_topic().to_string(),
        deployment_id: "local".into(),
        // The tests' sources give the local stack's (unchecked) password in plain text.
        allow_plaintext_password: true,
        // Tests write their password files under the temporary directory.
        secrets_dir: Some(std::env::temp_dir()),
    };
    let tuning = SourcesTuning {
        slot_release_timeout: Duration::from_secs(5),
        topic_replication_factor: stack.replication_factor as u16,
        ..SourcesTuning::default()
    };
    let service = SourcesService::open_with_tuning(config, tuning)
        .await
        .expect("service");
    let app = service.routes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Api {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client"),
        service,
    }
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, Value)> {
        let resp = req.send().await.context("calling the sources API")?;
        let status = resp.status();
        let text = resp.text().await?;
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, v))
    }
    pub async fn post(&self, path: &str, body: &Value) -> Result<(StatusCode, Value)> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }
    pub async fn get(&self, path: &str) -> Result<(StatusCode, Value)> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }
    pub async fn delete(&self, path: &str) -> Result<(StatusCode, Value)> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}

/// A creation request for a source on the local stack's PostgreSQL.
pub fn source_body(
    stack: &Stack,
    name: &str,
    db: &str,
    tables: &[&str],
    heartbeat_s: u64,
) -> Value {
    json!({
        "name": name,
        "host": stack.pg_host,
        "port": stack.pg_port,
        "database": db,
        "user": "postgres",
        "password": "unused-with-trust-auth",
        "tables": tables,
        "heartbeat_interval_s": heartbeat_s,
        "snapshot_mode": "no_data",
    })
}

/// Whether a publication exists in the connected database.
pub async fn publication_exists(pg: &tokio_postgres::Client, name: &str) -> Result<bool> {
    Ok(pg
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&name])
        .await?
        .is_some())
}

/// Asserts a refused source left no connector, slot, publication or heartbeat table.
pub async fn assert_nothing_left(
    stack: &Stack,
    pg: &tokio_postgres::Client,
    name: &str,
) -> Result<()> {
    let connectors = stack.connect().list().await?;
    anyhow::ensure!(
        !connectors.contains(&format!("tumbleweed-{name}")),
        "connector tumbleweed-{name} was left behind"
    );
    let slot = format!("tw_local_{name}");
    anyhow::ensure!(
        tumbleweed_tests::slot_active(pg, &slot).await?.is_none(),
        "slot {slot} was left behind"
    );
    anyhow::ensure!(
        !publication_exists(pg, &slot).await?,
        "publication {slot} was left behind"
    );
    let hb: bool = pg
        .query_one(
            "SELECT to_regclass('public.tumbleweed_heartbeat') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(!hb, "the heartbeat table was created for a refused source");
    Ok(())
}

/// Retained WAL of a slot (`pg_current_wal_lsn() - restart_lsn`).
pub async fn retained(pg: &tokio_postgres::Client, slot: &str) -> Result<i64> {
    let row = pg
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .with_context(|| format!("reading slot {slot}"))?;
    Ok(row.get(0))
}

/// A throwaway TLS-only PostgreSQL with a test CA (see `tumbleweed_tests::tls_pg`); shared with
/// the helper's tests, hence kept in the support crate and re-exported here.
#[allow(unused_imports)]
pub use tumbleweed_tests::tls_pg::TlsPostgres;
