//! Waiting for a condition: [`until`] asks an async check every `every` until its answer is
//! done or `timeout` has passed, and returns the last answer.
//!
//! Why one helper: the sink waited in hand-written deadline loops (a new topic becoming usable,
//! a connector starting, its tasks stopping, Connect rebalancing, a replication slot being
//! released), each with its own `Instant::now() + …` arithmetic and its own place to get the
//! last try wrong. The schedule is backon's, as for the start-up retry in `server.rs`; this
//! adds what backon leaves to its caller: "not yet" is an answer, not an error; the wait ends
//! at a deadline, not after a number of tries; and the last answer comes back, so the caller
//! words the timeout in its own terms. An error from the check ends the wait at once.
//!
//! Not everything with a deadline is one of these: an SSE stream's keepalive and slow-consumer
//! checks (`sse.rs`) are timers on a live stream, and the reconciler's restart backoff
//! (`sources/reconcile.rs`) is a schedule across passes, not a wait.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{ConstantBuilder, Retryable};

/// Calls `check` until `done` holds for its answer, every `every`, for up to `timeout` (the
/// first call is at once); returns the last answer, done or not, or the first error.
pub async fn until<T, E, F, Fut>(
    timeout: Duration,
    every: Duration,
    mut check: F,
    done: impl Fn(&T) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    enum Step<T, E> {
        NotYet(T),
        Failed(E),
    }
    let started = Instant::now();
    let done = &done;
    let attempt = || {
        let answer = check();
        async move {
            match answer.await {
                Ok(v) if done(&v) => Ok(v),
                Ok(v) => Err(Step::NotYet(v)),
                Err(e) => Err(Step::Failed(e)),
            }
        }
    };
    let result = attempt
        .retry(ConstantBuilder::new().with_delay(every).without_max_times())
        .when(|s| matches!(s, Step::NotYet(_)) && started.elapsed() < timeout)
        .await;
    match result {
        Ok(v) | Err(Step::NotYet(v)) => Ok(v),
        Err(Step::Failed(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn stops_when_done_at_the_deadline_or_at_an_error() {
        let calls = AtomicU32::new(0);
        let count = || async { Ok::<_, ()>(calls.fetch_add(1, Ordering::Relaxed) + 1) };
        let ms = Duration::from_millis;
        assert_eq!(until(ms(5_000), ms(1), count, |n| *n == 3).await, Ok(3));
        calls.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let last = until(ms(100), ms(20), count, |_| false).await.unwrap();
        assert!(started.elapsed() >= ms(100), "waited the whole timeout");
        assert!((5..=7).contains(&last), "the last answer: {last}");
        let err = until(ms(5_000), ms(1), || async { Err::<u32, _>("no") }, |_| true).await;
        assert_eq!(err, Err("no"));
    }
}
