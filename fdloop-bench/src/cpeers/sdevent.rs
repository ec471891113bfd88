//! systemd's sd-event (libsystemd 252; declarations and RAII wrappers in
//! the private `ffi` module). The contenders:
//!
//! * [`round_trips`]: two threads, each running its own `sd_event` with an
//!   eventfd watched by `sd_event_add_io(EPOLLIN)`. sd-event has no way to
//!   wake a loop from another thread, so the other thread writes that
//!   eventfd. Every `sd_event` and source is created, used and freed in its
//!   own thread (sd-event objects are single-threaded, which the non-`Send`
//!   wrappers enforce); only the eventfds cross threads.
//! * [`Dispatch`]: sd-event dispatches **one** source per iteration
//!   (`sd_event_dispatch` takes the first of its pending queue): each turn
//!   is an `epoll_wait(…, 0)` (plus the prepare step) and a single
//!   callback, the sources taking turns round-robin. So
//!   [`Contender::batch`] is 1 and N ready sources need N turns.
//! * [`Arm`] (sd-event keeps two priority queues per clock, earliest and
//!   latest) and [`lateness`]. Time sources get an accuracy of 1 µs: the
//!   default (0) means 250 ms, within which sd-event coalesces wake-ups, so
//!   a timer could run up to 250 ms late by design. sd-event sleeps on a
//!   timerfd armed at an absolute time.
//!
//! `Instant` is `CLOCK_MONOTONIC` on Linux, so deadlines are converted by
//! reading both clocks once (`Instant::now()`, then `clock_gettime`) and
//! rounding up to the µs: a converted deadline is never earlier than the
//! `Instant` (at most ~1 µs plus the gap between the two reads later).
//!
//! sd-event calls return a negative errno; each becomes an `io::Error` of
//! that errno, naming the call. Callbacks are `extern "C"` and cannot
//! panic.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpeers::{record, Fire, WorkSlots};
use crate::dispatch::{Contender, Work};
use crate::pingpong::{drain, eventfd, signal};
use crate::threads::two_sides;
use crate::timers::{run_pattern, ArmCancel, Late, MonoClock as Mono, Pattern};
use crate::Pin;

mod ffi;

use ffi::{Loop, Source};

// ---------------------------------------------------------------- round trips

/// Side A's callback state (on A's stack).
struct Ping<'a> {
    own: &'a OwnedFd,
    peer: &'a OwnedFd,
    got: Cell<u64>,
    warmup: u64,
    total: u64,
    start: Cell<Instant>,
    err: Cell<Option<io::Error>>,
}

/// Side B's callback state (on B's stack).
struct Echo<'a> {
    own: &'a OwnedFd,
    peer: &'a OwnedFd,
    stop: &'a AtomicBool,
    err: Cell<Option<io::Error>>,
}

