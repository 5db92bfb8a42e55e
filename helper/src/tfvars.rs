//! `terraform.tfvars.json`: rendering it and editing single keys of it.
//!
//! # Design
//!
//! The root Terraform module's variables are the contract ([`CONTRACT_VARIABLES`]). `render`
//! collects values from flags — or, for the four required ones, from prompts when a
//! terminal is attached — validates them (CIDRs through [`crate::cidr`], the name prefix
//! against the module's regex) *before* anything is written, and serializes [`TfVars`] with
//! serde: the struct is the file's shape, so a variable cannot be misspelt or mis-encoded.
//! Optional variables that were not given are left out (`Option::None`), so Terraform's
//! defaults apply, while a given `false` or `0` is kept. The result is written atomically.
//!
//! `whitelist` edits existing files with [`set_list`], which keeps all other keys.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cli::GlobalArgs;
use crate::{cidr, fsutil, Outcome, OutputFormat, UsageError};

/// Every variable of the root module (infra/), by the names the contract fixes.
pub const CONTRACT_VARIABLES: &[&str] = &[
    "region",
    "name_prefix",
    "operator_cidrs",
    "consumer_cidrs",
    "prefix_list_max_entries",
    "vpc_cidr",
    "availability_zone_count",
    "single_nat_gateway",
    "kafka_image",
    "connect_image",
    "sink_image",
    "broker_cpu",
    "broker_memory",
    "connect_cpu",
    "connect_memory",
    "sink_cpu",
    "sink_memory",
    "sink_desired_count",
    "sink_min_count",
    "sink_max_count",
    "sse_keepalive_seconds",
    "lb_idle_timeout_seconds",
    "log_retention_days",
    "certificate_arn",
    "tags",
];

/// Defaults of infra's `sink_min_count`, `sink_max_count` and `sink_desired_count`.
pub const DEFAULT_SINK_MIN_COUNT: u32 = 2;
pub const DEFAULT_SINK_MAX_COUNT: u32 = 4;
pub const DEFAULT_SINK_DESIRED_COUNT: u32 = 2;

/// Default of the module's `prefix_list_max_entries`.
pub const DEFAULT_PREFIX_LIST_MAX_ENTRIES: u32 = 20;

/// Flags of `tumbleweed render` (the deployment region is the global `--region`).
#[derive(Debug, Clone, Default, Args)]
pub struct RenderArgs {
    /// Output file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "infra/terraform.tfvars.json"
    )]
    pub out: PathBuf,
    /// Never prompt, even with a terminal attached: missing required values are an error.
    #[arg(long)]
    pub no_input: bool,
    /// Prefix for every resource name (`^[a-z][a-z0-9-]{1,20}$`).
    #[arg(long)]
    pub name_prefix: Option<String>,
    /// IPs/CIDRs allowed to reach the operator API and UI (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "CIDR,...")]
    pub operator_cidrs: Option<Vec<String>>,
    /// IPs/CIDRs allowed to consume event streams (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "CIDR,...")]
    pub consumer_cidrs: Option<Vec<String>>,
    /// Capacity of each managed prefix list (module default 20).
    #[arg(long)]
    pub prefix_list_max_entries: Option<u32>,
    /// VPC CIDR block.
    #[arg(long)]
    pub vpc_cidr: Option<String>,
    #[arg(long)]
    pub availability_zone_count: Option<u32>,
    /// One NAT gateway for all AZs (cheaper, less available).
    #[arg(long, value_name = "true|false")]
    pub single_nat_gateway: Option<bool>,
    #[arg(long, value_name = "IMAGE")]
    pub kafka_image: Option<String>,
    #[arg(long, value_name = "IMAGE")]
    pub connect_image: Option<String>,
    #[arg(long, value_name = "IMAGE")]
    pub sink_image: Option<String>,
    #[arg(long)]
    pub broker_cpu: Option<u32>,
    #[arg(long)]
    pub broker_memory: Option<u32>,
    #[arg(long)]
    pub connect_cpu: Option<u32>,
    #[arg(long)]
    pub connect_memory: Option<u32>,
    #[arg(long)]
    pub sink_cpu: Option<u32>,
    #[arg(long)]
    pub sink_memory: Option<u32>,
    /// Sink tasks when the service is created, within the autoscaling range.
    #[arg(long)]
    pub sink_desired_count: Option<u32>,
    /// Fewest sink tasks the autoscaler keeps [Terraform's default: 2].
    #[arg(long)]
    pub sink_min_count: Option<u32>,
    /// Most sink tasks the autoscaler runs [Terraform's default: 4; at most 20].
    #[arg(long)]
    pub sink_max_count: Option<u32>,
    #[arg(long)]
    pub sse_keepalive_seconds: Option<u32>,
    #[arg(long)]
    pub lb_idle_timeout_seconds: Option<u32>,
    #[arg(long)]
    pub log_retention_days: Option<u32>,
    /// ACM certificate for HTTPS on the load balancer.
    #[arg(long, value_name = "ARN")]
    pub certificate_arn: Option<String>,
    /// Resource tag, repeatable: `--tag team=data`.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
}

