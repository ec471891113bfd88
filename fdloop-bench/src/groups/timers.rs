//! Timers (issue 5): fdloop's `Timer` against tokio (`DelayQueue`, `Sleep`)
//! and calloop's `Timer`.
//!
//! * **Arm + cancel**: with K timers already pending (deadlines spread over
//!   the hour starting an hour from now), the time to insert one more timer
//!   (at a pseudo-random deadline in the same hour, the same sequence for
//!   every contender) and remove it again. The loops never run, so nothing
//!   fires. Beside the time, the bytes per pending timer the allocator
//!   handed out while the K timers were armed (`mallinfo2`).
//! * **Push back** (issue 18): 10 000 connections, each with an idle
//!   timeout pending; each request moves its connection's timeout later
//!   (fdloop `LoopHandle::reschedule_timer_at`, and `remove` + `insert` for
//!   reference; libevent `event_add` on the pending event; tokio
//!   `Sleep::reset`; tokio-util `DelayQueue::reset_at`).
//! * **Lateness**: on an otherwise idle loop, how long after its deadline a
//!   timer's callback runs (`Instant::now()` in the callback minus the
//!   deadline). *Sequential*: one-shot timers of 1 ms, one after the
//!   other, 100 per sample over ten times the reps. *Spread*: n timers at
//!   pseudo-random deadlines in the next 200 ms, all armed at once, over
//!   four times the reps. A blocking read on a bare timerfd is the floor;
//!   the same timerfd waited for in `epoll_wait` is shown beside it as a
//!   reference (what epoll itself adds, before any loop's work). The table
//!   gives each sample's p50; below it, the p50, p99, p99.9, maximum and
//!   early count of every timed sample's timers pooled, with the p99's
//!   ratio to the floor's and the reference's: one sample's tail is mostly
//!   what the host did during it, and pooling many short interleaved
//!   samples compares the contenders over the same stretches of time.
//!
//! Every contender runs `reps` times, interleaved (repetition *r* starts at
//! contender *r* mod *n*); the tables give the median and min–max of the
//! repetitions and ratios of medians.
//!
//! In the report: `cargo run --release -p fdloop-bench --bin report --
//! --only timers`, or `cargo bench -p fdloop-bench --bench timers`.
//! With feature `c-peers`, GLib, libevent and sd-event join the tables.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use fdloop::{Action, EventLoop, SourceId, Timer};

use crate::harness::{entry, Case, Ctx, Entry, Measured};
use crate::record::{percentile, Better, Role};
use crate::timers::{
    late_ns, malloc_in_use, push_back_requests, run_pattern, spread_deadlines, ArmCancel, Late,
    MonoClock, Pattern, PushBack, Rng, STEP,
};

// ---------------------------------------------------------------- arm + cancel

struct FdloopArm {
    ev: EventLoop<u64>,
}

impl FdloopArm {
    fn new(pending: &[Instant]) -> io::Result<FdloopArm> {
        let mut ev = EventLoop::new()?;
        for &d in pending {
            ev.insert(Timer::at(d), fired)?;
        }
        Ok(FdloopArm { ev })
    }
}

fn fired(_: fdloop::TimerEvent, _: &mut fdloop::TimerCtl, n: &mut u64) -> Action {
    *n += 1;
    Action::Continue
}

impl ArmCancel for FdloopArm {
    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        for &d in deadlines {
            let id: SourceId = self.ev.insert(Timer::at(d), fired)?;
            self.ev.remove(id)?;
        }
        Ok(())
    }
}

/// fdloop's lighter one-shot: `LoopHandle::call_at` with a closure that
/// captures a word (as a request's timeout would: its connection), then
/// `remove`. The K pending are calls too.
struct FdloopCallArm {
    ev: EventLoop<u64>,
    h: fdloop::LoopHandle<u64>,
}

impl FdloopCallArm {
    fn new(pending: &[Instant]) -> io::Result<FdloopCallArm> {
        let ev = EventLoop::new()?;
        let h = ev.handle();
        for (i, &d) in pending.iter().enumerate() {
            let conn = i as u64;
            h.call_at(d, move |n: &mut u64| *n += conn)?;
        }
        Ok(FdloopCallArm { ev, h })
    }
}

impl ArmCancel for FdloopCallArm {
    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        for (i, &d) in deadlines.iter().enumerate() {
            let conn = i as u64;
            let id = self.h.call_at(d, move |n: &mut u64| *n += conn)?;
            self.ev.remove(id)?;
        }
        Ok(())
    }
}

