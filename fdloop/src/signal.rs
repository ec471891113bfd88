//! Signals as events: a `signalfd(2)` source, and the signal-mask helpers
//! that make it reliable.
//!
//! # How it works
//!
//! A signalfd is a descriptor that becomes readable while one of its signals
//! is *pending*, and reading it takes the signal off the pending list as a
//! record ([`SignalInfo`]: which signal, who sent it, why). For that to
//! happen the signal must never be *delivered* the ordinary way, so it has
//! to be **blocked** — and a signal mask belongs to each thread, not to the
//! process.
//!
//! # The pitfall: every thread must block the signal
//!
//! The kernel hands a process-directed signal (`kill`, Ctrl-C, a child's
//! `SIGCHLD`) to *any* thread that does not block it. If one thread of the
//! process leaves `SIGTERM` unblocked, `SIGTERM` goes there — runs the
//! handler or the default action, which for `SIGTERM` kills the process —
//! and the signalfd never sees it. A new thread starts with a copy of its
//! creator's mask, so:
//!
//! * block the signals **first thing in `main()`, before any thread is
//!   spawned** (also before anything that spawns threads behind your back:
//!   runtimes, thread pools, logging back ends), with [`block`]; every thread
//!   created afterwards inherits the mask;
//! * threads spawned *before* that keep the signals unblocked and steal
//!   them. [`Signals`] detects this: when it joins an event loop, it reads
//!   `SigBlk` in `/proc/self/task/*/status` and refuses, naming each thread
//!   (id and name) that would steal a watched signal
//!   ([`UnblockedThreads`]). [`Signals::check_threads`] runs the same check
//!   on demand; [`Signals::allow_unblocked_threads`] turns it off.
//!
//! [`Signals::new`] blocks its signals in the thread that calls it (and
//! unblocks on drop what it blocked), which is enough for a single-threaded
//! program but not for the others.
//!
//! # Child processes
//!
//! The signal mask is inherited across `fork` and kept across `exec`: a
//! program started with `SIGINT` and `SIGTERM` blocked ignores Ctrl-C and
//! `kill`. Rust's [`std::process::Command`] does **not** clean this up —
//! it used to empty the child's mask, but since rust-lang/rust#101077
//! (so that masks set up by tools like `nohup` reach grandchildren) the
//! child inherits the mask of the thread that spawns it; fdloop's tests
//! check this. So:
//!
//! * commands you spawn from a thread that blocks signals for a signalfd
//!   need them unblocked: [`unblock_in_child`] adds a `pre_exec` hook that
//!   unblocks them in the child just before `exec`;
//! * a child made with a raw `fork` that goes on running Rust code (no
//!   `exec`) keeps the mask too: call [`unblock`] in the child if it needs
//!   the signals delivered normally.
//!
//! After `fork`, a signalfd inherited by the child is of no use there: reads
//! would return the child's signals, but `epoll`/`poll` keep watching the
//! parent's, so readiness is never reported. fdloop notices the fork: the
//! [`Signals`] methods that read or register fail in the child, as does the
//! event loop; create a new `Signals` in the child instead.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use fdloop::signal::{Signal, Signals};
//! use fdloop::{Action, EventLoop};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Before any thread exists: every thread inherits this mask.
//!     fdloop::signal::block(&[Signal::INT, Signal::TERM, Signal::USR1])?.keep();
//!
//!     let mut ev = EventLoop::new()?;
//!     let signals = Signals::new(&[Signal::INT, Signal::TERM, Signal::USR1])?;
//!     ev.insert(signals, |info, _signals, stop: &mut bool| {
//!         println!("got {} from pid {}", info.signal, info.pid);
//!         *stop = info.signal != Signal::USR1;
//!         Action::Continue
//!     })?;
//!
//!     Signal::USR1.raise()?; // stand-in for `kill -USR1 <pid>`
//!     let mut stop = false;
//!     ev.run_once(&mut stop, Some(Duration::from_secs(5)))?;
//!     assert!(!stop);
//!     Ok(())
//! }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crate::event_loop::{Action, Interest, Mode, Readiness, Registrar, Source};
use crate::sys;
use crate::sys::signalfd::RawSigInfo;

