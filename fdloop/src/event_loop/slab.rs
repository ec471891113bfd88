//! The slab of source slots: each slot's entry (a boxed dispatcher, idle or
//! deferred callback), its generations, and the operations requested while
//! its source is busy running.

use std::marker::PhantomData;
use std::ptr::NonNull;

use super::hold::Extra;
use super::registration::Dispatch;
use super::source::{Action, SourceId};
use super::token;
use crate::error::{Error, Result};

/// A one-shot closure the loop runs: a deferred call or a call at a
/// deadline.
pub(super) type Call<S> = Box<dyn FnOnce(&mut S)>;

/// A descriptor source's boxed dispatcher (source and callback), owned
/// through a raw pointer: the loop calls it where it lies, with no borrow
/// of the slab held, while the callback may insert sources and so move the
/// slab's slots (see `Shared::begin_fd`). Moving an `FdBox` moves only the
/// pointer; the dispatcher stays where it was allocated until the `FdBox`
/// is dropped or turned back into its box.
pub(super) struct FdBox<S> {
    ptr: NonNull<dyn Dispatch<S>>,
    owns: PhantomData<Box<dyn Dispatch<S>>>,
}

impl<S> FdBox<S> {
    pub(super) fn new(d: Box<dyn Dispatch<S>>) -> FdBox<S> {
        // SAFETY: `Box::into_raw` never returns null.
        let ptr = unsafe { NonNull::new_unchecked(Box::into_raw(d)) };
        FdBox {
            ptr,
            owns: PhantomData,
        }
    }

    /// The dispatcher, for the cold paths (register, unregister).
    pub(super) fn get(&mut self) -> &mut dyn Dispatch<S> {
        // SAFETY: `ptr` came from `Box::into_raw` and is owned by this
        // `FdBox`; `&mut self` makes this the only reference made through
        // it, and the loop never calls through `as_ptr` at the same time:
        // the paths that use `get` (insert, remove, enable, disable, the
        // loop's drop) defer to the end of the callback while its source is
        // running (`Shared::running`).
        unsafe { self.ptr.as_mut() }
    }

    /// The dispatcher's address, for calling it in place (`dispatch_one`).
    #[inline(always)]
    pub(super) fn as_ptr(&self) -> NonNull<dyn Dispatch<S>> {
        self.ptr
    }

    /// The box back (for its allocation to be kept, recycle.rs).
    pub(super) fn into_box(self) -> Box<dyn Dispatch<S>> {
        let ptr = self.ptr;
        std::mem::forget(self);
        // SAFETY: `ptr` came from `Box::into_raw`, and forgetting `self`
        // hands its ownership over exactly once.
        unsafe { Box::from_raw(ptr.as_ptr()) }
    }
}

impl<S> Drop for FdBox<S> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `Box::into_raw` and is owned by this
        // `FdBox`, dropped once here; nothing calls through it any more
        // (a running source is never dropped: its removal waits for the
        // callback's return).
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}

pub(super) enum Kind<S> {
    Fd(FdBox<S>),
    Idle(Box<dyn FnMut(&mut S) -> Action>),
    Defer(Call<S>),
    /// A call at a deadline (`LoopHandle::call_at`): scheduled in the
    /// timer store under the slot and its registration generation while
    /// enabled, taken out and run when due.
    Timeout(Call<S>),
}

pub(super) struct Entry<S> {
    pub(super) kind: Kind<S>,
    /// Enabled by the user (the default), or disabled.
    pub(super) enabled: bool,
    /// Held back by its rate limit (hold.rs). A descriptor source is in the
    /// epoll set exactly when it is enabled and not held.
    pub(super) held: bool,
    /// A pause's end and a rate limit, for the few sources that have them.
    pub(super) extra: Option<Box<Extra<S>>>,
}

impl<S> Entry<S> {
    pub(super) fn new(kind: Kind<S>) -> Entry<S> {
        Entry {
            kind,
            enabled: true,
            held: false,
            extra: None,
        }
    }

    /// Whether the source's descriptors are in the epoll set (or, for a
    /// running descriptor source, will be when it returns).
    pub(super) fn registered(&self) -> bool {
        self.enabled && !self.held
    }

    /// Whether this is a descriptor source (or a timer), running or not.
    pub(super) fn is_fd(&self) -> bool {
        matches!(self.kind, Kind::Fd(_))
    }
}

/// Operations requested on a slot while its source was busy: running its
/// callback (recorded loop-wide, `Shared::running_pending`) or taken out of
/// its slot (`SlotState::Busy`).
#[derive(Default, Clone, Copy)]
pub(super) struct Pending {
    pub(super) remove: bool,
    pub(super) enable: Option<bool>,
    /// Held back (its rate limit was reached by the dispatch that just
    /// ended) or let go.
    pub(super) hold: Option<bool>,
    /// The running source's pause or rate limit changed: its entry is
    /// looked at again when the callback returns. Nothing to apply.
    pub(super) recheck: bool,
}

impl Pending {
    #[inline]
    pub(super) fn is_empty(self) -> bool {
        !self.remove && self.enable.is_none() && self.hold.is_none() && !self.recheck
    }

    /// Records a change of the enabled or held flag, the latest winning.
    pub(super) fn merge(&mut self, enable: Option<bool>, hold: Option<bool>) {
        if enable.is_some() {
            self.enable = enable;
        }
        if hold.is_some() {
            self.hold = hold;
        }
    }
}

pub(super) enum SlotState<S> {
    Vacant,
    Ready(Entry<S>),
    Busy(Pending),
}

