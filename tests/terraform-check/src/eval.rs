//! A small evaluator for Terraform expressions over known values: enough of the language
//! (literals, `var.X`, operators, conditionals, `for`, templates and a few dozen built-in
//! functions) to run a variable's `validation` conditions, or a `postcondition`, on a
//! chosen input offline. A function it does not know is an [`EvalError::Unsupported`],
//! which `can()`/`try()` do not swallow, so an unsupported condition never passes or fails
//! silently.

use std::collections::BTreeMap;
use std::fmt;

use hcl::edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl::edit::template::{Element, Template};

/// A Terraform value (numbers as f64, which covers every condition in this tree).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Value>),
    Obj(BTreeMap<String, Value>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    pub fn list_of_str(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| Value::str(s)).collect())
    }

    fn as_num(&self) -> Result<f64, EvalError> {
        match self {
            Value::Num(n) => Ok(*n),
            Value::Str(s) => s
                .parse()
                .map_err(|_| EvalError::Failed(format!("{s:?} is not a number"))),
            other => Err(EvalError::Failed(format!("{other:?} is not a number"))),
        }
    }

    fn as_bool(&self) -> Result<bool, EvalError> {
        match self {
            Value::Bool(b) => Ok(*b),
            Value::Str(s) if s == "true" => Ok(true),
            Value::Str(s) if s == "false" => Ok(false),
            other => Err(EvalError::Failed(format!("{other:?} is not a bool"))),
        }
    }

    fn to_text(&self) -> Result<String, EvalError> {
        match self {
            Value::Str(s) => Ok(s.clone()),
            Value::Num(n) if n.fract() == 0.0 => Ok(format!("{}", *n as i64)),
            Value::Num(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(EvalError::Failed(format!("{other:?} is not a string"))),
        }
    }

    fn items(&self) -> Result<Vec<Value>, EvalError> {
        match self {
            Value::List(v) => Ok(v.clone()),
            Value::Obj(m) => Ok(m.values().cloned().collect()),
            other => Err(EvalError::Failed(format!("{other:?} is not a collection"))),
        }
    }

    /// Equality as Terraform compares a number with a number-like string: it does not.
    fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Num(a), Value::Num(b)) => a == b,
            (a, b) => a == b,
        }
    }
}

/// Why an expression has no value.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    /// Terraform would fail too (a type error, an out-of-range index, a bad CIDR).
    Failed(String),
    /// The evaluator does not implement this part of the language.
    Unsupported(String),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Failed(m) => write!(f, "evaluation failed: {m}"),
            EvalError::Unsupported(m) => write!(f, "not supported by the checker: {m}"),
        }
    }
}

impl std::error::Error for EvalError {}

fn fail<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::Failed(msg.into()))
}

/// Names in scope: `var`, `self`, `local`, iteration variables.
pub type Scope = BTreeMap<String, Value>;

