//! `tumbleweed image build|push`: ship the sink image without a Docker daemon.
//!
//! # Design
//!
//! An image is a manifest naming a config blob and a stack of layer blobs, all addressed
//! by sha256. Building ours needs no container runtime:
//!
//! * **build**: `cargo build --release -p tumbleweed-sink` (or `--binary PATH`), then
//!   fetch the pinned base image over the OCI distribution API (manifest — choosing the
//!   requested platform from an index —, config, layers; all digest-verified) into an OCI
//!   image layout, add one reproducible gzip layer with the binary (and `ui/` if
//!   present), and write a new config (base config + our `diff_id`, entrypoint, user) and
//!   manifest. The base's name and digest are recorded as the standard
//!   `org.opencontainers.image.base.*` annotations.
//! * **push**: for each blob, `HEAD` first (skip what the registry has); base layers on
//!   the same registry are cross-repository *mounted*; everything else is uploaded
//!   monolithically (`POST` + `PUT ?digest=`) from the layout — pull-then-push; the
//!   manifest goes last, byte for byte as built, so a tag never points at missing blobs and
//!   the pushed digest is the built one. ECR credentials come from `GetAuthorizationToken`;
//!   `--registry-insecure` means plain HTTP without auth (a local test registry).
//!
//! The wire protocol is `oci-client`'s and the documents are `oci-spec`'s types (see
//! [`registry`], [`layout`]); this module decides *what* to fetch, build and push. We do not
//! use `oci-client`'s own `pull`/`push`: `pull` keeps layers in memory and knows no layout,
//! and `push` uploads every blob without the `HEAD` check or the mounts, and re-serialises
//! the manifest (a different digest than the one `build` reported).
//!
//! The base config is read into `oci-spec`'s `ImageConfiguration`, so fields outside the
//! OCI image spec (Docker's `Healthcheck`, `OnBuild`, ...) are not carried over; distroless
//! has none, and ECS takes health checks from the task definition.
//!
//! The default base, [`DEFAULT_BASE`], is pinned by digest so builds are repeatable; to
//! move it, resolve the new digest (`skopeo inspect docker://gcr.io/distroless/cc-debian12`)
//! and pass `--base` or update the constant (and `sink/Dockerfile`) in one commit.

pub mod layout;
pub mod reference;
pub mod registry;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::{Args, Subcommand};
use oci_client::manifest::OciImageManifest;
use oci_spec::image::{
    Arch, HistoryBuilder, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType, Os,
    PlatformBuilder, ANNOTATION_BASE_IMAGE_DIGEST, ANNOTATION_BASE_IMAGE_NAME, ANNOTATION_REF_NAME,
};
use serde::Serialize;

use crate::aws::describe_sdk_error;
use crate::cli::{GlobalArgs, TfOutputArgs};
use crate::tf_outputs::TfOutputs;
use crate::{Outcome, OutputFormat, UsageError};
use layout::{canonical_json, descriptor, Layout};
use reference::Reference;
use registry::{Credentials, Registry};

/// The pinned base: distroless `cc` (glibc, libgcc, CA certificates; no shell) on Debian 12,
/// referenced by the digest of its multi-platform index.
pub const DEFAULT_BASE: &str =
    "gcr.io/distroless/cc-debian12@sha256:b7550f0b15838de14c564337eef2b804ba593ae55d81ca855421bd52f19bb480";

/// The distroless `nonroot` user.
pub const DEFAULT_USER: &str = "65532:65532";

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub action: ImageAction,
}

