//! `tumbleweed image build|push` against a local registry (Debian's docker-registry), with
//! a base image built by umoci and pushed by skopeo — no Docker daemon anywhere.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{free_port, http_status, run, stdout, tool, tumbleweed, wait_until, KillOnDrop};
use serde_json::Value;

struct Registry {
    port: u16,
    _child: KillOnDrop,
}

fn start_registry(dir: &Path) -> Registry {
    let bin = tool("docker-registry", &[]);
    let port = free_port();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting docker-registry");
    let child = KillOnDrop(child);
    wait_until("docker-registry", Duration::from_secs(30), || {
        http_status(port, "/v2/") == Some(200)
    });
    Registry {
        port,
        _child: child,
    }
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("unsupported test architecture {other}"),
    }
}

fn other_arch() -> &'static str {
    match host_arch() {
        "amd64" => "arm64",
        _ => "amd64",
    }
}

#[test]
fn build_and_push_without_a_daemon() {
    let umoci = tool("umoci", &[]);
    let skopeo = tool("skopeo", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let reg = start_registry(t);
    let host = format!("127.0.0.1:{}", reg.port);

    // 1. A one-layer base image, built with umoci and pushed with skopeo.
    let base_layout = t.join("base-oci");
    let bundle = t.join("bundle");
    sh(Command::new(&umoci)
        .args(["init", "--layout"])
        .arg(&base_layout));
    sh(Command::new(&umoci)
        .args(["new", "--image"])
        .arg(format!("{}:base", base_layout.display())));
    sh(Command::new(&umoci)
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:base", base_layout.display()))
        .arg(&bundle));
    std::fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
    std::fs::write(bundle.join("rootfs/etc/base-marker"), "base\n").unwrap();
    sh(Command::new(&umoci)
        .args(["repack", "--image"])
        .arg(format!("{}:base", base_layout.display()))
        .arg(&bundle));
    sh(Command::new(&umoci)
        .args(["config", "--image"])
        .arg(format!("{}:base", base_layout.display()))
        .args([
            "--os",
            "linux",
            "--architecture",
            host_arch(),
            "--config.env",
            "PATH=/usr/local/bin:/usr/bin",
        ]));
    sh(Command::new(&skopeo)
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:base", base_layout.display()))
        .arg(format!("docker://{host}/base:v1")));
    let base: Value = serde_json::from_str(&sh(Command::new(&skopeo)
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{host}/base:v1"))))
    .unwrap();
    let base_digest = base["Digest"].as_str().unwrap().to_string();
    let base_layers: Vec<String> = base["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(base_layers.len(), 1);

    // 2. Build: a stand-in sink binary (a small Linux executable of the host's CPU, whose
    // ELF header gives the image's platform) plus a UI directory on the pinned base.
    let binary = t.join("tumbleweed-sink");
    std::fs::copy("/bin/true", &binary).unwrap();
    let ui = t.join("dist");
    std::fs::create_dir_all(&ui).unwrap();
    std::fs::write(ui.join("index.html"), "<html></html>").unwrap();
    let layout = t.join("sink-oci");
    let o = run(tumbleweed(None)
        .args(["image", "build", "--binary"])
        .arg(&binary)
        .arg("--ui-dist")
        .arg(&ui)
        .args([
            "--base",
            &format!("{host}/base@{base_digest}"),
            "--registry-insecure",
            "--tag",
            "t1",
        ])
        .arg("--layout")
        .arg(&layout)
        .args(["--output", "json"]));
    assert_eq!(o.status.code(), Some(0));
    let built: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(built["layers"], 2);

    // Reproducible: the same inputs in another layout give the same manifest digest (manifest
    // and config are canonical JSON, whatever order the annotations are held in).
    let again_layout = t.join("sink-oci-again");
    let o = run(tumbleweed(None)
        .args(["image", "build", "--binary"])
        .arg(&binary)
        .arg("--ui-dist")
        .arg(&ui)
        .args([
            "--base",
            &format!("{host}/base@{base_digest}"),
            "--registry-insecure",
            "--tag",
            "t1",
        ])
        .arg("--layout")
        .arg(&again_layout)
        .args(["--output", "json"]));
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let rebuilt: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rebuilt["manifest_digest"], built["manifest_digest"]);

    // A --platform the binary is not built for is refused before anything is fetched.
    let o = run(tumbleweed(None)
        .args(["image", "build", "--binary"])
        .arg(&binary)
        .args(["--platform", &format!("linux/{}", other_arch())])
        .args([
            "--base",
            &format!("{host}/base@{base_digest}"),
            "--registry-insecure",
        ])
        .arg("--layout")
        .arg(t.join("wrong-oci")));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        common::stderr(&o).contains("does not match the sink binary"),
        "{}",
        common::stderr(&o)
    );

    // The layout is a valid OCI layout for other tools too.
    let local: Value = serde_json::from_str(&sh(Command::new(&skopeo)
        .arg("inspect")
        .arg(format!("oci:{}:t1", layout.display()))))
    .unwrap();
    assert_eq!(local["Layers"].as_array().unwrap().len(), 2);

    // 3. Push; the base layer is mounted from the base repository, ours uploaded.
    let dest = format!("{host}/tumbleweed-sink:t1");
    let o = run(tumbleweed(None)
        .args(["image", "push", "--layout"])
        .arg(&layout)
        .args(["--to", &dest, "--registry-insecure", "--output", "json"]));
    assert_eq!(o.status.code(), Some(0));
    let pushed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(pushed["mounted"], serde_json::json!(base_layers));
    assert_eq!(
        pushed["uploaded"].as_array().unwrap().len(),
        2,
        "config + our layer"
    );
    assert_eq!(pushed["manifest_digest"], built["manifest_digest"]);

    // 4. Inspect what the registry now serves.
    let remote: Value = serde_json::from_str(&sh(Command::new(&skopeo)
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{dest}"))))
    .unwrap();
    let layers = remote["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], base_layers[0].as_str());
    assert_eq!(remote["Architecture"], host_arch());
    assert_eq!(remote["Os"], "linux");
    assert_eq!(remote["Digest"], built["manifest_digest"]);
    let manifest: Value = serde_json::from_str(&sh(Command::new(&skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{dest}"))))
    .unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        format!("{host}/base")
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        base_digest
    );
    let config: Value = serde_json::from_str(&sh(Command::new(&skopeo)
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{dest}"))))
    .unwrap();
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/tumbleweed-sink"])
    );
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!(["PATH=/usr/local/bin:/usr/bin"])
    );
    assert_eq!(config["architecture"], host_arch());
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);

    // 4b. To a deployment (its terraform outputs), the image must be the architecture its
    // tasks run on: the other one is refused, naming both fixes; the same one is pushed.
    let outputs = |arch: &str| {
        let f = t.join(format!("outputs-{arch}.json"));
        let v = |x: &str| serde_json::json!({"value": x, "type": "string", "sensitive": false});
        std::fs::write(
            &f,
            serde_json::json!({
                "ecr_repository_url": v(&format!("{host}/tumbleweed-sink")),
                "sink_cpu_architecture": v(arch),
            })
            .to_string(),
        )
        .unwrap();
        f
    };
    let (mine, other) = match host_arch() {
        "amd64" => ("X86_64", "ARM64"),
        _ => ("ARM64", "X86_64"),
    };
    let o = run(tumbleweed(None)
        .args(["image", "push", "--layout"])
        .arg(&layout)
        .args(["--tag", "t1", "--registry-insecure", "--tf-outputs"])
        .arg(outputs(other)));
    assert_eq!(o.status.code(), Some(2));
    let err = common::stderr(&o);
    assert!(
        err.contains(&format!("the image is linux/{}", host_arch()))
            && err.contains(&format!("runs the sink on {other}"))
            && err.contains(&format!("sink_cpu_architecture = \"{mine}\"")),
        "{err}"
    );
    let o = run(tumbleweed(None)
        .args(["image", "push", "--layout"])
        .arg(&layout)
        .args(["--tag", "t1", "--registry-insecure", "--tf-outputs"])
        .arg(outputs(mine)));
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));

    // 5. Pushing again uploads nothing.
    let o = run(tumbleweed(None)
        .args(["image", "push", "--layout"])
        .arg(&layout)
        .args(["--to", &dest, "--registry-insecure", "--output", "json"]));
    assert_eq!(o.status.code(), Some(0));
    let again: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again["uploaded"], serde_json::json!([]));
    assert_eq!(again["skipped"].as_array().unwrap().len(), 3);
}

#[test]
fn missing_layout_is_a_clear_error() {
    let o = run(tumbleweed(None).args([
        "image",
        "push",
        "--layout",
        "/nonexistent",
        "--to",
        "127.0.0.1:1/x",
        "--registry-insecure",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(common::stderr(&o).contains("is not an OCI image layout"));
}
