//! Deployment rules: defect classes found in review that parse and reference-check fine but
//! break a real deployment. Each rule looks at one module directory's `.tf` files.
//!
//! - Connect's container environment: every name is one the Debezium Connect image reads
//!   (its entrypoint's named variables, `CONNECT_*` worker properties, or a variable a
//!   connector config reads through the `env` config provider), and the internal topics'
//!   replication factors are set (the image's stock properties say 1).
//! - The sink's load balancer health check probes liveness (`/healthz`), never readiness.
//! - `create_before_destroy` with a fixed `name`: the replacement fails on the duplicate name.
//! - A task definition's CPU architecture is a literal instead of a validated input.
//! - `data "aws_elb_service_account"`: fails plan in regions missing from the provider's map.
//! - An EFS file system without `prevent_destroy` or without backups.
//! - `source_db_password_secret_arn` not reaching a container `secrets` entry named
//!   `TUMBLEWEED_SOURCE_DB_PASSWORD` and an execution-role statement scoped to it.
//! - A CloudWatch alarm on the sink's own namespace whose metric name, dimension keys or
//!   unit are not what the sink publishes ([`SINK_EMF_METRICS`]): such an alarm never sees
//!   a data point. The sink container without the two variables that turn publishing on.
//! - An ECS service under an Application Auto Scaling target that does not ignore
//!   `desired_count`: every apply undoes the autoscaler's count.
//! - The public (consumer) load balancer listener, on 443 or 80: its default action must
//!   not forward, and every listener rule on it that forwards must match only the sink's
//!   consumer routes ([`CONSUMER_PATH_PATTERNS`]); the UI, the admin API and `/metrics`
//!   are reached on the admin listener only.
//! - The admin listener's port (`var.admin_port`) in a load balancer security group:
//!   admitted from the operator prefix list only, and from it at all.
//! - `secretsmanager:GetSecretValue` granted on anything but exactly the ARNs a variable
//!   declares: a literal or computed ARN, a wildcard, or a variable whose validation lets
//!   a wildcard ARN through.
//! - `source_db_password_secrets` not reaching a container as `TUMBLEWEED_SECRET_<KEY>`
//!   entries with a grant scoped to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hcl::edit::expr::{Expression, ObjectKey, Traversal, TraversalOperator};
use hcl::edit::structure::{Block, Body};
use hcl::edit::visit::{self, Visit};
use hcl::edit::Span;

use crate::model::Location;
use crate::report::{Finding, FindingKind};

/// The sink's liveness route (`sink/src/http.rs`: answers without asking Kafka).
pub const SINK_LIVENESS_PATH: &str = "/healthz";

/// Environment the Debezium Connect image (`connect-base/2.7/docker-entrypoint.sh`) reads
/// by name, besides the `CONNECT_*` properties. `KAFKA_*` ones are read by Kafka's scripts.
pub const DEBEZIUM_CONNECT_NAMED_ENV: &[&str] = &[
    "BOOTSTRAP_SERVERS",
    "GROUP_ID",
    "CONFIG_STORAGE_TOPIC",
    "OFFSET_STORAGE_TOPIC",
    "STATUS_STORAGE_TOPIC",
    "HOST_NAME",
    "REST_PORT",
    "REST_HOST_NAME",
    "ADVERTISED_PORT",
    "ADVERTISED_HOST_NAME",
    "OFFSET_FLUSH_INTERVAL_MS",
    "OFFSET_FLUSH_TIMEOUT_MS",
    "SHUTDOWN_TIMEOUT",
    "KEY_CONVERTER",
    "VALUE_CONVERTER",
    "ENABLE_APICURIO_CONVERTERS",
    "ENABLE_DEBEZIUM_KC_REST_EXTENSION",
    "ENABLE_DEBEZIUM_SCRIPTING",
    "ENABLE_JOLOKIA",
    "ENABLE_OTEL",
    "ENABLE_JMX_EXPORTER",
    "ENABLE_JFR",
    "HEAP_OPTS",
    "JMXPORT",
    "JMXHOST",
    "JMXAUTH",
    "JMXSSL",
    "LOG_LEVEL",
    "SENSITIVE_PROPERTIES",
    "KAFKA_OPTS",
    "KAFKA_HEAP_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
];

/// Prefixes the entrypoint turns into something: `CONNECT_X_Y` → worker property `x.y`.
pub const DEBEZIUM_CONNECT_ENV_PREFIXES: &[&str] = &["CONNECT_", "JFR_RECORDING_", "JFR_OPT_"];

/// Variables connector configs read through Kafka's `EnvVarConfigProvider`
/// (`${env:NAME}`): the sink writes `${env:TUMBLEWEED_SOURCE_DB_PASSWORD}` (deprecated
/// single secret) or `${env:TUMBLEWEED_SECRET_<KEY>}` (one per source,
/// [`SOURCE_SECRET_ENV_PREFIX`]).
pub const CONNECT_CONFIG_PROVIDER_ENV: &[&str] = &["TUMBLEWEED_SOURCE_DB_PASSWORD"];

/// Prefix of the per-source password variables: `source_db_password_secrets` key `KEY`
/// becomes `TUMBLEWEED_SECRET_<KEY>` in the sink and in Connect.
pub const SOURCE_SECRET_ENV_PREFIX: &str = "TUMBLEWEED_SECRET_";
const SOURCE_SECRETS_VAR: &str = "source_db_password_secrets";

/// The sink's consumer routes (`sink/src/http.rs`, `consumer_api`) as ALB path patterns
/// (`{name}` → `*`): the only paths the public listener may forward.
pub const CONSUMER_PATH_PATTERNS: &[&str] = &[
    "/v1/consumers/*/events",
    "/v1/consumers/*/ack",
    "/v1/consumers/*/tickets",
    "/healthz",
    "/readyz",
];

/// Ports of the public (consumer) listener: 443 with a certificate, 80 without. A listener
/// on another port is the admin listener.
pub const CONSUMER_LISTENER_PORTS: &[f64] = &[80.0, 443.0];

/// ARNs a secret variable's validation must refuse: a grant on them reads every secret
/// the pattern matches.
pub const WILDCARD_SECRET_ARNS: &[&str] = &[
    "arn:aws:secretsmanager:eu-central-1:111122223333:secret:*",
    "arn:aws:secretsmanager:eu-central-1:111122223333:secret:tw-prod/db-??????",
];

/// Settings whose image default is wrong for this deployment and that must therefore be set.
pub const DEBEZIUM_CONNECT_REQUIRED_ENV: &[(&str, &str)] = &[
    (
        "CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR",
        "the image's connect-distributed.properties says config.storage.replication.factor=1",
    ),
    (
        "CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR",
        "the image's connect-distributed.properties says offset.storage.replication.factor=1",
    ),
    (
        "CONNECT_STATUS_STORAGE_REPLICATION_FACTOR",
        "the image's connect-distributed.properties says status.storage.replication.factor=1",
    ),
];

/// One metric the sink publishes as CloudWatch Embedded Metric Format (the contract with
/// the sink's EMF output, once a minute in the namespace `TUMBLEWEED_EMF_NAMESPACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkMetric {
    pub name: &'static str,
    /// The metric's one dimension set (CloudWatch matches an alarm's dimensions exactly).
    pub dimensions: &'static [&'static str],
    /// The unit it is published with, when the contract fixes one: an alarm that names a
    /// unit sees only data points with that unit.
    pub unit: Option<&'static str>,
}

/// The sink's EMF metrics: dimension set `[["Deployment"]]` for the deployment-wide ones,
/// `[["Deployment","Slot"]]` and `[["Deployment","Consumer"]]` for the per-slot and
/// per-consumer ones.
pub const SINK_EMF_METRICS: &[SinkMetric] = &[
    SinkMetric {
        name: "MaxRetainedWalBytes",
        dimensions: &["Deployment"],
        unit: Some("Bytes"),
    },
    SinkMetric {
        name: "MaxConsumerLagEvents",
        dimensions: &["Deployment"],
        unit: Some("Count"),
    },
    SinkMetric {
        name: "KafkaReachable",
        dimensions: &["Deployment"],
        unit: None,
    },
    SinkMetric {
        name: "ConnectedStreams",
        dimensions: &["Deployment"],
        unit: None,
    },
    SinkMetric {
        name: "ResidentBytes",
        dimensions: &["Deployment"],
        unit: None,
    },
    SinkMetric {
        name: "RetainedWalBytes",
        dimensions: &["Deployment", "Slot"],
        unit: None,
    },
    SinkMetric {
        name: "ConsumerLagEvents",
        dimensions: &["Deployment", "Consumer"],
        unit: None,
    },
];

/// The sink publishes EMF only with both set: (name, what it is).
pub const SINK_EMF_ENV: &[(&str, &str)] = &[
    (
        "TUMBLEWEED_EMF_NAMESPACE",
        "the sink publishes the metrics the alarms watch only when it is set (the namespace)",
    ),
    (
        "TUMBLEWEED_EMF_DEPLOYMENT",
        "the sink publishes the metrics the alarms watch only when it is set (the Deployment dimension)",
    ),
];

/// The environment name the sink and Connect read the source database password from.
pub const SOURCE_DB_PASSWORD_ENV: &str = "TUMBLEWEED_SOURCE_DB_PASSWORD";
const SOURCE_DB_PASSWORD_VAR: &str = "source_db_password_secret_arn";

/// Whether the Debezium Connect image reads an environment variable of this name.
pub fn debezium_connect_reads(name: &str) -> bool {
    DEBEZIUM_CONNECT_NAMED_ENV.contains(&name)
        || CONNECT_CONFIG_PROVIDER_ENV.contains(&name)
        || (name.starts_with(SOURCE_SECRET_ENV_PREFIX)
            && name.len() > SOURCE_SECRET_ENV_PREFIX.len())
        || DEBEZIUM_CONNECT_ENV_PREFIXES
            .iter()
            .any(|p| name.starts_with(p) && name.len() > p.len())
}

struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex(starts)
    }

    fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

struct File {
    shown: PathBuf,
    lines: LineIndex,
    body: Body,
}

impl File {
    fn at(&self, span: Option<std::ops::Range<usize>>) -> Location {
        Location {
            file: self.shown.clone(),
            line: span.map(|s| self.lines.line(s.start)).unwrap_or(0),
        }
    }
}

/// One module directory, parsed, with its locals and variable defaults at hand.
pub struct ModuleSource {
    /// Last path component (`connect`, `sink`, `infra`, ...): rules that concern one
    /// component's image pick their module by it.
    pub name: String,
    files: Vec<File>,
}

