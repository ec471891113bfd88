//! # fdloop — wait on everything at once, wake exactly when there is work
//!
//! Linux turned nearly every kind of event into a file descriptor: sockets
//! and pipes, but also counters (`eventfd`), timers (`timerfd`), signals
//! (`signalfd`), child processes (`pidfd`) and file changes (`inotify`). One
//! `epoll` set can wait on all of them, so one thread can sleep until *any*
//! of them has something for it.
//!
//! Messages between threads are the odd one out. A mutex-and-condvar queue
//! (GLib's `g_async_queue`, `std::sync::mpsc`) wakes its reader only for a
//! message; a thread blocked there cannot also serve a socket, short of
//! polling with timeouts. The classic fix is the *self-pipe trick*: push the
//! message onto a queue, then write a byte into a pipe whose read end sits in
//! the poll set. `eventfd(2)` does the same job with one descriptor, an
//! 8-byte counter instead of a buffer, and a cheaper syscall — but it needs
//! Linux ≥ 2.6.22, and sandboxes (seccomp) sometimes refuse it, so a library
//! must fall back to the pipe at run time.
//!
//! fdloop builds that family into one toolkit; each piece works alone (it
//! has a descriptor: [`AsFd`](std::os::fd::AsFd)) and inside one
//! [`EventLoop`]:
//!
//! * [`EventFd`] — the eventfd counter as a safe type (counter and semaphore
//!   modes, blocking or not, always close-on-exec).
//! * [`Notifier`] — a cross-thread wake-up that any poll set can hold:
//!   eventfd with a run-time pipe fallback ([`Backend`]), and *coalesced*, so
//!   a burst of `notify` calls before the waiter drains costs one syscall.
//! * [`EventLoop`] — one epoll set dispatching every [`Source`] to callbacks
//!   that get `&mut` your state: [`Io`] (any descriptor), [`Ping`], idle and
//!   deferred calls, with generational tokens (a stale event never reaches a
//!   new owner), nanosecond timeouts, and a [`Remote`] that wakes it from any
//!   thread with a syscall only when it sleeps.
//! * [`channel`] — channels whose receiver is a pollable descriptor,
//!   readable exactly when a message waits; a send costs a syscall only when
//!   the receiver sleeps.
//! * [`Timer`] — one-shot and periodic timers on one timerfd per clock
//!   (monotonic, boottime, wall clock with clock-set events).
//! * [`signal`] — signals through signalfd, with the thread-mask checks
//!   that make it safe; [`process`] — child exits through pidfd (SIGCHLD
//!   fallback that never reaps others' children); [`watch`] — inotify.
//! * [`systemd`] — the service manager's notify protocol (`READY=1`,
//!   `STATUS=`, ...) without libsystemd, and a watchdog that pings from the
//!   loop itself, so a stuck loop stops petting it.
//! * `rt` (feature `async`, on by default) — futures on the loop: tasks
//!   (`!Send` allowed) with join handles, `block_on`, `rt::Async` I/O
//!   with `futures-io`, and every source above as a future or a stream.
//!
//! Everything is Linux-only and talks to the kernel through one audited
//! syscall layer (`src/sys/`, built on `rustix`).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use fdloop::Notifier;
//!
//! let work = Arc::new(AtomicU64::new(0));
//! let wake = Arc::new(Notifier::new()?);
//! let (w, n) = (work.clone(), wake.clone());
//! let producer = std::thread::spawn(move || {
//!     for _ in 0..1000 {
//!         w.fetch_add(1, Ordering::Relaxed);
//!         n.notify().unwrap(); // coalesced: most calls make no syscall
//!     }
//! });
//! let mut seen = 0;
//! while seen < 1000 {
//!     wake.wait(None)?; // sleeps in ppoll on the notifier's descriptor
//!     seen = work.load(Ordering::Relaxed);
//! }
//! producer.join().unwrap();
//! assert!(wake.writes() <= 1000);
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "fdloop is Linux-only: it is built on epoll, eventfd, timerfd, signalfd, pidfd and inotify"
);

pub mod channel;
mod error;
mod event_loop;
mod fallback;
mod io;
mod notify;
mod ping;
pub mod process;
#[cfg(feature = "async")]
pub mod rt;
pub mod signal;
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod sync;
mod sys;
pub mod systemd;
mod timer;
mod trace;
pub mod watch;

pub use error::{Error, Result};
pub use event_loop::{
    Action, AfterPanic, EventLoop, InsertError, Interest, LoopHandle, Mode, Readiness, Registrar,
    Remote, Source, SourceId, Stats, TimeoutPrecision,
};
pub use fallback::{FORCE_NO_TIMERFD_ENV, FORCE_PIPE_ENV, FORCE_TIMEOUT_ENV};
pub use io::{Io, IoCtl};
pub use notify::{Backend, EventFd, EventFdOptions, Notifier, MAX_COUNTER};
pub use ping::{Ping, PingHandle};
pub use timer::{Clock, Timer, TimerCtl, TimerEvent};

#[cfg(not(loom))]
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<EventFd>();
    assert_send_sync::<Notifier>();
    assert_send_sync::<Remote>();
    assert_send_sync::<PingHandle>();
    const fn assert_send<T: Send>() {}
    assert_send::<channel::Sender<String>>();
    assert_send::<channel::Receiver<String>>();
    assert_send_sync::<channel::Sender<String>>();
    assert_send_sync::<process::Child>();
    assert_send_sync::<watch::Watch>();
    assert_send_sync::<systemd::SystemdNotifier>();
    #[cfg(feature = "async")]
    assert_send::<rt::JoinHandle<u32>>();
    #[cfg(feature = "async")]
    assert_send_sync::<std::task::Waker>();
};

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
