//! Database passwords by reference, so that neither Kafka Connect's config topic nor the
//! sink's source registry ever holds one.
//!
//! A source may name its password as `password_secret` instead of giving it:
//! - `env:NAME`: the environment variable `NAME`, which must be set for the sink and for every
//!   Connect worker (on ECS both read the same Secrets Manager secret). Only
//!   `TUMBLEWEED_SECRET_<KEY>` (and the older `TUMBLEWEED_SOURCE_DB_PASSWORD`) may be named:
//!   the sink sends the value to the database a source names, so `env:AWS_SECRET_ACCESS_KEY`
//!   or `env:TUMBLEWEED_ADMIN_TOKEN` would hand other secrets to whoever runs that database;
//! - `file:/absolute/path`: the whole content of a file (one trailing newline dropped) that the
//!   sink and the Connect workers can read, e.g. mode 0600 on the local stack. For the same
//!   reason the file must lie in the sink's secrets directory (`TUMBLEWEED_SECRETS_DIR`,
//!   checked when a source is created: [`SecretRef::check_file_in`]).
//!
//! The connector config then carries a Kafka Connect config-provider placeholder
//! (`${env:NAME}`, or `${dir:/absolute:path}` for Connect's DirectoryConfigProvider) that
//! Connect resolves when it starts a task; the sink resolves the same reference itself for its
//! own connections (readiness checks, slots, the WAL guard).

use std::path::Path;

/// Environment variables a source may name: `TUMBLEWEED_SECRET_<KEY>`.
pub const ENV_PREFIX: &str = "TUMBLEWEED_SECRET_";

/// The single source password variable of deployments before per-source secrets.
pub const LEGACY_ENV: &str = "TUMBLEWEED_SOURCE_DB_PASSWORD";

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
            if !ok {
                return Err(format!("password_secret: {name:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"));
            }
            let allowed = name == LEGACY_ENV
                || name
                    .strip_prefix(ENV_PREFIX)
                    .is_some_and(|key| !key.is_empty());
            return if allowed {
                Ok(Self::Env(name.to_string()))
            } else {
                Err(format!("password_secret: env:{name} is not a source secret: name a variable {ENV_PREFIX}<KEY> (on ECS, a source_db_password_secrets entry), so that no other variable of the sink or the Connect workers can be sent to a database"))
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

    /// For a file reference, checks that the file (symbolic links resolved) lies in `dir`, the
    /// sink's secrets directory; `None` refuses every file reference.
    pub fn check_file_in(&self, dir: Option<&Path>) -> Result<(), String> {
        let Self::File(path) = self else {
            return Ok(());
        };
        let Some(dir) = dir else {
            return Err(format!("password_secret: file:{path} is refused because this sink has no secrets directory: start it with TUMBLEWEED_SECRETS_DIR set to the directory holding the password files, or name an env:{ENV_PREFIX}<KEY> variable"));
        };
        let real = |p: &Path| {
            std::fs::canonicalize(p)
                .map_err(|e| format!("password_secret: cannot read {}: {e}", p.display()))
        };
        let (file, dir_real) = (real(Path::new(path))?, real(dir)?);
        if file.starts_with(&dir_real) && file != dir_real {
            Ok(())
        } else {
            Err(format!(
                "password_secret: {path} is outside the sink's secrets directory {} (TUMBLEWEED_SECRETS_DIR): put the password file there",
                dir.display()
            ))
        }
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
            (
                "env:TUMBLEWEED_SECRET_ORDERS",
                "${env:TUMBLEWEED_SECRET_ORDERS}",
            ),
            (
                "env:TUMBLEWEED_SOURCE_DB_PASSWORD",
                "${env:TUMBLEWEED_SOURCE_DB_PASSWORD}",
            ),
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
            "env:PG_PASSWORD",
            "env:TUMBLEWEED_ADMIN_TOKEN",
            "env:AWS_SECRET_ACCESS_KEY",
            "env:TUMBLEWEED_SECRET_",
            "file:rel/path",
            "file:/a/../b",
            "file:/a:b",
        ] {
            let e = SecretRef::parse(bad).unwrap_err();
            assert!(e.starts_with("password_secret"), "{bad}: {e}");
        }
    }

    #[test]
    fn file_secrets_must_lie_in_the_secrets_directory() {
        let base = std::env::temp_dir().join(format!("tw-secret-dir-{}", std::process::id()));
        let (dir, outside) = (base.join("secrets"), base.join("elsewhere"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(dir.join("pw"), "x").unwrap();
        std::fs::write(outside.join("pw"), "x").unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(outside.join("pw"), &link).unwrap();
        let file = |p: &Path| SecretRef::parse(&format!("file:{}", p.display())).unwrap();
        assert_eq!(file(&dir.join("pw")).check_file_in(Some(&dir)), Ok(()));
        for bad in [outside.join("pw"), link, dir.join("missing")] {
            let e = file(&bad).check_file_in(Some(&dir)).unwrap_err();
            assert!(e.starts_with("password_secret"), "{e}");
        }
        let e = file(&dir.join("pw")).check_file_in(None).unwrap_err();
        assert!(e.contains("TUMBLEWEED_SECRETS_DIR"), "{e}");
        assert_eq!(
            SecretRef::parse("env:TUMBLEWEED_SECRET_A")
                .unwrap()
                .check_file_in(None),
            Ok(())
        );
        let _ = std::fs::remove_dir_all(&base);
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
