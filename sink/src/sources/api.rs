//! HTTP handlers of the sources API (`/v1/sources…`, `/v1/slots…`).
//!
//! Design: handlers are thin sequences of the steps in [`super::connect`] and
//! [`super::postgres`], in an order chosen so that a failure leaves nothing behind or leaves
//! exactly what a retry needs:
//!
//! - create: validate (400, nothing touched) → name free in the registry and in Connect (409) →
//!   database reachable and ready (422 or 409, nothing created) → heartbeat table → declaration
//!   in the source registry → connector → wait for it to run; if it fails to start, it is removed
//!   with its slot, publication and declaration and the error is returned (502).
//! - delete: stop the connector (its config, which holds the database credentials, stays in
//!   Connect) → withdraw the declaration (so the reconciler leaves the connector alone) → wait
//!   for the slot to be released (terminate the holder after a timeout) → drop the slot and the
//!   publication → delete the connector last. If the database cannot be reached
//!   the answer is 503 with what is left; the stopped connector keeps the credentials, so the
//!   next DELETE finishes the job. A DELETE of a source that no longer exists answers 200 with
//!   `"connector": "absent"` (its database is unknown by then: a leftover slot would show as an
//!   orphan in `GET /v1/slots`).
//! - slots: drop only orphans (this deployment's prefix, claimed by no declaration and no
//!   connector, see [`super::claims`]) that are inactive, through a live source on the same
//!   server, and only with the slot's name typed back (`?confirm=<slot>`).
//!
//! Errors from Kafka Connect are 502 (503 when it is unreachable), with Connect's message.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::claims::SlotClaims;
use super::connect::{
    connector_config, ConnectError, ConnectorStatus, Stopped, StoredSource, TopicSettings,
};
use super::model::{
    self, check_name, connector_name, ConnectorOutcome, ConnectorState, CreateSource, DeleteReport,
    DropOutcome,
};
use super::registry::DeclaredSource;
use super::wal_guard;
use super::{postgres, SourcesService};
use crate::body::{ApiJson, ApiQuery};
use crate::consumers::registry::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::wait;
use tumbleweed_api::sources::{
    CreateFailed, DropQuery, SlotDropped, SlotList, SourceList, SourceView, WalThresholds,
};
use tumbleweed_api::ErrorBody;

type Svc = State<Arc<SourcesService>>;

/// A failure talking to Kafka Connect: 503 when it did not answer (retry later), 502 when it
/// answered with an error (its message is the operator's clue).
fn upstream(e: anyhow::Error) -> ApiError {
    let msg = format!("{e:#}");
    tracing::warn!(error = %msg, "Kafka Connect request failed");
    let status = match e.downcast_ref::<ConnectError>() {
        Some(ConnectError::Unreachable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, msg)
}

fn db_failure(what: &str, e: anyhow::Error) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, format!("{what}: {e:#}"))
}

/// `POST /v1/sources`
#[utoipa::path(post, path = "/v1/sources", tag = "sources", request_body = CreateSource,
    security(("admin" = [])),
    responses(
        (status = 201, description = "Created; the connector runs (or is starting)", body = SourceView),
        (status = 400, description = "A field breaks a rule (`field` names it)", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "The database is not ready for it (wal_level, tables, rights, TLS)", body = ErrorBody),
        (status = 502, description = "Kafka Connect or the database refused; a connector that failed to start was removed (`cleanup`)", body = CreateFailed),
        (status = 503, description = "Kafka Connect, the registry or the database did not answer; retry after `Retry-After`", body = ErrorBody),
    ))]
