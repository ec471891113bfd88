//! Generic descriptor operations: read, write, poll, dup, flag queries.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;

use super::res;

/// One `read(2)` into `buf`. `EAGAIN` on an empty non-blocking descriptor,
/// `EINTR` if interrupted.
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    res(rustix::io::read(fd, buf))
}

/// One `write(2)` of `buf`. `EAGAIN` on a full non-blocking descriptor,
/// `EINTR` if interrupted, `EPIPE` when the read end is gone.
pub fn write(fd: impl AsFd, buf: &[u8]) -> io::Result<usize> {
    res(rustix::io::write(fd, buf))
}

/// One `read(2)` of exactly 8 bytes, as eventfd and timerfd hand out their
/// counters. A short read means the descriptor is of another kind and gives
/// `InvalidData`.
pub fn read_u64(fd: impl AsFd) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    let n = read(fd, &mut buf)?;
    if n != buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("8-byte counter read returned {n} bytes; is this an eventfd or timerfd?"),
        ));
    }
    Ok(u64::from_ne_bytes(buf))
}

/// One `write(2)` of exactly 8 bytes (an eventfd addend).
pub fn write_u64(fd: impl AsFd, value: u64) -> io::Result<()> {
    let n = write(fd, &value.to_ne_bytes())?;
    if n != 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("8-byte counter write took {n} bytes; is this an eventfd?"),
        ));
    }
    Ok(())
}

/// Readiness of one descriptor, as `poll(2)` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// `POLLIN`.
    pub readable: bool,
    /// `POLLOUT`.
    pub writable: bool,
    /// `POLLERR`, `POLLHUP` or `POLLNVAL`.
    pub error: bool,
}

/// One `ppoll(2)` on a single descriptor, asking for `readable` and/or
/// `writable`. `timeout` of `None` waits forever; `Some(ZERO)` does not wait.
/// Nanosecond resolution (no rounding to milliseconds). Returns `EINTR` if a
/// signal handler ran; the caller retries with the time left.
pub fn poll_one(
    fd: impl AsFd,
    readable: bool,
    writable: bool,
    timeout: Option<Duration>,
) -> io::Result<Readiness> {
    let mut flags = PollFlags::empty();
    if readable {
        flags |= PollFlags::IN;
    }
    if writable {
        flags |= PollFlags::OUT;
    }
    let mut fds = [PollFd::new(&fd, flags)];
    let ts = timeout.map(duration_to_timespec);
    res(rustix::event::poll(&mut fds, ts.as_ref()))?;
    let rev = fds[0].revents();
    Ok(Readiness {
        readable: rev.contains(PollFlags::IN),
        writable: rev.contains(PollFlags::OUT),
        error: rev.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL),
    })
}

/// Converts a `Duration` to a `timespec`, saturating at the largest
/// representable value (about 292 billion years) instead of overflowing.
pub fn duration_to_timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// `fcntl(F_DUPFD_CLOEXEC, 0)`: a new descriptor for the same open file
/// description. `EMFILE` when the process is out of descriptors.
pub fn dup_cloexec(fd: impl AsFd) -> io::Result<OwnedFd> {
    res(rustix::io::fcntl_dupfd_cloexec(fd, 0))
}

/// `fcntl(F_GETFL)`: whether `O_NONBLOCK` is set.
pub fn is_nonblocking(fd: impl AsFd) -> io::Result<bool> {
    Ok(res(rustix::fs::fcntl_getfl(fd))?.contains(OFlags::NONBLOCK))
}

/// `fcntl(F_GETFL)` then `fcntl(F_SETFL)` to set or clear `O_NONBLOCK`.
/// The flag belongs to the open file description, so every duplicate of the
/// descriptor sees the change.
pub fn set_nonblocking(fd: impl AsFd, on: bool) -> io::Result<()> {
    let fd = fd.as_fd();
    let fl = res(rustix::fs::fcntl_getfl(fd))?;
    let new = if on {
        fl | OFlags::NONBLOCK
    } else {
        fl - OFlags::NONBLOCK
    };
    if new != fl {
        res(rustix::fs::fcntl_setfl(fd, new))?;
    }
    Ok(())
}

/// `fstat`, then for a socket `getsockopt(SO_TYPE)`: whether the
/// descriptor is a pipe (FIFO) or a stream socket — the kinds where a read
/// or write that moves fewer bytes than asked means the buffer was drained
/// or filled at that moment (unlike a terminal in canonical mode, which
/// returns one line per read, or a packet socket, one message per read).
#[cfg(feature = "async")]
pub fn is_stream_like(fd: impl AsFd) -> io::Result<bool> {
    let fd = fd.as_fd();
    let st = res(rustix::fs::fstat(fd))?;
    match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::Fifo => Ok(true),
        rustix::fs::FileType::Socket => {
            Ok(res(rustix::net::sockopt::socket_type(fd))? == rustix::net::SocketType::STREAM)
        }
        _ => Ok(false),
    }
}

#[cfg(all(test, not(loom)))]
/// `ioctl(FIONREAD)`: bytes waiting to be read (pipes, sockets).
pub fn bytes_readable(fd: impl AsFd) -> io::Result<u64> {
    res(rustix::io::ioctl_fionread(fd))
}
