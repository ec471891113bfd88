//! Signals as events: a `signalfd(2)` source, and the signal-mask helpers
//! that make it reliable.
//!
//! # How it works
//!
//! A signalfd is a descriptor that becomes readable while one of its signals
//! is *pending*, and reading it takes the signal off the pending list as a
//! record ([`SignalInfo`]: which signal, who sent it, why). For that to
//! happen the signal must never be *delivered* the ordinary way, so it has
//! to be **blocked** — and a signal mask belongs to each thread, not to the
//! process.
//!
//! # The pitfall: every thread must block the signal
//!
//! The kernel hands a process-directed signal (`kill`, Ctrl-C, a child's
//! `SIGCHLD`) to *any* thread that does not block it. If one thread of the
//! process leaves `SIGTERM` unblocked, `SIGTERM` goes there — runs the
//! handler or the default action, which for `SIGTERM` kills the process —
//! and the signalfd never sees it. A new thread starts with a copy of its
//! creator's mask, so:
//!
//! * block the signals **first thing in `main()`, before any thread is
//!   spawned** (also before anything that spawns threads behind your back:
//!   runtimes, thread pools, logging back ends), with [`block`]; every thread
//!   created afterwards inherits the mask;
//! * threads spawned *before* that keep the signals unblocked and steal
//!   them. [`Signals`] detects this: when it joins an event loop, it reads
//!   `SigBlk` in `/proc/self/task/*/status` and refuses, naming each thread
//!   (id and name) that would steal a watched signal
//!   ([`UnblockedThreads`]). [`Signals::check_threads`] runs the same check
//!   on demand; [`Signals::allow_unblocked_threads`] turns it off.
//!
//! [`Signals::new`] blocks its signals in the thread that calls it (and
//! unblocks on drop what it blocked), which is enough for a single-threaded
//! program but not for the others.
//!
//! # Child processes
//!
//! The signal mask is inherited across `fork` and kept across `exec`: a
//! program started with `SIGINT` and `SIGTERM` blocked ignores Ctrl-C and
//! `kill`. Rust's [`std::process::Command`] does **not** clean this up —
//! it used to empty the child's mask, but since rust-lang/rust#101077
//! (so that masks set up by tools like `nohup` reach grandchildren) the
//! child inherits the mask of the thread that spawns it; fdloop's tests
//! check this. So:
//!
//! * commands you spawn from a thread that blocks signals for a signalfd
//!   need them unblocked: [`unblock_in_child`] adds a `pre_exec` hook that
//!   unblocks them in the child just before `exec`;
//! * a child made with a raw `fork` that goes on running Rust code (no
//!   `exec`) keeps the mask too: call [`unblock`] in the child if it needs
//!   the signals delivered normally.
//!
//! After `fork`, a signalfd inherited by the child is of no use there: reads
//! would return the child's signals, but `epoll`/`poll` keep watching the
//! parent's, so readiness is never reported. fdloop notices the fork: the
//! [`Signals`] methods that read or register fail in the child, as does the
//! event loop; create a new `Signals` in the child instead.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use fdloop::signal::{Signal, Signals};
//! use fdloop::{Action, EventLoop};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Before any thread exists: every thread inherits this mask.
//!     fdloop::signal::block(&[Signal::INT, Signal::TERM, Signal::USR1])?.keep();
//!
//!     let mut ev = EventLoop::new()?;
//!     let signals = Signals::new(&[Signal::INT, Signal::TERM, Signal::USR1])?;
//!     ev.insert(signals, |info, _signals, stop: &mut bool| {
//!         println!("got {} from pid {}", info.signal, info.pid);
//!         *stop = info.signal != Signal::USR1;
//!         Action::Continue
//!     })?;
//!
//!     Signal::USR1.raise()?; // stand-in for `kill -USR1 <pid>`
//!     let mut stop = false;
//!     ev.run_once(&mut stop, Some(Duration::from_secs(5)))?;
//!     assert!(!stop);
//!     Ok(())
//! }
//! ```

// The files: `number.rs` the `Signal` type (numbers, names); `mask.rs` the
// calling thread's mask (`block`, `unblock`, the `SignalMask` guard) and the
// bitmask helpers; `audit.rs` the `/proc` check for threads that would steal
// a watched signal; `source.rs` the signalfd itself (`Signals`, `SignalInfo`).

mod audit;
mod mask;
mod number;
mod source;

pub use audit::{unblocked_threads, UnblockedThread, UnblockedThreads};
pub use mask::{block, is_blocked, unblock, unblock_in_child, SignalMask};
pub use number::Signal;
pub use source::{SignalInfo, Signals, DEFAULT_BATCH};

#[cfg(not(loom))]
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Signal>();
    assert_send_sync::<SignalInfo>();
    assert_send_sync::<Signals>();
    assert_send_sync::<UnblockedThreads>();
};