#[derive(Debug, Subcommand)]
pub enum ImageAction {
    /// Build the sink image into an OCI image layout directory.
    Build(BuildArgs),
    /// Push an OCI image layout to the deployment's ECR repository (or --to REF).
    Push(PushArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Use this sink binary instead of running `cargo build --release -p tumbleweed-sink`.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// The operator UI's files (no build step) to include at /usr/share/tumbleweed/ui, where the
    /// sink looks for them (skipped if absent).
    #[arg(long, value_name = "DIR", default_value = "ui")]
    pub ui_dist: PathBuf,
    /// Base image, pinned by digest.
    #[arg(long, value_name = "REF", default_value = DEFAULT_BASE)]
    pub base: String,
    /// Platform of the image [default: the sink binary's, read from its ELF header]. Given,
    /// it must agree with the binary; it picks the base from a multi-platform index.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// OCI layout directory to write.
    #[arg(long, value_name = "DIR", default_value = "target/oci/tumbleweed-sink")]
    pub layout: PathBuf,
    /// Tag recorded in the layout (used by `push` as the default tag).
    #[arg(long, default_value = "latest")]
    pub tag: String,
    /// User the sink runs as.
    #[arg(long, default_value = DEFAULT_USER)]
    pub user: String,
    /// Pull the base over plain HTTP without auth (local registry).
    #[arg(long)]
    pub registry_insecure: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// OCI layout directory written by `image build`.
    #[arg(long, value_name = "DIR", default_value = "target/oci/tumbleweed-sink")]
    pub layout: PathBuf,
    /// Image in the layout to push [default: the only one].
    #[arg(long)]
    pub tag: Option<String>,
    /// Destination `registry/repo[:tag]` [default: the `ecr_repository_url` output].
    #[arg(long, value_name = "REF")]
    pub to: Option<String>,
    #[command(flatten)]
    pub tf: TfOutputArgs,
    /// Push over plain HTTP without auth (local registry).
    #[arg(long)]
    pub registry_insecure: bool,
}

/// The OCI platform a Linux executable runs on, from its ELF header (`e_machine`): an image
/// must be built for the CPU of the binary it carries, and a binary built on an arm64 laptop
/// is not the x86_64 the task definition asks for by default.
pub fn elf_platform(binary: &Path) -> anyhow::Result<&'static str> {
    let mut head = [0u8; 20];
    let read =
        std::fs::File::open(binary).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    read.with_context(|| format!("reading the sink binary {}", binary.display()))?;
    let not_linux = || {
        UsageError(format!(
            "{} is not a 64-bit Linux executable: build the sink for Linux (for example \
             `cargo build --release -p tumbleweed-sink --target x86_64-unknown-linux-gnu`) \
             and pass it with --binary",
            binary.display()
        ))
    };
    // Magic, 64-bit class, little-endian data.
    if head[..4] != *b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return Err(not_linux().into());
    }
    match u16::from_le_bytes([head[18], head[19]]) {
        62 => Ok("linux/amd64"),
        183 => Ok("linux/arm64"),
        other => Err(UsageError(format!(
            "{} is built for ELF machine {other}, neither x86_64 nor aarch64: ECS runs the sink \
             on X86_64 or ARM64",
            binary.display()
        ))
        .into()),
    }
}

/// The platform to build: the binary's; `--platform`, when given, must agree.
fn build_platform(binary: &Path, requested: Option<&str>) -> anyhow::Result<String> {
    let detected = elf_platform(binary)?;
    match requested {
        Some(p) if p != detected => Err(UsageError(format!(
            "--platform {p} does not match the sink binary {}, which is {detected}: build the \
             binary for {p} or drop --platform",
            binary.display()
        ))
        .into()),
        _ => Ok(detected.to_string()),
    }
}

/// Terraform's `sink_cpu_architecture` for an OCI architecture.
fn ecs_architecture(oci_arch: &str) -> Option<&'static str> {
    match oci_arch {
        "amd64" => Some("X86_64"),
        "arm64" => Some("ARM64"),
        _ => None,
    }
}

/// Converts Docker media types of base layers to their OCI equivalents.
fn oci_layer_type(media: &str) -> anyhow::Result<MediaType> {
    match media {
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Ok(MediaType::ImageLayerGzip),
        "application/vnd.oci.image.layer.v1.tar+zstd" => Ok(MediaType::ImageLayerZstd),
        "application/vnd.oci.image.layer.v1.tar" => Ok(MediaType::ImageLayer),
        other => bail!("unsupported base layer media type {other}"),
    }
}

/// What `image build` produced.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub layout: PathBuf,
    pub tag: String,
    pub manifest_digest: String,
    pub base: String,
    pub layers: usize,
}