/// A's io callback: reset the eventfd, count, ping B again unless done.
extern "C" fn rt_ping_cb(
    _s: *mut ffi::sd_event_source,
    _fd: c_int,
    _revents: u32,
    userdata: *mut c_void,
) -> c_int {
    // SAFETY: `userdata` is the `Ping` on side A's stack, which outlives
    // the source (dropped first) and so every run of this callback.
    let p = unsafe { &*(userdata as *const Ping<'_>) };
    if let Err(e) = drain(p.own) {
        p.err.set(Some(e));
        return 0;
    }
    let got = p.got.get() + 1;
    p.got.set(got);
    if got == p.warmup {
        p.start.set(Instant::now());
    }
    if got < p.total {
        if let Err(e) = signal(p.peer) {
            p.err.set(Some(e));
        }
    }
    0
}

/// B's io callback: reset the eventfd and echo, unless A has left.
extern "C" fn rt_echo_cb(
    _s: *mut ffi::sd_event_source,
    _fd: c_int,
    _revents: u32,
    userdata: *mut c_void,
) -> c_int {
    // SAFETY: `userdata` is the `Echo` on side B's stack, which outlives
    // the source.
    let e = unsafe { &*(userdata as *const Echo<'_>) };
    if let Err(err) = drain(e.own) {
        e.err.set(Some(err));
        return 0;
    }
    if !e.stop.load(Ordering::Acquire) {
        if let Err(err) = signal(e.peer) {
            e.err.set(Some(err));
        }
    }
    0
}

/// Sets `stop` and writes the other side's eventfd when a side leaves
/// (normally, with an error, or unwinding), so the other side wakes and
/// leaves too.
struct Bye<'a> {
    stop: &'a AtomicBool,
    peer: &'a OwnedFd,
}

impl Drop for Bye<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = signal(self.peer);
    }
}

/// Side A: its own `sd_event`; sends the first ping, runs until `total`
/// round trips, returns the time of those after `warmup`.
fn side_a(
    a_fd: &OwnedFd,
    b_fd: &OwnedFd,
    stop: &AtomicBool,
    rts: u64,
    warmup: u64,
) -> io::Result<Duration> {
    let _bye = Bye { stop, peer: b_fd };
    let total = rts + warmup;
    if total == 0 {
        return Ok(Duration::ZERO);
    }
    let ev = Loop::new()?;
    let ping = Ping {
        own: a_fd,
        peer: b_fd,
        got: Cell::new(0),
        warmup,
        total,
        start: Cell::new(Instant::now()),
        err: Cell::new(None),
    };
    let arg = &ping as *const Ping<'_> as *mut c_void;
    // SAFETY: `a_fd` stays open and `ping` lives until after `_src` is
    // dropped (declared later, dropped earlier).
    let _src = unsafe { ev.add_io(a_fd.as_raw_fd(), libc::EPOLLIN as u32, rt_ping_cb, arg)? };
    signal(b_fd)?;
    while ping.got.get() < total {
        if stop.load(Ordering::Acquire) {
            return Err(io::Error::other("sd-event round trip: echo side stopped"));
        }
        ev.run(u64::MAX)?;
        if let Some(e) = ping.err.take() {
            return Err(e);
        }
    }
    Ok(ping.start.get().elapsed())
}

/// Side B: its own `sd_event`; echoes until A leaves.
fn side_b(b_fd: &OwnedFd, a_fd: &OwnedFd, stop: &AtomicBool) -> io::Result<()> {
    let _bye = Bye { stop, peer: a_fd };
    let ev = Loop::new()?;
    let echo = Echo {
        own: b_fd,
        peer: a_fd,
        stop,
        err: Cell::new(None),
    };
    let arg = &echo as *const Echo<'_> as *mut c_void;
    // SAFETY: `b_fd` stays open and `echo` lives until after `_src` is
    // dropped.
    let _src = unsafe { ev.add_io(b_fd.as_raw_fd(), libc::EPOLLIN as u32, rt_echo_cb, arg)? };
    while !stop.load(Ordering::Acquire) {
        ev.run(u64::MAX)?;
        if let Some(e) = echo.err.take() {
            return Err(e);
        }
    }
    Ok(())
}

/// Two threads, each running its own `sd_event` with an eventfd io source,
/// ping-pong by writing each other's eventfd. Returns the time of the
/// `rts` timed round trips after `warmup` untimed ones, measured on side A.
///
/// # Errors
///
/// Creating an eventfd, a loop or a source, `sd_event_run` or an eventfd
/// read/write failing, spawning or pinning a thread, or a side panicking.
pub fn round_trips(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    let a_fd = Arc::new(eventfd(0)?);
    let b_fd = Arc::new(eventfd(0)?);
    let stop = Arc::new(AtomicBool::new(false));
    let (a1, b1, s1) = (a_fd.clone(), b_fd.clone(), stop.clone());
    let a = move || side_a(&a1, &b1, &s1, rts, warmup);
    let b = move || side_b(&b_fd, &a_fd, &stop);
    two_sides(pin, a, b)
}

// ---------------------------------------------------------------- dispatch

/// The dispatch callback: record the key in the current `Work`.
extern "C" fn dispatch_cb(
    _s: *mut ffi::sd_event_source,
    _fd: c_int,
    _revents: u32,
    userdata: *mut c_void,
) -> c_int {
    // SAFETY: `userdata` is what `Dispatch::new` registered: a slot of the
    // owning `Dispatch`'s `WorkSlots`, which outlive its registrations; the
    // loop calls back from inside `turn`.
    unsafe { record(userdata) };
    0
}

/// sd-event: one `sd_event`, one io source per descriptor (`EPOLLIN`,
/// level-triggered), whose callback does the [`Work`]. A turn is
/// `sd_event_run(e, 0)`, which dispatches at most **one** source.
pub struct Dispatch {
    // Drop order: sources, loop, callbacks' userdata, then the descriptors
    // (kept open until sd-event has removed them from its epoll set).
    sources: Vec<Source>,
    ev: Loop,
    slots: WorkSlots,
    _fds: Vec<Rc<OwnedFd>>,
}

impl Dispatch {
    /// A loop watching every descriptor of `fds` for reading.
    ///
    /// # Errors
    ///
    /// `sd_event_new` or `sd_event_add_io` failing.
    pub fn new(fds: &[Rc<OwnedFd>]) -> io::Result<Dispatch> {
        let ev = Loop::new()?;
        let slots = WorkSlots::new(fds.len());
        let mut sources = Vec::with_capacity(fds.len());
        for (fd, arg) in fds.iter().zip(slots.args()) {
            // SAFETY: the source is stored in `sources`, dropped before
            // `slots` and `_fds` (field order); `slots` is never resized.
            let s = unsafe { ev.add_io(fd.as_raw_fd(), libc::EPOLLIN as u32, dispatch_cb, arg)? };
            sources.push(s);
        }
        Ok(Dispatch {
            sources,
            ev,
            slots,
            _fds: fds.to_vec(),
        })
    }
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("sdevent::Dispatch")
            .field("sources", &self.sources.len())
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl Contender for Dispatch {
    fn name(&self) -> &'static str {
        "sd-event sd_event_run(0) (one source per iteration)"
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        let slots = &self.slots;
        let (r, ran) = slots.turn(work, || self.ev.run(0));
        r?;
        Ok(ran)
    }

    fn batch(&self) -> usize {
        // sd_event_dispatch runs the first pending source only.
        1
    }
}

// ---------------------------------------------------------------- timers

/// The accuracy given to every time source: 1 µs (0 would mean sd-event's
/// default of 250 ms).
const ACCURACY_US: u64 = 1;

/// A time callback that does nothing (the [`Arm`] loop never runs).
extern "C" fn noop_time_cb(_s: *mut ffi::sd_event_source, _usec: u64, _u: *mut c_void) -> c_int {
    0
}

/// sd-event: a loop with K time sources pending (`CLOCK_MONOTONIC`,
/// absolute, accuracy 1 µs). One operation is `sd_event_add_time` +
/// `sd_event_source_disable_unref`. Each `run` converts the deadlines
/// with one clock reading. The loop never runs.
pub struct Arm {
    // Drop order: the sources before the loop.
    pending: Vec<Source>,
    ev: Loop,
}

impl Arm {
    /// A loop with one pending time source per deadline of `pending`.
    ///
    /// # Errors
    ///
    /// `sd_event_new`, `sd_event_add_time` or `clock_gettime` failing.
    pub fn new(pending: &[Instant]) -> io::Result<Arm> {
        let ev = Loop::new()?;
        let now = Mono::now()?;
        let mut srcs = Vec::with_capacity(pending.len());
        for &d in pending {
            // SAFETY: NULL userdata, unused by `noop_time_cb`.
            let s =
                unsafe { ev.add_time(now.us_ceil(d), ACCURACY_US, noop_time_cb, ptr::null_mut())? };
            srcs.push(s);
        }
        Ok(Arm { pending: srcs, ev })
    }
}

impl fmt::Debug for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("sdevent::Arm")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl ArmCancel for Arm {
    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        let now = Mono::now()?;
        for &d in deadlines {
            // SAFETY: NULL userdata, unused by `noop_time_cb`; the source is
            // disabled and unreferenced at the end of this iteration.
            let s = unsafe {
                self.ev
                    .add_time(now.us_ceil(d), ACCURACY_US, noop_time_cb, ptr::null_mut())?
            };
            drop(s);
        }
        Ok(())
    }
}

