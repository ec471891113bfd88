//! libevent 2.1 (declarations and RAII wrappers in the private `ffi`
//! module). The contenders:
//!
//! * [`round_trips`]: two threads, each running its own `event_base`, each
//!   firing the other's user event with `event_active` — libevent's way of
//!   waking a loop from another thread: with locking enabled
//!   (`evthread_use_pthreads`) every base gets a notify eventfd, which
//!   `event_active` from a foreign thread writes while the base is blocked
//!   in `epoll_wait`. One round trip = two cross-thread activations.
//! * [`throughput`]: producers push onto a `Mutex<VecDeque<u64>>` (libevent
//!   has no queue) and call `event_active` after every push; the
//!   consumer's callback drains the queue. `event_active` coalesces: an
//!   event already active is not queued again, and the notify eventfd is
//!   written only while the base sleeps and no notification is pending.
//! * [`Dispatch`], [`Arm`] (libevent keeps timers in a binary min-heap),
//!   [`lateness`] and [`lateness_precise`] (default configuration vs
//!   `EVENT_BASE_FLAG_PRECISE_TIMER`).
//!
//! The single-threaded contenders ([`Dispatch`], [`Arm`], the lateness
//! runs) use bases made with `EVENT_BASE_FLAG_NOLOCK`: they never leave
//! their thread and pay for no lock. `evthread_use_pthreads` is
//! process-wide and permanent, and libevent wants it called before anything
//! else, so every constructor here calls it (once per process) first; a
//! NOLOCK base is the same with or without it.
//!
//! Timing caveats of the default base (libevent 2.1 `evutil_time.c`,
//! `epoll.c`, `util.c`): its clock is `CLOCK_MONOTONIC_COARSE` (one tick,
//! 4 ms at HZ=250, per reading); timeouts are relative `timeval`s added to
//! that coarse "now"; and `epoll_wait`'s timeout is in ms, rounded **up**
//! (`evutil_tv_to_msec_`: `sec * 1000 + (usec + 999) / 1000`). A timer can
//! therefore fire up to a tick *early* against `CLOCK_MONOTONIC` (when the
//! coarse clock lagged more at `event_add` than at the check), and is
//! usually late by up to a tick. With `EVENT_BASE_FLAG_PRECISE_TIMER` the
//! clock is `CLOCK_MONOTONIC` and the epoll backend sleeps on a timerfd
//! (relative, µs precision) instead of the ms timeout.
//!
//! Every function returns `io::Result`; a libevent call that fails becomes
//! an `io::Error` naming it. Callbacks are `extern "C"` and cannot panic.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::raw::{c_int, c_short, c_void};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::cpeers::{record, Fire, WorkSlots};
use crate::dispatch::{Contender, Work};
use crate::threads::{consumer, join_producers, spawn_producers, two_sides, Acc};
use crate::timers::{run_pattern, ArmCancel, Late, Pattern, PushBack as PushBackRun};
use crate::Pin;

mod ffi;

use ffi::{timeval_ceil, Base, Event};

// ---------------------------------------------------------------- round trips

/// The callbacks' shared state in [`round_trips`].
struct RtState {
    /// Set when either side leaves (done, error or panic).
    stop: AtomicBool,
    /// Round trips completed (written by A's callback only).
    got: AtomicU64,
    /// When the timed round trips started.
    start: OnceLock<Instant>,
    warmup: u64,
    total: u64,
    /// A's and B's events, for the other side's callback to activate.
    a_ev: AtomicPtr<ffi::event>,
    b_ev: AtomicPtr<ffi::event>,
}

/// Both sides of [`round_trips`]. Fields drop in order: the events before
/// the bases, the state (the events' callback argument) last.
struct RtPair {
    a_ev: Event,
    b_ev: Event,
    a_base: Base,
    b_base: Base,
    st: Box<RtState>,
}

// SAFETY: the bases were created after `evthread_use_pthreads`, without
// NOLOCK, so they are locked and notifiable. Each base's loop is run by one
// thread only (side A runs `a_base`, side B `b_base`); the only call made
// on the other side's objects is `event_active`, which libevent makes safe
// from any thread under that locking. `RtState` is atomics and a OnceLock.
// The pair is freed when the last `Arc` goes, i.e. after both sides have
// stopped touching it.
unsafe impl Send for RtPair {}
// SAFETY: as for `Send` above.
unsafe impl Sync for RtPair {}

