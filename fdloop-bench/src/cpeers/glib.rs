//! GLib 2.74 (feature `c-peers`): its main loop (`GMainContext`) woken from
//! other threads, and its mutex+condvar queue (`GAsyncQueue`).
//!
//! The declarations come from `glib-sys`; every GLib object is held by a
//! small RAII wrapper of the private `ffi` module that unrefs it on drop.
//!
//! # The contenders
//!
//! * [`round_trips_context`]: two threads, each owning its own
//!   `GMainContext` and blocked in `g_main_context_iteration(ctx, TRUE)`.
//!   A message goes the usual GLib way: `g_async_queue_push` onto the other
//!   side's `GAsyncQueue`, then `g_main_context_wakeup` of the other side's
//!   context (an `eventfd` write: GLib 2.74 signals unconditionally, every
//!   call is a syscall). The woken side takes what is queued with
//!   `g_async_queue_try_pop`; B echoes, A counts.
//! * [`round_trips_queue`]: the same ping-pong over two `GAsyncQueue`s
//!   with a blocking `g_async_queue_pop` (GLib's `GMutex` + `GCond`, i.e.
//!   futexes), no main loop.
//! * [`throughput_context`]: producers push `v + 1` (as a pointer, so that
//!   no message is `NULL`) and call `g_main_context_wakeup` after every
//!   push; the consumer iterates its context and drains the queue with
//!   `try_pop` after each iteration.
//! * [`throughput_queue`]: the same producers without the wake-up; the
//!   consumer blocks in `g_async_queue_pop`.
//! * [`Dispatch`]: one `GMainContext` holding one `g_unix_fd_source_new`
//!   source per always-ready eventfd; a turn is
//!   `g_main_context_iteration(ctx, FALSE)`. GLib has no epoll backend: every
//!   iteration rebuilds its `GPollFD` array and calls `poll()` on all the
//!   descriptors (plus its own wake-up eventfd), then walks them all in the
//!   check phase, so a turn is O(sources), ready or not. Worse, GLib
//!   *blocks* a source while dispatching it (unless it can recurse): its
//!   descriptor leaves the context's poll list and is re-inserted after
//!   the callback, each step writing the context's wake-up eventfd. So every
//!   callback costs two `write` syscalls (the next iteration's `poll` then
//!   reports the wake-up fd, which costs a `read`), and the re-insertion
//!   into the fd-sorted list makes a turn with N ready sources O(N²)
//!   (`strace -c`: 2 writes per callback; 1 poll + 2 writes + 1 read per
//!   turn at N = 1).
//! * [`Arm`]: K pending one-shot timer sources; one arm+cancel is
//!   `g_source_new` (a minimal `GSourceFuncs`) + `g_source_set_ready_time`
//!   (absolute, µs) + `g_source_set_callback` + `g_source_attach`, then
//!   `g_source_destroy` + `g_source_unref`. GLib keeps no timer order: arming
//!   and cancelling are O(1) (a list append and a hash-table insert), but
//!   every iteration's prepare phase scans all K sources.
//! * [`lateness`]: the same ready-time sources on an otherwise idle
//!   context driven by `g_main_context_iteration(ctx, TRUE)`.
//!
//! # Timer precision
//!
//! A ready time is absolute, in µs of `CLOCK_MONOTONIC` (what
//! `g_get_monotonic_time` reads, and what [`Instant`] is on Linux). A
//! deadline is converted by reading `Instant::now()` and then
//! `clock_gettime(CLOCK_MONOTONIC)` once (in ns, which is exact where
//! `g_get_monotonic_time` has already truncated to µs) and rounding the
//! deadline *up* to the next µs, so a timer never fires before its
//! [`Instant`].
//!
//! But GLib 2.74 waits in `poll()`, whose timeout is in whole
//! milliseconds: `g_main_context_prepare` computes
//! `(ready_time - now + 999) / 1000`, i.e. it rounds *up* ("rounding down
//! will lead to spinning"). A timer therefore fires up to 1 ms (plus the
//! kernel's timer slack, 50 µs by default) after its deadline: for
//! deadlines at random points ([`Pattern::Spread`]) about 0.5 ms late on
//! average; for the [`Pattern::Sequential`] timers armed 1 ms ahead, the
//! rounding only adds what elapsed between arming and the prepare phase.
//!
//! # Example
//!
//! ```no_run
//! use fdloop_bench::cpeers::glib;
//! use fdloop_bench::Pin;
//!
//! let d = glib::round_trips_context(Pin::Off, 2_000, 200)?;
//! println!("{:.0} ns per round trip", d.as_nanos() as f64 / 2_000.0);
//! let d = glib::throughput_queue(Pin::Cross, 1, 1_000_000)?;
//! println!("{:.1} M msg/s", 1.0 / d.as_secs_f64());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::RefCell;
use std::ffi::{c_int, c_uint};
use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpeers::{record, Fire, WorkSlots};
use crate::dispatch::{Contender, Work};
use crate::threads::two_sides;
use crate::timers::{run_pattern, ArmCancel, Late, MonoClock as Clock, Pattern};
use crate::Pin;