impl ModuleSource {
    pub fn load(dir: &Path, display_base: &Path) -> Result<ModuleSource> {
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "tf"))
            .collect();
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let body: Body = hcl::edit::parser::parse_body(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            files.push(File {
                shown: path
                    .strip_prefix(display_base)
                    .unwrap_or(&path)
                    .to_path_buf(),
                lines: LineIndex::new(&text),
                body,
            });
        }
        Ok(ModuleSource {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            files,
        })
    }

    /// Parses one snippet as a module called `name` (unit tests).
    pub fn from_snippet(name: &str, text: &str) -> Result<ModuleSource> {
        Ok(ModuleSource {
            name: name.to_string(),
            files: vec![File {
                shown: PathBuf::from(format!("{name}/main.tf")),
                lines: LineIndex::new(text),
                body: hcl::edit::parser::parse_body(text).context("parsing the snippet")?,
            }],
        })
    }

    fn blocks(&self) -> impl Iterator<Item = (&File, &Block)> {
        self.files
            .iter()
            .flat_map(|f| f.body.blocks().map(move |b| (f, b)))
    }

    fn resources<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a File, &'a Block)> {
        self.blocks()
            .filter(move |(_, b)| b.ident.as_str() == "resource" && label(b, 0) == Some(kind))
    }

    fn data<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a File, &'a Block)> {
        self.blocks()
            .filter(move |(_, b)| b.ident.as_str() == "data" && label(b, 0) == Some(kind))
    }

    fn local(&self, name: &str) -> Option<&Expression> {
        self.blocks()
            .filter(|(_, b)| b.ident.as_str() == "locals")
            .find_map(|(_, b)| b.body.get_attribute(name).map(|a| &a.value))
    }

    fn variable(&self, name: &str) -> Option<&Block> {
        self.blocks()
            .map(|(_, b)| b)
            .find(|b| b.ident.as_str() == "variable" && label(b, 0) == Some(name))
    }

    fn variable_default(&self, name: &str) -> Option<&Expression> {
        self.variable(name)
            .and_then(|b| b.body.get_attribute("default"))
            .map(|a| &a.value)
    }
}

fn label(b: &Block, i: usize) -> Option<&str> {
    b.labels.get(i).map(|l| l.as_str())
}

fn resource_address(b: &Block) -> String {
    format!(
        "{}.{}",
        label(b, 0).unwrap_or("?"),
        label(b, 1).unwrap_or("?")
    )
}

/// `local.X` / `var.X` as (root, name).
fn root_ref(expr: &Expression) -> Option<(&str, &str)> {
    let Expression::Traversal(t) = expr else {
        return None;
    };
    let Expression::Variable(root) = &t.expr else {
        return None;
    };
    match t.operators.first().map(|o| o.value()) {
        Some(TraversalOperator::GetAttr(name)) if t.operators.len() == 1 => {
            Some((root.as_str(), name.as_str()))
        }
        _ => None,
    }
}

fn object_key(k: &ObjectKey) -> Option<String> {
    match k {
        ObjectKey::Ident(i) => Some(i.as_str().to_string()),
        ObjectKey::Expression(Expression::String(s)) => Some(s.value().clone()),
        _ => None,
    }
}

/// The names an expression can contribute to a container's `environment`/`secrets`: the
/// keys of map literals, the `name` of `{ name = ..., value = ... }` entries, followed
/// through locals, `merge`/`concat`/`keys`/`sort`, conditionals and `for` expressions.
/// Inputs (`var.X`) contribute names only the caller knows; they are skipped.
fn env_names(module: &ModuleSource, expr: &Expression, depth: usize, out: &mut BTreeSet<String>) {
    if depth > 16 {
        return;
    }
    match expr {
        Expression::Object(o) => {
            // An entry object of an ECS list: { name = "X", value/valueFrom = ... }.
            if let Some(name) = o
                .iter()
                .find(|(k, _)| object_key(k).as_deref() == Some("name"))
                .and_then(|(_, v)| v.expr().as_str())
            {
                if o.iter().any(|(k, _)| {
                    matches!(object_key(k).as_deref(), Some("value") | Some("valueFrom"))
                }) {
                    out.insert(name.to_string());
                    return;
                }
            }
            out.extend(o.iter().filter_map(|(k, _)| object_key(k)));
        }
        Expression::Array(a) => {
            for e in a.iter() {
                env_names(module, e, depth + 1, out);
            }
        }
        Expression::Parenthesis(p) => env_names(module, p.inner(), depth + 1, out),
        Expression::Conditional(c) => {
            env_names(module, &c.true_expr, depth + 1, out);
            env_names(module, &c.false_expr, depth + 1, out);
        }
        Expression::FuncCall(f) => {
            if matches!(
                f.name.name.as_str(),
                "merge" | "concat" | "keys" | "sort" | "tolist" | "toset" | "tomap" | "distinct"
            ) {
                for a in f.args.iter() {
                    env_names(module, a, depth + 1, out);
                }
            }
        }
        Expression::ForExpr(f) => match &f.key_expr {
            // { for k, v in X : k => v }: the keys of X.
            Some(_) => env_names(module, &f.intro.collection_expr, depth + 1, out),
            // [for k in keys(X) : { name = k, ... }]: the names of X.
            None => env_names(module, &f.intro.collection_expr, depth + 1, out),
        },
        Expression::Traversal(_) => {
            if let Some(("local", name)) = root_ref(expr) {
                if let Some(e) = module.local(name) {
                    env_names(module, e, depth + 1, out);
                }
            }
        }
        _ => {}
    }
}

/// One container's environment as the module writes it.
struct ContainerEnv<'a> {
    container: String,
    environment: BTreeSet<String>,
    secrets: BTreeSet<String>,
    secrets_expr: Option<&'a Expression>,
    /// Given to a `fargate-service` module call, which derives the execution role's
    /// grant from `secrets` (checked there by [`fargate_service_grants`]).
    via_service_module: bool,
    location: Location,
}

/// Every container of the module: in `aws_ecs_task_definition.container_definitions =
/// jsonencode([...])`, and in calls of a local `fargate-service` module.
fn containers(module: &ModuleSource) -> Vec<ContainerEnv<'_>> {
    let mut out = Vec::new();
    for (file, block) in module.resources("aws_ecs_task_definition") {
        let Some(attr) = block.body.get_attribute("container_definitions") else {
            continue;
        };
        let mut defs = &attr.value;
        if let Expression::FuncCall(f) = defs {
            if f.name.name.as_str() == "jsonencode" {
                if let Some(a) = f.args.iter().next() {
                    defs = a;
                }
            }
        }
        if let Some(("local", name)) = root_ref(defs) {
            if let Some(e) = module.local(name) {
                defs = e;
            }
        }
        let Expression::Array(list) = defs else {
            continue;
        };
        for c in list.iter() {
            let Expression::Object(o) = c else { continue };
            let get = |key: &str| {
                o.iter()
                    .find(|(k, _)| object_key(k).as_deref() == Some(key))
                    .map(|(_, v)| v.expr())
            };
            let mut environment = BTreeSet::new();
            let mut secrets = BTreeSet::new();
            if let Some(e) = get("environment") {
                env_names(module, e, 0, &mut environment);
            }
            if let Some(e) = get("secrets") {
                env_names(module, e, 0, &mut secrets);
            }
            out.push(ContainerEnv {
                container: get("name")
                    .and_then(|e| e.as_str())
                    .unwrap_or("?")
                    .to_string(),
                environment,
                secrets,
                secrets_expr: get("secrets"),
                via_service_module: false,
                location: file.at(attr.span()),
            });
        }
    }
    for (file, block) in module.blocks() {
        if block.ident.as_str() != "module" {
            continue;
        }
        let is_service = block
            .body
            .get_attribute("source")
            .and_then(|a| a.value.as_str())
            .is_some_and(|s| s.trim_end_matches('/').ends_with("fargate-service"));
        if !is_service {
            continue;
        }
        let mut environment = BTreeSet::new();
        let mut secrets = BTreeSet::new();
        if let Some(a) = block.body.get_attribute("environment") {
            env_names(module, &a.value, 0, &mut environment);
        }
        let secrets_expr = block.body.get_attribute("secrets").map(|a| &a.value);
        if let Some(e) = secrets_expr {
            env_names(module, e, 0, &mut secrets);
        }
        out.push(ContainerEnv {
            container: block
                .body
                .get_attribute("container_name")
                .and_then(|a| a.value.as_str())
                .or(label(block, 0))
                .unwrap_or("?")
                .to_string(),
            environment,
            secrets,
            secrets_expr,
            via_service_module: true,
            location: file.at(block.span()),
        });
    }
    out
}

/// Every `var.X` an expression depends on, following locals.
fn var_deps(module: &ModuleSource, expr: &Expression) -> BTreeSet<String> {
    struct Refs(Vec<(String, String)>);
    impl Visit for Refs {
        fn visit_traversal(&mut self, node: &Traversal) {
            if let Expression::Variable(root) = &node.expr {
                if let Some(TraversalOperator::GetAttr(name)) =
                    node.operators.first().map(|o| o.value())
                {
                    self.0
                        .push((root.as_str().to_string(), name.as_str().to_string()));
                }
            }
            visit::visit_traversal(self, node);
        }
    }
    let mut vars = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo = vec![expr];
    while let Some(e) = todo.pop() {
        let mut r = Refs(Vec::new());
        r.visit_expr(e);
        for (root, name) in r.0 {
            match root.as_str() {
                "var" => {
                    vars.insert(name);
                }
                "local" if seen.insert(name.clone()) => {
                    if let Some(l) = module.local(&name) {
                        todo.push(l);
                    }
                }
                _ => {}
            }
        }
    }
    vars
}

/// Possible string values of an expression: literals, variable defaults, both branches of
/// a conditional. None when any part is not known offline.
fn string_values(module: &ModuleSource, expr: &Expression) -> Option<BTreeSet<String>> {
    match expr {
        Expression::String(s) => Some(BTreeSet::from([s.value().clone()])),
        Expression::Parenthesis(p) => string_values(module, p.inner()),
        Expression::Conditional(c) => {
            let mut a = string_values(module, &c.true_expr)?;
            a.extend(string_values(module, &c.false_expr)?);
            Some(a)
        }
        _ => match root_ref(expr) {
            Some(("var", name)) => string_values(module, module.variable_default(name)?),
            Some(("local", name)) => string_values(module, module.local(name)?),
            _ => None,
        },
    }
}