/// Sets `stop` and activates the other side's event when a side leaves
/// (normally, with an error, or unwinding), so that the other side wakes
/// and leaves too.
struct Bye<'a> {
    st: &'a RtState,
    peer: &'a Event,
}

impl Drop for Bye<'_> {
    fn drop(&mut self) {
        self.st.stop.store(true, Ordering::Release);
        self.peer.activate();
    }
}

/// A's callback: one round trip done; start the clock after the warm-up;
/// activate B's event unless all are done.
extern "C" fn rt_ping_cb(_fd: c_int, _what: c_short, arg: *mut c_void) {
    // SAFETY: `arg` is the `RtState` boxed in the `RtPair` that owns this
    // event, so it outlives every run of this callback.
    let st = unsafe { &*(arg as *const RtState) };
    let got = st.got.load(Ordering::Relaxed) + 1;
    st.got.store(got, Ordering::Relaxed);
    if got == st.warmup {
        let _ = st.start.set(Instant::now());
    }
    if got < st.total {
        let peer = st.b_ev.load(Ordering::Relaxed);
        // SAFETY: `peer` is B's live event (owned by the same `RtPair`);
        // its base is locked, so activating it from this thread is allowed.
        unsafe { ffi::activate(peer) };
    }
}

/// B's callback: echo by activating A's event, unless A has left.
extern "C" fn rt_echo_cb(_fd: c_int, _what: c_short, arg: *mut c_void) {
    // SAFETY: as in `rt_ping_cb`.
    let st = unsafe { &*(arg as *const RtState) };
    if !st.stop.load(Ordering::Acquire) {
        let peer = st.a_ev.load(Ordering::Relaxed);
        // SAFETY: `peer` is A's live event (same `RtPair`), locked base.
        unsafe { ffi::activate(peer) };
    }
}

/// Creates both bases and both (never added) user events.
fn rt_pair(rts: u64, warmup: u64) -> io::Result<RtPair> {
    let st = Box::new(RtState {
        stop: AtomicBool::new(false),
        got: AtomicU64::new(0),
        start: OnceLock::new(),
        warmup,
        total: rts + warmup,
        a_ev: AtomicPtr::new(ptr::null_mut()),
        b_ev: AtomicPtr::new(ptr::null_mut()),
    });
    let a_base = Base::threaded()?;
    let b_base = Base::threaded()?;
    let arg = &*st as *const RtState as *mut c_void;
    // SAFETY: the events are stored in the `RtPair` with their bases and
    // `st` (the argument), and dropped before both (field order).
    let a_ev = unsafe { Event::new(&a_base, -1, 0, rt_ping_cb, arg)? };
    // SAFETY: as above.
    let b_ev = unsafe { Event::new(&b_base, -1, 0, rt_echo_cb, arg)? };
    st.a_ev.store(a_ev.as_ptr(), Ordering::Relaxed);
    st.b_ev.store(b_ev.as_ptr(), Ordering::Relaxed);
    Ok(RtPair {
        a_ev,
        b_ev,
        a_base,
        b_base,
        st,
    })
}

/// The flags of a loop that blocks until at least one (non-internal)
/// callback ran, even with no event added (the user events never are).
const BLOCK_ONCE: c_int = ffi::EVLOOP_ONCE | ffi::EVLOOP_NO_EXIT_ON_EMPTY;

/// Two threads, each running its own `event_base`, ping-pong by activating
/// each other's user event with `event_active` (libevent's cross-thread
/// wake-up: the base's notify eventfd). Returns the time of the `rts`
/// timed round trips after `warmup` untimed ones, measured on side A.
///
/// `evthread_use_pthreads` is called once per process first (needed for
/// `event_active` from another thread).
///
/// # Errors
///
/// Enabling threads, creating a base or an event, `event_base_loop`
/// failing, spawning or pinning a thread, or a side panicking.
pub fn round_trips(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    let pair = Arc::new(rt_pair(rts, warmup)?);
    let (pa, pb) = (pair.clone(), pair);
    let a = move || -> io::Result<Duration> {
        let st = &*pa.st;
        let _bye = Bye { st, peer: &pa.b_ev };
        if st.total == 0 {
            return Ok(Duration::ZERO);
        }
        if st.warmup == 0 {
            let _ = st.start.set(Instant::now());
        }
        pa.b_ev.activate();
        while st.got.load(Ordering::Relaxed) < st.total {
            if st.stop.load(Ordering::Acquire) {
                return Err(io::Error::other("libevent round trip: echo side stopped"));
            }
            pa.a_base.run(BLOCK_ONCE)?;
        }
        Ok(st.start.get().map_or(Duration::ZERO, |s| s.elapsed()))
    };
    let b = move || -> io::Result<()> {
        let _bye = Bye {
            st: &pb.st,
            peer: &pb.a_ev,
        };
        while !pb.st.stop.load(Ordering::Acquire) {
            pb.b_base.run(BLOCK_ONCE)?;
        }
        Ok(())
    };
    two_sides(pin, a, b)
}

