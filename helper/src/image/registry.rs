//! A minimal OCI distribution API client.
//!
//! # Design
//!
//! Only what shipping one image needs: manifests (GET/PUT), blobs (GET with digest
//! verification, HEAD, monolithic upload via POST + PUT, cross-repository mount). Auth:
//!
//! * `Basic` credentials sent up front (ECR: user `AWS`, password from
//!   `GetAuthorizationToken`);
//! * the token flow otherwise: a `401` with `WWW-Authenticate: Bearer realm=..,service=..`
//!   is answered by fetching a token for the request's scopes (with the Basic credentials
//!   if any, anonymously if not) and retrying once — this is how public bases are pulled;
//! * `insecure`: plain HTTP, for a local test registry.
//!
//! Bodies are `Bytes`, so a request can be re-sent after the auth round-trip.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context};
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[derive(Clone)]
pub enum Credentials {
    Anonymous,
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => write!(f, "Anonymous"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
        }
    }
}

/// Result of a mount attempt.
pub enum Mount {
    Mounted,
    /// The registry started an ordinary upload instead; its location.
    NotMounted(String),
}

pub struct Registry {
    http: reqwest::Client,
    base: String,
    host: String,
    creds: Credentials,
    tokens: Mutex<HashMap<String, String>>,
}

impl Registry {
    pub fn new(host: &str, insecure: bool, creds: Credentials) -> anyhow::Result<Self> {
        let scheme = if insecure { "http" } else { "https" };
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(600))
                .user_agent(concat!("tumbleweed-helper/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base: format!("{scheme}://{host}"),
            host: host.to_string(),
            creds,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{}", self.base, location)
        }
    }

