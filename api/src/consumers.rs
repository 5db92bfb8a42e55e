//! `/v1/consumers` and `/v1/filters/preview`: registering consumers, their filters, their
//! acknowledged positions and browser tickets.
//!
//! A consumer's token is returned once, by the create call, and stored only as its digest: no
//! other response type has a token field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The key of a filter that applies to every topic without a filter of its own.
pub const ALL_TOPICS: &str = "*";

/// What a filter predicate can name.
pub const FILTER_VARIABLES: [&str; 7] = ["op", "table", "topic", "key", "before", "after", "value"];

/// Where a consumer without an acknowledged position starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// The oldest event Kafka still has.
    Earliest,
    /// Events written after the consumer is created.
    #[default]
    Latest,
}

/// One topic's filter, as declared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterRule {
    /// Operations delivered (`c`, `u`, `d`, `r`, `t`, `m`); replaces the consumer's `ops`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<String>>,
    /// A CEL predicate over `op`, `table`, `topic`, `key`, `before`, `after` and `value`.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// Columns kept in `before`, `after` and `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Columns removed from `before`, `after` and `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_columns: Option<Vec<String>>,
}

/// A consumer's filters, by topic or [`ALL_TOPICS`].
pub type Filters = BTreeMap<String, FilterRule>;

/// Body of `POST /v1/consumers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConsumer {
    /// `[a-z0-9][a-z0-9_-]{0,62}`.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub name: String,
    /// Topics that exist in Kafka (`GET /v1/topics`).
    pub topics: Vec<String>,
    #[serde(default)]
    pub start: StartFrom,
    /// Operations delivered (`c`, `u`, `d`, `r`, `t`, `m`); absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<String>>,
    /// Filters and projections by topic or `*`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = std::collections::HashMap<String, FilterRule>)]
    pub filters: Filters,
}

/// A registered consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsumerView {
    pub name: String,
    /// Sorted, without duplicates.
    pub topics: Vec<String>,
    pub start: StartFrom,
    pub ops: Option<Vec<String>>,
    #[schema(value_type = std::collections::HashMap<String, FilterRule>)]
    pub filters: Filters,
    pub created_at_ms: u64,
    /// Where its stream is: `/v1/consumers/{name}/events`.
    pub events_path: String,
    /// Events between the consumer's live streams and the newest events (the largest of its
    /// streams on this replica); null without a live stream here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_lag_events: Option<u64>,
}

/// `POST /v1/consumers` (201): the consumer and its token, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedConsumer {
    #[serde(flatten)]
    pub consumer: ConsumerView,
    /// The bearer token of the consumer's stream. Stored only as its SHA-256 digest: keep it.
    pub token: String,
}

/// `GET /v1/consumers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsumerList {
    pub consumers: Vec<ConsumerView>,
}

/// Who opened a stream, as far as the sink can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClientAddr {
    /// The TCP peer (a load balancer's address behind one).
    pub peer: Option<String>,
    /// `X-Forwarded-For` as received: only its last entry, the one the load balancer
    /// appended, can be trusted behind one.
    pub forwarded_for: Option<String>,
}

/// One live stream of a consumer on this replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamView {
    pub since_ms: u64,
    pub client: ClientAddr,
    pub lag_events: u64,
}

/// `GET /v1/consumers/{name}`: the consumer, its live streams here and its acknowledged
/// position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsumerDetail {
    #[serde(flatten)]
    pub consumer: ConsumerView,
    /// This replica's streams only: a consumer's other streams may be served by another.
    pub streams: Vec<StreamView>,
    /// Next offset to deliver per topic and partition, as acknowledged (null: none yet).
    pub acked_offsets: BTreeMap<String, Vec<Option<i64>>>,
    pub acked_at_ms: Option<u64>,
}

/// Body of `POST /v1/consumers/{name}/ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// An SSE event id the consumer has processed (everything up to it is acknowledged).
    pub cursor: String,
}

/// `POST /v1/consumers/{name}/ack`: the stored position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AckResponse {
    /// Next offset to deliver per topic and partition.
    pub acked_offsets: BTreeMap<String, Vec<i64>>,
    pub acked_at_ms: u64,
}

/// `POST /v1/consumers/{name}/tickets` (201): a single-use ticket to open one stream from a
/// browser's `EventSource`, which cannot send headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ticket {
    pub ticket: String,
    pub expires_at_ms: u64,
    /// `/v1/consumers/{name}/events?ticket=…`.
    pub events_path: String,
}

fn default_preview_limit() -> usize {
    20
}

/// Body of `POST /v1/filters/preview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub topic: String,
    #[serde(default)]
    pub filter: FilterRule,
    /// The consumer-wide ops the rule falls back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<String>>,
    /// How many of the newest events to show (1 to 200).
    #[serde(default = "default_preview_limit")]
    #[schema(default = 20)]
    pub limit: usize,
}

/// One recent event in a preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PreviewEvent {
    pub partition: i32,
    pub offset: i64,
    pub delivered: bool,
    /// The JSON delivered (or, when filtered out, the event as it is).
    #[schema(value_type = Object)]
    pub event: Option<serde_json::Value>,
}

/// `POST /v1/filters/preview`: what the filter makes of the topic's recent events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PreviewResponse {
    pub topic: String,
    /// Columns seen in the recent events.
    pub columns: Vec<String>,
    pub checked: usize,
    pub delivered: usize,
    pub events: Vec<PreviewEvent>,
}

/// The query string of the events endpoints (`/v1/consumers/{name}/events`,
/// `/v1/topics/{topic}/events`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The consumer token in the URL: refused unless the sink runs with
    /// `TUMBLEWEED_ALLOW_QUERY_TOKEN=true` (URLs end up in access logs). Use
    /// `Authorization: Bearer`, or a ticket from a browser.
    pub token: Option<String>,
    /// A single-use ticket (`POST /v1/consumers/{name}/tickets`): how a browser's
    /// `EventSource`, which cannot send headers, opens a stream.
    pub ticket: Option<String>,
    /// Where to resume, for clients that cannot send the `Last-Event-ID` header.
    pub last_event_id: Option<String>,
    /// Where the live tail starts (`/v1/topics/{topic}/events` only; default `latest`).
    pub start: Option<StartFrom>,
}
