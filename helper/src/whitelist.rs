//! `tumbleweed whitelist`: live edits of the operator/consumer IP whitelists.
//!
//! # Design
//!
//! The deployment's security groups reference two EC2 *managed prefix lists* (operators,
//! consumers), so changing who may connect is a prefix-list edit — no teardown, no
//! `terraform apply`. Each change runs in this order, so that a failure at any step leaves
//! things consistent:
//!
//! 1. validate and normalise the CIDRs ([`crate::cidr`]); a bad entry stops everything;
//! 2. read the tfvars file (it must parse before AWS is touched);
//! 3. read the list (version, `max_entries`, entries) and compute a [`Plan`] — a pure
//!    function of current entries and the request, unit tested on its own;
//! 4. check the result fits in `max_entries`; `--dry-run` prints the diff and stops here;
//! 5. `ModifyManagedPrefixList` with `CurrentVersion` = the version read in 3: optimistic
//!    concurrency. If someone else changed the list in between, AWS answers
//!    `PrefixListVersionMismatch`; we re-read the list and report what it is now, changing
//!    nothing (the user re-runs after looking);
//! 6. only after AWS succeeded, write `operator_cidrs`/`consumer_cidrs` in the tfvars
//!    (atomically). Terraform ignores the live entries (`ignore_changes = [entry]`), so no
//!    plan reverts an edit either way; the tfvars are what a list Terraform re-creates is
//!    seeded from, so keeping them in step keeps the edit through a replacement.
//!
//! AWS is reached through the small [`PrefixLists`] trait. The real implementation is
//! [`Ec2PrefixLists`]; tests use it against the moto emulator, and a fake for the paths moto
//! does not implement (it ignores `CurrentVersion` and `max_entries`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::aws::{describe_sdk_error, error_code};
use crate::cli::{GlobalArgs, TfOutputArgs};
use crate::tf_outputs::TfOutputs;
use crate::wait::{self, Pending};
use crate::{cidr, tfvars, Outcome, OutputFormat, UsageError};

#[derive(Debug, Args)]
pub struct WhitelistArgs {
    #[command(subcommand)]
    pub action: WhitelistAction,
}

#[derive(Debug, Subcommand)]
pub enum WhitelistAction {
    /// Show the entries of a list (and any drift from the tfvars).
    List(Target),
    /// Add CIDRs to a list.
    Add(Change),
    /// Remove CIDRs from a list.
    Remove(Change),
    /// Replace a list's entries with exactly these CIDRs.
    Set(Change),
}

/// Which list, and where its id and tfvars come from.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The whitelist to act on.
    #[arg(long, value_enum)]
    pub list: ListKind,
    #[command(flatten)]
    pub tf: TfOutputArgs,
    /// Managed prefix list id (instead of reading terraform outputs).
    #[arg(long, value_name = "PL_ID")]
    pub prefix_list_id: Option<String>,
    /// tfvars file to keep in step [default: INFRA_DIR/terraform.tfvars.json].
    #[arg(long, value_name = "FILE")]
    pub tfvars: Option<PathBuf>,
    /// Do not read or update a tfvars file. Terraform never reverts the live list (it
    /// ignores its entries), but a list it re-creates (a replaced deployment, a renamed
    /// prefix) is seeded from the tfvars again, without this change.
    #[arg(long, conflicts_with = "tfvars")]
    pub skip_tfvars: bool,
}

#[derive(Debug, Clone, Args)]
pub struct Change {
    #[command(flatten)]
    pub target: Target,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// IPv4 addresses or CIDRs (a bare address → /32; IPv6 is refused: the lists are IPv4).
    #[arg(required = true, value_name = "CIDR")]
    pub cidrs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    Operators,
    Consumers,
}

impl ListKind {
    /// The terraform output holding this list's id.
    pub fn output_name(self) -> &'static str {
        match self {
            ListKind::Operators => "operator_prefix_list_id",
            ListKind::Consumers => "consumer_prefix_list_id",
        }
    }
    /// The tfvars key holding this list's CIDRs.
    pub fn tfvars_key(self) -> &'static str {
        match self {
            ListKind::Operators => "operator_cidrs",
            ListKind::Consumers => "consumer_cidrs",
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Set,
}

/// A list's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrefixListInfo {
    pub id: String,
    pub name: Option<String>,
    pub version: i64,
    pub max_entries: i32,
    pub state: String,
}

