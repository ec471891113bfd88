//! Child processes as loop sources: [`Child`] reports how a child process
//! ended, once, and then leaves the loop.
//!
//! Two backends, chosen at run time ([`ChildBackend`]):
//!
//! * **pidfd** (Linux ≥ 5.4): `pidfd_open` gives a descriptor that turns
//!   readable when the process exits; `waitid(P_PIDFD)` collects exactly
//!   that child. Nothing process-wide is touched.
//! * **SIGCHLD** (older kernels, sandboxes that refuse `pidfd_open`, or
//!   forced with [`FORCE_SIGCHLD_ENV`]): one process-wide `SIGCHLD` handler
//!   makes every fallback source readable; each source then asks
//!   `waitid(P_PID, its_pid, WNOHANG)` about *its own* child. fdloop never
//!   calls `waitpid(-1)`, so children that belong to other code are left for
//!   that code to reap. Because `SIGCHLD` merges (several exits can arrive as
//!   one signal), every source checks on every signal.
//!
//! # Reaping
//!
//! A [`Child`] *reaps* its process (collects the zombie). Afterwards the
//! kernel has forgotten it: `std::process::Child::wait`/`try_wait` on the
//! same process fail (`ECHILD`), and the pid may be reused. Keep the exit
//! status fdloop hands you instead.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::error::ContextError;
use crate::event_loop::{Action, AfterPanic, Interest, Mode, Readiness, Registrar, Source};
use crate::fallback::{self, errno_is};
use crate::notify::Notifier;
use crate::sys;
use crate::sys::pidfd::{Ended, Target};

pub use crate::fallback::FORCE_SIGCHLD_ENV;

/// How a [`Child`] learns that its process ended.
///
/// # Examples
///
/// ```
/// use fdloop::process::{Child, ChildBackend};
///
/// let mut proc = std::process::Command::new("true").spawn()?;
/// let child = Child::new(&proc)?;
/// match child.backend() {
///     ChildBackend::PidFd => println!("pidfd: no signal handler involved"),
///     ChildBackend::Sigchld => println!("fallback: a SIGCHLD handler is installed"),
/// }
/// # drop(child); let _ = proc.wait();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildBackend {
    /// A pidfd (`pidfd_open`, Linux ≥ 5.3) and `waitid(P_PIDFD)` (≥ 5.4).
    PidFd,
    /// A process-wide `SIGCHLD` handler that wakes a notifier per source,
    /// and `waitid(P_PID)` for the source's own pid.
    Sigchld,
}

impl fmt::Display for ChildBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChildBackend::PidFd => "pidfd",
            ChildBackend::Sigchld => "SIGCHLD",
        })
    }
}

/// How a child process ended.
///
/// Converts into [`std::process::ExitStatus`] with [`Exit::status`] or
/// `From`.
///
/// # Examples
///
/// ```
/// use fdloop::process::Exit;
///
/// let e = Exit::Exited(3);
/// assert_eq!(e.code(), Some(3));
/// assert!(!e.success());
/// assert_eq!(std::process::ExitStatus::from(e).code(), Some(3));
/// let k = Exit::Signaled { signal: 9, core_dumped: false };
/// assert_eq!((k.code(), k.signal()), (None, Some(9)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// The process called `exit` (or returned from `main`) with this code;
    /// only its low 8 bits survive (`exit(256)` reads as 0).
    Exited(i32),
    /// A signal terminated the process.
    Signaled {
        /// The signal's number (`libc::SIGKILL` is 9).
        signal: i32,
        /// Whether a core file was written.
        core_dumped: bool,
    },
}

impl Exit {
    /// Whether the process exited with code 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(fdloop::process::Exit::Exited(0).success());
    /// ```
    pub fn success(self) -> bool {
        self == Exit::Exited(0)
    }

