//! The event loop: one epoll set dispatching every source.
//!
//! # Structure
//!
//! Sources live in a slab of slots. Each slot has two generation counters:
//! the *id generation* (bumped when the slot is freed, so a stale
//! [`SourceId`] is refused) and the *registration generation* (bumped every
//! time the slot's descriptors are registered, and carried in each epoll
//! event's data word, so an event queued for an earlier registration is
//! dropped instead of reaching a new owner).
//!
//! While a descriptor source's callback runs, its boxed dispatcher (source
//! and callback) is taken out of its entry, which stays in the slot marked
//! busy (`Kind::Out`): only the box's two words move, and no `RefCell`
//! borrow is held, so the callback may insert, remove, enable or disable
//! anything through a [`LoopHandle`], itself included. Operations on a busy
//! entry are recorded in it (`Pending`) and applied when the callback
//! returns, before its returned [`Action`]. (Idle callbacks and the cold
//! paths — insert, remove, enable — take the whole entry out instead and
//! mark the slot `Busy`; both kinds of busy slot defer operations the same
//! way.) A guard puts the dispatcher back if the callback panics; the rest
//! of that epoll batch is kept and dispatched by the next `run_once`, so no
//! event is lost.
//!
//! The loop itself is split in two: `Inner`, shared (`Rc`) with every
//! [`LoopHandle`], and `Core`, the loop thread's own (event buffer, cursor,
//! waiter, counters), so an iteration borrows both without touching the
//! `Rc`. An iteration with a zero timeout and nothing deferred, scheduled
//! or left over from an interrupted batch takes a short path (poll, then
//! dispatch) that does what the general one would. Statistics stay on:
//! integer counters, and two `CLOCK_MONOTONIC_COARSE` reads (vDSO, no
//! system call) per non-empty batch, one when the blocking wait's own
//! reading can serve as the batch's start.

mod io;
mod ping;
mod source;
mod timers;
mod waiter;
mod wake;

pub use io::{Io, IoCtl};
pub use ping::{Ping, PingHandle};
pub(crate) use source::single_readable_fd;
pub use source::{Action, Interest, Mode, Readiness, Registrar, Source, SourceId};
pub use timers::FORCE_NO_TIMERFD_ENV;
pub use waiter::{TimeoutPrecision, FORCE_TIMEOUT_ENV};
pub use wake::Remote;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io as stdio;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::epoll::{Event, EventFlags};

use crate::error::{Error, Result};
use crate::notify::Notifier;
use crate::sys;
use crate::sys::timerfd::Clock;
use source::token;
use timers::Timers;
use waiter::Waiter;
use wake::WakeState;

/// The type-erased form in which the loop stores a source and its callback.
trait Dispatch<S> {
    fn register(&mut self, r: &mut Registrar<'_>) -> stdio::Result<()>;
    fn unregister(&mut self, r: &mut Registrar<'_>) -> stdio::Result<()>;
    fn dispatch(
        &mut self,
        ready: Readiness,
        sub: u8,
        r: &mut Registrar<'_>,
        state: &mut S,
    ) -> stdio::Result<Action>;
}

struct Bound<Src, F> {
    source: Src,
    callback: F,
}

impl<S, Src, F> Dispatch<S> for Bound<Src, F>
where
    Src: Source,
    F: FnMut(Src::Event, &mut Src::Metadata, &mut S) -> Action,
{
    fn register(&mut self, r: &mut Registrar<'_>) -> stdio::Result<()> {
        self.source.register(r)
    }

    fn unregister(&mut self, r: &mut Registrar<'_>) -> stdio::Result<()> {
        self.source.unregister(r)
    }

    fn dispatch(
        &mut self,
        ready: Readiness,
        sub: u8,
        r: &mut Registrar<'_>,
        state: &mut S,
    ) -> stdio::Result<Action> {
        let cb = &mut self.callback;
        self.source
            .process(ready, sub, r, &mut |ev, meta| cb(ev, meta, state))
    }
}

enum Kind<S> {
    Fd(Box<dyn Dispatch<S>>),
    Idle(Box<dyn FnMut(&mut S) -> Action>),
    Defer(Box<dyn FnOnce(&mut S)>),
    /// A descriptor source's dispatcher, taken out of its entry while its
    /// callback runs (see `Inner::take_fd`): the slot is busy.
    Out,
}

struct Entry<S> {
    kind: Kind<S>,
    enabled: bool,
    /// Operations requested while the dispatcher was out (`Kind::Out`);
    /// always empty otherwise.
    pending: Pending,
}

impl<S> Entry<S> {
    fn new(kind: Kind<S>) -> Entry<S> {
        Entry {
            kind,
            enabled: true,
            pending: Pending::default(),
        }
    }

    /// Whether the dispatcher is out, running: operations on the entry are
    /// then recorded in `pending` and applied when it returns.
    fn is_busy(&self) -> bool {
        matches!(self.kind, Kind::Out)
    }
}

/// Operations requested on a slot while its source was out (busy).
#[derive(Default, Clone, Copy)]
struct Pending {
    remove: bool,
    enable: Option<bool>,
}

impl Pending {
    #[inline]
    fn is_empty(self) -> bool {
        !self.remove && self.enable.is_none()
    }
}

enum SlotState<S> {
    Vacant,
    Ready(Entry<S>),
    Busy(Pending),
}

struct Slot<S> {
    id_gen: u32,
    reg_gen: u32,
    state: SlotState<S>,
}

struct Slab<S> {
    slots: Vec<Slot<S>>,
    free: Vec<u32>,
    live: usize,
}

impl<S> Slab<S> {
    fn get(&mut self, id: SourceId) -> Option<&mut Slot<S>> {
        self.slots
            .get_mut(id.slot as usize)
            .filter(|s| s.id_gen == id.gen && !matches!(s.state, SlotState::Vacant))
    }

    /// Takes a free slot and marks it busy (being filled).
    fn reserve(&mut self) -> Result<SourceId> {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).map_err(|_| Error::TooManySources)?;
                if i >= token::MAX_SLOTS {
                    return Err(Error::TooManySources);
                }
                self.slots.push(Slot {
                    id_gen: 0,
                    reg_gen: 0,
                    state: SlotState::Vacant,
                });
                i
            }
        };
        let s = &mut self.slots[slot as usize];
        s.state = SlotState::Busy(Pending::default());
        self.live += 1;
        Ok(SourceId {
            slot,
            gen: s.id_gen,
        })
    }

    /// Frees a slot; its id becomes invalid.
    fn release(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        s.state = SlotState::Vacant;
        s.id_gen = s.id_gen.wrapping_add(1);
        self.live -= 1;
        self.free.push(slot);
    }

    /// Bumps the registration generation and returns it.
    fn next_reg(&mut self, slot: u32) -> u32 {
        let s = &mut self.slots[slot as usize];
        s.reg_gen = s.reg_gen.wrapping_add(1);
        s.reg_gen
    }
}

/// One in this many zero-timeout batches is timed for
/// [`Stats::in_callbacks`].
const SAMPLE_EVERY: u64 = 8;

