//! Least exposure, against the real sink binary: `/metrics` (which names consumers, sources and
//! databases) needs the metrics token or the admin token, and every response carries the
//! security headers (a CSP without inline script, no framing, no sniffing, no referrer).
//! (Reported: `/metrics` was public, and the UI sent no CSP or anti-framing headers.)

use anyhow::Result;
use reqwest::Method;
use serde_json::json;
use tumbleweed_tests::sink::{create_topic, SinkProcess};
use tumbleweed_tests::{repo_root, stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_token_and_responses_carry_security_headers() -> Result<()> {
    let ui = repo_root().join("ui");
    let ui = ui.to_string_lossy();
    let sink = SinkProcess::start(
        SINK,
        stack(),
        &[
            ("--metrics-token", "metrics-token-0123456789"),
            ("--ui-dir", &ui),
        ],
    )
    .await?;
    let topic = format!("exposure_{}", unique_suffix());
    create_topic(&stack().kafka_bootstrap, &topic, 1).await?;
    let token = sink
        .create_consumer(json!({"name": "nosy", "topics": [topic]}))
        .await?;
    let get = |token: Option<&str>| {
        let mut r = sink.http.get(sink.url("/metrics"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(get(None).await?.status(), 401, "anonymous");
    assert_eq!(get(Some("wrong-token-0123456789")).await?.status(), 401);
    assert_eq!(get(Some(&token)).await?.status(), 401, "a consumer token");
    let r = get(Some("metrics-token-0123456789")).await?;
    assert_eq!(r.status(), 200, "the metrics token");
    assert!(r.text().await?.contains("tumbleweed_sse_connected_streams"));
    let r = sink.admin(Method::GET, "/metrics").send().await?;
    assert_eq!(r.status(), 200, "the admin token");

    for (what, r) in [
        ("the UI", sink.http.get(sink.url("/")).send().await?),
        (
            "an API answer",
            sink.admin(Method::GET, "/v1/topics").send().await?,
        ),
        (
            "an error",
            sink.http.get(sink.url("/v1/topics")).send().await?,
        ),
    ] {
        let h = r.headers();
        let csp = h["content-security-policy"].to_str()?;
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{what}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    }
    let index = sink.http.get(sink.url("/")).send().await?.text().await?;
    assert!(
        index.contains("<script type=\"module\" src=\"/app.js\">"),
        "the UI is served"
    );
    Ok(())
}
