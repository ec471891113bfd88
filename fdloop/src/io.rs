//! [`Io`]: any file descriptor as a loop source.

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsFd;

use crate::event_loop::{Action, AfterPanic, Interest, Mode, Readiness, Registrar, Source};

/// A descriptor watched for readiness: a socket, a pipe, a terminal, a
/// [`Notifier`](crate::Notifier) — anything with [`AsFd`].
///
/// `Io` owns `F`. To keep using the descriptor elsewhere as well, give it an
/// `Rc<T>` or `Arc<T>` (both are `AsFd` when `T` is), or reach it from the
/// callback through [`IoCtl`]. (A plain borrow would tie the loop to a
/// lifetime, which fdloop avoids by design.) When the source is removed, the
/// descriptor leaves the epoll set before `F` is dropped.
///
/// The callback receives the [`Readiness`] and an [`IoCtl`], through which it
/// uses the descriptor and may change the interest or mode, or re-arm a
/// [`Mode::Oneshot`] registration.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use fdloop::{Action, EventLoop, Interest, Io, Mode};
///
/// let (mut a, b) = UnixStream::pair()?;
/// let mut ev = EventLoop::new()?;
/// ev.insert(Io::new(b, Interest::READABLE, Mode::Level), |ready, io, got: &mut Vec<u8>| {
///     assert!(ready.is_readable());
///     let mut buf = [0u8; 64];
///     let n = io.fd_mut().read(&mut buf).unwrap();
///     got.extend_from_slice(&buf[..n]);
///     Action::Continue
/// })?;
/// a.write_all(b"hello")?;
/// let mut got = Vec::new();
/// ev.run_once(&mut got, Some(Duration::from_secs(1)))?;
/// assert_eq!(got, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Io<F: AsFd> {
    ctl: IoCtl<F>,
}

/// The callback's access to an [`Io`] source's descriptor and registration.
/// Dereferences to `F`.
///
/// # Examples
///
/// ```
/// use fdloop::{Action, Interest, IoCtl, Readiness};
/// // A callback that, once it has written, goes back to reading only.
/// fn on_ready<F>(ready: Readiness, io: &mut IoCtl<F>) -> Action {
///     if ready.is_writable() {
///         io.set_interest(Interest::READABLE);
///     }
///     Action::Continue
/// }
/// ```
pub struct IoCtl<F> {
    fd: F,
    interest: Interest,
    mode: Mode,
    dirty: bool,
}

impl<F: AsFd> Io<F> {
    /// Watches `fd` for `interest` in `mode`. Nothing happens until the `Io`
    /// is inserted into a loop.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Interest, Io, Mode};
    /// let (r, _w) = std::io::pipe()?;
    /// let io = Io::new(r, Interest::READABLE, Mode::Edge);
    /// assert_eq!(io.interest(), Interest::READABLE);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(fd: F, interest: Interest, mode: Mode) -> Io<F> {
        Io {
            ctl: IoCtl {
                fd,
                interest,
                mode,
                dirty: false,
            },
        }
    }

    /// The interest the descriptor is registered with.
    pub fn interest(&self) -> Interest {
        self.ctl.interest
    }

    /// The descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Interest, Io, Mode};
    /// let (r, _w) = std::io::pipe()?;
    /// let io = Io::new(r, Interest::READABLE, Mode::Level);
    /// let _fd: &std::io::PipeReader = io.get_ref();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &F {
        &self.ctl.fd
    }

    /// Takes the descriptor back (only possible before insertion: once
    /// inserted, the loop owns the source).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Interest, Io, Mode};
    /// let (r, _w) = std::io::pipe()?;
    /// let r = Io::new(r, Interest::READABLE, Mode::Level).into_inner();
    /// # drop(r);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> F {
        self.ctl.fd
    }
}

impl<F> IoCtl<F> {
    /// The descriptor.
    pub fn fd(&self) -> &F {
        &self.fd
    }

    /// The descriptor, mutably (to read from or write to it).
    pub fn fd_mut(&mut self) -> &mut F {
        &mut self.fd
    }

    /// The current interest.
    pub fn interest(&self) -> Interest {
        self.interest
    }

    /// The current trigger mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Changes the interest; applied (`EPOLL_CTL_MOD`) when the callback
    /// returns [`Action::Continue`].
    pub fn set_interest(&mut self, interest: Interest) {
        if interest != self.interest {
            self.interest = interest;
            self.dirty = true;
        }
    }

    /// Changes the trigger mode; applied when the callback returns.
    pub fn set_mode(&mut self, mode: Mode) {
        if mode != self.mode {
            self.mode = mode;
            self.dirty = true;
        }
    }

    /// Re-arms a [`Mode::Oneshot`] registration when the callback returns, so
    /// the next readiness is reported again.
    pub fn rearm(&mut self) {
        self.dirty = true;
    }
}

impl<F> Deref for IoCtl<F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.fd
    }
}

impl<F> DerefMut for IoCtl<F> {
    fn deref_mut(&mut self) -> &mut F {
        &mut self.fd
    }
}

impl<F: AsFd> Source for Io<F> {
    type Event = Readiness;
    type Metadata = IoCtl<F>;

    fn register(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        self.ctl.dirty = false;
        r.add(&self.ctl.fd, 0, self.ctl.interest, self.ctl.mode)
    }

    fn unregister(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        r.delete(&self.ctl.fd)
    }

    fn process(
        &mut self,
        ready: Readiness,
        _sub: u8,
        r: &mut Registrar<'_>,
        callback: &mut dyn FnMut(Readiness, &mut IoCtl<F>) -> Action,
    ) -> io::Result<Action> {
        let action = callback(ready, &mut self.ctl);
        if self.ctl.dirty && action == Action::Continue {
            self.ctl.dirty = false;
            r.modify(&self.ctl.fd, 0, self.ctl.interest, self.ctl.mode)?;
        }
        Ok(action)
    }

    /// The callback panicked: changes it made through [`IoCtl`] (interest,
    /// mode, re-arming a one-shot registration) still take effect, so the
    /// source stays as the callback left it.
    fn after_panic(&mut self, r: &mut Registrar<'_>) -> AfterPanic {
        if self.ctl.dirty {
            self.ctl.dirty = false;
            // Unwinding: an error cannot be reported; the source stays
            // registered as before.
            let _ = r.modify(&self.ctl.fd, 0, self.ctl.interest, self.ctl.mode);
        }
        AfterPanic::Stay
    }
}

impl<F: AsFd + fmt::Debug> fmt::Debug for Io<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("fd", &self.ctl.fd)
            .field("interest", &self.ctl.interest)
            .field("mode", &self.ctl.mode)
            .finish()
    }
}

impl<F: fmt::Debug> fmt::Debug for IoCtl<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoCtl")
            .field("fd", &self.fd)
            .field("interest", &self.interest)
            .field("mode", &self.mode)
            .finish()
    }
}
