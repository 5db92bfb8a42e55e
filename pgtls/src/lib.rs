//! TLS towards PostgreSQL with libpq's `sslmode` semantics, shared by the sink and the helper.
//!
//! Why a crate of its own: the sink (connections for readiness checks, slot cleanup and the WAL
//! guard) and `tumbleweed check-source` must accept and refuse exactly the same servers, with
//! the same messages. The helper does not depend on the sink (that would drag librdkafka and
//! axum into the CLI), so the few hundred lines both need live here.
//!
//! Modes, as in libpq:
//! - `disable`: plaintext.
//! - `prefer` (the default, as in libpq and Debezium) and `require`: encrypted, the server
//!   certificate is not checked. `prefer` falls back to plaintext when the server has no TLS.
//! - `verify-ca`: the certificate must chain to a CA in `sslrootcert`; its names are not
//!   checked (for servers reached by an address the certificate does not name).
//! - `verify-full`: the chain and the host name (or IP address) must both match.
//!
//! `sslrootcert` is an absolute path to a PEM bundle or the word `rds`: Amazon's RDS CA bundle,
//! embedded from `certs/rds-global-bundle.pem` (see the README there for its origin). RDS
//! certificates chain to Amazon's own RDS CAs, not to public roots, so the system trust store
//! would not do. Verification is rustls' `WebPkiServerVerifier` built from the bundle's roots;
//! `verify-ca` wraps it and forgives only a name mismatch, which webpki reports after the chain
//! has been verified, so nothing else is relaxed. PEM is parsed by `rustls-pki-types`.
//!
//! A refused handshake is explained by [`explain`]: the request field at fault (`host` for a
//! name mismatch, `sslrootcert` for an unknown CA) and the fix.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The Amazon RDS CA bundle that `sslrootcert: rds` stands for (see `certs/README.md`).
pub const RDS_BUNDLE_PEM: &str = include_str!("../certs/rds-global-bundle.pem");

/// The word that selects [`RDS_BUNDLE_PEM`].
pub const RDS: &str = "rds";

/// TLS towards PostgreSQL, as libpq's `sslmode`: the API's own enum (`tumbleweed-api`), so the
/// sink, the helper and the OpenAPI document accept exactly the same words.
pub use tumbleweed_api::SslMode;

/// The mode tokio-postgres negotiates with: verification is ours (in the rustls config),
/// tokio-postgres only needs to know whether TLS is optional.
pub fn negotiation(mode: SslMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode as Pg;
    match mode {
        SslMode::Disable => Pg::Disable,
        SslMode::Prefer => Pg::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Pg::Require,
    }
}

/// Where the CAs that verify a server come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RootCert {
    /// The embedded Amazon RDS bundle.
    Rds,
    /// A PEM bundle on disk (absolute path).
    Path(PathBuf),
}

/// Why `sslmode`/`sslrootcert` cannot be used; each message names the field and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsSettingError {
    #[error("sslrootcert {0:?} must be `rds` (the Amazon RDS CA bundle) or an absolute path to a PEM CA bundle")]
    NotAbsolute(String),
    #[error("sslrootcert {path}: cannot read it ({source}): the file must exist and be readable by the sink and by the Kafka Connect workers at that path")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("sslrootcert {path}: not a PEM certificate bundle ({detail}): give a file of `-----BEGIN CERTIFICATE-----` blocks")]
    Parse { path: String, detail: String },
    #[error("sslrootcert {path}: holds no certificate: give a file of `-----BEGIN CERTIFICATE-----` blocks")]
    Empty { path: String },
    #[error("sslrootcert {path}: certificate {index} cannot be a trust anchor ({detail}): remove it or give the CA's own certificate")]
    BadAnchor {
        path: String,
        index: usize,
        detail: String,
    },
    #[error("sslmode {0} verifies the server certificate and needs sslrootcert: `rds` (the Amazon RDS CA bundle) or an absolute path to a PEM CA bundle")]
    MissingRootCert(SslMode),
    #[error("sslrootcert is only used with sslmode verify-ca or verify-full (sslmode is {0}): drop it or use a verifying mode")]
    UnusedRootCert(SslMode),
}

impl TlsSettingError {
    /// The request field the error is about.
    pub fn field(&self) -> &'static str {
        // Every one is fixed by changing sslrootcert (or sslmode, which the message says).
        "sslrootcert"
    }
}

