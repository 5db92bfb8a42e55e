//! The real tree is clean, and each defect class injected into a copy of it is reported
//! exactly (kind, file and line).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tumbleweed_terraform_check::{check_tree, Finding, FindingKind, Location};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".terraform" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

/// A scratch copy of infra/, modules/ and examples/ (without examples/clients/: SSE consumers,
/// with their installed packages, and no Terraform).
struct Copy {
    dir: tempfile::TempDir,
}

impl Copy {
    fn new() -> Result<Copy> {
        let dir = tempfile::tempdir().context("creating a temp dir")?;
        copy_dir(&repo().join("infra"), &dir.path().join("infra"))?;
        copy_dir(&repo().join("modules"), &dir.path().join("modules"))?;
        for entry in fs::read_dir(repo().join("examples")).context("listing examples/")? {
            let entry = entry?;
            if entry.file_name() != "clients" && entry.path().is_dir() {
                copy_dir(
                    &entry.path(),
                    &dir.path().join("examples").join(entry.file_name()),
                )?;
            }
        }
        Ok(Copy { dir })
    }

    /// Replaces `from` (which must occur exactly once) by `to` in `file`.
    fn edit(&self, file: &str, from: &str, to: &str) -> Result<()> {
        let path = self.dir.path().join(file);
        let text = fs::read_to_string(&path).with_context(|| format!("reading {file}"))?;
        anyhow::ensure!(
            text.matches(from).count() == 1,
            "{from:?} must occur once in {file}"
        );
        fs::write(&path, text.replacen(from, to, 1)).with_context(|| format!("writing {file}"))
    }

    fn append(&self, file: &str, text: &str) -> Result<()> {
        let path = self.dir.path().join(file);
        let mut old = fs::read_to_string(&path).with_context(|| format!("reading {file}"))?;
        old.push_str(text);
        fs::write(&path, old).with_context(|| format!("writing {file}"))
    }

    /// 1-based line of the only line of `file` that contains `needle`.
    fn line_of(&self, file: &str, needle: &str) -> Result<usize> {
        let text = fs::read_to_string(self.dir.path().join(file))?;
        let hits: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .map(|(i, _)| i + 1)
            .collect();
        anyhow::ensure!(
            hits.len() == 1,
            "{needle:?} is on {} lines of {file}",
            hits.len()
        );
        Ok(hits[0])
    }

    fn findings(&self) -> Result<Vec<Finding>> {
        Ok(check_tree(self.dir.path())?.findings)
    }
}

fn at(file: &str, line: usize) -> Location {
    Location {
        file: PathBuf::from(file),
        line,
    }
}

#[test]
fn real_tree_is_clean() -> Result<()> {
    let report = check_tree(&repo())?;
    assert!(report.is_clean(), "{report}");
    // Root plus the nine modules and the three examples, every one reached.
    assert_eq!(
        report.modules_checked.len(),
        13,
        "{:?}",
        report.modules_checked
    );
    assert!(report.files_checked >= 10 * 4 + 2);
    Ok(())
}

#[test]
fn undeclared_variable_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.append("infra/main.tf", "\nlocals {\n  typo = var.name_prefx\n}\n")?;
    let line = c.line_of("infra/main.tf", "var.name_prefx")?;
    assert_eq!(
        c.findings()?,
        vec![Finding {
            location: at("infra/main.tf", line),
            kind: FindingKind::UndeclaredVariable {
                name: "name_prefx".into()
            },
        }]
    );
    Ok(())
}

#[test]
fn undeclared_variable_inside_a_template_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/network/main.tf",
        "Name = \"${var.name}-igw\"",
        "Name = \"${var.nme}-igw\"",
    )?;
    let line = c.line_of("modules/network/main.tf", "${var.nme}-igw")?;
    assert_eq!(
        c.findings()?,
        vec![Finding {
            location: at("modules/network/main.tf", line),
            kind: FindingKind::UndeclaredVariable { name: "nme".into() },
        }]
    );
    Ok(())
}

#[test]
fn undeclared_local_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/kafka/main.tf",
        "container_path  = local.data_dir",
        "container_path  = local.data_directory",
    )?;
    let line = c.line_of("modules/kafka/main.tf", "local.data_directory")?;
    assert_eq!(
        c.findings()?,
        vec![Finding {
            location: at("modules/kafka/main.tf", line),
            kind: FindingKind::UndeclaredLocal {
                name: "data_directory".into()
            },
        }]
    );
    Ok(())
}

#[test]
fn unknown_module_input_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "infra/main.tf",
        "  source = \"../modules/cluster\"\n",
        "  source = \"../modules/cluster\"\n  retention_days = 30\n",
    )?;
    let line = c.line_of("infra/main.tf", "retention_days = 30")?;
    assert_eq!(
        c.findings()?,
        vec![Finding {
            location: at("infra/main.tf", line),
            kind: FindingKind::UnknownModuleInput {
                module: "cluster".into(),
                input: "retention_days".into(),
            },
        }]
    );
    Ok(())
}

#[test]
fn missing_required_input_is_reported() -> Result<()> {
    let c = Copy::new()?;
    // service_discovery's vpc_id has no default.
    c.edit("infra/main.tf", "  vpc_id   = local.vpc_id\n", "")?;
    let line = c.line_of("infra/main.tf", "module \"service_discovery\" {")?;
    assert_eq!(
        c.findings()?,
        vec![Finding {
            location: at("infra/main.tf", line),
            kind: FindingKind::MissingRequiredInput {
                module: "service_discovery".into(),
                input: "vpc_id".into(),
            },
        }]
    );
    Ok(())
}

#[test]
fn unknown_module_output_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "infra/outputs.tf",
        "value       = module.sink.admin_token_secret_arn",
        "value       = module.sink.admin_secret_arn",
    )?;
    let line = c.line_of("infra/outputs.tf", "module.sink.admin_secret_arn")?;
    assert_eq!(
        c.findings()?,
        vec![Finding {
            location: at("infra/outputs.tf", line),
            kind: FindingKind::UnknownModuleOutput {
                module: "sink".into(),
                output: "admin_secret_arn".into(),
            },
        }]
    );
    Ok(())
}

#[test]
fn indexed_module_output_is_checked() -> Result<()> {
    let c = Copy::new()?;
    c.append(
        "infra/outputs.tf",
        "\noutput \"first_ip\" {\n  value = module.network[0].nat_ips\n}\n",
    )?;
    let line = c.line_of("infra/outputs.tf", "module.network[0].nat_ips")?;
    assert_eq!(
        c.findings()?,
        vec![Finding {
            location: at("infra/outputs.tf", line),
            kind: FindingKind::UnknownModuleOutput {
                module: "network".into(),
                output: "nat_ips".into(),
            },
        }]
    );
    Ok(())
}

#[test]
fn reference_to_missing_module_call_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "infra/outputs.tf",
        "value       = local.vpc_id",
        "value       = module.vpc.vpc_id",
    )?;
    let line = c.line_of("infra/outputs.tf", "module.vpc.vpc_id")?;
    assert_eq!(
        c.findings()?,
        vec![Finding {
            location: at("infra/outputs.tf", line),
            kind: FindingKind::UnknownModule {
                module: "vpc".into()
            },
        }]
    );
    Ok(())
}

#[test]
fn missing_module_source_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "infra/main.tf",
        "source = \"../modules/service-discovery\"",
        "source = \"../modules/servicediscovery\"",
    )?;
    let line = c.line_of("infra/main.tf", "module \"service_discovery\" {")?;
    assert_eq!(
        c.findings()?,
        vec![Finding {
            location: at("infra/main.tf", line),
            kind: FindingKind::MissingModuleSource {
                module: "service_discovery".into(),
                source: "../modules/servicediscovery".into(),
            },
        }]
    );
    Ok(())
}

