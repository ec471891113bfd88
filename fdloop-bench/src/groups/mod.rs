//! The comparisons of the head-to-head report, one module per group
//! (feature `peers`: they measure the Rust peers, and with `c-peers` the C
//! ones too):
//!
//! * [`wake`]: the wake primitives (eventfd, pipe, Mutex+Condvar queues,
//!   thread park as the floor);
//! * [`channel`]: channel throughput (1 and 4 producers) and round trips
//!   between two loops;
//! * [`dispatch`]: loop dispatch overhead with N = 1, 100, 10 000 ready fds;
//! * [`timers`]: timer arm+cancel with K pending, and firing lateness;
//! * [`async_rt`] (group `async`): executors — spawn and complete, wake to
//!   poll from another thread, TCP echo over 50 connections.
//!
//! Every group builds [`Entry`](crate::harness::Entry)s and hands each case
//! to [`Ctx::run_case`].

pub mod async_rt;
pub mod channel;
pub mod dispatch;
pub mod timers;
pub mod wake;

use std::io;

use crate::harness::Ctx;

/// The groups, in report order.
pub const GROUPS: [&str; 5] = ["wake", "channel", "dispatch", "timers", "async"];

/// Runs the group named `group` (one of [`GROUPS`]).
///
/// # Errors
///
/// A contender's error; `InvalidInput` for an unknown group.
pub fn run(group: &str, ctx: &mut Ctx<'_>) -> io::Result<()> {
    match group {
        "wake" => wake::run(ctx),
        "channel" => channel::run(ctx),
        "dispatch" => dispatch::run(ctx),
        "timers" => timers::run(ctx),
        "async" => async_rt::run(ctx),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown group {other:?}"),
        )),
    }
}