    /// The exit code, if the process exited normally.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(fdloop::process::Exit::Exited(7).code(), Some(7));
    /// ```
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Exited(c) => Some(c),
            Exit::Signaled { .. } => None,
        }
    }

    /// The terminating signal, if a signal ended the process.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = fdloop::process::Exit::Signaled { signal: 15, core_dumped: false };
    /// assert_eq!(e.signal(), Some(15));
    /// ```
    pub fn signal(self) -> Option<i32> {
        match self {
            Exit::Signaled { signal, .. } => Some(signal),
            Exit::Exited(_) => None,
        }
    }

    /// The same information as a [`std::process::ExitStatus`] (built from
    /// the raw wait status with `ExitStatusExt::from_raw`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// let e = fdloop::process::Exit::Signaled { signal: 6, core_dumped: true };
    /// let s = e.status();
    /// assert_eq!((s.signal(), s.core_dumped()), (Some(6), true));
    /// ```
    pub fn status(self) -> std::process::ExitStatus {
        let raw = match self {
            Exit::Exited(code) => (code & 0xff) << 8,
            Exit::Signaled {
                signal,
                core_dumped,
            } => (signal & 0x7f) | if core_dumped { 0x80 } else { 0 },
        };
        std::process::ExitStatus::from_raw(raw)
    }
}

impl From<Exit> for std::process::ExitStatus {
    fn from(e: Exit) -> Self {
        e.status()
    }
}

