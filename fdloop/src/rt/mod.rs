//! Futures on the loop (feature `async`, on by default): an executor,
//! [`Async`] I/O, and fdloop's sources as futures and streams.
//!
//! * **Tasks.** [`EventLoop::spawn`](crate::EventLoop::spawn),
//!   [`LoopHandle::spawn`](crate::LoopHandle::spawn) (from callbacks) and
//!   [`spawn`] (from inside a task) run a future on the loop's thread; it
//!   need not be `Send`. Each gives a [`JoinHandle`], itself a future, that
//!   cancels the task when dropped. [`block_on`] runs a future on a fresh
//!   loop; [`EventLoop::block_on`](crate::EventLoop::block_on) on an
//!   existing one, with its callbacks and sources alongside.
//! * **Wakers** are `Send + Sync`. A wake on the loop's thread during a
//!   call of the loop (`run`, `run_once`, `dispatch_pending`, `block_on`)
//!   costs no system call and the call polls the task; between calls the
//!   first one writes the loop's notifier once, so that an outer poller
//!   sees the loop's descriptor readable. One from another thread goes
//!   through the loop's
//!   sleep-aware wake path, a write to its notifier only when the loop may
//!   be blocked (see [`Remote`](crate::Remote)). A waker used after its loop
//!   is gone does nothing.
//! * **Panics** in a task are caught and reported by its [`JoinHandle`]
//!   ([`JoinError::Panicked`]); the loop goes on.
//! * **Fairness.** Each iteration has two turns for tasks: it polls the
//!   tasks queued when it begins, looks at its descriptors (without
//!   blocking while tasks are queued) and dispatches that batch, then polls
//!   the tasks queued by then — those the batch woke, and those the first
//!   turn's polls woke. Each turn polls only what was queued when it
//!   began, so a task woken by a task's poll (its own included) runs in
//!   the next turn, and the loop looks at its descriptors at least every
//!   second turn: tasks that keep waking each other cannot starve I/O,
//!   timers or callbacks. A task that yields with [`yield_now`] runs only
//!   after the next look.
//!
//! Tasks see their loop through a thread-local context set while they are
//! polled: [`Async::new`], [`sleep`] and [`spawn`] use it, and fail with an
//! [`Error`] outside a task (use the `*_on` forms, which take a
//! [`LoopHandle`], there).
//!
//! # I/O
//!
//! [`Async`]`<T>` drives any descriptor through the loop's own epoll set:
//! `AsyncRead`/`AsyncWrite` for sockets and pipes,
//! `recv_from`/`send_to` for a `UdpSocket`,
//! [`read_with`](Async::read_with)/[`write_with`](Async::write_with) for any
//! other operation, [`Async::<TcpStream>::connect`](Async::<std::net::TcpStream>::connect)
//! and [`Async::<UnixStream>::connect`](Async::<std::os::unix::net::UnixStream>::connect)
//! (which do not block the loop while a handshake is under way), and
//! `accept`/`incoming` for a `TcpListener` or `UnixListener`.
//!
//! # Sources as futures
//!
//! Wrap a source in [`Async`]: `Async<channel::Receiver<T>>` has
//! [`recv`](Async::recv) and is a `Stream` of messages;
//! `Async<Signals>` a stream of signals ([`next_signal`](Async::next_signal));
//! `Async<process::Child>` has [`exit`](Async::exit); `Async<Watch>` a
//! stream of event batches ([`next_events`](Async::next_events)). A bounded
//! channel's sender waits for room with [`AsyncSender::send`]. Timers:
//! [`sleep`], [`sleep_until`], [`interval`] are `Timer` sources of the
//! loop, with its precision; [`timeout`] bounds any future by one.
//!
//! # Interop
//!
//! * **Futures from other crates run unchanged** when they need nothing but
//!   a [`Waker`](std::task::Waker): `futures-util` combinators (`join`, `select`, stream
//!   adapters), runtime-agnostic channels and locks (`async-channel`,
//!   `futures-channel`, `tokio::sync`'s `mpsc`, `oneshot`, `Mutex`,
//!   `Notify`), `async-lock`. fdloop's wakers are `Send + Sync`, so such a
//!   future may be woken from any thread.
//! * **Futures that need another runtime's reactor or timer do not.**
//!   tokio's `net` types (`TcpStream`, `TcpListener`, `UnixStream`),
//!   `tokio::time::{sleep, interval, timeout}`, `tokio::process`,
//!   `tokio::signal` and `tokio::fs` panic ("there is no reactor running")
//!   or never wake when polled outside a tokio runtime. Use instead:
//!   [`Async`]`<std::net::TcpStream>` (and `TcpListener`, `UnixStream`,
//!   `UnixListener`, `UdpSocket`, pipes), [`sleep`]/[`interval`], `Async<process::Child>`,
//!   `Async<signal::Signals>`, and for blocking work (files, name lookup)
//!   a thread, or the `blocking` crate's `unblock` (a runtime-agnostic
//!   thread pool, the one smol uses), whose futures run unchanged. The same
//!   holds for `async-io`'s types on fdloop, and for fdloop's `Async` on
//!   tokio (it needs its fdloop loop to be run).
//! * **fdloop inside tokio** still works the other way round: the loop's
//!   epoll descriptor is readable when it has work, so a tokio task can
//!   await it (`tokio::io::unix::AsyncFd`) and call
//!   [`dispatch_pending`](crate::EventLoop::dispatch_pending); see
//!   `fdloop-bench/examples/nested_in_tokio.rs`. Tasks spawned on that loop
//!   run inside `dispatch_pending`: those spawned or woken during a call
//!   run in it, with no system call; one spawned or woken between calls
//!   (by code of yours on that thread, or by another thread) makes the
//!   descriptor readable with one notifier write, so the tokio task calls
//!   `dispatch_pending` again.
//!
//! ```
//! use futures_util::future::{join, select, Either};
//! use futures_util::StreamExt;
//! use std::time::Duration;
//!
//! let (both, first) = fdloop::rt::block_on(async {
//!     // A futures-util combinator over fdloop timers...
//!     let both = join(
//!         fdloop::rt::sleep(Duration::from_millis(1)),
//!         fdloop::rt::sleep(Duration::from_millis(2)),
//!     )
//!     .await;
//!     // ...and a race between a stream and a timer.
//!     let ticks = fdloop::rt::interval(Duration::from_millis(1)).take(2).count();
//!     let first = match select(Box::pin(ticks), fdloop::rt::sleep(Duration::from_secs(10))).await {
//!         Either::Left((n, _)) => n,
//!         Either::Right(_) => 0,
//!     };
//!     (both.0.is_ok() && both.1.is_ok(), first)
//! })?;
//! assert!(both);
//! assert_eq!(first, 2);
//! # Ok::<(), fdloop::Error>(())
//! ```
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//!
//! let out = fdloop::rt::block_on(async {
//!     let child = fdloop::rt::spawn(async { 20 })?;
//!     fdloop::rt::sleep(Duration::from_millis(1)).await?;
//!     Ok::<_, fdloop::Error>(child.await.unwrap() + 22)
//! })??;
//! assert_eq!(out, 42);
//! # Ok::<(), fdloop::Error>(())
//! ```

