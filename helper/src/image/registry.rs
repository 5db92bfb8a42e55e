//! The OCI distribution API, through `oci-client`.
//!
//! # Design
//!
//! The protocol is the crate's: the `/v2/` auth challenge, bearer tokens per repository and
//! operation (anonymous for public bases, with the `Basic` credentials when we have them),
//! `Basic` auth where the registry asks for it (ECR: user `AWS`, password from
//! `GetAuthorizationToken`), digest verification of everything pulled, index resolution,
//! monolithic blob upload (`POST` + `PUT ?digest=`), cross-repository mount and manifest
//! `PUT`. `insecure` means plain HTTP, for a local test registry.
//!
//! What stays here is what `image build|push` need around it: one [`Registry`] per command
//! that picks the requested platform from an index, pulls blobs into memory, and turns the
//! crate's errors into sentences naming the image and the likely fix.

use std::time::Duration;

use anyhow::{anyhow, Context};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{ImageIndexEntry, OciImageManifest};
use oci_client::{Client, Reference};
use oci_spec::image::{Arch, Os};
use sha2::{Digest, Sha256};

pub use oci_client::secrets::RegistryAuth as Credentials;

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub struct Registry {
    client: Client,
    auth: Credentials,
    /// `os/arch` for messages.
    platform: String,
}

impl Registry {
    /// A client for the registry of `image`; `platform` (`os/arch`) picks the image from a
    /// multi-platform index when a pulled reference names one.
    pub async fn new(
        image: &Reference,
        insecure: bool,
        creds: Credentials,
        platform: Option<(&str, &str)>,
    ) -> anyhow::Result<Self> {
        let wanted = platform.map(|(os, arch)| (Os::from(os), Arch::from(arch)));
        let config = ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            // One request per blob, as ECR and every registry accept: chunked PATCH
            // uploads buy nothing for blobs we hold in memory anyway.
            use_monolithic_push: true,
            platform_resolver: Some(Box::new(move |entries: &[ImageIndexEntry]| {
                let (os, arch) = wanted.as_ref()?;
                entries
                    .iter()
                    .find(|e| {
                        e.platform
                            .as_ref()
                            .is_some_and(|p| &p.os == os && &p.architecture == arch)
                    })
                    .map(|e| e.digest.clone())
            })),
            // No whole-request timeout (a big layer on a slow link may take long), but a
            // registry that stops answering is given up on.
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("tumbleweed-helper/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = Client::try_from(config).context("setting up the registry client")?;
        // The crate applies credentials only to registries it has been told about; pulls do
        // that themselves, HEAD, mount and upload do not.
        client
            .store_auth_if_needed(image.resolve_registry(), &creds)
            .await;
        Ok(Self {
            client,
            auth: creds,
            platform: platform.map_or("this platform".into(), |(os, arch)| format!("{os}/{arch}")),
        })
    }

    /// Pulls the image manifest of `image`, resolving an index to the platform given to
    /// [`Registry::new`]; returns the manifest and its digest (both verified).
    pub async fn image_manifest(
        &self,
        image: &Reference,
    ) -> anyhow::Result<(OciImageManifest, String)> {
        self.client
            .pull_image_manifest(image, &self.auth)
            .await
            .map_err(|e| match e {
                OciDistributionError::ImageManifestNotFoundError(_) => {
                    anyhow!("{image} has no image for {}", self.platform)
                }
                e => explain(e, format!("GET manifest {image}")),
            })
    }

    /// Pulls a blob (digest-verified by the crate).
    pub async fn get_blob(&self, image: &Reference, digest: &str) -> anyhow::Result<Vec<u8>> {
        let mut data = Vec::new();
        self.client
            .pull_blob(image, digest, &mut data)
            .await
            .map_err(|e| explain(e, format!("GET blob {}@{digest}", image.repository())))?;
        Ok(data)
    }

    /// Whether the repository of `image` already has the blob.
    pub async fn blob_exists(&self, image: &Reference, digest: &str) -> anyhow::Result<bool> {
        self.client
            .blob_exists(image, digest)
            .await
            .map_err(|e| explain(e, format!("HEAD blob {}@{digest}", image.whole())))
    }

    /// Mounts `digest` from `from` (same registry) into the repository of `image`.
    ///
    /// An error means "not mounted": the caller uploads instead. A registry that declines
    /// (`202`, an ordinary upload session started instead) is an error to the crate too; that
    /// session is left to expire, where our own client used to reuse it — one extra `POST`.
    /// Under token auth the crate asks for a token scoped to the destination only (ours also
    /// asked for `pull` on `from`); a registry that wants both declines, and we upload.
    pub async fn mount(
        &self,
        image: &Reference,
        digest: &str,
        from: &Reference,
    ) -> anyhow::Result<()> {
        self.client
            .mount_blob(image, from, digest)
            .await
            .map_err(|e| explain(e, format!("mounting {digest} from {}", from.repository())))
    }

    /// Uploads a blob (monolithically).
    pub async fn upload(
        &self,
        image: &Reference,
        digest: &str,
        data: Vec<u8>,
    ) -> anyhow::Result<()> {
        self.client
            .push_blob(image, data, digest)
            .await
            .map_err(|e| explain(e, format!("uploading blob {digest} to {}", image.whole())))?;
        Ok(())
    }

    /// PUTs a manifest, byte for byte, under the tag or digest of `image`; returns its digest.
    pub async fn put_manifest(
        &self,
        image: &Reference,
        media_type: &str,
        data: Vec<u8>,
    ) -> anyhow::Result<String> {
        let digest = digest_of(&data);
        let content_type = media_type.parse().context("manifest media type")?;
        self.client
            .push_manifest_raw(image, data, content_type)
            .await
            .map_err(|e| explain(e, format!("PUT manifest {image}")))?;
        Ok(digest)
    }
}

/// `what: <the crate's error>`, with the likely fix for refused credentials.
fn explain(e: OciDistributionError, what: String) -> anyhow::Error {
    let denied = match &e {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => true,
        OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        _ => false,
    };
    let err = anyhow::Error::new(e).context(what);
    if denied {
        err.context(
            "the registry refused our credentials (check the registry credentials: for ECR, \
             the AWS profile and region; for a local registry, --registry-insecure)",
        )
    } else {
        err
    }
}