#[test]
fn report_names_file_line_and_problem() -> Result<()> {
    let c = Copy::new()?;
    c.append("infra/main.tf", "\nlocals {\n  typo = local.nothing\n}\n")?;
    let line = c.line_of("infra/main.tf", "local.nothing")?;
    let text = check_tree(c.dir.path())?.to_string();
    assert!(
        text.contains(&format!(
            "infra/main.tf:{line}: local.nothing is used but no local \"nothing\" is defined"
        )),
        "{text}"
    );
    assert!(text.ends_with("1 finding(s)"), "{text}");
    Ok(())
}

#[test]
fn unparsable_file_is_an_error_naming_the_file() -> Result<()> {
    let c = Copy::new()?;
    c.append("modules/sink/main.tf", "\nresource \"x\" \"y\" {\n")?;
    let err = check_tree(c.dir.path()).expect_err("a syntax error must fail the run");
    let chain = format!("{err:#}");
    assert!(chain.contains("modules/sink/main.tf"), "{chain}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Deployment rules over the real tree: each reverts one fix of issue #12 in a copy and
// expects exactly the finding that names it.
// ---------------------------------------------------------------------------------------

fn kinds(c: &Copy) -> Result<Vec<FindingKind>> {
    Ok(c.findings()?.into_iter().map(|f| f.kind).collect())
}

#[test]
fn defect_1_unprefixed_connect_replication_factor_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/connect/main.tf",
        "CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR = tostring",
        "OFFSET_STORAGE_REPLICATION_FACTOR = tostring",
    )?;
    let k = kinds(&c)?;
    assert!(
        k.contains(&FindingKind::UnreadContainerEnv {
            container: "connect".into(),
            name: "OFFSET_STORAGE_REPLICATION_FACTOR".into()
        }),
        "{k:?}"
    );
    assert!(
        k.iter().any(|f| matches!(f, FindingKind::MissingContainerEnv { name, .. } if name == "CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR")),
        "{k:?}"
    );
    assert_eq!(k.len(), 2, "{k:?}");
    Ok(())
}

#[test]
fn defect_5_readiness_health_check_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/sink/variables.tf",
        "default     = \"/healthz\"",
        "default     = \"/readyz\"",
    )?;
    assert_eq!(
        kinds(&c)?,
        vec![FindingKind::HealthCheckNotLiveness {
            path: "/readyz".into()
        }]
    );
    Ok(())
}

#[test]
fn sink_liveness_path_is_the_sink_route_that_does_not_ask_kafka() -> Result<()> {
    let http = fs::read_to_string(repo().join("sink/src/http.rs"))?;
    let path = tumbleweed_terraform_check::rules::SINK_LIVENESS_PATH;
    let route = format!(".route(\"{path}\", get(");
    let at = http
        .find(&route)
        .expect("the sink routes the liveness path");
    let handler: String = http[at + route.len()..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let def = http
        .find(&format!("async fn {handler}("))
        .expect("the handler is defined in http.rs");
    let doc = &http[http[..def].rfind("\n\n").unwrap_or(0)..def];
    assert!(doc.contains("Liveness"), "{handler}: {doc}");
    let body = &http[def..def + http[def..].find("\n}\n").expect("the handler ends")];
    assert!(
        !body.contains("reachable"),
        "liveness must not call Kafka: {body}"
    );
    Ok(())
}

#[test]
fn defect_6_elb_service_account_data_source_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.append(
        "modules/sink/main.tf",
        "\ndata \"aws_elb_service_account\" \"current\" {}\n",
    )?;
    assert_eq!(kinds(&c)?, vec![FindingKind::ElbServiceAccountDataSource]);
    Ok(())
}

#[test]
fn defect_7_literal_cpu_architecture_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/fargate-service/main.tf",
        "cpu_architecture        = var.cpu_architecture",
        "cpu_architecture        = \"X86_64\"",
    )?;
    assert_eq!(
        kinds(&c)?,
        vec![FindingKind::UnvalidatedCpuArchitecture {
            resource: "aws_ecs_task_definition.this".into()
        }]
    );
    Ok(())
}

#[test]
fn defect_8_unprotected_kafka_efs_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/kafka/main.tf",
        "  tags = merge(var.tags, { Name = \"${var.name}-kafka\" })\n\n  lifecycle {\n    prevent_destroy = true\n  }\n",
        "  tags = merge(var.tags, { Name = \"${var.name}-kafka\" })\n",
    )?;
    c.edit(
        "modules/kafka/main.tf",
        "status = \"ENABLED\"",
        "status = \"DISABLED\"",
    )?;
    let k = kinds(&c)?;
    assert_eq!(k.len(), 2, "{k:?}");
    assert!(k
        .iter()
        .all(|f| matches!(f, FindingKind::UnprotectedStatefulResource { resource, .. } if resource == "aws_efs_file_system.this")));
    Ok(())
}

#[test]
fn defect_9_unwired_source_db_password_is_reported() -> Result<()> {
    for module in ["sink", "connect"] {
        let c = Copy::new()?;
        c.edit(
            &format!("modules/{module}/main.tf"),
            "TUMBLEWEED_SOURCE_DB_PASSWORD = var.source_db_password_secret_arn",
            "SOURCE_DB_PASSWORD = var.source_db_password_secret_arn",
        )?;
        let k = kinds(&c)?;
        assert!(
            k.iter()
                .any(|f| matches!(f, FindingKind::SecretNotWired { .. })),
            "{module}: {k:?}"
        );
    }
    // The shared service module must grant exactly the secrets it injects.
    let c = Copy::new()?;
    c.edit(
        "modules/fargate-service/main.tf",
        "actions   = [\"secretsmanager:GetSecretValue\"]",
        "actions   = [\"secretsmanager:DescribeSecret\"]",
    )?;
    let k = kinds(&c)?;
    assert!(
        k.iter().any(
            |f| matches!(f, FindingKind::SecretNotWired { variable, .. } if variable == "secrets")
        ),
        "{k:?}"
    );
    Ok(())
}

