//! [`NotifyError`]: why a systemd notification could not be sent, or the
//! environment could not be understood.

use std::fmt;
use std::io;

/// What went wrong talking to the service manager.
///
/// Converts into [`io::Error`] (`?` works in functions returning
/// `io::Result`), keeping the `errno` of an OS failure.
///
/// # Examples
///
/// ```
/// use fdloop::systemd::{NotifyError, SystemdNotifier};
///
/// let n = SystemdNotifier::disabled();
/// match n.notify_status("line one\nREADY=1") {
///     Err(NotifyError::InvalidMessage(why)) => println!("refused: {why}"),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum NotifyError {
    /// The message was refused before sending: a value with a newline
    /// (which would inject extra `KEY=VALUE` lines) or a NUL byte, or an
    /// empty message.
    InvalidMessage(&'static str),
    /// `NOTIFY_SOCKET` (or the address given) is not an absolute path or an
    /// `@abstract` name, or does not fit a unix socket address.
    InvalidAddress(String),
    /// `NOTIFY_SOCKET` names a transport fdloop does not speak (`vsock:`).
    UnsupportedAddress(String),
    /// `WATCHDOG_USEC` or `WATCHDOG_PID` is not a positive integer.
    InvalidWatchdog(String),
    /// A system call failed. `context` names the operation.
    Io {
        /// What fdloop was doing, e.g. `"sending to NOTIFY_SOCKET"`.
        context: &'static str,
        /// The OS error, `errno` intact.
        source: io::Error,
    },
}

impl NotifyError {
    /// The OS error number behind this error, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = fdloop::systemd::NotifyError::InvalidMessage("empty");
    /// assert_eq!(e.raw_os_error(), None);
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            NotifyError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The closest [`io::ErrorKind`]: `WouldBlock` for a datagram dropped
    /// because the receiver's queue was full, `ConnectionRefused`/`NotFound`
    /// when nobody listens, `InvalidInput` for a refused message or address,
    /// `Unsupported` for a `vsock:` address.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// let e = fdloop::systemd::NotifyError::UnsupportedAddress("vsock:2:9".into());
    /// assert_eq!(e.kind(), ErrorKind::Unsupported);
    /// ```
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            NotifyError::Io { source, .. } => source.kind(),
            NotifyError::UnsupportedAddress(_) => io::ErrorKind::Unsupported,
            NotifyError::InvalidMessage(_)
            | NotifyError::InvalidAddress(_)
            | NotifyError::InvalidWatchdog(_) => io::ErrorKind::InvalidInput,
        }
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::InvalidMessage(why) => write!(f, "invalid notify message: {why}"),
            NotifyError::InvalidAddress(a) => write!(
                f,
                "invalid NOTIFY_SOCKET address {a:?}: want an absolute path or @abstract-name"
            ),
            NotifyError::UnsupportedAddress(a) => {
                write!(
                    f,
                    "unsupported NOTIFY_SOCKET address {a:?} (vsock is not supported)"
                )
            }
            NotifyError::InvalidWatchdog(v) => write!(f, "invalid watchdog setting: {v}"),
            NotifyError::Io { context, source } => write!(f, "{context} failed: {source}"),
        }
    }
}

impl std::error::Error for NotifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotifyError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<NotifyError> for io::Error {
    fn from(e: NotifyError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}
