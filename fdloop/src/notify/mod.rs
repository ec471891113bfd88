//! Wake-up primitives: [`EventFd`] and [`Notifier`].

mod coalesce;
mod eventfd;

pub use eventfd::{EventFd, EventFdOptions, MAX_COUNTER};

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::fallback::{self, ForcedPipe};
use crate::sys;
use coalesce::Coalescer;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What a [`Notifier`] is built on.
///
/// # Examples
///
/// ```
/// use fdloop::{Backend, Notifier};
///
/// let n = Notifier::with_backend(Backend::Pipe2)?;
/// assert_eq!(n.backend(), Backend::Pipe2);
/// assert!(n.backend().is_pipe());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// One non-blocking `eventfd` (Linux ≥ 2.6.27): one descriptor, 8-byte
    /// reads and writes, no buffer to fill.
    EventFd,
    /// A non-blocking pipe made atomically close-on-exec with `pipe2`
    /// (Linux ≥ 2.6.27), for systems or sandboxes without eventfd. Two
    /// descriptors; one byte is written per wake-up.
    Pipe2,
    /// A pipe made with `pipe()` and then `fcntl` for kernels without
    /// `pipe2`. The close-on-exec flag is set a moment after creation, so a
    /// concurrent `fork`+`exec` elsewhere could inherit it.
    PipeFcntl,
}

impl Backend {
    /// Whether this backend is a pipe (two descriptors) rather than an eventfd.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!fdloop::Backend::EventFd.is_pipe());
    /// ```
    pub fn is_pipe(self) -> bool {
        !matches!(self, Backend::EventFd)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::EventFd => "eventfd",
            Backend::Pipe2 => "pipe (pipe2)",
            Backend::PipeFcntl => "pipe (pipe + fcntl)",
        })
    }
}

enum Imp {
    EventFd(OwnedFd),
    Pipe { read: OwnedFd, write: OwnedFd },
}

/// A cross-thread "wake up" signal that any `poll`/`epoll` set can wait on.
///
/// One thread (or many) calls [`notify`](Notifier::notify); the waiting side
/// either blocks in [`wait`](Notifier::wait) or puts the descriptor
/// ([`AsFd`]) in its own poll set and calls [`drain`](Notifier::drain) when it
/// turns readable.
///
/// * **Backend.** An eventfd where the kernel allows it; otherwise, at run
///   time, a pipe — when `eventfd2` fails with `ENOSYS`, `EINVAL` or `EPERM`
///   (old kernels, seccomp sandboxes). `pipe2` is tried first, then `pipe` +
///   `fcntl`. [`FORCE_PIPE_ENV`](crate::FORCE_PIPE_ENV) forces the pipe; [`backend`](Notifier::backend)
///   tells which one is in use.
/// * **Coalesced.** Only the first `notify` after a drain makes a system
///   call; any number of further calls before the next drain cost one atomic
///   swap each and no syscall.
/// * **Never blocks, never loses a wake-up.** The descriptor is non-blocking,
///   and every `notify` is followed either by the descriptor turning readable
///   or by a concurrent `drain` that has not returned yet; either way, what
///   the notifying thread wrote before `notify` is visible to the waiter
///   after `drain`/`wait` returns. The protocol and its proof are in the
///   source (`notify/coalesce.rs`) and are model-checked with loom.
///
/// Like a condition variable, a wake-up can be spurious (a `drain` can race a
/// `notify` and leave one extra readable event): check your condition after
/// waking.
///
/// Share it between threads with an `Arc`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use fdloop::Notifier;
///
/// let n = Arc::new(Notifier::new()?);
/// let n2 = n.clone();
/// let t = std::thread::spawn(move || n2.notify());
/// assert!(n.wait(Some(Duration::from_secs(5)))?);
/// t.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Notifier {
    coalescer: Coalescer,
    imp: Imp,
    backend: Backend,
    writes: AtomicU64,
}

/// Backends found unusable in this process (so later notifiers skip them
/// without a failing syscall each time).
static EVENTFD_UNUSABLE: AtomicBool = AtomicBool::new(false);
static PIPE2_UNUSABLE: AtomicBool = AtomicBool::new(false);

