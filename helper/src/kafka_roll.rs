//! `tumbleweed kafka roll`: moves the Kafka node services to their latest task definition,
//! one node at a time.
//!
//! # Design
//!
//! Terraform registers a new task definition revision for every node on a Kafka change but
//! never moves a running node service to it (`ignore_changes = [task_definition]` in
//! `modules/kafka`): one apply would otherwise restart all three controllers and all three
//! brokers at once. This command does the move, in an order a retry can finish:
//!
//! 1. read the nodes from the terraform outputs (`kafka_controller_service_names`, then
//!    `kafka_broker_service_names`, each with its revision in `kafka_node_task_definition_arns`);
//! 2. refuse to start unless the cluster is in sync (`GET /v1/kafka/health` on the sink: every
//!    broker present, no under-replicated or offline partition): restarting a node of a
//!    degraded cluster can take partitions below `min.insync.replicas`;
//! 3. per node, controllers first: skip it if it already runs its revision at steady state;
//!    else `UpdateService` to the revision, wait for ECS steady state (one deployment, on the
//!    revision, all tasks running), then wait until the cluster is in sync again, and only
//!    then go on. A node that does not get there within `--node-timeout-secs` stops the roll
//!    with what it waited for; the nodes after it are untouched, and running the command
//!    again continues where it stopped.
//!
//! Controllers are waited on through the brokers' view (every broker registered, every
//! partition led and in sync): librdkafka, which the sink uses, has no KRaft quorum request
//! (`DescribeQuorum`), so a controller's own replication lag is not read.
//!
//! ECS and the cluster are reached through two small traits ([`NodeServices`],
//! [`ClusterHealth`]) so the ordering and waiting are unit tested on their own.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::aws::describe_sdk_error;
use crate::cli::{GlobalArgs, TfOutputArgs};
use crate::tf_outputs::TfOutputs;
use crate::wait::{self, Pending};
use crate::{Outcome, OutputFormat, UsageError};

#[derive(Debug, Args)]
pub struct KafkaArgs {
    #[command(subcommand)]
    pub action: KafkaAction,
}

#[derive(Debug, Subcommand)]
pub enum KafkaAction {
    /// Move the Kafka node services to their latest task definition, one node at a time,
    /// waiting for the cluster to be in sync between nodes.
    Roll(RollArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RollArgs {
    #[command(flatten)]
    pub tf: TfOutputArgs,
    /// Sink base URL whose `/v1/kafka/health` (an admin route) shows the cluster [default:
    /// the `admin_url` output; `public_url` for deployments made before the admin listener].
    #[arg(long, value_name = "URL")]
    pub sink_url: Option<String>,
    /// Environment variable holding the admin token for the sink API.
    #[arg(long, value_name = "NAME", default_value = "TUMBLEWEED_ADMIN_TOKEN")]
    pub admin_token_env: String,
    /// Most seconds one node may take to reach steady state and the cluster to be in sync
    /// again.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub node_timeout_secs: u64,
    /// Show which nodes would move to which revision; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Milliseconds between two checks while waiting.
    #[arg(long, value_name = "MS", default_value_t = 5000, hide = true)]
    pub poll_ms: u64,
}

/// One Kafka node: its key (`controller-1`), ECS service, and the revision to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub key: String,
    pub service: String,
    pub target: String,
}

/// What ECS says of a node service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    pub task_definition: String,
    /// One deployment, all its tasks running, rollout complete.
    pub steady: bool,
    /// Deployments and counts, for messages.
    pub detail: String,
}

/// The cluster as `GET /v1/kafka/health` shows it: the sink API's type.
pub use tumbleweed_api::service::ClusterHealth as Health;

/// Every broker is in the metadata and every partition has its replicas in sync and a leader.
fn in_sync(h: &Health, brokers: usize) -> bool {
    h.brokers.len() == brokers && h.under_replicated == 0 && h.offline == 0
}

/// ECS, as the roll needs it.
#[allow(async_fn_in_trait)]
pub trait NodeServices {
    async fn describe(&self, service: &str) -> anyhow::Result<ServiceState>;
    async fn update(&self, service: &str, task_definition: &str) -> anyhow::Result<()>;
}

