//! Waking a loop from other threads: [`Remote`], and the "write only when
//! the loop may be asleep" protocol it runs on.
//!
//! # Protocol
//!
//! One atomic `state` per loop holds `AWAKE`, `SLEEPING` or `NOTIFIED`:
//!
//! ```text
//! waker (any thread):                 loop thread, each iteration:
//!   [publish work: a flag, a message]   L1 state.swap(AWAKE)       after waking
//!   W1 prev = state.swap(NOTIFIED)      L2 [look at all work]
//!   W2 if prev == SLEEPING:             L3 prev = state.swap(SLEEPING)
//!        write the notifier fd             if prev == NOTIFIED: don't block
//!                                       L4 epoll_wait (the notifier fd is in
//!                                          the set: see below)
//! ```
//!
//! The notifier ([`LoopFd`]) is an eventfd registered edge-triggered and
//! never read: each write is one event, which the `epoll_wait` that
//! returns it uses up, so the loop makes no `read` for a wake (the waker's
//! `write` is the only system call a wake adds). The pipe fallback is
//! level-triggered and drained after the batch that saw it. For the
//! protocol the two are alike: "the fd is readable" below means "an event
//! is pending for the next `epoll_wait`".
//!
//! All swaps are `AcqRel` read-modify-writes on the same atomic, so they are
//! totally ordered, and each one reads the value of the one just before it.
//!
//! * **A waker makes a system call only if the loop may be blocked**: W1
//!   reads `SLEEPING` only when L3 was the last swap before it. While the
//!   loop is awake (between L1 and L3), a burst of wakes costs one atomic
//!   swap each and no syscall.
//! * **No lost wake-up.** Take a waker whose W1 is ordered before the loop's
//!   L3: L3 reads `NOTIFIED` (only the loop writes the other values, and it
//!   wrote none in between), acquires W1 — so the work published before W1
//!   is visible — and does not block. If instead W1 comes after L3, W1
//!   reads `SLEEPING` and writes the fd, and the epoll_wait at L4 returns.
//!   Either way the loop sees the work without waiting for anything else.
//! * **One write per sleep, at most**: only the first swap after L3 can read
//!   `SLEEPING`; the wakers after it read `NOTIFIED`. (The fd is a
//!   [`Notifier`], which coalesces on its own as well.)
//!
//! **Parking.** A loop with no source at all (only the notifier is in its
//! epoll set: see `Driver::may_park`) has nothing but wakes to wait for,
//! so it sleeps on a futex on `state` instead of in `epoll_wait`, and its
//! L3 stores `PARKED` instead of `SLEEPING` (by a compare-exchange, so a
//! wake already there is never overwritten: the loop then takes L3's
//! path). W2 for a waker that reads `PARKED` is `FUTEX_WAKE` instead of
//! the write. The kernel compares the word with `PARKED` under the lock
//! that `FUTEX_WAKE` takes, so a wake after L3 either finds the loop
//! waiting and wakes it, or changed the word first and the wait returns at
//! once (`EAGAIN`): the no-lost-wake-up argument above holds with "the fd
//! is readable" read as "the word is not `PARKED`". The loop reads the
//! word (`Acquire`) after each return: `NOTIFIED` means woken, with the
//! work visible. A park that ends by its timeout moves the word back from
//! `PARKED` to `SLEEPING` (compare-exchange; failing it means a wake came
//! and is used up here), so later wakes write the notifier as after an
//! `epoll_wait` timeout. Loom models: `loom_parked_loop_is_always_woken`,
//! `loom_park_that_times_out_leaves_wakes_to_the_notifier`.
//!
//! L1 is optional. `run` does it after every wait, so wakes during its
//! callbacks cost nothing until its next L3. `run_once` skips it after its
//! wait: the loop stays "asleep" while it dispatches and returns, and a wake
//! meanwhile writes the fd (once per sleep, as above) so the next call or an
//! outer loop sees it. The arguments above do not use L1: a loop that did
//! not block learned of the wake from L3, which acquires it; one that
//! blocked was woken by the write, and the work was published before W1,
//! which precedes it.
//!
//! The loom model at the end of this file drives this code — the
//! [`WakeState`] functions the loop and [`Remote`] call — with and without
//! L1, and checks that the model fails when the loop skips L3's check, when
//! the waker's ordering is weakened, or when L3 is relaxed while the loop
//! relies on it alone.
//!
//! # Layout
//!
//! [`WakeState`] is the protocol's state machine over `F`, the descriptor a
//! wake writes: the loop's [`Notifier`] in the library, a stand-in in the
//! model (anything that is [`WakeFd`]). Under `cfg(loom)` only, it also
//! carries the orderings of W1 and L3, so the model can weaken them; the
//! library always uses `AcqRel`.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::notify::Notifier;
use crate::sync::{AtomicBool, Ordering};

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, AtomicU64};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, AtomicU64};

