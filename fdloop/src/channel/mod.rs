//! Channels whose receiver is a pollable file descriptor.
//!
//! [`unbounded`] and [`bounded`] make a [`Sender`]/[`Receiver`] pair. The
//! receiver is [`AsFd`]: its descriptor is readable exactly when a message
//! waits or every sender is gone, so it can sit in any `poll`/`epoll` set —
//! fdloop's ([`Receiver`] is a [`Source`](crate::Source)) or anyone else's —
//! next to sockets and timers.
//!
//! A send makes a system call only when the receiver is asleep: while the
//! receiver is busy, a burst of sends costs no syscall at all, and no lock
//! either — the queue is lock-free (one compare-exchange per send, none per
//! receive). The protocol, and why it never loses a wake-up, is written
//! down in `channel/core.rs` and model-checked with loom.
//!
//! # Semantics in brief
//!
//! * **Readiness.** The receiver's descriptor is readable while a message
//!   waits, and once every sender is gone (then for good). When it stops
//!   being readable after the last waiting message is taken depends on the
//!   call that took it:
//!   - [`Receiver::try_recv`] and [`Receiver::try_iter`]: before the call
//!     returns; no extra empty `try_recv` is needed.
//!   - The loop source: when its dispatch ends — after the last message's
//!     callback, so that a reply the callback provokes is taken in the same
//!     dispatch — before any other source runs.
//!   - The blocking calls ([`Receiver::recv`], [`Receiver::recv_timeout`],
//!     [`Receiver::iter`]): at the next receive call that finds the channel
//!     empty (a blocking one after spinning a few microseconds). Until
//!     then the receiver counts as awake, so senders that keep up with it
//!     make no system call and neither does it; settling at once costs a
//!     read and a write per catch-up, about a third of the throughput of a
//!     consumer that keeps up (BENCHMARKS.md).
//!
//!   The one exception is a race with a sender in the middle of a send at
//!   that moment: the descriptor may then read readable once with nothing
//!   to take, and the next receive call that finds nothing clears it.
//! * **Capacity** ([`bounded`]) comes back with each message received:
//!   once a receive has returned a message (or the loop callback has been
//!   called with it), [`Sender::try_send`] has room for one more and
//!   [`Sender::len`] counts it gone. A sender *blocked* on a full channel
//!   (in [`Sender::send`], or waiting through a [`SendReady`] source) is
//!   woken once the receiver has taken half the capacity's worth of
//!   messages after it blocked (every message for capacities up to 3), or
//!   has emptied the channel — so it refills half the channel per wake-up
//!   rather than one slot; a receiver never sleeps beside a blocked
//!   sender.
//! * **Order**: first in, first out per sender; messages of different
//!   senders interleave in the order their sends claimed a slot.
//! * **Drops**: a message is dropped exactly once — by whoever received
//!   it, inside the error of a send to a dropped receiver (which hands it
//!   back), or by the channel when the receiver is dropped with messages
//!   queued.
//! * **System calls**: a send writes the receiver's descriptor only when
//!   the receiver is asleep (the first send after it found the channel
//!   empty); a receive reads it only when falling asleep after a wake-up.
//!   One more case: a sender preempted between claiming its slot and
//!   writing it holds the receiver up (messages are taken in claim order).
//!   When the receiver has waited there past a few microseconds of
//!   spinning, it says so, and until that slot is written every send
//!   ends with a `sched_yield`, so that if the preempted sender shares the
//!   CPU it runs next — rather than after every other sender's time slice,
//!   while they grow the queue into fresh memory the receiver must then
//!   wade through.
//!   `EINTR` is retried inside; `EAGAIN` cannot happen (the descriptor is
//!   written at most once per sleep). Creating a channel can fail with
//!   `EMFILE`/`ENFILE` (one descriptor, two for a bounded channel), or
//!   fall back from eventfd to a pipe where eventfd is missing (`ENOSYS`).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use fdloop::channel::{self, Event};
//! use fdloop::{Action, EventLoop};
//!
//! let (tx, rx) = channel::unbounded::<String>()?;
//! let mut ev = EventLoop::new()?;
//! ev.insert(rx, |event, _, got: &mut Vec<String>| {
//!     match event {
//!         Event::Msg(s) => got.push(s),
//!         Event::Closed => got.push("closed".into()),
//!     }
//!     Action::Continue
//! })?;
//! std::thread::spawn(move || {
//!     tx.send("hello".into()).unwrap();
//!     tx.send("world".into()).unwrap();
//! }); // tx dropped: the channel closes after the last message
//! let mut got = Vec::new();
//! while got.last().map(String::as_str) != Some("closed") {
//!     ev.run_once(&mut got, Some(Duration::from_secs(5)))?;
//! }
//! assert_eq!(got, ["hello", "world", "closed"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod core;
mod error;
mod queue;
mod source;

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use source::{Event, SendReady};

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::core::{Core, RxState, Settled};
use self::queue::Push;
use crate::notify::Notifier;
use crate::sync::Backoff;
use crate::sys;