fn has_lifecycle_flag(block: &Block, flag: &str) -> bool {
    block.body.get_blocks("lifecycle").any(|l| {
        l.body
            .get_attribute(flag)
            .is_some_and(|a| matches!(a.value, Expression::Bool(ref b) if *b.value()))
    })
}

fn contains_text(expr: &Expression, needle: &str) -> bool {
    struct Find<'n>(&'n str, bool);
    impl Visit for Find<'_> {
        fn visit_expr(&mut self, node: &Expression) {
            if node.as_str() == Some(self.0) {
                self.1 = true;
            }
            visit::visit_expr(self, node);
        }
    }
    let mut f = Find(needle, false);
    f.visit_expr(expr);
    f.1
}

/// Runs every rule over one module directory.
pub fn check_module(module: &ModuleSource, findings: &mut Vec<Finding>) {
    connect_environment(module, findings);
    sink_health_check(module, findings);
    fixed_names(module, findings);
    cpu_architecture(module, findings);
    elb_service_account(module, findings);
    stateful_storage(module, findings);
    source_db_password(module, findings);
    fargate_service_grants(module, findings);
    sink_metric_alarms(module, findings);
    sink_metrics_environment(module, findings);
    autoscaled_services(module, findings);
    source_secrets(module, findings);
    public_listener_routes(module, findings);
    admin_port_ingress(module, findings);
    secret_grants_exact(module, findings);
}

/// Alarms on a namespace other than `AWS/...` watch the sink's EMF metrics: name, dimension
/// keys and unit must be the contract's.
fn sink_metric_alarms(module: &ModuleSource, findings: &mut Vec<Finding>) {
    for (file, block) in module.resources("aws_cloudwatch_metric_alarm") {
        let Some(namespace) = block.body.get_attribute("namespace") else {
            continue;
        };
        if namespace
            .value
            .as_str()
            .is_some_and(|n| n.starts_with("AWS/"))
        {
            continue;
        }
        let resource = resource_address(block);
        let mut problem = |detail: String| {
            findings.push(Finding {
                location: file.at(block.span()),
                kind: FindingKind::MetricNotPublished {
                    resource: resource.clone(),
                    detail,
                },
            })
        };
        let Some(name) = block
            .body
            .get_attribute("metric_name")
            .and_then(|a| a.value.as_str())
        else {
            problem("metric_name is not a literal of the sink's metric contract".into());
            continue;
        };
        let Some(metric) = SINK_EMF_METRICS.iter().find(|m| m.name == name) else {
            problem(format!("the sink publishes no metric {name}"));
            continue;
        };
        let mut dims = BTreeSet::new();
        if let Some(d) = block.body.get_attribute("dimensions") {
            env_names(module, &d.value, 0, &mut dims);
        }
        let want: BTreeSet<String> = metric.dimensions.iter().map(|d| d.to_string()).collect();
        if dims != want {
            problem(format!(
                "dimensions {dims:?}, but the sink publishes {name} with exactly {want:?}"
            ));
        }
        let unit = block
            .body
            .get_attribute("unit")
            .map(|a| a.value.as_str().map(str::to_string));
        match (unit, metric.unit) {
            (None, _) => {}
            (Some(Some(u)), Some(want)) if u == want => {}
            (Some(u), want) => problem(format!(
                "unit {}: the sink publishes {name} {}",
                u.as_deref().unwrap_or("(not a literal)"),
                match want {
                    Some(w) => format!("in {w}"),
                    None =>
                        "without a unit fixed by the contract, so the alarm must not filter on one"
                            .into(),
                }
            )),
        }
    }
}

/// The sink's container turns EMF publishing on.
fn sink_metrics_environment(module: &ModuleSource, findings: &mut Vec<Finding>) {
    if module.name != "sink" {
        return;
    }
    for c in containers(module) {
        for (name, why) in SINK_EMF_ENV {
            if !c.environment.contains(*name) {
                findings.push(Finding {
                    location: c.location.clone(),
                    kind: FindingKind::MissingContainerEnv {
                        container: c.container.clone(),
                        name: name.to_string(),
                        why: why.to_string(),
                    },
                });
            }
        }
    }
}

/// The text of an expression, with a `local.X` replaced by its definition (one level).
fn expr_text(module: &ModuleSource, expr: &Expression) -> String {
    match root_ref(expr) {
        Some(("local", name)) => module
            .local(name)
            .map(|e| e.to_string())
            .unwrap_or_default(),
        _ => expr.to_string(),
    }
}

/// An ECS service whose count Application Auto Scaling owns must ignore `desired_count`.
fn autoscaled_services(module: &ModuleSource, findings: &mut Vec<Finding>) {
    for (file, target) in module.resources("aws_appautoscaling_target") {
        let dimension = target
            .body
            .get_attribute("scalable_dimension")
            .and_then(|a| a.value.as_str());
        if dimension != Some("ecs:service:DesiredCount") {
            continue;
        }
        let id = target
            .body
            .get_attribute("resource_id")
            .map(|a| expr_text(module, &a.value))
            .unwrap_or_default();
        let services: Vec<&Block> = module
            .resources("aws_ecs_service")
            .map(|(_, b)| b)
            .filter(|b| id.contains(&format!("aws_ecs_service.{}", label(b, 1).unwrap_or("?"))))
            .collect();
        let ignores = |b: &Block| {
            b.body.get_blocks("lifecycle").any(|l| {
                l.body
                    .get_attribute("ignore_changes")
                    .is_some_and(|a| a.value.to_string().contains("desired_count"))
            })
        };
        let service = match services.as_slice() {
            [] => "(no aws_ecs_service of this module in resource_id)".to_string(),
            found => match found.iter().find(|b| !ignores(b)) {
                Some(b) => resource_address(b),
                None => continue,
            },
        };
        findings.push(Finding {
            location: file.at(target.span()),
            kind: FindingKind::AutoscaledServiceSetsDesiredCount {
                resource: resource_address(target),
                service,
            },
        });
    }
}

fn connect_environment(module: &ModuleSource, findings: &mut Vec<Finding>) {
    if module.name != "connect" {
        return;
    }
    for c in containers(module) {
        for name in c.environment.iter().chain(c.secrets.iter()) {
            if !debezium_connect_reads(name) {
                findings.push(Finding {
                    location: c.location.clone(),
                    kind: FindingKind::UnreadContainerEnv {
                        container: c.container.clone(),
                        name: name.clone(),
                    },
                });
            }
        }
        for (name, why) in DEBEZIUM_CONNECT_REQUIRED_ENV {
            if !c.environment.contains(*name) {
                findings.push(Finding {
                    location: c.location.clone(),
                    kind: FindingKind::MissingContainerEnv {
                        container: c.container.clone(),
                        name: name.to_string(),
                        why: why.to_string(),
                    },
                });
            }
        }
    }
}

fn sink_health_check(module: &ModuleSource, findings: &mut Vec<Finding>) {
    if module.name != "sink" {
        return;
    }
    for (file, block) in module.resources("aws_lb_target_group") {
        let mut checked = false;
        for hc in block.body.get_blocks("health_check") {
            let Some(path) = hc.body.get_attribute("path") else {
                continue;
            };
            checked = true;
            let values = string_values(module, &path.value);
            let bad: Vec<String> = match &values {
                Some(v) => v
                    .iter()
                    .filter(|p| p.as_str() != SINK_LIVENESS_PATH)
                    .cloned()
                    .collect(),
                None => vec!["<not known offline>".to_string()],
            };
            for p in bad {
                findings.push(Finding {
                    location: file.at(path.span()),
                    kind: FindingKind::HealthCheckNotLiveness { path: p },
                });
            }
        }
        if !checked {
            findings.push(Finding {
                location: file.at(block.span()),
                kind: FindingKind::HealthCheckNotLiveness {
                    path: "<no health_check path>".to_string(),
                },
            });
        }
    }
}

/// Resource types whose name must be unique and that support `name_prefix`.
const NAME_PREFIX_TYPES: &[&str] = &[
    "aws_security_group",
    "aws_lb_target_group",
    "aws_iam_role",
    "aws_iam_policy",
    "aws_launch_template",
    "aws_lb",
];

fn fixed_names(module: &ModuleSource, findings: &mut Vec<Finding>) {
    for (file, block) in module.blocks() {
        if block.ident.as_str() != "resource"
            || !has_lifecycle_flag(block, "create_before_destroy")
            || !block.body.has_attribute("name")
        {
            continue;
        }
        let kind = label(block, 0).unwrap_or("");
        findings.push(Finding {
            location: file.at(block.span()),
            kind: FindingKind::FixedNameWithCreateBeforeDestroy {
                resource: resource_address(block),
                name_prefix_supported: NAME_PREFIX_TYPES.contains(&kind),
            },
        });
    }
}

fn cpu_architecture(module: &ModuleSource, findings: &mut Vec<Finding>) {
    for (file, block) in module.resources("aws_ecs_task_definition") {
        for rp in block.body.get_blocks("runtime_platform") {
            match rp.body.get_attribute("cpu_architecture") {
                Some(a) if matches!(root_ref(&a.value), Some(("var", _))) => {
                    let (_, var) = root_ref(&a.value).unwrap_or_default();
                    let validated = module
                        .variable(var)
                        .is_some_and(|v| v.body.has_blocks("validation"));
                    if !validated {
                        findings.push(Finding {
                            location: file.at(a.span()),
                            kind: FindingKind::UnvalidatedCpuArchitecture {
                                resource: resource_address(block),
                            },
                        });
                    }
                }
                Some(a) => findings.push(Finding {
                    location: file.at(a.span()),
                    kind: FindingKind::UnvalidatedCpuArchitecture {
                        resource: resource_address(block),
                    },
                }),
                None => findings.push(Finding {
                    location: file.at(rp.span()),
                    kind: FindingKind::UnvalidatedCpuArchitecture {
                        resource: resource_address(block),
                    },
                }),
            }
        }
    }
}

fn elb_service_account(module: &ModuleSource, findings: &mut Vec<Finding>) {
    for (file, block) in module.data("aws_elb_service_account") {
        findings.push(Finding {
            location: file.at(block.span()),
            kind: FindingKind::ElbServiceAccountDataSource,
        });
    }
    // A load balancer writing access logs needs the bucket policy form of newer regions.
    let logs = module
        .resources("aws_lb")
        .find(|(_, b)| b.body.has_blocks("access_logs"));
    if let Some((file, lb)) = logs {
        let principal = "logdelivery.elasticloadbalancing.amazonaws.com";
        let found = module.blocks().any(|(_, b)| {
            let mut any = false;
            struct Walk<'n>(&'n str, &'n mut bool);
            impl Visit for Walk<'_> {
                fn visit_expr(&mut self, node: &Expression) {
                    if contains_text(node, self.0) {
                        *self.1 = true;
                    }
                }
            }
            Walk(principal, &mut any).visit_body(&b.body);
            any
        });
        if !found {
            findings.push(Finding {
                location: file.at(lb.span()),
                kind: FindingKind::MissingLogDeliveryPrincipal {
                    resource: resource_address(lb),
                },
            });
        }
    }
}

