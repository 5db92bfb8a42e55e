//! `tumbleweed whitelist` against a real EC2 API emulator (moto), through the real binary.
//!
//! The version-conflict and max-entries paths are unit tests with a fake in
//! `src/whitelist.rs`: moto ignores `CurrentVersion` and `max_entries`.

mod common;

use std::path::{Path, PathBuf};

use common::{run, stderr, stdout, tumbleweed, Moto};
use serde_json::{json, Value};

struct Fixture {
    moto: Moto,
    ec2: aws_sdk_ec2::Client,
    _dir: tempfile::TempDir,
    outputs: PathBuf,
    tfvars: PathBuf,
    operators: String,
}

async fn fixture(initial: &[&str]) -> Fixture {
    let moto = Moto::start();
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
    let mut req = ec2
        .create_managed_prefix_list()
        .prefix_list_name("tw-operators")
        .address_family("IPv4")
        .max_entries(20);
    for c in initial {
        req = req.entries(
            aws_sdk_ec2::types::AddPrefixListEntry::builder()
                .cidr(*c)
                .build(),
        );
    }
    let operators = req
        .send()
        .await
        .unwrap()
        .prefix_list()
        .unwrap()
        .prefix_list_id()
        .unwrap()
        .to_string();
    let consumers = ec2
        .create_managed_prefix_list()
        .prefix_list_name("tw-consumers")
        .address_family("IPv4")
        .max_entries(20)
        .send()
        .await
        .unwrap()
        .prefix_list()
        .unwrap()
        .prefix_list_id()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs.json");
    std::fs::write(
        &outputs,
        json!({
            "operator_prefix_list_id": {"value": operators, "type": "string", "sensitive": false},
            "consumer_prefix_list_id": {"value": consumers, "type": "string", "sensitive": false},
        })
        .to_string(),
    )
    .unwrap();
    let tfvars = dir.path().join("terraform.tfvars.json");
    std::fs::write(
        &tfvars,
        serde_json::to_string_pretty(&json!({"region": "us-east-1", "name_prefix": "tw",
            "operator_cidrs": initial, "consumer_cidrs": []}))
        .unwrap(),
    )
    .unwrap();
    Fixture {
        moto,
        ec2,
        _dir: dir,
        outputs,
        tfvars,
        operators,
    }
}

impl Fixture {
    async fn entries(&self) -> Vec<String> {
        let out = self
            .ec2
            .get_managed_prefix_list_entries()
            .prefix_list_id(&self.operators)
            .send()
            .await
            .unwrap();
        let mut v: Vec<String> = out
            .entries()
            .iter()
            .map(|e| e.cidr().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    fn tfvars_list(&self) -> Vec<String> {
        let j: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.tfvars).unwrap()).unwrap();
        let mut v: Vec<String> = j["operator_cidrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    fn wl(&self, action: &str, extra: &[&str]) -> std::process::Output {
        let mut c = tumbleweed(Some(&self.moto.url));
        c.args(["whitelist", action, "--list", "operators", "--tf-outputs"])
            .arg(&self.outputs)
            .arg("--tfvars")
            .arg(&self.tfvars)
            .args(extra);
        run(&mut c)
    }
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn add_remove_set_round_trips_keep_aws_and_tfvars_in_step() {
    let f = fixture(&["10.0.0.0/8"]).await;

    let o = f.wl("add", &["192.0.2.7", "198.51.100.0/24", "192.0.2.7/32"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("+ 192.0.2.7/32"));
    let want = sorted(&["10.0.0.0/8", "192.0.2.7/32", "198.51.100.0/24"]);
    assert_eq!(f.entries().await, want);
    assert_eq!(f.tfvars_list(), want);

    let o = f.wl("remove", &["10.0.0.0/8"]);
    assert_eq!(o.status.code(), Some(0));
    let want = sorted(&["192.0.2.7/32", "198.51.100.0/24"]);
    assert_eq!(f.entries().await, want);
    assert_eq!(f.tfvars_list(), want);

    let o = f.wl(
        "set",
        &["203.0.113.1", "198.51.100.0/24", "--output", "json"],
    );
    assert_eq!(o.status.code(), Some(0));
    let rep: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rep["add"], json!(["203.0.113.1/32"]));
    assert_eq!(rep["remove"], json!(["192.0.2.7/32"]));
    let want = sorted(&["198.51.100.0/24", "203.0.113.1/32"]);
    assert_eq!(f.entries().await, want);
    assert_eq!(f.tfvars_list(), want);
    // Other tfvars keys survive.
    let j: Value = serde_json::from_str(&read(&f.tfvars)).unwrap();
    assert_eq!(j["name_prefix"], "tw");

    // The list name is kept (moto clears it unless passed back).
    let pl = f
        .ec2
        .describe_managed_prefix_lists()
        .prefix_list_ids(&f.operators)
        .send()
        .await
        .unwrap();
    assert_eq!(
        pl.prefix_lists()[0].prefix_list_name(),
        Some("tw-operators")
    );

    // `list` agrees, with no drift.
    let o = f.wl("list", &["--output", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let rep: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rep["not_in_tfvars"], json!([]));
    assert_eq!(rep["only_in_tfvars"], json!([]));
    assert_eq!(rep["max_entries"], 20);

    // Idempotent: adding what is there changes nothing.
    let before = read(&f.tfvars);
    let o = f.wl("add", &["203.0.113.1"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("nothing to change"));
    assert_eq!(read(&f.tfvars), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cidr_changes_nothing_and_exits_2() {
    let f = fixture(&["10.0.0.0/8"]).await;
    let before = read(&f.tfvars);
    let o = f.wl("add", &["192.0.2.1", "10.1.2.3/16"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("10.1.2.3/16") && err.contains("host bits"),
        "{err}"
    );
    assert_eq!(f.entries().await, sorted(&["10.0.0.0/8"]));
    assert_eq!(read(&f.tfvars), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_changes_nothing() {
    let f = fixture(&["10.0.0.0/8"]).await;
    let before = read(&f.tfvars);
    let o = f.wl("set", &["192.0.2.1", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains("dry run") && out.contains("+ 192.0.2.1/32") && out.contains("- 10.0.0.0/8"),
        "{out}"
    );
    assert_eq!(f.entries().await, sorted(&["10.0.0.0/8"]));
    assert_eq!(read(&f.tfvars), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_aws_call_leaves_tfvars_untouched() {
    let f = fixture(&["10.0.0.0/8"]).await;
    let before = read(&f.tfvars);
    let mut c = tumbleweed(Some(&f.moto.url));
    c.args([
        "whitelist",
        "add",
        "--list",
        "operators",
        "--prefix-list-id",
        "pl-doesnotexist",
        "--tfvars",
    ])
    .arg(&f.tfvars)
    .arg("192.0.2.1");
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim().lines().count(), 1);
    assert_eq!(read(&f.tfvars), before);
}
