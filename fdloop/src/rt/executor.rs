//! The executor: tasks (futures that need not be `Send`) polled by their
//! loop, once per iteration, and wakers that reach the loop from any thread.
//!
//! # Run queue and wake path
//!
//! Each loop's [`Executor`] owns a [`Queue`] shared (`Arc`) with every
//! waker of its tasks (`async-task` stores the schedule function, which
//! holds the `Arc`, in each task). Waking a task pushes its `Runnable` onto
//! the queue under a mutex and publishes the new length in an atomic the
//! driver reads once per iteration (`TaskHook::pending`). Then:
//!
//! * **on the loop's thread** (recognised by a per-thread key taken when
//!   the executor was created) a wake made while the loop is inside a call
//!   (`run`, `run_once`, `dispatch_pending`, `block_on`: the driver says so
//!   through `TaskHook::set_in_call`) makes no wake at all, not even an
//!   atomic swap on the wake state: the call polls the tasks its batch woke
//!   right after the batch, looks at the queue again before any wait that
//!   could block, and when it returns with tasks still queued (woken by
//!   the tasks it polled, or left by an error or a panic) makes one wake
//!   then. Between calls the first task queued goes through the wake path:
//!   the loop counts as asleep, so that writes the notifier once, and the
//!   loop's descriptor turns readable for an outer poller (tokio, with the
//!   loop nested in it), which calls the loop again.
//! * **on another thread** the waker goes through the loop's sleep-aware
//!   wake path (`WakeState::wake`, the protocol of `event_loop/wake.rs`):
//!   one atomic swap, and a system call only if the loop may be blocked:
//!   a write to its notifier while it waits in `epoll_wait`, a
//!   `FUTEX_WAKE` while it is parked (a loop with no source, such as a
//!   `block_on` of tasks that do no I/O). The push happens before that swap, so
//!   a loop that acquires the swap (its L3) sees the task.
//!
//! The driver polls the tasks queued when an iteration begins and again
//! after the iteration's batch (the tasks its events woke): each time the
//! whole queue is swapped out under one lock (none is taken while the
//! queue's length reads 0: a push this misses wakes the loop after it),
//! and tasks woken while those run wait for the next turn (an iteration
//! with tasks queued does not block), so the loop looks at its descriptors
//! at least every second turn and a task that wakes itself cannot starve
//! the loop's other sources. Wakers handed to `wake_after_look` (by
//! `yield_now`) are held until the first turn after the loop's next look
//! at its descriptors (an `epoll_wait`, or a park; `TaskHook::run` is told)
//! and woken there, just before its tasks are taken. When a wait ends because another thread wrote the
//! loop's notifier, the tasks queued by then are polled right after that
//! batch, before the notifier is drained: the read is not on the path from
//! a cross-thread wake to its task. A park ended by a `FUTEX_WAKE` likewise
//! goes straight to the tasks.
//!
//! # The `block_on` future
//!
//! The future a `block_on` runs is not a task: the executor holds it
//! boxed (`Executor::set_main`) and polls it itself, before the queued
//! tasks, in any iteration that finds its waker used. That waker is a flag
//! plus the same sleep-aware wake path: the first wake since the last poll
//! sets the flag and makes the wake, later ones only find the flag set.
//! A wake from another thread so touches a flag and the wake state, and
//! the loop thread goes from the wait to the poll without a task cell or
//! the queue's lock. When the future ends — output or panic — the
//! executor stops the loop and `block_on` returns the output or resumes
//! the panic.
//!
//! # Shutdown
//!
//! When the loop is dropped, the queue is closed and every live task is
//! dropped on the loop's thread: queued ones from the queue, idle ones by
//! waking them (their schedule call then drops them). A waker used after
//! that does nothing: `async-task` does not schedule a closed task, and the
//! queue holds only a `Weak` to the loop's wake state, so it keeps no
//! descriptor open. (One race is left: a waker on another thread that
//! scheduled a task just as the loop closed it gets the `Runnable` after
//! the close; it cannot drop it there — the future is not `Send` — so it
//! leaks it.)

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::{Rc, Weak as RcWeak};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};

use async_task::{FallibleTask, Runnable};

use super::context;
use crate::event_loop::{Reactor, TaskHook, WakeState};

/// A key per thread, for "is this the loop's thread" in one TLS read.
fn thread_key() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    thread_local! {
        static KEY: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    KEY.with(|k| *k)
}

struct Items {
    runnable: VecDeque<Runnable>,
    closed: bool,
}