/// Counters a loop keeps about itself; see [`EventLoop::stats`].
///
/// The two durations are sums of kernel-tick-resolution measurements
/// (`CLOCK_MONOTONIC_COARSE`): exact in the long run, coarse for a few
/// iterations.
///
/// # Examples
///
/// ```
/// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
/// ev.dispatch_pending(&mut ())?;
/// let s = ev.stats();
/// assert_eq!(s.iterations, 1);
/// assert_eq!(s.events, 0);
/// # Ok::<(), fdloop::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// `run_once` calls (including those made by `run` and
    /// `dispatch_pending`).
    pub iterations: u64,
    /// Callbacks run for events: descriptor readiness and deferred calls.
    pub events: u64,
    /// Waits that could block (non-zero timeout) and returned because
    /// something happened rather than because the timeout passed.
    pub wakeups: u64,
    /// Time spent inside `epoll_wait` with a timeout that could block.
    pub blocked: Duration,
    /// Time spent running callbacks for events (measured per batch, not
    /// per callback). Batches of zero-timeout iterations
    /// ([`dispatch_pending`](EventLoop::dispatch_pending)) are timed one in
    /// eight, the measurement counted eight times — an unbiased estimate
    /// that spares most of those iterations two clock reads.
    pub in_callbacks: Duration,
}

// Both durations are summed from `CLOCK_MONOTONIC_COARSE` readings: a read
// costs ~6 ns instead of ~35 ns, which keeps the statistics cheap enough to
// stay on even for a loop that dispatches one event per iteration. Each
// interval is measured in whole kernel ticks (1–10 ms), so one short interval
// reads as 0 or one tick, but since wake-ups are not aligned with ticks the
// sums are unbiased: over many iterations they converge on the true totals
// (the kernel accounts process CPU time by ticks the same way).
//
// The loop keeps them as plain integers (nanoseconds for the durations) and
// builds a `Stats` only when asked, so the per-iteration cost is a few adds.
#[derive(Clone, Copy, Default)]
struct Counters {
    iterations: u64,
    events: u64,
    wakeups: u64,
    blocked_ns: u64,
    callbacks_ns: u64,
}

impl Counters {
    #[inline]
    fn add_blocked(&mut self, from: u64, to: u64) {
        self.blocked_ns = self.blocked_ns.saturating_add(to.saturating_sub(from));
    }

    #[inline]
    fn add_callbacks(&mut self, from: u64, to: u64, weight: u64) {
        let d = to.saturating_sub(from).saturating_mul(weight);
        self.callbacks_ns = self.callbacks_ns.saturating_add(d);
    }

    fn to_stats(self) -> Stats {
        Stats {
            iterations: self.iterations,
            events: self.events,
            wakeups: self.wakeups,
            blocked: Duration::from_nanos(self.blocked_ns),
            in_callbacks: Duration::from_nanos(self.callbacks_ns),
        }
    }
}

struct Inner<S> {
    epoll: OwnedFd,
    slab: RefCell<Slab<S>>,
    idles: RefCell<Vec<SourceId>>,
    defers: RefCell<Vec<SourceId>>,
    stop: Cell<bool>,
    wake: Arc<WakeState>,
    timers: RefCell<Timers>,
    /// Whether this thread has marked the loop awake (wake.rs, L1).
    awake_marked: Cell<bool>,
    fork_gen: u64,
}

impl<S> Inner<S> {
    fn check_fork(&self) -> Result<()> {
        if sys::process::fork_generation() != self.fork_gen {
            return Err(Error::Forked);
        }
        Ok(())
    }

    /// Whether an iteration has work besides polling and dispatching:
    /// deferred calls, or timers to arm or (without timerfds) to bound the
    /// wait with.
    #[inline]
    fn has_chores(&self) -> bool {
        !self.defers.borrow().is_empty() || !self.timers.borrow().is_idle()
    }