/// Spin-then-yield rounds of a blocking receive (or a blocking send on a
/// full channel) before it sleeps: six spins of 1 to 32 pause
/// instructions, then yields; a few microseconds.
const RECV_SPINS: u32 = 10;

/// How many messages the receiver hands to a loop callback per iteration
/// before letting other sources run (see [`Receiver::set_batch_limit`]).
///
/// Chosen by measurement (`tests/fairness.rs`'s flood, release build,
/// 2-vCPU VM, two runs): a thread floods a bounded(4096) channel into a loop
/// that also runs a 1 ms periodic timer and a socket echo. Messages taken
/// per second and the timer's lateness p99, by batch limit:
///
/// | limit | messages/s | timer lateness p99 |
/// |---:|---:|---:|
/// | 16 | 11–12 M | 15 µs |
/// | 64 | 29 M | 21 µs |
/// | **256** | **50 M** | **25–38 µs** |
/// | 1024 | 61–63 M | 37–40 µs |
/// | 4096 | 71–72 M | 129 µs |
/// | none (100 000) | 65–67 M | 980 µs, and two ticks in three missed |
///
/// 256 keeps the other sources' latency within tens of microseconds at
/// most of the throughput; raise it for a loop that serves the channel
/// alone.
pub const DEFAULT_BATCH: usize = 256;

struct Shared<T> {
    core: Core<T>,
    rx_notify: Notifier,
    /// Written when capacity frees up for waiting senders (bounded only).
    tx_notify: Option<Notifier>,
    senders: AtomicUsize,
}

impl<T> Shared<T> {
    /// Writes the receiver's notifier (S3 in core.rs: this send found the
    /// receiver asleep). Cannot fail on a live eventfd or pipe we own
    /// (`EAGAIN` counts as written, `EINTR` is retried).
    #[cold]
    #[inline(never)]
    fn wake_rx(&self) {
        let _ = self.rx_notify.raise_uncoalesced();
    }

    fn wake_tx(&self) {
        if let Some(n) = &self.tx_notify {
            let _ = n.notify();
        }
    }

    /// A push's outcome, as a `try_send` result; writes the receiver's fd
    /// when the push found it asleep.
    #[inline]
    fn pushed(&self, p: Push<T>) -> Result<(), TrySendError<T>> {
        match p {
            Push::Queued { wake_rx } => {
                if wake_rx {
                    self.wake_rx();
                }
                Ok(())
            }
            Push::Full(m) => Err(TrySendError::Full(m)),
            Push::NoReceiver(m) => Err(TrySendError::Disconnected(m)),
        }
    }
}

/// An unbounded channel: sends never block and never fail while the
/// receiver lives.
///
/// # Errors
///
/// Creating the receiver's notifier (eventfd, or a pipe where eventfd is
/// unavailable) can fail with `EMFILE`/`ENFILE`.
///
/// # Examples
///
/// ```
/// let (tx, rx) = fdloop::channel::unbounded()?;
/// tx.send(1)?;
/// tx.send(2)?;
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn unbounded<T>() -> io::Result<(Sender<T>, Receiver<T>)> {
    make(usize::MAX, false)
}