pub(super) struct Slot<S> {
    pub(super) id_gen: u32,
    pub(super) reg_gen: u32,
    pub(super) state: SlotState<S>,
}

pub(super) struct Slab<S> {
    pub(super) slots: Vec<Slot<S>>,
    pub(super) free: Vec<u32>,
    pub(super) live: usize,
    /// Each slot's priority (lower runs first; 0 by default), apart from
    /// the slots so a batch's ordering pass reads a dense array.
    pub(super) prio: Vec<i32>,
    /// Live slots whose priority is not 0: while there are none, batches
    /// are dispatched in epoll's order with no ordering pass.
    pub(super) prioritized: usize,
    /// Each slot's priority as a rank among the distinct priorities in use
    /// (0 for the lowest, `i32::MIN`, which the loop's own events take),
    /// so ordering a batch needs no search; rebuilt when a priority
    /// changed (`ranked` false). See order.rs.
    pub(super) rank: Vec<u8>,
    /// How many ranks `rank` uses, once rebuilt; `None` with more than 256
    /// distinct priorities (batches are then sorted by key).
    pub(super) ranks: Option<usize>,
    pub(super) ranked: bool,
    /// Bumped each time the ranks are rebuilt.
    pub(super) rank_gen: u64,
    /// The rank of priority 0 (slots past `rank`'s end).
    pub(super) zero_rank: u8,
}

impl<S> Slab<S> {
    pub(super) fn new() -> Slab<S> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            prio: Vec::new(),
            prioritized: 0,
            rank: Vec::new(),
            ranks: None,
            ranked: false,
            rank_gen: 1,
            zero_rank: 0,
        }
    }

    /// The ranks of the slots' priorities (rebuilding them if a priority
    /// changed): how many there are, or `None` past 256.
    pub(super) fn ranks(&mut self) -> Option<usize> {
        if !self.ranked {
            self.ranked = true;
            self.rank_gen += 1;
            let mut distinct: Vec<i32> = self.prio.clone();
            distinct.push(i32::MIN);
            distinct.push(0); // slots past `prio`'s end
            distinct.sort_unstable();
            distinct.dedup();
            self.ranks = None;
            self.rank.clear();
            if distinct.len() <= 256 {
                let rank = |p: &i32| distinct.binary_search(p).unwrap_or(0) as u8;
                self.rank.extend(self.prio.iter().map(rank));
                self.zero_rank = rank(&0);
                self.ranks = Some(distinct.len());
            }
        }
        self.ranks
    }

    /// Sets a live slot's priority.
    pub(super) fn set_prio(&mut self, slot: u32, prio: i32) {
        let i = slot as usize;
        if self.prio.len() <= i {
            self.prio.resize(i + 1, 0);
        }
        let old = std::mem::replace(&mut self.prio[i], prio);
        if old != prio {
            self.ranked = false;
        }
        match (old != 0, prio != 0) {
            (false, true) => self.prioritized += 1,
            (true, false) => self.prioritized -= 1,
            _ => {}
        }
    }

    /// A slot's priority.
    pub(super) fn prio_of(&self, slot: u32) -> i32 {
        self.prio.get(slot as usize).copied().unwrap_or(0)
    }

    pub(super) fn get(&mut self, id: SourceId) -> Option<&mut Slot<S>> {
        self.slots
            .get_mut(id.slot as usize)
            .filter(|s| s.id_gen == id.gen && !matches!(s.state, SlotState::Vacant))
    }

    /// Takes a free slot and marks it busy (being filled).
    pub(super) fn reserve(&mut self) -> Result<SourceId> {
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
                // Room in the free list for every slot, so that `release`
                // never allocates: removing a source (often from a
                // callback, or a one-shot timer leaving after it fired)
                // then never waits for the list to move to a bigger block;
                // that happens here, when a slot is added.
                self.free.reserve(self.slots.len() - self.free.len());
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
    pub(super) fn release(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        s.state = SlotState::Vacant;
        s.id_gen = s.id_gen.wrapping_add(1);
        self.live -= 1;
        // Never grows: `reserve` made room for every slot.
        debug_assert!(self.free.len() < self.free.capacity());
        self.free.push(slot);
        if self.prio.get(slot as usize).is_some_and(|&p| p != 0) {
            self.set_prio(slot, 0);
        }
    }

    /// Bumps the registration generation and returns it.
    pub(super) fn next_reg(&mut self, slot: u32) -> u32 {
        let s = &mut self.slots[slot as usize];
        s.reg_gen = s.reg_gen.wrapping_add(1);
        s.reg_gen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Freeing slots never grows the free list: the room was made when the
    /// slots were created (a one-shot timer leaving after it fired, or a
    /// source removed from a callback, then never waits on the allocator).
    #[test]
    fn release_never_allocates() {
        let mut slab: Slab<()> = Slab::new();
        let ids: Vec<SourceId> = (0..5000).map(|_| slab.reserve().unwrap()).collect();
        let cap = slab.free.capacity();
        assert!(cap >= ids.len());
        for id in &ids {
            slab.release(id.slot);
            assert_eq!(slab.free.capacity(), cap);
        }
        assert_eq!(slab.live, 0);
        // Reused slots make no new ones; new slots keep the invariant.
        let again: Vec<SourceId> = (0..6000).map(|_| slab.reserve().unwrap()).collect();
        assert_eq!(slab.slots.len(), 6000);
        assert!(slab.free.capacity() >= slab.slots.len());
        for id in &again {
            slab.release(id.slot);
        }
        assert_eq!(slab.free.len(), 6000);
    }
}