fn cargo_build_sink() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building tumbleweed-sink (cargo build --release -p tumbleweed-sink)...");
    let status = std::process::Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "tumbleweed-sink",
            "--message-format",
            "short",
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("cargo build --release -p tumbleweed-sink failed (or pass --binary PATH)");
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let bin = Path::new(&target).join("release/tumbleweed-sink");
    if !bin.exists() {
        bail!("{} not found after cargo build", bin.display());
    }
    Ok(bin)
}

/// A base image fetched into a layout.
pub struct BaseImage {
    pub reference: Reference,
    /// The platform-specific manifest.
    pub manifest: OciImageManifest,
    pub config: ImageConfiguration,
    /// Digest of `manifest`.
    pub digest: String,
}

/// Fetches the base image for `os/arch` into `layout` (layers as blobs); `reg` was made for
/// that platform, and picks it from an index.
pub async fn fetch_base(
    reg: &Registry,
    base: &Reference,
    (os, arch): (&str, &str),
    layout: &Layout,
) -> anyhow::Result<BaseImage> {
    let (manifest, digest) = reg.image_manifest(base).await?;
    let config_bytes = reg.get_blob(base, &manifest.config.digest).await?;
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).context("parsing the base config")?;
    if *config.os() != Os::from(os) || *config.architecture() != Arch::from(arch) {
        bail!(
            "base {base} is {}/{}, not {os}/{arch}",
            config.os(),
            config.architecture()
        );
    }
    for l in &manifest.layers {
        if !layout.has_blob(&l.digest) {
            tracing::info!("fetching base layer {}", l.digest);
            let data = reg.get_blob(base, &l.digest).await?;
            layout.put_blob(&data)?;
        }
    }
    Ok(BaseImage {
        reference: base.clone(),
        manifest,
        config,
        digest,
    })
}

/// Assembles config and manifest from the base and our layer; returns the manifest digest.
pub fn assemble(
    layout: &Layout,
    base: BaseImage,
    ours: &layout::Layer,
    user: &str,
    tag: &str,
    created: &str,
) -> anyhow::Result<(String, usize)> {
    let BaseImage {
        reference: base_ref,
        manifest: base_manifest,
        digest: base_digest,
        mut config,
    } = base;
    let layer_digest = layout.put_blob(&ours.gz)?;
    let mut inner = config.config().clone().unwrap_or_default();
    inner.set_entrypoint(Some(vec![format!("/{}", layout::BINARY_PATH)]));
    inner.set_cmd(None);
    inner.set_user(Some(user.to_string()));
    config.set_config(Some(inner));
    config
        .rootfs_mut()
        .diff_ids_mut()
        .push(ours.diff_id.clone());
    let history = HistoryBuilder::default()
        .created(created)
        .created_by("tumbleweed image build")
        .comment("tumbleweed-sink")
        .build()?;
    config
        .history_mut()
        .get_or_insert_with(Vec::new)
        .push(history);
    config.set_created(Some(created.to_string()));
    let config_bytes = canonical_json(&config)?;
    let config_digest = layout.put_blob(&config_bytes)?;

    let mut layers = Vec::new();
    for l in &base_manifest.layers {
        let size = usize::try_from(l.size).context("base layer size")?;
        layers.push(descriptor(oci_layer_type(&l.media_type)?, &l.digest, size)?);
    }
    layers.push(descriptor(
        MediaType::ImageLayerGzip,
        &layer_digest,
        ours.gz.len(),
    )?);
    let count = layers.len();
    let mut annotations = HashMap::from([
        (
            ANNOTATION_BASE_IMAGE_NAME.to_string(),
            reference::name(&base_ref),
        ),
        (ANNOTATION_BASE_IMAGE_DIGEST.to_string(), base_digest),
    ]);
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            &config_digest,
            config_bytes.len(),
        )?)
        .layers(layers)
        .annotations(annotations.clone())
        .build()?;
    let manifest_bytes = canonical_json(&manifest)?;
    let manifest_digest = layout.put_blob(&manifest_bytes)?;
    annotations.insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
    let mut desc = descriptor(
        MediaType::ImageManifest,
        &manifest_digest,
        manifest_bytes.len(),
    )?;
    desc.set_platform(Some(
        PlatformBuilder::default()
            .os(config.os().clone())
            .architecture(config.architecture().clone())
            .build()?,
    ));
    desc.set_annotations(Some(annotations));
    layout.set_index(desc)?;
    Ok((manifest_digest, count))
}

