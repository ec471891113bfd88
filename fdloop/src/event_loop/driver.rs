//! The loop thread's half of a loop: the event buffer and the cursor into
//! it, the waiter, the counters, and the iteration that waits for events and
//! dispatches them.

use std::io as stdio;
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rustix::event::epoll::{Event, EventFlags};

use super::awake::{after_wait, mark_awake};
use super::registration::Dispatch;
use super::shared::Shared;
use super::slab::{Call, Entry, Kind, Pending, SlotState};
use super::source::{Action, AfterPanic, Readiness, SourceId};
use super::stats::{Counters, SAMPLE_EVERY};
use super::timers;
use super::token;
use super::waiter::Waiter;
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::timerfd::Clock;
use crate::trace::notable;

/// The loop-thread-only half of an [`EventLoop`](crate::EventLoop): the event buffer and
/// where dispatch got in it, the waiter, the counters. Kept apart from the
/// shared `Shared` so that an iteration borrows both without cloning the
/// `Rc`.
pub(super) struct Driver {
    pub(super) events: Vec<Event>,
    pub(super) cursor: usize,
    pub(super) waiter: Waiter,
    pub(super) stats: Counters,
    /// Sources to dispatch without an epoll event (slot, generation, sub),
    /// and how far dispatch got: timers taken due, and sources whose
    /// callback panicked with events left to deliver
    /// ([`AfterPanic::Redeliver`]); see `dispatch_targets`.
    pub(super) targets: Vec<(u32, u32, u8)>,
    pub(super) target_cursor: usize,
    /// Scratch for the timer store's slot lists.
    pub(super) timer_slots: Vec<u32>,
    /// The clock reading that ended the last batch, while nothing has run
    /// since: inside one [`run`](crate::EventLoop::run) it also starts the next
    /// blocking wait, saving a read. Cleared by every `run_once` (the
    /// caller's own work between calls is not loop time) and whenever
    /// deferred calls, idle callbacks or timers run before the wait.
    pub(super) last_end: Option<u64>,
    /// Zero-timeout batches seen; one in [`SAMPLE_EVERY`] is timed.
    pub(super) untimed: u64,
    /// Whether the durations of [`Stats`](crate::Stats) are measured
    /// ([`EventLoop::set_time_stats`](crate::EventLoop::set_time_stats));
    /// off, the loop reads no clock for them.
    pub(super) timing: bool,
    /// Scratch for putting a batch in priority order (order.rs).
    pub(super) order_keys: Vec<u64>,
    /// The last batch ordered: its data words (as epoll listed them), the
    /// permutation that ordered it (empty: none needed) and the slab's
    /// rank generation then.
    pub(super) order_last: Vec<u64>,
    pub(super) order_perm: Vec<u32>,
    pub(super) order_gen: u64,
    pub(super) order_count: Vec<usize>,
    pub(super) order_tmp: Vec<Event>,
    /// The loop's own wake-ups found due, (slot, registration generation),
    /// not yet handled: pauses and rate limits to end (hold.rs).
    pub(super) wakes: Vec<(u32, u32)>,
    /// Sources that asked to be dispatched again on the next iteration
    /// ([`Registrar::dispatch_again`](crate::Registrar::dispatch_again)):
    /// that iteration only polls, and adds them to its batch.
    pub(super) again: Vec<(u32, u32, u8)>,
}

pub(super) const INITIAL_EVENTS: usize = 256;

pub(super) const MAX_EVENTS: usize = 16 * 1024;

impl Driver {
    /// One iteration. The common case — nothing left over, deferred or
    /// scheduled, and for a wait that could block no idle callback and no
    /// stop request — goes straight to what
    /// [`iterate_full`](Driver::iterate_full) ends with:
    /// [`wait_and_dispatch`](Driver::wait_and_dispatch).
    #[inline]
    pub(super) fn iterate<S>(
        &mut self,
        inner: &Shared<S>,
        state: &mut S,
        timeout: Option<Duration>,
        stay_awake: bool,
    ) -> Result<usize> {
        let full = self.has_leftovers()
            || inner.has_chores()
            || !self.again.is_empty()
            || (timeout != Some(Duration::ZERO)
                && (!inner.idles.borrow().is_empty() || self.stop_pending(inner)));
        let ran = if full {
            self.iterate_full(inner, state, timeout, stay_awake)?
        } else {
            // Timers were idle when the iteration began: none can be due
            // after the batch (one inserted meanwhile is handled by the
            // next iteration, which arms it or bounds its wait).
            self.wait_and_dispatch(inner, state, timeout, stay_awake, false)?
        };
        // Tasks the batch woke or spawned are polled by this iteration
        // (those they wake wait for the next one: see `TaskCall`).
        if inner.tasks_pending() {
            return Ok(ran + inner.run_tasks());
        }
        Ok(ran)
    }