    #[inline]
    fn registrar(&self, slot: u32, reg_gen: u32) -> Registrar<'_> {
        Registrar {
            epoll: self.epoll.as_fd(),
            slot,
            reg_gen,
            timers: &self.timers,
        }
    }

    fn add(&self, kind: Kind<S>) -> Result<SourceId> {
        self.check_fork()?;
        let id = self.slab.borrow_mut().reserve()?;
        let mut kind = kind;
        if let Kind::Fd(d) = &mut kind {
            let reg_gen = self.slab.borrow_mut().next_reg(id.slot);
            let mut r = self.registrar(id.slot, reg_gen);
            if let Err(e) = d.register(&mut r) {
                // Undo a partial registration (ENOENT for the rest is fine).
                let _ = d.unregister(&mut r);
                self.slab.borrow_mut().release(id.slot);
                drop(kind);
                return Err(Error::io("registering a new source with epoll", e));
            }
        }
        let is_idle = matches!(kind, Kind::Idle(_));
        let is_defer = matches!(kind, Kind::Defer(_));
        let pending = {
            let mut slab = self.slab.borrow_mut();
            let s = &mut slab.slots[id.slot as usize];
            let p = match s.state {
                SlotState::Busy(p) => p,
                _ => Pending::default(),
            };
            s.state = SlotState::Ready(Entry::new(kind));
            p
        };
        if is_idle {
            self.idles.borrow_mut().push(id);
        }
        if is_defer {
            self.defers.borrow_mut().push(id);
        }
        // A registering source cannot know its own id, but be exact anyway.
        if pending.remove {
            self.remove(id)?;
        } else if pending.enable == Some(false) {
            self.set_enabled(id, false)?;
        }
        Ok(id)
    }

    fn remove(&self, id: SourceId) -> Result<()> {
        self.check_fork()?;
        let entry = {
            let mut slab = self.slab.borrow_mut();
            let s = slab.get(id).ok_or(Error::NoSuchSource(id))?;
            let reg_gen = s.reg_gen;
            if let SlotState::Ready(e) = &mut s.state {
                if e.is_busy() {
                    e.pending.remove = true;
                    return Ok(());
                }
            }
            match std::mem::replace(&mut s.state, SlotState::Vacant) {
                SlotState::Busy(mut p) => {
                    p.remove = true;
                    s.state = SlotState::Busy(p);
                    return Ok(());
                }
                SlotState::Ready(entry) => {
                    s.state = SlotState::Busy(Pending::default());
                    (entry, reg_gen)
                }
                SlotState::Vacant => return Err(Error::NoSuchSource(id)),
            }
        };
        let (mut entry, reg_gen) = entry;
        // Leave epoll before the descriptors close (when `entry` drops).
        let res = match (&mut entry.kind, entry.enabled) {
            (Kind::Fd(d), true) => d.unregister(&mut self.registrar(id.slot, reg_gen)),
            _ => Ok(()),
        };
        self.slab.borrow_mut().release(id.slot);
        drop(entry);
        res.map_err(|e| Error::io("removing a source from epoll", e))
    }

    fn set_enabled(&self, id: SourceId, on: bool) -> Result<()> {
        self.check_fork()?;
        let (mut entry, reg_gen) = {
            let mut slab = self.slab.borrow_mut();
            let s = slab.get(id).ok_or(Error::NoSuchSource(id))?;
            match &mut s.state {
                SlotState::Busy(p) => {
                    p.enable = Some(on);
                    return Ok(());
                }
                SlotState::Ready(e) if e.is_busy() => {
                    e.pending.enable = Some(on);
                    return Ok(());
                }
                SlotState::Ready(e) if e.enabled == on => return Ok(()),
                SlotState::Ready(e) if !matches!(e.kind, Kind::Fd(_)) => {
                    e.enabled = on;
                    return Ok(());
                }
                _ => {}
            }
            let SlotState::Ready(entry) =
                std::mem::replace(&mut s.state, SlotState::Busy(Pending::default()))
            else {
                return Err(Error::NoSuchSource(id));
            };
            let reg_gen = if on {
                slab.next_reg(id.slot)
            } else {
                slab.slots[id.slot as usize].reg_gen
            };
            (entry, reg_gen)
        };
        let mut r = self.registrar(id.slot, reg_gen);
        let res = match &mut entry.kind {
            Kind::Fd(d) if on => d.register(&mut r),
            Kind::Fd(d) => d.unregister(&mut r),
            _ => Ok(()),
        };
        if res.is_ok() {
            entry.enabled = on;
        }
        self.put_back(id, entry)?;
        res.map_err(|e| {
            Error::io(
                if on {
                    "re-registering an enabled source with epoll"
                } else {
                    "removing a disabled source from epoll"
                },
                e,
            )
        })
    }

    /// Returns a taken-out entry to its busy slot and applies what was
    /// requested meanwhile.
    fn put_back(&self, id: SourceId, entry: Entry<S>) -> Result<()> {
        let pending = {
            let mut slab = self.slab.borrow_mut();
            let s = &mut slab.slots[id.slot as usize];
            let p = match s.state {
                SlotState::Busy(p) => p,
                _ => Pending::default(),
            };
            s.state = SlotState::Ready(entry);
            p
        };
        self.apply_pending(id, pending)
    }

    /// Applies a callback's returned action to a taken-out entry.
    fn finish(&self, id: SourceId, entry: Entry<S>, action: Action) -> Result<()> {
        self.put_back(id, entry)?;
        self.apply_action(id, action)
    }

    /// Takes the dispatcher of an enabled descriptor source out of its
    /// slot for running, if the slot is still the registration `reg_gen`
    /// names. The entry stays in place, marked busy (`Kind::Out`), so
    /// nothing but the dispatcher's two words moves.
    #[inline(always)]
    fn take_fd(&self, slot: u32, reg_gen: u32) -> Option<(SourceId, Box<dyn Dispatch<S>>)> {
        let mut slab = self.slab.borrow_mut();
        let s = slab.slots.get_mut(slot as usize)?;
        if reg_gen != s.reg_gen {
            return None;
        }
        let id = SourceId {
            slot,
            gen: s.id_gen,
        };
        let SlotState::Ready(e) = &mut s.state else {
            return None;
        };
        if !e.enabled || !matches!(e.kind, Kind::Fd(_)) {
            return None;
        }
        match std::mem::replace(&mut e.kind, Kind::Out) {
            Kind::Fd(d) => Some((id, d)),
            other => {
                e.kind = other;
                None
            }
        }
    }

    /// Returns a dispatcher taken by [`take_fd`](Inner::take_fd) to its
    /// entry, and hands back what was requested meanwhile.
    #[inline(always)]
    fn restore_fd(&self, slot: u32, d: Box<dyn Dispatch<S>>) -> Pending {
        let mut slab = self.slab.borrow_mut();
        // The entry cannot have left: removal and disabling wait while it
        // is busy, and nothing else frees or refills a slot.
        match slab.slots.get_mut(slot as usize).map(|s| &mut s.state) {
            Some(SlotState::Ready(e)) => {
                let out = std::mem::replace(&mut e.kind, Kind::Fd(d));
                // `out` is `Kind::Out`, which owns nothing; saying so spares
                // the hot path `Kind`'s drop glue.
                debug_assert!(matches!(out, Kind::Out));
                if let Kind::Out = out {
                    std::mem::forget(out);
                } else {
                    drop(out);
                }
                std::mem::take(&mut e.pending)
            }
            _ => Pending::default(),
        }
    }

    /// Applies what was requested while a source was busy.
    #[cold]
    fn apply_pending(&self, id: SourceId, pending: Pending) -> Result<()> {
        if pending.remove {
            return self.remove(id);
        }
        if let Some(on) = pending.enable {
            return self.set_enabled(id, on);
        }
        Ok(())
    }

    /// Applies a callback's returned action (after its pending operations).
    fn apply_action(&self, id: SourceId, action: Action) -> Result<()> {
        match action {
            Action::Continue => Ok(()),
            Action::Disable => match self.set_enabled(id, false) {
                Err(Error::NoSuchSource(_)) => Ok(()),
                r => r,
            },
            Action::Remove => match self.remove(id) {
                Err(Error::NoSuchSource(_)) => Ok(()),
                r => r,
            },
        }
    }
}

/// Ends an awake period. While the loop is marked awake (`awake_marked`),
/// wakes cost no syscall; on drop — between `run_once` calls nobody watches
/// the fd set from this thread — it marks the loop asleep so wakers write
/// the notifier, and turns a wake that arrived while it was awake (state
/// `NOTIFIED`) into a write as well: the epoll fd must be readable whenever
/// work is waiting, or an outer loop polling it (or the next `run_once`)
/// would sleep through it.
///
/// `run_once` is marked awake only while it has something to gain:
/// * an iteration that may block and has callbacks to run before its wait
///   (deferred, idle, timers) is marked awake when it starts them
///   (`iterate_full`), so wakes meanwhile cost no syscall; one with nothing
///   to run before the wait is not, because the wait's L3 would follow L1
///   at once;
/// * after a wait that could block it stays asleep (see `after_wait`);
/// * any iteration is marked awake when it drains a wake-up (see
///   `dispatch_batch`), so that a wake landing after the drain is turned
///   into a write here rather than left as `NOTIFIED` with the fd empty.
///
/// `run` is marked awake for its whole length, and again after each wait.
struct AwakeGuard<'a> {
    wake: &'a WakeState,
    marked: &'a Cell<bool>,
}

impl<'a> AwakeGuard<'a> {
    fn new(wake: &'a WakeState, marked: &'a Cell<bool>, now: bool) -> Self {
        if now {
            mark_awake(wake, marked);
        }
        AwakeGuard { wake, marked }
    }
}

/// L1 of the wake protocol, once per awake period.
#[inline]
fn mark_awake(wake: &WakeState, marked: &Cell<bool>) {
    if !marked.replace(true) {
        wake.awake();
    }
}

/// After a wait that could block, whose L3 marked the loop asleep: `run`
/// (`stay_awake`) marks it awake again (L1, unconditionally), so wakes
/// during its callbacks and up to its next wait cost no syscall — that
/// wait's L3 sees them. `run_once` leaves it asleep: it returns after this
/// batch, and its guard would turn a wake that came meanwhile into a write
/// anyway. The waker making that write itself costs the same one write per
/// sleep, and spares the loop two swaps (this L1 and the guard's L3).
#[inline]
fn after_wait(wake: &WakeState, marked: &Cell<bool>, stay_awake: bool) {
    if stay_awake {
        wake.awake();
        marked.set(true);
    } else {
        marked.set(false);
    }
}

impl Drop for AwakeGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.marked.replace(false) && !self.wake.prepare_sleep() {
            // The write can only fail if the descriptor is broken; the next
            // iteration's epoll_wait will report that.
            let _ = self.wake.notifier.notify();
        }
    }
}

/// What [`Inner::take_by_id`] found.
enum Taken<S> {
    Entry(Entry<S>),
    Disabled,
    Gone,
}

