//! [`LoopHandle`]: the loop's cloneable handle for callbacks.

use std::fmt;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::registration::Bound;
use super::shared::Shared;
use super::slab::Kind;
use super::source::{Action, Source, SourceId};
use super::timers::Clock;
use super::wake::Remote;
use crate::error::{Error, Result};

/// A cloneable handle to an [`EventLoop`](crate::EventLoop), for use inside callbacks (or
/// anywhere on the loop's thread): insert, remove, enable, disable, stop.
///
/// Not `Send`: it lives on the loop's thread. From other threads use a
/// [`Remote`].
///
/// # Examples
///
/// ```
/// use fdloop::{Action, EventLoop};
///
/// let mut ev: EventLoop<Vec<&str>> = EventLoop::new()?;
/// let handle = ev.handle();
/// ev.handle().defer(move |log| {
///     log.push("first");
///     // Schedule more work from inside a callback.
///     handle.defer(|log| log.push("second")).unwrap();
/// })?;
/// let mut log = Vec::new();
/// ev.dispatch_pending(&mut log)?;
/// ev.dispatch_pending(&mut log)?;
/// assert_eq!(log, ["first", "second"]);
/// # Ok::<(), fdloop::Error>(())
/// ```
pub struct LoopHandle<S> {
    pub(super) inner: Rc<Shared<S>>,
}

impl<S> Clone for LoopHandle<S> {
    fn clone(&self) -> Self {
        LoopHandle {
            inner: self.inner.clone(),
        }
    }
}

impl<S> fmt::Debug for LoopHandle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("epoll", &self.inner.epoll.as_raw_fd())
            .finish()
    }
}