/// A signal number, known to be valid on this system.
///
/// Made from the associated constants, [`Signal::realtime`] or
/// [`Signal::from_raw`]. Displays as its name (`SIGINT`, `SIGRTMIN+2`).
///
/// # Examples
///
/// ```
/// use fdloop::signal::Signal;
/// assert_eq!(Signal::INT.as_raw(), 2);
/// assert_eq!(Signal::from_raw(15), Some(Signal::TERM));
/// assert_eq!(Signal::TERM.to_string(), "SIGTERM");
/// assert_eq!(Signal::from_raw(0), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// The standard signals, by name, for `Display` and `from_raw`.
const STANDARD: [(i32, &str); 31] = [
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

impl Signal {
    /// `SIGHUP`: the controlling terminal hung up; by convention, "reload".
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`: interrupt from the keyboard (Ctrl-C).
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGQUIT`: quit from the keyboard (Ctrl-\\).
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGILL`: illegal instruction.
    pub const ILL: Signal = Signal(libc::SIGILL);
    /// `SIGTRAP`: breakpoint or trace trap.
    pub const TRAP: Signal = Signal(libc::SIGTRAP);
    /// `SIGABRT`: `abort(3)`.
    pub const ABRT: Signal = Signal(libc::SIGABRT);
    /// `SIGBUS`: bus error (bad memory access).
    pub const BUS: Signal = Signal(libc::SIGBUS);
    /// `SIGFPE`: arithmetic exception.
    pub const FPE: Signal = Signal(libc::SIGFPE);
    /// `SIGKILL`: cannot be caught, blocked or watched.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// `SIGUSR1`: for the application.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGSEGV`: invalid memory reference.
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    /// `SIGUSR2`: for the application.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// `SIGPIPE`: write to a pipe or socket with no reader.
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    /// `SIGALRM`: `alarm(2)` timer.
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    /// `SIGTERM`: polite request to terminate.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGSTKFLT`: unused stack fault.
    pub const STKFLT: Signal = Signal(libc::SIGSTKFLT);
    /// `SIGCHLD`: a child stopped, continued or exited.
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    /// `SIGCONT`: continue if stopped.
    pub const CONT: Signal = Signal(libc::SIGCONT);
    /// `SIGSTOP`: cannot be caught, blocked or watched.
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// `SIGTSTP`: stop from the keyboard (Ctrl-Z).
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    /// `SIGTTIN`: background read from the terminal.
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    /// `SIGTTOU`: background write to the terminal.
    pub const TTOU: Signal = Signal(libc::SIGTTOU);
    /// `SIGURG`: urgent data on a socket.
    pub const URG: Signal = Signal(libc::SIGURG);
    /// `SIGXCPU`: CPU time limit exceeded.
    pub const XCPU: Signal = Signal(libc::SIGXCPU);
    /// `SIGXFSZ`: file size limit exceeded.
    pub const XFSZ: Signal = Signal(libc::SIGXFSZ);
    /// `SIGVTALRM`: virtual timer.
    pub const VTALRM: Signal = Signal(libc::SIGVTALRM);
    /// `SIGPROF`: profiling timer.
    pub const PROF: Signal = Signal(libc::SIGPROF);
    /// `SIGWINCH`: the terminal window changed size.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);
    /// `SIGIO`: I/O possible on a descriptor set up with `O_ASYNC`.
    pub const IO: Signal = Signal(libc::SIGIO);
    /// `SIGPWR`: power failure.
    pub const PWR: Signal = Signal(libc::SIGPWR);
    /// `SIGSYS`: bad system call (also what a seccomp trap sends).
    pub const SYS: Signal = Signal(libc::SIGSYS);

    /// The signal numbered `raw`, if it exists here: the standard signals
    /// `1..=31` and the realtime signals from `SIGRTMIN` to `SIGRTMAX` as
    /// the C library counts them (glibc keeps 32 and 33 for itself, so they
    /// are refused).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::Signal;
    /// assert_eq!(Signal::from_raw(10), Some(Signal::USR1));
    /// assert_eq!(Signal::from_raw(65), None);
    /// assert_eq!(Signal::from_raw(-1), None);
    /// assert!(Signal::from_raw(64).is_some_and(Signal::is_realtime));
    /// ```
    pub fn from_raw(raw: i32) -> Option<Signal> {
        let standard = (1..=31).contains(&raw);
        let realtime = (sys::signalfd::sigrtmin()..=sys::signalfd::sigrtmax()).contains(&raw);
        (standard || realtime).then_some(Signal(raw))
    }

    /// The realtime signal `SIGRTMIN + n`, if it is at most `SIGRTMAX`.
    /// Realtime signals queue: each one sent is a separate record, where a
    /// standard signal sent twice before it is read is seen once.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::Signal;
    /// let rt = Signal::realtime(0).unwrap();
    /// assert_eq!(rt.to_string(), "SIGRTMIN");
    /// assert_eq!(Signal::realtime(2).unwrap().to_string(), "SIGRTMIN+2");
    /// assert_eq!(Signal::realtime(100), None);
    /// ```
    pub fn realtime(n: u32) -> Option<Signal> {
        let n = i32::try_from(n).ok()?;
        Signal::from_raw(sys::signalfd::sigrtmin().checked_add(n)?)
    }

    /// Whether this is a realtime signal (`SIGRTMIN..=SIGRTMAX`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::Signal;
    /// assert!(!Signal::INT.is_realtime());
    /// ```
    pub fn is_realtime(self) -> bool {
        self.0 >= sys::signalfd::sigrtmin()
    }

    /// The signal number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(fdloop::signal::Signal::KILL.as_raw(), 9);
    /// ```
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// Sends this signal to the calling thread (`raise(3)`).
    ///
    /// If the signal is blocked in this thread, it stays pending for this
    /// thread until read (a [`Signals`] created in this thread will see it).
    /// If not, its handler or default action runs before this returns — for
    /// most signals the default action **terminates the process**.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an invalid signal (cannot happen for a `Signal`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let signals = Signals::new(&[Signal::USR2])?; // blocks USR2 here
    /// Signal::USR2.raise()?;
    /// assert_eq!(signals.try_read()?.map(|i| i.signal), Some(Signal::USR2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn raise(self) -> io::Result<()> {
        sys::signalfd::raise(self.0)
    }

    fn bit(self) -> u64 {
        // Valid signals are 1..=64 (see `sys::signalfd`): the shift fits.
        1u64 << ((self.0 - 1) & 63)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((_, name)) = STANDARD.iter().find(|(n, _)| *n == self.0) {
            return f.write_str(name);
        }
        let min = sys::signalfd::sigrtmin();
        match self.0 - min {
            0 => f.write_str("SIGRTMIN"),
            k if k > 0 => write!(f, "SIGRTMIN+{k}"),
            _ => write!(f, "signal {}", self.0),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The bitmask for `signals`, refusing those that cannot be blocked.
fn mask_of(signals: &[Signal]) -> io::Result<u64> {
    let mut mask = 0;
    for &s in signals {
        if s == Signal::KILL || s == Signal::STOP {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{s} cannot be blocked, caught or read from a signalfd"),
            ));
        }
        mask |= s.bit();
    }
    Ok(mask)
}

/// The signals in a bitmask, in numeric order.
fn signals_in(mask: u64) -> Vec<Signal> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| Signal(b + 1))
        .collect()
}