impl RootCert {
    /// Parses the `sslrootcert` text (without touching the file).
    pub fn parse(text: &str) -> Result<Self, TlsSettingError> {
        if text == RDS {
            return Ok(RootCert::Rds);
        }
        let path = Path::new(text);
        if !path.is_absolute() || text.chars().any(char::is_control) || text.len() > 4096 {
            return Err(TlsSettingError::NotAbsolute(text.to_string()));
        }
        Ok(RootCert::Path(path.to_path_buf()))
    }

    /// The `sslrootcert` text: `rds` or the path.
    pub fn as_text(&self) -> String {
        match self {
            RootCert::Rds => RDS.to_string(),
            RootCert::Path(p) => p.display().to_string(),
        }
    }

    /// For messages: `rds (the Amazon RDS CA bundle)` or the path.
    pub fn describe(&self) -> String {
        match self {
            RootCert::Rds => "rds (the Amazon RDS CA bundle)".to_string(),
            RootCert::Path(p) => p.display().to_string(),
        }
    }

    /// Reads and parses the bundle into trust anchors.
    pub fn load(&self) -> Result<Arc<RootCertStore>, TlsSettingError> {
        match self {
            RootCert::Rds => {
                static RDS_ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
                if let Some(r) = RDS_ROOTS.get() {
                    return Ok(r.clone());
                }
                let roots = roots_from_pem(RDS, RDS_BUNDLE_PEM.as_bytes())?;
                Ok(RDS_ROOTS.get_or_init(|| roots).clone())
            }
            RootCert::Path(p) => {
                let name = p.display().to_string();
                let pem = std::fs::read(p).map_err(|source| TlsSettingError::Read {
                    path: name.clone(),
                    source,
                })?;
                roots_from_pem(&name, &pem)
            }
        }
    }
}

impl std::fmt::Display for RootCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_text())
    }
}

/// Every certificate of a PEM bundle as a trust anchor; any block that does not parse or
/// cannot be an anchor is an error (a bundle that half-loads would verify less than it says).
fn roots_from_pem(name: &str, pem: &[u8]) -> Result<Arc<RootCertStore>, TlsSettingError> {
    let mut store = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|e| TlsSettingError::Parse {
            path: name.to_string(),
            detail: e.to_string(),
        })?;
        store.add(cert).map_err(|e| TlsSettingError::BadAnchor {
            path: name.to_string(),
            index: i + 1,
            detail: e.to_string(),
        })?;
    }
    if store.is_empty() {
        return Err(TlsSettingError::Empty {
            path: name.to_string(),
        });
    }
    Ok(Arc::new(store))
}

/// A validated pair of settings: the mode, and the CA bundle when the mode verifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TlsSettings {
    pub sslmode: SslMode,
    pub sslrootcert: Option<RootCert>,
}

impl TlsSettings {
    /// Checks the pair and, when the mode verifies, that the bundle can be read and parsed.
    pub fn new(sslmode: SslMode, sslrootcert: Option<&str>) -> Result<Self, TlsSettingError> {
        let root = sslrootcert.map(RootCert::parse).transpose()?;
        match (&root, sslmode.verifies()) {
            (None, true) => return Err(TlsSettingError::MissingRootCert(sslmode)),
            (Some(_), false) => return Err(TlsSettingError::UnusedRootCert(sslmode)),
            (Some(r), true) => {
                r.load()?;
            }
            (None, false) => {}
        }
        Ok(Self {
            sslmode,
            sslrootcert: root,
        })
    }

