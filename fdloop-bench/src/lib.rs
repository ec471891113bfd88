//! Benchmarks of fdloop against its peers.
//!
//! The one command that runs them all is the head-to-head report, an
//! ordinary binary (`src/bin/report.rs`):
//!
//! ```text
//! cargo run --release -p fdloop-bench --bin report [-- --quick] [--only GROUP] [--json PATH]
//! cargo run --release -p fdloop-bench --features c-peers --bin report   # + GLib, libevent, sd-event
//! ```
//!
//! * `groups` (feature `peers`, on by default): the comparisons, one
//!   module per group, against mio, calloop, tokio, crossbeam-channel,
//!   flume, std and (feature `c-peers`) the C loops; `cli`: the report's
//!   command line.
//! * [`harness`]: how a case is measured (interleaved repetitions, system
//!   calls counted by [`syscount`] in untimed runs).
//! * [`record`]: the report's figures and their statistics (medians,
//!   percentiles, best peer, cost ratios); [`render`]: their tables,
//!   summary, SVG charts and JSON and Markdown files.
//! * The contenders that need no peer crate: the wake primitives' loops
//!   [`Local`] (one thread signals and consumes its own wake-up),
//!   [`Burst`] (many `notify` calls, one drain: the Notifier's coalescing)
//!   and [`RoundTrip`] (two threads blocking in turn); [`dispatch`]: the
//!   hand-written epoll floor and fdloop's contender for the
//!   dispatch-overhead comparison; [`pingpong`]: the floor for a round trip
//!   between two loops; [`threads`] and [`timers`]: producer, ping-pong
//!   and timer scaffolding.
//! * `cpeers` (feature `c-peers`): GLib, libevent and sd-event.
//!
//! Every function returns `io::Result`; nothing here panics on an OS error.

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "peers")]
pub mod cli;
#[cfg(feature = "c-peers")]
pub mod cpeers;
pub mod dispatch;
#[cfg(feature = "peers")]
pub mod groups;
pub mod harness;
mod local;
mod pin;
pub mod pingpong;
pub mod record;
pub mod render;
mod round_trip;
pub mod syscount;
pub mod threads;
pub mod timers;

pub use local::{Burst, Local};
pub use pin::{allowed_cpus, pin_current_thread, pin_opt, pin_scoped, Pin, PinGuard};
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
