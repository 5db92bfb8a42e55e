//! Consumers: who may subscribe to which topics, with which filters, and the admin API that
//! manages them.
//!
//! Beside [`crate::sources`], and built the same way: the registrations are a compacted Kafka
//! topic every replica reads ([`registry`]); the handlers ([`api`]) speak the shared contract
//! (`tumbleweed_api::consumers`) and check a new consumer against the world before it exists:
//! its topics must exist, and its filters must type-check against the topic's recent events.
//! A consumer's own endpoints (its stream, acknowledgements, tickets) are in [`crate::http`]
//! beside the SSE machinery they drive.

pub mod api;
pub mod registry;