pub(crate) const AWAKE: u32 = 0;
pub(crate) const SLEEPING: u32 = 1;
pub(crate) const NOTIFIED: u32 = 2;
/// Asleep on a futex on `state` itself, not in `epoll_wait`: see "Parking".
pub(crate) const PARKED: u32 = 3;

/// What a wake writes when the loop may be asleep: the loop's [`Notifier`]
/// (in the loom model, a stand-in for it).
pub(crate) trait WakeFd {
    /// Makes the descriptor readable. Returns whether a write was made.
    fn notify(&self) -> io::Result<bool>;

    /// Wakes the loop thread parked on `state` (`FUTEX_WAKE`). Returns
    /// whether a system call was made.
    fn unpark(&self, state: &AtomicU32) -> io::Result<bool>;
}

/// The loop's wake-up descriptor as the protocol writes it: a [`Notifier`]
/// in the loop's epoll set. An eventfd is registered edge-triggered and
/// never drained: each write the protocol makes (at most one per sleep) is
/// one event, which the loop's `epoll_wait` consumes, so a cross-thread
/// wake costs the loop no `read`. A pipe (the fallback) is level-triggered
/// and drained after the batch that saw it, through the notifier's own
/// coalescing, as it would fill otherwise.
pub(crate) struct LoopFd {
    notifier: Notifier,
    edge: bool,
}

impl LoopFd {
    pub(crate) fn new(notifier: Notifier) -> LoopFd {
        let edge = !notifier.backend().is_pipe();
        LoopFd { notifier, edge }
    }

    /// The registration's epoll flags.
    pub(crate) fn epoll_flags(&self) -> rustix::event::epoll::EventFlags {
        use rustix::event::epoll::EventFlags;
        if self.edge {
            EventFlags::IN | EventFlags::ET
        } else {
            EventFlags::IN
        }
    }

    /// After a batch that saw it: drains a pipe; an eventfd needs nothing.
    #[inline]
    pub(crate) fn after_event(&self) -> io::Result<()> {
        if self.edge {
            return Ok(());
        }
        self.notifier.drain().map(drop)
    }

    pub(crate) fn writes(&self) -> u64 {
        self.notifier.writes()
    }

    pub(crate) fn backend(&self) -> crate::notify::Backend {
        self.notifier.backend()
    }
}

impl std::os::fd::AsFd for LoopFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.notifier.as_fd()
    }
}

impl WakeFd for LoopFd {
    #[inline]
    fn notify(&self) -> io::Result<bool> {
        if self.edge {
            self.notifier.raise_edge().map(|()| true)
        } else {
            self.notifier.notify()
        }
    }

    #[cfg(not(loom))]
    fn unpark(&self, state: &AtomicU32) -> io::Result<bool> {
        use rustix::thread::futex;
        futex::wake(state, futex::Flags::PRIVATE, 1)
            .map(|_| true)
            .map_err(io::Error::from)
    }

