//! Dispatch overhead: what an event loop adds, per ready event, on top of
//! `epoll_wait` itself.
//!
//! The set-up keeps N eventfds readable forever (counter 1, never read) and
//! registers them level-triggered, so every `epoll_wait` reports all of them
//! (up to the buffer size) and every callback does the same trivial
//! [`Work`]. The report's dispatch group (`groups/dispatch.rs`) times the
//! contenders defined here ([`RawEpoll`], the floor, and [`FdloopSet`])
//! against mio, calloop and the C loops.
//!
//! Every function returns `io::Result`; nothing here panics on an OS error.

use std::hint::black_box;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use fdloop::{Action, EventLoop, Interest, Io, Mode};

/// The state every contender's callbacks update: the same work per event
/// everywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Callbacks run.
    pub hits: u64,
    /// Sum of the keys of the sources whose callbacks ran (keeps the key
    /// live, so a callback cannot be reduced to a bare increment).
    pub acc: u64,
}

impl Work {
    /// The per-event work: count the event and fold in the source's key.
    #[inline]
    pub fn record(&mut self, key: u32) {
        self.hits += 1;
        self.acc = self.acc.wrapping_add(u64::from(black_box(key)));
    }
}

/// One way of dispatching the ready eventfds, timed by the bench.
pub trait Contender {
    /// A short name for the table.
    fn name(&self) -> &'static str;

    /// One loop iteration: wait (without blocking) and run the callbacks of
    /// what is ready. Returns the number of callbacks run.
    ///
    /// # Errors
    ///
    /// The loop's own error, turned into `io::Error`.
    fn turn(&mut self, work: &mut Work) -> io::Result<u64>;

    /// At most how many events one [`turn`](Contender::turn) can dispatch
    /// (its event buffer), for the table.
    fn batch(&self) -> usize;
}

