//! [`Timer`]: one-shot and periodic timers on the event loop.
//!
//! All timers of a loop share one `timerfd` per clock, armed at an absolute
//! time: `CLOCK_MONOTONIC` (the default), `CLOCK_BOOTTIME` (counts through
//! suspend) and `CLOCK_REALTIME` (wall-clock deadlines, armed with
//! `TFD_TIMER_CANCEL_ON_SET`, so that setting the clock reaches every
//! wall-clock timer's callback as an event and deadlines are re-evaluated).
//! Arming, cancelling (removing the source) and moving a deadline
//! ([`LoopHandle::reschedule_timer_at`](crate::LoopHandle::reschedule_timer_at))
//! are O(log n) in an indexed heap, O(1) on average for random deadlines,
//! and flat in cost up to millions of pending timers. Timers never fire
//! early; the loop's dispatch adds only its own latency (see BENCHMARKS.md
//! for measured lateness).
//!
//! To push a pending timer's deadline back (an idle timeout renewed on
//! every request), move it with `reschedule_timer_at`/`_after` rather than
//! removing it and inserting a new one: no allocation, no source slot, no
//! system call, and under half the cost.

use std::fmt;
use std::io;
use std::num::NonZeroU64;
use std::time::{Duration, Instant, SystemTime};

use crate::event_loop::{
    duration_ns, instant_to_ns, Action, AfterPanic, Readiness, Registrar, Source, SUB_CLOCK_SET,
};
use crate::sys;
pub use crate::sys::timerfd::Clock;

#[derive(Clone, Copy, Debug)]
enum Start {
    After(Duration),
    At(Instant),
    AtSystem(SystemTime),
    /// Absolute nanoseconds on the timer's clock (once registered).
    Ns(u64),
}

/// A timer source: fires once at a deadline, or periodically.
///
/// * [`Timer::after`], [`Timer::at`] (monotonic), [`Timer::at_system`]
///   (wall clock), [`Timer::every`] (periodic);
/// * [`period`](Timer::period), [`slack`](Timer::slack),
///   [`clock`](Timer::clock) adjust it before insertion.
///
/// The callback gets a [`TimerEvent`] and a [`TimerCtl`]. A one-shot timer is
/// removed after it fires unless the callback reschedules it; a periodic one
/// keeps firing until removed (or its callback returns [`Action::Remove`]).
///
/// Periodic timers do not drift: the next deadline is the previous deadline
/// plus the period, whatever the dispatch latency. Periods missed while the
/// loop was busy are reported as [`TimerEvent::expirations`] > 1 (like a
/// timerfd's expiration count), and the timer skips to the next deadline in
/// the future.
///
/// For a one-shot timeout armed and cancelled at a high rate (one per
/// request), [`LoopHandle::call_at`](crate::LoopHandle::call_at) is the
/// lighter path: the same timer heap and precision, no source, about 60 %
/// of the cost to arm and cancel.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::{Action, EventLoop, Timer};
///
/// let mut ev = EventLoop::new()?;
/// ev.insert(Timer::every(Duration::from_millis(2)), |_event, _ctl, ticks: &mut u32| {
///     *ticks += 1;
///     if *ticks == 3 { Action::Remove } else { Action::Continue }
/// })?;
/// let mut ticks = 0;
/// while ticks < 3 {
///     ev.run_once(&mut ticks, None)?;
/// }
/// assert!(ev.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Timer {
    // 56 bytes, so that a timer boxed with a callback that captures
    // nothing takes a 64-byte allocation.
    start: Start,
    /// ns, at least 1.
    period: Option<NonZeroU64>,
    slack: u64,
    /// While a due callback runs (`in_flight`): the deadline to keep if it
    /// panics, or `None` for a timer that would have ended; see
    /// `after_panic`. (Deadlines after a period are never 0.)
    in_flight_next: Option<NonZeroU64>,
    in_flight: bool,
    clock: Clock,
}

/// What a [`Timer`] callback receives.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::{Action, EventLoop, Timer, TimerEvent};
///
/// let mut ev = EventLoop::new()?;
/// ev.insert(Timer::after(Duration::from_micros(300)), |e: TimerEvent, _, late: &mut Option<Duration>| {
///     *late = Some(e.late);
///     Action::Continue
/// })?;
/// let mut late = None;
/// ev.run_once(&mut late, None)?;
/// println!("fired {:?} after its deadline", late.unwrap());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimerEvent {
    /// Deadlines passed since the last callback: 1 normally; more for a
    /// periodic timer that missed periods; 0 for a clock-set notice.
    pub expirations: u64,
    /// How long after its deadline (the latest one passed) the timer ran.
    pub late: Duration,
    /// The wall clock was set (realtime timers only): the deadline was
    /// re-evaluated against the new time, and it has not necessarily passed.
    pub clock_set: bool,
}

