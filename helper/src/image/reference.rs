//! Image references (`registry/repository[:tag][@sha256:digest]`).
//!
//! # Design
//!
//! Parsing is `oci-spec`'s `Reference` (re-exported by `oci-client`), the Docker
//! normalisation rules every tool agrees on: the first path component is a registry only if
//! it looks like a host (has a `.` or `:`, or is `localhost`); otherwise the reference is on
//! Docker Hub (`docker.io`, API host `index.docker.io`), whose one-component names live under
//! `library/`.
//!
//! Ours are two small things the crate does not give: a parse error is a [`UsageError`]
//! naming the input (exit code 2), and [`Parsed::tag_given`]: the crate fills in `latest`
//! when a reference has neither tag nor digest, but `image push --to REPO` must then take the
//! tag from `--tag` or the layout.

pub use oci_client::Reference;

use crate::UsageError;

/// A parsed reference, and whether its tag was written out.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub reference: Reference,
    pub tag_given: bool,
}

pub fn parse(s: &str) -> Result<Parsed, UsageError> {
    let reference: Reference = s
        .parse()
        .map_err(|e| UsageError(format!("invalid image reference {s:?}: {e}")))?;
    // A `:` in the last path component (before any `@digest`) is a tag; one in an earlier
    // component is a registry port.
    let name = s.split('@').next().unwrap_or(s);
    let tag_given = name.rsplit('/').next().is_some_and(|c| c.contains(':'));
    Ok(Parsed {
        reference,
        tag_given,
    })
}

/// `registry/repository`, without tag or digest.
pub fn name(r: &Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("gcr.io/distroless/cc-debian12@{d}")).unwrap();
        assert_eq!(r.reference.registry(), "gcr.io");
        assert_eq!(r.reference.repository(), "distroless/cc-debian12");
        assert_eq!(r.reference.digest(), Some(d.as_str()));
        assert!(!r.tag_given);
        let r = parse("127.0.0.1:5000/base:v1").unwrap();
        let r = (r.reference, r.tag_given);
        assert_eq!(
            (r.0.registry(), r.0.repository(), r.0.tag(), r.1),
            ("127.0.0.1:5000", "base", Some("v1"), true)
        );
        let r = parse("debian:12").unwrap();
        assert_eq!(name(&r.reference), "docker.io/library/debian");
        assert_eq!(r.reference.resolve_registry(), "index.docker.io");
        let r = parse("1.dkr.ecr.eu-west-1.amazonaws.com/tw-sink").unwrap();
        assert_eq!(r.reference.tag(), Some("latest"));
        assert!(!r.tag_given);
        assert!(parse("127.0.0.1:5000/x").is_ok_and(|r| !r.tag_given));
        assert!(parse("Bad/Name").is_err());
        let e = parse("x@sha256:12").unwrap_err();
        assert!(
            e.0.starts_with("invalid image reference \"x@sha256:12\": "),
            "{e}"
        );
    }
}