// ---------------------------------------------------------------- throughput

/// What the producers share with the consumer in [`throughput`]. Fields
/// drop in order: the event before the base.
struct TpShared {
    /// The consumer's user event (set once, right after creation).
    ev: OnceLock<Event>,
    /// Our queue: libevent has none.
    q: Mutex<VecDeque<u64>>,
    base: Base,
}

// SAFETY: the base is locked (created after `evthread_use_pthreads`,
// without NOLOCK) and its loop runs only on the consumer thread; producers
// only call `event_active` on `ev`, which that locking makes safe from any
// thread, and lock `q`. Whoever drops the last `Arc` frees event then base,
// when no thread uses them any more.
unsafe impl Send for TpShared {}
// SAFETY: as for `Send` above.
unsafe impl Sync for TpShared {}

/// The consumer's callback state (lives on the consumer's stack).
struct Consumer {
    sh: Arc<TpShared>,
    acc: RefCell<Acc>,
    /// Swapped with the shared queue, so the lock is held only for a swap.
    spare: RefCell<VecDeque<u64>>,
}

/// A producer's send: push, then activate the consumer's event.
fn tp_send(sh: &Arc<TpShared>, v: u64) -> bool {
    sh.q.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push_back(v);
    match sh.ev.get() {
        Some(ev) => {
            ev.activate();
            true
        }
        None => false,
    }
}

/// The consumer's callback: take everything queued and count it.
extern "C" fn tp_drain_cb(_fd: c_int, _what: c_short, arg: *mut c_void) {
    // SAFETY: `arg` is the `Consumer` on `throughput`'s stack; the callback
    // only runs inside that function's `event_base_loop` calls.
    let c = unsafe { &*(arg as *const Consumer) };
    // No borrow is held while the loop runs, so these cannot fail; if one
    // did, the messages would wait for the next activation.
    let (Ok(mut spare), Ok(mut acc)) = (c.spare.try_borrow_mut(), c.acc.try_borrow_mut()) else {
        return;
    };
    std::mem::swap(
        &mut *c.sh.q.lock().unwrap_or_else(PoisonError::into_inner),
        &mut *spare,
    );
    for v in spare.drain(..) {
        acc.add(v);
    }
}

/// `producers` threads send `0..msgs` through a `Mutex<VecDeque>` plus an
/// `event_active` per message to a consumer running
/// `event_base_loop(EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY)`, whose callback
/// drains the queue. Threads are placed as `pin` says (the calling thread
/// is the consumer: [`crate::threads::consumer`]). Returns the time from
/// before the producers are spawned until the last message is counted;
/// the sum is checked.
///
/// # Errors
///
/// Enabling threads, creating the base or the event, `event_base_loop`
/// failing, the placement unavailable, spawning a producer, a producer
/// failing, or a wrong sum.
pub fn throughput(pin: Pin, producers: usize, msgs: u64) -> io::Result<Duration> {
    const NAME: &str = "libevent event_active + Mutex<VecDeque>";
    let _consumer = consumer(pin)?;
    let sh = Arc::new(TpShared {
        ev: OnceLock::new(),
        q: Mutex::new(VecDeque::new()),
        base: Base::threaded()?,
    });
    let cons = Consumer {
        sh: sh.clone(),
        acc: RefCell::new(Acc::default()),
        spare: RefCell::new(VecDeque::new()),
    };
    let arg = &cons as *const Consumer as *mut c_void;
    // SAFETY: the callback runs only inside `event_base_loop` calls made
    // below, while `cons` lives; after this function returns, a producer
    // still holding `sh` can only activate the event, never run it.
    let ev = unsafe { Event::new(&sh.base, -1, 0, tp_drain_cb, arg)? };
    if sh.ev.set(ev).is_err() {
        return Err(io::Error::other("libevent: consumer event set twice"));
    }
    let start = Instant::now();
    let hs = spawn_producers(pin.echo_cpu(), producers, msgs, sh.clone(), tp_send)?;
    let mut res = Ok(());
    while cons.acc.borrow().n < msgs {
        if let Err(e) = sh.base.run(BLOCK_ONCE) {
            res = Err(e);
            break;
        }
    }
    let elapsed = start.elapsed();
    join_producers(hs, NAME)?;
    res?;
    cons.acc.borrow().check(msgs, NAME)?;
    Ok(elapsed)
}