/// The run queue, shared with every waker.
struct Queue {
    items: Mutex<Items>,
    /// `items.runnable.len()`, for the driver's check without the lock.
    len: AtomicUsize,
    /// Whether the loop is inside a call (`TaskHook::set_in_call`). Written
    /// and read on the loop's thread only (`owner`), so relaxed.
    in_call: AtomicBool,
    owner: usize,
    wake: Weak<WakeState>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Items> {
        // Nothing panics while the lock is held; a poisoned lock still
        // holds a consistent queue.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `runnable` and returns the queue's new length; `None` if the
    /// queue is closed (the loop is gone or going), which drops a task on
    /// the loop's thread (`local`) and leaks it on another (see the module
    /// docs: a `!Send` future must not be dropped there).
    fn push(&self, runnable: Runnable, local: bool) -> Option<usize> {
        let mut items = self.lock();
        if items.closed {
            drop(items);
            if local {
                drop(runnable);
            } else {
                std::mem::forget(runnable);
            }
            return None;
        }
        items.runnable.push_back(runnable);
        let len = items.runnable.len();
        self.len.store(len, Ordering::Release);
        Some(len)
    }

    /// Whether this is the loop's thread and the loop is inside a call.
    #[inline]
    fn in_call_here(&self) -> bool {
        thread_key() == self.owner && self.in_call.load(Ordering::Relaxed)
    }

    /// The schedule function of every task.
    fn schedule(&self, runnable: Runnable) {
        let local = thread_key() == self.owner;
        let Some(len) = self.push(runnable, local) else {
            return;
        };
        // On the loop's thread, inside a call, no wake: the call looks at
        // the queue before it waits and before it returns, and makes the
        // wake then if tasks are still queued. Between calls only the first
        // task queued needs it: the loop counts as asleep, and the wake
        // writes the notifier, so that an outer poller watching the loop's
        // descriptor calls it again.
        let needs_wake = if local {
            len == 1 && !self.in_call.load(Ordering::Relaxed)
        } else {
            true
        };
        if needs_wake {
            if let Some(w) = self.wake.upgrade() {
                // Nothing to report to: a broken notifier shows in the
                // loop's next epoll_wait.
                let _ = w.wake();
            }
        }
    }
}

/// Wakers of the live tasks, so that shutdown reaches idle ones.
#[derive(Default)]
struct Live {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
    count: usize,
}

/// The flag behind a [`block_on`](crate::EventLoop::block_on) future's
/// waker: set by a wake, cleared by the poll it asks for.
struct MainWake {
    woken: AtomicBool,
    /// The executor's queue, for its wake state and whether a wake on
    /// this thread needs it.
    queue: Arc<Queue>,
}

impl Wake for MainWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Only the first wake since the last poll needs the loop's wake
        // path (one swap while the loop is awake, a notifier write while
        // it may be blocked); later ones find the poll already asked for.
        // The flag is set before that swap, so a loop that acquires the
        // swap (its L3) sees the flag. On the loop's thread inside a call,
        // as for tasks (`Queue::schedule`), no wake: the call looks at the
        // flag before it waits and before it returns.
        if !self.woken.swap(true, Ordering::AcqRel) && !self.queue.in_call_here() {
            if let Some(w) = self.queue.wake.upgrade() {
                // Nothing to report to: a broken notifier shows in the
                // loop's next epoll_wait.
                let _ = w.wake();
            }
        }
    }
}

/// The future a `block_on` runs, polled by the executor itself rather than
/// as a spawned task (see [`Executor::set_main`]).
struct Main {
    future: Pin<Box<dyn Future<Output = ()>>>,
    flag: Arc<MainWake>,
    waker: Waker,
}

/// A loop's executor (one per loop, made by its first spawn).
pub(crate) struct Executor {
    queue: Arc<Queue>,
    /// Tasks taken from the queue for this iteration, not polled yet.
    batch: RefCell<VecDeque<Runnable>>,
    live: RefCell<Live>,
    reactor: RcWeak<dyn Reactor>,
    /// The running `block_on`'s future (taken out while it is polled).
    main: RefCell<Option<Main>>,
    /// How that future ended, once it has: until `block_on` takes it.
    main_end: RefCell<Option<std::thread::Result<()>>>,
    /// Wakers of tasks that yielded ([`yield_now`](crate::rt::yield_now)):
    /// woken after the loop's next look at its descriptors.
    yielded: RefCell<Vec<Waker>>,
    /// Whether `yielded` holds any (one load in the driver's checks).
    any_yielded: Cell<bool>,
}

