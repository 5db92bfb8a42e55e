//! Shared test support: the real binary, a moto server, free ports, tool lookup.
//!
//! Servers are started per test on free ports and killed on drop. A missing tool is a
//! test *failure* naming the install script, never a silent skip.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL: &str = "scripts/install-helper-test-tools.sh";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of an external tool, or a panic telling how to install it.
pub fn tool(name: &str, candidates: &[&str]) -> PathBuf {
    for c in candidates {
        let p = if c.starts_with('/') {
            PathBuf::from(c)
        } else {
            workspace_root().join(c)
        };
        if p.is_file() {
            return p;
        }
    }
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("{name} not found: run `bash {INSTALL}` first");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET` returning the status code (plain HTTP, for readiness probes).
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A moto server on a free port.
pub struct Moto {
    pub url: String,
    _child: KillOnDrop,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = tool("moto_server", &[".local/venv-moto/bin/moto_server"]);
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let child = KillOnDrop(child);
        wait_until("moto_server", Duration::from_secs(30), || {
            http_status(port, "/moto-api/").is_some()
        });
        Moto {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    }

    /// SDK config for setting up fixtures (static credentials, no retries).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await
    }
}

/// The `tumbleweed` binary with a hermetic AWS environment.
pub fn tumbleweed(endpoint: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tumbleweed"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .stdin(Stdio::null());
    if let Some(e) = endpoint {
        c.env("AWS_ENDPOINT_URL", e);
    }
    c
}

pub fn run(c: &mut Command) -> Output {
    let out = c.output().expect("running tumbleweed");
    eprintln!(
        "$ {:?}\nexit {:?}\nstdout:\n{}\nstderr:\n{}",
        c,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The sink binary beside this test's own target directory, built if missing (it is built
/// already when the whole workspace is tested).
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn sink_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("tumbleweed-sink");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = std::process::Command::new(cargo)
            .args(["build", "-p", "tumbleweed-sink", "--bin", "tumbleweed-sink"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "building the sink for the bootstrap test");
    }
    bin
}
