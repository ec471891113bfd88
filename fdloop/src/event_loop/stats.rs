//! The loop's statistics: the public [`Stats`] and the integer counters
//! behind them.

use std::time::Duration;

/// One in this many zero-timeout batches is timed for
/// [`Stats::in_callbacks`].
pub(super) const SAMPLE_EVERY: u64 = 8;

/// Counters a loop keeps about itself; see [`EventLoop::stats`](crate::EventLoop::stats).
///
/// The two durations are measured only while
/// [`EventLoop::set_time_stats`](crate::EventLoop::set_time_stats) is on
/// (off by default: they read zero), as sums of kernel-tick-resolution
/// measurements (`CLOCK_MONOTONIC_COARSE`): exact in the long run, coarse
/// for a few iterations. The counts are always kept.
///
/// # Examples
///
/// ```
/// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
/// ev.dispatch_pending(&mut ())?;
/// let s = ev.stats();
/// assert_eq!(s.iterations, 1);
/// assert_eq!(s.events, 0);
/// # Ok::<(), fdloop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// `run_once` calls (including those made by `run` and
    /// `dispatch_pending`).
    pub iterations: u64,
    /// Callbacks run for events: descriptor readiness and deferred calls.
    pub events: u64,
    /// Waits that could block (non-zero timeout) and returned because
    /// something happened rather than because the timeout passed.
    pub wakeups: u64,
    /// Time spent inside `epoll_wait` with a timeout that could block
    /// (while [`set_time_stats`](crate::EventLoop::set_time_stats) is on).
    pub blocked: Duration,
    /// Time spent running callbacks for events (measured per batch, not
    /// per callback, while
    /// [`set_time_stats`](crate::EventLoop::set_time_stats) is on).
    /// Batches of zero-timeout iterations
    /// ([`dispatch_pending`](crate::EventLoop::dispatch_pending)) are timed
    /// one in eight, the measurement counted eight times — an unbiased
    /// estimate that spares most of those iterations two clock reads.
    pub in_callbacks: Duration,
}

// Both durations are summed from `CLOCK_MONOTONIC_COARSE` readings: a read
// costs ~6 ns instead of ~35 ns; still, the two or three per iteration are
// about 4 % of a loop that dispatches one event per iteration, so they are
// opt-in (`Driver::timing`). Each interval is measured in whole kernel
// ticks (1–10 ms), so one short interval reads as 0 or one tick, but since
// wake-ups are not aligned with ticks the sums are unbiased: over many
// iterations they converge on the true totals (the kernel accounts process
// CPU time by ticks the same way).
//
// The loop keeps them as plain integers (nanoseconds for the durations) and
// builds a `Stats` only when asked, so the per-iteration cost is a few adds.
#[derive(Clone, Copy, Default)]
pub(super) struct Counters {
    pub(super) iterations: u64,
    pub(super) events: u64,
    pub(super) wakeups: u64,
    pub(super) blocked_ns: u64,
    pub(super) callbacks_ns: u64,
}

impl Counters {
    #[inline]
    pub(super) fn add_blocked(&mut self, from: u64, to: u64) {
        self.blocked_ns = self.blocked_ns.saturating_add(to.saturating_sub(from));
    }

    #[inline]
    pub(super) fn add_callbacks(&mut self, from: u64, to: u64, weight: u64) {
        let d = to.saturating_sub(from).saturating_mul(weight);
        self.callbacks_ns = self.callbacks_ns.saturating_add(d);
    }

    pub(super) fn to_stats(self) -> Stats {
        Stats {
            iterations: self.iterations,
            events: self.events,
            wakeups: self.wakeups,
            blocked: Duration::from_nanos(self.blocked_ns),
            in_callbacks: Duration::from_nanos(self.callbacks_ns),
        }
    }
}
