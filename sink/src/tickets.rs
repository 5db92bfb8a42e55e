//! Stream tickets: short-lived, single-use credentials for opening one SSE stream from a
//! browser's `EventSource`, which cannot send an `Authorization` header.
//!
//! Why: a consumer token in `?token=` lands in load-balancer access logs and browser history,
//! where it stays valid until the consumer is deleted. A ticket is asked for with the token in
//! the header (`POST /v1/consumers/{name}/tickets`), goes in the URL instead, and is worth one
//! stream within its lifetime (60 s by default): a logged URL is useless afterwards.
//!
//! Design: tickets live in a log topic shared by the replicas ([`CompactedLog`], with
//! `cleanup.policy=compact,delete` and one hour of retention, so the topic stays small). A
//! ticket issued through one replica can be used through another (the load balancer has no
//! stickiness). Only the ticket's SHA-256 is written. Using a ticket appends a "used" record
//! with a random claim, and the claim that every replica applies first wins: two replicas
//! presented the same ticket at once cannot both accept it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use parking_lot::Mutex;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::auth::token_digest;
use crate::consumers::registry::{now_ms, ConsumerRecord};
use crate::kafka::compacted::CompactedLog;
use crate::kafka::{KafkaMeta, KafkaSettings};

/// One record of the ticket log (key: the ticket's SHA-256).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum TicketRecord {
    Issued {
        consumer: String,
        consumer_created_at_ms: u64,
        expires_at_ms: u64,
    },
    Used {
        claim: String,
    },
}

#[derive(Debug)]
struct Ticket {
    consumer: String,
    consumer_created_at_ms: u64,
    expires_at_ms: u64,
    /// The first claim applied: the one use that counts.
    used_by: Option<String>,
}

/// Why a ticket was not accepted. Deliberately one answer for the client (see `http.rs`);
/// the variants are for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRefused {
    Unknown,
    Expired,
    AlreadyUsed,
    OtherConsumer,
}

pub struct TicketStore {
    log: Arc<CompactedLog>,
    tickets: Arc<Mutex<HashMap<String, Ticket>>>,
    ttl: Duration,
    /// When a ticket unknown here last made this replica read the log (see `redeem`).
    last_miss_sync: Mutex<Option<std::time::Instant>>,
}

/// How often an unknown ticket may make a replica read the ticket log: often enough that a
/// ticket issued through another replica a moment ago is found, rarely enough that made-up
/// tickets cannot turn into a stream of broker calls.
const MISS_SYNC_EVERY: Duration = Duration::from_millis(100);

/// A ticket just issued.
pub struct Issued {
    pub ticket: String,
    pub expires_at_ms: u64,
}

impl TicketStore {
    /// Creates the ticket topic if needed, loads the tickets still in it and starts tailing.
    pub async fn open(
        settings: &KafkaSettings,
        meta: &KafkaMeta,
        topic: &str,
        replication: i32,
        ttl: Duration,
    ) -> Result<Arc<Self>> {
        let tickets: Arc<Mutex<HashMap<String, Ticket>>> = Arc::default();
        let target = tickets.clone();
        let apply = Box::new(move |key: &str, value: Option<&[u8]>| {
            let mut tickets = target.lock();
            // Forget what expired a while ago, so memory holds only live tickets.
            let now = now_ms();
            tickets.retain(|_, t| t.expires_at_ms + 60_000 > now);
            match value
                .map(serde_json::from_slice::<TicketRecord>)
                .transpose()
            {
                Ok(Some(TicketRecord::Issued {
                    consumer,
                    consumer_created_at_ms,
                    expires_at_ms,
                })) => {
                    tickets.entry(key.to_string()).or_insert(Ticket {
                        consumer,
                        consumer_created_at_ms,
                        expires_at_ms,
                        used_by: None,
                    });
                }
                Ok(Some(TicketRecord::Used { claim })) => {
                    if let Some(t) = tickets.get_mut(key) {
                        t.used_by.get_or_insert(claim);
                    }
                }
                Ok(None) => {
                    tickets.remove(key);
                }
                Err(e) => tracing::warn!(error = %e, "unreadable ticket record skipped"),
            }
        });
        let log = CompactedLog::open_with(
            settings,
            meta,
            topic,
            replication,
            &[
                ("cleanup.policy", "compact,delete"),
                ("retention.ms", "3600000"),
            ],
            "ticket log",
            apply,
        )
        .await?;
        Ok(Arc::new(Self {
            log,
            tickets,
            ttl,
            last_miss_sync: Mutex::new(None),
        }))
    }

    /// Issues a ticket for one stream of `consumer`.
    pub async fn issue(&self, consumer: &ConsumerRecord) -> Result<Issued> {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = format!(
            "twt_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let expires_at_ms = now_ms() + self.ttl.as_millis() as u64;
        let record = TicketRecord::Issued {
            consumer: consumer.name.clone(),
            consumer_created_at_ms: consumer.created_at_ms,
            expires_at_ms,
        };
        self.log
            .write(
                &token_digest(&ticket),
                Some(serde_json::to_vec(&record).expect("a ticket serialises")),
            )
            .await
            .context("storing the ticket")?;
        Ok(Issued {
            ticket,
            expires_at_ms,
        })
    }

    /// Uses `ticket` for a stream of `consumer`: accepted once, within its lifetime, for the
    /// consumer (registration) it was issued for.
    pub async fn redeem(
        &self,
        ticket: &str,
        consumer: &ConsumerRecord,
    ) -> Result<Result<(), TicketRefused>> {
        let key = token_digest(ticket);
        if !self.tickets.lock().contains_key(&key) {
            // Issued through another replica a moment ago? Read the log, at most every
            // MISS_SYNC_EVERY; otherwise wait for the reader to catch up on its own.
            let due = {
                let mut last = self.last_miss_sync.lock();
                let due = last.is_none_or(|t| t.elapsed() >= MISS_SYNC_EVERY);
                if due {
                    *last = Some(std::time::Instant::now());
                }
                due
            };
            if due {
                self.log.sync().await.context("reading the ticket log")?;
            } else {
                tokio::time::sleep(MISS_SYNC_EVERY).await;
            }
        }
        let check = |t: Option<&Ticket>| -> Result<(), TicketRefused> {
            let t = t.ok_or(TicketRefused::Unknown)?;
            if t.consumer != consumer.name || t.consumer_created_at_ms != consumer.created_at_ms {
                return Err(TicketRefused::OtherConsumer);
            }
            if t.expires_at_ms <= now_ms() {
                return Err(TicketRefused::Expired);
            }
            if t.used_by.is_some() {
                return Err(TicketRefused::AlreadyUsed);
            }
            Ok(())
        };
        if let Err(refused) = check(self.tickets.lock().get(&key)) {
            return Ok(Err(refused));
        }
        let mut bytes = [0u8; 12];
        rand::rng().fill_bytes(&mut bytes);
        let claim = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let record = TicketRecord::Used {
            claim: claim.clone(),
        };
        self.log
            .write(
                &key,
                Some(serde_json::to_vec(&record).expect("a ticket serialises")),
            )
            .await
            .context("recording the ticket's use")?;
        let won = self
            .tickets
            .lock()
            .get(&key)
            .and_then(|t| t.used_by.clone())
            .is_some_and(|first| first == claim);
        Ok(if won {
            Ok(())
        } else {
            Err(TicketRefused::AlreadyUsed)
        })
    }

    /// Stops the reader thread (at shutdown).
    pub fn shutdown(&self) {
        self.log.shutdown();
    }
}
