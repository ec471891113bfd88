//! Blocking in `epoll_wait` with a precise timeout.
//!
//! `epoll_wait` takes whole milliseconds. fdloop waits to the nanosecond by
//! the first of these that works, chosen at run time on the first timed wait:
//!
//! 1. [`TimeoutPrecision::Nanos`]: `epoll_pwait2` (Linux ≥ 5.11);
//! 2. [`TimeoutPrecision::TimerFd`]: a `timerfd` in the epoll set, armed at
//!    the absolute deadline, and an untimed `epoll_wait`;
//! 3. [`TimeoutPrecision::Millis`]: the timeout rounded *up* to whole
//!    milliseconds (never early, up to 1 ms late).
//!
//! `FDLOOP_FORCE_TIMEOUT=timerfd` or `=millis` starts lower in that list
//! (for testing the fallbacks).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use rustix::event::epoll::{Event, EventFlags};
use rustix::event::Timespec;

use super::token;
use crate::fallback::{self, ForcedTimeout};
use crate::sys;

/// How finely an [`EventLoop`](crate::EventLoop) honours timeouts; see
/// [`EventLoop::timeout_precision`](crate::EventLoop::timeout_precision).
///
/// # Examples
///
/// ```
/// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
/// println!("timeouts via {:?}", ev.timeout_precision());
/// # Ok::<(), fdloop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutPrecision {
    /// Not decided yet: decided on the first wait with a non-zero timeout.
    Undecided,
    /// `epoll_pwait2`: nanosecond timeouts, no extra system call.
    Nanos,
    /// A `timerfd` armed at the deadline: nanosecond timeouts, one extra
    /// `timerfd_settime` when the deadline changes.
    TimerFd,
    /// `epoll_wait` in whole milliseconds, rounded up.
    Millis,
}

const UNDECIDED: u8 = 0;
const NANOS: u8 = 1;
const TIMERFD: u8 = 2;
const MILLIS: u8 = 3;

/// Process-wide knowledge: `epoll_pwait2` found missing (so later loops skip
/// the failing call), or a fallback forced by the environment.
static PROCESS_BEST: AtomicU8 = AtomicU8::new(UNDECIDED);

fn process_best() -> u8 {
    let v = PROCESS_BEST.load(Ordering::Relaxed);
    if v != UNDECIDED {
        return v;
    }
    let forced = match fallback::forced_timeout() {
        Some(ForcedTimeout::TimerFd) => TIMERFD,
        Some(ForcedTimeout::Millis) => MILLIS,
        None => NANOS,
    };
    PROCESS_BEST.store(forced, Ordering::Relaxed);
    forced
}

