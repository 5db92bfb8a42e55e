//! A client of the Kafka Connect REST API, and the Debezium connector configuration of a source.
//!
//! Design: Kafka Connect is the store of source configurations. Each source is a connector
//! named `tumbleweed-<name>` whose config holds everything needed to show the source and to
//! clean it up later (database host, port, name, user and password, tables), plus a few
//! `tumbleweed.*` keys that Connect passes through untouched (the API's view of the source:
//! mode, user tables, heartbeat interval). Nothing else is persisted, so every sink replica sees
//! the same sources and a sink restart loses nothing. The password is read back from Connect
//! only to reach the database for slot cleanup and the WAL guard; it is never returned.
//!
//! While its group rebalances, which every connector created or deleted sets off, Connect
//! answers writes with 409 and reads with `500 Request cannot be completed because a
//! rebalance is expected`. Both are retried for up to [`REBALANCE_RETRY`] (see
//! [`rebalancing`]); a 409 that says the connector already exists is a real conflict.
//! Every error carries the request it came from and Connect's own message, in one line.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::model::{
    connector_name, legacy_slot_name, ConnectorState, DbTarget, Mode, SourceSpec, SourceView,
    SslMode, TableName, TableSql, TaskState, HEARTBEAT_TABLE,
};
use super::secret::{resolve_config_password, SecretRef};
use super::tls::RootCert;

/// How long writes keep retrying while the Connect cluster rebalances.
pub const REBALANCE_RETRY: Duration = Duration::from_secs(30);

/// Key marking a connector as a Tumbleweed source; its value is the source name.
pub const KEY_SOURCE: &str = "tumbleweed.source";
const KEY_MODE: &str = "tumbleweed.mode";
const KEY_TABLES: &str = "tumbleweed.tables";
const KEY_HEARTBEAT: &str = "tumbleweed.heartbeat.interval.s";
/// `sslrootcert` as the source was given it (`rds` or a path): `database.sslrootcert` holds
/// the path the Connect workers read, which for `rds` is a deployment setting.
const KEY_SSLROOTCERT: &str = "tumbleweed.sslrootcert";

/// Where the Connect workers find the Amazon RDS CA bundle (`sslrootcert: rds`), by default.
pub const DEFAULT_CONNECT_RDS_CA_PATH: &str = "/tmp/tumbleweed/rds-global-bundle.pem";

/// Topic settings applied to the topics Debezium creates.
#[derive(Debug, Clone, Copy)]
pub struct TopicSettings {
    pub replication_factor: u16,
    pub partitions: u32,
}

