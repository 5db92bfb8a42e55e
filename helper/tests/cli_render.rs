//! `tumbleweed render` and CLI-wide behaviour, through the real binary.

mod common;

use common::{run, stderr, tumbleweed};
use serde_json::Value;
use tumbleweed_helper::tfvars::CONTRACT_VARIABLES;

#[test]
fn help_on_every_subcommand() {
    for args in [
        vec!["--help"],
        vec!["render", "--help"],
        vec!["whitelist", "--help"],
        vec!["whitelist", "list", "--help"],
        vec!["whitelist", "add", "--help"],
        vec!["whitelist", "remove", "--help"],
        vec!["whitelist", "set", "--help"],
        vec!["check-source", "--help"],
        vec!["bootstrap", "--help"],
        vec!["status", "--help"],
        vec!["image", "--help"],
        vec!["image", "build", "--help"],
        vec!["image", "push", "--help"],
        vec!["kafka", "--help"],
        vec!["kafka", "roll", "--help"],
    ] {
        let o = run(tumbleweed(None).args(&args));
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

/// The help says what the deployment does: the prefix lists ignore their entries, so no
/// `terraform apply` reverts a whitelist edit (it used to say the next apply would).
#[test]
fn whitelist_help_agrees_with_the_prefix_lists_lifecycle() {
    let o = run(tumbleweed(None).args(["whitelist", "add", "--help"]));
    let help = String::from_utf8_lossy(&o.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!help.contains("will revert"), "{help}");
    assert!(
        help.contains("Terraform never reverts the live list"),
        "{help}"
    );
    let module = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules/security/main.tf"),
    )
    .unwrap();
    assert_eq!(
        module.matches("ignore_changes = [entry]").count(),
        2,
        "both prefix lists ignore their entries, which the help relies on"
    );
    let image = run(tumbleweed(None).args(["image", "build", "--help"]));
    let help = String::from_utf8_lossy(&image.stdout);
    assert!(help.contains("ELF header"), "{help}");
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(run(tumbleweed(None).arg("nonsense")).status.code(), Some(2));
    assert_eq!(
        run(tumbleweed(None).args(["whitelist", "add", "1.2.3.4"]))
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn render_writes_valid_normalised_tfvars() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("infra/terraform.tfvars.json");
    let o = run(tumbleweed(None).args([
        "render",
        "--region",
        "eu-west-1",
        "--name-prefix",
        "tw-prod",
        "--operator-cidrs",
        "203.0.113.7,203.0.113.0/24,203.0.113.7/32",
        "--consumer-cidrs",
        "198.51.100.1,10.0.0.0/8",
        "--sink-desired-count",
        "2",
        "--single-nat-gateway",
        "true",
        "--sink-image",
        "123.dkr.ecr.eu-west-1.amazonaws.com/tw-sink:1",
        "--tag",
        "team=data",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(o.status.code(), Some(0));
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let obj = j.as_object().unwrap();
    for k in obj.keys() {
        assert!(
            CONTRACT_VARIABLES.contains(&k.as_str()),
            "{k} is not a root module variable"
        );
    }
    assert_eq!(j["region"], "eu-west-1");
    assert_eq!(j["name_prefix"], "tw-prod");
    assert_eq!(
        j["operator_cidrs"],
        serde_json::json!(["203.0.113.7/32", "203.0.113.0/24"])
    );
    assert_eq!(
        j["consumer_cidrs"],
        serde_json::json!(["198.51.100.1/32", "10.0.0.0/8"])
    );
    assert_eq!(j["sink_desired_count"], 2);
    assert_eq!(j["single_nat_gateway"], true);
    assert_eq!(j["tags"], serde_json::json!({"team": "data"}));
    // Optional variables not given stay out so Terraform defaults apply.
    assert!(!obj.contains_key("vpc_cidr"));
    assert!(!obj.contains_key("certificate_arn"));
    assert!(!obj.contains_key("prefix_list_max_entries"));
}

#[test]
fn render_bad_cidr_exits_2_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("terraform.tfvars.json");
    let o = run(tumbleweed(None).args([
        "render",
        "--region",
        "eu-west-1",
        "--name-prefix",
        "tw",
        "--operator-cidrs",
        "10.0.0.0/8,192.168.1.5/24",
        "--consumer-cidrs",
        "10.0.0.1",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("192.168.1.5/24"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        0,
        "no temp files left"
    );
}

/// Reported: `render --consumer-cidrs 2001:db8::1` wrote `2001:db8::1/128`, which the IPv4
/// prefix lists refuse only at apply time.
#[test]
fn render_refuses_ipv6_because_the_prefix_lists_are_ipv4() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("terraform.tfvars.json");
    let o = run(tumbleweed(None).args([
        "render",
        "--region",
        "eu-west-1",
        "--name-prefix",
        "tw",
        "--operator-cidrs",
        "10.0.0.0/8",
        "--consumer-cidrs",
        "2001:db8::1",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("2001:db8::1") && err.contains("IPv4"), "{err}");
    assert!(!out.exists());
}

#[test]
fn render_without_terminal_and_missing_flags_exits_2() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t.json");
    let o = run(tumbleweed(None).args(["render", "--region", "r", "--out", out.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing --name-prefix"));
    assert!(!out.exists());
}
