//! `eventfd2(2)`, and the 8-byte reads and writes its descriptor takes.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::EventfdFlags;

use super::res;

/// `eventfd2(initval, EFD_CLOEXEC | ...)`.
///
/// `semaphore` adds `EFD_SEMAPHORE`, `nonblocking` adds `EFD_NONBLOCK`.
/// Fails with `ENOSYS` on kernels before 2.6.27 (or where a sandbox filters
/// the call), `EINVAL` for unknown flags, `EMFILE`/`ENFILE` when out of
/// descriptors, `ENOMEM`.
pub fn eventfd(initval: u32, semaphore: bool, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = EventfdFlags::CLOEXEC;
    if semaphore {
        flags |= EventfdFlags::SEMAPHORE;
    }
    if nonblocking {
        flags |= EventfdFlags::NONBLOCK;
    }
    res(rustix::event::eventfd(initval, flags))
}

/// One `read(2)` of the 8-byte counter. Returns `EAGAIN` when the counter is
/// zero on a non-blocking descriptor, `EINTR` when a blocking read was
/// interrupted.
pub fn read_counter(fd: impl AsFd) -> io::Result<u64> {
    super::fd::read_u64(fd)
}

/// One `write(2)` of an 8-byte addend. The kernel answers `EINVAL` for
/// `u64::MAX`, `EAGAIN` when a non-blocking write would take the counter past
/// `0xffff_ffff_ffff_fffe`, `EINTR` when a blocking write was interrupted.
pub fn write_counter(fd: impl AsFd, value: u64) -> io::Result<()> {
    super::fd::write_u64(fd, value)
}
