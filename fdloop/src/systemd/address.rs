//! [`NotifyAddress`]: where `NOTIFY_SOCKET` points.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::NotifyError;
use crate::sys::unix_dgram::{self, SocketAddrUnix};

/// The service manager's notification socket: an `AF_UNIX` datagram socket
/// at a filesystem path, or in the abstract namespace.
///
/// Parsed from a `NOTIFY_SOCKET` value as systemd writes it: an absolute
/// path (`/run/systemd/notify`), or `@name` for the abstract name `name`
/// (the kernel's address starts with a NUL byte where the `@` was).
/// `vsock:` addresses (systemd 254 and later, for virtual machines) are
/// refused with [`NotifyError::UnsupportedAddress`].
///
/// # Examples
///
/// ```
/// use std::ffi::OsStr;
/// use fdloop::systemd::NotifyAddress;
///
/// let a = NotifyAddress::parse(OsStr::new("@my/notify"))?;
/// assert_eq!(a, NotifyAddress::Abstract(b"my/notify".to_vec()));
/// assert_eq!(a.to_string(), "@my/notify");
/// assert!(NotifyAddress::parse(OsStr::new("vsock:2:1234")).is_err());
/// # Ok::<(), fdloop::systemd::NotifyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifyAddress {
    /// A socket bound at this absolute filesystem path.
    Path(PathBuf),
    /// A socket bound to this name in the abstract namespace (without the
    /// leading `@` or NUL).
    Abstract(Vec<u8>),
}

impl NotifyAddress {
    /// Parses a `NOTIFY_SOCKET` value.
    ///
    /// # Errors
    ///
    /// [`NotifyError::UnsupportedAddress`] for `vsock:` (and other `vsock`)
    /// addresses; [`NotifyError::InvalidAddress`] for anything else that is
    /// not an absolute path or `@name` (a relative path, an empty `@`), or
    /// that does not fit a unix socket address (108 bytes) or holds a NUL.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::OsStr;
    /// use fdloop::systemd::NotifyAddress;
    ///
    /// let a = NotifyAddress::parse(OsStr::new("/run/systemd/notify"))?;
    /// assert_eq!(a, NotifyAddress::Path("/run/systemd/notify".into()));
    /// assert!(NotifyAddress::parse(OsStr::new("relative/notify")).is_err());
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn parse(value: &OsStr) -> Result<NotifyAddress, NotifyError> {
        let bytes = value.as_bytes();
        let shown = || value.to_string_lossy().into_owned();
        let addr = match bytes.first() {
            Some(b'/') => NotifyAddress::Path(PathBuf::from(value)),
            Some(b'@') if bytes.len() > 1 => NotifyAddress::Abstract(bytes[1..].to_vec()),
            _ if bytes.starts_with(b"vsock") => {
                return Err(NotifyError::UnsupportedAddress(shown()))
            }
            _ => return Err(NotifyError::InvalidAddress(shown())),
        };
        // Refuse now what the kernel could not take as an address.
        addr.socket_addr()
            .map_err(|_| NotifyError::InvalidAddress(shown()))?;
        Ok(addr)
    }

    /// Parses the value of `NOTIFY_SOCKET` as read from the environment:
    /// `None` when it is unset or empty (not running under a service
    /// manager that wants notifications), else as [`parse`](Self::parse).
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::OsStr;
    /// use fdloop::systemd::NotifyAddress;
    ///
    /// assert_eq!(NotifyAddress::from_env_value(None)?, None);
    /// assert_eq!(NotifyAddress::from_env_value(Some(OsStr::new("")))?, None);
    /// assert!(NotifyAddress::from_env_value(Some(OsStr::new("@x")))?.is_some());
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn from_env_value(value: Option<&OsStr>) -> Result<Option<NotifyAddress>, NotifyError> {
        match value {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => NotifyAddress::parse(v).map(Some),
        }
    }

    pub(super) fn socket_addr(&self) -> std::io::Result<SocketAddrUnix> {
        match self {
            NotifyAddress::Path(p) => unix_dgram::path_addr(p),
            NotifyAddress::Abstract(name) => unix_dgram::abstract_addr(name),
        }
    }
}

impl fmt::Display for NotifyAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyAddress::Path(p) => write!(f, "{}", p.display()),
            NotifyAddress::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}