#[test]
fn defect_10_fixed_name_with_create_before_destroy_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/security/main.tf",
        "name_prefix = \"${var.name}-lb-\"",
        "name        = \"${var.name}-lb\"",
    )?;
    assert_eq!(
        kinds(&c)?,
        vec![FindingKind::FixedNameWithCreateBeforeDestroy {
            resource: "aws_security_group.lb".into(),
            name_prefix_supported: true,
        }]
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Validations, evaluated on inputs that plan or apply would reject (defects 4 and 10).
// ---------------------------------------------------------------------------------------

use tumbleweed_terraform_check::eval::Value;
use tumbleweed_terraform_check::rules::{
    data_postconditions_hold, failing_validations, ModuleSource,
};

fn root() -> Result<ModuleSource> {
    ModuleSource::load(&repo().join("infra"), &repo())
}

fn num(n: f64) -> Value {
    Value::Num(n)
}

fn rejected(m: &ModuleSource, inputs: &[(&str, Value)]) -> Result<bool> {
    Ok(!failing_validations(m, inputs)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_empty())
}

#[test]
fn defect_4_default_is_three_zones_and_two_are_refused() -> Result<()> {
    let m = root()?;
    assert!(!rejected(&m, &[("availability_zone_count", num(3.0))])?);
    assert!(rejected(&m, &[("availability_zone_count", num(2.0))])?);
    assert!(rejected(&m, &[("availability_zone_count", num(3.5))])?);
    let defaults = failing_validations(&m, &[("availability_zone_count", num(3.0))]);
    assert_eq!(defaults, Ok(vec![]));
    let text = fs::read_to_string(repo().join("infra/variables.tf"))?;
    let block = &text[text.find("variable \"availability_zone_count\"").unwrap()..];
    assert!(
        block.contains("default     = 3\n"),
        "the default must be 3 zones"
    );
    // The kafka module refuses two zones on its own too.
    let kafka = ModuleSource::load(&repo().join("modules/kafka"), &repo())?;
    assert!(rejected(
        &kafka,
        &[("availability_zones", Value::list_of_str(&["a", "b", "a"]))]
    )?);
    assert!(!rejected(
        &kafka,
        &[("availability_zones", Value::list_of_str(&["a", "b", "c"]))]
    )?);
    Ok(())
}

#[test]
fn defect_10_small_vpc_with_many_zones_is_refused() -> Result<()> {
    let m = root()?;
    let at = |cidr: &str, n: f64| {
        [
            ("vpc_cidr", Value::str(cidr)),
            ("availability_zone_count", num(n)),
        ]
    };
    assert!(!rejected(&m, &at("10.0.0.0/18", 3.0))?);
    assert!(rejected(&m, &at("10.0.0.0/18", 4.0))?);
    assert!(!rejected(&m, &at("10.0.0.0/16", 6.0))?);
    // And what is accepted really fits: the network module's cidrsubnet calls succeed.
    use tumbleweed_terraform_check::eval::{eval, Scope};
    for (cidr, n) in [
        ("10.0.0.0/18", 3.0),
        ("10.0.0.0/17", 6.0),
        ("10.0.0.0/16", 6.0),
    ] {
        let expr: hcl::edit::expr::Expression =
            "[for i in range(n) : cidrsubnet(c, 20 - tonumber(split(\"/\", c)[1]), i + 1)]"
                .parse()
                .unwrap();
        let scope = Scope::from([("n".into(), num(n)), ("c".into(), Value::str(cidr))]);
        assert!(eval(&expr, &scope).is_ok(), "{cidr} with {n} zones");
    }
    Ok(())
}

#[test]
fn defect_10_zone_count_above_the_region_fails_at_plan_with_a_message() -> Result<()> {
    let m = root()?;
    let zones = |names: &[&str]| {
        Value::Obj(std::collections::BTreeMap::from([(
            "names".to_string(),
            Value::list_of_str(names),
        )]))
    };
    let three = [("availability_zone_count", num(3.0))];
    let hold = |z: Value| {
        data_postconditions_hold(&m, "aws_availability_zones", z, &three)
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    assert!(hold(zones(&["a", "b", "c"]))?);
    assert!(!hold(zones(&["a", "b"]))?);
    Ok(())
}

#[test]
fn defect_10_fargate_cpu_memory_pairs_are_validated_together() -> Result<()> {
    let m = root()?;
    for (cpu, mem) in [
        ("broker_cpu", "broker_memory"),
        ("controller_cpu", "controller_memory"),
        ("connect_cpu", "connect_memory"),
        ("sink_cpu", "sink_memory"),
    ] {
        let pair = |c: f64, mm: f64| [(cpu, num(c)), (mem, num(mm))];
        // The review's examples: 512/8192 and 8192/4096 pass separate range checks.
        assert!(
            rejected(&m, &pair(512.0, 8192.0))?,
            "{cpu} 512 / {mem} 8192"
        );
        assert!(
            rejected(&m, &pair(1024.0, 2500.0))?,
            "{cpu} 1024 / {mem} 2500"
        );
        assert!(
            rejected(&m, &pair(8192.0, 4096.0))?,
            "{cpu} 8192 / {mem} 4096"
        );
        assert!(
            !rejected(&m, &pair(1024.0, 2048.0))?,
            "{cpu} 1024 / {mem} 2048"
        );
    }
    // Every default is a valid pair.
    assert_eq!(
        failing_validations(
            &m,
            &[
                ("broker_memory", num(4096.0)),
                ("controller_memory", num(2048.0)),
                ("connect_memory", num(2048.0)),
                ("sink_memory", num(1024.0)),
            ]
        ),
        Ok(vec![])
    );
    Ok(())
}

#[test]
fn defect_7_cpu_architecture_accepts_fargate_names_only() -> Result<()> {
    let m = root()?;
    let arch = |a: &str| [("sink_cpu_architecture", Value::str(a))];
    assert!(!rejected(&m, &arch("X86_64"))?);
    assert!(!rejected(&m, &arch("ARM64"))?);
    assert!(rejected(&m, &arch("arm64"))?);
    assert!(rejected(&m, &arch("amd64"))?);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Start-up order and rolls (defects 2 and 3): structure of the real tree.
// ---------------------------------------------------------------------------------------

fn body(file: &str) -> Result<hcl::edit::structure::Body> {
    let text = fs::read_to_string(repo().join(file))?;
    hcl::edit::parser::parse_body(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))
}

fn block<'a>(
    b: &'a hcl::edit::structure::Body,
    ident: &str,
    labels: &[&str],
) -> Option<&'a hcl::edit::structure::Block> {
    b.blocks().find(|x| {
        x.ident.as_str() == ident
            && x.labels
                .iter()
                .map(|l| l.as_str())
                .eq(labels.iter().copied())
    })
}

fn attr_text(b: &hcl::edit::structure::Block, name: &str) -> String {
    b.body
        .get_attribute(name)
        .map(|a| a.value.to_string())
        .unwrap_or_default()
}

#[test]
fn defect_3_terraform_does_not_roll_kafka_nodes_itself() -> Result<()> {
    let k = body("modules/kafka/main.tf")?;
    let node = block(&k, "module", &["node"]).expect("module node");
    assert!(attr_text(node, "source").contains("fargate-service"));
    assert_eq!(
        attr_text(node, "ignore_task_definition_changes").trim(),
        "true"
    );
    // Still stop-then-start per node: one log directory is never open twice.
    assert_eq!(
        attr_text(node, "deployment_minimum_healthy_percent").trim(),
        "0"
    );
    assert_eq!(attr_text(node, "deployment_maximum_percent").trim(), "100");
    // The module really ignores task definition changes on that path.
    let f = body("modules/fargate-service/main.tf")?;
    let svc = block(
        &f,
        "resource",
        &["aws_ecs_service", "ignore_task_definition"],
    )
    .expect("the ignore_task_definition service");
    assert!(
        attr_text(node, "autoscaling").is_empty(),
        "Kafka nodes are never autoscaled"
    );
    let ignored: String = svc
        .body
        .get_blocks("lifecycle")
        .map(|l| attr_text(l, "ignore_changes"))
        .collect();
    assert!(ignored.contains("task_definition"), "{ignored}");
    assert!(attr_text(svc, "count").contains("var.ignore_task_definition_changes"));
    // The helper finds the revisions to roll to.
    // (module.kafka has a count since existing_kafka_bootstrap_servers: index 0 is the
    // ECS cluster when it is created.)
    let outs = fs::read_to_string(repo().join("infra/outputs.tf"))?;
    assert!(outs.contains("module.kafka[0].node_task_definition_arns"));
    Ok(())
}