    /// Events or due timers left over from a batch interrupted by a panic
    /// or an error.
    #[inline]
    pub(super) fn has_leftovers(&self) -> bool {
        self.target_cursor < self.targets.len()
            || self.cursor < self.events.len()
            || !self.wakes.is_empty()
    }

    /// The end of every iteration: L3 of the wake protocol (wake.rs) when
    /// about to block, the wait, L1 after it in `run`, and the dispatch.
    #[inline(always)]
    pub(super) fn wait_and_dispatch<S>(
        &mut self,
        inner: &Shared<S>,
        state: &mut S,
        mut timeout: Option<Duration>,
        stay_awake: bool,
        timers: bool,
    ) -> Result<usize> {
        // L3 when the wait may block, or when the loop is marked awake: a
        // wake made before this point (by another thread, or by a deferred
        // or idle callback of this iteration) is seen here and used up by
        // this wait, which then does not block. A zero-timeout wait of a
        // loop not marked awake needs none: the loop counts as asleep, so
        // such wakes wrote the notifier, and this wait drains it.
        let l3 = timeout != Some(Duration::ZERO) || inner.awake_marked.get();
        // With nothing in the epoll set but the notifier, nothing but a
        // wake can end the wait: park on a futex instead (wake.rs,
        // "Parking").
        let park = l3 && timeout != Some(Duration::ZERO) && self.may_park(inner);
        let mut unparked = false;
        let woke_at = if park {
            if inner.wake.prepare_park() {
                let (end, woken) = self.park(inner, timeout)?;
                unparked = woken;
                end
            } else {
                self.wait(inner, Some(Duration::ZERO))?
            }
        } else {
            if l3 && !inner.wake.prepare_sleep() {
                timeout = Some(Duration::ZERO);
            }
            self.wait(inner, timeout)?
        };
        if l3 {
            after_wait(&inner.wake, &inner.awake_marked, stay_awake);
        }
        inner.note_look();
        let mut ran = 0;
        if unparked {
            // As for the notifier's event in a batch (`dispatch_batch`):
            // the wake is used up; awake, so one landing from here on
            // becomes a write when the call ends. Tasks it queued are
            // polled now, on the shortest path from the wake to the poll,
            // as `after_remote_wake` does after the notifier's event (a
            // parked loop has no source to be fair to; its batch is empty).
            // (No `tasks_pending` first: a park is almost always ended by
            // a task's wake, and an executor with nothing queued returns
            // at once.)
            mark_awake(&inner.wake, &inner.awake_marked);
            ran = inner.run_tasks();
        }
        let ran = ran + self.dispatch_batch(inner, state, woke_at)?;
        if timers {
            return self.run_fallback_timers(inner, state, ran);
        }
        Ok(ran)
    }

    pub(super) fn iterate_full<S>(
        &mut self,
        inner: &Shared<S>,
        state: &mut S,
        timeout: Option<Duration>,
        stay_awake: bool,
    ) -> Result<usize> {
        if timeout != Some(Duration::ZERO) {
            // Deferred calls, idle callbacks and timers may run before the
            // wait: wakes meanwhile cost no syscall (L1; the wait's L3 sees
            // them).
            mark_awake(&inner.wake, &inner.awake_marked);
        }
        // Events left over from a batch interrupted by a panic or an error
        // come first.
        if self.has_leftovers() {
            self.run_wakes(inner, state)?;
            let ran = self.dispatch_targets(inner, state)?;
            return Ok(ran + self.dispatch_batch(inner, state, None)?);
        }
        let mut ran = self.run_defers(inner, state);
        let mut timeout = timeout;
        if ran > 0 || self.stop_pending(inner) || !self.again.is_empty() {
            timeout = Some(Duration::ZERO);
        }
        // Tasks queued when this iteration began (those they wake wait for
        // the next one, which does not block: fairness to the sources).
        let polled = inner.run_tasks();
        ran += polled;
        // `run_once` does not block after work, as after deferred calls: a
        // task it polled may have been the last thing its caller was
        // waiting for. `run` goes on to wait unless tasks are queued again
        // (or waiting for this look: `yield_now`) or a stop was asked for.
        if (polled > 0 && (!stay_awake || self.stop_pending(inner))) || inner.tasks_pending() {
            timeout = Some(Duration::ZERO);
        }
        if ran > 0 || !inner.idles.borrow().is_empty() || !inner.timers.borrow().is_idle() {
            // Callbacks (or timer bookkeeping) run before the wait: the
            // last batch's end reading no longer starts it.
            self.last_end = None;
        }
        if timeout != Some(Duration::ZERO) && !inner.idles.borrow().is_empty() {
            // Idle callbacks run only when nothing else is ready: look
            // first (the loop stays marked awake, so wakes meanwhile are
            // not lost: the wait's L3, or the call's guard, sees them).
            self.poll(inner)?;
            inner.note_look();
            if !self.events.is_empty() {
                let n = self.dispatch_batch(inner, state, None)?;
                return self.run_fallback_timers(inner, state, ran + n);
            }
            self.run_idles(inner, state)?;
            // Tasks an idle callback queued made no wake (the loop is in a
            // call, `TaskCall`): do not block on them.
            if self.stop_pending(inner)
                || !inner.defers.borrow().is_empty()
                || inner.tasks_pending()
            {
                timeout = Some(Duration::ZERO);
            }
        }
        let clock_set = {
            let mut timers = inner.timers.borrow_mut();
            if timers.is_idle() {
                false
            } else {
                timers.arm().map_err(|e| Error::io("arming a timerfd", e))?;
                if let Some(t) = timers.fallback_timeout() {
                    timeout = Some(timeout.map_or(t, |u| u.min(t)));
                }
                timers.take_clock_set()
            }
        };
        if clock_set {
            ran += self.run_timers(inner, Clock::Realtime, true, state)?;
            timeout = Some(Duration::ZERO);
        }
        Ok(ran + self.wait_and_dispatch(inner, state, timeout, stay_awake, true)?)
    }