/// Validated values: the shape of `terraform.tfvars.json` (optional ones only when given).
#[derive(Debug, Clone, Serialize)]
pub struct TfVars {
    pub region: String,
    pub name_prefix: String,
    pub operator_cidrs: Vec<String>,
    pub consumer_cidrs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_list_max_entries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_cidr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_nat_gateway: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_cpu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_memory: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_cpu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_memory: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_cpu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_memory: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_desired_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_min_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_max_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sse_keepalive_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lb_idle_timeout_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_retention_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// Checks `name_prefix` against the module's `^[a-z][a-z0-9-]{1,20}$`.
pub fn validate_name_prefix(p: &str) -> Result<(), UsageError> {
    let ok = (2..=21).contains(&p.len())
        && p.starts_with(|c: char| c.is_ascii_lowercase())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "invalid --name-prefix {p:?}: must match ^[a-z][a-z0-9-]{{1,20}}$"
        )))
    }
}

/// Validates flag values into [`TfVars`]; the required ones must be present by now.
pub fn validate(
    region: String,
    name_prefix: String,
    operator_cidrs: &[String],
    consumer_cidrs: &[String],
    a: &RenderArgs,
) -> Result<TfVars, UsageError> {
    let mut problems = Vec::new();
    if region.trim().is_empty() {
        problems.push("--region is empty".to_string());
    }
    if let Err(e) = validate_name_prefix(&name_prefix) {
        problems.push(e.0);
    }
    let mut norm = |flag: &str, list: &[String]| match cidr::normalize(list) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("--{flag}: {}", e.0));
            Vec::new()
        }
    };
    let operator_cidrs = norm("operator-cidrs", operator_cidrs);
    let consumer_cidrs = norm("consumer-cidrs", consumer_cidrs);
    let max = a
        .prefix_list_max_entries
        .unwrap_or(DEFAULT_PREFIX_LIST_MAX_ENTRIES) as usize;
    for (flag, l) in [
        ("operator-cidrs", &operator_cidrs),
        ("consumer-cidrs", &consumer_cidrs),
    ] {
        if l.len() > max {
            problems.push(format!(
                "--{flag} has {} entries but prefix lists hold {max} (raise --prefix-list-max-entries)",
                l.len()
            ));
        }
    }
    if let Some(v) = &a.vpc_cidr {
        match cidr::parse_one(v) {
            Ok(ipnet::IpNet::V4(n)) => {
                if n.prefix_len() > 24 {
                    problems.push(format!("--vpc-cidr {v}: too small for the VPC's subnets"))
                }
            }
            Ok(_) => problems.push(format!("--vpc-cidr {v}: must be an IPv4 network")),
            Err(e) => problems.push(format!("--vpc-cidr: {e}")),
        }
    }
    // The sink's task counts, as infra/variables.tf validates them (its defaults for the
    // ones not given; `defaults_of_the_sink_counts_match_infra` keeps these in step).
    let min = a.sink_min_count.unwrap_or(DEFAULT_SINK_MIN_COUNT);
    let max = a.sink_max_count.unwrap_or(DEFAULT_SINK_MAX_COUNT);
    let desired = a
        .sink_desired_count
        .unwrap_or(min.max(DEFAULT_SINK_DESIRED_COUNT));
    if !(1..=20).contains(&max) || min < 1 || min > max {
        problems.push(format!(
            "--sink-min-count {min} and --sink-max-count {max}: need 1 <= min <= max <= 20"
        ));
    } else if a.sink_desired_count.is_some() && !(min..=max).contains(&desired) {
        problems.push(format!(
            "--sink-desired-count {desired} must lie within --sink-min-count {min} .. --sink-max-count {max} (the autoscaling range)"
        ));
    }
    let mut tags = BTreeMap::new();
    for t in &a.tags {
        match t.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                tags.insert(k.trim().to_string(), v.to_string());
            }
            _ => problems.push(format!("--tag {t:?}: expected KEY=VALUE")),
        }
    }
    if !problems.is_empty() {
        return Err(UsageError(problems.join("; ")));
    }
    Ok(TfVars {
        region,
        name_prefix,
        operator_cidrs,
        consumer_cidrs,
        prefix_list_max_entries: a.prefix_list_max_entries,
        vpc_cidr: a
            .vpc_cidr
            .as_deref()
            .map(|v| cidr::parse_one(v).unwrap().to_string()),
        availability_zone_count: a.availability_zone_count,
        single_nat_gateway: a.single_nat_gateway,
        kafka_image: a.kafka_image.clone(),
        connect_image: a.connect_image.clone(),
        sink_image: a.sink_image.clone(),
        broker_cpu: a.broker_cpu,
        broker_memory: a.broker_memory,
        connect_cpu: a.connect_cpu,
        connect_memory: a.connect_memory,
        sink_cpu: a.sink_cpu,
        sink_memory: a.sink_memory,
        sink_desired_count: a.sink_desired_count,
        sink_min_count: a.sink_min_count,
        sink_max_count: a.sink_max_count,
        sse_keepalive_seconds: a.sse_keepalive_seconds,
        lb_idle_timeout_seconds: a.lb_idle_timeout_seconds,
        log_retention_days: a.log_retention_days,
        certificate_arn: a.certificate_arn.clone(),
        tags: (!tags.is_empty()).then_some(tags),
    })
}

