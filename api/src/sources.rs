//! `/v1/sources` and `/v1/slots`: what an operator sends, and what the sink answers.
//!
//! States and outcomes are enums, not strings: a client matches on `ConnectorState::Running`
//! rather than guessing which of `connector_state`, `state` or `status` a version used. Kafka
//! Connect's own state words are kept (`RUNNING`, `FAILED`, …) so they read the same in
//! Connect's REST API, the sink's, and the `tumbleweed_source_connector_state` metric.
//!
//! Passwords live only in [`CreateSource`], whose `Debug` redacts them; no response type has a
//! password field.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::FieldError;
use crate::names::{check_source_name, TableName};

/// The shared heartbeat table created in every source database (one row per source).
pub const HEARTBEAT_TABLE: &str = "public.tumbleweed_heartbeat";

/// The default outbox table in `outbox` mode.
pub const DEFAULT_OUTBOX_TABLE: &str = "public.outbox";

/// Debezium snapshot modes a source may ask for.
pub const SNAPSHOT_MODES: [&str; 5] = [
    "initial",
    "no_data",
    "initial_only",
    "when_needed",
    "always",
];

/// Longest heartbeat interval, seconds.
pub const MAX_HEARTBEAT_INTERVAL_S: u64 = 86_400;

/// How a source's tables become topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
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

