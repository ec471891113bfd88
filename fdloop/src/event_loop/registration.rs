//! Inserting, removing, enabling and disabling sources: the type-erased
//! dispatcher the slab stores, and the operations on the shared half that
//! put it in and take it out of the epoll set (deferred while the source is
//! busy running).

use std::io as stdio;
use std::os::fd::AsFd;

use super::shared::Shared;
use super::slab::{Entry, FdBox, Kind, Pending, SlotState};
use super::source::{Action, AfterPanic, Readiness, Registrar, Source, SourceId};
use crate::error::{Error, Result};
use crate::trace::notable;

/// The type-erased form in which the loop stores a source and its callback.
pub(super) trait Dispatch<S> {
    fn register(&mut self, r: &mut Registrar<'_>) -> stdio::Result<()>;
    fn unregister(&mut self, r: &mut Registrar<'_>) -> stdio::Result<()>;
    fn dispatch(
        &mut self,
        ready: Readiness,
        sub: u8,
        r: &mut Registrar<'_>,
        state: &mut S,
    ) -> stdio::Result<Action>;
    fn after_panic(&mut self, r: &mut Registrar<'_>) -> AfterPanic;
}

pub(super) struct Bound<Src, F> {
    pub(super) source: Src,
    pub(super) callback: F,
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

    fn after_panic(&mut self, r: &mut Registrar<'_>) -> AfterPanic {
        self.source.after_panic(r)
    }
}

impl<S> Shared<S> {
    /// Inserts a descriptor source: reserves a slot, registers the
    /// source's descriptors, then stores it boxed. On failure nothing stays
    /// registered, the slot is free again, and the source comes back with
    /// the error.
    pub(super) fn add_fd<D>(&self, mut d: D) -> std::result::Result<SourceId, (D, Error)>
    where
        D: Dispatch<S> + 'static,
    {
        let id = match self
            .check_fork()
            .and_then(|()| self.slab.borrow_mut().reserve())
        {
            Ok(id) => id,
            Err(e) => return Err((d, e)),
        };
        let reg_gen = self.slab.borrow_mut().next_reg(id.slot);
        let mut r = self.registrar(id.slot, reg_gen);
        if let Err(e) = d.register(&mut r) {
            // Undo a partial registration (ENOENT for the rest is fine).
            let _ = d.unregister(&mut r);
            self.slab.borrow_mut().release(id.slot);
            return Err((d, Error::io("registering a new source with epoll", e)));
        }
        self.fill(id, Kind::Fd(FdBox::new(self.boxed(d))));
        Ok(id)
    }

    /// Inserts an idle or deferred callback.
    pub(super) fn add_callback(&self, kind: Kind<S>) -> Result<SourceId> {
        self.check_fork()?;
        let id = self.slab.borrow_mut().reserve()?;
        let queue = match kind {
            Kind::Idle(_) => Some(&self.idles),
            Kind::Defer(_) => Some(&self.defers),
            _ => None,
        };
        self.fill(id, kind);
        if let Some(q) = queue {
            q.borrow_mut().push(id);
        }
        Ok(id)
    }

    /// Inserts a call at `deadline` (ns on the monotonic clock): reserves a
    /// slot, schedules it in the timer store under a new registration
    /// generation, and stores the closure (in a kept allocation of its
    /// layout, if there is one). On failure the slot is free again.
    pub(super) fn add_timeout<F>(&self, deadline: u64, f: F) -> Result<SourceId>
    where
        F: FnOnce(&mut S) + 'static,
    {
        self.check_fork()?;
        let (id, reg_gen) = {
            let mut slab = self.slab.borrow_mut();
            let id = slab.reserve()?;
            (id, slab.next_reg(id.slot))
        };
        let scheduled = self.schedule_call(id.slot, reg_gen, deadline);
        if let Err(e) = scheduled {
            self.slab.borrow_mut().release(id.slot);
            return Err(e);
        }
        self.fill(id, Kind::Timeout(self.boxed_value(f)));
        Ok(id)
    }

    /// Stores a new entry in the slot `reserve` marked busy. Nothing can
    /// have been requested on it meanwhile: its id was not handed out yet
    /// (and a stale id of the slot has an older generation).
    fn fill(&self, id: SourceId, kind: Kind<S>) {
        let mut slab = self.slab.borrow_mut();
        let s = &mut slab.slots[id.slot as usize];
        debug_assert!(matches!(s.state, SlotState::Busy(p) if p.is_empty()));
        s.state = SlotState::Ready(Entry::new(kind));
    }

    pub(super) fn remove(&self, id: SourceId) -> Result<()> {
        self.check_fork()?;
        let entry = {
            let mut slab = self.slab.borrow_mut();
            let s = slab.get(id).ok_or(Error::NoSuchSource(id))?;
            let reg_gen = s.reg_gen;
            if self.is_running(id.slot) {
                self.defer_running(|p| p.remove = true);
                return Ok(());
            }
            if let SlotState::Ready(e) = &mut s.state {
                if let Kind::Timeout(_) = e.kind {
                    // A call at a deadline: nothing registered, nothing
                    // else to undo; the short way out.
                    let taken = std::mem::replace(&mut s.state, SlotState::Vacant);
                    slab.release(id.slot);
                    drop(slab);
                    self.timers.borrow_mut().cancel(id.slot);
                    if let SlotState::Ready(Entry {
                        kind: Kind::Timeout(f),
                        ..
                    }) = taken
                    {
                        self.recycle(f);
                    }
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
        let registered = entry.registered();
        let res = match (&mut entry.kind, registered) {
            (Kind::Fd(d), true) => d.get().unregister(&mut self.registrar(id.slot, reg_gen)),
            _ => Ok(()),
        };
        if entry.extra.is_some() {
            // A pause's end or a rate limit's release, still scheduled.
            self.timers.borrow_mut().cancel_wake(id.slot);
        }
        self.slab.borrow_mut().release(id.slot);
        // The source and its callback are dropped now; the allocation is
        // kept for the next insert (recycle.rs).
        let Entry { kind, extra, .. } = entry;
        if let Kind::Fd(d) = kind {
            self.recycle(d.into_box());
        }
        drop(extra);
        res.map_err(|e| Error::io("removing a source from epoll", e))
    }

    pub(super) fn set_enabled(&self, id: SourceId, on: bool) -> Result<()> {
        self.change(id, Some(on), None)
    }

    /// Holds a source back (its rate limit was reached) or lets it go.
    pub(super) fn set_held(&self, id: SourceId, held: bool) -> Result<()> {
        self.change(id, None, Some(held))
    }

    /// Changes a source's enabled and held flags; a descriptor source joins
    /// or leaves the epoll set when being registered (enabled and not held)
    /// changes. If that fails, the flags stay as they were.
    pub(super) fn change(
        &self,
        id: SourceId,
        enable: Option<bool>,
        hold: Option<bool>,
    ) -> Result<()> {
        self.check_fork()?;
        let (mut entry, reg_gen, on, flags) = {
            let mut slab = self.slab.borrow_mut();
            let s = slab.get(id).ok_or(Error::NoSuchSource(id))?;
            if self.is_running(id.slot) {
                self.defer_running(|p| p.merge(enable, hold));
                return Ok(());
            }
            let (was, flags) = match &mut s.state {
                SlotState::Busy(p) => {
                    p.merge(enable, hold);
                    return Ok(());
                }
                SlotState::Ready(e) => {
                    let flags = (enable.unwrap_or(e.enabled), hold.unwrap_or(e.held));
                    let was = e.registered();
                    if let Kind::Timeout(_) = e.kind {
                        let on = flags.0 && !flags.1;
                        let reg_gen = s.reg_gen;
                        drop(slab);
                        // If it cannot be scheduled again, it stays as it was.
                        self.toggle_timeout(id.slot, reg_gen, was, on)?;
                        if let Some(SlotState::Ready(e)) =
                            self.slab.borrow_mut().get(id).map(|s| &mut s.state)
                        {
                            (e.enabled, e.held) = flags;
                        }
                        return Ok(());
                    }
                    if was == (flags.0 && !flags.1) || !matches!(e.kind, Kind::Fd(_)) {
                        (e.enabled, e.held) = flags;
                        drop(slab);
                        return self.sync_wake(id);
                    }
                    (was, flags)
                }
                SlotState::Vacant => return Err(Error::NoSuchSource(id)),
            };
            let SlotState::Ready(entry) =
                std::mem::replace(&mut s.state, SlotState::Busy(Pending::default()))
            else {
                return Err(Error::NoSuchSource(id));
            };
            let on = !was;
            let reg_gen = if on {
                slab.next_reg(id.slot)
            } else {
                slab.slots[id.slot as usize].reg_gen
            };
            (entry, reg_gen, on, flags)
        };
        let mut r = self.registrar(id.slot, reg_gen);
        let res = match &mut entry.kind {
            Kind::Fd(d) if on => d.get().register(&mut r).inspect_err(|_| {
                // Undo a partial registration, as `add_fd` does: a source
                // with several descriptors whose second `EPOLL_CTL_ADD`
                // failed (ENOMEM, ENOSPC) would otherwise stay disabled with
                // its first descriptor still in the set, and every later
                // enable would fail with EEXIST. ENOENT for the rest is fine.
                let _ = d.get().unregister(&mut r);
            }),
            Kind::Fd(d) => d.get().unregister(&mut r),
            _ => Ok(()),
        };
        if res.is_ok() {
            (entry.enabled, entry.held) = flags;
            notable!(debug, source = ?id, "source {}", if on { "resumed" } else { "paused" });
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
        })?;
        self.sync_wake(id)
    }

    /// A timeout was disabled or enabled: it leaves the timer store while
    /// disabled, keeping its deadline, and is scheduled again at that
    /// deadline when enabled (running at once if it has passed).
    fn toggle_timeout(&self, slot: u32, reg_gen: u32, was: bool, on: bool) -> Result<()> {
        let mut timers = self.timers.borrow_mut();
        match (was, on) {
            (true, false) => {
                timers.cancel(slot);
                Ok(())
            }
            (false, true) => match timers.deadline_of(slot, reg_gen) {
                Some((deadline, false)) => {
                    drop(timers);
                    self.schedule_call(slot, reg_gen, deadline)
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Schedules the call in `slot` at `deadline` (ns, monotonic, no
    /// slack) under registration `reg_gen`.
    fn schedule_call(&self, slot: u32, reg_gen: u32, deadline: u64) -> Result<()> {
        self.timers
            .borrow_mut()
            .schedule_gen(
                self.epoll.as_fd(),
                slot,
                reg_gen,
                crate::Clock::Monotonic,
                deadline,
                0,
            )
            .map_err(|e| Error::io("scheduling a call on the monotonic timerfd", e))
    }

    /// Returns a taken-out entry to its busy slot and applies what was
    /// requested meanwhile.
    pub(super) fn put_back(&self, id: SourceId, entry: Entry<S>) -> Result<()> {
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
    pub(super) fn finish(&self, id: SourceId, entry: Entry<S>, action: Action) -> Result<()> {
        self.put_back(id, entry)?;
        self.apply_action(id, action)
    }

    /// Applies what was requested while a source was busy.
    #[cold]
    pub(super) fn apply_pending(&self, id: SourceId, pending: Pending) -> Result<()> {
        if pending.remove {
            return self.remove(id);
        }
        if pending.enable.is_some() || pending.hold.is_some() {
            return self.change(id, pending.enable, pending.hold);
        }
        Ok(())
    }

    /// Applies a callback's returned action (after its pending operations).
    pub(super) fn apply_action(&self, id: SourceId, action: Action) -> Result<()> {
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
