//! The Tumbleweed sink (placeholder until the sink issue lands).
