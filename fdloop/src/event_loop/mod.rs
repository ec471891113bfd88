//! The event loop: one epoll set dispatching every source.
//!
//! # Structure
//!
//! Sources live in a slab of slots. Each slot has two generation counters:
//! the *id generation* (bumped when the slot is freed, so a stale
//! [`SourceId`] is refused) and the *registration generation* (bumped every
//! time the slot's descriptors are registered, and carried in each epoll
//! event's data word, so an event queued for an earlier registration is
//! dropped instead of reaching a new owner).
//!
//! A descriptor source's boxed dispatcher (source and callback) is held by
//! a raw pointer (`FdBox`) and called where it lies, with no `RefCell`
//! borrow held, so the callback may insert, remove, enable or disable
//! anything through a [`LoopHandle`], itself included. The loop records
//! which slot is running (`Shared::running`, one loop-wide word: callbacks
//! run one at a time); operations on that source are recorded loop-wide
//! (`Pending`) and applied when the callback returns, before its returned
//! [`Action`], so its dispatcher is never dropped or touched while in use.
//! Nothing in the slot is written on the way in or out. (Idle callbacks and
//! the cold paths — insert, remove, enable — take the whole entry out
//! instead and mark the slot `Busy`; both kinds of busy source defer
//! operations the same way.) A guard ends the running state if the
//! callback panics; the rest of that epoll batch is kept and dispatched by
//! the next `run_once`, so no event is lost.
//!
//! The loop itself is split in two: `Shared`, shared (`Rc`) with every
//! [`LoopHandle`], and `Driver`, the loop thread's own (event buffer, cursor,
//! waiter, counters), so an iteration borrows both without touching the
//! `Rc`. An iteration with a zero timeout and nothing deferred, scheduled
//! or left over from an interrupted batch takes a short path (poll, then
//! dispatch) that does what the general one would. Statistics stay on:
//! integer counters, and two `CLOCK_MONOTONIC_COARSE` reads (vDSO, no
//! system call) per non-empty batch, one when the blocking wait's own
//! reading can serve as the batch's start.

mod awake;
mod driver;
mod handle;
mod hold;
#[cfg(feature = "async")]
mod hooks;
mod order;
mod recycle;
mod registration;
mod shared;
mod slab;
mod source;
mod stats;
mod timers;
mod token;
mod waiter;
mod wake;

pub use handle::{InsertError, LoopHandle};
#[cfg(feature = "async")]
pub(crate) use hooks::{stateless, Reactor, TaskHook};
pub(crate) use source::single_readable_fd;
pub use source::{Action, AfterPanic, Interest, Mode, Readiness, Registrar, Source, SourceId};
pub use stats::Stats;
pub(crate) use timers::{duration_ns, instant_to_ns, SUB_CLOCK_SET};
pub use waiter::TimeoutPrecision;
pub use wake::Remote;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::notify::Notifier;
use crate::sys;
use awake::AwakeGuard;
use driver::{Driver, INITIAL_EVENTS};
use shared::Shared;
use slab::{Entry, Kind, Slab, SlotState};
use stats::Counters;
use timers::Timers;
use waiter::Waiter;
pub(crate) use wake::WakeState;

