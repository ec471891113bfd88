//! Benchmarks of fdloop against its peers.
//!
//! The measuring code lives here so that the criterion bench
//! (`benches/wake.rs`) and the side-by-side binary (`src/bin/wake.rs`) time
//! exactly the same loops:
//!
//! * [`Local`]: one thread signals and consumes its own wake-up (the cost of
//!   the syscalls, no scheduler involved);
//! * [`Burst`]: many `notify` calls, then one drain (shows the Notifier's
//!   coalescing);
//! * [`RoundTrip`]: two threads that block in turn (ping-pong), so each
//!   operation is two sleeps and two wake-ups through the scheduler.
//!
//! The [`dispatch`] module holds the dispatch-overhead contenders that need
//! no peer crate (the hand-written epoll floor and fdloop itself) for
//! `benches/dispatch.rs`, which adds mio and calloop.
//!
//! [`pingpong`] holds the hand-written floor for a round trip between two
//! event loops (two threads in `epoll_wait` on eventfds) used by
//! `benches/channel.rs`; [`report`] the interleaving, median and
//! formatting helpers of `benches/channel.rs` and `benches/timers.rs`.
//!
//! Every function returns `io::Result`; nothing here panics on an OS error.

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod dispatch;
mod local;
mod pin;
pub mod pingpong;
pub mod report;
mod round_trip;

pub use local::{Burst, Local};
pub use pin::{pin_current_thread, Pin};
pub use round_trip::RoundTrip;

use std::time::Duration;

/// The outcome of one timed run of a contender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Wall time of the timed loop (setup and warm-up excluded).
    pub elapsed: Duration,
    /// How many operations the loop did (the unit of "ns/op").
    pub ops: u64,
    /// System calls that wrote a wake-up during the timed loop (for a
    /// [`Notifier`](fdloop::Notifier), the change in
    /// [`writes()`](fdloop::Notifier::writes)); `None` where not counted.
    pub writes: Option<u64>,
}

impl Sample {
    /// Nanoseconds per operation.
    pub fn ns_per_op(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.ops.max(1) as f64
    }

    /// Wake-up writes per operation, where they were counted.
    pub fn writes_per_op(&self) -> Option<f64> {
        self.writes.map(|w| w as f64 / self.ops.max(1) as f64)
    }
}