// ---------------------------------------------------------------- dispatch

/// The dispatch callback: record the key in the current `Work`.
extern "C" fn dispatch_cb(_fd: c_int, _what: c_short, arg: *mut c_void) {
    // SAFETY: `arg` is what `Dispatch::new` registered: a slot of the
    // owning `Dispatch`'s `WorkSlots`, which outlive its registrations; the
    // loop calls back from inside `turn`.
    unsafe { record(arg) };
}

/// libevent: one `event_base` (epoll backend, `EVENT_BASE_FLAG_NOLOCK`),
/// one `EV_READ | EV_PERSIST` event per descriptor (level-triggered, as
/// libevent's epoll backend always is), whose callback does the [`Work`].
/// A turn is `event_base_loop(EVLOOP_ONCE | EVLOOP_NONBLOCK)`.
pub struct Dispatch {
    // Drop order: events, then the base, then the callbacks' arguments,
    // then the descriptors (kept open until libevent has deleted them).
    events: Vec<Event>,
    base: Base,
    slots: WorkSlots,
    _fds: Vec<Rc<OwnedFd>>,
}

impl Dispatch {
    /// A base watching every descriptor of `fds` for reading.
    ///
    /// # Errors
    ///
    /// Creating the base or an event, `event_add` failing, or the base not
    /// using epoll (`EVENT_NOEPOLL` in the environment).
    pub fn new(fds: &[Rc<OwnedFd>]) -> io::Result<Dispatch> {
        let base = Base::single_thread(false)?;
        let method = base.method();
        if method != "epoll" {
            return Err(io::Error::other(format!(
                "libevent: backend is {method:?}, not epoll"
            )));
        }
        let slots = WorkSlots::new(fds.len());
        let mut events = Vec::with_capacity(fds.len());
        for (fd, arg) in fds.iter().zip(slots.args()) {
            // SAFETY: the event is stored in `events`, dropped before
            // `base` and `slots` (field order); `slots` is never resized.
            let ev = unsafe {
                Event::new(
                    &base,
                    fd.as_raw_fd(),
                    ffi::EV_READ | ffi::EV_PERSIST,
                    dispatch_cb,
                    arg,
                )?
            };
            ev.add(None)?;
            events.push(ev);
        }
        Ok(Dispatch {
            events,
            base,
            slots,
            _fds: fds.to_vec(),
        })
    }
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("libevent::Dispatch")
            .field("events", &self.events.len())
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl Contender for Dispatch {
    fn name(&self) -> &'static str {
        "libevent event_base_loop(ONCE|NONBLOCK)"
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        let slots = &self.slots;
        let (r, ran) = slots.turn(work, || {
            self.base.run(ffi::EVLOOP_ONCE | ffi::EVLOOP_NONBLOCK)
        });
        r?;
        Ok(ran)
    }

    fn batch(&self) -> usize {
        // epoll.c: the epoll_event array starts at INITIAL_NEVENT = 32 and
        // doubles after every epoll_wait that fills it, up to
        // MAX_NEVENT = 4096.
        4096
    }
}

// ---------------------------------------------------------------- timers

/// A timer callback that does nothing (the [`Arm`] base never runs).
extern "C" fn noop_cb(_fd: c_int, _what: c_short, _arg: *mut c_void) {}

/// libevent: a base (`EVENT_BASE_FLAG_NOLOCK`, default timer) with K
/// timers pending. One operation is `event_new` + `event_add(ev, &tv)` +
/// `event_del` + `event_free`: a fresh timer each time, as fdloop's
/// `insert(Timer::at)` + `remove` creates and destroys one (re-adding a
/// preallocated event would skip an allocation the others pay).
///
/// libevent takes relative timeouts, so each `run` reads `Instant::now()`
/// once and passes `deadline - now` (rounded up to the µs); libevent adds
/// that to its own (coarse) clock.
pub struct Arm {
    // Drop order: the events before their base.
    pending: Vec<Event>,
    base: Base,
}

