//! TLS towards source databases, with libpq's `sslmode` semantics.
//!
//! Why: RDS for PostgreSQL 15+ sets `rds.force_ssl = 1`, so a plaintext connection is refused
//! ("no pg_hba.conf entry … no encryption"), and encryption without verification lets anyone on
//! the path impersonate the database and read the replication stream. Sources therefore carry
//! an `sslmode` — `disable`, `prefer` (the default, as in libpq and Debezium), `require`,
//! `verify-ca` or `verify-full` — and, for the two verifying modes, an `sslrootcert`: an
//! absolute path to a PEM CA bundle, or `rds` for Amazon's RDS CA bundle embedded in the sink
//! (RDS certificates chain to Amazon's own RDS CAs, not to public roots). The same pair is used
//! by the sink's own connections and by the connector (`database.sslmode`,
//! `database.sslrootcert`; for `rds` the Connect workers read the bundle from
//! `TUMBLEWEED_CONNECT_RDS_CA_PATH`, since a JVM cannot read the sink's embedded copy).
//!
//! `verify-full` checks the chain and that the certificate names the host connected to;
//! `verify-ca` checks the chain only, as libpq does. A refused certificate fails the source's
//! creation with the field to change (`host` for a name mismatch, `sslrootcert` for an unknown
//! CA) before anything is created.
//!
//! The code is in the `tumbleweed-pgtls` crate, shared with `tumbleweed check-source` so that
//! the CLI accepts and refuses exactly what the sink does; this module re-exports it.

pub use tumbleweed_pgtls::{
    explain, RootCert, SslMode, TlsRefusal, TlsSettingError, TlsSettings, RDS, RDS_BUNDLE_PEM,
};
