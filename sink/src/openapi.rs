//! The OpenAPI 3.1 document of the sink's HTTP API, served at `/v1/openapi.json`.
//!
//! Design: generated, never written by hand. Every schema is a `tumbleweed_api` type (the same
//! one the handler returns and the helper reads); every operation is the `#[utoipa::path]`
//! beside its handler. A checked-in copy (`api/openapi.json`) is compared with this output by a
//! test, so a change to the contract shows up in review as a diff of that file; schemathesis
//! then exercises the live sink against it in CI (`tests/openapi/run.sh`).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{consumers, http, sources};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tumbleweed sink",
        description = "Change events from PostgreSQL (through Debezium and Kafka) to consumer services over Server-Sent Events, and the operator API that manages sources and consumers.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        consumers::api::create,
        consumers::api::list,
        consumers::api::get,
        consumers::api::delete,
        consumers::api::preview,
        http::list_topics,
        http::tail_topic,
        http::consumer_events,
        http::ack,
        http::issue_ticket,
        http::healthz,
        http::readyz,
        http::stats,
        http::kafka_health,
        http::metrics,
        sources::api::create,
        sources::api::list,
        sources::api::get,
        sources::api::delete,
        sources::api::slots,
        sources::api::drop_orphan,
        document,
    ),
    modifiers(&Security),
    tags(
        (name = "consumers", description = "Register consumers, preview filters, tail topics (admin token)"),
        (name = "streams", description = "A consumer's own endpoints: its SSE stream, acknowledgements, browser tickets (consumer token)"),
        (name = "sources", description = "PostgreSQL sources and their replication slots (admin token)"),
        (name = "health", description = "Liveness, readiness, metrics and cluster health"),
    )
)]
pub struct ApiDoc;

/// The three credentials: the admin token, a consumer's token, a browser's ticket.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(what))
                    .build(),
            )
        };
        components.add_security_scheme("admin", bearer("The admin token (TUMBLEWEED_ADMIN_TOKEN)"));
        components.add_security_scheme(
            "consumer",
            bearer("A consumer's token, returned once by POST /v1/consumers"),
        );
        components.add_security_scheme(
            "metrics",
            bearer("A metrics token (TUMBLEWEED_METRICS_TOKENS), when configured"),
        );
        components.add_security_scheme(
            "ticket",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "ticket",
                "A single-use ticket from POST /v1/consumers/{name}/tickets",
            ))),
        );
    }
}

/// The document as served: pretty JSON, stable order.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)))]
pub async fn document() -> axum::response::Response {
    use axum::response::IntoResponse;
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        DOC.get_or_init(json).clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in copy is what the code generates: regenerate it with
    /// `TUMBLEWEED_WRITE_OPENAPI=1 cargo test -p tumbleweed-sink --lib openapi`.
    #[test]
    fn the_checked_in_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/openapi.json");
        let generated = json() + "\n";
        if std::env::var_os("TUMBLEWEED_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "api/openapi.json is not what the code generates: run TUMBLEWEED_WRITE_OPENAPI=1 cargo test -p tumbleweed-sink --lib openapi, and review the diff"
        );
    }

    #[test]
    fn every_schema_pattern_is_the_validators() {
        let doc: serde_json::Value = serde_json::from_str(&json()).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["CreateSource"]["properties"]["name"]["pattern"],
            tumbleweed_api::names::SOURCE_NAME_PATTERN
        );
        assert_eq!(
            schemas["CreateConsumer"]["properties"]["name"]["pattern"],
            tumbleweed_api::names::CONSUMER_NAME_PATTERN
        );
        assert_eq!(doc["openapi"], "3.1.0");
        // Every operation that is not public names its credential.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let public = ["/healthz", "/readyz", "/v1/openapi.json"].contains(&path.as_str());
                assert_eq!(op.get("security").is_none(), public, "{method} {path}");
            }
        }
    }
}