    #[cfg(loom)]
    fn unpark(&self, _state: &AtomicU32) -> io::Result<bool> {
        unreachable!("the loom models use their own stand-in")
    }
}

/// The memory orderings of W1 and L3: `AcqRel` both. Only the loom model
/// uses others, to check that it catches them.
#[derive(Clone, Copy, Debug)]
struct Orderings {
    wake: Ordering,
    sleep: Ordering,
}

impl Orderings {
    const CORRECT: Orderings = Orderings {
        wake: Ordering::AcqRel,
        sleep: Ordering::AcqRel,
    };
}

/// State shared between a loop and every [`Remote`] to it: the protocol's
/// `state`, the stop request, and the descriptor a wake writes.
pub(crate) struct WakeState<F = LoopFd> {
    state: AtomicU32,
    /// Wakes that unparked the loop with `FUTEX_WAKE` (system calls, like
    /// the notifier's writes; see [`Remote::writes`]).
    unparks: AtomicU64,
    pub(crate) stop: AtomicBool,
    pub(crate) notifier: F,
    /// The loom model's knob (see [`Orderings`]).
    #[cfg(loom)]
    orderings: Orderings,
}

impl<F> WakeState<F> {
    pub(crate) fn new(notifier: F) -> WakeState<F> {
        WakeState {
            // Not running yet: nobody watches the fd set, so the first
            // wake must write.
            state: AtomicU32::new(SLEEPING),
            unparks: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            notifier,
            #[cfg(loom)]
            orderings: Orderings::CORRECT,
        }
    }

    #[cfg(not(loom))]
    #[inline(always)]
    fn orderings(&self) -> Orderings {
        Orderings::CORRECT
    }

    #[cfg(loom)]
    #[inline(always)]
    fn orderings(&self) -> Orderings {
        self.orderings
    }
}

impl<F: WakeFd> WakeState<F> {
    /// W1–W2. Returns whether a system call was made.
    #[inline]
    pub(crate) fn wake(&self) -> io::Result<bool> {
        match self.state.swap(NOTIFIED, self.orderings().wake) {
            SLEEPING => self.notifier.notify(),
            PARKED => self.unpark(),
            _ => Ok(false),
        }
    }

    /// W2 for a parked loop.
    #[cold]
    fn unpark(&self) -> io::Result<bool> {
        self.unparks.fetch_add(1, Ordering::Relaxed);
        self.notifier.unpark(&self.state)
    }

    /// Wakes that unparked the loop, over its life.
    pub(crate) fn unparks(&self) -> u64 {
        self.unparks.load(Ordering::Relaxed)
    }

    /// L3 for a loop about to park instead of entering `epoll_wait`:
    /// returns whether it may (no wake since L1).
    ///
    /// Unlike L3's swap, it never leaves `PARKED` behind when it finds a
    /// wake (a later wake would then unpark nobody instead of writing the
    /// notifier): only the loop writes the other values, so a failed
    /// exchange means `NOTIFIED`, and the loop then takes L3's path.
    #[inline]
    pub(crate) fn prepare_park(&self) -> bool {
        let cur = self.state.load(Ordering::Relaxed);
        if cur != NOTIFIED
            && self
                .state
                .compare_exchange(cur, PARKED, self.orderings().sleep, Ordering::Relaxed)
                .is_ok()
        {
            return true;
        }
        let may_block = self.prepare_sleep();
        debug_assert!(!may_block, "only a wake changes the state under the loop");
        false
    }

    /// Whether a parked loop is still parked. `false` once a wake came (its
    /// W1 acquired: the work it published is visible).
    #[inline]
    pub(crate) fn still_parked(&self) -> bool {
        self.state.load(Ordering::Acquire) == PARKED
    }

