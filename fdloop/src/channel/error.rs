//! Channel errors. Every send error hands the message back.

use std::error::Error;
use std::fmt;

/// [`Sender::send`](super::Sender::send) failed: the receiver is gone. Holds
/// the message.
///
/// # Examples
///
/// ```
/// let (tx, rx) = fdloop::channel::unbounded()?;
/// drop(rx);
/// let err = tx.send(String::from("kept")).unwrap_err();
/// assert_eq!(err.into_inner(), "kept");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// [`Sender::try_send`](super::Sender::try_send) failed. Holds the message.
///
/// # Examples
///
/// ```
/// use fdloop::channel::{self, TrySendError};
/// let (tx, _rx) = channel::bounded(1)?;
/// tx.try_send(1)?;
/// match tx.try_send(2) {
///     Err(TrySendError::Full(m)) => assert_eq!(m, 2),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// A bounded channel is at capacity.
    Full(T),
    /// The receiver is gone.
    Disconnected(T),
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
        }
    }
}

/// [`Sender::send_timeout`](super::Sender::send_timeout) failed. Holds the
/// message.
///
/// # Examples
///
/// ```
/// use fdloop::channel::SendTimeoutError;
/// let e = SendTimeoutError::Timeout(1);
/// assert_eq!(e.into_inner(), 1);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// No room freed up in time.
    Timeout(T),
    /// The receiver is gone.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(m) | SendTimeoutError::Disconnected(m) => m,
        }
    }
}

/// [`Receiver::try_recv`](super::Receiver::try_recv) found no message.
///
/// # Examples
///
/// ```
/// use fdloop::channel::{self, TryRecvError};
/// let (_tx, rx) = channel::unbounded::<()>()?;
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing waits now.
    Empty,
    /// Every sender is gone and every message was received.
    Disconnected,
}

/// [`Receiver::recv`](super::Receiver::recv) failed: every sender is gone
/// and every message was received.
///
/// # Examples
///
/// ```
/// let (tx, rx) = fdloop::channel::unbounded::<()>()?;
/// drop(tx);
/// assert_eq!(rx.recv(), Err(fdloop::channel::RecvError));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError;

/// [`Receiver::recv_timeout`](super::Receiver::recv_timeout) failed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::channel::{self, RecvTimeoutError};
/// let (tx, rx) = channel::unbounded::<()>()?;
/// drop(tx);
/// assert_eq!(rx.recv_timeout(Duration::ZERO), Err(RecvTimeoutError::Disconnected));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// No message arrived in time.
    Timeout,
    /// Every sender is gone and every message was received.
    Disconnected,
}

// Debug without requiring `T: Debug`, like std's channel errors.
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError { .. }")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a channel whose receiver is gone")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Disconnected(_) => {
                f.write_str("sending on a channel whose receiver is gone")
            }
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out sending on a full channel"),
            SendTimeoutError::Disconnected(_) => {
                f.write_str("sending on a channel whose receiver is gone")
            }
        }
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => f.write_str("receiving on a closed channel"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel")
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on a channel"),
            RecvTimeoutError::Disconnected => f.write_str("receiving on a closed channel"),
        }
    }
}

impl<T> Error for SendError<T> {}
impl<T> Error for TrySendError<T> {}
impl<T> Error for SendTimeoutError<T> {}
impl Error for TryRecvError {}
impl Error for RecvError {}
impl Error for RecvTimeoutError {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Disconnected(e.0)
    }
}