/// TLS towards the source database, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub const ALL: [SslMode; 5] = [
        SslMode::Disable,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the server certificate is verified (and so `sslrootcert` is needed).
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl std::str::FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| {
            format!(
                "sslmode {s:?} is not one of {}",
                Self::ALL.map(SslMode::as_str).join(", ")
            )
        })
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    /// `[a-z0-9_]{1,40}`: part of the slot, publication, topic and connector names.
    #[schema(pattern = "^[a-z0-9_]{1,40}$")]
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    #[schema(minimum = 1, default = 5432)]
    pub port: u16,
    pub database: String,
    pub user: String,
    /// The password in plain text: refused unless the sink runs with
    /// `TUMBLEWEED_ALLOW_PLAINTEXT_PASSWORD=true` (Connect would store it). Prefer
    /// `password_secret`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// The password by reference: `env:TUMBLEWEED_SECRET_<KEY>` or `file:<path inside
    /// TUMBLEWEED_SECRETS_DIR>`, read by the sink and the Connect workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    /// `schema.table` entries (tables mode), or the one outbox table (outbox mode, default
    /// `public.outbox`).
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub mode: Mode,
    /// Seconds between heartbeats; 0 turns the heartbeat off.
    #[serde(default = "default_heartbeat")]
    #[schema(maximum = 86400, default = 60)]
    pub heartbeat_interval_s: u64,
    /// One of `initial`, `no_data`, `initial_only`, `when_needed`, `always`.
    #[serde(default = "default_snapshot_mode")]
    #[schema(default = "initial")]
    pub snapshot_mode: String,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full` (kept as text so that a
    /// wrong value is a 400 naming the field); the sink's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<String>,
    /// The CAs that verify the server (`verify-ca`, `verify-full`): an absolute path to a PEM
    /// bundle, or `rds` for the Amazon RDS bundle. The sink's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// What [`CreateSource::check`] makes of a request: its tables parsed and its `sslmode` read.
#[derive(Debug, Clone)]
pub struct CheckedSource {
    pub tables: Vec<TableName>,
    pub sslmode: SslMode,
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, format!("{field} is required")));
    }
    if value.len() > max || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(FieldError::new(
            field,
            format!(
                "{field} must be at most {max} characters without spaces or control characters"
            ),
        ));
    }
    Ok(())
}

impl CreateSource {
    /// Every rule that needs nothing but the request, in the order a form shows them. The
    /// sink then resolves the secret, loads the CA bundle and asks the database.
    pub fn check(&self) -> Result<CheckedSource, FieldError> {
        check_source_name(&self.name)?;
        check_text("host", &self.host, 253)?;
        if self.port == 0 {
            return Err(FieldError::new("port", "port must be between 1 and 65535"));
        }
        check_text("database", &self.database, 63)?;
        check_text("user", &self.user, 63)?;
        if self.password.len() > 1024 || self.password.chars().any(|c| c.is_control()) {
            return Err(FieldError::new(
                "password",
                "password must be at most 1024 characters without control characters",
            ));
        }
        if self.password_secret.is_some() && !self.password.is_empty() {
            return Err(FieldError::new(
                "password_secret",
                "give either password or password_secret, not both",
            ));
        }
        let raw_tables = if self.tables.is_empty() && self.mode == Mode::Outbox {
            vec![DEFAULT_OUTBOX_TABLE.to_string()]
        } else {
            self.tables.clone()
        };
        if raw_tables.is_empty() {
            return Err(FieldError::new(
                "tables",
                "tables: list at least one schema.table",
            ));
        }
        if self.mode == Mode::Outbox && raw_tables.len() != 1 {
            return Err(FieldError::new(
                "tables",
                "tables: outbox mode takes exactly one outbox table",
            ));
        }
        let mut tables: Vec<TableName> = Vec::with_capacity(raw_tables.len());
        for t in &raw_tables {
            let t = TableName::parse(t).map_err(|m| FieldError::new("tables", m))?;
            if t.dotted() == HEARTBEAT_TABLE {
                return Err(FieldError::new(
                    "tables",
                    format!("tables: {HEARTBEAT_TABLE} is Tumbleweed's heartbeat table and is captured automatically"),
                ));
            }
            if tables.contains(&t) {
                return Err(FieldError::new(
                    "tables",
                    format!("tables: {} is listed twice", t.dotted()),
                ));
            }
            tables.push(t);
        }
        if self.heartbeat_interval_s > MAX_HEARTBEAT_INTERVAL_S {
            return Err(FieldError::new(
                "heartbeat_interval_s",
                "heartbeat_interval_s must be between 0 (off) and 86400",
            ));
        }
        if !SNAPSHOT_MODES.contains(&self.snapshot_mode.as_str()) {
            return Err(FieldError::new(
                "snapshot_mode",
                format!("snapshot_mode must be one of {}", SNAPSHOT_MODES.join(", ")),
            ));
        }
        let sslmode = match self.sslmode.as_deref() {
            None => SslMode::default(),
            Some(text) => SslMode::parse(text).ok_or_else(|| {
                FieldError::new(
                    "sslmode",
                    format!(
                        "sslmode {text:?} must be one of {}",
                        SslMode::ALL.map(SslMode::as_str).join(", ")
                    ),
                )
            })?,
        };
        Ok(CheckedSource { tables, sslmode })
    }
}

/// A connector's or a task's state: Kafka Connect's words, and `UNKNOWN` while Connect does
/// not answer or reports a state this version does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConnectorState {
    Running,
    Paused,
    Stopped,
    Failed,
    Unassigned,
    Restarting,
    Unknown,
}

impl ConnectorState {
    /// Kafka Connect's word for the state (anything else is `UNKNOWN`).
    pub fn parse(s: &str) -> Self {
        match s {
            "RUNNING" => Self::Running,
            "PAUSED" => Self::Paused,
            "STOPPED" => Self::Stopped,
            "FAILED" => Self::Failed,
            "UNASSIGNED" => Self::Unassigned,
            "RESTARTING" => Self::Restarting,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Stopped => "STOPPED",
            Self::Failed => "FAILED",
            Self::Unassigned => "UNASSIGNED",
            Self::Restarting => "RESTARTING",
            Self::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for ConnectorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One connector task as reported by Kafka Connect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct TaskState {
    pub id: i64,
    pub state: ConnectorState,
    /// The task's stack trace, when it failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trace: Option<String>,
}

/// What the reconciler did to a source's connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileAction {
    /// The connector was missing from Connect and was created again from the declaration.
    Recreated,
    /// The connector's config differed from the declaration and was put back.
    ConfigRestored,
    /// A failed connector or task was restarted.
    Restarted,
    /// The connector is missing and cannot be recreated (for example its secret is gone).
    CannotRecreate,
    /// A reconciler step failed; `detail` says which.
    Failed,
}

impl ReconcileAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recreated => "recreated",
            Self::ConfigRestored => "config_restored",
            Self::Restarted => "restarted",
            Self::CannotRecreate => "cannot_recreate",
            Self::Failed => "failed",
        }
    }

    /// A complaint rather than a repair.
    pub fn is_complaint(self) -> bool {
        matches!(self, Self::Failed | Self::CannotRecreate)
    }
}

/// One thing the reconciler did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReconcileEvent {
    /// When (ms since the epoch).
    pub at_ms: u64,
    pub action: ReconcileAction,
    pub detail: String,
}

/// What the API shows of the reconciler for one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceReconcile {
    /// When the last pass looked at this source (ms since the epoch); null before the first.
    pub last_reconciled_ms: Option<u64>,
    /// Most recent first.
    pub actions: Vec<ReconcileEvent>,
}

/// A source as the API shows it: its configuration (never the password) and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceView {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub sslmode: SslMode,
    /// `rds` or the CA bundle's path (verifying modes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    pub connector_state: ConnectorState,
    pub tasks: Vec<TaskState>,
    /// Where the password comes from when given by reference (`env:…`, `file:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    /// False for a Tumbleweed connector that Kafka Connect still has but no declaration
    /// backs: a deletion that did not finish (DELETE it again).
    pub declared: bool,
    /// What the reconciler last did to this source's connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciler: Option<SourceReconcile>,
}

