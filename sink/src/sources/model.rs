//! The sources API's types, from the shared contract (`tumbleweed-api`), and what the sink
//! adds to a request before it touches anything: the secret's value, the CA bundle, the slot
//! name of this deployment.
//!
//! Design: every rule that needs nothing but the request lives in `tumbleweed_api` (the helper
//! and the OpenAPI document use the same copy); [`validate`] runs it, then resolves what needs
//! the sink's environment. Table names are never pasted into SQL (catalog lookups bind them as
//! parameters) and, in Debezium's regex-based `table.include.list`, the dot is escaped so a
//! name matches only itself ([`TableSql`]). Every validation failure names the offending field.
//!
//! Passwords live only in [`DbTarget`] and [`CreateSource`], whose `Debug` impls redact them, and
//! no response type has a password field.

use super::secret::SecretRef;
use super::tls::{RootCert, TlsSettings};
use crate::error::ApiError;

pub use tumbleweed_api::names::{
    check_deployment_id, connector_name, legacy_slot_name, slot_name, slot_prefix,
    valid_source_name as valid_name, TableName, CONNECTOR_PREFIX, LEGACY_SLOT_PREFIX,
    MAX_DEPLOYMENT_ID_LEN, MAX_SOURCE_NAME_LEN as MAX_NAME_LEN,
};
pub use tumbleweed_api::sources::{
    ConnectorOutcome, ConnectorState, CreateSource, DeleteReport, DropOutcome, Mode, SlotStatus,
    SlotView, SourceView, SslMode, TaskState, DEFAULT_OUTBOX_TABLE, HEARTBEAT_TABLE,
    SNAPSHOT_MODES,
};

/// Columns the Debezium outbox event router reads.
pub const OUTBOX_COLUMNS: [&str; 5] = ["id", "aggregatetype", "aggregateid", "type", "payload"];

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

/// How a validated table name is written for SQL and for Debezium.
pub trait TableSql {
    /// A regex matching exactly this table in Debezium's `table.include.list`.
    fn include_regex(&self) -> String;
    /// The name quoted for SQL: `"schema"."table"` (identifiers are validated, quotes doubled
    /// regardless).
    fn quoted(&self) -> String;
}

impl TableSql for TableName {
    fn include_regex(&self) -> String {
        format!("{}\\.{}", self.schema, self.table)
    }
    fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
}

/// Quotes an identifier for SQL.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Checks a source name from a path or a body.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    Ok(tumbleweed_api::names::check_source_name(name)?)
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

/// Fills `sslmode` and `sslrootcert` the request left out with the sink's defaults
/// (`TUMBLEWEED_SOURCE_DEFAULT_SSLMODE`, `TUMBLEWEED_SOURCE_DEFAULT_SSLROOTCERT`). The default
/// bundle only applies when the resulting mode verifies: a request for `require` on a sink
/// whose default is `verify-full` + `rds` stays valid.
pub fn with_defaults(
    mut req: CreateSource,
    sslmode: SslMode,
    sslrootcert: Option<&str>,
) -> CreateSource {
    if req.sslmode.is_none() {
        req.sslmode = Some(sslmode.as_str().to_string());
    }
    let verifies = req
        .sslmode
        .as_deref()
        .and_then(SslMode::parse)
        .is_some_and(SslMode::verifies);
    if req.sslrootcert.is_none() && verifies {
        req.sslrootcert = sslrootcert.map(str::to_string);
    }
    req
}

