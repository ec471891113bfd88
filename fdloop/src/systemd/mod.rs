//! The systemd notify protocol and watchdog, without libsystemd.
//!
//! A service started by systemd with `Type=notify` (or `notify-reload`)
//! tells the service manager how it is doing by sending datagrams to the
//! `AF_UNIX` socket named in `NOTIFY_SOCKET`: each message is one datagram
//! of newline-separated `KEY=VALUE` lines (`READY=1`, `STATUS=...`,
//! `STOPPING=1`, `RELOADING=1`, `WATCHDOG=1`; see `sd_notify(3)`). With
//! `WatchdogSec=` set, systemd also exports `WATCHDOG_USEC` (and
//! `WATCHDOG_PID`) and kills the service if `WATCHDOG=1` does not arrive
//! within that interval; it recommends pinging at half of it.
//!
//! * [`SystemdNotifier`] sends the messages. It creates its socket once
//!   and reuses it, so a notification — a watchdog ping in particular —
//!   needs no new descriptor even when the process has run out of them.
//! * [`LoopHandle::enable_systemd_watchdog`](crate::LoopHandle::enable_systemd_watchdog)
//!   pings from the loop's own thread on a periodic [`Timer`](crate::Timer):
//!   a loop stuck in a callback stops pinging, and systemd notices.
//! * [`watchdog_interval`] and [`parse_watchdog`] read the watchdog
//!   settings; [`NotifyAddress`] parses `NOTIFY_SOCKET`.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call does nothing and says so:
//! it returns `Ok(false)`.
//!
//! fdloop does not unset `NOTIFY_SOCKET` (changing the environment is not
//! thread-safe): children you spawn inherit it, so remove it from their
//! environment (`Command::env_remove`) unless they should notify too.
//!
//! # Examples
//!
//! ```
//! use std::os::unix::net::UnixDatagram;
//! use fdloop::systemd::SystemdNotifier;
//!
//! // Stand in for the service manager: a datagram socket in a temp dir.
//! let dir = std::env::temp_dir().join(format!("fdloop-doc-sd-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("notify");
//! let _ = std::fs::remove_file(&path);
//! let manager = UnixDatagram::bind(&path)?;
//!
//! let n = SystemdNotifier::connect(&path)?;
//! assert!(n.notify_status("warming up")?);
//! assert!(n.notify_ready()?);
//! let mut buf = [0u8; 256];
//! let len = manager.recv(&mut buf)?;
//! assert_eq!(&buf[..len], b"STATUS=warming up");
//! let len = manager.recv(&mut buf)?;
//! assert_eq!(&buf[..len], b"READY=1");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod error;
mod watchdog;

pub use address::NotifyAddress;
pub use error::NotifyError;
pub use watchdog::{parse_watchdog, watchdog_interval};

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::sys::timerfd::{now_ns, Clock};
use crate::sys::unix_dgram::{self, SocketAddrUnix};