mod ffi;

use ffi::{fd_callback, gboolean, gpointer, Context, Owner, Queue, Source};

// ---------------------------------------------------------------- messages

/// The value that ends a ping-pong (messages are `i + 1` below it).
const STOP: NonZeroUsize = NonZeroUsize::MAX;

/// One direction of a ping-pong or of a throughput run: a `GAsyncQueue`,
/// and in the main-loop contenders the receiver's `GMainContext`.
struct Mailbox {
    queue: Queue,
    ctx: Option<Context>,
}

impl Mailbox {
    fn new(with_context: bool) -> io::Result<Mailbox> {
        Ok(Mailbox {
            queue: Queue::new()?,
            ctx: if with_context {
                Some(Context::new()?)
            } else {
                None
            },
        })
    }

    /// Push, then wake the receiver's context (if it has one). The push
    /// happens before the eventfd write, so a receiver that consumes that
    /// write (in its check phase) drains after it and sees the value.
    fn send(&self, v: NonZeroUsize) {
        self.queue.push(v);
        if let Some(ctx) = &self.ctx {
            ctx.wakeup();
        }
    }

    /// The receiving thread's ownership of the context, if there is one.
    fn own(&self) -> io::Result<Option<Owner>> {
        self.ctx.as_ref().map(Context::acquire).transpose()
    }

    /// Blocks until a value arrives. With a context: `try_pop` until the
    /// queue is empty, and only then block in an iteration.
    ///
    /// No wake-up is lost: the sender writes the context's eventfd *after*
    /// its push, and GLib resets that eventfd only in the check phase after
    /// `poll()` reported it readable, i.e. before this loop's next
    /// `try_pop`. So either the `try_pop` sees the value, or the write is
    /// still pending and the next `poll()` returns at once (the eventfd
    /// stays readable however early it was written, even before the
    /// iteration started).
    fn recv(&self) -> usize {
        match &self.ctx {
            None => self.queue.pop(),
            Some(ctx) => loop {
                if let Some(v) = self.queue.try_pop() {
                    return v.get();
                }
                ctx.iterate(true);
            },
        }
    }
}

/// Sends [`STOP`] when dropped: tells the other side of a ping-pong that
/// this one has finished (or given up), so that neither blocks forever.
struct StopOnDrop(Arc<Mailbox>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send(STOP);
    }
}

/// Message `i` of a run: `i + 1`, so that no message is NULL, below
/// [`STOP`]; `None` if it does not fit.
fn msg(i: u64) -> Option<NonZeroUsize> {
    usize::try_from(i)
        .ok()
        .and_then(|i| i.checked_add(1))
        .filter(|&m| m != STOP.get())
        .and_then(NonZeroUsize::new)
}

fn too_many(n: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{n} messages do not fit in a pointer-sized GAsyncQueue value"),
    )
}

// ---------------------------------------------------------------- round trips

/// Round trips between two `GMainContext`s, each iterated (blocking) by its
/// own thread; a message is a `g_async_queue_push` onto the other side's
/// queue followed by `g_main_context_wakeup` of the other side's context.
/// Returns the time of the last `rts` of `warmup + rts` round trips,
/// measured on side A (pinned as `pin` says, like the other round-trip
/// contenders).
///
/// # Errors
///
/// A GLib constructor returning NULL, acquiring a context failing,
/// spawning or pinning a thread failing, a side panicking, or
/// `rts + warmup` not fitting in a pointer (`InvalidInput`).
pub fn round_trips_context(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    ping_pong(pin, rts, warmup, true)
}