impl<S: 'static> LoopHandle<S> {
    /// Inserts `source`; `callback` runs for each of its events with the
    /// event, the source's metadata and the loop's state.
    ///
    /// # Errors
    ///
    /// An [`InsertError`] that hands `source` back (the callback is dropped),
    /// so the caller can retry, insert it elsewhere, or close it properly.
    /// Its [`error`](InsertError::error) is [`Error::Io`] if the source's
    /// descriptors cannot join the epoll set (`EPERM` for regular files,
    /// `EEXIST` if already in this loop, `ENOSPC`/`ENOMEM`), [`Error::Forked`]
    /// in a forked child, or [`Error::TooManySources`]. Nothing stays
    /// registered: a source that added some descriptors before one failed
    /// has them deleted again. `?` converts an `InsertError` into an
    /// [`Error`] or an `io::Error`, dropping the source.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Action, EventLoop, Ping};
    /// let mut ev: EventLoop<()> = EventLoop::new()?;
    /// let (_h, ping) = Ping::new()?;
    /// let id = ev.handle().insert(ping, |(), _, _| Action::Continue)?;
    /// ev.remove(id)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert<Src, F>(&self, source: Src, callback: F) -> Result<SourceId, InsertError<Src>>
    where
        Src: Source + 'static,
        F: FnMut(Src::Event, &mut Src::Metadata, &mut S) -> Action + 'static,
    {
        self.inner
            .add_fd(Bound { source, callback })
            .map_err(|(bound, error)| InsertError {
                inserted: bound.source,
                error,
            })
    }

    /// Inserts `source` with a [priority](LoopHandle::set_priority) set from
    /// the start; otherwise as [`insert`](LoopHandle::insert).
    ///
    /// # Errors
    ///
    /// As [`insert`](LoopHandle::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Action, EventLoop, Ping};
    /// let mut ev: EventLoop<()> = EventLoop::new()?;
    /// let (_h, ping) = Ping::new()?;
    /// let id = ev.handle().insert_with_priority(ping, -10, |(), _, _| Action::Continue)?;
    /// assert_eq!(ev.handle().priority(id)?, -10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert_with_priority<Src, F>(
        &self,
        source: Src,
        priority: i32,
        callback: F,
    ) -> Result<SourceId, InsertError<Src>>
    where
        Src: Source + 'static,
        F: FnMut(Src::Event, &mut Src::Metadata, &mut S) -> Action + 'static,
    {
        let id = self.insert(source, callback)?;
        self.inner.slab.borrow_mut().set_prio(id.slot, priority);
        Ok(id)
    }

    /// Sets a source's priority: lower runs first, 0 is the default (as in
    /// sd-event and GLib). Takes effect from the next batch.
    ///
    /// Within one iteration, the sources found ready — descriptors, and
    /// timers that are due — are dispatched in priority order; equal
    /// priorities keep the order in which epoll reported them (due timers
    /// after the descriptors of their priority, in deadline order). The
    /// order is per iteration: a level-triggered source that stays ready
    /// is reported again by every iteration and runs every time, ahead of
    /// lower-priority sources but never instead of them — priority decides
    /// who goes first, not who goes at all (to hold a busy source back, see
    /// [`set_rate_limit`](LoopHandle::set_rate_limit) and the sources'
    /// batch limits). Deferred calls still run at the start of an
    /// iteration and idle callbacks only when nothing was ready, whatever
    /// their priority; without timerfds
    /// ([`FDLOOP_FORCE_NO_TIMERFD`](crate::FORCE_NO_TIMERFD_ENV)), timers
    /// run after the batch.
    ///
    /// While every source has priority 0 no ordering is done at all; once
    /// one has another, each batch costs one integer sort of its events.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`] if `id` is not live.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Action, EventLoop, Ping};
    /// let mut ev: EventLoop<Vec<&str>> = EventLoop::new()?;
    /// let (ha, a) = Ping::new()?;
    /// let (hb, b) = Ping::new()?;
    /// ev.insert(a, |(), _, log: &mut Vec<&str>| { log.push("a"); Action::Continue })?;
    /// let urgent = ev.insert(b, |(), _, log: &mut Vec<&str>| { log.push("b"); Action::Continue })?;
    /// ev.handle().set_priority(urgent, -1)?;
    /// ha.ping()?;
    /// hb.ping()?;
    /// let mut log = Vec::new();
    /// ev.dispatch_pending(&mut log)?;
    /// assert_eq!(log, ["b", "a"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_priority(&self, id: SourceId, priority: i32) -> Result<()> {
        let mut slab = self.inner.slab.borrow_mut();
        slab.get(id).ok_or(Error::NoSuchSource(id))?;
        slab.set_prio(id.slot, priority);
        Ok(())
    }

    /// A source's priority (see [`set_priority`](LoopHandle::set_priority)).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`] if `id` is not live.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let id = ev.handle().defer(|_| {})?;
    /// assert_eq!(ev.handle().priority(id)?, 0);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn priority(&self, id: SourceId) -> Result<i32> {
        let mut slab = self.inner.slab.borrow_mut();
        slab.get(id).ok_or(Error::NoSuchSource(id))?;
        Ok(slab.prio_of(id.slot))
    }

    /// Removes a source: its descriptors leave the epoll set, then it is
    /// dropped (closing what it owns). Safe from inside any callback,
    /// including the source's own (it is removed when the callback returns).
    /// An event already fetched for it is not delivered.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`] if `id` is not live; [`Error::Io`] if
    /// `EPOLL_CTL_DEL` failed with something other than `ENOENT`/`EBADF`
    /// (the source is removed and dropped all the same).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let id = ev.handle().defer(|_| unreachable!("removed before it ran"))?;
    /// ev.handle().remove(id)?;
    /// ev.dispatch_pending(&mut ())?;
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn remove(&self, id: SourceId) -> Result<()> {
        self.inner.remove(id)
    }

    /// Re-enables a disabled source (its descriptors rejoin the epoll set).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`]; [`Error::Io`] if registration fails (the
    /// source stays disabled, none of its descriptors left in the epoll
    /// set, so a later `enable` can succeed).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<u32> = fdloop::EventLoop::new()?;
    /// let id = ev.handle().defer(|n| *n += 1)?;
    /// ev.disable(id)?;
    /// let mut n = 0;
    /// ev.dispatch_pending(&mut n)?;
    /// assert_eq!(n, 0);
    /// ev.enable(id)?;
    /// ev.dispatch_pending(&mut n)?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn enable(&self, id: SourceId) -> Result<()> {
        self.inner.forget_pause(id);
        self.inner.set_enabled(id, true)
    }

    /// Disables a source without removing it: its descriptors leave the
    /// epoll set, and an event already fetched for it is not delivered.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`]; [`Error::Io`] if `EPOLL_CTL_DEL` fails.
    ///
    /// # Examples
    ///
    /// See [`enable`](crate::LoopHandle::enable).
    pub fn disable(&self, id: SourceId) -> Result<()> {
        self.inner.forget_pause(id);
        self.inner.set_enabled(id, false)
    }

    /// Disables a source for `d`, then enables it again by itself: the way
    /// to back off, e.g. a listener whose `accept` failed with `EMFILE`.
    /// [`enable`](LoopHandle::enable) or [`disable`](LoopHandle::disable)
    /// meanwhile cancels the automatic enable; calling this again moves it.
    ///
    /// Needs no new descriptor, so it works when descriptors have run out:
    /// the end of the pause is kept in the loop's timer store, on the
    /// monotonic timerfd the loop already has, or — if it has none and
    /// cannot create one (`EMFILE`, `ENFILE`, `ENOMEM`) — on the epoll
    /// timeout, until a later schedule gets the timerfd.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`]; [`Error::NotApplicable`] for idle and
    /// deferred callbacks; [`Error::Io`] if leaving the epoll set fails (the
    /// source stays enabled, with no pause pending). Never `EMFILE`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use fdloop::{Action, EventLoop, Interest, Io, Mode};
    ///
    /// let mut ev: EventLoop<u32> = EventLoop::new()?;
    /// let (r, mut w) = std::io::pipe()?;
    /// std::io::Write::write_all(&mut w, b"x")?; // readable from now on
    /// let id = ev.insert(Io::new(r, Interest::READABLE, Mode::Level), |_, _, n: &mut u32| {
    ///     *n += 1;
    ///     Action::Continue
    /// })?;
    /// ev.handle().disable_for(id, Duration::from_millis(20))?;
    /// let start = Instant::now();
    /// let mut n = 0;
    /// while n == 0 {
    ///     ev.run_once(&mut n, None)?;
    /// }
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn disable_for(&self, id: SourceId, d: Duration) -> Result<()> {
        let now = crate::sys::timerfd::now_ns(Clock::Monotonic);
        self.inner
            .pause(id, now.saturating_add(super::duration_ns(d)))
    }

    /// Disables a source until `when`, then enables it again by itself;
    /// otherwise as [`disable_for`](LoopHandle::disable_for).
    ///
    /// # Errors
    ///
    /// As [`disable_for`](LoopHandle::disable_for).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use fdloop::{Action, EventLoop, Ping};
    /// let mut ev: EventLoop<()> = EventLoop::new()?;
    /// let (_h, ping) = Ping::new()?;
    /// let id = ev.insert(ping, |(), _, _| Action::Continue)?;
    /// ev.handle().disable_until(id, Instant::now() + Duration::from_secs(1))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn disable_until(&self, id: SourceId, when: Instant) -> Result<()> {
        self.inner
            .pause(id, super::instant_to_ns(Clock::Monotonic, when))
    }

    /// Limits how often a source is dispatched: after `burst` dispatches
    /// within `interval`, it is held back — out of the epoll set, its
    /// events left waiting — until the interval ends, then resumes by
    /// itself (as sd-event's `sd_event_source_set_ratelimit`). The
    /// interval starts at the first dispatch after the source was last
    /// held back (or limited). A dispatch is one call of the source for
    /// one readiness, however many callbacks it runs (a channel receiver
    /// delivers up to its batch limit of messages in one).
    ///
    /// Holding back is separate from disabling: a source disabled and
    /// enabled again while held back stays held until the interval ends,
    /// then resumes; one disabled meanwhile stays disabled. An interval that
    /// ends during a long callback ends it: the source is not held. Setting
    /// a new limit (or [`clear_rate_limit`](LoopHandle::clear_rate_limit))
    /// lets a held source go at once. Like
    /// [`disable_for`](LoopHandle::disable_for), it needs no new
    /// descriptor.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`]; [`Error::NotApplicable`] for idle and
    /// deferred callbacks; [`Error::Io`] if a held source could not rejoin
    /// the epoll set.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use fdloop::{Action, EventLoop, Interest, Io, Mode};
    ///
    /// let mut ev: EventLoop<u32> = EventLoop::new()?;
    /// let (r, mut w) = std::io::pipe()?;
    /// std::io::Write::write_all(&mut w, b"x")?; // ready on every iteration
    /// let id = ev.insert(Io::new(r, Interest::READABLE, Mode::Level), |_, _, n: &mut u32| {
    ///     *n += 1;
    ///     Action::Continue
    /// })?;
    /// ev.handle().set_rate_limit(id, Duration::from_millis(50), 3)?;
    /// let mut n = 0;
    /// let start = Instant::now();
    /// while start.elapsed() < Duration::from_millis(120) {
    ///     ev.run_once(&mut n, Some(Duration::from_millis(5)))?;
    /// }
    /// assert!((3..=9).contains(&n), "{n}"); // 3 per 50 ms window
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_rate_limit(&self, id: SourceId, interval: Duration, burst: u32) -> Result<()> {
        self.inner.set_rate_limit(id, Some((interval, burst)), None)
    }

    /// [`set_rate_limit`](LoopHandle::set_rate_limit), with a callback told
    /// when the source enters (`true`) and leaves (`false`) the limited
    /// state: it runs on the loop thread, right after the dispatch that
    /// reached the limit, and when the interval ends (the source is back in
    /// the epoll set by then).
    ///
    /// # Errors
    ///
    /// As [`set_rate_limit`](LoopHandle::set_rate_limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::{Action, EventLoop, Ping};
    /// let mut ev: EventLoop<Vec<bool>> = EventLoop::new()?;
    /// let (_h, ping) = Ping::new()?;
    /// let id = ev.insert(ping, |(), _, _| Action::Continue)?;
    /// ev.handle().set_rate_limit_with(id, Duration::from_secs(1), 100, |_id, limited, log: &mut Vec<bool>| {
    ///     log.push(limited);
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_rate_limit_with(
        &self,
        id: SourceId,
        interval: Duration,
        burst: u32,
        on_change: impl FnMut(SourceId, bool, &mut S) + 'static,
    ) -> Result<()> {
        self.inner
            .set_rate_limit(id, Some((interval, burst)), Some(Box::new(on_change)))
    }

    /// Removes a source's rate limit; a source held back by it resumes at
    /// once.
    ///
    /// # Errors
    ///
    /// As [`set_rate_limit`](LoopHandle::set_rate_limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::{Action, EventLoop, Ping};
    /// let mut ev: EventLoop<()> = EventLoop::new()?;
    /// let (_h, ping) = Ping::new()?;
    /// let id = ev.insert(ping, |(), _, _| Action::Continue)?;
    /// ev.handle().set_rate_limit(id, Duration::from_secs(1), 10)?;
    /// ev.handle().clear_rate_limit(id)?;
    /// assert!(!ev.handle().is_rate_limited(id)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear_rate_limit(&self, id: SourceId) -> Result<()> {
        self.inner.set_rate_limit(id, None, None)
    }

    /// Whether a source is held back by its rate limit now.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`]; [`Error::NotApplicable`] for idle and
    /// deferred callbacks.
    ///
    /// # Examples
    ///
    /// See [`clear_rate_limit`](LoopHandle::clear_rate_limit).
    pub fn is_rate_limited(&self, id: SourceId) -> Result<bool> {
        self.inner.is_rate_limited(id)
    }

    /// Moves the deadline of the pending [`Timer`](crate::Timer) or
    /// [`call_at`](LoopHandle::call_at) call `id` to
    /// `when`, keeping its clock, slack and period (a periodic timer's
    /// grid restarts from the new deadline). The cheap way to push back an
    /// idle timeout on every request: O(log n) in the timer store, no
    /// allocation, and no system call (the timerfd is re-armed only if the
    /// loop's earliest deadline moves earlier). The timer fires at most
    /// once, at its new deadline; a deadline in the past fires on the next
    /// iteration.
    ///
    /// Returns `Ok(false)`, moving nothing, if `id` is not a pending timer:
    /// a disabled timer, one already due (taken for dispatch in this
    /// iteration: its callback runs), one whose callback is running (use
    /// its [`TimerCtl`](crate::TimerCtl) there), or another kind of source.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`] if `id` was removed; [`Error::Forked`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use fdloop::{Action, EventLoop, Timer};
    ///
    /// let mut ev: EventLoop<bool> = EventLoop::new()?;
    /// let idle = Duration::from_secs(30);
    /// let id = ev.insert(Timer::after(idle), |_, _, closed: &mut bool| {
    ///     *closed = true; // the connection was idle for 30 s
    ///     Action::Continue
    /// })?;
    /// // A request arrived: push the idle timeout back.
    /// assert!(ev.handle().reschedule_timer_at(id, Instant::now() + idle)?);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn reschedule_timer_at(&self, id: SourceId, when: Instant) -> Result<bool> {
        self.move_timer(id, |clock| super::instant_to_ns(clock, when))
    }

    /// Moves the deadline of the pending [`Timer`](crate::Timer) `id` to
    /// `d` from now on the timer's own clock; otherwise as
    /// [`reschedule_timer_at`](LoopHandle::reschedule_timer_at) (which see
    /// for the return value).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`] if `id` was removed; [`Error::Forked`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::{Action, EventLoop, Timer};
    ///
    /// let mut ev: EventLoop<u32> = EventLoop::new()?;
    /// let id = ev.insert(Timer::after(Duration::from_secs(3600)), |_, _, n: &mut u32| {
    ///     *n += 1;
    ///     Action::Continue
    /// })?;
    /// // Due in 1 ms instead of an hour.
    /// assert!(ev.handle().reschedule_timer_after(id, Duration::from_millis(1))?);
    /// let mut n = 0;
    /// while n == 0 {
    ///     ev.run_once(&mut n, None)?;
    /// }
    /// // It fired (a one-shot leaves the loop): nothing left to move.
    /// assert!(ev.is_empty());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn reschedule_timer_after(&self, id: SourceId, d: Duration) -> Result<bool> {
        self.move_timer(id, |clock| {
            crate::sys::timerfd::now_ns(clock).saturating_add(super::duration_ns(d))
        })
    }

    fn move_timer(&self, id: SourceId, at: impl FnOnce(Clock) -> u64) -> Result<bool> {
        self.inner.check_fork()?;
        let reg_gen = {
            let mut slab = self.inner.slab.borrow_mut();
            slab.get(id).ok_or(Error::NoSuchSource(id))?.reg_gen
        };
        Ok(self
            .inner
            .timers
            .borrow_mut()
            .move_deadline(id.slot, reg_gen, at))
    }

    /// Runs `callback` each time the loop is about to block (after all
    /// pending work, before `epoll_wait` with a non-zero timeout), until it
    /// returns [`Action::Remove`]. Like Redis's `beforeSleep`: flush
    /// buffers, publish statistics.
    ///
    /// # Errors
    ///
    /// [`Error::Forked`] in a forked child; [`Error::TooManySources`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::Action;
    /// let mut ev: fdloop::EventLoop<u32> = fdloop::EventLoop::new()?;
    /// ev.handle().insert_idle(|n| { *n += 1; Action::Continue })?;
    /// let mut n = 0;
    /// ev.run_once(&mut n, Some(Duration::from_micros(10)))?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn insert_idle(
        &self,
        callback: impl FnMut(&mut S) -> Action + 'static,
    ) -> Result<SourceId> {
        self.inner.add_callback(Kind::Idle(Box::new(callback)))
    }

    /// Runs `callback` once, at the start of the next iteration (the loop
    /// does not block while deferred calls wait).
    ///
    /// # Errors
    ///
    /// [`Error::Forked`] in a forked child; [`Error::TooManySources`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<u32> = fdloop::EventLoop::new()?;
    /// ev.handle().defer(|n| *n = 7)?;
    /// let mut n = 0;
    /// assert_eq!(ev.dispatch_pending(&mut n)?, 1);
    /// assert_eq!(n, 7);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn defer(&self, callback: impl FnOnce(&mut S) + 'static) -> Result<SourceId> {
        self.inner.add_callback(Kind::Defer(Box::new(callback)))
    }

    /// Runs `callback` once, at `when` (on the monotonic clock, the clock
    /// of [`Instant`]): a one-shot timeout without a [`Timer`](crate::Timer)
    /// source. Cancel it with [`remove`](LoopHandle::remove) (the closure
    /// is dropped then), move it with
    /// [`reschedule_timer_at`](LoopHandle::reschedule_timer_at); it leaves
    /// the loop when it runs. A deadline in the past runs on the next
    /// iteration.
    ///
    /// It shares the loop's monotonic timerfd and timer heap with `Timer`,
    /// so it fires as precisely (never early, no slack), in deadline
    /// order with the timers. What it saves is the source: no dispatcher,
    /// no registration, no [`TimerCtl`](crate::TimerCtl), so arming and
    /// cancelling one costs about 60 % of a `Timer`'s insert and
    /// remove (BENCHMARKS.md, "Timers again"). Pick it for timeouts armed
    /// and cancelled at a high rate (one per request) and for running a
    /// closure that moves values in (`FnOnce`). Pick a
    /// [`Timer`](crate::Timer) for a periodic timer, slack, the boot-time
    /// or wall clock, a [`TimerEvent`](crate::TimerEvent) with the
    /// expirations, or a rate limit or pause ([`disable_for`](LoopHandle::disable_for),
    /// [`set_rate_limit`](LoopHandle::set_rate_limit) return
    /// [`Error::NotApplicable`] for a call). [`disable`](LoopHandle::disable)
    /// takes a call out of the timer store, keeping its deadline;
    /// [`enable`](LoopHandle::enable) puts it back (running it on the next
    /// iteration if the deadline has passed meanwhile).
    ///
    /// If `callback` panics, the panic propagates out of the loop call
    /// that ran it; the call has left the loop, and other timers due at
    /// the same time run on the next call.
    ///
    /// No system call, except creating the loop's monotonic timerfd the
    /// first time any timer needs it. If that fails with `EMFILE`, `ENFILE`
    /// or `ENOMEM` the call still runs on time, on the `epoll_wait`
    /// timeout, until a later schedule gets the timerfd; with
    /// `ENOSYS`/`EPERM` (no timerfd) the loop uses the epoll timeout for
    /// good. `EINTR` and `EAGAIN` cannot occur.
    ///
    /// # Errors
    ///
    /// [`Error::Forked`] in a forked child; [`Error::TooManySources`];
    /// [`Error::Io`] if the new timerfd cannot join the epoll set for
    /// another reason (`ENOSPC`: the user's epoll watch limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let mut ev: fdloop::EventLoop<Vec<&str>> = fdloop::EventLoop::new()?;
    /// let h = ev.handle();
    /// let reply = String::from("late");
    /// h.call_at(Instant::now() + Duration::from_millis(1), move |log| {
    ///     assert_eq!(reply, "late"); // moved in
    ///     log.push("timeout");
    /// })?;
    /// let never = h.call_at(Instant::now() + Duration::from_millis(1), |log| log.push("cancelled"))?;
    /// h.remove(never)?;
    /// let mut log = Vec::new();
    /// while log.is_empty() {
    ///     ev.run_once(&mut log, None)?;
    /// }
    /// assert_eq!(log, ["timeout"]);
    /// assert!(ev.is_empty());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn call_at(
        &self,
        when: Instant,
        callback: impl FnOnce(&mut S) + 'static,
    ) -> Result<SourceId> {
        let deadline = super::instant_to_ns(Clock::Monotonic, when);
        self.inner.add_timeout(deadline, callback)
    }

    /// Runs `callback` once, `delay` from now: as
    /// [`call_at`](LoopHandle::call_at), which see.
    ///
    /// # Errors
    ///
    /// As [`call_at`](LoopHandle::call_at).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let mut ev: fdloop::EventLoop<Option<Instant>> = fdloop::EventLoop::new()?;
    /// let start = Instant::now();
    /// ev.handle().call_after(Duration::from_millis(2), |at| *at = Some(Instant::now()))?;
    /// let mut at = None;
    /// while at.is_none() {
    ///     ev.run_once(&mut at, None)?;
    /// }
    /// assert!(at.unwrap() >= start + Duration::from_millis(2)); // never early
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn call_after(
        &self,
        delay: Duration,
        callback: impl FnOnce(&mut S) + 'static,
    ) -> Result<SourceId> {
        let now = crate::sys::timerfd::now_ns(Clock::Monotonic);
        self.inner
            .add_timeout(now.saturating_add(super::duration_ns(delay)), callback)
    }

    /// Asks [`EventLoop::run`](crate::EventLoop::run) to return after the current iteration; outside
    /// `run`, makes the current or next [`run_once`](crate::EventLoop::run_once)
    /// (or `dispatch_pending`) return without blocking. Either way the
    /// request is used up by the call it ends: a later call is not affected.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let h = ev.handle();
    /// ev.handle().defer(move |_| h.stop())?;
    /// ev.run(&mut ())?; // returns after the deferred call
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn stop(&self) {
        self.inner.stop.set(true);
    }

    /// This loop, whatever its state type (for `rt`).
    #[cfg(feature = "async")]
    pub(crate) fn reactor(&self) -> Rc<dyn super::hooks::Reactor> {
        self.inner.clone()
    }

    /// A [`Remote`] to wake or stop this loop from other threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let r = ev.handle().remote();
    /// std::thread::spawn(move || r.wake()).join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remote(&self) -> Remote {
        Remote {
            shared: self.inner.wake.clone(),
        }
    }
}

