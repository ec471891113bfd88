//! `timerfd_create(2)`, `timerfd_settime(2)` and `clock_gettime(2)`, for
//! the loop's timers (one timerfd per clock) and for sub-millisecond waits on
//! kernels without `epoll_pwait2`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::Timespec;
use rustix::time::{ClockId, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags};

use super::res;

/// The clocks fdloop's timers run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Clock {
    /// `CLOCK_MONOTONIC`: stops during suspend, never jumps.
    Monotonic,
    /// `CLOCK_BOOTTIME`: like monotonic, but counts through suspend.
    Boottime,
    /// `CLOCK_REALTIME`: wall-clock time; can jump when set.
    Realtime,
}

/// `timerfd_create(clock, TFD_CLOEXEC | TFD_NONBLOCK)`. `ENOSYS` before
/// Linux 2.6.25 or under a filtering sandbox; `EINVAL` for a clock the
/// kernel does not support here (boottime before 3.15); `EMFILE`/`ENFILE`.
pub fn create(clock: Clock) -> io::Result<OwnedFd> {
    let id = match clock {
        Clock::Monotonic => TimerfdClockId::Monotonic,
        Clock::Boottime => TimerfdClockId::Boottime,
        Clock::Realtime => TimerfdClockId::Realtime,
    };
    res(rustix::time::timerfd_create(
        id,
        TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
    ))
}

/// `timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)`.
pub fn create_monotonic() -> io::Result<OwnedFd> {
    create(Clock::Monotonic)
}

/// `timerfd_settime(TFD_TIMER_ABSTIME [| TFD_TIMER_CANCEL_ON_SET])`: one-shot
/// at the absolute time `at` on the timer's clock, or disarmed when `at` is
/// `None`. `cancel_on_set` (realtime clock only) makes a later read fail with
/// `ECANCELED` when the clock is set.
pub fn set_absolute_with(
    fd: impl AsFd,
    at: Option<Timespec>,
    cancel_on_set: bool,
) -> io::Result<()> {
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let spec = Itimerspec {
        it_interval: zero,
        it_value: at.unwrap_or(zero),
    };
    let mut flags = TimerfdTimerFlags::ABSTIME;
    if cancel_on_set {
        flags |= TimerfdTimerFlags::CANCEL_ON_SET;
    }
    res(rustix::time::timerfd_settime(fd, flags, &spec)).map(drop)
}

/// [`set_absolute_with`] without cancel-on-set.
pub fn set_absolute(fd: impl AsFd, at: Option<Timespec>) -> io::Result<()> {
    set_absolute_with(fd, at, false)
}

/// `read(2)` of the 8-byte expiration count; `EAGAIN` when it has not
/// fired, `ECANCELED` when a cancel-on-set realtime timer saw the clock set.
pub fn read_expirations(fd: impl AsFd) -> io::Result<u64> {
    super::fd::read_u64(fd)
}

/// `clock_gettime(CLOCK_MONOTONIC)` (vDSO: no system call on most systems).
pub fn now_monotonic() -> Timespec {
    rustix::time::clock_gettime(ClockId::Monotonic)
}

/// `clock_gettime(CLOCK_MONOTONIC_COARSE)` in nanoseconds: the time of the
/// last kernel tick. A vDSO read of one cached value (~6 ns here, against
/// ~35 ns for `CLOCK_MONOTONIC`), with tick resolution (1–10 ms,
/// `clock_getres` tells).
#[inline]
pub fn coarse_ns() -> u64 {
    let t = rustix::time::clock_gettime(ClockId::MonotonicCoarse);
    // The monotonic clock counts from boot: never negative, and 2^64 ns is
    // 584 years, so the plain conversion cannot wrap (and is cheaper than
    // `timespec_to_ns`'s clamping, on a path read twice per batch).
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// `clock_gettime(clock)` in nanoseconds since the clock's epoch.
pub fn now_ns(clock: Clock) -> u64 {
    let id = match clock {
        Clock::Monotonic => ClockId::Monotonic,
        Clock::Boottime => ClockId::Boottime,
        Clock::Realtime => ClockId::Realtime,
    };
    timespec_to_ns(rustix::time::clock_gettime(id))
}

/// Nanoseconds to a `timespec` (saturating at `i64::MAX` seconds).
pub fn ns_to_timespec(ns: u64) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
        tv_nsec: (ns % 1_000_000_000) as i64,
    }
}

/// A `timespec` to nanoseconds (negative times clamp to 0, huge ones
/// saturate).
pub fn timespec_to_ns(t: Timespec) -> u64 {
    let s = u64::try_from(t.tv_sec).unwrap_or(0);
    let n = u64::try_from(t.tv_nsec).unwrap_or(0);
    s.saturating_mul(1_000_000_000).saturating_add(n)
}
