//! CIDR validation and normalisation for whitelist entries.
//!
//! # Design
//!
//! Every CIDR that reaches AWS or the tfvars file goes through [`normalize`] first, so the
//! rest of the CLI only ever sees canonical IPv4 strings (`10.0.0.0/8`). IPv6 is refused: the
//! deployment's managed prefix lists are IPv4 (`modules/security`), and AWS would reject the
//! entry only at apply time. Parsing is delegated to [`ipnet`]: bare addresses become host
//! routes (`/32`), an entry with host bits set (`10.0.0.1/8`) is *rejected* rather than
//! silently truncated — a typo in a firewall rule should be loud — and duplicates are
//! dropped keeping the first occurrence. All bad entries are collected so the user can fix
//! them in one go; the error is a [`crate::UsageError`], which the binary maps to exit 2.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::UsageError;

/// Parses one entry into a canonical network.
pub fn parse_one(entry: &str) -> Result<IpNet, String> {
    let s = entry.trim();
    if s.is_empty() {
        return Err("empty entry".to_string());
    }
    let net = parse_any(s)?;
    if let IpNet::V6(_) = net {
        return Err(format!(
            "{s:?} is IPv6; the deployment's prefix lists and load balancer are IPv4-only: give IPv4 addresses or CIDRs"
        ));
    }
    Ok(net)
}

fn parse_any(s: &str) -> Result<IpNet, String> {
    if s.contains('/') {
        let net = IpNet::from_str(s).map_err(|_| format!("{s:?} is not a valid CIDR"))?;
        if net.trunc() != net {
            return Err(format!(
                "{s:?} has host bits set (did you mean {}?)",
                net.trunc()
            ));
        }
        Ok(net)
    } else {
        let addr = IpAddr::from_str(s)
            .map_err(|_| format!("{s:?} is neither an IP address nor a CIDR"))?;
        Ok(IpNet::from(addr))
    }
}

/// Validates, normalises and de-duplicates `entries` (order of first occurrence kept).
///
/// On any bad entry, returns a usage error naming every bad entry.
pub fn normalize<S: AsRef<str>>(entries: &[S]) -> Result<Vec<String>, UsageError> {
    let mut out: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    for e in entries {
        match parse_one(e.as_ref()) {
            Ok(net) => {
                let s = net.to_string();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Err(msg) => bad.push(msg),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(UsageError(format!("invalid CIDR: {}", bad.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reported: `render --consumer-cidrs 2001:db8::1` wrote `2001:db8::1/128` into a tfvars
    // whose prefix lists are IPv4 (modules/security), so apply failed far from the typo.
    #[test]
    fn ipv6_is_refused_because_the_prefix_lists_are_ipv4() {
        let err = normalize(&["10.0.0.0/8", "2001:db8::1", "2001:db8::/32"]).unwrap_err();
        assert!(err.0.contains("\"2001:db8::1\" is IPv6"), "{}", err.0);
        assert!(err.0.contains("\"2001:db8::/32\" is IPv6"), "{}", err.0);
    }

    #[test]
    fn bare_addresses_become_host_routes() {
        assert_eq!(
            normalize(&["192.0.2.7", "198.51.100.1"]).unwrap(),
            vec!["192.0.2.7/32", "198.51.100.1/32"]
        );
    }

    #[test]
    fn networks_are_kept_and_canonicalised() {
        assert_eq!(
            normalize(&[" 10.0.0.0/8 ", "192.168.0.0/16"]).unwrap(),
            vec!["10.0.0.0/8", "192.168.0.0/16"]
        );
    }

    #[test]
    fn duplicates_are_removed_keeping_first() {
        assert_eq!(
            normalize(&["10.0.0.1", "10.0.0.0/8", "10.0.0.1/32"]).unwrap(),
            vec!["10.0.0.1/32", "10.0.0.0/8"]
        );
    }

    #[test]
    fn host_bits_are_an_error_naming_the_entry() {
        let err = normalize(&["10.0.0.0/8", "10.1.2.3/16"]).unwrap_err();
        assert!(err.0.contains("\"10.1.2.3/16\" has host bits set"), "{err}");
        assert!(err.0.contains("10.1.0.0/16"), "{err}");
    }

    #[test]
    fn all_bad_entries_are_reported() {
        let err = normalize(&["nope", "300.1.1.1", "10.0.0.0/33", ""]).unwrap_err();
        for needle in [
            "\"nope\"",
            "\"300.1.1.1\"",
            "\"10.0.0.0/33\"",
            "empty entry",
        ] {
            assert!(err.0.contains(needle), "{needle} missing from {err}");
        }
    }
}
