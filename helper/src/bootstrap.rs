//! `tumbleweed bootstrap`: declare sources and consumers in a file, create what is missing.
//!
//! # Design
//!
//! Declarative and idempotent, but never destructive. The file (JSON, YAML or TOML by
//! extension) is parsed into a [`Pipeline`]; `${ENV_VAR}` references in credentials are
//! resolved from the environment (a missing variable is named, a value never printed).
//! After waiting for `GET /readyz` to answer 200, each entry is read back from the sink
//! (`GET /v1/{sources,consumers}/{name}`) and compared by the pure function [`decide`]:
//!
//! * absent → **create** (`POST`); a new consumer's token is shown once, or written to
//!   `--tokens-out` (mode 0600, merged with tokens already there);
//! * present and equal on every declared field → **unchanged**;
//! * present but different → **differs**: the differing *field names* are reported (a
//!   password is never compared — the sink does not return it) and the entry is left
//!   alone; exit 1 unless `--allow-drift`. Replacing live CDC state is a human decision.
//!
//! Fields left out of the file are "don't care" (the sink's defaults apply), list fields
//! whose order carries no meaning (tables, topics, ops) compare as sets. Tokens already
//! obtained are saved even if a later request fails.
//!
//! The file's entries are the sink's own request types (`tumbleweed_api`) with every
//! defaulted field optional, so "left out" can be told from "the default". Before anything is
//! sent, each entry is checked by the API's own validators (names, tables, modes, TLS words):
//! the helper cannot accept what the sink would refuse, nor refuse what it takes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tumbleweed_api::consumers::{CreateConsumer, FilterRule, StartFrom};
use tumbleweed_api::names::check_consumer_name;
use tumbleweed_api::sources::{CreateSource, Mode};

use crate::cli::GlobalArgs;
use crate::wait::{self, Pending};
use crate::{fsutil, Outcome, OutputFormat, UsageError};

#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    /// Pipeline declaration (.json, .yaml/.yml or .toml).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Sink admin URL (the `admin_url` terraform output; `public_url` serves consumer routes
    /// only).
    #[arg(long, value_name = "URL")]
    pub sink_url: String,
    /// Environment variable holding the sink's admin token.
    #[arg(long, value_name = "NAME", default_value = "TUMBLEWEED_ADMIN_TOKEN")]
    pub admin_token_env: String,
    /// Write new consumer tokens to this file (JSON, mode 0600) instead of printing them.
    #[arg(long, value_name = "FILE")]
    pub tokens_out: Option<PathBuf>,
    /// Exit 0 even when existing entries differ from the file.
    #[arg(long)]
    pub allow_drift: bool,
    /// How long to wait for the sink to become healthy, in seconds.
    #[arg(long, default_value_t = 300)]
    pub wait_timeout: u64,
}

/// The declaration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(default)]
    pub sources: Vec<SourceDecl>,
    #[serde(default)]
    pub consumers: Vec<ConsumerDecl>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceDecl {
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub database: String,
    pub user: String,
    /// The password itself (`${ENV}` references are resolved here), or leave it out and give
    /// `password_secret`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// The password by reference (`env:NAME` or `file:/path`), resolved by the sink and the
    /// Connect workers: then no one stores the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_s: Option<u64>,
    /// Debezium's snapshot mode (`initial`, `no_data`, …); left out, the sink's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_mode: Option<String>,
    /// TLS towards the database as the sink's API takes it (`disable` … `verify-full`); left
    /// out, the sink's default applies (`TUMBLEWEED_SOURCE_DEFAULT_SSLMODE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<String>,
    /// CA bundle for verify-ca/verify-full: `rds` or an absolute path (the sink checks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslrootcert: Option<String>,
}

