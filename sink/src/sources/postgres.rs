//! The source database side: connecting, readiness checks, the heartbeat table, dropping a
//! source's slot and publication, and listing replication slots for the WAL guard.
//!
//! Design: every check is one catalog query with bound parameters (table and role names are
//! never spliced into SQL; the few identifiers that must appear in DDL are validated and quoted)
//! and fails with one message saying what is wrong and how to fix it, tagged with the request
//! field it concerns. Connection failures are classified from SQLSTATE codes (bad password,
//! unknown role or database), the certificate the TLS verifier refused (a name the certificate
//! does not cover: `host`; a CA not in the bundle: `sslrootcert`, see [`super::tls`]) or the
//! I/O error (unreachable host). Connections are short-lived:
//! one per API call or WAL guard pass, with a connect timeout, so an unreachable database never
//! holds a request for long.
//!
//! Dropping a slot follows what RDS taught: a slot cannot be dropped while a walsender uses it,
//! so the caller first stops the connector, then [`release_slot`] waits for the slot to turn
//! inactive and, after a timeout, terminates the backend still holding it.

use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::StatusCode;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::claims::SlotClaims;
use super::model::{
    quote_ident, DbTarget, Mode, SlotStatus, SlotView, SourceSpec, TableName, HEARTBEAT_TABLE,
    OUTBOX_COLUMNS,
};
use crate::error::ApiError;

/// Time allowed to establish a connection to a source database.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection could not be made, for the user.
#[derive(Debug, Clone)]
pub struct ConnectFailure {
    /// The request field at fault (`host`, `user`, `password`, `database`) if one is.
    pub field: Option<&'static str>,
    pub message: String,
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectFailure {}

impl ConnectFailure {
    pub fn into_api(self, status: StatusCode) -> ApiError {
        let e = ApiError::new(status, self.message);
        match self.field {
            Some(f) => e.with_field(f),
            None => e,
        }
    }
}

/// Opens a connection; its driver runs on a spawned task that ends with the client.
pub async fn connect(db: &DbTarget) -> Result<Client, ConnectFailure> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&db.host)
        .port(db.port)
        .dbname(&db.database)
        .user(&db.user)
        .password(&db.password)
        .application_name("tumbleweed-sink")
        .connect_timeout(CONNECT_TIMEOUT);
    // The bundle is read per connection: a file replaced on disk (CA rotation) is picked up.
    let tls = db.tls().apply(&mut cfg).map_err(|e| ConnectFailure {
        field: Some(e.field()),
        message: e.to_string(),
    })?;
    let attempt =
        tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), cfg.connect(tls)).await;
    let (client, conn) = match attempt {
        Err(_) => {
            return Err(ConnectFailure {
                field: Some("host"),
                message: format!(
                    "cannot reach PostgreSQL at {}: timed out after {CONNECT_TIMEOUT:?}",
                    db.server()
                ),
            })
        }
        Ok(Err(e)) => return Err(classify(db, &e)),
        Ok(Ok(pair)) => pair,
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn classify(db: &DbTarget, e: &tokio_postgres::Error) -> ConnectFailure {
    if let Some(dbe) = e.as_db_error() {
        let code = dbe.code();
        let (field, message) = if *code == SqlState::INVALID_PASSWORD {
            (
                Some("password"),
                format!(
                    "password authentication failed for user {:?} on {}",
                    db.user,
                    db.server()
                ),
            )
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && dbe.message().contains("no encryption")
        {
            (Some("sslmode"), format!("PostgreSQL at {} requires TLS (e.g. RDS with rds.force_ssl = 1): use sslmode verify-full (with sslrootcert), prefer or require", db.server()))
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            (
                Some("user"),
                format!(
                    "PostgreSQL at {} refused user {:?}: {}",
                    db.server(),
                    db.user,
                    dbe.message()
                ),
            )
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            (
                Some("database"),
                format!(
                    "database {:?} does not exist on {}",
                    db.database,
                    db.server()
                ),
            )
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            (
                None,
                format!(
                    "PostgreSQL at {} has no free connections: {}",
                    db.server(),
                    dbe.message()
                ),
            )
        } else {
            (
                None,
                format!(
                    "connecting to PostgreSQL at {}: {}",
                    db.describe(),
                    dbe.message()
                ),
            )
        };
        return ConnectFailure { field, message };
    }
    // A certificate the verifier refused: the field to change and the fix.
    if let Some(refusal) = super::tls::explain(e, &db.host, &db.server(), &db.tls()) {
        return ConnectFailure {
            field: refusal.field,
            message: refusal.message,
        };
    }
    let text = e.to_string();
    if text.contains("TLS") || text.contains("tls") {
        let mut cause = text.clone();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(s) = src {
            cause = s.to_string();
            src = s.source();
        }
        return ConnectFailure {
            field: Some("sslmode"),
            message: format!("TLS with PostgreSQL at {} failed: {cause}", db.server()),
        };
    }
    if text.contains("password missing") {
        return ConnectFailure {
            field: Some("password"),
            message: format!(
                "PostgreSQL at {} asks for a password for user {:?} and none was given",
                db.server(),
                db.user
            ),
        };
    }
    // Walk the source chain for the underlying I/O error ("Connection refused", DNS failure).
    let mut cause = String::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        cause = text;
    }
    ConnectFailure {
        field: Some("host"),
        message: format!("cannot reach PostgreSQL at {}: {cause}", db.server()),
    }
}

fn unready(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

fn db_err(what: &str) -> impl FnOnce(tokio_postgres::Error) -> ApiError + '_ {
    move |e| {
        let msg = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string());
        ApiError::new(StatusCode::BAD_GATEWAY, format!("{what}: {msg}"))
    }
}

