//! Waiting until something is ready, or a deadline passes.
//!
//! # Design
//!
//! Every "poll until ready" loop of the helper (the sink's `/readyz` in `bootstrap`, a prefix
//! list settling in `whitelist`, ECS steady state and in-sync replicas in `kafka_roll`) is
//! one call of [`until`]: a check that answers `Ok(value)` when done, [`Pending::NotYet`]
//! with the reason to wait, or [`Pending::Failed`] to stop at once; after the timeout, the
//! caller's `timed_out` turns the last reason into its own error message.
//!
//! The retrying is `backon`'s, as in the sink. Its backoff builders bound the number of
//! attempts or the sum of the sleeps, but these timeouts are wall-clock: a check may itself
//! take seconds (an HTTP timeout, an AWS call), and that time counts. So the backoff is a
//! constant `poll` that ends at a deadline: an iterator, which is all backon needs. The clock
//! is Tokio's, so tests with a paused clock wait no real time.

use std::future::Future;
use std::time::Duration;

use backon::Retryable;
use tokio::time::Instant;

/// Why a check did not end the wait with a value.
#[derive(Debug)]
pub enum Pending<E> {
    /// Not ready yet, and why (for the log and the timeout message).
    NotYet(String),
    /// Stop waiting: this error is the answer.
    Failed(E),
}

/// Runs `check` every `poll` until it returns `Ok`, fails, or `timeout` has passed since the
/// start (checked after each attempt, so there is always at least one); then the error is
/// `timed_out(last reason)`. Each wait is logged at info level as `waiting for {what}: {reason}`.
pub async fn until<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    timed_out: impl FnOnce(String) -> E,
    check: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Pending<E>>>,
{
    let deadline = Instant::now() + timeout;
    let backoff = std::iter::from_fn(move || (Instant::now() < deadline).then_some(poll));
    check
        .retry(backoff)
        .when(|e| matches!(e, Pending::NotYet(_)))
        .notify(|e, _| {
            if let Pending::NotYet(why) = e {
                tracing::info!("waiting for {what}: {why}");
            }
        })
        .await
        .map_err(|e| match e {
            Pending::NotYet(last) => timed_out(last),
            Pending::Failed(e) => e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn waits_until_ready_fails_fast_and_times_out_with_the_last_reason() {
        let late = |last: String| format!("late: {last}");
        let mut n = 0;
        let r = until("n", 60_000 * MS, MS, late, || {
            n += 1;
            let n = n;
            async move {
                match n {
                    3 => Ok(n),
                    _ => Err(Pending::NotYet(format!("n={n}"))),
                }
            }
        })
        .await;
        assert_eq!(r, Ok(3));

        let mut n = 0;
        let r: Result<(), String> = until("x", 60_000 * MS, MS, late, || {
            n += 1;
            async { Err(Pending::Failed("boom".to_string())) }
        })
        .await;
        assert_eq!(r, Err("boom".to_string()));
        assert_eq!(n, 1, "no retry after a failure");

        let start = Instant::now();
        let mut n = 0;
        let r: Result<(), String> = until("x", 50 * MS, 10 * MS, late, || {
            n += 1;
            let n = n;
            async move { Err(Pending::NotYet(format!("try {n}"))) }
        })
        .await;
        let elapsed = start.elapsed();
        assert_eq!(r, Err(format!("late: try {n}")), "the last reason");
        assert!((2..=6).contains(&n), "about every 10 ms for 50 ms: {n}");
        assert!(elapsed >= 50 * MS && elapsed < 5_000 * MS, "{elapsed:?}");
    }
}
