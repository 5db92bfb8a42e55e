//! Database passwords by reference, so that neither Kafka Connect's config topic nor the
//! sink's source registry ever holds one.
//!
//! A source may name its password as `password_secret` instead of giving it:
//! - `env:NAME`: the environment variable `NAME`, which must be set for the sink and for every
//!   Connect worker (on ECS both read the same Secrets Manager secret);
//! - `file:/absolute/path`: the whole content of a file (one trailing newline dropped) that the
//!   sink and the Connect workers can read, e.g. mode 0600 on the local stack.
//!
//! The connector config then carries a Kafka Connect config-provider placeholder
//! (`${env:NAME}`, or `${dir:/absolute:path}` for Connect's DirectoryConfigProvider) that
//! Connect resolves when it starts a task; the sink resolves the same reference itself for its
//! own connections (readiness checks, slots, the WAL guard).

use std::path::Path;

/// A parsed `password_secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(String),
}

impl SecretRef {
    /// Parses `env:NAME` or `file:/absolute/path`; the error says what is accepted.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(name) = s.strip_prefix("env:") {
            let ok = !name.is_empty()
                && name.len() <= 128
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            return if ok {
                Ok(Self::Env(name.to_string()))
            } else {
                Err(format!("password_secret: {name:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"))
            };
        }
        if let Some(path) = s.strip_prefix("file:") {
            let p = Path::new(path);
            let ok = p.is_absolute()
                && p.file_name().is_some()
                && path.len() <= 1024
                && !path.contains("..")
                && !path.contains(['}', ':', '$'])
                && !path.chars().any(char::is_control);
            return if ok {
                Ok(Self::File(path.to_string()))
            } else {
                Err(format!("password_secret: {path:?} must be an absolute file path without '..', ':', '$' or '}}'"))
            };
        }
        Err("password_secret must be env:NAME or file:/absolute/path".to_string())
    }

    /// The Kafka Connect placeholder that resolves to the same secret.
    pub fn placeholder(&self) -> String {
        match self {
            Self::Env(name) => format!("${{env:{name}}}"),
            Self::File(path) => {
                let p = Path::new(path);
                let dir = p
                    .parent()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                let file = p
                    .file_name()
                    .map(|f| f.to_string_lossy())
                    .unwrap_or_default();
                format!("${{dir:{dir}:{file}}}")
            }
        }
    }

    /// Reads a placeholder back (`None` for a literal password).
    pub fn from_placeholder(value: &str) -> Option<Self> {
        let inner = value.strip_prefix("${")?.strip_suffix('}')?;
        if let Some(name) = inner.strip_prefix("env:") {
            return Some(Self::Env(name.to_string()));
        }
        let rest = inner.strip_prefix("dir:")?;
        let (dir, file) = rest.rsplit_once(':')?;
        Some(Self::File(format!("{}/{file}", dir.trim_end_matches('/'))))
    }

    /// The secret's value as the sink sees it.
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            Self::Env(name) => std::env::var(name).map_err(|_| {
                format!("password_secret: the environment variable {name} is not set for the sink")
            }),
            Self::File(path) => std::fs::read_to_string(path)
                .map(|s| s.strip_suffix('\n').unwrap_or(&s).to_string())
                .map_err(|e| format!("password_secret: cannot read {path}: {e}")),
        }
    }
}

impl std::fmt::Display for SecretRef {
    /// The reference as an operator writes it (`env:NAME`, `file:/path`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{path}"),
        }
    }
}

/// The password a connector config's `database.password` stands for: a placeholder is
/// resolved, a literal is itself.
pub fn resolve_config_password(value: &str) -> Result<String, String> {
    match SecretRef::from_placeholder(value) {
        Some(r) => r.resolve(),
        None => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_through_connect_placeholders() {
        for (text, placeholder) in [
            ("env:PG_PASSWORD", "${env:PG_PASSWORD}"),
            ("file:/run/secrets/pg", "${dir:/run/secrets:pg}"),
        ] {
            let r = SecretRef::parse(text).unwrap();
            assert_eq!(r.placeholder(), placeholder);
            assert_eq!(SecretRef::from_placeholder(placeholder), Some(r));
        }
        assert_eq!(SecretRef::from_placeholder("hunter2"), None);
    }

    #[test]
    fn bad_references_say_what_is_accepted() {
        for bad in [
            "",
            "vault:x",
            "env:",
            "env:1A",
            "env:A-B",
            "file:rel/path",
            "file:/a/../b",
            "file:/a:b",
        ] {
            let e = SecretRef::parse(bad).unwrap_err();
            assert!(e.starts_with("password_secret"), "{bad}: {e}");
        }
    }

    #[test]
    fn file_secrets_drop_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("tw-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let r = SecretRef::parse(&format!("file:{}", f.display())).unwrap();
        assert_eq!(r.resolve().unwrap(), "s3cret");
        assert_eq!(resolve_config_password(&r.placeholder()).unwrap(), "s3cret");
        assert_eq!(resolve_config_password("literal").unwrap(), "literal");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
