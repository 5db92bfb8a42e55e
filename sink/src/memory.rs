//! The process memory guard: keeps the sink's resident memory under `--memory-limit`.
//!
//! The byte budgets (`--buffer-bytes`, and the replay cache and reader prefetch derived from
//! it) bound what the sink *keeps*. What it holds *in flight* grows with the work: every
//! stream has chunks on their way to its client, every replay read a chunk being parsed, and
//! the allocator returns freed pages with a delay. With many streams replaying at once that
//! sum, not the budgets, sets the peak, so a container limit sized from the budgets alone can
//! still be crossed.
//!
//! The guard samples the process's RSS every 100 ms (Linux `/proc/self/statm`, one read of a
//! small file). Above the high-water mark (85 % of the limit) the sink stops taking on more
//! work until it is back under:
//! - new SSE streams are answered 503 with `Retry-After` (try later, or another replica);
//! - replay reads run one at a time instead of in parallel.
//!
//! Streams already open keep flowing: nothing is dropped or skipped, they only go slower.
//! Without a limit (the default) the guard only reports the RSS.
//!
//! The guard also gives the C heap's free memory back. Rust allocates from jemalloc, which
//! returns freed pages by itself (see `main.rs`), but librdkafka allocates with the C
//! library's malloc, whose per-thread arenas keep what its fetches freed (measured: 30 MiB of
//! 38 free at rest with 200 topics). Every second, and at every sample above the high-water
//! mark, the guard calls glibc's `malloc_trim`, about 1 ms here. (Sending librdkafka to
//! jemalloc instead was measured too: less at rest, but a higher peak and slower replay.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

/// Fraction of the limit, in percent, above which the sink takes on no more work.
pub const HIGH_WATER_PERCENT: usize = 85;
/// The C heap is trimmed every this many samples (a second), and at every sample under
/// pressure.
const TRIM_EVERY_SAMPLES: u64 = 10;

/// The guard, shared by the server, the stream limits and the replay pool.
#[derive(Debug, Default)]
pub struct MemoryGuard {
    /// Bytes; 0 means no limit.
    limit: usize,
    rss: AtomicUsize,
    /// Samples taken above the high-water mark, for metrics.
    pub pressured_samples: Counter,
}

impl MemoryGuard {
    /// A guard for `limit` bytes (`None` or 0: no limit), with a first sample taken now.
    pub fn new(limit: Option<u64>) -> Arc<Self> {
        let guard = Arc::new(Self {
            limit: limit.unwrap_or(0) as usize,
            ..Self::default()
        });
        guard.sample();
        guard
    }

    /// The configured limit in bytes, if any.
    pub fn limit(&self) -> Option<usize> {
        (self.limit > 0).then_some(self.limit)
    }

    /// Resident memory at the last sample, in bytes.
    pub fn rss(&self) -> usize {
        self.rss.load(Ordering::Relaxed)
    }

    /// Whether the last sample was above the high-water mark of the limit.
    pub fn under_pressure(&self) -> bool {
        self.limit > 0 && self.rss() >= self.limit / 100 * HIGH_WATER_PERCENT
    }

    fn sample(&self) {
        if let Some(rss) = resident_bytes() {
            self.rss.store(rss, Ordering::Relaxed);
            if self.under_pressure() {
                self.pressured_samples.inc();
            }
        }
    }

    /// Samples every 100 ms until `shutdown`.
    pub fn spawn_sampler(self: &Arc<Self>, shutdown: CancellationToken) {
        let guard = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut samples = 0u64;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.cancelled() => return,
                }
                let Some(guard) = guard.upgrade() else { return };
                guard.sample();
                samples += 1;
                if samples.is_multiple_of(TRIM_EVERY_SAMPLES) || guard.under_pressure() {
                    trim_c_heap();
                }
            }
        });
    }
}

/// Gives the C heap's free pages back to the system (glibc's `malloc_trim`).
fn trim_c_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of glibc's heap, under its own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This process's resident set size in bytes (Linux), or `None` where `/proc` is missing.
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * usize::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_starts_at_the_high_water_mark() {
        let g = MemoryGuard::new(None);
        assert!(g.rss() > 0, "this process's RSS is read");
        assert!(!g.under_pressure(), "no limit, no pressure");
        let g = MemoryGuard::new(Some(1000));
        g.rss.store(849, Ordering::Relaxed);
        assert!(!g.under_pressure());
        g.rss.store(850, Ordering::Relaxed);
        assert!(g.under_pressure());
    }
}
