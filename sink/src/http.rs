//! HTTP routing: the admin API (consumers, topics, live tail, and the sources routes), the
//! consumer endpoints (SSE events, acknowledgements), health, metrics and the operator UI.
//!
//! Authentication is applied per route group: the admin API sits behind
//! [`auth::require_admin`]; consumer endpoints check the consumer's own token, taken from
//! `Authorization: Bearer`. Browsers' EventSource cannot set headers: it opens a stream with a
//! single-use `?ticket=` (see [`crate::tickets`]). `?token=` is refused unless the operator
//! turns it on (`TUMBLEWEED_ALLOW_QUERY_TOKEN`), since URLs end up in access logs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Extension, Json, Router};
use serde_json::Value;
use tower_http::services::{ServeDir, ServeFile};

use crate::auth::{self, AdminToken, MetricsTokens};
use crate::body::ApiQuery;
use crate::consumers;
use crate::consumers::registry::{ConsumerRecord, Registry, StartFrom};
use crate::cursor::{self, CursorError};
use crate::error::{ApiError, ApiResult};
use crate::filter;
use crate::kafka::cursors::CursorStore;
use crate::kafka::feed::TopicFeed;
use crate::kafka::hub::FeedHub;
use crate::limits::{LimitError, StreamLimits};
use crate::metrics::{ClientAddr, Metrics};
use crate::sources::SourcesService;
use crate::sse::{self, SseContext, StreamSpec};
use crate::tickets::TicketStore;
use tumbleweed_api::consumers::{AckRequest, AckResponse, Ticket};
use tumbleweed_api::service::{ClusterHealth, Health, Readiness, TopicList};
use tumbleweed_api::ErrorBody;

/// Everything the handlers share.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub hub: Arc<FeedHub>,
    pub cursors: Arc<CursorStore>,
    pub limits: Arc<StreamLimits>,
    pub tickets: Arc<TicketStore>,
    pub stats: Arc<crate::stats::StatsStore>,
    /// Whether `?token=` is accepted (off by default: URLs are logged).
    pub allow_query_token: bool,
    pub sse: Arc<SseContext>,
    pub metrics: Arc<Metrics>,
    pub sources: Arc<SourcesService>,
    pub memory: Arc<crate::memory::MemoryGuard>,
}

type Shared = State<Arc<AppState>>;

/// The whole HTTP surface of the sink.
pub fn router(
    state: Arc<AppState>,
    admin: AdminToken,
    metrics_tokens: MetricsTokens,
    ui_dir: Option<PathBuf>,
) -> Router {
    let admin_api = Router::new()
        .route(
            "/v1/consumers",
            post(consumers::api::create).get(consumers::api::list),
        )
        .route(
            "/v1/consumers/{name}",
            get(consumers::api::get).delete(consumers::api::delete),
        )
        .route("/v1/topics", get(list_topics))
        .route("/v1/topics/{topic}/events", get(tail_topic))
        .route("/v1/filters/preview", post(consumers::api::preview))
        .route("/v1/kafka/health", get(kafka_health))
        .route("/v1/stats", get(stats))
        .with_state(state.clone())
        .merge(state.sources.routes())
        .layer(middleware::from_fn_with_state(admin, auth::require_admin));
    let consumer_api = Router::new()
        .route("/v1/consumers/{name}/events", get(consumer_events))
        .route("/v1/consumers/{name}/ack", post(ack))
        .route("/v1/consumers/{name}/tickets", post(issue_ticket))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state.clone());
    // The contract is no secret, so it needs no token; but it describes the admin API too, so
    // it is not a consumer route: on AWS only the admin listener forwards it.
    let contract = Router::new().route("/v1/openapi.json", get(crate::openapi::document));
    let metrics_api = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            metrics_tokens,
            auth::require_metrics,
        ));
    let mut app = Router::new()
        .merge(admin_api)
        .merge(consumer_api)
        .merge(contract)
        .merge(metrics_api);
    if let Some(dir) = ui_dir {
        let index = dir.join("index.html");
        app = app.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)));
    }
    with_security_headers(app)
}

/// The UI's content security policy: its own scripts, styles and API only, no inline code,
/// never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers every response carries (a handler's own value wins): the CSP above, no framing, no
/// content sniffing, no referrer.
fn with_security_headers(app: Router) -> Router {
    use axum::http::{header, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer;
    app.layer(SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ))
}