/// A bounded channel holding at most `capacity` messages (at least 1: a
/// capacity of 0 is taken as 1). [`Sender::send`] blocks while it is full;
/// [`Sender::try_send`] returns [`TrySendError::Full`]; a sender living in
/// an event loop can wait for room with a [`SendReady`] source.
///
/// # Errors
///
/// As [`unbounded`]; a bounded channel uses two notifiers.
///
/// # Examples
///
/// ```
/// use fdloop::channel::{self, TrySendError};
/// let (tx, rx) = channel::bounded(1)?;
/// tx.try_send('a')?;
/// assert!(matches!(tx.try_send('b'), Err(TrySendError::Full('b'))));
/// assert_eq!(rx.try_recv()?, 'a');
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bounded<T>(capacity: usize) -> io::Result<(Sender<T>, Receiver<T>)> {
    make(capacity.max(1), true)
}

fn make<T>(cap: usize, bounded: bool) -> io::Result<(Sender<T>, Receiver<T>)> {
    // The descriptors first: if one cannot be had (EMFILE), nothing else
    // has been made. The receiver's state owns the queue's first block and
    // frees it only through the receiver's drop.
    let rx_notify = Notifier::new()?;
    let tx_notify = if bounded {
        Some(Notifier::new()?)
    } else {
        None
    };
    let (core, state) = Core::new(bounded.then_some(cap));
    let shared = Arc::new(Shared {
        core,
        rx_notify,
        tx_notify,
        senders: AtomicUsize::new(1),
    });
    Ok((
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            state: RefCell::new(state),
            batch: DEFAULT_BATCH,
            closed: false,
        },
    ))
}

