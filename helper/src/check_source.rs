//! `tumbleweed check-source`: is a PostgreSQL database ready for change data capture?
//!
//! # Design
//!
//! Debezium's PostgreSQL connector needs logical decoding (`wal_level = logical`), a free
//! replication slot, a free WAL sender and a role allowed to replicate. Each requirement is
//! one [`Check`] with, when it fails, the *exact* fix — the command to run or the setting to
//! change, naming the parameter group and instance on RDS.
//!
//! The work is split into gathering facts (AWS: [`gather_rds`]; PostgreSQL: [`gather_pg`])
//! and judging them ([`judge_rds`], [`judge_pg`]: pure functions, unit tested). On RDS,
//! `wal_level` is derived from the parameter `rds.logical_replication`, which only takes
//! effect after a reboot; so the RDS part reads the instance's parameter group (the
//! parameter value, and the instance's `ParameterApplyStatus` for a pending reboot) and the
//! PostgreSQL part's fixes speak RDS when `--db-instance` is given. Exit status 1 when any
//! check fails.
//!
//! The connection uses TLS as the sink will (`--sslmode`, `--sslrootcert`, the same defaults
//! and the same code, from `tumbleweed-pgtls`), so a database this command reaches is one the
//! sink reaches, and a certificate it refuses is refused with the same explanation.

use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Args;
use serde::Serialize;

use tumbleweed_pgtls::{SslMode, TlsSettings};

use crate::aws::describe_sdk_error;
use crate::cli::GlobalArgs;
use crate::{Outcome, OutputFormat, UsageError};

#[derive(Debug, Clone, Args)]
pub struct CheckSourceArgs {
    /// Database host [default: the RDS instance's endpoint with --db-instance].
    #[arg(long)]
    pub host: Option<String>,
    /// Database port [default: 5432, or the RDS instance's port].
    #[arg(long)]
    pub port: Option<u16>,
    /// Database name.
    #[arg(long, default_value = "postgres")]
    pub database: String,
    /// Role Debezium will connect as.
    #[arg(long)]
    pub user: String,
    /// Password (prefer --password-env; also read from PGPASSWORD).
    #[arg(
        long,
        env = "PGPASSWORD",
        hide_env_values = true,
        conflicts_with = "password_env"
    )]
    pub password: Option<String>,
    /// Name of an environment variable holding the password.
    #[arg(long, value_name = "NAME")]
    pub password_env: Option<String>,
    /// RDS DB instance identifier: also check its parameter group via the RDS API.
    #[arg(long, value_name = "ID")]
    pub db_instance: Option<String>,
    /// Connection timeout in seconds.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,
    /// TLS as libpq's sslmode: disable, prefer, require, verify-ca (the certificate must chain
    /// to --sslrootcert) or verify-full (and name --host).
    #[arg(long, default_value = "prefer")]
    pub sslmode: SslMode,
    /// CA bundle for verify-ca and verify-full: `rds` (the Amazon RDS CA bundle, built in) or
    /// an absolute path to a PEM file.
    #[arg(long, value_name = "rds|PATH")]
    pub sslrootcert: Option<String>,
}

/// One requirement and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// The exact fix when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(name: &str, detail: String) -> Check {
    Check {
        name: name.into(),
        ok: true,
        detail,
        fix: None,
    }
}
fn fail(name: &str, detail: String, fix: String) -> Check {
    Check {
        name: name.into(),
        ok: false,
        detail,
        fix: Some(fix),
    }
}

/// What the RDS API says about an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdsFacts {
    pub instance: String,
    pub parameter_group: String,
    /// `in-sync`, `pending-reboot`, `applying`...
    pub apply_status: String,
    /// `rds.logical_replication` as set in the group (`None`: not set, i.e. the default 0).
    pub logical_replication: Option<String>,
    pub endpoint: Option<(String, u16)>,
}

/// Reads the instance's parameter group and `rds.logical_replication`.
pub async fn gather_rds(client: &aws_sdk_rds::Client, instance: &str) -> anyhow::Result<RdsFacts> {
    let out = client
        .describe_db_instances()
        .db_instance_identifier(instance)
        .send()
        .await
        .map_err(|e| anyhow!(describe_sdk_error(&e)))
        .with_context(|| format!("describing RDS instance {instance}"))?;
    let db = out
        .db_instances()
        .first()
        .ok_or_else(|| anyhow!("RDS instance {instance} not found"))?;
    let group = db
        .db_parameter_groups()
        .first()
        .ok_or_else(|| anyhow!("RDS instance {instance} has no DB parameter group"))?;
    let name = group
        .db_parameter_group_name()
        .unwrap_or_default()
        .to_string();
    let mut facts = RdsFacts {
        instance: instance.to_string(),
        parameter_group: name.clone(),
        apply_status: group
            .parameter_apply_status()
            .unwrap_or_default()
            .to_string(),
        logical_replication: None,
        endpoint: db
            .endpoint()
            .and_then(|e| Some((e.address()?.to_string(), u16::try_from(e.port()?).ok()?))),
    };
    let mut pages = client
        .describe_db_parameters()
        .db_parameter_group_name(&name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|e| anyhow!(describe_sdk_error(&e)))
            .with_context(|| format!("reading parameters of DB parameter group {name}"))?;
        for p in page.parameters() {
            if p.parameter_name() == Some("rds.logical_replication") {
                facts.logical_replication = p.parameter_value().map(str::to_string);
            }
        }
    }
    Ok(facts)
}

