//! The [`Source`] trait and the vocabulary it speaks: interests, trigger
//! modes, readiness, actions, and the [`Registrar`] through which a source
//! puts its descriptors into the loop's epoll set.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::num::NonZeroU8;
use std::ops::BitOr;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::event::epoll::EventFlags;

use super::timers::{Clock, Timers};
use super::token;
use crate::sys;

/// Which readiness a descriptor is watched for. Never empty.
///
/// # Examples
///
/// ```
/// use fdloop::Interest;
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert_eq!(both, Interest::BOTH);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(NonZeroU8);

const R: u8 = 1;
const W: u8 = 2;

impl Interest {
    /// Readable (`EPOLLIN`, plus `EPOLLRDHUP` so a peer's shutdown shows).
    pub const READABLE: Interest = Interest(NonZeroU8::MIN);
    /// Writable (`EPOLLOUT`).
    pub const WRITABLE: Interest = Interest(NonZeroU8::MIN.saturating_add(W - 1));
    /// Readable and writable.
    pub const BOTH: Interest = Interest(NonZeroU8::MIN.saturating_add((R | W) - 1));

    /// Whether readability is watched.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(fdloop::Interest::READABLE.is_readable());
    /// ```
    pub fn is_readable(self) -> bool {
        self.0.get() & R != 0
    }

    /// Whether writability is watched.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!fdloop::Interest::READABLE.is_writable());
    /// ```
    pub fn is_writable(self) -> bool {
        self.0.get() & W != 0
    }

    pub(crate) fn flags(self, mode: Mode) -> EventFlags {
        let mut f = EventFlags::empty();
        if self.is_readable() {
            f |= EventFlags::IN | EventFlags::RDHUP;
        }
        if self.is_writable() {
            f |= EventFlags::OUT;
        }
        match mode {
            Mode::Level => {}
            Mode::Edge => f |= EventFlags::ET,
            Mode::Oneshot => f |= EventFlags::ONESHOT,
        }
        f
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest(self.0 | rhs.0)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            _ => f.write_str("WRITABLE"),
        }
    }
}

/// How readiness is reported (epoll's trigger modes).
///
/// # Examples
///
/// ```
/// assert_eq!(fdloop::Mode::default(), fdloop::Mode::Level);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Reported on every iteration while the descriptor is ready. Forgiving:
    /// a callback may read only part of what is there.
    #[default]
    Level,
    /// Reported when readiness *changes* (`EPOLLET`). The callback must read
    /// or write until `WouldBlock`, or it will not hear of the rest.
    Edge,
    /// Reported once (`EPOLLONESHOT`), then disarmed until re-armed (for
    /// [`Io`](crate::Io): [`IoCtl::rearm`](crate::IoCtl::rearm)).
    Oneshot,
}

/// What a descriptor was found ready for, as epoll reported it.
///
/// # Examples
///
/// ```
/// let r = fdloop::Readiness::default();
/// assert!(!r.is_readable() && !r.is_writable());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Readiness(u32);

impl Readiness {
    pub(crate) fn from_flags(f: EventFlags) -> Readiness {
        Readiness(f.bits())
    }

    fn has(self, f: EventFlags) -> bool {
        self.0 & f.bits() != 0
    }

    /// Data can be read, or the read side reached end of file (`EPOLLIN`).
    pub fn is_readable(self) -> bool {
        self.has(EventFlags::IN)
    }

    /// Data can be written (`EPOLLOUT`).
    pub fn is_writable(self) -> bool {
        self.has(EventFlags::OUT)
    }

    /// An error is pending on the descriptor (`EPOLLERR`); reading or
    /// writing will return it.
    pub fn is_error(self) -> bool {
        self.has(EventFlags::ERR)
    }

    /// Both directions are closed (`EPOLLHUP`), e.g. the other end of a
    /// pipe is gone.
    pub fn is_hangup(self) -> bool {
        self.has(EventFlags::HUP)
    }

    /// The peer shut down its writing side (`EPOLLRDHUP`): reads will soon
    /// return end of file.
    pub fn is_read_closed(self) -> bool {
        self.has(EventFlags::RDHUP) || self.has(EventFlags::HUP)
    }

    /// Urgent or priority data (`EPOLLPRI`).
    pub fn is_priority(self) -> bool {
        self.has(EventFlags::PRI)
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_set();
        for (on, name) in [
            (self.is_readable(), "READABLE"),
            (self.is_writable(), "WRITABLE"),
            (self.is_error(), "ERROR"),
            (self.has(EventFlags::HUP), "HANGUP"),
            (self.has(EventFlags::RDHUP), "READ_CLOSED"),
            (self.is_priority(), "PRIORITY"),
        ] {
            if on {
                l.entry(&format_args!("{name}"));
            }
        }
        l.finish()
    }
}

