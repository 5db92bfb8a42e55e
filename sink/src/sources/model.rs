//! Request and response types of the sources API, and the validation of everything an operator
//! sends.
//!
//! Design: the source name ends up in the slot, publication, topic and connector names and in
//! the heartbeat action query, so it is restricted to `[a-z0-9_]{1,40}` and checked before
//! anything else happens. Table names are `schema.table` with each part a plain identifier
//! (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes): they are never pasted into SQL (catalog lookups
//! bind them as parameters) and, in Debezium's regex-based `table.include.list`, the dot is
//! escaped so a name matches only itself. Every validation failure names the offending field.
//!
//! Passwords live only in [`DbTarget`] and [`CreateSource`], whose `Debug` impls redact them, and
//! no response type has a password field.

use serde::{Deserialize, Serialize};

use super::secret::SecretRef;
use crate::error::ApiError;

/// Longest source name: `tw_` + a 16-character deployment id + `_` + 40 is 60 bytes, under
/// PostgreSQL's 63-byte identifiers.
pub const MAX_NAME_LEN: usize = 40;

/// Longest deployment id (see [`slot_prefix`]).
pub const MAX_DEPLOYMENT_ID_LEN: usize = 16;

/// Prefix of the slot and publication names of sources created before deployment ids. Such a
/// slot stays its source's (the connector config names it), but no deployment can tell whose it
/// is once the source is gone, so it is never offered as an orphan.
pub const LEGACY_SLOT_PREFIX: &str = "tumbleweed_";

/// Prefix of the Kafka Connect connector names owned by Tumbleweed.
pub const CONNECTOR_PREFIX: &str = "tumbleweed-";

/// The shared heartbeat table created in every source database (one row per source).
pub const HEARTBEAT_TABLE: &str = "public.tumbleweed_heartbeat";

/// The default outbox table in `outbox` mode.
pub const DEFAULT_OUTBOX_TABLE: &str = "public.outbox";

/// Columns the Debezium outbox event router reads.
pub const OUTBOX_COLUMNS: [&str; 5] = ["id", "aggregatetype", "aggregateid", "type", "payload"];

/// How a source's tables become topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One topic per table: `<name>.<schema>.<table>`.
    #[default]
    Tables,
    /// The outbox pattern: one topic per aggregate type, `<name>.outbox.<aggregatetype>`.
    Outbox,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tables => "tables",
            Mode::Outbox => "outbox",
        }
    }
}

/// TLS towards the source database, as libpq's `sslmode` (see [`super::tls`]).
pub use super::tls::SslMode;
use super::tls::{RootCert, TlsSettings};

/// Debezium snapshot modes a source may ask for.
pub const SNAPSHOT_MODES: [&str; 5] = [
    "initial",
    "no_data",
    "initial_only",
    "when_needed",
    "always",
];

fn default_port() -> u16 {
    5432
}
fn default_heartbeat() -> u64 {
    60
}
fn default_snapshot_mode() -> String {
    "initial".into()
}

