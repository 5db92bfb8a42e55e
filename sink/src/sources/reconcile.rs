//! The reconciler: every few seconds, Kafka Connect is put back in line with the declared
//! sources (`registry`).
//!
//! For each declared source:
//! - no connector: it is created again from the declaration, under the same name. Connect
//!   still has the connector's source offsets (they live in the offsets topic, by connector
//!   name), so Debezium resumes from the last committed LSN, and the replication slot has kept
//!   every change since; if the offsets are gone too, Debezium starts from the slot's confirmed
//!   position, which again loses nothing (`snapshot_mode` decides whether a snapshot is taken
//!   first). A source whose password was given in plain text cannot be re-created without
//!   Connect's copy; that is reported, not guessed.
//! - a connector whose config differs from the declaration: the declared config is put back.
//! - a FAILED connector or task: restarted, with an exponential backoff per source (5 s to
//!   5 min) so a source that keeps failing is not hammered.
//!
//! Every action is logged, counted in `tumbleweed_source_reconcile_actions_total`, and kept
//! (the last few, with the time of the last pass) on the source's API resource. Replicas all
//! run it: each step is idempotent (a creation that lost a race answers "exists").
//!
//! What a pass saw is exported as gauges too, for alerting on a state rather than on actions:
//! `tumbleweed_source_connector_state{source,state}` (1 for the connector's state as Connect
//! reported it, or `MISSING`; 0 for the others), `tumbleweed_source_failed_tasks{source}`,
//! and `tumbleweed_connect_reachable` (whether Connect answered the last pass; only measured
//! while some source is declared, as a pass with nothing to reconcile asks Connect nothing).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use super::model::{connector_name, ConnectorState};
use super::SourcesService;
use crate::consumers::registry::now_ms;
use crate::metrics;

/// How many recent actions a source keeps.
const KEPT_ACTIONS: usize = 10;
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A declaration younger than this whose connector is missing is a creation in progress.
const CREATE_GRACE_MS: u64 = 5_000;

/// One thing the reconciler did (or could not do) to a source's connector, and what the API
/// shows of it: the shared contract's types.
pub use tumbleweed_api::sources::{ReconcileAction, ReconcileEvent as Action, SourceReconcile};

#[derive(Default)]
struct State {
    last_ms: Option<u64>,
    actions: VecDeque<Action>,
    backoff: Option<Duration>,
    next_restart: Option<Instant>,
}

/// Connector states exported one-hot by `tumbleweed_source_connector_state` (Connect's
/// states, plus `MISSING` for a declared source without a connector).
pub const CONNECTOR_STATES: [&str; 6] = [
    "RUNNING",
    "PAUSED",
    "FAILED",
    "UNASSIGNED",
    "RESTARTING",
    "MISSING",
];

/// What the last pass saw of one source's connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Connect's connector state, `MISSING`, or `UNKNOWN` when Connect gave no status.
    pub connector_state: String,
    pub failed_tasks: usize,
}

/// Per-source reconciler state and action counters.
#[derive(Default)]
pub struct ReconcileState {
    sources: Mutex<HashMap<String, State>>,
    /// `tumbleweed_source_reconcile_actions_total`, kept after a source is deleted.
    counts: Family<ActionLabels, Counter>,
    observed: Mutex<HashMap<String, Observed>>,
    /// Whether Connect answered the last pass: `None` before a pass asked it anything.
    connect_reachable: Mutex<Option<bool>>,
}

impl ReconcileState {
    pub fn view(&self, source: &str) -> SourceReconcile {
        let all = self.sources.lock();
        match all.get(source) {
            None => SourceReconcile::default(),
            Some(s) => SourceReconcile {
                last_reconciled_ms: s.last_ms,
                actions: s.actions.iter().rev().cloned().collect(),
            },
        }
    }

