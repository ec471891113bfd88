//! The watchdog: its settings (`WATCHDOG_USEC`, `WATCHDOG_PID`) and the
//! loop's periodic `WATCHDOG=1`.

use std::ffi::OsStr;
use std::io;
use std::time::Duration;

use super::{NotifyError, SystemdNotifier};
use crate::error::{Error, Result};
use crate::trace::notable;
use crate::{Action, EventLoop, LoopHandle, SourceId, Timer};

/// Parses the watchdog settings from the values of `WATCHDOG_USEC` and
/// `WATCHDOG_PID` (as `sd_watchdog_enabled(3)` does): the interval within
/// which the service manager expects `WATCHDOG=1`, or `None` when no
/// watchdog is set (`WATCHDOG_USEC` unset or empty) or it is meant for
/// another process (`WATCHDOG_PID` set and not `own_pid`).
///
/// # Errors
///
/// [`NotifyError::InvalidWatchdog`] if `WATCHDOG_USEC` is not a positive
/// integer, or `WATCHDOG_PID` is set and not a positive integer.
///
/// # Examples
///
/// ```
/// use std::ffi::OsStr;
/// use std::time::Duration;
/// use fdloop::systemd::parse_watchdog;
///
/// let usec = Some(OsStr::new("100000"));
/// assert_eq!(parse_watchdog(usec, None, 42)?, Some(Duration::from_millis(100)));
/// assert_eq!(parse_watchdog(usec, Some(OsStr::new("42")), 42)?, Some(Duration::from_millis(100)));
/// // The watchdog is some other process's (a parent that exported it).
/// assert_eq!(parse_watchdog(usec, Some(OsStr::new("7")), 42)?, None);
/// assert_eq!(parse_watchdog(None, None, 42)?, None);
/// assert!(parse_watchdog(Some(OsStr::new("0")), None, 42).is_err());
/// # Ok::<(), fdloop::systemd::NotifyError>(())
/// ```
pub fn parse_watchdog(
    usec: Option<&OsStr>,
    pid: Option<&OsStr>,
    own_pid: u32,
) -> Result<Option<Duration>, NotifyError> {
    let Some(usec) = usec.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let usec = positive::<u64>("WATCHDOG_USEC", usec)?;
    if let Some(pid) = pid.filter(|v| !v.is_empty()) {
        if positive::<u32>("WATCHDOG_PID", pid)? != own_pid {
            return Ok(None);
        }
    }
    Ok(Some(Duration::from_micros(usec)))
}

fn positive<T: std::str::FromStr + Default + PartialEq>(
    name: &str,
    value: &OsStr,
) -> Result<T, NotifyError> {
    value
        .to_str()
        .and_then(|s| s.parse::<T>().ok())
        .filter(|v| *v != T::default())
        .ok_or_else(|| {
            NotifyError::InvalidWatchdog(format!(
                "{name}={} is not a positive integer",
                value.to_string_lossy()
            ))
        })
}

/// The watchdog interval this process was given: [`parse_watchdog`] on the
/// environment's `WATCHDOG_USEC` and `WATCHDOG_PID` and this process's id.
///
/// # Errors
///
/// As [`parse_watchdog`].
///
/// # Examples
///
/// ```
/// match fdloop::systemd::watchdog_interval()? {
///     Some(d) => println!("ping at least every {d:?}"),
///     None => println!("no watchdog"),
/// }
/// # Ok::<(), fdloop::systemd::NotifyError>(())
/// ```
pub fn watchdog_interval() -> Result<Option<Duration>, NotifyError> {
    parse_watchdog(
        std::env::var_os("WATCHDOG_USEC").as_deref(),
        std::env::var_os("WATCHDOG_PID").as_deref(),
        std::process::id(),
    )
}

fn setup_error(context: &'static str, e: NotifyError) -> Error {
    Error::io(context, io::Error::from(e))
}