/// The callback's control over its own timer.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::{Action, EventLoop, Timer};
///
/// let mut ev = EventLoop::new()?;
/// // A one-shot that re-arms itself twice with a growing delay.
/// ev.insert(Timer::after(Duration::from_micros(100)), |_, ctl, n: &mut u32| {
///     *n += 1;
///     if *n < 3 {
///         ctl.reschedule_after(Duration::from_micros(100 * u64::from(*n)));
///     }
///     Action::Continue
/// })?;
/// let mut n = 0;
/// while !ev.is_empty() {
///     ev.run_once(&mut n, None)?;
/// }
/// assert_eq!(n, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TimerCtl {
    clock: Clock,
    /// The next deadline (ns on the clock), if the timer should fire again.
    next: Option<u64>,
    period: Option<u64>,
}

impl TimerCtl {
    /// Fires again `d` from now (replacing a periodic timer's next deadline).
    pub fn reschedule_after(&mut self, d: Duration) {
        let now = sys::timerfd::now_ns(self.clock);
        self.next = Some(now.saturating_add(duration_ns(d)));
    }

    /// Fires again at `when` (monotonic and boottime timers; on the wall
    /// clock use [`reschedule_after`](TimerCtl::reschedule_after)).
    pub fn reschedule_at(&mut self, when: Instant) {
        self.next = Some(instant_to_ns(self.clock, when));
    }

    /// Changes the period (`None`: stop after this firing unless
    /// rescheduled). Takes effect from the next deadline.
    pub fn set_period(&mut self, period: Option<Duration>) {
        let old = self.period;
        self.period = period.map(duration_ns).map(|p| p.max(1));
        if old.is_some() && self.period.is_none() {
            self.next = None;
        }
    }

    /// Does not fire again (the source is removed after this callback).
    pub fn cancel(&mut self) {
        self.next = None;
        self.period = None;
    }
}

impl Timer {
    /// Fires once, `d` from when it is inserted (monotonic clock).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = fdloop::Timer::after(std::time::Duration::from_millis(5));
    /// # let _ = t;
    /// ```
    pub fn after(d: Duration) -> Timer {
        Timer {
            clock: Clock::Monotonic,
            start: Start::After(d),
            period: None,
            slack: 0,
            in_flight_next: None,
            in_flight: false,
        }
    }

    /// Fires once at `when` (monotonic clock; a past instant fires at once).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = fdloop::Timer::at(Instant::now() + Duration::from_millis(5));
    /// # let _ = t;
    /// ```
    pub fn at(when: Instant) -> Timer {
        Timer {
            clock: Clock::Monotonic,
            start: Start::At(when),
            period: None,
            slack: 0,
            in_flight_next: None,
            in_flight: false,
        }
    }

    /// Fires once when the wall clock reads `when` (`CLOCK_REALTIME`). If
    /// the clock is set before then, the callback hears of it
    /// ([`TimerEvent::clock_set`]) and the deadline holds against the new
    /// time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let t = fdloop::Timer::at_system(SystemTime::now() + Duration::from_secs(60));
    /// # let _ = t;
    /// ```
    pub fn at_system(when: SystemTime) -> Timer {
        Timer {
            clock: Clock::Realtime,
            start: Start::AtSystem(when),
            period: None,
            slack: 0,
            in_flight_next: None,
            in_flight: false,
        }
    }

    /// Fires every `period`, the first time one period after insertion.
    /// A zero period is taken as 1 ns.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = fdloop::Timer::every(std::time::Duration::from_secs(1));
    /// # let _ = t;
    /// ```
    pub fn every(period: Duration) -> Timer {
        Timer::after(period).period(period)
    }

    /// Makes the timer periodic: after its first deadline, it fires every
    /// `period` (at least 1 ns).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// // First at 10 ms, then every 100 ms.
    /// let t = fdloop::Timer::after(Duration::from_millis(10)).period(Duration::from_millis(100));
    /// # let _ = t;
    /// ```
    pub fn period(mut self, period: Duration) -> Timer {
        self.period = NonZeroU64::new(duration_ns(period).max(1));
        self
    }

    /// Lets the timer fire up to `slack` late, so that timers whose windows
    /// overlap share one wake-up (default: no slack).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = fdloop::Timer::every(Duration::from_secs(1)).slack(Duration::from_millis(50));
    /// # let _ = t;
    /// ```
    pub fn slack(mut self, slack: Duration) -> Timer {
        self.slack = duration_ns(slack);
        self
    }

    /// Runs the timer on `clock` (deadlines given as durations or instants
    /// are converted). [`Clock::Boottime`] keeps counting through suspend.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::{Clock, Timer};
    /// let t = Timer::every(Duration::from_secs(60)).clock(Clock::Boottime);
    /// # let _ = t;
    /// ```
    pub fn clock(mut self, clock: Clock) -> Timer {
        self.clock = clock;
        self
    }

    fn period_ns(&self) -> Option<u64> {
        self.period.map(NonZeroU64::get)
    }