/// One thread's event loop: an epoll set, the sources in it, and the
/// callbacks that handle their events with a `&mut S` of your state.
///
/// * [`insert`](EventLoop::insert) a [`Source`] ([`Io`](crate::Io), [`Ping`](crate::Ping), or your
///   own) with a callback; [`remove`](EventLoop::remove),
///   [`enable`](EventLoop::enable), [`disable`](EventLoop::disable) it by
///   [`SourceId`] — from inside callbacks too, through a [`LoopHandle`].
/// * [`run`](EventLoop::run) until stopped,
///   [`run_once`](EventLoop::run_once) one iteration,
///   [`dispatch_pending`](EventLoop::dispatch_pending) without blocking.
/// * [`remote`](EventLoop::remote) wakes or stops it from any thread; wakes
///   cost a system call only when the loop may be asleep.
///
/// The loop sleeps in `epoll_wait`, except when it holds no source at all
/// (no descriptor, timer, signal, child, watch or async I/O: only tasks,
/// deferred calls and idle callbacks, or nothing): then only a wake can end
/// its wait, and it parks on a futex instead, as `std::thread::park` does —
/// a cross-thread wake is then one `FUTEX_WAKE`, cheaper for both threads
/// than an eventfd write that epoll relays. A wake between calls still
/// turns the loop's descriptor readable for an outer poller.
///
/// Timeouts are honoured to the nanosecond, never early (see
/// [`TimeoutPrecision`]); `EINTR` from `epoll_wait` is retried with the time
/// left. In a `fork` child, every operation fails with [`Error::Forked`]:
/// the epoll set is shared with the parent.
///
/// # Panics in callbacks
///
/// A panic in a callback propagates out of `run`, `run_once` or
/// `dispatch_pending`. The loop stays usable: nothing is left borrowed or
/// half-registered, operations the callback requested before it panicked
/// (removing, disabling, inserting sources, stopping) still apply, and the
/// events of the same `epoll_wait` batch that were not dispatched yet, and
/// timers already due, are dispatched by the next call. What becomes of the
/// panicking source and of the rest of *its own* batch:
///
/// | Source | The item whose callback panicked | The rest of its batch |
/// |---|---|---|
/// | [`Io`](crate::Io) | the readiness report is used up; interest, mode and re-arm changes made through [`IoCtl`](crate::IoCtl) still apply | a level-triggered descriptor still ready is reported again |
/// | [`Ping`](crate::Ping) | the ping is used up (pings before it were merged into it) | — |
/// | channel [`Receiver`](crate::channel::Receiver) | a message is dropped with the unwinding callback; after [`Closed`](crate::channel::Event::Closed) the source leaves the loop | the remaining messages stay queued, delivered by the next call |
/// | [`SendReady`](crate::channel::SendReady) | the report is used up; the next comes after the next `Full`, as after a normal return | — |
/// | [`Timer`](crate::Timer) | a one-shot leaves the loop (it fired); a periodic timer keeps its next deadline on its grid | other timers due at the same time fire on the next call |
/// | [`Signals`](crate::signal::Signals) | the signal is used up | signals still pending stay in the kernel, delivered by the next call |
/// | [`Child`](crate::process::Child) | the exit was delivered: the source leaves the loop | — |
/// | [`Watch`](crate::watch::Watch) | the event is used up | the events read with it are delivered by the next call |
/// | idle callback | stays, runs again the next time the loop is about to block | the other idle callbacks run then too |
/// | deferred call | ran (it is gone) | the calls queued after it run on the next call |
/// | call at a deadline ([`LoopHandle::call_at`]) | ran (it has left the loop) | other timers and calls due at the same time run on the next call |
/// | your own [`Source`] | [`Source::after_panic`] decides: stay (the default), redeliver on the next call, or remove | as `process` left it |
/// | task (feature `async`) | caught, never unwinds the loop: its `rt::JoinHandle` reports it | the other queued tasks are polled as usual; tasks that callbacks woke or spawned before a callback panicked are polled by the next call (the loop's descriptor is readable meanwhile) |
///
/// # Priorities and fairness
///
/// Within an iteration the ready sources run in priority order
/// ([`LoopHandle::set_priority`]: lower first, 0 by default, equal
/// priorities in epoll's order); idle callbacks run only when nothing was
/// ready. No source is run twice before the others had their turn: sources
/// that deliver many items per readiness hand over a batch per iteration
/// (a channel [`Receiver`](crate::channel::Receiver),
/// [`Signals`](crate::signal::Signals) and a [`Watch`](crate::watch::Watch)
/// each have a `set_batch_limit`; a periodic [`Timer`](crate::Timer) that
/// fell behind runs once, with the missed periods counted in
/// [`TimerEvent::expirations`](crate::TimerEvent::expirations)), and the
/// rest waits for the next iteration with no wake-up system call. A source
/// can be held back for a while ([`LoopHandle::disable_for`]) or limited to
/// a number of dispatches per interval ([`LoopHandle::set_rate_limit`]).
///
/// # Running out of descriptors or memory
///
/// What each call does when the process is out of descriptors (`EMFILE`),
/// the system is (`ENFILE`) or the kernel is out of memory (`ENOMEM`).
/// Nothing is ever left half-done: a call either happened or left the loop
/// as it was.
///
/// | Call | New descriptor? | On EMFILE / ENFILE / ENOMEM |
/// |---|---|---|
/// | [`EventLoop::new`] | the epoll set and the wake-up eventfd (or pipe) | fails with [`Error::Io`]; nothing is left open |
/// | [`insert`](LoopHandle::insert), [`insert_with_priority`](LoopHandle::insert_with_priority) | none (the source made its own before) | `epoll_ctl` may fail with `ENOMEM`/`ENOSPC`: the [`InsertError`] hands the source back, none of its descriptors stays in the set |
/// | inserting a [`Timer`](crate::Timer) | the clock's timerfd, first time only | never fails for want of it: without the timerfd the clock's timers run on the epoll timeout until a later insert gets one |
/// | [`enable`](LoopHandle::enable) | none | `ENOMEM`/`ENOSPC` from `epoll_ctl`: the source stays disabled, none of its descriptors in the set |
/// | [`disable`](LoopHandle::disable), [`remove`](LoopHandle::remove) | none | cannot fail for want of resources |
/// | [`disable_for`](LoopHandle::disable_for), [`disable_until`](LoopHandle::disable_until), [`set_rate_limit`](LoopHandle::set_rate_limit) | none (the loop's timer store, or its epoll timeout) | cannot fail for want of descriptors |
/// | [`defer`](LoopHandle::defer), [`insert_idle`](LoopHandle::insert_idle), [`set_priority`](LoopHandle::set_priority), [`reschedule_timer_at`](LoopHandle::reschedule_timer_at) | none | memory only (Rust aborts when an allocation fails) |
/// | [`run`](EventLoop::run), [`run_once`](EventLoop::run_once), [`dispatch_pending`](EventLoop::dispatch_pending) | a timerfd for sub-millisecond timeouts where `epoll_pwait2` is missing (Linux < 5.11), first time only | never fails for want of it: that wait goes in whole milliseconds, rounded up (never early), and a later one tries again |
/// | [`Remote::wake`], [`Remote::stop`] | none (the loop's eventfd) | cannot fail for want of resources |
///
/// The sources' own constructors ([`channel::unbounded`](crate::channel::unbounded),
/// [`Ping::new`](crate::Ping::new), [`Signals::new`](crate::signal::Signals::new),
/// [`Watch::new`](crate::watch::Watch::new), [`Child`](crate::process::Child))
/// create their descriptors and fail with the `io::Error` intact, leaking
/// nothing. A server that must keep serving under `EMFILE` pauses its
/// listener with [`disable_for`](LoopHandle::disable_for) or keeps a spare
/// descriptor to accept and close with (the tour and `resp_server` do).
///
/// The loop's own descriptor (`AsFd`) is the epoll fd: it polls readable
/// when events are ready, so a loop can be nested in another loop or
/// runtime (see `fdloop-bench/examples/nested_in_tokio.rs`, which drives a loop from tokio).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::{Action, EventLoop, Ping};
///
/// struct State { pings: u32 }
///
/// let mut ev = EventLoop::new()?;
/// let (handle, ping) = Ping::new()?;
/// ev.insert(ping, |(), _, st: &mut State| {
///     st.pings += 1;
///     Action::Continue
/// })?;
/// let remote = ev.remote();
/// std::thread::spawn(move || {
///     handle.ping().unwrap();
///     std::thread::sleep(Duration::from_millis(20));
///     remote.stop().unwrap();
/// });
/// let mut st = State { pings: 0 };
/// ev.run(&mut st)?;
/// assert_eq!(st.pings, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventLoop<S: 'static> {
    handle: LoopHandle<S>,
    driver: Driver,
}