/// Why [`LoopHandle::insert`](crate::LoopHandle::insert) (or [`EventLoop::insert`](crate::EventLoop::insert))
/// failed, with the source handed back.
///
/// Converts into [`Error`] and into `io::Error` (dropping the source), so
/// `?` works where the source is not wanted back. It is `Send`/`Sync` only
/// when the source is: to return it as a `Box<dyn Error + Send + Sync>` (or
/// an `anyhow::Error`) from a source that is not, keep only the error:
/// `.map_err(|e| e.error)?`.
///
/// # Examples
///
/// ```
/// use fdloop::{Action, EventLoop, Io, Interest, Mode};
///
/// let mut ev: EventLoop<()> = EventLoop::new()?;
/// // epoll refuses regular files (EPERM): the file comes back.
/// let file = std::fs::File::open("/proc/self/status")?;
/// let err = ev
///     .insert(Io::new(file, Interest::READABLE, Mode::Level), |_, _, _| Action::Continue)
///     .unwrap_err();
/// assert_eq!(err.error.raw_os_error(), Some(libc::EPERM));
/// let file: std::fs::File = err.inserted.into_inner();
/// drop(file);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub struct InsertError<T> {
    /// The source that was not inserted.
    pub inserted: T,
    /// Why.
    pub error: Error,
}

impl<T> fmt::Debug for InsertError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InsertError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for InsertError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inserting a source: {}", self.error)
    }
}

impl<T> std::error::Error for InsertError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<InsertError<T>> for Error {
    fn from(e: InsertError<T>) -> Error {
        e.error
    }
}

impl<T> From<InsertError<T>> for std::io::Error {
    fn from(e: InsertError<T>) -> std::io::Error {
        e.error.into()
    }
}