fn stateful_storage(module: &ModuleSource, findings: &mut Vec<Finding>) {
    for (file, block) in module.resources("aws_efs_file_system") {
        let address = resource_address(block);
        if !has_lifecycle_flag(block, "prevent_destroy") {
            findings.push(Finding {
                location: file.at(block.span()),
                kind: FindingKind::UnprotectedStatefulResource {
                    resource: address.clone(),
                    missing: "lifecycle { prevent_destroy = true }".into(),
                },
            });
        }
        let name = label(block, 1).unwrap_or("");
        let target = format!("aws_efs_file_system.{name}.id");
        let backed_up = module.resources("aws_efs_backup_policy").any(|(_, b)| {
            let fs = b
                .body
                .get_attribute("file_system_id")
                .map(|a| a.value.to_string())
                .unwrap_or_default();
            let enabled = b.body.get_blocks("backup_policy").any(|p| {
                p.body
                    .get_attribute("status")
                    .and_then(|s| s.value.as_str())
                    == Some("ENABLED")
            });
            fs.trim() == target && enabled
        }) || module.resources("aws_backup_selection").any(|(_, b)| {
            b.body.get_attribute("resources").is_some_and(|a| {
                a.value
                    .to_string()
                    .contains(&format!("aws_efs_file_system.{name}.arn"))
            })
        });
        if !backed_up {
            findings.push(Finding {
                location: file.at(block.span()),
                kind: FindingKind::UnprotectedStatefulResource {
                    resource: address,
                    missing: "a backup (aws_efs_backup_policy ENABLED or an aws_backup_selection)"
                        .into(),
                },
            });
        }
    }
}

fn source_db_password(module: &ModuleSource, findings: &mut Vec<Finding>) {
    let Some(var_block) = module.variable(SOURCE_DB_PASSWORD_VAR) else {
        return;
    };
    // A module that only passes the input on (the root) has no container of its own.
    if containers(module).is_empty() {
        return;
    }
    let var_location = module
        .blocks()
        .find(|(_, b)| std::ptr::eq(*b, var_block))
        .map(|(f, b)| f.at(b.span()))
        .unwrap_or(Location {
            file: PathBuf::new(),
            line: 0,
        });
    let mut missing = Vec::new();

    // A container gets it as a secret of the agreed name.
    let wired_containers: Vec<bool> = containers(module)
        .iter()
        .filter(|c| {
            c.secrets.contains(SOURCE_DB_PASSWORD_ENV)
                && c.secrets_expr
                    .is_some_and(|e| var_deps(module, e).contains(SOURCE_DB_PASSWORD_VAR))
        })
        .map(|c| c.via_service_module)
        .collect();
    let wired = !wired_containers.is_empty();
    if !wired {
        missing.push(format!(
            "a container `secrets` entry {SOURCE_DB_PASSWORD_ENV} from var.{SOURCE_DB_PASSWORD_VAR}"
        ));
    }

    // The execution role may read it, scoped to exactly the secrets given (no "*"). A
    // fargate-service call derives that grant from its `secrets` input.
    let mut scoped = wired_containers.iter().any(|via| *via);
    if secret_grant_reaches(module, SOURCE_DB_PASSWORD_VAR) {
        scoped = true;
    }
    if !scoped {
        missing.push(format!(
            "an execution-role statement allowing secretsmanager:GetSecretValue on var.{SOURCE_DB_PASSWORD_VAR} (and not \"*\")"
        ));
    }
    for m in missing {
        findings.push(Finding {
            location: var_location.clone(),
            kind: FindingKind::SecretNotWired {
                variable: SOURCE_DB_PASSWORD_VAR.to_string(),
                missing: m,
            },
        });
    }
}

/// Whether a policy document statement allows `secretsmanager:GetSecretValue` on
/// resources that depend on `var.<variable>` and name no `"*"`.
fn secret_grant_reaches(module: &ModuleSource, variable: &str) -> bool {
    let mut scoped = false;
    for (_, doc) in module.data("aws_iam_policy_document") {
        for st in doc.body.blocks() {
            let (content, for_each) = match st.ident.as_str() {
                "statement" => (&st.body, None),
                "dynamic" if label(st, 0) == Some("statement") => {
                    match st.body.get_blocks("content").next() {
                        Some(c) => (&c.body, st.body.get_attribute("for_each").map(|a| &a.value)),
                        None => continue,
                    }
                }
                _ => continue,
            };
            let reads = content
                .get_attribute("actions")
                .is_some_and(|a| contains_text(&a.value, "secretsmanager:GetSecretValue"));
            let Some(resources) = content.get_attribute("resources") else {
                continue;
            };
            if !reads || contains_text(&resources.value, "*") {
                continue;
            }
            let mut deps = var_deps(module, &resources.value);
            if let Some(fe) = for_each {
                deps.extend(var_deps(module, fe));
            }
            if deps.contains(variable) {
                scoped = true;
            }
        }
    }
    scoped
}

/// The shared service module grants its execution role exactly the secrets it passes to
/// the container.
fn fargate_service_grants(module: &ModuleSource, findings: &mut Vec<Finding>) {
    if module.name != "fargate-service" || module.variable("secrets").is_none() {
        return;
    }
    if !secret_grant_reaches(module, "secrets") {
        let location = module
            .blocks()
            .find(|(_, b)| b.ident.as_str() == "variable" && label(b, 0) == Some("secrets"))
            .map(|(f, b)| f.at(b.span()))
            .unwrap_or(Location {
                file: PathBuf::new(),
                line: 0,
            });
        findings.push(Finding {
            location,
            kind: FindingKind::SecretNotWired {
                variable: "secrets".to_string(),
                missing: "an execution-role statement allowing secretsmanager:GetSecretValue on exactly var.secrets' ARNs (and not \"*\")".to_string(),
            },
        });
    }
}

// ---------------------------------------------------------------------------------------
// Issue #13: per-source secrets, the public listener's routes, the admin port, exact grants.
// ---------------------------------------------------------------------------------------

/// The text of an expression followed by the text of every local it reaches (transitively).
fn text_with_locals(module: &ModuleSource, expr: &Expression) -> String {
    struct Locals(Vec<String>);
    impl Visit for Locals {
        fn visit_traversal(&mut self, node: &Traversal) {
            if let Expression::Variable(root) = &node.expr {
                if root.as_str() == "local" {
                    if let Some(TraversalOperator::GetAttr(name)) =
                        node.operators.first().map(|o| o.value())
                    {
                        self.0.push(name.as_str().to_string());
                    }
                }
            }
            visit::visit_traversal(self, node);
        }
    }
    let mut text = expr.to_string();
    let mut seen = BTreeSet::new();
    let mut todo = vec![expr.clone()];
    while let Some(e) = todo.pop() {
        let mut l = Locals(Vec::new());
        l.visit_expr(&e);
        for name in l.0 {
            if seen.insert(name.clone()) {
                if let Some(def) = module.local(&name) {
                    text.push('\n');
                    text.push_str(&def.to_string());
                    todo.push(def.clone());
                }
            }
        }
    }
    text
}

/// `source_db_password_secrets` reaches a container as `TUMBLEWEED_SECRET_<KEY>` entries,
/// and the execution role may read them (through a fargate-service call, or a scoped
/// statement).
fn source_secrets(module: &ModuleSource, findings: &mut Vec<Finding>) {
    let Some(var_block) = module.variable(SOURCE_SECRETS_VAR) else {
        return;
    };
    let all = containers(module);
    // A module that only passes the input on (the root) has no container of its own.
    if all.is_empty() {
        return;
    }
    let var_location = module
        .blocks()
        .find(|(_, b)| std::ptr::eq(*b, var_block))
        .map(|(f, b)| f.at(b.span()))
        .unwrap_or(Location {
            file: PathBuf::new(),
            line: 0,
        });
    let wired: Vec<bool> = all
        .iter()
        .filter(|c| {
            c.secrets_expr.is_some_and(|e| {
                var_deps(module, e).contains(SOURCE_SECRETS_VAR)
                    && text_with_locals(module, e).contains(SOURCE_SECRET_ENV_PREFIX)
            })
        })
        .map(|c| c.via_service_module)
        .collect();
    let mut missing = Vec::new();
    if wired.is_empty() {
        missing.push(format!(
            "container `secrets` entry {SOURCE_SECRET_ENV_PREFIX}<KEY> for each key of var.{SOURCE_SECRETS_VAR}"
        ));
    }
    if !wired.iter().any(|via| *via) && !secret_grant_reaches(module, SOURCE_SECRETS_VAR) {
        missing.push(format!(
            "execution-role statement allowing secretsmanager:GetSecretValue on var.{SOURCE_SECRETS_VAR} (and not \"*\")"
        ));
    }
    for m in missing {
        findings.push(Finding {
            location: var_location.clone(),
            kind: FindingKind::SecretNotWired {
                variable: SOURCE_SECRETS_VAR.to_string(),
                missing: m,
            },
        });
    }
}

/// A number an expression is known to be offline: a literal, or a variable's default.
fn number_value(module: &ModuleSource, expr: &Expression) -> Option<f64> {
    match expr {
        Expression::Number(n) => n.value().as_f64(),
        Expression::Parenthesis(p) => number_value(module, p.inner()),
        _ => match root_ref(expr) {
            Some(("var", name)) => number_value(module, module.variable_default(name)?),
            Some(("local", name)) => number_value(module, module.local(name)?),
            _ => None,
        },
    }
}