struct CalloopArm {
    ev: calloop::EventLoop<'static, u64>,
}

impl CalloopArm {
    fn new(pending: &[Instant]) -> io::Result<CalloopArm> {
        let ev = calloop::EventLoop::try_new().map_err(io::Error::other)?;
        let h = ev.handle();
        for &d in pending {
            h.insert_source(calloop::timer::Timer::from_deadline(d), calloop_fired)
                .map_err(|e| io::Error::other(e.error))?;
        }
        Ok(CalloopArm { ev })
    }
}

fn calloop_fired(_: Instant, _: &mut (), n: &mut u64) -> calloop::timer::TimeoutAction {
    *n += 1;
    calloop::timer::TimeoutAction::Drop
}

impl ArmCancel for CalloopArm {
    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        let h = self.ev.handle();
        for &d in deadlines {
            let t = h
                .insert_source(calloop::timer::Timer::from_deadline(d), calloop_fired)
                .map_err(|e| io::Error::other(e.error))?;
            h.remove(t);
        }
        Ok(())
    }
}

fn tokio_rt() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

struct DelayQueueArm {
    rt: tokio::runtime::Runtime,
    q: tokio_util::time::DelayQueue<u32>,
}

impl DelayQueueArm {
    fn new(pending: &[Instant]) -> io::Result<DelayQueueArm> {
        let rt = tokio_rt()?;
        let mut q = {
            let _g = rt.enter();
            let mut q = tokio_util::time::DelayQueue::with_capacity(pending.len());
            for &d in pending {
                q.insert_at(0, d.into());
            }
            q
        };
        // Let the queue register its wake-up with the driver, as it would
        // in use (poll it once: nothing is due).
        let _g = rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        if q.poll_expired(&mut cx).is_ready() {
            return Err(io::Error::other("DelayQueue: a far timer expired"));
        }
        drop(_g);
        Ok(DelayQueueArm { rt, q })
    }
}

impl ArmCancel for DelayQueueArm {
    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        let _g = self.rt.enter();
        for &d in deadlines {
            let k = self.q.insert_at(1, d.into());
            self.q.remove(&k);
        }
        Ok(())
    }
}

/// tokio `Sleep`s: each is created, polled once (which registers it in the
/// runtime's timer wheel) and dropped (which deregisters it).
struct SleepArm {
    rt: tokio::runtime::Runtime,
    _pending: Vec<Pin<Box<tokio::time::Sleep>>>,
}

impl SleepArm {
    fn new(pending: &[Instant]) -> io::Result<SleepArm> {
        let rt = tokio_rt()?;
        let _g = rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        let mut v = Vec::with_capacity(pending.len());
        for &d in pending {
            let mut s = Box::pin(tokio::time::sleep_until(d.into()));
            if s.as_mut().poll(&mut cx).is_ready() {
                return Err(io::Error::other("tokio: a far Sleep completed"));
            }
            v.push(s);
        }
        drop(_g);
        Ok(SleepArm { rt, _pending: v })
    }
}

impl ArmCancel for SleepArm {
    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        let _g = self.rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        for &d in deadlines {
            let s = pin!(tokio::time::sleep_until(d.into()));
            if s.poll(&mut cx).is_ready() {
                return Err(io::Error::other("tokio: a far Sleep completed"));
            }
        }
        Ok(())
    }
}

type ArmMaker = (
    &'static str,
    fn(&[Instant]) -> io::Result<Box<dyn ArmCancel>>,
);

/// Every arm+cancel contender.
fn arm_contenders() -> Vec<ArmMaker> {
    #[cfg_attr(not(feature = "c-peers"), allow(unused_mut))]
    let mut v: Vec<ArmMaker> = vec![
        ("fdloop insert(Timer::at) + remove", |p| {
            Ok(Box::new(FdloopArm::new(p)?))
        }),
        ("fdloop call_at + remove", |p| {
            Ok(Box::new(FdloopCallArm::new(p)?))
        }),
        ("tokio-util DelayQueue insert_at + remove", |p| {
            Ok(Box::new(DelayQueueArm::new(p)?))
        }),
        ("tokio sleep_until + first poll + drop", |p| {
            Ok(Box::new(SleepArm::new(p)?))
        }),
        ("calloop insert_source(Timer) + remove", |p| {
            Ok(Box::new(CalloopArm::new(p)?))
        }),
    ];
    #[cfg(feature = "c-peers")]
    {
        use crate::cpeers::{glib, libevent, sdevent};
        v.push(("GLib GSource (ready time) attach + destroy", |p| {
            Ok(Box::new(glib::Arm::new(p)?))
        }));
        v.push((
            "libevent event_new + event_add + event_del + event_free",
            |p| Ok(Box::new(libevent::Arm::new(p)?)),
        ));
        v.push(("sd-event sd_event_add_time + disable_unref", |p| {
            Ok(Box::new(sdevent::Arm::new(p)?))
        }));
    }
    v
}