/// Clears the executor's `block_on` future when `block_on` returns, by
/// any path: an error of the loop drops the future here, on the loop's
/// thread.
pub(crate) struct MainGuard(Rc<Executor>);

impl MainGuard {
    /// How the future ended, once it has: `Ok` when it completed, the
    /// panic's payload when it panicked.
    pub(crate) fn take_end(&self) -> Option<std::thread::Result<()>> {
        self.0.main_end.borrow_mut().take()
    }
}

impl Drop for MainGuard {
    fn drop(&mut self) {
        let main = self.0.main.borrow_mut().take();
        self.0.main_end.borrow_mut().take();
        drop(main);
    }
}

impl Executor {
    /// The executor of the loop `reactor`, made on first use.
    pub(crate) fn of(reactor: &Rc<dyn Reactor>) -> Rc<Executor> {
        let found = reactor.task_hook();
        if let Some(Ok(ex)) = found.map(|h| h.as_any().downcast::<Executor>()) {
            return ex;
        }
        let ex = Rc::new(Executor {
            queue: Arc::new(Queue {
                items: Mutex::new(Items {
                    runnable: VecDeque::new(),
                    closed: false,
                }),
                len: AtomicUsize::new(0),
                in_call: AtomicBool::new(false),
                owner: thread_key(),
                wake: reactor.wake_state(),
            }),
            batch: RefCell::new(VecDeque::new()),
            live: RefCell::new(Live::default()),
            reactor: Rc::downgrade(reactor),
            main: RefCell::new(None),
            main_end: RefCell::new(None),
            yielded: RefCell::new(Vec::new()),
            any_yielded: Cell::new(false),
        });
        reactor.set_task_hook(ex.clone());
        ex
    }

    /// Spawns `future`; it is first polled by the loop's current call if
    /// spawned during one (after its batch), else by its next call.
    pub(crate) fn spawn<F>(self: &Rc<Self>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let slot = {
            let mut live = self.live.borrow_mut();
            live.count += 1;
            match live.free.pop() {
                Some(i) => i,
                None => {
                    live.wakers.push(None);
                    live.wakers.len() - 1
                }
            }
        };
        let tracked = Tracked {
            future,
            slot,
            executor: Rc::downgrade(self),
        };
        let queue = self.queue.clone();
        let (runnable, task) = async_task::spawn_local(tracked, move |r| queue.schedule(r));
        if let Some(w) = self.live.borrow_mut().wakers.get_mut(slot) {
            *w = Some(runnable.waker());
        }
        runnable.schedule();
        JoinHandle {
            task: Some(task.fallible()),
        }
    }

    /// Makes `future` the one `block_on` runs: the executor polls it
    /// itself, first in each iteration's turn for tasks, whenever its waker
    /// was used — no task cell, no run queue, so a wake from another
    /// thread reaches the poll along the shortest path (as smol's and
    /// tokio's `block_on` poll their future). When it completes or panics
    /// the loop is stopped and the guard reports how it ended.
    pub(crate) fn set_main(
        self: &Rc<Self>,
        future: Pin<Box<dyn Future<Output = ()>>>,
    ) -> MainGuard {
        let flag = Arc::new(MainWake {
            // Polled first by the loop's next iteration.
            woken: AtomicBool::new(true),
            queue: self.queue.clone(),
        });
        let waker = Waker::from(flag.clone());
        let previous = self.main.borrow_mut().replace(Main {
            future,
            flag,
            waker,
        });
        // `block_on` needs the loop by `&mut`, so none can be running.
        debug_assert!(previous.is_none());
        drop(previous);
        self.main_end.borrow_mut().take();
        MainGuard(self.clone())
    }