mod executor;
mod io;
mod send;
mod streams;
mod time;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub use executor::{JoinError, JoinHandle};
pub use io::{Accept, Async, Readable, UnixAccept, Writable};
pub use send::AsyncSender;
pub use time::{
    interval, interval_on, sleep, sleep_on, sleep_until, timeout, timeout_at, timeout_on, Interval,
    Sleep, Timeout, TimeoutError,
};

use crate::error::{Error, Result};
use crate::event_loop::Reactor;
use crate::{EventLoop, LoopHandle};
use executor::Executor;

pub(crate) mod context {
    //! The loop whose tasks this thread is polling.
    //!
    //! A raw pointer in a `Cell` rather than an `Rc` in a `RefCell`: a
    //! thread-local with no destructor is one load or store, and the
    //! executor sets and restores it around every turn for tasks (with an
    //! `Rc`, that was ≈ 80 instructions per turn: the thread-local's
    //! registration check, the borrow flags, the count and the drop).
    use std::ptr;

    use super::*;

    thread_local! {
        static CURRENT: Cell<*const Rc<dyn Reactor>> = const { Cell::new(ptr::null()) };
    }

    /// Runs `f` with `reactor` as the current loop, then restores the
    /// previous one (or none), unwinding included. Calls nest.
    #[inline]
    pub(crate) fn within<R>(reactor: &Rc<dyn Reactor>, f: impl FnOnce() -> R) -> R {
        let this: *const Rc<dyn Reactor> = reactor;
        let _restore = Restore {
            this,
            prev: CURRENT.replace(this),
        };
        f()
    }