    /// Without timerfds, timers run after each batch. Returns `ran` plus
    /// the timer callbacks run.
    #[inline(always)]
    pub(super) fn run_fallback_timers<S>(
        &mut self,
        inner: &Shared<S>,
        state: &mut S,
        ran: usize,
    ) -> Result<usize> {
        if inner.timers.borrow().is_fallback() {
            return self.run_all_timers(inner, state, ran);
        }
        Ok(ran)
    }

    /// Runs the timers due on every clock (the epoll-timeout fallback,
    /// where no timerfd event says which clock fired). They do not pass
    /// through a batch's priority order (order.rs) here, so while some
    /// source has a priority they are put in it, keeping deadline order
    /// among equal priorities.
    #[inline(never)]
    pub(super) fn run_all_timers<S>(
        &mut self,
        inner: &Shared<S>,
        state: &mut S,
        ran: usize,
    ) -> Result<usize> {
        let first = self.targets.len();
        for clock in [Clock::Monotonic, Clock::Boottime, Clock::Realtime] {
            self.take_due_timers(inner, clock, false);
        }
        let slab = inner.slab.borrow();
        if slab.prioritized > 0 {
            if let Some(new) = self.targets.get_mut(first..) {
                new.sort_by_key(|&(slot, _, _)| slab.prio_of(slot));
            }
        }
        drop(slab);
        self.run_wakes(inner, state)?;
        Ok(ran + self.dispatch_targets(inner, state)?)
    }

    /// Runs the timers of `clock` that are due (and, when the clock was
    /// set, tells every realtime timer).
    pub(super) fn run_timers<S>(
        &mut self,
        inner: &Shared<S>,
        clock: Clock,
        clock_set: bool,
        state: &mut S,
    ) -> Result<usize> {
        self.take_due_timers(inner, clock, clock_set);
        self.run_wakes(inner, state)?;
        self.dispatch_targets(inner, state)
    }

    /// Takes the timers of `clock` that are due out of the store: the
    /// loop's own wake-ups into `wakes`, the rest into `targets` (and,
    /// when the clock was set, a notice for every realtime timer).
    fn take_due_timers<S>(&mut self, inner: &Shared<S>, clock: Clock, clock_set: bool) {
        // Scratch buffers live in the loop, so firing timers allocates
        // nothing once they have grown.
        let mut slots = std::mem::take(&mut self.timer_slots);
        let mut timers = inner.timers.borrow_mut();
        // Pair each slot with the registration it was scheduled under,
        // before any callback runs: a callback may remove a due timer and a
        // new source may take its slot; that source must not get the old
        // timer's event (dispatch drops a token whose generation is not the
        // slot's current one).
        slots.clear();
        timers.take_due(clock, sys::timerfd::now_ns(clock), &mut slots);
        let due = timers::SUB_DUE;
        for &s in &slots {
            if timers.is_wake(s) {
                self.wakes.push((s, timers.reg_gen_of(s)));
            } else {
                self.targets.push((s, timers.reg_gen_of(s), due));
            }
        }
        if clock_set {
            slots.clear();
            timers.realtime_slots(&mut slots);
            let set = timers::SUB_CLOCK_SET;
            self.targets
                .extend(slots.iter().map(|&s| (s, timers.reg_gen_of(s), set)));
        }
        drop(timers);
        self.timer_slots = slots;
    }

