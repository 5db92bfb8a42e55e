//! A dedicated reader for one stream whose position in some partitions is older than the
//! shared buffer (a resume from an old cursor, or a slow stream under the catch-up policy).
//!
//! It is assigned only the partitions that are behind, at the stream's positions, and is
//! dropped as soon as every partition has reached the shared buffer again, so the number of
//! Kafka consumers grows with the number of streams that are behind, never with the number of
//! connections.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::FutureExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaSettings;
use crate::event::{self, ChangeEvent};

pub struct CatchUp {
    topic: String,
    consumer: StreamConsumer,
}

impl CatchUp {
    /// Starts reading `topic` at `starts` (partition, offset).
    pub fn new(settings: &KafkaSettings, topic: &str, starts: &[(i32, i64)]) -> Result<Self> {
        let consumer: StreamConsumer = settings
            .consumer_config()
            .set("queued.max.messages.kbytes", "4096")
            .create()
            .context("creating a catch-up reader")?;
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in starts {
            tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
        }
        consumer
            .assign(&tpl)
            .with_context(|| format!("assigning {topic} to a catch-up reader"))?;
        Ok(Self {
            topic: topic.to_string(),
            consumer,
        })
    }

    /// Waits up to `wait` for the first record, then takes what else is ready, up to `max`.
    /// Every record read (tombstones included) advances `positions[partition]`; deliverable
    /// events are appended to `out`. Records of partitions whose position is already past
    /// them (they rejoined the shared buffer) are ignored.
    pub async fn read(
        &self,
        max: usize,
        wait: Duration,
        positions: &mut [i64],
        out: &mut Vec<Arc<ChangeEvent>>,
    ) -> Result<usize> {
        let mut taken = 0;
        let mut next = tokio::time::timeout(wait, self.consumer.recv()).await.ok();
        while let Some(msg) = next.take() {
            let m = msg.with_context(|| format!("catch-up read of {}", self.topic))?;
            taken += 1;
            let p = m.partition() as usize;
            if p < positions.len() && m.offset() >= positions[p] {
                positions[p] = m.offset() + 1;
                let ts = m.timestamp().to_millis().unwrap_or(0);
                if let Some(ev) = event::from_record(
                    &self.topic,
                    m.partition(),
                    m.offset(),
                    ts,
                    m.key(),
                    m.payload(),
                ) {
                    out.push(Arc::new(ev));
                }
            }
            if taken >= max {
                break;
            }
            next = self.consumer.recv().now_or_never();
        }
        Ok(taken)
    }

    /// The reader's fetch position in partition `p` (next offset it will return), if known.
    pub fn position(&self, p: i32) -> Option<i64> {
        let tpl = self.consumer.position().ok()?;
        match tpl.find_partition(&self.topic, p)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }
}
