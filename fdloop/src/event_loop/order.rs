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
//!
//! The sort works on one 64-bit key per event — the priority, made
//! unsigned, above the event's position — so it is a plain integer sort
//! with no lookups in its comparisons; the events are then copied out in
//! the keys' order.

use rustix::event::epoll::EventFlags;

use super::driver::Driver;
use super::shared::Shared;
use super::timers;
use super::token;
use crate::sys;

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
        self.expand_timers(inner);
        let slab = inner.slab.borrow();
        let keys = &mut self.order_keys;
        keys.clear();
        let mut mixed = false;
        let mut first: Option<i32> = None;
        for (pos, ev) in self.events.iter().enumerate() {
            let data = sys::epoll::parts(ev).1;
            let prio = if data >= token::INTERNAL_MIN {
                i32::MIN
            } else {
                slab.prio_of(token::decode(data).0)
            };
            match first {
                None => first = Some(prio),
                Some(f) => mixed |= f != prio,
            }
            keys.push(key(prio, pos));
        }
        drop(slab);
        if !mixed {
            return;
        }
        keys.sort_unstable();
        self.order_tmp.clear();
        self.order_tmp
            .extend(keys.iter().map(|&k| self.events[(k as u32) as usize]));
        self.events.clear();
        self.events.extend_from_slice(&self.order_tmp);
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
            slots.clear();
            store.take_due(clock, sys::timerfd::now_ns(clock), &mut slots);
            let none = EventFlags::empty();
            for &s in &slots {
                if store.is_wake(s) {
                    self.wakes.push((s, store.reg_gen_of(s)));
                    continue;
                }
                let data = token::encode(s, store.reg_gen_of(s), timers::SUB_DUE);
                self.events.push(sys::epoll::event(none, data));
            }
            if set {
                slots.clear();
                store.realtime_slots(&mut slots);
                for &s in &slots {
                    let data = token::encode(s, store.reg_gen_of(s), timers::SUB_CLOCK_SET);
                    self.events.push(sys::epoll::event(none, data));
                }
            }
        }
        self.timer_slots = slots;
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
