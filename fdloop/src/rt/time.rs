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
use crate::error::{Error, Result};
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

/// A future with a deadline: see [`timeout`].
///
/// # Examples
///
/// See [`timeout`].
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    // Structurally pinned (see `poll`).
    fut: F,
    sleep: Sleep,
}

/// Runs `fut` for at most `d`: resolves to `Ok` with its output if it
/// completes first, to `Err(`[`TimeoutError::Elapsed`]`)` once `d` has
/// passed (never early), dropping nothing — the caller drops the `Timeout`,
/// and `fut` with it, when it likes. The timer is a loop `Timer` (as
/// [`sleep`]'s) inserted on the first poll that finds `fut` pending, so a
/// future that completes at once costs no timer; it leaves the loop when
/// the `Timeout` completes or is dropped.
///
/// `fut` is polled first, so an output ready at the deadline is returned
/// rather than lost.
///
/// # Errors
///
/// [`TimeoutError::Timer`] if the timer cannot be set: polled outside a
/// task of an fdloop loop (use [`timeout_on`] there), or refused by the
/// loop (as [`sleep`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::rt::{timeout, TimeoutError};
/// let (quick, stuck) = fdloop::rt::block_on(async {
///     let quick = timeout(Duration::from_secs(5), async { 7 }).await;
///     let stuck = timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
///     (quick, stuck)
/// })?;
/// assert_eq!(quick.unwrap(), 7);
/// assert!(matches!(stuck, Err(TimeoutError::Elapsed)));
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn timeout<F: Future>(d: Duration, fut: F) -> Timeout<F> {
    Timeout {
        fut,
        sleep: sleep(d),
    }
}

/// [`timeout`] with a deadline (`CLOCK_MONOTONIC`) instead of a duration.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let at = Instant::now() + Duration::from_millis(2);
/// let r = fdloop::rt::block_on(fdloop::rt::timeout_at(at, std::future::pending::<()>()))?;
/// assert!(r.is_err() && Instant::now() >= at);
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Timeout<F> {
    Timeout {
        fut,
        sleep: sleep_until(deadline),
    }
}

/// [`timeout`] on the loop of `handle`, for use outside its tasks (as
/// [`sleep_on`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
/// let t = fdloop::rt::timeout_on(&ev.handle(), Duration::from_millis(1), std::future::pending::<()>());
/// assert!(ev.block_on(&mut (), t)?.is_err());
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn timeout_on<S: 'static, F: Future>(
    handle: &LoopHandle<S>,
    d: Duration,
    fut: F,
) -> Timeout<F> {
    Timeout {
        fut,
        sleep: sleep_on(handle, d),
    }
}

impl<F> Timeout<F> {
    /// When it gives up.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = fdloop::rt::timeout(Duration::from_secs(1), async {});
    /// assert!(t.deadline() > Instant::now());
    /// ```
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = std::result::Result<F::Output, TimeoutError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is pinned structurally and `sleep` is not: `fut` is
        // never moved out of a pinned `Timeout` (no method hands it out by
        // value or by `&mut` unpinned, and there is no `Drop` impl), and
        // `Timeout` is `Unpin` only when `F` is (the auto trait; `Sleep` is
        // `Unpin`). `sleep` is only used through `&mut`, which moving it
        // would be allowed by.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above: `this.fut` stays where it is until dropped.
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(out) = fut.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Err(TimeoutError::Elapsed)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(TimeoutError::Timer(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.sleep.deadline)
            .finish_non_exhaustive()
    }
}

/// Why a [`Timeout`] ended without its future's output.
///
/// Converts into an `io::Error` (kind `TimedOut` for
/// [`Elapsed`](TimeoutError::Elapsed)), so `?` works in functions that
/// return `io::Result`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let r: std::io::Result<()> = fdloop::rt::block_on(async {
///     fdloop::rt::timeout(Duration::from_millis(1), std::future::pending::<()>()).await?;
///     Ok(())
/// })?;
/// assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// # Ok::<(), fdloop::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TimeoutError {
    /// The deadline passed before the future completed.
    Elapsed,
    /// The timer could not be set (see [`timeout`]).
    Timer(Error),
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutError::Elapsed => f.write_str("deadline passed"),
            TimeoutError::Timer(e) => write!(f, "cannot set the timeout's timer: {e}"),
        }
    }
}

impl std::error::Error for TimeoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TimeoutError::Elapsed => None,
            TimeoutError::Timer(e) => Some(e),
        }
    }
}

impl From<TimeoutError> for std::io::Error {
    fn from(e: TimeoutError) -> std::io::Error {
        match e {
            TimeoutError::Elapsed => std::io::Error::new(std::io::ErrorKind::TimedOut, e),
            TimeoutError::Timer(e) => e.into(),
        }
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
