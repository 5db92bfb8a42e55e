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
/// (`${env:NAME}`): the sink writes `${env:TUMBLEWEED_SOURCE_DB_PASSWORD}`.
pub const CONNECT_CONFIG_PROVIDER_ENV: &[&str] = &["TUMBLEWEED_SOURCE_DB_PASSWORD"];

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
}