pub(crate) struct Waiter {
    precision: u8,
    timerfd: Option<OwnedFd>,
    armed: Option<(i64, i64)>,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            precision: UNDECIDED,
            timerfd: None,
            armed: None,
        }
    }

    pub(crate) fn precision(&self) -> TimeoutPrecision {
        match self.precision {
            NANOS => TimeoutPrecision::Nanos,
            TIMERFD => TimeoutPrecision::TimerFd,
            MILLIS => TimeoutPrecision::Millis,
            _ => TimeoutPrecision::Undecided,
        }
    }

    /// One wait. `None` blocks until an event; `Some(ZERO)` only polls.
    /// Returns the number of events (which may include the internal timer
    /// token). `EINTR` is returned to the caller, which retries with the
    /// time left.
    // Inlined, so that the system call sits in the loop's own frame (see
    // `sys::epoll::wait_ms`).
    #[inline(always)]
    pub(crate) fn wait(
        &mut self,
        ep: BorrowedFd<'_>,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        match timeout {
            None => {
                if self.armed.is_some() {
                    self.disarm()?;
                }
                sys::epoll::wait_ms(ep, events, -1)
            }
            Some(t) if t.is_zero() => sys::epoll::wait_ms(ep, events, 0),
            Some(t) => self.wait_for(ep, events, t),
        }
    }

    /// [`wait`](Waiter::wait) with a non-zero timeout, kept out of line:
    /// the common waits (none, or zero) need none of this.
    #[inline(never)]
    fn wait_for(
        &mut self,
        ep: BorrowedFd<'_>,
        events: &mut Vec<Event>,
        t: Duration,
    ) -> io::Result<usize> {
        if self.precision == UNDECIDED {
            self.precision = process_best();
        }
        if self.precision == NANOS {
            match sys::epoll::wait_precise(ep, events, &sys::fd::duration_to_timespec(t)) {
                // EINVAL here is a bad argument, not a missing call.
                Err(e) if fallback::call_missing(&e) => {
                    crate::trace::notable!(
                        warn,
                        error = %e,
                        "epoll_pwait2 unavailable: loop timeouts through a timerfd"
                    );
                    PROCESS_BEST.store(TIMERFD, Ordering::Relaxed);
                    self.precision = TIMERFD;
                }
                r => return r,
            }
        }
        if self.precision == TIMERFD {
            match self.arm(ep, t) {
                Ok(()) => return sys::epoll::wait_ms(ep, events, -1),
                Err(e) if fallback::unavailable(&e) => {
                    crate::trace::notable!(
                        warn,
                        error = %e,
                        "timerfd unavailable: loop timeouts in whole milliseconds"
                    );
                    self.timerfd = None;
                    self.precision = MILLIS;
                }
                // Out of descriptors (or memory) for the timerfd: this wait
                // goes in whole milliseconds, rounded up (never early); a
                // later wait tries the timerfd again.
                Err(e) if fallback::exhausted(&e) => {}
                Err(e) => return Err(e),
            }
        }
        sys::epoll::wait_ms(ep, events, millis_rounded_up(t))
    }

    /// The timer fired: consume it.
    pub(crate) fn on_timer(&mut self) {
        if let Some(fd) = &self.timerfd {
            // EAGAIN (already read) is fine; nothing else can happen on a
            // valid timerfd.
            let _ = sys::timerfd::read_expirations(fd);
        }
        self.armed = None;
    }

    fn arm(&mut self, ep: BorrowedFd<'_>, t: Duration) -> io::Result<()> {
        if self.timerfd.is_none() {
            let fd = sys::timerfd::create_monotonic()?;
            sys::epoll::add(ep, fd.as_fd(), token::TIMER, EventFlags::IN)?;
            self.timerfd = Some(fd);
        }
        let now = sys::timerfd::now_monotonic();
        let t = sys::fd::duration_to_timespec(t);
        let mut sec = now.tv_sec.saturating_add(t.tv_sec);
        let mut nsec = now.tv_nsec + t.tv_nsec;
        if nsec >= 1_000_000_000 {
            nsec -= 1_000_000_000;
            sec = sec.saturating_add(1);
        }
        if self.armed != Some((sec, nsec)) {
            if let Some(fd) = &self.timerfd {
                sys::timerfd::set_absolute(
                    fd,
                    Some(Timespec {
                        tv_sec: sec,
                        tv_nsec: nsec,
                    }),
                )?;
            }
            self.armed = Some((sec, nsec));
        }
        Ok(())
    }

    fn disarm(&mut self) -> io::Result<()> {
        if self.armed.take().is_some() {
            if let Some(fd) = &self.timerfd {
                sys::timerfd::set_absolute(fd, None)?;
                // A tick that fired meanwhile would wake the next wait
                // spuriously; consume it.
                let _ = sys::timerfd::read_expirations(fd);
            }
        }
        Ok(())
    }
}

/// Whole milliseconds, rounded up, clamped to what `epoll_wait` takes.
fn millis_rounded_up(t: Duration) -> i32 {
    let ms = t.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_up_and_clamp() {
        assert_eq!(millis_rounded_up(Duration::from_nanos(1)), 1);
        assert_eq!(millis_rounded_up(Duration::from_micros(1000)), 1);
        assert_eq!(millis_rounded_up(Duration::from_micros(1001)), 2);
        assert_eq!(millis_rounded_up(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