#[utoipa::path(get, path = "/v1/topics", tag = "consumers", security(("admin" = [])),
    responses((status = 200, body = TopicList), (status = 401, description = "No or a wrong admin token", body = ErrorBody), (status = 503, description = "Kafka did not answer; retry after `Retry-After`", body = ErrorBody)))]
pub(crate) async fn list_topics(State(st): Shared) -> ApiResult<Json<TopicList>> {
    let topics = st.hub.meta().topics().await.map_err(kafka_unavailable)?;
    Ok(Json(TopicList { topics }))
}

pub(crate) async fn topic_partitions(
    st: &AppState,
    topics: &[String],
) -> ApiResult<Vec<(String, usize)>> {
    let mut out = Vec::with_capacity(topics.len());
    for t in topics {
        let n = st
            .hub
            .meta()
            .partition_count(t)
            .await
            .map_err(kafka_unavailable)?
            .ok_or_else(|| {
                ApiError::new(StatusCode::GONE, format!("topic {t} no longer exists"))
            })?;
        out.push((t.clone(), n));
    }
    Ok(out)
}

async fn feeds(hub: &FeedHub, topics: &[String]) -> ApiResult<Vec<Arc<TopicFeed>>> {
    let mut out = Vec::with_capacity(topics.len());
    for t in topics {
        out.push(hub.feed(t).await.map_err(kafka_unavailable)?);
    }
    Ok(out)
}

/// The query string of the events endpoints (public for the query-parsing fuzz target).
pub use tumbleweed_api::consumers::EventsQuery;

/// How a consumer request proves who it is.
enum Credential<'a> {
    /// `Authorization: Bearer <token>`.
    Token(&'a str),
    /// `?token=` (only when the operator allows it).
    QueryToken(&'a str),
    /// `?ticket=`: single-use, short-lived (streams only).
    Ticket(&'a str),
}

fn credential<'a>(
    headers: &'a HeaderMap,
    q: &'a EventsQuery,
    tickets_accepted: bool,
) -> ApiResult<Credential<'a>> {
    if let Some(t) = auth::bearer(headers) {
        return Ok(Credential::Token(t));
    }
    if let (Some(t), true) = (q.ticket.as_deref(), tickets_accepted) {
        return Ok(Credential::Ticket(t));
    }
    if let Some(t) = q.token.as_deref() {
        return Ok(Credential::QueryToken(t));
    }
    Err(ApiError::unauthorized(if tickets_accepted {
        "missing consumer credential: send `Authorization: Bearer <token>`, or from a browser open the stream with `?ticket=` (POST /v1/consumers/{name}/tickets issues one)"
    } else {
        "missing consumer token: send `Authorization: Bearer <token>`"
    }))
}

/// Checks the consumer's credential and returns its registration.
async fn authenticate_consumer(
    st: &AppState,
    name: &str,
    credential: Credential<'_>,
) -> ApiResult<(Arc<ConsumerRecord>, tokio_util::sync::CancellationToken)> {
    // An unknown name and a wrong token get the same answer, so names cannot be probed; a
    // miss costs at most one registry sync per second, whoever asks.
    let denied = || ApiError::unauthorized("unknown consumer or invalid token");
    let token = match credential {
        Credential::Token(t) => t,
        Credential::QueryToken(_) if !st.allow_query_token => {
            return Err(ApiError::unauthorized(
                "?token= is turned off on this sink because URLs end up in access logs: send `Authorization: Bearer <token>`, or from a browser open the stream with `?ticket=` (POST /v1/consumers/{name}/tickets issues one). An operator can allow ?token= with TUMBLEWEED_ALLOW_QUERY_TOKEN=true",
            ))
        }
        Credential::QueryToken(t) => t,
        Credential::Ticket(ticket) => {
            let refused = || {
                ApiError::unauthorized(
                    "unknown consumer, or a ticket that is unknown, expired or already used: a ticket opens one stream within its lifetime; get a new one with POST /v1/consumers/{name}/tickets",
                )
            };
            let (record, closed) = st
                .registry
                .find_throttled(name)
                .await
                .map_err(kafka_unavailable)?
                .ok_or_else(refused)?;
            return match st
                .tickets
                .redeem(ticket, &record)
                .await
                .map_err(kafka_unavailable)?
            {
                Ok(()) => Ok((record, closed)),
                Err(why) => {
                    tracing::info!(consumer = %name, reason = ?why, "ticket refused");
                    Err(refused())
                }
            };
        }
    };
    let (record, closed) = st
        .registry
        .find_throttled(name)
        .await
        .map_err(kafka_unavailable)?
        .ok_or_else(denied)?;
    if !auth::token_matches(token, &record.token_sha256) {
        return Err(denied());
    }
    Ok((record, closed))
}

