//! Consumer filters and projections: which changes a consumer receives, and which columns.
//!
//! A consumer may declare `filters`, keyed by topic (or `*` for every topic it reads):
//! `{"ops": [..], "where": "<CEL>", "columns": [..] | "exclude_columns": [..]}`.
//!
//! Why CEL (the `cel` crate, cel-rust): it is a small, side-effect-free, non-Turing-complete
//! language made for exactly this (policy and filter expressions evaluated per request), with a
//! specification, the same syntax in Go, Java and C++, and a maintained Rust interpreter. A
//! predicate cannot loop, allocate without bound or reach outside the event.
//!
//! Semantics, chosen so a consumer can maintain a view of the rows that match:
//! - the predicate sees `op`, `table`, `topic`, `key`, `before`, `after` and (for events that
//!   are not Debezium changes, such as outbox payloads) `value`;
//! - `after` is the row as the predicate sees it. When the event does not match as it is and
//!   it has a `before` (updates, deletes), the predicate is tried once more with `after` bound
//!   to `before`, the row as it was. So an update that moves a row into the predicate *or out
//!   of it*, and the delete of a row that matched, are delivered, with their real `before` and
//!   `after`;
//! - an evaluation error (a field missing, `after` null on a delete) counts as "no match";
//! - filtered-out events still advance the stream's cursor (see `sse.rs`): a resume never
//!   replays them;
//! - projections keep (`columns`) or drop (`exclude_columns`) columns of `before`, `after`
//!   and `value`; the key is never projected, since it is the row's identity.
//!
//! Cost: a compiled rule is interned by its canonical text, so every stream with the same rule
//! on the same topic shares one [`CompiledRule`]. Its outcome for an event (filtered out, or the
//! projected JSON) is computed once and memoised on the event itself ([`Derived`]), so each
//! distinct rule is evaluated and serialised once per event however many streams use it, and
//! the memo goes when the event leaves the buffer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};

use bytes::Bytes;
use parking_lot::Mutex;

use serde_json::{Map, Value};

use crate::event::{parse_ops, ChangeEvent, OpCode};

pub use tumbleweed_api::consumers::{
    FilterRule, Filters, ALL_TOPICS, FILTER_VARIABLES as VARIABLES,
};

/// A filter that cannot be used, with the request field it concerns (`filters.<topic>.where`)
/// and, for a predicate that does not parse, where (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FilterError {
    pub field: String,
    pub message: String,
    pub position: Option<(usize, usize)>,
}

impl FilterError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            position: None,
        }
    }
}

/// The rule that applies to `topic`: its own, else the `*` rule.
pub fn rule_for<'a>(filters: &'a Filters, topic: &str) -> Option<&'a FilterRule> {
    filters.get(topic).or_else(|| filters.get(ALL_TOPICS))
}

/// Checks a consumer's filters against its topics: every key names one of them (or `*`),
/// every rule compiles. What needs events (types, column names) is [`CompiledRule::check`].
pub fn validate(filters: &Filters, topics: &[String]) -> Result<(), FilterError> {
    for (key, rule) in filters {
        if key != ALL_TOPICS && !topics.iter().any(|t| t == key) {
            return Err(FilterError::new(
                format!("filters.{key}"),
                format!(
                    "filters are keyed by one of the consumer's topics {topics:?} or \"*\" for all of them; {key:?} is neither"
                ),
            ));
        }
        compile(key, rule, None)?;
    }
    Ok(())
}

/// A rule ready to run, shared by every stream that declared the same rule.
pub struct CompiledRule {
    id: u64,
    ops: Option<Vec<OpCode>>,
    program: Option<cel::Program>,
    projection: Projection,
}

enum Projection {
    All,
    Keep(Vec<String>),
    Drop(Vec<String>),
}