    /// The connector for tokio-postgres; pair it with [`SslMode::negotiation`].
    pub fn connector(&self) -> Result<MakeRustlsConnect, TlsSettingError> {
        let provider = provider();
        let config = match (self.sslmode.verifies(), &self.sslrootcert) {
            (true, Some(root)) => {
                let roots = root.load()?;
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| TlsSettingError::Parse {
                        path: root.as_text(),
                        detail: e.to_string(),
                    })?;
                let verifier: Arc<dyn ServerCertVerifier> = if self.sslmode == SslMode::VerifyCa {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                };
                client_config(provider, verifier)
            }
            (true, None) => return Err(TlsSettingError::MissingRootCert(self.sslmode)),
            (false, _) => {
                static ENCRYPT_ONLY: OnceLock<rustls::ClientConfig> = OnceLock::new();
                ENCRYPT_ONLY
                    .get_or_init(|| {
                        client_config(provider.clone(), Arc::new(EncryptOnly(provider)))
                    })
                    .clone()
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// Sets the negotiation mode on a tokio-postgres config and returns the connector.
    pub fn apply(
        &self,
        cfg: &mut tokio_postgres::Config,
    ) -> Result<MakeRustlsConnect, TlsSettingError> {
        cfg.ssl_mode(negotiation(self.sslmode));
        self.connector()
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn client_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// Encrypts without authenticating the server (libpq `require`/`prefer`).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: webpki's full verification with the name mismatch forgiven. webpki checks the
/// name last, after the chain, validity and usage, so any other failure still refuses.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A refused certificate, explained for the person who configured the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRefusal {
    /// The request field to change: `host` (name mismatch) or `sslrootcert` (unknown CA).
    pub field: Option<&'static str>,
    pub message: String,
}

/// Explains a failed connection whose cause is a certificate rustls refused; `None` when the
/// error chain holds no such refusal. `host` is the name connected to, `server` `host:port`.
pub fn explain(
    err: &(dyn std::error::Error + 'static),
    host: &str,
    server: &str,
    settings: &TlsSettings,
) -> Option<TlsRefusal> {
    let cert_error = find_certificate_error(err)?;
    let bundle = settings
        .sslrootcert
        .as_ref()
        .map(RootCert::describe)
        .unwrap_or_else(|| "(none)".into());
    let (field, message) = match cert_error {
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names: Vec<String> = presented.iter().map(|p| clean_name(p)).collect();
            let names = if names.is_empty() {
                "no DNS name or IP address".to_string()
            } else {
                names.join(", ")
            };
            (
                Some("host"),
                format!(
                    "the server certificate of PostgreSQL at {server} is not valid for {host} (it names {names}): connect with a name in the certificate, or use sslmode verify-ca to check the CA only"
                ),
            )
        }
        CertificateError::NotValidForName => (
            Some("host"),
            format!(
                "the server certificate of PostgreSQL at {server} is not valid for {host}: connect with a name in the certificate, or use sslmode verify-ca to check the CA only"
            ),
        ),
        CertificateError::UnknownIssuer | CertificateError::BadSignature => (
            Some("sslrootcert"),
            format!(
                "the server certificate of PostgreSQL at {server} is not signed by a CA in sslrootcert {bundle}: give the bundle of the CA that issued it (rds for Amazon RDS)"
            ),
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
            None,
            format!(
                "the server certificate of PostgreSQL at {server} has expired: renew it on the server (on RDS, rotate the instance's CA)"
            ),
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
            None,
            format!(
                "the server certificate of PostgreSQL at {server} is not valid yet: check the clocks of the server and of this machine"
            ),
        ),
        other => (
            Some("sslrootcert"),
            format!(
                "the server certificate of PostgreSQL at {server} was refused ({other:?}) with sslrootcert {bundle}: check the bundle and the server certificate"
            ),
        ),
    };
    Some(TlsRefusal { field, message })
}

/// `DnsName("localhost")` → `localhost`, `IpAddress(10.0.0.1)` → `10.0.0.1` (webpki's Debug
/// form of the presented names).
fn clean_name(presented: &str) -> String {
    for prefix in ["DnsName(", "IpAddress("] {
        if let Some(rest) = presented
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
        {
            return rest.trim_matches('"').to_string();
        }
    }
    presented.to_string()
}

fn find_certificate_error(err: &(dyn std::error::Error + 'static)) -> Option<CertificateError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(rustls::Error::InvalidCertificate(c)) = e.downcast_ref::<rustls::Error>() {
            return Some(c.clone());
        }
        // io::Error hides its payload from `source()` (it returns the payload's source).
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(rustls::Error::InvalidCertificate(c)) =
                inner.downcast_ref::<rustls::Error>()
            {
                return Some(c.clone());
            }
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_only_verifying_modes_need_a_bundle() {
        for m in SslMode::ALL {
            assert_eq!(SslMode::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
            assert_eq!(
                serde_json::from_value::<SslMode>(m.as_str().into()).unwrap(),
                m
            );
        }
        assert!(SslMode::parse("verify_full").is_none());
        let e = TlsSettings::new(SslMode::VerifyFull, None).unwrap_err();
        assert_eq!(e.field(), "sslrootcert");
        assert!(e.to_string().contains("needs sslrootcert"), "{e}");
        let e = TlsSettings::new(SslMode::Require, Some("rds")).unwrap_err();
        assert!(e.to_string().contains("only used with"), "{e}");
        let e = TlsSettings::new(SslMode::VerifyCa, Some("certs/ca.pem")).unwrap_err();
        assert!(matches!(e, TlsSettingError::NotAbsolute(_)), "{e}");
        let e = TlsSettings::new(SslMode::VerifyCa, Some("/nonexistent/ca.pem")).unwrap_err();
        assert!(matches!(e, TlsSettingError::Read { .. }), "{e}");
    }

    #[test]
    fn the_embedded_rds_bundle_parses_and_holds_only_amazon_rds_cas() {
        let roots = RootCert::Rds.load().unwrap();
        assert_eq!(roots.len(), 115);
        for cert in CertificateDer::pem_slice_iter(RDS_BUNDLE_PEM.as_bytes()) {
            let der = cert.unwrap();
            let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
            assert!(
                has(b"Amazon RDS"),
                "a certificate that is not an Amazon RDS CA"
            );
        }
        TlsSettings::new(SslMode::VerifyFull, Some("rds")).unwrap();
    }

    #[test]
    fn bundles_that_do_not_parse_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = TlsSettings::new(SslMode::VerifyCa, empty.to_str()).unwrap_err();
        assert!(matches!(e, TlsSettingError::Empty { .. }), "{e}");
        assert!(e.to_string().contains("empty.pem"), "{e}");
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = TlsSettings::new(SslMode::VerifyCa, broken.to_str()).unwrap_err();
        assert!(
            matches!(
                e,
                TlsSettingError::Parse { .. } | TlsSettingError::BadAnchor { .. }
            ),
            "{e}"
        );
    }

    /// The verifiers themselves, without a network: a chain for `localhost` from a test CA.
    #[test]
    fn verify_full_checks_the_name_and_verify_ca_only_the_chain() {
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params(), rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let other =
            rcgen::CertifiedIssuer::self_signed(ca_params(), rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&rcgen::KeyPair::generate().unwrap(), &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).unwrap();
        let other_path = dir.path().join("other.pem");
        std::fs::write(&other_path, other.pem()).unwrap();

        let verify = |mode: SslMode, path: &Path, host: &str| {
            let settings = TlsSettings::new(mode, path.to_str()).unwrap();
            let roots = settings.sslrootcert.as_ref().unwrap().load().unwrap();
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
                .build()
                .unwrap();
            let verifier: Arc<dyn ServerCertVerifier> = if mode == SslMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            };
            verifier
                .verify_server_cert(
                    leaf.der(),
                    &[],
                    &ServerName::try_from(host.to_string()).unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .map(|_| ())
        };
        verify(SslMode::VerifyFull, &ca_path, "localhost").unwrap();
        verify(SslMode::VerifyCa, &ca_path, "127.0.0.1").unwrap();
        let e = verify(SslMode::VerifyFull, &ca_path, "127.0.0.1").unwrap_err();
        let settings = TlsSettings::new(SslMode::VerifyFull, ca_path.to_str()).unwrap();
        let why = explain(&e, "127.0.0.1", "127.0.0.1:5432", &settings).unwrap();
        assert_eq!(why.field, Some("host"));
        assert!(
            why.message
                .contains("not valid for 127.0.0.1 (it names localhost)"),
            "{}",
            why.message
        );
        for mode in [SslMode::VerifyFull, SslMode::VerifyCa] {
            let e = verify(mode, &other_path, "localhost").unwrap_err();
            let settings = TlsSettings::new(mode, other_path.to_str()).unwrap();
            let why = explain(&e, "localhost", "localhost:5432", &settings).unwrap();
            assert_eq!(why.field, Some("sslrootcert"), "{mode}");
            assert!(
                why.message.contains("is not signed by a CA in sslrootcert")
                    && why.message.contains("other.pem"),
                "{}",
                why.message
            );
        }
        // Wrapped as tokio-rustls does (io::Error around rustls::Error), it is still found.
        let e = verify(SslMode::VerifyFull, &other_path, "localhost").unwrap_err();
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        assert!(explain(&io, "localhost", "localhost:5432", &TlsSettings::default()).is_some());
    }

    fn ca_params() -> rcgen::CertificateParams {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Tumbleweed test CA");
        p
    }
}