/// The name of the environment variable that holds the notify socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Sends notifications to the service manager (systemd's `sd_notify`
/// protocol), from any thread.
///
/// Created [`from_env`](Self::from_env) (`NOTIFY_SOCKET`), for an explicit
/// address with [`connect`](Self::connect), or [`disabled`](Self::disabled).
/// One unbound `SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK` socket is made at
/// creation and used for every message. Cloning is cheap and shares the
/// socket and the counters ([`sent`](Self::sent), [`failed`](Self::failed)).
///
/// Every `notify*` call sends one datagram and returns `Ok(true)`, or
/// `Ok(false)` if the notifier is disabled (nothing to notify). A send
/// never blocks. Its errors ([`NotifyError::Io`], `errno` intact):
///
/// * `EAGAIN` (kind `WouldBlock`): the receiver's queue is full; the
///   datagram was dropped. Retry later if it matters (a later `WATCHDOG=1`
///   replaces a lost one).
/// * `ECONNREFUSED` or `ENOENT`: nobody is listening at the address (the
///   service manager is gone, or the path is wrong).
/// * `EINTR` is retried here and never returned.
///
/// # Examples
///
/// ```
/// use fdloop::systemd::SystemdNotifier;
///
/// // Outside systemd (no NOTIFY_SOCKET) this does nothing and says so.
/// let n = SystemdNotifier::disabled();
/// assert!(!n.is_enabled());
/// assert_eq!(n.notify_ready()?, false);
/// # Ok::<(), fdloop::systemd::NotifyError>(())
/// ```
#[derive(Clone)]
pub struct SystemdNotifier {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    socket: OwnedFd,
    address: NotifyAddress,
    sockaddr: SocketAddrUnix,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl SystemdNotifier {
    /// A notifier for `NOTIFY_SOCKET`, or a [disabled](Self::disabled) one
    /// when the variable is unset or empty.
    ///
    /// # Errors
    ///
    /// As [`NotifyAddress::from_env_value`] for a malformed or `vsock:`
    /// address; [`NotifyError::Io`] if the socket cannot be created
    /// (`EMFILE`/`ENFILE`).
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::systemd::SystemdNotifier::from_env()?;
    /// // Ok(false) outside systemd; Ok(true) under `Type=notify`.
    /// let _sent: bool = n.notify_ready()?;
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn from_env() -> Result<SystemdNotifier, NotifyError> {
        let value = std::env::var_os(NOTIFY_SOCKET_ENV);
        match NotifyAddress::from_env_value(value.as_deref())? {
            Some(address) => SystemdNotifier::new(address),
            None => Ok(SystemdNotifier::disabled()),
        }
    }

    /// A notifier for the socket at `address`, written as in
    /// `NOTIFY_SOCKET`: an absolute path, or `@name` for an abstract one.
    /// Nothing is sent, and the address need not exist yet.
    ///
    /// # Errors
    ///
    /// As [`NotifyAddress::parse`]; [`NotifyError::Io`] if the socket
    /// cannot be created.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::systemd::SystemdNotifier::connect("@fdloop-doc-nobody")?;
    /// assert!(n.is_enabled());
    /// // Nobody is bound there.
    /// let e = n.notify_ready().unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn connect(address: impl AsRef<OsStr>) -> Result<SystemdNotifier, NotifyError> {
        SystemdNotifier::new(NotifyAddress::parse(address.as_ref())?)
    }

    /// A notifier for `address`.
    ///
    /// # Errors
    ///
    /// [`NotifyError::InvalidAddress`] if it does not fit a unix socket
    /// address; [`NotifyError::Io`] if the socket cannot be created
    /// (`EMFILE`/`ENFILE`, or a sandbox refusing unix sockets).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::systemd::{NotifyAddress, SystemdNotifier};
    /// let n = SystemdNotifier::new(NotifyAddress::Abstract(b"doc".to_vec()))?;
    /// assert_eq!(n.address().map(|a| a.to_string()).as_deref(), Some("@doc"));
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn new(address: NotifyAddress) -> Result<SystemdNotifier, NotifyError> {
        let sockaddr = address
            .socket_addr()
            .map_err(|_| NotifyError::InvalidAddress(address.to_string()))?;
        let socket = unix_dgram::socket().map_err(|source| NotifyError::Io {
            context: "creating the notify socket",
            source,
        })?;
        Ok(SystemdNotifier {
            inner: Some(Arc::new(Inner {
                socket,
                address,
                sockaddr,
                sent: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            })),
        })
    }

    /// A notifier that sends nothing: every call returns `Ok(false)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::systemd::SystemdNotifier::disabled();
    /// assert_eq!(n.notify_watchdog()?, false);
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn disabled() -> SystemdNotifier {
        SystemdNotifier { inner: None }
    }

    /// Whether there is a socket to notify.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!fdloop::systemd::SystemdNotifier::disabled().is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The address notifications go to, if enabled.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(fdloop::systemd::SystemdNotifier::disabled().address().is_none());
    /// ```
    pub fn address(&self) -> Option<&NotifyAddress> {
        self.inner.as_ref().map(|i| &i.address)
    }