/// Interned rules by canonical text; dead entries are pruned as new rules arrive.
static CATALOG: LazyLock<Mutex<HashMap<String, Weak<CompiledRule>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Compiles `rule` (declared under `key`, for error fields) with the consumer-wide `ops` as
/// its default, or returns the already compiled rule of the same meaning.
pub fn compile(
    key: &str,
    rule: &FilterRule,
    consumer_ops: Option<&[String]>,
) -> Result<Arc<CompiledRule>, FilterError> {
    let field = |f: &str| format!("filters.{key}.{f}");
    let mut ops = rule.ops.clone().or_else(|| consumer_ops.map(<[_]>::to_vec));
    if let Some(o) = &mut ops {
        if o.is_empty() {
            return Err(FilterError::new(
                field("ops"),
                "ops, when given, must list at least one operation",
            ));
        }
        o.sort();
        o.dedup();
    }
    let columns = |name: &str, list: &Option<Vec<String>>| -> Result<_, FilterError> {
        let Some(list) = list else { return Ok(None) };
        if list.is_empty() || list.iter().any(|c| c.is_empty()) {
            return Err(FilterError::new(
                field(name),
                format!("{name}, when given, must list at least one column name"),
            ));
        }
        let mut list = list.clone();
        list.sort();
        list.dedup();
        Ok(Some(list))
    };
    let projection = match (
        columns("columns", &rule.columns)?,
        columns("exclude_columns", &rule.exclude_columns)?,
    ) {
        (Some(_), Some(_)) => {
            return Err(FilterError::new(
                field("columns"),
                "give columns (what to keep) or exclude_columns (what to drop), not both",
            ))
        }
        (Some(keep), None) => Projection::Keep(keep),
        (None, Some(drop)) => Projection::Drop(drop),
        (None, None) => Projection::All,
    };
    let predicate = rule
        .predicate
        .as_deref()
        // Not trimmed: error positions refer to the text as written.
        .filter(|p| !p.trim().is_empty());
    let canonical = serde_json::to_string(&(&ops, predicate, &rule.columns, &rule.exclude_columns))
        .expect("strings serialise");
    if let Some(found) = CATALOG.lock().get(&canonical).and_then(Weak::upgrade) {
        return Ok(found);
    }
    let op_codes = ops
        .as_deref()
        .map(parse_ops)
        .transpose()
        .map_err(|e| FilterError::new(field("ops"), e))?;
    let program = predicate
        .map(|p| {
            parse_predicate(p).map_err(|(message, position)| FilterError {
                field: field("where"),
                message,
                position,
            })
        })
        .transpose()?;
    let compiled = Arc::new(CompiledRule {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        ops: op_codes,
        program,
        projection,
    });
    let mut catalog = CATALOG.lock();
    catalog.retain(|_, w| w.strong_count() > 0);
    // Another stream may have compiled the same rule meanwhile: share the first one.
    if let Some(found) = catalog.get(&canonical).and_then(Weak::upgrade) {
        return Ok(found);
    }
    catalog.insert(canonical, Arc::downgrade(&compiled));
    Ok(compiled)
}

/// Parses a predicate, refusing names other than [`VARIABLES`]. Errors carry the position.
fn parse_predicate(source: &str) -> Result<cel::Program, (String, Option<(usize, usize)>)> {
    let program = cel::Program::compile(source).map_err(|errors| {
        let first = errors.errors.first();
        let position = first.and_then(|e| {
            let (line, col) = e.pos;
            (line > 0 && col > 0).then_some((line as usize, col as usize))
        });
        let message = first.map_or_else(|| errors.to_string(), |e| e.msg.clone());
        let at = position.map_or(String::new(), |(l, c)| format!(" at line {l}, column {c}"));
        (
            format!("the predicate does not parse{at}: {message}"),
            position,
        )
    })?;
    let references = program.references();
    let unknown: Vec<&str> = references
        .variables()
        .into_iter()
        .filter(|v| !VARIABLES.contains(v))
        .collect();
    if let Some(name) = unknown.first() {
        return Err((
            format!(
                "the predicate names {name:?}, which is not defined: it can use {}",
                VARIABLES.join(", ")
            ),
            None,
        ));
    }
    Ok(program)
}

thread_local! {
    /// The standard library's functions, registered once per thread; each evaluation binds
    /// the event's variables in a scope on top of it.
    static ROOT: cel::Context<'static, 'static> = cel::Context::default();
}

impl CompiledRule {
    /// Whether the rule only selects operations (no per-event work beyond the op code).
    pub fn ops_only(&self) -> bool {
        self.program.is_none() && matches!(self.projection, Projection::All)
    }

    /// The JSON a stream with this rule delivers for `e`, or `None` when `e` is filtered out.
    /// Computed once per event and rule (memoised on the event).
    pub fn apply(&self, e: &ChangeEvent) -> Option<Bytes> {
        if let Some(ops) = &self.ops {
            if !ops.contains(&e.op) {
                return None;
            }
        }
        if self.ops_only() {
            return Some(e.json.clone());
        }
        if let Some(found) = e.derived.get(self.id) {
            return found;
        }
        let out = self.compute(e);
        e.derived.put(self.id, out.clone());
        out
    }

