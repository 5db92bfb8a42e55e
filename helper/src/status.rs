//! `tumbleweed status`: what is running.
//!
//! # Design
//!
//! Two independent sources, merged into one [`StatusReport`]:
//!
//! * ECS (`DescribeServices`, up to 10 services per call) for the services named in the
//!   terraform outputs — desired/running/pending counts, status and rollout state;
//! * the sink's operator API (only with `--sink-url`): `GET /v1/sources` for connector
//!   states and `GET /v1/slots` for replication slot health, read as the API's own types
//!   (`tumbleweed_api`): a field the sink renames breaks the build here, not the output.
//!
//! Rendered as comfy-table tables or, with `--output json`, one JSON document. The
//! command fails (exit 1) when a service has fewer running tasks than desired or the sink
//! reports an unhealthy slot, so it can gate scripts.

use anyhow::{anyhow, Context};
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;
use tumbleweed_api::sources::{SlotList, SlotStatus, SlotView, SourceList, SourceView};

use crate::aws::describe_sdk_error;
use crate::cli::{GlobalArgs, TfOutputArgs};
use crate::tf_outputs::TfOutputs;
use crate::{Outcome, OutputFormat};

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub tf: TfOutputArgs,
    /// Sink admin URL (the `admin_url` output: admin routes are not on `public_url`) to
    /// include connector and slot health.
    #[arg(long, value_name = "URL")]
    pub sink_url: Option<String>,
    /// Environment variable holding the admin token for the sink API.
    #[arg(long, value_name = "NAME", default_value = "TUMBLEWEED_ADMIN_TOKEN")]
    pub admin_token_env: String,
}

/// One ECS service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub role: String,
    pub name: String,
    pub status: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub rollout: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub cluster: String,
    pub services: Vec<ServiceStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<SourceView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<SlotView>>,
    pub healthy: bool,
}

/// (role, service name) pairs from the terraform outputs.
pub fn services_from_outputs(o: &TfOutputs) -> anyhow::Result<Vec<(String, String)>> {
    let mut v = vec![
        ("sink".to_string(), o.string("sink_service_name")?),
        ("connect".to_string(), o.string("connect_service_name")?),
    ];
    for s in o.strings("kafka_broker_service_names")? {
        v.push(("kafka-broker".into(), s));
    }
    for s in o.strings("kafka_controller_service_names")? {
        v.push(("kafka-controller".into(), s));
    }
    Ok(v)
}

/// Describes `services` in `cluster`.
pub async fn ecs_status(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    services: &[(String, String)],
) -> anyhow::Result<Vec<ServiceStatus>> {
    let mut out = Vec::new();
    for chunk in services.chunks(10) {
        let resp = client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.iter().map(|(_, n)| n.clone()).collect()))
            .send()
            .await
            .map_err(|e| anyhow!(describe_sdk_error(&e)))
            .with_context(|| format!("describing ECS services in cluster {cluster}"))?;
        for (role, name) in chunk {
            let svc = resp
                .services()
                .iter()
                .find(|s| s.service_name() == Some(name.as_str()));
            out.push(match svc {
                Some(s) => ServiceStatus {
                    role: role.clone(),
                    name: name.clone(),
                    status: s.status().unwrap_or("UNKNOWN").to_string(),
                    desired: s.desired_count(),
                    running: s.running_count(),
                    pending: s.pending_count(),
                    rollout: s
                        .deployments()
                        .iter()
                        .find(|d| d.status() == Some("PRIMARY"))
                        .and_then(|d| d.rollout_state())
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_else(|| "-".into()),
                },
                None => ServiceStatus {
                    role: role.clone(),
                    name: name.clone(),
                    status: "MISSING".into(),
                    desired: 0,
                    running: 0,
                    pending: 0,
                    rollout: "-".into(),
                },
            });
        }
    }
    Ok(out)
}

/// `GET url` as the API type `T`; a non-2xx answer is reported with the sink's `error`.
async fn get_api<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<T> {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp.bytes().await.with_context(|| format!("GET {url}"))?;
    if !status.is_success() {
        let msg = serde_json::from_slice::<tumbleweed_api::ErrorBody>(&body)
            .map(|e| e.error)
            .unwrap_or_default();
        anyhow::bail!("GET {url}: HTTP {status} {msg}");
    }
    serde_json::from_slice(&body).with_context(|| {
        format!(
            "GET {url}: the answer is not the sink API this helper speaks (upgrade one of them)"
        )
    })
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), ToString::to_string)
}