impl<S> Inner<S> {
    /// Takes the enabled entry named by `id` out for running (the slot turns
    /// busy).
    fn take_by_id(&self, id: SourceId) -> Taken<S> {
        let mut slab = self.slab.borrow_mut();
        let Some(s) = slab.get(id) else {
            return Taken::Gone;
        };
        match &s.state {
            SlotState::Ready(Entry {
                kind: Kind::Out, ..
            }) => return Taken::Gone,
            SlotState::Ready(e) if e.enabled => {}
            SlotState::Ready(_) => return Taken::Disabled,
            _ => return Taken::Gone,
        }
        match std::mem::replace(&mut s.state, SlotState::Busy(Pending::default())) {
            SlotState::Ready(e) => Taken::Entry(e),
            _ => Taken::Gone,
        }
    }
}

/// Puts a running source back if its callback unwinds.
struct RunGuard<'a, S> {
    inner: &'a Inner<S>,
    id: SourceId,
    entry: Option<Entry<S>>,
}

impl<S> Drop for RunGuard<'_, S> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            // Only reached while unwinding: errors cannot be reported.
            let _ = self.inner.put_back(self.id, entry);
        }
    }
}

/// Returns a running descriptor source's dispatcher to its slot if the
/// callback unwinds, applying what was requested meanwhile.
struct FdGuard<'a, S> {
    inner: &'a Inner<S>,
    id: SourceId,
    d: Option<Box<dyn Dispatch<S>>>,
}

impl<S> Drop for FdGuard<'_, S> {
    #[inline]
    fn drop(&mut self) {
        if let Some(d) = self.d.take() {
            self.unwind(d);
        }
    }
}

impl<S> FdGuard<'_, S> {
    #[cold]
    #[inline(never)]
    fn unwind(&self, d: Box<dyn Dispatch<S>>) {
        let pending = self.inner.restore_fd(self.id.slot, d);
        // Only reached while unwinding: errors cannot be reported.
        let _ = self.inner.apply_pending(self.id, pending);
    }
}

/// A cloneable handle to an [`EventLoop`], for use inside callbacks (or
/// anywhere on the loop's thread): insert, remove, enable, disable, stop.
///
/// Not `Send`: it lives on the loop's thread. From other threads use a
/// [`Remote`].
///
/// # Examples
///
/// ```
/// use fdloop::{Action, EventLoop};
///
/// let mut ev: EventLoop<Vec<&str>> = EventLoop::new()?;
/// let handle = ev.handle();
/// ev.handle().defer(move |log| {
///     log.push("first");
///     // Schedule more work from inside a callback.
///     handle.defer(|log| log.push("second"));
/// });
/// let mut log = Vec::new();
/// ev.dispatch_pending(&mut log)?;
/// ev.dispatch_pending(&mut log)?;
/// assert_eq!(log, ["first", "second"]);
/// # Ok::<(), fdloop::Error>(())
/// ```
pub struct LoopHandle<S> {
    inner: Rc<Inner<S>>,
}

impl<S> Clone for LoopHandle<S> {
    fn clone(&self) -> Self {
        LoopHandle {
            inner: self.inner.clone(),
        }
    }
}

impl<S> fmt::Debug for LoopHandle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("epoll", &self.inner.epoll.as_raw_fd())
            .finish()
    }
}

impl<S: 'static> LoopHandle<S> {
    /// Inserts `source`; `callback` runs for each of its events with the
    /// event, the source's metadata and the loop's state.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the source's descriptors cannot join the epoll set
    /// (`EPERM` for regular files, `EEXIST` if already in this loop,
    /// `ENOSPC`/`ENOMEM`); the source is dropped. [`Error::Forked`] in a
    /// forked child. [`Error::TooManySources`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Action, EventLoop, Ping};
    /// let mut ev: EventLoop<()> = EventLoop::new()?;
    /// let (_h, ping) = Ping::new()?;
    /// let id = ev.handle().insert(ping, |(), _, _| Action::Continue)?;
    /// ev.remove(id)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert<Src, F>(&self, source: Src, callback: F) -> Result<SourceId>
    where
        Src: Source + 'static,
        F: FnMut(Src::Event, &mut Src::Metadata, &mut S) -> Action + 'static,
    {
        self.inner
            .add(Kind::Fd(Box::new(Bound { source, callback })))
    }

    /// Removes a source: its descriptors leave the epoll set, then it is
    /// dropped (closing what it owns). Safe from inside any callback,
    /// including the source's own (it is removed when the callback returns).
    /// An event already fetched for it is not delivered.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`] if `id` is not live; [`Error::Io`] if
    /// `EPOLL_CTL_DEL` failed with something other than `ENOENT`/`EBADF`
    /// (the source is removed and dropped all the same).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let id = ev.handle().defer(|_| unreachable!("removed before it ran"));
    /// ev.handle().remove(id)?;
    /// ev.dispatch_pending(&mut ())?;
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn remove(&self, id: SourceId) -> Result<()> {
        self.inner.remove(id)
    }

    /// Re-enables a disabled source (its descriptors rejoin the epoll set).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`]; [`Error::Io`] if registration fails (the
    /// source stays disabled).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<u32> = fdloop::EventLoop::new()?;
    /// let id = ev.handle().defer(|n| *n += 1);
    /// ev.disable(id)?;
    /// let mut n = 0;
    /// ev.dispatch_pending(&mut n)?;
    /// assert_eq!(n, 0);
    /// ev.enable(id)?;
    /// ev.dispatch_pending(&mut n)?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn enable(&self, id: SourceId) -> Result<()> {
        self.inner.set_enabled(id, true)
    }

    /// Disables a source without removing it: its descriptors leave the
    /// epoll set, and an event already fetched for it is not delivered.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSource`]; [`Error::Io`] if `EPOLL_CTL_DEL` fails.
    ///
    /// # Examples
    ///
    /// See [`enable`](LoopHandle::enable).
    pub fn disable(&self, id: SourceId) -> Result<()> {
        self.inner.set_enabled(id, false)
    }

    /// Runs `callback` each time the loop is about to block (after all
    /// pending work, before `epoll_wait` with a non-zero timeout), until it
    /// returns [`Action::Remove`]. Like Redis's `beforeSleep`: flush
    /// buffers, publish statistics.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::Action;
    /// let mut ev: fdloop::EventLoop<u32> = fdloop::EventLoop::new()?;
    /// ev.handle().insert_idle(|n| { *n += 1; Action::Continue });
    /// let mut n = 0;
    /// ev.run_once(&mut n, Some(Duration::from_micros(10)))?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn insert_idle(&self, callback: impl FnMut(&mut S) -> Action + 'static) -> SourceId {
        self.inner
            .add(Kind::Idle(Box::new(callback)))
            .unwrap_or_else(|_| dead_id())
    }

    /// Runs `callback` once, at the start of the next iteration (the loop
    /// does not block while deferred calls wait).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<u32> = fdloop::EventLoop::new()?;
    /// ev.handle().defer(|n| *n = 7);
    /// let mut n = 0;
    /// assert_eq!(ev.dispatch_pending(&mut n)?, 1);
    /// assert_eq!(n, 7);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn defer(&self, callback: impl FnOnce(&mut S) + 'static) -> SourceId {
        self.inner
            .add(Kind::Defer(Box::new(callback)))
            .unwrap_or_else(|_| dead_id())
    }

    /// Asks [`EventLoop::run`] to return after the current iteration.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let h = ev.handle();
    /// ev.handle().defer(move |_| h.stop());
    /// ev.run(&mut ())?; // returns after the deferred call
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn stop(&self) {
        self.inner.stop.set(true);
    }

    /// A [`Remote`] to wake or stop this loop from other threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let r = ev.handle().remote();
    /// std::thread::spawn(move || r.wake()).join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remote(&self) -> Remote {
        Remote {
            shared: self.inner.wake.clone(),
        }
    }
}