/// The file's text for `vars` (pretty JSON, one variable per line).
pub fn render(vars: &TfVars) -> anyhow::Result<String> {
    serde_json::to_string_pretty(vars).context("serializing the tfvars")
}

fn prompt(label: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    write!(err, "{label}: ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading from the terminal")?;
    Ok(line.trim().to_string())
}

fn required<T>(
    value: Option<T>,
    flag: &str,
    label: &str,
    interactive: bool,
    parse: impl Fn(String) -> T,
) -> anyhow::Result<T> {
    match value {
        Some(v) => Ok(v),
        None if interactive => Ok(parse(prompt(label)?)),
        None => Err(UsageError(format!(
            "missing --{flag} (no terminal to prompt on; pass the flag)"
        ))
        .into()),
    }
}

fn split_list(s: String) -> Vec<String> {
    s.split([',', ' '])
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// `tumbleweed render`.
pub fn run_render(g: &GlobalArgs, a: RenderArgs) -> anyhow::Result<Outcome> {
    let interactive = !a.no_input && std::io::stdin().is_terminal();
    let region = required(
        g.region.clone(),
        "region",
        "AWS region (e.g. eu-west-1)",
        interactive,
        |s| s,
    )?;
    let name_prefix = required(
        a.name_prefix.clone(),
        "name-prefix",
        "Name prefix (lowercase, e.g. tumbleweed)",
        interactive,
        |s| s,
    )?;
    let operator_cidrs = required(
        a.operator_cidrs.clone(),
        "operator-cidrs",
        "Operator IPs/CIDRs (comma-separated)",
        interactive,
        split_list,
    )?;
    let consumer_cidrs = required(
        a.consumer_cidrs.clone(),
        "consumer-cidrs",
        "Consumer IPs/CIDRs (comma-separated)",
        interactive,
        split_list,
    )?;
    let vars = validate(region, name_prefix, &operator_cidrs, &consumer_cidrs, &a)?;
    let text = render(&vars)?;
    fsutil::write_atomic(&a.out, text.as_bytes(), Some(0o644))
        .with_context(|| format!("writing {}", a.out.display()))?;
    match g.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"written": a.out, "operator_cidrs": vars.operator_cidrs, "consumer_cidrs": vars.consumer_cidrs})
        ),
        OutputFormat::Text => println!("wrote {}", a.out.display()),
    }
    Ok(Outcome::Success)
}

