//! Channels as event-loop sources: [`Receiver`] (messages) and
//! [`SendReady`] (room in a bounded channel).

use std::fmt;
use std::io;
use std::sync::Arc;

use super::{Receiver, Shared, TryRecvError};
use crate::event_loop::single_readable_fd;
use crate::event_loop::{Action, AfterPanic, Interest, Mode, Readiness, Registrar, Source};

/// What a [`Receiver`]'s loop callback receives.
///
/// # Examples
///
/// ```
/// use fdloop::channel::Event;
/// let e: Event<u8> = Event::Msg(1);
/// assert_eq!(e.into_msg(), Some(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<T> {
    /// A message, in order.
    Msg(T),
    /// Every sender is gone and every message was delivered. Comes once,
    /// last; the source is then removed from the loop.
    Closed,
}

impl<T> Event<T> {
    /// The message, if this is one.
    pub fn into_msg(self) -> Option<T> {
        match self {
            Event::Msg(m) => Some(m),
            Event::Closed => None,
        }
    }
}

/// A receiver in a loop: each iteration delivers at most its batch limit of
/// messages ([`Receiver::set_batch_limit`]), then lets other sources run;
/// its descriptor stays readable, so the rest comes next iteration. After
/// [`Event::Closed`] the source is removed, whatever the callback returns.
impl<T> Source for Receiver<T> {
    type Event = Event<T>;
    type Metadata = ();

    single_readable_fd!(shared.rx_notify);

    fn process(
        &mut self,
        _ready: Readiness,
        _sub: u8,
        _r: &mut Registrar<'_>,
        callback: &mut dyn FnMut(Event<T>, &mut ()) -> Action,
    ) -> io::Result<Action> {
        // The receiver's state is borrowed once for the batch (`&mut self`:
        // nothing else can reach it while the callbacks run).
        let shared = &*self.shared;
        let st = self.state.get_mut();
        for i in 0..self.batch {
            // The receiver settles when a receive finds the channel empty,
            // after the last message's callback (not before it, as the plain
            // receive calls do): a reply the callback provokes — a ping-pong
            // partner answering at once — is then taken in this same
            // dispatch, with no wake-up write and no trip through epoll. After
            // two messages in one dispatch the channel is in a burst: when it
            // runs dry, yield the CPU once before sleeping, so a sender
            // sharing this CPU refills it in one go instead of waking this
            // loop (and being preempted by it) once per message; on an idle
            // CPU the yield returns at once. A lone message or a
            // request-reply pair goes without it.
            let dry = if i < 1 {
                super::Dry::WhenEmpty
            } else {
                super::Dry::YieldThenSleep
            };
            match super::recv_step(shared, st, dry) {
                Ok(m) => match callback(Event::Msg(m), &mut ()) {
                    Action::Continue => {}
                    other => return Ok(other),
                },
                Err(TryRecvError::Empty) => return Ok(Action::Continue),
                Err(TryRecvError::Disconnected) => {
                    self.closed = true;
                    callback(Event::Closed, &mut ());
                    return Ok(Action::Remove);
                }
            }
        }
        Ok(Action::Continue)
    }

    /// The callback panicked: on a message, the source stays (the rest are
    /// still queued, its descriptor still readable); on
    /// [`Event::Closed`], it leaves the loop, as after a normal return.
    fn after_panic(&mut self, _r: &mut Registrar<'_>) -> AfterPanic {
        if self.closed {
            AfterPanic::Remove
        } else {
            AfterPanic::Stay
        }
    }
}

/// A loop source that fires when a bounded channel has room again, after a
/// [`try_send`](super::Sender::try_send) returned
/// [`Full`](super::TrySendError::Full). Made by
/// [`Sender::ready_source`](super::Sender::ready_source).
///
/// It fires once per "room freed after a `Full`" — when the receiver has
/// taken half the channel's capacity after the `Full` (every message for
/// capacities up to 3) or emptied it: in the callback, send with
/// `try_send` until you run out of messages or hit `Full` again (which
/// arms it for the next time). It also fires when the receiver is dropped,
/// so the callback's `try_send` can observe the disconnection.
///
/// # Examples
///
/// ```
/// use std::collections::VecDeque;
/// use std::time::Duration;
/// use fdloop::channel::{self, TrySendError};
/// use fdloop::{Action, EventLoop};
///
/// let (tx, rx) = channel::bounded::<u32>(2)?;
/// let mut backlog: VecDeque<u32> = (0..6).collect();
/// // Fill the channel until Full.
/// while let Some(m) = backlog.pop_front() {
///     if let Err(TrySendError::Full(m)) = tx.try_send(m) {
///         backlog.push_front(m);
///         break;
///     }
/// }
/// let mut ev = EventLoop::new()?;
/// let ready = tx.ready_source();
/// ev.insert(ready, move |(), _, backlog: &mut VecDeque<u32>| {
///     while let Some(m) = backlog.pop_front() {
///         if let Err(TrySendError::Full(m)) = tx.try_send(m) {
///             backlog.push_front(m);
///             break;
///         }
///     }
///     Action::Continue
/// })?;
/// // A consumer thread drains the channel; the loop refills it.
/// let consumer = std::thread::spawn(move || rx.iter().take(6).collect::<Vec<_>>());
/// while !backlog.is_empty() {
///     ev.run_once(&mut backlog, Some(Duration::from_secs(5)))?;
/// }
/// assert_eq!(consumer.join().unwrap(), [0, 1, 2, 3, 4, 5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SendReady<T> {
    shared: Arc<Shared<T>>,
}

impl<T> SendReady<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        SendReady { shared }
    }
}

impl<T> Source for SendReady<T> {
    type Event = ();
    type Metadata = ();

    fn register(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        match &self.shared.tx_notify {
            Some(n) => r.add(n, 0, Interest::READABLE, Mode::Level),
            None => Ok(()), // unbounded: never full, nothing to watch
        }
    }

    fn unregister(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        match &self.shared.tx_notify {
            Some(n) => r.delete(n),
            None => Ok(()),
        }
    }

    fn process(
        &mut self,
        _ready: Readiness,
        _sub: u8,
        _r: &mut Registrar<'_>,
        callback: &mut dyn FnMut((), &mut ()) -> Action,
    ) -> io::Result<Action> {
        // The want is used up before the drain: a `Full` seen by the
        // callback sets it again, and room freed in between makes the fd
        // readable again (at worst one spurious firing).
        self.shared.core.tx_want_consumed();
        if let Some(n) = &self.shared.tx_notify {
            n.drain()?;
        }
        Ok(callback((), &mut ()))
    }
}

impl<T> fmt::Debug for SendReady<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendReady").finish_non_exhaustive()
    }
}