/// Round trips between two threads over two `GAsyncQueue`s, each thread
/// blocked in `g_async_queue_pop` (GLib's mutex + condition variable, no
/// main loop). Returns the time of the last `rts` of `warmup + rts` round
/// trips, measured on side A.
///
/// # Errors
///
/// As [`round_trips_context`].
pub fn round_trips_queue(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    ping_pong(pin, rts, warmup, false)
}

/// Side A sends `1..=total`, waiting for each echo; side B echoes until
/// [`STOP`]. Each side sends `STOP` to the other when it leaves, so an
/// early error on either side ends the other one too.
fn ping_pong(pin: Pin, rts: u64, warmup: u64, with_context: bool) -> io::Result<Duration> {
    let total = rts.checked_add(warmup).ok_or_else(|| too_many(u64::MAX))?;
    if total > 0 && msg(total - 1).is_none() {
        return Err(too_many(total));
    }
    let to_a = Arc::new(Mailbox::new(with_context)?);
    let to_b = Arc::new(Mailbox::new(with_context)?);
    let (a_in, a_out) = (to_a.clone(), to_b.clone());
    let side_b = move || -> io::Result<()> {
        let _bye = StopOnDrop(to_a.clone());
        let _own = to_b.own()?;
        loop {
            match NonZeroUsize::new(to_b.recv()) {
                Some(v) if v != STOP => to_a.send(v),
                _ => return Ok(()),
            }
        }
    };
    let side_a = move || -> io::Result<Duration> {
        let _bye = StopOnDrop(a_out.clone());
        let _own = a_in.own()?;
        let mut start = Instant::now();
        for i in 0..total {
            if i == warmup {
                start = Instant::now();
            }
            let m = msg(i).ok_or_else(|| too_many(total))?;
            a_out.send(m);
            let echo = a_in.recv();
            if echo != m.get() {
                return Err(io::Error::other(format!(
                    "GLib ping-pong: sent {m}, got back {echo} (echo side gone?)"
                )));
            }
        }
        Ok(start.elapsed())
    };
    two_sides(pin, side_a, side_b)
}

// ---------------------------------------------------------------- throughput

/// `producers` threads send `0..msgs` (each its share, as `v + 1` pointers)
/// through one `GAsyncQueue`, calling `g_main_context_wakeup` after every
/// push; the calling thread owns the `GMainContext`, iterates it (blocking)
/// and after each iteration drains the queue with `g_async_queue_try_pop`.
/// Threads are placed as `pin` says ([`crate::threads::throughput`]). The
/// sum is checked. Returns the time from before the producers are spawned
/// until the last message is received.
///
/// # Errors
///
/// A GLib constructor returning NULL, acquiring the context or spawning a
/// thread failing, the placement unavailable, a wrong sum, or `msgs` not
/// fitting in a pointer (`InvalidInput`).
pub fn throughput_context(pin: Pin, producers: usize, msgs: u64) -> io::Result<Duration> {
    throughput(pin, producers, msgs, true)
}

/// As [`throughput_context`] without the main loop: the producers only
/// push, the consumer blocks in `g_async_queue_pop`.
///
/// # Errors
///
/// As [`throughput_context`].
pub fn throughput_queue(pin: Pin, producers: usize, msgs: u64) -> io::Result<Duration> {
    throughput(pin, producers, msgs, false)
}

fn throughput(pin: Pin, producers: usize, msgs: u64, with_context: bool) -> io::Result<Duration> {
    let name = if with_context {
        "GLib GMainContext + GAsyncQueue"
    } else {
        "GLib GAsyncQueue pop"
    };
    // Every value sent must fit (checked up front: a producer that failed
    // half-way would leave the consumer blocked forever).
    if msgs > 0 && msg(msgs - 1).is_none() {
        return Err(too_many(msgs));
    }
    let mb = Arc::new(Mailbox::new(with_context)?);
    let _own = mb.own()?;
    let send = |mb: &Arc<Mailbox>, v| msg(v).map(|m| mb.send(m)).is_some();
    match &mb.ctx {
        Some(ctx) => {
            crate::threads::throughput(name, pin, producers, msgs, mb.clone(), send, |acc| {
                ctx.iterate(true);
                while let Some(v) = mb.queue.try_pop() {
                    acc.add(v.get() as u64 - 1);
                }
                Ok(())
            })
        }
        // Never 0: the queue only holds `msg` values.
        None => crate::threads::throughput(name, pin, producers, msgs, mb.clone(), send, |acc| {
            acc.add((mb.queue.pop() as u64).wrapping_sub(1));
            Ok(())
        }),
    }
}

