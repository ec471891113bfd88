//! fdloop's error type for the event loop and everything built on it, and
//! [`ContextError`], the message-plus-OS-error that sources put inside the
//! `io::Error`s they return.

use std::fmt;
use std::io;

use crate::event_loop::SourceId;

/// What went wrong in an [`EventLoop`](crate::EventLoop) operation.
///
/// Every variant says what fdloop was doing; OS failures keep the original
/// [`io::Error`] (with its `errno`) as the [`source`](std::error::Error::source).
/// Converts into `io::Error` (`?` works in functions returning
/// `io::Result`).
///
/// # Examples
///
/// ```
/// use fdloop::{Error, EventLoop};
///
/// let mut ev: EventLoop<()> = EventLoop::new()?;
/// let id = ev.handle().defer(|_| {})?;
/// ev.remove(id)?;
/// match ev.remove(id) {
///     Err(Error::NoSuchSource(gone)) => assert_eq!(gone, id),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed. `context` names the operation.
    Io {
        /// What fdloop was doing, e.g. `"epoll_ctl(ADD) for a new source"`.
        context: &'static str,
        /// The OS error, `errno` intact.
        source: io::Error,
    },
    /// A source's own processing failed (for example reading its
    /// descriptor); the source stays in the loop.
    Source {
        /// The source that failed.
        id: SourceId,
        /// What it reported.
        source: io::Error,
    },
    /// The [`SourceId`] does not name a live source of this loop (it was
    /// removed, or belongs to another loop).
    NoSuchSource(SourceId),
    /// The loop was created by another process: this process is a `fork`
    /// child. The epoll set is shared with the parent, so the child must
    /// create its own loop.
    Forked,
    /// The loop holds the most sources it can address (2^24 - 1).
    TooManySources,
    /// The operation applies to descriptor sources and timers only, not
    /// to idle or deferred callbacks (for example a rate limit).
    NotApplicable(SourceId),
}

impl Error {
    pub(crate) fn io(context: &'static str, source: io::Error) -> Error {
        Error::Io { context, source }
    }

    /// The OS error number behind this error, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = fdloop::Error::Forked;
    /// assert_eq!(e.raw_os_error(), None);
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } | Error::Source { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The closest [`io::ErrorKind`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// assert_eq!(fdloop::Error::Forked.kind(), ErrorKind::Unsupported);
    /// ```
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Io { source, .. } | Error::Source { source, .. } => source.kind(),
            Error::NoSuchSource(_) => io::ErrorKind::NotFound,
            Error::Forked => io::ErrorKind::Unsupported,
            Error::TooManySources => io::ErrorKind::OutOfMemory,
            Error::NotApplicable(_) => io::ErrorKind::InvalidInput,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context} failed: {source}"),
            Error::Source { id, source } => write!(f, "source {id:?} failed: {source}"),
            Error::NoSuchSource(id) => write!(f, "no source {id:?} in this event loop"),
            Error::Forked => f.write_str(
                "event loop used in a forked child process; create a new loop in the child",
            ),
            Error::TooManySources => f.write_str("event loop is full (2^24 - 1 sources)"),
            Error::NotApplicable(id) => write!(
                f,
                "source {id:?} is an idle or deferred callback: the operation needs a descriptor source or a timer"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Source { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        // The whole error travels inside, context included; its `source()`
        // still leads to the original OS error.
        io::Error::new(e.kind(), e)
    }
}

/// `Result` with fdloop's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An OS error with what fdloop was doing when it happened ("cannot watch
/// /tmp/x", "no such process: pid 42 ..."), carried inside the
/// [`io::Error`] a source returns: the `io::Error` displays as
/// `"{msg}: {source}"`, its [`get_ref`](io::Error::get_ref) is this value,
/// and this value's [`source`](std::error::Error::source) is the original
/// error, `errno` intact. Used by [`process`](crate::process) and
/// [`watch`](crate::watch), whose public API returns `io::Result`.
#[derive(Debug)]
pub(crate) struct ContextError {
    msg: String,
    source: io::Error,
}

impl ContextError {
    /// An `io::Error` of `kind` carrying `msg` and the original `source`.
    pub(crate) fn wrap(kind: io::ErrorKind, msg: String, source: io::Error) -> io::Error {
        io::Error::new(kind, ContextError { msg, source })
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.msg, self.source)
    }
}

impl std::error::Error for ContextError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_error_keeps_kind_message_and_os_error() {
        let os = io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error());
        let e = ContextError::wrap(io::ErrorKind::NotFound, "cannot watch /x".into(), os);
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("cannot watch /x: "), "{e}");
        let inner = e
            .get_ref()
            .and_then(std::error::Error::source)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error);
        assert_eq!(inner, Some(rustix::io::Errno::NOENT.raw_os_error()));
    }
}