async fn build(g: &GlobalArgs, a: BuildArgs) -> anyhow::Result<Outcome> {
    let base = reference::parse(&a.base)?.reference;
    if base.digest().is_none() {
        tracing::warn!("base {base} is not pinned by digest: builds are not repeatable");
    }
    let binary = match &a.binary {
        Some(b) => b.clone(),
        None => cargo_build_sink()?,
    };
    let platform = build_platform(&binary, a.platform.as_deref())?;
    let (os, arch) = platform
        .split_once('/')
        .ok_or_else(|| UsageError(format!("--platform {platform:?}: expected OS/ARCH")))?;
    let ui = a.ui_dist.is_dir().then_some(a.ui_dist.as_path());
    let mtime = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0u64);
    let ours = layout::build_layer(&binary, ui, mtime)?;
    let layout = Layout::create(&a.layout)?;
    let creds = if a.registry_insecure {
        Credentials::Anonymous
    } else {
        credentials_for(g, base.registry()).await?
    };
    let reg = Registry::new(&base, a.registry_insecure, creds, Some((os, arch))).await?;
    let base_image = fetch_base(&reg, &base, (os, arch), &layout)
        .await
        .with_context(|| format!("fetching base image {base}"))?;
    let (digest, layers) = assemble(
        &layout,
        base_image,
        &ours,
        &a.user,
        &a.tag,
        &layout::rfc3339(mtime),
    )?;
    let rep = BuildReport {
        layout: a.layout.clone(),
        tag: a.tag.clone(),
        manifest_digest: digest,
        base: base.to_string(),
        layers,
    };
    match g.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rep)?),
        OutputFormat::Text => println!(
            "built {}:{} ({}, {} layers{}) on {}",
            rep.layout.display(),
            rep.tag,
            rep.manifest_digest,
            rep.layers,
            if ui.is_some() { ", with UI" } else { "" },
            rep.base
        ),
    }
    Ok(Outcome::Success)
}

/// ECR registries get a token from `GetAuthorizationToken`; others are anonymous.
async fn credentials_for(g: &GlobalArgs, host: &str) -> anyhow::Result<Credentials> {
    let is_ecr = host.contains(".dkr.ecr.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
    if !is_ecr {
        return Ok(Credentials::Anonymous);
    }
    let mut g = g.clone();
    if g.region.is_none() {
        // <account>.dkr.ecr.<region>.amazonaws.com
        g.region = host.split('.').nth(3).map(str::to_string);
    }
    let client = aws_sdk_ecr::Client::new(&crate::aws::sdk_config(&g).await);
    let out = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| anyhow!(describe_sdk_error(&e)))
        .context("getting an ECR authorization token")?;
    let token = out
        .authorization_data()
        .first()
        .and_then(|d| d.authorization_token())
        .ok_or_else(|| anyhow!("ECR returned no authorization token"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .context("decoding the ECR authorization token")?;
    let text = String::from_utf8(decoded).context("decoding the ECR authorization token")?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| anyhow!("malformed ECR authorization token"))?;
    Ok(Credentials::Basic(user.into(), password.into()))
}

/// What `image push` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    pub reference: String,
    pub manifest_digest: String,
    pub uploaded: Vec<String>,
    pub mounted: Vec<String>,
    pub skipped: Vec<String>,
}

