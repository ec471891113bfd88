//! Priority order within a batch: see
//! [`LoopHandle::set_priority`](crate::LoopHandle::set_priority).
//!
//! While every live source has the default priority (0), a batch is
//! dispatched in the order epoll reported it and this pass never runs. Once
//! some source has another priority, each fresh batch is put in order
//! before its first callback: the timers due on a clock whose timerfd
//! fired are taken out of the timer store and placed in the batch as
//! events of their own (so a timer competes by its priority like any
//! descriptor), then the batch is sorted by (priority, position), which
//! keeps the arrival order among equal priorities. The loop's own events (its
//! wake-up notifier, its timeout timer) carry no callback and go first.
//! Without timerfds (the epoll-timeout fallback) the due timers of every
//! clock join the batch the same way before it is ordered.
//!
//! The slab keeps each slot's priority as a rank among the distinct
//! priorities in use (a byte per slot, rebuilt when a priority changes), so
//! a batch is ordered by a stable counting sort with no search and no
//! comparison: one pass reads each event's rank and counts it, one places
//! the events. With more than 256 distinct priorities in use, the batch
//! is sorted by one 64-bit key per event instead — the priority, made
//! unsigned, above the event's position. And since a busy loop's
//! level-triggered sources come back from epoll in the same order batch
//! after batch, the last batch's order is kept: a batch that lists the same
//! events (one comparison of data words each) is put in order by the same
//! permutation, a gather, with no counting at all.

use rustix::event::epoll::EventFlags;

use super::driver::Driver;
use super::shared::Shared;
use super::timers::{self, Timers};
use super::token;
use crate::sys;
use crate::sys::timerfd::Clock;

/// The sort key of an event at `pos` whose source has priority `prio`.
#[inline]
fn key(prio: i32, pos: usize) -> u64 {
    // Flipping the sign bit maps i32 order onto u32 order.
    (u64::from((prio as u32) ^ 0x8000_0000) << 32) | pos as u64
}

impl Driver {
    /// Puts the fresh batch in `events` in priority order (see the module
    /// docs). Called only while some live source has a priority other than 0.
    #[cold]
    #[inline(never)]
    pub(super) fn order_batch<S>(&mut self, inner: &Shared<S>) {
        if inner.timers.borrow().is_fallback() {
            // No timerfd event stands for the due timers: they join the
            // batch here, to be ordered with it.
            self.append_fallback_timers(inner);
        }
        if let [only] = self.events.as_slice() {
            // One event is in order, unless it is a clock's (its due timers
            // take its place).
            if timers::token_clock(sys::epoll::parts(only).1).is_none() {
                return;
            }
        }
        let mut slab = inner.slab.borrow_mut();
        let Some(nranks) = slab.ranks() else {
            drop(slab);
            self.order_last.clear();
            return self.sort_by_keys(inner);
        };
        if self.order_gen == slab.rank_gen && self.same_batch_as_last() {
            drop(slab);
            return self.reuse_last_order();
        }
        self.order_gen = slab.rank_gen;
        self.order_last.clear();
        self.order_last
            .extend(self.events.iter().map(|e| sys::epoll::parts(e).1));
        self.order_perm.clear();
        // One pass: how many events have each rank.
        let count = &mut self.order_count;
        count.clear();
        count.resize(nranks, 0);
        let rank_of = |data: u64| -> u8 {
            if data >= token::INTERNAL_MIN {
                0
            } else {
                let slot = token::decode(data).0 as usize;
                slab.rank.get(slot).copied().unwrap_or(slab.zero_rank)
            }
        };
        let mut clocks = false;
        for ev in &self.events {
            let data = sys::epoll::parts(ev).1;
            clocks |= data >= token::INTERNAL_MIN && timers::token_clock(data).is_some();
            if let Some(c) = count.get_mut(rank_of(data) as usize) {
                *c += 1;
            }
        }
        let n = self.events.len();
        if clocks {
            // Due timers take the place of their clock's event, then the
            // batch is ordered afresh (it has no clock event left).
            drop(slab);
            self.order_last.clear();
            self.expand_timers(inner);
            return self.order_batch(inner);
        }
        if count.contains(&n) {
            return; // one priority: epoll's order stands
        }
        // Where each rank's events start: a stable counting sort.
        let mut at = 0;
        for c in count.iter_mut() {
            at += std::mem::replace(c, at);
        }
        self.order_tmp.clear();
        if self.order_tmp.capacity() < self.events.capacity() {
            self.order_tmp.reserve(self.events.capacity());
        }
        // Every slot of `order_tmp[..n]` is written exactly once below.
        self.order_tmp
            .resize(n, sys::epoll::event(EventFlags::empty(), 0));
        self.order_perm.resize(n, 0);
        for (i, ev) in self.events.iter().enumerate() {
            let r = rank_of(sys::epoll::parts(ev).1);
            if let Some(s) = count.get_mut(r as usize) {
                if let Some(slot) = self.order_tmp.get_mut(*s) {
                    *slot = *ev;
                }
                if let Some(p) = self.order_perm.get_mut(*s) {
                    *p = i as u32;
                }
                *s += 1;
            }
        }
        drop(slab);
        // The sorted copy becomes the batch; its buffer is as large as the
        // old one, so epoll's buffer does not shrink.
        std::mem::swap(&mut self.events, &mut self.order_tmp);
    }