pub fn eval(expr: &Expression, scope: &Scope) -> Result<Value, EvalError> {
    match expr {
        Expression::Null(_) => Ok(Value::Null),
        Expression::Bool(b) => Ok(Value::Bool(*b.value())),
        Expression::Number(n) => n
            .value()
            .as_f64()
            .map(Value::Num)
            .ok_or_else(|| EvalError::Failed("bad number".into())),
        Expression::String(s) => Ok(Value::Str(s.value().clone())),
        Expression::Array(a) => Ok(Value::List(
            a.iter().map(|e| eval(e, scope)).collect::<Result<_, _>>()?,
        )),
        Expression::Object(o) => {
            let mut out = BTreeMap::new();
            for (k, v) in o.iter() {
                let key = match k {
                    ObjectKey::Ident(i) => i.as_str().to_string(),
                    ObjectKey::Expression(e) => eval(e, scope)?.to_text()?,
                };
                out.insert(key, eval(v.expr(), scope)?);
            }
            Ok(Value::Obj(out))
        }
        Expression::StringTemplate(t) => template(t, scope),
        Expression::HeredocTemplate(h) => template(&h.template, scope),
        Expression::Parenthesis(p) => eval(p.inner(), scope),
        Expression::Variable(v) => scope
            .get(v.as_str())
            .cloned()
            .ok_or_else(|| EvalError::Unsupported(format!("unknown name {}", v.as_str()))),
        Expression::Conditional(c) => {
            if eval(&c.cond_expr, scope)?.as_bool()? {
                eval(&c.true_expr, scope)
            } else {
                eval(&c.false_expr, scope)
            }
        }
        Expression::Traversal(t) => {
            let mut value = eval(&t.expr, scope)?;
            for op in t.operators.iter() {
                value = match op.value() {
                    TraversalOperator::GetAttr(name) => match value {
                        Value::Obj(m) => m.get(name.as_str()).cloned().ok_or_else(|| {
                            EvalError::Failed(format!("no attribute {}", name.as_str()))
                        })?,
                        other => return fail(format!("{other:?} has no attributes")),
                    },
                    TraversalOperator::Index(e) => index(value, eval(e, scope)?)?,
                    TraversalOperator::LegacyIndex(i) => {
                        index(value, Value::Num(*i.value() as f64))?
                    }
                    _ => return Err(EvalError::Unsupported("splat".into())),
                };
            }
            Ok(value)
        }
        Expression::UnaryOp(u) => {
            let v = eval(&u.expr, scope)?;
            match u.operator.value() {
                UnaryOperator::Neg => Ok(Value::Num(-v.as_num()?)),
                UnaryOperator::Not => Ok(Value::Bool(!v.as_bool()?)),
            }
        }
        Expression::BinaryOp(b) => {
            let op = *b.operator.value();
            // && and || short-circuit in the evaluator (Terraform evaluates both sides, but a
            // failing right side behind a false left side only matters inside can()).
            if op == BinaryOperator::And {
                return Ok(Value::Bool(
                    eval(&b.lhs_expr, scope)?.as_bool()? && eval(&b.rhs_expr, scope)?.as_bool()?,
                ));
            }
            if op == BinaryOperator::Or {
                return Ok(Value::Bool(
                    eval(&b.lhs_expr, scope)?.as_bool()? || eval(&b.rhs_expr, scope)?.as_bool()?,
                ));
            }
            let (l, r) = (eval(&b.lhs_expr, scope)?, eval(&b.rhs_expr, scope)?);
            Ok(match op {
                BinaryOperator::Eq => Value::Bool(l.equals(&r)),
                BinaryOperator::NotEq => Value::Bool(!l.equals(&r)),
                BinaryOperator::Less => Value::Bool(l.as_num()? < r.as_num()?),
                BinaryOperator::LessEq => Value::Bool(l.as_num()? <= r.as_num()?),
                BinaryOperator::Greater => Value::Bool(l.as_num()? > r.as_num()?),
                BinaryOperator::GreaterEq => Value::Bool(l.as_num()? >= r.as_num()?),
                BinaryOperator::Plus => Value::Num(l.as_num()? + r.as_num()?),
                BinaryOperator::Minus => Value::Num(l.as_num()? - r.as_num()?),
                BinaryOperator::Mul => Value::Num(l.as_num()? * r.as_num()?),
                BinaryOperator::Div => Value::Num(l.as_num()? / r.as_num()?),
                BinaryOperator::Mod => Value::Num(l.as_num()? % r.as_num()?),
                BinaryOperator::And | BinaryOperator::Or => unreachable!(),
            })
        }
        Expression::ForExpr(f) => {
            let collection = eval(&f.intro.collection_expr, scope)?;
            let pairs: Vec<(Value, Value)> = match collection {
                Value::List(v) => v
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| (Value::Num(i as f64), x))
                    .collect(),
                Value::Obj(m) => m.into_iter().map(|(k, x)| (Value::Str(k), x)).collect(),
                other => return fail(format!("cannot iterate {other:?}")),
            };
            let mut list = Vec::new();
            let mut obj = BTreeMap::new();
            for (k, v) in pairs {
                let mut inner = scope.clone();
                if let Some(kv) = &f.intro.key_var {
                    inner.insert(kv.as_str().to_string(), k);
                }
                inner.insert(f.intro.value_var.as_str().to_string(), v);
                if let Some(c) = &f.cond {
                    if !eval(&c.expr, &inner)?.as_bool()? {
                        continue;
                    }
                }
                let value = eval(&f.value_expr, &inner)?;
                match &f.key_expr {
                    Some(ke) => {
                        obj.insert(eval(ke, &inner)?.to_text()?, value);
                    }
                    None => list.push(value),
                }
            }
            Ok(if f.key_expr.is_some() {
                Value::Obj(obj)
            } else {
                Value::List(list)
            })
        }
        Expression::FuncCall(call) => {
            let name = call.name.name.as_str();
            let args: Vec<&Expression> = call.args.iter().collect();
            function(name, &args, scope)
        }
    }
}

