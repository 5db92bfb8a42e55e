//! The admin API of consumers: `POST/GET /v1/consumers`, `GET/DELETE /v1/consumers/{name}`
//! and `POST /v1/filters/preview`.
//!
//! Creation is an ordered lifecycle a retry can finish: validate (names, topics, ops,
//! filters against recent events), register (the compacted topic; a name taken is a 409),
//! then set the start position; if that last step fails the registration is removed again and
//! the answer is a 503, so nothing half-made is left.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use tumbleweed_api::consumers::{
    ConsumerDetail, ConsumerList, ConsumerView, CreateConsumer, CreatedConsumer, PreviewEvent,
    PreviewRequest, PreviewResponse,
};
use tumbleweed_api::ErrorBody;

use super::registry::{self, ConsumerRecord, CreateError, StartFrom};
use crate::auth;
use crate::body::ApiJson;
use crate::error::{ApiError, ApiResult};
use crate::event;
use crate::filter;
use crate::http::{kafka_unavailable, topic_partitions, AppState};
use crate::kafka::feed::TopicFeed;

type Shared = State<Arc<AppState>>;

/// How many of a topic's recent events a new filter is checked against.
const FILTER_SAMPLE: usize = 200;

fn view(r: &ConsumerRecord, live_lag_events: Option<u64>) -> ConsumerView {
    ConsumerView {
        name: r.name.clone(),
        topics: r.topics.clone(),
        start: r.start,
        ops: r.ops.clone(),
        filters: r.filters.clone(),
        created_at_ms: r.created_at_ms,
        events_path: format!("/v1/consumers/{}/events", r.name),
        live_lag_events,
    }
}

/// `POST /v1/consumers`
#[utoipa::path(post, path = "/v1/consumers", tag = "consumers", request_body = CreateConsumer,
    security(("admin" = [])),
    responses(
        (status = 201, description = "Created; the token is shown this once", body = CreatedConsumer),
        (status = 400, description = "A field breaks a rule (`field` names it)", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 503, description = "Kafka did not answer; retry after `Retry-After`", body = ErrorBody),
    ))]
pub async fn create(
    State(st): Shared,
    ApiJson(req): ApiJson<CreateConsumer>,
) -> ApiResult<(StatusCode, Json<CreatedConsumer>)> {
    tumbleweed_api::names::check_consumer_name(&req.name)?;
    let mut topics = req.topics.clone();
    topics.sort();
    topics.dedup();
    if topics.is_empty() {
        return Err(
            ApiError::bad_request("topics must list at least one topic").with_field("topics")
        );
    }
    let existing = st
        .hub
        .meta()
        .topic_partitions()
        .await
        .map_err(kafka_unavailable)?;
    let unknown: Vec<&String> = topics
        .iter()
        .filter(|t| !existing.contains_key(*t))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&String> = existing.keys().collect();
        return Err(ApiError::bad_request(format!(
            "unknown topic(s) {unknown:?}; topics that exist: {known:?}"
        ))
        .with_field("topics"));
    }
    if let Some(ops) = &req.ops {
        if ops.is_empty() {
            return Err(
                ApiError::bad_request("ops, when given, must list at least one operation")
                    .with_field("ops"),
            );
        }
        event::parse_ops(ops).map_err(|e| ApiError::bad_request(e).with_field("ops"))?;
    }
    filter::validate(&req.filters, &topics)?;
    check_filters_on_recent_events(&st, &req.filters, &topics, req.ops.as_deref()).await?;
    let token = auth::new_consumer_token();
    let record = ConsumerRecord {
        name: req.name.clone(),
        topics,
        start: req.start,
        ops: req.ops.clone(),
        filters: req.filters.clone(),
        token_sha256: auth::token_digest(&token),
        created_at_ms: registry::now_ms(),
    };
    let created = st.registry.create(record).await.map_err(|e| match e {
        CreateError::Exists => {
            ApiError::conflict(format!("consumer {:?} already exists", req.name)).with_field("name")
        }
        CreateError::Other(e) => kafka_unavailable(e),
    })?;
    // A consumer starts with no acknowledged position of its own (an earlier consumer of the
    // same name may have left one), and `latest` is the end of every partition now, stored
    // as if acknowledged, so the events written before the first connection are delivered.
    if let Err(e) = start_fresh(&st, &created).await {
        let _ = st.registry.delete(&created.name).await;
        let e = kafka_unavailable(e);
        return Err(ApiError::unavailable(format!(
            "could not set the consumer's start position, nothing was created: {}",
            e.message
        ))
        .retry_after(2));
    }
    Ok((
        StatusCode::CREATED,
        Json(CreatedConsumer {
            consumer: view(&created, None),
            token,
        }),
    ))
}

