//! The `tumbleweed` operator CLI as a library.
//!
//! The binary (`src/main.rs`) only parses arguments, sets up logging and a Tokio runtime,
//! and maps the result of [`run`] to an exit code. Everything else lives here so that
//! tests can drive the same code paths without spawning processes.
//!
//! # Layout
//!
//! One module per concept; each opens with a note on its design:
//!
//! * [`cli`]: the clap command tree (global flags and one `Args` struct per subcommand).
//! * [`cidr`]: validating and normalising CIDR entries (shared by `render` and `whitelist`).
//! * [`tfvars`]: rendering `infra/terraform.tfvars.json` from a serde struct of the variables,
//!   and editing single keys of an existing file atomically.
//! * [`tf_outputs`]: reading `terraform output -json` from a file or from `terraform` itself.
//! * [`aws`]: building AWS SDK configuration (region, emulator endpoint).
//! * [`whitelist`]: live edits of the managed prefix lists, behind a small trait so the
//!   concurrency and limit paths can be tested with a fake.
//! * [`check_source`]: is a PostgreSQL (optionally RDS) database ready for CDC?
//! * [`bootstrap`]: declare sources and consumers in a file; create what is missing.
//! * [`status`]: ECS service counts plus connector and slot health from the sink.
//! * [`image`]: build an OCI image layout for the sink and push it, without a Docker daemon
//!   (the registry protocol is `oci-client`'s, the documents `oci-spec`'s).
//! * [`kafka_roll`]: move the Kafka node services to their new revision one node at a time,
//!   waiting for ECS steady state and the cluster in sync, behind two small traits.
//! * [`tail`]: follow a consumer's stream in the terminal, resuming after drops, never acking.
//! * [`wait`]: the one "poll until ready or a deadline" helper (on `backon`) behind
//!   `bootstrap`, `whitelist` and `kafka_roll`.
//! * [`fsutil`]: atomic file writes (temp file + rename).
//!
//! # Errors and exit codes
//!
//! Failures are `anyhow::Error`s with context attached at each layer; `main` prints them as
//! one line (`error: outer: inner: root`). A [`UsageError`] anywhere in the chain means the
//! user asked for something invalid (bad CIDR, missing flag) and maps to exit code 2, like
//! clap's own parse errors. A command that ran fine but found problems (e.g. `check-source`
//! on a database that is not ready) returns [`Outcome::Failure`] → exit code 1.

pub mod aws;
pub mod bootstrap;
pub mod check_source;
pub mod cidr;
pub mod cli;
pub mod fsutil;
pub mod image;
pub mod kafka_roll;
pub mod status;
pub mod tail;
pub mod tf_outputs;
pub mod tfvars;
pub mod wait;
pub mod whitelist;

use cli::{Cli, Command};

/// The user asked for something that cannot be done as stated (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// How a command that did not error ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything as requested (exit 0).
    Success,
    /// The command ran but its answer is "no" (not ready, drift found...): exit 1.
    Failure,
}

/// Output format for results a script might read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum OutputFormat {
    /// Human-readable text and tables.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let g = cli.global;
    match cli.command {
        Command::Render(args) => tfvars::run_render(&g, args),
        Command::Whitelist(args) => whitelist::run(&g, args).await,
        Command::CheckSource(args) => check_source::run(&g, args).await,
        Command::Bootstrap(args) => bootstrap::run(&g, args).await,
        Command::Status(args) => status::run(&g, args).await,
        Command::Image(args) => image::run(&g, args).await,
        Command::Kafka(args) => kafka_roll::run(&g, args).await,
        Command::Tail(args) => tail::run(&g, args).await,
    }
}

/// Exit code for an error: 2 when the chain contains a [`UsageError`], else 1.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|e| e.downcast_ref::<UsageError>().is_some())
    {
        2
    } else {
        1
    }
}

/// Formats an error chain as a single line (`outer: inner: root`), newlines flattened.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}