/// The cluster's health, as the roll needs it.
#[allow(async_fn_in_trait)]
pub trait ClusterHealth {
    async fn health(&self) -> anyhow::Result<Health>;
}

/// What a roll did.
#[derive(Debug, Default, Serialize)]
pub struct RollReport {
    pub rolled: Vec<String>,
    pub already_current: Vec<String>,
}

/// The nodes, controllers first, from the terraform outputs.
pub fn nodes_from_outputs(o: &TfOutputs) -> anyhow::Result<Vec<Node>> {
    let arns = match o.0.get("kafka_node_task_definition_arns") {
        Some(serde_json::Value::Object(m)) => m.clone(),
        Some(other) => bail!("terraform output \"kafka_node_task_definition_arns\" is not a map: {other}"),
        None => bail!(
            "terraform output \"kafka_node_task_definition_arns\" is missing (has `terraform apply` completed with this version of infra/?)"
        ),
    };
    let mut nodes = Vec::new();
    for list in [
        "kafka_controller_service_names",
        "kafka_broker_service_names",
    ] {
        for service in o.strings(list)? {
            let (key, target) = arns
                .iter()
                .find(|(k, _)| service.ends_with(&format!("-kafka-{k}")))
                .ok_or_else(|| {
                    anyhow!("no revision for service {service} in kafka_node_task_definition_arns")
                })?;
            let target = target
                .as_str()
                .ok_or_else(|| anyhow!("the revision of {key} is not a string"))?;
            nodes.push(Node {
                key: key.clone(),
                service,
                target: target.to_string(),
            });
        }
    }
    Ok(nodes)
}

/// Polls `check` every `poll` until it answers `Ok(None)` or `timeout` passes; `Ok(Some(why))`
/// means "not yet", and the last `why` is in the timeout error.
async fn wait_for<F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut check: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
{
    let timed_out = |why| anyhow!("{what} within {} s; last seen: {why}", timeout.as_secs());
    wait::until(what, timeout, poll, timed_out, || {
        let answer = check();
        async {
            match answer.await {
                Ok(None) => Ok(()),
                Ok(Some(why)) => Err(Pending::NotYet(why)),
                Err(e) => Err(Pending::NotYet(format!("{e:#}"))),
            }
        }
    })
    .await
}