fn names(signals: &[Signal]) -> String {
    let v: Vec<String> = signals.iter().map(Signal::to_string).collect();
    v.join(", ")
}

/// One signal occurrence, as read from a signalfd (`struct
/// signalfd_siginfo`).
///
/// Which fields mean something depends on the signal and on [`code`]
/// (`si_code`, see `sigaction(2)`):
///
/// * sent with `kill`, `sigqueue`, `tgkill`/`raise`
///   ([`sent_by_process`](SignalInfo::sent_by_process)): `pid` and `uid`
///   are the sender's; `value` carries `sigqueue`'s data;
/// * `SIGCHLD`: `pid` and `uid` are the child's, `status` its exit status
///   or the signal that ended it, `utime`/`stime` its CPU time in clock
///   ticks;
/// * `SIGIO`: `fd` and `band`;
/// * POSIX timers: `timer_id` and `overrun`.
///
/// [`code`]: SignalInfo::code
///
/// # Examples
///
/// ```
/// use fdloop::signal::{Signal, Signals};
/// let signals = Signals::new(&[Signal::USR1])?;
/// Signal::USR1.raise()?;
/// let info = signals.try_read()?.expect("pending");
/// assert_eq!(info.signal, Signal::USR1);
/// assert_eq!(info.pid, std::process::id());
/// assert!(info.sent_by_process());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignalInfo {
    /// The signal.
    pub signal: Signal,
    /// Why it was sent (`si_code`): `SI_USER` (0) for `kill`, `SI_TKILL`
    /// (-6) for `tgkill`/`raise`, `SI_QUEUE` (-1) for `sigqueue`,
    /// `SI_KERNEL` (0x80), or a signal-specific code such as `CLD_EXITED`.
    pub code: i32,
    /// The sending process (or, for `SIGCHLD`, the child).
    pub pid: u32,
    /// The real user id of the sender (or, for `SIGCHLD`, of the child).
    pub uid: u32,
    /// `SIGCHLD`: exit status or terminating signal.
    pub status: i32,
    /// An error number (`si_errno`), generally 0.
    pub errno: i32,
    /// The integer `sigqueue(3)` sent (`si_int`).
    pub value: i32,
    /// The pointer-sized `sigqueue(3)` value (`si_ptr`).
    pub value_ptr: u64,
    /// `SIGIO`: the descriptor.
    pub fd: i32,
    /// `SIGIO`: the band event.
    pub band: u32,
    /// POSIX timer signals: the kernel's timer id.
    pub timer_id: u32,
    /// POSIX timer signals: the overrun count.
    pub overrun: u32,
    /// `SIGCHLD`: user CPU time consumed, in clock ticks.
    pub utime: u64,
    /// `SIGCHLD`: system CPU time consumed, in clock ticks.
    pub stime: u64,
}

impl SignalInfo {
    fn from_raw(r: &RawSigInfo) -> SignalInfo {
        SignalInfo {
            // The kernel only reports signals the signalfd watches, all of
            // which came from a `Signal`.
            signal: Signal(i32::try_from(r.signo).unwrap_or(0)),
            code: r.code,
            pid: r.pid,
            uid: r.uid,
            status: r.status,
            errno: r.errno,
            value: r.int,
            value_ptr: r.ptr,
            fd: r.fd,
            band: r.band,
            timer_id: r.tid,
            overrun: r.overrun,
            utime: r.utime,
            stime: r.stime,
        }
    }

    /// Whether a process sent it with `kill`, `sigqueue` or
    /// `tgkill`/`raise`, so that [`pid`](SignalInfo::pid) and
    /// [`uid`](SignalInfo::uid) name the sender.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let signals = Signals::new(&[Signal::HUP])?;
    /// Signal::HUP.raise()?;
    /// assert!(signals.try_read()?.is_some_and(|i| i.sent_by_process()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sent_by_process(&self) -> bool {
        matches!(self.code, libc::SI_USER | libc::SI_QUEUE | libc::SI_TKILL)
    }
}