/// `POST /v1/consumers/{name}/tickets` (consumer token in the header): a single-use ticket
/// for opening one stream from a browser.
#[utoipa::path(post, path = "/v1/consumers/{name}/tickets", tag = "streams",
    security(("consumer" = [])),
    params(("name" = String, Path, description = "Consumer name")),
    responses(
        (status = 201, body = Ticket),
        (status = 401, description = "No or a wrong consumer token", body = ErrorBody),
        (status = 503, description = "Kafka did not answer; retry after `Retry-After`", body = ErrorBody),
    ))]
pub(crate) async fn issue_ticket(
    State(st): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<Ticket>)> {
    let token = auth::bearer(&headers).ok_or_else(|| {
        ApiError::unauthorized(
            "a ticket is issued only for `Authorization: Bearer <consumer token>`",
        )
    })?;
    let (record, _) = authenticate_consumer(&st, &name, Credential::Token(token)).await?;
    let issued = st.tickets.issue(&record).await.map_err(kafka_unavailable)?;
    let events_path = format!("/v1/consumers/{name}/events?ticket={}", issued.ticket);
    Ok((
        StatusCode::CREATED,
        Json(Ticket {
            ticket: issued.ticket,
            expires_at_ms: issued.expires_at_ms,
            events_path,
        }),
    ))
}

fn cursor_error(e: CursorError) -> ApiError {
    ApiError::bad_request(format!("Last-Event-ID: {e}"))
}

/// Where a stream starts: positions per topic and partition, and the `event: reset` frames
/// for positions that belonged to a log that is gone.
struct Start {
    positions: Vec<Vec<i64>>,
    preamble: Vec<String>,
}

/// Makes the feed know every partition the broker has now (a cursor or an ack from another
/// replica may already cover partitions added a moment ago).
async fn refresh_feed(hub: &Arc<FeedHub>, feed: &Arc<TopicFeed>) -> ApiResult<()> {
    let (hub, f) = (hub.clone(), feed.clone());
    tokio::task::spawn_blocking(move || hub.refresh(&f))
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("feed refresh task: {e}")))?
        .map_err(kafka_unavailable)
}

/// Checks `positions` against each partition's end: a position past the end belonged to a log
/// that restarted (the topic was deleted and recreated). It moves to the new log's start, with
/// a reset frame saying so, rather than waiting past records it would never deliver.
async fn check_ends(
    st: &AppState,
    topics: &[String],
    positions: &mut [Vec<i64>],
) -> ApiResult<Vec<String>> {
    let mut preamble = Vec::new();
    let fp = cursor::fingerprint(topics);
    for (ti, topic) in topics.iter().enumerate() {
        for p in 0..positions[ti].len() {
            let (low, high) = st
                .hub
                .meta()
                .watermarks(topic, p as i32)
                .await
                .map_err(kafka_unavailable)?;
            let o = positions[ti][p];
            if o > high {
                positions[ti][p] = low;
                let id = cursor::encode(fp, positions);
                preamble.push(sse::reset_frame(&id, topic, p, o, low));
            }
        }
    }
    Ok(preamble)
}

/// Positions from a cursor, checked against the topics as they are now.
async fn positions_from_cursor(
    st: &AppState,
    cursor_text: &str,
    topics: &[String],
    feeds: &[Arc<TopicFeed>],
) -> ApiResult<Start> {
    let fp = cursor::fingerprint(topics);
    let mut positions = cursor::decode(cursor_text, fp, topics.len()).map_err(cursor_error)?;
    for (ti, feed) in feeds.iter().enumerate() {
        if positions[ti].len() > feed.partition_count() {
            refresh_feed(&st.hub, feed).await?;
        }
        let n = feed.partition_count();
        let pos = &mut positions[ti];
        if pos.len() > n {
            return Err(cursor_error(CursorError::Malformed(
                "more partitions than the topic has",
            )));
        }
        for p in pos.len()..n {
            // A partition added after the cursor was issued starts at its beginning.
            pos.push(
                st.hub
                    .meta()
                    .watermarks(&feed.topic, p as i32)
                    .await
                    .map_err(kafka_unavailable)?
                    .0,
            );
        }
    }
    let preamble = check_ends(st, topics, &mut positions).await?;
    Ok(Start {
        positions,
        preamble,
    })
}