pub async fn create(State(svc): Svc, ApiJson(req): ApiJson<CreateSource>) -> ApiResult<Response> {
    let req = model::with_defaults(
        req,
        svc.tuning.default_sslmode,
        svc.tuning.default_sslrootcert.as_deref(),
    );
    let spec = model::validate(req, &svc.config.deployment_id)?;
    if spec.db.secret.is_none()
        && !spec.db.password.is_empty()
        && !svc.config.allow_plaintext_password
    {
        return Err(ApiError::bad_request(
            "a password in plain text would be kept in Kafka Connect's config topic and returned by its REST API: name it with password_secret (env:NAME or file:/absolute/path, read by the sink and the Connect workers) instead; for local use only, start the sink with TUMBLEWEED_ALLOW_PLAINTEXT_PASSWORD=true",
        )
        .with_field("password"));
    }
    if let Some(secret) = &spec.db.secret {
        secret
            .check_file_in(svc.config.secrets_dir.as_deref())
            .map_err(|m| ApiError::bad_request(m).with_field("password_secret"))?;
    }
    let connector = spec.connector();
    tracing::info!(source = %spec.name, db = %spec.db.describe(), "creating source");

    svc.registry.sync().await.map_err(registry_failure)?;
    if svc.registry.get(&spec.name).is_some()
        || svc
            .connect
            .config(&connector)
            .await
            .map_err(upstream)?
            .is_some()
    {
        return Err(
            ApiError::conflict(format!("a source named {:?} already exists", spec.name))
                .with_field("name"),
        );
    }
    let client = postgres::connect(&spec.db)
        .await
        .map_err(|e| e.into_api(StatusCode::UNPROCESSABLE_ENTITY))?;
    postgres::check_readiness(&client, &spec).await?;
    if spec.heartbeat_interval_s > 0 {
        postgres::ensure_heartbeat(&client, &spec.name).await?;
    }
    drop(client);

    let config = connector_config(
        &spec,
        TopicSettings {
            replication_factor: svc.tuning.topic_replication_factor,
            partitions: svc.tuning.topic_partitions,
        },
        &svc.tuning.connect_rds_ca_path,
    );
    // Declared first: from here on the reconciler keeps the connector, whatever happens to
    // this request.
    let declared = DeclaredSource::new(&spec.name, config.clone(), now_ms());
    svc.learn_password(&spec.name, &spec.db.password);
    svc.registry
        .put(&declared)
        .await
        .map_err(registry_failure)?;
    let created = svc.connect.create(&connector, &config).await;
    match created {
        Ok(true) => {}
        // Another replica's reconciler may have created it from the declaration just now.
        Ok(false)
            if svc
                .connect
                .config(&connector)
                .await
                .ok()
                .flatten()
                .is_some_and(|c| declared.matches(&c)) => {}
        Ok(false) => {
            let _ = svc.registry.remove(&spec.name).await;
            return Err(ApiError::conflict(format!(
                "a source named {:?} already exists",
                spec.name
            ))
            .with_field("name"));
        }
        Err(e) => {
            let _ = svc.registry.remove(&spec.name).await;
            return Err(upstream(e));
        }
    }

    // Report an immediate start failure (and clean up) rather than a source that never runs.
    let status: Option<ConnectorStatus> = wait::until(
        svc.tuning.create_wait,
        Duration::from_millis(250),
        || async { svc.connect.status(&connector).await.map_err(upstream) },
        |status| {
            status
                .as_ref()
                .is_some_and(|s| s.running() || s.failure().is_some())
        },
    )
    .await?;
    if let Some(why) = status.as_ref().and_then(|s| s.failure()) {
        tracing::warn!(source = %spec.name, error = %why, "connector failed to start; removing it");
        let stored = StoredSource::from_config(&config).expect("our own config");
        let cleanup = match teardown(&svc, &stored).await {
            Ok(r) => r,
            Err((_, mut r, e)) => {
                r.error = Some(e);
                r
            }
        };
        return Ok((
            StatusCode::BAD_GATEWAY,
            Json(CreateFailed {
                error: format!("the connector failed to start: {why}"),
                cleanup,
            }),
        )
            .into_response());
    }
    let stored = StoredSource::from_config(&config).expect("our own config");
    Ok((
        StatusCode::CREATED,
        Json(svc.view(&stored, status.as_ref())),
    )
        .into_response())
}

fn registry_failure(e: anyhow::Error) -> ApiError {
    ApiError::unavailable(format!("the source registry is not available: {e:#}"))
}