/// Checks that the database can host the source; the first problem found is returned.
///
/// Order: server settings (`wal_level`), the user's replication right, free slots and WAL
/// senders, name conflicts (slot, publication: 409), then each table (exists, is a table,
/// has a primary key, is owned by the user so the publication can include it; outbox columns).
pub async fn check_readiness(client: &Client, spec: &SourceSpec) -> Result<(), ApiError> {
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'),
                    current_setting('max_replication_slots')::int,
                    (SELECT count(*) FROM pg_replication_slots)::int,
                    current_setting('max_wal_senders')::int,
                    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int,
                    r.rolsuper, r.rolreplication,
                    EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication'
                            AND pg_has_role(current_user, g.oid, 'MEMBER')),
                    has_database_privilege(current_database(), 'CREATE')
             FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await
        .map_err(db_err("reading the server settings"))?;
    let wal_level: String = row.get(0);
    if wal_level != "logical" {
        return Err(unready(format!(
            "wal_level is '{wal_level}' on {}: logical decoding needs wal_level = logical (on RDS set rds.logical_replication = 1 in the parameter group and reboot)",
            spec.db.server()
        )));
    }
    let (superuser, replication, rds_replication, can_create): (bool, bool, bool, bool) =
        (row.get(5), row.get(6), row.get(7), row.get(8));
    if !(superuser || replication || rds_replication) {
        return Err(unready(format!(
            "user {:?} may not replicate: grant it the REPLICATION attribute (ALTER ROLE ... REPLICATION) or, on RDS, the rds_replication role",
            spec.db.user
        ))
        .with_field("user"));
    }
    if !(superuser || can_create) {
        return Err(unready(format!(
            "user {:?} may not create the publication: grant it CREATE on database {:?}",
            spec.db.user, spec.db.database
        ))
        .with_field("user"));
    }
    let (max_slots, used_slots): (i32, i32) = (row.get(1), row.get(2));
    if used_slots >= max_slots {
        return Err(unready(format!(
            "no free replication slot on {}: {used_slots} of max_replication_slots = {max_slots} in use (drop an unused slot or raise the setting)",
            spec.db.server()
        )));
    }
    let (max_senders, used_senders): (i32, i32) = (row.get(3), row.get(4));
    if used_senders >= max_senders {
        return Err(unready(format!(
            "no free WAL sender on {}: {used_senders} of max_wal_senders = {max_senders} in use",
            spec.db.server()
        )));
    }

    let slot = spec.slot();
    let slot_exists = client
        .query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(db_err("reading pg_replication_slots"))?
        .is_some();
    if slot_exists {
        return Err(ApiError::conflict(format!(
            "replication slot {slot} already exists on {}: pick another name, or drop the slot if it is an orphan",
            spec.db.server()
        ))
        .with_field("name"));
    }
    let pub_exists = client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&slot])
        .await
        .map_err(db_err("reading pg_publication"))?
        .is_some();
    if pub_exists {
        return Err(ApiError::conflict(format!(
            "publication {slot} already exists in database {:?}: pick another name, or drop the publication",
            spec.db.database
        ))
        .with_field("name"));
    }

    for table in &spec.tables {
        check_table(client, table, spec.mode, superuser).await?;
    }
    // An existing heartbeat table must be ours (right columns) and publishable by this user.
    if spec.heartbeat_interval_s > 0 {
        let hb = TableName::parse(HEARTBEAT_TABLE).expect("valid");
        if let Some(row) = client
            .query_opt(
                "SELECT pg_has_role(c.relowner, 'USAGE'),
                        EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'source' AND NOT a.attisdropped)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&hb.schema, &hb.table],
            )
            .await
            .map_err(db_err("reading the heartbeat table"))?
        {
            let (owner, has_source): (bool, bool) = (row.get(0), row.get(1));
            if !has_source {
                return Err(unready(format!(
                    "{HEARTBEAT_TABLE} exists but has no 'source' column: it is not Tumbleweed's heartbeat table (rename or drop it)"
                )));
            }
            if !(owner || superuser) {
                return Err(unready(format!(
                    "{HEARTBEAT_TABLE} belongs to another role: user {:?} cannot add it to the publication",
                    spec.db.user
                ))
                .with_field("user"));
            }
        }
    }
    Ok(())
}