/// Start positions without a cursor: the last acknowledgement, else the consumer's `start`.
async fn start_positions(
    st: &AppState,
    consumer: Option<&ConsumerRecord>,
    start: StartFrom,
    topics: &[String],
    feeds: &[Arc<TopicFeed>],
) -> ApiResult<Start> {
    let acked = match consumer {
        Some(c) => st.cursors.load(c).await.map_err(kafka_unavailable)?,
        None => None,
    };
    if let Some(a) = &acked {
        for (t, feed) in topics.iter().zip(feeds) {
            if a.positions.get(t).map_or(0, Vec::len) > feed.partition_count() {
                refresh_feed(&st.hub, feed).await?;
            }
        }
    }
    let parts: Vec<(String, usize)> = topics
        .iter()
        .zip(feeds)
        .map(|(t, f)| (t.clone(), f.partition_count()))
        .collect();
    // Partitions the cursor does not cover were added after the consumer was created (or
    // acked): everything in them is new to it, so they start at their beginning.
    let start = if acked.is_some() {
        StartFrom::Earliest
    } else {
        start
    };
    let acked = match acked {
        Some(a) => a.for_partitions(&parts),
        None => parts.iter().map(|(_, n)| vec![None; *n]).collect(),
    };
    let mut positions = Vec::with_capacity(feeds.len());
    for (feed, acked) in feeds.iter().zip(acked) {
        let mut pos = Vec::with_capacity(feed.partition_count());
        for (p, a) in acked.into_iter().enumerate() {
            pos.push(match (a, start) {
                (Some(o), _) => o,
                (None, StartFrom::Latest) => {
                    st.hub
                        .meta()
                        .watermarks(&feed.topic, p as i32)
                        .await
                        .map_err(kafka_unavailable)?
                        .1
                }
                (None, StartFrom::Earliest) => {
                    st.hub
                        .meta()
                        .watermarks(&feed.topic, p as i32)
                        .await
                        .map_err(kafka_unavailable)?
                        .0
                }
            });
        }
        positions.push(pos);
    }
    let preamble = check_ends(st, topics, &mut positions).await?;
    Ok(Start {
        positions,
        preamble,
    })
}

/// Kafka did not answer (a broker restarting, leadership moving): the client should retry,
/// so 503 with `Retry-After`, never a 500. The cause names brokers and topics, which are not
/// the caller's business (consumers get this too): it is logged under a reference instead.
pub(crate) fn kafka_unavailable(e: anyhow::Error) -> ApiError {
    let reference = format!("{:08x}", rand::random::<u32>());
    tracing::warn!(%reference, error = format!("{e:#}"), "Kafka did not answer a request");
    ApiError::unavailable(format!(
        "Kafka did not answer, retry shortly (reference {reference}; the sink's log has the details)"
    ))
    .retry_after(2)
}

/// A place for one more stream, or the answer that says whose limit was reached.
fn admit(st: &AppState, consumer: Option<&str>) -> ApiResult<crate::limits::StreamPermit> {
    st.limits.admit(consumer).map_err(|e| {
        let status = match e {
            LimitError::PerConsumer { .. } => StatusCode::TOO_MANY_REQUESTS,
            LimitError::Total { .. } | LimitError::Memory { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string()).retry_after(5)
    })
}

/// `GET /v1/consumers/{name}/events`: the consumer's stream.
#[utoipa::path(get, path = "/v1/consumers/{name}/events", tag = "streams",
    security(("consumer" = []), ("ticket" = [])),
    params(("name" = String, Path, description = "Consumer name"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
        EventsQuery),
    responses(
        (status = 200, description = "Server-Sent Events: `id:` is the resume cursor, `event: reset` and `event: gap` tell of history that is gone", content_type = "text/event-stream", body = String),
        (status = 400, description = "A Last-Event-ID that is not this consumer's", body = ErrorBody),
        (status = 401, description = "No or a wrong consumer token or ticket", body = ErrorBody),
        (status = 429, description = "This consumer has as many streams as it may; retry after `Retry-After`", body = ErrorBody),
        (status = 503, description = "The sink is full or Kafka did not answer; retry after `Retry-After`", body = ErrorBody),
    ))]