/// Builds the Debezium PostgreSQL connector config of a validated source.
///
/// Decisions: `exactly.once.support=required` (KIP-618: records and offsets in one
/// transaction); `tombstones.on.delete=false` (the delete event already carries the key and the
/// `before` image; consumers over SSE have no use for a null record, and the topics are not
/// compacted); JSON converters without schemas set on the connector, not the worker;
/// `poll.interval.ms=5` (the 500 ms default is the whole latency budget; at 5,000 commits/s,
/// 20 → 5 took commit → SSE p50 from 51 to 26 ms, `benches/end_to_end.rs`); the heartbeat table is
/// part of `table.include.list` (so of the filtered publication): with pgoutput a heartbeat write
/// outside the publication is skipped as an empty transaction and the slot never advances in an
/// idle database. In outbox mode the event router only applies to the outbox table's topic.
/// `database.sslrootcert` is the CA bundle's path as the Connect workers see it: the source's
/// own path, or `connect_rds_ca_path` for `rds` (pgjdbc reads a PEM file, not the sink's
/// embedded copy).
pub fn connector_config(
    spec: &SourceSpec,
    topics: TopicSettings,
    connect_rds_ca_path: &str,
) -> Map<String, Value> {
    let slot = spec.slot();
    let mut include: Vec<String> = spec.tables.iter().map(TableSql::include_regex).collect();
    if spec.heartbeat_interval_s > 0 {
        include.push(
            TableName::parse(HEARTBEAT_TABLE)
                .expect("valid")
                .include_regex(),
        );
    }
    let mut c = Map::new();
    let mut set = |k: &str, v: String| {
        c.insert(k.to_string(), Value::String(v));
    };
    set(
        "connector.class",
        "io.debezium.connector.postgresql.PostgresConnector".into(),
    );
    set("tasks.max", "1".into());
    set("plugin.name", "pgoutput".into());
    set("database.hostname", spec.db.host.clone());
    set("database.port", spec.db.port.to_string());
    set("database.dbname", spec.db.database.clone());
    set("database.user", spec.db.user.clone());
    set(
        "database.password",
        match &spec.db.secret {
            Some(r) => r.placeholder(),
            None => spec.db.password.clone(),
        },
    );
    set("database.sslmode", spec.db.sslmode.as_str().into());
    if let Some(root) = &spec.db.sslrootcert {
        set(
            "database.sslrootcert",
            match root {
                RootCert::Rds => connect_rds_ca_path.to_string(),
                RootCert::Path(p) => p.display().to_string(),
            },
        );
        set(KEY_SSLROOTCERT, root.as_text());
    }
    set("topic.prefix", spec.name.clone());
    set("slot.name", slot.clone());
    set("publication.name", slot);
    set("publication.autocreate.mode", "filtered".into());
    set("table.include.list", include.join(","));
    set("snapshot.mode", spec.snapshot_mode.clone());
    set("poll.interval.ms", "5".into());
    set("tombstones.on.delete", "false".into());
    // With `exactly.once.source.support=enabled` on the workers (local stack and ECS), records
    // and their source offsets are committed in one Kafka transaction, so a Connect crash
    // cannot write a change twice; Connect refuses the connector if that cannot hold.
    set("exactly.once.support", "required".into());
    set(
        "key.converter",
        "org.apache.kafka.connect.json.JsonConverter".into(),
    );
    set("key.converter.schemas.enable", "false".into());
    set(
        "value.converter",
        "org.apache.kafka.connect.json.JsonConverter".into(),
    );
    set("value.converter.schemas.enable", "false".into());
    set(
        "topic.creation.default.replication.factor",
        topics.replication_factor.to_string(),
    );
    set(
        "topic.creation.default.partitions",
        topics.partitions.to_string(),
    );
    if spec.heartbeat_interval_s > 0 {
        set(
            "heartbeat.interval.ms",
            (spec.heartbeat_interval_s * 1000).to_string(),
        );
        // The name is validated ([a-z0-9_]), so it can stand in a literal.
        set(
            "heartbeat.action.query",
            format!(
                "INSERT INTO {HEARTBEAT_TABLE} (source, beat_at) VALUES ('{}', now()) \
                 ON CONFLICT (source) DO UPDATE SET beat_at = EXCLUDED.beat_at",
                spec.name
            ),
        );
    }
    if spec.mode == Mode::Outbox {
        let outbox = &spec.tables[0];
        set("transforms", "outbox".into());
        set(
            "transforms.outbox.type",
            "io.debezium.transforms.outbox.EventRouter".into(),
        );
        set(
            "transforms.outbox.route.topic.replacement",
            format!("{}.outbox.${{routedByValue}}", spec.name),
        );
        set("transforms.outbox.table.expand.json.payload", "true".into());
        set("transforms.outbox.predicate", "isOutbox".into());
        set("predicates", "isOutbox".into());
        set(
            "predicates.isOutbox.type",
            "org.apache.kafka.connect.transforms.predicates.TopicNameMatches".into(),
        );
        set(
            "predicates.isOutbox.pattern",
            format!("{}\\.{}\\.{}", spec.name, outbox.schema, outbox.table),
        );
    }
    set(KEY_SOURCE, spec.name.clone());
    set(KEY_MODE, spec.mode.as_str().into());
    set(
        KEY_TABLES,
        spec.tables
            .iter()
            .map(TableName::dotted)
            .collect::<Vec<_>>()
            .join(","),
    );
    set(KEY_HEARTBEAT, spec.heartbeat_interval_s.to_string());
    c
}

/// A source as stored in Connect: its config (with the password, for internal use only).
#[derive(Debug, Clone)]
pub struct StoredSource {
    pub name: String,
    pub db: DbTarget,
    pub tables: Vec<String>,
    pub mode: Mode,
    pub heartbeat_interval_s: u64,
    pub snapshot_mode: String,
    /// Slot and publication name, as the connector config says (sources created before
    /// deployment ids have none there and use [`legacy_slot_name`]).
    pub slot: String,
}