fn default_port() -> u16 {
    5432
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerDecl {
    pub name: String,
    pub topics: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartFrom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<String>>,
    /// Filters and projections by topic (or `*`), as the sink's `POST /v1/consumers` takes
    /// them (the API's `FilterRule`: unknown keys are refused here, before anything is sent);
    /// the sink validates the predicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<BTreeMap<String, FilterRule>>,
}

impl SourceDecl {
    /// The request the sink would receive, the sink's defaults filled in, for the API's own
    /// validation.
    pub fn request(&self) -> CreateSource {
        let mut v = serde_json::to_value(self).expect("serialisable");
        // `${ENV}` references are resolved later: a placeholder password keeps the check of
        // "password or password_secret, not both" meaningful.
        if let Some(p) = v.get_mut("password") {
            *p = Value::String("x".into());
        }
        serde_json::from_value(v).expect("the declaration is a subset of the request")
    }
}

impl ConsumerDecl {
    /// The request the sink would receive.
    pub fn request(&self) -> CreateConsumer {
        serde_json::from_value(serde_json::to_value(self).expect("serialisable"))
            .expect("the declaration is a subset of the request")
    }
}

/// Parses a declaration by extension.
pub fn parse_pipeline(path: &Path, text: &str) -> anyhow::Result<Pipeline> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let p: Pipeline = match ext.as_str() {
        "json" => serde_json::from_str(text)?,
        "yaml" | "yml" => serde_norway::from_str(text)?,
        "toml" => toml::from_str(text)?,
        other => {
            return Err(UsageError(format!(
                "{}: unknown extension {other:?} (use .json, .yaml, .yml or .toml)",
                path.display()
            ))
            .into())
        }
    };
    validate(&p)?;
    Ok(p)
}

fn validate(p: &Pipeline) -> Result<(), UsageError> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in &p.sources {
        if let Err(e) = s.request().check() {
            problems.push(format!("source {:?}: {}", s.name, e.message));
        }
        if !seen.insert(("source", &s.name)) {
            problems.push(format!("source {:?} is declared twice", s.name));
        }
    }
    for c in &p.consumers {
        if let Err(e) = check_consumer_name(&c.name) {
            problems.push(e.message);
        }
        if c.topics.is_empty() {
            problems.push(format!(
                "consumer {:?}: topics must list at least one topic",
                c.name
            ));
        }
        if !seen.insert(("consumer", &c.name)) {
            problems.push(format!("consumer {:?} is declared twice", c.name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(UsageError(problems.join("; ")))
    }
}

/// Replaces `${NAME}` references with environment values (`lookup`), naming missing ones.
pub fn interpolate(s: &str, lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| anyhow!("unterminated ${{ reference"))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("invalid environment reference ${{{name}}}");
        }
        out.push_str(
            &lookup(name).ok_or_else(|| anyhow!("environment variable {name} is not set"))?,
        );
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves `${ENV}` references in every source's host, user and password.
pub fn resolve_env(
    p: &mut Pipeline,
    lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    for s in &mut p.sources {
        for (field, v) in [
            ("host", &mut s.host),
            ("user", &mut s.user),
            ("password", &mut s.password),
        ] {
            *v = interpolate(v, &lookup).with_context(|| format!("source {}: {field}", s.name))?;
        }
    }
    Ok(())
}

/// What to do with one declared entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", content = "fields", rename_all = "lowercase")]
pub enum Decision {
    Create,
    Unchanged,
    /// Exists with different values for these fields.
    Differs(Vec<String>),
}

fn sorted(v: &Value) -> Option<Vec<String>> {
    let mut out: Vec<String> = v
        .as_array()?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| x.to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}

/// Compares a declared entry (as its API JSON) with what the sink has. `set_fields` compare
/// as sets; `secret_fields` are skipped (never returned by the sink); fields absent from
/// `declared` are "don't care".
pub fn decide(
    declared: &Value,
    current: Option<&Value>,
    set_fields: &[&str],
    secret_fields: &[&str],
) -> Decision {
    let Some(current) = current else {
        return Decision::Create;
    };
    let mut differs = Vec::new();
    if let Value::Object(d) = declared {
        for (k, dv) in d {
            if secret_fields.contains(&k.as_str()) || dv.is_null() {
                continue;
            }
            let cv = current.get(k).unwrap_or(&Value::Null);
            let same = if set_fields.contains(&k.as_str()) {
                sorted(dv) == sorted(cv)
            } else {
                dv == cv
            };
            if !same {
                differs.push(k.clone());
            }
        }
    }
    if differs.is_empty() {
        Decision::Unchanged
    } else {
        Decision::Differs(differs)
    }
}

/// The sink API body for a source (includes the password).
pub fn source_body(s: &SourceDecl) -> Value {
    serde_json::to_value(s).expect("serialisable")
}

pub fn consumer_body(c: &ConsumerDecl) -> Value {
    serde_json::to_value(c).expect("serialisable")
}

/// Decision for a declared source against the sink's current config.
pub fn decide_source(s: &SourceDecl, current: Option<&Value>) -> Decision {
    decide(&source_body(s), current, &["tables"], &["password"])
}

/// Decision for a declared consumer against the sink's current config.
pub fn decide_consumer(c: &ConsumerDecl, current: Option<&Value>) -> Decision {
    decide(&consumer_body(c), current, &["topics", "ops"], &[])
}

/// A small client for the sink's operator API.
pub struct SinkApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl SinkApi {
    pub fn new(base: &str, token: String) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    async fn error_text(resp: reqwest::Response) -> String {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        format!("HTTP {status}: {msg}")
    }

    /// Polls `/readyz` (Kafka and the consumer registry answer) until it says 200 or
    /// `timeout` passes.
    pub async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.base);
        let timed_out = |last| {
            let secs = timeout.as_secs();
            anyhow!("the sink at {url} was not healthy after {secs}s (last: {last})")
        };
        wait::until(&url, timeout, Duration::from_secs(2), timed_out, || async {
            match self.http.get(&url).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => Ok(()),
                Ok(r) => Err(Pending::NotYet(format!("HTTP {}", r.status()))),
                Err(e) => Err(Pending::NotYet(crate::one_line(&e.into()))),
            }
        })
        .await
    }

    /// `GET /v1/{kind}/{name}`: `None` on 404.
    pub async fn get(&self, kind: &str, name: &str) -> anyhow::Result<Option<Value>> {
        let url = format!("{}/v1/{kind}/{name}", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        match resp.status() {
            s if s.is_success() => Ok(Some(
                resp.json()
                    .await
                    .with_context(|| format!("GET {url}: body"))?,
            )),
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            _ => bail!("GET {url}: {}", Self::error_text(resp).await),
        }
    }

    /// `POST /v1/{kind}` expecting 201.
    pub async fn create(&self, kind: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!("{}/v1/{kind}", self.base);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        if resp.status() != reqwest::StatusCode::CREATED {
            bail!("POST {url}: {}", Self::error_text(resp).await);
        }
        Ok(resp.json().await.unwrap_or(Value::Null))
    }
}