/// A lateness timer's callback.
extern "C" fn fire_cb(_s: *mut ffi::sd_event_source, _usec: u64, userdata: *mut c_void) -> c_int {
    // SAFETY: `userdata` is the `Fire` of `lateness`'s timer, which
    // outlives its source, and its sink outlives both.
    unsafe { Fire::fired(userdata) };
    0
}

/// How late each time source's callback runs on an idle `sd_event`
/// (`CLOCK_MONOTONIC`, absolute deadline rounded up to the µs, accuracy
/// 1 µs — the default accuracy of 0 would allow 250 ms of coalescing),
/// driven by `sd_event_run(e, UINT64_MAX)` until all have fired.
///
/// # Errors
///
/// `sd_event_new`, `sd_event_add_time`, `sd_event_run` or `clock_gettime`
/// failing.
pub fn lateness(pat: Pattern, seed: u64) -> io::Result<Late> {
    let sink = RefCell::new(Vec::with_capacity(pat.count()));
    let ev = Loop::new()?;
    let now = Mono::now()?;
    // A one-shot time source at `deadline`; the source drops before its
    // `Fire` (tuple order).
    let arm = |_: &mut (), deadline| -> io::Result<(Source, Box<Fire>)> {
        let f = Fire::new(deadline, &sink);
        // SAFETY: the source is dropped before `f`.
        let src = unsafe { ev.add_time(now.us_ceil(deadline), ACCURACY_US, fire_cb, f.arg())? };
        Ok((src, f))
    };
    let run_until = |_: &mut (), want| {
        while sink.borrow().len() < want {
            ev.run(u64::MAX)?;
        }
        Ok(())
    };
    run_pattern(pat, seed, &mut (), arm, run_until)?;
    drop(ev);
    Ok(sink.into_inner())
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
    fn dispatch_runs_one_source_per_turn_round_robin() {
        let fds = ready_eventfds(3).unwrap();
        let mut c = Dispatch::new(&fds).unwrap();
        assert_eq!(c.batch(), 1);
        for _ in 0..3 {
            let mut w = Work::default();
            for _ in 0..3 {
                assert_eq!(c.turn(&mut w).unwrap(), 1);
            }
            // One full round: every key once (0 + 1 + 2).
            assert_eq!(w.hits, 3);
            assert_eq!(w.acc, 3);
        }
        let mut w = Work::default();
        assert_eq!(run_turns(&mut c, &mut w, 6).unwrap(), 6);
        assert_eq!(w.hits, 6);
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
    fn lateness_fires_every_timer_never_early() {
        for (pat, n) in [(Pattern::Sequential(5), 5), (Pattern::Spread(20), 20)] {
            let l = lateness(pat, 3).unwrap();
            assert_eq!(l.len(), n);
            assert!(l.iter().all(|&x| x >= 0.0), "early firing: {l:?}");
        }
    }

    #[test]
    fn deadlines_convert_upwards() {
        let m = Mono::now().unwrap();
        let d = m.at + Duration::from_nanos(1_001);
        assert_eq!(m.us_ceil(d), (m.ns + 1_001).div_ceil(1000) as u64);
        assert!(m.us_ceil(m.at) as u128 * 1000 >= m.ns);
    }
}