/// One arm+cancel sample: chunks of the deadline sequence until `max_ops`
/// were done or `budget` has passed (at least one chunk). Returns
/// (ns per op, ops).
fn arm_sample(
    c: &mut dyn ArmCancel,
    seq: &[Instant],
    max_ops: usize,
    budget: Duration,
) -> io::Result<(f64, usize)> {
    let chunk = 64.min(seq.len());
    let mut ops = 0;
    let mut at = 0;
    let start = Instant::now();
    loop {
        if at + chunk > seq.len() {
            at = 0;
        }
        c.run(&seq[at..at + chunk])?;
        at += chunk;
        ops += chunk;
        if ops >= max_ops || start.elapsed() >= budget {
            break;
        }
    }
    Ok((start.elapsed().as_nanos() as f64 / ops as f64, ops))
}

/// Above this K, calloop's arm+cancel row is left out unless asked for.
const CALLOOP_MAX_K: usize = 200_000;

// ---------------------------------------------------------------- push back

/// fdloop: one `Timer` per connection; a request moves it with
/// `LoopHandle::reschedule_timer_at` (in place in the timer store).
struct FdloopPush {
    ev: EventLoop<u64>,
    h: fdloop::LoopHandle<u64>,
    ids: Vec<SourceId>,
}

impl FdloopPush {
    fn new(n: usize, first: Instant) -> io::Result<FdloopPush> {
        let mut ev = EventLoop::new()?;
        let ids = (0..n)
            .map(|_| ev.insert(Timer::at(first), fired))
            .collect::<Result<Vec<_>, _>>()?;
        let h = ev.handle();
        Ok(FdloopPush { ev, h, ids })
    }

    fn id(&self, c: usize) -> io::Result<SourceId> {
        self.ids
            .get(c)
            .copied()
            .ok_or_else(|| io::Error::other("fdloop: no such connection"))
    }
}

impl PushBack for FdloopPush {
    fn run(&mut self, reqs: &[(usize, Instant)]) -> io::Result<()> {
        for &(c, d) in reqs {
            if !self.h.reschedule_timer_at(self.id(c)?, d)? {
                return Err(io::Error::other("fdloop: an idle timeout was not pending"));
            }
        }
        Ok(())
    }
}

/// fdloop the long way: `remove` the connection's timer and `insert` a new
/// one (what a push back cost before `reschedule_timer_at`).
struct FdloopReinsert(FdloopPush);

impl PushBack for FdloopReinsert {
    fn run(&mut self, reqs: &[(usize, Instant)]) -> io::Result<()> {
        let p = &mut self.0;
        for &(c, d) in reqs {
            p.ev.remove(p.id(c)?)?;
            p.ids[c] = p.ev.insert(Timer::at(d), fired)?;
        }
        Ok(())
    }
}

struct DelayQueuePush {
    rt: tokio::runtime::Runtime,
    q: tokio_util::time::DelayQueue<u32>,
    keys: Vec<tokio_util::time::delay_queue::Key>,
}

impl DelayQueuePush {
    fn new(n: usize, first: Instant) -> io::Result<DelayQueuePush> {
        let rt = tokio_rt()?;
        let _g = rt.enter();
        let mut q = tokio_util::time::DelayQueue::with_capacity(n);
        let keys = (0..n).map(|_| q.insert_at(0, first.into())).collect();
        let mut cx = Context::from_waker(Waker::noop());
        if q.poll_expired(&mut cx).is_ready() {
            return Err(io::Error::other("DelayQueue: a far timer expired"));
        }
        drop(_g);
        Ok(DelayQueuePush { rt, q, keys })
    }
}

impl PushBack for DelayQueuePush {
    fn run(&mut self, reqs: &[(usize, Instant)]) -> io::Result<()> {
        let _g = self.rt.enter();
        for &(c, d) in reqs {
            let k = self
                .keys
                .get(c)
                .ok_or_else(|| io::Error::other("DelayQueue: no such connection"))?;
            self.q.reset_at(k, d.into());
        }
        Ok(())
    }
}