impl Arm {
    /// A base with one pending timer per deadline of `pending`.
    ///
    /// # Errors
    ///
    /// Creating the base or an event, or `event_add` failing.
    pub fn new(pending: &[Instant]) -> io::Result<Arm> {
        let base = Base::single_thread(false)?;
        let now = Instant::now();
        let mut evs = Vec::with_capacity(pending.len());
        for &d in pending {
            // SAFETY: the argument is NULL (unused by `noop_cb`); the event
            // is dropped before `base` (field order of `Arm`).
            let ev = unsafe { Event::new(&base, -1, 0, noop_cb, ptr::null_mut())? };
            ev.add(Some(&timeval_ceil(d.saturating_duration_since(now))))?;
            evs.push(ev);
        }
        Ok(Arm { pending: evs, base })
    }
}

impl fmt::Debug for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("libevent::Arm")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl ArmCancel for Arm {
    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        let now = Instant::now();
        for &d in deadlines {
            // SAFETY: NULL argument (unused); the event is freed at the end
            // of this iteration, while `self.base` lives.
            let ev = unsafe { Event::new(&self.base, -1, 0, noop_cb, ptr::null_mut())? };
            ev.add(Some(&timeval_ceil(d.saturating_duration_since(now))))?;
            ev.del()?;
        }
        Ok(())
    }
}

/// libevent: `n` timer events pending (one per connection), each pushed
/// back by `event_add(ev, &tv)` on the pending event — libevent re-keys it
/// in its min-heap (`min_heap_adjust_`), no allocation.
pub struct PushBack {
    // Drop order: the events before their base (kept only to outlive them).
    evs: Vec<Event>,
    _base: Base,
}

impl PushBack {
    /// A base with `n` timers pending at `first`.
    ///
    /// # Errors
    ///
    /// Creating the base or an event, or `event_add` failing.
    pub fn new(n: usize, first: Instant) -> io::Result<PushBack> {
        let base = Base::single_thread(false)?;
        let tv = timeval_ceil(first.saturating_duration_since(Instant::now()));
        let mut evs = Vec::with_capacity(n);
        for _ in 0..n {
            // SAFETY: NULL argument (unused by `noop_cb`); the events drop
            // before `base` (field order).
            let ev = unsafe { Event::new(&base, -1, 0, noop_cb, ptr::null_mut())? };
            ev.add(Some(&tv))?;
            evs.push(ev);
        }
        Ok(PushBack { evs, _base: base })
    }
}

impl fmt::Debug for PushBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("libevent::PushBack")
            .field("conns", &self.evs.len())
            .finish()
    }
}

impl PushBackRun for PushBack {
    fn run(&mut self, reqs: &[(usize, Instant)]) -> io::Result<()> {
        let now = Instant::now();
        for &(c, d) in reqs {
            let ev = self
                .evs
                .get(c)
                .ok_or_else(|| io::Error::other("libevent: no such connection"))?;
            ev.add(Some(&timeval_ceil(d.saturating_duration_since(now))))?;
        }
        Ok(())
    }
}

/// A lateness timer's callback.
extern "C" fn fire_cb(_fd: c_int, _what: c_short, arg: *mut c_void) {
    // SAFETY: `arg` is the `Fire` of `late_run`'s timer, which outlives its
    // event, and its sink outlives both.
    unsafe { Fire::fired(arg) };
}

fn late_run(pat: Pattern, seed: u64, precise: bool) -> io::Result<Late> {
    let sink = RefCell::new(Vec::with_capacity(pat.count()));
    let base = Base::single_thread(precise)?;
    // A one-shot timer at `deadline`, relative to now (rounded up); the
    // event drops before its `Fire` (tuple order).
    let arm = |_: &mut (), deadline| -> io::Result<(Event, Box<Fire>)> {
        let f = Fire::new(deadline, &sink);
        // SAFETY: the event is dropped before `f` and `base` (see above).
        let ev = unsafe { Event::new(&base, -1, 0, fire_cb, f.arg())? };
        ev.add(Some(&timeval_ceil(
            deadline.saturating_duration_since(Instant::now()),
        )))?;
        Ok((ev, f))
    };
    let run_until = |_: &mut (), want| {
        while sink.borrow().len() < want {
            if !base.run(ffi::EVLOOP_ONCE)? {
                let n = sink.borrow().len();
                return Err(io::Error::other(format!(
                    "libevent: loop empty with {n} of {want} timers fired"
                )));
            }
        }
        Ok(())
    };
    run_pattern(pat, seed, &mut (), arm, run_until)?;
    drop(base);
    Ok(sink.into_inner())
}