/// Reads a tfvars JSON file as an object.
pub fn read(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))? {
        Value::Object(m) => Ok(m),
        _ => anyhow::bail!("{} is not a JSON object", path.display()),
    }
}

/// Reads the string list stored under `key` (empty when absent).
pub fn get_list(vars: &Map<String, Value>, key: &str) -> anyhow::Result<Vec<String>> {
    match vars.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .with_context(|| format!("{key} has a non-string item"))
            })
            .collect(),
        Some(_) => anyhow::bail!("{key} is not a list"),
    }
}

/// Replaces `key` with `list` in the tfvars file at `path`, keeping every other key.
pub fn set_list(path: &Path, key: &str, list: &[String]) -> anyhow::Result<()> {
    let mut vars = read(path)?;
    vars.insert(key.to_string(), Value::from(list.to_vec()));
    let mut text = serde_json::to_string_pretty(&Value::Object(vars))?;
    text.push('\n');
    fsutil::write_atomic(path, text.as_bytes(), Some(0o644))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default of `name` in infra/variables.tf.
    fn infra_default(name: &str) -> u32 {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/variables.tf"),
        )
        .unwrap();
        let block = &text[text.find(&format!("variable \"{name}\"")).unwrap()..];
        let line = block
            .lines()
            .find(|l| l.trim_start().starts_with("default"))
            .unwrap();
        line.split('=').nth(1).unwrap().trim().parse().unwrap()
    }

    #[test]
    fn defaults_of_the_sink_counts_match_infra() {
        assert_eq!(infra_default("sink_min_count"), DEFAULT_SINK_MIN_COUNT);
        assert_eq!(infra_default("sink_max_count"), DEFAULT_SINK_MAX_COUNT);
        assert_eq!(
            infra_default("sink_desired_count"),
            DEFAULT_SINK_DESIRED_COUNT
        );
    }

    #[test]
    fn sink_counts_are_checked_like_terraform_does() {
        let check = |d: Option<u32>, min: Option<u32>, max: Option<u32>| {
            let a = RenderArgs {
                sink_desired_count: d,
                sink_min_count: min,
                sink_max_count: max,
                ..base()
            };
            validate("r".into(), "tw-1".into(), &[], &[], &a).map(|_| ())
        };
        assert!(check(None, None, None).is_ok());
        assert!(check(Some(3), None, None).is_ok());
        // 0 ("stopped") is below the default minimum of 2.
        let e = check(Some(0), None, None).unwrap_err().0;
        assert!(
            e.contains(
                "--sink-desired-count 0 must lie within --sink-min-count 2 .. --sink-max-count 4"
            ),
            "{e}"
        );
        assert!(check(Some(6), None, None).is_err());
        assert!(check(Some(6), None, Some(8)).is_ok());
        let e = check(None, Some(5), Some(3)).unwrap_err().0;
        assert!(e.contains("need 1 <= min <= max <= 20"), "{e}");
        assert!(check(None, Some(0), None).is_err());
        assert!(check(None, None, Some(21)).is_err());
    }

    fn base() -> RenderArgs {
        RenderArgs::default()
    }

    #[test]
    fn renders_required_only() {
        let v = validate(
            "eu-west-1".into(),
            "tw".into(),
            &["10.0.0.1".into()],
            &["192.0.2.0/24".into(), "192.0.2.0/24".into()],
            &base(),
        )
        .unwrap();
        let text = render(&v).unwrap();
        let j: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"region":"eu-west-1","name_prefix":"tw",
                "operator_cidrs":["10.0.0.1/32"],"consumer_cidrs":["192.0.2.0/24"]})
        );
    }

    #[test]
    fn renders_every_optional_with_false_and_zero_kept() {
        let a = RenderArgs {
            prefix_list_max_entries: Some(30),
            vpc_cidr: Some("10.20.0.0/16".into()),
            availability_zone_count: Some(2),
            single_nat_gateway: Some(false),
            kafka_image: Some("k:1".into()),
            connect_image: Some("c:1".into()),
            sink_image: Some("s:\"1\"".into()),
            broker_cpu: Some(1024),
            broker_memory: Some(2048),
            connect_cpu: Some(512),
            connect_memory: Some(1024),
            sink_cpu: Some(256),
            sink_memory: Some(512),
            sink_desired_count: Some(3),
            sink_min_count: Some(1),
            sink_max_count: Some(5),
            sse_keepalive_seconds: Some(15),
            lb_idle_timeout_seconds: Some(3600),
            log_retention_days: Some(7),
            certificate_arn: Some("arn:aws:acm:x".into()),
            tags: vec!["team=data".into(), "env=prod".into()],
            ..base()
        };
        let v = validate("r".into(), "tw-1".into(), &[], &[], &a).unwrap();
        let j: Map<String, Value> = serde_json::from_str(&render(&v).unwrap()).unwrap();
        let mut keys: Vec<&str> = j.keys().map(String::as_str).collect();
        keys.sort();
        let mut want = CONTRACT_VARIABLES.to_vec();
        want.sort();
        assert_eq!(keys, want);
        assert_eq!(j["single_nat_gateway"], Value::Bool(false));
        assert_eq!(j["sink_desired_count"], Value::from(3));
        assert_eq!(j["sink_min_count"], Value::from(1));
        assert_eq!(j["sink_image"], Value::from("s:\"1\""));
        assert_eq!(j["tags"], serde_json::json!({"env":"prod","team":"data"}));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let e = validate(
            "r".into(),
            "Bad_Prefix".into(),
            &["10.0.0.1/8".into()],
            &[],
            &base(),
        )
        .unwrap_err();
        assert!(e.0.contains("name-prefix"), "{e}");
        assert!(e.0.contains("10.0.0.1/8"), "{e}");
    }

    #[test]
    fn too_many_entries_for_the_prefix_list() {
        let many: Vec<String> = (0..21).map(|i| format!("10.0.0.{i}")).collect();
        let e = validate("r".into(), "tw".into(), &many, &[], &base()).unwrap_err();
        assert!(e.0.contains("21 entries"), "{e}");
    }

    #[test]
    fn set_list_keeps_other_keys() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.json");
        std::fs::write(&p, r#"{"region":"r","operator_cidrs":["1.1.1.1/32"]}"#).unwrap();
        set_list(&p, "operator_cidrs", &["2.2.2.2/32".into()]).unwrap();
        let m = read(&p).unwrap();
        assert_eq!(m["region"], "r");
        assert_eq!(get_list(&m, "operator_cidrs").unwrap(), ["2.2.2.2/32"]);
    }
}
