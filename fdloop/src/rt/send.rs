//! [`AsyncSender`]: a channel sender whose `send` waits for room on the
//! loop instead of blocking the thread.

use std::cell::Cell;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::task::Poll;

use super::context;
use super::io::{Dir, Registration};
use crate::channel::{SendError, Sender, TrySendError};
use crate::event_loop::Reactor;
use crate::sys;
use crate::LoopHandle;

/// A channel [`Sender`] for tasks: [`send`](AsyncSender::send) waits for
/// room in a bounded channel as a future, as a blocked [`Sender::send`]
/// does (counted as a waiting sender, woken by the receiver through the
/// channel's "room" descriptor), but on the loop's epoll set instead of
/// blocking the thread.
///
/// For a bounded channel it holds a duplicate of that descriptor (one
/// descriptor per `AsyncSender`, so several can wait in one loop: epoll
/// refuses the same descriptor twice), registered when made. For an
/// unbounded channel, which is never full, it holds nothing.
///
/// # Examples
///
/// ```
/// use fdloop::rt::AsyncSender;
/// let got = fdloop::rt::block_on(async {
///     let (tx, rx) = fdloop::channel::bounded(2)?;
///     let consumer = std::thread::spawn(move || rx.iter().collect::<Vec<u32>>());
///     let tx = AsyncSender::new(tx)?;
///     for i in 0..100 {
///         tx.send(i).await.unwrap(); // waits while the channel is full
///     }
///     drop(tx);
///     Ok::<_, std::io::Error>(consumer.join().unwrap())
/// })??;
/// assert_eq!(got, (0..100).collect::<Vec<_>>());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncSender<T> {
    // Declared before `_room`: leaves epoll before the duplicate closes.
    reg: Option<Registration>,
    _room: Option<OwnedFd>,
    tx: Sender<T>,
}

impl<T> AsyncSender<T> {
    /// Wraps `tx` for the loop running the current task.
    ///
    /// # Errors
    ///
    /// Kind `Other` outside a task (use [`new_on`](AsyncSender::new_on));
    /// for a bounded channel, `EMFILE`/`ENFILE` from duplicating the room
    /// descriptor, or `ENOMEM`/`ENOSPC` from adding it to the epoll set.
    ///
    /// # Examples
    ///
    /// See [`AsyncSender`].
    pub fn new(tx: Sender<T>) -> io::Result<AsyncSender<T>> {
        AsyncSender::with_reactor(context::current("wrapping a channel sender")?, tx)
    }

    /// As [`new`](AsyncSender::new), for the loop of `handle`.
    ///
    /// # Errors
    ///
    /// As [`new`](AsyncSender::new), but for the context.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let (tx, _rx) = fdloop::channel::bounded::<u8>(1)?;
    /// let tx = fdloop::rt::AsyncSender::new_on(&ev.handle(), tx)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_on<S: 'static>(handle: &LoopHandle<S>, tx: Sender<T>) -> io::Result<AsyncSender<T>> {
        AsyncSender::with_reactor(handle.reactor(), tx)
    }

    fn with_reactor(reactor: Rc<dyn Reactor>, tx: Sender<T>) -> io::Result<AsyncSender<T>> {
        let room = tx.room_fd().map(sys::fd::dup_cloexec).transpose()?;
        let reg = match &room {
            Some(fd) => {
                let reg = Registration::new(reactor, fd.as_fd());
                reg.register()?;
                Some(reg)
            }
            None => None,
        };
        Ok(AsyncSender {
            reg,
            _room: room,
            tx,
        })
    }

    /// Sends `msg`, waiting while the channel is full. Capacity comes back
    /// with each message received; the wait ends at the first room report
    /// (a message that finds the channel full again waits for the next).
    /// Cancel-safe: dropping the future before it resolves drops `msg`
    /// unsent.
    ///
    /// # Errors
    ///
    /// [`SendError`] holding `msg` once the receiver is gone.
    ///
    /// # Examples
    ///
    /// See [`AsyncSender`].
    pub async fn send(&self, msg: T) -> Result<(), SendError<T>> {
        let mut msg = Some(msg);
        // Counted as a blocked sender (T1–T2 in channel/core.rs) from the
        // first `Full` until this future ends, however it ends.
        let waiting = Waiting {
            tx: &self.tx,
            counted: Cell::new(false),
        };
        poll_fn(|cx| loop {
            let Some(m) = msg.take() else {
                return Poll::Pending;
            };
            if let Some(reg) = &self.reg {
                if reg.is_ready(Dir::Read) {
                    // A room report: used up before looking (T4), so the
                    // next one is a new write.
                    self.tx.room_drain();
                    reg.clear(Dir::Read);
                }
            }
            match self.tx.try_push(m) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(TrySendError::Disconnected(m)) => return Poll::Ready(Err(SendError(m))),
                Err(TrySendError::Full(m)) => msg = Some(m),
            }
            let Some(reg) = &self.reg else {
                // Unbounded channels are never full.
                return Poll::Pending;
            };
            if !waiting.counted.replace(true) {
                // Counted now: push once more (T3) before waiting, or room
                // freed before the count was seen would go unreported.
                self.tx.room_wait();
                continue;
            }
            // Registered when made: waiting cannot fail.
            if reg.poll_ready(Dir::Read, cx).is_pending() {
                return Poll::Pending;
            }
        })
        .await
    }

    /// The sender.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let (tx, _rx) = fdloop::channel::unbounded::<u8>()?;
    /// let tx = fdloop::rt::AsyncSender::new_on(&ev.handle(), tx)?;
    /// assert!(tx.get_ref().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &Sender<T> {
        &self.tx
    }
}

/// Uncounts a waiting sender when its `send` ends or is dropped.
struct Waiting<'a, T> {
    tx: &'a Sender<T>,
    counted: Cell<bool>,
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        if self.counted.get() {
            self.tx.room_unwait();
        }
    }
}

impl<T> fmt::Debug for AsyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSender")
            .field("tx", &self.tx)
            .finish_non_exhaustive()
    }
}
