//! The Tumbleweed sink: change events from Kafka to consumer services over Server-Sent Events,
//! and the operator API and UI.
//!
//! Seams, one module each:
//! - [`config`]: settings (flags and `TUMBLEWEED_*` environment);
//! - [`auth`]: admin and consumer tokens;
//! - [`body`]: the API's JSON body extractor (a 400 names the field from the deserializer's path);
//! - [`tickets`]: single-use stream tickets for browsers' EventSource;
//! - [`cursor`]: the opaque SSE event id (a position in every subscribed partition);
//! - [`kafka`]: Kafka consumption: shared per-topic readers with a recent-event buffer, a shared
//!   replay of older history for streams that are behind, acknowledged cursors (a compacted
//!   topic);
//! - [`event`]: turning a Debezium record into the JSON object a consumer receives;
//! - [`filter`]: consumer filters (CEL predicates, ops per topic) and column projections,
//!   evaluated once per event and distinct filter;
//! - [`limits`]: how many streams and connections are admitted;
//! - [`memory`]: the process memory guard (`--memory-limit`);
//! - [`sse`]: SSE delivery: framing, keepalive, resume, gap notices, slow consumers;
//! - [`consumers`]: consumer registrations and their admin API (beside [`sources`]);
//! - [`sources`]: PostgreSQL sources: Kafka Connect and PostgreSQL administration, WAL guard;
//! - [`metrics`]: Prometheus counters, gauges and the delivery-delay histogram;
//! - [`emf`]: the same health as CloudWatch Embedded Metric Format lines (ECS, no agent);
//! - [`stats`]: the last 15 minutes of health for the UI's charts, shared by replicas;
//! - [`openapi`]: the OpenAPI document, generated from the `tumbleweed_api` types and the
//!   handlers' annotations (`/v1/openapi.json`);
//! - [`http`]: HTTP routing (API, SSE, UI);
//! - [`conn`]: serving connections: hyper's HTTP/1.1 for most, a lean one for event streams
//!   (an idle stream's memory is mostly its connection's);
//! - [`server`]: wiring of the components and graceful shutdown;
//! - [`wait`]: waiting for a condition until a deadline (one helper for every such wait).

pub mod auth;
pub mod body;
pub mod config;
pub mod conn;
pub mod consumers;
pub mod cursor;
pub mod emf;
pub mod error;
pub mod event;
pub mod filter;
pub mod http;
pub mod kafka;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod openapi;

pub mod server;
pub mod sources;
pub mod sse;
pub mod stats;
pub mod tickets;
pub mod wait;