/// `GET /v1/sources`: the declared sources, with what Kafka Connect says of each (state
/// `UNKNOWN` while Connect does not answer).
#[utoipa::path(get, path = "/v1/sources", tag = "sources", security(("admin" = [])),
    responses(
        (status = 200, description = "Declared sources, and unfinished deletions (`declared: false`)", body = SourceList),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 503, description = "The source registry did not answer", body = ErrorBody),
    ))]
pub async fn list(State(svc): Svc) -> ApiResult<Json<SourceList>> {
    let declared = svc.stored_all().await?;
    let (statuses, connect_error) = match svc.connect.list_expanded().await {
        Ok(all) => (all, None),
        Err(e) => (Default::default(), Some(format!("{e:#}"))),
    };
    let mut sources: Vec<_> = declared
        .iter()
        .map(|s| {
            let status = statuses
                .get(&connector_name(&s.name))
                .and_then(|(_, st)| st.as_ref());
            svc.view(s, status)
        })
        .collect();
    // Tumbleweed connectors without a declaration: deletions that did not finish.
    for (name, (config, status)) in &statuses {
        if !name.starts_with(super::model::CONNECTOR_PREFIX) {
            continue;
        }
        if let Some(s) = StoredSource::from_config(config) {
            if !declared.iter().any(|d| d.name == s.name) {
                let mut view = s.view(status.as_ref());
                view.declared = false;
                sources.push(view);
            }
        }
    }
    Ok(Json(SourceList {
        sources,
        connect_error,
    }))
}

/// `GET /v1/sources/{name}`
#[utoipa::path(get, path = "/v1/sources/{name}", tag = "sources", security(("admin" = [])),
    params(("name" = String, Path, description = "Source name")),
    responses(
        (status = 200, body = SourceView),
        (status = 400, description = "Not a valid source name", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 404, description = "No such source", body = ErrorBody),
        (status = 503, description = "The source registry did not answer", body = ErrorBody),
    ))]
pub async fn get(State(svc): Svc, Path(name): Path<String>) -> ApiResult<Json<SourceView>> {
    check_name(&name)?;
    let status = svc
        .connect
        .status(&connector_name(&name))
        .await
        .unwrap_or(None);
    match svc.stored(&name).await {
        Ok(stored) => Ok(Json(svc.view(&stored, status.as_ref()))),
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            // A deletion that did not finish leaves the stopped connector, not a declaration.
            let config = svc
                .connect
                .config(&connector_name(&name))
                .await
                .ok()
                .flatten();
            let Some(stored) = config.as_ref().and_then(StoredSource::from_config) else {
                return Err(e);
            };
            let mut view = stored.view(status.as_ref());
            view.declared = false;
            Ok(Json(view))
        }
        Err(e) => Err(e),
    }
}

/// `DELETE /v1/sources/{name}`
#[utoipa::path(delete, path = "/v1/sources/{name}", tag = "sources", security(("admin" = [])),
    params(("name" = String, Path, description = "Source name")),
    responses(
        (status = 200, description = "What happened to each resource", body = DeleteReport),
        (status = 400, description = "Not a valid source name", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 409, description = "The connector was not created by Tumbleweed", body = ErrorBody),
        (status = 502, description = "A step failed; what was done so far, and `error` (DELETE again to finish)", body = DeleteReport),
        (status = 503, description = "A dependency did not answer; what was done so far, and `error`", body = DeleteReport),
    ))]
pub async fn delete(State(svc): Svc, Path(name): Path<String>) -> ApiResult<Response> {
    check_name(&name)?;
    let connector = connector_name(&name);
    svc.registry.sync().await.map_err(registry_failure)?;
    let stored = match svc.connect.config(&connector).await.map_err(upstream)? {
        Some(config) => StoredSource::from_config(&config).ok_or_else(|| {
            ApiError::conflict(format!(
                "connector {connector} was not created by Tumbleweed; remove it in Kafka Connect"
            ))
        })?,
        // Declared, but its connector is gone: the declaration knows the database.
        None => match svc.registry.get(&name).and_then(|d| svc.stored_from(&d)) {
            Some(s) => s,
            None => {
                let report = DeleteReport {
                    connector: ConnectorOutcome::Absent,
                    slot: DropOutcome::Unknown,
                    publication: DropOutcome::Unknown,
                    error: None,
                };
                return Ok(Json(report).into_response());
            }
        },
    };
    tracing::info!(source = %name, "deleting source");
    match teardown(&svc, &stored).await {
        Ok(report) => Ok(Json(report).into_response()),
        Err((status, mut report, error)) => {
            report.error = Some(error);
            Ok((status, Json(report)).into_response())
        }
    }
}