/// `GET /v1/sources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceList {
    pub sources: Vec<SourceView>,
    /// Why Kafka Connect could not be read (states are then `UNKNOWN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_error: Option<String>,
}

/// What happened to a source's connector on delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorOutcome {
    /// Still registered (and maybe running): the delete failed before stopping it.
    Present,
    Deleted,
    Absent,
    /// Left registered and stopped, so a retry of the delete can finish.
    Stopped,
}

/// What happened to a slot or a publication on delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DropOutcome {
    Dropped,
    Absent,
    /// The database could not be reached.
    Unknown,
    /// Still there.
    Left,
}

/// Outcome of `DELETE /v1/sources/{name}`, one word per resource. A failed delete (502, 503)
/// carries the same fields and an `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeleteReport {
    pub connector: ConnectorOutcome,
    pub slot: DropOutcome,
    pub publication: DropOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Answer of a `POST /v1/sources` whose connector failed to start: the error and what was
/// cleaned up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateFailed {
    pub error: String,
    pub cleanup: DeleteReport,
}

/// Severity of a slot's retained WAL.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash, ToSchema,
)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

/// The WAL thresholds of slot statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalThresholds {
    pub warn_bytes: u64,
    pub critical_bytes: u64,
}

/// A source database the WAL guard could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScanError {
    /// `host:port` of the PostgreSQL cluster.
    pub server: String,
    /// The sources whose connection failed.
    pub sources: Vec<String>,
    pub error: String,
}

/// `GET /v1/slots`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SlotList {
    pub slots: Vec<SlotView>,
    pub thresholds: WalThresholds,
    pub errors: Vec<ScanError>,
}

/// Query of `DELETE /v1/slots/{via}/{slot}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DropQuery {
    /// The slot's name, typed back: dropping a slot cannot be undone.
    pub confirm: Option<String>,
}

/// `DELETE /v1/slots/{via}/{slot}?confirm={slot}`: what was dropped, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SlotDropped {
    pub slot: DropOutcome,
    pub publication: DropOutcome,
    pub server: String,
    pub database: String,
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
    fn each_rule_names_its_field() {
        assert!(req("a", &["public.t"]).check().is_ok());
        assert_eq!(
            req("bad name", &["public.t"]).check().unwrap_err().field,
            "name"
        );
        for bad in ["items", "public.it'ems", "public.tumbleweed_heartbeat"] {
            assert_eq!(
                req("a", &[bad]).check().unwrap_err().field,
                "tables",
                "{bad}"
            );
        }
        assert_eq!(
            req("a", &["public.t", "public.t"])
                .check()
                .unwrap_err()
                .field,
            "tables"
        );
        let mut r = req("a", &["public.t"]);
        r.sslmode = Some("verify".into());
        let e = r.check().unwrap_err();
        assert_eq!(e.field, "sslmode");
        assert!(
            e.message.contains("verify-ca, verify-full"),
            "{}",
            e.message
        );
        let mut r = req("a", &["public.t"]);
        r.password_secret = Some("env:TUMBLEWEED_SECRET_X".into());
        assert_eq!(r.check().unwrap_err().field, "password_secret");
        let mut r = req("a", &["public.t"]);
        r.snapshot_mode = "sometimes".into();
        assert_eq!(r.check().unwrap_err().field, "snapshot_mode");
    }

    #[test]
    fn outbox_defaults_its_table_and_passwords_are_redacted() {
        let mut r = req("a", &[]);
        r.mode = Mode::Outbox;
        r.password = "hunter2".into();
        assert_eq!(r.check().unwrap().tables[0].dotted(), DEFAULT_OUTBOX_TABLE);
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn connector_states_read_connects_words() {
        for s in [
            ConnectorState::Running,
            ConnectorState::Failed,
            ConnectorState::Stopped,
        ] {
            assert_eq!(ConnectorState::parse(s.as_str()), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(ConnectorState::parse("DESTROYED"), ConnectorState::Unknown);
    }
}