/// Why a modification failed.
#[derive(Debug, thiserror::Error)]
pub enum ModifyError {
    /// The list's version is no longer the one we read (someone else changed it).
    #[error("version conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The AWS calls the whitelist needs (abstracted so tests can fake what moto lacks).
#[allow(async_fn_in_trait)] // used with generics only, never as `dyn`
pub trait PrefixLists {
    async fn describe(&self, id: &str) -> anyhow::Result<PrefixListInfo>;
    async fn entries(&self, id: &str) -> anyhow::Result<Vec<String>>;
    /// Applies `add`/`remove` if the list is still at `info.version`.
    async fn modify(
        &self,
        info: &PrefixListInfo,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ModifyError>;
}

/// [`PrefixLists`] over the EC2 API.
pub struct Ec2PrefixLists {
    pub client: aws_sdk_ec2::Client,
    /// How long to wait for a modification to settle (`modify-in-progress`).
    pub settle_timeout: Duration,
}

impl PrefixLists for Ec2PrefixLists {
    async fn describe(&self, id: &str) -> anyhow::Result<PrefixListInfo> {
        let out = self
            .client
            .describe_managed_prefix_lists()
            .prefix_list_ids(id)
            .send()
            .await
            .map_err(|e| anyhow!(describe_sdk_error(&e)))
            .with_context(|| format!("describing prefix list {id}"))?;
        let pl = out
            .prefix_lists()
            .first()
            .ok_or_else(|| anyhow!("prefix list {id} not found"))?;
        Ok(PrefixListInfo {
            id: id.to_string(),
            name: pl.prefix_list_name().map(str::to_string),
            version: pl.version().unwrap_or(0),
            max_entries: pl.max_entries().unwrap_or(0),
            state: pl
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        })
    }

    async fn entries(&self, id: &str) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .get_managed_prefix_list_entries()
            .prefix_list_id(id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| anyhow!(describe_sdk_error(&e)))
                .with_context(|| format!("reading entries of prefix list {id}"))?;
            out.extend(
                page.entries()
                    .iter()
                    .filter_map(|e| e.cidr().map(str::to_string)),
            );
        }
        Ok(out)
    }

    async fn modify(
        &self,
        info: &PrefixListInfo,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ModifyError> {
        use aws_sdk_ec2::types::{AddPrefixListEntry, RemovePrefixListEntry};
        let mut req = self
            .client
            .modify_managed_prefix_list()
            .prefix_list_id(&info.id)
            .current_version(info.version);
        // Pass the name back unchanged (some emulators clear it otherwise).
        if let Some(name) = &info.name {
            req = req.prefix_list_name(name);
        }
        for c in add {
            req = req.add_entries(AddPrefixListEntry::builder().cidr(c).build());
        }
        for c in remove {
            req = req.remove_entries(RemovePrefixListEntry::builder().cidr(c).build());
        }
        if let Err(e) = req.send().await {
            return Err(match error_code(&e).as_deref() {
                Some("PrefixListVersionMismatch") | Some("IncorrectState") => {
                    ModifyError::Conflict(describe_sdk_error(&e))
                }
                _ => ModifyError::Other(
                    anyhow!(describe_sdk_error(&e))
                        .context(format!("modifying prefix list {}", info.id)),
                ),
            });
        }
        // Wait until the modification has settled so a following read sees it.
        let id = &info.id;
        let timed_out = |state| {
            anyhow!(
                "prefix list {id} still {state} after {:?}",
                self.settle_timeout
            )
        };
        let settled = wait::until(
            id,
            self.settle_timeout,
            Duration::from_secs(1),
            timed_out,
            || async {
                let now = self.describe(id).await.map_err(Pending::Failed)?;
                match now.state {
                    s if s.ends_with("in-progress") => Err(Pending::NotYet(s)),
                    s if s.ends_with("failed") => Err(Pending::Failed(anyhow!(
                        "prefix list {id} ended in state {s} after the change"
                    ))),
                    _ => Ok(()),
                }
            },
        );
        Ok(settled.await?)
    }
}

/// The computed change to one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// Requested removals that were not in the list (nothing to do for them).
    pub absent: Vec<String>,
    /// The list's entries after the change.
    pub result: Vec<String>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// Computes the change (pure). `requested` must already be normalised.
pub fn plan(current: &[String], op: Op, requested: &[String]) -> Plan {
    let (add, remove, absent): (Vec<String>, Vec<String>, Vec<String>) = match op {
        Op::Add => (
            requested
                .iter()
                .filter(|c| !current.contains(c))
                .cloned()
                .collect(),
            vec![],
            vec![],
        ),
        Op::Remove => (
            vec![],
            requested
                .iter()
                .filter(|c| current.contains(c))
                .cloned()
                .collect(),
            requested
                .iter()
                .filter(|c| !current.contains(c))
                .cloned()
                .collect(),
        ),
        Op::Set => (
            requested
                .iter()
                .filter(|c| !current.contains(c))
                .cloned()
                .collect(),
            current
                .iter()
                .filter(|c| !requested.contains(c))
                .cloned()
                .collect(),
            vec![],
        ),
    };
    let mut result: Vec<String> = current
        .iter()
        .filter(|c| !remove.contains(c))
        .cloned()
        .collect();
    result.extend(add.iter().cloned());
    Plan {
        add,
        remove,
        absent,
        result,
    }
}

/// Orders `entries` like `preferred` (the tfvars order), others after in their own order.
pub fn order_like(entries: &[String], preferred: &[String]) -> Vec<String> {
    let mut out: Vec<String> = preferred
        .iter()
        .filter(|c| entries.contains(c))
        .cloned()
        .collect();
    out.extend(entries.iter().filter(|c| !preferred.contains(c)).cloned());
    out.dedup();
    out
}

/// Everything a change needs, resolved from flags and terraform outputs.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub kind: ListKind,
    pub prefix_list_id: String,
    pub tfvars: Option<PathBuf>,
}