/// Stops the connector, releases and drops the slot and publication, deletes the connector.
/// On failure returns what was done so far and the error.
async fn teardown(
    svc: &SourcesService,
    stored: &StoredSource,
) -> Result<DeleteReport, (StatusCode, DeleteReport, String)> {
    let connector = connector_name(&stored.name);
    let slot = stored.slot.clone();
    let mut report = DeleteReport {
        connector: ConnectorOutcome::Present,
        slot: DropOutcome::Unknown,
        publication: DropOutcome::Unknown,
        error: None,
    };
    let connect_err = |report: &DeleteReport, e: anyhow::Error| {
        let e = upstream(e);
        (e.status, report.clone(), e.message)
    };
    match svc.connect.stop(&connector).await {
        Ok(Stopped::Absent) => report.connector = ConnectorOutcome::Absent,
        Ok(Stopped::Stopped) | Ok(Stopped::Paused) => {
            report.connector = ConnectorOutcome::Stopped;
            // Let the tasks shut down before touching the slot they hold.
            // (Connect not answering ends the wait too: the deletion goes on.)
            let _ = wait::until(
                Duration::from_secs(10),
                Duration::from_millis(100),
                || async { Ok::<_, Infallible>(svc.connect.status(&connector).await) },
                |status| match status {
                    Ok(Some(s)) => {
                        s.state != ConnectorState::Running
                            && !s.tasks.iter().any(|t| t.state == ConnectorState::Running)
                    }
                    _ => true,
                },
            )
            .await;
        }
        Err(e) => return Err(connect_err(&report, e)),
    }
    // The reconciler must not bring back what is being deleted.
    if let Err(e) = svc.registry.remove(&stored.name).await {
        let e = registry_failure(e);
        return Err((e.status, report, e.message));
    }
    svc.reconcile.forget(&stored.name);

    let client = match postgres::connect(&stored.db).await {
        Ok(c) => c,
        Err(e) => {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                report,
                format!(
                    "{}; the connector is kept stopped so that a retry can finish",
                    e.message
                ),
            ))
        }
    };
    let step = async {
        let exists =
            postgres::release_slot(&client, &slot, svc.tuning.slot_release_timeout).await?;
        report.slot = if exists && postgres::drop_slot(&client, &slot).await? {
            DropOutcome::Dropped
        } else {
            DropOutcome::Absent
        };
        report.publication = if postgres::drop_publication(&client, &slot).await? {
            DropOutcome::Dropped
        } else {
            DropOutcome::Absent
        };
        anyhow::Ok(())
    };
    if let Err(e) = step.await {
        if report.slot == DropOutcome::Unknown {
            report.slot = DropOutcome::Left;
        }
        if report.publication == DropOutcome::Unknown {
            report.publication = DropOutcome::Left;
        }
        return Err((StatusCode::BAD_GATEWAY, report, format!("{e:#}")));
    }
    if let Err(e) = postgres::delete_heartbeat_row(&client, &stored.name).await {
        tracing::warn!(source = %stored.name, error = format!("{e:#}"), "could not delete the heartbeat row");
    }
    // The slot is gone, so the connector's stored WAL position is meaningless now.
    if let Err(e) = svc.connect.reset_offsets(&connector).await {
        tracing::warn!(source = %stored.name, error = format!("{e:#}"), "could not reset the connector's offsets");
    }
    match svc.connect.delete(&connector).await {
        Ok(true) => report.connector = ConnectorOutcome::Deleted,
        Ok(false) => report.connector = ConnectorOutcome::Absent,
        Err(e) => return Err(connect_err(&report, e)),
    }
    tracing::info!(source = %stored.name, ?report, "source deleted");
    Ok(report)
}