/// Judges the RDS facts.
pub fn judge_rds(f: &RdsFacts) -> Vec<Check> {
    let mut checks = Vec::new();
    let value = f.logical_replication.as_deref().unwrap_or("0 (default)");
    if f.logical_replication.as_deref() == Some("1") {
        checks.push(ok(
            "rds.logical_replication",
            format!(
                "rds.logical_replication = 1 in parameter group {}",
                f.parameter_group
            ),
        ));
    } else if f.parameter_group.starts_with("default.") {
        checks.push(fail(
            "rds.logical_replication",
            format!(
                "rds.logical_replication = {value} in the default parameter group {} (which cannot be modified)",
                f.parameter_group
            ),
            format!(
                "create a custom DB parameter group with rds.logical_replication=1, attach it to instance {} and reboot instance {}",
                f.instance, f.instance
            ),
        ));
    } else {
        checks.push(fail(
            "rds.logical_replication",
            format!(
                "rds.logical_replication = {value} in parameter group {}",
                f.parameter_group
            ),
            format!(
                "set rds.logical_replication=1 in parameter group {} and reboot instance {}",
                f.parameter_group, f.instance
            ),
        ));
    }
    if f.apply_status == "pending-reboot" {
        checks.push(fail(
            "parameter group applied",
            format!(
                "parameter group {} has changes pending a reboot of instance {}",
                f.parameter_group, f.instance
            ),
            format!(
                "reboot instance {} (aws rds reboot-db-instance --db-instance-identifier {})",
                f.instance, f.instance
            ),
        ));
    } else {
        checks.push(ok(
            "parameter group applied",
            format!(
                "parameter group {} is {}",
                f.parameter_group, f.apply_status
            ),
        ));
    }
    checks
}

/// What PostgreSQL itself says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgFacts {
    pub user: String,
    pub server_version: String,
    pub wal_level: String,
    pub max_replication_slots: i64,
    pub used_replication_slots: i64,
    pub max_wal_senders: i64,
    pub used_wal_senders: i64,
    pub rolreplication: bool,
    pub superuser: bool,
    /// Member of `rds_replication` (RDS's way of granting replication).
    pub rds_replication_member: bool,
    /// Whether the role `rds_replication` exists (i.e. this is RDS/Aurora).
    pub rds_replication_exists: bool,
}

/// Connects and reads the facts.
pub async fn gather_pg(cfg: &tokio_postgres::Config, tls: &TlsSettings) -> anyhow::Result<PgFacts> {
    let mut cfg = cfg.clone();
    let connector = tls.apply(&mut cfg)?;
    let (client, conn) = match cfg.connect(connector).await {
        Ok(pair) => pair,
        Err(e) => {
            let host = match cfg.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                _ => String::new(),
            };
            let port = cfg.get_ports().first().copied().unwrap_or(5432);
            if let Some(refusal) =
                tumbleweed_pgtls::explain(&e, &host, &format!("{host}:{port}"), tls)
            {
                return Err(anyhow!(refusal.message));
            }
            return Err(e.into());
        }
    };
    let conn_task = tokio::spawn(conn);
    let int = |s: String| -> anyhow::Result<i64> {
        s.parse::<i64>()
            .with_context(|| format!("unexpected setting value {s:?}"))
    };
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_setting('wal_level'), \
                    current_setting('max_replication_slots'), \
                    (SELECT count(*) FROM pg_replication_slots), \
                    current_setting('max_wal_senders'), \
                    (SELECT count(*) FROM pg_stat_replication), \
                    r.rolreplication, r.rolsuper, current_user::text, \
                    EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') \
             FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await
        .context("reading replication settings")?;
    let mut f = PgFacts {
        server_version: row.get(0),
        wal_level: row.get(1),
        max_replication_slots: int(row.get(2))?,
        used_replication_slots: row.get(3),
        max_wal_senders: int(row.get(4))?,
        used_wal_senders: row.get(5),
        rolreplication: row.get(6),
        superuser: row.get(7),
        user: row.get(8),
        rds_replication_exists: row.get(9),
        rds_replication_member: false,
    };
    if f.rds_replication_exists {
        f.rds_replication_member = client
            .query_one(
                "SELECT pg_has_role(current_user, 'rds_replication', 'member')",
                &[],
            )
            .await
            .context("checking membership in rds_replication")?
            .get(0);
    }
    drop(client);
    let _ = conn_task.await;
    Ok(f)
}

