//! The command tree.
//!
//! # Design
//!
//! clap derive, one `Args` struct per subcommand defined next to the code that runs it
//! (so a flag and its use stay together), assembled here. Flags that every AWS-facing
//! command shares (`--region`, `--endpoint-url`, `--output`, `-v`) are global: they may be
//! given before or after the subcommand. `--region` deliberately does not read
//! `AWS_REGION` through clap: the AWS SDK already does, and `render` uses the flag's value
//! as the deployment region, which must never be filled in silently from the environment.

use clap::{Args, Parser, Subcommand};

use crate::OutputFormat;

/// Operator CLI for a Tumbleweed change-data-capture deployment.
#[derive(Debug, Parser)]
#[command(name = "tumbleweed", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// AWS region (for `render`: the region written to the tfvars).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS API endpoint override, e.g. an emulator such as `http://127.0.0.1:5000`.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Result format: human text or one JSON document for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// More log output on stderr (-v info, -vv debug); `TUMBLEWEED_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write infra/terraform.tfvars.json from flags or interactive prompts.
    Render(crate::tfvars::RenderArgs),
    /// List or change the operator/consumer IP whitelists of a live deployment.
    Whitelist(crate::whitelist::WhitelistArgs),
    /// Check whether a PostgreSQL (or RDS) database is ready for CDC.
    CheckSource(crate::check_source::CheckSourceArgs),
    /// Create the sources and consumers declared in a file through the sink's API.
    Bootstrap(crate::bootstrap::BootstrapArgs),
    /// Show ECS service counts and, with --sink-url, connector and slot health.
    Status(crate::status::StatusArgs),
    /// Build the sink image as an OCI layout and push it, without a Docker daemon.
    Image(crate::image::ImageArgs),
    /// Day-2 Kafka operations: roll the node services one at a time.
    Kafka(crate::kafka_roll::KafkaArgs),
    /// Follow a consumer's stream (or a topic) in the terminal; never acknowledges.
    Tail(crate::tail::TailArgs),
}

/// Where to find `terraform output -json`.
#[derive(Debug, Clone, Args)]
pub struct TfOutputArgs {
    /// File holding the output of `terraform output -json`.
    #[arg(long, value_name = "FILE")]
    pub tf_outputs: Option<std::path::PathBuf>,
    /// Terraform root module directory (runs `terraform output -json` there when
    /// --tf-outputs is not given; also where terraform.tfvars.json lives).
    #[arg(long, value_name = "DIR", default_value = "infra")]
    pub infra_dir: std::path::PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