/// `GET /v1/slots`
#[utoipa::path(get, path = "/v1/slots", tag = "sources", security(("admin" = [])),
    responses(
        (status = 200, description = "Replication slots on every source server, with retained WAL", body = SlotList),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 503, description = "The source registry did not answer", body = ErrorBody),
    ))]
pub async fn slots(State(svc): Svc) -> ApiResult<Json<SlotList>> {
    let sources = svc.stored_all().await?;
    let claims = svc.slot_claims().await;
    let scan = wal_guard::scan(
        &sources,
        &claims,
        svc.config.wal_warn_bytes,
        svc.config.wal_critical_bytes,
    )
    .await;
    svc.guard.record(&scan);
    Ok(Json(SlotList {
        slots: scan.slots,
        thresholds: WalThresholds {
            warn_bytes: svc.config.wal_warn_bytes,
            critical_bytes: svc.config.wal_critical_bytes,
        },
        errors: scan.errors,
    }))
}

/// `DELETE /v1/slots/{source}/{slot}?confirm={slot}`: drops an inactive orphan slot (and its
/// publication if it is in the database of `{source}`), reached through `{source}`'s
/// connection.
#[utoipa::path(delete, path = "/v1/slots/{via}/{slot}", tag = "sources", security(("admin" = [])),
    params(
        ("via" = String, Path, description = "The source whose connection reaches the slot (`via` in `GET /v1/slots`)"),
        ("slot" = String, Path, description = "The slot"),
        DropQuery,
    ),
    responses(
        (status = 200, body = SlotDropped),
        (status = 400, description = "Not confirmed, or not a valid source name", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 404, description = "No such source or slot", body = ErrorBody),
        (status = 409, description = "Not this deployment's slot, in use, or active", body = ErrorBody),
        (status = 502, description = "The database refused", body = ErrorBody),
        (status = 503, description = "Kafka Connect or the database did not answer", body = ErrorBody),
    ))]