impl StoredSource {
    /// Reads a Tumbleweed connector's config; `None` for connectors that are not ours.
    pub fn from_config(config: &Map<String, Value>) -> Option<Self> {
        let get = |k: &str| config.get(k).and_then(Value::as_str).map(str::to_string);
        let name = get(KEY_SOURCE)?;
        Some(Self {
            db: DbTarget {
                host: get("database.hostname")?,
                port: get("database.port")?.parse().ok()?,
                database: get("database.dbname")?,
                user: get("database.user")?,
                password: match get("database.password") {
                    Some(raw) => resolve_config_password(&raw).unwrap_or_else(|e| {
                        tracing::warn!(source = %name, error = %e, "cannot resolve the source's password");
                        String::new()
                    }),
                    None => String::new(),
                },
                secret: get("database.password")
                    .as_deref()
                    .and_then(SecretRef::from_placeholder),
                sslmode: get("database.sslmode")
                    .and_then(|m| SslMode::parse(&m))
                    .unwrap_or_default(),
                sslrootcert: get(KEY_SSLROOTCERT)
                    .or_else(|| get("database.sslrootcert"))
                    .and_then(|t| RootCert::parse(&t).ok()),
            },
            tables: get(KEY_TABLES)
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            mode: if get(KEY_MODE).as_deref() == Some("outbox") {
                Mode::Outbox
            } else {
                Mode::Tables
            },
            heartbeat_interval_s: get(KEY_HEARTBEAT).and_then(|s| s.parse().ok()).unwrap_or(0),
            snapshot_mode: get("snapshot.mode").unwrap_or_else(|| "initial".into()),
            slot: get("slot.name").unwrap_or_else(|| legacy_slot_name(&name)),
            name,
        })
    }

    /// The API view: configuration without the password, plus the state Connect reports.
    pub fn view(&self, status: Option<&ConnectorStatus>) -> SourceView {
        let slot = self.slot.clone();
        SourceView {
            name: self.name.clone(),
            host: self.db.host.clone(),
            port: self.db.port,
            database: self.db.database.clone(),
            user: self.db.user.clone(),
            sslmode: self.db.sslmode,
            sslrootcert: self.db.sslrootcert.as_ref().map(RootCert::as_text),
            tables: self.tables.clone(),
            mode: self.mode,
            heartbeat_interval_s: self.heartbeat_interval_s,
            snapshot_mode: self.snapshot_mode.clone(),
            connector: connector_name(&self.name),
            slot: slot.clone(),
            publication: slot,
            topic_prefix: self.name.clone(),
            topics: match self.mode {
                Mode::Tables => self
                    .tables
                    .iter()
                    .map(|t| format!("{}.{t}", self.name))
                    .collect(),
                Mode::Outbox => Vec::new(),
            },
            heartbeat_topic: (self.heartbeat_interval_s > 0)
                .then(|| format!("{}.{HEARTBEAT_TABLE}", self.name)),
            connector_state: status.map_or(ConnectorState::Unknown, |s| s.state),
            tasks: status.map(|s| s.tasks.clone()).unwrap_or_default(),
            password_secret: self.db.secret.as_ref().map(ToString::to_string),
            declared: true,
            reconciler: None,
        }
    }
}

/// Connector and task states from `/connectors/{name}/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorStatus {
    pub state: ConnectorState,
    pub trace: Option<String>,
    pub tasks: Vec<TaskState>,
}

impl ConnectorStatus {
    fn from_json(v: &Value) -> Self {
        let tasks = v["tasks"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| TaskState {
                        id: t["id"].as_i64().unwrap_or(0),
                        state: ConnectorState::parse(t["state"].as_str().unwrap_or("")),
                        trace: t["trace"].as_str().map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            state: ConnectorState::parse(v["connector"]["state"].as_str().unwrap_or("")),
            trace: v["connector"]["trace"].as_str().map(str::to_string),
            tasks,
        }
    }

    /// Connector and every task (at least one) running.
    pub fn running(&self) -> bool {
        self.state == ConnectorState::Running
            && !self.tasks.is_empty()
            && self
                .tasks
                .iter()
                .all(|t| t.state == ConnectorState::Running)
    }

    /// The first failure's message (first line of the Java trace), if anything failed.
    pub fn failure(&self) -> Option<String> {
        let first_line = |t: &str| t.lines().next().unwrap_or("").trim().to_string();
        if self.state == ConnectorState::Failed {
            return Some(
                self.trace
                    .as_deref()
                    .map(first_line)
                    .unwrap_or_else(|| "connector failed".into()),
            );
        }
        self.tasks
            .iter()
            .find(|t| t.state == ConnectorState::Failed)
            .map(|t| {
                t.trace
                    .as_deref()
                    .map(first_line)
                    .unwrap_or_else(|| format!("task {} failed", t.id))
            })
    }
}

/// What `stop` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Stopped,
    /// Connect < 3.5 has no stop: the connector was paused instead.
    Paused,
    Absent,
}