    /// Dispatches the targets: timers taken due, sources to redeliver.
    /// Timers have left the timer store, so if a callback panics or a
    /// source fails, the rest stay here and the next `run_once` dispatches
    /// them first — none is lost.
    pub(super) fn dispatch_targets<S>(
        &mut self,
        inner: &Shared<S>,
        state: &mut S,
    ) -> Result<usize> {
        let mut ran = 0;
        while let Some(&(slot, reg_gen, sub)) = self.targets.get(self.target_cursor) {
            self.target_cursor += 1;
            let data = token::encode(slot, reg_gen, sub);
            let (targets, again) = (&mut self.targets, &mut self.again);
            if Self::dispatch_one(targets, again, inner, EventFlags::empty(), data, state)? {
                ran += 1;
            }
        }
        self.targets.clear();
        self.target_cursor = 0;
        Ok(ran)
    }

    pub(super) fn stop_pending<S>(&self, inner: &Shared<S>) -> bool {
        inner.stop.get() || inner.wake.stop.load(crate::sync::Ordering::Acquire)
    }

    /// Waits for events. Returns the (coarse) clock reading taken after the
    /// wait, if one was taken: only waits that could block are timed, and
    /// only while [`timing`](Driver::timing) is on, so `dispatch_pending`
    /// reads no clock when nothing is ready.
    #[inline(always)]
    pub(super) fn wait<S>(
        &mut self,
        inner: &Shared<S>,
        timeout: Option<Duration>,
    ) -> Result<Option<u64>> {
        if timeout == Some(Duration::ZERO) {
            self.poll(inner)?;
            return Ok(None);
        }
        let timing = self.timing;
        let start = self.block_start();
        // The deadline needs the precise clock (never early); statistics
        // make do with the coarse one. Without a timeout there is none, and
        // only EINTR makes the wait start again.
        let deadline = match timeout {
            Some(t) => Instant::now().checked_add(t),
            None => None,
        };
        let mut remaining = timeout;
        self.cursor = 0;
        let n = loop {
            match self
                .waiter
                .wait(inner.epoll.as_fd(), &mut self.events, remaining)
            {
                Ok(0) if deadline.is_some_and(|d| Instant::now() < d) => {}
                Ok(n) => break n,
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.events.clear();
                    if timing {
                        self.stats.add_blocked(start, sys::timerfd::coarse_ns());
                    }
                    return Err(Error::io("epoll_wait", e));
                }
            }
            // Interrupted or early: wait again for the time left.
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    self.events.clear();
                    break 0;
                }
                remaining = Some(d - now);
            }
        };
        self.take_again();
        let end = self.block_end(start);
        // The internal timer firing is the timeout, not a wake-up: a batch
        // is a wake-up unless it is that event alone.
        let woken = match self.events.as_slice() {
            [] => false,
            [only] => sys::epoll::parts(only).1 != token::TIMER,
            _ => true,
        };
        if woken {
            self.stats.wakeups += 1;
        }
        self.grow_if_full(n);
        Ok(end)
    }

    /// Statistics: when a wait that may block began (the last batch's
    /// end, or now), while [`timing`](Driver::timing) is on; 0 otherwise.
    #[inline(always)]
    fn block_start(&mut self) -> u64 {
        match self.last_end.take() {
            Some(t) => t,
            None if self.timing => sys::timerfd::coarse_ns(),
            None => 0,
        }
    }

    /// Statistics: the wait begun at `start` ended. Returns the clock
    /// reading while timing is on.
    #[inline(always)]
    fn block_end(&mut self, start: u64) -> Option<u64> {
        if !self.timing {
            return None;
        }
        let end = sys::timerfd::coarse_ns();
        self.stats.add_blocked(start, end);
        Some(end)
    }

    /// Whether a wait may park on the wake futex instead of `epoll_wait`:
    /// no source of any kind (no descriptor, timer, signal, child, I/O
    /// registration: every one holds a slot), no timer scheduled, no
    /// leftover batch and no source to dispatch again. Then only the
    /// notifier is in the epoll set, and only a wake can end the wait.
    #[inline]
    fn may_park<S>(&self, inner: &Shared<S>) -> bool {
        // The slab first: a loop with sources (the common case) stops at
        // one load.
        inner.slab.try_borrow().is_ok_and(|s| s.live == 0)
            && inner.timers.try_borrow().is_ok_and(|t| t.is_idle())
            && self.again.is_empty()
            && !self.has_leftovers()
    }

    /// [`wait`](Driver::wait) for a loop that [`may_park`](Driver::may_park)
    /// and whose L3 parked it: sleeps on the wake futex until a wake, the
    /// timeout, or an error. `EINTR`, `EAGAIN` and early returns wait again
    /// for the time left. The batch is empty. Returns the clock reading as
    /// `wait` does, and whether a wake ended the park.
    #[cold]
    #[inline(never)]
    fn park<S>(
        &mut self,
        inner: &Shared<S>,
        timeout: Option<Duration>,
    ) -> Result<(Option<u64>, bool)> {
        let start = self.block_start();
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut remaining = timeout;
        self.cursor = 0;
        self.events.clear();
        let woken = loop {
            if let Err(e) = inner.wake.park_wait(remaining) {
                // Only a broken futex word could fail (EFAULT, EINVAL):
                // leave the parked state as a timeout would.
                let _ = inner.wake.unpark_self();
                return Err(Error::io("futex wait", e));
            }
            if !inner.wake.still_parked() {
                break true;
            }
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    // A wake between the look and here still counts.
                    break !inner.wake.unpark_self();
                }
                remaining = Some(d - now);
            }
        };
        let end = self.block_end(start);
        if woken {
            self.stats.wakeups += 1;
        }
        Ok((end, woken))
    }

    /// [`wait`](Driver::wait) with a zero timeout: nothing to time, no
    /// deadline to keep.
    #[inline(always)]
    pub(super) fn poll<S>(&mut self, inner: &Shared<S>) -> Result<()> {
        self.cursor = 0;
        let n = loop {
            match sys::epoll::wait_ms(inner.epoll.as_fd(), &mut self.events, 0) {
                Ok(n) => break n,
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("epoll_wait", e)),
            }
        };
        self.grow_if_full(n);
        self.take_again();
        Ok(())
    }

    /// Adds the sources that asked to be dispatched again to the fresh
    /// batch, as events with no readiness.
    #[inline(always)]
    fn take_again(&mut self) {
        if !self.again.is_empty() {
            self.add_again();
        }
    }

    #[cold]
    #[inline(never)]
    fn add_again(&mut self) {
        let none = EventFlags::empty();
        for (slot, reg_gen, sub) in self.again.drain(..) {
            let data = token::encode(slot, reg_gen, sub);
            self.events.push(sys::epoll::event(none, data));
        }
    }

    #[inline]
    pub(super) fn grow_if_full(&mut self, n: usize) {
        if n == self.events.capacity() && n < MAX_EVENTS {
            // A full batch: more may be ready; fetch more next time.
            self.events.reserve(n);
        }
    }

    /// Dispatches what is left of the batch; an empty one (a park, a wait
    /// that timed out) costs a comparison, not a call.
    #[inline(always)]
    pub(super) fn dispatch_batch<S>(
        &mut self,
        inner: &Shared<S>,
        state: &mut S,
        now: Option<u64>,
    ) -> Result<usize> {
        if self.cursor >= self.events.len() {
            return Ok(0);
        }
        self.dispatch_events(inner, state, now)
    }

    fn dispatch_events<S>(
        &mut self,
        inner: &Shared<S>,
        state: &mut S,
        now: Option<u64>,
    ) -> Result<usize> {
        if self.cursor == 0 && inner.slab.borrow().prioritized > 0 {
            self.order_batch(inner);
            self.run_wakes(inner, state)?;
        }
        // With timing on, a blocking wait's end reading starts the batch;
        // zero-timeout batches are timed one in SAMPLE_EVERY (weighted to
        // match).
        let (start, weight) = match now {
            Some(t) => (Some(t), 1),
            None if !self.timing => (None, 1),
            None => {
                self.untimed = self.untimed.wrapping_add(1);
                let timed = self.untimed % SAMPLE_EVERY == 1;
                (timed.then(sys::timerfd::coarse_ns), SAMPLE_EVERY)
            }
        };
        let mut ran = 0;
        let mut woken = false;
        let result = loop {
            let Some(ev) = self.events.get(self.cursor) else {
                break Ok(ran);
            };
            let (flags, data) = sys::epoll::parts(ev);
            self.cursor += 1;
            if data < token::INTERNAL_MIN {
                let (targets, again) = (&mut self.targets, &mut self.again);
                match Self::dispatch_one(targets, again, inner, flags, data, state) {
                    Ok(true) => ran += 1,
                    Ok(false) => {}
                    Err(e) => break Err(e),
                }
                continue;
            }
            match data {
                token::REMOTE => {
                    // Wake-ups carry no work of their own; stop is checked
                    // by `run`. Awake before draining a pipe notifier
                    // (after the batch), so a wake that lands after the
                    // drain is turned into a write at the end of the
                    // iteration instead of being lost; an eventfd notifier
                    // is not drained (edge-triggered: this event used the
                    // write up), and being awake spares wakers their
                    // writes.
                    mark_awake(&inner.wake, &inner.awake_marked);
                    woken = true;
                }
                token::TIMER => self.waiter.on_timer(),
                t if timers::token_clock(t).is_some() => {
                    let Some(clock) = timers::token_clock(t) else {
                        continue;
                    };
                    let set = inner.timers.borrow_mut().on_fired(clock);
                    match self.run_timers(inner, clock, set, state) {
                        Ok(n) => ran += n,
                        Err(e) => break Err(e),
                    }
                }
                _ => {}
            }
        };
        let result = if woken {
            Self::after_remote_wake(inner, result)
        } else {
            result
        };
        self.stats.events += ran as u64;
        self.last_end = None;
        if let Some(start) = start {
            let end = sys::timerfd::coarse_ns();
            self.stats.add_callbacks(start, end, weight);
            if weight == 1 {
                self.last_end = Some(end);
            }
        }
        result
    }

    /// After a batch in which the loop's notifier was readable (the loop
    /// is marked awake since): tasks that another thread woke are polled
    /// first, then a pipe notifier is drained — the read is off the path
    /// from a cross-thread wake to its task (an eventfd one is
    /// edge-triggered and needs no read, see `wake.rs`). Draining late
    /// loses nothing: a waker that wrote before the loop marked itself
    /// awake pushed its work first, so the checks after this batch see it,
    /// and wakers since see the loop awake and do not write. A failed
    /// drain leaves the notifier readable and is reported (after an error
    /// of the batch's own, that one is). Returns the batch's result plus
    /// the tasks run.
    #[cold]
    #[inline(never)]
    fn after_remote_wake<S>(inner: &Shared<S>, batch: Result<usize>) -> Result<usize> {
        let tasks = match batch {
            Ok(_) if inner.tasks_pending() => inner.run_tasks(),
            _ => 0,
        };
        let drained = inner
            .wake
            .notifier
            .after_event()
            .map_err(|e| Error::io("draining the loop's wake-up notifier", e));
        let ran = batch?;
        drained?;
        Ok(ran + tasks)
    }

    #[inline(always)]
    pub(super) fn dispatch_one<S>(
        targets: &mut Vec<(u32, u32, u8)>,
        again: &mut Vec<(u32, u32, u8)>,
        inner: &Shared<S>,
        flags: EventFlags,
        data: u64,
        state: &mut S,
    ) -> Result<bool> {
        let (slot, reg_gen, sub) = token::decode(data);
        let Some((id, d, extra)) = inner.begin_fd(slot, reg_gen) else {
            // A call at a deadline, due; or a source removed, disabled or
            // re-registered since.
            return Ok(Self::run_timeout(inner, slot, reg_gen, sub, state));
        };
        let guard = FdGuard {
            inner,
            data,
            targets,
        };
        let mut r = inner.registrar(slot, reg_gen);
        let ready = Readiness::from_flags(flags);
        // SAFETY: `d` points to the dispatcher in `slot`'s `FdBox`, which
        // stays where it is and alive while the slot is the running one
        // (`begin_fd` made it so; removal, re-registration and the cold
        // paths' `FdBox::get` wait for `end_running`), and nothing else
        // calls through it meanwhile: callbacks run one at a time.
        let outcome = unsafe { (*d.as_ptr()).dispatch(ready, sub, &mut r, state) };
        std::mem::forget(guard);
        if r.again {
            again.push((slot, reg_gen, sub));
        }
        let pending = inner.end_running();
        if pending.is_some() || extra {
            inner.end_fd(id, pending.unwrap_or_default(), state)?;
        }
        match outcome {
            Ok(Action::Continue) => Ok(true),
            Ok(action) => inner.apply_action(id, action).map(|()| true),
            Err(e) => Err(Error::Source { id, source: e }),
        }
    }

    /// Runs the timeout in `slot` if it is due under `reg_gen` and
    /// enabled: it leaves the loop first (its slot is free when the call
    /// runs, so a panic in it loses nothing else). A disabled one stays,
    /// and is scheduled again at its deadline when enabled.
    #[inline(never)]
    fn run_timeout<S>(inner: &Shared<S>, slot: u32, reg_gen: u32, sub: u8, state: &mut S) -> bool {
        if sub != timers::SUB_DUE {
            return false;
        }
        match inner.take_timeout(slot, reg_gen) {
            Some(f) => {
                f(state);
                true
            }
            None => false,
        }
    }

    pub(super) fn run_defers<S>(&self, inner: &Shared<S>, state: &mut S) -> usize {
        if inner.defers.borrow().is_empty() {
            return 0;
        }
        // Only the calls queued so far: those they queue wait for the next
        // iteration.
        let mut q = DeferRun {
            inner,
            queued: std::mem::take(&mut *inner.defers.borrow_mut()),
            next: 0,
            keep: Vec::new(),
        };
        let mut ran = 0;
        while let Some(&id) = q.queued.get(q.next) {
            q.next += 1;
            match inner.take_by_id(id) {
                Taken::Entry(Entry {
                    kind: Kind::Defer(f),
                    ..
                }) => {
                    inner.slab.borrow_mut().release(id.slot);
                    f(state);
                    ran += 1;
                }
                Taken::Entry(other) => {
                    // Not a deferred call (cannot happen); put it back.
                    let _ = inner.put_back(id, other);
                }
                Taken::Disabled => q.keep.push(id),
                Taken::Gone => {}
            }
        }
        ran
    }

    pub(super) fn run_idles<S>(&self, inner: &Shared<S>, state: &mut S) -> Result<()> {
        if inner.idles.borrow().is_empty() {
            return Ok(());
        }
        let ids: Vec<SourceId> = inner.idles.borrow().clone();
        for id in ids {
            let Taken::Entry(entry) = inner.take_by_id(id) else {
                continue;
            };
            let mut guard = RunGuard {
                inner,
                id,
                entry: Some(entry),
            };
            let action = match guard.entry.as_mut().map(|e| &mut e.kind) {
                Some(Kind::Idle(f)) => f(state),
                _ => Action::Continue,
            };
            if let Some(entry) = guard.entry.take() {
                inner.finish(id, entry, action)?;
            }
        }
        // Forget removed idles (those added meanwhile stay).
        let slab = &mut *inner.slab.borrow_mut();
        inner
            .idles
            .borrow_mut()
            .retain(|id| slab.get(*id).is_some());
        Ok(())
    }
}