/// What a callback wants done with its source afterwards.
///
/// # Examples
///
/// ```
/// use fdloop::Action;
/// let after = |n: u32| if n < 3 { Action::Continue } else { Action::Remove };
/// assert_eq!(after(5), Action::Remove);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Action {
    /// Keep the source as it is.
    #[default]
    Continue,
    /// Keep the source but stop watching it (its descriptors leave the epoll
    /// set) until [`LoopHandle::enable`](crate::LoopHandle::enable).
    Disable,
    /// Remove the source from the loop and drop it (its descriptors leave the
    /// epoll set before they close).
    Remove,
}

/// Names a source inside one [`EventLoop`](crate::EventLoop).
///
/// Carries a generation: once the source is removed, the id stays invalid
/// even after its slot is reused by a new source.
///
/// # Examples
///
/// ```
/// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
/// let a = ev.handle().defer(|_| {})?;
/// ev.remove(a)?;
/// let b = ev.handle().defer(|_| {})?; // may reuse a's slot
/// assert_ne!(a, b);
/// # Ok::<(), fdloop::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceId({}v{})", self.slot, self.gen)
    }
}

/// A source's access to the loop's epoll set while it registers, re-registers
/// or processes. Every descriptor a source adds is tagged with the source's
/// slot, its registration generation and a sub-index (`0..=255`), so one
/// source can watch up to 256 descriptors and tell them apart in
/// [`Source::process`].
///
/// Deleting tolerates `ENOENT` and `EBADF` (already gone).
pub struct Registrar<'a> {
    pub(crate) epoll: BorrowedFd<'a>,
    pub(crate) slot: u32,
    pub(crate) reg_gen: u32,
    pub(crate) timers: &'a RefCell<Timers>,
    /// Set by [`dispatch_again`](Registrar::dispatch_again).
    pub(crate) again: bool,
}

impl fmt::Debug for Registrar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("slot", &self.slot)
            .field("reg_gen", &self.reg_gen)
            .finish()
    }
}

