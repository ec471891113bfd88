//! [`Signal`]: a signal number known to be valid here, with its name.

use std::fmt;
use std::io;

use crate::sys;

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
pub struct Signal(pub(super) i32);

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
    /// thread until read (a [`Signals`](super::Signals) created in this thread will see it).
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

    pub(super) fn bit(self) -> u64 {
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
}
