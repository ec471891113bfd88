//! `timerfd_create(2)` and `timerfd_settime(2)`, as the event loop needs
//! them for sub-millisecond waits on kernels without `epoll_pwait2`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::Timespec;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags};

use super::res;

/// `timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)`. `ENOSYS`
/// before Linux 2.6.25 or under a filtering sandbox; `EMFILE`/`ENFILE`.
pub fn create_monotonic() -> io::Result<OwnedFd> {
    res(rustix::time::timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
    ))
}

/// `timerfd_settime(TFD_TIMER_ABSTIME)`: one-shot at the absolute
/// `CLOCK_MONOTONIC` time `at`, or disarmed when `at` is `None`.
pub fn set_absolute(fd: impl AsFd, at: Option<Timespec>) -> io::Result<()> {
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let spec = Itimerspec {
        it_interval: zero,
        it_value: at.unwrap_or(zero),
    };
    res(rustix::time::timerfd_settime(
        fd,
        TimerfdTimerFlags::ABSTIME,
        &spec,
    ))
    .map(drop)
}

/// `read(2)` of the 8-byte expiration count; `EAGAIN` when it has not fired.
pub fn read_expirations(fd: impl AsFd) -> io::Result<u64> {
    super::fd::read_u64(fd)
}

/// `clock_gettime(CLOCK_MONOTONIC)` (vDSO: no system call on most systems).
pub fn now_monotonic() -> Timespec {
    rustix::time::clock_gettime(rustix::time::ClockId::Monotonic)
}