/// tokio: one pinned `Sleep` per connection, registered (polled once);
/// a request calls `Sleep::reset`, which moves it in the timer wheel.
struct SleepPush {
    rt: tokio::runtime::Runtime,
    sleeps: Vec<Pin<Box<tokio::time::Sleep>>>,
}

impl SleepPush {
    fn new(n: usize, first: Instant) -> io::Result<SleepPush> {
        let rt = tokio_rt()?;
        let _g = rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        let mut sleeps = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = Box::pin(tokio::time::sleep_until(first.into()));
            if s.as_mut().poll(&mut cx).is_ready() {
                return Err(io::Error::other("tokio: a far Sleep completed"));
            }
            sleeps.push(s);
        }
        drop(_g);
        Ok(SleepPush { rt, sleeps })
    }
}

impl PushBack for SleepPush {
    fn run(&mut self, reqs: &[(usize, Instant)]) -> io::Result<()> {
        let _g = self.rt.enter();
        for &(c, d) in reqs {
            let s = self
                .sleeps
                .get_mut(c)
                .ok_or_else(|| io::Error::other("tokio: no such connection"))?;
            s.as_mut().reset(d.into());
        }
        Ok(())
    }
}

type PushMaker = (
    &'static str,
    fn(usize, Instant) -> io::Result<Box<dyn PushBack>>,
);

/// Every push-back contender.
fn push_contenders() -> Vec<PushMaker> {
    #[cfg_attr(not(feature = "c-peers"), allow(unused_mut))]
    let mut v: Vec<PushMaker> = vec![
        ("fdloop reschedule_timer_at", |n, f| {
            Ok(Box::new(FdloopPush::new(n, f)?))
        }),
        ("fdloop remove + insert(Timer::at)", |n, f| {
            Ok(Box::new(FdloopReinsert(FdloopPush::new(n, f)?)))
        }),
        ("tokio-util DelayQueue reset_at", |n, f| {
            Ok(Box::new(DelayQueuePush::new(n, f)?))
        }),
        ("tokio Sleep::reset", |n, f| {
            Ok(Box::new(SleepPush::new(n, f)?))
        }),
    ];
    #[cfg(feature = "c-peers")]
    v.push(("libevent event_add on a pending event", |n, f| {
        Ok(Box::new(crate::cpeers::libevent::PushBack::new(n, f)?))
    }));
    v
}

/// Connections of the push-back case.
const CONNS: usize = 10_000;

fn push_case(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let conns = ctx.cfg.size(100, CONNS, CONNS);
    let max_ops = ctx.cfg.size(256, 20_000, 200_000);
    let budget = Duration::from_millis(ctx.cfg.size(5, 50, 250));
    // An idle timeout of 30 s, pushed back by 100 ns of virtual time per
    // request; the sequence covers a whole sample without wrapping.
    let first = Instant::now() + Duration::from_secs(30);
    let reqs = push_back_requests(max_ops + 64, conns, first);
    let only = ctx.cfg.contender.clone();
    let mut cs: Vec<(&'static str, Box<dyn PushBack>)> = Vec::new();
    for (name, make) in push_contenders() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        cs.push((name, make(conns, first)?));
    }
    let reqs = &reqs;
    let entries: Vec<Entry<'_>> = cs
        .iter_mut()
        .map(|(name, c)| {
            // Each sample goes on from where the last one stopped, so the
            // deadlines keep growing.
            let mut at = 0;
            entry(*name, Role::of(name, ""), move || {
                let start = Instant::now();
                let mut ops = 0;
                loop {
                    if at + 64 > reqs.len() {
                        at = 0;
                    }
                    c.run(&reqs[at..at + 64])?;
                    at += 64;
                    ops += 64;
                    if ops >= max_ops || start.elapsed() >= budget {
                        break;
                    }
                }
                Ok(Measured {
                    value: start.elapsed().as_nanos() as f64 / ops as f64,
                    ops: ops as u64,
                    extra: Vec::new(),
                })
            })
        })
        .collect();
    let note = format!(
        "{conns} connections, each with an idle timeout pending; each request (a pseudo-random \
         connection, the same sequence for everyone) pushes that connection's timeout back to \
         a deadline later than every other. Until {max_ops} requests or {} ms per sample; the \
         loops never run.",
        budget.as_millis()
    );
    let case = Case::time(
        format!("push back an idle timeout, {conns} connections"),
        "time/op",
    )
    .note(note);
    ctx.run_case("timers", case, entries)
}