pub(crate) async fn consumer_events(
    State(st): Shared,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (record, closed) =
        authenticate_consumer(&st, &name, credential(&headers, &q, true)?).await?;
    let last_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| cursor_error(CursorError::Malformed("not ASCII")))
        })
        .transpose()?
        .or(q.last_event_id.clone())
        .filter(|s| !s.is_empty());
    let permit = admit(&st, Some(&name))?;
    let feeds = feeds(&st.hub, &record.topics).await?;
    let start = match &last_id {
        Some(c) => positions_from_cursor(&st, c, &record.topics, &feeds).await?,
        None => start_positions(&st, Some(&record), record.start, &record.topics, &feeds).await?,
    };
    let filters = stream_filters(&record)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored consumer filter: {e}")))?;
    Ok(sse::respond(
        st.sse.clone(),
        StreamSpec {
            consumer: Some(name),
            topics: record.topics.clone(),
            feeds,
            filters,
            positions: start.positions,
            closed,
            preamble: start.preamble,
            permit: Some(permit),
            client: client_addr(peer, &headers),
        },
    ))
}

/// The compiled filter of each of a consumer's topics (shared with every stream that declared
/// the same rule); `None` where everything is delivered as it is.
fn stream_filters(
    record: &ConsumerRecord,
) -> Result<Vec<Option<Arc<filter::CompiledRule>>>, filter::FilterError> {
    record
        .topics
        .iter()
        .map(|topic| match filter::rule_for(&record.filters, topic) {
            Some(rule) => filter::compile(topic, rule, record.ops.as_deref()).map(Some),
            None => match &record.ops {
                Some(ops) => {
                    let only_ops = filter::FilterRule::default();
                    filter::compile(topic, &only_ops, Some(ops)).map(Some)
                }
                None => Ok(None),
            },
        })
        .collect()
}

/// The TCP peer of a connection, put into each request's extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

fn client_addr(peer: Option<Extension<PeerAddr>>, headers: &HeaderMap) -> ClientAddr {
    ClientAddr {
        peer: peer.map(|Extension(PeerAddr(a))| a.to_string()),
        forwarded_for: headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect()),
    }
}

/// The operator's live tail of one topic (admin token; starts at the head by default).
#[utoipa::path(get, path = "/v1/topics/{topic}/events", tag = "consumers",
    security(("admin" = [])),
    params(("topic" = String, Path, description = "A change topic"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
        EventsQuery),
    responses(
        (status = 200, description = "Server-Sent Events of the topic, from its head by default", content_type = "text/event-stream", body = String),
        (status = 400, description = "An unknown topic or a Last-Event-ID of another topic", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token", body = ErrorBody),
        (status = 503, description = "The sink is full or Kafka did not answer; retry after `Retry-After`", body = ErrorBody),
    ))]
pub(crate) async fn tail_topic(
    State(st): Shared,
    Path(topic): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Internal topics (Connect's configs, the sink's registries) are never streamed.
    if topic.starts_with('_')
        || st
            .hub
            .meta()
            .partition_count(&topic)
            .await
            .map_err(kafka_unavailable)?
            .is_none()
    {
        let known: Vec<String> = st
            .hub
            .meta()
            .topic_partitions()
            .await
            .map_err(kafka_unavailable)?
            .into_keys()
            .collect();
        return Err(ApiError::not_found(format!(
            "unknown topic {topic:?}; topics that exist: {known:?}"
        )));
    }
    let permit = admit(&st, None)?;
    let topics = vec![topic];
    let feeds = feeds(&st.hub, &topics).await?;
    let start = match q.last_event_id.as_deref().filter(|s| !s.is_empty()) {
        Some(c) => positions_from_cursor(&st, c, &topics, &feeds).await?,
        None => {
            start_positions(
                &st,
                None,
                q.start.unwrap_or(StartFrom::Latest),
                &topics,
                &feeds,
            )
            .await?
        }
    };
    Ok(sse::respond(
        st.sse.clone(),
        StreamSpec {
            consumer: None,
            topics,
            feeds,
            filters: vec![None],
            positions: start.positions,
            closed: tokio_util::sync::CancellationToken::new(),
            preamble: start.preamble,
            permit: Some(permit),
            client: client_addr(peer, &headers),
        },
    ))
}