    /// A parked loop gives up (timeout): back to `SLEEPING`, so that later
    /// wakes write the notifier as after an `epoll_wait` timeout. Returns
    /// `false` if a wake came first (acquired, as in
    /// [`still_parked`](WakeState::still_parked)).
    #[inline]
    pub(crate) fn unpark_self(&self) -> bool {
        self.state
            .compare_exchange(PARKED, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// [`Remote::stop`]: publishes the stop request, then wakes (W1–W2),
    /// so a loop that acquires the wake sees the request.
    #[inline]
    pub(crate) fn request_stop(&self) -> io::Result<bool> {
        self.stop.store(true, Ordering::Release);
        self.wake()
    }

    /// L3: returns whether the loop may block (no wake since L1).
    #[inline]
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.state.swap(SLEEPING, self.orderings().sleep) != NOTIFIED
    }

    /// L1.
    #[inline]
    pub(crate) fn awake(&self) {
        self.state.swap(AWAKE, Ordering::AcqRel);
    }

    /// Takes a pending stop request.
    #[inline]
    pub(crate) fn take_stop(&self) -> bool {
        self.stop.load(Ordering::Acquire) && self.stop.swap(false, Ordering::AcqRel)
    }
}

#[cfg(not(loom))]
impl WakeState {
    /// The parked loop's sleep: `FUTEX_WAIT` on `state` while it reads
    /// `PARKED`, for `timeout` at most (the futex's own relative timeout,
    /// on `CLOCK_MONOTONIC`). Returns on a wake, at the timeout, on a
    /// signal (`EINTR`), at once if a wake came before the call (`EAGAIN`),
    /// or spuriously; the caller looks at
    /// [`still_parked`](WakeState::still_parked) and its own deadline.
    pub(crate) fn park_wait(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        use rustix::io::Errno;
        use rustix::thread::futex;
        let ts = timeout.map(|t| futex::Timespec {
            tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: t.subsec_nanos().into(),
        });
        match futex::wait(&self.state, futex::Flags::PRIVATE, PARKED, ts.as_ref()) {
            Ok(()) => Ok(()),
            Err(Errno::AGAIN | Errno::TIMEDOUT | Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(loom)]
impl WakeState {
    /// Under loom the loop itself never runs (the models drive the
    /// protocol functions): there is no futex to wait on.
    pub(crate) fn park_wait(&self, _timeout: Option<std::time::Duration>) -> io::Result<()> {
        unreachable!("the loom models do not run the loop")
    }
}

/// A handle that wakes or stops an [`EventLoop`](crate::EventLoop) from any
/// thread. `Send + Sync + Clone`; get one from
/// [`EventLoop::remote`](crate::EventLoop::remote).
///
/// Wakes are coalesced: the loop's notifier is written at most once per
/// sleep, by the first call after the loop last prepared to block; every
/// other call costs one atomic swap. Inside [`run`](crate::EventLoop::run)
/// the loop counts as awake between its waits, so wakes from its callbacks
/// or from other threads meanwhile make no system call (the next iteration
/// sees them before it would block). Between `run_once` calls, and while
/// `run_once` dispatches what its wait returned, it counts as asleep: the
/// first wake writes, so the loop's epoll fd turns readable for an outer
/// loop and the next `run_once` returns at once.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
/// let remote = ev.remote();
/// let t = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(10));
///     remote.stop()
/// });
/// ev.run(&mut ())?; // returns once stopped
/// t.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Remote {
    pub(crate) shared: Arc<WakeState>,
}

impl Remote {
    /// Makes the loop's current or next wait return at once (the call may
    /// dispatch nothing); the wake is used up by that wait. A wake made
    /// while a `run_once` dispatches, after its wait, ends the next call's
    /// wait instead (see [`EventLoop::run_once`](crate::EventLoop::run_once)).
    /// Never blocks.
    ///
    /// # Errors
    ///
    /// Only if writing the loop's notifier fails with something other than
    /// `EAGAIN`/`EINTR` (which are handled); see [`Notifier::notify`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// ev.remote().wake()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wake(&self) -> io::Result<()> {
        self.shared.wake().map(drop)
    }

    /// Asks [`EventLoop::run`](crate::EventLoop::run) to return after the
    /// iteration in progress (or at once if it is blocked); outside `run`,
    /// makes the current or next `run_once` return without blocking. The
    /// request is used up by the call it ends. Never blocks.
    ///
    /// # Errors
    ///
    /// As for [`wake`](Remote::wake).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// ev.remote().stop()?;
    /// ev.run(&mut ())?; // returns immediately: the stop was already requested
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&self) -> io::Result<()> {
        self.shared.request_stop().map(drop)
    }