    /// Polls the `block_on` future if it was woken. Returns 1 if it was
    /// polled.
    #[inline]
    fn run_main(&self) -> usize {
        // Polled in place, under the borrow: nothing a poll can reach
        // touches `main` (`block_on` and `set_main` need the loop by
        // `&mut`, the guard lives in `block_on`'s frame, and `main_woken`
        // only tries the borrow), and moving `Main` out and back cost more
        // than the rest of this function.
        let mut main = self.main.borrow_mut();
        let Some(m) = main.as_mut() else {
            return 0;
        };
        if !m.flag.woken.swap(false, Ordering::AcqRel) {
            return 0;
        }
        let mut cx = Context::from_waker(&m.waker);
        let end = match catch_unwind(AssertUnwindSafe(|| m.future.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => return 1,
            Ok(Poll::Ready(())) => Ok(()),
            Err(panic) => Err(panic),
        };
        // The future is dropped outside the borrow.
        let done = main.take();
        drop(main);
        drop(done);
        *self.main_end.borrow_mut() = Some(end);
        if let Some(r) = self.reactor.upgrade() {
            r.stop();
        }
        1
    }

    /// A turn for tasks, with this executor's loop current
    /// ([`TaskHook::run`]): the `block_on` future if woken, then the tasks
    /// queued when the turn began. Returns how many were polled.
    #[inline]
    fn run_entered(&self) -> usize {
        let main = self.run_main();
        {
            let mut batch = self.batch.borrow_mut();
            // An empty queue needs no lock: a push that this load misses
            // wakes the loop after it (`Queue::schedule`), so the next
            // iteration takes it.
            if batch.is_empty() && self.queue.len.load(Ordering::Acquire) > 0 {
                let mut items = self.queue.lock();
                std::mem::swap(&mut items.runnable, &mut *batch);
                self.queue.len.store(0, Ordering::Release);
            }
        }
        let mut ran = main;
        loop {
            let next = self.batch.borrow_mut().pop_front();
            let Some(runnable) = next else { break };
            runnable.run();
            ran += 1;
        }
        ran
    }

    #[inline]
    fn main_woken(&self) -> bool {
        // Busy only while the future is being polled: a wake meanwhile
        // leaves the flag set, seen by the next look.
        self.main.try_borrow().is_ok_and(|m| {
            m.as_ref()
                .is_some_and(|m| m.flag.woken.load(Ordering::Acquire))
        })
    }

    /// Holds `waker` until the loop has next looked at its descriptors
    /// (see [`yield_now`](crate::rt::yield_now)); the loop does not block
    /// meanwhile.
    pub(crate) fn wake_after_look(&self, waker: &Waker) {
        self.yielded.borrow_mut().push(waker.clone());
        self.any_yielded.set(true);
    }

    /// Tasks alive on this executor (spawned, not finished nor dropped).
    pub(crate) fn live_tasks(&self) -> usize {
        self.live.borrow().count
    }

    fn forget_task(&self, slot: usize) {
        let waker = {
            let mut live = self.live.borrow_mut();
            match live.wakers.get_mut(slot).and_then(Option::take) {
                Some(w) => {
                    live.free.push(slot);
                    live.count -= 1;
                    w
                }
                None => return,
            }
        };
        // Dropped outside the borrow: it may free the task.
        drop(waker);
    }
}

impl TaskHook for Executor {
    #[inline]
    fn pending(&self) -> bool {
        self.queue.len.load(Ordering::Acquire) > 0
            || !self.batch.borrow().is_empty()
            || self.main_woken()
            || self.any_yielded.get()
    }

    fn run(&self, after_look: bool) -> usize {
        let Some(reactor) = self.reactor.upgrade() else {
            return 0;
        };
        if after_look && self.any_yielded.replace(false) {
            // On the loop's thread, in a call: these wakes only queue.
            let yielded = std::mem::take(&mut *self.yielded.borrow_mut());
            for w in yielded {
                w.wake();
            }
        }
        context::within(&reactor, || self.run_entered())
    }

    fn shutdown(&self) {
        let queued = {
            let mut items = self.queue.lock();
            items.closed = true;
            self.queue.len.store(0, Ordering::Release);
            std::mem::take(&mut items.runnable)
        };
        // Dropping a runnable drops its future, here on the loop's thread.
        drop(queued);
        drop(std::mem::take(&mut *self.batch.borrow_mut()));
        self.any_yielded.set(false);
        drop(std::mem::take(&mut *self.yielded.borrow_mut()));
        let main = self.main.borrow_mut().take();
        drop(main);
        let live = std::mem::take(&mut *self.live.borrow_mut());
        for w in live.wakers.into_iter().flatten() {
            // An idle task is scheduled onto the closed queue, which drops it.
            w.wake();
        }
    }

    fn as_any(self: Rc<Self>) -> Rc<dyn Any> {
        self
    }