/// `POST /v1/consumers/{name}/ack`: stores the consumer's position.
#[utoipa::path(post, path = "/v1/consumers/{name}/ack", tag = "streams", request_body = AckRequest,
    security(("consumer" = [])),
    params(("name" = String, Path, description = "Consumer name")),
    responses(
        (status = 200, body = AckResponse),
        (status = 400, description = "Not a cursor of this consumer", body = ErrorBody),
        (status = 401, description = "No or a wrong consumer token", body = ErrorBody),
        (status = 503, description = "Kafka did not answer; retry after `Retry-After`", body = ErrorBody),
    ))]
pub(crate) async fn ack(
    State(st): Shared,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<AckResponse>> {
    // Authenticated before the body is read: a stranger learns nothing from its errors.
    let (record, _) = authenticate_consumer(&st, &name, credential(&headers, &q, false)?).await?;
    let body: AckRequest = crate::body::parse(&body)?;
    let fp = cursor::fingerprint(&record.topics);
    let positions = cursor::decode(&body.cursor, fp, record.topics.len())
        .map_err(|e| ApiError::bad_request(format!("cursor: {e}")))?;
    let stored = st
        .cursors
        .store(&record, &record.topics, &positions)
        .await
        .map_err(kafka_unavailable)?;
    Ok(Json(AckResponse {
        acked_offsets: stored.positions,
        acked_at_ms: stored.acked_at_ms,
    }))
}

/// Liveness: the process serves HTTP. Asks nothing of Kafka, so a broker blip does not get
/// healthy sink tasks replaced.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the broker answers and the consumer registry is readable.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, body = Readiness),
    (status = 503, description = "The broker or the registry is not available", body = Readiness),
))]
pub(crate) async fn readyz(State(st): Shared) -> Response {
    let broker = st.hub.meta().reachable(Duration::from_secs(2)).await;
    let registry = match &broker {
        Ok(()) => st.registry.sync().await.map_err(|e| format!("{e:#}")),
        Err(_) => Err("not checked: the broker is unreachable".to_string()),
    };
    match (broker, registry) {
        (Ok(()), Ok(())) => Json(Readiness {
            status: "ok".into(),
            broker: "reachable".into(),
            registry: "readable".into(),
        })
        .into_response(),
        (broker, registry) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "5")],
            Json(Readiness {
                status: "unavailable".into(),
                broker: broker
                    .map(|()| "reachable".to_string())
                    .unwrap_or_else(|e| format!("{e:#}")),
                registry: registry
                    .map(|()| "readable".to_string())
                    .unwrap_or_else(|e| e),
            }),
        )
            .into_response(),
    }
}

/// The deployment's health over the last minutes (see [`crate::stats`]).
#[utoipa::path(get, path = "/v1/stats", tag = "health", security(("admin" = [])),
    responses((status = 200, description = "The last 15 minutes of health, for the UI's charts (shape owned by the UI, see README)", body = Object), (status = 401, description = "No or a wrong admin token", body = ErrorBody)))]
pub(crate) async fn stats(State(st): Shared) -> Json<Value> {
    Json(st.stats.view())
}

/// The Kafka cluster's brokers and partition health, for operators and `tumbleweed kafka
/// roll`. Kafka unreachable: 503 with `Retry-After`.
#[utoipa::path(get, path = "/v1/kafka/health", tag = "health", security(("admin" = [])),
    responses((status = 200, body = ClusterHealth), (status = 401, description = "No or a wrong admin token", body = ErrorBody), (status = 503, description = "Kafka did not answer; retry after `Retry-After`", body = ErrorBody)))]
pub(crate) async fn kafka_health(State(st): Shared) -> ApiResult<Json<ClusterHealth>> {
    match st.hub.meta().cluster_health().await {
        Ok(h) => Ok(Json(h)),
        Err(e) => Err(ApiError::unavailable(format!("{e:#}"))),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "health", security(("metrics" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "A metrics token is configured and was not sent", body = ErrorBody),
    ))]
pub(crate) async fn metrics(State(st): Shared) -> Response {
    st.metrics.scrape()
}