#[test]
fn defect_2_connect_and_sink_start_after_steady_kafka_nodes() -> Result<()> {
    let k = body("modules/kafka/main.tf")?;
    let node = block(&k, "module", &["node"]).expect("module node");
    assert_eq!(attr_text(node, "wait_for_steady_state").trim(), "true");
    let f = body("modules/fargate-service/main.tf")?;
    for name in ["this", "ignore_task_definition", "ignore_desired_count"] {
        let svc = block(&f, "resource", &["aws_ecs_service", name]).expect("service");
        let deps = attr_text(svc, "depends_on");
        assert!(
            deps.contains("terraform_data.start_after"),
            "{name}: {deps}"
        );
        assert!(
            deps.contains("aws_iam_role_policy.execution"),
            "{name}: {deps}"
        );
        assert!(attr_text(svc, "enable_execute_command").contains("var.enable_execute_command"));
    }
    let td = block(&f, "resource", &["terraform_data", "start_after"]).expect("terraform_data");
    assert!(attr_text(td, "input").contains("var.start_after"));
    let root = body("infra/main.tf")?;
    for m in ["connect", "sink"] {
        let call = block(&root, "module", &[m]).expect("module call");
        // After the ECS Kafka nodes when this deployment creates them; with an existing
        // cluster (module.kafka count 0) there is nothing to wait for.
        assert_eq!(
            attr_text(call, "start_after").trim(),
            "local.create_kafka ? module.kafka[0].node_service_ids : []",
            "{m}"
        );
        let b = body(&format!("modules/{m}/main.tf"))?;
        let svc = block(&b, "module", &["service"]).expect("fargate-service call");
        assert!(
            attr_text(svc, "start_after").contains("var.start_after"),
            "{m}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Existing VPC and examples.
// ---------------------------------------------------------------------------------------

#[test]
fn existing_vpc_inputs_are_validated_together() -> Result<()> {
    let m = root()?;
    let subnets =
        |n: usize| Value::List((0..n).map(|i| Value::Str(format!("subnet-{i}"))).collect());
    let with_vpc = |private: usize, public: usize| {
        [
            ("vpc_id", Value::str("vpc-0123abcd")),
            ("private_subnet_ids", subnets(private)),
            ("public_subnet_ids", subnets(public)),
        ]
    };
    assert!(!rejected(&m, &with_vpc(3, 2))?);
    assert!(
        rejected(&m, &with_vpc(2, 2))?,
        "two zones cannot hold the quorum"
    );
    assert!(
        rejected(&m, &with_vpc(3, 1))?,
        "a load balancer needs two zones"
    );
    assert!(
        rejected(&m, &[("private_subnet_ids", subnets(3))])?,
        "subnets without vpc_id"
    );
    // The region's zone count does not matter when the VPC exists.
    let zones = Value::Obj(std::collections::BTreeMap::from([(
        "names".to_string(),
        Value::list_of_str(&["a"]),
    )]));
    let ok = data_postconditions_hold(&m, "aws_availability_zones", zones, &with_vpc(3, 2))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(ok);
    Ok(())
}

#[test]
fn examples_are_checked_against_infra_inputs() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "examples/existing-vpc/main.tf",
        "  vpc_id             = var.vpc_id\n",
        "  existing_vpc_id    = var.vpc_id\n",
    )?;
    let k = kinds(&c)?;
    assert!(
        k.contains(&FindingKind::UnknownModuleInput {
            module: "tumbleweed".into(),
            input: "existing_vpc_id".into()
        }),
        "{k:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Defect 11: one service module, used by every component.
// ---------------------------------------------------------------------------------------

#[test]
fn defect_11_every_ecs_service_goes_through_fargate_service() -> Result<()> {
    for entry in fs::read_dir(repo().join("modules"))? {
        let dir = entry?.path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name == "fargate-service" {
            continue;
        }
        for file in fs::read_dir(&dir)? {
            let file = file?.path();
            if file.extension().is_none_or(|e| e != "tf") {
                continue;
            }
            let b = body(file.strip_prefix(repo())?.to_str().unwrap())?;
            for blk in b.blocks() {
                let kind = blk
                    .labels
                    .first()
                    .map(|l| l.as_str().to_string())
                    .unwrap_or_default();
                assert!(
                    !(blk.ident.as_str() == "resource"
                        && matches!(
                            kind.as_str(),
                            "aws_ecs_service" | "aws_ecs_task_definition" | "aws_iam_role"
                        )
                        && name != "network"),
                    "{}: {kind} belongs in modules/fargate-service",
                    file.display()
                );
            }
        }
    }
    for (m, call) in [
        ("kafka", "node"),
        ("connect", "service"),
        ("sink", "service"),
    ] {
        let b = body(&format!("modules/{m}/main.tf"))?;
        let c = block(&b, "module", &[call]).expect("fargate-service call");
        assert_eq!(
            attr_text(c, "source").trim(),
            "\"../fargate-service\"",
            "{m}"
        );
        if m != "sink" {
            // ECS Exec on Kafka and Connect (the sink's distroless image has no shell).
            let exec = attr_text(c, "enable_execute_command");
            assert!(
                matches!(exec.trim(), "" | "true"),
                "{m}: enable_execute_command = {exec}"
            );
        }
    }
    let f = body("modules/fargate-service/variables.tf")?;
    let exec = block(&f, "variable", &["enable_execute_command"]).expect("variable");
    assert_eq!(attr_text(exec, "default").trim(), "true");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Issue #12, new inputs: sink autoscaling, alarms on the sink's metrics, existing Kafka.
// ---------------------------------------------------------------------------------------

/// The contract with the sink's Embedded Metric Format output, written out here on its own
/// (not taken from the crate) so that a change on either side fails this test: metric name,
/// dimension set.
const SINK_METRICS_CONTRACT: &[(&str, &[&str])] = &[
    ("MaxRetainedWalBytes", &["Deployment"]),
    ("MaxConsumerLagEvents", &["Deployment"]),
    ("KafkaReachable", &["Deployment"]),
    ("ConnectedStreams", &["Deployment"]),
    ("ResidentBytes", &["Deployment"]),
    ("RetainedWalBytes", &["Deployment", "Slot"]),
    ("ConsumerLagEvents", &["Deployment", "Consumer"]),
];

/// The alarms issue #12 asks for on the sink's own metrics, with the unit each names.
const SINK_METRIC_ALARMS: &[(&str, Option<&str>)] = &[
    ("MaxRetainedWalBytes", Some("Bytes")),
    ("MaxConsumerLagEvents", Some("Count")),
    ("KafkaReachable", None),
];

#[test]
fn sink_metric_contract_is_the_one_the_rule_checks() {
    use tumbleweed_terraform_check::rules::SINK_EMF_METRICS;
    let rule: Vec<(&str, &[&str])> = SINK_EMF_METRICS
        .iter()
        .map(|m| (m.name, m.dimensions))
        .collect();
    assert_eq!(rule, SINK_METRICS_CONTRACT.to_vec());
    for (name, unit) in SINK_METRIC_ALARMS {
        let m = SINK_EMF_METRICS.iter().find(|m| m.name == *name).unwrap();
        assert_eq!(m.unit, *unit, "{name}");
    }
}

#[test]
fn alarms_watch_the_metrics_the_sink_publishes() -> Result<()> {
    let b = body("modules/alarms/main.tf")?;
    let mut own = Vec::new();
    let mut elb = Vec::new();
    for blk in b.blocks().filter(|x| {
        x.ident.as_str() == "resource"
            && x.labels.first().map(|l| l.as_str()) == Some("aws_cloudwatch_metric_alarm")
    }) {
        let ns = attr_text(blk, "namespace");
        let metric = attr_text(blk, "metric_name")
            .trim()
            .trim_matches('"')
            .to_string();
        let unit = attr_text(blk, "unit").trim().trim_matches('"').to_string();
        if ns.trim() == "var.metrics_namespace" {
            assert_eq!(
                attr_text(blk, "dimensions").trim(),
                "local.deployment_dimensions"
            );
            own.push((metric, unit, blk));
        } else {
            assert_eq!(ns.trim(), "\"AWS/ApplicationELB\"");
            elb.push(metric);
        }
        // Every alarm notifies the shared actions.
        assert_eq!(attr_text(blk, "alarm_actions").trim(), "var.alarm_actions");
    }
    let mut names: Vec<&str> = own.iter().map(|(m, _, _)| m.as_str()).collect();
    names.sort();
    let mut want: Vec<&str> = SINK_METRIC_ALARMS.iter().map(|(m, _)| *m).collect();
    want.sort();
    assert_eq!(names, want);
    for (metric, unit, blk) in &own {
        let (_, want_unit) = SINK_METRIC_ALARMS
            .iter()
            .find(|(m, _)| m == metric)
            .unwrap();
        assert_eq!(unit.as_str(), want_unit.unwrap_or(""), "{metric}");
        if metric == "KafkaReachable" {
            // No data = the sink is not publishing: that is an alarm too.
            assert_eq!(attr_text(blk, "treat_missing_data").trim(), "\"breaching\"");
            assert_eq!(attr_text(blk, "statistic").trim(), "\"Minimum\"");
            assert_eq!(
                attr_text(blk, "comparison_operator").trim(),
                "\"LessThanThreshold\""
            );
            assert_eq!(attr_text(blk, "threshold").trim(), "1");
        }
    }
    let locals: String = b
        .blocks()
        .filter(|x| x.ident.as_str() == "locals")
        .map(|l| attr_text(l, "deployment_dimensions"))
        .collect();
    assert_eq!(
        locals.split_whitespace().collect::<String>(),
        "{Deployment=var.deployment}"
    );
    elb.sort();
    assert_eq!(elb, vec!["HTTPCode_Target_5XX_Count", "UnHealthyHostCount"]);

    // The sink publishes into the namespace and with the Deployment value the alarms use:
    // both come from the sink module (its env and its outputs share one variable each).
    let sink = fs::read_to_string(repo().join("modules/sink/main.tf"))?;
    assert!(sink.contains("TUMBLEWEED_EMF_NAMESPACE  = var.metrics_namespace"));
    assert!(sink.contains("TUMBLEWEED_EMF_DEPLOYMENT = var.name"));
    let outs = body("modules/sink/outputs.tf")?;
    assert_eq!(
        attr_text(
            block(&outs, "output", &["metrics_namespace"]).unwrap(),
            "value"
        )
        .trim(),
        "var.metrics_namespace"
    );
    assert_eq!(
        attr_text(
            block(&outs, "output", &["metrics_deployment"]).unwrap(),
            "value"
        )
        .trim(),
        "var.name"
    );
    let root = body("infra/main.tf")?;
    let alarms = block(&root, "module", &["alarms"]).expect("module alarms");
    assert_eq!(
        attr_text(alarms, "deployment").trim(),
        "module.sink.metrics_deployment"
    );
    assert_eq!(
        attr_text(alarms, "metrics_namespace").trim(),
        "module.sink.metrics_namespace"
    );
    let sink_call = block(&root, "module", &["sink"]).expect("module sink");
    assert_eq!(attr_text(sink_call, "name").trim(), "var.name_prefix");
    Ok(())
}

#[test]
fn alarm_on_a_metric_the_sink_does_not_publish_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/alarms/main.tf",
        "metric_name         = \"MaxConsumerLagEvents\"",
        "metric_name         = \"MaxConsumerLag\"",
    )?;
    let f = c.findings()?;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].kind,
        FindingKind::MetricNotPublished {
            resource: "aws_cloudwatch_metric_alarm.consumer_lag".into(),
            detail: "the sink publishes no metric MaxConsumerLag".into(),
        }
    );
    assert_eq!(
        f[0].location,
        at(
            "modules/alarms/main.tf",
            c.line_of("modules/alarms/main.tf", "\"consumer_lag\" {")?
        )
    );
    Ok(())
}