/// The sending side: `Clone` (for more producers) and `Send` for `T: Send`.
///
/// Dropping the last sender disconnects the channel: the receiver gets the
/// messages already sent, then [`TryRecvError::Disconnected`] (or, as a loop
/// source, [`Event::Closed`]).
///
/// # Examples
///
/// ```
/// let (tx, rx) = fdloop::channel::unbounded()?;
/// let handles: Vec<_> = (0..4).map(|i| {
///     let tx = tx.clone();
///     std::thread::spawn(move || tx.send(i).unwrap())
/// }).collect();
/// drop(tx);
/// for h in handles { h.join().unwrap(); }
/// let mut got: Vec<i32> = rx.iter().collect(); // ends when all senders are gone
/// got.sort();
/// assert_eq!(got, [0, 1, 2, 3]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Sends `msg`, blocking while a bounded channel is full.
    ///
    /// Makes a system call only when the receiver is asleep (one `write`),
    /// when it has to block, or while the receiver is held up behind
    /// another sender that was preempted mid-send (one `sched_yield`, so
    /// that sender gets the CPU back; see the module docs). On a full
    /// channel it first spins and yields
    /// for a few microseconds, retrying; then it sleeps in `ppoll` on the
    /// send side's descriptor (`EINTR` is retried) until the receiver has
    /// taken half the capacity's worth of messages (see the module docs).
    ///
    /// # Errors
    ///
    /// [`SendError`] holding `msg` if the receiver is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = fdloop::channel::unbounded()?;
    /// tx.send(5)?;
    /// drop(rx);
    /// assert_eq!(tx.send(6).unwrap_err().into_inner(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        // The common case inline: queued (always room, unbounded), the
        // receiver awake. Everything else out of line.
        match self.shared.core.push(msg) {
            Push::Queued { wake_rx: false } => Ok(()),
            other => self.send_rest(other),
        }
    }

    /// [`Sender::send`] past its common case: wake the receiver, or wait
    /// for room, or hand the message back.
    #[inline(never)]
    fn send_rest(&self, pushed: Push<T>) -> Result<(), SendError<T>> {
        let msg = match self.shared.pushed(pushed) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(m)) => return Err(SendError(m)),
            Err(TrySendError::Full(m)) => m,
        };
        match self.send_until(msg, None) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Disconnected(m) | SendTimeoutError::Timeout(m)) => {
                Err(SendError(m))
            }
        }
    }

    /// Sends `msg` if there is room now; never blocks.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] (bounded channel at capacity; a [`SendReady`]
    /// source of this channel will fire once room frees up) or
    /// [`TrySendError::Disconnected`] (receiver gone); both hold `msg`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::channel::{self, TrySendError};
    /// let (tx, rx) = channel::bounded(2)?;
    /// tx.try_send(1)?;
    /// tx.try_send(2)?;
    /// assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
    /// # drop(rx);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        let shared = &*self.shared;
        match shared.core.push(msg) {
            Push::Full(m) => {
                // Register for a `SendReady` wake-up, then look once more:
                // room freed before the registration was seen would
                // otherwise never be reported (T1–T4 in core.rs).
                shared.core.tx_want();
                shared.pushed(shared.core.push(m))
            }
            p => shared.pushed(p),
        }
    }

    /// Sends `msg`, waiting at most `timeout` for room in a bounded channel.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`],
    /// holding `msg`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::channel::{self, SendTimeoutError};
    /// let (tx, _rx) = channel::bounded(1)?;
    /// tx.send(1)?;
    /// let r = tx.send_timeout(2, Duration::from_millis(5));
    /// assert!(matches!(r, Err(SendTimeoutError::Timeout(2))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(msg, Instant::now().checked_add(timeout))
    }

    #[cold]
    fn send_until(&self, mut msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let shared = &*self.shared;
        let timeout = |r: Result<(), TrySendError<T>>| match r {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(m)) => Err(SendTimeoutError::Disconnected(m)),
            Err(TrySendError::Full(m)) => Err(SendTimeoutError::Timeout(m)),
        };
        let mut first = true;
        loop {
            match shared.pushed(shared.core.push(msg)) {
                Err(TrySendError::Full(m)) => msg = m,
                r => return timeout(r),
            }
            let Some(tx_notify) = &shared.tx_notify else {
                // Unbounded channels are never full.
                return Err(SendTimeoutError::Disconnected(msg));
            };
            // Full. As a blocking receive does before sleeping: spin, then
            // yield, a few rounds, retrying; a receiver that is busy taking
            // messages frees a slot within this window. Only on the first
            // attempt: a sender woken from its sleep that finds the channel
            // full again (another waiter took the room) goes straight back
            // to sleep, rather than several woken senders spinning for one
            // slot.
            if first {
                first = false;
                let mut backoff = Backoff::new();
                for _ in 0..RECV_SPINS {
                    backoff.snooze();
                    match shared.pushed(shared.core.push(msg)) {
                        Err(TrySendError::Full(m)) => msg = m,
                        r => return timeout(r),
                    }
                }
            }
            // Still full: wait on the send-side notifier (T1–T5 in core.rs).
            shared.core.tx_wait();
            // A stale signal (room that came and went) would make the wait
            // below return at once: consume it, then look again. A failed
            // drain (not possible on a live descriptor we own) only costs a
            // spurious wake-up.
            let _ = tx_notify.drain();
            match shared.pushed(shared.core.push(msg)) {
                Err(TrySendError::Full(m)) => msg = m,
                r => {
                    shared.core.tx_unwait();
                    return timeout(r);
                }
            }
            let timed_out = !wait_readable(tx_notify.as_fd(), deadline);
            shared.core.tx_unwait();
            if timed_out {
                // One last try: room may have appeared at the deadline.
                return timeout(shared.pushed(shared.core.push(msg)));
            }
        }
    }

    /// A loop source that fires when a bounded channel has room again after
    /// a [`try_send`](Sender::try_send) from this channel returned
    /// [`TrySendError::Full`] — so a sender living in an event loop waits
    /// for capacity without blocking its thread. For an unbounded channel it
    /// never fires.
    ///
    /// # Examples
    ///
    /// See [`SendReady`].
    pub fn ready_source(&self) -> SendReady<T> {
        SendReady::new(self.shared.clone())
    }

    /// Messages sent and not yet received.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = fdloop::channel::unbounded()?;
    /// tx.send(())?;
    /// assert_eq!(tx.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.shared.core.len()
    }

    /// Whether no message is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = fdloop::channel::unbounded::<()>()?;
    /// assert!(tx.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity: `Some(n)` for bounded channels, `None` for unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = fdloop::channel::bounded::<()>(8)?;
    /// assert_eq!(tx.capacity(), Some(8));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.shared.core.capacity()
    }

    /// The receiver's [`wake_writes`](Receiver::wake_writes), seen from the
    /// sending side.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = fdloop::channel::unbounded()?;
    /// tx.send(1)?;
    /// tx.send(2)?;
    /// assert_eq!(tx.wake_writes(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wake_writes(&self) -> u64 {
        self.shared.rx_notify.writes()
    }

    /// Whether the receiver is gone (every send would fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = fdloop::channel::unbounded::<()>()?;
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.shared.core.is_rx_gone()
    }
}

