//! Whitelist entries (`tumbleweed render`, `tumbleweed whitelist`): text from the operator that
//! ends up in a security-relevant AWS prefix list. Parsing must never panic; an accepted entry is
//! canonical (re-parsing its text gives the same network, no host bits), IPv4 only; and
//! normalising a list is idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The helper's own module, compiled in as is: the helper crate would bring the AWS SDK into
// the fuzz build for one file that needs only `ipnet` and this error type.
#[allow(dead_code)]
#[path = "../../helper/src/cidr.rs"]
mod cidr;

/// Stands in for the helper's `UsageError` (`crate::UsageError` in cidr.rs).
#[derive(Debug)]
pub struct UsageError(pub String);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(net) = cidr::parse_one(text) {
        assert!(
            matches!(net, ipnet::IpNet::V4(_)),
            "IPv6 accepted: {text:?}"
        );
        assert_eq!(net.trunc(), net, "host bits kept: {text:?}");
        assert_eq!(cidr::parse_one(&net.to_string()), Ok(net));
    }
    let entries: Vec<&str> = text.split(',').collect();
    if let Ok(list) = cidr::normalize(&entries) {
        assert_eq!(
            cidr::normalize(&list).ok(),
            Some(list.clone()),
            "idempotent"
        );
        let mut unique = list.clone();
        unique.dedup();
        assert_eq!(unique.len(), list.len());
    }
});
