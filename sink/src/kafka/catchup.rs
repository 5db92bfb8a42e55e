//! A dedicated reader for one stream whose position in some partitions is older than the
//! shared buffer (a resume from an old cursor, or a slow stream under the catch-up policy).
//!
//! It is assigned only the partitions that are behind, at the stream's positions, and is
//! dropped as soon as every partition has reached the shared buffer again, so the number of
//! Kafka consumers grows with the number of streams that are behind, never with the number of
//! connections.
//!
//! No silent jumps: if retention deletes the records under the reader, it restarts at the log
//! start (`auto.offset.reset=earliest`, never the end), and any record whose offset is past the
//! stream's position stops the read there and is reported as a [`Hole`]. The caller decides
//! whether the hole is a loss (the log start moved past the position: a gap notice) or just
//! offsets without records (transaction markers), before anything after it is delivered.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::FutureExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaSettings;
use crate::event::{self, ChangeEvent};

pub struct CatchUp {
    topic: String,
    consumer: StreamConsumer,
    /// The record that revealed a hole, delivered by the next read.
    pending: Option<OwnedMessage>,
}

/// Offsets `[from, to)` of `partition` held no record for this reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    pub partition: usize,
    pub from: i64,
    pub to: i64,
}

/// What one read did.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    /// Records taken (tombstones included).
    pub taken: usize,
    /// The read stopped before a record past the stream's position.
    pub hole: Option<Hole>,
}

impl CatchUp {
    /// Starts reading `topic` at `starts` (partition, offset), prefetching at most
    /// `prefetch_kbytes` (librdkafka's queue; a fetch asks for at most that per partition).
    pub fn new(
        settings: &KafkaSettings,
        topic: &str,
        starts: &[(i32, i64)],
        prefetch_kbytes: usize,
    ) -> Result<Self> {
        let consumer: StreamConsumer = settings
            .consumer_config()
            .set("queued.max.messages.kbytes", prefetch_kbytes.to_string())
            .set(
                "max.partition.fetch.bytes",
                (prefetch_kbytes * 1024).to_string(),
            )
            .set("auto.offset.reset", "earliest")
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
            pending: None,
        })
    }

    /// Waits up to `wait` for the first record, then takes what else is ready, up to `max`.
    /// Every record read (tombstones included) advances `positions[partition]`; deliverable
    /// events are appended to `out`. Records of partitions whose position is already past
    /// them (they rejoined the shared buffer) are ignored. A record past its partition's
    /// position ends the read with a [`Hole`] (and is kept for the next read), unless
    /// `accept_hole` says that hole was already examined.
    pub async fn read(
        &mut self,
        max: usize,
        wait: Duration,
        positions: &mut [i64],
        out: &mut Vec<Arc<ChangeEvent>>,
        accept_hole: Option<Hole>,
    ) -> Result<ReadOutcome> {
        let mut outcome = ReadOutcome::default();
        let mut next = match self.pending.take() {
            Some(m) => Some(m),
            None => tokio::time::timeout(wait, self.consumer.recv())
                .await
                .ok()
                .map(|r| r.map(|m| m.detach()))
                .transpose()
                .with_context(|| format!("catch-up read of {}", self.topic))?,
        };
        while let Some(m) = next.take() {
            let p = m.partition() as usize;
            if p < positions.len() && m.offset() >= positions[p] {
                if m.offset() > positions[p] {
                    let hole = Hole {
                        partition: p,
                        from: positions[p],
                        to: m.offset(),
                    };
                    if accept_hole != Some(hole) {
                        self.pending = Some(m);
                        outcome.hole = Some(hole);
                        return Ok(outcome);
                    }
                }
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
            outcome.taken += 1;
            if outcome.taken >= max {
                break;
            }
            next = self
                .consumer
                .recv()
                .now_or_never()
                .map(|r| r.map(|m| m.detach()))
                .transpose()
                .with_context(|| format!("catch-up read of {}", self.topic))?;
        }
        Ok(outcome)
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
