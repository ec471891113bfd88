//! [`EventFd`]: the kernel's 64-bit event counter as a safe type.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use crate::sys;

/// The largest value an eventfd counter can hold: `0xffff_ffff_ffff_fffe`.
///
/// A write that would take the counter past it blocks (or fails with
/// [`io::ErrorKind::WouldBlock`] on a non-blocking eventfd).
pub const MAX_COUNTER: u64 = u64::MAX - 1;

/// An `eventfd(2)`: a 64-bit counter in the kernel behind one file descriptor.
///
/// * [`write(n)`](EventFd::write) adds `n` to the counter.
/// * [`read()`](EventFd::read) returns the counter and resets it to 0; in
///   semaphore mode it returns 1 and decrements the counter by 1.
/// * The descriptor is readable while the counter is non-zero and writable
///   while at least 1 more can be added, so it works in `poll`, `select` and
///   `epoll` sets — fdloop's or anyone else's (it implements [`AsFd`]).
///
/// The descriptor is always close-on-exec. An `EventFd` is `Send + Sync`:
/// reads and writes from several threads are atomic in the kernel. The
/// counter is shared with clones ([`try_clone`](EventFd::try_clone)) and with
/// child processes that inherit the descriptor through `fork`.
///
/// # Examples
///
/// ```
/// use fdloop::EventFd;
///
/// let efd = EventFd::options().nonblocking(true).open()?;
/// efd.write(1)?;
/// efd.write(2)?;
/// assert_eq!(efd.read()?, 3); // the sum; the counter is now 0
/// assert_eq!(efd.read().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EventFd {
    fd: OwnedFd,
}

/// Options for creating an [`EventFd`]; see [`EventFd::options`].
///
/// Defaults: initial value 0, counter (not semaphore) mode, blocking.
///
/// # Examples
///
/// ```
/// use fdloop::EventFd;
///
/// let sem = EventFd::options().initial(2).semaphore(true).nonblocking(true).open()?;
/// assert_eq!(sem.read()?, 1);
/// assert_eq!(sem.read()?, 1);
/// assert!(sem.read().is_err()); // WouldBlock: the count is 0
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventFdOptions {
    initial: u32,
    semaphore: bool,
    nonblocking: bool,
}

impl EventFdOptions {
    /// The counter's starting value (the kernel takes 32 bits here).
    pub fn initial(mut self, value: u32) -> Self {
        self.initial = value;
        self
    }

    /// Semaphore mode (`EFD_SEMAPHORE`): each read returns 1 and decrements.
    pub fn semaphore(mut self, on: bool) -> Self {
        self.semaphore = on;
        self
    }

    /// Non-blocking mode (`EFD_NONBLOCK`): reads on 0 and writes that would
    /// overflow fail with [`io::ErrorKind::WouldBlock`] instead of blocking.
    pub fn nonblocking(mut self, on: bool) -> Self {
        self.nonblocking = on;
        self
    }

    /// Creates the eventfd (`eventfd2`, always with `EFD_CLOEXEC`).
    ///
    /// # Errors
    ///
    /// The `errno` of `eventfd2`, unchanged: `ENOSYS` where the kernel or a
    /// sandbox lacks eventfd (use [`Notifier`](crate::Notifier) for an
    /// automatic pipe fallback), `EMFILE`/`ENFILE` when out of descriptors,
    /// `ENOMEM`. Nothing is retried.
    ///
    /// # Examples
    ///
    /// ```
    /// let efd = fdloop::EventFd::options().initial(7).open()?;
    /// assert_eq!(efd.read()?, 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(self) -> io::Result<EventFd> {
        let fd = sys::eventfd::eventfd(self.initial, self.semaphore, self.nonblocking)?;
        Ok(EventFd { fd })
    }
}