    fn compute(&self, e: &ChangeEvent) -> Option<Bytes> {
        let Ok(Value::Object(mut event)) = serde_json::from_slice::<Value>(&e.json) else {
            // The sink's own JSON always parses; deliver rather than lose if it ever did not.
            return Some(e.json.clone());
        };
        if let Some(program) = &self.program {
            if !matches!(evaluate(program, &event), Ok(true)) {
                return None;
            }
        }
        if matches!(self.projection, Projection::All) {
            return Some(e.json.clone());
        }
        for side in ["before", "after", "value"] {
            if let Some(Value::Object(row)) = event.get_mut(side) {
                match &self.projection {
                    Projection::Keep(keep) => row.retain(|k, _| keep.binary_search(k).is_ok()),
                    Projection::Drop(drop) => row.retain(|k, _| drop.binary_search(k).is_err()),
                    Projection::All => {}
                }
            }
        }
        let json = serde_json::to_vec(&Value::Object(event)).expect("a Value always serialises");
        Some(Bytes::from(json))
    }

    /// Checks the rule against a real event of its topic, for what cannot be known without
    /// one: a predicate that does not give a boolean, or combines values of the wrong types,
    /// and projected columns the table does not have (`columns_seen`: every column of the
    /// table's recent events). Missing fields are not errors (a delete has no `after`).
    pub fn check(
        &self,
        key: &str,
        e: &ChangeEvent,
        columns_seen: &[String],
    ) -> Result<(), FilterError> {
        if let (Some(program), Ok(Value::Object(event))) =
            (&self.program, serde_json::from_slice::<Value>(&e.json))
        {
            match evaluate(program, &event) {
                Ok(_) => {}
                Err(Failure::NotBoolean(got)) => {
                    return Err(FilterError::new(
                        format!("filters.{key}.where"),
                        format!(
                            "the predicate must give true or false; on the event at offset {} of partition {} it gave {got}",
                            e.offset, e.partition
                        ),
                    ))
                }
                Err(Failure::Type(message)) => {
                    return Err(FilterError::new(
                        format!("filters.{key}.where"),
                        format!(
                            "type error on the event at offset {} of partition {}: {message}",
                            e.offset, e.partition
                        ),
                    ))
                }
                Err(Failure::Missing) => {}
            }
        }
        let (name, listed) = match &self.projection {
            Projection::Keep(k) => ("columns", k),
            Projection::Drop(d) => ("exclude_columns", d),
            Projection::All => return Ok(()),
        };
        if columns_seen.is_empty() {
            return Ok(());
        }
        if let Some(unknown) = listed.iter().find(|c| !columns_seen.contains(c)) {
            return Err(FilterError::new(
                format!("filters.{key}.{name}"),
                format!("unknown column {unknown:?}: the table's events have {columns_seen:?}"),
            ));
        }
        Ok(())
    }
}

/// The column names in an event's `before`, `after` and `value`.
pub fn columns_of(e: &ChangeEvent, into: &mut Vec<String>) {
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(&e.json) else {
        return;
    };
    for side in ["before", "after", "value"] {
        if let Some(Value::Object(row)) = event.get(side) {
            for k in row.keys() {
                if !into.contains(k) {
                    into.push(k.clone());
                }
            }
        }
    }
}

enum Failure {
    /// A field or row is absent (or null): no match, not a mistake.
    Missing,
    NotBoolean(String),
    Type(String),
}

/// Runs the predicate on the event as it is, then (if it has a `before`) on the row as it was.
fn evaluate(program: &cel::Program, event: &Map<String, Value>) -> Result<bool, Failure> {
    let first = run(program, event, false);
    if matches!(first, Ok(true)) || !event.get("before").is_some_and(Value::is_object) {
        return first;
    }
    match run(program, event, true) {
        Ok(true) => Ok(true),
        // Report the first attempt's failure: it is about the event as delivered.
        _ => first,
    }
}

fn run(
    program: &cel::Program,
    event: &Map<String, Value>,
    as_before: bool,
) -> Result<bool, Failure> {
    ROOT.with(|root| {
        let mut ctx = root.new_inner_scope();
        for name in VARIABLES {
            let source = if as_before && name == "after" {
                "before"
            } else {
                name
            };
            let v = event.get(source).unwrap_or(&Value::Null);
            ctx.add_variable_from_value(name, to_cel(v));
        }
        match program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(Failure::NotBoolean(format!("{other:?}"))),
            Err(e) => Err(classify(e)),
        }
    })
}