impl<S: 'static> EventLoop<S> {
    /// Creates a loop: an epoll set (`EPOLL_CLOEXEC`) and the notifier that
    /// [`Remote`]s write to.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `EMFILE`/`ENFILE` when out of descriptors, or
    /// `ENOMEM`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn new() -> Result<EventLoop<S>> {
        let fork_gen = sys::process::fork_generation();
        let epoll = sys::epoll::create().map_err(|e| Error::io("epoll_create1", e))?;
        let notifier = wake::LoopFd::new(
            Notifier::new().map_err(|e| Error::io("creating the loop's wake-up notifier", e))?,
        );
        sys::epoll::add(
            epoll.as_fd(),
            notifier.as_fd(),
            token::REMOTE,
            notifier.epoll_flags(),
        )
        .map_err(|e| Error::io("adding the wake-up notifier to epoll", e))?;
        let inner = Shared {
            epoll,
            slab: RefCell::new(Slab::new()),
            idles: RefCell::new(Vec::new()),
            defers: RefCell::new(Vec::new()),
            stop: Cell::new(false),
            wake: Arc::new(WakeState::new(notifier)),
            timers: RefCell::new(Timers::new()),
            spare: RefCell::new(recycle::Spare::default()),
            awake_marked: Cell::new(false),
            running: shared::Running::new(),
            fork_gen,
            #[cfg(feature = "async")]
            tasks: RefCell::new(None),
            #[cfg(feature = "async")]
            has_tasks: Cell::new(false),
            #[cfg(feature = "async")]
            looked: Cell::new(false),
        };
        Ok(EventLoop {
            handle: LoopHandle {
                inner: Rc::new(inner),
            },
            driver: Driver {
                events: Vec::with_capacity(INITIAL_EVENTS),
                cursor: 0,
                waiter: Waiter::new(),
                stats: Counters::default(),
                targets: Vec::new(),
                target_cursor: 0,
                timer_slots: Vec::new(),
                last_end: None,
                untimed: 0,
                timing: false,
                order_keys: Vec::new(),
                order_last: Vec::new(),
                order_perm: Vec::new(),
                order_gen: 0,
                order_count: Vec::new(),
                order_tmp: Vec::new(),
                wakes: Vec::new(),
                again: Vec::new(),
            },
        })
    }

    /// A [`LoopHandle`] for callbacks (clone it into closures).
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let h = ev.handle();
    /// h.defer(|_| {})?;
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn handle(&self) -> LoopHandle<S> {
        self.handle.clone()
    }

    /// A [`Remote`] to wake or stop this loop from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let r = ev.remote();
    /// r.wake()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remote(&self) -> Remote {
        self.handle.remote()
    }

    /// See [`LoopHandle::insert`].
    ///
    /// # Errors
    ///
    /// As [`LoopHandle::insert`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Action, EventLoop, Interest, Io, Mode};
    /// let mut ev: EventLoop<()> = EventLoop::new()?;
    /// let (r, _w) = std::io::pipe()?;
    /// let id = ev.insert(Io::new(r, Interest::READABLE, Mode::Level), |_, _, _| Action::Continue)?;
    /// ev.remove(id)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert<Src, F>(&mut self, source: Src, callback: F) -> Result<SourceId, InsertError<Src>>
    where
        Src: Source + 'static,
        F: FnMut(Src::Event, &mut Src::Metadata, &mut S) -> Action + 'static,
    {
        self.handle.insert(source, callback)
    }

    /// See [`LoopHandle::remove`].
    ///
    /// # Errors
    ///
    /// As [`LoopHandle::remove`].
    ///
    /// # Examples
    ///
    /// See [`LoopHandle::remove`].
    pub fn remove(&mut self, id: SourceId) -> Result<()> {
        self.handle.remove(id)
    }

    /// See [`LoopHandle::enable`].
    ///
    /// # Errors
    ///
    /// As [`LoopHandle::enable`].
    ///
    /// # Examples
    ///
    /// See [`LoopHandle::enable`].
    pub fn enable(&mut self, id: SourceId) -> Result<()> {
        self.handle.enable(id)
    }

    /// See [`LoopHandle::disable`].
    ///
    /// # Errors
    ///
    /// As [`LoopHandle::disable`].
    ///
    /// # Examples
    ///
    /// See [`LoopHandle::enable`].
    pub fn disable(&mut self, id: SourceId) -> Result<()> {
        self.handle.disable(id)
    }

    /// How many sources (of every kind, idle and deferred calls included)
    /// the loop holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// ev.handle().defer(|_| {})?;
    /// assert_eq!(ev.len(), 1);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.handle.inner.slab.borrow().live
    }

    /// Whether the loop holds no sources.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// assert!(ev.is_empty());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The loop's counters. The counts are always kept (a few adds per
    /// iteration); the two durations, [`Stats::blocked`] and
    /// [`Stats::in_callbacks`], only while
    /// [`set_time_stats(true)`](EventLoop::set_time_stats) is in effect,
    /// and they read zero otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// ev.dispatch_pending(&mut ())?;
    /// println!("{:?}", ev.stats());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.driver.stats.to_stats()
    }

    /// Turns the measuring of [`Stats::blocked`] and [`Stats::in_callbacks`]
    /// on or off; off by default. On, each iteration that may block reads
    /// the coarse monotonic clock (vDSO, no system call) up to three times,
    /// and one zero-timeout iteration in eight twice: about 4 % of a busy
    /// loop that dispatches one event per iteration on the machine fdloop
    /// is measured on (BENCHMARKS.md), hence opt-in, as libuv's idle-time
    /// metric is. Measurement starts and stops with the next iteration;
    /// the durations measured so far are kept. Counts
    /// ([`Stats::iterations`], [`Stats::events`], [`Stats::wakeups`]) are
    /// kept either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// assert!(!ev.time_stats());
    /// ev.set_time_stats(true);
    /// ev.run_once(&mut (), Some(Duration::from_millis(30)))?;
    /// // Coarse clock: allow a kernel tick (at most 10 ms) of error.
    /// assert!(ev.stats().blocked >= Duration::from_millis(20));
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn set_time_stats(&mut self, on: bool) {
        self.driver.timing = on;
        self.driver.last_end = None;
    }

    /// Whether [`Stats::blocked`] and [`Stats::in_callbacks`] are being
    /// measured ([`set_time_stats`](EventLoop::set_time_stats)).
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// assert!(!ev.time_stats());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn time_stats(&self) -> bool {
        self.driver.timing
    }

    /// How this loop honours timeouts in `epoll_wait`: decided on the first
    /// such wait with a non-zero timeout ([`TimeoutPrecision::Undecided`]
    /// until then). A loop with no source parks on a futex instead, whose
    /// timeouts are always to the nanosecond, and decides nothing (see
    /// [`Remote::writes`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::{Action, Ping, TimeoutPrecision};
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let (_keep, ping) = Ping::new()?;
    /// ev.handle().insert(ping, |(), _, _| Action::Continue).map_err(|e| e.error)?;
    /// ev.run_once(&mut (), Some(Duration::from_micros(50)))?;
    /// assert_ne!(ev.timeout_precision(), TimeoutPrecision::Undecided);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout_precision(&self) -> TimeoutPrecision {
        self.driver.waiter.precision()
    }

    /// Runs iterations until stopped by [`LoopHandle::stop`] or
    /// [`Remote::stop`].
    ///
    /// # Errors
    ///
    /// The first error of an iteration (see [`run_once`](EventLoop::run_once));
    /// the loop stays usable.
    ///
    /// # Examples
    ///
    /// See [`EventLoop`].
    pub fn run(&mut self, state: &mut S) -> Result<()> {
        let inner = self.handle.inner.clone();
        inner.check_fork()?;
        // Awake for the whole run: wakes between iterations cost no syscall
        // (the next iteration sees them before it would block).
        let _call = TaskCall::new(&inner);
        let _awake = AwakeGuard::new(&inner.wake, &inner.awake_marked, true);
        self.driver.last_end = None;
        loop {
            if self.take_stop() {
                return Ok(());
            }
            self.driver.stats.iterations += 1;
            self.driver.iterate(&inner, state, None, true)?;
        }
    }

    fn take_stop(&self) -> bool {
        let inner = &self.handle.inner;
        // Both flags are cleared, so a later `run` starts afresh.
        let local = inner.stop.replace(false);
        let remote = inner.wake.take_stop();
        local || remote
    }

    /// Dispatches what is ready without blocking. Returns the number of
    /// callbacks run for events.
    ///
    /// # Errors
    ///
    /// As [`run_once`](EventLoop::run_once).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// assert_eq!(ev.dispatch_pending(&mut ())?, 0);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    #[inline]
    pub fn dispatch_pending(&mut self, state: &mut S) -> Result<usize> {
        self.run_once(state, Some(Duration::ZERO))
    }

    /// One iteration: runs deferred calls and (feature `async`) polls the
    /// queued tasks; if neither ran, runs the idle callbacks and waits up
    /// to `timeout` (`None`: no limit) for events — otherwise only looks,
    /// without blocking; then dispatches them. Returns the number of
    /// callbacks run for events (readiness and deferred calls) plus the
    /// tasks polled; idle callbacks do not count.
    ///
    /// Returns early, possibly with 0, when woken or stopped; never returns 0
    /// before `timeout` has passed otherwise. `EINTR` is retried with the
    /// time left.
    ///
    /// * **Wakes** ([`Remote::wake`], from any thread, the loop's own
    ///   included): a wake made before this call's wait — between calls, or
    ///   by a deferred or idle callback of this call — makes the wait return
    ///   at once and is used up by it. A wake made after the wait, while
    ///   this call dispatches, makes the *next* call return at once (and
    ///   leaves the loop's descriptor readable for an outer poller
    ///   meanwhile). The same holds for [`dispatch_pending`](EventLoop::dispatch_pending).
    /// * **Stops** ([`LoopHandle::stop`], [`Remote::stop`]): a stop requested
    ///   before or during this call makes it return without blocking, and
    ///   this call uses it up — the next call waits as usual. Inside
    ///   [`run`](EventLoop::run), the stop ends `run` instead.
    /// * **Tasks** (feature `async`): this call polls the tasks queued when
    ///   it begins, and after its batch those that the batch woke or
    ///   spawned — by a descriptor turning ready, a timer, a callback, or
    ///   another thread while this call waited. A wake made on the loop's
    ///   thread during the call costs no system call. Tasks still queued
    ///   when this call returns (woken by the tasks it polled, or left by an
    ///   error or a panic) leave the loop's descriptor readable, at the cost
    ///   of one notifier write, and the next call runs them without
    ///   blocking; so do tasks spawned or woken on the loop's thread between
    ///   calls.
    ///
    /// # Errors
    ///
    /// * [`Error::Forked`] in a `fork` child;
    /// * [`Error::Io`] if `epoll_wait` fails (not `EINTR`), or the futex
    ///   wait of a loop with no source (see [`EventLoop`]) fails with
    ///   anything but `EINTR`, `EAGAIN` or `ETIMEDOUT` (only a bad address
    ///   could);
    /// * [`Error::Source`] if a source's processing fails: the source stays,
    ///   and the rest of the batch is dispatched by the next call.
    ///
    /// # Panics
    ///
    /// Only if a callback panics; the panic propagates, and the loop stays
    /// usable (the rest of the batch is dispatched by the next call).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let start = Instant::now();
    /// assert_eq!(ev.run_once(&mut (), Some(Duration::from_micros(500)))?, 0);
    /// assert!(start.elapsed() >= Duration::from_micros(500));
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn run_once(&mut self, state: &mut S, timeout: Option<Duration>) -> Result<usize> {
        // `self.handle` keeps `Shared` alive: no callback can drop the loop.
        let inner = &*self.handle.inner;
        inner.check_fork()?;
        self.driver.stats.iterations += 1;
        self.driver.last_end = None;
        let ran = {
            // Dropped in this order: the loop marked asleep, then tasks
            // still queued make their wake.
            let _call = TaskCall::new(inner);
            let _awake = AwakeGuard::new(&inner.wake, &inner.awake_marked, false);
            self.driver.iterate(inner, state, timeout, false)
        };
        // A stop request made before or during this call ended it without
        // blocking (or woke it): this call used it up.
        if self.driver.stop_pending(inner) {
            self.take_stop();
        }
        ran
    }
}

