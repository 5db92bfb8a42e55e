//! Findings and the report: what is wrong, where (file and line), printed one per line.

use std::fmt;
use std::path::PathBuf;

use crate::model::Location;

/// The defect classes the checker knows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FindingKind {
    /// `var.NAME` with no `variable "NAME"` in the module.
    UndeclaredVariable { name: String },
    /// `local.NAME` with no `NAME = ...` in any `locals` block of the module.
    UndeclaredLocal { name: String },
    /// A `module` block without a usable `source`, or whose local source directory does
    /// not exist or holds no `.tf` file.
    MissingModuleSource { module: String, source: String },
    /// `module "M" { X = ... }` where the called module declares no variable `X`.
    UnknownModuleInput { module: String, input: String },
    /// `module "M"` does not pass `X` although the called module's variable `X` has no default.
    MissingRequiredInput { module: String, input: String },
    /// `module.M.O` where `M` is not a module call of this configuration.
    UnknownModule { module: String },
    /// `module.M.O` where the module called as `M` has no output `O`.
    UnknownModuleOutput { module: String, output: String },
    /// A container environment (or secret) name the image never reads.
    UnreadContainerEnv { container: String, name: String },
    /// A setting the image defaults wrongly for this deployment is not set.
    MissingContainerEnv {
        container: String,
        name: String,
        why: String,
    },
    /// The sink's load balancer health check probes something other than liveness.
    HealthCheckNotLiveness { path: String },
    /// `create_before_destroy` with a fixed `name`: replacement collides with the old name.
    FixedNameWithCreateBeforeDestroy {
        resource: String,
        name_prefix_supported: bool,
    },
    /// `runtime_platform.cpu_architecture` is a literal or an unvalidated variable.
    UnvalidatedCpuArchitecture { resource: String },
    /// `data "aws_elb_service_account"` fails plan in regions missing from the provider's map.
    ElbServiceAccountDataSource,
    /// A load balancer logs to S3 but no policy names the log delivery service principal.
    MissingLogDeliveryPrincipal { resource: String },
    /// A resource holding data cannot be destroyed safely (no prevent_destroy, no backup).
    UnprotectedStatefulResource { resource: String, missing: String },
    /// A secret input is declared but does not reach a container and a scoped IAM grant.
    SecretNotWired { variable: String, missing: String },
    /// A variable's validation accepts an input Terraform or AWS rejects later (or the reverse).
    ValidationGap { variable: String, detail: String },
    /// An alarm on the sink's namespace names a metric, dimensions or unit the sink does
    /// not publish: it never gets a data point.
    MetricNotPublished { resource: String, detail: String },
    /// An Application Auto Scaling target on an ECS service that does not ignore
    /// `desired_count`: each apply resets the autoscaler's count.
    AutoscaledServiceSetsDesiredCount { resource: String, service: String },
    /// The public (consumer) listener, or a rule on it, forwards more than the sink's
    /// consumer routes.
    PublicListenerForwards { resource: String, detail: String },
    /// The admin listener's port is admitted from something other than the operator
    /// prefix list, or not from it.
    AdminPortNotOperatorOnly { resource: String, detail: String },
    /// A `secretsmanager:GetSecretValue` grant on more than the ARNs a variable declares.
    SecretGrantNotExact { statement: String, detail: String },
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindingKind::UndeclaredVariable { name } => {
                write!(f, "var.{name} is used but no variable \"{name}\" is declared")
            }
            FindingKind::UndeclaredLocal { name } => {
                write!(f, "local.{name} is used but no local \"{name}\" is defined")
            }
            FindingKind::MissingModuleSource { module, source } => {
                write!(f, "module \"{module}\": source \"{source}\" is not a directory with .tf files")
            }
            FindingKind::UnknownModuleInput { module, input } => write!(
                f,
                "module \"{module}\": input \"{input}\" is not a variable of the called module"
            ),
            FindingKind::MissingRequiredInput { module, input } => write!(
                f,
                "module \"{module}\": required input \"{input}\" (variable without default) is not set"
            ),
            FindingKind::UnknownModule { module } => {
                write!(f, "module.{module} is referenced but there is no module \"{module}\" block")
            }
            FindingKind::UnknownModuleOutput { module, output } => write!(
                f,
                "module.{module}.{output} is referenced but the module has no output \"{output}\""
            ),
            FindingKind::UnreadContainerEnv { container, name } => write!(
                f,
                "container \"{container}\": environment variable {name} is not read by the image"
            ),
            FindingKind::MissingContainerEnv { container, name, why } => write!(
                f,
                "container \"{container}\": {name} must be set ({why})"
            ),
            FindingKind::HealthCheckNotLiveness { path } => write!(
                f,
                "load balancer health check path {path} is not the sink's liveness path {}",
                crate::rules::SINK_LIVENESS_PATH
            ),
            FindingKind::FixedNameWithCreateBeforeDestroy { resource, name_prefix_supported } => write!(
                f,
                "{resource}: create_before_destroy with a fixed name fails on replacement (duplicate name){}",
                if *name_prefix_supported { "; use name_prefix" } else { "" }
            ),
            FindingKind::UnvalidatedCpuArchitecture { resource } => write!(
                f,
                "{resource}: runtime_platform.cpu_architecture must come from a validated variable (X86_64 or ARM64)"
            ),
            FindingKind::ElbServiceAccountDataSource => write!(
                f,
                "data \"aws_elb_service_account\" fails plan in regions opened after August 2022; use the logdelivery.elasticloadbalancing.amazonaws.com principal (and a region map for older regions)"
            ),
            FindingKind::MissingLogDeliveryPrincipal { resource } => write!(
                f,
                "{resource} writes access logs but no bucket policy names logdelivery.elasticloadbalancing.amazonaws.com"
            ),
            FindingKind::UnprotectedStatefulResource { resource, missing } => {
                write!(f, "{resource} holds data but has no {missing}")
            }
            FindingKind::SecretNotWired { variable, missing } => {
                write!(f, "var.{variable} is declared but there is no {missing}")
            }
            FindingKind::ValidationGap { variable, detail } => {
                write!(f, "variable \"{variable}\": {detail}")
            }
            FindingKind::MetricNotPublished { resource, detail } => {
                write!(f, "{resource}: {detail} (the alarm would never see data)")
            }
            FindingKind::AutoscaledServiceSetsDesiredCount { resource, service } => write!(
                f,
                "{resource} scales {service}, which does not ignore desired_count: every apply resets the autoscaler's count"
            ),
            FindingKind::PublicListenerForwards { resource, detail } => write!(
                f,
                "{resource} (public consumer listener): {detail}"
            ),
            FindingKind::AdminPortNotOperatorOnly { resource, detail } => {
                write!(f, "{resource}: {detail}")
            }
            FindingKind::SecretGrantNotExact { statement, detail } => write!(
                f,
                "{statement}: {detail} (the execution role must read exactly the declared secret ARNs)"
            ),
        }
    }
}

/// One defect, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub location: Location,
    pub kind: FindingKind,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

/// All findings of a run, sorted by file and line, plus what was checked.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Module directories that were parsed (the root first).
    pub modules_checked: Vec<PathBuf>,
    /// Number of `.tf` files parsed.
    pub files_checked: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        write!(
            f,
            "terraform-check: {} module(s), {} file(s), {} finding(s)",
            self.modules_checked.len(),
            self.files_checked,
            self.findings.len()
        )
    }
}
