//! `pipe2(2)`, and `pipe(2)` + `fcntl(2)` for kernels that lack `pipe2`.

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::OFlags;
use rustix::io::FdFlags;
use rustix::pipe::PipeFlags;

use super::res;

/// `pipe2(O_CLOEXEC | O_NONBLOCK)`: returns `(read end, write end)`, both
/// non-blocking and close-on-exec. `ENOSYS` before Linux 2.6.27.
pub fn pipe2_nonblocking() -> io::Result<(OwnedFd, OwnedFd)> {
    res(rustix::pipe::pipe_with(
        PipeFlags::CLOEXEC | PipeFlags::NONBLOCK,
    ))
}

/// `pipe()` then `fcntl(F_SETFD, FD_CLOEXEC)` and `fcntl(F_SETFL, O_NONBLOCK)`
/// on both ends: the last-resort path for kernels without `pipe2`.
///
/// Not atomic: a `fork` + `exec` in another thread between `pipe` and the
/// first `fcntl` can leak the descriptors into the child. That is the price of
/// running on such a kernel; callers try [`pipe2_nonblocking`] first.
pub fn pipe_fcntl() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = res(rustix::pipe::pipe())?;
    for fd in [&r, &w] {
        res(rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC))?;
        let fl = res(rustix::fs::fcntl_getfl(fd))?;
        res(rustix::fs::fcntl_setfl(fd, fl | OFlags::NONBLOCK))?;
    }
    Ok((r, w))
}