async fn check_table(
    client: &Client,
    table: &TableName,
    mode: Mode,
    superuser: bool,
) -> Result<(), ApiError> {
    let name = table.dotted();
    let field = |e: ApiError| e.with_field("tables");
    let row = client
        .query_opt(
            "SELECT c.oid, c.relkind::text,
                    EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
                    pg_has_role(c.relowner, 'USAGE'),
                    has_table_privilege(c.oid, 'SELECT')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema, &table.table],
        )
        .await
        .map_err(db_err("reading pg_class"))?;
    let Some(row) = row else {
        return Err(field(unready(format!("table {name} does not exist"))));
    };
    let (oid, kind, has_pk, owner, select): (u32, String, bool, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    if kind != "r" && kind != "p" {
        return Err(field(unready(format!(
            "{name} is not a table (relkind {kind}); only tables can be published"
        ))));
    }
    if !has_pk {
        return Err(field(unready(format!(
            "table {name} has no primary key: events need a key (add a primary key)"
        ))));
    }
    if !(select || superuser) {
        return Err(field(unready(format!(
            "the user may not SELECT from {name} (needed for the snapshot)"
        ))));
    }
    if !(owner || superuser) {
        return Err(field(unready(format!(
            "the user does not own {name}: only its owner can add it to a publication"
        ))));
    }
    if mode == Mode::Outbox {
        let cols: Vec<String> = client
            .query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped",
                &[&oid],
            )
            .await
            .map_err(db_err("reading the outbox table's columns"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let missing: Vec<&str> = OUTBOX_COLUMNS
            .iter()
            .copied()
            .filter(|c| !cols.iter().any(|x| x == c))
            .collect();
        if !missing.is_empty() {
            return Err(field(unready(format!(
                "outbox table {name} lacks the column(s) {} the outbox event router reads (needs {})",
                missing.join(", "),
                OUTBOX_COLUMNS.join(", ")
            ))));
        }
    }
    Ok(())
}

/// Creates the shared heartbeat table if missing and the source's row.
pub async fn ensure_heartbeat(client: &Client, source: &str) -> Result<(), ApiError> {
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {HEARTBEAT_TABLE} (source text PRIMARY KEY, beat_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await
        .map_err(|e| {
            let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
            unready(format!("cannot create the heartbeat table {HEARTBEAT_TABLE}: {msg}")).with_field("user")
        })?;
    client
        .execute(
            &format!("INSERT INTO {HEARTBEAT_TABLE} (source, beat_at) VALUES ($1, now()) ON CONFLICT (source) DO NOTHING"),
            &[&source],
        )
        .await
        .map_err(db_err("writing the heartbeat row"))?;
    Ok(())
}

/// Removes a source's heartbeat row (the shared table stays).
pub async fn delete_heartbeat_row(client: &Client, source: &str) -> Result<()> {
    let exists: bool = client
        .query_one(
            &format!("SELECT to_regclass('{HEARTBEAT_TABLE}') IS NOT NULL"),
            &[],
        )
        .await?
        .get(0);
    if exists {
        client
            .execute(
                &format!("DELETE FROM {HEARTBEAT_TABLE} WHERE source = $1"),
                &[&source],
            )
            .await
            .context("deleting the heartbeat row")?;
    }
    Ok(())
}

/// `Some(active_pid)` for an existing slot (`Some(None)` when inactive), `None` if absent.
pub async fn slot_holder(client: &Client, slot: &str) -> Result<Option<Option<i32>>> {
    let row = client
        .query_opt(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .context("reading pg_replication_slots")?;
    Ok(row.map(|r| r.get(0)))
}

/// Waits for the slot to be released; after `timeout` terminates the backend holding it and
/// waits a little more. Returns whether the slot exists.
pub async fn release_slot(client: &Client, slot: &str, timeout: Duration) -> Result<bool> {
    let held = |holder: &Option<Option<i32>>| matches!(holder, Some(Some(_)));
    let holder = crate::wait::until(
        timeout,
        Duration::from_millis(100),
        || slot_holder(client, slot),
        |h| !held(h),
    )
    .await?;
    let Some(Some(pid)) = holder else {
        return Ok(holder.is_some());
    };
    tracing::warn!(
        slot,
        pid,
        "slot still active after {timeout:?}: terminating its backend"
    );
    client
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .with_context(|| format!("terminating backend {pid} holding slot {slot}"))?;
    // Give the terminated walsender a moment to let go.
    tokio::time::sleep(Duration::from_millis(200)).await;
    match slot_holder(client, slot).await? {
        Some(Some(pid)) => {
            anyhow::bail!("slot {slot} is still held by backend {pid} after terminating it")
        }
        holder => Ok(holder.is_some()),
    }
}

/// Drops a replication slot; `Ok(false)` if it did not exist.
pub async fn drop_slot(client: &Client, slot: &str) -> Result<bool> {
    match client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_OBJECT) => Ok(false),
        Err(e) => {
            let msg = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string());
            anyhow::bail!("dropping replication slot {slot}: {msg}")
        }
    }
}