/// Pushes the image `tag` (or the only one) of `layout` to the repository of `dest`, under
/// `dest_tag`, else the tag recorded in the layout, else `latest`.
pub async fn push_layout(
    reg: &Registry,
    layout: &Layout,
    tag: Option<&str>,
    dest: &Reference,
    dest_tag: Option<&str>,
) -> anyhow::Result<PushReport> {
    let desc = layout.find_manifest(tag)?;
    let mdigest = desc.digest().to_string();
    let manifest_bytes = layout.read_blob(&mdigest)?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .with_context(|| format!("parsing manifest {mdigest}"))?;
    // The base's repository, when it is on the destination registry: its layers are mounted.
    let mount_from = manifest
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_BASE_IMAGE_NAME))
        .and_then(|n| reference::parse(n).ok())
        .map(|p| p.reference)
        .filter(|r| r.registry() == dest.registry() && r.repository() != dest.repository());
    let mut rep = PushReport::default();
    let mut blobs = vec![manifest.config().digest().to_string()];
    let layer_count = manifest.layers().len();
    blobs.extend(manifest.layers().iter().map(|l| l.digest().to_string()));
    for (i, digest) in blobs.iter().enumerate() {
        if reg.blob_exists(dest, digest).await? {
            rep.skipped.push(digest.clone());
            continue;
        }
        // Base layers (all but the config, index 0, and our last layer) can be mounted.
        let is_base_layer = i >= 1 && i < layer_count;
        if let (true, Some(from)) = (is_base_layer, &mount_from) {
            match reg.mount(dest, digest, from).await {
                Ok(()) => {
                    rep.mounted.push(digest.clone());
                    continue;
                }
                Err(e) => tracing::info!("{digest} not mounted, uploading: {e:#}"),
            }
        }
        reg.upload(dest, digest, layout.read_blob(digest)?).await?;
        rep.uploaded.push(digest.clone());
    }
    let reference = dest_tag
        .or_else(|| {
            desc.annotations()
                .as_ref()?
                .get(ANNOTATION_REF_NAME)
                .map(String::as_str)
        })
        .unwrap_or("latest")
        .to_string();
    let media = manifest
        .media_type()
        .clone()
        .unwrap_or(MediaType::ImageManifest)
        .to_string();
    let target = Reference::with_tag(
        dest.registry().to_string(),
        dest.repository().to_string(),
        reference.clone(),
    );
    rep.manifest_digest = reg.put_manifest(&target, &media, manifest_bytes).await?;
    rep.reference = format!("{}:{reference}", reference::name(dest));
    Ok(rep)
}

async fn push(g: &GlobalArgs, a: PushArgs) -> anyhow::Result<Outcome> {
    let layout = Layout::open(&a.layout)?;
    let parsed = match &a.to {
        Some(r) => reference::parse(r)?,
        None => {
            let outputs = TfOutputs::load(&a.tf)?;
            check_architecture(&layout, a.tag.as_deref(), &outputs)?;
            reference::parse(&outputs.string("ecr_repository_url")?)?
        }
    };
    let dest = parsed.reference;
    let dest_tag = match parsed.tag_given {
        true => dest.tag().map(str::to_string),
        false => a.tag.clone(),
    };
    let creds = if a.registry_insecure {
        Credentials::Anonymous
    } else {
        credentials_for(g, dest.registry()).await?
    };
    let reg = Registry::new(&dest, a.registry_insecure, creds, None).await?;
    let rep = push_layout(&reg, &layout, a.tag.as_deref(), &dest, dest_tag.as_deref())
        .await
        .with_context(|| {
            let tag = dest_tag.as_deref().map(|t| format!(":{t}"));
            format!(
                "pushing to {}{}",
                reference::name(&dest),
                tag.unwrap_or_default()
            )
        })?;
    match g.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rep)?),
        OutputFormat::Text => println!(
            "pushed {}@{} ({} uploaded, {} mounted, {} already there)",
            rep.reference,
            rep.manifest_digest,
            rep.uploaded.len(),
            rep.mounted.len(),
            rep.skipped.len()
        ),
    }
    Ok(Outcome::Success)
}