/// Body of `POST /v1/sources`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub database: String,
    pub user: String,
    #[serde(default)]
    pub password: String,
    /// The password by reference (`env:NAME` or `file:/path`, see `secret`): then neither
    /// Kafka Connect nor the source registry stores it.
    #[serde(default)]
    pub password_secret: Option<String>,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub mode: Mode,
    /// Seconds between heartbeats; 0 turns the heartbeat off.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_s: u64,
    #[serde(default = "default_snapshot_mode")]
    pub snapshot_mode: String,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full` (kept as text so that a
    /// wrong value is a 400 naming the field); the sink's default when absent.
    #[serde(default)]
    pub sslmode: Option<String>,
    /// The CAs that verify the server (`verify-ca`, `verify-full`): an absolute path to a PEM
    /// bundle, or `rds` for the Amazon RDS bundle. The sink's default when absent.
    #[serde(default)]
    pub sslrootcert: Option<String>,
}

impl std::fmt::Debug for CreateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateSource")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("password_secret", &self.password_secret)
            .field("tables", &self.tables)
            .field("mode", &self.mode)
            .field("heartbeat_interval_s", &self.heartbeat_interval_s)
            .field("snapshot_mode", &self.snapshot_mode)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .finish()
    }
}

/// Where a source's database is and how to log in; the password never leaves the process
/// except towards PostgreSQL and Kafka Connect.
#[derive(Clone, PartialEq, Eq)]
pub struct DbTarget {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    /// The password itself (resolved from `secret` when there is one).
    pub password: String,
    /// Where the password comes from, when given by reference.
    pub secret: Option<SecretRef>,
    pub sslmode: SslMode,
    /// The CA bundle, with a verifying `sslmode` (validated: parses, and loads at creation).
    pub sslrootcert: Option<RootCert>,
}

impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("secret", &self.secret)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .finish()
    }
}

impl DbTarget {
    /// The TLS settings of the sink's connections.
    pub fn tls(&self) -> TlsSettings {
        TlsSettings {
            sslmode: self.sslmode,
            sslrootcert: self.sslrootcert.clone(),
        }
    }
    /// `host:port/database`, for messages and metric labels.
    pub fn describe(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }
    /// `host:port`: the PostgreSQL cluster (replication slots are cluster-wide).
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A table as `schema.table`, both parts validated identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

impl TableName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (schema, table) = s
            .split_once('.')
            .ok_or_else(|| format!("table '{s}' must be written schema.table"))?;
        for part in [schema, table] {
            if !is_identifier(part) {
                return Err(format!(
                    "table '{s}': '{part}' is not a plain identifier (letters, digits and _, not starting with a digit, at most 63 bytes)"
                ));
            }
        }
        Ok(Self {
            schema: schema.into(),
            table: table.into(),
        })
    }

    /// The name as written, `schema.table`.
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// A regex matching exactly this table in Debezium's `table.include.list`.
    pub fn include_regex(&self) -> String {
        format!("{}\\.{}", self.schema, self.table)
    }

    /// The name quoted for SQL: `"schema"."table"` (identifiers are validated, quotes doubled
    /// regardless).
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
}

/// Quotes an identifier for SQL.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// Whether `name` is a valid source name (`[a-z0-9_]{1,40}`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks a source name from a path or a body.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid source name {name:?}: use 1 to {MAX_NAME_LEN} characters among a-z, 0-9 and _"
        ))
        .with_field("name"))
    }
}

/// Checks a deployment id: 1 to [`MAX_DEPLOYMENT_ID_LEN`] characters among a-z and 0-9. No `_`:
/// with one, deployment `a` would own `tw_a_b_orders`, the slot of source `orders` of `a_b`.
pub fn check_deployment_id(id: &str) -> Result<(), String> {
    if !id.is_empty()
        && id.len() <= MAX_DEPLOYMENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "invalid deployment id {id:?}: use 1 to {MAX_DEPLOYMENT_ID_LEN} characters among a-z and 0-9 (TUMBLEWEED_DEPLOYMENT_ID)"
        ))
    }
}

/// Prefix of the slots and publications a deployment creates: `tw_<deployment>_`. A slot
/// with this prefix and no source claiming it is this deployment's orphan.
pub fn slot_prefix(deployment: &str) -> String {
    format!("tw_{deployment}_")
}

/// Slot and publication name of a source created by `deployment`.
pub fn slot_name(deployment: &str, source: &str) -> String {
    format!("{}{source}", slot_prefix(deployment))
}

/// Slot and publication name of a source created before deployment ids.
pub fn legacy_slot_name(source: &str) -> String {
    format!("{LEGACY_SLOT_PREFIX}{source}")
}

/// Connector name of a source.
pub fn connector_name(source: &str) -> String {
    format!("{CONNECTOR_PREFIX}{source}")
}

/// A validated creation request.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: String,
    /// Slot and publication name ([`slot_name`]).
    pub slot: String,
    pub db: DbTarget,
    pub tables: Vec<TableName>,
    pub mode: Mode,
    pub heartbeat_interval_s: u64,
    pub snapshot_mode: String,
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::bad_request(format!("{field} is required")).with_field(field));
    }
    if value.len() > max || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::bad_request(format!(
            "{field} must be at most {max} characters without spaces or control characters"
        ))
        .with_field(field));
    }
    Ok(())
}

impl CreateSource {
    /// Fills `sslmode` and `sslrootcert` the request left out with the sink's defaults
    /// (`TUMBLEWEED_SOURCE_DEFAULT_SSLMODE`, `TUMBLEWEED_SOURCE_DEFAULT_SSLROOTCERT`). The
    /// default bundle only applies when the resulting mode verifies: a request for `require`
    /// on a sink whose default is `verify-full` + `rds` stays valid.
    pub fn with_defaults(mut self, sslmode: SslMode, sslrootcert: Option<&str>) -> Self {
        if self.sslmode.is_none() {
            self.sslmode = Some(sslmode.as_str().to_string());
        }
        let verifies = self
            .sslmode
            .as_deref()
            .and_then(SslMode::parse)
            .is_some_and(SslMode::verifies);
        if self.sslrootcert.is_none() && verifies {
            self.sslrootcert = sslrootcert.map(str::to_string);
        }
        self
    }

    /// Validates the request; the network is not touched, but an `sslrootcert` file is read
    /// (it must exist and parse). `deployment` names the slot (see [`slot_name`]).
    pub fn validate(self, deployment: &str) -> Result<SourceSpec, ApiError> {
        check_name(&self.name)?;
        check_text("host", &self.host, 253)?;
        if self.port == 0 {
            return Err(
                ApiError::bad_request("port must be between 1 and 65535").with_field("port")
            );
        }
        check_text("database", &self.database, 63)?;
        check_text("user", &self.user, 63)?;
        if self.password.len() > 1024 || self.password.chars().any(|c| c.is_control()) {
            return Err(ApiError::bad_request(
                "password must be at most 1024 characters without control characters",
            )
            .with_field("password"));
        }
        let (password, secret) = match self.password_secret.as_deref() {
            None => (self.password, None),
            Some(_) if !self.password.is_empty() => {
                return Err(ApiError::bad_request(
                    "give either password or password_secret, not both",
                )
                .with_field("password_secret"))
            }
            Some(text) => {
                let r = SecretRef::parse(text)
                    .map_err(|m| ApiError::bad_request(m).with_field("password_secret"))?;
                let value = r
                    .resolve()
                    .map_err(|m| ApiError::bad_request(m).with_field("password_secret"))?;
                (value, Some(r))
            }
        };
        let raw_tables = if self.tables.is_empty() && self.mode == Mode::Outbox {
            vec![DEFAULT_OUTBOX_TABLE.to_string()]
        } else {
            self.tables
        };
        if raw_tables.is_empty() {
            return Err(
                ApiError::bad_request("tables: list at least one schema.table")
                    .with_field("tables"),
            );
        }
        if self.mode == Mode::Outbox && raw_tables.len() != 1 {
            return Err(ApiError::bad_request(
                "tables: outbox mode takes exactly one outbox table",
            )
            .with_field("tables"));
        }
        let mut tables: Vec<TableName> = Vec::with_capacity(raw_tables.len());
        for t in &raw_tables {
            let t =
                TableName::parse(t).map_err(|m| ApiError::bad_request(m).with_field("tables"))?;
            if t.dotted() == HEARTBEAT_TABLE {
                return Err(ApiError::bad_request(format!(
                    "tables: {HEARTBEAT_TABLE} is Tumbleweed's heartbeat table and is captured automatically"
                ))
                .with_field("tables"));
            }
            if tables.contains(&t) {
                return Err(ApiError::bad_request(format!(
                    "tables: {} is listed twice",
                    t.dotted()
                ))
                .with_field("tables"));
            }
            tables.push(t);
        }
        if self.heartbeat_interval_s > 86_400 {
            return Err(ApiError::bad_request(
                "heartbeat_interval_s must be between 0 (off) and 86400",
            )
            .with_field("heartbeat_interval_s"));
        }
        if !SNAPSHOT_MODES.contains(&self.snapshot_mode.as_str()) {
            return Err(ApiError::bad_request(format!(
                "snapshot_mode must be one of {}",
                SNAPSHOT_MODES.join(", ")
            ))
            .with_field("snapshot_mode"));
        }
        let sslmode = match self.sslmode.as_deref() {
            None => SslMode::default(),
            Some(text) => SslMode::parse(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "sslmode {text:?} must be one of {}",
                    SslMode::ALL.map(SslMode::as_str).join(", ")
                ))
                .with_field("sslmode")
            })?,
        };
        let tls = TlsSettings::new(sslmode, self.sslrootcert.as_deref())
            .map_err(|e| ApiError::bad_request(e.to_string()).with_field(e.field()))?;
        Ok(SourceSpec {
            slot: slot_name(deployment, &self.name),
            name: self.name,
            db: DbTarget {
                host: self.host,
                port: self.port,
                database: self.database,
                user: self.user,
                password,
                secret,
                sslmode: tls.sslmode,
                sslrootcert: tls.sslrootcert,
            },
            tables,
            mode: self.mode,
            heartbeat_interval_s: self.heartbeat_interval_s,
            snapshot_mode: self.snapshot_mode,
        })
    }
}

impl SourceSpec {
    pub fn slot(&self) -> String {
        self.slot.clone()
    }
    pub fn connector(&self) -> String {
        connector_name(&self.name)
    }
}

/// One connector task as reported by Kafka Connect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskState {
    pub id: i64,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trace: Option<String>,
}

/// A source as the API shows it: its configuration (never the password) and its state.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub sslmode: SslMode,
    /// `rds` or the CA bundle's path (verifying modes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sslrootcert: Option<String>,
    pub tables: Vec<String>,
    pub mode: Mode,
    pub heartbeat_interval_s: u64,
    pub snapshot_mode: String,
    pub connector: String,
    pub slot: String,
    pub publication: String,
    /// Topics are `<topic_prefix>.<schema>.<table>` (tables mode) or
    /// `<topic_prefix>.outbox.<aggregatetype>` (outbox mode).
    pub topic_prefix: String,
    /// The table topics (tables mode; empty in outbox mode, where topics follow aggregate types).
    pub topics: Vec<String>,
    pub heartbeat_topic: Option<String>,
    pub connector_state: String,
    pub tasks: Vec<TaskState>,
    /// Where the password comes from when given by reference (`env:…`, `file:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    /// False for a Tumbleweed connector that Kafka Connect still has but no declaration
    /// backs: a deletion that did not finish (DELETE it again).
    pub declared: bool,
    /// What the reconciler last did to this source's connector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciler: Option<super::reconcile::SourceReconcile>,
}