/// JSON to CEL. Integers are CEL `int` when they fit (as integer literals in a predicate
/// are; a generic conversion makes positive numbers `uint`, and `after.id % 10` a type error),
/// `uint` beyond, `double` with a fraction.
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(fields) => {
            let map: HashMap<cel::objects::Key, cel::Value> = fields
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

fn classify(e: cel::ExecutionError) -> Failure {
    use cel::ExecutionError as E;
    let involves_null = |s: &str| s.contains("Null") || s.contains("null");
    match &e {
        E::NoSuchKey(_) => Failure::Missing,
        other if involves_null(&other.to_string()) => Failure::Missing,
        other => Failure::Type(other.to_string()),
    }
}

/// Per-event memo of rule outcomes: `(rule id, delivered JSON or filtered out)`. Small (one
/// entry per distinct rule that met the event) and dropped with the event.
#[derive(Default)]
pub struct Derived(Mutex<Vec<(u64, Option<Bytes>)>>);

impl Derived {
    fn get(&self, id: u64) -> Option<Option<Bytes>> {
        self.0
            .lock()
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, out)| out.clone())
    }
    fn put(&self, id: u64, out: Option<Bytes>) {
        let mut memo = self.0.lock();
        if !memo.iter().any(|(i, _)| *i == id) {
            memo.push((id, out));
        }
    }
}

impl Clone for Derived {
    /// A copy starts with an empty memo (outcomes are recomputed on demand).
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Derived({} outcomes)", self.0.lock().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(op: &str, before: Value, after: Value) -> ChangeEvent {
        let value = json!({"op": op, "before": before, "after": after,
            "source": {"schema": "public", "table": "orders", "lsn": 1, "txId": 2, "ts_ms": 3}});
        let bytes = serde_json::to_vec(&value).unwrap();
        crate::event::from_record(
            "s.public.orders",
            0,
            7,
            0,
            Some(br#"{"id":1}"#),
            Some(&bytes),
        )
        .unwrap()
    }

    fn rule(json: Value) -> Arc<CompiledRule> {
        let rule: FilterRule = serde_json::from_value(json).unwrap();
        compile("*", &rule, None).unwrap()
    }

    fn delivered(r: &CompiledRule, e: &ChangeEvent) -> Option<Value> {
        r.apply(e).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn rows_moving_in_and_out_of_the_predicate_are_delivered() {
        let r = rule(json!({"where": "after.status == 'paid' && after.amount_cents > 1000"}));
        let paid = json!({"id": 1, "status": "paid", "amount_cents": 5000});
        let open = json!({"id": 1, "status": "open", "amount_cents": 5000});
        let small = json!({"id": 2, "status": "paid", "amount_cents": 10});
        assert!(delivered(&r, &event("c", Value::Null, paid.clone())).is_some());
        assert!(delivered(&r, &event("c", Value::Null, small.clone())).is_none());
        assert!(delivered(&r, &event("c", Value::Null, open.clone())).is_none());
        // Into the predicate, out of it, and the delete of a matching row.
        assert!(delivered(&r, &event("u", open.clone(), paid.clone())).is_some());
        let out = delivered(&r, &event("u", paid.clone(), open.clone())).unwrap();
        assert_eq!(out["before"]["status"], json!("paid"));
        assert_eq!(out["after"]["status"], json!("open"), "the real after");
        assert!(delivered(&r, &event("d", paid, Value::Null)).is_some());
        assert!(delivered(&r, &event("d", open.clone(), Value::Null)).is_none());
        assert!(delivered(&r, &event("u", open.clone(), open)).is_none());
    }

    #[test]
    fn projections_keep_or_drop_columns_and_never_the_key() {
        let row = json!({"id": 1, "email": "a@b", "status": "paid"});
        let e = event("u", row.clone(), row);
        let kept = delivered(&rule(json!({"columns": ["id", "status"]})), &e).unwrap();
        assert_eq!(kept["after"], json!({"id": 1, "status": "paid"}));
        assert_eq!(kept["before"], json!({"id": 1, "status": "paid"}));
        assert_eq!(kept["key"], json!({"id": 1}));
        let dropped = delivered(&rule(json!({"exclude_columns": ["email"]})), &e).unwrap();
        assert_eq!(dropped["after"], json!({"id": 1, "status": "paid"}));
        assert_eq!(dropped["topic"], json!("s.public.orders"));
    }

    #[test]
    fn ops_per_rule_replace_the_consumers_and_equal_rules_are_shared() {
        let consumer_ops = ["c".to_string()];
        let r: FilterRule = serde_json::from_value(json!({"ops": ["d"]})).unwrap();
        let c = compile("t", &r, Some(&consumer_ops)).unwrap();
        assert!(c.ops_only());
        assert!(c
            .apply(&event("c", Value::Null, json!({"id": 1})))
            .is_none());
        assert!(c
            .apply(&event("d", json!({"id": 1}), Value::Null))
            .is_some());
        let again = compile("other", &r, Some(&consumer_ops)).unwrap();
        assert!(
            Arc::ptr_eq(&c, &again),
            "one compiled rule per distinct rule"
        );
        // The consumer's ops apply when the rule names none.
        let inherit = compile("t", &FilterRule::default(), Some(&consumer_ops)).unwrap();
        assert!(inherit
            .apply(&event("d", json!({"id": 1}), Value::Null))
            .is_none());
    }

    #[test]
    fn outcomes_are_memoised_on_the_event() {
        let r = rule(json!({"where": "after.id == 1", "exclude_columns": ["x"]}));
        let e = event("c", Value::Null, json!({"id": 1, "x": 2}));
        let a = r.apply(&e).unwrap();
        let b = r.apply(&e).unwrap();
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "the second stream gets the same bytes"
        );
    }