// ---------------------------------------------------------------- dispatch

/// The `GUnixFDSourceFunc` of [`Dispatch`]: records the source's key in the
/// current [`Work`] and keeps the source.
///
/// # Safety
///
/// `data` must be a slot of a live [`WorkSlots`], and the call must come
/// from inside its [`WorkSlots::turn`] or between turns (see [`record`]).
unsafe extern "C" fn fd_ready(_fd: c_int, _condition: c_uint, data: gpointer) -> gboolean {
    // SAFETY: the function's contract, which `Dispatch` keeps: GLib calls
    // back only from the iteration inside `turn`.
    unsafe { record(data) };
    ffi::G_SOURCE_CONTINUE
}

/// GLib: one `GMainContext` holding one `g_unix_fd_source_new(fd, G_IO_IN)`
/// source per descriptor, whose callback does the [`Work`] and returns
/// `G_SOURCE_CONTINUE`; a turn is `g_main_context_iteration(ctx, FALSE)`.
///
/// GLib polls with `poll()`: each iteration passes all N descriptors (plus
/// its wake-up eventfd) to the kernel and walks them all again to find the
/// ready ones, so the cost per turn grows with N even when few are ready.
/// Each callback also costs GLib two eventfd writes and an O(N) sorted
/// re-insertion of the descriptor, because GLib blocks a source (removes
/// its descriptor from the poll list) while dispatching it, as it does for
/// every source not made recursive with `g_source_set_can_recurse`; see
/// the [module docs](self#the-contenders).
///
/// The context is acquired once, by the thread that creates the
/// `Dispatch` (which is not `Send`), so an iteration does not acquire and
/// release it each time.
pub struct Dispatch {
    // Field order is drop order: the sources go first, so no callback can
    // run after the slots are freed, and the descriptors (the caller's,
    // never closed here) stay open while the sources poll them.
    sources: Vec<Source>,
    _owner: Owner,
    ctx: Context,
    slots: WorkSlots,
    _fds: Vec<Rc<OwnedFd>>,
}

impl Dispatch {
    /// A context holding one unix-fd source per descriptor of `fds`, keys
    /// `0..fds.len()`.
    ///
    /// # Errors
    ///
    /// `g_main_context_new` or `g_unix_fd_source_new` returning NULL,
    /// `g_main_context_acquire` or `g_source_attach` failing.
    pub fn new(fds: &[Rc<OwnedFd>]) -> io::Result<Dispatch> {
        let ctx = Context::new()?;
        let owner = ctx.acquire()?;
        let slots = WorkSlots::new(fds.len());
        let mut sources = Vec::with_capacity(fds.len());
        for (fd, arg) in fds.iter().zip(slots.args()) {
            // SAFETY: the descriptor stays open while the source exists
            // (the `Dispatch` keeps `fds`, and drops its sources first).
            let src = unsafe { Source::unix_fd(fd.as_raw_fd())? };
            // SAFETY: `fd_ready` gets a slot of `slots`, which outlives the
            // source (field order; here, declaration order) and is never
            // resized; no destroy notify.
            unsafe { src.set_callback(fd_callback(fd_ready), arg, None) };
            src.attach(&ctx)?;
            sources.push(src);
        }
        Ok(Dispatch {
            sources,
            _owner: owner,
            ctx,
            slots,
            _fds: fds.to_vec(),
        })
    }
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatch")
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl Contender for Dispatch {
    fn name(&self) -> &'static str {
        "GLib GMainContext + g_unix_fd_source"
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        let ctx = &self.ctx;
        Ok(self.slots.turn(work, || ctx.iterate(false)).1)
    }

    fn batch(&self) -> usize {
        self.sources.len()
    }
}

// ---------------------------------------------------------------- timers

/// The callback of [`Arm`]'s timers, which never fire.
///
/// # Safety
///
/// None needed (the data is ignored); `unsafe` only to fit `GSourceFunc`.
unsafe extern "C" fn never_fired(_data: gpointer) -> gboolean {
    ffi::G_SOURCE_REMOVE
}