fn template(t: &Template, scope: &Scope) -> Result<Value, EvalError> {
    let mut out = String::new();
    for element in t.iter() {
        match element {
            Element::Literal(l) => out.push_str(l.value()),
            Element::Interpolation(i) => out.push_str(&eval(&i.expr, scope)?.to_text()?),
            Element::Directive(_) => {
                return Err(EvalError::Unsupported("template directive".into()))
            }
        }
    }
    Ok(Value::Str(out))
}

fn index(value: Value, key: Value) -> Result<Value, EvalError> {
    match value {
        Value::List(v) => {
            let i = key.as_num()?;
            if i < 0.0 || i.fract() != 0.0 || i as usize >= v.len() {
                return fail(format!("index {i} out of range for a list of {}", v.len()));
            }
            Ok(v[i as usize].clone())
        }
        Value::Obj(m) => {
            let k = key.to_text()?;
            m.get(&k)
                .cloned()
                .ok_or_else(|| EvalError::Failed(format!("no key {k:?}")))
        }
        other => fail(format!("cannot index {other:?}")),
    }
}

/// Parses an IPv4 CIDR block as `cidrhost`/`cidrsubnet` accept it: (address, prefix length).
fn ipv4_cidr(text: &str) -> Result<(u32, u32), EvalError> {
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| EvalError::Failed(format!("{text:?} is not a CIDR block")))?;
    let len: u32 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| EvalError::Failed(format!("{text:?}: bad prefix length")))?;
    let ip: std::net::Ipv4Addr = addr
        .parse()
        .map_err(|_| EvalError::Failed(format!("{text:?}: not an IPv4 address")))?;
    Ok((u32::from(ip), len))
}

