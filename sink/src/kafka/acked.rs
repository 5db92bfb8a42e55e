//! A producer whose sends resolve once the broker has acknowledged the record, with its
//! offset: the writer under the sink's own compacted logs (registrations, sources, cursors,
//! tickets, stats history).
//!
//! Why not rdkafka's `FutureProducer`: its thread polls for delivery reports in waits of
//! 100 ms, and each wait ends in a busy loop. rdkafka 0.39's `BaseProducer::poll` hands
//! librdkafka the time left in whole milliseconds, rounded down, so the last fraction of a
//! millisecond becomes polls that return at once, one after another until the deadline.
//! On an idle sink (2026-12-07, per-thread CPU from `/proc`) each of the five log producers'
//! threads used 1 % of a core that way: 5 % in all, more than the rest of the idle sink. Here
//! the thread polls in waits of one second, which still return as soon as a report arrives,
//! so it spins for about a millisecond a second instead of ten.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::oneshot;

/// How long one poll of the delivery thread waits for a report (it returns on the first).
/// Also how long the thread takes to notice it should stop.
const POLL_WAIT: Duration = Duration::from_secs(1);

type Ack = oneshot::Sender<KafkaResult<i64>>;

/// Hands each delivery report to the send that waits for it.
struct Acks;

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<Ack>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Box<Ack>) {
        let outcome = match result {
            Ok(m) => Ok(m.offset()),
            Err((e, _)) => Err(e.clone()),
        };
        // The sender is gone only if its caller stopped waiting.
        let _ = ack.send(outcome);
    }
}

/// A producer for records whose writer waits for the broker's acknowledgement.
pub struct AckedProducer {
    producer: Arc<BaseProducer<Acks>>,
    stop: Arc<AtomicBool>,
}

impl AckedProducer {
    /// Creates the producer and its delivery thread, named after `name`.
    pub fn new(config: &ClientConfig, name: &str) -> KafkaResult<Self> {
        let producer: Arc<BaseProducer<Acks>> = Arc::new(config.create_with_context(Acks)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (polled, stopped) = (producer.clone(), stop.clone());
        std::thread::Builder::new()
            .name(format!("{name}-acks"))
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    polled.poll(POLL_WAIT);
                }
            })
            .map_err(|e| {
                KafkaError::ClientCreation(format!("starting the {name} delivery thread: {e}"))
            })?;
        Ok(Self { producer, stop })
    }

    /// Sends `key` with `value` (a tombstone when `None`) to `topic` and returns the offset the
    /// broker gave the record, once it acknowledged it.
    pub async fn send(&self, topic: &str, key: &str, value: Option<&[u8]>) -> KafkaResult<i64> {
        let (ack, acked) = oneshot::channel();
        let mut record =
            BaseRecord::<str, [u8], Box<Ack>>::with_opaque_to(topic, Box::new(ack)).key(key);
        if let Some(v) = value {
            record = record.payload(v);
        }
        self.producer.send(record).map_err(|(e, _)| e)?;
        // librdkafka reports every record it accepted (at the latest after
        // `message.timeout.ms`); a dropped sender means the client itself went away.
        acked.await.unwrap_or(Err(KafkaError::Canceled))
    }
}

impl Drop for AckedProducer {
    fn drop(&mut self) {
        // The thread lets go of its handle on the client within one `POLL_WAIT`.
        self.stop.store(true, Ordering::Relaxed);
    }
}