async fn start_fresh(st: &AppState, consumer: &ConsumerRecord) -> anyhow::Result<()> {
    match consumer.start {
        StartFrom::Latest => {
            let mut ends = Vec::with_capacity(consumer.topics.len());
            for (topic, n) in topic_partitions(st, &consumer.topics).await? {
                let mut e = Vec::with_capacity(n);
                for p in 0..n {
                    e.push(st.hub.meta().watermarks(&topic, p as i32).await?.1);
                }
                ends.push(e);
            }
            st.cursors.store(consumer, &consumer.topics, &ends).await?;
        }
        StartFrom::Earliest => st.cursors.forget(&consumer.name).await?,
    }
    Ok(())
}

/// `GET /v1/consumers`
#[utoipa::path(get, path = "/v1/consumers", tag = "consumers", security(("admin" = [])),
    responses(
        (status = 200, body = ConsumerList),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
    ))]
pub async fn list(State(st): Shared) -> Json<ConsumerList> {
    let lag = st.metrics.consumer_lag();
    let consumers = st
        .registry
        .list()
        .iter()
        .map(|r| view(r, lag.get(&r.name).copied()))
        .collect();
    Json(ConsumerList { consumers })
}

/// `GET /v1/consumers/{name}`
#[utoipa::path(get, path = "/v1/consumers/{name}", tag = "consumers", security(("admin" = [])),
    params(("name" = String, Path, description = "Consumer name")),
    responses(
        (status = 200, body = ConsumerDetail),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 410, description = "One of its topics no longer exists", body = ErrorBody),
        (status = 503, description = "Kafka did not answer; retry after `Retry-After`", body = ErrorBody),
    ))]
pub async fn get(State(st): Shared, Path(name): Path<String>) -> ApiResult<Json<ConsumerDetail>> {
    let (r, _) = st
        .registry
        .find(&name)
        .await
        .map_err(kafka_unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("unknown consumer {name:?}")))?;
    let consumer = view(&r, st.metrics.consumer_lag().get(&name).copied());
    let parts = topic_partitions(&st, &r.topics).await?;
    let cursor = st.cursors.load(&r).await.map_err(kafka_unavailable)?;
    let acked = cursor
        .as_ref()
        .map(|c| c.for_partitions(&parts))
        .unwrap_or_else(|| parts.iter().map(|(_, n)| vec![None; *n]).collect());
    let acked_offsets: BTreeMap<String, Vec<Option<i64>>> =
        r.topics.iter().cloned().zip(acked).collect();
    Ok(Json(ConsumerDetail {
        consumer,
        // This replica's streams only: a consumer's other streams may be served by another.
        streams: st.metrics.streams_of(&name),
        acked_offsets,
        acked_at_ms: cursor.map(|c| c.acked_at_ms),
    }))
}

/// `DELETE /v1/consumers/{name}`
#[utoipa::path(delete, path = "/v1/consumers/{name}", tag = "consumers", security(("admin" = [])),
    params(("name" = String, Path, description = "Consumer name")),
    responses(
        (status = 204, description = "Deleted; its live streams end"),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 503, description = "Kafka did not answer; retry after `Retry-After`", body = ErrorBody),
    ))]
pub async fn delete(State(st): Shared, Path(name): Path<String>) -> ApiResult<StatusCode> {
    if st.registry.delete(&name).await.map_err(kafka_unavailable)? {
        // Its acknowledged position goes with it (a new consumer of the same name also starts
        // afresh should this fail: a cursor names the registration it belongs to).
        if let Err(e) = st.cursors.forget(&name).await {
            tracing::warn!(consumer = %name, error = format!("{e:#}"), "could not delete the consumer's cursor");
        }
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("unknown consumer {name:?}")))
    }
}