    /// Puts back the previous current loop when [`within`]'s call ends.
    /// Private to this module and only ever a local of `within`, so it is
    /// never leaked and the values it restores nest.
    struct Restore {
        this: *const Rc<dyn Reactor>,
        prev: *const Rc<dyn Reactor>,
    }

    impl Drop for Restore {
        #[inline]
        fn drop(&mut self) {
            debug_assert!(ptr::eq(CURRENT.get(), self.this));
            CURRENT.set(self.prev);
        }
    }

    /// The current loop, or an error naming what needed it.
    pub(crate) fn current(what: &'static str) -> Result<Rc<dyn Reactor>> {
        try_current()
            .ok_or_else(|| Error::io(what, std::io::Error::other("not inside an fdloop task")))
    }

    /// The current loop, if a task of one is being polled (no allocation
    /// when there is none).
    pub(crate) fn try_current() -> Option<Rc<dyn Reactor>> {
        let p = CURRENT.get();
        if p.is_null() {
            return None;
        }
        // SAFETY: only `within` stores a non-null pointer here: the address
        // of the `Rc` it borrows for the whole of its call, which it puts
        // back to the previous value when that call ends, by returning or
        // unwinding (its `Restore` is a local no code can leak). Calls
        // nest, so a non-null value read on this thread belongs to a
        // `within` call still running on this thread's stack, whose `Rc`
        // is alive.
        Some(unsafe { (*p).clone() })
    }
}

/// Spawns `future` on the loop running the current task.
///
/// # Errors
///
/// An [`Error::Io`] (kind `Other`) when called outside a
/// task of an fdloop loop; use [`LoopHandle::spawn`] there.
///
/// # Examples
///
/// ```
/// let sum = fdloop::rt::block_on(async {
///     let a = fdloop::rt::spawn(async { 1 })?;
///     let b = fdloop::rt::spawn(async { 2 })?;
///     Ok::<_, fdloop::Error>(a.await.unwrap() + b.await.unwrap())
/// })??;
/// assert_eq!(sum, 3);
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn spawn<F>(future: F) -> Result<JoinHandle<F::Output>>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let reactor = context::current("spawning a task")?;
    Ok(Executor::of(&reactor).spawn(future))
}

/// Runs `future` to completion on a fresh [`EventLoop`], with tasks it
/// spawns, and returns its output. The loop (its descriptors, and tasks
/// still running) is dropped on return.
///
/// # Errors
///
/// As [`EventLoop::new`] and [`EventLoop::run`].
///
/// # Panics
///
/// If `future` panics, the panic goes on out of `block_on` (tasks it
/// spawned report theirs through their handles).
///
/// # Examples
///
/// ```
/// assert_eq!(fdloop::rt::block_on(async { "done" })?, "done");
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn block_on<F>(future: F) -> Result<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    EventLoop::<()>::new()?.block_on(&mut (), future)
}

/// Gives the loop a turn: the first poll returns `Pending`, the next
/// completes. In a task of an fdloop loop (or its `block_on` future) the
/// task is woken, with no system call, once the loop has looked at its
/// descriptors (a zero-timeout `epoll_wait`) and dispatched what was
/// ready, and the loop does not block meanwhile: a task that computes for
/// long, or retries in a loop, lets I/O, timers, callbacks and the other
/// tasks through each time. Polled by another executor, it wakes itself
/// at once and leaves the order to that executor. (As for every fdloop
/// future, an executor nested inside an fdloop task — a `block_on` of
/// another crate — must not poll it: the loop that would wake it is
/// blocked by that executor.)
///
/// # Examples
///
/// ```
/// let n = fdloop::rt::block_on(async {
///     let mut n = 0;
///     for _ in 0..3 {
///         fdloop::rt::yield_now().await;
///         n += 1;
///     }
///     n
/// })?;
/// assert_eq!(n, 3);
/// # Ok::<(), fdloop::Error>(())
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
///
/// # Examples
///
/// See [`yield_now`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        match context::try_current() {
            // A task of an fdloop loop: woken once the loop has looked.
            Some(reactor) => Executor::of(&reactor).wake_after_look(cx.waker()),
            // Another executor's: it decides what comes next.
            None => cx.waker().wake_by_ref(),
        }
        Poll::Pending
    }
}

