//! The API's error type: a status code and one human-readable line, rendered as
//! `{"error": "..."}`. Handlers return `Result<_, ApiError>`; unexpected failures become 500s
//! whose full context chain is logged under a reference that is all the client sees.
//!
//! There is deliberately no blanket conversion from `anyhow::Error`: every failure crossing a
//! handler is classified where it happens (a dependency that did not answer is a 503, a bad
//! request a 400 naming its field), so a broker outage cannot turn into a 500 by a stray `?`.
//! Every 503 carries `Retry-After` ([`DEFAULT_RETRY_AFTER`] unless the handler knows better).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Seconds a client is told to wait after a 503 that gave no other figure.
pub const DEFAULT_RETRY_AFTER: u32 = 5;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The request field the error is about, rendered as `"field"` when set.
    pub field: Option<String>,
    /// Seconds after which a retry may succeed, sent as `Retry-After`.
    pub retry_after: Option<u32>,
    /// Where in the field's text the error is (1-based line and column), rendered as
    /// `"position": {"line", "column"}` (a filter predicate that does not parse).
    pub position: Option<(usize, usize)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            retry_after: None,
            position: None,
        }
    }
    /// Names the request field the error concerns (`{"error": ..., "field": ...}`).
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    /// Adds `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }
    /// An unexpected failure: logged with its whole chain under a reference, and reported to
    /// the client by that reference only. The chain can name hosts, topics and databases,
    /// which are not the caller's business.
    pub fn internal(err: anyhow::Error) -> Self {
        let reference = format!("{:08x}", rand::random::<u32>());
        tracing::error!(%reference, error = format!("{err:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error (reference {reference}; the sink's log has the details)"),
        )
    }
}

/// A request that breaks one of the API's own rules (`tumbleweed_api`): a 400 naming the field.
impl From<tumbleweed_api::FieldError> for ApiError {
    fn from(e: tumbleweed_api::FieldError) -> Self {
        Self::bad_request(e.message).with_field(e.field)
    }
}

impl From<crate::filter::FilterError> for ApiError {
    fn from(e: crate::filter::FilterError) -> Self {
        let mut err = Self::bad_request(e.message).with_field(e.field);
        err.position = e.position;
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = match self.field {
            Some(field) => json!({ "error": self.message, "field": field }),
            None => json!({ "error": self.message }),
        };
        if let Some((line, column)) = self.position {
            body["position"] = json!({ "line": line, "column": column });
        }
        let mut response = (self.status, Json(body)).into_response();
        let retry_after = self
            .retry_after
            .or((self.status == StatusCode::SERVICE_UNAVAILABLE).then_some(DEFAULT_RETRY_AFTER));
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Result type of API handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_503_says_when_to_retry() {
        let r = ApiError::unavailable("Kafka did not answer").into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "5");
        let r = ApiError::unavailable("busy").retry_after(2).into_response();
        assert_eq!(r.headers()["retry-after"], "2");
        let r = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "x").into_response();
        assert_eq!(r.headers()["retry-after"], "5");
        let r = ApiError::bad_request("x").into_response();
        assert!(r.headers().get("retry-after").is_none());
    }

    #[tokio::test]
    async fn a_500_carries_a_reference_not_the_internal_chain() {
        let err = anyhow::anyhow!("connecting to db.internal:5432 as tumbleweed")
            .context("reading slot tumbleweed_orders");
        let r = ApiError::internal(err).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("internal error (reference "), "{text}");
        assert!(
            !text.contains("db.internal") && !text.contains("slot"),
            "{text}"
        );
    }
}
