//! fdloop's own sources as futures and streams, through [`Async`]: a
//! channel [`Receiver`], [`Signals`], a [`Child`]'s exit and a [`Watch`].
//!
//! Each uses the source's own non-blocking call (`try_recv`, `try_read`,
//! `try_wait`, `read_events`) and waits, when it finds nothing, for the
//! source's descriptor to turn readable — edge-triggered, on the loop's
//! epoll set, like any `Async`. The sources' protocols are unchanged: a
//! channel send still writes the receiver's descriptor only when the
//! receiver found the channel empty.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::io::{Async, Dir};
use crate::channel::{Receiver, TryRecvError};
use crate::process::{Child, Exit};
use crate::signal::{SignalInfo, Signals};
use crate::watch::{Watch, WatchEvent};

/// `None` (nothing now) as `WouldBlock`, for `Registration::poll_op`.
fn would_block<T>(v: io::Result<Option<T>>) -> io::Result<T> {
    v.and_then(|o| o.ok_or_else(|| io::ErrorKind::WouldBlock.into()))
}

impl<T> Async<Receiver<T>> {
    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<io::Result<Option<T>>> {
        let rx = self.get_ref();
        self.reg().poll_op(Dir::Read, cx, || match rx.try_recv() {
            Ok(m) => Ok(Some(m)),
            Err(TryRecvError::Disconnected) => Ok(None),
            Err(TryRecvError::Empty) => Err(io::ErrorKind::WouldBlock.into()),
        })
    }

    /// Waits for the next message; `Ok(None)` once every sender is gone
    /// and every message has been received. A message is taken as by
    /// [`Receiver::try_recv`] (capacity comes back at once).
    ///
    /// # Errors
    ///
    /// Only if the receiver's descriptor cannot join the loop's epoll set
    /// (`ENOMEM`, `ENOSPC`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::rt::Async;
    /// let got = fdloop::rt::block_on(async {
    ///     let (tx, rx) = fdloop::channel::unbounded()?;
    ///     let rx = Async::new(rx)?;
    ///     std::thread::spawn(move || {
    ///         for i in 0..3 { tx.send(i).unwrap(); }
    ///     });
    ///     let mut got = Vec::new();
    ///     while let Some(i) = rx.recv().await? {
    ///         got.push(i);
    ///     }
    ///     Ok::<_, std::io::Error>(got)
    /// })??;
    /// assert_eq!(got, [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn recv(&self) -> io::Result<Option<T>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }
}

/// The messages, ending when every sender is gone; errors as
/// [`recv`](Async::recv).
impl<T> Stream for Async<Receiver<T>> {
    type Item = io::Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<T>>> {
        self.poll_recv(cx).map(Result::transpose)
    }
}

impl Async<Signals> {
    /// Waits for the next of the signals.
    ///
    /// # Errors
    ///
    /// As [`Signals::try_read`] (`Unsupported` in a `fork` child), and if
    /// the descriptor cannot join the loop's epoll set.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::rt::Async;
    /// use fdloop::signal::{self, Signal, Signals};
    /// let _mask = signal::block(&[Signal::USR2])?; // before other threads start
    /// let info = fdloop::rt::block_on(async {
    ///     let sigs = Async::new(Signals::new(&[Signal::USR2])?)?;
    ///     Signal::USR2.raise()?;
    ///     sigs.next_signal().await
    /// })??;
    /// assert_eq!(info.signal, Signal::USR2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next_signal(&self) -> io::Result<SignalInfo> {
        poll_fn(|cx| {
            let s = self.get_ref();
            self.reg()
                .poll_op(Dir::Read, cx, || would_block(s.try_read()))
        })
        .await
    }
}

/// The signals as they come (never ends).
impl Stream for Async<Signals> {
    type Item = io::Result<SignalInfo>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let s = self.get_ref();
        self.reg()
            .poll_op(Dir::Read, cx, || would_block(s.try_read()))
            .map(Some)
    }
}

impl Async<Child> {
    /// Waits for the child to exit and returns its status (collected: the
    /// child is reaped). Once collected, returns it again at once.
    ///
    /// # Errors
    ///
    /// As [`Child::try_wait`]: `InvalidInput` if someone else reaped it.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::rt::Async;
    /// let exit = fdloop::rt::block_on(async {
    ///     let proc = std::process::Command::new("true").spawn()?;
    ///     let mut child = Async::new(fdloop::process::Child::new(&proc)?)?;
    ///     child.exit().await
    /// })??;
    /// assert!(exit.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn exit(&mut self) -> io::Result<Exit> {
        poll_fn(|cx| {
            let (reg, child) = self.parts();
            reg.poll_op(Dir::Read, cx, || would_block(child.try_wait()))
        })
        .await
    }
}

impl Async<Watch> {
    /// Waits for file events and returns those read (at least one).
    ///
    /// # Errors
    ///
    /// As [`Watch::read_events`], and if the descriptor cannot join the
    /// loop's epoll set.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::rt::Async;
    /// use fdloop::watch::{Watch, WatchMask};
    /// let dir = std::env::temp_dir().join(format!("fdloop-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let d = dir.clone();
    /// let events = fdloop::rt::block_on(async move {
    ///     let mut w = Watch::new()?;
    ///     w.add(&d, WatchMask::CREATE)?;
    ///     let mut w = Async::new(w)?;
    ///     std::fs::write(d.join("new"), b"")?;
    ///     w.next_events().await
    /// })??;
    /// assert!(!events.is_empty());
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next_events(&mut self) -> io::Result<Vec<WatchEvent>> {
        poll_fn(|cx| self.poll_events(cx)).await
    }

    fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Vec<WatchEvent>>> {
        let (reg, w) = self.parts();
        reg.poll_op(Dir::Read, cx, || {
            let evs = w.read_events()?;
            if evs.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(evs)
        })
    }
}

/// Batches of file events as they come (never ends).
impl Stream for Async<Watch> {
    type Item = io::Result<Vec<WatchEvent>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_events(cx).map(Some)
    }
}