/// `POST /v1/filters/preview`: the server's own parser and checks on a filter being edited
/// (the same errors, field and position as creating the consumer), and what it would make of
/// the topic's recent events: for each of the newest `limit`, whether it is delivered and the
/// JSON delivered.
#[utoipa::path(post, path = "/v1/filters/preview", tag = "consumers", request_body = PreviewRequest,
    security(("admin" = [])),
    responses(
        (status = 200, body = PreviewResponse),
        (status = 400, description = "A field breaks a rule (`field` names it, `position` where a predicate does not parse)", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 503, description = "Kafka did not answer; retry after `Retry-After`", body = ErrorBody),
    ))]
pub async fn preview(
    State(st): Shared,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<Json<PreviewResponse>> {
    if req.topic.starts_with('_')
        || st
            .hub
            .meta()
            .partition_count(&req.topic)
            .await
            .map_err(kafka_unavailable)?
            .is_none()
    {
        return Err(
            ApiError::bad_request(format!("unknown topic {:?}", req.topic)).with_field("topic"),
        );
    }
    let compiled = filter::compile(&req.topic, &req.filter, req.ops.as_deref())?;
    let (recent, columns) = check_on_recent_events(&st, &req.topic, &req.topic, &compiled).await?;
    let mut newest: Vec<_> = recent.iter().collect();
    // Newest first; within one millisecond, by position.
    newest.sort_by_key(|e| std::cmp::Reverse((e.timestamp_ms, e.partition, e.offset)));
    newest.truncate(req.limit.clamp(1, FILTER_SAMPLE));
    let events: Vec<PreviewEvent> = newest
        .iter()
        .map(|e| {
            let out = compiled.apply(e);
            PreviewEvent {
                partition: e.partition,
                offset: e.offset,
                delivered: out.is_some(),
                event: out
                    .or_else(|| Some(e.json.clone()))
                    .and_then(|b| serde_json::from_slice(&b).ok()),
            }
        })
        .collect();
    Ok(Json(PreviewResponse {
        topic: req.topic,
        columns,
        checked: events.len(),
        delivered: events.iter().filter(|e| e.delivered).count(),
        events,
    }))
}

/// Checks each topic's filter against the topic's recent events, where the sink has any:
/// type errors in the predicate and projected columns the table does not have are refused
/// now rather than silently filtering everything later. A topic with no recent event has no
/// known schema and is not checked.
async fn check_filters_on_recent_events(
    st: &AppState,
    filters: &filter::Filters,
    topics: &[String],
    ops: Option<&[String]>,
) -> ApiResult<()> {
    if filters.is_empty() {
        return Ok(());
    }
    for topic in topics {
        let Some(rule) = filter::rule_for(filters, topic) else {
            continue;
        };
        let key = if filters.contains_key(topic) {
            topic.as_str()
        } else {
            filter::ALL_TOPICS
        };
        let compiled = filter::compile(key, rule, ops)?;
        if !compiled.ops_only() {
            check_on_recent_events(st, topic, key, &compiled).await?;
        }
    }
    Ok(())
}

/// Checks `compiled` (declared under `key`) against up to [`FILTER_SAMPLE`] recent events of
/// `topic`; returns them and the columns they have.
async fn check_on_recent_events(
    st: &AppState,
    topic: &str,
    key: &str,
    compiled: &filter::CompiledRule,
) -> ApiResult<(Vec<Arc<crate::event::ChangeEvent>>, Vec<String>)> {
    let feed = st.hub.feed(topic).await.map_err(kafka_unavailable)?;
    let recent = recent_events(&feed, FILTER_SAMPLE).await;
    let mut columns = Vec::new();
    for e in &recent {
        filter::columns_of(e, &mut columns);
    }
    for e in &recent {
        compiled.check(key, e, &columns)?;
    }
    Ok((recent, columns))
}

/// Up to `max` of the newest buffered events of `feed`, waiting briefly for a feed that has
/// just opened to read its warm-up history.
async fn recent_events(feed: &TopicFeed, max: usize) -> Vec<Arc<crate::event::ChangeEvent>> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
    loop {
        let mut out = Vec::new();
        for p in 0..feed.partition_count() {
            let (start, head) = (feed.start(p), feed.head(p));
            let from = start.max(head - max as i64);
            let _ = feed.read(p, from, feed.generation(p), max, &mut out);
        }
        if !out.is_empty() || tokio::time::Instant::now() >= deadline {
            return out;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