impl<S: 'static> LoopHandle<S> {
    /// Spawns `future` as a task on this loop: it is polled on the loop's
    /// thread, first by the loop's current call if spawned during one (by a
    /// callback: after the call's batch), else by its next call. See
    /// [`rt`](crate::rt).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::{Action, EventLoop, Ping};
    /// let mut ev: EventLoop<()> = EventLoop::new()?;
    /// let (ping_handle, ping) = Ping::new()?;
    /// let h = ev.handle();
    /// // From a callback: the task stops the loop.
    /// ev.insert(ping, move |(), _, _| {
    ///     let h2 = h.clone();
    ///     h.spawn(async move { h2.stop() }).detach();
    ///     Action::Remove
    /// })?;
    /// ping_handle.ping()?;
    /// ev.run(&mut ())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        Executor::of(&self.reactor()).spawn(future)
    }

    /// How many tasks spawned on this loop are alive (not finished, not
    /// cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let t = ev.spawn(async {});
    /// assert_eq!(ev.handle().live_tasks(), 1);
    /// ev.block_on(&mut (), t)?.unwrap();
    /// assert_eq!(ev.handle().live_tasks(), 0);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn live_tasks(&self) -> usize {
        let reactor = self.reactor();
        let hook = reactor.task_hook();
        match hook.map(|h| h.as_any().downcast::<Executor>()) {
            Some(Ok(ex)) => ex.live_tasks(),
            _ => 0,
        }
    }
}

impl<S: 'static> EventLoop<S> {
    /// See [`LoopHandle::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let t = ev.spawn(async { 1 + 1 });
    /// assert_eq!(ev.block_on(&mut (), t)?.unwrap(), 2);
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.handle().spawn(future)
    }

    /// Runs the loop — sources, callbacks with `state`, and tasks — until
    /// `future` completes, and returns its output. `future` is polled on
    /// the loop's thread with the same context as spawned tasks (it may
    /// [`spawn`](crate::rt::spawn), sleep, await I/O), but by the loop
    /// itself, first in each iteration's turn for tasks, whenever its waker
    /// was used: it is not one of [`live_tasks`](LoopHandle::live_tasks).
    /// Other tasks keep their place and go on with the next `run`.
    ///
    /// A [`stop`](LoopHandle::stop) request while it runs is used up and
    /// ignored.
    ///
    /// # Errors
    ///
    /// As [`run`](EventLoop::run); `future` is then dropped.
    ///
    /// # Panics
    ///
    /// If `future` panics, the panic goes on out of `block_on` (the loop
    /// stays usable).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let h = ev.handle();
    /// let waited = ev.block_on(&mut (), async move {
    ///     fdloop::rt::sleep_on(&h, Duration::from_millis(2)).await;
    ///     "slept"
    /// })?;
    /// assert_eq!(waited, "slept");
    /// # Ok::<(), fdloop::Error>(())
    /// ```
    pub fn block_on<F>(&mut self, state: &mut S, future: F) -> Result<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        // Polled by the executor itself (`Executor::set_main`), which
        // stops `run` when it ends, panicking included.
        let out = Rc::new(Cell::new(None));
        let slot = out.clone();
        let main = Executor::of(&self.handle().reactor()).set_main(Box::pin(async move {
            slot.set(Some(future.await));
        }));
        loop {
            match main.take_end() {
                None => self.run(state)?,
                Some(Ok(())) => break,
                Some(Err(panic)) => {
                    drop(main);
                    std::panic::resume_unwind(panic)
                }
            }
        }
        drop(main);
        out.take().ok_or_else(|| {
            Error::io(
                "block_on",
                std::io::Error::other("the future ended without an output"),
            )
        })
    }
}