/// The loop is inside a call (`run`, `run_once`, `dispatch_pending`) while
/// this lives: a task queued on the loop's thread meanwhile makes no wake
/// (`TaskHook::set_in_call`), because the call polls queued tasks after its
/// batch and before any wait that could block. When the call ends —
/// returning, failing or unwinding — tasks still queued (woken by the tasks
/// it polled, or left by an error or a panic) make one wake, so the loop's
/// descriptor is readable for an outer poller and the next call does not
/// block. Made before the call's `AwakeGuard`, so dropped after it: the
/// wake then sees the loop marked asleep and writes the notifier.
struct TaskCall<'a, S> {
    inner: &'a Shared<S>,
}

impl<'a, S> TaskCall<'a, S> {
    #[inline]
    fn new(inner: &'a Shared<S>) -> Self {
        inner.set_tasks_in_call(true);
        TaskCall { inner }
    }
}

impl<S> Drop for TaskCall<'_, S> {
    #[inline]
    fn drop(&mut self) {
        self.inner.set_tasks_in_call(false);
        if self.inner.tasks_pending() {
            // Nothing to report to: a broken notifier shows in the next
            // epoll_wait.
            let _ = self.inner.wake.wake();
        }
    }
}

/// Dropping the loop removes every source: each leaves the epoll set, then
/// is dropped with its callback. This also breaks the reference cycle a
/// callback makes when it holds a [`LoopHandle`] (the loop owns the
/// callback, the callback owns the handle, the handle shares the loop's
/// state), so the loop's descriptors and memory are freed. Handles kept
/// outside the loop stay valid but name no sources: inserting through one
/// still works on the (now unwatched) epoll set, and `remove` reports
/// [`Error::NoSuchSource`].
impl<S: 'static> Drop for EventLoop<S> {
    fn drop(&mut self) {
        let inner = self.handle.inner.clone();
        // Tasks first, while every source is in place: their futures may
        // remove sources as they drop.
        #[cfg(feature = "async")]
        {
            inner.has_tasks.set(false);
            let hook = inner.tasks.borrow_mut().take();
            if let Some(h) = hook {
                h.shutdown();
            }
        }
        // Take everything out first, then unregister and drop outside the
        // borrow: a source's destructor may use a LoopHandle.
        let taken: Vec<(u32, u32, Entry<S>)> = {
            let mut slab = inner.slab.borrow_mut();
            let mut out = Vec::with_capacity(slab.live);
            for (i, s) in slab.slots.iter_mut().enumerate() {
                if let SlotState::Ready(_) = s.state {
                    if let SlotState::Ready(e) = std::mem::replace(&mut s.state, SlotState::Vacant)
                    {
                        s.id_gen = s.id_gen.wrapping_add(1);
                        out.push((i as u32, s.reg_gen, e));
                    }
                }
            }
            slab.live = 0;
            slab.prio.clear();
            slab.prioritized = 0;
            slab.ranked = false;
            slab.free.clear();
            let n = slab.slots.len() as u32;
            slab.free.extend((0..n).rev());
            out
        };
        inner.idles.borrow_mut().clear();
        inner.defers.borrow_mut().clear();
        for (slot, reg_gen, mut entry) in taken {
            let registered = entry.registered();
            if let (Kind::Fd(d), true) = (&mut entry.kind, registered) {
                // Best effort: the descriptor closes right after anyway.
                let _ = d.get().unregister(&mut inner.registrar(slot, reg_gen));
            }
            drop(entry);
        }
    }
}

impl<S: 'static> AsFd for EventLoop<S> {
    /// The epoll descriptor: readable when events are ready. Poll it from an
    /// outer loop, then call [`dispatch_pending`](EventLoop::dispatch_pending).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.handle.inner.epoll.as_fd()
    }
}

impl<S: 'static> AsRawFd for EventLoop<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl<S: 'static> fmt::Debug for EventLoop<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("epoll", &self.as_raw_fd())
            .field("sources", &self.len())
            .field("stats", &self.driver.stats.to_stats())
            .finish()
    }
}