impl<S> Shared<S> {
    /// Marks the enabled descriptor source in `slot` running and returns
    /// its dispatcher's address, if the slot is still the registration
    /// `reg_gen` names; with it, whether the entry has a pause or rate
    /// limit (`extra`). Writes nothing in the slot.
    #[inline(always)]
    pub(super) fn begin_fd(
        &self,
        slot: u32,
        reg_gen: u32,
    ) -> Option<(SourceId, NonNull<dyn Dispatch<S>>, bool)> {
        let slab = self.slab.borrow();
        let s = slab.slots.get(slot as usize)?;
        if reg_gen != s.reg_gen {
            return None;
        }
        let SlotState::Ready(e) = &s.state else {
            return None;
        };
        let Kind::Fd(d) = &e.kind else {
            return None;
        };
        if !e.registered() {
            return None;
        }
        let id = SourceId {
            slot,
            gen: s.id_gen,
        };
        let out = (id, d.as_ptr(), e.extra.is_some());
        drop(slab);
        self.begin_running(slot);
        Some(out)
    }

    /// After a running source's callback returned (`running` cleared):
    /// counts the dispatch against its rate limit, then applies what was
    /// requested during the callback (`pending`). The slow path of
    /// `dispatch_one`: only for sources with a pause or rate limit, or with
    /// requests.
    #[inline(never)]
    pub(super) fn end_fd(&self, id: SourceId, mut pending: Pending, state: &mut S) -> Result<()> {
        self.count_dispatch(id.slot, &mut pending);
        if !pending.is_empty() {
            self.apply_pending(id, pending)?;
            if pending.hold == Some(true) {
                self.tell_limited(id, state);
            }
        }
        Ok(())
    }