/// Validates a request: the shared rules ([`CreateSource::check`]), then the secret's value
/// and the CA bundle (an `sslrootcert` file must exist and parse). The network is not touched.
/// `deployment` names the slot (see [`slot_name`]).
pub fn validate(req: CreateSource, deployment: &str) -> Result<SourceSpec, ApiError> {
    let checked = req.check()?;
    let (password, secret) = match req.password_secret.as_deref() {
        None => (req.password, None),
        Some(text) => {
            let r = SecretRef::parse(text)
                .map_err(|m| ApiError::bad_request(m).with_field("password_secret"))?;
            let value = r
                .resolve()
                .map_err(|m| ApiError::bad_request(m).with_field("password_secret"))?;
            (value, Some(r))
        }
    };
    let tls = TlsSettings::new(checked.sslmode, req.sslrootcert.as_deref())
        .map_err(|e| ApiError::bad_request(e.to_string()).with_field(e.field()))?;
    Ok(SourceSpec {
        slot: slot_name(deployment, &req.name),
        name: req.name,
        db: DbTarget {
            host: req.host,
            port: req.port,
            database: req.database,
            user: req.user,
            password,
            secret,
            sslmode: tls.sslmode,
            sslrootcert: tls.sslrootcert,
        },
        tables: checked.tables,
        mode: req.mode,
        heartbeat_interval_s: req.heartbeat_interval_s,
        snapshot_mode: req.snapshot_mode,
    })
}

impl SourceSpec {
    pub fn slot(&self) -> String {
        self.slot.clone()
    }
    pub fn connector(&self) -> String {
        connector_name(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Ext: Sized {
        fn validate_in(self, deployment: &str) -> Result<SourceSpec, ApiError>;
        fn with_defaults(self, sslmode: SslMode, sslrootcert: Option<&str>) -> Self;
    }
    impl Ext for CreateSource {
        fn validate_in(self, deployment: &str) -> Result<SourceSpec, ApiError> {
            validate(self, deployment)
        }
        fn with_defaults(self, sslmode: SslMode, sslrootcert: Option<&str>) -> Self {
            with_defaults(self, sslmode, sslrootcert)
        }
    }

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
            .validate_in("local")
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
    }

    #[test]
    fn tables_are_identifiers() {
        let s = req("a", &["public.items", "sales.Orders"])
            .validate_in("local")
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
            let e = req("a", &[bad]).validate_in("local").unwrap_err();
            assert_eq!(e.field.as_deref(), Some("tables"), "{bad}");
        }
        assert!(req("a", &[]).validate_in("local").is_err());
    }

    #[test]
    fn outbox_defaults_its_table_and_passwords_are_redacted() {
        let mut r = req("a", &[]);
        r.mode = Mode::Outbox;
        r.password = "hunter2".into();
        let s = r.clone().validate_in("local").unwrap();
        assert_eq!(s.tables[0].dotted(), DEFAULT_OUTBOX_TABLE);
        assert!(!format!("{r:?}").contains("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn tls_settings_are_validated_with_the_field_named() {
        let mut r = req("a", &["public.t"]);
        assert_eq!(
            r.clone().validate_in("local").unwrap().db.sslmode,
            SslMode::Prefer
        );
        r.sslmode = Some("verify-full".into());
        let e = r.clone().validate_in("local").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sslrootcert"));
        assert!(e.message.contains("needs sslrootcert"), "{}", e.message);
        r.sslrootcert = Some("rds".into());
        let s = r.clone().validate_in("local").unwrap();
        assert_eq!(s.db.sslrootcert, Some(RootCert::Rds));
        r.sslrootcert = Some("ca.pem".into());
        let e = r.clone().validate_in("local").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sslrootcert"));
        r.sslmode = Some("verify".into());
        let e = r.clone().validate_in("local").unwrap_err();
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
        let s = r.validate_in("local").unwrap();
        assert_eq!(
            (s.db.sslmode, s.db.sslrootcert),
            (SslMode::VerifyFull, Some(RootCert::Rds))
        );
        let mut r = req("a", &["public.t"]);
        r.sslmode = Some("require".into());
        let s = r
            .with_defaults(SslMode::VerifyFull, Some("rds"))
            .validate_in("local")
            .unwrap();
        assert_eq!((s.db.sslmode, s.db.sslrootcert), (SslMode::Require, None));
    }
}
