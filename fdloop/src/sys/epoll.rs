//! `epoll(7)`: create, control, and wait — with a nanosecond timeout through
//! `epoll_pwait2` (Linux ≥ 5.11) or a millisecond one through `epoll_pwait`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::Timespec;

use super::res;

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub fn create() -> io::Result<OwnedFd> {
    res(epoll::create(CreateFlags::CLOEXEC))
}

/// `epoll_ctl(EPOLL_CTL_ADD)`. `EEXIST` if already registered, `EPERM` for
/// descriptors epoll cannot watch (regular files), `ENOSPC` past
/// `max_user_watches`.
pub fn add(ep: BorrowedFd<'_>, fd: BorrowedFd<'_>, data: u64, flags: EventFlags) -> io::Result<()> {
    res(epoll::add(ep, fd, EventData::new_u64(data), flags))
}

/// `epoll_ctl(EPOLL_CTL_MOD)`. `ENOENT` if not registered.
pub fn modify(
    ep: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    data: u64,
    flags: EventFlags,
) -> io::Result<()> {
    res(epoll::modify(ep, fd, EventData::new_u64(data), flags))
}

/// `epoll_ctl(EPOLL_CTL_DEL)`. `ENOENT` if not registered, `EBADF` if the
/// descriptor is already closed.
pub fn delete(ep: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    res(epoll::delete(ep, fd))
}

/// `epoll_pwait(timeout_ms, no signal mask)` into the spare capacity of
/// `events` (which is cleared first). `timeout_ms < 0` waits forever.
/// Returns `EINTR` if a signal handler ran.
///
/// Through rustix, whose Linux backend issues the system call inline: the
/// `syscall` instruction lands in the caller's frame (this function and
/// rustix's are inlined), not in a libc function one call deeper. On this
/// project's test machine (AMD, kernel with the SRSO "safe RET"
/// mitigation) every call frame between a busy loop and its system call
/// beyond the first few costs a mispredicted return after each call,
/// ≈ 10–18 ns (BENCHMARKS.md, "Dispatch again"; `examples/call_depth.rs`
/// in fdloop-bench). With a null signal mask `epoll_pwait` is
/// `epoll_wait`: the kernel skips the mask at a null-pointer test.
#[inline(always)]
pub fn wait_ms(ep: BorrowedFd<'_>, events: &mut Vec<Event>, timeout_ms: i32) -> io::Result<usize> {
    events.clear();
    let timeout = (timeout_ms >= 0).then(|| Timespec {
        tv_sec: i64::from(timeout_ms / 1000),
        tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
    });
    res(epoll::wait(
        ep,
        rustix::buffer::spare_capacity(events),
        timeout.as_ref(),
    ))
}

/// `epoll_pwait2(timeout)` (nanosecond timeout, no signal mask) into the
/// spare capacity of `events` (cleared first). `ENOSYS` before Linux 5.11 or
/// where a sandbox filters it (callers then fall back to a timerfd);
/// `EINTR` if a signal handler ran.
///
/// rustix picks `epoll_pwait2` only at compile time (feature `linux_5_11`),
/// so this probes it at run time with a raw `syscall` through libc.
pub fn wait_precise(
    ep: BorrowedFd<'_>,
    events: &mut Vec<Event>,
    timeout: &Timespec,
) -> io::Result<usize> {
    events.clear();
    let cap = events.capacity().min(i32::MAX as usize);
    let kernel_ts = libc::timespec {
        tv_sec: timeout.tv_sec as libc::time_t,
        tv_nsec: timeout.tv_nsec as _,
    };
    // SAFETY: `events` has room for `cap` entries; rustix's `Event` has the
    // kernel's `struct epoll_event` layout (packed on x86_64, exactly as the
    // kernel defines it), so the kernel may write up to `cap` of them. The
    // timespec lives across the call; the signal mask pointer is null (no
    // mask change), so its size argument is ignored.
    let n = unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait2,
            ep.as_raw_fd(),
            events.as_mut_ptr(),
            cap as libc::c_int,
            &kernel_ts as *const libc::timespec,
            std::ptr::null::<libc::sigset_t>(),
            0usize,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised the first `n` entries (n <= cap).
    unsafe { events.set_len(n) };
    Ok(n)
}

/// Convenience for callers: the flags and `u64` data of one event.
#[inline]
pub fn parts(e: &Event) -> (EventFlags, u64) {
    (e.flags, e.data.u64())
}

/// An event made by the loop itself (a due timer placed in a batch), in
/// the form `epoll_wait` fills in.
#[inline]
pub fn event(flags: EventFlags, data: u64) -> Event {
    Event {
        flags,
        data: EventData::new_u64(data),
    }
}

// The raw calls above hand rustix `Event` buffers to the kernel as
// `struct epoll_event`: their layouts must agree.
const _: () = assert!(std::mem::size_of::<Event>() == std::mem::size_of::<libc::epoll_event>());
const _: () = assert!(std::mem::align_of::<Event>() == std::mem::align_of::<libc::epoll_event>());
