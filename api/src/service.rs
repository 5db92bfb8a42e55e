//! The rest of the API: topics, liveness, readiness and the Kafka cluster's health.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A topic a consumer may subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: usize,
    /// End offset (high watermark) of each partition.
    pub end_offsets: Vec<i64>,
}

/// `GET /v1/topics`: the change topics a consumer may subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopicList {
    pub topics: Vec<TopicInfo>,
}

/// `GET /healthz`: the process serves HTTP (asks nothing of Kafka).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /readyz`: the broker answers and the consumer registry is readable (503 otherwise,
/// with the same fields saying what failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: String,
    /// `reachable`, or why not.
    pub broker: String,
    /// `readable`, or why not.
    pub registry: String,
}

/// `GET /v1/kafka/health`: brokers and partition health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterHealth {
    /// Node ids of the brokers in the metadata.
    pub brokers: Vec<i32>,
    pub topics: usize,
    pub partitions: usize,
    /// Partitions with fewer in-sync replicas than replicas.
    pub under_replicated: usize,
    /// Partitions without a leader.
    pub offline: usize,
}