/// Blocks `signals` in the calling thread (`pthread_sigmask(SIG_BLOCK)`)
/// and returns a guard that unblocks them again when dropped.
///
/// Call it **at the start of `main()`, before any thread is spawned**:
/// every thread inherits its creator's mask, so all threads created
/// afterwards block the signals too, which is what a signalfd needs (see
/// the [module docs](self)). Keep the mask for the life of the program with
/// [`SignalMask::keep`].
///
/// The guard undoes exactly what this call changed: signals that were
/// already blocked stay blocked. It is not `Send`, because a mask belongs to
/// a thread. A signal still pending when it is unblocked is delivered then.
///
/// Children inherit the mask, across `exec` too — including those started
/// with [`std::process::Command`]; use [`unblock_in_child`] for them.
///
/// # Errors
///
/// `InvalidInput` for [`Signal::KILL`] and [`Signal::STOP`], which cannot be
/// blocked. `pthread_sigmask` itself cannot fail with valid arguments.
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
///
/// fn main() -> std::io::Result<()> {
///     // First thing: before any thread exists.
///     let mask = signal::block(&[Signal::INT, Signal::TERM])?;
///     assert!(signal::is_blocked(Signal::TERM)?);
///     let worker = std::thread::spawn(|| signal::is_blocked(Signal::TERM));
///     assert!(worker.join().unwrap()?); // inherited
///     drop(mask); // or `mask.keep()` to keep them blocked for good
///     assert!(!signal::is_blocked(Signal::TERM)?);
///     Ok(())
/// }
/// ```
pub fn block(signals: &[Signal]) -> io::Result<SignalMask> {
    let mask = mask_of(signals)?;
    let old = sys::signalfd::thread_block(mask)?;
    Ok(SignalMask {
        changed: mask & !old,
        _not_send: PhantomData,
    })
}

/// Whether `signal` is blocked in the calling thread.
///
/// # Errors
///
/// None in practice (`pthread_sigmask` only fails for invalid arguments).
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
/// assert!(!signal::is_blocked(Signal::WINCH)?);
/// let _mask = signal::block(&[Signal::WINCH])?;
/// assert!(signal::is_blocked(Signal::WINCH)?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn is_blocked(signal: Signal) -> io::Result<bool> {
    Ok(sys::signalfd::thread_mask()? & signal.bit() != 0)
}

/// Unblocks `signals` in the calling thread (`pthread_sigmask(SIG_UNBLOCK)`).
///
/// Meant for a `fork` child that does not `exec` and should receive the
/// signals the ordinary way again, or for a thread that must undo a mask it
/// inherited. A pending signal among them is delivered before this returns
/// (for most signals, by default, that terminates the process).
///
/// # Errors
///
/// `InvalidInput` for [`Signal::KILL`]/[`Signal::STOP`].
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
/// signal::block(&[Signal::TSTP])?.keep();
/// signal::unblock(&[Signal::TSTP])?;
/// assert!(!signal::is_blocked(Signal::TSTP)?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unblock(signals: &[Signal]) -> io::Result<()> {
    sys::signalfd::thread_unblock(mask_of(signals)?).map(drop)
}

/// Makes `cmd` unblock `signals` in the child, just before `exec`, so the
/// program it runs receives them normally although the spawning thread
/// blocks them (children inherit the mask; [`std::process::Command`] does
/// not reset it). Installs a `pre_exec` hook, so the command spawns with
/// `fork`/`exec` rather than `posix_spawn`.
///
/// # Errors
///
/// `InvalidInput` for [`Signal::KILL`]/[`Signal::STOP`]. A failure in the
/// child (practically impossible) makes `spawn` fail.
///
/// # Examples
///
/// ```
/// use std::process::Command;
/// use fdloop::signal::{self, Signal};
///
/// let _mask = signal::block(&[Signal::INT, Signal::TERM])?;
/// let mut cmd = Command::new("true");
/// signal::unblock_in_child(&mut cmd, &[Signal::INT, Signal::TERM])?;
/// assert!(cmd.status()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unblock_in_child<'c>(
    cmd: &'c mut Command,
    signals: &[Signal],
) -> io::Result<&'c mut Command> {
    let mask = mask_of(signals)?;
    Ok(sys::signalfd::unblock_before_exec(cmd, mask))
}

/// The guard [`block`] returns: while it lives, the signals stay blocked in
/// the thread that called `block`; dropping it unblocks those that `block`
/// newly blocked. Not `Send`: it must be dropped on that thread.
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
/// let mask = signal::block(&[Signal::USR1, Signal::USR2])?;
/// assert_eq!(mask.newly_blocked(), [Signal::USR1, Signal::USR2]);
/// mask.keep(); // stay blocked for the rest of the thread's life
/// assert!(signal::is_blocked(Signal::USR1)?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "dropping the guard unblocks the signals again; call `.keep()` to keep them blocked"]
pub struct SignalMask {
    changed: u64,
    _not_send: PhantomData<*const ()>,
}

impl SignalMask {
    /// Keeps the signals blocked: consumes the guard without unblocking.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{self, Signal};
    /// signal::block(&[Signal::PIPE])?.keep();
    /// assert!(signal::is_blocked(Signal::PIPE)?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn keep(mut self) {
        self.changed = 0;
    }

    /// The signals this guard blocked, which dropping it would unblock
    /// (those already blocked before [`block`] are not included).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{self, Signal};
    /// let outer = signal::block(&[Signal::ALRM])?;
    /// let inner = signal::block(&[Signal::ALRM, Signal::CONT])?;
    /// assert_eq!(inner.newly_blocked(), [Signal::CONT]);
    /// drop(inner);
    /// assert!(signal::is_blocked(Signal::ALRM)?); // still outer's
    /// # drop(outer);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn newly_blocked(&self) -> Vec<Signal> {
        signals_in(self.changed)
    }
}

impl Drop for SignalMask {
    fn drop(&mut self) {
        if self.changed != 0 {
            // Cannot fail with valid arguments; nothing to report from drop.
            let _ = sys::signalfd::thread_unblock(self.changed);
        }
    }
}

impl fmt::Debug for SignalMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalMask")
            .field("newly_blocked", &self.newly_blocked())
            .finish()
    }
}