/// GLib: a `GMainContext` with K pending one-shot timer sources. One
/// arm+cancel is `g_source_new` (a minimal `GSourceFuncs`) +
/// `g_source_set_ready_time` (the absolute deadline, µs) +
/// `g_source_set_callback` (every Rust contender inserts a callback too) +
/// `g_source_attach`, then `g_source_destroy` + `g_source_unref`. Not
/// `g_timeout_source_new`, whose interval is relative and in ms. The context
/// never runs, and is owned by no thread, so attach and destroy write no
/// wake-up.
pub struct Arm {
    // Field order is drop order: the sources, then the context.
    pending: Vec<Source>,
    ctx: Context,
    clock: Clock,
}

impl Arm {
    /// A context with one pending timer source per deadline of `pending`.
    ///
    /// # Errors
    ///
    /// `g_main_context_new` or `g_source_new` returning NULL,
    /// `g_source_attach` failing, or `clock_gettime` failing.
    pub fn new(pending: &[Instant]) -> io::Result<Arm> {
        let mut arm = Arm {
            pending: Vec::with_capacity(pending.len()),
            ctx: Context::new()?,
            clock: Clock::now()?,
        };
        for &d in pending {
            let src = arm.timer(d)?;
            arm.pending.push(src);
        }
        Ok(arm)
    }

    /// An attached timer source for `deadline`.
    fn timer(&self, deadline: Instant) -> io::Result<Source> {
        let src = Source::ready_at(self.clock.ready_us(deadline))?;
        // SAFETY: `never_fired` ignores its data.
        unsafe { src.set_callback(Some(never_fired), ptr::null_mut(), None) };
        src.attach(&self.ctx)?;
        Ok(src)
    }
}

impl fmt::Debug for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arm")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl ArmCancel for Arm {
    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        for &d in deadlines {
            // Dropping the source destroys and unrefs it.
            drop(self.timer(d)?);
        }
        Ok(())
    }
}

/// The callback of [`lateness`]'s timers: pushes how late it runs.
///
/// # Safety
///
/// `data` must be a live [`Fire`] (from `Box::into_raw`) whose sink is
/// live. [`lateness`] guarantees this: the `Fire` is freed only by the
/// source's destroy notify, and the sink outlives the context.
unsafe extern "C" fn late_fired(data: gpointer) -> gboolean {
    // SAFETY: the function's contract.
    unsafe { Fire::fired(data) };
    ffi::G_SOURCE_REMOVE
}

/// The destroy notify of [`lateness`]'s timers.
///
/// # Safety
///
/// `data` must be a `Box<Fire>` turned into a raw pointer, freed by no one
/// else (GLib calls the notify once, when the source is destroyed).
unsafe extern "C" fn free_fire(data: gpointer) {
    // SAFETY: the function's contract.
    drop(unsafe { Box::from_raw(data.cast::<Fire>()) });
}

/// Attaches a one-shot timer source at `deadline` that records its
/// lateness in `sink`, and leaves it to the context.
fn arm_late(
    ctx: &Context,
    clock: &Clock,
    deadline: Instant,
    sink: &RefCell<Late>,
) -> io::Result<()> {
    let src = Source::ready_at(clock.ready_us(deadline))?;
    let f = Box::into_raw(Fire::new(deadline, sink));
    // SAFETY: `late_fired` gets the `Fire` it expects; `free_fire` frees
    // it once, when the source is destroyed (after it fired, or with the
    // context, or right here if attaching fails); the caller keeps `sink`
    // alive until the context is gone.
    unsafe { src.set_callback(Some(late_fired), f.cast(), Some(free_fire)) };
    src.attach(ctx)?;
    src.leave_to_context();
    Ok(())
}