    #[test]
    fn bad_rules_name_the_field_and_the_position() {
        let err = |j: Value| {
            let r: FilterRule = serde_json::from_value(j).unwrap();
            compile("s.public.orders", &r, None).err().unwrap()
        };
        let e = err(json!({"where": "after.status == "}));
        assert_eq!(e.field, "filters.s.public.orders.where");
        assert_eq!(e.position, Some((1, 17)), "{e}");
        assert!(e.message.contains("line 1, column 17"), "{e}");
        let e = err(json!({"where": "row.status == 'x'"}));
        assert!(e.message.contains("\"row\""), "{e}");
        assert_eq!(
            err(json!({"ops": ["x"]})).field,
            "filters.s.public.orders.ops"
        );
        let e = err(json!({"columns": ["a"], "exclude_columns": ["b"]}));
        assert!(e.message.contains("not both"), "{e}");
        assert!(serde_json::from_value::<FilterRule>(json!({"wher": "x"})).is_err());
        let topics = vec!["a".to_string()];
        let mut f = Filters::new();
        f.insert("b".into(), FilterRule::default());
        assert_eq!(validate(&f, &topics).unwrap_err().field, "filters.b");
    }

    #[test]
    fn json_integers_are_cel_ints() {
        // `after.id % 10` with a positive id: JSON numbers must be CEL `int` (as literals
        // are), or arithmetic between a column and a literal is a type error.
        let r = rule(json!({"where": "after.id % 10 != 3 && after.id - 1 >= 0"}));
        let e = event("c", Value::Null, json!({"id": 4800}));
        let mut seen = Vec::new();
        columns_of(&e, &mut seen);
        assert!(
            r.check("*", &e, &seen).is_ok(),
            "{:?}",
            r.check("*", &e, &seen)
        );
        assert!(r.apply(&e).is_some());
        let big = rule(json!({"where": "after.n > 1u && after.f > 1.5"}));
        let e = event("c", Value::Null, json!({"n": u64::MAX, "f": 2.5}));
        assert!(
            big.apply(&e).is_some(),
            "beyond i64: uint; fractions: double"
        );
    }

    #[test]
    fn checks_against_a_real_event_find_type_errors_and_unknown_columns() {
        let e = event("c", Value::Null, json!({"id": 1, "status": "paid"}));
        let mut seen = Vec::new();
        columns_of(&e, &mut seen);
        assert_eq!(seen, vec!["id".to_string(), "status".to_string()]);
        assert!(rule(json!({"where": "after.status == 'paid'"}))
            .check("*", &e, &seen)
            .is_ok());
        assert!(rule(json!({"where": "after.nope == 'x'"}))
            .check("*", &e, &seen)
            .is_ok());
        let t = rule(json!({"where": "after.status > 3"})).check("*", &e, &seen);
        assert!(t.unwrap_err().message.contains("type error"));
        let nb = rule(json!({"where": "after.id"})).check("*", &e, &seen);
        assert!(nb.unwrap_err().message.contains("true or false"));
        let c = rule(json!({"columns": ["id", "stauts"]})).check("*", &e, &seen);
        assert_eq!(c.unwrap_err().field, "filters.*.columns");
    }
}