    /// How many system calls wakes made, over the loop's life: writes to
    /// the loop's notifier, and `FUTEX_WAKE`s of a loop parked because it
    /// holds no source (see [`EventLoop`](crate::EventLoop)); at most one
    /// per sleep either way. For statistics and tests.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// for _ in 0..100 { ev.remote().wake()?; }
    /// assert_eq!(ev.remote().writes(), 1); // coalesced: one write for 100 wakes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writes(&self) -> u64 {
        self.shared.notifier.writes() + self.shared.unparks()
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("backend", &self.shared.notifier.backend())
            .finish()
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Run with:
    //! `RUSTFLAGS="--cfg loom" cargo test -p fdloop --lib --release loom`
    //!
    //! The models drive the real [`WakeState`] over a stand-in for the
    //! notifier: a mutex-protected counter of writes (the kernel locks the
    //! eventfd, so a write and a later look at it are ordered and
    //! synchronise). The loop's blocking wait is "wait for the waker to
    //! finish, then the counter must be non-zero": a loop that blocked with
    //! no write coming has lost a wake-up. Work is a relaxed atomic, so
    //! visibility must come from the protocol.
    //!
    //! Broken variants of how the protocol is used (ignoring L3's answer,
    //! publishing the stop flag late) are written out here; broken variants
    //! inside it (weaker orderings for W1 and L3) go through the
    //! `orderings` knob, which exists only under `cfg(loom)`.
    use super::*;
    use crate::sync::Ordering::{Relaxed, Release};
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    /// The notifier's stand-in: how many writes it holds.
    struct Fd(Mutex<u64>);

    impl WakeFd for Fd {
        fn notify(&self) -> io::Result<bool> {
            *self.0.lock().unwrap() += 1;
            Ok(true)
        }

        fn unpark(&self, _state: &AtomicU32) -> io::Result<bool> {
            // `FUTEX_WAKE`: the models below look at what a futex wait
            // would do (return unless the word still reads `PARKED`).
            Ok(true)
        }
    }

    impl Fd {
        fn readable(&self) -> bool {
            *self.0.lock().unwrap() > 0
        }
    }

    /// A loop's wake state with the given orderings, marked awake (L1): the
    /// loop is about to look for work.
    fn awake_loop(orderings: Orderings) -> Arc<WakeState<Fd>> {
        let mut ws = WakeState::new(Fd(Mutex::new(0)));
        ws.orderings = orderings;
        ws.awake();
        Arc::new(ws)
    }

    /// Runs a model on a deliberately broken variant: it must fail.
    fn must_fail<V: Copy + std::fmt::Debug + std::panic::UnwindSafe>(check: fn(V), v: V) {
        let r = std::panic::catch_unwind(move || check(v));
        assert!(r.is_err(), "loom did not catch the broken protocol {v:?}");
    }

    #[derive(Clone, Copy, Debug)]
    struct Variant {
        orderings: Orderings,
        /// The loop heeds L3's answer (false: it blocks even when L3 read
        /// `NOTIFIED`).
        check_before_sleep: bool,
        /// L1 after the wait (`run`); `run_once` skips it.
        awake_after_wait: bool,
    }

    const CORRECT: Variant = Variant {
        orderings: Orderings::CORRECT,
        check_before_sleep: true,
        awake_after_wait: true,
    };