/// GLib: how late timer callbacks run on an otherwise idle `GMainContext`,
/// driven by `g_main_context_iteration(ctx, TRUE)` (as `late_fdloop` in
/// `groups/timers.rs`). The timers are the one-shot ready-time sources of
/// [`Arm`] (absolute deadline in µs, rounded up); the callback records how
/// late it runs; the pattern is driven by [`run_pattern`].
///
/// GLib 2.74 waits in `poll()` with a timeout in whole ms, rounded up: see
/// the [module docs](self#timer-precision).
///
/// # Errors
///
/// A GLib constructor returning NULL, acquiring the context or attaching a
/// source failing, or `clock_gettime` failing.
pub fn lateness(pat: Pattern, seed: u64) -> io::Result<Late> {
    // Declared first, so dropped last: it outlives the context, whose drop
    // destroys the sources (and frees their `Fire`s) on an error path.
    let sink = RefCell::new(Vec::with_capacity(pat.count()));
    let ctx = Context::new()?;
    let own = ctx.acquire()?;
    let clock = Clock::now()?;
    let run_until = |_: &mut (), want| {
        while sink.borrow().len() < want {
            ctx.iterate(true);
        }
        Ok(())
    };
    let arm = |_: &mut (), d| arm_late(&ctx, &clock, d, &sink);
    run_pattern(pat, seed, &mut (), arm, run_until)?;
    drop(own);
    drop(ctx);
    Ok(sink.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{ready_eventfds, run_turns};

    #[test]
    fn round_trips_over_contexts_complete() {
        let d = round_trips_context(Pin::Off, 200, 20).unwrap();
        assert!(d > Duration::ZERO);
    }

    #[test]
    fn round_trips_over_queues_complete() {
        let d = round_trips_queue(Pin::Off, 200, 20).unwrap();
        assert!(d > Duration::ZERO);
    }

    #[test]
    fn round_trips_without_warmup_or_trips() {
        round_trips_context(Pin::Off, 10, 0).unwrap();
        round_trips_queue(Pin::Off, 0, 0).unwrap();
    }

    #[test]
    fn throughput_over_a_context_sums_right() {
        for p in [1, 4] {
            throughput_context(Pin::Off, p, 20_000).unwrap();
        }
    }

    #[test]
    fn throughput_over_a_queue_sums_right() {
        for p in [1, 4] {
            throughput_queue(Pin::Off, p, 20_000).unwrap();
        }
        throughput_queue(Pin::Off, 2, 0).unwrap();
    }

    #[test]
    fn dispatch_runs_one_callback_per_ready_fd() {
        let fds = ready_eventfds(3).unwrap();
        let mut d = Dispatch::new(&fds).unwrap();
        assert_eq!(d.batch(), 3);
        let mut w = Work::default();
        assert_eq!(d.turn(&mut w).unwrap(), 3);
        assert_eq!(w.hits, 3);
        assert_eq!(w.acc, 1 + 2);
        // Level-triggered: the same again; run_turns checks the counts.
        assert_eq!(run_turns(&mut d, &mut w, 2).unwrap(), 6);
        drop(d);
        // The descriptors are still the caller's, and open.
        for fd in &fds {
            // SAFETY: F_GETFD on a descriptor we own; no pointers.
            assert!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) } >= 0);
        }
    }

    #[test]
    fn dispatch_of_nothing_is_zero() {
        let mut d = Dispatch::new(&[]).unwrap();
        assert_eq!(d.turn(&mut Work::default()).unwrap(), 0);
    }

    #[test]
    fn arm_and_cancel_with_timers_pending() {
        let base = Instant::now() + Duration::from_secs(3600);
        let pending: Vec<_> = (0..100).map(|i| base + Duration::from_millis(i)).collect();
        let seq: Vec<_> = (0..64)
            .map(|i| base + Duration::from_micros(i * 7))
            .collect();
        let mut a = Arm::new(&pending).unwrap();
        a.run(&seq).unwrap();
        assert_eq!(a.pending.len(), 100);
        // Nothing is due: an iteration dispatches nothing.
        assert!(!a.ctx.iterate(false));
    }

    #[test]
    fn a_ready_time_source_fires_once() {
        let ctx = Context::new().unwrap();
        let clock = Clock::now().unwrap();
        let sink = RefCell::new(Vec::new());
        arm_late(&ctx, &clock, Instant::now(), &sink).unwrap();
        assert!(ctx.iterate(false));
        assert!(!ctx.iterate(false));
        assert_eq!(sink.borrow().len(), 1);
        drop(ctx);
    }

    #[test]
    fn lateness_sequential_and_spread() {
        let l = lateness(Pattern::Sequential(5), 1).unwrap();
        assert_eq!(l.len(), 5);
        assert!(l.iter().all(|&v| v >= 0.0), "{l:?}");
        let l = lateness(Pattern::Spread(20), 7).unwrap();
        assert_eq!(l.len(), 20);
        assert!(l.iter().all(|&v| v >= 0.0), "{l:?}");
    }

    #[test]
    fn lateness_of_none_is_empty() {
        assert!(lateness(Pattern::Spread(0), 1).unwrap().is_empty());
    }
}