/// Where [`FORCE_PIPE_ENV`](crate::FORCE_PIPE_ENV) makes [`Notifier::new`] start.
fn forced_backend() -> Option<Backend> {
    fallback::forced_pipe().map(|p| match p {
        ForcedPipe::Pipe2 => Backend::Pipe2,
        ForcedPipe::Fcntl => Backend::PipeFcntl,
    })
}

impl Notifier {
    /// Creates a notifier on the best backend this system offers.
    ///
    /// Tries eventfd, then `pipe2`, then `pipe` + `fcntl`, moving on only when
    /// a backend is unavailable (`ENOSYS`, `EINVAL`, `EPERM`); a backend found
    /// unavailable is remembered for the rest of the process. With
    /// [`FORCE_PIPE_ENV`](crate::FORCE_PIPE_ENV) set, starts at the pipe it names.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` (out of descriptors) and `ENOMEM` are returned as
    /// they are — a fallback would not help. If every backend is unavailable,
    /// the last backend's error is returned.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::Notifier::new()?;
    /// println!("waking through {}", n.backend());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Notifier> {
        const CHAIN: [Backend; 3] = [Backend::EventFd, Backend::Pipe2, Backend::PipeFcntl];
        let start = forced_backend().unwrap_or(Backend::EventFd);
        for backend in CHAIN.into_iter().skip_while(|b| *b != start) {
            let known_bad = match backend {
                Backend::EventFd => Some(&EVENTFD_UNUSABLE),
                Backend::Pipe2 => Some(&PIPE2_UNUSABLE),
                // The last resort is always tried.
                Backend::PipeFcntl => None,
            };
            if known_bad.is_some_and(|f| f.load(Ordering::Relaxed)) {
                continue;
            }
            match Notifier::with_backend(backend) {
                Ok(n) => return Ok(n),
                Err(e) if fallback::unavailable(&e) && known_bad.is_some() => {
                    crate::trace::notable!(
                        warn,
                        error = %e,
                        "{backend} unavailable for notifiers: trying the next backend"
                    );
                    if let Some(flag) = known_bad {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // PipeFcntl ends every chain and returns above, success or failure.
        Err(io::Error::other("no notifier backend could be tried"))
    }

    /// Creates a notifier on exactly `backend`, with no fallback and ignoring
    /// [`FORCE_PIPE_ENV`](crate::FORCE_PIPE_ENV).
    ///
    /// # Errors
    ///
    /// The creating syscall's `errno`: `ENOSYS` where the kernel or a sandbox
    /// lacks it, `EMFILE`/`ENFILE`, `ENOMEM`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Backend, Notifier};
    /// let n = Notifier::with_backend(Backend::PipeFcntl)?;
    /// n.notify()?;
    /// assert!(n.drain()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_backend(backend: Backend) -> io::Result<Notifier> {
        let imp = match backend {
            Backend::EventFd => Imp::EventFd(sys::eventfd::eventfd(0, false, true)?),
            Backend::Pipe2 => {
                let (read, write) = sys::pipe::pipe2_nonblocking()?;
                Imp::Pipe { read, write }
            }
            Backend::PipeFcntl => {
                let (read, write) = sys::pipe::pipe_fcntl()?;
                Imp::Pipe { read, write }
            }
        };
        Ok(Notifier {
            coalescer: Coalescer::new(),
            imp,
            backend,
            writes: AtomicU64::new(0),
        })
    }

    /// The backend in use.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::Notifier::new()?;
    /// if n.backend().is_pipe() {
    ///     eprintln!("no eventfd here; using {}", n.backend());
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Wakes the waiting side. Never blocks; callable from any thread.
    ///
    /// Returns `Ok(true)` if this call wrote to the descriptor, `Ok(false)`
    /// if a wake-up was already pending (no syscall was made).
    ///
    /// # Errors
    ///
    /// * `EAGAIN` from a saturated eventfd counter or a full pipe is not an
    ///   error: the descriptor is already readable, so it counts as sent.
    /// * `EINTR` is retried here.
    /// * Any other write error is returned, and the pending flag is cleared
    ///   so the next `notify` tries again.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::Notifier::new()?;
    /// assert!(n.notify()?);   // first: one write
    /// assert!(!n.notify()?);  // coalesced: no syscall
    /// assert!(n.drain()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notify(&self) -> io::Result<bool> {
        self.coalescer.notify(|| self.raise())
    }

    fn raise(&self) -> io::Result<()> {
        self.write_one(false)
    }

    /// Writes one wake-up (`EINTR` retried). A saturated counter or a full
    /// pipe is already readable: that counts as written, unless `edge`
    /// (an edge-triggered reader needs a new event), which empties it and
    /// writes again.
    fn write_one(&self, edge: bool) -> io::Result<()> {
        loop {
            let r = match &self.imp {
                Imp::EventFd(fd) => sys::eventfd::write_counter(fd, 1),
                Imp::Pipe { write, .. } => sys::fd::write(write, &[1]).map(drop),
            };
            match r {
                Ok(()) => {
                    self.writes.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && edge => {
                    self.consume_count()?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Consumes a pending wake-up without blocking, and re-arms the notifier
    /// so the next `notify` writes again.
    ///
    /// Returns whether the descriptor was readable (something was consumed).
    /// Call it when the descriptor polls readable, then look for the work the
    /// notifiers published.
    ///
    /// # Errors
    ///
    /// `EAGAIN` means nothing was pending and gives `Ok(false)`; `EINTR` is
    /// retried. Other read errors are returned (the notifier is re-armed
    /// regardless, so no later wake-up is lost).
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::Notifier::new()?;
    /// assert!(!n.drain()?);
    /// n.notify()?;
    /// assert!(n.drain()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn drain(&self) -> io::Result<bool> {
        self.coalescer.drain(|| self.consume())
    }

    fn consume(&self) -> io::Result<bool> {
        match &self.imp {
            Imp::EventFd(fd) => loop {
                match sys::eventfd::read_counter(fd) {
                    Ok(_) => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e),
                }
            },
            Imp::Pipe { read, .. } => {
                let mut got = false;
                let mut buf = [0u8; 64];
                loop {
                    match sys::fd::read(read, &mut buf) {
                        Ok(0) => return Ok(got),
                        Ok(n) if n < buf.len() => return Ok(true),
                        Ok(_) => got = true,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// One uncoalesced write (a channel's receiver descriptor: the
    /// channel's own protocol decides when to write, exactly once per
    /// sleep, and counts the writes it is owed). `EINTR` is retried;
    /// `EAGAIN` (counter saturated, pipe full) counts as written.
    pub(crate) fn raise_uncoalesced(&self) -> io::Result<()> {
        self.raise()
    }

    /// One uncoalesced write for an edge-triggered registration (the
    /// loop's own notifier), where every write must make a new event: a
    /// saturated counter or a full pipe is emptied first and written again,
    /// instead of counting as written as in
    /// [`raise_uncoalesced`](Notifier::raise_uncoalesced). `EINTR` is
    /// retried; a failed read or write is returned.
    pub(crate) fn raise_edge(&self) -> io::Result<()> {
        self.write_one(true)
    }

    /// Consumes whatever is pending without blocking and returns how many
    /// writes that was (the eventfd's counter, or the bytes read from the
    /// pipe); `0` when nothing was pending. `EINTR` is retried.
    pub(crate) fn consume_count(&self) -> io::Result<u64> {
        match &self.imp {
            Imp::EventFd(fd) => loop {
                match sys::eventfd::read_counter(fd) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                    Err(e) => return Err(e),
                }
            },
            Imp::Pipe { read, .. } => {
                let mut total = 0u64;
                let mut buf = [0u8; 64];
                loop {
                    match sys::fd::read(read, &mut buf) {
                        Ok(0) => return Ok(total),
                        Ok(n) => {
                            total += n as u64;
                            if n < buf.len() {
                                return Ok(total);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Blocks until notified or until `timeout` passes (`None`: no limit),
    /// then consumes the wake-up.
    ///
    /// Returns `Ok(true)` when notified, `Ok(false)` on timeout. Waits with
    /// `ppoll`, to the nanosecond: never returns `false` before `timeout` has
    /// passed. `Some(Duration::ZERO)` only checks. If several threads wait on
    /// one notifier, one of them takes each wake-up and the others keep
    /// waiting.
    ///
    /// # Errors
    ///
    /// `EINTR` is retried with the time that is left. Errors from `ppoll` or
    /// from consuming the wake-up are returned.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let n = fdloop::Notifier::new()?;
    /// assert!(!n.wait(Some(Duration::from_millis(1)))?); // nobody notified
    /// n.notify()?;
    /// assert!(n.wait(None)?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        // An unrepresentable deadline is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut remaining = timeout;
        loop {
            match sys::fd::poll_one(self.as_fd(), true, false, remaining) {
                Ok(r) if r.readable => {
                    if self.drain()? {
                        return Ok(true);
                    }
                    // Another waiter took it; keep waiting.
                }
                Ok(r) if r.error => {
                    return Err(io::Error::other(
                        "notifier descriptor reported POLLERR/POLLHUP",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Ok(false);
                }
                remaining = Some(d - now);
            } else if timeout.is_some() {
                // Deadline overflowed Instant: wait without a limit.
                remaining = None;
            }
        }
    }

    /// How many times `notify` has written to the descriptor (one system
    /// call each) since this notifier was created. Coalesced `notify` calls
    /// do not count. A cheap relaxed counter, meant for statistics and tests.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::Notifier::new()?;
    /// for _ in 0..100 { n.notify()?; }
    /// assert_eq!(n.writes(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

impl AsFd for Notifier {
    /// The descriptor to watch for readability (the eventfd, or the pipe's
    /// read end).
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.imp {
            Imp::EventFd(fd) => fd.as_fd(),
            Imp::Pipe { read, .. } => read.as_fd(),
        }
    }
}

impl AsRawFd for Notifier {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("backend", &self.backend)
            .field("fd", &self.as_raw_fd())
            .field("writes", &self.writes())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn pipe_drain_empties_many_bytes() {
        // Bytes written by someone other than notify (a foreign writer, or
        // spurious extra raises) are all consumed by one drain.
        let n = Notifier::with_backend(Backend::Pipe2).unwrap();
        if let Imp::Pipe { write, .. } = &n.imp {
            sys::fd::write(write, &[0u8; 200]).unwrap();
        }
        assert!(n.drain().unwrap());
        assert_eq!(sys::fd::bytes_readable(n.as_fd()).unwrap(), 0);
        assert!(!n.drain().unwrap());
    }

    #[test]
    fn an_edge_write_to_a_saturated_eventfd_empties_it_and_writes_again() {
        let n = Notifier::with_backend(Backend::EventFd).unwrap();
        let Imp::EventFd(fd) = &n.imp else {
            panic!("not an eventfd");
        };
        sys::eventfd::write_counter(fd, MAX_COUNTER).unwrap();
        n.raise_edge().unwrap();
        // Emptied, then one written: the counter went 0 -> 1, a new event.
        assert_eq!(sys::eventfd::read_counter(fd).unwrap(), 1);
        assert_eq!(n.writes(), 1);
    }

    #[test]
    fn an_edge_write_to_a_full_pipe_empties_it_and_writes_again() {
        let n = Notifier::with_backend(Backend::Pipe2).unwrap();
        let Imp::Pipe { write, .. } = &n.imp else {
            panic!("not a pipe");
        };
        // Whole pages, then single bytes for whatever room is left.
        for chunk in [&[0u8; 4096][..], &[0u8; 1][..]] {
            loop {
                match sys::fd::write(write, chunk) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        n.raise_edge().unwrap();
        assert_eq!(n.consume_count().unwrap(), 1);
    }

    #[test]
    fn saturated_eventfd_counts_as_sent() {
        let n = Notifier::with_backend(Backend::EventFd).unwrap();
        if let Imp::EventFd(fd) = &n.imp {
            sys::eventfd::write_counter(fd, MAX_COUNTER).unwrap();
        }
        // The write fails with EAGAIN inside; notify must report success.
        assert!(n.notify().unwrap());
        assert!(n.drain().unwrap());
        assert!(n.notify().unwrap());
        assert!(n.drain().unwrap());
    }
}
