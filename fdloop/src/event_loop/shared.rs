//! The half of a loop shared (`Rc`) with every [`LoopHandle`](crate::LoopHandle): the epoll
//! set, the slab, the queues of idle and deferred calls, the stop flag, the
//! wake state and the timer store.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::recycle::Spare;
use super::slab::{Pending, Slab};
use super::source::{Registrar, SourceId};
use super::timers::Timers;
use super::wake::WakeState;
use crate::error::{Error, Result};
use crate::sys;

pub(super) struct Shared<S> {
    pub(super) epoll: OwnedFd,
    pub(super) slab: RefCell<Slab<S>>,
    pub(super) idles: RefCell<Vec<SourceId>>,
    pub(super) defers: RefCell<Vec<SourceId>>,
    pub(super) stop: Cell<bool>,
    pub(super) wake: Arc<WakeState>,
    pub(super) timers: RefCell<Timers>,
    /// Allocations of removed sources, kept for the next inserts
    /// (recycle.rs).
    pub(super) spare: RefCell<Spare>,
    /// Whether this thread has marked the loop awake (wake.rs, L1).
    pub(super) awake_marked: Cell<bool>,
    /// The descriptor source whose callback is running, and what was
    /// requested on it meanwhile (see [`Running`]).
    pub(super) running: Running,
    pub(super) fork_gen: u64,
    /// The executor of `rt`, once a task was spawned on this loop.
    #[cfg(feature = "async")]
    pub(super) tasks: RefCell<Option<std::rc::Rc<dyn super::hooks::TaskHook>>>,
    /// Whether `tasks` holds an executor: one load on the paths every
    /// call takes, for loops that never ran a task.
    #[cfg(feature = "async")]
    pub(super) has_tasks: Cell<bool>,
    /// Whether the loop has looked at its descriptors (a wait, a poll or
    /// a park) since its last turn for tasks: that turn first wakes the
    /// tasks that yielded (`TaskHook::run`).
    #[cfg(feature = "async")]
    pub(super) looked: Cell<bool>,
}

/// `Running::slot` when no callback runs (no slot has this index: the
/// slab addresses fewer).
pub(super) const NOT_RUNNING: u32 = u32::MAX;

/// The slot whose descriptor source's callback is running
/// ([`NOT_RUNNING`] if none), one at most: callbacks run one after another,
/// and none can run the loop it belongs to. While it runs, its dispatcher
/// is in use through a raw pointer, so removing, enabling or disabling it
/// is recorded in `pending` instead and applied when the callback returns.
/// Kept together (a few bytes), so that starting and ending a callback
/// touch one cache line of the loop's.
pub(super) struct Running {
    pub(super) slot: Cell<u32>,
    /// Whether `pending` holds anything (one flag for the fast path).
    pub(super) dirty: Cell<bool>,
    pub(super) pending: Cell<Pending>,
}

impl Running {
    pub(super) fn new() -> Running {
        Running {
            slot: Cell::new(NOT_RUNNING),
            dirty: Cell::new(false),
            pending: Cell::new(Pending::default()),
        }
    }
}

impl<S> Shared<S> {
    /// Whether the descriptor source in `slot` is running its callback.
    #[inline]
    pub(super) fn is_running(&self, slot: u32) -> bool {
        self.running.slot.get() == slot
    }

    /// Marks the source in `slot` running.
    #[inline(always)]
    pub(super) fn begin_running(&self, slot: u32) {
        debug_assert_eq!(self.running.slot.get(), NOT_RUNNING);
        self.running.slot.set(slot);
    }

    /// Ends the running state; returns what was requested meanwhile.
    #[inline(always)]
    pub(super) fn end_running(&self) -> Option<Pending> {
        self.running.slot.set(NOT_RUNNING);
        if self.running.dirty.replace(false) {
            return Some(self.running.pending.take());
        }
        None
    }

    /// Records an operation on the running source, for when its callback
    /// returns.
    pub(super) fn defer_running(&self, f: impl FnOnce(&mut Pending)) {
        let mut p = self.running.pending.get();
        f(&mut p);
        self.running.pending.set(p);
        self.running.dirty.set(true);
    }

    #[inline]
    pub(super) fn check_fork(&self) -> Result<()> {
        // `EventLoop::new` called `fork_generation`, which installed the
        // handler.
        if sys::process::fork_generation_installed() != self.fork_gen {
            return Err(Error::Forked);
        }
        Ok(())
    }

    /// Whether an iteration has work besides polling and dispatching:
    /// deferred calls, or timers to arm or (without timerfds) to bound the
    /// wait with.
    #[inline]
    pub(super) fn has_chores(&self) -> bool {
        !self.defers.borrow().is_empty() || !self.timers.borrow().is_idle() || self.tasks_pending()
    }

    /// Whether tasks are queued to run (one atomic load once an executor
    /// exists).
    #[cfg(feature = "async")]
    #[inline]
    pub(super) fn tasks_pending(&self) -> bool {
        self.has_tasks.get() && self.tasks.borrow().as_ref().is_some_and(|t| t.pending())
    }

    #[cfg(not(feature = "async"))]
    #[inline(always)]
    pub(super) fn tasks_pending(&self) -> bool {
        false
    }

    /// Polls the queued tasks (see `TaskHook::run`); returns how many ran.
    #[cfg(feature = "async")]
    pub(super) fn run_tasks(&self) -> usize {
        if !self.has_tasks.get() {
            return 0;
        }
        let after_look = self.looked.replace(false);
        // Cloned out: tasks spawn and insert through this loop.
        let hook = self.tasks.borrow().clone();
        hook.map_or(0, |h| h.run(after_look))
    }

    #[cfg(not(feature = "async"))]
    #[inline(always)]
    pub(super) fn run_tasks(&self) -> usize {
        0
    }

    /// Records that the loop has looked at its descriptors (see
    /// `looked`).
    #[cfg(feature = "async")]
    #[inline(always)]
    pub(super) fn note_look(&self) {
        self.looked.set(true);
    }

    #[cfg(not(feature = "async"))]
    #[inline(always)]
    pub(super) fn note_look(&self) {}

    /// Tells the executor, if there is one, whether the loop is inside a
    /// call (`TaskHook::set_in_call`).
    #[cfg(feature = "async")]
    #[inline]
    pub(super) fn set_tasks_in_call(&self, in_call: bool) {
        if !self.has_tasks.get() {
            return;
        }
        if let Some(t) = self.tasks.borrow().as_ref() {
            t.set_in_call(in_call);
        }
    }

    #[cfg(not(feature = "async"))]
    #[inline(always)]
    pub(super) fn set_tasks_in_call(&self, _in_call: bool) {}

    #[inline]
    pub(super) fn registrar(&self, slot: u32, reg_gen: u32) -> Registrar<'_> {
        Registrar {
            epoll: self.epoll.as_fd(),
            slot,
            reg_gen,
            timers: &self.timers,
            again: false,
        }
    }
}
