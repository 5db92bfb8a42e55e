//! Names: what an operator may call a source or a consumer, and the names derived from them.
//!
//! A source name ends up in slot, publication, topic and connector names and in the heartbeat
//! query, so it is `[a-z0-9_]{1,40}`: safe in every one of those places and, with the
//! `tw_<deployment>_` prefix, under PostgreSQL's 63-byte identifiers. A consumer name appears in
//! URLs and Kafka keys: `[a-z0-9][a-z0-9_-]{0,62}`. A deployment id has no `_`: with one,
//! deployment `a` would own `tw_a_b_orders`, the slot of source `orders` of deployment `a_b`.
//! Tables are `schema.table`, each part a plain identifier, so a name is never pasted into SQL
//! unquoted nor read as a regex by Debezium.

use crate::error::FieldError;

/// Longest source name: `tw_` + a 16-character deployment id + `_` + 40 is 60 bytes.
pub const MAX_SOURCE_NAME_LEN: usize = 40;

/// Longest consumer name.
pub const MAX_CONSUMER_NAME_LEN: usize = 63;

/// Longest deployment id (see [`slot_prefix`]).
pub const MAX_DEPLOYMENT_ID_LEN: usize = 16;

/// Longest PostgreSQL identifier.
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// The source-name rule as a JSON-schema pattern (the OpenAPI document and the UI).
pub const SOURCE_NAME_PATTERN: &str = "^[a-z0-9_]{1,40}$";

/// The consumer-name rule as a JSON-schema pattern.
pub const CONSUMER_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,62}$";

/// Prefix of the slot and publication names of sources created before deployment ids. Such a
/// slot stays its source's (the connector config names it), but no deployment can tell whose it
/// is once the source is gone, so it is never offered as an orphan.
pub const LEGACY_SLOT_PREFIX: &str = "tumbleweed_";

/// Prefix of the Kafka Connect connector names owned by Tumbleweed.
pub const CONNECTOR_PREFIX: &str = "tumbleweed-";

/// Whether `name` is a valid source name (`[a-z0-9_]{1,40}`).
pub fn valid_source_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SOURCE_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks a source name from a path or a body.
pub fn check_source_name(name: &str) -> Result<(), FieldError> {
    if valid_source_name(name) {
        Ok(())
    } else {
        Err(FieldError::new(
            "name",
            format!("invalid source name {name:?}: use 1 to {MAX_SOURCE_NAME_LEN} characters among a-z, 0-9 and _"),
        ))
    }
}

/// Whether `name` is a valid consumer name: `[a-z0-9][a-z0-9_-]{0,62}`.
pub fn valid_consumer_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_CONSUMER_NAME_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// Checks a consumer name from a path or a body.
pub fn check_consumer_name(name: &str) -> Result<(), FieldError> {
    if valid_consumer_name(name) {
        Ok(())
    } else {
        Err(FieldError::new(
            "name",
            format!("invalid consumer name {name:?}: use 1-63 characters [a-z0-9_-], starting with a letter or digit"),
        ))
    }
}

/// Checks a deployment id: 1 to [`MAX_DEPLOYMENT_ID_LEN`] characters among a-z and 0-9.
pub fn check_deployment_id(id: &str) -> Result<(), String> {
    if !id.is_empty()
        && id.len() <= MAX_DEPLOYMENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "invalid deployment id {id:?}: use 1 to {MAX_DEPLOYMENT_ID_LEN} characters among a-z and 0-9 (TUMBLEWEED_DEPLOYMENT_ID)"
        ))
    }
}

/// Prefix of the slots and publications a deployment creates: `tw_<deployment>_`. A slot
/// with this prefix and no source claiming it is this deployment's orphan.
pub fn slot_prefix(deployment: &str) -> String {
    format!("tw_{deployment}_")
}

/// Slot and publication name of a source created by `deployment`.
pub fn slot_name(deployment: &str, source: &str) -> String {
    format!("{}{source}", slot_prefix(deployment))
}

/// Slot and publication name of a source created before deployment ids.
pub fn legacy_slot_name(source: &str) -> String {
    format!("{LEGACY_SLOT_PREFIX}{source}")
}

/// Connector name of a source.
pub fn connector_name(source: &str) -> String {
    format!("{CONNECTOR_PREFIX}{source}")
}

/// Whether `s` is a plain PostgreSQL identifier: letters, digits and `_`, not starting with a
/// digit, at most 63 bytes.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= MAX_IDENTIFIER_LEN
}

/// A table as `schema.table`, both parts plain identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

impl TableName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (schema, table) = s
            .split_once('.')
            .ok_or_else(|| format!("table '{s}' must be written schema.table"))?;
        for part in [schema, table] {
            if !is_identifier(part) {
                return Err(format!(
                    "table '{s}': '{part}' is not a plain identifier (letters, digits and _, not starting with a digit, at most 63 bytes)"
                ));
            }
        }
        Ok(Self {
            schema: schema.into(),
            table: table.into(),
        })
    }

    /// The name as written, `schema.table`.
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_restricted() {
        assert!(valid_source_name("orders_1"));
        for bad in ["", "a b", "a'b", "A", "a-b", &"x".repeat(41)] {
            assert!(!valid_source_name(bad), "{bad:?}");
        }
        assert_eq!(check_source_name("A").unwrap_err().field, "name");
    }

    #[test]
    fn consumer_names_are_restricted() {
        assert!(valid_consumer_name("billing-eu_1"));
        assert!(valid_consumer_name(&"x".repeat(63)));
        for bad in ["", "-a", "_a", "A", "a.b", "a b", &"x".repeat(64)] {
            assert!(!valid_consumer_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn deployment_ids_have_no_separator() {
        assert!(check_deployment_id("prod1").is_ok());
        for bad in ["", "a_b", "A", "a-b", &"x".repeat(17)] {
            assert!(check_deployment_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(slot_name("prod1", "orders"), "tw_prod1_orders");
    }

    #[test]
    fn tables_are_two_identifiers() {
        assert_eq!(
            TableName::parse("sales.Orders").unwrap().dotted(),
            "sales.Orders"
        );
        for bad in ["items", "public.it'ems", "public.a b", "public.1a", "a.b.c"] {
            assert!(TableName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_say_what_the_validators_do() {
        // The published patterns (OpenAPI, UI) are written beside the functions: both must give
        // the same verdict on every name, here every 1-3 character name over a telling alphabet
        // and a few long ones.
        let source = regex::Regex::new(SOURCE_NAME_PATTERN).unwrap();
        let consumer = regex::Regex::new(CONSUMER_NAME_PATTERN).unwrap();
        let alphabet = ['a', 'Z', '0', '_', '-', '.', ' ', 'é'];
        let mut names = vec![
            String::new(),
            "x".repeat(40),
            "x".repeat(41),
            "x".repeat(63),
            "x".repeat(64),
        ];
        for a in alphabet {
            names.push(a.to_string());
            for b in alphabet {
                names.push(format!("{a}{b}"));
                for c in alphabet {
                    names.push(format!("{a}{b}{c}"));
                }
            }
        }
        for n in &names {
            assert_eq!(source.is_match(n), valid_source_name(n), "source {n:?}");
            assert_eq!(
                consumer.is_match(n),
                valid_consumer_name(n),
                "consumer {n:?}"
            );
        }
    }
}