impl Registrar<'_> {
    /// Schedules this source's timer (the loop's timer store runs it at
    /// `deadline`, nanoseconds on `clock`). Replaces an earlier schedule.
    pub(crate) fn schedule_timer(
        &mut self,
        clock: Clock,
        deadline: u64,
        slack: u64,
    ) -> io::Result<()> {
        self.timers.borrow_mut().schedule_gen(
            self.epoll,
            self.slot,
            self.reg_gen,
            clock,
            deadline,
            slack,
        )
    }

    /// Cancels this source's timer, if scheduled. O(log n). Returns the
    /// deadline it was pending at, if it was.
    pub(crate) fn cancel_timer(&mut self) -> Option<u64> {
        self.timers.borrow_mut().cancel(self.slot)
    }

    /// This source's timer deadline as the store last scheduled it (ns on
    /// its clock), and whether it is still pending; `None` if it was never
    /// scheduled under this registration.
    pub(crate) fn timer_deadline(&self) -> Option<(u64, bool)> {
        self.timers.borrow().deadline_of(self.slot, self.reg_gen)
    }

    /// From [`Source::process`] (only: elsewhere it does nothing): asks the loop to call `process` again on
    /// its next iteration — with an empty [`Readiness`] and the same `sub` —
    /// whether or not the descriptor is ready then. For a source that
    /// stopped at its per-iteration batch limit with items it had already
    /// read (an inotify buffer, say): the rest is delivered next time,
    /// after the other ready sources had their turn, with no wake-up
    /// system call (the next iteration only polls, it does not block).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use std::io;
    /// use fdloop::{Action, EventFd, EventLoop, Interest, Mode, Readiness, Registrar, Source};
    ///
    /// /// Hands out its items two per iteration once its eventfd is readable
    /// /// (one-shot: reported once).
    /// struct Items(EventFd, VecDeque<u32>);
    ///
    /// impl Source for Items {
    ///     type Event = u32;
    ///     type Metadata = ();
    ///     fn register(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
    ///         r.add(&self.0, 0, Interest::READABLE, Mode::Oneshot)
    ///     }
    ///     fn unregister(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
    ///         r.delete(&self.0)
    ///     }
    ///     fn process(
    ///         &mut self,
    ///         _: Readiness,
    ///         _: u8,
    ///         r: &mut Registrar<'_>,
    ///         cb: &mut dyn FnMut(u32, &mut ()) -> Action,
    ///     ) -> io::Result<Action> {
    ///         for _ in 0..2 {
    ///             let Some(i) = self.1.pop_front() else { return Ok(Action::Remove) };
    ///             cb(i, &mut ());
    ///         }
    ///         r.dispatch_again();
    ///         Ok(Action::Continue)
    ///     }
    /// }
    ///
    /// let mut ev: EventLoop<Vec<u32>> = EventLoop::new()?;
    /// ev.insert(Items(EventFd::new(1)?, (0..5).collect()), |i, _, got: &mut Vec<u32>| {
    ///     got.push(i);
    ///     Action::Continue
    /// })?;
    /// let mut got = Vec::new();
    /// ev.dispatch_pending(&mut got)?;
    /// assert_eq!(got, [0, 1]);
    /// ev.dispatch_pending(&mut got)?;
    /// assert_eq!(got, [0, 1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dispatch_again(&mut self) {
        self.again = true;
    }

    /// Adds `fd` to the epoll set (`EPOLL_CTL_ADD`) under sub-index `sub`.
    ///
    /// # Errors
    ///
    /// `EEXIST` if the descriptor is already in this loop, `EPERM` for
    /// descriptors epoll cannot watch (regular files, directories), `ENOSPC`
    /// past the user's epoll watch limit, `ENOMEM`.
    pub fn add(
        &mut self,
        fd: impl AsFd,
        sub: u8,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        let data = token::encode(self.slot, self.reg_gen, sub);
        sys::epoll::add(self.epoll, fd.as_fd(), data, interest.flags(mode))
    }

    /// Changes the interest or mode of a descriptor already added
    /// (`EPOLL_CTL_MOD`); also re-arms a [`Mode::Oneshot`] descriptor.
    ///
    /// # Errors
    ///
    /// `ENOENT` if the descriptor is not in the set.
    pub fn modify(
        &mut self,
        fd: impl AsFd,
        sub: u8,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        let data = token::encode(self.slot, self.reg_gen, sub);
        sys::epoll::modify(self.epoll, fd.as_fd(), data, interest.flags(mode))
    }

    /// Removes `fd` from the epoll set (`EPOLL_CTL_DEL`). Call it before the
    /// descriptor closes: epoll watches the open file, not the number, so a
    /// duplicate would keep delivering events.
    ///
    /// # Errors
    ///
    /// None for `ENOENT`/`EBADF` (already removed or closed: the goal is
    /// met); other errors are returned.
    pub fn delete(&mut self, fd: impl AsFd) -> io::Result<()> {
        match sys::epoll::delete(self.epoll, fd.as_fd()) {
            Err(e)
                if e.raw_os_error() == Some(libc::ENOENT)
                    || e.raw_os_error() == Some(libc::EBADF) =>
            {
                Ok(())
            }
            r => r,
        }
    }
}

/// Implements [`Source::register`] and [`Source::unregister`] for a source
/// that watches one descriptor for readability, level-triggered, with sub
/// token 0: `single_readable_fd!(field.path)` names the descriptor as a
/// path from `self` (anything `AsFd`).
macro_rules! single_readable_fd {
    ($($fd:tt)+) => {
        fn register(&mut self, r: &mut $crate::Registrar<'_>) -> ::std::io::Result<()> {
            r.add(&self.$($fd)+, 0, $crate::Interest::READABLE, $crate::Mode::Level)
        }

        fn unregister(&mut self, r: &mut $crate::Registrar<'_>) -> ::std::io::Result<()> {
            r.delete(&self.$($fd)+)
        }
    };
}

pub(crate) use single_readable_fd;