// ---------------------------------------------------------------- lateness

fn late_fdloop(pat: Pattern, seed: u64) -> io::Result<Late> {
    // Room for every lateness up front, as every contender has: a push
    // that grows the vector would be timed as lateness.
    let mut lp = (EventLoop::<Late>::new()?, Vec::with_capacity(pat.count()));
    let arm = |(ev, _): &mut (EventLoop<Late>, Late), d: Instant| -> io::Result<SourceId> {
        Ok(ev.insert(Timer::at(d), move |_, _, l: &mut Late| {
            l.push(late_ns(d));
            Action::Continue
        })?)
    };
    let run_until = |(ev, late): &mut (EventLoop<Late>, Late), want| {
        while late.len() < want {
            ev.run_once(late, None)?;
        }
        Ok(())
    };
    run_pattern(pat, seed, &mut lp, arm, run_until)?;
    Ok(lp.1)
}

fn late_calloop(pat: Pattern, seed: u64) -> io::Result<Late> {
    use calloop::timer::{TimeoutAction, Timer as CTimer};
    type Loop = (calloop::EventLoop<'static, Late>, Late);
    let mut lp: Loop = (
        calloop::EventLoop::try_new().map_err(io::Error::other)?,
        Vec::with_capacity(pat.count()),
    );
    let arm = |(ev, _): &mut Loop, d: Instant| {
        let cb = move |_, _: &mut (), l: &mut Late| {
            l.push(late_ns(d));
            TimeoutAction::Drop
        };
        ev.handle()
            .insert_source(CTimer::from_deadline(d), cb)
            .map_err(|e| io::Error::other(e.error))
    };
    let run_until = |(ev, late): &mut Loop, want| {
        while late.len() < want {
            ev.dispatch(None, late).map_err(io::Error::other)?;
        }
        Ok(())
    };
    run_pattern(pat, seed, &mut lp, arm, run_until)?;
    Ok(lp.1)
}

/// tokio: `sleep_until(d).await` on a current-thread runtime with IO and
/// time enabled (what `#[tokio::main(flavor = "current_thread")]` builds).
fn late_tokio(pat: Pattern, seed: u64) -> io::Result<Late> {
    let rt = tokio_rt()?;
    match pat {
        Pattern::Sequential(n) => Ok(rt.block_on(async {
            let mut late = Vec::with_capacity(n);
            for _ in 0..n {
                let d = Instant::now() + STEP;
                tokio::time::sleep_until(d.into()).await;
                late.push(late_ns(d));
            }
            late
        })),
        Pattern::Spread(n) => rt.block_on(async {
            let hs: Vec<_> = spread_deadlines(n, seed)
                .into_iter()
                .map(|d| {
                    tokio::spawn(async move {
                        tokio::time::sleep_until(d.into()).await;
                        late_ns(d)
                    })
                })
                .collect();
            let mut late = Vec::with_capacity(n);
            for h in hs {
                late.push(h.await.map_err(io::Error::other)?);
            }
            Ok(late)
        }),
    }
}

/// Arms the timerfd `fd` at `ns` (absolute, `CLOCK_MONOTONIC`).
fn set_timerfd(fd: &OwnedFd, ns: u128) -> io::Result<()> {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        },
    };
    // SAFETY: `fd` is an open timerfd; `spec` is valid and only read.
    let rc = unsafe {
        libc::timerfd_settime(
            fd.as_raw_fd(),
            libc::TFD_TIMER_ABSTIME,
            &spec,
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Arms the timerfd `fd` at `ns` (absolute, `CLOCK_MONOTONIC`) and blocks
/// in `read` until it fires (at once for a deadline already past).
fn timerfd_fire_at(fd: &OwnedFd, ns: u128) -> io::Result<()> {
    set_timerfd(fd, ns)?;
    let mut buf = [0u8; 8];
    loop {
        // SAFETY: `fd` is open and `buf` holds the 8 bytes read.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        if r == 8 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A new blocking `CLOCK_MONOTONIC` timerfd.
fn new_timerfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs `pat` with `fire_at(ns)` arming one deadline and returning once
/// it has passed: sequential deadlines each 1 ms after the previous fired;
/// spread ones in deadline order.
fn late_with(
    pat: Pattern,
    seed: u64,
    mut fire_at: impl FnMut(u128) -> io::Result<()>,
) -> io::Result<Late> {
    let mut late = Vec::with_capacity(pat.count());
    match pat {
        Pattern::Sequential(n) => {
            for _ in 0..n {
                let clock = MonoClock::now()?;
                let d = clock.at + STEP;
                fire_at(clock.ns(d))?;
                late.push(late_ns(d));
            }
        }
        Pattern::Spread(n) => {
            let mut ds = spread_deadlines(n, seed);
            ds.sort_unstable();
            let clock = MonoClock::now()?;
            for d in ds {
                fire_at(clock.ns(d))?;
                late.push(late_ns(d));
            }
        }
    }
    Ok(late)
}

/// The floor: one bare timerfd armed at the absolute deadline, then a
/// blocking `read`. Spread: the same deadlines sorted, the timerfd armed
/// at each in turn (what a loop with a perfect timer store and nothing
/// else to do could reach).
fn late_timerfd(pat: Pattern, seed: u64) -> io::Result<Late> {
    let fd = new_timerfd()?;
    late_with(pat, seed, |ns| timerfd_fire_at(&fd, ns))
}

/// Arms the timerfd `fd` at `ns` (absolute, `CLOCK_MONOTONIC`), then
/// waits in `epoll_wait` on `ep`, where `fd` is registered
/// edge-triggered and never read, as a loop registers it.
fn timerfd_epoll_fire_at(ep: &OwnedFd, fd: &OwnedFd, ns: u128) -> io::Result<()> {
    set_timerfd(fd, ns)?;
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    loop {
        // SAFETY: `ep` is an open epoll descriptor and `ev` has room for
        // the one event asked for.
        let r = unsafe { libc::epoll_wait(ep.as_raw_fd(), &mut ev, 1, -1) };
        if r == 1 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if r < 0 && e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The floor plus epoll and nothing else: the bare timerfd registered
/// edge-triggered in an epoll set of its own, each deadline waited for in
/// `epoll_wait` instead of a blocking `read`. What a loop cannot avoid
/// (the timerfd wakes epoll, which wakes the thread); the gap between
/// this and the floor is the epoll hop, the gap between a loop and this
/// is the loop's own work.
fn late_timerfd_epoll(pat: Pattern, seed: u64) -> io::Result<Late> {
    let fd = new_timerfd()?;
    // SAFETY: plain syscall; the result is checked before use.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ep` is a fresh descriptor nobody else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 1,
    };
    // SAFETY: both descriptors are open; `ev` is valid and only read.
    if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    late_with(pat, seed, |ns| timerfd_epoll_fire_at(&ep, &fd, ns))
}

type LateFn = fn(Pattern, u64) -> io::Result<Late>;

const FLOOR: &str = "bare timerfd + blocking read";

const EPOLL_FLOOR: &str = "bare timerfd in epoll + epoll_wait (no loop)";

/// Every lateness contender, the floor first.
fn late_contenders() -> Vec<(&'static str, LateFn)> {
    #[cfg_attr(not(feature = "c-peers"), allow(unused_mut))]
    let mut v: Vec<(&'static str, LateFn)> = vec![
        (FLOOR, late_timerfd),
        (EPOLL_FLOOR, late_timerfd_epoll),
        ("fdloop Timer::at", late_fdloop),
        ("tokio sleep_until (current_thread, enable_all)", late_tokio),
        ("calloop Timer::from_deadline", late_calloop),
    ];
    #[cfg(feature = "c-peers")]
    {
        use crate::cpeers::{glib, libevent, sdevent};
        v.push(("GLib GSource ready time", glib::lateness));
        v.push(("libevent evtimer (default base)", libevent::lateness));
        v.push((
            "libevent evtimer (PRECISE_TIMER)",
            libevent::lateness_precise,
        ));
        v.push((
            "sd-event sd_event_add_time (accuracy 1 µs)",
            sdevent::lateness,
        ));
    }
    v
}

/// One lateness run of the contender whose name contains `name` (the
/// first such in the report's order; `"floor"` is the bare timerfd), for
/// `examples/late_probe`. `None` if no contender matches.
pub fn lateness_of(name: &str, pat: Pattern, seed: u64) -> Option<io::Result<Late>> {
    let name = if name == "floor" { FLOOR } else { name };
    late_contenders()
        .into_iter()
        .find(|(n, _)| n.contains(name))
        .map(|(_, f)| f(pat, seed))
}

/// p50, p99, p99.9 and max of one run, and how many fired early.
#[derive(Clone, Copy, Debug, Default)]
struct LateStats {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    early: usize,
    n: usize,
}

fn late_stats(mut v: Late) -> LateStats {
    let early = v.iter().filter(|&&x| x < 0.0).count();
    v.sort_by(f64::total_cmp);
    LateStats {
        p50: percentile(&v, 50.0),
        p99: percentile(&v, 99.0),
        p999: percentile(&v, 99.9),
        max: v.last().copied().unwrap_or(0.0),
        early,
        n: v.len(),
    }
}

/// The timers group: arm+cancel with K pending, then lateness.
///
/// # Errors
///
/// A contender failing.
pub fn run(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let ks: &[usize] = ctx
        .cfg
        .size(&[100], &[1_000, 100_000], &[1_000, 100_000, 1_000_000]);
    for &k in ks {
        arm_case(ctx, k)?;
    }
    push_case(ctx)?;
    // Sequential timers in short samples of 100 (0.1 s) over ten times
    // the reps, spread ones (whose density matters) in full 200 ms
    // samples over four times the reps: the tails pool every rep.
    let (seq, spread) = ctx.cfg.size((5, 20), (20, 500), (100, 5_000));
    late_case(ctx, Pattern::Sequential(seq), 10)?;
    late_case(ctx, Pattern::Spread(spread), 4)
}

fn arm_case(ctx: &mut Ctx<'_>, k: usize) -> io::Result<()> {
    let base = Instant::now() + Duration::from_secs(3600);
    let hour = Duration::from_secs(3600);
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ k as u64);
    let pending: Vec<Instant> = (0..k).map(|_| base + rng.within(hour)).collect();
    let seq: Vec<Instant> = (0..100_000).map(|_| base + rng.within(hour)).collect();
    let only = ctx.cfg.contender.clone();
    let mut skipped = false;
    let mut cs: Vec<(&'static str, Box<dyn ArmCancel>, f64)> = Vec::new();
    for (name, make) in arm_contenders() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        // calloop finds a free source slot by a linear scan, so inserting
        // K timers costs O(K²): ~4 s for 10^5, ~6 min for 10^6.
        if k > CALLOOP_MAX_K && name.starts_with("calloop") {
            skipped = true;
            continue;
        }
        // What the K pending timers hold, from the allocator (the loop or
        // runtime itself included: under 1 B per timer at K = 10^6).
        let before = malloc_in_use();
        let c = make(&pending)?;
        let bytes = malloc_in_use().saturating_sub(before) as f64 / k.max(1) as f64;
        cs.push((name, c, bytes));
    }
    drop(pending);
    let max_ops = ctx.cfg.size(256, 20_000, 200_000);
    let budget = Duration::from_millis(ctx.cfg.size(5, 50, 250));
    let seq = &seq;
    let entries: Vec<Entry<'_>> = cs
        .iter_mut()
        .map(|(name, c, bytes)| {
            let bytes = *bytes;
            entry(*name, Role::of(name, ""), move || {
                let (ns, ops) = arm_sample(c.as_mut(), seq, max_ops, budget)?;
                Ok(Measured {
                    value: ns,
                    ops: ops as u64,
                    extra: vec![("memory/timer", "B", bytes)],
                })
            })
        })
        .collect();
    let mut note = format!(
        "Each sample arms and cancels timers at pseudo-random deadlines within the hour (the \
         same sequence for everyone) until {max_ops} ops or {} ms; the loops never run. memory/timer: bytes the allocator handed out while the K \
         timers were armed (`mallinfo2`, chunk headers included), per timer; the loop or \
         runtime's own allocations are included, so read it at large K.",
        budget.as_millis()
    );
    if skipped {
        note.push_str(&format!(
            " calloop is left out at K > {CALLOOP_MAX_K}: inserting K sources is O(K²) there \
             (a linear free-slot scan)."
        ));
    }
    let case = Case::time(format!("arm + cancel, K = {k} pending"), "time/op").note(note);
    ctx.run_case("timers", case, entries)
}

fn late_case(ctx: &mut Ctx<'_>, pat: Pattern, rep_factor: usize) -> io::Result<()> {
    let (title, note) = match pat {
        Pattern::Sequential(n) => (
            format!("lateness, sequential 1 ms timers, {n} per rep"),
            "Per sample: n one-shot timers of 1 ms, each armed when the previous one fired; \
             lateness = clock in the callback − deadline. The floor is a blocking read on a \
             bare timerfd; the reference beside it waits for the same timerfd in epoll_wait \
             (what epoll adds, before any loop). Short samples, many reps: the tail figures \
             pool every timed rep.",
        ),
        Pattern::Spread(n) => (
            format!("lateness, {n} timers spread over 200 ms"),
            "Per sample: n timers at pseudo-random deadlines in the next 200 ms (the same \
             ones for every contender), all armed at once. The floor is one bare timerfd \
             armed at each deadline in order, then a blocking read; the reference waits for \
             it in epoll_wait instead. The tail figures pool every timed rep.",
        ),
    };
    let contenders = late_contenders();
    // Every run's lateness, per contender, for the figures pooled over all
    // timed repetitions.
    let pools: Rc<RefCell<Vec<Vec<Late>>>> =
        Rc::new(RefCell::new(vec![Vec::new(); contenders.len()]));
    let mut roles = Vec::with_capacity(contenders.len());
    let entries: Vec<Entry<'_>> = contenders
        .iter()
        .enumerate()
        .map(|(i, &(name, f))| {
            let mut rep = 0u64;
            let role = if name == EPOLL_FLOOR {
                Role::Reference
            } else {
                Role::of(name, FLOOR)
            };
            roles.push(role);
            let pools = pools.clone();
            entry(name, role, move || {
                // The same deadlines for every contender's k-th run.
                rep += 1;
                let late = f(pat, 0x5eed + rep)?;
                let s = late_stats(late.clone());
                if let Some(pool) = pools.borrow_mut().get_mut(i) {
                    pool.push(late);
                }
                Ok(Measured {
                    value: s.p50,
                    ops: s.n as u64,
                    extra: Vec::new(),
                })
            })
        })
        .collect();
    let case = Case::time(title.clone(), "p50 lateness")
        .note(note)
        .reps_times(rep_factor);
    let reps = case.reps(ctx.cfg);
    ctx.run_case("timers", case, entries)?;
    let pools = pools.take();
    pooled_lateness(ctx, &title, reps, &contenders, &roles, pools);
    Ok(())
}

/// The tail of the lateness, over every timed repetition at once (the
/// warm-up run left out): one repetition's p99 is mostly what the host did
/// in that stretch of time, while the repetitions interleave the
/// contenders, so pooling them compares every contender over the same
/// stretches. Added to the report (metrics "… , reps pooled") and printed
/// as a table with the p99's ratios to the floor's and the reference's.
fn pooled_lateness(
    ctx: &mut Ctx<'_>,
    title: &str,
    reps: usize,
    contenders: &[(&'static str, LateFn)],
    roles: &[Role],
    pools: Vec<Vec<Late>>,
) {
    let stats: Vec<Option<LateStats>> = pools
        .iter()
        .map(|runs| {
            let timed = runs.get(runs.len().saturating_sub(reps)..)?;
            let all: Late = timed.concat();
            (!all.is_empty()).then(|| late_stats(all))
        })
        .collect();
    let p99_of = |name: &str| {
        contenders
            .iter()
            .zip(&stats)
            .find(|((n, _), _)| *n == name)
            .and_then(|(_, s)| s.map(|s| s.p99))
    };
    let (floor, reference) = (p99_of(FLOOR), p99_of(EPOLL_FLOOR));
    let ratio = |v: f64, of: Option<f64>| match of {
        Some(o) if o > 0.0 => format!("{:.2}", v / o),
        _ => "–".to_string(),
    };
    let us = |ns: f64| format!("{:.1} µs", ns / 1000.0);
    println!("{title}, all {reps} timed reps pooled:\n");
    println!(
        "| contender | timers | p50 | p99 | p99.9 | max | early | p99 × floor | p99 × reference |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (((name, _), role), s) in contenders.iter().zip(roles).zip(&stats) {
        let Some(s) = *s else {
            continue;
        };
        for (metric, unit, v) in [
            ("p99, reps pooled", "ns", s.p99),
            ("p99.9, reps pooled", "ns", s.p999),
            ("max, reps pooled", "ns", s.max),
            ("early, reps pooled", "timers", s.early as f64),
        ] {
            ctx.report.add(
                "timers",
                title,
                name,
                *role,
                metric,
                unit,
                Better::Lower,
                &[v],
            );
        }
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.n,
            us(s.p50),
            us(s.p99),
            us(s.p999),
            us(s.max),
            s.early,
            ratio(s.p99, floor),
            ratio(s.p99, reference)
        );
    }
    println!();
}