#[test]
fn alarm_with_other_dimensions_or_unit_than_the_sink_publishes_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/alarms/main.tf",
        "deployment_dimensions = { Deployment = var.deployment }",
        "deployment_dimensions = { Deployment = var.deployment, Task = \"all\" }",
    )?;
    let k = kinds(&c)?;
    assert_eq!(k.len(), 3, "one per alarm on the sink's metrics: {k:?}");
    assert!(k.iter().all(
        |f| matches!(f, FindingKind::MetricNotPublished { detail, .. } if detail.contains("Task"))
    ));

    let c = Copy::new()?;
    c.edit(
        "modules/alarms/main.tf",
        "unit                = \"Bytes\"",
        "unit                = \"Megabytes\"",
    )?;
    let k = kinds(&c)?;
    assert_eq!(k.len(), 1, "{k:?}");
    assert!(
        matches!(&k[0], FindingKind::MetricNotPublished { resource, detail }
        if resource == "aws_cloudwatch_metric_alarm.retained_wal" && detail.contains("in Bytes"))
    );
    Ok(())
}

#[test]
fn sink_without_emf_environment_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/sink/main.tf",
        "    TUMBLEWEED_EMF_DEPLOYMENT = var.name\n",
        "",
    )?;
    let k = kinds(&c)?;
    assert_eq!(k.len(), 1, "{k:?}");
    assert!(
        matches!(&k[0], FindingKind::MissingContainerEnv { container, name, .. }
        if container == "sink" && name == "TUMBLEWEED_EMF_DEPLOYMENT")
    );
    Ok(())
}

#[test]
fn autoscaled_service_that_resets_desired_count_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/fargate-service/main.tf",
        "    ignore_changes = [desired_count]",
        "    ignore_changes = []",
    )?;
    let f = c.findings()?;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].kind,
        FindingKind::AutoscaledServiceSetsDesiredCount {
            resource: "aws_appautoscaling_target.this".into(),
            service: "aws_ecs_service.ignore_desired_count".into(),
        }
    );
    // And the sink's service is that variant, reached from its old addresses.
    let sink = body("modules/sink/main.tf")?;
    let svc = block(&sink, "module", &["service"]).expect("fargate-service call");
    assert!(attr_text(svc, "autoscaling").contains("var.min_count"));
    let moved: Vec<(String, String)> = sink
        .blocks()
        .filter(|b| b.ident.as_str() == "moved")
        .map(|b| {
            (
                attr_text(b, "from").trim().to_string(),
                attr_text(b, "to").trim().to_string(),
            )
        })
        .collect();
    assert!(moved.contains(&(
        "module.service.aws_ecs_service.this[0]".into(),
        "module.service.aws_ecs_service.ignore_desired_count[0]".into()
    )));
    Ok(())
}

#[test]
fn sink_scaling_inputs_are_validated_together() -> Result<()> {
    let m = root()?;
    let scale = |min: f64, desired: f64, max: f64| {
        [
            ("sink_min_count", num(min)),
            ("sink_desired_count", num(desired)),
            ("sink_max_count", num(max)),
        ]
    };
    assert_eq!(failing_validations(&m, &scale(2.0, 2.0, 4.0)), Ok(vec![]));
    assert!(!rejected(&m, &scale(1.0, 1.0, 1.0))?, "a fixed count of 1");
    assert!(!rejected(&m, &scale(3.0, 5.0, 20.0))?);
    assert!(rejected(&m, &scale(0.0, 0.0, 2.0))?, "min below 1");
    assert!(rejected(&m, &scale(3.0, 3.0, 2.0))?, "min above max");
    assert!(rejected(&m, &scale(2.0, 2.0, 21.0))?, "max above 20");
    assert!(rejected(&m, &scale(2.0, 1.0, 4.0))?, "desired below min");
    assert!(rejected(&m, &scale(2.0, 5.0, 4.0))?, "desired above max");
    let cpu = |t: f64| [("sink_target_cpu_percent", num(t))];
    assert!(!rejected(&m, &cpu(10.0))?);
    assert!(!rejected(&m, &cpu(90.0))?);
    assert!(rejected(&m, &cpu(9.0))?);
    assert!(rejected(&m, &cpu(91.0))?);
    // The same rules in the sink module and in the service module's autoscaling object.
    let sink = ModuleSource::load(&repo().join("modules/sink"), &repo())?;
    let s = |min: f64, desired: f64, max: f64| {
        [
            ("min_count", num(min)),
            ("desired_count", num(desired)),
            ("max_count", num(max)),
        ]
    };
    assert!(!rejected(&sink, &s(2.0, 3.0, 4.0))?);
    assert!(rejected(&sink, &s(2.0, 5.0, 4.0))?);
    assert!(rejected(&sink, &s(0.0, 0.0, 4.0))?);
    Ok(())
}