    /// The deadline in nanoseconds on the timer's clock.
    fn deadline_ns(&mut self) -> u64 {
        let ns = match self.start {
            Start::Ns(ns) => return ns,
            Start::After(d) => sys::timerfd::now_ns(self.clock).saturating_add(duration_ns(d)),
            Start::At(when) => instant_to_ns(self.clock, when),
            Start::AtSystem(when) => {
                let now_s = SystemTime::now();
                let now = sys::timerfd::now_ns(self.clock);
                match when.duration_since(now_s) {
                    Ok(ahead) => now.saturating_add(duration_ns(ahead)),
                    Err(e) => now.saturating_sub(duration_ns(e.duration())),
                }
            }
        };
        self.start = Start::Ns(ns);
        ns
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("clock", &self.clock)
            .field("period_ns", &self.period_ns())
            .field("slack_ns", &self.slack)
            .finish_non_exhaustive()
    }
}

impl Source for Timer {
    type Event = TimerEvent;
    type Metadata = TimerCtl;

    fn register(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        let deadline = self.deadline_ns();
        r.schedule_timer(self.clock, deadline, self.slack)
    }

    fn unregister(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        // The deadline may have been moved in the store (`LoopHandle::
        // reschedule_timer_at`): keep it, so enabling again resumes there.
        if let Some(d) = r.cancel_timer() {
            self.start = Start::Ns(d);
        }
        Ok(())
    }

    fn process(
        &mut self,
        _ready: Readiness,
        sub: u8,
        r: &mut Registrar<'_>,
        callback: &mut dyn FnMut(TimerEvent, &mut TimerCtl) -> Action,
    ) -> io::Result<Action> {
        // The store's deadline is the truth: the handle may have moved it.
        let deadline = match r.timer_deadline() {
            Some((d, _)) => {
                self.start = Start::Ns(d);
                d
            }
            None => self.deadline_ns(),
        };
        let now = sys::timerfd::now_ns(self.clock);
        if sub == SUB_CLOCK_SET {
            let mut ctl = TimerCtl {
                clock: self.clock,
                next: Some(deadline),
                period: self.period_ns(),
            };
            let ev = TimerEvent {
                expirations: 0,
                late: Duration::ZERO,
                clock_set: true,
            };
            // Still scheduled: a panic leaves it as it is.
            self.in_flight = false;
            let action = callback(ev, &mut ctl);
            return self.apply(r, action, ctl, deadline);
        }
        if now < deadline {
            // Not due (cannot happen: the loop checks); schedule again.
            r.schedule_timer(self.clock, deadline, self.slack)?;
            return Ok(Action::Continue);
        }
        let (expirations, last_due, next) = match self.period_ns() {
            Some(p) => {
                let k = (now - deadline) / p;
                let last = deadline.saturating_add(k.saturating_mul(p));
                (k + 1, last, Some(last.saturating_add(p)))
            }
            None => (1, deadline, None),
        };
        let ev = TimerEvent {
            expirations,
            late: Duration::from_nanos(now - last_due),
            clock_set: false,
        };
        let mut ctl = TimerCtl {
            clock: self.clock,
            next,
            period: self.period_ns(),
        };
        self.in_flight = true;
        self.in_flight_next = next.and_then(NonZeroU64::new);
        let action = callback(ev, &mut ctl);
        self.in_flight = false;
        self.apply(r, action, ctl, last_due)
    }

    /// A due timer's callback panicked: it fired, so it ends as after a
    /// normal return — a one-shot leaves the loop, a periodic one keeps its
    /// next deadline on the grid.
    fn after_panic(&mut self, r: &mut Registrar<'_>) -> AfterPanic {
        if !std::mem::take(&mut self.in_flight) {
            return AfterPanic::Stay;
        }
        match self.in_flight_next.map(NonZeroU64::get) {
            None => AfterPanic::Remove,
            Some(next) => {
                self.start = Start::Ns(next);
                match r.schedule_timer(self.clock, next, self.slack) {
                    Ok(()) => AfterPanic::Stay,
                    // Cannot be armed: better gone than silently dead.
                    Err(_) => AfterPanic::Remove,
                }
            }
        }
    }
}

impl Timer {
    /// Applies the callback's wishes: reschedule, or finish.
    fn apply(
        &mut self,
        r: &mut Registrar<'_>,
        action: Action,
        ctl: TimerCtl,
        last_due: u64,
    ) -> io::Result<Action> {
        // A period changed from the callback starts from the last deadline.
        let next = match (ctl.next, ctl.period, self.period_ns()) {
            (Some(n), new, old) if new != old => match new {
                Some(p) if n == last_due.saturating_add(old.unwrap_or(p)) => {
                    Some(last_due.saturating_add(p))
                }
                _ => Some(n),
            },
            (n, _, _) => n,
        };
        self.period = ctl.period.and_then(NonZeroU64::new);
        if let Some(n) = next {
            // Also when disabled: enabling it again resumes on its grid
            // instead of repeating the tick that just fired.
            self.start = Start::Ns(n);
        }
        if action != Action::Continue {
            return Ok(action);
        }
        match next {
            Some(n) => {
                r.schedule_timer(self.clock, n, self.slack)?;
                Ok(Action::Continue)
            }
            None => Ok(Action::Remove),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_timer_fits_a_64_byte_allocation_with_a_capture_free_callback() {
        // 56 bytes + malloc's 8-byte header: one 64-byte chunk.
        assert!(std::mem::size_of::<super::Timer>() <= 56);
    }
}