/// One line of the result.
#[derive(Debug, Clone, Serialize)]
pub struct EntryResult {
    pub kind: &'static str,
    pub name: String,
    #[serde(flatten)]
    pub decision: Decision,
}

/// Applies the pipeline; returns results and new consumer tokens (even on a later error).
pub async fn apply(
    api: &SinkApi,
    p: &Pipeline,
) -> (
    Vec<EntryResult>,
    BTreeMap<String, String>,
    Option<anyhow::Error>,
) {
    let mut results = Vec::new();
    let mut tokens = BTreeMap::new();
    let err = apply_into(api, p, &mut results, &mut tokens).await.err();
    (results, tokens, err)
}

async fn apply_into(
    api: &SinkApi,
    p: &Pipeline,
    results: &mut Vec<EntryResult>,
    tokens: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for s in &p.sources {
        let cur = api.get("sources", &s.name).await?;
        let d = decide_source(s, cur.as_ref());
        if d == Decision::Create {
            api.create("sources", &source_body(s))
                .await
                .with_context(|| format!("creating source {}", s.name))?;
        }
        results.push(EntryResult {
            kind: "source",
            name: s.name.clone(),
            decision: d,
        });
    }
    for c in &p.consumers {
        let cur = api.get("consumers", &c.name).await?;
        let d = decide_consumer(c, cur.as_ref());
        if d == Decision::Create {
            let created = api
                .create("consumers", &consumer_body(c))
                .await
                .with_context(|| format!("creating consumer {}", c.name))?;
            match created.get("token").and_then(Value::as_str) {
                Some(t) => {
                    tokens.insert(c.name.clone(), t.to_string());
                }
                None => tracing::warn!("the sink returned no token for consumer {}", c.name),
            }
        }
        results.push(EntryResult {
            kind: "consumer",
            name: c.name.clone(),
            decision: d,
        });
    }
    Ok(())
}

