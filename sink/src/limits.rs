//! Admission limits: how many SSE streams the sink serves in all and per consumer, and how
//! many HTTP connections it keeps open.
//!
//! A stream takes a [`StreamPermit`] before it starts and gives it back when it ends (the
//! permit's `Drop`), so a crashed or cancelled stream task cannot leak its place. A request
//! over a limit is answered at once, with a status that says whose limit it is and a
//! `Retry-After`: 429 when the consumer has too many streams of its own (its problem), 503 when
//! the sink as a whole is full (try another replica or later). Connections over
//! `max_connections` get a 503 and are closed by the server (`server.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;

use crate::memory::MemoryGuard;

/// Stream limits, shared by every request.
pub struct StreamLimits {
    max_total: usize,
    max_per_consumer: usize,
    memory: Option<Arc<MemoryGuard>>,
    state: Mutex<Counts>,
    /// Streams refused since the start, for metrics.
    pub refused: Counter,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_consumer: HashMap<String, usize>,
}

/// Why a stream was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("consumer {consumer:?} already has {limit} open streams (TUMBLEWEED_MAX_STREAMS_PER_CONSUMER); close one or retry later")]
    PerConsumer { consumer: String, limit: usize },
    #[error("this sink serves its maximum of {limit} streams (TUMBLEWEED_MAX_STREAMS); retry later or through another replica")]
    Total { limit: usize },
    #[error("this sink is near its memory limit ({rss_mib} of {limit_mib} MiB resident, TUMBLEWEED_MEMORY_LIMIT); retry later or through another replica")]
    Memory { rss_mib: usize, limit_mib: usize },
}

/// A stream's place under the limits; released on drop.
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    consumer: Option<String>,
}

impl StreamLimits {
    pub fn new(max_total: usize, max_per_consumer: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_consumer,
            memory: None,
            state: Mutex::default(),
            refused: Counter::default(),
        })
    }

    /// The same limits, plus: no new stream while `memory` is under pressure.
    pub fn with_memory(
        max_total: usize,
        max_per_consumer: usize,
        memory: Arc<MemoryGuard>,
    ) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_consumer,
            memory: Some(memory),
            state: Mutex::default(),
            refused: Counter::default(),
        })
    }

    /// Takes a place for a stream of `consumer` (`None`: an operator's live tail, which counts
    /// only against the total).
    pub fn admit(self: &Arc<Self>, consumer: Option<&str>) -> Result<StreamPermit, LimitError> {
        if let Some(m) = self.memory.as_ref().filter(|m| m.under_pressure()) {
            self.refused.inc();
            return Err(LimitError::Memory {
                rss_mib: m.rss() >> 20,
                limit_mib: m.limit().unwrap_or(0) >> 20,
            });
        }
        let mut state = self.state.lock();
        if state.total >= self.max_total {
            self.refused.inc();
            return Err(LimitError::Total {
                limit: self.max_total,
            });
        }
        if let Some(c) = consumer {
            let n = state.per_consumer.get(c).copied().unwrap_or(0);
            if n >= self.max_per_consumer {
                self.refused.inc();
                return Err(LimitError::PerConsumer {
                    consumer: c.to_string(),
                    limit: self.max_per_consumer,
                });
            }
            state.per_consumer.insert(c.to_string(), n + 1);
        }
        state.total += 1;
        Ok(StreamPermit {
            limits: self.clone(),
            consumer: consumer.map(str::to_string),
        })
    }

    /// Streams admitted and not yet ended.
    pub fn open(&self) -> usize {
        self.state.lock().total
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut state = self.limits.state.lock();
        state.total -= 1;
        if let Some(c) = &self.consumer {
            if let Some(n) = state.per_consumer.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    state.per_consumer.remove(c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_places_come_back() {
        let limits = StreamLimits::new(3, 2);
        let a1 = limits.admit(Some("a")).unwrap();
        let _a2 = limits.admit(Some("a")).unwrap();
        assert_eq!(
            limits.admit(Some("a")).err(),
            Some(LimitError::PerConsumer {
                consumer: "a".into(),
                limit: 2
            })
        );
        let _b = limits.admit(Some("b")).unwrap();
        assert_eq!(
            limits.admit(None).err(),
            Some(LimitError::Total { limit: 3 })
        );
        drop(a1);
        assert_eq!(limits.open(), 2);
        let _a3 = limits.admit(Some("a")).unwrap();
        assert_eq!(limits.refused.get(), 2);
    }
}
