//! The loop thread's side of the wake protocol (see `wake.rs`): when the
//! loop marks itself awake (L1) and asleep again.

use std::cell::Cell;

use super::wake::{WakeFd, WakeState};

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
pub(super) struct AwakeGuard<'a> {
    pub(super) wake: &'a WakeState,
    pub(super) marked: &'a Cell<bool>,
}

impl<'a> AwakeGuard<'a> {
    pub(super) fn new(wake: &'a WakeState, marked: &'a Cell<bool>, now: bool) -> Self {
        if now {
            mark_awake(wake, marked);
        }
        AwakeGuard { wake, marked }
    }
}

/// L1 of the wake protocol, once per awake period.
#[inline]
pub(super) fn mark_awake(wake: &WakeState, marked: &Cell<bool>) {
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
pub(super) fn after_wait(wake: &WakeState, marked: &Cell<bool>, stay_awake: bool) {
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