/// Resolves the prefix list id and tfvars path of `t`.
pub fn resolve(t: &Target) -> anyhow::Result<Resolved> {
    let prefix_list_id = match &t.prefix_list_id {
        Some(id) => id.clone(),
        None => TfOutputs::load(&t.tf)?.string(t.list.output_name())?,
    };
    let tfvars = if t.skip_tfvars {
        None
    } else {
        Some(
            t.tfvars
                .clone()
                .unwrap_or_else(|| t.tf.infra_dir.join("terraform.tfvars.json")),
        )
    };
    Ok(Resolved {
        kind: t.list,
        prefix_list_id,
        tfvars,
    })
}

/// Result of [`apply_change`], printed by the command.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    pub list: ListKind,
    pub prefix_list_id: String,
    pub version_before: i64,
    pub max_entries: i32,
    pub dry_run: bool,
    pub changed: bool,
    pub tfvars_updated: Option<PathBuf>,
    #[serde(flatten)]
    pub plan: Plan,
}

/// Validates, plans, checks limits, modifies the list and then updates the tfvars.
pub async fn apply_change<P: PrefixLists>(
    api: &P,
    r: &Resolved,
    op: Op,
    raw_cidrs: &[String],
    dry_run: bool,
) -> anyhow::Result<ChangeReport> {
    let requested = cidr::normalize(raw_cidrs)?;
    let tf_list = match &r.tfvars {
        Some(p) => {
            let vars = tfvars::read(p).context(
                "the tfvars file must exist and parse before the list is changed (or pass --skip-tfvars)",
            )?;
            Some(tfvars::get_list(&vars, r.kind.tfvars_key())?)
        }
        None => None,
    };
    let info = api.describe(&r.prefix_list_id).await?;
    let current = api.entries(&r.prefix_list_id).await?;
    let p = plan(&current, op, &requested);
    if p.result.len() > info.max_entries.max(0) as usize {
        return Err(UsageError(format!(
            "prefix list {} would hold {} entries but its max_entries is {}: remove entries first, \
             or raise prefix_list_max_entries in the tfvars and run `terraform apply`",
            r.prefix_list_id,
            p.result.len(),
            info.max_entries
        ))
        .into());
    }
    let mut report = ChangeReport {
        list: r.kind,
        prefix_list_id: r.prefix_list_id.clone(),
        version_before: info.version,
        max_entries: info.max_entries,
        dry_run,
        changed: false,
        tfvars_updated: None,
        plan: p.clone(),
    };
    if let Some(tf) = &tf_list {
        report.plan.result = order_like(&p.result, tf);
    }
    if dry_run {
        return Ok(report);
    }
    if !p.is_noop() {
        match api.modify(&info, &p.add, &p.remove).await {
            Ok(()) => report.changed = true,
            Err(ModifyError::Conflict(detail)) => {
                let now = api.describe(&r.prefix_list_id).await?;
                let entries = api.entries(&r.prefix_list_id).await?;
                return Err(anyhow!(
                    "prefix list {} was changed by someone else while we worked (read version {}, \
                     now version {} with entries [{}]); nothing was changed here and the tfvars are \
                     untouched: check the list and re-run ({detail})",
                    r.prefix_list_id,
                    info.version,
                    now.version,
                    entries.join(", ")
                ));
            }
            Err(ModifyError::Other(e)) => {
                return Err(e.context("the tfvars file was left untouched"));
            }
        }
    }
    if let (Some(path), Some(tf)) = (&r.tfvars, &tf_list) {
        if *tf != report.plan.result {
            tfvars::set_list(path, r.kind.tfvars_key(), &report.plan.result)?;
            report.tfvars_updated = Some(path.clone());
        }
    }
    Ok(report)
}