/// Judges the PostgreSQL facts; `rds` names the instance/group for RDS-specific fixes.
pub fn judge_pg(f: &PgFacts, rds: Option<&RdsFacts>) -> Vec<Check> {
    let mut checks = Vec::new();
    let restart = match rds {
        Some(r) => format!("reboot instance {}", r.instance),
        None => "restart PostgreSQL".to_string(),
    };
    let set_param = |name: &str, value: String| match rds {
        Some(r) => format!(
            "set {name}={value} in parameter group {} and {restart}",
            r.parameter_group
        ),
        None => format!("run `ALTER SYSTEM SET {name} = {value};` and {restart}"),
    };
    if f.wal_level == "logical" {
        checks.push(ok("wal_level", "wal_level = logical".into()));
    } else {
        let fix = match rds {
            Some(r) => format!(
                "set rds.logical_replication=1 in parameter group {} and reboot instance {}",
                r.parameter_group, r.instance
            ),
            None => format!("run `ALTER SYSTEM SET wal_level = logical;` and {restart}"),
        };
        checks.push(fail(
            "wal_level",
            format!(
                "wal_level = {} (logical decoding needs logical)",
                f.wal_level
            ),
            fix,
        ));
    }
    let free_slots = f.max_replication_slots - f.used_replication_slots;
    let detail = format!(
        "{} of max_replication_slots = {} in use",
        f.used_replication_slots, f.max_replication_slots
    );
    if free_slots > 0 {
        checks.push(ok(
            "replication slots",
            format!("{detail} ({free_slots} free)"),
        ));
    } else {
        checks.push(fail(
            "replication slots",
            format!("{detail}: no free slot"),
            format!(
                "{}, or drop an unused slot (`SELECT pg_drop_replication_slot('NAME');` — see pg_replication_slots)",
                set_param("max_replication_slots", (f.max_replication_slots + 1).max(4).to_string())
            ),
        ));
    }
    let free_senders = f.max_wal_senders - f.used_wal_senders;
    let detail = format!(
        "{} of max_wal_senders = {} in use",
        f.used_wal_senders, f.max_wal_senders
    );
    if free_senders > 0 {
        checks.push(ok("WAL senders", format!("{detail} ({free_senders} free)")));
    } else {
        checks.push(fail(
            "WAL senders",
            format!("{detail}: no free WAL sender"),
            set_param(
                "max_wal_senders",
                (f.max_wal_senders + 1).max(4).to_string(),
            ),
        ));
    }
    let user = &f.user;
    if f.rolreplication || f.superuser || f.rds_replication_member {
        let how = if f.rds_replication_member {
            "is a member of rds_replication"
        } else if f.rolreplication {
            "has REPLICATION"
        } else {
            "is a superuser"
        };
        checks.push(ok("replication privilege", format!("role {user} {how}")));
    } else if f.rds_replication_exists || rds.is_some() {
        checks.push(fail(
            "replication privilege",
            format!("role {user} lacks REPLICATION and is not a member of rds_replication"),
            format!("run `GRANT rds_replication TO \"{user}\";` as the master user"),
        ));
    } else {
        checks.push(fail(
            "replication privilege",
            format!("role {user} lacks the REPLICATION attribute"),
            format!("run `ALTER ROLE \"{user}\" WITH REPLICATION;` as a superuser"),
        ));
    }
    checks
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ready: bool,
    pub checks: Vec<Check>,
}

