//! `tumbleweed`: thin entry point over [`tumbleweed_helper`].
//!
//! Exit codes: 0 success, 1 failure, 2 bad usage (clap errors and [`UsageError`]s).
//!
//! [`UsageError`]: tumbleweed_helper::UsageError

use std::process::ExitCode;

use clap::Parser;
use tumbleweed_helper::{cli::Cli, exit_code_for, one_line, run, Outcome};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("TUMBLEWEED_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(match cli.global.verbose {
                0 => "warn",
                1 => "tumbleweed_helper=info,warn",
                _ => "tumbleweed_helper=debug,info",
            })
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(exit_code_for(&err))
        }
    }
}
