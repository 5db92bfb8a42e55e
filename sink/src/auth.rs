//! Authentication: the admin bearer token (from configuration) and consumer tokens (issued
//! once at registration, stored only as SHA-256 digests).
//!
//! Both comparisons hash the presented token and compare digests in constant time, so neither
//! the length nor a prefix of a secret leaks through timing.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// SHA-256 of a token, hex-encoded: the only form in which tokens are stored.
pub fn token_digest(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether `presented` hashes to `stored_digest`, compared in constant time.
pub fn token_matches(presented: &str, stored_digest: &str) -> bool {
    token_digest(presented)
        .as_bytes()
        .ct_eq(stored_digest.as_bytes())
        .into()
}

/// A new random consumer token: `twc_` and 32 random bytes, base64url.
pub fn new_consumer_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "twc_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The token of an `Authorization: Bearer …` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Digest of the configured admin token, held in the router's state.
#[derive(Clone)]
pub struct AdminToken {
    digest: String,
}

impl AdminToken {
    pub fn new(token: &str) -> Self {
        Self {
            digest: token_digest(token),
        }
    }
}

/// Middleware guarding the admin API: 401 unless a valid admin bearer token is presented.
pub async fn require_admin(
    State(admin): State<AdminToken>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match bearer(request.headers()) {
        None => Err(ApiError::unauthorized(
            "missing admin token: send `Authorization: Bearer <token>`",
        )),
        Some(t) if token_matches(t, &admin.digest) => Ok(next.run(request).await),
        Some(_) => Err(ApiError::unauthorized("invalid admin token")),
    }
}

/// Who may scrape `/metrics`: the admin token, or a token of its own (so Prometheus need not
/// hold the admin token). Metrics name consumers, sources and databases: never public.
#[derive(Clone)]
pub struct MetricsTokens {
    admin: String,
    metrics: Option<String>,
}

impl MetricsTokens {
    pub fn new(admin: &str, metrics: Option<&str>) -> Self {
        Self {
            admin: token_digest(admin),
            metrics: metrics.map(token_digest),
        }
    }
}

/// Middleware guarding `/metrics`.
pub async fn require_metrics(
    State(tokens): State<MetricsTokens>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match bearer(request.headers()) {
        Some(t)
            if token_matches(t, &tokens.admin)
                || tokens.metrics.as_ref().is_some_and(|m| token_matches(t, m)) =>
        {
            Ok(next.run(request).await)
        }
        _ => Err(ApiError::unauthorized(
            "metrics need `Authorization: Bearer <token>`: the metrics token (TUMBLEWEED_METRICS_TOKEN) or the admin token",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        let t = new_consumer_token();
        let d = token_digest(&t);
        assert!(token_matches(&t, &d));
        assert!(!token_matches(&format!("{t}x"), &d));
        assert!(!token_matches("", &d));
        assert_ne!(new_consumer_token(), t);
        assert!(t.starts_with("twc_") && t.len() > 40);
    }

    #[test]
    fn bearer_header_is_parsed() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(AUTHORIZATION, "bearer   xyz ".parse().unwrap());
        assert_eq!(bearer(&h), Some("xyz"));
        h.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