/// `local.X.key` → the expression of `key` in the object local `X`; anything else as is.
fn resolve_local_attr<'a>(module: &'a ModuleSource, expr: &'a Expression) -> &'a Expression {
    let mut expr = expr;
    for _ in 0..8 {
        let Expression::Traversal(t) = expr else {
            return expr;
        };
        let Expression::Variable(root) = &t.expr else {
            return expr;
        };
        if root.as_str() != "local" {
            return expr;
        }
        let names: Vec<&str> = t
            .operators
            .iter()
            .filter_map(|o| match o.value() {
                TraversalOperator::GetAttr(n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        if names.len() != t.operators.len() {
            return expr;
        }
        let next = match names.as_slice() {
            [name] => module.local(name),
            [name, key] => match module.local(name) {
                Some(Expression::Object(o)) => o
                    .iter()
                    .find(|(k, _)| object_key(k).as_deref() == Some(*key))
                    .map(|(_, v)| v.expr()),
                _ => None,
            },
            _ => None,
        };
        match next {
            Some(e) => expr = e,
            None => return expr,
        }
    }
    expr
}

/// Resource names of type `kind` an expression refers to (`kind.NAME...`), following locals.
fn resource_refs(module: &ModuleSource, expr: &Expression, kind: &str) -> BTreeSet<String> {
    struct Refs<'k>(&'k str, Vec<String>, Vec<String>);
    impl Visit for Refs<'_> {
        fn visit_traversal(&mut self, node: &Traversal) {
            if let Expression::Variable(root) = &node.expr {
                if let Some(TraversalOperator::GetAttr(name)) =
                    node.operators.first().map(|o| o.value())
                {
                    if root.as_str() == self.0 {
                        self.1.push(name.as_str().to_string());
                    } else if root.as_str() == "local" {
                        self.2.push(name.as_str().to_string());
                    }
                }
            }
            visit::visit_traversal(self, node);
        }
    }
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo = vec![expr];
    while let Some(e) = todo.pop() {
        let mut r = Refs(kind, Vec::new(), Vec::new());
        r.visit_expr(e);
        out.extend(r.1);
        for l in r.2 {
            if seen.insert(l.clone()) {
                if let Some(def) = module.local(&l) {
                    todo.push(def);
                }
            }
        }
    }
    out
}

/// The strings of a list expression known offline (literals, through locals and defaults).
fn string_list(module: &ModuleSource, expr: &Expression) -> Option<Vec<String>> {
    match expr {
        Expression::Array(a) => a
            .iter()
            .map(|e| match e {
                Expression::String(s) => Some(s.value().clone()),
                _ => None,
            })
            .collect(),
        Expression::Parenthesis(p) => string_list(module, p.inner()),
        _ => match root_ref(expr) {
            Some(("var", name)) => string_list(module, module.variable_default(name)?),
            Some(("local", name)) => string_list(module, module.local(name)?),
            _ => None,
        },
    }
}

/// Whether an action block (`default_action` / `action`) forwards to a target group.
fn action_forwards(module: &ModuleSource, action: &Block) -> Option<bool> {
    if action.body.has_blocks("forward") || action.body.has_attribute("target_group_arn") {
        return Some(true);
    }
    let t = action.body.get_attribute("type")?;
    Some(string_values(module, &t.value)?.contains("forward"))
}

/// The consumer listener (443 or 80) forwards nothing by default, and its forwarding rules
/// match consumer routes only.
fn public_listener_routes(module: &ModuleSource, findings: &mut Vec<Finding>) {
    let mut public = BTreeSet::new();
    for (file, listener) in module.resources("aws_lb_listener") {
        let port = listener
            .body
            .get_attribute("port")
            .and_then(|a| number_value(module, &a.value));
        if !port.is_some_and(|p| CONSUMER_LISTENER_PORTS.contains(&p)) {
            continue;
        }
        let name = resource_address(listener);
        public.insert(label(listener, 1).unwrap_or("?").to_string());
        let actions: Vec<&Block> = listener.body.get_blocks("default_action").collect();
        let mut problem = |detail: &str| {
            findings.push(Finding {
                location: file.at(listener.span()),
                kind: FindingKind::PublicListenerForwards {
                    resource: name.clone(),
                    detail: detail.to_string(),
                },
            })
        };
        if actions.is_empty() {
            problem("it has no default_action");
        }
        for a in actions {
            match action_forwards(module, a) {
                Some(false) => {}
                Some(true) => problem("its default action forwards every path to the sink (the UI, the admin API, /metrics); answer a fixed 404 and forward the consumer routes by listener rules"),
                None => problem("the type of its default action is not known offline"),
            }
        }
    }
    if public.is_empty() {
        return;
    }
    for (file, rule) in module.resources("aws_lb_listener_rule") {
        let on_public = rule
            .body
            .get_attribute("listener_arn")
            .map(|a| resource_refs(module, &a.value, "aws_lb_listener"))
            .is_some_and(|refs| refs.iter().any(|r| public.contains(r)));
        if !on_public {
            continue;
        }
        let forwards = rule
            .body
            .get_blocks("action")
            .any(|a| action_forwards(module, a) != Some(false));
        if !forwards {
            continue;
        }
        let name = resource_address(rule);
        let mut problem = |detail: String| {
            findings.push(Finding {
                location: file.at(rule.span()),
                kind: FindingKind::PublicListenerForwards {
                    resource: name.clone(),
                    detail,
                },
            })
        };
        let patterns: Vec<&Block> = rule
            .body
            .get_blocks("condition")
            .flat_map(|c| c.body.get_blocks("path_pattern"))
            .collect();
        if patterns.is_empty() {
            problem("it forwards on the consumer listener without a path_pattern condition".into());
        }
        for pp in patterns {
            let values = pp
                .body
                .get_attribute("values")
                .and_then(|a| string_list(module, &a.value));
            match values {
                None => problem(
                    "its path_pattern values are not known offline (a list of literals, directly or in a local)"
                        .into(),
                ),
                Some(v) => {
                    let bad: Vec<String> = v
                        .into_iter()
                        .filter(|p| !CONSUMER_PATH_PATTERNS.contains(&p.as_str()))
                        .collect();
                    if !bad.is_empty() {
                        problem(format!(
                            "it forwards {bad:?} on the consumer listener, which are not consumer routes {CONSUMER_PATH_PATTERNS:?}"
                        ));
                    }
                }
            }
        }
    }
}

/// What a port expression of a security group rule is, relative to the admin port.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Port {
    Admin,
    Num(f64),
    Unknown,
}

fn port_of(module: &ModuleSource, expr: &Expression) -> Port {
    let e = resolve_local_attr(module, expr);
    if let Some(("var", "admin_port")) = root_ref(e) {
        return Port::Admin;
    }
    number_value(module, e)
        .map(Port::Num)
        .unwrap_or(Port::Unknown)
}

/// One ingress rule, in either resource shape: ports and sources.
struct Ingress<'a> {
    group: String,
    protocol: Option<String>,
    from: Option<&'a Expression>,
    to: Option<&'a Expression>,
    prefix_lists: BTreeSet<String>,
    other_sources: Vec<&'static str>,
}

fn ingress_rules(module: &ModuleSource) -> Vec<(&File, &Block, Ingress<'_>)> {
    let mut out = Vec::new();
    fn attr<'b>(b: &'b Block, n: &str) -> Option<&'b Expression> {
        b.body.get_attribute(n).map(|a| &a.value)
    }
    for (file, b) in module.resources("aws_vpc_security_group_ingress_rule") {
        let mut other = Vec::new();
        for a in ["cidr_ipv4", "cidr_ipv6", "referenced_security_group_id"] {
            if b.body.has_attribute(a) {
                other.push(a);
            }
        }
        out.push((
            file,
            b,
            Ingress {
                group: attr(b, "security_group_id")
                    .map(|e| e.to_string().trim().to_string())
                    .unwrap_or_default(),
                protocol: attr(b, "ip_protocol")
                    .and_then(|e| e.as_str())
                    .map(str::to_string),
                from: attr(b, "from_port"),
                to: attr(b, "to_port"),
                prefix_lists: attr(b, "prefix_list_id")
                    .map(|e| resource_refs(module, e, "aws_ec2_managed_prefix_list"))
                    .unwrap_or_default(),
                other_sources: other,
            },
        ));
    }
    for (file, b) in module.resources("aws_security_group_rule") {
        if attr(b, "type").and_then(|e| e.as_str()) != Some("ingress") {
            continue;
        }
        let mut other = Vec::new();
        for a in [
            "cidr_blocks",
            "ipv6_cidr_blocks",
            "source_security_group_id",
            "self",
        ] {
            if b.body.has_attribute(a) {
                other.push(a);
            }
        }
        out.push((
            file,
            b,
            Ingress {
                group: attr(b, "security_group_id")
                    .map(|e| e.to_string().trim().to_string())
                    .unwrap_or_default(),
                protocol: attr(b, "protocol")
                    .and_then(|e| e.as_str())
                    .map(str::to_string),
                from: attr(b, "from_port"),
                to: attr(b, "to_port"),
                prefix_lists: attr(b, "prefix_list_ids")
                    .map(|e| resource_refs(module, e, "aws_ec2_managed_prefix_list"))
                    .unwrap_or_default(),
                other_sources: other,
            },
        ));
    }
    out
}

/// In every security group that admits a prefix list (the load balancer's), the admin
/// listener's port (`var.admin_port`) is admitted from the operator prefix list only, and
/// from it at all.
fn admin_port_ingress(module: &ModuleSource, findings: &mut Vec<Finding>) {
    let Some(admin_var) = module.variable("admin_port") else {
        return;
    };
    let admin_default = module
        .variable_default("admin_port")
        .and_then(|e| number_value(module, e));
    let operators: BTreeSet<String> = module
        .resources("aws_ec2_managed_prefix_list")
        .filter(|(_, b)| {
            label(b, 1).is_some_and(|l| l.contains("operator"))
                || b.body
                    .get_attribute("name")
                    .is_some_and(|a| a.value.to_string().contains("operators"))
        })
        .filter_map(|(_, b)| label(b, 1).map(str::to_string))
        .collect();
    let rules = ingress_rules(module);
    let public: BTreeSet<String> = rules
        .iter()
        .filter(|(_, _, r)| !r.prefix_lists.is_empty())
        .map(|(_, _, r)| r.group.clone())
        .collect();
    if public.is_empty() {
        return;
    }
    let mut admitted = false;
    for (file, block, r) in &rules {
        if !public.contains(&r.group) {
            continue;
        }
        let all_ports = matches!(r.protocol.as_deref(), Some("-1") | Some("all"));
        let from = r.from.map(|e| port_of(module, e)).unwrap_or(Port::Unknown);
        let to = r.to.map(|e| port_of(module, e)).unwrap_or(Port::Unknown);
        let covers = all_ports
            || from == Port::Admin
            || to == Port::Admin
            || match (from, to, admin_default) {
                (Port::Num(a), Port::Num(b), Some(p)) => a <= p && p <= b,
                _ => false,
            };
        if !covers {
            continue;
        }
        let only_operators = r.other_sources.is_empty()
            && !r.prefix_lists.is_empty()
            && r.prefix_lists.iter().all(|p| operators.contains(p));
        if only_operators {
            admitted = true;
            continue;
        }
        let mut sources: Vec<String> = r
            .prefix_lists
            .iter()
            .map(|p| format!("aws_ec2_managed_prefix_list.{p}"))
            .collect();
        sources.extend(r.other_sources.iter().map(|s| s.to_string()));
        findings.push(Finding {
            location: file.at(block.span()),
            kind: FindingKind::AdminPortNotOperatorOnly {
                resource: resource_address(block),
                detail: format!(
                    "it admits {} on the admin listener's port (the UI and the admin API); only the operator prefix list may reach it",
                    if sources.is_empty() { "an unknown source".to_string() } else { sources.join(", ") }
                ),
            },
        });
    }
    if !admitted {
        let location = module
            .blocks()
            .find(|(_, b)| std::ptr::eq(*b, admin_var))
            .map(|(f, b)| f.at(b.span()))
            .unwrap_or(Location {
                file: PathBuf::new(),
                line: 0,
            });
        findings.push(Finding {
            location,
            kind: FindingKind::AdminPortNotOperatorOnly {
                resource: "var.admin_port".to_string(),
                detail: "no ingress rule admits the operator prefix list on it: operators cannot reach the UI and the admin API".to_string(),
            },
        });
    }
}