/// Whether every service runs as desired and no slot is critical or has lost WAL.
pub fn is_healthy(services: &[ServiceStatus], slots: Option<&[SlotView]>) -> bool {
    let svc_ok = services
        .iter()
        .all(|s| s.status == "ACTIVE" && s.running >= s.desired);
    let slots_ok = slots
        .unwrap_or(&[])
        .iter()
        .all(|s| s.status != SlotStatus::Critical && s.wal_status.as_deref() != Some("lost"));
    svc_ok && slots_ok
}

/// `tumbleweed status`.
pub async fn run(g: &GlobalArgs, a: StatusArgs) -> anyhow::Result<Outcome> {
    let outputs = TfOutputs::load(&a.tf)?;
    let cluster = outputs.string("cluster_name")?;
    let services = services_from_outputs(&outputs)?;
    let client = aws_sdk_ecs::Client::new(&crate::aws::sdk_config(g).await);
    let svc = ecs_status(&client, &cluster, &services).await?;
    let (mut sources, mut slots) = (None, None);
    if let Some(url) = &a.sink_url {
        let base = url.trim_end_matches('/');
        let token = std::env::var(&a.admin_token_env).ok();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()?;
        let list: SourceList =
            get_api(&http, &format!("{base}/v1/sources"), token.as_deref()).await?;
        sources = Some(list.sources);
        let list: SlotList = get_api(&http, &format!("{base}/v1/slots"), token.as_deref()).await?;
        slots = Some(list.slots);
    }
    let healthy = is_healthy(&svc, slots.as_deref());
    let report = StatusReport {
        cluster,
        services: svc,
        sources,
        slots,
        healthy,
    };
    match g.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print_text(&report),
    }
    Ok(if healthy {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

fn print_text(r: &StatusReport) {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "role", "service", "status", "desired", "running", "pending", "rollout",
    ]);
    for s in &r.services {
        t.add_row(vec![
            s.role.clone(),
            s.name.clone(),
            s.status.clone(),
            s.desired.to_string(),
            s.running.to_string(),
            s.pending.to_string(),
            s.rollout.clone(),
        ]);
    }
    println!("cluster {}\n{t}", r.cluster);
    if let Some(sources) = &r.sources {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_header(vec!["source", "mode", "connector state"]);
        for s in sources {
            t.add_row(vec![
                s.name.clone(),
                s.mode.as_str().to_string(),
                s.connector_state.to_string(),
            ]);
        }
        println!("{t}");
    }
    if let Some(slots) = &r.slots {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "source",
            "slot",
            "active",
            "retained bytes",
            "wal status",
            "status",
        ]);
        for s in slots {
            t.add_row(vec![
                opt(&s.source),
                s.slot.clone(),
                s.active.to_string(),
                opt(&s.retained_bytes),
                opt(&s.wal_status),
                s.status.as_str().to_string(),
            ]);
        }
        println!("{t}");
    }
    println!("{}", if r.healthy { "healthy" } else { "NOT healthy" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_rules() {
        let s = |running| ServiceStatus {
            role: "sink".into(),
            name: "x".into(),
            status: "ACTIVE".into(),
            desired: 2,
            running,
            pending: 0,
            rollout: "-".into(),
        };
        assert!(is_healthy(&[s(2)], None));
        assert!(!is_healthy(&[s(1)], None));
        let slot = |wal_status: &str, status| SlotView {
            slot: "tw_local_a".into(),
            server: "db:5432".into(),
            database: Some("app".into()),
            slot_type: "logical".into(),
            plugin: Some("pgoutput".into()),
            active: true,
            active_pid: Some(7),
            retained_bytes: Some(1),
            wal_status: Some(wal_status.into()),
            safe_wal_size: None,
            owned: true,
            source: Some("a".into()),
            orphan: false,
            via: "a".into(),
            status,
        };
        assert!(is_healthy(
            &[s(2)],
            Some(&[slot("reserved", SlotStatus::Warn)])
        ));
        assert!(!is_healthy(&[s(2)], Some(&[slot("lost", SlotStatus::Ok)])));
        assert!(!is_healthy(
            &[s(2)],
            Some(&[slot("reserved", SlotStatus::Critical)])
        ));
    }
}
