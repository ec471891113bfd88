//! Timers as futures: [`sleep`], [`sleep_until`] and [`interval`], on the
//! loop's shared timer store (one timerfd per clock) with the precision of
//! [`Timer`](crate::Timer) — they *are* `Timer` sources, inserted on first
//! poll and removed when dropped.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_core::Stream;

use super::context;
use crate::error::Result;
use crate::event_loop::{stateless, Reactor};
use crate::{Action, LoopHandle, SourceId, Timer, TimerCtl, TimerEvent};

/// What the timer's callback leaves for its future.
#[derive(Default)]
struct Fired {
    expirations: Cell<u64>,
    waker: RefCell<Option<Waker>>,
}

/// Records `waker` unless an equivalent one is already there.
pub(super) fn store_waker(slot: &RefCell<Option<Waker>>, waker: &Waker) {
    let mut s = slot.borrow_mut();
    match &*s {
        Some(w) if w.will_wake(waker) => {}
        _ => *s = Some(waker.clone()),
    }
}

/// Wakes and clears the waker in `slot`, if any.
pub(super) fn wake_slot(slot: &RefCell<Option<Waker>>) {
    let w = slot.borrow_mut().take();
    if let Some(w) = w {
        w.wake();
    }
}

/// A `Timer` in the loop (once polled), and what it reported.
struct TimerCore {
    timer: Timer,
    reactor: Option<Rc<dyn Reactor>>,
    inserted: Option<(Rc<dyn Reactor>, SourceId, Rc<Fired>)>,
}

impl TimerCore {
    fn new(timer: Timer, reactor: Option<Rc<dyn Reactor>>) -> TimerCore {
        TimerCore {
            timer,
            reactor,
            inserted: None,
        }
    }

    /// Inserts the timer on first call; then the expirations since the
    /// last `Ready`.
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<Result<u64>> {
        if self.inserted.is_none() {
            let reactor = match self.reactor.take() {
                Some(r) => r,
                None => context::current("waiting on a timer")?,
            };
            let fired = Rc::new(Fired::default());
            let f = fired.clone();
            let id = reactor.insert(stateless(
                self.timer,
                move |ev: TimerEvent, _: &mut TimerCtl| {
                    f.expirations.set(f.expirations.get() + ev.expirations);
                    if ev.expirations > 0 {
                        wake_slot(&f.waker);
                    }
                    Action::Continue
                },
            ))?;
            self.inserted = Some((reactor, id, fired));
        }
        let Some((_, _, fired)) = &self.inserted else {
            return Poll::Pending;
        };
        match fired.expirations.replace(0) {
            0 => {
                store_waker(&fired.waker, cx.waker());
                Poll::Pending
            }
            n => Poll::Ready(Ok(n)),
        }
    }
}

impl Drop for TimerCore {
    fn drop(&mut self) {
        if let Some((reactor, id, _)) = self.inserted.take() {
            // A one-shot that fired has left the loop already: the id is
            // stale then, and `remove` says so; nothing to do either way.
            let _ = reactor.remove(id);
        }
    }
}

/// A future that completes at a deadline: see [`sleep`].
///
/// # Examples
///
/// See [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    core: TimerCore,
    deadline: Instant,
    done: bool,
}

/// Completes `d` from now (never early; late by the loop's timer slack and
/// scheduling). The timer joins the current task's loop on first poll.
///
/// Resolves to `Err` if polled outside a task of an fdloop loop (use
/// [`sleep_on`] there) or if the loop refuses the timer
/// ([`Error::TooManySources`](crate::Error::TooManySources),
/// [`Error::Forked`](crate::Error::Forked)).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// fdloop::rt::block_on(fdloop::rt::sleep(Duration::from_millis(3)))??;
/// assert!(start.elapsed() >= Duration::from_millis(3));
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn sleep(d: Duration) -> Sleep {
    sleep_until(Instant::now() + d)
}

/// Completes at `deadline` (`CLOCK_MONOTONIC`); a deadline in the past
/// completes at the loop's next iteration. Otherwise as [`sleep`].
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let at = Instant::now() + Duration::from_millis(2);
/// fdloop::rt::block_on(fdloop::rt::sleep_until(at))??;
/// assert!(Instant::now() >= at);
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        core: TimerCore::new(Timer::at(deadline), None),
        deadline,
        done: false,
    }
}

/// [`sleep`] on the loop of `handle`, for use outside its tasks (a future
/// built before it is spawned, or polled by [`EventLoop::block_on`](crate::EventLoop::block_on)).
///
/// # Examples
///
/// See [`EventLoop::block_on`](crate::EventLoop::block_on).
pub fn sleep_on<S: 'static>(handle: &LoopHandle<S>, d: Duration) -> Sleep {
    let deadline = Instant::now() + d;
    Sleep {
        core: TimerCore::new(Timer::at(deadline), Some(handle.reactor())),
        deadline,
        done: false,
    }
}

impl Sleep {
    /// When it completes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let s = fdloop::rt::sleep(Duration::from_secs(1));
    /// assert!(s.deadline() > Instant::now());
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        match self.core.poll_fired(cx) {
            Poll::Ready(Ok(_)) => {
                self.done = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("done", &self.done)
            .finish()
    }
}

/// A periodic timer as a stream: see [`interval`].
///
/// # Examples
///
/// See [`interval`].
#[must_use = "streams do nothing unless polled"]
pub struct Interval {
    core: TimerCore,
    period: Duration,
}

/// Ticks every `period`, the first one `period` from now, on a fixed grid
/// (a late tick does not shift the next). Each item is the number of
/// periods passed since the last item: 1 normally, more when the task was
/// too slow to take every tick. The timer joins the current task's loop on
/// first poll; errors as [`sleep`]. A zero `period` is taken as 1 ns.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let ticks = fdloop::rt::block_on(async {
///     let mut every = fdloop::rt::interval(Duration::from_millis(1));
///     let mut n = 0;
///     while n < 3 {
///         n += every.tick().await?;
///     }
///     Ok::<_, fdloop::Error>(n)
/// })??;
/// assert!(ticks >= 3);
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn interval(period: Duration) -> Interval {
    Interval {
        core: TimerCore::new(Timer::every(period), None),
        period,
    }
}

/// [`interval`] on the loop of `handle`, for use outside its tasks.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
/// let mut every = fdloop::rt::interval_on(&ev.handle(), Duration::from_millis(1));
/// let n = ev.block_on(&mut (), async move { every.tick().await })??;
/// assert!(n >= 1);
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn interval_on<S: 'static>(handle: &LoopHandle<S>, period: Duration) -> Interval {
    Interval {
        core: TimerCore::new(Timer::every(period), Some(handle.reactor())),
        period,
    }
}

impl Interval {
    /// Waits for the next tick; returns the periods passed since the last
    /// one (see [`interval`]).
    ///
    /// # Errors
    ///
    /// As [`sleep`].
    ///
    /// # Examples
    ///
    /// See [`interval`].
    pub async fn tick(&mut self) -> Result<u64> {
        std::future::poll_fn(|cx| self.core.poll_fired(cx)).await
    }

    /// The period.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let i = fdloop::rt::interval(Duration::from_secs(1));
    /// assert_eq!(i.period(), Duration::from_secs(1));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }
}

impl Stream for Interval {
    type Item = Result<u64>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<u64>>> {
        self.core.poll_fired(cx).map(Some)
    }
}

impl fmt::Debug for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interval")
            .field("period", &self.period)
            .finish()
    }
}