/// The id returned for an idle or deferred call that could not be added
/// (only in a forked child, or past 2^24 sources): it names nothing, so
/// removing it reports [`Error::NoSuchSource`].
fn dead_id() -> SourceId {
    SourceId {
        slot: u32::MAX,
        gen: u32::MAX,
    }
}

/// One thread's event loop: an epoll set, the sources in it, and the
/// callbacks that handle their events with a `&mut S` of your state.
///
/// * [`insert`](EventLoop::insert) a [`Source`] ([`Io`], [`Ping`], or your
///   own) with a callback; [`remove`](EventLoop::remove),
///   [`enable`](EventLoop::enable), [`disable`](EventLoop::disable) it by
///   [`SourceId`] — from inside callbacks too, through a [`LoopHandle`].
/// * [`run`](EventLoop::run) until stopped,
///   [`run_once`](EventLoop::run_once) one iteration,
///   [`dispatch_pending`](EventLoop::dispatch_pending) without blocking.
/// * [`remote`](EventLoop::remote) wakes or stops it from any thread; wakes
///   cost a system call only when the loop may be asleep.
///
/// Timeouts are honoured to the nanosecond, never early (see
/// [`TimeoutPrecision`]); `EINTR` from `epoll_wait` is retried with the time
/// left. A panic in a callback propagates out of `run`/`run_once`; the loop
/// stays usable and the rest of that batch of events is dispatched by the
/// next call. In a `fork` child, every operation fails with
/// [`Error::Forked`]: the epoll set is shared with the parent.
///
/// The loop's own descriptor (`AsFd`) is the epoll fd: it polls readable
/// when events are ready, so a loop can be nested in another loop or
/// runtime (see `fdloop-bench/examples/nested_in_tokio.rs`, which drives a loop from tokio).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::{Action, EventLoop, Ping};
///
/// struct State { pings: u32 }
///
/// let mut ev = EventLoop::new()?;
/// let (handle, ping) = Ping::new()?;
/// ev.insert(ping, |(), _, st: &mut State| {
///     st.pings += 1;
///     Action::Continue
/// })?;
/// let remote = ev.remote();
/// std::thread::spawn(move || {
///     handle.ping().unwrap();
///     std::thread::sleep(Duration::from_millis(20));
///     remote.stop().unwrap();
/// });
/// let mut st = State { pings: 0 };
/// ev.run(&mut st)?;
/// assert_eq!(st.pings, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventLoop<S: 'static> {
    handle: LoopHandle<S>,
    core: Core,
}

/// The loop-thread-only half of an [`EventLoop`]: the event buffer and
/// where dispatch got in it, the waiter, the counters. Kept apart from the
/// shared `Inner` so that an iteration borrows both without cloning the
/// `Rc`.
struct Core {
    events: Vec<Event>,
    cursor: usize,
    waiter: Waiter,
    stats: Counters,
    /// Timers taken due and not yet dispatched (slot, generation, sub), and
    /// how far dispatch got; see `dispatch_timer_targets`.
    timer_targets: Vec<(u32, u32, u8)>,
    timer_cursor: usize,
    /// Scratch for the timer store's slot lists.
    timer_slots: Vec<u32>,
    /// The clock reading that ended the last batch, while nothing has run
    /// since: inside one [`run`](EventLoop::run) it also starts the next
    /// blocking wait, saving a read. Cleared by every `run_once` (the
    /// caller's own work between calls is not loop time) and whenever
    /// deferred calls, idle callbacks or timers run before the wait.
    last_end: Option<u64>,
    /// Zero-timeout batches seen; one in [`SAMPLE_EVERY`] is timed.
    untimed: u64,
}

const INITIAL_EVENTS: usize = 256;
const MAX_EVENTS: usize = 16 * 1024;

