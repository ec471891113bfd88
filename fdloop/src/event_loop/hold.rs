//! Holding a source back for a while, with no new descriptor: paused until
//! a deadline ([`LoopHandle::disable_for`](crate::LoopHandle::disable_for)),
//! or rate-limited
//! ([`LoopHandle::set_rate_limit`](crate::LoopHandle::set_rate_limit)).
//!
//! Both end on the loop's own wake-up for the slot, scheduled in the timer
//! store under the slot's number (`Timers::schedule_wake`). A source that
//! is out of the epoll set has no timer of its own pending there — a
//! [`Timer`](crate::Timer) cancels its schedule when it leaves — so the
//! slot's one schedule is free for it, and the wake-up is cancelled when
//! the source is registered again or removed. The monotonic clock's timerfd
//! is created once and shared, and if it cannot be created (`EMFILE`) the
//! store falls back to the epoll timeout: ending a pause never needs a
//! descriptor that may not be there.
//!
//! The two states are kept apart: `enabled` is the user's (enable,
//! disable, disable-for), `held` the rate limit's. A source is in the epoll
//! set exactly when it is enabled and not held, so enabling or disabling a
//! limited source only changes what happens when the limit lets it go, and
//! a limit always lets it go (the sd-event bug this avoids left sources
//! stuck in the limited state when they were re-enabled meanwhile).

use std::os::fd::AsFd;
use std::time::Duration;

use super::driver::Driver;
use super::shared::Shared;
use super::slab::{Entry, SlotState};
use super::source::SourceId;
use super::timers::{duration_ns, Clock};
use crate::error::{Error, Result};
use crate::sys;

/// The rare per-source settings, boxed so every other entry stays small.
pub(super) struct Extra<S> {
    /// Paused by `disable_for`: enabled again at this time (ns, monotonic).
    pub(super) resume_at: Option<u64>,
    pub(super) limit: Option<RateLimit<S>>,
}

/// A callback told when a source enters (`true`) and leaves (`false`) its
/// rate-limited state.
pub(super) type OnLimit<S> = Box<dyn FnMut(SourceId, bool, &mut S)>;

pub(super) struct RateLimit<S> {
    /// ns.
    interval: u64,
    burst: u32,
    /// When the current window began (ns, monotonic); valid while
    /// `count > 0`.
    window_start: u64,
    /// Dispatches in the current window.
    count: u32,
    /// Held back until then (ns, monotonic).
    held_until: Option<u64>,
    on_change: Option<OnLimit<S>>,
}

impl<S> Extra<S> {
    fn new() -> Extra<S> {
        Extra {
            resume_at: None,
            limit: None,
        }
    }