/// `tumbleweed check-source`.
pub async fn run(g: &GlobalArgs, a: CheckSourceArgs) -> anyhow::Result<Outcome> {
    let password = match (&a.password, &a.password_env) {
        (_, Some(var)) => Some(std::env::var(var).map_err(|_| {
            UsageError(format!(
                "--password-env {var}: environment variable {var} is not set"
            ))
        })?),
        (Some(p), None) => Some(p.clone()),
        (None, None) => None,
    };
    // The sink's own check and wording (the flags are named as the API fields).
    let tls = TlsSettings::new(a.sslmode, a.sslrootcert.as_deref())
        .map_err(|e| UsageError(e.to_string()))?;
    let mut checks = Vec::new();
    let mut rds = None;
    if let Some(instance) = &a.db_instance {
        let client = aws_sdk_rds::Client::new(&crate::aws::sdk_config(g).await);
        let facts = gather_rds(&client, instance).await?;
        checks.extend(judge_rds(&facts));
        rds = Some(facts);
    }
    let (host, port) = match (&a.host, rds.as_ref().and_then(|r| r.endpoint.clone())) {
        (Some(h), ep) => (h.clone(), a.port.or(ep.map(|e| e.1)).unwrap_or(5432)),
        (None, Some((h, p))) => (h, a.port.unwrap_or(p)),
        (None, None) => {
            return Err(
                UsageError("missing --host (or --db-instance with an endpoint)".into()).into(),
            )
        }
    };
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&host)
        .port(port)
        .dbname(&a.database)
        .user(&a.user)
        .application_name("tumbleweed check-source")
        .connect_timeout(Duration::from_secs(a.connect_timeout));
    if let Some(p) = &password {
        cfg.password(p);
    }
    let facts = gather_pg(&cfg, &tls).await.with_context(|| {
        format!(
            "connecting to postgres://{}@{host}:{port}/{}",
            a.user, a.database
        )
    })?;
    checks.extend(judge_pg(&facts, rds.as_ref()));
    let report = Report {
        ready: checks.iter().all(|c| c.ok),
        checks,
    };
    match g.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => {
            for c in &report.checks {
                println!(
                    "{} {}: {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.name,
                    c.detail
                );
                if let Some(fix) = &c.fix {
                    println!("     fix: {fix}");
                }
            }
            println!(
                "{}",
                if report.ready {
                    format!(
                        "{host}:{port}/{} is ready for CDC (PostgreSQL {})",
                        a.database, facts.server_version
                    )
                } else {
                    format!("{host}:{port}/{} is NOT ready for CDC", a.database)
                }
            );
        }
    }
    Ok(if report.ready {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rds(value: Option<&str>, status: &str) -> RdsFacts {
        RdsFacts {
            instance: "db1".into(),
            parameter_group: "tw-pg15".into(),
            apply_status: status.into(),
            logical_replication: value.map(str::to_string),
            endpoint: None,
        }
    }

    #[test]
    fn rds_ready_and_not() {
        assert!(judge_rds(&rds(Some("1"), "in-sync")).iter().all(|c| c.ok));
        let c = judge_rds(&rds(Some("0"), "in-sync"));
        assert_eq!(
            c[0].fix.as_deref(),
            Some(
                "set rds.logical_replication=1 in parameter group tw-pg15 and reboot instance db1"
            )
        );
        let c = judge_rds(&rds(None, "in-sync"));
        assert!(c[0].detail.contains("0 (default)"));
        let c = judge_rds(&rds(Some("1"), "pending-reboot"));
        assert!(c[0].ok);
        assert!(!c[1].ok);
        assert!(c[1]
            .fix
            .as_deref()
            .unwrap()
            .starts_with("reboot instance db1"));
    }

    fn pg() -> PgFacts {
        PgFacts {
            user: "debezium".into(),
            server_version: "15".into(),
            wal_level: "logical".into(),
            max_replication_slots: 10,
            used_replication_slots: 1,
            max_wal_senders: 10,
            used_wal_senders: 0,
            rolreplication: true,
            ..Default::default()
        }
    }

    #[test]
    fn pg_checks() {
        assert!(judge_pg(&pg(), None).iter().all(|c| c.ok));
        let f = PgFacts {
            used_replication_slots: 10,
            used_wal_senders: 10,
            ..pg()
        };
        let c = judge_pg(&f, None);
        assert!(
            !c[1].ok
                && c[1]
                    .fix
                    .as_deref()
                    .unwrap()
                    .contains("max_replication_slots = 11")
        );
        assert!(
            !c[2].ok
                && c[2]
                    .fix
                    .as_deref()
                    .unwrap()
                    .contains("max_wal_senders = 11")
        );
        let f = PgFacts {
            rolreplication: false,
            rds_replication_exists: true,
            ..pg()
        };
        let c = judge_pg(&f, None);
        assert_eq!(
            c[3].fix.as_deref(),
            Some("run `GRANT rds_replication TO \"debezium\";` as the master user")
        );
        let f = PgFacts {
            wal_level: "replica".into(),
            ..pg()
        };
        let r = rds(Some("1"), "pending-reboot");
        assert_eq!(
            judge_pg(&f, Some(&r))[0].fix.as_deref(),
            Some(
                "set rds.logical_replication=1 in parameter group tw-pg15 and reboot instance db1"
            )
        );
    }
}