/// Rolls `nodes` in order (see the module docs). `progress` gets one line per step.
pub async fn roll(
    ecs: &impl NodeServices,
    cluster: &impl ClusterHealth,
    nodes: &[Node],
    brokers: usize,
    timeout: Duration,
    poll: Duration,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<RollReport> {
    let h = cluster
        .health()
        .await
        .context("reading the cluster's health before the roll")?;
    if !in_sync(&h, brokers) {
        bail!(
            "the cluster is not in sync, so no node is restarted: {} of {brokers} brokers, {} under-replicated and {} offline partitions; wait, or fix the cluster first",
            h.brokers.len(),
            h.under_replicated,
            h.offline
        );
    }
    let mut report = RollReport::default();
    for node in nodes {
        let state = ecs.describe(&node.service).await?;
        if state.task_definition == node.target && state.steady {
            progress(&format!("{}: already on {}", node.key, node.target));
            report.already_current.push(node.key.clone());
            continue;
        }
        progress(&format!(
            "{}: moving {} from {} to {}",
            node.key, node.service, state.task_definition, node.target
        ));
        let stopped_at = || {
            format!(
                "the roll stopped at {}; the nodes after it were not touched (run again to continue)",
                node.key
            )
        };
        ecs.update(&node.service, &node.target).await?;
        let steady = format!(
            "{} did not reach ECS steady state on {}",
            node.key, node.target
        );
        wait_for(&steady, timeout, poll, || async {
            let s = ecs.describe(&node.service).await?;
            Ok((!(s.steady && s.task_definition == node.target)).then_some(s.detail))
        })
        .await
        .with_context(stopped_at)?;
        let synced = format!("the cluster was not in sync again after {}", node.key);
        wait_for(&synced, timeout, poll, || async {
            let h = cluster.health().await?;
            Ok((!in_sync(&h, brokers)).then(|| {
                format!(
                    "{} of {brokers} brokers, {} under-replicated, {} offline partitions",
                    h.brokers.len(),
                    h.under_replicated,
                    h.offline
                )
            }))
        })
        .await
        .with_context(stopped_at)?;
        progress(&format!(
            "{}: on {}, cluster in sync",
            node.key, node.target
        ));
        report.rolled.push(node.key.clone());
    }
    Ok(report)
}

/// ECS through the AWS SDK.
pub struct Ecs {
    pub client: aws_sdk_ecs::Client,
    pub cluster: String,
}

impl NodeServices for Ecs {
    async fn describe(&self, service: &str) -> anyhow::Result<ServiceState> {
        let resp = self
            .client
            .describe_services()
            .cluster(&self.cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| anyhow!(describe_sdk_error(&e)))
            .with_context(|| format!("describing ECS service {service}"))?;
        let s = resp
            .services()
            .first()
            .ok_or_else(|| anyhow!("ECS service {service} not found in {}", self.cluster))?;
        let deployments = s.deployments();
        let detail = format!(
            "{} running of {} desired; deployments: {}",
            s.running_count(),
            s.desired_count(),
            deployments
                .iter()
                .map(|d| format!(
                    "{} {} on {}",
                    d.status().unwrap_or("?"),
                    d.rollout_state().map(|r| r.as_str()).unwrap_or("-"),
                    d.task_definition().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let steady = match deployments {
            [d] => {
                d.running_count() == d.desired_count()
                    && d.task_definition() == s.task_definition()
                    && d.rollout_state().is_none_or(|r| r.as_str() == "COMPLETED")
            }
            _ => false,
        };
        Ok(ServiceState {
            task_definition: s.task_definition().unwrap_or("").to_string(),
            steady,
            detail,
        })
    }

    async fn update(&self, service: &str, task_definition: &str) -> anyhow::Result<()> {
        self.client
            .update_service()
            .cluster(&self.cluster)
            .service(service)
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| anyhow!(describe_sdk_error(&e)))
            .with_context(|| format!("updating ECS service {service} to {task_definition}"))?;
        Ok(())
    }
}

/// `GET /v1/kafka/health` on the sink.
pub struct SinkHealth {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl ClusterHealth for SinkHealth {
    async fn health(&self) -> anyhow::Result<Health> {
        let r = self
            .http
            .get(&self.url)
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(15))
            .send()
            .await
            .with_context(|| format!("asking {}", self.url))?;
        let status = r.status();
        if !status.is_success() {
            let body = r.text().await.unwrap_or_default();
            bail!("{} answered {status}: {body}", self.url);
        }
        r.json()
            .await
            .with_context(|| format!("reading the answer of {}", self.url))
    }
}

/// `tumbleweed kafka ...`.
pub async fn run(g: &GlobalArgs, args: KafkaArgs) -> anyhow::Result<Outcome> {
    match args.action {
        KafkaAction::Roll(a) => run_roll(g, a).await,
    }
}

async fn run_roll(g: &GlobalArgs, a: RollArgs) -> anyhow::Result<Outcome> {
    let outputs = TfOutputs::load(&a.tf)?;
    let nodes = nodes_from_outputs(&outputs)?;
    let brokers = outputs.strings("kafka_broker_service_names")?.len();
    if nodes.is_empty() {
        // existing_kafka_bootstrap_servers: the cluster (MSK, ...) is not run by this
        // deployment, so there is nothing of it to roll here.
        println!("this deployment runs no Kafka nodes (it uses an existing Kafka cluster): nothing to roll");
        return Ok(Outcome::Success);
    }
    let ecs = Ecs {
        client: aws_sdk_ecs::Client::new(&crate::aws::sdk_config(g).await),
        cluster: outputs.string("cluster_name")?,
    };
    if a.dry_run {
        let mut plan = Vec::new();
        for n in &nodes {
            let s = ecs.describe(&n.service).await?;
            let change = s.task_definition != n.target;
            plan.push(serde_json::json!({
                "node": n.key, "service": n.service, "from": s.task_definition,
                "to": n.target, "change": change,
            }));
        }
        match g.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
            OutputFormat::Text => {
                for p in &plan {
                    let verb = if p["change"] == true {
                        "would move"
                    } else {
                        "stays"
                    };
                    println!(
                        "{}: {verb} {} -> {}",
                        p["node"].as_str().unwrap_or("?"),
                        p["from"].as_str().unwrap_or("?"),
                        p["to"].as_str().unwrap_or("?")
                    );
                }
            }
        }
        return Ok(Outcome::Success);
    }
    let token = std::env::var(&a.admin_token_env).map_err(|_| {
        UsageError(format!(
            "the sink's admin token is read from ${}, which is not set",
            a.admin_token_env
        ))
    })?;
    let base = match &a.sink_url {
        Some(u) => u.clone(),
        // The public listener forwards consumer routes only; admin routes are on admin_url.
        None => outputs
            .string("admin_url")
            .or_else(|_| outputs.string("public_url"))?,
    };
    let cluster = SinkHealth {
        http: reqwest::Client::new(),
        url: format!("{}/v1/kafka/health", base.trim_end_matches('/')),
        token,
    };
    let text = matches!(g.output, OutputFormat::Text);
    let report = roll(
        &ecs,
        &cluster,
        &nodes,
        brokers,
        Duration::from_secs(a.node_timeout_secs),
        Duration::from_millis(a.poll_ms),
        |line| {
            if text {
                println!("{line}");
            } else {
                eprintln!("{line}");
            }
        },
    )
    .await?;
    if !text {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// ECS as a map of service -> (task definition, polls left until steady after an update).
    #[derive(Default)]
    struct FakeEcs {
        services: RefCell<HashMap<String, (String, u32)>>,
        log: RefCell<Vec<String>>,
        settle_polls: u32,
    }

    impl NodeServices for FakeEcs {
        async fn describe(&self, service: &str) -> anyhow::Result<ServiceState> {
            let mut s = self.services.borrow_mut();
            let (td, left) = s.get_mut(service).unwrap();
            let steady = *left == 0;
            *left = left.saturating_sub(1);
            Ok(ServiceState {
                task_definition: td.clone(),
                steady,
                detail: format!("{left} polls to go"),
            })
        }
        async fn update(&self, service: &str, td: &str) -> anyhow::Result<()> {
            self.log.borrow_mut().push(format!("update {service}"));
            self.services
                .borrow_mut()
                .insert(service.into(), (td.into(), self.settle_polls));
            Ok(())
        }
    }

    /// Health: out of sync for `after_update` checks after each update it sees in the log.
    struct FakeCluster<'a> {
        ecs: &'a FakeEcs,
        seen_updates: RefCell<usize>,
        unsynced_left: RefCell<u32>,
        after_update: u32,
        broken: bool,
    }

    impl ClusterHealth for FakeCluster<'_> {
        async fn health(&self) -> anyhow::Result<Health> {
            let updates = self
                .ecs
                .log
                .borrow()
                .iter()
                .filter(|l| l.starts_with("update"))
                .count();
            if updates > *self.seen_updates.borrow() {
                *self.seen_updates.borrow_mut() = updates;
                *self.unsynced_left.borrow_mut() = self.after_update;
            }
            let mut left = self.unsynced_left.borrow_mut();
            let urp = if *left > 0 || self.broken { 4 } else { 0 };
            *left = left.saturating_sub(1);
            self.ecs.log.borrow_mut().push(format!("health urp={urp}"));
            Ok(Health {
                brokers: vec![101, 102, 103],
                under_replicated: urp,
                offline: 0,
                ..Health::default()
            })
        }
    }

    fn nodes() -> Vec<Node> {
        ["controller-1", "controller-2", "broker-1"]
            .iter()
            .map(|k| Node {
                key: k.to_string(),
                service: format!("tw-kafka-{k}"),
                target: format!("td-{k}:2"),
            })
            .collect()
    }

    fn ecs(settle_polls: u32, current: &[&str]) -> FakeEcs {
        let e = FakeEcs {
            settle_polls,
            ..FakeEcs::default()
        };
        for n in nodes() {
            let td = if current.contains(&n.key.as_str()) {
                n.target.clone()
            } else {
                format!("td-{}:1", n.key)
            };
            e.services.borrow_mut().insert(n.service, (td, 0));
        }
        e
    }

    fn cluster(ecs: &FakeEcs, after_update: u32, broken: bool) -> FakeCluster<'_> {
        FakeCluster {
            ecs,
            seen_updates: RefCell::new(0),
            unsynced_left: RefCell::new(0),
            after_update,
            broken,
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn one_node_at_a_time_controllers_first_each_waited_for() {
        let e = ecs(2, &["controller-2"]);
        let c = cluster(&e, 3, false);
        let r = roll(&e, &c, &nodes(), 3, Duration::from_secs(5), MS, |_| {})
            .await
            .unwrap();
        assert_eq!(r.rolled, ["controller-1", "broker-1"]);
        assert_eq!(r.already_current, ["controller-2"]);
        let log = e.log.borrow().clone();
        // Each update is followed by health checks that end in sync before the next update.
        let updates: Vec<usize> = (0..log.len())
            .filter(|&i| log[i].starts_with("update"))
            .collect();
        assert_eq!(log[updates[0]], "update tw-kafka-controller-1");
        assert_eq!(log[updates[1]], "update tw-kafka-broker-1");
        let between = &log[updates[0] + 1..updates[1]];
        assert_eq!(
            between.iter().filter(|l| *l == "health urp=4").count(),
            3,
            "waited while partitions were under-replicated: {between:?}"
        );
        assert_eq!(between.last().unwrap(), "health urp=0");
        assert_eq!(log.last().unwrap(), "health urp=0");
    }

    #[tokio::test]
    async fn a_node_that_never_settles_stops_the_roll_and_touches_nothing_after_it() {
        let e = ecs(u32::MAX, &[]);
        let c = cluster(&e, 0, false);
        let err = roll(&e, &c, &nodes(), 3, Duration::from_millis(30), MS, |_| {})
            .await
            .unwrap_err();
        let msg = crate::one_line(&err);
        assert!(msg.contains("the roll stopped at controller-1"), "{msg}");
        assert!(msg.contains("did not reach ECS steady state"), "{msg}");
        assert!(
            msg.contains("polls to go"),
            "the last state is shown: {msg}"
        );
        let updates: Vec<String> = e
            .log
            .borrow()
            .iter()
            .filter(|l| l.starts_with("update"))
            .cloned()
            .collect();
        assert_eq!(updates, ["update tw-kafka-controller-1"]);
    }

    #[tokio::test]
    async fn a_cluster_out_of_sync_is_not_rolled() {
        let e = ecs(0, &[]);
        let c = cluster(&e, 0, true);
        let err = roll(&e, &c, &nodes(), 3, Duration::from_secs(1), MS, |_| {})
            .await
            .unwrap_err();
        assert!(crate::one_line(&err).contains("not in sync, so no node is restarted"));
        assert!(!e.log.borrow().iter().any(|l| l.starts_with("update")));
        // Too few brokers is out of sync too.
        let e = ecs(0, &[]);
        let c = cluster(&e, 0, false);
        let err = roll(&e, &c, &nodes(), 4, Duration::from_secs(1), MS, |_| {})
            .await
            .unwrap_err();
        assert!(crate::one_line(&err).contains("3 of 4 brokers"));
    }

    #[test]
    fn nodes_come_from_the_outputs_controllers_first() {
        let v = |x: serde_json::Value| serde_json::json!({ "value": x });
        let o = TfOutputs::parse(
            &serde_json::json!({
                "kafka_controller_service_names": v(serde_json::json!(["tw-kafka-controller-1"])),
                "kafka_broker_service_names": v(serde_json::json!(["tw-kafka-broker-1"])),
                "kafka_node_task_definition_arns": v(serde_json::json!({
                    "broker-1": "arn:b:3", "controller-1": "arn:c:2"})),
            })
            .to_string(),
        )
        .unwrap();
        let n = nodes_from_outputs(&o).unwrap();
        assert_eq!(n[0].key, "controller-1");
        assert_eq!(n[0].target, "arn:c:2");
        assert_eq!(n[1].service, "tw-kafka-broker-1");
        let o = TfOutputs::parse(&serde_json::json!({}).to_string()).unwrap();
        assert!(crate::one_line(&nodes_from_outputs(&o).unwrap_err())
            .contains("kafka_node_task_definition_arns\" is missing"));
    }
}