/// How late each timer's callback runs on an idle libevent base with the
/// default timer configuration (`EVENT_BASE_FLAG_NOLOCK` only): the clock
/// is `CLOCK_MONOTONIC_COARSE` and `epoll_wait`'s timeout is in ms, rounded
/// up (see the module docs: early firings, reported as -1, are possible).
/// Each timer is `event_new(base, -1, 0, cb, …)` + `event_add` with
/// `deadline - now` rounded up to the µs; the base runs
/// `event_base_loop(EVLOOP_ONCE)` until all have fired.
///
/// # Errors
///
/// Creating the base or an event, `event_add` or `event_base_loop`
/// failing, or the loop running out of events before every timer fired.
pub fn lateness(pat: Pattern, seed: u64) -> io::Result<Late> {
    late_run(pat, seed, false)
}

/// As [`lateness`], on a base with `EVENT_BASE_FLAG_PRECISE_TIMER`: the
/// clock is `CLOCK_MONOTONIC`, and the epoll backend sleeps on a timerfd
/// (armed relative, µs precision, one `timerfd_settime` per loop
/// iteration) instead of a ms `epoll_wait` timeout.
///
/// # Errors
///
/// As [`lateness`].
pub fn lateness_precise(pat: Pattern, seed: u64) -> io::Result<Late> {
    late_run(pat, seed, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{ready_eventfds, run_turns};

    #[test]
    fn round_trips_complete() {
        let d = round_trips(Pin::Off, 200, 20).unwrap();
        assert!(d > Duration::ZERO);
        assert_eq!(round_trips(Pin::Off, 0, 0).unwrap(), Duration::ZERO);
    }

    #[test]
    fn throughput_counts_every_message() {
        for p in [1, 4] {
            let d = throughput(Pin::Off, p, 20_000).unwrap();
            assert!(d > Duration::ZERO, "{p} producers");
        }
    }

    #[test]
    fn dispatch_runs_every_ready_fd_once_per_turn() {
        let fds = ready_eventfds(3).unwrap();
        let mut c = Dispatch::new(&fds).unwrap();
        assert!(c.batch() >= 32);
        for _ in 0..2 {
            let mut w = Work::default();
            assert_eq!(c.turn(&mut w).unwrap(), 3);
            assert_eq!(w.hits, 3);
            // Keys 0 + 1 + 2.
            assert_eq!(w.acc, 3);
        }
        let mut w = Work::default();
        assert_eq!(run_turns(&mut c, &mut w, 4).unwrap(), 12);
        assert_eq!(w.hits, 12);
    }

    #[test]
    fn arm_and_cancel_with_timers_pending() {
        let base = Instant::now() + Duration::from_secs(3600);
        let pending: Vec<Instant> = (0..100)
            .map(|i| base + Duration::from_millis(i * 7))
            .collect();
        let seq: Vec<Instant> = (0..64)
            .map(|i| base + Duration::from_millis(i * 13))
            .collect();
        let mut a = Arm::new(&pending).unwrap();
        a.run(&seq).unwrap();
        a.run(&seq).unwrap();
    }

    #[test]
    fn push_back_moves_pending_timers() {
        let first = Instant::now() + Duration::from_secs(3600);
        let mut p = PushBack::new(10, first).unwrap();
        p.run(&crate::timers::push_back_requests(100, 10, first))
            .unwrap();
        assert!(p.run(&[(10, first)]).is_err(), "no connection 10");
    }

    fn check_late(l: &Late, n: usize, allow_early: bool) {
        assert_eq!(l.len(), n);
        if !allow_early {
            assert!(l.iter().all(|&x| x >= 0.0), "early firing: {l:?}");
        }
    }

    #[test]
    fn lateness_default_fires_every_timer() {
        // The coarse clock may fire a timer early (see the module docs).
        check_late(&lateness(Pattern::Sequential(5), 1).unwrap(), 5, true);
        check_late(&lateness(Pattern::Spread(20), 2).unwrap(), 20, true);
    }

    #[test]
    fn lateness_precise_fires_every_timer_never_early() {
        check_late(
            &lateness_precise(Pattern::Sequential(5), 1).unwrap(),
            5,
            false,
        );
        check_late(
            &lateness_precise(Pattern::Spread(20), 2).unwrap(),
            20,
            false,
        );
    }
}