/// Makes sure `need` descriptors can be open at once: raises the soft
/// `RLIMIT_NOFILE` up to the hard limit if it is lower. Returns the soft
/// limit in force afterwards.
///
/// # Errors
///
/// `getrlimit`/`setrlimit` failing, or the hard limit being below `need`
/// (`EMFILE`).
pub fn ensure_nofile(need: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= need {
        return Ok(lim.rlim_cur);
    }
    if lim.rlim_max < need {
        return Err(io::Error::other(format!(
            "RLIMIT_NOFILE hard limit {} is below the {need} descriptors needed",
            lim.rlim_max
        )));
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid `rlimit`; raising the soft limit up to the
    // hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

/// `n` non-blocking eventfds whose counter is 1: readable until read, which
/// no contender does. Shared (`Rc`) so that every contender's epoll set can
/// watch the same descriptors (an open file may sit in many epoll sets).
///
/// # Errors
///
/// `eventfd` failing (`EMFILE` past `RLIMIT_NOFILE`; see [`ensure_nofile`]).
pub fn ready_eventfds(n: usize) -> io::Result<Vec<Rc<OwnedFd>>> {
    (0..n)
        .map(|_| crate::pingpong::eventfd(1).map(Rc::new))
        .collect()
}

/// Adds every descriptor of `fds` to `ep` level-triggered for reading,
/// with its index in `fds` as the event's data word.
///
/// # Errors
///
/// `epoll_ctl` failing.
pub fn epoll_add_level(ep: RawFd, fds: &[Rc<OwnedFd>]) -> io::Result<()> {
    for (i, fd) in fds.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: `ev` is a valid `epoll_event` for the call's duration;
        // the kernel copies it and keeps no pointer.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A callback of the hand-written loop: readiness flags and the state.
type RawHandler = Box<dyn FnMut(u32, &mut Work)>;

/// One [`RawHandler`] per descriptor, each recording its index as its key.
fn raw_handlers(n: usize) -> Vec<RawHandler> {
    (0..n as u32)
        .map(|key| -> RawHandler { Box::new(move |_flags, w: &mut Work| w.record(key)) })
        .collect()
}

/// The floor: a hand-written epoll loop, `epoll_wait` into a buffer of N
/// events, then for each event the data word (an index) picks a boxed
/// callback out of a `Vec` and calls it. The least a loop that dispatches
/// to per-source callbacks can do.
pub struct RawEpoll {
    ep: OwnedFd,
    events: Vec<libc::epoll_event>,
    handlers: Vec<RawHandler>,
}

impl RawEpoll {
    /// An epoll set watching `fds` level-triggered, one callback each.
    ///
    /// # Errors
    ///
    /// `epoll_create1` or `epoll_ctl` failing.
    pub fn new(fds: &[Rc<OwnedFd>]) -> io::Result<RawEpoll> {
        // SAFETY: plain system call; no pointers.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `ep` is a fresh descriptor nobody else owns.
        let ep = unsafe { OwnedFd::from_raw_fd(ep) };
        epoll_add_level(ep.as_raw_fd(), fds)?;
        Ok(RawEpoll {
            ep,
            events: Vec::with_capacity(fds.len().max(1)),
            handlers: raw_handlers(fds.len()),
        })
    }
}

impl std::fmt::Debug for RawEpoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEpoll")
            .field("ep", &self.ep)
            .field("handlers", &self.handlers.len())
            .finish()
    }
}

impl Contender for RawEpoll {
    fn name(&self) -> &'static str {
        "raw epoll + Vec<Box<dyn FnMut>> (floor)"
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        let cap = self.events.capacity().min(i32::MAX as usize) as i32;
        // SAFETY: the buffer has room for `cap` events; the kernel writes at
        // most that many and returns how many it wrote.
        let n = unsafe { libc::epoll_wait(self.ep.as_raw_fd(), self.events.as_mut_ptr(), cap, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel initialised the first `n` entries (n <= cap).
        unsafe { self.events.set_len(n as usize) };
        for ev in &self.events {
            let (flags, data) = (ev.events, ev.u64);
            if let Some(h) = self.handlers.get_mut(data as usize) {
                h(flags, work);
            }
        }
        Ok(n as u64)
    }

    fn batch(&self) -> usize {
        self.events.capacity()
    }
}

/// The floor with its system call made inline: `epoll_pwait` through
/// rustix's Linux backend, which puts the `syscall` instruction in the
/// caller (as fdloop makes it), instead of libc's `epoll_wait` wrapper.
/// The same per-event work as [`RawEpoll`]; what differs is the path into
/// the kernel and back.
///
/// # Examples
///
/// ```
/// use fdloop_bench::dispatch::{ready_eventfds, Contender, RawEpollInline, Work};
/// let fds = ready_eventfds(3)?;
/// let mut f = RawEpollInline::new(&fds)?;
/// assert_eq!(f.turn(&mut Work::default())?, 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RawEpollInline {
    ep: OwnedFd,
    events: Vec<rustix::event::epoll::Event>,
    handlers: Vec<RawHandler>,
}

impl RawEpollInline {
    /// An epoll set watching `fds` level-triggered, one callback each.
    ///
    /// # Errors
    ///
    /// `epoll_create1` or `epoll_ctl` failing.
    pub fn new(fds: &[Rc<OwnedFd>]) -> io::Result<RawEpollInline> {
        let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC)?;
        epoll_add_level(ep.as_raw_fd(), fds)?;
        Ok(RawEpollInline {
            ep,
            events: Vec::with_capacity(fds.len().max(1)),
            handlers: raw_handlers(fds.len()),
        })
    }
}

impl std::fmt::Debug for RawEpollInline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEpollInline")
            .field("ep", &self.ep)
            .field("handlers", &self.handlers.len())
            .finish()
    }
}

impl Contender for RawEpollInline {
    fn name(&self) -> &'static str {
        "raw epoll, inline system call + Vec<Box<dyn FnMut>>"
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        self.events.clear();
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let n = rustix::event::epoll::wait(
            &self.ep,
            rustix::buffer::spare_capacity(&mut self.events),
            Some(&zero),
        )?;
        for ev in &self.events {
            // Copied out: the kernel's event struct is packed.
            let (flags, data) = ({ ev.flags }.bits(), { ev.data }.u64());
            if let Some(h) = self.handlers.get_mut(data as usize) {
                h(flags, work);
            }
        }
        Ok(n as u64)
    }

    fn batch(&self) -> usize {
        self.events.capacity()
    }
}

/// How an [`FdloopSet`] runs one iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdloopDrive {
    /// [`EventLoop::dispatch_pending`] (`run_once` with a zero timeout).
    DispatchPending,
    /// [`EventLoop::run_once`] with no timeout (never blocks here, since
    /// events are always ready, but takes the "may block" path: idle
    /// callbacks checked, sleep announced to wakers).
    RunOnceBlocking,
    /// [`RunOnceBlocking`](FdloopDrive::RunOnceBlocking) with
    /// [`EventLoop::set_time_stats`] on: what measuring `Stats::blocked`
    /// and `Stats::in_callbacks` costs.
    RunOnceBlockingTimed,
    /// [`EventLoop::dispatch_pending`] with the sources at four
    /// priorities (-1, 0, 1, 2 in turn): every batch is put in priority
    /// order before dispatch.
    DispatchPendingPriorities,
}