impl<S: 'static> EventLoop<S> {
    /// Creates a loop: an epoll set (`EPOLL_CLOEXEC`) and the notifier that
    /// [`Remote`]s write to.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `EMFILE`/`ENFILE` when out of descriptors, or
    /// `ENOMEM`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn new() -> Result<EventLoop<S>> {
        let fork_gen = sys::process::fork_generation();
        let epoll = sys::epoll::create().map_err(|e| Error::io("epoll_create1", e))?;
        let notifier =
            Notifier::new().map_err(|e| Error::io("creating the loop's wake-up notifier", e))?;
        sys::epoll::add(
            epoll.as_fd(),
            notifier.as_fd(),
            token::REMOTE,
            EventFlags::IN,
        )
        .map_err(|e| Error::io("adding the wake-up notifier to epoll", e))?;
        let inner = Inner {
            epoll,
            slab: RefCell::new(Slab {
                slots: Vec::new(),
                free: Vec::new(),
                live: 0,
            }),
            idles: RefCell::new(Vec::new()),
            defers: RefCell::new(Vec::new()),
            stop: Cell::new(false),
            wake: Arc::new(WakeState::new(notifier)),
            timers: RefCell::new(Timers::new()),
            awake_marked: Cell::new(false),
            fork_gen,
        };
        Ok(EventLoop {
            handle: LoopHandle {
                inner: Rc::new(inner),
            },
            core: Core {
                events: Vec::with_capacity(INITIAL_EVENTS),
                cursor: 0,
                waiter: Waiter::new(),
                stats: Counters::default(),
                timer_targets: Vec::new(),
                timer_cursor: 0,
                timer_slots: Vec::new(),
                last_end: None,
                untimed: 0,
            },
        })
    }

    /// A [`LoopHandle`] for callbacks (clone it into closures).
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let h = ev.handle();
    /// h.defer(|_| {});
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn handle(&self) -> LoopHandle<S> {
        self.handle.clone()
    }

    /// A [`Remote`] to wake or stop this loop from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let r = ev.remote();
    /// r.wake()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remote(&self) -> Remote {
        self.handle.remote()
    }

    /// See [`LoopHandle::insert`].
    ///
    /// # Errors
    ///
    /// As [`LoopHandle::insert`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Action, EventLoop, Interest, Io, Mode};
    /// let mut ev: EventLoop<()> = EventLoop::new()?;
    /// let (r, _w) = std::io::pipe()?;
    /// let id = ev.insert(Io::new(r, Interest::READABLE, Mode::Level), |_, _, _| Action::Continue)?;
    /// ev.remove(id)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert<Src, F>(&mut self, source: Src, callback: F) -> Result<SourceId>
    where
        Src: Source + 'static,
        F: FnMut(Src::Event, &mut Src::Metadata, &mut S) -> Action + 'static,
    {
        self.handle.insert(source, callback)
    }

    /// See [`LoopHandle::remove`].
    ///
    /// # Errors
    ///
    /// As [`LoopHandle::remove`].
    ///
    /// # Examples
    ///
    /// See [`LoopHandle::remove`].
    pub fn remove(&mut self, id: SourceId) -> Result<()> {
        self.handle.remove(id)
    }

    /// See [`LoopHandle::enable`].
    ///
    /// # Errors
    ///
    /// As [`LoopHandle::enable`].
    ///
    /// # Examples
    ///
    /// See [`LoopHandle::enable`].
    pub fn enable(&mut self, id: SourceId) -> Result<()> {
        self.handle.enable(id)
    }

    /// See [`LoopHandle::disable`].
    ///
    /// # Errors
    ///
    /// As [`LoopHandle::disable`].
    ///
    /// # Examples
    ///
    /// See [`LoopHandle::enable`].
    pub fn disable(&mut self, id: SourceId) -> Result<()> {
        self.handle.disable(id)
    }

    /// How many sources (of every kind, idle and deferred calls included)
    /// the loop holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// ev.handle().defer(|_| {});
    /// assert_eq!(ev.len(), 1);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.handle.inner.slab.borrow().live
    }

    /// Whether the loop holds no sources.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// assert!(ev.is_empty());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The loop's counters. Always on; they cost a few clock reads per
    /// iteration (vDSO, no system call).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// ev.dispatch_pending(&mut ())?;
    /// println!("{:?}", ev.stats());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.core.stats.to_stats()
    }

    /// How this loop honours timeouts: decided on the first wait with a
    /// non-zero timeout ([`TimeoutPrecision::Undecided`] until then).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fdloop::TimeoutPrecision;
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// ev.run_once(&mut (), Some(Duration::from_micros(50)))?;
    /// assert_ne!(ev.timeout_precision(), TimeoutPrecision::Undecided);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn timeout_precision(&self) -> TimeoutPrecision {
        self.core.waiter.precision()
    }

    /// Runs iterations until stopped by [`LoopHandle::stop`] or
    /// [`Remote::stop`].
    ///
    /// # Errors
    ///
    /// The first error of an iteration (see [`run_once`](EventLoop::run_once));
    /// the loop stays usable.
    ///
    /// # Examples
    ///
    /// See [`EventLoop`].
    pub fn run(&mut self, state: &mut S) -> Result<()> {
        let inner = self.handle.inner.clone();
        inner.check_fork()?;
        // Awake for the whole run: wakes between iterations cost no syscall
        // (the next iteration sees them before it would block).
        let _awake = AwakeGuard::new(&inner.wake, &inner.awake_marked, true);
        self.core.last_end = None;
        loop {
            if self.take_stop() {
                return Ok(());
            }
            self.core.stats.iterations += 1;
            self.core.iterate(&inner, state, None, true)?;
        }
    }

    fn take_stop(&self) -> bool {
        let inner = &self.handle.inner;
        // Both flags are cleared, so a later `run` starts afresh.
        let local = inner.stop.replace(false);
        let remote = inner.wake.take_stop();
        local || remote
    }

    /// Dispatches what is ready without blocking. Returns the number of
    /// callbacks run for events.
    ///
    /// # Errors
    ///
    /// As [`run_once`](EventLoop::run_once).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// assert_eq!(ev.dispatch_pending(&mut ())?, 0);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn dispatch_pending(&mut self, state: &mut S) -> Result<usize> {
        self.run_once(state, Some(Duration::ZERO))
    }

    /// One iteration: runs deferred calls; if nothing is pending, runs the
    /// idle callbacks and waits up to `timeout` (`None`: no limit) for
    /// events; then dispatches them. Returns the number of callbacks run for
    /// events (readiness and deferred calls; idle callbacks do not count).
    ///
    /// Returns early, possibly with 0, when a [`Remote`] wakes the loop.
    /// Never returns 0 before `timeout` has passed otherwise. `EINTR` is
    /// retried with the time left.
    ///
    /// # Errors
    ///
    /// * [`Error::Forked`] in a `fork` child;
    /// * [`Error::Io`] if `epoll_wait` fails (not `EINTR`);
    /// * [`Error::Source`] if a source's processing fails: the source stays,
    ///   and the rest of the batch is dispatched by the next call.
    ///
    /// # Panics
    ///
    /// Only if a callback panics; the panic propagates, and the loop stays
    /// usable (the rest of the batch is dispatched by the next call).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let start = Instant::now();
    /// assert_eq!(ev.run_once(&mut (), Some(Duration::from_micros(500)))?, 0);
    /// assert!(start.elapsed() >= Duration::from_micros(500));
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn run_once(&mut self, state: &mut S, timeout: Option<Duration>) -> Result<usize> {
        // `self.handle` keeps `Inner` alive: no callback can drop the loop.
        let inner = &*self.handle.inner;
        inner.check_fork()?;
        self.core.stats.iterations += 1;
        self.core.last_end = None;
        let _awake = AwakeGuard::new(&inner.wake, &inner.awake_marked, false);
        self.core.iterate(inner, state, timeout, false)
    }
}

impl Core {
    /// One iteration. The common case — nothing left over, deferred or
    /// scheduled, and for a wait that could block no idle callback and no
    /// stop request — goes straight to what
    /// [`iterate_full`](Core::iterate_full) ends with:
    /// [`wait_and_dispatch`](Core::wait_and_dispatch).
    #[inline]
    fn iterate<S>(
        &mut self,
        inner: &Inner<S>,
        state: &mut S,
        timeout: Option<Duration>,
        stay_awake: bool,
    ) -> Result<usize> {
        if self.has_leftovers() || inner.has_chores() {
            return self.iterate_full(inner, state, timeout, stay_awake);
        }
        if timeout != Some(Duration::ZERO)
            && (!inner.idles.borrow().is_empty() || self.stop_pending(inner))
        {
            return self.iterate_full(inner, state, timeout, stay_awake);
        }
        self.wait_and_dispatch(inner, state, timeout, stay_awake)
    }

    /// Events or due timers left over from a batch interrupted by a panic
    /// or an error.
    #[inline]
    fn has_leftovers(&self) -> bool {
        self.timer_cursor < self.timer_targets.len() || self.cursor < self.events.len()
    }

    /// The end of every iteration: L3 of the wake protocol (wake.rs) when
    /// about to block, the wait, L1 after it in `run`, and the dispatch.
    #[inline(always)]
    fn wait_and_dispatch<S>(
        &mut self,
        inner: &Inner<S>,
        state: &mut S,
        mut timeout: Option<Duration>,
        stay_awake: bool,
    ) -> Result<usize> {
        let slept = timeout != Some(Duration::ZERO);
        if slept && !inner.wake.prepare_sleep() {
            timeout = Some(Duration::ZERO);
        }
        let woke_at = self.wait(inner, timeout)?;
        if slept {
            after_wait(&inner.wake, &inner.awake_marked, stay_awake);
        }
        let ran = self.dispatch_batch(inner, state, woke_at)?;
        self.run_fallback_timers(inner, state, ran)
    }