    /// Counts a dispatch of the source in `slot` against its rate limit;
    /// one that reaches it is to be held back (`pending.hold`).
    fn count_dispatch(&self, slot: u32, pending: &mut Pending) {
        let mut slab = self.slab.borrow_mut();
        if let Some(SlotState::Ready(e)) = slab.slots.get_mut(slot as usize).map(|s| &mut s.state) {
            if let Some(x) = &mut e.extra {
                if x.count_dispatch() {
                    pending.hold = Some(true);
                }
            }
        }
    }
}

impl<S> Shared<S> {
    /// Takes the closure of the enabled timeout in `slot`, if the slot is
    /// still the registration `reg_gen` names, and frees the slot.
    fn take_timeout(&self, slot: u32, reg_gen: u32) -> Option<Call<S>> {
        let entry = {
            let mut slab = self.slab.borrow_mut();
            let s = slab.slots.get_mut(slot as usize)?;
            if s.reg_gen != reg_gen {
                return None;
            }
            let SlotState::Ready(e) = &s.state else {
                return None;
            };
            if !e.enabled || !matches!(e.kind, Kind::Timeout(_)) {
                return None;
            }
            let entry = std::mem::replace(&mut s.state, SlotState::Vacant);
            slab.release(slot);
            entry
        };
        // Taken due, so normally no longer scheduled; but a timeout
        // disabled and enabled again within the batch that took it due was
        // scheduled anew.
        self.timers.borrow_mut().cancel(slot);
        match entry {
            SlotState::Ready(Entry {
                kind: Kind::Timeout(f),
                ..
            }) => Some(f),
            _ => None,
        }
    }
}

