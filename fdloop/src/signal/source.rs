//! [`Signals`]: the signalfd as a stream of [`SignalInfo`] records and an
//! event-loop source.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use super::audit::{unblocked_in_mask, UnblockedThread, UnblockedThreads};
use super::mask::{mask_of, signals_in};
use super::Signal;
use crate::event_loop::{Action, Interest, Mode, Readiness, Registrar, Source};
use crate::sys;
use crate::sys::signalfd::RawSigInfo;

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

/// Signals as a stream of [`SignalInfo`] records: a `signalfd` (close-on-exec,
/// non-blocking) and an event-loop [`Source`].
///
/// * **Creating** it blocks its signals in the calling thread, which the
///   signalfd needs; dropping it unblocks those it blocked (only when dropped
///   on that same thread). Other threads must block them too — see the
///   [module docs](super) and [`block`](super::block).
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
/// mask: see [`unblock_in_child`](super::unblock_in_child).
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
    /// The most records one loop iteration delivers.
    batch: usize,
}

/// The most signals one loop iteration delivers unless
/// [`Signals::set_batch_limit`] says otherwise.
pub const DEFAULT_BATCH: usize = 32;

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
                batch: DEFAULT_BATCH,
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

    /// Sets how many signals the loop callback gets per iteration before
    /// other sources run (at least 1; default [`DEFAULT_BATCH`]). The rest
    /// stay queued in the kernel and come on the next iteration.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{Signal, Signals};
    /// let mut s = Signals::new(&[Signal::USR1])?;
    /// s.set_batch_limit(8);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_batch_limit(&mut self, n: usize) {
        self.batch = n.max(1);
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
    /// [`unblocked_threads`](super::unblocked_threads)).
    ///
    /// # Errors
    ///
    /// As [`unblocked_threads`](super::unblocked_threads): `NotFound` without `/proc`.
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
    /// [`unblocked_threads`](super::unblocked_threads) when `/proc` cannot be read.
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
        // The rest stay pending in the kernel: the descriptor stays
        // readable, so the next iteration delivers them.
        for _ in 0..self.batch {
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