/// A thread that does not block some signals a signalfd watches, so it
/// would receive them in place of the signalfd.
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
/// // This thread does not block SIGURG, so it is listed.
/// let me = signal::unblocked_threads(&[Signal::URG])?;
/// assert!(me.iter().any(|t| t.signals == [Signal::URG] && !t.name.is_empty()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnblockedThread {
    /// The kernel's thread id (`gettid`).
    pub tid: i32,
    /// The thread's name (`Name:` in `/proc`; at most 15 bytes, as set by
    /// [`std::thread::Builder::name`] or `pthread_setname_np`).
    pub name: String,
    /// The watched signals it does not block.
    pub signals: Vec<Signal>,
}

/// Lists the threads of this process that do not block every one of
/// `signals`, from the `SigBlk` field of `/proc/self/task/<tid>/status`.
/// Threads that exit while the list is made are left out.
///
/// A thread caught in the middle of starting may be missed: glibc creates
/// a thread with every signal blocked and sets the mask it inherits only
/// once it runs. The check is meant for threads that already exist (the
/// ones spawned before [`block`]), which it does find.
///
/// # Errors
///
/// `NotFound` (or `PermissionDenied`) if `/proc` is not mounted or not
/// readable; `InvalidData` if a status file has no readable `SigBlk`;
/// `InvalidInput` for [`Signal::KILL`]/[`Signal::STOP`].
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
/// let _mask = signal::block(&[Signal::WINCH])?;
/// // Only this thread exists, and it blocks SIGWINCH.
/// assert!(signal::unblocked_threads(&[Signal::WINCH])?.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unblocked_threads(signals: &[Signal]) -> io::Result<Vec<UnblockedThread>> {
    unblocked_in_mask(mask_of(signals)?)
}

fn unblocked_in_mask(mask: u64) -> io::Result<Vec<UnblockedThread>> {
    let mut out = Vec::new();
    if mask == 0 {
        return Ok(out);
    }
    for (tid, status) in sys::signalfd::task_statuses()? {
        let text = match status {
            Ok(t) => t,
            // The thread exited between the directory listing and the read.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let (name, blocked) = parse_status(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/self/task/{tid}/status has no readable SigBlk field"),
            )
        })?;
        let missing = mask & !blocked;
        if missing != 0 {
            out.push(UnblockedThread {
                tid,
                name,
                signals: signals_in(missing),
            });
        }
    }
    out.sort_by_key(|t| t.tid);
    Ok(out)
}

/// `(Name, SigBlk)` from a `/proc/<pid>/task/<tid>/status` text.
fn parse_status(text: &str) -> Option<(String, u64)> {
    let mut name = String::new();
    let mut blocked = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("Name:") {
            name = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("SigBlk:") {
            blocked = u64::from_str_radix(v.trim(), 16).ok();
        }
    }
    Some((name, blocked?))
}

/// The error a [`Signals`] gives when some threads do not block its
/// signals: it names each of them. Converts into an [`io::Error`] of kind
/// `Other` that carries it; [`UnblockedThreads::find`] gets it back out of
/// such an error, or of an [`fdloop::Error`](crate::Error) from
/// [`EventLoop::insert`](crate::EventLoop::insert).
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use fdloop::signal::{Signal, Signals, UnblockedThreads};
///
/// // The pitfall: a thread spawned before the signal is blocked...
/// let (up_tx, up_rx) = mpsc::channel();
/// let (done_tx, done_rx) = mpsc::channel::<()>();
/// let early = std::thread::Builder::new()
///     .name("early-worker".into())
///     .spawn(move || {
///         up_tx.send(()).unwrap();
///         done_rx.recv().ok()
///     })?;
/// up_rx.recv().unwrap(); // it runs (a starting thread shows all blocked)
/// // ...keeps it unblocked, although this thread now blocks it.
/// let signals = Signals::new(&[Signal::USR1])?;
/// let err = signals.check_threads().unwrap_err();
/// let found = UnblockedThreads::find(&err).expect("typed error inside");
/// assert_eq!(found.threads().len(), 1);
/// assert_eq!(found.threads()[0].name, "early-worker");
/// assert!(err.to_string().contains("\"early-worker\" (SIGUSR1)"));
/// done_tx.send(()).unwrap();
/// early.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnblockedThreads {
    threads: Vec<UnblockedThread>,
}

impl UnblockedThreads {
    /// The offending threads, by thread id.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals, UnblockedThreads};
    /// // SIGPROF is blocked in this thread only; a thread spawned earlier
    /// // does not block it.
    /// let (up_tx, up_rx) = std::sync::mpsc::channel();
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let early = std::thread::spawn(move || {
    ///     up_tx.send(()).unwrap();
    ///     rx.recv().ok()
    /// });
    /// up_rx.recv().unwrap();
    /// let signals = Signals::new(&[Signal::PROF])?;
    /// let err = signals.check_threads().unwrap_err();
    /// let threads = UnblockedThreads::find(&err).unwrap().threads();
    /// assert_eq!(threads[0].signals, [Signal::PROF]);
    /// tx.send(()).unwrap();
    /// early.join().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn threads(&self) -> &[UnblockedThread] {
        &self.threads
    }

    /// Finds an `UnblockedThreads` in `err` or its chain of sources,
    /// looking inside [`io::Error`]s that carry one.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::UnblockedThreads;
    /// let plain = std::io::Error::other("something else");
    /// assert!(UnblockedThreads::find(&plain).is_none());
    /// ```
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a UnblockedThreads> {
        let mut cur: Option<&'a (dyn StdError + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(u) = e.downcast_ref::<UnblockedThreads>() {
                return Some(u);
            }
            // `io::Error::source` skips the error it wraps, so look inside.
            if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
                if let Some(u) = inner.downcast_ref::<UnblockedThreads>() {
                    return Some(u);
                }
            }
            cur = e.source();
        }
        None
    }
}