/// Crate-private hooks for `rt`'s async sender: the blocked-sender
/// protocol of [`Sender::send`] (T1–T5 in core.rs), with the wait done by
/// the loop instead of `ppoll`.
#[cfg(feature = "async")]
impl<T> Sender<T> {
    /// The descriptor written when room frees up for counted waiters
    /// (bounded channels only).
    pub(crate) fn room_fd(&self) -> Option<BorrowedFd<'_>> {
        self.shared.tx_notify.as_ref().map(|n| n.as_fd())
    }

    /// A send that, unlike [`try_send`](Sender::try_send), asks for no
    /// [`SendReady`] report when full.
    pub(crate) fn try_push(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.shared.pushed(self.shared.core.push(msg))
    }

    /// T1–T2: counts a waiter, so the receiver writes the room descriptor
    /// as it takes messages. Push once more after it (T3).
    pub(crate) fn room_wait(&self) {
        self.shared.core.tx_wait();
    }

    /// Undoes one [`room_wait`](Sender::room_wait).
    pub(crate) fn room_unwait(&self) {
        self.shared.core.tx_unwait();
    }

    /// Consumes a room report (a failed drain only costs a spurious wake).
    pub(crate) fn room_drain(&self) {
        if let Some(n) = &self.shared.tx_notify {
            let _ = n.drain();
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // AcqRel: the last sender must see every other sender's pushes
        // before it disconnects (they are also ordered by the tail word).
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 && self.shared.core.disconnect()
        {
            self.shared.wake_rx();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The receiving side: `Send` (for `T: Send`), one per channel, and
/// [`AsFd`]: the descriptor is readable exactly when a message waits or
/// every sender is gone.
///
/// To use it in your own poll set: wait for the descriptor to be readable,
/// then call [`try_recv`](Receiver::try_recv) as often as you like; the
/// descriptor turns unreadable when `try_recv` takes the last waiting
/// message (see the module docs for the blocking calls), and stays
/// readable for good once [`TryRecvError::Disconnected`] comes. As an
/// fdloop source it does this itself, [`DEFAULT_BATCH`] messages per
/// iteration at most.
///
/// Messages still queued when the receiver is dropped are dropped with it,
/// once each.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let (tx, rx) = fdloop::channel::unbounded()?;
/// std::thread::spawn(move || tx.send("ping").unwrap());
/// assert_eq!(rx.recv_timeout(Duration::from_secs(5))?, "ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The receiving end's private state (head position, sleep, owed
    /// writes). Borrowed only inside the receive calls, never across a
    /// callback.
    state: RefCell<RxState<T>>,
    batch: usize,
    /// As a loop source: [`Event::Closed`] was handed to the callback.
    closed: bool,
}

impl<T> Receiver<T> {
    /// Takes the next message if there is one; never blocks.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when nothing waits (the descriptor is not
    /// readable; it turns readable at the next send);
    /// [`TryRecvError::Disconnected`] when every sender is gone and every
    /// message has been received.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::channel::{self, TryRecvError};
    /// let (tx, rx) = channel::unbounded()?;
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1)?;
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        recv_step(&self.shared, &mut self.state.borrow_mut(), Dry::AtLast)
    }

    /// Waits for the next message.
    ///
    /// Finding the channel empty, spins and yields for a few microseconds,
    /// then blocks in `ppoll` on the receiver's descriptor (`EINTR` is
    /// retried). Returning the last waiting message leaves the descriptor
    /// readable until the next receive call finds the channel empty (see
    /// the module docs).
    ///
    /// # Errors
    ///
    /// [`RecvError`] once every sender is gone and every message has been
    /// received.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = fdloop::channel::unbounded()?;
    /// std::thread::spawn(move || tx.send(3).unwrap());
    /// assert_eq!(rx.recv()?, 3);
    /// assert!(rx.recv().is_err()); // the sender is gone
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Waits at most `timeout` for the next message.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Disconnected`]
    /// once every sender is gone and every message has been received.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::channel::{self, RecvTimeoutError};
    /// let (_tx, rx) = channel::unbounded::<u8>()?;
    /// let r = rx.recv_timeout(Duration::from_millis(2));
    /// assert_eq!(r, Err(RecvTimeoutError::Timeout));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.recv_until(Some(d)),
            None => self.recv_until(None),
        }
    }

    #[inline]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let shared = &*self.shared;
        loop {
            {
                let mut st = self.state.borrow_mut();
                match recv_step(shared, &mut st, Dry::Spin) {
                    Ok(m) => return Ok(m),
                    Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                    Err(TryRecvError::Empty) => {}
                }
            }
            if !wait_readable(self.as_fd(), deadline) {
                // Timed out; one last look.
                return match self.try_recv() {
                    Ok(m) => Ok(m),
                    Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                    Err(TryRecvError::Empty) => Err(RecvTimeoutError::Timeout),
                };
            }
        }
    }

    /// An iterator over the messages waiting now; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = fdloop::channel::unbounded()?;
    /// for i in 0..3 { tx.send(i)?; }
    /// assert_eq!(rx.try_iter().sum::<i32>(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// A blocking iterator that ends when every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = fdloop::channel::unbounded()?;
    /// std::thread::spawn(move || for i in 0..3 { tx.send(i).unwrap() });
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// Sets how many messages a loop callback gets per iteration before other
    /// sources run (at least 1). Default: [`DEFAULT_BATCH`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, mut rx) = fdloop::channel::unbounded::<u8>()?;
    /// rx.set_batch_limit(64);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_batch_limit(&mut self, n: usize) {
        self.batch = n.max(1);
    }

    /// How many times the receiver's descriptor was written (one system
    /// call each) over the channel's life: by senders that found the
    /// receiver asleep, by disconnection, and by the receiver re-arming
    /// itself in a rare race. Divide by messages received for "syscalls per
    /// message" on the sending side.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = fdloop::channel::unbounded()?;
    /// for i in 0..1000 { tx.send(i)?; }
    /// assert_eq!(rx.wake_writes(), 1); // only the first send found it asleep
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wake_writes(&self) -> u64 {
        self.shared.rx_notify.writes()
    }

    /// Whether every sender is gone (messages may still be waiting).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = fdloop::channel::unbounded::<()>()?;
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.shared.core.is_disconnected()
    }
}

/// How a receive call settles the receiver when the channel runs dry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dry {
    /// Right after taking the last message, before returning it: the
    /// descriptor is exact when the call returns (the plain receive calls).
    AtLast,
    /// Only when a receive finds nothing; first yield the CPU once (the
    /// loop source, from the second message of a dispatch on: see there).
    YieldThenSleep,
    /// Only when a receive finds nothing (the loop source's first message).
    WhenEmpty,
    /// Only when a receive finds nothing after spinning and yielding a few
    /// rounds (the blocking receives).
    Spin,
}

/// One receive: the next message, or why there is none. Shared by
/// [`Receiver::try_recv`], the blocking receives and the loop source (which
/// borrows the state once per batch). The common case — a message is
/// there — is inlined into each caller; the rest is [`recv_wait`].
#[inline(always)]
fn recv_step<T>(shared: &Shared<T>, st: &mut RxState<T>, dry: Dry) -> Result<T, TryRecvError> {
    // SAFETY: `st` is the state of the channel's one receiver (`Receiver`
    // is not `Clone`, and callers hold the state exclusively), and the
    // queue is closed only when that receiver is dropped.
    match unsafe { shared.core.take(st) } {
        Some(m) => {
            took(shared, st, dry);
            Ok(m)
        }
        None => recv_wait(shared, st, dry),
    }
}

/// After a receive took a message: a checkpoint for blocked senders
/// (bounded), and for [`Dry::AtLast`], falling asleep with the last one.
#[inline(always)]
fn took<T>(shared: &Shared<T>, st: &mut RxState<T>, dry: Dry) {
    if shared.core.tx_checkpoint(st) {
        shared.wake_tx();
    }
    // SAFETY: as in `recv_step`.
    if dry == Dry::AtLast && !unsafe { shared.core.head_ready(st) } {
        // The last message: fall asleep now, so the descriptor stops
        // being readable with it.
        settle(shared, st);
    }
}

/// [`recv_step`] found no message at the head: spin, yield or settle as
/// `dry` says, taking one if it comes meanwhile.
#[inline(never)]
fn recv_wait<T>(shared: &Shared<T>, st: &mut RxState<T>, dry: Dry) -> Result<T, TryRecvError> {
    let mut backoff = Backoff::new();
    let mut yielded = false;
    loop {
        // SAFETY: as in `recv_step`.
        if let Some(m) = unsafe { shared.core.take(st) } {
            took(shared, st, dry);
            return Ok(m);
        }
        if dry == Dry::YieldThenSleep && !yielded {
            yielded = true;
            std::thread::yield_now();
            continue;
        }
        if dry == Dry::Spin && !yielded {
            // Before settling (and so before blocking): a few short spins,
            // then a few yields of the CPU (a sender sharing it runs
            // meanwhile), watching the head slot. A sender in the middle of
            // a burst usually delivers within this window; the receiver,
            // still awake, then costs it no system call, and skips its own
            // `ppoll` and the context switches of a real sleep.
            yielded = true;
            let mut spin = Backoff::new();
            if (0..RECV_SPINS).any(|_| {
                spin.snooze();
                // SAFETY: as above.
                unsafe { shared.core.head_ready(st) }
            }) {
                continue;
            }
        }
        match settle(shared, st) {
            Settled::Asleep => return Err(TryRecvError::Empty),
            Settled::Disconnected => return Err(TryRecvError::Disconnected),
            // A sender is between claiming a slot and filling it. Once
            // that lasts beyond spinning, it was preempted there: ask the
            // other senders to yield to it (`Core::push`).
            Settled::Pending => {
                backoff.snooze();
                if backoff.is_yielding() {
                    shared.core.set_stalled(st, true);
                }
            }
        }
    }
}

/// The receiver found the channel empty: a checkpoint for waiting senders
/// (bounded channels: the whole ring is free), then sleep if it is.
#[inline]
fn settle<T>(shared: &Shared<T>, st: &mut RxState<T>) -> Settled {
    if shared.tx_notify.is_some() && shared.core.senders_waiting() {
        shared.wake_tx();
    }
    shared.core.settle(st, &shared.rx_notify)
}

/// Waits until `fd` is readable or `deadline` passes. Returns false on
/// timeout. `EINTR` is retried; any other `ppoll` failure (only `ENOMEM` is
/// possible) is retried after 1 ms rather than spinning.
fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> bool {
    loop {
        let remaining = match deadline {
            None => None,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return false;
                }
                Some(d - now)
            }
        };
        match sys::fd::poll_one(fd, true, false, remaining) {
            Ok(r) if r.readable || r.error => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

impl<T> AsFd for Receiver<T> {
    /// Readable exactly when a message waits or every sender is gone.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.shared.rx_notify.as_fd()
    }
}

impl<T> AsRawFd for Receiver<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // No send succeeds from here on; every message still queued is
        // dropped here, once each (their destructors may even send on this
        // channel: that send gets its message back).
        // SAFETY: this is the one receiver, and it is going away.
        unsafe { self.shared.core.close(self.state.get_mut()) };
        // Blocked senders and `SendReady` sources wake up and find the
        // receiver gone.
        self.shared.wake_tx();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("fd", &self.as_raw_fd())
            .finish_non_exhaustive()
    }
}

/// Iterator returned by [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Iterator returned by [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}