    /// When the loop must look at this source again, if ever.
    pub(super) fn next_wake(&self) -> Option<u64> {
        let held = self.limit.as_ref().and_then(|l| l.held_until);
        match (self.resume_at, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counts a dispatch against the rate limit. Returns whether the limit
    /// was reached: the source must be held back until its window ends.
    /// Called after the callback returned, so a window that ended during a
    /// long callback is over, not a reason to hold.
    #[inline]
    pub(super) fn count_dispatch(&mut self) -> bool {
        match &mut self.limit {
            Some(l) if l.held_until.is_none() => l.count_at(sys::timerfd::now_ns(Clock::Monotonic)),
            _ => false,
        }
    }
}

impl<S> RateLimit<S> {
    /// [`Extra::count_dispatch`] at time `now` (ns, monotonic).
    fn count_at(&mut self, now: u64) -> bool {
        let l = self;
        if l.count == 0 || now >= l.window_start.saturating_add(l.interval) {
            l.window_start = now;
            l.count = 0;
        }
        l.count += 1;
        if l.count < l.burst {
            return false;
        }
        l.held_until = Some(l.window_start.saturating_add(l.interval));
        true
    }
}

impl<S> Entry<S> {
    fn extra_mut(&mut self) -> &mut Extra<S> {
        self.extra.get_or_insert_with(|| Box::new(Extra::new()))
    }
}

impl<S> Shared<S> {
    /// Runs `f` on the entry of a live descriptor source (running or not).
    fn with_fd_entry<R>(&self, id: SourceId, f: impl FnOnce(&mut Entry<S>) -> R) -> Result<R> {
        let mut slab = self.slab.borrow_mut();
        let s = slab.get(id).ok_or(Error::NoSuchSource(id))?;
        if self.is_running(id.slot) {
            // Its callback's return looks at the entry again (a rate limit
            // set now counts the dispatch that set it).
            self.defer_running(|p| p.recheck = true);
        }
        match &mut s.state {
            SlotState::Ready(e) if e.is_fd() => Ok(f(e)),
            SlotState::Ready(_) => Err(Error::NotApplicable(id)),
            // Taken out by a cold path of the loop itself (insert, enable):
            // not reachable from a callback.
            _ => Err(Error::NoSuchSource(id)),
        }
    }

    /// Disables `id` until `until` (ns, monotonic), then enables it again.
    pub(super) fn pause(&self, id: SourceId, until: u64) -> Result<()> {
        self.check_fork()?;
        self.with_fd_entry(id, |e| e.extra_mut().resume_at = Some(until))?;
        self.set_enabled(id, false)?;
        self.sync_wake(id)
    }

    /// Forgets a pause's end (the user enabled or disabled the source
    /// explicitly).
    pub(super) fn forget_pause(&self, id: SourceId) {
        let _ = self.with_fd_entry(id, |e| {
            if let Some(x) = &mut e.extra {
                x.resume_at = None;
            }
        });
    }

    pub(super) fn set_rate_limit(
        &self,
        id: SourceId,
        limit: Option<(Duration, u32)>,
        on_change: Option<OnLimit<S>>,
    ) -> Result<()> {
        self.check_fork()?;
        let was_held = self.with_fd_entry(id, |e| {
            let x = e.extra_mut();
            let was_held = x.limit.as_ref().is_some_and(|l| l.held_until.is_some());
            x.limit = limit.map(|(interval, burst)| RateLimit {
                interval: duration_ns(interval).max(1),
                burst: burst.max(1),
                window_start: 0,
                count: 0,
                held_until: None,
                on_change,
            });
            was_held
        })?;
        if was_held {
            // The old limit held it back; the new one starts afresh.
            self.set_held(id, false)?;
        }
        self.sync_wake(id)
    }

    /// Whether `id` is held back by its rate limit now.
    pub(super) fn is_rate_limited(&self, id: SourceId) -> Result<bool> {
        self.with_fd_entry(id, |e| e.held)
    }

    /// Schedules, moves or cancels the loop's wake-up for `id` to match
    /// its state: one is pending while the source is out of the epoll set
    /// with a pause or a hold to end.
    pub(super) fn sync_wake(&self, id: SourceId) -> Result<()> {
        let (reg_gen, next) = {
            let mut slab = self.slab.borrow_mut();
            let Some(s) = slab.get(id) else {
                return Ok(());
            };
            let reg_gen = s.reg_gen;
            let SlotState::Ready(e) = &s.state else {
                return Ok(());
            };
            let Some(x) = &e.extra else {
                return Ok(());
            };
            if self.is_running(id.slot) {
                // Done when it returns (its pending changes call this).
                return Ok(());
            }
            let next = if e.registered() { None } else { x.next_wake() };
            (reg_gen, next)
        };
        let mut timers = self.timers.borrow_mut();
        match next {
            Some(at) => timers
                .schedule_wake(self.epoll.as_fd(), id.slot, reg_gen, at)
                .map_err(|e| Error::io("scheduling the end of a pause", e)),
            None => {
                timers.cancel_wake(id.slot);
                Ok(())
            }
        }
    }

    /// The loop's wake-up for `slot` is due: ends what is over — the rate
    /// limit's hold (telling its callback), the pause — and schedules the
    /// rest.
    fn on_wake(&self, slot: u32, reg_gen: u32, state: &mut S) -> Result<()> {
        let now = sys::timerfd::now_ns(Clock::Monotonic);
        let (id, released, resume, mut tell) = {
            let mut slab = self.slab.borrow_mut();
            let Some(s) = slab.slots.get_mut(slot as usize) else {
                return Ok(());
            };
            if s.reg_gen != reg_gen {
                return Ok(()); // stale: registered again since
            }
            let id = SourceId {
                slot,
                gen: s.id_gen,
            };
            let SlotState::Ready(e) = &mut s.state else {
                return Ok(());
            };
            let Some(x) = &mut e.extra else {
                return Ok(());
            };
            let mut released = false;
            let mut tell = None;
            if let Some(l) = &mut x.limit {
                if l.held_until.is_some_and(|t| t <= now) {
                    l.held_until = None;
                    l.count = 0;
                    released = true;
                    tell = l.on_change.take();
                }
            }
            let resume = x.resume_at.is_some_and(|t| t <= now);
            if resume {
                x.resume_at = None;
            }
            (id, released, resume, tell)
        };
        let res = match (released, resume) {
            (false, false) => Ok(()),
            (r, p) => self.change(id, p.then_some(true), r.then_some(false)),
        };
        if let Some(f) = &mut tell {
            f(id, false, state);
            self.give_back_on_change(id, tell);
        }
        res?;
        self.sync_wake(id)
    }

    /// The source `id` reached its rate limit in the dispatch that just
    /// ended (and was held back): tells its callback.
    pub(super) fn tell_limited(&self, id: SourceId, state: &mut S) {
        let mut tell = self
            .with_fd_entry(id, |e| {
                e.extra
                    .as_mut()
                    .and_then(|x| x.limit.as_mut())
                    .and_then(|l| l.on_change.take())
            })
            .ok()
            .flatten();
        if let Some(f) = &mut tell {
            f(id, true, state);
            self.give_back_on_change(id, tell);
        }
    }

    /// Puts a limit callback back after it ran (unless it replaced the
    /// limit or removed the source meanwhile).
    fn give_back_on_change(&self, id: SourceId, f: Option<OnLimit<S>>) {
        let _ = self.with_fd_entry(id, |e| {
            if let Some(l) = e.extra.as_mut().and_then(|x| x.limit.as_mut()) {
                if l.on_change.is_none() {
                    l.on_change = f;
                }
            }
        });
    }
}

impl Driver {
    /// Handles the loop's wake-ups found due (pauses and holds to end).
    pub(super) fn run_wakes<S>(&mut self, inner: &Shared<S>, state: &mut S) -> Result<()> {
        if self.wakes.is_empty() {
            return Ok(());
        }
        // Taken one at a time: if a limit callback panics, the rest stay
        // queued and the next call handles them (has_leftovers), so no
        // source is left held back for good.
        let mut res = Ok(());
        while let Some((slot, reg_gen)) = self.wakes.pop() {
            if let Err(e) = inner.on_wake(slot, reg_gen, state) {
                res = res.and(Err(e));
            }
        }
        res
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::RateLimit;
    use proptest::prelude::*;

    fn limit(interval: u64, burst: u32) -> RateLimit<()> {
        RateLimit {
            interval,
            burst,
            window_start: 0,
            count: 0,
            held_until: None,
            on_change: None,
        }
    }

    proptest! {
        /// Against a model: dispatches at increasing times (a held source
        /// is not dispatched; the loop lets it go at `held_until`). Every
        /// window, from its first dispatch, holds at most `burst`
        /// dispatches, and the source is held exactly when the burst-th
        /// lands while its window is still open.
        #[test]
        fn windows_hold_at_most_burst(
            interval in 1u64..1000,
            burst in 1u32..6,
            gaps in proptest::collection::vec(0u64..400, 1..200),
        ) {
            let mut l = limit(interval, burst);
            let mut now = 1u64;
            let (mut win_start, mut in_win) = (0u64, 0u32);
            for g in gaps {
                now += g;
                if let Some(t) = l.held_until {
                    if now < t {
                        continue; // held back: not dispatched
                    }
                    // Released by the loop's wake-up.
                    l.held_until = None;
                    l.count = 0;
                }
                // The model's window.
                if in_win == 0 || now >= win_start + interval {
                    win_start = now;
                    in_win = 0;
                }
                in_win += 1;
                prop_assert!(in_win <= burst);
                let held = l.count_at(now);
                prop_assert_eq!(held, in_win == burst);
                if held {
                    prop_assert_eq!(l.held_until, Some(win_start + interval));
                    in_win = 0;
                }
            }
        }
    }
}
