//! What the optional `async` layer (`crate::rt`) needs from a loop,
//! without naming the loop's state type: an object-safe [`Reactor`] that
//! every `Shared<S>` implements, sources whose callbacks ignore the state
//! ([`Stateless`]), and the [`TaskHook`] through which the driver runs
//! queued tasks once per iteration.

use std::any::Any;
use std::io as stdio;
use std::rc::Rc;
use std::sync::{Arc, Weak};

use super::registration::{Bound, Dispatch};
use super::shared::Shared;
use super::source::{Action, AfterPanic, Readiness, Registrar, Source, SourceId};
use super::wake::WakeState;
use crate::error::Result;

/// Runs a loop's tasks. The driver asks [`pending`](TaskHook::pending) on
/// every iteration (it must be cheap: one atomic load) and calls
/// [`run`](TaskHook::run) before the wait and after the batch when it says
/// yes.
pub(crate) trait TaskHook {
    /// Whether tasks are queued to run.
    fn pending(&self) -> bool;
    /// Polls the tasks queued when it is called (not those they wake);
    /// returns how many ran. `after_look`: the loop has looked at its
    /// descriptors since the last call (tasks that yielded until then are
    /// queued first).
    fn run(&self, after_look: bool) -> usize;
    /// Drops every task on this thread; later wakes do nothing. Called
    /// when the loop is dropped.
    fn shutdown(&self);
    /// For `rt` to get its concrete executor back.
    fn as_any(self: Rc<Self>) -> Rc<dyn Any>;
    /// Whether the loop is inside a call (`run`, `run_once`,
    /// `dispatch_pending`): while it is, a task queued on the loop's thread
    /// needs no wake, because the call looks at the queue before it waits
    /// and before it returns (see `TaskCall`).
    fn set_in_call(&self, in_call: bool);
}

/// A source with a callback that does not take the loop's state (its
/// state is `()`): what `rt` inserts, whatever the loop's `S` is.
pub(crate) struct Stateless(Box<dyn Dispatch<()>>);

impl<S> Dispatch<S> for Stateless {
    fn register(&mut self, r: &mut Registrar<'_>) -> stdio::Result<()> {
        self.0.register(r)
    }

    fn unregister(&mut self, r: &mut Registrar<'_>) -> stdio::Result<()> {
        self.0.unregister(r)
    }

    fn dispatch(
        &mut self,
        ready: Readiness,
        sub: u8,
        r: &mut Registrar<'_>,
        _state: &mut S,
    ) -> stdio::Result<Action> {
        self.0.dispatch(ready, sub, r, &mut ())
    }

    fn after_panic(&mut self, r: &mut Registrar<'_>) -> AfterPanic {
        self.0.after_panic(r)
    }
}

/// Boxes `source` with a callback that ignores the loop's state.
pub(crate) fn stateless<Src, F>(source: Src, callback: F) -> Stateless
where
    Src: Source + 'static,
    F: FnMut(Src::Event, &mut Src::Metadata) -> Action + 'static,
{
    let mut callback = callback;
    Stateless(Box::new(Bound {
        source,
        callback: move |ev: Src::Event, meta: &mut Src::Metadata, _: &mut ()| callback(ev, meta),
    }))
}

/// A loop, whatever its state type: what futures hold to register their
/// descriptors and timers.
pub(crate) trait Reactor {
    /// Inserts a source whose callback ignores the state.
    fn insert(&self, source: Stateless) -> Result<SourceId>;
    /// As [`LoopHandle::remove`](crate::LoopHandle::remove).
    fn remove(&self, id: SourceId) -> Result<()>;
    /// The loop's executor, if `rt` made one.
    fn task_hook(&self) -> Option<Rc<dyn TaskHook>>;
    /// Gives the loop its executor (once, by `rt`).
    fn set_task_hook(&self, hook: Rc<dyn TaskHook>);
    /// The loop's wake state, for wakers on other threads.
    fn wake_state(&self) -> Weak<WakeState>;
    /// As [`LoopHandle::stop`](crate::LoopHandle::stop).
    fn stop(&self);
}

impl<S: 'static> Reactor for Shared<S> {
    fn insert(&self, source: Stateless) -> Result<SourceId> {
        self.add_fd(source).map_err(|(_, e)| e)
    }

    fn remove(&self, id: SourceId) -> Result<()> {
        Shared::remove(self, id)
    }

    fn task_hook(&self) -> Option<Rc<dyn TaskHook>> {
        self.tasks.borrow().clone()
    }

    fn set_task_hook(&self, hook: Rc<dyn TaskHook>) {
        *self.tasks.borrow_mut() = Some(hook);
        self.has_tasks.set(true);
    }

    fn wake_state(&self) -> Weak<WakeState> {
        Arc::downgrade(&self.wake)
    }

    fn stop(&self) {
        self.stop.set(true);
    }
}