#[test]
fn existing_kafka_inputs_are_validated() -> Result<()> {
    let m = root()?;
    let msk = "b-1.tw.abc123.c2.kafka.eu-central-1.amazonaws.com:9092,b-2.tw.abc123.c2.kafka.eu-central-1.amazonaws.com:9092";
    let with = |bootstrap: &str, sg: Value| {
        [
            ("existing_kafka_bootstrap_servers", Value::str(bootstrap)),
            ("existing_kafka_security_group_id", sg),
        ]
    };
    let sg = || Value::str("sg-0123456789abcdef0");
    assert_eq!(failing_validations(&m, &with("", Value::Null)), Ok(vec![]));
    assert_eq!(failing_validations(&m, &with(msk, sg())), Ok(vec![]));
    assert!(!rejected(&m, &with("10.0.1.5:9092", sg()))?);
    for bad in [
        "b-1.example:9092, b-2.example:9092",
        "b-1.example",
        "b-1.example:",
        "b-1.example:9092,",
        ":9092",
        "b-1.example:99999",
        "b-1.example:0",
        "PLAINTEXT://b-1.example:9092",
    ] {
        assert!(rejected(&m, &with(bad, sg()))?, "{bad:?} accepted");
    }
    // Egress needs the cluster's security group, and it means nothing without the cluster.
    assert!(rejected(&m, &with(msk, Value::Null))?);
    assert!(rejected(&m, &with(msk, Value::str("vpc-0123")))?);
    assert!(rejected(&m, &with("", sg()))?);
    let rf = |n: f64| [("existing_kafka_replication_factor", num(n))];
    assert!(!rejected(&m, &rf(1.0))?);
    assert!(!rejected(&m, &rf(5.0))?);
    assert!(rejected(&m, &rf(0.0))?);
    assert!(rejected(&m, &rf(6.0))?);
    assert!(rejected(&m, &rf(2.5))?);
    Ok(())
}

#[test]
fn existing_kafka_replaces_the_ecs_cluster_everywhere() -> Result<()> {
    let root = body("infra/main.tf")?;
    let kafka = block(&root, "module", &["kafka"]).expect("module kafka");
    assert_eq!(
        attr_text(kafka, "count").trim(),
        "local.create_kafka ? 1 : 0"
    );
    let text = fs::read_to_string(repo().join("infra/main.tf"))?;
    assert!(
        text.contains("create_kafka             = var.existing_kafka_bootstrap_servers == \"\"")
    );
    // No use of module.kafka outside the create_kafka conditionals, the count and moved.
    for (i, line) in text.lines().enumerate() {
        if line.contains("module.kafka") && !line.contains("moved") {
            assert!(
                line.contains("local.create_kafka ? module.kafka[0].")
                    || line.trim() == "from = module.kafka"
                    || line.trim() == "to   = module.kafka[0]",
                "infra/main.tf:{}: {line}",
                i + 1
            );
        }
    }
    for m in ["connect", "sink"] {
        let call = block(&root, "module", &[m]).expect("module call");
        assert_eq!(
            attr_text(call, "replication_factor").trim(),
            "local.kafka_replication_factor",
            "{m}"
        );
    }
    let outs = fs::read_to_string(repo().join("infra/outputs.tf"))?;
    for line in outs.lines().filter(|l| l.contains("module.kafka")) {
        assert!(
            line.contains("local.create_kafka ? module.kafka[0].")
                || line.contains("try(module.kafka[0]."),
            "infra/outputs.tf: {line}"
        );
    }
    // The sink creates its topics with the cluster's replication factor, not a literal.
    let sink = fs::read_to_string(repo().join("modules/sink/main.tf"))?;
    assert!(sink.contains("TUMBLEWEED_TOPIC_REPLICATION_FACTOR = tostring(var.replication_factor)"));
    // Egress to the existing cluster's group from both Kafka clients.
    let sec = body("modules/security/main.tf")?;
    for r in ["sink_to_existing_kafka", "connect_to_existing_kafka"] {
        let rule = block(&sec, "resource", &["aws_vpc_security_group_egress_rule", r]).expect(r);
        assert_eq!(
            attr_text(rule, "referenced_security_group_id").trim(),
            "var.existing_kafka_security_group_id"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Issue #13: routes split by prefix list, per-source secrets, the RDS CA bundle on Connect.
// Each defect test puts one fix back in a copy and expects exactly the finding naming it.
// ---------------------------------------------------------------------------------------

/// `.route("PATH", ...)` paths of the first router built after `start` in `text`, up to
/// its `.with_state(`.
fn routes_after(text: &str, start: &str) -> Vec<String> {
    let from = text.find(start).expect("router start") + start.len();
    let to = from + text[from..].find(".with_state(").expect("router end");
    text[from..to]
        .split(".route(\"")
        .skip(1)
        .map(|r| r[..r.find('"').unwrap()].to_string())
        .collect()
}

/// ALB path-pattern matching: `*` any characters (also `/`), `?` one, case-sensitive.
fn alb_matches(pattern: &str, path: &str) -> bool {
    fn m(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], a) || (!a.is_empty() && m(p, &a[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x == y => m(&p[1..], &a[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), path.as_bytes())
}

#[test]
fn consumer_path_patterns_are_the_sink_consumer_routes() -> Result<()> {
    use tumbleweed_terraform_check::rules::CONSUMER_PATH_PATTERNS;
    let http = fs::read_to_string(repo().join("sink/src/http.rs"))?;
    let as_pattern = |r: &str| {
        r.split('/')
            .map(|seg| if seg.starts_with('{') { "*" } else { seg })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut consumer: Vec<String> = routes_after(&http, "let consumer_api = Router::new()")
        .iter()
        .map(|r| as_pattern(r))
        .collect();
    consumer.sort();
    let mut rule: Vec<String> = CONSUMER_PATH_PATTERNS
        .iter()
        .map(|s| s.to_string())
        .collect();
    rule.sort();
    assert_eq!(
        consumer, rule,
        "the rule's patterns are the sink's consumer routes"
    );
    // The sink module forwards exactly these on the public listener.
    let sink = body("modules/sink/main.tf")?;
    let locals = sink
        .blocks()
        .find(|b| b.ident.as_str() == "locals" && b.body.has_attribute("consumer_path_patterns"))
        .expect("local consumer_path_patterns");
    let text = attr_text(locals, "consumer_path_patterns");
    let mut module: Vec<String> = text
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    module.sort();
    assert_eq!(module, rule);
    // No admin route, source route or /metrics matches a consumer pattern (a concrete path
    // of each, with a name in every parameter).
    let sources = fs::read_to_string(repo().join("sink/src/sources/mod.rs"))?;
    let mut private = routes_after(&http, "let admin_api = Router::new()");
    private.extend(routes_after(&sources, "axum::Router::new()"));
    private.extend(routes_after(&http, "let metrics_api = Router::new()"));
    assert!(private.contains(&"/metrics".to_string()), "{private:?}");
    assert!(private.contains(&"/v1/sources".to_string()), "{private:?}");
    for r in &private {
        let path = r
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for p in CONSUMER_PATH_PATTERNS {
            assert!(!alb_matches(p, &path), "{p} forwards the private route {r}");
        }
    }
    for (p, path) in [
        ("/v1/consumers/*/events", "/v1/consumers/billing/events"),
        ("/v1/consumers/*/ack", "/v1/consumers/billing/ack"),
        ("/v1/consumers/*/tickets", "/v1/consumers/billing/tickets"),
    ] {
        assert!(alb_matches(p, path));
    }
    Ok(())
}

#[test]
fn issue_13_public_listener_forwarding_everything_is_reported() -> Result<()> {
    for (listener, port) in [("http", "80"), ("https", "443")] {
        let c = Copy::new()?;
        let text = fs::read_to_string(c.dir.path().join("modules/sink/main.tf"))?;
        let start = text
            .find(&format!("resource \"aws_lb_listener\" \"{listener}\" {{"))
            .expect("listener");
        let at = start + text[start..].find("type = \"fixed-response\"").unwrap();
        let mut edited = text.clone();
        edited.replace_range(
            at..at + "type = \"fixed-response\"".len(),
            "type = \"forward\"",
        );
        fs::write(c.dir.path().join("modules/sink/main.tf"), edited)?;
        let f = c.findings()?;
        assert_eq!(f.len(), 1, "{listener}: {f:?}");
        assert_eq!(
            f[0].location,
            at_line(
                &c,
                "modules/sink/main.tf",
                &format!("\"aws_lb_listener\" \"{listener}\"")
            )?
        );
        assert!(
            matches!(&f[0].kind, FindingKind::PublicListenerForwards { resource, detail }
                if resource == &format!("aws_lb_listener.{listener}") && detail.contains("default action forwards")),
            "{port}: {f:?}"
        );
    }
    Ok(())
}

fn at_line(c: &Copy, file: &str, needle: &str) -> Result<Location> {
    Ok(at(file, c.line_of(file, needle)?))
}

#[test]
fn issue_13_public_listener_forwarding_admin_routes_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/sink/main.tf",
        "    \"/readyz\",\n  ]",
        "    \"/readyz\",\n    \"/metrics\",\n  ]",
    )?;
    let f = c.findings()?;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].location,
        at_line(
            &c,
            "modules/sink/main.tf",
            "\"aws_lb_listener_rule\" \"consumer_routes\""
        )?
    );
    assert!(
        matches!(&f[0].kind, FindingKind::PublicListenerForwards { resource, detail }
            if resource == "aws_lb_listener_rule.consumer_routes" && detail.contains("[\"/metrics\"]")),
        "{f:?}"
    );

    // A forward rule without a path condition forwards everything.
    let c = Copy::new()?;
    c.edit(
        "modules/sink/main.tf",
        "  condition {\n    path_pattern {\n      values = local.consumer_path_patterns\n    }\n  }\n",
        "",
    )?;
    let k = kinds(&c)?;
    assert_eq!(k.len(), 1, "{k:?}");
    assert!(
        matches!(&k[0], FindingKind::PublicListenerForwards { detail, .. }
        if detail.contains("without a path_pattern condition"))
    );
    Ok(())
}

#[test]
fn issue_13_admin_port_open_to_others_than_operators_is_reported() -> Result<()> {
    // The consumers' rule on the admin port.
    let c = Copy::new()?;
    c.edit(
        "modules/security/main.tf",
        "  from_port         = local.ports.listener\n  to_port           = local.ports.listener\n  prefix_list_id    = aws_ec2_managed_prefix_list.consumers.id",
        "  from_port         = local.ports.admin\n  to_port           = local.ports.admin\n  prefix_list_id    = aws_ec2_managed_prefix_list.consumers.id",
    )?;
    let f = c.findings()?;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].location,
        at_line(&c, "modules/security/main.tf", "\"lb_from_consumers\"")?
    );
    assert!(
        matches!(&f[0].kind, FindingKind::AdminPortNotOperatorOnly { resource, detail }
        if resource == "aws_vpc_security_group_ingress_rule.lb_from_consumers"
            && detail.contains("aws_ec2_managed_prefix_list.consumers"))
    );

    // The operators back on the consumer port, as before #13: nobody reaches the admin port.
    let c = Copy::new()?;
    c.edit(
        "modules/security/main.tf",
        "  from_port         = local.ports.admin\n  to_port           = local.ports.admin\n  prefix_list_id    = aws_ec2_managed_prefix_list.operators.id",
        "  from_port         = local.ports.listener\n  to_port           = local.ports.listener\n  prefix_list_id    = aws_ec2_managed_prefix_list.operators.id",
    )?;
    let f = c.findings()?;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].location,
        at_line(
            &c,
            "modules/security/variables.tf",
            "variable \"admin_port\""
        )?
    );

    // A CIDR on a port range that covers the admin port.
    let c = Copy::new()?;
    c.append(
        "modules/security/main.tf",
        "\nresource \"aws_vpc_security_group_ingress_rule\" \"lb_from_office\" {\n  security_group_id = aws_security_group.lb.id\n  ip_protocol       = \"tcp\"\n  from_port         = 8000\n  to_port           = 8999\n  cidr_ipv4         = \"192.0.2.0/24\"\n}\n",
    )?;
    let k = kinds(&c)?;
    assert_eq!(k.len(), 1, "{k:?}");
    assert!(
        matches!(&k[0], FindingKind::AdminPortNotOperatorOnly { resource, .. }
        if resource == "aws_vpc_security_group_ingress_rule.lb_from_office")
    );
    Ok(())
}