impl From<Ended> for Exit {
    fn from(e: Ended) -> Self {
        match e {
            Ended::Exited(code) => Exit::Exited(code),
            Ended::Killed {
                signal,
                core_dumped,
            } => Exit::Signaled {
                signal,
                core_dumped,
            },
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Exited(c) => write!(f, "exit code {c}"),
            Exit::Signaled {
                signal,
                core_dumped: true,
            } => write!(f, "killed by signal {signal} (core dumped)"),
            Exit::Signaled { signal, .. } => write!(f, "killed by signal {signal}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Errors with context. The original OS error stays reachable as the
// `source()` of the `ContextError` inside the returned `io::Error`.

fn no_such_process(pid: i32, e: io::Error) -> io::Error {
    ContextError::wrap(
        io::ErrorKind::NotFound,
        format!("no such process: pid {pid} does not exist (or was already reaped)"),
        e,
    )
}

fn not_a_child(pid: i32, e: io::Error) -> io::Error {
    ContextError::wrap(
        io::ErrorKind::InvalidInput,
        format!(
            "pid {pid} is not an unreaped child of this process \
             (another waiter reaped it, or SIGCHLD is ignored)"
        ),
        e,
    )
}

// ---------------------------------------------------------------------------
// The SIGCHLD fan-out.
//
// The signal handler may not lock or allocate, so the set of fallback
// sources is a lock-free, append-only list of slots that are never freed
// (they are reused instead: at most as many slots exist as fallback sources
// were ever alive at once). A slot points at one source's notifier.
//
// Protocol between the handler (H) and a source releasing its slot (R),
// all operations SeqCst:
//
//   H1 busy += 1          R1 notifier = null
//   H2 n = notifier       R2 wait until busy == 0
//   H3 if n: notify(n)    R3 slot free; the notifier may be dropped
//   H4 busy -= 1
//
// In the single total order of SeqCst operations, either H2 comes after R1
// (H sees null and never touches the notifier), or H2 comes before R1 and
// then H1 precedes R2's reads, so R waits for H4. The notifier is therefore
// never used after it is dropped. If H interrupts R on R's own thread, R1
// has already happened in program order, so H sees null and R2 cannot spin
// on an interrupted handler.

struct Slot {
    notifier: AtomicPtr<Notifier>,
    busy: AtomicUsize,
    claimed: AtomicBool,
    next: AtomicPtr<Slot>,
}

static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(ptr::null_mut());

/// Runs in the signal handler: async-signal-safe (atomics, and
/// `Notifier::notify`, which is one atomic swap and at most one `write`).
fn wake_fallback_sources() {
    let mut p = SLOTS.load(Ordering::Acquire);
    while !p.is_null() {
        // SAFETY: slots are leaked at creation and never freed.
        let slot = unsafe { &*p };
        slot.busy.fetch_add(1, Ordering::SeqCst);
        let n = slot.notifier.load(Ordering::SeqCst);
        if !n.is_null() {
            // SAFETY: a non-null pointer here stays valid until `busy`
            // drops back (see the protocol above).
            let _ = unsafe { &*n }.notify();
        }
        slot.busy.fetch_sub(1, Ordering::SeqCst);
        p = slot.next.load(Ordering::Acquire);
    }
}

/// The handler's installation: `None` once installed, `Some(errno)` if
/// `sigaction` failed.
fn ensure_handler() -> io::Result<()> {
    static INSTALLED: OnceLock<Option<i32>> = OnceLock::new();
    let r = INSTALLED.get_or_init(|| {
        sys::pidfd::install_sigchld_handler(wake_fallback_sources)
            .err()
            .map(|e| e.raw_os_error().unwrap_or(libc::EINVAL))
    });
    match r {
        None => Ok(()),
        Some(errno) => Err(io::Error::from_raw_os_error(*errno)),
    }
}

/// One fallback source's place in the fan-out list; releases it on drop.
struct Registration {
    slot: &'static Slot,
    notifier: Arc<Notifier>,
}

impl Registration {
    fn new(notifier: Arc<Notifier>) -> Registration {
        let slot = Self::claim();
        slot.notifier
            .store(Arc::as_ptr(&notifier).cast_mut(), Ordering::SeqCst);
        Registration { slot, notifier }
    }

    fn claim() -> &'static Slot {
        let mut p = SLOTS.load(Ordering::Acquire);
        while !p.is_null() {
            // SAFETY: slots are never freed.
            let slot = unsafe { &*p };
            if slot
                .claimed
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return slot;
            }
            p = slot.next.load(Ordering::Acquire);
        }
        let slot: &'static Slot = Box::leak(Box::new(Slot {
            notifier: AtomicPtr::new(ptr::null_mut()),
            busy: AtomicUsize::new(0),
            claimed: AtomicBool::new(true),
            next: AtomicPtr::new(ptr::null_mut()),
        }));
        let mut head = SLOTS.load(Ordering::Acquire);
        loop {
            slot.next.store(head, Ordering::Relaxed);
            let new = ptr::from_ref(slot).cast_mut();
            match SLOTS.compare_exchange(head, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return slot,
                Err(h) => head = h,
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.slot.notifier.store(ptr::null_mut(), Ordering::SeqCst);
        while self.slot.busy.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        self.slot.claimed.store(false, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------
// Backend choice.

/// Set once pidfds proved unavailable in this process (`ENOSYS`, `EPERM`).
static PIDFD_UNUSABLE: AtomicBool = AtomicBool::new(false);

enum Imp {
    PidFd(OwnedFd),
    Sigchld(Registration),
}

/// A child process, watched until it ends: a loop [`Source`] whose one
/// event is the child's [`Exit`], after which it removes itself; also
/// usable on its own ([`try_wait`](Child::try_wait), [`wait`](Child::wait),
/// or its descriptor ([`AsFd`]) in your own poll set).
///
/// Creating a `Child` does not take the `std::process::Child` away: it only
/// reads the pid. But the `Child` *reaps* the process when it sees it end,
/// so afterwards `std::process::Child::wait` fails with `ECHILD` — use the
/// status delivered here. Only children of this process can be watched.
///
/// With the `SIGCHLD` backend, the handler must be able to run: do not
/// block `SIGCHLD` in every thread (as a signalfd for `SIGCHLD` would
/// require), and do not set it to `SIG_IGN` afterwards.
///
/// # Examples
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// use fdloop::process::{Child, Exit};
/// use fdloop::{Action, EventLoop};
///
/// let proc = Command::new("sh").args(["-c", "exit 7"]).spawn()?;
/// let mut ev = EventLoop::new()?;
/// ev.insert(Child::new(&proc)?, |exit, _, got: &mut Option<Exit>| {
///     *got = Some(exit);
///     Action::Remove // the source leaves after its one event anyway
/// })?;
/// let mut got = None;
/// while got.is_none() {
///     ev.run_once(&mut got, Some(Duration::from_secs(10)))?;
/// }
/// assert_eq!(got, Some(Exit::Exited(7)));
/// assert!(ev.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Child {
    pid: i32,
    imp: Imp,
    exit: Option<Exit>,
    delivered: bool,
    /// `waitid` failed with `ECHILD` inside the loop: the status is lost.
    lost: bool,
}

impl Child {
    /// Watches the process behind a `std::process::Child` (by its pid).
    ///
    /// Call it before anything reaps the child (`std`'s `wait`/`try_wait`
    /// having returned a status, for example).
    ///
    /// # Errors
    ///
    /// As [`from_pid`](Child::from_pid).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut proc = std::process::Command::new("false").spawn()?;
    /// let mut child = fdloop::process::Child::new(&proc)?;
    /// let exit = child.wait(None)?;
    /// assert_eq!(exit.and_then(|e| e.code()), Some(1));
    /// assert!(proc.wait().is_err()); // already reaped by fdloop
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(child: &std::process::Child) -> io::Result<Child> {
        Child::from_pid(child.id())
    }

    /// Watches the child process `pid`, on the best backend available: a
    /// pidfd, or the `SIGCHLD` fallback when `pidfd_open` or
    /// `waitid(P_PIDFD)` fails with `ENOSYS`, `EPERM` or `EINVAL`, or when
    /// [`FORCE_SIGCHLD_ENV`] is set. A backend found unavailable
    /// (`ENOSYS`/`EPERM`) is not tried again in this process.
    ///
    /// A child that has already exited (a zombie) is fine: it is reported
    /// at once.
    ///
    /// # Errors
    ///
    /// * [`NotFound`](io::ErrorKind::NotFound) — no such process (`ESRCH`);
    ///   a child already reaped by someone else counts.
    /// * [`InvalidInput`](io::ErrorKind::InvalidInput) — `pid` is 0 or out of
    ///   range, or the process is not an unreaped child of this one
    ///   (`ECHILD`; also when `SIGCHLD` is ignored, since the kernel then
    ///   reaps children itself).
    /// * `EMFILE`/`ENFILE`/`ENOMEM` as they come.
    /// * For the fallback: an error from `sigaction` or from creating the
    ///   source's [`Notifier`].
    ///
    /// The message names the pid; the original OS error is the error's
    /// [`source`](std::error::Error::source).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// let proc = std::process::Command::new("true").spawn()?;
    /// let mut child = fdloop::process::Child::from_pid(proc.id())?;
    /// assert!(child.wait(None)?.is_some_and(|e| e.success()));
    /// // Reaped: the pid no longer names a child.
    /// let again = fdloop::process::Child::from_pid(proc.id()).unwrap_err();
    /// assert!(matches!(again.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_pid(pid: u32) -> io::Result<Child> {
        if !fallback::forced_sigchld() && !PIDFD_UNUSABLE.load(Ordering::Relaxed) {
            match Child::with_backend(pid, ChildBackend::PidFd) {
                Ok(c) => return Ok(c),
                Err(e) if fallback::call_missing(&e) => {
                    crate::trace::notable!(
                        warn,
                        error = %e,
                        "pidfd unavailable: child processes watched through SIGCHLD"
                    );
                    PIDFD_UNUSABLE.store(true, Ordering::Relaxed);
                }
                // EINVAL: also "a thread, not a process" on older kernels,
                // so fall back for this pid only.
                Err(e) if errno_is(&e, Errno::INVAL) => {
                    crate::trace::notable!(
                        warn,
                        pid,
                        error = %e,
                        "pidfd refused for this child: watched through SIGCHLD"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Child::with_backend(pid, ChildBackend::Sigchld)
    }

    /// Watches child `pid` on exactly `backend`, without fallback and
    /// ignoring [`FORCE_SIGCHLD_ENV`].
    ///
    /// # Errors
    ///
    /// As [`from_pid`](Child::from_pid); in addition, for
    /// [`ChildBackend::PidFd`], the raw `ENOSYS`/`EPERM`/`EINVAL` where
    /// pidfds are unavailable.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::process::{Child, ChildBackend};
    /// let proc = std::process::Command::new("true").spawn()?;
    /// let mut child = Child::with_backend(proc.id(), ChildBackend::Sigchld)?;
    /// assert_eq!(child.backend(), ChildBackend::Sigchld);
    /// assert!(child.wait(None)?.is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_backend(pid: u32, backend: ChildBackend) -> io::Result<Child> {
        let pid = i32::try_from(pid).ok().filter(|p| *p > 0).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid pid {pid}: must be in 1..=i32::MAX"),
            )
        })?;
        let imp = match backend {
            ChildBackend::PidFd => Imp::PidFd(open_pidfd(pid)?),
            ChildBackend::Sigchld => Imp::Sigchld(register_fallback(pid)?),
        };
        Ok(Child {
            pid,
            imp,
            exit: None,
            delivered: false,
            lost: false,
        })
    }

    /// The process id.
    ///
    /// # Examples
    ///
    /// ```
    /// let proc = std::process::Command::new("true").spawn()?;
    /// let mut child = fdloop::process::Child::new(&proc)?;
    /// assert_eq!(child.pid(), proc.id());
    /// # child.wait(None)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// The backend in use.
    ///
    /// # Examples
    ///
    /// ```
    /// let proc = std::process::Command::new("true").spawn()?;
    /// let mut child = fdloop::process::Child::new(&proc)?;
    /// println!("watching {} through {}", child.pid(), child.backend());
    /// # child.wait(None)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn backend(&self) -> ChildBackend {
        match self.imp {
            Imp::PidFd(_) => ChildBackend::PidFd,
            Imp::Sigchld(_) => ChildBackend::Sigchld,
        }
    }

    /// Collects the exit status if the child has ended, without blocking.
    ///
    /// Returns `Ok(None)` while it runs. Once collected, the status is kept
    /// and returned by every later call.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if someone else reaped
    /// the child first (`ECHILD`: `std::process::Child::wait`, a
    /// `waitpid(-1)` elsewhere, `SIGCHLD` set to `SIG_IGN`); the status is
    /// then lost. Other `waitid` errors as they come (`EINTR` is retried).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let proc = std::process::Command::new("sleep").arg("0.05").spawn()?;
    /// let mut child = fdloop::process::Child::new(&proc)?;
    /// assert_eq!(child.try_wait()?, None);
    /// std::thread::sleep(Duration::from_millis(200));
    /// assert!(child.try_wait()?.is_some_and(|e| e.success()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        if self.exit.is_some() {
            return Ok(self.exit);
        }
        if let Imp::Sigchld(reg) = &self.imp {
            // Consume the wake-up before looking, so an exit after the look
            // leaves the notifier readable.
            reg.notifier.drain()?;
        }
        let target = match &self.imp {
            Imp::PidFd(fd) => Target::PidFd(fd.as_fd()),
            Imp::Sigchld(_) => Target::Pid(self.pid),
        };
        loop {
            match sys::pidfd::waitid(target, true) {
                Ok(Some(e)) => {
                    self.exit = Some(e.into());
                    return Ok(self.exit);
                }
                Ok(None) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if errno_is(&e, Errno::CHILD) => return Err(not_a_child(self.pid, e)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Blocks until the child ends or `timeout` passes (`None`: no limit),
    /// then collects its status. `Ok(None)` on timeout. Waits with `ppoll`
    /// on the source's descriptor.
    ///
    /// # Errors
    ///
    /// As [`try_wait`](Child::try_wait); `ppoll` errors other than `EINTR`
    /// (which is retried with the time left).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut proc = std::process::Command::new("sleep").arg("10").spawn()?;
    /// let mut child = fdloop::process::Child::new(&proc)?;
    /// assert_eq!(child.wait(Some(Duration::from_millis(10)))?, None);
    /// proc.kill()?;
    /// let exit = child.wait(Some(Duration::from_secs(10)))?;
    /// assert_eq!(exit.and_then(|e| e.signal()), Some(libc::SIGKILL));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<Option<Exit>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if let Some(e) = self.try_wait()? {
                return Ok(Some(e));
            }
            // `None`: no limit, or one too far away to represent.
            let remaining = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(None);
                    }
                    Some(d - now)
                }
                None => None,
            };
            match sys::fd::poll_one(self.as_fd(), true, false, remaining) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn open_pidfd(pid: i32) -> io::Result<OwnedFd> {
    let fd = match sys::pidfd::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if errno_is(&e, Errno::SRCH) => return Err(no_such_process(pid, e)),
        Err(e) => return Err(e),
    };
    // Peek (WNOWAIT: nothing is reaped) to check that it is our child and
    // that this kernel takes P_PIDFD (5.4; pidfd_open came in 5.3).
    match sys::pidfd::waitid(Target::PidFd(fd.as_fd()), false) {
        Ok(_) => Ok(fd),
        Err(e) if errno_is(&e, Errno::CHILD) => Err(not_a_child(pid, e)),
        Err(e) => {
            if errno_is(&e, Errno::INVAL) {
                // Linux 5.3: pidfd_open without P_PIDFD. Same for every pid.
                PIDFD_UNUSABLE.store(true, Ordering::Relaxed);
            }
            Err(e)
        }
    }
}