/// What [`Shared::take_by_id`] found.
pub(super) enum Taken<S> {
    Entry(Entry<S>),
    Disabled,
    Gone,
}

impl<S> Shared<S> {
    /// Takes the enabled entry named by `id` out for running (the slot turns
    /// busy).
    pub(super) fn take_by_id(&self, id: SourceId) -> Taken<S> {
        let mut slab = self.slab.borrow_mut();
        let Some(s) = slab.get(id) else {
            return Taken::Gone;
        };
        if self.is_running(id.slot) {
            return Taken::Gone;
        }
        match &s.state {
            SlotState::Ready(e) if e.enabled => {}
            SlotState::Ready(_) => return Taken::Disabled,
            _ => return Taken::Gone,
        }
        match std::mem::replace(&mut s.state, SlotState::Busy(Pending::default())) {
            SlotState::Ready(e) => Taken::Entry(e),
            _ => Taken::Gone,
        }
    }
}

/// Puts a running source back if its callback unwinds.
pub(super) struct RunGuard<'a, S> {
    pub(super) inner: &'a Shared<S>,
    pub(super) id: SourceId,
    pub(super) entry: Option<Entry<S>>,
}

impl<S> Drop for RunGuard<'_, S> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            notable!(warn, source = ?self.id, "an idle callback panicked; it stays in the loop");
            // Only reached while unwinding: errors cannot be reported.
            let _ = self.inner.put_back(self.id, entry);
        }
    }
}