pub async fn drop_orphan(
    State(svc): Svc,
    Path((source, slot)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<DropQuery>,
) -> ApiResult<Json<SlotDropped>> {
    check_name(&source)?;
    if query.confirm.as_deref() != Some(slot.as_str()) {
        return Err(ApiError::bad_request(format!(
            "dropping slot {slot:?} cannot be undone: confirm by typing its name back, as ?confirm={slot}"
        ))
        .with_field("confirm"));
    }
    let sources = svc.stored_all().await?;
    let Some(via) = sources.iter().find(|s| s.name == source) else {
        return Err(ApiError::not_found(format!("no source named {source:?}")));
    };
    let claims = svc.slot_claims().await;
    if !claims.owned(&slot) {
        return Err(ApiError::conflict(format!(
            "slot {slot:?} is not this deployment's ({}<name>, TUMBLEWEED_DEPLOYMENT_ID={}): Tumbleweed only drops its own orphans",
            claims.prefix(),
            svc.config.deployment_id
        )));
    }
    if let Some(owner) = claims.owner(&slot) {
        let hint = if sources.iter().any(|s| s.name == owner) {
            format!("delete the source instead (DELETE /v1/sources/{owner})")
        } else {
            format!("it is named by {owner:?} (a declared source or a Kafka Connect connector): delete that first")
        };
        return Err(ApiError::conflict(format!("slot {slot} is in use: {hint}")));
    }
    if !claims.connect_read() {
        return Err(ApiError::unavailable(
            "Kafka Connect cannot be read, so whether a connector still needs this slot is unknown: retry when Connect answers",
        ));
    }
    let client = postgres::connect(&via.db)
        .await
        .map_err(|e| ApiError::unavailable(e.message))?;
    match postgres::slot_holder(&client, &slot)
        .await
        .map_err(|e| db_failure("reading the slot", e))?
    {
        None => {
            return Err(ApiError::not_found(format!(
                "no replication slot {slot} on {}",
                via.db.server()
            )));
        }
        Some(Some(pid)) => {
            return Err(ApiError::conflict(format!(
                "slot {slot} is active (backend pid {pid}): something still reads it; stop that consumer first"
            )));
        }
        Some(None) => {}
    }
    let dropped = postgres::drop_slot(&client, &slot)
        .await
        .map_err(|e| db_failure("dropping the slot", e))?;
    let publication = postgres::drop_publication(&client, &slot)
        .await
        .map_err(|e| db_failure("dropping the publication", e))?;
    tracing::info!(slot, via = %source, "orphan slot dropped");
    let outcome = |dropped: bool| {
        if dropped {
            DropOutcome::Dropped
        } else {
            DropOutcome::Absent
        }
    };
    Ok(Json(SlotDropped {
        slot: outcome(dropped),
        publication: outcome(publication),
        server: via.db.server(),
        database: via.db.database.clone(),
    }))
}

impl SourcesService {
    /// A declared source (404 when there is none).
    async fn stored(&self, name: &str) -> ApiResult<StoredSource> {
        self.registry.sync().await.map_err(registry_failure)?;
        self.registry
            .get(name)
            .and_then(|d| self.stored_from(&d))
            .ok_or_else(|| ApiError::not_found(format!("no source named {name:?}")))
    }

    /// What the sink knows of a declared source: its database, with the password resolved
    /// from its reference or, if it was given in plain text, as last seen.
    fn stored_from(&self, d: &DeclaredSource) -> Option<StoredSource> {
        let config = d
            .complete_with(self.known_password(&d.name).as_deref())
            .unwrap_or_else(|| d.config.clone());
        StoredSource::from_config(&config)
    }

    /// Who claims which slot: the declarations (read raw, so an unparsable one still claims
    /// its slot) and Kafka Connect's connectors (none are orphans when Connect cannot be read).
    pub(super) async fn slot_claims(&self) -> SlotClaims {
        if let Err(e) = self.registry.sync().await {
            tracing::warn!(
                error = format!("{e:#}"),
                "slot claims: the source registry is behind"
            );
        }
        let declared = self.registry.list();
        let connectors = match self.connect.list_expanded().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "slot claims: Kafka Connect cannot be read; no slot is an orphan until it can"
                );
                None
            }
        };
        SlotClaims::new(
            &self.config.deployment_id,
            declared.iter().map(AsRef::as_ref),
            connectors
                .as_ref()
                .map(|c| c.iter().map(|(name, (config, _))| (name, config))),
        )
    }

    /// Every declared source, whatever Kafka Connect says.
    pub(super) async fn stored_all(&self) -> ApiResult<Vec<StoredSource>> {
        self.registry.sync().await.map_err(registry_failure)?;
        Ok(self
            .registry
            .list()
            .iter()
            .filter_map(|d| self.stored_from(d))
            .collect())
    }

    /// The API view of a source, with the reconciler's record.
    fn view(&self, stored: &StoredSource, status: Option<&ConnectorStatus>) -> SourceView {
        let mut view = stored.view(status);
        view.reconciler = Some(self.reconcile.view(&stored.name));
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::connect::ConnectClient;

    #[tokio::test]
    async fn connect_failures_are_told_apart_by_kind() {
        // Nothing listens on the discard port: no answer at all is a 503.
        let gone = ConnectClient::new("http://127.0.0.1:9").unwrap();
        let e = upstream(
            gone.status("tumbleweed-x")
                .await
                .unwrap_err()
                .context("reading the connector"),
        );
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE, "{e}");
        // An answer with an error status is Connect's to explain: a 502 with its message.
        let rejected = anyhow::Error::from(ConnectError::Rejected {
            method: "POST".into(),
            path: "/connectors".into(),
            status: StatusCode::BAD_REQUEST,
            message: "Connector configuration is invalid".into(),
        })
        .context("creating the connector");
        let e = upstream(rejected);
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
        assert!(
            e.message.contains("Connector configuration is invalid"),
            "{e}"
        );
    }
}