/// Result of `whitelist list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    pub list: ListKind,
    #[serde(flatten)]
    pub info: PrefixListInfo,
    pub entries: Vec<String>,
    /// Entries in AWS but not in the tfvars (`terraform apply` would remove them).
    pub not_in_tfvars: Vec<String>,
    /// Entries in the tfvars but not in AWS (`terraform apply` would add them).
    pub only_in_tfvars: Vec<String>,
}

pub async fn list<P: PrefixLists>(api: &P, r: &Resolved) -> anyhow::Result<ListReport> {
    let info = api.describe(&r.prefix_list_id).await?;
    let entries = api.entries(&r.prefix_list_id).await?;
    let (not_in_tfvars, only_in_tfvars) = match &r.tfvars {
        Some(p) if p.exists() => {
            let tf = tfvars::get_list(&tfvars::read(p)?, r.kind.tfvars_key())?;
            (
                entries
                    .iter()
                    .filter(|c| !tf.contains(c))
                    .cloned()
                    .collect(),
                tf.iter()
                    .filter(|c| !entries.contains(c))
                    .cloned()
                    .collect(),
            )
        }
        _ => (vec![], vec![]),
    };
    Ok(ListReport {
        list: r.kind,
        info,
        entries,
        not_in_tfvars,
        only_in_tfvars,
    })
}

/// `tumbleweed whitelist ...`.
pub async fn run(g: &GlobalArgs, args: WhitelistArgs) -> anyhow::Result<Outcome> {
    let (target, change) = match args.action {
        WhitelistAction::List(t) => (t, None),
        WhitelistAction::Add(c) => (c.target.clone(), Some((Op::Add, c))),
        WhitelistAction::Remove(c) => (c.target.clone(), Some((Op::Remove, c))),
        WhitelistAction::Set(c) => (c.target.clone(), Some((Op::Set, c))),
    };
    // Validate CIDRs before anything else (no AWS call, no file read on bad input).
    if let Some((_, c)) = &change {
        cidr::normalize(&c.cidrs)?;
    }
    let r = resolve(&target)?;
    let api = Ec2PrefixLists {
        client: aws_sdk_ec2::Client::new(&crate::aws::sdk_config(g).await),
        settle_timeout: Duration::from_secs(120),
    };
    match change {
        None => {
            let rep = list(&api, &r).await?;
            match g.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rep)?),
                OutputFormat::Text => {
                    println!(
                        "{} ({}, version {}, {}/{} entries)",
                        rep.info.id,
                        rep.info.name.as_deref().unwrap_or("unnamed"),
                        rep.info.version,
                        rep.entries.len(),
                        rep.info.max_entries
                    );
                    for e in &rep.entries {
                        println!("  {e}");
                    }
                    for e in &rep.not_in_tfvars {
                        println!("drift: {e} is in AWS but not in the tfvars");
                    }
                    for e in &rep.only_in_tfvars {
                        println!("drift: {e} is in the tfvars but not in AWS");
                    }
                }
            }
            Ok(Outcome::Success)
        }
        Some((op, c)) => {
            let rep = apply_change(&api, &r, op, &c.cidrs, c.dry_run).await?;
            match g.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rep)?),
                OutputFormat::Text => print_change(&rep),
            }
            Ok(Outcome::Success)
        }
    }
}