    fn iterate_full<S>(
        &mut self,
        inner: &Inner<S>,
        state: &mut S,
        timeout: Option<Duration>,
        stay_awake: bool,
    ) -> Result<usize> {
        if timeout != Some(Duration::ZERO) {
            // Deferred calls, idle callbacks and timers may run before the
            // wait: wakes meanwhile cost no syscall (L1; the wait's L3 sees
            // them).
            mark_awake(&inner.wake, &inner.awake_marked);
        }
        // Events left over from a batch interrupted by a panic or an error
        // come first.
        if self.has_leftovers() {
            let ran = self.dispatch_timer_targets(inner, state)?;
            return Ok(ran + self.dispatch_batch(inner, state, None)?);
        }
        let mut ran = self.run_defers(inner, state);
        let mut timeout = timeout;
        if ran > 0 || self.stop_pending(inner) {
            timeout = Some(Duration::ZERO);
        }
        if ran > 0 || !inner.idles.borrow().is_empty() || !inner.timers.borrow().is_idle() {
            // Callbacks (or timer bookkeeping) run before the wait: the
            // last batch's end reading no longer starts it.
            self.last_end = None;
        }
        if timeout != Some(Duration::ZERO) {
            self.run_idles(inner, state)?;
            if self.stop_pending(inner) || !inner.defers.borrow().is_empty() {
                timeout = Some(Duration::ZERO);
            }
        }
        let clock_set = {
            let mut timers = inner.timers.borrow_mut();
            if timers.is_idle() {
                false
            } else {
                timers.arm().map_err(|e| Error::io("arming a timerfd", e))?;
                if let Some(t) = timers.fallback_timeout() {
                    timeout = Some(timeout.map_or(t, |u| u.min(t)));
                }
                timers.take_clock_set()
            }
        };
        if clock_set {
            ran += self.run_timers(inner, Clock::Realtime, true, state)?;
            timeout = Some(Duration::ZERO);
        }
        Ok(ran + self.wait_and_dispatch(inner, state, timeout, stay_awake)?)
    }

    /// Without timerfds, timers run after each batch. Returns `ran` plus
    /// the timer callbacks run.
    #[inline(always)]
    fn run_fallback_timers<S>(
        &mut self,
        inner: &Inner<S>,
        state: &mut S,
        ran: usize,
    ) -> Result<usize> {
        if inner.timers.borrow().is_fallback() {
            return self.run_all_timers(inner, state, ran);
        }
        Ok(ran)
    }

    #[inline(never)]
    fn run_all_timers<S>(
        &mut self,
        inner: &Inner<S>,
        state: &mut S,
        mut ran: usize,
    ) -> Result<usize> {
        for clock in [Clock::Monotonic, Clock::Boottime, Clock::Realtime] {
            ran += self.run_timers(inner, clock, false, state)?;
        }
        Ok(ran)
    }

    /// Runs the timers of `clock` that are due (and, when the clock was
    /// set, tells every realtime timer).
    fn run_timers<S>(
        &mut self,
        inner: &Inner<S>,
        clock: Clock,
        clock_set: bool,
        state: &mut S,
    ) -> Result<usize> {
        // Scratch buffers live in the loop, so firing timers allocates
        // nothing once they have grown.
        let mut slots = std::mem::take(&mut self.timer_slots);
        {
            let mut timers = inner.timers.borrow_mut();
            // Pair each slot with the registration it was scheduled under,
            // before any callback runs: a callback may remove a due timer
            // and a new source may take its slot; that source must not get
            // the old timer's event (dispatch drops a token whose
            // generation is not the slot's current one).
            slots.clear();
            timers.take_due(clock, sys::timerfd::now_ns(clock), &mut slots);
            let due = crate::timer::SUB_DUE;
            self.timer_targets
                .extend(slots.iter().map(|&s| (s, timers.reg_gen_of(s), due)));
            if clock_set {
                slots.clear();
                timers.realtime_slots(&mut slots);
                let set = crate::timer::SUB_CLOCK_SET;
                self.timer_targets
                    .extend(slots.iter().map(|&s| (s, timers.reg_gen_of(s), set)));
            }
        }
        self.timer_slots = slots;
        self.dispatch_timer_targets(inner, state)
    }

    /// Dispatches the timers taken due. They have left the timer store, so
    /// if a callback panics or a source fails, the rest stay here and the
    /// next `run_once` dispatches them first — none is lost.
    fn dispatch_timer_targets<S>(&mut self, inner: &Inner<S>, state: &mut S) -> Result<usize> {
        let mut ran = 0;
        while let Some(&(slot, reg_gen, sub)) = self.timer_targets.get(self.timer_cursor) {
            self.timer_cursor += 1;
            let data = token::encode(slot, reg_gen, sub);
            if self.dispatch_one(inner, EventFlags::empty(), data, state)? {
                ran += 1;
            }
        }
        self.timer_targets.clear();
        self.timer_cursor = 0;
        Ok(ran)
    }

    fn stop_pending<S>(&self, inner: &Inner<S>) -> bool {
        inner.stop.get() || inner.wake.stop.load(crate::sync::Ordering::Acquire)
    }