    /// The protocol as `run_once` runs it: no L1 after the wait.
    const CORRECT_WITHOUT_L1: Variant = Variant {
        awake_after_wait: false,
        ..CORRECT
    };

    /// A waker publishes work and wakes; the loop looks for work and, if it
    /// finds none, prepares to sleep.
    fn check(v: Variant) {
        loom::model(move || {
            let ws = awake_loop(v.orderings);
            let work = Arc::new(AtomicUsize::new(0));
            let (ws2, w2) = (ws.clone(), work.clone());
            let waker = thread::spawn(move || {
                w2.store(1, Relaxed);
                ws2.wake().unwrap();
            });
            let mut seen = work.load(Relaxed);
            if seen == 0 {
                let may_block = ws.prepare_sleep() || !v.check_before_sleep;
                if may_block {
                    // Blocking: we rely on the fd. Wait for the waker to
                    // finish, then the fd must be readable.
                    waker.join().unwrap();
                    assert!(
                        ws.notifier.readable(),
                        "loop blocked and nobody wrote the fd: lost wake-up"
                    );
                    if v.awake_after_wait {
                        ws.awake();
                    }
                    seen = work.load(Relaxed);
                    assert_eq!(seen, 1, "woken but the work is not visible");
                    return;
                }
                if v.awake_after_wait {
                    ws.awake();
                }
                seen = work.load(Relaxed);
                assert_eq!(seen, 1, "told not to sleep but the work is not visible");
            }
            waker.join().unwrap();
        });
    }

    #[test]
    fn loom_remote_wake_protocol_is_correct() {
        check(CORRECT);
    }

    #[test]
    fn loom_remote_wake_protocol_is_correct_without_l1_after_the_wait() {
        check(CORRECT_WITHOUT_L1);
    }

    #[test]
    fn loom_catches_sleep_without_check() {
        must_fail(
            check,
            Variant {
                check_before_sleep: false,
                ..CORRECT
            },
        );
    }

    #[test]
    fn loom_catches_relaxed_wake() {
        must_fail(
            check,
            Variant {
                orderings: Orderings {
                    wake: Relaxed,
                    ..Orderings::CORRECT
                },
                ..CORRECT
            },
        );
    }

    // A relaxed L3 is not a bug while L1 follows it: the L1 swap (AcqRel)
    // still acquires the waker's release through the release sequence
    // before any work is looked at (the model confirms it: the variant
    // passes). Without L1 (`run_once`), L3 is the only acquire, and
    // relaxing it must fail:
    #[test]
    fn loom_relaxed_sleep_with_l1_is_still_correct() {
        check(Variant {
            orderings: Orderings {
                sleep: Relaxed,
                ..Orderings::CORRECT
            },
            ..CORRECT
        });
    }

    #[test]
    fn loom_catches_relaxed_sleep_without_l1() {
        must_fail(
            check,
            Variant {
                orderings: Orderings {
                    sleep: Relaxed,
                    ..Orderings::CORRECT
                },
                ..CORRECT_WITHOUT_L1
            },
        );
    }

    #[test]
    fn loom_catches_sleep_without_check_without_l1() {
        must_fail(
            check,
            Variant {
                check_before_sleep: false,
                ..CORRECT_WITHOUT_L1
            },
        );
    }

    // --- Parking -------------------------------------------------------------