#[test]
fn issue_13_secret_grant_wider_than_the_declared_arns_is_reported() -> Result<()> {
    let c = Copy::new()?;
    c.edit(
        "modules/fargate-service/main.tf",
        "      resources = statement.value\n    }\n  }\n\n  dynamic \"statement\" {\n    for_each = length(local.secret_arns) == 0 ? [] : [distinct",
        "      resources = concat(statement.value, [\"arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:*\"])\n    }\n  }\n\n  dynamic \"statement\" {\n    for_each = length(local.secret_arns) == 0 ? [] : [distinct",
    )?;
    let f = c.findings()?;
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        matches!(&f[0].kind, FindingKind::SecretGrantNotExact { statement, detail }
        if statement == "data.aws_iam_policy_document.execution, statement ReadSecrets"
            && detail.contains("(a wildcard)")),
        "{f:?}"
    );

    // The service module's secrets input accepting wildcard ARNs again.
    let c = Copy::new()?;
    c.edit(
        "modules/fargate-service/variables.tf",
        " && !can(regex(\"[*?]\", arn))",
        "",
    )?;
    let k = kinds(&c)?;
    assert_eq!(k.len(), 2, "one per wildcard ARN tried: {k:?}");
    assert!(
        k.iter().all(
            |x| matches!(x, FindingKind::SecretGrantNotExact { detail, .. }
        if detail.contains("var.secrets accepts the wildcard ARN"))
        ),
        "{k:?}"
    );
    Ok(())
}

#[test]
fn issue_13_unwired_source_secrets_are_reported() -> Result<()> {
    for module in ["sink", "connect"] {
        let c = Copy::new()?;
        let file = format!("modules/{module}/main.tf");
        c.edit(
            &file,
            "    { for key, arn in var.source_db_password_secrets : \"TUMBLEWEED_SECRET_${key}\" => arn },\n",
            "",
        )?;
        let f = c.findings()?;
        assert!(!f.is_empty(), "{module}");
        for x in &f {
            assert_eq!(
                x.location,
                at_line(
                    &c,
                    &format!("modules/{module}/variables.tf"),
                    "variable \"source_db_password_secrets\""
                )?
            );
            assert!(
                matches!(&x.kind, FindingKind::SecretNotWired { variable, .. }
                if variable == "source_db_password_secrets"),
                "{module}: {f:?}"
            );
        }
    }
    // Under another name than the one the connector configs use.
    let c = Copy::new()?;
    c.edit(
        "modules/connect/main.tf",
        "\"TUMBLEWEED_SECRET_${key}\" => arn",
        "\"SOURCE_SECRET_${key}\" => arn",
    )?;
    let k = kinds(&c)?;
    assert!(
        k.iter()
            .any(|x| matches!(x, FindingKind::SecretNotWired { variable, .. }
        if variable == "source_db_password_secrets")),
        "{k:?}"
    );
    Ok(())
}