    /// Sends a request, doing the bearer-token dance on 401.
    async fn send(
        &self,
        method: Method,
        url: &str,
        scopes: &[String],
        headers: HeaderMap,
        body: Option<bytes_body::Body>,
    ) -> anyhow::Result<reqwest::Response> {
        let key = scopes.join(" ");
        let build = |auth: Option<&str>| {
            let mut req = self
                .http
                .request(method.clone(), url)
                .headers(headers.clone());
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            match (auth, &self.creds) {
                (Some(t), _) => req.bearer_auth(t),
                (None, Credentials::Basic { user, password }) => {
                    req.basic_auth(user, Some(password))
                }
                (None, Credentials::Anonymous) => req,
            }
        };
        let cached = self.tokens.lock().unwrap().get(&key).cloned();
        let resp = build(cached.as_deref())
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            bail!("{method} {url}: HTTP 401 unauthorized (check the registry credentials)");
        };
        let token = self.fetch_token(params, scopes).await?;
        self.tokens.lock().unwrap().insert(key, token.clone());
        let resp = build(Some(&token))
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            bail!(
                "{method} {url}: HTTP 401 even with a token (no access to {})",
                scopes.join(", ")
            );
        }
        Ok(resp)
    }

    async fn fetch_token(&self, params: &str, scopes: &[String]) -> anyhow::Result<String> {
        let mut realm = None;
        let mut service = None;
        for part in split_challenge(params) {
            if let Some((k, v)) = part.split_once('=') {
                let v = v.trim_matches('"').to_string();
                match k.trim() {
                    "realm" => realm = Some(v),
                    "service" => service = Some(v),
                    _ => {}
                }
            }
        }
        let realm = realm.ok_or_else(|| {
            anyhow!(
                "registry {} sent a Bearer challenge without realm",
                self.host
            )
        })?;
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        for s in scopes {
            query.push(("scope", s.clone()));
        }
        let mut req = self.http.get(&realm).query(&query);
        if let Credentials::Basic { user, password } = &self.creds {
            req = req.basic_auth(user, Some(password));
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("fetching a registry token from {realm}"))?;
        if !resp.status().is_success() {
            bail!(
                "fetching a registry token from {realm}: HTTP {}",
                resp.status()
            );
        }
        let v: serde_json::Value = resp.json().await.context("parsing the registry token")?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no token in the answer from {realm}"))
    }

    fn pull_scope(repo: &str) -> String {
        format!("repository:{repo}:pull")
    }
    fn push_scope(repo: &str) -> String {
        format!("repository:{repo}:pull,push")
    }

    async fn check(resp: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        bail!("{what}: HTTP {status} {}", body.trim())
    }

    /// GETs a manifest (or index); returns (media type, raw bytes, digest).
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> anyhow::Result<(String, Vec<u8>, String)> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST]
                .join(", ")
                .parse()
                .unwrap(),
        );
        let resp = self
            .send(Method::GET, &url, &[Self::pull_scope(repo)], h, None)
            .await?;
        let resp = Self::check(
            resp,
            &format!("GET manifest {}/{repo}:{reference}", self.host),
        )
        .await?;
        let media = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .to_string();
        let bytes = resp.bytes().await?.to_vec();
        let digest = digest_of(&bytes);
        if reference.starts_with("sha256:") && digest != reference {
            bail!(
                "manifest {repo}@{reference} has digest {digest}: refusing a mismatching manifest"
            );
        }
        // Fall back to the document's own mediaType when the header is generic.
        let media = if media.is_empty() || media == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or(media)
        } else {
            media
        };
        Ok((media, bytes, digest))
    }

    /// GETs a blob and verifies its digest.
    pub async fn get_blob(&self, repo: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let resp = self
            .send(
                Method::GET,
                &url,
                &[Self::pull_scope(repo)],
                HeaderMap::new(),
                None,
            )
            .await?;
        let resp = Self::check(resp, &format!("GET blob {}/{repo}@{digest}", self.host)).await?;
        let bytes = resp.bytes().await?.to_vec();
        let got = digest_of(&bytes);
        if got != digest {
            bail!("blob {repo}@{digest} arrived with digest {got}");
        }
        Ok(bytes)
    }

    /// Whether `repo` already has the blob.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> anyhow::Result<bool> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let resp = self
            .send(
                Method::HEAD,
                &url,
                &[Self::push_scope(repo)],
                HeaderMap::new(),
                None,
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => bail!("HEAD blob {}/{repo}@{digest}: HTTP {s}", self.host),
        }
    }

    /// Tries to mount `digest` from `from` (same registry) into `repo`.
    pub async fn mount(&self, repo: &str, digest: &str, from: &str) -> anyhow::Result<Mount> {
        let url = format!(
            "{}/v2/{repo}/blobs/uploads/?mount={digest}&from={from}",
            self.base
        );
        let scopes = [Self::push_scope(repo), Self::pull_scope(from)];
        let resp = self
            .send(
                Method::POST,
                &url,
                &scopes,
                HeaderMap::new(),
                Some(bytes_body::empty()),
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::NotMounted(self.location(&resp)?)),
            _ => {
                Self::check(resp, &format!("mounting {digest} from {from} into {repo}")).await?;
                unreachable!()
            }
        }
    }

    fn location(&self, resp: &reqwest::Response) -> anyhow::Result<String> {
        resp.headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| self.absolute(l))
            .ok_or_else(|| anyhow!("registry {} answered an upload without Location", self.host))
    }

    /// Starts an upload session; returns its location.
    pub async fn start_upload(&self, repo: &str) -> anyhow::Result<String> {
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let resp = self
            .send(
                Method::POST,
                &url,
                &[Self::push_scope(repo)],
                HeaderMap::new(),
                Some(bytes_body::empty()),
            )
            .await?;
        let resp =
            Self::check(resp, &format!("starting an upload to {}/{repo}", self.host)).await?;
        self.location(&resp)
    }

    /// Completes an upload session with the whole blob (monolithic PUT).
    pub async fn finish_upload(
        &self,
        repo: &str,
        location: &str,
        digest: &str,
        data: Vec<u8>,
    ) -> anyhow::Result<()> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, "application/octet-stream".parse().unwrap());
        let resp = self
            .send(
                Method::PUT,
                &url,
                &[Self::push_scope(repo)],
                h,
                Some(bytes_body::from(data)),
            )
            .await?;
        Self::check(
            resp,
            &format!("uploading blob {digest} to {}/{repo}", self.host),
        )
        .await?;
        Ok(())
    }

    /// PUTs a manifest under `reference` (tag or digest); returns the digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        data: Vec<u8>,
    ) -> anyhow::Result<String> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let digest = digest_of(&data);
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            media_type.parse().context("manifest media type")?,
        );
        let resp = self
            .send(
                Method::PUT,
                &url,
                &[Self::push_scope(repo)],
                h,
                Some(bytes_body::from(data)),
            )
            .await?;
        Self::check(
            resp,
            &format!("PUT manifest {}/{repo}:{reference}", self.host),
        )
        .await?;
        Ok(digest)
    }
}

/// Splits `a="x,y",b=c` on commas outside quotes.
fn split_challenge(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Re-sendable request bodies.
mod bytes_body {
    pub type Body = Vec<u8>;
    pub fn empty() -> Body {
        Vec::new()
    }
    pub fn from(v: Vec<u8>) -> Body {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing_respects_quotes() {
        let p = split_challenge(
            r#"realm="https://auth.example/token",service="reg",scope="repository:a:pull,push""#,
        );
        assert_eq!(p.len(), 3);
        assert_eq!(p[2], r#"scope="repository:a:pull,push""#);
    }

    #[test]
    fn digest_format() {
        assert_eq!(
            digest_of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
