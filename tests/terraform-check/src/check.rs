//! The checks: run over a root module and every local module it reaches (plus every
//! directory under `modules/`), and turn what `model` parsed into findings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::model::{RefKind, TfModule};
use crate::report::{Finding, FindingKind, Report};

/// Checks the repository layout: root configuration `<repo>/infra`, local modules
/// `<repo>/modules/*` (each is checked even if nothing calls it yet) and the example
/// configurations `<repo>/examples/*` with `.tf` files (which call `infra` as a module).
pub fn check_tree(repo: &Path) -> Result<Report> {
    let modules_dir = repo.join("modules");
    let mut extra = Vec::new();
    if modules_dir.is_dir() {
        for entry in std::fs::read_dir(&modules_dir)
            .with_context(|| format!("listing {}", modules_dir.display()))?
        {
            let path = entry
                .with_context(|| format!("listing {}", modules_dir.display()))?
                .path();
            if path.is_dir() {
                extra.push(path);
            }
        }
    }
    // Examples are root configurations of their own that call infra/ as a module (those with
    // .tf files: examples/clients/ holds SSE consumers, no Terraform).
    let examples_dir = repo.join("examples");
    if examples_dir.is_dir() {
        for entry in std::fs::read_dir(&examples_dir)
            .with_context(|| format!("listing {}", examples_dir.display()))?
        {
            let path = entry
                .with_context(|| format!("listing {}", examples_dir.display()))?
                .path();
            if path.is_dir() && has_tf_files(&path) {
                extra.push(path);
            }
        }
    }
    extra.sort();
    check_module_tree(&repo.join("infra"), &extra, repo)
}

/// Checks `root` and every module it calls through a local `source`, recursively, plus
/// the directories in `extra`. Paths in findings are shown relative to `display_base`.
pub fn check_module_tree(root: &Path, extra: &[PathBuf], display_base: &Path) -> Result<Report> {
    let mut loaded: BTreeMap<PathBuf, TfModule> = BTreeMap::new();
    let mut order: Vec<PathBuf> = Vec::new();
    let mut queue: Vec<PathBuf> = vec![root.to_path_buf()];
    queue.extend(extra.iter().cloned());
    let mut report = Report::default();

    // Load everything reachable first, so calls can be checked against their targets.
    while let Some(dir) = queue.pop() {
        let key = normalize(&dir);
        if loaded.contains_key(&key) {
            continue;
        }
        let module = TfModule::load(&key, &normalize(display_base))
            .with_context(|| format!("loading module {}", dir.display()))?;
        for call in module.module_calls.values() {
            if let Some(target) = call.source.as_deref().and_then(|s| local_source(&dir, s)) {
                if has_tf_files(&target) {
                    queue.push(target);
                }
            }
        }
        report.files_checked += module.files.len();
        order.push(key.clone());
        loaded.insert(key, module);
    }
    order.sort_by_key(|k| (k != &normalize(root), k.clone()));

    for key in &order {
        let module = &loaded[key];
        check_references(module, &mut report.findings);
        check_calls(module, &loaded, &mut report.findings);
        let source = crate::rules::ModuleSource::load(key, &normalize(display_base))
            .with_context(|| format!("loading module {}", key.display()))?;
        crate::rules::check_module(&source, &mut report.findings);
    }
    report.modules_checked = order
        .iter()
        .map(|k| {
            k.strip_prefix(normalize(display_base))
                .unwrap_or(k)
                .to_path_buf()
        })
        .collect();
    report.findings.sort();
    report.findings.dedup();
    Ok(report)
}

fn check_references(module: &TfModule, findings: &mut Vec<Finding>) {
    for r in &module.references {
        let kind = match r.kind {
            RefKind::Var if !module.variables.contains_key(&r.name) => {
                FindingKind::UndeclaredVariable {
                    name: r.name.clone(),
                }
            }
            RefKind::Local if !module.locals.contains_key(&r.name) => {
                FindingKind::UndeclaredLocal {
                    name: r.name.clone(),
                }
            }
            RefKind::Module if !module.module_calls.contains_key(&r.name) => {
                FindingKind::UnknownModule {
                    module: r.name.clone(),
                }
            }
            _ => continue,
        };
        findings.push(Finding {
            location: r.location.clone(),
            kind,
        });
    }
}

fn check_calls(
    module: &TfModule,
    loaded: &BTreeMap<PathBuf, TfModule>,
    findings: &mut Vec<Finding>,
) {
    for (name, call) in &module.module_calls {
        let source = call.source.clone().unwrap_or_default();
        let Some(target_dir) = local_source(&module.dir, &source) else {
            if call.source.is_none() {
                findings.push(Finding {
                    location: call.location.clone(),
                    kind: FindingKind::MissingModuleSource {
                        module: name.clone(),
                        source,
                    },
                });
            }
            // A registry or remote source cannot be checked offline.
            continue;
        };
        let Some(target) = loaded
            .get(&normalize(&target_dir))
            .filter(|_| has_tf_files(&target_dir))
        else {
            findings.push(Finding {
                location: call.location.clone(),
                kind: FindingKind::MissingModuleSource {
                    module: name.clone(),
                    source,
                },
            });
            continue;
        };

        for (input, location) in &call.inputs {
            if !target.variables.contains_key(input) {
                findings.push(Finding {
                    location: location.clone(),
                    kind: FindingKind::UnknownModuleInput {
                        module: name.clone(),
                        input: input.clone(),
                    },
                });
            }
        }
        let given: BTreeSet<&String> = call.inputs.keys().collect();
        for (var, decl) in &target.variables {
            if !decl.has_default && !given.contains(var) {
                findings.push(Finding {
                    location: call.location.clone(),
                    kind: FindingKind::MissingRequiredInput {
                        module: name.clone(),
                        input: var.clone(),
                    },
                });
            }
        }

        for r in module
            .references
            .iter()
            .filter(|r| r.kind == RefKind::Module && &r.name == name)
        {
            if let Some(output) = &r.attr {
                if !target.outputs.contains_key(output) {
                    findings.push(Finding {
                        location: r.location.clone(),
                        kind: FindingKind::UnknownModuleOutput {
                            module: name.clone(),
                            output: output.clone(),
                        },
                    });
                }
            }
        }
    }
}

/// The directory of a local module source (`./x`, `../x`), or None for anything else
/// (registry addresses, git, URLs), which cannot be checked offline.
fn local_source(dir: &Path, source: &str) -> Option<PathBuf> {
    (source.starts_with("./") || source.starts_with("../")).then(|| dir.join(source))
}

fn has_tf_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.path().extension().is_some_and(|x| x == "tf"))
        })
        .unwrap_or(false)
}

/// Lexically resolves `.` and `..` so `infra/../modules/x` and `modules/x` are one key.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
