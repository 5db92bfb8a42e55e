//! The one JSON body extractor of the API.
//!
//! Design: a request body that does not deserialize is a 400 whose `field` names where it went
//! wrong, taken from the deserializer's path (`serde_path_to_error`): `port`,
//! `filters.orders.where`, `topics[2]`. A missing field is named too (serde reports it at its
//! parent). The content type is not checked: a body is JSON or it is refused, whatever `curl`
//! was told to send. Every handler that takes a body takes it through [`ApiJson`], so the UI
//! can put every refusal next to its field without guessing from the message.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body deserialized into `T`, or a 400 naming the field.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        parse(&bytes).map(ApiJson)
    }
}

/// A query string deserialized into `T`, or a 400 in the API's JSON error shape (axum's own
/// `Query` answers in plain text, which no client of this API expects).
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
    }
}

/// Deserializes a body, naming the field of the first error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let missing = missing_field(&message);
        // "." is the whole body, "?" a place the parser never reached (bad JSON).
        let field = match (path.as_str(), missing) {
            ("." | "?", None) => None,
            ("." | "?", Some(m)) => Some(m.to_string()),
            (p, Some(m)) => Some(format!("{p}.{m}")),
            (p, None) => Some(p.to_string()),
        };
        let err = ApiError::bad_request(format!("invalid request body: {message}"));
        match field {
            Some(f) => err.with_field(f),
            None => err,
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    Ok(value)
}

/// The field serde names in "missing field `x`" (reported at the parent's path).
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        r#where: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        name: String,
        #[serde(default)]
        port: u16,
        #[serde(default)]
        topics: Vec<String>,
        #[serde(default)]
        filters: BTreeMap<String, Inner>,
    }

    fn field(body: &str) -> Option<String> {
        parse::<Req>(body.as_bytes()).unwrap_err().field
    }

    #[test]
    fn a_refused_body_names_the_field() {
        for (body, want) in [
            (r#"{"name":"a","port":70000}"#, Some("port")),
            (r#"{"name":"a","port":"x"}"#, Some("port")),
            (r#"{"name":"a","topics":["t",3]}"#, Some("topics[1]")),
            (
                r#"{"name":"a","filters":{"orders":{"where":1}}}"#,
                Some("filters.orders.where"),
            ),
            (
                r#"{"name":"a","filters":{"orders":{}}}"#,
                Some("filters.orders.where"),
            ),
            (r#"{"port":1}"#, Some("name")),
            (r#"{"name":"a","nmae":1}"#, Some("nmae")),
            (r#"{"name":"a""#, None),
            ("[]", None),
        ] {
            assert_eq!(field(body).as_deref(), want, "{body}");
        }
        let ok: Req = parse(br#"{"name":"a","port":5432}"#).unwrap();
        assert_eq!(ok.port, 5432);
        assert!(parse::<Req>(br#"{"name":"a"} trailing"#).is_err());
    }
}