    fn record(&self, source: &str, action: ReconcileAction, detail: String) {
        let complaint = action.is_complaint();
        let word = action.as_str();
        if complaint {
            tracing::warn!(source, action = word, %detail, "reconciler")
        } else {
            tracing::info!(source, action = word, %detail, "reconciler")
        }
        self.counts
            .get_or_create(&ActionLabels {
                source: source.to_string(),
                action: word,
            })
            .inc();
        let mut all = self.sources.lock();
        let s = all.entry(source.to_string()).or_default();
        // A repeated complaint is kept once, with its latest time (and counted every time).
        if let Some(last) = s.actions.back_mut() {
            if complaint && last.action == action && last.detail == detail {
                last.at_ms = now_ms();
                return;
            }
        }
        s.actions.push_back(Action {
            at_ms: now_ms(),
            action,
            detail,
        });
        while s.actions.len() > KEPT_ACTIONS {
            s.actions.pop_front();
        }
    }

    fn touch(&self, source: &str) {
        self.sources
            .lock()
            .entry(source.to_string())
            .or_default()
            .last_ms = Some(now_ms());
    }

    /// Whether a failed connector may be restarted now; if so, the next try is pushed back.
    /// (A schedule kept across passes, not a wait: `crate::wait` is not for this.)
    fn restart_due(&self, source: &str) -> bool {
        let mut all = self.sources.lock();
        let s = all.entry(source.to_string()).or_default();
        if s.next_restart.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let backoff = s
            .backoff
            .map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
        s.backoff = Some(backoff);
        s.next_restart = Some(Instant::now() + backoff);
        true
    }

    fn healthy(&self, source: &str) {
        let mut all = self.sources.lock();
        if let Some(s) = all.get_mut(source) {
            s.backoff = None;
            s.next_restart = None;
        }
    }

    /// Forgets a deleted source.
    pub fn forget(&self, source: &str) {
        self.sources.lock().remove(source);
        self.observed.lock().remove(source);
    }

    fn observe(&self, source: &str, seen: Observed) {
        self.observed.lock().insert(source.to_string(), seen);
    }