fn print_change(rep: &ChangeReport) {
    let head = if rep.dry_run { "dry run: " } else { "" };
    if rep.plan.is_noop() {
        println!(
            "{head}{} already as requested; nothing to change",
            rep.prefix_list_id
        );
    } else {
        println!(
            "{head}{} ({:?}, version {}):",
            rep.prefix_list_id, rep.list, rep.version_before
        );
        for c in &rep.plan.add {
            println!("+ {c}");
        }
        for c in &rep.plan.remove {
            println!("- {c}");
        }
    }
    for c in &rep.plan.absent {
        println!("  {c} was not in the list");
    }
    println!(
        "{} of {} entries{}",
        rep.plan.result.len(),
        rep.max_entries,
        if rep.dry_run {
            " after the change (nothing changed)"
        } else {
            ""
        }
    );
    if let Some(p) = &rep.tfvars_updated {
        println!("updated {}", p.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn plan_add_remove_set() {
        let cur = s(&["1.1.1.1/32", "2.2.2.2/32"]);
        let p = plan(&cur, Op::Add, &s(&["2.2.2.2/32", "3.3.3.3/32"]));
        assert_eq!(p.add, s(&["3.3.3.3/32"]));
        assert_eq!(p.result, s(&["1.1.1.1/32", "2.2.2.2/32", "3.3.3.3/32"]));
        let p = plan(&cur, Op::Remove, &s(&["1.1.1.1/32", "9.9.9.9/32"]));
        assert_eq!(p.remove, s(&["1.1.1.1/32"]));
        assert_eq!(p.absent, s(&["9.9.9.9/32"]));
        assert_eq!(p.result, s(&["2.2.2.2/32"]));
        let p = plan(&cur, Op::Set, &s(&["2.2.2.2/32", "4.4.4.4/32"]));
        assert_eq!(p.add, s(&["4.4.4.4/32"]));
        assert_eq!(p.remove, s(&["1.1.1.1/32"]));
        assert_eq!(p.result, s(&["2.2.2.2/32", "4.4.4.4/32"]));
        assert!(plan(&cur, Op::Add, &s(&["1.1.1.1/32"])).is_noop());
    }

    #[test]
    fn order_follows_tfvars() {
        assert_eq!(
            order_like(&s(&["b", "a", "c"]), &s(&["a", "x", "b"])),
            s(&["a", "b", "c"])
        );
    }

    /// A fake prefix list. moto ignores `CurrentVersion` and `max_entries`, so the version
    /// conflict and limit paths can only be exercised against a fake that enforces them.
    struct Fake {
        state: Mutex<(i64, Vec<String>)>,
        max_entries: i32,
        /// Simulates a concurrent writer: bump the version just before our modify lands.
        concurrent_writer: bool,
        /// Simulates an AWS failure (e.g. throttling, permissions) on modify.
        fail_modify: bool,
        modify_calls: Mutex<u32>,
    }

    impl Fake {
        fn new(entries: &[&str], max_entries: i32) -> Self {
            Fake {
                state: Mutex::new((1, s(entries))),
                max_entries,
                concurrent_writer: false,
                fail_modify: false,
                modify_calls: Mutex::new(0),
            }
        }
    }

    impl PrefixLists for Fake {
        async fn describe(&self, id: &str) -> anyhow::Result<PrefixListInfo> {
            Ok(PrefixListInfo {
                id: id.into(),
                name: Some("tw-operators".into()),
                version: self.state.lock().unwrap().0,
                max_entries: self.max_entries,
                state: "modify-complete".into(),
            })
        }
        async fn entries(&self, _: &str) -> anyhow::Result<Vec<String>> {
            Ok(self.state.lock().unwrap().1.clone())
        }
        async fn modify(
            &self,
            info: &PrefixListInfo,
            add: &[String],
            remove: &[String],
        ) -> Result<(), ModifyError> {
            *self.modify_calls.lock().unwrap() += 1;
            if self.fail_modify {
                return Err(ModifyError::Other(anyhow!(
                    "UnauthorizedOperation: not allowed"
                )));
            }
            let mut st = self.state.lock().unwrap();
            if self.concurrent_writer {
                st.0 += 1;
                st.1.push("203.0.113.9/32".into());
            }
            if st.0 != info.version {
                return Err(ModifyError::Conflict(
                    "PrefixListVersionMismatch: The prefix list has the incorrect version number."
                        .into(),
                ));
            }
            st.1.retain(|c| !remove.contains(c));
            st.1.extend(add.iter().cloned());
            st.0 += 1;
            Ok(())
        }
    }

    fn resolved(dir: &tempfile::TempDir, tf: &str) -> Resolved {
        let p = dir.path().join("terraform.tfvars.json");
        std::fs::write(&p, tf).unwrap();
        Resolved {
            kind: ListKind::Operators,
            prefix_list_id: "pl-1".into(),
            tfvars: Some(p),
        }
    }

    #[tokio::test]
    async fn version_conflict_is_reported_and_tfvars_untouched() {
        let d = tempfile::tempdir().unwrap();
        let tf = r#"{"operator_cidrs":["10.0.0.0/8"]}"#;
        let r = resolved(&d, tf);
        let fake = Fake {
            concurrent_writer: true,
            ..Fake::new(&["10.0.0.0/8"], 20)
        };
        let err = apply_change(&fake, &r, Op::Add, &s(&["192.0.2.1"]), false)
            .await
            .unwrap_err();
        let msg = crate::one_line(&err);
        assert!(msg.contains("changed by someone else"), "{msg}");
        assert!(msg.contains("read version 1, now version 2"), "{msg}");
        assert!(msg.contains("203.0.113.9/32"), "{msg}");
        assert_eq!(crate::exit_code_for(&err), 1);
        assert_eq!(std::fs::read_to_string(r.tfvars.unwrap()).unwrap(), tf);
    }

    #[tokio::test]
    async fn max_entries_is_checked_before_modifying() {
        let d = tempfile::tempdir().unwrap();
        let tf = r#"{"operator_cidrs":["10.0.0.0/8","10.1.0.0/16"]}"#;
        let r = resolved(&d, tf);
        let fake = Fake::new(&["10.0.0.0/8", "10.1.0.0/16"], 2);
        let err = apply_change(&fake, &r, Op::Add, &s(&["192.0.2.1"]), false)
            .await
            .unwrap_err();
        let msg = crate::one_line(&err);
        assert!(
            msg.contains("would hold 3 entries but its max_entries is 2"),
            "{msg}"
        );
        assert_eq!(*fake.modify_calls.lock().unwrap(), 0);
        assert_eq!(std::fs::read_to_string(r.tfvars.unwrap()).unwrap(), tf);
        // `set` to the same size still fits.
        let rep = apply_change(
            &fake,
            &resolved(&d, tf),
            Op::Set,
            &s(&["192.0.2.1", "192.0.2.2"]),
            false,
        )
        .await
        .unwrap();
        assert!(rep.changed);
    }

    #[tokio::test]
    async fn successful_change_updates_tfvars_in_order() {
        let d = tempfile::tempdir().unwrap();
        let r = resolved(
            &d,
            r#"{"region":"r","operator_cidrs":["10.1.0.0/16","10.0.0.0/8"]}"#,
        );
        let fake = Fake::new(&["10.0.0.0/8", "10.1.0.0/16"], 20);
        let rep = apply_change(&fake, &r, Op::Add, &s(&["192.0.2.1"]), false)
            .await
            .unwrap();
        assert!(rep.changed);
        let vars = tfvars::read(r.tfvars.as_ref().unwrap()).unwrap();
        assert_eq!(
            tfvars::get_list(&vars, "operator_cidrs").unwrap(),
            s(&["10.1.0.0/16", "10.0.0.0/8", "192.0.2.1/32"])
        );
        assert_eq!(vars["region"], "r");
        assert_eq!(fake.state.lock().unwrap().0, 2);
    }

    #[tokio::test]
    async fn failed_modify_leaves_tfvars_untouched() {
        let d = tempfile::tempdir().unwrap();
        let tf = r#"{"operator_cidrs":["10.0.0.0/8"]}"#;
        let r = resolved(&d, tf);
        let fake = Fake {
            fail_modify: true,
            ..Fake::new(&["10.0.0.0/8"], 20)
        };
        let err = apply_change(&fake, &r, Op::Remove, &s(&["10.0.0.0/8"]), false)
            .await
            .unwrap_err();
        let msg = crate::one_line(&err);
        assert!(
            msg.contains("UnauthorizedOperation") && msg.contains("tfvars file was left untouched"),
            "{msg}"
        );
        assert_eq!(std::fs::read_to_string(r.tfvars.unwrap()).unwrap(), tf);
    }

    #[tokio::test]
    async fn missing_tfvars_stops_before_aws() {
        let fake = Fake::new(&[], 20);
        let r = Resolved {
            kind: ListKind::Consumers,
            prefix_list_id: "pl-1".into(),
            tfvars: Some("/nonexistent/terraform.tfvars.json".into()),
        };
        let err = apply_change(&fake, &r, Op::Add, &s(&["192.0.2.1"]), false)
            .await
            .unwrap_err();
        assert!(crate::one_line(&err).contains("--skip-tfvars"));
        assert_eq!(*fake.modify_calls.lock().unwrap(), 0);
    }
}