    /// Whether the fresh batch lists the same events, in the same order,
    /// as the last one ordered (the ranks unchanged since): a busy loop's
    /// level-triggered sources come back from epoll in the same order
    /// batch after batch.
    fn same_batch_as_last(&self) -> bool {
        self.order_last.len() == self.events.len()
            && self
                .events
                .iter()
                .zip(&self.order_last)
                .all(|(e, &t)| sys::epoll::parts(e).1 == t)
    }

    /// Orders the batch as the last one was: the same permutation, or none.
    fn reuse_last_order(&mut self) {
        if self.order_perm.is_empty() {
            return; // it was in order already
        }
        self.make_room();
        let events = &self.events;
        self.order_tmp.extend(
            self.order_perm
                .iter()
                .filter_map(|&i| events.get(i as usize).copied()),
        );
        std::mem::swap(&mut self.events, &mut self.order_tmp);
    }

    /// Empties `order_tmp`, with room for as many events as `events`.
    fn make_room(&mut self) {
        self.order_tmp.clear();
        if self.order_tmp.capacity() < self.events.capacity() {
            self.order_tmp.reserve(self.events.capacity());
        }
    }

    /// Sorts by one integer key per event — the priority, made unsigned,
    /// above the position — when more than 256 distinct priorities are in
    /// use.
    fn sort_by_keys<S>(&mut self, inner: &Shared<S>) {
        self.expand_timers(inner);
        let slab = inner.slab.borrow();
        let keys = &mut self.order_keys;
        keys.clear();
        keys.extend(self.events.iter().enumerate().map(|(pos, ev)| {
            let data = sys::epoll::parts(ev).1;
            let prio = if data >= token::INTERNAL_MIN {
                i32::MIN
            } else {
                slab.prio_of(token::decode(data).0)
            };
            key(prio, pos)
        }));
        drop(slab);
        keys.sort_unstable();
        self.make_room();
        let keys = &self.order_keys;
        self.order_tmp
            .extend(keys.iter().map(|&k| self.events[(k as u32) as usize]));
        std::mem::swap(&mut self.events, &mut self.order_tmp);
    }

    /// Replaces each clock timerfd event in the batch by the timers due on
    /// that clock (and, when the wall clock was set, a clock-set notice
    /// for each realtime timer), appended as events of their own.
    fn expand_timers<S>(&mut self, inner: &Shared<S>) {
        let is_clock = |ev: &rustix::event::epoll::Event| {
            timers::token_clock(sys::epoll::parts(ev).1).is_some()
        };
        if !self.events.iter().any(is_clock) {
            return;
        }
        let mut slots = std::mem::take(&mut self.timer_slots);
        let mut i = 0;
        while i < self.events.len() {
            let Some(clock) = timers::token_clock(sys::epoll::parts(&self.events[i]).1) else {
                i += 1;
                continue;
            };
            self.events.remove(i);
            let mut store = inner.timers.borrow_mut();
            let set = store.on_fired(clock);
            self.push_due(&mut store, clock, &mut slots);
            if set {
                slots.clear();
                store.realtime_slots(&mut slots);
                let none = EventFlags::empty();
                for &s in &slots {
                    let data = token::encode(s, store.reg_gen_of(s), timers::SUB_CLOCK_SET);
                    self.events.push(sys::epoll::event(none, data));
                }
            }
        }
        self.timer_slots = slots;
    }

    /// Without timerfds (the epoll-timeout fallback): appends the timers
    /// due on every clock to the batch, as `expand_timers` does for a
    /// clock's timerfd event.
    fn append_fallback_timers<S>(&mut self, inner: &Shared<S>) {
        let mut slots = std::mem::take(&mut self.timer_slots);
        let mut store = inner.timers.borrow_mut();
        for clock in [Clock::Monotonic, Clock::Boottime, Clock::Realtime] {
            self.push_due(&mut store, clock, &mut slots);
        }
        drop(store);
        self.timer_slots = slots;
    }

    /// Takes the timers of `clock` that are due and appends each to the
    /// batch as an event of its own (the loop's own wake-ups go to
    /// `wakes`).
    fn push_due(&mut self, store: &mut Timers, clock: Clock, slots: &mut Vec<u32>) {
        slots.clear();
        store.take_due(clock, sys::timerfd::now_ns(clock), slots);
        let none = EventFlags::empty();
        for &s in slots.iter() {
            if store.is_wake(s) {
                self.wakes.push((s, store.reg_gen_of(s)));
                continue;
            }
            let data = token::encode(s, store.reg_gen_of(s), timers::SUB_DUE);
            self.events.push(sys::epoll::event(none, data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn keys_order_by_priority_then_position() {
        let mut ks = [
            key(0, 0),
            key(-5, 1),
            key(i32::MAX, 2),
            key(i32::MIN, 3),
            key(0, 4),
            key(-5, 5),
        ];
        ks.sort_unstable();
        let order: Vec<u32> = ks.iter().map(|&k| k as u32).collect();
        assert_eq!(order, [3, 1, 5, 0, 4, 2]);
    }
}