    /// Datagrams sent so far (by this notifier and its clones).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(fdloop::systemd::SystemdNotifier::disabled().sent(), 0);
    /// ```
    pub fn sent(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.sent.load(Ordering::Relaxed))
    }

    /// Sends that failed so far (by this notifier and its clones), the
    /// loop's watchdog pings included.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(fdloop::systemd::SystemdNotifier::disabled().failed(), 0);
    /// ```
    pub fn failed(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.failed.load(Ordering::Relaxed))
    }

    /// Sends `state`, one or more newline-separated `KEY=VALUE` lines, as
    /// one datagram, unchanged (`"FDSTORE=1"`, `"EXTEND_TIMEOUT_USEC=..."`,
    /// `"MAINPID=..."`, several at once). Returns `Ok(false)` if disabled.
    ///
    /// # Errors
    ///
    /// [`NotifyError::InvalidMessage`] for an empty message or one with a
    /// NUL byte; [`NotifyError::Io`] as described on [`SystemdNotifier`].
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::systemd::SystemdNotifier::disabled();
    /// assert!(!n.notify("STATUS=half way\nEXTEND_TIMEOUT_USEC=5000000")?);
    /// assert!(n.notify("").is_err());
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn notify(&self, state: &str) -> Result<bool, NotifyError> {
        if state.is_empty() {
            return Err(NotifyError::InvalidMessage("empty message"));
        }
        if state.contains('\0') {
            return Err(NotifyError::InvalidMessage("NUL byte in message"));
        }
        self.send(state.as_bytes())
    }

    /// `READY=1`: start-up is finished.
    ///
    /// # Errors
    ///
    /// As [`notify`](Self::notify).
    ///
    /// # Examples
    ///
    /// See [`SystemdNotifier`] and the [module](self) docs.
    pub fn notify_ready(&self) -> Result<bool, NotifyError> {
        self.send(b"READY=1")
    }

    /// `STOPPING=1`: shutting down.
    ///
    /// # Errors
    ///
    /// As [`notify`](Self::notify).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!fdloop::systemd::SystemdNotifier::disabled().notify_stopping()?);
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn notify_stopping(&self) -> Result<bool, NotifyError> {
        self.send(b"STOPPING=1")
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` the current `CLOCK_MONOTONIC`
    /// time in microseconds, as `Type=notify-reload` requires; send
    /// [`notify_ready`](Self::notify_ready) when the reload is done.
    ///
    /// # Errors
    ///
    /// As [`notify`](Self::notify).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!fdloop::systemd::SystemdNotifier::disabled().notify_reloading()?);
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn notify_reloading(&self) -> Result<bool, NotifyError> {
        let usec = now_ns(Clock::Monotonic) / 1000;
        self.send(format!("RELOADING=1\nMONOTONIC_USEC={usec}").as_bytes())
    }

    /// `STATUS=status`: a one-line description shown by `systemctl status`.
    ///
    /// # Errors
    ///
    /// [`NotifyError::InvalidMessage`] if `status` holds a newline (it
    /// would add `KEY=VALUE` lines of its caller's choosing) or a NUL byte;
    /// otherwise as [`notify`](Self::notify).
    ///
    /// # Examples
    ///
    /// ```
    /// let n = fdloop::systemd::SystemdNotifier::disabled();
    /// assert!(!n.notify_status("serving 12 clients")?);
    /// assert!(n.notify_status("x\nMAINPID=1").is_err());
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn notify_status(&self, status: &str) -> Result<bool, NotifyError> {
        if status.contains('\n') {
            return Err(NotifyError::InvalidMessage("newline in STATUS value"));
        }
        self.notify(&format!("STATUS={status}"))
    }

    /// `WATCHDOG=1`: a watchdog ping. Prefer
    /// [`LoopHandle::enable_systemd_watchdog`](crate::LoopHandle::enable_systemd_watchdog),
    /// which pings from the loop's own thread.
    ///
    /// # Errors
    ///
    /// As [`notify`](Self::notify).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!fdloop::systemd::SystemdNotifier::disabled().notify_watchdog()?);
    /// # Ok::<(), fdloop::systemd::NotifyError>(())
    /// ```
    pub fn notify_watchdog(&self) -> Result<bool, NotifyError> {
        self.send(b"WATCHDOG=1")
    }

    /// One datagram; `EINTR` retried; counted.
    fn send(&self, msg: &[u8]) -> Result<bool, NotifyError> {
        let Some(inner) = &self.inner else {
            return Ok(false);
        };
        let result = loop {
            match unix_dgram::send_to(&inner.socket, msg, &inner.sockaddr) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match result {
            Ok(_) => {
                inner.sent.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(source) => {
                inner.failed.fetch_add(1, Ordering::Relaxed);
                let context = match source.raw_os_error() {
                    Some(libc::EAGAIN) => {
                        "sending to NOTIFY_SOCKET (receiver's queue full, datagram dropped)"
                    }
                    Some(libc::ECONNREFUSED | libc::ENOENT) => {
                        "sending to NOTIFY_SOCKET (nobody listening)"
                    }
                    _ => "sending to NOTIFY_SOCKET",
                };
                Err(NotifyError::Io { context, source })
            }
        }
    }
}

impl fmt::Debug for SystemdNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("SystemdNotifier(disabled)"),
            Some(i) => f
                .debug_struct("SystemdNotifier")
                .field("address", &i.address)
                .field("socket", &i.socket.as_raw_fd())
                .field("sent", &i.sent.load(Ordering::Relaxed))
                .field("failed", &i.failed.load(Ordering::Relaxed))
                .finish(),
        }
    }
}
