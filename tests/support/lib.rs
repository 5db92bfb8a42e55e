//! Shared support for the integration tests (filled in by the foundation issue).
