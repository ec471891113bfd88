//! The thread audit: which threads of this process do not block the
//! signals a signalfd watches, read from `SigBlk` in
//! `/proc/self/task/*/status`, and the error that names them.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use super::mask::{mask_of, signals_in};
use super::Signal;
use crate::sys;

fn names(signals: &[Signal]) -> String {
    let v: Vec<String> = signals.iter().map(Signal::to_string).collect();
    v.join(", ")
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
/// ones spawned before [`block`](super::block)), which it does find.
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

pub(super) fn unblocked_in_mask(mask: u64) -> io::Result<Vec<UnblockedThread>> {
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

/// The error a [`Signals`](super::Signals) gives when some threads do not block its
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
    pub(super) threads: Vec<UnblockedThread>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