fn register_fallback(pid: i32) -> io::Result<Registration> {
    ensure_handler()?;
    loop {
        match sys::pidfd::waitid(Target::Pid(pid), false) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if errno_is(&e, Errno::CHILD) => {
                return Err(match sys::pidfd::probe(pid) {
                    Err(p) if errno_is(&p, Errno::SRCH) => no_such_process(pid, e),
                    _ => not_a_child(pid, e),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let reg = Registration::new(Arc::new(Notifier::new()?));
    // Look once after joining the fan-out: the child may have exited before
    // (its SIGCHLD came and went); after this, every exit wakes us.
    reg.notifier.notify()?;
    Ok(reg)
}

/// The loop source: one event, the [`Exit`], then [`Action::Remove`]
/// whatever the callback returns. If the status cannot be collected
/// (`ECHILD`: someone else reaped the child), `process` reports the error
/// once and the source removes itself on its next wake-up.
impl Source for Child {
    type Event = Exit;
    type Metadata = ();

    fn register(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        r.add(self.as_fd(), 0, Interest::READABLE, Mode::Level)?;
        if let Imp::Sigchld(reg) = &self.imp {
            // Check at (re-)registration: an exit that happened while the
            // source was disabled or before insertion is not missed.
            reg.notifier.notify()?;
        }
        Ok(())
    }

    fn unregister(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        r.delete(self.as_fd())
    }

    fn process(
        &mut self,
        _ready: Readiness,
        _sub: u8,
        _r: &mut Registrar<'_>,
        callback: &mut dyn FnMut(Exit, &mut ()) -> Action,
    ) -> io::Result<Action> {
        if self.delivered || self.lost {
            return Ok(Action::Remove);
        }
        match self.try_wait() {
            Ok(Some(exit)) => {
                self.delivered = true;
                callback(exit, &mut ());
                Ok(Action::Remove)
            }
            Ok(None) => Ok(Action::Continue),
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidInput {
                    self.lost = true;
                    if let Imp::Sigchld(reg) = &self.imp {
                        // Come back once more to leave the loop.
                        reg.notifier.notify()?;
                    }
                }
                Err(e)
            }
        }
    }
    /// The callback panicked: the exit was delivered, so the source leaves
    /// the loop, as after a normal return.
    fn after_panic(&mut self, _r: &mut Registrar<'_>) -> AfterPanic {
        if self.delivered {
            AfterPanic::Remove
        } else {
            AfterPanic::Stay
        }
    }
}

impl AsFd for Child {
    /// The pidfd, or with the `SIGCHLD` backend the source's notifier:
    /// readable once the child may have ended (then call
    /// [`try_wait`](Child::try_wait)).
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.imp {
            Imp::PidFd(fd) => fd.as_fd(),
            Imp::Sigchld(reg) => reg.notifier.as_fd(),
        }
    }
}

impl AsRawFd for Child {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("backend", &self.backend())
            .field("exit", &self.exit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_status_round_trip() {
        use std::os::unix::process::ExitStatusExt;
        let s = Exit::Exited(300).status();
        assert_eq!(s.code(), Some(300 & 0xff));
        let s = Exit::Signaled {
            signal: 11,
            core_dumped: true,
        }
        .status();
        assert_eq!((s.signal(), s.core_dumped()), (Some(11), true));
    }

    #[test]
    fn slots_are_reused() {
        let a = Registration::new(Arc::new(Notifier::new().unwrap()));
        let pa = ptr::from_ref(a.slot);
        drop(a);
        let b = Registration::new(Arc::new(Notifier::new().unwrap()));
        // Another test may claim the freed slot concurrently; only check
        // that claiming works and a live slot points at its notifier.
        let _ = pa;
        assert_eq!(
            b.slot.notifier.load(Ordering::SeqCst).cast_const(),
            Arc::as_ptr(&b.notifier)
        );
        wake_fallback_sources();
        assert!(b.notifier.drain().unwrap());
    }
}
