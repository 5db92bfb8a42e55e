//! The sink's HTTP API contract, shared by everything that speaks it.
//!
//! Why a crate of its own: the sink serves these shapes, the helper CLI (`bootstrap`, `status`)
//! sends and reads them, and the UI is checked against them (the parity test in `tests/ui`
//! asks the running sink). When each kept its own copy they drifted: the helper refused
//! `sslmode` the sink took, guessed field names, and the name rules existed five times with
//! five answers. Here there is one copy, light enough for the CLI (serde and utoipa only: no
//! Kafka, no HTTP server), and the OpenAPI document (`/v1/openapi.json`) is generated from the
//! same types, so the published contract cannot drift either.
//!
//! Layout, one concept per module:
//! - [`error`]: the error body every non-2xx answer carries, and [`FieldError`], what a
//!   validator returns (the request field at fault and a sentence naming the fix);
//! - [`names`]: the rules for source, consumer and deployment names and `schema.table`, and the
//!   names derived from them (slots, publications, connectors);
//! - [`sources`]: `/v1/sources` and `/v1/slots`: requests, views, states and outcomes;
//! - [`consumers`]: `/v1/consumers`, filters, acknowledgements, tickets, filter previews;
//! - [`service`]: topics, health, readiness.
//!
//! Validation that needs nothing but the request (lengths, characters, enums, table names) is
//! here; validation that needs the world (a secret's value, a CA file, a database, Kafka) stays
//! in the sink.

pub mod consumers;
pub mod error;
pub mod names;
pub mod service;
pub mod sources;

pub use error::{ErrorBody, FieldError};
pub use sources::SslMode;