    /// A loop with no source parks on the state word instead of entering
    /// epoll. A futex wait sleeps only while the word reads `PARKED` (the
    /// kernel checks it under the lock `FUTEX_WAKE` takes), so the loop
    /// blocks for good only if the word still reads `PARKED` once the waker
    /// is done. `timeout`: the park ends by its timeout instead, and the
    /// loop leaves `PARKED` (`unpark_self`); a wake after that must write
    /// the notifier, as after an `epoll_wait` timeout.
    fn check_park(timeout: bool) {
        loom::model(move || {
            let ws = awake_loop(Orderings::CORRECT);
            let work = Arc::new(AtomicUsize::new(0));
            let (ws2, w2) = (ws.clone(), work.clone());
            let waker = thread::spawn(move || {
                w2.store(1, Relaxed);
                ws2.wake().unwrap();
            });
            if work.load(Relaxed) == 1 {
                waker.join().unwrap();
                return;
            }
            if !ws.prepare_park() {
                // Told not to sleep: the wake is acquired.
                assert_eq!(work.load(Relaxed), 1, "not parked, work not visible");
                waker.join().unwrap();
                return;
            }
            if timeout {
                if !ws.unpark_self() {
                    assert_eq!(work.load(Relaxed), 1, "unparked, work not visible");
                    waker.join().unwrap();
                    return;
                }
                waker.join().unwrap();
                assert!(
                    ws.notifier.readable() || work.load(Relaxed) == 1,
                    "a wake after the park timed out neither wrote nor was seen"
                );
                return;
            }
            waker.join().unwrap();
            assert!(!ws.still_parked(), "parked and nobody changed the word");
            assert_eq!(work.load(Relaxed), 1, "unparked, work not visible");
        });
    }

    #[test]
    fn loom_parked_loop_is_always_woken() {
        check_park(false);
    }

    #[test]
    fn loom_park_that_times_out_leaves_wakes_to_the_notifier() {
        check_park(true);
    }

    // --- Remote::stop ------------------------------------------------------

    /// How the remote thread asks for a stop.
    #[derive(Clone, Copy, Debug)]
    enum Stopper {
        /// As [`Remote::stop`] does: [`WakeState::request_stop`].
        Real,
        /// Broken: publishes the stop flag after waking instead of before.
        FlagAfterWake,
        /// Publishes the flag with a relaxed store (not a bug: see below).
        RelaxedFlag,
    }

    /// `run` checks the stop flag, then prepares to sleep; a remote thread
    /// stops it. A loop that blocks must be woken, and after waking must see
    /// the stop (or it would sleep again, forever).
    fn check_stop(stopper: Stopper) {
        loom::model(move || {
            let ws = awake_loop(Orderings::CORRECT);
            let ws2 = ws.clone();
            let mut remote = Some(thread::spawn(move || match stopper {
                Stopper::Real => {
                    ws2.request_stop().unwrap();
                }
                Stopper::FlagAfterWake => {
                    ws2.wake().unwrap();
                    ws2.stop.store(true, Release);
                }
                Stopper::RelaxedFlag => {
                    ws2.stop.store(true, Relaxed);
                    ws2.wake().unwrap();
                }
            }));
            let mut join = || {
                if let Some(h) = remote.take() {
                    h.join().unwrap();
                }
            };
            // One iteration of `run`.
            if ws.take_stop() {
                join();
                return;
            }
            if ws.prepare_sleep() {
                join();
                assert!(ws.notifier.readable(), "blocked with no wake-up coming");
            }
            ws.awake();
            // Woken (or told not to sleep): this check must see the stop.
            let stopped = ws.take_stop();
            join();
            assert!(stopped, "woken by stop() but the stop flag is not visible");
        });
    }

    #[test]
    fn loom_remote_stop_is_seen() {
        check_stop(Stopper::Real);
    }

    #[test]
    fn loom_catches_stop_flag_published_after_wake() {
        must_fail(check_stop, Stopper::FlagAfterWake);
    }

    // A relaxed store of the stop flag is not a bug on its own: it is
    // sequenced before the waker's AcqRel swap of `state`, which the loop
    // acquires before it looks at the flag. (The model confirms it: the
    // variant passes.) `Remote::stop` uses Release anyway, for readers who
    // look at the flag without going through `state`.

    #[test]
    fn loom_relaxed_stop_flag_is_still_seen() {
        check_stop(Stopper::RelaxedFlag);
    }
}