    #[inline]
    fn set_in_call(&self, in_call: bool) {
        self.queue.in_call.store(in_call, Ordering::Relaxed);
    }
}

/// A task's future, with its panics caught and its place in [`Live`].
struct Tracked<F> {
    future: F,
    slot: usize,
    executor: RcWeak<Executor>,
}

impl<F: Future> Future for Tracked<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `future`: it is never moved out of
        // a `Tracked` (no method hands it out by value or `&mut`, `Drop`
        // does not touch it), and `Tracked` is `Unpin` only if `F` is.
        let future = unsafe { self.map_unchecked_mut(|t| &mut t.future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        if let Some(ex) = self.executor.upgrade() {
            ex.forget_task(self.slot);
        }
    }
}

/// Why a task gave no output: see [`JoinHandle`].
///
/// # Examples
///
/// ```
/// use fdloop::rt::JoinError;
/// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
/// let task = ev.spawn(async { panic!("boom") });
/// let err = ev.block_on(&mut (), task)?.unwrap_err();
/// assert!(err.is_panic());
/// # Ok::<(), fdloop::Error>(())
/// ```
pub enum JoinError {
    /// The task was cancelled (its handle's [`cancel`](JoinHandle::cancel),
    /// or its loop was dropped) before it finished.
    Cancelled,
    /// The task panicked; the payload is what `panic!` was given.
    Panicked(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// Whether the task panicked.
    ///
    /// # Examples
    ///
    /// See [`JoinError`].
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic payload, if the task panicked (for
    /// [`std::panic::resume_unwind`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let task = ev.spawn(async { std::panic::panic_any(7u32) });
    /// let payload = ev.block_on(&mut (), task)?.unwrap_err().into_panic().unwrap();
    /// assert_eq!(payload.downcast_ref::<u32>(), Some(&7));
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            JoinError::Panicked(p) => Some(p),
            JoinError::Cancelled => None,
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task cancelled"),
            JoinError::Panicked(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| p.downcast_ref::<String>().map(String::as_str));
                match msg {
                    Some(m) => write!(f, "task panicked: {m}"),
                    None => f.write_str("task panicked"),
                }
            }
        }
    }
}

impl std::error::Error for JoinError {}

/// Kind `Other`, with the message of the [`Display`](fmt::Display) form
/// (the panic payload itself is dropped: it is not `Sync`).
///
/// # Examples
///
/// ```
/// let e: std::io::Error = fdloop::rt::JoinError::Cancelled.into();
/// assert_eq!(e.to_string(), "task cancelled");
/// ```
impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}

/// A spawned task's handle: a future of its output.
///
/// Resolves to `Ok(output)`, or to a [`JoinError`] if the task panicked
/// (the panic is caught: the loop goes on) or was cancelled. Dropping the
/// handle cancels the task (its future is dropped on the loop's thread, at
/// the loop's next iteration if it is not running); [`detach`](JoinHandle::detach)
/// lets it run on instead. Polling it again after it resolved returns
/// `Poll::Pending`.
///
/// # Examples
///
/// ```
/// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
/// let task = ev.spawn(async { 6 * 7 });
/// assert_eq!(ev.block_on(&mut (), task)?.unwrap(), 42);
/// # Ok::<(), fdloop::Error>(())
/// ```
#[must_use = "dropping a JoinHandle cancels its task: use `detach` to let it run"]
pub struct JoinHandle<T> {
    task: Option<FallibleTask<std::thread::Result<T>>>,
}

impl<T> JoinHandle<T> {
    /// Lets the task run to its end without a handle (its output is
    /// dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let done = Rc::new(Cell::new(false));
    /// let d = done.clone();
    /// ev.spawn(async move { d.set(true) }).detach();
    /// ev.dispatch_pending(&mut ())?;
    /// assert!(done.get());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn detach(mut self) {
        if let Some(t) = self.task.take() {
            t.detach();
        }
    }

    /// Cancels the task: its future is dropped (on the loop's thread, at
    /// once if called there and the task is not running, else by the loop's
    /// next iteration). Same as dropping the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let ran = Rc::new(Cell::new(false));
    /// let r = ran.clone();
    /// ev.spawn(async move { r.set(true) }).cancel();
    /// ev.dispatch_pending(&mut ())?;
    /// assert!(!ran.get());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn cancel(self) {
        drop(self);
    }

    /// Whether the task has finished (with an output, a panic, or
    /// cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let task = ev.spawn(async {});
    /// assert!(!task.is_finished());
    /// ev.dispatch_pending(&mut ())?;
    /// assert!(task.is_finished());
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            return Poll::Pending;
        };
        let out = match Pin::new(task).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => Err(JoinError::Cancelled),
            Poll::Ready(Some(Ok(v))) => Ok(v),
            Poll::Ready(Some(Err(p))) => Err(JoinError::Panicked(p)),
        };
        self.task = None;
        Poll::Ready(out)
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
