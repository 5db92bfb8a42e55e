//! Start-up order: a deployment starts its services together (on ECS, the sink, Connect and
//! the Kafka nodes come up in whatever order Fargate places them), so the sink must not
//! depend on Kafka being there first.
//!
//! The sink is pointed at a port where nothing listens yet; 15 s later a TCP forwarder to the
//! real broker opens there (Kafka then advertises its own address, so only the bootstrap goes
//! through the forwarder). Before the fix the sink gave up after 10 s ("cannot reach Kafka")
//! and exited, which on ECS meant a failed first deployment; now it keeps trying, says why,
//! and serves once Kafka answers.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tumbleweed_tests::sink::{
    create_topic, debezium_value, free_port, produce, SinkProcess, ADMIN_TOKEN,
};
use tumbleweed_tests::{stack, unique_suffix};

const SINK: &str = env!("CARGO_BIN_EXE_tumbleweed-sink");
const KAFKA_LATE_BY: Duration = Duration::from_secs(15);

/// Forwards every connection to `127.0.0.1:port` to `target`, from `delay` on.
fn late_forwarder(port: u16, target: String, delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the forwarder's port is free");
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_waits_for_kafka_at_start_and_then_serves() -> Result<()> {
    let stack = stack();
    let topic = format!("startup_{}", unique_suffix());
    create_topic(&stack.kafka_bootstrap, &topic, 1).await?;
    let target = stack
        .kafka_bootstrap
        .split(',')
        .next()
        .context("a bootstrap address")?
        .to_string();
    let port = free_port();
    let started = Instant::now();
    late_forwarder(port, target, KAFKA_LATE_BY);
    let bootstrap = format!("127.0.0.1:{port}");
    let sink = SinkProcess::start(SINK, stack, &[("--kafka-bootstrap", &bootstrap)])
        .await
        .context("the sink should wait for Kafka, not exit")?;
    assert!(
        started.elapsed() >= KAFKA_LATE_BY,
        "the sink cannot have been healthy before Kafka answered ({:?})",
        started.elapsed()
    );
    let log = sink.log_text();
    assert!(
        log.contains(&format!("Kafka at {bootstrap} is not ready"))
            && log.contains("trying again in"),
        "each failed attempt is logged with its cause:\n{log}"
    );

    // It serves: a consumer is created and receives a change written afterwards.
    let token = sink
        .create_consumer(json!({"name": "early", "topics": [topic], "start": "latest"}))
        .await?;
    let value = debezium_value("c", Value::Null, json!({"id": 1}), 1);
    produce(
        &stack.kafka_bootstrap,
        &topic,
        &[(0, json!({"id": 1}), Some(value))],
    )
    .await?;
    let mut s = sink.events("early", &token, None).await?;
    let got = s.take(1, Duration::from_secs(20)).await?;
    assert_eq!(got[0].data["after"]["id"], 1, "the change is delivered");
    let health = sink
        .http
        .get(sink.url("/readyz"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    assert!(health.status().is_success(), "ready once Kafka answers");
    Ok(())
}
