//! The published contract against the live sink: `GET /v1/openapi.json` is the checked-in
//! `api/openapi.json`, and schemathesis (installed by scripts/install-helper-test-tools.sh into
//! .local/venv-schemathesis) generates requests for every operation from it and checks every
//! answer: no 5xx, every status documented, every body valid against its schema, the documented
//! content type. Run on the real local stack (Kafka, Connect, PostgreSQL), so the answers are
//! the ones a deployment gives.
//!
//! The live tail (`/v1/topics/{topic}/events` with the admin token) is left out of the
//! generated calls: a request schemathesis gets right opens a stream that never ends. It is
//! covered by sse_delivery.rs and the UI tests.

use std::process::Command;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use tumbleweed_tests::sink::{create_topic, SinkProcess, ADMIN_TOKEN};
use tumbleweed_tests::{repo_root, stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_sink_keeps_its_published_contract() -> Result<()> {
    let sink = SinkProcess::start(SINK, stack(), &[]).await?;
    // Something real to find: a topic with a consumer, so reads of existing names are tried.
    let topic = format!("contract_{}", unique_suffix());
    create_topic(&stack().kafka_bootstrap, &topic, 2).await?;
    sink.create_consumer(
        serde_json::json!({"name": format!("c{}", unique_suffix()), "topics": [topic]}),
    )
    .await?;

    let served: Value = reqwest::get(sink.url("/v1/openapi.json"))
        .await?
        .json()
        .await?;
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("api/openapi.json"))
            .context("reading api/openapi.json")?,
    )?;
    ensure!(
        served == checked_in,
        "the sink serves another document than api/openapi.json"
    );

    let st = repo_root().join(".local/venv-schemathesis/bin/st");
    ensure!(
        st.is_file(),
        "{} is missing: run bash scripts/install-helper-test-tools.sh",
        st.display()
    );
    let report = std::env::temp_dir().join(format!("schemathesis-{}.xml", unique_suffix()));
    let out = Command::new(&st)
        .args(["--no-color", "run", &sink.url("/v1/openapi.json")])
        .args(["--url", &sink.url("")])
        .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        ])
        .args(["--exclude-path", "/v1/topics/{topic}/events"])
        .args(["--max-examples", "30", "--request-timeout", "20"])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&report)
        // Its cache (.schemathesis/) goes to the temporary directory, not the checkout.
        .current_dir(std::env::temp_dir())
        .output()
        .with_context(|| format!("running {}", st.display()))?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    ensure!(
        out.status.success(),
        "schemathesis found contract violations (exit {:?}); sink log:\n{}",
        out.status.code(),
        sink.log_text()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A run that tested nothing passes too: check that it did call every operation.
    let junit = std::fs::read_to_string(&report).context("reading the junit report")?;
    let cases = junit.matches("<testcase").count();
    ensure!(
        cases >= 20,
        "schemathesis ran {cases} operations; expected every one but the live tail:\n{text}"
    );
    Ok(())
}