/// The Kafka Connect REST client.
#[derive(Clone)]
pub struct ConnectClient {
    base: String,
    http: reqwest::Client,
}

/// Why a Kafka Connect request failed: the boundary's typed error, so that callers choose an
/// answer (503 or 502) by kind, not by reading messages. Carried inside `anyhow::Error`
/// (callers `downcast_ref` it).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No HTTP answer at all: a worker restarting, a wrong URL, a network problem.
    #[error("Kafka Connect at {base} is unreachable ({method} {path}): {source}")]
    Unreachable {
        base: String,
        method: Method,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// Connect answered with an error status.
    #[error("Kafka Connect {method} {path} answered {status}: {message}")]
    Rejected {
        method: String,
        path: String,
        status: StatusCode,
        message: String,
    },
}

impl ConnectClient {
    pub fn new(base: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("building the Kafka Connect HTTP client")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// One request; retries while Connect [`rebalancing`] answers say it is rebalancing.
    /// Returns the status and the body (JSON, or `Null` when empty or not JSON).
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let once = || async {
            let url = format!("{}{path}", self.base);
            let mut req = self.http.request(method.clone(), &url);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|source| ConnectError::Unreachable {
                    base: self.base.clone(),
                    method: method.clone(),
                    path: path.to_string(),
                    source,
                })?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            Ok::<_, anyhow::Error>((status, value))
        };
        crate::wait::until(
            REBALANCE_RETRY,
            Duration::from_millis(500),
            once,
            |(status, value)| !rebalancing(*status, value),
        )
        .await
    }

    fn fail(method: &str, path: &str, status: StatusCode, body: &Value) -> anyhow::Error {
        ConnectError::Rejected {
            method: method.to_string(),
            path: path.to_string(),
            status,
            message: message(body),
        }
        .into()
    }

    /// Registers a connector. `Ok(false)` when a connector of that name already exists.
    pub async fn create(&self, name: &str, config: &Map<String, Value>) -> Result<bool> {
        let body = json!({ "name": name, "config": config });
        let (status, v) = self
            .request(Method::POST, "/connectors", Some(&body))
            .await?;
        match status {
            s if s.is_success() => Ok(true),
            StatusCode::CONFLICT => Ok(false),
            s => Err(Self::fail("POST", "/connectors", s, &v)),
        }
    }

    /// A connector's config, `None` if it does not exist.
    pub async fn config(&self, name: &str) -> Result<Option<Map<String, Value>>> {
        let path = format!("/connectors/{name}/config");
        let (status, v) = self.request(Method::GET, &path, None).await?;
        match status {
            s if s.is_success() => match v {
                Value::Object(m) => Ok(Some(m)),
                other => bail!("Kafka Connect GET {path} returned a non-object: {other}"),
            },
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(Self::fail("GET", &path, s, &v)),
        }
    }

    /// A connector's status, `None` if it does not exist.
    pub async fn status(&self, name: &str) -> Result<Option<ConnectorStatus>> {
        let path = format!("/connectors/{name}/status");
        let (status, v) = self.request(Method::GET, &path, None).await?;
        match status {
            s if s.is_success() => Ok(Some(ConnectorStatus::from_json(&v))),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(Self::fail("GET", &path, s, &v)),
        }
    }

    /// All connectors with their config and status (`?expand=info&expand=status`), by name.
    pub async fn list_expanded(
        &self,
    ) -> Result<BTreeMap<String, (Map<String, Value>, Option<ConnectorStatus>)>> {
        let path = "/connectors?expand=info&expand=status";
        let (status, v) = self.request(Method::GET, path, None).await?;
        if !status.is_success() {
            return Err(Self::fail("GET", path, status, &v));
        }
        let mut out = BTreeMap::new();
        if let Value::Object(all) = v {
            for (name, entry) in all {
                let config = entry["info"]["config"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let status = entry
                    .get("status")
                    .filter(|s| s.is_object())
                    .map(ConnectorStatus::from_json);
                out.insert(name, (config, status));
            }
        }
        Ok(out)
    }

    /// Stops a connector (its tasks shut down, its config stays), falling back to pause on
    /// workers without `PUT /connectors/{name}/stop`.
    pub async fn stop(&self, name: &str) -> Result<Stopped> {
        let path = format!("/connectors/{name}/stop");
        let (status, v) = self.request(Method::PUT, &path, None).await?;
        if status.is_success() {
            return Ok(Stopped::Stopped);
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
            // Either the connector is gone or the worker predates the stop endpoint.
            if self.config(name).await?.is_none() {
                return Ok(Stopped::Absent);
            }
            let pause = format!("/connectors/{name}/pause");
            let (status, v) = self.request(Method::PUT, &pause, None).await?;
            if status.is_success() {
                return Ok(Stopped::Paused);
            }
            return Err(Self::fail("PUT", &pause, status, &v));
        }
        Err(Self::fail("PUT", &path, status, &v))
    }

    /// Forgets a stopped connector's source offsets (Kafka Connect 3.6+, KIP-875), so a
    /// source created later under the same name starts afresh instead of asking for a WAL
    /// position whose slot was dropped. `Ok(false)` when the worker cannot do it.
    pub async fn reset_offsets(&self, name: &str) -> Result<bool> {
        let path = format!("/connectors/{name}/offsets");
        let (status, v) = self.request(Method::DELETE, &path, None).await?;
        match status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Ok(false),
            s => Err(Self::fail("DELETE", &path, s, &v)),
        }
    }

    /// Replaces a connector's config (creates it if absent).
    pub async fn put_config(&self, name: &str, config: &Map<String, Value>) -> Result<()> {
        let path = format!("/connectors/{name}/config");
        let body = Value::Object(config.clone());
        let (status, v) = self.request(Method::PUT, &path, Some(&body)).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Self::fail("PUT", &path, status, &v))
        }
    }

    /// Restarts a connector's failed instance and failed tasks (KIP-745).
    pub async fn restart_failed(&self, name: &str) -> Result<()> {
        let path = format!("/connectors/{name}/restart?includeTasks=true&onlyFailed=true");
        let (status, v) = self.request(Method::POST, &path, None).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Self::fail("POST", &path, status, &v))
        }
    }

    /// Deletes a connector; `Ok(false)` when it did not exist.
    pub async fn delete(&self, name: &str) -> Result<bool> {
        let path = format!("/connectors/{name}");
        let (status, v) = self.request(Method::DELETE, &path, None).await?;
        match status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(Self::fail("DELETE", &path, s, &v)),
        }
    }
}