/// Whether an IAM action pattern (with `*` and `?`) matches an action, case-insensitively.
fn action_matches(pattern: &str, action: &str) -> bool {
    fn m(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], a) || (!a.is_empty() && m(p, &a[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => m(&p[1..], &a[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), action.as_bytes())
}

/// Every string literal of an expression.
fn literals(expr: &Expression) -> Vec<String> {
    struct L(Vec<String>);
    impl Visit for L {
        fn visit_expr(&mut self, node: &Expression) {
            if let Some(s) = node.as_str() {
                self.0.push(s.to_string());
            }
            visit::visit_expr(self, node);
        }
    }
    let mut l = L(Vec::new());
    l.visit_expr(expr);
    l.0
}

/// The variables a `resources` expression takes its ARNs from, when it is built from
/// variables only (lists, conditionals, locals, the dynamic block's iterator and the
/// functions that pick or merge values); otherwise what else it holds.
fn arn_sources(
    module: &ModuleSource,
    expr: &Expression,
    iterator: Option<(&str, &Expression)>,
    depth: usize,
    vars: &mut BTreeSet<String>,
    other: &mut Vec<String>,
) {
    if depth > 16 {
        other.push("an expression too deep to follow".into());
        return;
    }
    let recurse = |e: &Expression, vars: &mut BTreeSet<String>, other: &mut Vec<String>| {
        arn_sources(module, e, iterator, depth + 1, vars, other)
    };
    match expr {
        Expression::Array(a) => a.iter().for_each(|e| recurse(e, vars, other)),
        Expression::Parenthesis(p) => recurse(p.inner(), vars, other),
        Expression::Conditional(c) => {
            recurse(&c.true_expr, vars, other);
            recurse(&c.false_expr, vars, other);
        }
        Expression::FuncCall(f)
            if matches!(
                f.name.name.as_str(),
                "values"
                    | "distinct"
                    | "toset"
                    | "tolist"
                    | "compact"
                    | "sort"
                    | "flatten"
                    | "concat"
                    | "setunion"
                    | "one"
            ) =>
        {
            f.args.iter().for_each(|e| recurse(e, vars, other))
        }
        Expression::Traversal(t) => {
            let Expression::Variable(root) = &t.expr else {
                other.push(expr.to_string().trim().to_string());
                return;
            };
            let first = t.operators.first().map(|o| o.value());
            match (root.as_str(), first) {
                ("var", Some(TraversalOperator::GetAttr(name))) if t.operators.len() == 1 => {
                    vars.insert(name.as_str().to_string());
                }
                ("local", Some(TraversalOperator::GetAttr(name))) if t.operators.len() == 1 => {
                    match module.local(name.as_str()) {
                        Some(def) => recurse(def, vars, other),
                        None => other.push(format!("local.{}", name.as_str())),
                    }
                }
                (it, Some(TraversalOperator::GetAttr(attr)))
                    if iterator.is_some_and(|(n, _)| n == it) && attr.as_str() == "value" =>
                {
                    // The dynamic block's element: what its for_each holds.
                    if let Some((_, for_each)) = iterator {
                        arn_sources(module, for_each, None, depth + 1, vars, other);
                    }
                }
                _ => other.push(expr.to_string().trim().to_string()),
            }
        }
        _ => other.push(expr.to_string().trim().to_string()),
    }
}

/// `secretsmanager:GetSecretValue` is granted on exactly the ARNs variables declare (no
/// literal, computed or wildcard ARN), and those variables' validations refuse wildcards.
fn secret_grants_exact(module: &ModuleSource, findings: &mut Vec<Finding>) {
    for (file, doc) in module.data("aws_iam_policy_document") {
        for st in doc.body.blocks() {
            let (content, for_each, iterator) = match st.ident.as_str() {
                "statement" => (&st.body, None, None),
                "dynamic" if label(st, 0) == Some("statement") => {
                    let Some(c) = st.body.get_blocks("content").next() else {
                        continue;
                    };
                    let it = st
                        .body
                        .get_attribute("iterator")
                        .map(|a| a.value.to_string().trim().to_string())
                        .unwrap_or_else(|| "statement".to_string());
                    (
                        &c.body,
                        st.body.get_attribute("for_each").map(|a| &a.value),
                        Some(it),
                    )
                }
                _ => continue,
            };
            let effect_deny = content
                .get_attribute("effect")
                .and_then(|a| a.value.as_str())
                .is_some_and(|e| e == "Deny");
            let grants = content.get_attribute("actions").is_some_and(|a| {
                literals(&a.value)
                    .iter()
                    .any(|p| action_matches(p, "secretsmanager:GetSecretValue"))
            });
            if effect_deny || !grants {
                continue;
            }
            let sid = content
                .get_attribute("sid")
                .and_then(|a| a.value.as_str())
                .map(|s| format!("statement {s}"))
                .unwrap_or_else(|| "a statement".to_string());
            let what = format!(
                "data.aws_iam_policy_document.{}, {sid}",
                label(doc, 1).unwrap_or("?")
            );
            let mut problem = |detail: String| {
                findings.push(Finding {
                    location: file.at(st.span()),
                    kind: FindingKind::SecretGrantNotExact {
                        statement: what.clone(),
                        detail,
                    },
                })
            };
            if content.has_attribute("not_resources") {
                problem("it grants secretsmanager:GetSecretValue with not_resources (everything but a list)".into());
                continue;
            }
            let Some(resources) = content.get_attribute("resources") else {
                problem("it grants secretsmanager:GetSecretValue without resources".into());
                continue;
            };
            let mut vars = BTreeSet::new();
            let mut other = Vec::new();
            let it = iterator.as_deref().zip(for_each);
            arn_sources(module, &resources.value, it, 0, &mut vars, &mut other);
            for o in other {
                problem(format!(
                    "its resources hold {o}, not only the ARNs a variable declares{}",
                    if o.contains('*') { " (a wildcard)" } else { "" }
                ));
            }
            for v in vars {
                let Some(block) = module.variable(&v) else {
                    problem(format!(
                        "its resources come from var.{v}, which is not declared"
                    ));
                    continue;
                };
                let ty = block
                    .body
                    .get_attribute("type")
                    .map(|a| a.value.to_string().replace(' ', ""))
                    .unwrap_or_default();
                for arn in WILDCARD_SECRET_ARNS {
                    let value = if ty.starts_with("map(") {
                        crate::eval::Value::Obj(BTreeMap::from([(
                            "KEY".to_string(),
                            crate::eval::Value::str(arn),
                        )]))
                    } else if ty.starts_with("list(") || ty.starts_with("set(") {
                        crate::eval::Value::list_of_str(&[arn])
                    } else {
                        crate::eval::Value::str(arn)
                    };
                    match failing_validations(module, &[(v.as_str(), value)]) {
                        Ok(failing) if failing.iter().any(|(n, _)| n == &v) => {}
                        Ok(_) => problem(format!(
                            "var.{v} accepts the wildcard ARN {arn}: its validation must refuse * and ?"
                        )),
                        Err(e) => problem(format!(
                            "the validation of var.{v} cannot be evaluated offline ({e})"
                        )),
                    }
                }
            }
        }
    }
}

/// The module's validation cases need the variables' blocks; exposed for tests.
pub fn variable_blocks(module: &ModuleSource) -> BTreeMap<String, Block> {
    module
        .blocks()
        .filter(|(_, b)| b.ident.as_str() == "variable")
        .filter_map(|(_, b)| label(b, 0).map(|l| (l.to_string(), b.clone())))
        .collect()
}

/// Every `data` block of a type, for tests that evaluate a postcondition.
pub fn data_blocks(module: &ModuleSource, kind: &str) -> Vec<Block> {
    module.data(kind).map(|(_, b)| b.clone()).collect()
}

/// Runs the `validation` conditions of a module's variables on chosen inputs, the way
/// `terraform plan` would: every variable takes its default unless `inputs` names it, and
/// the validations run are those of the named variables and of every variable whose
/// conditions mention one of them (cross-variable validations). Returns the
/// `(variable, error_message)` of each failing validation.
pub fn failing_validations(
    module: &ModuleSource,
    inputs: &[(&str, crate::eval::Value)],
) -> Result<Vec<(String, String)>, crate::eval::EvalError> {
    use crate::eval::{eval, Scope, Value};
    let vars = variable_blocks(module);
    let mut values = BTreeMap::new();
    for (name, block) in &vars {
        let v = match block.body.get_attribute("default") {
            Some(d) => eval(&d.value, &Scope::new())?,
            None => Value::Null,
        };
        values.insert(name.clone(), v);
    }
    for (name, v) in inputs {
        values.insert(name.to_string(), v.clone());
    }
    let scope = Scope::from([("var".to_string(), Value::Obj(values))]);
    let mut failing = Vec::new();
    for (name, block) in &vars {
        for validation in block.body.get_blocks("validation") {
            let Some(cond) = validation.body.get_attribute("condition") else {
                continue;
            };
            let text = cond.value.to_string();
            let relevant = inputs.iter().any(|(i, _)| {
                i == name
                    || text.contains(&format!("var.{i} "))
                    || text.contains(&format!("var.{i})"))
                    || text.contains(&format!("var.{i},"))
            });
            if !relevant {
                continue;
            }
            let ok = match eval(&cond.value, &scope)? {
                Value::Bool(b) => b,
                other => {
                    return Err(crate::eval::EvalError::Failed(format!(
                        "{name}: condition is {other:?}"
                    )))
                }
            };
            if !ok {
                let msg = validation
                    .body
                    .get_attribute("error_message")
                    .and_then(|a| a.value.as_str())
                    .unwrap_or("")
                    .to_string();
                failing.push((name.clone(), msg));
            }
        }
    }
    Ok(failing)
}

/// Evaluates the `postcondition`s of `data "<kind>"` blocks with `self` bound to `self_value`
/// and variables at their defaults overridden by `inputs`; true when all hold.
pub fn data_postconditions_hold(
    module: &ModuleSource,
    kind: &str,
    self_value: crate::eval::Value,
    inputs: &[(&str, crate::eval::Value)],
) -> Result<bool, crate::eval::EvalError> {
    use crate::eval::{eval, Scope, Value};
    let mut values = BTreeMap::new();
    for (name, block) in variable_blocks(module) {
        let v = match block.body.get_attribute("default") {
            Some(d) => eval(&d.value, &Scope::new())?,
            None => Value::Null,
        };
        values.insert(name, v);
    }
    for (name, v) in inputs {
        values.insert(name.to_string(), v.clone());
    }
    let scope = Scope::from([
        ("var".to_string(), Value::Obj(values)),
        ("self".to_string(), self_value),
    ]);
    let mut found = false;
    for block in data_blocks(module, kind) {
        for lc in block.body.get_blocks("lifecycle") {
            for pc in lc.body.get_blocks("postcondition") {
                if let Some(c) = pc.body.get_attribute("condition") {
                    found = true;
                    if eval(&c.value, &scope)? != Value::Bool(true) {
                        return Ok(false);
                    }
                }
            }
        }
    }
    if !found {
        return Err(crate::eval::EvalError::Failed(format!(
            "no postcondition on data \"{kind}\""
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, hcl: &str) -> Vec<FindingKind> {
        let m = ModuleSource::from_snippet(name, hcl).expect("snippet parses");
        let mut f = Vec::new();
        check_module(&m, &mut f);
        f.into_iter().map(|f| f.kind).collect()
    }

    const CONNECT_TD: &str = r#"
locals {
  environment = {
    BOOTSTRAP_SERVERS                 = "b:9092"
    GROUP_ID                          = "g"
    CONFIG_STORAGE_REPLICATION_FACTOR = "3"
    CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR = "3"
    CONNECT_STATUS_STORAGE_REPLICATION_FACTOR = "3"
  }
}
resource "aws_ecs_task_definition" "this" {
  runtime_platform {
    cpu_architecture = var.arch
  }
  container_definitions = jsonencode([{
    name        = "connect"
    environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
  }])
}
variable "arch" {
  validation {
    condition     = true
    error_message = "x"
  }
}
"#;

    #[test]
    fn connect_env_names_the_image_does_not_read_are_reported() {
        let f = run("connect", CONNECT_TD);
        assert!(
            f.contains(&FindingKind::UnreadContainerEnv {
                container: "connect".into(),
                name: "CONFIG_STORAGE_REPLICATION_FACTOR".into(),
            }),
            "{f:?}"
        );
        assert!(
            f.contains(&FindingKind::MissingContainerEnv {
                container: "connect".into(),
                name: "CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR".into(),
                why: DEBEZIUM_CONNECT_REQUIRED_ENV[0].1.into(),
            }),
            "{f:?}"
        );
        assert_eq!(f.len(), 2, "{f:?}");
        // The same environment in another module is not Connect's business.
        assert!(run("kafka", CONNECT_TD).is_empty());
    }

    #[test]
    fn connect_env_with_prefixed_names_is_clean() {
        let fixed = CONNECT_TD.replace(
            "    CONFIG_STORAGE_REPLICATION_FACTOR = \"3\"",
            "    CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR = \"3\"",
        );
        assert_eq!(run("connect", &fixed), vec![]);
    }

    #[test]
    fn connect_env_through_a_fargate_service_call_is_checked() {
        let hcl = r#"
module "service" {
  source      = "../fargate-service"
  environment = merge(local.common, { REST_PORT = "8083", STATUS_STORAGE_REPLICATION_FACTOR = "3" })
  secrets     = { TUMBLEWEED_SOURCE_DB_PASSWORD = "arn" }
}
locals {
  common = {
    CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR = "3"
    CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR = "3"
    CONNECT_STATUS_STORAGE_REPLICATION_FACTOR = "3"
  }
}
"#;
        assert_eq!(
            run("connect", hcl),
            vec![FindingKind::UnreadContainerEnv {
                container: "service".into(),
                name: "STATUS_STORAGE_REPLICATION_FACTOR".into(),
            }]
        );
    }

    #[test]
    fn image_contract_accepts_what_the_entrypoint_reads() {
        for ok in [
            "BOOTSTRAP_SERVERS",
            "HEAP_OPTS",
            "CONNECT_TOPIC_CREATION_ENABLE",
            "TUMBLEWEED_SOURCE_DB_PASSWORD",
        ] {
            assert!(debezium_connect_reads(ok), "{ok}");
        }
        for bad in [
            "CONFIG_STORAGE_REPLICATION_FACTOR",
            "CONNECT_",
            "KAFKA_BOOTSTRAP_SERVERS",
        ] {
            assert!(!debezium_connect_reads(bad), "{bad}");
        }
    }

    #[test]
    fn sink_readiness_health_check_is_reported() {
        let hcl = r#"
variable "health_check_path" {
  default = "/readyz"
}
resource "aws_lb_target_group" "this" {
  health_check {
    path = var.health_check_path
  }
}
"#;
        assert_eq!(
            run("sink", hcl),
            vec![FindingKind::HealthCheckNotLiveness {
                path: "/readyz".into()
            }]
        );
        assert_eq!(run("sink", &hcl.replace("/readyz", "/healthz")), vec![]);
    }

    #[test]
    fn fixed_name_with_create_before_destroy_is_reported() {
        let hcl = r#"
resource "aws_security_group" "lb" {
  name = "x-lb"
  lifecycle {
    create_before_destroy = true
  }
}
resource "aws_security_group" "ok" {
  name_prefix = "x-ok-"
  lifecycle {
    create_before_destroy = true
  }
}
"#;
        assert_eq!(
            run("security", hcl),
            vec![FindingKind::FixedNameWithCreateBeforeDestroy {
                resource: "aws_security_group.lb".into(),
                name_prefix_supported: true,
            }]
        );
    }

    #[test]
    fn literal_cpu_architecture_is_reported() {
        let hcl = r#"
resource "aws_ecs_task_definition" "this" {
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
}
"#;
        assert_eq!(
            run("sink", hcl),
            vec![FindingKind::UnvalidatedCpuArchitecture {
                resource: "aws_ecs_task_definition.this".into()
            }]
        );
        let unvalidated = hcl.replace("\"X86_64\"", "var.arch") + "variable \"arch\" {}\n";
        assert_eq!(
            run("sink", &unvalidated),
            vec![FindingKind::UnvalidatedCpuArchitecture {
                resource: "aws_ecs_task_definition.this".into()
            }]
        );
    }

    #[test]
    fn elb_service_account_data_source_is_reported() {
        let hcl = r#"
data "aws_elb_service_account" "current" {}
resource "aws_lb" "this" {
  access_logs {
    bucket = "b"
  }
}
"#;
        assert_eq!(
            run("sink", hcl),
            vec![
                FindingKind::ElbServiceAccountDataSource,
                FindingKind::MissingLogDeliveryPrincipal {
                    resource: "aws_lb.this".into()
                }
            ]
        );
    }

    #[test]
    fn efs_without_prevent_destroy_or_backup_is_reported() {
        let hcl = r#"
resource "aws_efs_file_system" "this" {
  encrypted = true
}
"#;
        assert_eq!(run("kafka", hcl).len(), 2);
        let fixed = r#"
resource "aws_efs_file_system" "this" {
  lifecycle {
    prevent_destroy = true
  }
}
resource "aws_efs_backup_policy" "this" {
  file_system_id = aws_efs_file_system.this.id
  backup_policy {
    status = "ENABLED"
  }
}
"#;
        assert_eq!(run("kafka", fixed), vec![]);
        assert_eq!(run("kafka", &fixed.replace("ENABLED", "DISABLED")).len(), 1);
    }

    #[test]
    fn unwired_source_db_password_is_reported() {
        let declared_only = r#"
variable "source_db_password_secret_arn" {
  default = null
}
resource "aws_ecs_task_definition" "this" {
  container_definitions = jsonencode([{ name = "sink", secrets = [] }])
}
"#;
        let unwired = |hcl: &str| {
            run("sink", hcl)
                .into_iter()
                .filter(|k| matches!(k, FindingKind::SecretNotWired { .. }))
                .count()
        };
        assert_eq!(unwired(declared_only), 2);
        // The root only passes the input on: nothing to check there.
        assert_eq!(
            unwired(&declared_only[..declared_only.find("resource").unwrap()]),
            0
        );
        let wired = r#"
variable "source_db_password_secret_arn" {
  default = null
  validation {
    condition     = var.source_db_password_secret_arn == null || !can(regex("[*?]", var.source_db_password_secret_arn))
    error_message = "no wildcards"
  }
}
locals {
  secrets = var.source_db_password_secret_arn == null ? [] : [
    { name = "TUMBLEWEED_SOURCE_DB_PASSWORD", valueFrom = var.source_db_password_secret_arn },
  ]
}
resource "aws_ecs_task_definition" "this" {
  runtime_platform {
    cpu_architecture = "X86_64"
  }
  container_definitions = jsonencode([{
    name    = "sink"
    secrets = local.secrets
    # A sink container publishes its metrics (rule sink_metrics_environment).
    environment = [
      { name = "TUMBLEWEED_EMF_NAMESPACE", value = "Tumbleweed" },
      { name = "TUMBLEWEED_EMF_DEPLOYMENT", value = "tw" },
    ]
  }])
}
data "aws_iam_policy_document" "execution" {
  dynamic "statement" {
    for_each = var.source_db_password_secret_arn == null ? [] : [var.source_db_password_secret_arn]
    content {
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [statement.value]
    }
  }
}
"#;
        // Only the literal architecture is left.
        assert_eq!(
            run("sink", wired),
            vec![FindingKind::UnvalidatedCpuArchitecture {
                resource: "aws_ecs_task_definition.this".into()
            }]
        );
        let wildcard = wired.replace("[statement.value]", "[\"*\"]");
        assert_eq!(unwired(&wildcard), 1);
    }
    const LISTENERS: &str = r#"
variable "admin_port" {
  default = 8443
}
locals {
  consumer_path_patterns = ["/v1/consumers/*/events", "/healthz"]
  public_listener_arn    = one(concat(aws_lb_listener.https[*].arn))
}
resource "aws_lb_listener" "https" {
  port = 443
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      status_code  = "404"
    }
  }
}
resource "aws_lb_listener" "admin" {
  port = var.admin_port
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}
resource "aws_lb_listener_rule" "consumer_routes" {
  listener_arn = local.public_listener_arn
  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
  condition {
    path_pattern {
      values = local.consumer_path_patterns
    }
  }
}
resource "aws_lb_listener_rule" "admin_only" {
  listener_arn = aws_lb_listener.admin.arn
  action {
    type = "forward"
  }
  condition {
    path_pattern {
      values = ["/*"]
    }
  }
}
"#;

    fn listener_findings(hcl: &str) -> Vec<String> {
        run("lb", hcl)
            .into_iter()
            .map(|k| match k {
                FindingKind::PublicListenerForwards { resource, detail } => {
                    format!("{resource}: {detail}")
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn public_listener_forwards_consumer_routes_only() {
        assert_eq!(listener_findings(LISTENERS), Vec::<String>::new());
        // The default action forwards everything.
        let f = listener_findings(&LISTENERS.replacen(
            "type = \"fixed-response\"",
            "type = \"forward\"",
            1,
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with("aws_lb_listener.https: its default action forwards"),
            "{f:?}"
        );
        // Port 80 is the public listener too (no certificate).
        let f = listener_findings(&LISTENERS.replacen("port = 443", "port = 80", 1).replacen(
            "type = \"fixed-response\"",
            "type = \"forward\"",
            1,
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        // A rule forwarding more than the consumer routes.
        let f = listener_findings(&LISTENERS.replacen(
            "\"/healthz\"]",
            "\"/healthz\", \"/metrics\"]",
            1,
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("[\"/metrics\"]"), "{f:?}");
        // A forwarding rule without a path condition.
        let no_condition = LISTENERS.replacen(
            "  condition {\n    path_pattern {\n      values = local.consumer_path_patterns\n    }\n  }\n",
            "",
            1,
        );
        let f = listener_findings(&no_condition);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("without a path_pattern condition"), "{f:?}");
        // Patterns not known offline.
        let f = listener_findings(&LISTENERS.replacen(
            "values = local.consumer_path_patterns",
            "values = var.patterns",
            1,
        ));
        assert!(f[0].contains("not known offline"), "{f:?}");
        // The admin listener (another port) may forward anything.
        let f = listener_findings(&LISTENERS.replacen("\"/*\"", "\"/v1/*\"", 1));
        assert!(f.is_empty(), "{f:?}");
    }

    const SECURITY: &str = r#"
variable "admin_port" {
  default = 8443
}
variable "listener_port" {}
locals {
  ports = {
    listener = var.listener_port
    admin    = var.admin_port
    sink     = 8080
  }
}
resource "aws_ec2_managed_prefix_list" "operators" {
  name = "${var.name}-operators"
}
resource "aws_ec2_managed_prefix_list" "consumers" {
  name = "${var.name}-consumers"
}
resource "aws_vpc_security_group_ingress_rule" "lb_from_operators" {
  security_group_id = aws_security_group.lb.id
  ip_protocol       = "tcp"
  from_port         = local.ports.admin
  to_port           = local.ports.admin
  prefix_list_id    = aws_ec2_managed_prefix_list.operators.id
}
resource "aws_vpc_security_group_ingress_rule" "lb_from_consumers" {
  security_group_id = aws_security_group.lb.id
  ip_protocol       = "tcp"
  from_port         = local.ports.listener
  to_port           = local.ports.listener
  prefix_list_id    = aws_ec2_managed_prefix_list.consumers.id
}
resource "aws_vpc_security_group_ingress_rule" "sink_from_lb" {
  security_group_id            = aws_security_group.sink.id
  ip_protocol                  = "tcp"
  from_port                    = local.ports.sink
  to_port                      = local.ports.sink
  referenced_security_group_id = aws_security_group.lb.id
}
"#;

    fn admin_findings(hcl: &str) -> Vec<(String, String)> {
        run("security", hcl)
            .into_iter()
            .map(|k| match k {
                FindingKind::AdminPortNotOperatorOnly { resource, detail } => (resource, detail),
                other => (format!("{other:?}"), String::new()),
            })
            .collect()
    }

    #[test]
    fn admin_port_is_for_the_operator_prefix_list_only() {
        assert_eq!(admin_findings(SECURITY), vec![]);
        // The consumers on the admin port (and so nobody else there).
        let swapped = SECURITY.replacen(
            "from_port         = local.ports.listener\n  to_port           = local.ports.listener",
            "from_port         = local.ports.admin\n  to_port           = local.ports.admin",
            1,
        );
        let f = admin_findings(&swapped);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].0,
            "aws_vpc_security_group_ingress_rule.lb_from_consumers"
        );
        assert!(
            f[0].1.contains("aws_ec2_managed_prefix_list.consumers"),
            "{f:?}"
        );
        // The operator list moved to the consumer port: nobody reaches the admin port.
        let moved = SECURITY.replacen(
            "from_port         = local.ports.admin\n  to_port           = local.ports.admin",
            "from_port         = local.ports.listener\n  to_port           = local.ports.listener",
            1,
        );
        let f = admin_findings(&moved);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "var.admin_port");
        // A wide range from anywhere on the load balancer's group covers the admin port.
        let wide = format!(
            "{SECURITY}{}",
            r#"
resource "aws_vpc_security_group_ingress_rule" "lb_wide" {
  security_group_id = aws_security_group.lb.id
  ip_protocol       = "tcp"
  from_port         = 1024
  to_port           = 65535
  cidr_ipv4         = "0.0.0.0/0"
}
resource "aws_vpc_security_group_ingress_rule" "sink_wide" {
  security_group_id = aws_security_group.sink.id
  ip_protocol       = "-1"
  cidr_ipv4         = "10.0.0.0/8"
}
"#
        );
        let f = admin_findings(&wide);
        assert_eq!(f.len(), 1, "only the load balancer's group matters: {f:?}");
        assert_eq!(f[0].0, "aws_vpc_security_group_ingress_rule.lb_wide");
        assert!(f[0].1.contains("cidr_ipv4"), "{f:?}");
        // The operator list plus a CIDR in one rule is not operator-only.
        let f = admin_findings(&SECURITY.replacen(
            "prefix_list_id    = aws_ec2_managed_prefix_list.operators.id",
            "prefix_list_id    = aws_ec2_managed_prefix_list.operators.id\n  cidr_ipv4         = \"0.0.0.0/0\"",
            1,
        ));
        assert_eq!(f.len(), 2, "{f:?}");
    }

    const GRANT: &str = r#"
variable "secrets" {
  type    = map(string)
  default = {}
  validation {
    condition     = alltrue([for arn in values(var.secrets) : can(regex("^arn:[^:]+:secretsmanager:", arn)) && !can(regex("[*?]", arn))])
    error_message = "x"
  }
}
locals {
  secret_arns = distinct(values(var.secrets))
}
data "aws_iam_policy_document" "execution" {
  dynamic "statement" {
    for_each = length(local.secret_arns) == 0 ? [] : [local.secret_arns]
    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = statement.value
    }
  }
  statement {
    actions   = ["logs:PutLogEvents"]
    resources = ["*"]
  }
}
"#;

    fn grant_findings(hcl: &str) -> Vec<String> {
        run("svc", hcl)
            .into_iter()
            .map(|k| match k {
                FindingKind::SecretGrantNotExact { statement, detail } => {
                    format!("{statement}: {detail}")
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn secret_grant_is_exactly_the_declared_arns() {
        assert_eq!(grant_findings(GRANT), Vec::<String>::new());
        // A wildcard next to the declared ARNs.
        let f = grant_findings(&GRANT.replacen(
            "resources = statement.value",
            "resources = concat(statement.value, [\"arn:aws:secretsmanager:eu-west-1:111122223333:secret:*\"])",
            1,
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].contains("statement ReadSecrets") && f[0].contains("(a wildcard)"),
            "{f:?}"
        );
        // A computed ARN, even without a wildcard, is not a declared one.
        let f = grant_findings(&GRANT.replacen(
            "resources = statement.value",
            "resources = [\"arn:aws:secretsmanager:${var.region}:1:secret:x\"]",
            1,
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        // secretsmanager:* and Get* grant GetSecretValue too.
        for action in ["secretsmanager:*", "secretsmanager:Get*", "*"] {
            let f = grant_findings(&GRANT.replacen(
                "actions   = [\"logs:PutLogEvents\"]",
                &format!("actions   = [\"{action}\"]"),
                1,
            ));
            assert_eq!(f.len(), 1, "{action}: {f:?}");
        }
        // A variable whose validation lets a wildcard through.
        let f = grant_findings(&GRANT.replacen(" && !can(regex(\"[*?]\", arn))", "", 1));
        assert_eq!(f.len(), WILDCARD_SECRET_ARNS.len(), "{f:?}");
        assert!(
            f.iter()
                .all(|x| x.contains("var.secrets accepts the wildcard ARN")),
            "{f:?}"
        );
        // not_resources grants everything else.
        let f = grant_findings(&GRANT.replacen(
            "resources = statement.value",
            "not_resources = statement.value",
            1,
        ));
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn iam_action_patterns_match_like_iam() {
        for p in [
            "secretsmanager:GetSecretValue",
            "secretsmanager:*",
            "SecretsManager:get*",
            "*",
            "secretsmanager:GetSecret?alue",
        ] {
            assert!(action_matches(p, "secretsmanager:GetSecretValue"), "{p}");
        }
        for p in [
            "secretsmanager:DescribeSecret",
            "secretsmanager:List*",
            "kms:*",
            "secretsmanager:GetSecretValues",
        ] {
            assert!(!action_matches(p, "secretsmanager:GetSecretValue"), "{p}");
        }
    }

    #[test]
    fn per_source_secret_names_are_read_by_connect() {
        assert!(debezium_connect_reads("TUMBLEWEED_SECRET_ORDERS"));
        assert!(!debezium_connect_reads("TUMBLEWEED_SECRET_"));
        assert!(!debezium_connect_reads("TUMBLEWEED_SECRETS"));
    }
}
