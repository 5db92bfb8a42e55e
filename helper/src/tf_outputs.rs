//! Reading Terraform outputs.
//!
//! # Design
//!
//! Commands that act on a live deployment find their AWS resource ids in the root module's
//! outputs (`terraform output -json`: `{"name": {"value": ..., "type": ..., "sensitive": ..}}`).
//! They come from a file (`--tf-outputs`, handy in CI and tests) or from running
//! `terraform output -json` in `--infra-dir`. Only the `value`s are kept; accessors name the
//! missing output in their error so the user knows which `terraform apply` is incomplete.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

use crate::cli::TfOutputArgs;

/// The `value`s of a root module's outputs, by name.
#[derive(Debug, Clone, Default)]
pub struct TfOutputs(pub BTreeMap<String, Value>);

impl TfOutputs {
    /// Parses the JSON printed by `terraform output -json`.
    pub fn parse(json: &str) -> anyhow::Result<Self> {
        let raw: BTreeMap<String, Value> =
            serde_json::from_str(json).context("parsing `terraform output -json`")?;
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            let value = match v {
                Value::Object(mut o) if o.contains_key("value") => o.remove("value").unwrap(),
                other => bail!("output {k:?} has no \"value\" field (got {other})"),
            };
            out.insert(k, value);
        }
        Ok(Self(out))
    }

    /// Reads the outputs from `--tf-outputs` or by running terraform in `--infra-dir`.
    pub fn load(args: &TfOutputArgs) -> anyhow::Result<Self> {
        match &args.tf_outputs {
            Some(file) => Self::from_file(file),
            None => Self::from_terraform(&args.infra_dir),
        }
    }

    pub fn from_file(file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading terraform outputs {}", file.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", file.display()))
    }

    pub fn from_terraform(dir: &Path) -> anyhow::Result<Self> {
        let out = std::process::Command::new("terraform")
            .arg(format!("-chdir={}", dir.display()))
            .args(["output", "-json"])
            .output()
            .context("running `terraform output -json` (is terraform installed? or pass --tf-outputs FILE)")?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            bail!(
                "`terraform output -json` in {} failed: {}",
                dir.display(),
                err.trim().lines().last().unwrap_or("no error output")
            );
        }
        Self::parse(&String::from_utf8_lossy(&out.stdout))
    }

    /// A string output, e.g. `cluster_name`.
    pub fn string(&self, name: &str) -> anyhow::Result<String> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(anyhow!(
                "terraform output {name:?} is not a string: {other}"
            )),
            None => Err(anyhow!(
                "terraform output {name:?} is missing (has `terraform apply` completed?)"
            )),
        }
    }

    /// A list-of-strings output, e.g. `kafka_broker_service_names`.
    pub fn strings(&self, name: &str) -> anyhow::Result<Vec<String>> {
        match self.0.get(name) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| anyhow!("terraform output {name:?} has a non-string item"))
                })
                .collect(),
            Some(other) => Err(anyhow!("terraform output {name:?} is not a list: {other}")),
            None => Err(anyhow!(
                "terraform output {name:?} is missing (has `terraform apply` completed?)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terraform_shape() {
        let o = TfOutputs::parse(
            r#"{"cluster_name":{"sensitive":false,"type":"string","value":"tw"},
                "kafka_broker_service_names":{"sensitive":false,"type":["list","string"],"value":["b0","b1"]}}"#,
        )
        .unwrap();
        assert_eq!(o.string("cluster_name").unwrap(), "tw");
        assert_eq!(
            o.strings("kafka_broker_service_names").unwrap(),
            ["b0", "b1"]
        );
        let e = o.string("vpc_id").unwrap_err().to_string();
        assert!(e.contains("\"vpc_id\" is missing"), "{e}");
    }
}
