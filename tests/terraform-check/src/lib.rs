//! Offline reference checks over a Terraform tree: the root configuration (`infra/`)
//! and the local modules it calls (`modules/*`), parsed with `hcl-rs` (through its
//! `hcl::edit` parser, which keeps source spans for line numbers).
//!
//! What it catches, without providers or `terraform init`:
//! - `var.X` / `local.X` that the module does not declare;
//! - a `module` block whose `source` directory does not exist;
//! - a module input that the called module does not declare as a variable;
//! - a required input (a variable without `default`) that the call does not pass;
//! - `module.M.O` where `M` is not a module call or `O` not an output of it;
//! - the deployment rules of [`rules`] (image environment contracts, liveness health
//!   checks, name_prefix with create_before_destroy, validated CPU architecture, region-safe
//!   load balancer log delivery, protected and backed-up EFS, wired database password secrets,
//!   a public listener that forwards only the sink's consumer routes, an admin port admitted
//!   from the operator prefix list only, secret grants on exactly the declared ARNs).
//!
//! ```no_run
//! let report = tumbleweed_terraform_check::check_tree(std::path::Path::new("/repo")).unwrap();
//! assert!(report.is_clean(), "{report}");
//! ```

pub mod check;
pub mod eval;
pub mod model;
pub mod report;
pub mod rules;

pub use check::{check_module_tree, check_tree};
pub use model::{Location, TfModule};
pub use report::{Finding, FindingKind, Report};
