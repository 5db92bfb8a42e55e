//! The local cluster (`scripts/stack up --cluster`) runs the broker settings that
//! `modules/kafka` renders on ECS.
//!
//! The ECS task definitions pass settings to the apache/kafka image as `KAFKA_*` environment
//! variables, which the image turns into server properties (`KAFKA_` dropped, `_` → `.`,
//! lower case). Every such variable in `modules/kafka/main.tf` must appear in the properties
//! that `scripts/stack props` prints for the cluster's nodes, with the same value wherever the
//! module gives a literal or a variable's default. Addresses, paths, ids and heap sizes differ
//! by nature (127.0.0.1 ports vs Cloud Map names) and are checked for presence only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `KAFKA_FOO_BAR` → `foo.bar`, as the apache/kafka image maps environment to properties.
fn property_name(env: &str) -> String {
    env.trim_start_matches("KAFKA_")
        .replace("___", "-")
        .replace("__", "\u{0}")
        .replace('_', ".")
        .replace('\u{0}', "_")
        .to_lowercase()
}

/// `default = …` of `variable "name"` in modules/kafka/variables.tf.
fn variable_default(vars: &str, name: &str) -> Result<String> {
    let start = vars
        .find(&format!("variable \"{name}\""))
        .with_context(|| format!("variable {name} in modules/kafka/variables.tf"))?;
    vars[start..]
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("default"))
        .and_then(|l| l.trim_start().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .with_context(|| format!("a default for variable {name}"))
}

/// Every `KAFKA_*` setting of the module: name → expected value (None: presence only).
fn module_settings() -> Result<BTreeMap<String, Option<String>>> {
    let main = std::fs::read_to_string(repo().join("modules/kafka/main.tf"))?;
    let vars = std::fs::read_to_string(repo().join("modules/kafka/variables.tf"))?;
    let mut out = BTreeMap::new();
    for line in main.lines().map(str::trim) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if !key.starts_with("KAFKA_") || key.contains(' ') {
            continue;
        }
        let value = value.trim();
        let expected = if let Some(lit) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'))
        {
            (!lit.contains("${")).then(|| lit.to_string())
        } else if let Some(var) = value
            .strip_prefix("tostring(var.")
            .and_then(|v| v.strip_suffix(')'))
        {
            Some(variable_default(&vars, var)?)
        } else {
            None
        };
        out.insert(key.to_string(), expected);
    }
    if out.len() < 10 {
        bail!(
            "found only {} KAFKA_* settings in modules/kafka/main.tf: {out:?}",
            out.len()
        );
    }
    Ok(out)
}

fn local_props(node: &str) -> Result<BTreeMap<String, String>> {
    let out = Command::new(repo().join("scripts/stack"))
        .args(["props", node])
        .output()
        .context("running scripts/stack props")?;
    if !out.status.success() {
        bail!(
            "scripts/stack props {node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Settings that differ by nature between ECS and loopback, checked for presence only.
const PRESENCE_ONLY: &[&str] = &["KAFKA_HEAP_OPTS"];

#[test]
fn local_cluster_runs_the_ecs_module_broker_settings() -> Result<()> {
    let module = module_settings()?;
    let broker = local_props("broker-1")?;
    let controller = local_props("controller-1")?;
    let mut problems = Vec::new();
    for (env, expected) in &module {
        if PRESENCE_ONLY.contains(&env.as_str()) {
            continue;
        }
        let prop = property_name(env);
        let found = broker.get(&prop).or_else(|| controller.get(&prop));
        match (found, expected) {
            (None, _) => problems.push(format!(
                "{env}: no {prop} in the local cluster's properties"
            )),
            (Some(got), Some(want)) if got != want => problems.push(format!(
                "{env}: ECS sets {prop}={want}, the local cluster {prop}={got}"
            )),
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "scripts/stack and modules/kafka disagree:\n{}",
        problems.join("\n")
    );
    // The checks above are not vacuous: the replication settings are compared by value.
    assert_eq!(module["KAFKA_MIN_INSYNC_REPLICAS"].as_deref(), Some("2"));
    assert_eq!(broker["default.replication.factor"], "3");
    assert!(broker.contains_key("broker.rack"));
    Ok(())
}

#[test]
fn property_names_follow_the_image_convention() {
    assert_eq!(
        property_name("KAFKA_MIN_INSYNC_REPLICAS"),
        "min.insync.replicas"
    );
    assert_eq!(property_name("KAFKA_BROKER_RACK"), "broker.rack");
    assert_eq!(property_name("KAFKA_A__B___C_D"), "a_b-c.d");
}