impl EventFd {
    /// A blocking, counter-mode eventfd starting at `initial`.
    ///
    /// Same as `EventFd::options().initial(initial).open()`; see
    /// [`EventFdOptions::open`] for errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let efd = fdloop::EventFd::new(0)?;
    /// efd.write(5)?;
    /// assert_eq!(efd.read()?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(initial: u32) -> io::Result<EventFd> {
        EventFd::options().initial(initial).open()
    }

    /// Options for a new eventfd: initial value, semaphore, non-blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let efd = fdloop::EventFd::options().nonblocking(true).open()?;
    /// assert!(efd.is_nonblocking()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn options() -> EventFdOptions {
        EventFdOptions::default()
    }

    /// Reads the counter.
    ///
    /// Counter mode: returns the value and resets it to 0. Semaphore mode:
    /// returns 1 and decrements the value by 1.
    ///
    /// # Errors
    ///
    /// * counter at 0: a blocking eventfd blocks until a write; a
    ///   non-blocking one returns [`io::ErrorKind::WouldBlock`] (`EAGAIN`);
    /// * `EINTR` (a signal handler ran while blocked) is retried here and
    ///   never returned;
    /// * [`io::ErrorKind::InvalidData`] if the descriptor (given through
    ///   `From<OwnedFd>`) is not an eventfd and returned a short read.
    ///
    /// # Examples
    ///
    /// ```
    /// let efd = fdloop::EventFd::new(3)?;
    /// assert_eq!(efd.read()?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&self) -> io::Result<u64> {
        loop {
            match sys::eventfd::read_counter(&self.fd) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Adds `n` to the counter.
    ///
    /// # Errors
    ///
    /// * `n == u64::MAX`: `EINVAL` ([`io::ErrorKind::InvalidInput`], with
    ///   `raw_os_error() == Some(EINVAL)`), as eventfd(2) specifies; fdloop
    ///   answers it before any system call, so it holds for every backend;
    /// * the sum would pass [`MAX_COUNTER`]: a blocking eventfd blocks until
    ///   a read makes room; a non-blocking one returns
    ///   [`io::ErrorKind::WouldBlock`] (`EAGAIN`) and the counter is unchanged;
    /// * `EINTR` is retried here and never returned.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// let efd = fdloop::EventFd::options().nonblocking(true).open()?;
    /// let e = efd.write(u64::MAX).unwrap_err();
    /// assert_eq!((e.kind(), e.raw_os_error()), (ErrorKind::InvalidInput, Some(libc::EINVAL)));
    /// efd.write(fdloop::MAX_COUNTER)?;
    /// assert_eq!(efd.write(1).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write(&self, n: u64) -> io::Result<()> {
        if n == u64::MAX {
            // What the kernel answers (eventfd(2)), errno intact.
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        loop {
            match sys::eventfd::write_counter(&self.fd, n) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// A second `EventFd` for the same counter (`F_DUPFD_CLOEXEC`).
    ///
    /// Both share the counter and the non-blocking flag (it belongs to the
    /// open file description).
    ///
    /// # Errors
    ///
    /// `EMFILE` when the process is out of descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = fdloop::EventFd::new(0)?;
    /// let b = a.try_clone()?;
    /// b.write(4)?;
    /// assert_eq!(a.read()?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<EventFd> {
        Ok(EventFd {
            fd: sys::fd::dup_cloexec(&self.fd)?,
        })
    }

    /// Whether reads and writes return `WouldBlock` instead of blocking.
    ///
    /// # Errors
    ///
    /// Only if `fcntl(F_GETFL)` fails, which it does not on a valid descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!fdloop::EventFd::new(0)?.is_nonblocking()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_nonblocking(&self) -> io::Result<bool> {
        sys::fd::is_nonblocking(&self.fd)
    }

    /// Switches non-blocking mode on or off. Clones see the change too.
    ///
    /// # Errors
    ///
    /// Only if `fcntl` fails, which it does not on a valid descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// let efd = fdloop::EventFd::new(0)?;
    /// efd.set_nonblocking(true)?;
    /// assert!(efd.read().is_err()); // WouldBlock instead of blocking forever
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        sys::fd::set_nonblocking(&self.fd, on)
    }
}

impl fmt::Debug for EventFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFd")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl IntoRawFd for EventFd {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

/// Adopts a descriptor that must be an eventfd. Nothing is checked here; a
/// descriptor of another kind makes reads and writes fail with
/// [`io::ErrorKind::InvalidData`] or the kernel's own error.
impl From<OwnedFd> for EventFd {
    fn from(fd: OwnedFd) -> Self {
        EventFd { fd }
    }
}

impl From<EventFd> for OwnedFd {
    fn from(e: EventFd) -> Self {
        e.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_is_blocking_counter_mode() {
        let o = EventFd::options();
        assert_eq!(
            o,
            EventFdOptions {
                initial: 0,
                semaphore: false,
                nonblocking: false
            }
        );
    }

    #[test]
    fn max_rejected_without_syscall_even_on_closed_kind() {
        // A pipe read end is not an eventfd; the check must fire before the
        // kernel sees the write (which would otherwise fail with EBADF/EINVAL
        // of a different kind).
        let (r, _w) = sys::pipe::pipe2_nonblocking().unwrap();
        let fake = EventFd::from(r);
        let e = fake.write(u64::MAX).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn debug_shows_fd() {
        let e = EventFd::new(0).unwrap();
        let s = format!("{e:?}");
        assert!(s.contains(&e.as_raw_fd().to_string()), "{s}");
    }
}