/// Ends a running descriptor source's turn if its callback unwinds (the
/// normal return forgets the guard): asks the source what becomes of it,
/// clears the running mark, applies what was requested meanwhile, then the
/// source's answer.
pub(super) struct FdGuard<'a, S> {
    pub(super) inner: &'a Shared<S>,
    /// The event's data word: the slot, its registration generation and
    /// the sub-token.
    pub(super) data: u64,
    /// Where a source that asks for redelivery is queued.
    pub(super) targets: &'a mut Vec<(u32, u32, u8)>,
}

impl<S> Drop for FdGuard<'_, S> {
    fn drop(&mut self) {
        self.unwind();
    }
}

impl<S> FdGuard<'_, S> {
    /// The callback panicked: asks the source what becomes of it
    /// ([`Source::after_panic`](super::Source::after_panic)), ends its
    /// running state, applies what was requested meanwhile, then the
    /// source's answer.
    #[cold]
    #[inline(never)]
    fn unwind(&mut self) {
        let inner = self.inner;
        let (slot, reg_gen, sub) = token::decode(self.data);
        // The running source's entry, as `begin_fd` found it: nothing can
        // have replaced it while it ran.
        let found = {
            let slab = inner.slab.borrow();
            slab.slots.get(slot as usize).and_then(|s| match &s.state {
                SlotState::Ready(Entry {
                    kind: Kind::Fd(d), ..
                }) => Some((
                    SourceId {
                        slot,
                        gen: s.id_gen,
                    },
                    d.as_ptr(),
                )),
                _ => None,
            })
        };
        let Some((id, d)) = found else {
            inner.end_running();
            return;
        };
        notable!(
            warn,
            source = ?id,
            "a callback panicked; the rest of the batch waits for the next call"
        );
        let mut r = inner.registrar(slot, reg_gen);
        // SAFETY: the source is still the running one (its callback has
        // just unwound), so its dispatcher is alive and unused: see
        // `dispatch_one`.
        let after = unsafe { (*d.as_ptr()).after_panic(&mut r) };
        let mut pending = inner.end_running().unwrap_or_default();
        inner.count_dispatch(slot, &mut pending);
        // Only reached while unwinding: errors cannot be reported.
        let _ = inner.apply_pending(id, pending);
        match after {
            AfterPanic::Stay => {}
            AfterPanic::Redeliver => self.targets.push((slot, reg_gen, sub)),
            AfterPanic::Remove => {
                let _ = inner.apply_action(id, Action::Remove);
            }
        }
    }
}

/// The deferred calls one iteration took from the queue. When it ends —
/// normally or because a call panicked — the calls kept (disabled) and
/// those not yet run go back to the head of the queue, ahead of any queued
/// meanwhile, so a panic loses none of them.
struct DeferRun<'a, S> {
    inner: &'a Shared<S>,
    queued: Vec<SourceId>,
    /// How many of `queued` were taken (run, kept or found gone).
    next: usize,
    keep: Vec<SourceId>,
}

impl<S> Drop for DeferRun<'_, S> {
    fn drop(&mut self) {
        let mut rest = std::mem::take(&mut self.keep);
        rest.extend_from_slice(self.queued.get(self.next..).unwrap_or(&[]));
        if !rest.is_empty() {
            let mut d = self.inner.defers.borrow_mut();
            rest.append(&mut d);
            *d = rest;
        }
    }
}
