//! The slab of source slots: each slot's entry (a boxed dispatcher, idle or
//! deferred callback), its generations, and the operations requested while
//! its source is busy running.

use super::registration::Dispatch;
use super::source::{Action, SourceId};
use super::token;
use crate::error::{Error, Result};

pub(super) enum Kind<S> {
    Fd(Box<dyn Dispatch<S>>),
    Idle(Box<dyn FnMut(&mut S) -> Action>),
    Defer(Box<dyn FnOnce(&mut S)>),
    /// A descriptor source's dispatcher, taken out of its entry while its
    /// callback runs (see `Shared::take_fd`): the slot is busy.
    Out,
}

pub(super) struct Entry<S> {
    pub(super) kind: Kind<S>,
    pub(super) enabled: bool,
    /// Operations requested while the dispatcher was out (`Kind::Out`);
    /// always empty otherwise.
    pub(super) pending: Pending,
}

impl<S> Entry<S> {
    pub(super) fn new(kind: Kind<S>) -> Entry<S> {
        Entry {
            kind,
            enabled: true,
            pending: Pending::default(),
        }
    }

    /// Whether the dispatcher is out, running: operations on the entry are
    /// then recorded in `pending` and applied when it returns.
    pub(super) fn is_busy(&self) -> bool {
        matches!(self.kind, Kind::Out)
    }
}

/// Operations requested on a slot while its source was out (busy).
#[derive(Default, Clone, Copy)]
pub(super) struct Pending {
    pub(super) remove: bool,
    pub(super) enable: Option<bool>,
}

impl Pending {
    #[inline]
    pub(super) fn is_empty(self) -> bool {
        !self.remove && self.enable.is_none()
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
}

impl<S> Slab<S> {
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
        self.free.push(slot);
    }

    /// Bumps the registration generation and returns it.
    pub(super) fn next_reg(&mut self, slot: u32) -> u32 {
        let s = &mut self.slots[slot as usize];
        s.reg_gen = s.reg_gen.wrapping_add(1);
        s.reg_gen
    }
}