impl fmt::Display for UnblockedThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} thread(s) do not block signals watched by a signalfd and would take them instead:",
            self.threads.len()
        )?;
        for t in &self.threads {
            write!(f, " thread {} {:?} ({});", t.tid, t.name, names(&t.signals))?;
        }
        f.write_str(
            " block the signals with fdloop::signal::block() in main() before spawning threads, \
             or opt out with Signals::allow_unblocked_threads(true)",
        )
    }
}

impl StdError for UnblockedThreads {}

impl From<UnblockedThreads> for io::Error {
    fn from(e: UnblockedThreads) -> io::Error {
        io::Error::other(e)
    }
}

/// Signals as a stream of [`SignalInfo`] records: a `signalfd` (close-on-exec,
/// non-blocking) and an event-loop [`Source`].
///
/// * **Creating** it blocks its signals in the calling thread, which the
///   signalfd needs; dropping it unblocks those it blocked (only when dropped
///   on that same thread). Other threads must block them too — see the
///   [module docs](self) and [`block`].
/// * **Inserting** it into an [`EventLoop`](crate::EventLoop) checks every
///   thread's mask and fails with [`UnblockedThreads`] (inside the loop's
///   [`Error::Io`](crate::Error::Io)) when a thread would steal a watched
///   signal; the source is then dropped. [`Signals::check_threads`] checks
///   beforehand, [`Signals::allow_unblocked_threads`] opts out. Where
///   `/proc` cannot be read, the check at insertion is skipped.
/// * **In the loop**, the callback receives each record with `&mut Signals`
///   (so it can [`add`](Signals::add) or [`remove`](Signals::remove)
///   signals). Each wake reads at most 32 records; more wait for the next
///   iteration.
/// * **Without a loop**: [`try_read`](Signals::try_read),
///   [`wait`](Signals::wait), [`read`](Signals::read),
///   [`read_all`](Signals::read_all); or put the descriptor ([`AsFd`]) into
///   your own poll set.
///
/// A standard signal sent several times before it is read is one record;
/// realtime signals ([`Signal::realtime`]) queue, one record each.
///
/// Processes spawned from a thread that blocks the signals inherit the
/// mask: see [`unblock_in_child`].
///
/// In a `fork` child, reading and registering fail: create a new `Signals`
/// there.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::signal::{Signal, SignalInfo, Signals};
/// use fdloop::{Action, EventLoop};
///
/// let mut ev = EventLoop::new()?;
/// let signals = Signals::new(&[Signal::USR1])?;
/// ev.insert(signals, |info, signals, got: &mut Vec<SignalInfo>| {
///     got.push(info);
///     signals.add(Signal::USR2).unwrap(); // watch one more from now on
///     Action::Continue
/// })?;
/// Signal::USR1.raise()?;
/// let mut got = Vec::new();
/// ev.run_once(&mut got, Some(Duration::from_secs(5)))?;
/// assert_eq!(got[0].signal, Signal::USR1);
/// assert_eq!(got[0].pid, std::process::id());
/// Signal::USR2.raise()?; // blocked by `add`: pending, not fatal
/// ev.run_once(&mut got, Some(Duration::from_secs(5)))?;
/// assert_eq!(got[1].signal, Signal::USR2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Signals {
    fd: OwnedFd,
    /// What the signalfd reads.
    watched: u64,
    /// What this value blocked in `owner`'s mask and will unblock on drop.
    changed: u64,
    owner: ThreadId,
    check_threads: bool,
    fork_gen: u64,
}

/// The most records one loop wake delivers.
const BATCH: usize = 32;

impl Signals {
    /// A signalfd reading `signals`; blocks them in the calling thread.
    /// The list may be empty (add signals later).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for [`Signal::KILL`]/[`Signal::STOP`];
    /// `EMFILE`/`ENFILE` when out of descriptors; `ENOMEM`; `ENOSYS` where
    /// signalfd is unavailable (pre-2.6.27 kernels, some sandboxes). On
    /// error the thread's mask is left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{self, Signal, Signals};
    /// let s = Signals::new(&[Signal::INT, Signal::TERM])?;
    /// assert!(signal::is_blocked(Signal::INT)?);
    /// drop(s);
    /// assert!(!signal::is_blocked(Signal::INT)?); // unblocked again
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(signals: &[Signal]) -> io::Result<Signals> {
        let watched = mask_of(signals)?;
        let fork_gen = sys::process::fork_generation();
        let old = sys::signalfd::thread_block(watched)?;
        let changed = watched & !old;
        match sys::signalfd::signalfd(watched) {
            Ok(fd) => Ok(Signals {
                fd,
                watched,
                changed,
                owner: thread::current().id(),
                check_threads: true,
                fork_gen,
            }),
            Err(e) => {
                if changed != 0 {
                    let _ = sys::signalfd::thread_unblock(changed);
                }
                Err(e)
            }
        }
    }