    /// Registers the action counters, and the gauges of what the last pass saw.
    pub fn register_metrics(self: &Arc<Self>, registry: &mut Registry) {
        metrics::register(
            registry,
            "tumbleweed_source_reconcile_actions_total",
            "Actions the reconciler took on a source's connector.",
            self.counts.clone(),
        );
        let state = Arc::clone(self);
        metrics::collect(registry, move |enc| {
            let observed = state.observed.lock();
            let mut sources: Vec<_> = observed.iter().collect();
            sources.sort_by(|a, b| a.0.cmp(b.0));
            metrics::live_gauges(
                enc,
                "tumbleweed_source_connector_state",
                "The state of each declared source's connector at the last reconciler pass (1 for the current state; MISSING: no connector in Connect).",
                sources.iter().flat_map(|(source, seen)| {
                    CONNECTOR_STATES.into_iter().map(|state| {
                        let labels = StateLabels {
                            source: source.to_string(),
                            state,
                        };
                        (labels, i64::from(seen.connector_state == state))
                    })
                }),
            )?;
            metrics::live_gauges(
                enc,
                "tumbleweed_source_failed_tasks",
                "Tasks of each declared source's connector in state FAILED at the last reconciler pass.",
                sources.iter().map(|(source, seen)| {
                    let labels = SourceLabels {
                        source: source.to_string(),
                    };
                    (labels, seen.failed_tasks as u64)
                }),
            )?;
            drop(observed);
            match *state.connect_reachable.lock() {
                Some(up) => metrics::live_gauge(
                    enc,
                    "tumbleweed_connect_reachable",
                    "1 when Kafka Connect answered the reconciler's last pass, else 0 (measured while a source is declared).",
                    i64::from(up),
                ),
                None => Ok(()),
            }
        });
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    source: String,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    source: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

impl SourcesService {
    /// One pass over every declared source.
    pub async fn reconcile_once(&self) {
        if let Err(e) = self.registry.sync().await {
            tracing::warn!(error = %format!("{e:#}"), "reconciler: the source registry is not readable");
            return;
        }
        let declared = self.registry.list();
        if declared.is_empty() {
            return;
        }
        let listed = self.connect.list_expanded().await;
        *self.reconcile.connect_reachable.lock() = Some(listed.is_ok());
        let actual = match listed {
            Ok(a) => a,
            Err(e) => {
                let why = format!("Kafka Connect is not answering: {e:#}");
                for d in &declared {
                    self.reconcile
                        .record(&d.name, ReconcileAction::Failed, why.clone());
                    self.reconcile.touch(&d.name);
                }
                return;
            }
        };
        for d in declared {
            let connector = connector_name(&d.name);
            let state = &self.reconcile;
            state.observe(
                &d.name,
                match actual.get(&connector) {
                    None => Observed {
                        connector_state: "MISSING".into(),
                        failed_tasks: 0,
                    },
                    Some((_, status)) => Observed {
                        connector_state: status
                            .as_ref()
                            .map_or_else(|| "UNKNOWN".into(), |s| s.state.as_str().to_string()),
                        failed_tasks: status.as_ref().map_or(0, |s| {
                            s.tasks
                                .iter()
                                .filter(|t| t.state == ConnectorState::Failed)
                                .count()
                        }),
                    },
                },
            );
            match actual.get(&connector) {
                // A creation in progress (on this or another replica) declares first.
                None if now_ms().saturating_sub(d.declared_at_ms) < CREATE_GRACE_MS => {}
                None => match d.complete_with(self.known_password(&d.name).as_deref()) {
                    Some(config) => match self.connect.create(&connector, &config).await {
                        Ok(true) => state.record(
                            &d.name,
                            ReconcileAction::Recreated,
                            "the connector was missing from Kafka Connect; created again from the declaration".into(),
                        ),
                        Ok(false) => {} // another replica was quicker
                        Err(e) => state.record(&d.name, ReconcileAction::Failed, format!("re-creating the connector: {e:#}")),
                    },
                    None => state.record(
                        &d.name,
                        ReconcileAction::CannotRecreate,
                        "the connector is missing and its password was given in plain text, which Tumbleweed does not store: declare the source again (password_secret keeps this from happening)".into(),
                    ),
                },
                Some((config, status)) => {
                    if let Some(pw) = config.get("database.password").and_then(|v| v.as_str()) {
                        self.learn_password(&d.name, pw);
                    }
                    if !d.matches(config) {
                        let mut wanted = d.config.clone();
                        if let Some(pw) = config.get("database.password") {
                            wanted.entry("database.password").or_insert(pw.clone());
                        }
                        match self.connect.put_config(&connector, &wanted).await {
                            Ok(()) => state.record(
                                &d.name,
                                ReconcileAction::ConfigRestored,
                                "the connector's config differed from the declaration; put back".into(),
                            ),
                            Err(e) => state.record(&d.name, ReconcileAction::Failed, format!("restoring the config: {e:#}")),
                        }
                    } else if let Some(why) = status.as_ref().and_then(|s| s.failure()) {
                        if state.restart_due(&d.name) {
                            match self.connect.restart_failed(&connector).await {
                                Ok(()) => state.record(&d.name, ReconcileAction::Restarted, format!("restarted after: {why}")),
                                Err(e) => state.record(&d.name, ReconcileAction::Failed, format!("restarting: {e:#}")),
                            }
                        }
                    } else if status.as_ref().is_some_and(|s| s.running()) {
                        state.healthy(&d.name);
                    }
                }
            }
            state.touch(&d.name);
        }
    }

    /// Runs [`SourcesService::reconcile_once`] every `interval` until `shutdown`.
    pub fn spawn_reconciler(
        self: &Arc<Self>,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = svc.reconcile_once() => {}
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expire(state: &ReconcileState, source: &str) {
        state.sources.lock().get_mut(source).unwrap().next_restart = Some(Instant::now());
    }

    #[test]
    fn restarts_back_off_exponentially_up_to_a_cap_and_health_resets_them() {
        let s = ReconcileState::default();
        assert!(s.restart_due("a"), "the first failure is restarted at once");
        assert!(!s.restart_due("a"), "not again within the backoff");
        let backoff = |s: &ReconcileState| s.sources.lock()["a"].backoff.unwrap();
        assert_eq!(backoff(&s), FIRST_BACKOFF);
        for want in [10, 20, 40, 80, 160, 300, 300] {
            expire(&s, "a");
            assert!(s.restart_due("a"));
            assert_eq!(backoff(&s), Duration::from_secs(want));
        }
        s.healthy("a");
        assert!(s.restart_due("a"));
        assert_eq!(
            backoff(&s),
            FIRST_BACKOFF,
            "a running connector starts over"
        );
    }

    #[test]
    fn connector_states_are_exported_one_hot_with_failed_tasks_and_reachability() {
        let s = Arc::new(ReconcileState::default());
        let out = metrics::encode_with(|r| s.register_metrics(r));
        assert!(
            !out.contains("tumbleweed_connect_reachable "),
            "not measured yet: {out}"
        );
        s.observe(
            "orders",
            Observed {
                connector_state: "RUNNING".into(),
                failed_tasks: 1,
            },
        );
        s.observe(
            "gone",
            Observed {
                connector_state: "MISSING".into(),
                failed_tasks: 0,
            },
        );
        *s.connect_reachable.lock() = Some(false);
        let out = metrics::encode_with(|r| s.register_metrics(r));
        assert!(out
            .contains("tumbleweed_source_connector_state{source=\"orders\",state=\"RUNNING\"} 1"));
        assert!(
            out.contains("tumbleweed_source_connector_state{source=\"orders\",state=\"FAILED\"} 0")
        );
        assert!(
            out.contains("tumbleweed_source_connector_state{source=\"gone\",state=\"MISSING\"} 1")
        );
        assert_eq!(
            out.matches("tumbleweed_source_connector_state{source=\"orders\"")
                .count(),
            CONNECTOR_STATES.len()
        );
        assert!(out.contains("tumbleweed_source_failed_tasks{source=\"orders\"} 1"));
        assert!(out.contains("tumbleweed_connect_reachable 0"));
        s.forget("gone");
        let out = metrics::encode_with(|r| s.register_metrics(r));
        assert!(
            !out.contains("source=\"gone\""),
            "a deleted source leaves the metrics"
        );
    }

    #[test]
    fn actions_are_kept_newest_first_and_counted() {
        let s = Arc::new(ReconcileState::default());
        for i in 0..(KEPT_ACTIONS + 3) {
            s.record("a", ReconcileAction::Restarted, format!("try {i}"));
        }
        s.record("a", ReconcileAction::Failed, "Connect is away".into());
        s.record("a", ReconcileAction::Failed, "Connect is away".into());
        let v = s.view("a");
        assert_eq!(v.actions.len(), KEPT_ACTIONS);
        assert_eq!(
            v.actions[0].action,
            ReconcileAction::Failed,
            "newest first; a repeated complaint once"
        );
        assert_eq!(v.actions[1].detail, format!("try {}", KEPT_ACTIONS + 2));
        let out = metrics::encode_with(|r| s.register_metrics(r));
        assert!(
            out.contains(&format!(
                "tumbleweed_source_reconcile_actions_total{{source=\"a\",action=\"restarted\"}} {}",
                KEPT_ACTIONS + 3
            )),
            "{out}"
        );
        assert!(
            out.contains(
                "tumbleweed_source_reconcile_actions_total{source=\"a\",action=\"failed\"} 2"
            ),
            "{out}"
        );
    }
}
