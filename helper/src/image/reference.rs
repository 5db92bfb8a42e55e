//! Image references (`registry/repository[:tag][@sha256:digest]`).
//!
//! # Design
//!
//! A deliberately small parser following the distribution rules the tools agree on: the
//! first path component is a registry only if it looks like a host (has a `.` or `:`, or
//! is `localhost`); otherwise the reference is on Docker Hub, whose API host is
//! `registry-1.docker.io` and whose one-component names live under `library/`.

use std::fmt;

use crate::UsageError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host[:port] as used in API URLs.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Self, UsageError> {
        let bad = |why: &str| UsageError(format!("invalid image reference {s:?}: {why}"));
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("digest must be sha256:<hex>"))?;
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad("digest must be sha256 followed by 64 hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => {
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            _ => (rest, None),
        };
        if name.is_empty() || tag.as_deref() == Some("") {
            return Err(bad("empty name or tag"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            Some(_) => ("registry-1.docker.io".to_string(), name.to_string()),
            None => (
                "registry-1.docker.io".to_string(),
                format!("library/{name}"),
            ),
        };
        if repository.is_empty()
            || !repository
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        {
            return Err(bad("repository must be lowercase [a-z0-9._-/]"));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The tag or digest to fetch the manifest by.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("gcr.io/distroless/cc-debian12@{d}")).unwrap();
        assert_eq!(r.registry, "gcr.io");
        assert_eq!(r.repository, "distroless/cc-debian12");
        assert_eq!(r.reference(), d);
        let r = Reference::parse("127.0.0.1:5000/base:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "base", Some("v1"))
        );
        let r = Reference::parse("debian:12").unwrap();
        assert_eq!(r.name(), "registry-1.docker.io/library/debian");
        let r = Reference::parse("1.dkr.ecr.eu-west-1.amazonaws.com/tw-sink").unwrap();
        assert_eq!(r.reference(), "latest");
        assert!(Reference::parse("Bad/Name").is_err());
        assert!(Reference::parse("x@sha256:12").is_err());
    }
}