/// Outcome of `DELETE /v1/sources/{name}`, one word per resource.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeleteReport {
    /// `deleted`, `absent`, `stopped` (left registered, stopped, so a retry can finish).
    pub connector: String,
    /// `dropped`, `absent`, `unknown` (database unreachable) or `left` (still there).
    pub slot: String,
    /// `dropped`, `absent`, `unknown` or `left`.
    pub publication: String,
}

/// Severity of a slot's retained WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SlotStatus {
    Ok,
    Warn,
    Critical,
}

impl SlotStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotStatus::Ok => "ok",
            SlotStatus::Warn => "warn",
            SlotStatus::Critical => "critical",
        }
    }
}

/// A replication slot as the WAL guard reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlotView {
    pub slot: String,
    /// `host:port` of the PostgreSQL cluster.
    pub server: String,
    /// The slot's database (`null` for physical slots).
    pub database: Option<String>,
    pub slot_type: String,
    pub plugin: Option<String>,
    pub active: bool,
    pub active_pid: Option<i32>,
    /// WAL kept for the slot: `pg_current_wal_lsn() - restart_lsn`.
    pub retained_bytes: Option<i64>,
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<i64>,
    /// Named with this deployment's prefix (`tw_<deployment>_…`).
    pub owned: bool,
    /// The declared source or the connector whose config names this slot, when there is one.
    pub source: Option<String>,
    /// An owned slot that no declared source and no connector names: it may be dropped, with
    /// its name typed back. Never set while Kafka Connect cannot be read.
    pub orphan: bool,
    /// The source whose database connection reached this slot: use it in
    /// `DELETE /v1/slots/{via}/{slot}`.
    pub via: String,
    pub status: SlotStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, tables: &[&str]) -> CreateSource {
        serde_json::from_value(serde_json::json!({
            "name": name, "host": "db", "database": "app", "user": "u", "password": "secret",
            "tables": tables,
        }))
        .unwrap()
    }

    #[test]
    fn names_are_restricted() {
        assert!(valid_name("orders_1"));
        for bad in ["", "a b", "a'b", "A", "a-b", &"x".repeat(41)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        let e = req("bad name", &["public.t"])
            .validate("local")
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
    }

    #[test]
    fn tables_are_identifiers() {
        let s = req("a", &["public.items", "sales.Orders"])
            .validate("local")
            .unwrap();
        assert_eq!(s.tables[1].include_regex(), "sales\\.Orders");
        assert_eq!(s.tables[1].quoted(), "\"sales\".\"Orders\"");
        for bad in [
            "items",
            "public.it'ems",
            "public.a b",
            "public.1a",
            "a.b.c",
            "public.tumbleweed_heartbeat",
        ] {
            let e = req("a", &[bad]).validate("local").unwrap_err();
            assert_eq!(e.field.as_deref(), Some("tables"), "{bad}");
        }
        assert!(req("a", &[]).validate("local").is_err());
    }

    #[test]
    fn outbox_defaults_its_table_and_passwords_are_redacted() {
        let mut r = req("a", &[]);
        r.mode = Mode::Outbox;
        r.password = "hunter2".into();
        let s = r.clone().validate("local").unwrap();
        assert_eq!(s.tables[0].dotted(), DEFAULT_OUTBOX_TABLE);
        assert!(!format!("{r:?}").contains("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn tls_settings_are_validated_with_the_field_named() {
        let mut r = req("a", &["public.t"]);
        assert_eq!(
            r.clone().validate("local").unwrap().db.sslmode,
            SslMode::Prefer
        );
        r.sslmode = Some("verify-full".into());
        let e = r.clone().validate("local").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sslrootcert"));
        assert!(e.message.contains("needs sslrootcert"), "{}", e.message);
        r.sslrootcert = Some("rds".into());
        let s = r.clone().validate("local").unwrap();
        assert_eq!(s.db.sslrootcert, Some(RootCert::Rds));
        r.sslrootcert = Some("ca.pem".into());
        let e = r.clone().validate("local").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sslrootcert"));
        r.sslmode = Some("verify".into());
        let e = r.clone().validate("local").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sslmode"));
        assert!(
            e.message.contains("verify-ca, verify-full"),
            "{}",
            e.message
        );
    }

    #[test]
    fn defaults_fill_only_what_the_request_left_out() {
        let r = req("a", &["public.t"]).with_defaults(SslMode::VerifyFull, Some("rds"));
        let s = r.validate("local").unwrap();
        assert_eq!(
            (s.db.sslmode, s.db.sslrootcert),
            (SslMode::VerifyFull, Some(RootCert::Rds))
        );
        let mut r = req("a", &["public.t"]);
        r.sslmode = Some("require".into());
        let s = r
            .with_defaults(SslMode::VerifyFull, Some("rds"))
            .validate("local")
            .unwrap();
        assert_eq!((s.db.sslmode, s.db.sslrootcert), (SslMode::Require, None));
    }
}
