//! The parsed shape of one Terraform module directory: its variables, locals, outputs,
//! module calls and every `var.`, `local.` and `module.` reference, each with the file
//! and line it comes from. Parsing uses `hcl::edit` (the span-keeping parser of hcl-rs).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hcl::edit::expr::{Expression, Traversal, TraversalOperator};
use hcl::edit::structure::{Block, Body};
use hcl::edit::visit::{self, Visit};
use hcl::edit::Span;

/// A place in a source file (1-based line).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A `variable` block.
#[derive(Debug, Clone)]
pub struct Variable {
    pub has_default: bool,
    pub location: Location,
}

/// A `module` block: where it points and which inputs it sets.
#[derive(Debug, Clone)]
pub struct ModuleCall {
    pub source: Option<String>,
    pub inputs: BTreeMap<String, Location>,
    pub location: Location,
}

/// What a reference points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Var,
    Local,
    Module,
}

/// `var.NAME`, `local.NAME` or `module.NAME.ATTR` (ATTR only for modules, when present).
#[derive(Debug, Clone)]
pub struct Reference {
    pub kind: RefKind,
    pub name: String,
    pub attr: Option<String>,
    pub location: Location,
}

/// Everything the checks need to know about one module directory.
#[derive(Debug, Clone, Default)]
pub struct TfModule {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub variables: BTreeMap<String, Variable>,
    pub locals: BTreeMap<String, Location>,
    pub outputs: BTreeMap<String, Location>,
    pub module_calls: BTreeMap<String, ModuleCall>,
    pub references: Vec<Reference>,
}

/// Meta-arguments of a `module` block, which are not inputs of the called module.
const MODULE_META_ARGUMENTS: &[&str] = &[
    "source",
    "version",
    "providers",
    "count",
    "for_each",
    "depends_on",
];

/// Maps byte offsets of one file to 1-based lines.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

struct FileCtx<'a> {
    /// Path as reported in findings (relative to the directory the caller chose).
    shown: &'a Path,
    lines: LineIndex,
}

impl FileCtx<'_> {
    fn at(&self, span: Option<std::ops::Range<usize>>) -> Location {
        Location {
            file: self.shown.to_path_buf(),
            line: span.map(|s| self.lines.line(s.start)).unwrap_or(0),
        }
    }
}

impl TfModule {
    /// Parses every `*.tf` file directly inside `dir` (not recursive, as Terraform does).
    /// `display_base` is stripped from paths in locations, so reports stay short.
    pub fn load(dir: &Path, display_base: &Path) -> Result<TfModule> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .with_context(|| format!("reading module directory {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("listing {}", dir.display()))?;
        files.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "tf"));
        files.sort();

        let mut module = TfModule {
            dir: dir.to_path_buf(),
            ..TfModule::default()
        };
        for path in &files {
            let text =
                fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let body: Body = hcl::edit::parser::parse_body(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            let shown = path.strip_prefix(display_base).unwrap_or(path);
            let ctx = FileCtx {
                shown,
                lines: LineIndex::new(&text),
            };
            module.add_file(&ctx, &body);
        }
        module.files = files;
        Ok(module)
    }

    fn add_file(&mut self, ctx: &FileCtx<'_>, body: &Body) {
        for block in body.blocks() {
            let label = block.labels.first().map(|l| l.as_str().to_string());
            match (block.ident.as_str(), label) {
                ("variable", Some(name)) => {
                    self.variables.insert(
                        name,
                        Variable {
                            has_default: block.body.has_attribute("default"),
                            location: ctx.at(block.span()),
                        },
                    );
                }
                ("output", Some(name)) => {
                    self.outputs.insert(name, ctx.at(block.span()));
                }
                ("locals", _) => {
                    for attr in block.body.attributes() {
                        self.locals
                            .insert(attr.key.as_str().to_string(), ctx.at(attr.span()));
                    }
                }
                ("module", Some(name)) => {
                    self.module_calls.insert(name, module_call(ctx, block));
                }
                _ => {}
            }
        }

        let mut collector = RefCollector {
            ctx,
            refs: &mut self.references,
        };
        // `moved`, `import` and `removed` name resource addresses, not values: a
        // `module.M.aws_x.y` there is no reference to an output.
        for structure in body.iter() {
            match structure {
                hcl::edit::structure::Structure::Block(b)
                    if matches!(b.ident.as_str(), "moved" | "import" | "removed") => {}
                hcl::edit::structure::Structure::Block(b) => collector.visit_block(b),
                hcl::edit::structure::Structure::Attribute(a) => collector.visit_attr(a),
            }
        }
    }
}

fn module_call(ctx: &FileCtx<'_>, block: &Block) -> ModuleCall {
    let source = block
        .body
        .get_attribute("source")
        .and_then(|a| match &a.value {
            Expression::String(s) => Some(s.value().clone()),
            _ => None,
        });
    let inputs = block
        .body
        .attributes()
        .filter(|a| !MODULE_META_ARGUMENTS.contains(&a.key.as_str()))
        .map(|a| (a.key.as_str().to_string(), ctx.at(a.span())))
        .collect();
    ModuleCall {
        source,
        inputs,
        location: ctx.at(block.span()),
    }
}

/// Walks every expression of a file (attributes, nested blocks, templates, heredocs,
/// for-expressions) and records the `var.` / `local.` / `module.` traversals.
struct RefCollector<'a, 'b> {
    ctx: &'a FileCtx<'b>,
    refs: &'a mut Vec<Reference>,
}

impl Visit for RefCollector<'_, '_> {
    fn visit_traversal(&mut self, node: &Traversal) {
        if let Expression::Variable(root) = &node.expr {
            let kind = match root.as_str() {
                "var" => Some(RefKind::Var),
                "local" => Some(RefKind::Local),
                "module" => Some(RefKind::Module),
                _ => None,
            };
            let mut attrs = node.operators.iter().filter_map(|op| match op.value() {
                TraversalOperator::GetAttr(ident) => Some(ident.as_str().to_string()),
                _ => None,
            });
            if let (Some(kind), Some(TraversalOperator::GetAttr(name))) =
                (kind, node.operators.first().map(|op| op.value()))
            {
                attrs.next();
                let attr = if kind == RefKind::Module {
                    // module.M.O, module.M[0].O, module.M["k"].O, module.M[*].O
                    attrs.next()
                } else {
                    None
                };
                self.refs.push(Reference {
                    kind,
                    name: name.as_str().to_string(),
                    attr,
                    location: self.ctx.at(node.span()),
                });
            }
        }
        // Index expressions may hold references of their own (var.m[local.k]).
        visit::visit_traversal(self, node);
    }
}
