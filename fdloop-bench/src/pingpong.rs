//! The floor for a round trip between two event loops: two threads, each
//! blocked in `epoll_wait` on its own eventfd, each writing the other's
//! eventfd when woken. No library, no queue: what any loop-to-loop message
//! costs at least on this kernel (the report's channel group compares fdloop's
//! channels against it).
//!
//! Every function returns `io::Result`; nothing here panics on an OS error.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::{pin_opt, Pin};

/// One side of the floor's ping-pong: an epoll set holding one eventfd
/// (level-triggered, readable), which this side waits on and drains.
#[derive(Debug)]
pub struct EpollEventFd {
    epoll: OwnedFd,
    efd: Arc<OwnedFd>,
}

impl EpollEventFd {
    /// A non-blocking eventfd in a fresh epoll set.
    ///
    /// # Errors
    ///
    /// `eventfd`, `epoll_create1` or `epoll_ctl` failing (`EMFILE`, …).
    pub fn new() -> io::Result<EpollEventFd> {
        EpollEventFd::with_flags(libc::EPOLLIN as u32)
    }

    /// The same with the eventfd registered edge-triggered (`EPOLLET`):
    /// each write is one event, and the eventfd never needs a read.
    ///
    /// # Errors
    ///
    /// As [`new`](EpollEventFd::new).
    pub fn new_edge() -> io::Result<EpollEventFd> {
        EpollEventFd::with_flags(libc::EPOLLIN as u32 | libc::EPOLLET as u32)
    }

    fn with_flags(events: u32) -> io::Result<EpollEventFd> {
        let efd = Arc::new(eventfd(0)?);
        // SAFETY: plain syscall; the result is checked before use.
        let p = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if p < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `p` is a fresh descriptor nobody else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(p) };
        let mut ev = libc::epoll_event { events, u64: 0 };
        // SAFETY: both descriptors are open; `ev` is a valid epoll_event
        // the kernel only reads.
        let rc = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                efd.as_raw_fd(),
                &mut ev,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EpollEventFd { epoll, efd })
    }

    /// The eventfd, for the other side to write.
    pub fn eventfd(&self) -> Arc<OwnedFd> {
        self.efd.clone()
    }

    /// Blocks in `epoll_wait` until the eventfd is readable, without
    /// reading it (see [`drain`]). `EINTR` is retried.
    ///
    /// # Errors
    ///
    /// `epoll_wait` failing other than with `EINTR`.
    pub fn wait_readable(&self) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        loop {
            // SAFETY: the epoll descriptor is open; `ev` has room for the
            // one event asked for.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ev, 1, -1) };
            if n > 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if n < 0 && e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Blocks in `epoll_wait` until the eventfd is readable, then reads it
    /// (resetting it). `EINTR` is retried.
    ///
    /// # Errors
    ///
    /// `epoll_wait` or `read` failing other than with `EINTR`/`EAGAIN`.
    pub fn wait(&self) -> io::Result<()> {
        self.wait_readable()?;
        drain(&self.efd)
    }
}

/// A non-blocking, close-on-exec eventfd whose counter starts at
/// `initial` (readable from the start if it is not 0).
///
/// # Errors
///
/// `eventfd` failing (`EMFILE`, …).
pub fn eventfd(initial: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::eventfd(initial, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads the eventfd `fd`, resetting its counter; nothing to read
/// (`EAGAIN`: a spurious wake-up) and `EINTR` are not errors.
///
/// # Errors
///
/// `read` failing otherwise.
pub fn drain(fd: &OwnedFd) -> io::Result<()> {
    let mut buf = [0u8; 8];
    // SAFETY: the eventfd is open and `buf` holds the 8 bytes read.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Adds 1 to the eventfd `efd` (one `write`). `EINTR` is retried.
///
/// # Errors
///
/// `write` failing (not `EINTR`); `EAGAIN` (counter full) cannot happen
/// in a ping-pong, where the counter is never above 1.
pub fn signal(efd: &OwnedFd) -> io::Result<()> {
    let one = 1u64.to_ne_bytes();
    loop {
        // SAFETY: the eventfd is open; `one` holds the 8 bytes written.
        let n = unsafe { libc::write(efd.as_raw_fd(), one.as_ptr().cast(), 8) };
        if n == 8 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Runs `warmup + rts` round trips between two threads pinned as `pin`
/// says (side A on [`Pin::main_cpu`], side B on [`Pin::echo_cpu`]) and
/// returns the time of the last `rts`, measured on side A. The calling
/// thread only waits for both.
///
/// # Errors
///
/// Creating the descriptors, spawning or pinning a thread, a failed
/// syscall on either side, or a side panicking.
pub fn raw_round_trips(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    let a = EpollEventFd::new()?;
    let b = EpollEventFd::new()?;
    let (a_fd, b_fd) = (a.eventfd(), b.eventfd());
    let total = rts + warmup;
    let echo = thread::Builder::new()
        .name("floor-b".into())
        .spawn(move || -> io::Result<()> {
            pin_opt(pin.echo_cpu())?;
            for _ in 0..total {
                b.wait()?;
                signal(&a_fd)?;
            }
            Ok(())
        })?;
    let meas =
        thread::Builder::new()
            .name("floor-a".into())
            .spawn(move || -> io::Result<Duration> {
                pin_opt(pin.main_cpu())?;
                let mut start = Instant::now();
                for i in 0..total {
                    if i == warmup {
                        start = Instant::now();
                    }
                    signal(&b_fd)?;
                    a.wait()?;
                }
                Ok(start.elapsed())
            })?;
    let r = meas
        .join()
        .map_err(|_| io::Error::other("floor side A panicked"))?;
    echo.join()
        .map_err(|_| io::Error::other("floor side B panicked"))??;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_completes_its_round_trips() {
        let d = raw_round_trips(Pin::Off, 200, 10).unwrap();
        assert!(d > Duration::ZERO);
    }

    #[test]
    fn signal_then_wait_does_not_block() {
        let s = EpollEventFd::new().unwrap();
        signal(&s.eventfd()).unwrap();
        s.wait().unwrap();
    }
}