    /// Waits for events. Returns the (coarse) clock reading taken after the
    /// wait, if one was taken: only waits that could block are timed, so
    /// `dispatch_pending` reads no clock when nothing is ready.
    #[inline(always)]
    fn wait<S>(&mut self, inner: &Inner<S>, timeout: Option<Duration>) -> Result<Option<u64>> {
        if timeout == Some(Duration::ZERO) {
            self.poll(inner)?;
            return Ok(None);
        }
        let start = self.last_end.take().unwrap_or_else(sys::timerfd::coarse_ns);
        // The deadline needs the precise clock (never early); statistics
        // make do with the coarse one. Without a timeout there is none, and
        // only EINTR makes the wait start again.
        let deadline = match timeout {
            Some(t) => Instant::now().checked_add(t),
            None => None,
        };
        let mut remaining = timeout;
        self.cursor = 0;
        let n = loop {
            match self
                .waiter
                .wait(inner.epoll.as_fd(), &mut self.events, remaining)
            {
                Ok(0) if deadline.is_some_and(|d| Instant::now() < d) => {}
                Ok(n) => break n,
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.events.clear();
                    self.stats.add_blocked(start, sys::timerfd::coarse_ns());
                    return Err(Error::io("epoll_wait", e));
                }
            }
            // Interrupted or early: wait again for the time left.
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    self.events.clear();
                    break 0;
                }
                remaining = Some(d - now);
            }
        };
        let end = sys::timerfd::coarse_ns();
        self.stats.add_blocked(start, end);
        // The internal timer firing is the timeout, not a wake-up: a batch
        // is a wake-up unless it is that event alone.
        let woken = match self.events.as_slice() {
            [] => false,
            [only] => sys::epoll::parts(only).1 != token::TIMER,
            _ => true,
        };
        if woken {
            self.stats.wakeups += 1;
        }
        self.grow_if_full(n);
        Ok(Some(end))
    }

    /// [`wait`](Core::wait) with a zero timeout: nothing to time, no
    /// deadline to keep.
    #[inline(always)]
    fn poll<S>(&mut self, inner: &Inner<S>) -> Result<()> {
        self.cursor = 0;
        let n = loop {
            match sys::epoll::wait_ms(inner.epoll.as_fd(), &mut self.events, 0) {
                Ok(n) => break n,
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("epoll_wait", e)),
            }
        };
        self.grow_if_full(n);
        Ok(())
    }

    #[inline]
    fn grow_if_full(&mut self, n: usize) {
        if n == self.events.capacity() && n < MAX_EVENTS {
            // A full batch: more may be ready; fetch more next time.
            self.events.reserve(n);
        }
    }

    fn dispatch_batch<S>(
        &mut self,
        inner: &Inner<S>,
        state: &mut S,
        now: Option<u64>,
    ) -> Result<usize> {
        if self.cursor >= self.events.len() {
            return Ok(0);
        }
        // A blocking wait's end reading starts the batch; zero-timeout
        // batches are timed one in SAMPLE_EVERY (weighted to match).
        let (start, weight) = match now {
            Some(t) => (Some(t), 1),
            None => {
                self.untimed = self.untimed.wrapping_add(1);
                let timed = self.untimed % SAMPLE_EVERY == 1;
                (timed.then(sys::timerfd::coarse_ns), SAMPLE_EVERY)
            }
        };
        let mut ran = 0;
        let result = loop {
            let Some(ev) = self.events.get(self.cursor) else {
                break Ok(ran);
            };
            let (flags, data) = sys::epoll::parts(ev);
            self.cursor += 1;
            if data < token::INTERNAL_MIN {
                match self.dispatch_one(inner, flags, data, state) {
                    Ok(true) => ran += 1,
                    Ok(false) => {}
                    Err(e) => break Err(e),
                }
                continue;
            }
            match data {
                token::REMOTE => {
                    // Wake-ups carry no work of their own; stop is checked
                    // by `run`. Awake before draining, so a wake that lands
                    // after the drain is turned into a write at the end of
                    // the iteration instead of being lost.
                    mark_awake(&inner.wake, &inner.awake_marked);
                    if let Err(e) = inner.wake.notifier.drain() {
                        break Err(Error::io("draining the loop's wake-up notifier", e));
                    }
                }
                token::TIMER => self.waiter.on_timer(),
                t if timers::token_clock(t).is_some() => {
                    let Some(clock) = timers::token_clock(t) else {
                        continue;
                    };
                    let set = inner.timers.borrow_mut().on_fired(clock);
                    match self.run_timers(inner, clock, set, state) {
                        Ok(n) => ran += n,
                        Err(e) => break Err(e),
                    }
                }
                _ => {}
            }
        };
        self.stats.events += ran as u64;
        self.last_end = None;
        if let Some(start) = start {
            let end = sys::timerfd::coarse_ns();
            self.stats.add_callbacks(start, end, weight);
            if weight == 1 {
                self.last_end = Some(end);
            }
        }
        result
    }

    #[inline(always)]
    fn dispatch_one<S>(
        &self,
        inner: &Inner<S>,
        flags: EventFlags,
        data: u64,
        state: &mut S,
    ) -> Result<bool> {
        let (slot, reg_gen, sub) = token::decode(data);
        let Some((id, d)) = inner.take_fd(slot, reg_gen) else {
            return Ok(false); // removed, disabled or re-registered since
        };
        let mut guard = FdGuard {
            inner,
            id,
            d: Some(d),
        };
        let mut r = inner.registrar(slot, reg_gen);
        let outcome = match &mut guard.d {
            Some(d) => d.dispatch(Readiness::from_flags(flags), sub, &mut r, state),
            None => Ok(Action::Continue),
        };
        let pending = match guard.d.take() {
            Some(d) => inner.restore_fd(slot, d),
            None => Pending::default(),
        };
        if !pending.is_empty() {
            inner.apply_pending(id, pending)?;
        }
        match outcome {
            Ok(Action::Continue) => Ok(true),
            Ok(action) => inner.apply_action(id, action).map(|()| true),
            Err(e) => Err(Error::Source { id, source: e }),
        }
    }

    fn run_defers<S>(&self, inner: &Inner<S>, state: &mut S) -> usize {
        if inner.defers.borrow().is_empty() {
            return 0;
        }
        // Only the calls queued so far: those they queue wait for the next
        // iteration.
        let queued = std::mem::take(&mut *inner.defers.borrow_mut());
        let mut ran = 0;
        let mut keep = Vec::new();
        for id in queued {
            match inner.take_by_id(id) {
                Taken::Entry(Entry {
                    kind: Kind::Defer(f),
                    ..
                }) => {
                    inner.slab.borrow_mut().release(id.slot);
                    f(state);
                    ran += 1;
                }
                Taken::Entry(other) => {
                    // Not a deferred call (cannot happen); put it back.
                    let _ = inner.put_back(id, other);
                }
                Taken::Disabled => keep.push(id),
                Taken::Gone => {}
            }
        }
        if !keep.is_empty() {
            let mut d = inner.defers.borrow_mut();
            keep.append(&mut d);
            *d = keep;
        }
        ran
    }

    fn run_idles<S>(&self, inner: &Inner<S>, state: &mut S) -> Result<()> {
        if inner.idles.borrow().is_empty() {
            return Ok(());
        }
        let ids: Vec<SourceId> = inner.idles.borrow().clone();
        for id in ids {
            let Taken::Entry(entry) = inner.take_by_id(id) else {
                continue;
            };
            let mut guard = RunGuard {
                inner,
                id,
                entry: Some(entry),
            };
            let action = match guard.entry.as_mut().map(|e| &mut e.kind) {
                Some(Kind::Idle(f)) => f(state),
                _ => Action::Continue,
            };
            if let Some(entry) = guard.entry.take() {
                inner.finish(id, entry, action)?;
            }
        }
        // Forget removed idles (those added meanwhile stay).
        let slab = &mut *inner.slab.borrow_mut();
        inner
            .idles
            .borrow_mut()
            .retain(|id| slab.get(*id).is_some());
        Ok(())
    }
}

/// Dropping the loop removes every source: each leaves the epoll set, then
/// is dropped with its callback. This also breaks the reference cycle a
/// callback makes when it holds a [`LoopHandle`] (the loop owns the
/// callback, the callback owns the handle, the handle shares the loop's
/// state), so the loop's descriptors and memory are freed. Handles kept
/// outside the loop stay valid but name no sources: inserting through one
/// still works on the (now unwatched) epoll set, and `remove` reports
/// [`Error::NoSuchSource`].
impl<S: 'static> Drop for EventLoop<S> {
    fn drop(&mut self) {
        let inner = self.handle.inner.clone();
        // Take everything out first, then unregister and drop outside the
        // borrow: a source's destructor may use a LoopHandle.
        let taken: Vec<(u32, u32, Entry<S>)> = {
            let mut slab = inner.slab.borrow_mut();
            let mut out = Vec::with_capacity(slab.live);
            for (i, s) in slab.slots.iter_mut().enumerate() {
                if let SlotState::Ready(_) = s.state {
                    if let SlotState::Ready(e) = std::mem::replace(&mut s.state, SlotState::Vacant)
                    {
                        s.id_gen = s.id_gen.wrapping_add(1);
                        out.push((i as u32, s.reg_gen, e));
                    }
                }
            }
            slab.live = 0;
            slab.free.clear();
            let n = slab.slots.len() as u32;
            slab.free.extend((0..n).rev());
            out
        };
        inner.idles.borrow_mut().clear();
        inner.defers.borrow_mut().clear();
        for (slot, reg_gen, mut entry) in taken {
            if let (Kind::Fd(d), true) = (&mut entry.kind, entry.enabled) {
                // Best effort: the descriptor closes right after anyway.
                let _ = d.unregister(&mut inner.registrar(slot, reg_gen));
            }
            drop(entry);
        }
    }
}

impl<S: 'static> AsFd for EventLoop<S> {
    /// The epoll descriptor: readable when events are ready. Poll it from an
    /// outer loop, then call [`dispatch_pending`](EventLoop::dispatch_pending).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.handle.inner.epoll.as_fd()
    }
}

impl<S: 'static> AsRawFd for EventLoop<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl<S: 'static> fmt::Debug for EventLoop<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("epoll", &self.as_raw_fd())
            .field("sources", &self.len())
            .field("stats", &self.core.stats.to_stats())
            .finish()
    }
}