/// Merges `tokens` into the JSON file at `path` (mode 0600).
pub fn save_tokens(path: &Path, tokens: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let mut all: BTreeMap<String, String> = match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).with_context(|| format!("parsing {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    all.extend(tokens.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut text = serde_json::to_string_pretty(&all)?;
    text.push('\n');
    fsutil::write_atomic(path, text.as_bytes(), Some(0o600))
}

/// `tumbleweed bootstrap`.
pub async fn run(g: &GlobalArgs, a: BootstrapArgs) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let mut pipeline =
        parse_pipeline(&a.file, &text).with_context(|| format!("in {}", a.file.display()))?;
    resolve_env(&mut pipeline, |n| std::env::var(n).ok())
        .with_context(|| format!("in {}", a.file.display()))?;
    let token = std::env::var(&a.admin_token_env).map_err(|_| {
        UsageError(format!(
            "environment variable {} (the sink admin token) is not set",
            a.admin_token_env
        ))
    })?;
    let api = SinkApi::new(&a.sink_url, token)?;
    api.wait_healthy(Duration::from_secs(a.wait_timeout))
        .await?;
    let (results, tokens, err) = apply(&api, &pipeline).await;

    let mut tokens_written = None;
    if !tokens.is_empty() {
        if let Some(path) = &a.tokens_out {
            save_tokens(path, &tokens)?;
            tokens_written = Some(path.clone());
        }
    }
    let drift = results
        .iter()
        .any(|r| matches!(r.decision, Decision::Differs(_)));
    match g.output {
        OutputFormat::Json => {
            let mut doc = json!({"results": results, "drift": drift});
            if let Some(p) = &tokens_written {
                doc["tokens_out"] = json!(p);
            } else if !tokens.is_empty() {
                doc["tokens"] = json!(tokens);
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Text => {
            for r in &results {
                match &r.decision {
                    Decision::Create => println!("{} {}: created", r.kind, r.name),
                    Decision::Unchanged => println!("{} {}: unchanged", r.kind, r.name),
                    Decision::Differs(f) => println!(
                        "{} {}: differs ({}); left as is",
                        r.kind,
                        r.name,
                        f.join(", ")
                    ),
                }
            }
            if results.iter().all(|r| r.decision == Decision::Unchanged) && err.is_none() {
                println!("nothing to do");
            }
            match &tokens_written {
                Some(p) => println!("new consumer tokens written to {}", p.display()),
                None => {
                    for (name, t) in &tokens {
                        println!("token for consumer {name} (shown once): {t}");
                    }
                }
            }
        }
    }
    if let Some(e) = err {
        return Err(e);
    }
    if drift && !a.allow_drift {
        eprintln!(
            "error: some entries differ from {} (see above); pass --allow-drift to accept",
            a.file.display()
        );
        return Ok(Outcome::Failure);
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SourceDecl {
        SourceDecl {
            name: "pg_main".into(),
            host: "db".into(),
            port: 5432,
            database: "app".into(),
            user: "debezium".into(),
            password: "s3cret".into(),
            password_secret: None,
            tables: vec!["public.orders".into(), "public.items".into()],
            mode: Some(Mode::Tables),
            heartbeat_interval_s: None,
            snapshot_mode: None,
            sslmode: None,
            sslrootcert: None,
        }
    }

    #[test]
    fn decide_create_unchanged_differs() {
        let s = source();
        assert_eq!(decide_source(&s, None), Decision::Create);
        // The sink returns the config minus password, tables in another order, extra fields.
        let cur = json!({"name":"pg_main","host":"db","port":5432,"database":"app","user":"debezium",
            "tables":["public.items","public.orders"],"mode":"tables","heartbeat_interval_s":10,"state":"RUNNING"});
        assert_eq!(decide_source(&s, Some(&cur)), Decision::Unchanged);
        let mut cur2 = cur.clone();
        cur2["host"] = json!("other");
        cur2["tables"] = json!(["public.orders"]);
        assert_eq!(
            decide_source(&s, Some(&cur2)),
            Decision::Differs(vec!["host".into(), "tables".into()])
        );
        // A declared heartbeat is compared.
        let s2 = SourceDecl {
            heartbeat_interval_s: Some(30),
            ..source()
        };
        assert_eq!(
            decide_source(&s2, Some(&cur)),
            Decision::Differs(vec!["heartbeat_interval_s".into()])
        );
    }

    #[test]
    fn consumers_compare_topics_and_ops_as_sets() {
        let c = ConsumerDecl {
            name: "billing".into(),
            topics: vec!["a".into(), "b".into()],
            start: Some(StartFrom::Earliest),
            ops: Some(vec!["c".into(), "u".into()]),
            filters: None,
        };
        let cur = json!({"name":"billing","topics":["b","a"],"start":"earliest","ops":["u","c"]});
        assert_eq!(decide_consumer(&c, Some(&cur)), Decision::Unchanged);
        let cur = json!({"name":"billing","topics":["b"],"start":"latest","ops":["u","c"]});
        assert_eq!(
            decide_consumer(&c, Some(&cur)),
            Decision::Differs(vec!["start".into(), "topics".into()])
        );
    }

    #[test]
    fn filters_are_declared_in_yaml_and_compared_as_the_sink_returns_them() {
        let yaml = r#"
consumers:
  - name: paid
    topics: [app.public.orders]
    filters:
      app.public.orders:
        where: after.status == 'paid' && after.amount_cents > 1000
        exclude_columns: [email]
      "*":
        ops: [c, u, d]
"#;
        let p = parse_pipeline(Path::new("p.yaml"), yaml).unwrap();
        let c = &p.consumers[0];
        let body = consumer_body(c);
        assert_eq!(
            body["filters"]["app.public.orders"],
            json!({"where": "after.status == 'paid' && after.amount_cents > 1000", "exclude_columns": ["email"]})
        );
        let mut stored = body.clone();
        stored["created_at_ms"] = json!(1);
        assert_eq!(decide_consumer(c, Some(&stored)), Decision::Unchanged);
        stored["filters"]["*"]["ops"] = json!(["c"]);
        assert_eq!(
            decide_consumer(c, Some(&stored)),
            Decision::Differs(vec!["filters".into()])
        );
        let typo = "consumers:\n  - name: c\n    topics: [t]\n    filters:\n      t: {wher: x}\n";
        let err = parse_pipeline(Path::new("p.yaml"), typo).unwrap_err();
        assert!(format!("{err:#}").contains("wher"), "{err:#}");
    }

    #[test]
    fn second_run_is_nothing_to_do() {
        // Simulate: first run creates, the sink then returns what was created (minus password).
        let s = source();
        let mut stored = source_body(&s);
        stored.as_object_mut().unwrap().remove("password");
        assert_eq!(decide_source(&s, Some(&stored)), Decision::Unchanged);
    }

    #[test]
    fn env_references() {
        let env = |n: &str| (n == "PG_PASS").then(|| "hunter2".to_string());
        assert_eq!(interpolate("${PG_PASS}", env).unwrap(), "hunter2");
        assert_eq!(interpolate("x-${PG_PASS}-y", env).unwrap(), "x-hunter2-y");
        assert_eq!(interpolate("plain", env).unwrap(), "plain");
        let e = interpolate("${NOPE}", env).unwrap_err().to_string();
        assert_eq!(e, "environment variable NOPE is not set");
        assert!(interpolate("${bad-name}", env).is_err());
    }

    #[test]
    fn parses_all_three_formats() {
        let json = r#"{"sources":[{"name":"s","host":"h","database":"d","user":"u","password":"${P}","tables":["public.t"]}],
                       "consumers":[{"name":"c","topics":["t"],"start":"latest"}]}"#;
        let yaml = "sources:\n  - name: s\n    host: h\n    database: d\n    user: u\n    password: ${P}\n    tables: [public.t]\nconsumers:\n  - name: c\n    topics: [t]\n    start: latest\n";
        let toml = "[[sources]]\nname = \"s\"\nhost = \"h\"\ndatabase = \"d\"\nuser = \"u\"\npassword = \"${P}\"\ntables = [\"public.t\"]\n[[consumers]]\nname = \"c\"\ntopics = [\"t\"]\nstart = \"latest\"\n";
        let a = parse_pipeline(Path::new("p.json"), json).unwrap();
        assert_eq!(a, parse_pipeline(Path::new("p.yaml"), yaml).unwrap());
        assert_eq!(a, parse_pipeline(Path::new("p.toml"), toml).unwrap());
        assert_eq!(a.sources[0].port, 5432);
        let e = parse_pipeline(Path::new("p.txt"), "").unwrap_err();
        assert_eq!(crate::exit_code_for(&e), 2);
        let bad = r#"{"consumers":[{"name":"c","topics":[],"start":"now"}]}"#;
        assert!(parse_pipeline(Path::new("p.json"), bad).is_err());
    }

    #[test]
    fn a_password_secret_is_sent_instead_of_a_password_and_compared() {
        let yaml = "sources:\n  - name: s\n    host: h\n    database: d\n    user: u\n    password_secret: env:TUMBLEWEED_SOURCE_DB_PASSWORD\n    tables: [public.t]\n";
        let p = parse_pipeline(Path::new("p.yaml"), yaml).unwrap();
        let body = source_body(&p.sources[0]);
        assert_eq!(body["password_secret"], "env:TUMBLEWEED_SOURCE_DB_PASSWORD");
        assert!(body.get("password").is_none(), "{body}");
        // The sink shows the reference back; a different one is a difference.
        let mut cur = body.clone();
        assert_eq!(
            decide_source(&p.sources[0], Some(&cur)),
            Decision::Unchanged
        );
        cur["password_secret"] = serde_json::json!("env:OTHER");
        assert_eq!(
            decide_source(&p.sources[0], Some(&cur)),
            Decision::Differs(vec!["password_secret".into()])
        );
    }

    #[test]
    fn tls_settings_are_sent_and_compared() {
        let yaml = "sources:\n  - name: s\n    host: h\n    database: d\n    user: u\n    tables: [public.t]\n    sslmode: verify-full\n    sslrootcert: rds\n";
        let p = parse_pipeline(Path::new("p.yaml"), yaml).unwrap();
        let body = source_body(&p.sources[0]);
        assert_eq!(
            (&body["sslmode"], &body["sslrootcert"]),
            (&serde_json::json!("verify-full"), &serde_json::json!("rds"))
        );
        let mut cur = body.clone();
        assert_eq!(
            decide_source(&p.sources[0], Some(&cur)),
            Decision::Unchanged
        );
        cur["sslmode"] = serde_json::json!("prefer");
        assert_eq!(
            decide_source(&p.sources[0], Some(&cur)),
            Decision::Differs(vec!["sslmode".into()])
        );
    }

    #[test]
    fn declarations_are_checked_by_the_apis_own_rules() {
        // What the sink takes, the helper takes (it once refused sslmode and snapshot_mode).
        let ok = "sources:\n  - name: s_1\n    host: h\n    database: d\n    user: u\n    tables: [public.t]\n    snapshot_mode: no_data\n    sslmode: verify-ca\n    sslrootcert: rds\n    mode: tables\n";
        let p = parse_pipeline(Path::new("p.yaml"), ok).unwrap();
        assert_eq!(p.sources[0].snapshot_mode.as_deref(), Some("no_data"));
        // What the sink refuses, the helper refuses, with the sink's words.
        for (yaml, says) in [
            ("sources:\n  - {name: pg-main, host: h, database: d, user: u, tables: [public.t]}\n", "invalid source name \"pg-main\""),
            ("sources:\n  - {name: s, host: h, database: d, user: u, tables: [t]}\n", "must be written schema.table"),
            ("sources:\n  - {name: s, host: h, database: d, user: u, tables: [public.t], sslmode: verify}\n", "sslmode \"verify\" must be one of"),
            ("sources:\n  - {name: s, host: h, database: d, user: u, tables: [public.t], snapshot_mode: sometimes}\n", "snapshot_mode must be one of"),
            ("consumers:\n  - {name: Billing, topics: [t]}\n", "invalid consumer name \"Billing\""),
            ("consumers:\n  - {name: b, topics: [t], start: now}\n", "unknown variant `now`"),
        ] {
            let e = format!("{:#}", parse_pipeline(Path::new("p.yaml"), yaml).unwrap_err());
            assert!(e.contains(says), "{yaml}: {e}");
        }
    }

    #[test]
    fn tokens_file_is_private_and_merged() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("tokens.json");
        save_tokens(&p, &BTreeMap::from([("a".to_string(), "1".to_string())])).unwrap();
        save_tokens(&p, &BTreeMap::from([("b".to_string(), "2".to_string())])).unwrap();
        let m: BTreeMap<String, String> =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(m.len(), 2);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