/// Drops a publication of the connected database; `Ok(false)` if it did not exist.
pub async fn drop_publication(client: &Client, publication: &str) -> Result<bool> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .context("reading pg_publication")?
        .is_some();
    if exists {
        client
            .batch_execute(&format!(
                "DROP PUBLICATION IF EXISTS {}",
                quote_ident(publication)
            ))
            .await
            .map_err(|e| {
                let msg = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string());
                anyhow::anyhow!("dropping publication {publication}: {msg}")
            })?;
    }
    Ok(exists)
}

/// A replication slot as read from `pg_replication_slots`.
#[derive(Debug, Clone)]
pub struct RawSlot {
    pub slot: String,
    pub slot_type: String,
    pub database: Option<String>,
    pub plugin: Option<String>,
    pub active: bool,
    pub active_pid: Option<i32>,
    pub retained_bytes: Option<i64>,
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<i64>,
}

/// Every replication slot of the cluster, with the WAL it retains.
pub async fn list_slots(client: &Client) -> Result<Vec<RawSlot>> {
    let rows = client
        .query(
            "SELECT slot_name::text, slot_type, database::text, plugin::text, active, active_pid,
                    pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                         ELSE pg_current_wal_lsn() END, restart_lsn)::bigint,
                    wal_status, safe_wal_size
             FROM pg_replication_slots ORDER BY slot_name",
            &[],
        )
        .await
        .context("reading pg_replication_slots")?;
    Ok(rows
        .iter()
        .map(|r| RawSlot {
            slot: r.get(0),
            slot_type: r.get(1),
            database: r.get(2),
            plugin: r.get(3),
            active: r.get(4),
            active_pid: r.get(5),
            retained_bytes: r.get(6),
            wal_status: r.get(7),
            safe_wal_size: r.get(8),
        })
        .collect())
}

/// Severity of a slot from its retained WAL and `wal_status`.
pub fn slot_status(
    retained: Option<i64>,
    wal_status: Option<&str>,
    warn: u64,
    critical: u64,
) -> SlotStatus {
    let bytes = retained.unwrap_or(0).max(0) as u64;
    let by_size = if bytes >= critical {
        SlotStatus::Critical
    } else if bytes >= warn {
        SlotStatus::Warn
    } else {
        SlotStatus::Ok
    };
    // `lost`: the slot is unusable; `unreserved`: WAL it needs is about to be removed.
    let by_state = match wal_status {
        Some("lost") => SlotStatus::Critical,
        Some("unreserved") => SlotStatus::Warn,
        _ => SlotStatus::Ok,
    };
    by_size.max(by_state)
}

impl RawSlot {
    /// The API view, given who claims which slot and the source used to reach the slot.
    pub fn view(
        self,
        server: &str,
        via: &str,
        claims: &SlotClaims,
        warn: u64,
        critical: u64,
    ) -> SlotView {
        let owned = claims.owned(&self.slot);
        let orphan = claims.orphan(&self.slot);
        let source = claims.owner(&self.slot).map(str::to_string);
        SlotView {
            status: slot_status(
                self.retained_bytes,
                self.wal_status.as_deref(),
                warn,
                critical,
            ),
            orphan,
            owned,
            source,
            via: via.to_string(),
            server: server.to_string(),
            slot: self.slot,
            database: self.database,
            slot_type: self.slot_type,
            plugin: self.plugin,
            active: self.active,
            active_pid: self.active_pid,
            retained_bytes: self.retained_bytes,
            wal_status: self.wal_status,
            safe_wal_size: self.safe_wal_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_thresholds_and_wal_status() {
        assert_eq!(
            slot_status(Some(10), Some("reserved"), 100, 1000),
            SlotStatus::Ok
        );
        assert_eq!(
            slot_status(Some(100), Some("reserved"), 100, 1000),
            SlotStatus::Warn
        );
        assert_eq!(
            slot_status(Some(5000), None, 100, 1000),
            SlotStatus::Critical
        );
        assert_eq!(
            slot_status(None, Some("lost"), 100, 1000),
            SlotStatus::Critical
        );
        assert_eq!(
            slot_status(Some(1), Some("unreserved"), 100, 1000),
            SlotStatus::Warn
        );
    }
}