    /// Turns the thread check at loop insertion off (`true`) or back on
    /// (`false`, the default). Only for programs that know better — for
    /// instance, a thread that leaves a signal unblocked on purpose but
    /// never runs while it could be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let s = Signals::new(&[Signal::HUP])?.allow_unblocked_threads(true);
    /// # drop(s);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn allow_unblocked_threads(mut self, allow: bool) -> Signals {
        self.check_threads = !allow;
        self
    }

    /// Starts watching `signal` too: blocks it in the calling thread and
    /// adds it to the signalfd. Nothing happens if it is watched already.
    ///
    /// If called on a thread other than the creator's, that thread's mask
    /// changes and stays changed.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for [`Signal::KILL`]/[`Signal::STOP`]; the signalfd's
    /// update failing (practically never). On error nothing has changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let mut s = Signals::new(&[])?;
    /// s.add(Signal::WINCH)?;
    /// assert_eq!(s.signals(), [Signal::WINCH]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn add(&mut self, signal: Signal) -> io::Result<()> {
        let bit = mask_of(&[signal])?;
        if self.watched & bit != 0 {
            return Ok(());
        }
        let old = sys::signalfd::thread_block(bit)?;
        let newly = bit & !old;
        if let Err(e) = sys::signalfd::set_mask(&self.fd, self.watched | bit) {
            if newly != 0 {
                let _ = sys::signalfd::thread_unblock(newly);
            }
            return Err(e);
        }
        self.watched |= bit;
        if thread::current().id() == self.owner {
            self.changed |= newly;
        }
        Ok(())
    }

    /// Stops watching `signal`: removes it from the signalfd and, if this
    /// `Signals` blocked it (and this is the creating thread), unblocks it.
    /// Nothing happens if it was not watched.
    ///
    /// An occurrence still pending when it is unblocked is delivered at once
    /// in the ordinary way — for most signals, by default, that terminates
    /// the process. Read pending records first ([`read_all`](Signals::read_all))
    /// if that matters.
    ///
    /// # Errors
    ///
    /// The signalfd's update failing (practically never); then nothing has
    /// changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{self, Signal, Signals};
    /// let mut s = Signals::new(&[Signal::USR1, Signal::USR2])?;
    /// s.remove(Signal::USR1)?;
    /// assert_eq!(s.signals(), [Signal::USR2]);
    /// assert!(!signal::is_blocked(Signal::USR1)?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn remove(&mut self, signal: Signal) -> io::Result<()> {
        let bit = signal.bit();
        if self.watched & bit == 0 {
            return Ok(());
        }
        sys::signalfd::set_mask(&self.fd, self.watched & !bit)?;
        self.watched &= !bit;
        if self.changed & bit != 0 && thread::current().id() == self.owner {
            self.changed &= !bit;
            sys::signalfd::thread_unblock(bit)?;
        }
        Ok(())
    }

    /// The watched signals, in numeric order.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let s = Signals::new(&[Signal::TERM, Signal::INT])?;
    /// assert_eq!(s.signals(), [Signal::INT, Signal::TERM]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn signals(&self) -> Vec<Signal> {
        signals_in(self.watched)
    }

    /// The threads that do not block every watched signal (see
    /// [`unblocked_threads`]).
    ///
    /// # Errors
    ///
    /// As [`unblocked_threads`]: `NotFound` without `/proc`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let s = Signals::new(&[Signal::USR1])?;
    /// assert!(s.unblocked_threads()?.is_empty()); // the only thread blocks it
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unblocked_threads(&self) -> io::Result<Vec<UnblockedThread>> {
        unblocked_in_mask(self.watched)
    }

    /// Checks that every thread of the process blocks every watched signal,
    /// as inserting into a loop does.
    ///
    /// # Errors
    ///
    /// An `io::Error` of kind `Other` carrying [`UnblockedThreads`] (its
    /// message names each thread: id, name, signals); the errors of
    /// [`unblocked_threads`] when `/proc` cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// Signals::new(&[Signal::USR1])?.check_threads()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn check_threads(&self) -> io::Result<()> {
        let threads = self.unblocked_threads()?;
        if threads.is_empty() {
            Ok(())
        } else {
            Err(UnblockedThreads { threads }.into())
        }
    }

    fn check_fork(&self) -> io::Result<()> {
        if sys::process::fork_generation() == self.fork_gen {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "signalfd used in a forked child, where readiness is never reported; \
             create a new Signals in the child",
        ))
    }

    /// Takes one pending record, or `None` if none is pending. Never blocks.
    ///
    /// # Errors
    ///
    /// `Unsupported` in a `fork` child; otherwise practically none.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let s = Signals::new(&[Signal::USR1])?;
    /// assert_eq!(s.try_read()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_read(&self) -> io::Result<Option<SignalInfo>> {
        self.check_fork()?;
        let mut raw = [RawSigInfo::default(); 1];
        match sys::signalfd::read(&self.fd, &mut raw) {
            Ok(_) => Ok(Some(SignalInfo::from_raw(&raw[0]))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Takes every pending record (possibly none). Never blocks.
    ///
    /// # Errors
    ///
    /// As [`try_read`](Signals::try_read).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let s = Signals::new(&[Signal::USR1, Signal::USR2])?;
    /// Signal::USR1.raise()?;
    /// Signal::USR2.raise()?;
    /// let got: Vec<Signal> = s.read_all()?.iter().map(|i| i.signal).collect();
    /// assert_eq!(got, [Signal::USR1, Signal::USR2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_all(&self) -> io::Result<Vec<SignalInfo>> {
        self.check_fork()?;
        let mut out = Vec::new();
        let mut raw = [RawSigInfo::default(); sys::signalfd::MAX_RECORDS];
        loop {
            match sys::signalfd::read(&self.fd, &mut raw) {
                Ok(n) => out.extend(raw[..n].iter().map(SignalInfo::from_raw)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits up to `timeout` (`None`: forever) for a record and takes it;
    /// `None` if the time ran out. Sleeps in `ppoll`, retrying after signal
    /// handlers interrupt it.
    ///
    /// # Errors
    ///
    /// As [`try_read`](Signals::try_read).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::signal::{Signal, Signals};
    /// let s = Signals::new(&[Signal::USR1])?;
    /// assert_eq!(s.wait(Some(Duration::from_millis(10)))?, None);
    /// Signal::USR1.raise()?;
    /// assert!(s.wait(Some(Duration::from_secs(5)))?.is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<SignalInfo>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if let Some(info) = self.try_read()? {
                return Ok(Some(info));
            }
            let left = match (timeout, deadline) {
                (None, _) => None,
                (Some(_), Some(d)) => Some(d.saturating_duration_since(Instant::now())),
                // A timeout too large for `Instant`: as good as forever.
                (Some(_), None) => None,
            };
            if left == Some(Duration::ZERO) {
                return Ok(None);
            }
            match sys::fd::poll_one(&self.fd, true, false, left) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits as long as it takes for a record and takes it.
    ///
    /// # Errors
    ///
    /// As [`try_read`](Signals::try_read).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let s = Signals::new(&[Signal::USR1])?;
    /// Signal::USR1.raise()?;
    /// assert_eq!(s.read()?.signal, Signal::USR1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&self) -> io::Result<SignalInfo> {
        loop {
            if let Some(info) = self.wait(None)? {
                return Ok(info);
            }
        }
    }
}

impl Source for Signals {
    type Event = SignalInfo;
    type Metadata = Signals;

    fn register(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        self.check_fork()?;
        if self.check_threads {
            // Without /proc the check cannot be made; `check_threads`
            // reports that, insertion does not.
            if let Ok(threads) = self.unblocked_threads() {
                if !threads.is_empty() {
                    return Err(UnblockedThreads { threads }.into());
                }
            }
        }
        r.add(&self.fd, 0, Interest::READABLE, Mode::Level)
    }

    fn unregister(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        r.delete(&self.fd)
    }

    fn process(
        &mut self,
        _ready: Readiness,
        _sub: u8,
        _r: &mut Registrar<'_>,
        callback: &mut dyn FnMut(SignalInfo, &mut Signals) -> Action,
    ) -> io::Result<Action> {
        // One record per read: a callback that stops the source early
        // leaves the rest pending in the kernel, not lost in a buffer.
        for _ in 0..BATCH {
            let Some(info) = self.try_read()? else {
                break;
            };
            match callback(info, self) {
                Action::Continue => {}
                other => return Ok(other),
            }
        }
        Ok(Action::Continue)
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if self.changed != 0 && thread::current().id() == self.owner {
            // Cannot fail with valid arguments; nothing to report from drop.
            let _ = sys::signalfd::thread_unblock(self.changed);
        }
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("fd", &self.fd)
            .field("signals", &self.signals())
            .field("check_threads", &self.check_threads)
            .finish()
    }
}

#[cfg(not(loom))]
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Signal>();
    assert_send_sync::<SignalInfo>();
    assert_send_sync::<Signals>();
    assert_send_sync::<UnblockedThreads>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ranges() {
        assert_eq!(Signal::INT.to_string(), "SIGINT");
        assert_eq!(format!("{:?}", Signal::WINCH), "SIGWINCH");
        for (n, name) in STANDARD {
            let s = Signal::from_raw(n).expect("standard signal");
            assert_eq!(s.to_string(), name);
            assert!(!s.is_realtime());
        }
        let min = libc::SIGRTMIN();
        for reserved in 32..min {
            assert_eq!(Signal::from_raw(reserved), None);
        }
        assert_eq!(Signal::realtime(0).map(Signal::as_raw), Some(min));
        assert_eq!(Signal::from_raw(libc::SIGRTMAX() + 1), None);
        assert_eq!(Signal::from_raw(0), None);
    }

    #[test]
    fn masks() {
        let m = mask_of(&[Signal::INT, Signal::USR1]).unwrap();
        assert_eq!(m, (1 << 1) | (1 << 9));
        assert_eq!(signals_in(m), [Signal::INT, Signal::USR1]);
        assert_eq!(
            mask_of(&[Signal::KILL]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn parses_status() {
        let text = "Name:\tworker 1\nUmask:\t0022\nSigQ:\t0/1\nSigPnd:\t0000000000000000\n\
                    SigBlk:\t0000000000000202\nSigIgn:\t0000000000001000\n";
        assert_eq!(parse_status(text), Some(("worker 1".to_owned(), 0x202)));
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn error_message_names_threads() {
        let e = UnblockedThreads {
            threads: vec![UnblockedThread {
                tid: 42,
                name: "pool".into(),
                signals: vec![Signal::TERM, Signal::INT],
            }],
        };
        let msg = e.to_string();
        assert!(
            msg.contains("thread 42 \"pool\" (SIGTERM, SIGINT)"),
            "{msg}"
        );
        let io: io::Error = e.clone().into();
        assert_eq!(UnblockedThreads::find(&io), Some(&e));
        let wrapped = crate::Error::Io {
            context: "test",
            source: io,
        };
        assert_eq!(UnblockedThreads::find(&wrapped), Some(&e));
    }
}
