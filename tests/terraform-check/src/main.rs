//! Command-line entry: `tumbleweed-terraform-check [REPO]` prints the report for
//! `<REPO>/infra` and `<REPO>/modules/*` and exits 1 when there is any finding.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

fn main() -> Result<ExitCode> {
    let repo = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."));
    let report = tumbleweed_terraform_check::check_tree(&repo)?;
    println!("{report}");
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