/// Something the event loop can watch: one or more descriptors, and the
/// logic that turns their raw readiness into typed events.
///
/// The trait is object-safe: `Box<dyn Source<Event = E, Metadata = M>>` is
/// itself a `Source`, and the loop stores every source behind a `Box`.
///
/// * `Event` is what the callback receives for each occurrence;
/// * `Metadata` is the part of the source the callback may use or adjust
///   while handling it (for [`Io`](crate::Io), the descriptor and its
///   interest; `()` where there is nothing).
///
/// # Examples
///
/// A source that watches a [`Notifier`](crate::Notifier) and counts wake-ups:
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use fdloop::{Action, EventLoop, Interest, Mode, Notifier, Readiness, Registrar, Source};
///
/// struct Wakes(std::sync::Arc<Notifier>);
///
/// impl Source for Wakes {
///     type Event = ();
///     type Metadata = ();
///     fn register(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
///         r.add(&*self.0, 0, Interest::READABLE, Mode::Level)
///     }
///     fn unregister(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
///         r.delete(&*self.0)
///     }
///     fn process(
///         &mut self,
///         _ready: Readiness,
///         _sub: u8,
///         _r: &mut Registrar<'_>,
///         callback: &mut dyn FnMut((), &mut ()) -> Action,
///     ) -> io::Result<Action> {
///         self.0.drain()?;
///         Ok(callback((), &mut ()))
///     }
/// }
///
/// let n = std::sync::Arc::new(Notifier::new()?);
/// let mut ev = EventLoop::new()?;
/// ev.insert(Wakes(n.clone()), |(), _, count: &mut u32| {
///     *count += 1;
///     Action::Continue
/// })?;
/// n.notify()?;
/// let mut count = 0;
/// ev.run_once(&mut count, Some(Duration::from_secs(1)))?;
/// assert_eq!(count, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Source {
    /// What the callback receives.
    type Event;
    /// What the callback may touch besides the event.
    type Metadata: ?Sized;

    /// Adds the source's descriptors to the loop (on insert and on enable).
    ///
    /// # Errors
    ///
    /// Whatever [`Registrar::add`] reports; the insert then fails.
    fn register(&mut self, registrar: &mut Registrar<'_>) -> io::Result<()>;

    /// Removes the source's descriptors from the loop (on remove and on
    /// disable). Must delete every descriptor `register` added.
    ///
    /// # Errors
    ///
    /// Whatever [`Registrar::delete`] reports.
    fn unregister(&mut self, registrar: &mut Registrar<'_>) -> io::Result<()>;

    /// Handles readiness `ready` of the descriptor added under `sub`: reads
    /// what is there, calls `callback` once per event, and returns the
    /// action to take (normally what the callback returned last).
    ///
    /// # Errors
    ///
    /// An error is reported by the loop as [`Error::Source`](crate::Error::Source);
    /// the source stays in the loop.
    fn process(
        &mut self,
        ready: Readiness,
        sub: u8,
        registrar: &mut Registrar<'_>,
        callback: &mut dyn FnMut(Self::Event, &mut Self::Metadata) -> Action,
    ) -> io::Result<Action>;

    /// Called when a callback run by [`process`](Source::process) panicked,
    /// before the panic goes on out of the loop: says what becomes of the
    /// source. The default, [`AfterPanic::Stay`], keeps it as it is (right
    /// for a level-triggered descriptor that is still ready if events
    /// remain). A source that had already taken events out of its
    /// descriptor returns [`AfterPanic::Redeliver`] to have them delivered
    /// by the next `run_once` (`process` is then called with an empty
    /// [`Readiness`] and the same `sub`); one that would have ended after
    /// this event (a one-shot timer) returns [`AfterPanic::Remove`].
    ///
    /// It runs during unwinding: it must not panic (that aborts the
    /// process).
    fn after_panic(&mut self, registrar: &mut Registrar<'_>) -> AfterPanic {
        let _ = registrar;
        AfterPanic::Stay
    }
}

/// What the loop does with a source whose callback panicked; see
/// [`Source::after_panic`].
///
/// # Examples
///
/// ```
/// use fdloop::AfterPanic;
/// assert_eq!(AfterPanic::default(), AfterPanic::Stay);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AfterPanic {
    /// The source stays as it is.
    #[default]
    Stay,
    /// The source stays, and the next `run_once` dispatches it again
    /// whether or not its descriptors are ready, so it can deliver events
    /// it had already read.
    Redeliver,
    /// The source is removed (as if its callback had returned
    /// [`Action::Remove`]).
    Remove,
}

impl<T: Source + ?Sized> Source for Box<T> {
    type Event = T::Event;
    type Metadata = T::Metadata;

    fn register(&mut self, registrar: &mut Registrar<'_>) -> io::Result<()> {
        (**self).register(registrar)
    }

    fn unregister(&mut self, registrar: &mut Registrar<'_>) -> io::Result<()> {
        (**self).unregister(registrar)
    }

    fn process(
        &mut self,
        ready: Readiness,
        sub: u8,
        registrar: &mut Registrar<'_>,
        callback: &mut dyn FnMut(Self::Event, &mut Self::Metadata) -> Action,
    ) -> io::Result<Action> {
        (**self).process(ready, sub, registrar, callback)
    }

    fn after_panic(&mut self, registrar: &mut Registrar<'_>) -> AfterPanic {
        (**self).after_panic(registrar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_flags() {
        let f = Interest::READABLE.flags(Mode::Edge);
        assert!(f.contains(EventFlags::IN | EventFlags::ET | EventFlags::RDHUP));
        assert!(!f.contains(EventFlags::OUT));
        let f = Interest::WRITABLE.flags(Mode::Oneshot);
        assert!(f.contains(EventFlags::OUT | EventFlags::ONESHOT));
        assert_eq!(format!("{:?}", Interest::BOTH), "READABLE | WRITABLE");
    }
}
