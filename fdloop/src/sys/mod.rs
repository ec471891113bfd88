//! The syscall layer: every system call fdloop makes goes through this module.
//!
//! # Contract
//!
//! Code outside `sys` never calls the kernel directly; it calls the functions
//! here, which promise the following:
//!
//! 1. **One operation each.** A function makes one system call, or a fixed,
//!    documented sequence of them (for example `pipe` followed by `fcntl` on
//!    kernels without `pipe2`). Policy — retrying, coalescing, choosing a
//!    fallback — lives in the caller, never here.
//! 2. **Errors as they came.** Failures are returned as [`std::io::Error`]
//!    carrying the raw `errno` (`raw_os_error()` works). Nothing here retries
//!    `EINTR` or hides `EAGAIN`: the caller decides. Nothing here panics.
//! 3. **Owned, close-on-exec descriptors.** A function that creates a file
//!    descriptor returns an [`OwnedFd`](std::os::fd::OwnedFd) and sets
//!    `O_CLOEXEC` atomically at creation. The one exception,
//!    [`pipe::pipe_fcntl`], exists for kernels older than 2.6.27 and says so.
//! 4. **Borrowed inputs.** Functions take `BorrowedFd`/`AsFd`, never a bare
//!    `RawFd`, so a closed descriptor cannot be passed by accident.
//! 5. **rustix first.** Calls go through `rustix`; `libc` is used only where
//!    rustix has no safe API, and each such place carries a `// SAFETY:`
//!    comment.

pub mod epoll;
pub mod eventfd;
pub mod fd;
pub mod inotify;
#[cfg(feature = "async")]
pub mod net;
pub mod pidfd;
pub mod pipe;
pub mod process;
pub mod signalfd;
pub mod timerfd;
pub mod unix_dgram;

use std::io;

/// Converts a rustix errno into an `io::Error` that keeps the raw `errno`.
#[inline]
pub(crate) fn err(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// `Result` conversion helper: maps a rustix result to `io::Result`.
#[inline]
pub(crate) fn res<T>(r: rustix::io::Result<T>) -> io::Result<T> {
    r.map_err(err)
}
