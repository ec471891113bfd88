//! The half of a loop shared (`Rc`) with every [`LoopHandle`](crate::LoopHandle): the epoll
//! set, the slab, the queues of idle and deferred calls, the stop flag, the
//! wake state and the timer store.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::recycle::Spare;
use super::slab::Slab;
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
    pub(super) fork_gen: u64,
    /// The executor of `rt`, once a task was spawned on this loop.
    #[cfg(feature = "async")]
    pub(super) tasks: RefCell<Option<std::rc::Rc<dyn super::hooks::TaskHook>>>,
}

impl<S> Shared<S> {
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
        self.tasks.borrow().as_ref().is_some_and(|t| t.pending())
    }

    #[cfg(not(feature = "async"))]
    #[inline(always)]
    pub(super) fn tasks_pending(&self) -> bool {
        false
    }

    /// Polls the queued tasks (see `TaskHook::run`); returns how many ran.
    #[cfg(feature = "async")]
    pub(super) fn run_tasks(&self) -> usize {
        // Cloned out: tasks spawn and insert through this loop.
        let hook = self.tasks.borrow().clone();
        hook.map_or(0, |h| h.run())
    }

    #[cfg(not(feature = "async"))]
    #[inline(always)]
    pub(super) fn run_tasks(&self) -> usize {
        0
    }

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