/// fdloop: one [`Io`] source per eventfd (level-triggered, readable), whose
/// callback does the [`Work`] and returns [`Action::Continue`].
#[derive(Debug)]
pub struct FdloopSet {
    ev: EventLoop<Work>,
    drive: FdloopDrive,
}

impl FdloopSet {
    /// A loop holding one `Io` source per descriptor of `fds`.
    ///
    /// # Errors
    ///
    /// Creating the loop or inserting a source failing.
    pub fn new(fds: &[Rc<OwnedFd>], drive: FdloopDrive) -> io::Result<FdloopSet> {
        let mut ev = EventLoop::new().map_err(io::Error::other)?;
        ev.set_time_stats(drive == FdloopDrive::RunOnceBlockingTimed);
        for (i, fd) in fds.iter().enumerate() {
            let key = i as u32;
            let id = ev.insert(
                Io::new(fd.clone(), Interest::READABLE, Mode::Level),
                move |_ready, _io, w: &mut Work| {
                    w.record(key);
                    Action::Continue
                },
            )?;
            if drive == FdloopDrive::DispatchPendingPriorities {
                ev.handle()
                    .set_priority(id, (i % 4) as i32 - 1)
                    .map_err(io::Error::other)?;
            }
        }
        Ok(FdloopSet { ev, drive })
    }
}

impl Contender for FdloopSet {
    fn name(&self) -> &'static str {
        match self.drive {
            FdloopDrive::DispatchPending => "fdloop dispatch_pending",
            FdloopDrive::RunOnceBlocking => "fdloop run_once(None)",
            FdloopDrive::RunOnceBlockingTimed => "fdloop run_once(None), time stats on",
            FdloopDrive::DispatchPendingPriorities => "fdloop dispatch_pending, 4 priorities",
        }
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        let n = match self.drive {
            FdloopDrive::DispatchPending | FdloopDrive::DispatchPendingPriorities => {
                self.ev.dispatch_pending(work)
            }
            FdloopDrive::RunOnceBlocking | FdloopDrive::RunOnceBlockingTimed => {
                self.ev.run_once(work, None)
            }
        };
        n.map(|n| n as u64).map_err(io::Error::other)
    }

    fn batch(&self) -> usize {
        // fdloop sizes its buffer itself: 256 at first, doubled after each
        // full batch up to 16 Ki.
        16 * 1024
    }
}

/// Runs `turns` iterations of `c`, checking that each callback ran exactly
/// once per reported event. Returns the events dispatched.
///
/// # Errors
///
/// The contender's error, or a mismatch between the events it reports and
/// the callbacks that ran (`InvalidData`).
pub fn run_turns(c: &mut dyn Contender, work: &mut Work, turns: u64) -> io::Result<u64> {
    let mut events = 0;
    for _ in 0..turns {
        let before = work.hits;
        let n = c.turn(work)?;
        if work.hits - before != n {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: reported {n} events but ran {} callbacks",
                    c.name(),
                    work.hits - before
                ),
            ));
        }
        events += n;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contender_dispatches_every_fd() {
        let fds = ready_eventfds(300).unwrap();
        let mut cs: Vec<Box<dyn Contender>> = vec![
            Box::new(RawEpoll::new(&fds).unwrap()),
            Box::new(FdloopSet::new(&fds, FdloopDrive::DispatchPending).unwrap()),
            Box::new(FdloopSet::new(&fds, FdloopDrive::RunOnceBlocking).unwrap()),
        ];
        for c in &mut cs {
            let mut w = Work::default();
            // fdloop's buffer starts at 256 and grows after a full batch.
            run_turns(c.as_mut(), &mut w, 3).unwrap();
            let mut w = Work::default();
            let n = run_turns(c.as_mut(), &mut w, 2).unwrap();
            assert_eq!(n, 600, "{}", c.name());
            // Each key 0..300 twice.
            assert_eq!(w.acc, 2 * (0..300u64).sum::<u64>(), "{}", c.name());
        }
    }

    #[test]
    fn nofile_limit_is_enough_for_a_few() {
        assert!(ensure_nofile(64).unwrap() >= 64);
    }
}