impl<S: 'static> LoopHandle<S> {
    /// Opt-in: when this process runs under a systemd watchdog
    /// (`NOTIFY_SOCKET` and `WATCHDOG_USEC` set, `WATCHDOG_PID` unset or
    /// ours), pings the service manager from this loop at half the
    /// interval, as [`insert_systemd_watchdog`](Self::insert_systemd_watchdog)
    /// does. Returns the timer's id, or `None` when no watchdog is
    /// configured (nothing is inserted).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (kind `InvalidInput` or `Unsupported`, carrying a
    /// [`NotifyError`]) for malformed settings or a `vsock:` address; as
    /// [`insert_systemd_watchdog`](Self::insert_systemd_watchdog) otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// // `None` outside a systemd service with `WatchdogSec=`.
    /// let watchdog = ev.handle().enable_systemd_watchdog()?;
    /// println!("watchdog timer: {watchdog:?}");
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn enable_systemd_watchdog(&self) -> Result<Option<SourceId>> {
        let interval = watchdog_interval().map_err(|e| setup_error("reading WATCHDOG_USEC", e))?;
        let Some(interval) = interval else {
            return Ok(None);
        };
        let notifier =
            SystemdNotifier::from_env().map_err(|e| setup_error("opening NOTIFY_SOCKET", e))?;
        self.insert_systemd_watchdog(&notifier, interval)
    }

    /// Inserts a periodic [`Timer`] that sends `WATCHDOG=1` through
    /// `notifier` every `interval / 2`, from this loop's thread: a loop
    /// stuck in a callback stops pinging, and the service manager, which
    /// wants a ping within `interval`, restarts the service. Returns the
    /// timer's id (remove it to stop pinging), or `None` if `notifier` is
    /// [disabled](SystemdNotifier::disabled).
    ///
    /// Each ping reuses the notifier's socket and the loop's timer: no
    /// descriptor is created, so pings go on when the process has run out
    /// of them. A failed ping (see [`SystemdNotifier`] for the errors) is
    /// counted in [`SystemdNotifier::failed`] and reported once per run of
    /// failures as a `tracing` warning (with the `tracing` feature); the
    /// timer keeps running and the next ping is tried on time. It never
    /// panics and never stops the loop.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with kind `InvalidInput` for a zero `interval`; as
    /// [`insert`](Self::insert) for the timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::{SocketAddr, UnixDatagram};
    /// use std::time::Duration;
    /// use fdloop::systemd::SystemdNotifier;
    ///
    /// let name = format!("@fdloop-doc-watchdog-{}", std::process::id());
    /// let manager = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name[1..])?)?;
    /// let notifier = SystemdNotifier::connect(&name)?;
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let id = ev.handle().insert_systemd_watchdog(&notifier, Duration::from_millis(20))?;
    /// assert!(id.is_some());
    /// while notifier.sent() == 0 {
    ///     ev.run_once(&mut (), None)?; // a ping every 10 ms
    /// }
    /// let mut buf = [0u8; 64];
    /// let len = manager.recv(&mut buf)?;
    /// assert_eq!(&buf[..len], b"WATCHDOG=1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert_systemd_watchdog(
        &self,
        notifier: &SystemdNotifier,
        interval: Duration,
    ) -> Result<Option<SourceId>> {
        if !notifier.is_enabled() {
            return Ok(None);
        }
        if interval.is_zero() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "zero watchdog interval");
            return Err(Error::io("inserting the systemd watchdog", e));
        }
        let notifier = notifier.clone();
        let mut failing = false;
        let timer = Timer::every(interval / 2);
        let id = self
            .insert(timer, move |_, _, _| {
                match notifier.notify_watchdog() {
                    Ok(_) if failing => {
                        failing = false;
                        notable!(info, "systemd watchdog pings go through again");
                    }
                    Ok(_) => {}
                    Err(_e) if !failing => {
                        failing = true;
                        notable!(warn, error = %_e, "systemd watchdog ping failed; retrying on schedule");
                    }
                    Err(_) => {}
                }
                Action::Continue
            })
            .map_err(|e| e.error)?;
        Ok(Some(id))
    }
}

impl<S: 'static> EventLoop<S> {
    /// See [`LoopHandle::enable_systemd_watchdog`].
    ///
    /// # Errors
    ///
    /// As [`LoopHandle::enable_systemd_watchdog`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let _maybe_timer = ev.enable_systemd_watchdog()?;
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn enable_systemd_watchdog(&mut self) -> Result<Option<SourceId>> {
        self.handle().enable_systemd_watchdog()
    }
}