#[test]
fn issue_13_inputs_are_validated() -> Result<()> {
    let m = root()?;
    let arn =
        "arn:aws:secretsmanager:eu-central-1:111122223333:secret:tw-prod/orders-db-password-AbCdEf";
    let secrets = |pairs: &[(&str, &str)]| {
        [(
            "source_db_password_secrets",
            Value::Obj(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::str(v)))
                    .collect(),
            ),
        )]
    };
    assert_eq!(failing_validations(&m, &secrets(&[])), Ok(vec![]));
    assert_eq!(
        failing_validations(&m, &secrets(&[("ORDERS", arn), ("BILLING_2", arn)])),
        Ok(vec![])
    );
    let long = "K".repeat(65);
    for bad_key in ["orders", "ORDERS-DB", "", long.as_str()] {
        assert!(
            rejected(&m, &secrets(&[(bad_key, arn)]))?,
            "key {bad_key:?}"
        );
    }
    assert!(!rejected(&m, &secrets(&[(&"K".repeat(64), arn)]))?);
    for bad_arn in [
        "arn:aws:secretsmanager:eu-central-1:111122223333:secret:*",
        "arn:aws:secretsmanager:eu-central-1:111122223333:secret:tw-prod/orders-db-password-??????",
        "arn:aws:secretsmanager:eu-central-1:111122223333:secret:tw-prod/orders-db-password",
        "arn:aws:secretsmanager:eu-central-1:111122223333:secret:tw-prod/orders-db-password-AbCdEf:password::",
        "arn:aws:ssm:eu-central-1:111122223333:parameter/orders",
        "tw-prod/orders-db-password",
    ] {
        assert!(rejected(&m, &secrets(&[("ORDERS", bad_arn)]))?, "{bad_arn}");
    }
    assert!(!rejected(
        &m,
        &secrets(&[(
            "ORDERS",
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:111122223333:secret:a-AbCdEf"
        )])
    )?);

    // The admin port differs from the consumer port of either mode.
    let cert = "arn:aws:acm:eu-central-1:111122223333:certificate/x";
    let admin = |port: f64, cert: Value| [("admin_port", num(port)), ("certificate_arn", cert)];
    assert!(!rejected(&m, &admin(8443.0, Value::str(cert)))?);
    assert!(!rejected(&m, &admin(8443.0, Value::Null))?);
    assert!(!rejected(&m, &admin(80.0, Value::str(cert)))?);
    assert!(rejected(&m, &admin(443.0, Value::str(cert)))?);
    assert!(rejected(&m, &admin(80.0, Value::Null))?);
    assert!(rejected(&m, &admin(0.0, Value::Null))?);
    assert!(rejected(&m, &admin(65536.0, Value::Null))?);
    assert!(rejected(&m, &admin(8443.5, Value::Null))?);
    let sec = ModuleSource::load(&repo().join("modules/security"), &repo())?;
    let ports =
        |admin: f64, listener: f64| [("admin_port", num(admin)), ("listener_port", num(listener))];
    assert!(!rejected(&sec, &ports(8443.0, 443.0))?);
    assert!(rejected(&sec, &ports(443.0, 443.0))?);

    for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
        assert!(
            !rejected(&m, &[("source_default_sslmode", Value::str(mode))])?,
            "{mode}"
        );
    }
    for mode in ["verify_full", "allow", "VERIFY-FULL", ""] {
        assert!(
            rejected(&m, &[("source_default_sslmode", Value::str(mode))])?,
            "{mode}"
        );
    }
    let url = |u: Value| [("connect_rds_ca_bundle_url", u)];
    assert!(!rejected(&m, &url(Value::Null))?);
    assert!(!rejected(
        &m,
        &url(Value::str(
            "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
        ))
    )?);
    for bad in [
        "http://truststore.pki.rds.amazonaws.com/global/global-bundle.pem",
        "https://example.com/bundle.pem?x=1",
        "https://example.com/a'b.pem",
        "https://example.com/a b.pem",
    ] {
        assert!(rejected(&m, &url(Value::str(bad)))?, "{bad}");
    }
    let connect = ModuleSource::load(&repo().join("modules/connect"), &repo())?;
    let path = |p: &str| [("rds_ca_bundle_path", Value::str(p))];
    assert!(!rejected(
        &connect,
        &path("/tmp/tumbleweed/rds-global-bundle.pem")
    )?);
    for bad in [
        "tmp/x.pem",
        "/tmp/x dir/x.pem",
        "/tmp/'x.pem",
        "/tmp/",
        "/tmp/../etc/x.pem",
    ] {
        assert!(rejected(&connect, &path(bad))?, "{bad}");
    }
    // The deprecated single secret refuses wildcards too.
    assert!(rejected(
        &m,
        &[(
            "source_db_password_secret_arn",
            Value::str("arn:aws:secretsmanager:eu-central-1:111122223333:secret:*")
        )]
    )?);
    assert!(!rejected(
        &m,
        &[("source_db_password_secret_arn", Value::str("arn:aws:secretsmanager:eu-central-1:111122223333:secret:tw-prod/source-db-password-AbCdEf"))]
    )?);
    Ok(())
}

#[test]
fn issue_13_wiring_admin_port_secrets_and_rds_ca_bundle() -> Result<()> {
    let root = body("infra/main.tf")?;
    let security = block(&root, "module", &["security"]).expect("module security");
    let sink = block(&root, "module", &["sink"]).expect("module sink");
    let connect = block(&root, "module", &["connect"]).expect("module connect");
    // One admin port for the listener and its security group rule.
    assert_eq!(attr_text(security, "admin_port").trim(), "var.admin_port");
    assert_eq!(attr_text(sink, "admin_port").trim(), "var.admin_port");
    // The same secrets in the sink and Connect, and the bundle path Connect writes to.
    for call in [sink, connect] {
        assert_eq!(
            attr_text(call, "source_db_password_secrets").trim(),
            "var.source_db_password_secrets"
        );
        assert_eq!(
            attr_text(call, "source_db_password_secret_arn").trim(),
            "var.source_db_password_secret_arn"
        );
    }
    assert_eq!(
        attr_text(sink, "connect_rds_ca_path").trim(),
        "module.connect.rds_ca_bundle_path"
    );
    assert_eq!(
        attr_text(sink, "source_default_sslmode").trim(),
        "var.source_default_sslmode"
    );
    let outs = fs::read_to_string(repo().join("infra/outputs.tf"))?;
    assert!(outs.contains("value       = module.sink.admin_url"));

    // The sink's environment for verified TLS.
    let sink_main = fs::read_to_string(repo().join("modules/sink/main.tf"))?;
    for line in [
        "TUMBLEWEED_SOURCE_DEFAULT_SSLMODE     = var.source_default_sslmode",
        "TUMBLEWEED_SOURCE_DEFAULT_SSLROOTCERT = \"rds\"",
        "TUMBLEWEED_CONNECT_RDS_CA_PATH        = var.connect_rds_ca_path",
    ] {
        assert!(sink_main.contains(line), "{line}");
    }
    // Both modules default to the same path.
    let default_of = |file: &str, var: &str| -> Result<String> {
        let b = body(file)?;
        Ok(
            attr_text(block(&b, "variable", &[var]).expect("variable"), "default")
                .trim()
                .to_string(),
        )
    };
    let path = default_of("modules/connect/variables.tf", "rds_ca_bundle_path")?;
    assert_eq!(path, "\"/tmp/tumbleweed/rds-global-bundle.pem\"");
    assert_eq!(
        default_of("modules/sink/variables.tf", "connect_rds_ca_path")?,
        path
    );
    assert_eq!(
        default_of("modules/sink/variables.tf", "source_default_sslmode")?,
        "\"verify-full\""
    );

    // Connect: download, fail on error, then the image's own ENTRYPOINT and CMD
    // (connect-base Dockerfile: ENTRYPOINT ["/docker-entrypoint.sh"], CMD ["start"]).
    let c = body("modules/connect/main.tf")?;
    let svc = block(&c, "module", &["service"]).expect("fargate-service call");
    assert_eq!(
        attr_text(svc, "entry_point").trim(),
        "var.rds_ca_bundle_url == null ? null : [\"/bin/sh\", \"-c\"]"
    );
    assert_eq!(
        attr_text(svc, "command").trim(),
        "var.rds_ca_bundle_url == null ? null : [local.fetch_rds_ca_bundle]"
    );
    let script = c
        .blocks()
        .filter(|b| b.ident.as_str() == "locals")
        .map(|l| attr_text(l, "fetch_rds_ca_bundle"))
        .collect::<String>();
    let lines: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines[1], "set -eu", "{script}");
    assert_eq!(
        lines[lines.len() - 2],
        "exec /docker-entrypoint.sh start",
        "{script}"
    );
    assert!(script.contains("curl --fail"), "{script}");
    assert!(script.contains("--proto '=https'"), "{script}");
    assert!(script.contains("exit 1"), "{script}");
    // The service module passes them to the container definition.
    let f = fs::read_to_string(repo().join("modules/fargate-service/main.tf"))?;
    assert!(f.contains("var.entry_point == null ? {} : { entryPoint = var.entry_point }"));
    assert!(f.contains("var.command == null ? {} : { command = var.command }"));
    Ok(())
}
