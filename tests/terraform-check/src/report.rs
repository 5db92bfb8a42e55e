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