/// Refuses to push an image the deployment's tasks cannot run: its architecture must be the
/// sink's `sink_cpu_architecture` output (an ECS task on the other CPU fails to start with
/// "exec format error", after the push and a deployment). Deployments from before that
/// output are not checked.
fn check_architecture(
    layout: &Layout,
    tag: Option<&str>,
    outputs: &TfOutputs,
) -> anyhow::Result<()> {
    let Ok(wanted) = outputs.string("sink_cpu_architecture") else {
        return Ok(());
    };
    let desc = layout.find_manifest(tag)?;
    let arch = desc
        .platform()
        .as_ref()
        .map_or("?".to_string(), |p| p.architecture().to_string());
    let arch = arch.as_str();
    if ecs_architecture(arch) != Some(wanted.as_str()) {
        return Err(UsageError(format!(
            "the image is linux/{arch} but the deployment runs the sink on {wanted} (terraform \
             output sink_cpu_architecture): build the image for {} or set \
             sink_cpu_architecture = \"{}\" and apply",
            match wanted.as_str() {
                "ARM64" => "linux/arm64",
                _ => "linux/amd64",
            },
            ecs_architecture(arch).unwrap_or("?"),
        ))
        .into());
    }
    Ok(())
}

/// `tumbleweed image ...`.
pub async fn run(g: &GlobalArgs, args: ImageArgs) -> anyhow::Result<Outcome> {
    match args.action {
        ImageAction::Build(a) => build(g, a).await,
        ImageAction::Push(a) => push(g, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sink/Dockerfile` (for users with Docker) and `tumbleweed image build` (without) must
    /// ship the sink on the same base: the Dockerfile's last `FROM` is [`DEFAULT_BASE`].
    #[test]
    fn the_dockerfile_runs_on_the_default_base() {
        let dockerfile = include_str!("../../../sink/Dockerfile");
        let last_from = dockerfile
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("FROM "))
            .expect("a FROM line");
        let image = last_from.split_whitespace().next().unwrap_or_default();
        assert_eq!(image, DEFAULT_BASE, "sink/Dockerfile's runtime base");
    }

    /// The first 20 bytes of an ELF header: class, data, and `e_machine`.
    fn elf_head(class: u8, machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.extend([class, 1, 1, 0]);
        h.extend([0u8; 10]);
        h.extend(machine.to_le_bytes());
        h.extend([0u8; 44]);
        h
    }

    #[test]
    fn the_platform_comes_from_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let amd64 = file("amd64", &elf_head(2, 62));
        let arm64 = file("arm64", &elf_head(2, 183));
        assert_eq!(elf_platform(&amd64).unwrap(), "linux/amd64");
        assert_eq!(elf_platform(&arm64).unwrap(), "linux/arm64");
        // This test runs as a Linux executable of the host's CPU.
        let me = std::env::current_exe().unwrap();
        let host = match std::env::consts::ARCH {
            "x86_64" => "linux/amd64",
            _ => "linux/arm64",
        };
        assert_eq!(elf_platform(&me).unwrap(), host);

        let err = |p: &Path| crate::one_line(&elf_platform(p).unwrap_err());
        let script = file("script", b"#!/bin/sh\necho sink\n and some more bytes");
        assert!(err(&script).contains("is not a 64-bit Linux executable"));
        assert!(err(&script).contains("--target x86_64-unknown-linux-gnu"));
        let arm32 = file("arm32", &elf_head(1, 40));
        assert!(err(&arm32).contains("is not a 64-bit Linux executable"));
        let riscv = file("riscv", &elf_head(2, 243));
        assert!(err(&riscv).contains("ELF machine 243"));
        assert!(err(&dir.path().join("absent")).contains("reading the sink binary"));

        // --platform must agree with the binary.
        assert_eq!(build_platform(&arm64, None).unwrap(), "linux/arm64");
        assert_eq!(
            build_platform(&arm64, Some("linux/arm64")).unwrap(),
            "linux/arm64"
        );
        let e = build_platform(&arm64, Some("linux/amd64")).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some(), "exit 2");
        assert!(crate::one_line(&e).contains("--platform linux/amd64 does not match"));
        assert!(crate::one_line(&e).contains("which is linux/arm64"));
    }

    #[test]
    fn default_base_is_pinned() {
        let r = reference::parse(DEFAULT_BASE).unwrap().reference;
        assert!(r.digest().is_some());
        assert_eq!(r.registry(), "gcr.io");
        assert_eq!(r.to_string(), DEFAULT_BASE, "reported as given");
    }

    #[test]
    fn docker_layer_types_map_to_oci() {
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
            MediaType::ImageLayerGzip
        );
        assert!(
            oci_layer_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip").is_err()
        );
    }
}