fn function(name: &str, args: &[&Expression], scope: &Scope) -> Result<Value, EvalError> {
    // Lazy functions first: they decide which errors count.
    match name {
        "can" => {
            return match eval(args[0], scope) {
                Ok(_) => Ok(Value::Bool(true)),
                Err(EvalError::Failed(_)) => Ok(Value::Bool(false)),
                Err(e) => Err(e),
            }
        }
        "try" => {
            let mut last = EvalError::Failed("try() without arguments".into());
            for a in args {
                match eval(a, scope) {
                    Ok(v) => return Ok(v),
                    Err(EvalError::Failed(m)) => last = EvalError::Failed(m),
                    Err(e) => return Err(e),
                }
            }
            return Err(last);
        }
        _ => {}
    }
    let v: Vec<Value> = args
        .iter()
        .map(|a| eval(a, scope))
        .collect::<Result<_, _>>()?;
    let arg = |i: usize| -> Result<&Value, EvalError> {
        v.get(i)
            .ok_or_else(|| EvalError::Failed(format!("{name}: missing argument {}", i + 1)))
    };
    Ok(match name {
        "contains" => {
            let needle = arg(1)?;
            Value::Bool(arg(0)?.items()?.iter().any(|x| x.equals(needle)))
        }
        "length" => Value::Num(match arg(0)? {
            Value::Str(s) => s.chars().count(),
            Value::List(l) => l.len(),
            Value::Obj(m) => m.len(),
            other => return fail(format!("length of {other:?}")),
        } as f64),
        "floor" => Value::Num(arg(0)?.as_num()?.floor()),
        "ceil" => Value::Num(arg(0)?.as_num()?.ceil()),
        "pow" => Value::Num(arg(0)?.as_num()?.powf(arg(1)?.as_num()?)),
        "min" => Value::Num(
            v.iter()
                .map(|x| x.as_num())
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .fold(f64::INFINITY, f64::min),
        ),
        "max" => Value::Num(
            v.iter()
                .map(|x| x.as_num())
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .fold(f64::NEG_INFINITY, f64::max),
        ),
        "tonumber" => Value::Num(arg(0)?.as_num()?),
        "tostring" => Value::Str(arg(0)?.to_text()?),
        "tolist" | "toset" => Value::List(arg(0)?.items()?),
        "split" => Value::List(
            arg(1)?
                .to_text()?
                .split(arg(0)?.to_text()?.as_str())
                .map(Value::str)
                .collect(),
        ),
        "lookup" => match arg(0)? {
            Value::Obj(m) => match m.get(&arg(1)?.to_text()?) {
                Some(x) => x.clone(),
                None => arg(2)?.clone(),
            },
            other => return fail(format!("lookup in {other:?}")),
        },
        "keys" => match arg(0)? {
            Value::Obj(m) => Value::List(m.keys().map(|k| Value::str(k)).collect()),
            other => return fail(format!("keys of {other:?}")),
        },
        "values" => Value::List(arg(0)?.items()?),
        "range" => {
            let (start, end, step) = match v.len() {
                1 => (0.0, arg(0)?.as_num()?, 1.0),
                2 => (arg(0)?.as_num()?, arg(1)?.as_num()?, 1.0),
                _ => (arg(0)?.as_num()?, arg(1)?.as_num()?, arg(2)?.as_num()?),
            };
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
                out.push(Value::Num(x));
                x += step;
            }
            Value::List(out)
        }
        "alltrue" => Value::Bool(
            arg(0)?
                .items()?
                .iter()
                .map(|x| x.as_bool())
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .all(|b| b),
        ),
        "anytrue" => Value::Bool(
            arg(0)?
                .items()?
                .iter()
                .map(|x| x.as_bool())
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .any(|b| b),
        ),
        "distinct" => {
            let mut out: Vec<Value> = Vec::new();
            for x in arg(0)?.items()? {
                if !out.iter().any(|y| y.equals(&x)) {
                    out.push(x);
                }
            }
            Value::List(out)
        }
        "startswith" => Value::Bool(arg(0)?.to_text()?.starts_with(&arg(1)?.to_text()?)),
        "endswith" => Value::Bool(arg(0)?.to_text()?.ends_with(&arg(1)?.to_text()?)),
        "strcontains" => Value::Bool(arg(0)?.to_text()?.contains(&arg(1)?.to_text()?)),
        "upper" => Value::Str(arg(0)?.to_text()?.to_uppercase()),
        "lower" => Value::Str(arg(0)?.to_text()?.to_lowercase()),
        "cidrhost" => {
            let (ip, len) = ipv4_cidr(&arg(0)?.to_text()?)?;
            let n = arg(1)?.as_num()? as u64;
            let net = if len == 0 {
                0
            } else {
                ip & (u32::MAX << (32 - len))
            };
            if len < 32 && n >= 1u64 << (32 - len) {
                return fail("cidrhost: host number out of range");
            }
            Value::Str(std::net::Ipv4Addr::from(net + n as u32).to_string())
        }
        "cidrnetmask" => {
            let (_, len) = ipv4_cidr(&arg(0)?.to_text()?)?;
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Value::Str(std::net::Ipv4Addr::from(mask).to_string())
        }
        // RE2 syntax, as Terraform; regex-lite covers it except Unicode classes, and a
        // pattern it cannot compile is Unsupported rather than a silent mismatch.
        "regex" | "regexall" => {
            let pattern = arg(0)?.to_text()?;
            let text = arg(1)?.to_text()?;
            let re = regex_lite::Regex::new(&pattern)
                .map_err(|e| EvalError::Unsupported(format!("regex {pattern:?}: {e}")))?;
            let one = |caps: regex_lite::Captures<'_>| -> Value {
                let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
                if names.is_empty() {
                    Value::str(caps.get(0).map_or("", |m| m.as_str()))
                } else if names.iter().all(|n| n.is_some()) {
                    Value::Obj(
                        names
                            .iter()
                            .flatten()
                            .map(|n| {
                                (
                                    n.to_string(),
                                    caps.name(n).map_or(Value::Null, |m| Value::str(m.as_str())),
                                )
                            })
                            .collect(),
                    )
                } else {
                    Value::List(
                        (1..caps.len())
                            .map(|i| caps.get(i).map_or(Value::Null, |m| Value::str(m.as_str())))
                            .collect(),
                    )
                }
            };
            if name == "regexall" {
                Value::List(re.captures_iter(&text).map(one).collect())
            } else {
                match re.captures(&text) {
                    Some(c) => one(c),
                    None => return fail(format!("regex {pattern:?} does not match {text:?}")),
                }
            }
        }
        "compact" => Value::List(
            arg(0)?
                .items()?
                .into_iter()
                .filter(|x| !matches!(x, Value::Str(s) if s.is_empty()) && *x != Value::Null)
                .collect(),
        ),
        "cidrsubnet" => {
            let (ip, len) = ipv4_cidr(&arg(0)?.to_text()?)?;
            let bits = arg(1)?.as_num()? as u32;
            let num = arg(2)?.as_num()? as u64;
            let new_len = len + bits;
            if new_len > 32 {
                return fail("cidrsubnet: prefix extension too long");
            }
            if num >= 1u64 << bits {
                return fail(format!(
                    "cidrsubnet: prefix extension of {bits} does not accommodate a subnet numbered {num}"
                ));
            }
            let net = if len == 0 {
                0
            } else {
                ip & (u32::MAX << (32 - len))
            };
            let sub = net | ((num as u32) << (32 - new_len));
            Value::Str(format!("{}/{new_len}", std::net::Ipv4Addr::from(sub)))
        }
        other => return Err(EvalError::Unsupported(format!("function {other}()"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str, scope: &Scope) -> Result<Value, EvalError> {
        let expr: Expression = src.parse().expect("expression parses");
        eval(&expr, scope)
    }

    #[test]
    fn evaluates_the_shapes_validations_use() {
        let mut scope = Scope::new();
        scope.insert(
            "var".into(),
            Value::Obj(BTreeMap::from([
                ("cpu".into(), Value::Num(512.0)),
                ("cidr".into(), Value::str("10.0.0.0/18")),
            ])),
        );
        assert_eq!(
            run(
                "contains(lookup({ \"512\" = [1024, 2048] }, tostring(var.cpu), []), 2048)",
                &scope
            ),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(
                "tonumber(split(\"/\", var.cidr)[1]) <= 18 && can(cidrhost(var.cidr, 0))",
                &scope
            ),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run("can(cidrhost(\"nope\", 0))", &scope),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run(
                "[for i in range(3) : cidrsubnet(var.cidr, 2, i + 1)]",
                &scope
            ),
            Ok(Value::list_of_str(&[
                "10.0.16.0/20",
                "10.0.32.0/20",
                "10.0.48.0/20"
            ]))
        );
        assert!(matches!(
            run("cidrsubnet(var.cidr, 2, 4)", &scope),
            Err(EvalError::Failed(_))
        ));
        // A function the evaluator does not know is never swallowed by can().
        assert!(matches!(
            run("can(sha256(\"a\"))", &scope),
            Err(EvalError::Unsupported(_))
        ));
        // regex() as Terraform: the match, or an error (which can() turns into false).
        assert_eq!(
            run(
                "can(regex(\"^[a-z]+:[0-9]{1,5}$\", \"kafka:9092\"))",
                &scope
            ),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(
                "can(regex(\"^[a-z]+:[0-9]{1,5}$\", \"kafka: 9092\"))",
                &scope
            ),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run("regex(\"^([a-z]+):([0-9]+)$\", \"kafka:9092\")", &scope),
            Ok(Value::list_of_str(&["kafka", "9092"]))
        );
        assert_eq!(
            run("length(regexall(\"[0-9]\", \"a1b2\"))", &scope),
            Ok(Value::Num(2.0))
        );
        assert!(matches!(
            run("can(regex(\"(\", \"x\"))", &scope),
            Err(EvalError::Unsupported(_))
        ));
    }
}
