//! Benchmarks of fdloop against its peers.
//!
//! The one command that runs them all is the head-to-head report:
//!
//! ```text
//! cargo run --release -p fdloop-bench --bin report [-- --quick] [--only GROUP] [--json PATH]
//! ```
//!
//! (a launcher for `examples/report.rs`; the comparisons themselves live in
//! `groups/`, because the Rust peers are dev-dependencies). This library
//! holds what needs no peer crate:
//!
//! * the wake primitives' loops: [`Local`] (one thread signals and consumes
//!   its own wake-up), [`Burst`] (many `notify` calls, one drain: the
//!   Notifier's coalescing) and [`RoundTrip`] (two threads blocking in
//!   turn), shared with the criterion bench `benches/wake.rs`;
//! * [`dispatch`]: the hand-written epoll floor and fdloop's contender for
//!   the dispatch-overhead comparison; [`pingpong`]: the floor for a round
//!   trip between two loops; [`threads`] and [`timers`]: producer,
//!   ping-pong and timer scaffolding;
//! * `cpeers` (feature `c-peers`): GLib, libevent and sd-event through
//!   small hand-written FFI bindings;
//! * [`record`]: the report's figures and their tables, JSON and SVG
//!   charts; [`report`]: interleaving, medians, formatting;
//!   [`syscount`]: counting system calls from inside the process.
//!
//! Every function returns `io::Result`; nothing here panics on an OS error.

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "c-peers")]
pub mod cpeers;
pub mod dispatch;
mod local;
mod pin;
pub mod pingpong;
pub mod record;
pub mod report;
mod round_trip;
pub mod syscount;
pub mod threads;
pub mod timers;

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