/// Whether a Connect answer means "try again once the group has rebalanced": a 409 other
/// than "already exists" (writes), or a 500 naming a rebalance (reads answered from a
/// worker whose view of the configs is stale).
pub fn rebalancing(status: StatusCode, body: &Value) -> bool {
    let text = message(body);
    match status {
        StatusCode::CONFLICT => !text.contains("already exists"),
        StatusCode::INTERNAL_SERVER_ERROR => text.to_ascii_lowercase().contains("rebalance"),
        _ => false,
    }
}

/// Connect's error bodies are `{"error_code": .., "message": ".."}`.
fn message(body: &Value) -> String {
    match body {
        Value::Object(m) => m
            .get("message")
            .and_then(Value::as_str)
            .map(|s| s.lines().next().unwrap_or("").to_string())
            .unwrap_or_else(|| body.to_string()),
        Value::Null => "(no body)".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::model::CreateSource;

    fn spec(mode: &str, hb: u64) -> SourceSpec {
        let req = serde_json::from_value::<CreateSource>(json!({
            "name": "shop", "host": "db", "port": 5432, "database": "app", "user": "u",
            "password": "pw", "tables": if mode == "outbox" { json!([]) } else { json!(["public.items", "public.orders"]) },
            "mode": mode, "heartbeat_interval_s": hb,
        }))
        .unwrap();
        crate::sources::model::validate(req, "dev").unwrap()
    }

    #[test]
    fn config_round_trips_and_escapes_table_regexes() {
        let c = connector_config(
            &spec("tables", 60),
            TopicSettings {
                replication_factor: 3,
                partitions: 1,
            },
            DEFAULT_CONNECT_RDS_CA_PATH,
        );
        assert_eq!(c["slot.name"], "tw_dev_shop");
        assert_eq!(c["publication.name"], "tw_dev_shop");
        assert_eq!(
            c["table.include.list"],
            "public\\.items,public\\.orders,public\\.tumbleweed_heartbeat"
        );
        assert_eq!(c["heartbeat.interval.ms"], "60000");
        assert_eq!(c["topic.creation.default.replication.factor"], "3");
        assert_eq!(c["exactly.once.support"], "required");
        let stored = StoredSource::from_config(&c).unwrap();
        assert_eq!(stored.tables, ["public.items", "public.orders"]);
        assert_eq!(stored.db.password, "pw");
        let view = serde_json::to_string(&stored.view(None)).unwrap();
        assert!(!view.contains("pw\""), "{view}");
        assert!(view.contains("shop.public.items"));
    }

    #[test]
    fn rebalance_answers_are_told_from_real_errors() {
        let body = |m: &str| json!({"error_code": 500, "message": m});
        let expected = body("Request cannot be completed because a rebalance is expected");
        assert!(rebalancing(StatusCode::INTERNAL_SERVER_ERROR, &expected));
        let stale = body("Cannot complete request momentarily due to stale configuration");
        assert!(rebalancing(StatusCode::CONFLICT, &stale));
        let exists = body("Connector tumbleweed-a already exists");
        assert!(!rebalancing(StatusCode::CONFLICT, &exists));
        let broken = body("Failed to find any class that implements Connector");
        assert!(!rebalancing(StatusCode::INTERNAL_SERVER_ERROR, &broken));
        assert!(!rebalancing(StatusCode::BAD_REQUEST, &expected));
    }

    #[test]
    fn outbox_and_no_heartbeat() {
        let c = connector_config(
            &spec("outbox", 0),
            TopicSettings {
                replication_factor: 1,
                partitions: 1,
            },
            DEFAULT_CONNECT_RDS_CA_PATH,
        );
        assert_eq!(c["table.include.list"], "public\\.outbox");
        assert!(!c.contains_key("heartbeat.action.query"));
        assert_eq!(
            c["transforms.outbox.route.topic.replacement"],
            "shop.outbox.${routedByValue}"
        );
        assert_eq!(c["predicates.isOutbox.pattern"], "shop\\.public\\.outbox");
    }

    #[test]
    fn tls_settings_reach_the_connector_and_round_trip() {
        let mut s = spec("tables", 0);
        let topics = TopicSettings {
            replication_factor: 1,
            partitions: 1,
        };
        let c = connector_config(&s, topics, "/etc/rds.pem");
        assert_eq!(c["database.sslmode"], "prefer");
        assert!(!c.contains_key("database.sslrootcert"));
        let back = StoredSource::from_config(&c).unwrap();
        assert_eq!(
            (back.db.sslmode, back.db.sslrootcert),
            (SslMode::Prefer, None)
        );

        s.db.sslmode = SslMode::VerifyFull;
        s.db.sslrootcert = Some(RootCert::Rds);
        let c = connector_config(&s, topics, "/etc/rds.pem");
        assert_eq!(c["database.sslmode"], "verify-full");
        assert_eq!(c["database.sslrootcert"], "/etc/rds.pem");
        let back = StoredSource::from_config(&c).unwrap();
        assert_eq!(back.db, s.db);
        let view = serde_json::to_value(back.view(None)).unwrap();
        assert_eq!(view["sslmode"], "verify-full");
        assert_eq!(view["sslrootcert"], "rds");

        s.db.sslmode = SslMode::VerifyCa;
        s.db.sslrootcert = Some(RootCert::Path("/certs/ca.pem".into()));
        let c = connector_config(&s, topics, "/etc/rds.pem");
        assert_eq!(c["database.sslmode"], "verify-ca");
        assert_eq!(c["database.sslrootcert"], "/certs/ca.pem");
        assert_eq!(StoredSource::from_config(&c).unwrap().db, s.db);
    }
}
