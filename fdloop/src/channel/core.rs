//! The state behind a channel and the wake protocol that guards it.
//!
//! # Why a lock
//!
//! Every sender takes one uncontended-in-practice mutex around a
//! `VecDeque::push_back` (two atomic read-modify-writes: lock and unlock —
//! the same count as a lock-free list's tail CAS plus slot-state update). The
//! receiver never takes the lock per message: it swaps the whole queue into
//! a private buffer once per batch, so the consumer side costs two atomics
//! per *batch*. The lock also makes the wake protocol below a plain critical
//! section, with no store-load ordering subtleties. The benchmark
//! (`fdloop-bench`, BENCHMARKS.md) compares the result with crossbeam's
//! lock-free list. `std::sync::Mutex` spins only briefly before sleeping on
//! a futex, so contended senders do not burn a core.
//!
//! # Wake protocol
//!
//! State under the lock: the queue, `rx_sleeping`, `disconnected`. The
//! receiver's descriptor is a [`Notifier`](crate::Notifier).
//!
//! ```text
//! send:                               receiver finds nothing (try_recv → Empty):
//!   S1 lock                             R1 drain the notifier (fd → not readable)
//!   S2 push; wake = rx_sleeping         R2 lock
//!      rx_sleeping = false              R3 if queue empty: rx_sleeping = true
//!   S3 unlock                              else: take the queue (stay awake)
//!   S4 if wake: notify (write the fd)   R4 unlock
//! ```
//!
//! * **A send makes a system call only if the receiver is asleep**
//!   (`rx_sleeping`), and only the first send after the receiver fell asleep
//!   (S2 clears the flag). While the receiver is busy, sends cost the lock.
//! * **No lost wake-up.** S2 and R3 are in critical sections of one lock, so
//!   one comes first. If S2 is first, R3 sees the message and the receiver
//!   stays awake. If R3 is first, S2 sees `rx_sleeping` and S4 writes the fd;
//!   that write comes after R1 (R1 precedes R3 precedes S2 precedes S4), so
//!   the drain cannot swallow it.
//! * **Order of R1 and R3 matters**: draining *after* setting `rx_sleeping`
//!   could eat the write of a send that ran in between, leaving the receiver
//!   asleep over a non-empty queue. The loom model checks this, and that the
//!   model fails when R1 is moved after R3 or when R3 skips its emptiness
//!   check. (There is no memory ordering to weaken: the mutex supplies
//!   acquire/release; the steps are what can be got wrong.)
//! * **Readiness.** While the receiver is awake (from its wake-up until a
//!   `try_recv` returns `Empty`) the fd stays readable; a receiver that takes
//!   messages out in the window between R1 and R3 re-notifies itself, so the
//!   fd is readable whenever messages wait and the receiver is not between
//!   R1 and R4. Once disconnected, the fd stays readable for good.
//!
//! Disconnection: the last sender sets `disconnected` under the lock and
//! wakes a sleeping receiver exactly like a send does.
//!
//! # Bounded channels
//!
//! `len` counts messages sent and not yet handed out by the receiver. The
//! receiver returns capacity (`len -= delivered`) each time it takes the
//! lock — at every refill and before it sleeps — so capacity comes back
//! per batch, not per message. A sender that finds the channel full
//! registers (`tx_waiters` for blocking senders, `tx_want` for a
//! [`SendReady`](super::SendReady) source) and sleeps on a second notifier;
//! the receiver writes it when it returns capacity and someone is
//! registered. A sender that finds the channel full drains that notifier
//! first (under the lock), so it is readable only while capacity may be
//! available.

use std::collections::VecDeque;

/// What [`Core::push`] decided.
pub(crate) enum Push<T> {
    /// Queued; `wake_rx` says whether the receiver must be notified.
    Queued { wake_rx: bool },
    /// No room (bounded); the message comes back.
    Full(T),
    /// The receiver is gone; the message comes back.
    NoReceiver(T),
}

/// Everything behind a channel's lock.
pub(crate) struct Core<T> {
    pub queue: VecDeque<T>,
    /// Messages sent and not yet handed out by the receiver.
    pub len: usize,
    pub cap: usize,
    pub rx_sleeping: bool,
    pub disconnected: bool,
    pub rx_gone: bool,
    /// Blocking senders waiting for capacity.
    pub tx_waiters: usize,
    /// A `SendReady` source wants to hear when capacity frees up.
    pub tx_want: bool,
    /// The send-side notifier has been written and not drained.
    pub tx_signaled: bool,
}

impl<T> Core<T> {
    pub(crate) fn new(cap: usize) -> Core<T> {
        Core {
            queue: VecDeque::new(),
            len: 0,
            cap,
            // The receiver starts asleep: the first send must make its fd
            // readable.
            rx_sleeping: true,
            disconnected: false,
            rx_gone: false,
            tx_waiters: 0,
            tx_want: false,
            tx_signaled: false,
        }
    }

    /// S2.
    #[inline]
    pub(crate) fn push(&mut self, msg: T) -> Push<T> {
        if self.rx_gone {
            return Push::NoReceiver(msg);
        }
        if self.len >= self.cap {
            return Push::Full(msg);
        }
        self.queue.push_back(msg);
        self.len += 1;
        let wake_rx = std::mem::replace(&mut self.rx_sleeping, false);
        Push::Queued { wake_rx }
    }

    /// The last sender left. Returns whether the receiver must be notified.
    pub(crate) fn disconnect(&mut self) -> bool {
        self.disconnected = true;
        std::mem::replace(&mut self.rx_sleeping, false)
    }

    /// Receiver: gives back the capacity of `delivered` messages, then moves
    /// the queue into `local` (which must be empty). Returns whether the
    /// send-side notifier must be written.
    #[inline]
    pub(crate) fn refill(&mut self, local: &mut VecDeque<T>, delivered: usize) -> bool {
        let wake_tx = self.give_back(delivered);
        std::mem::swap(&mut self.queue, local);
        wake_tx
    }

    /// R3 (with the refill of `local` when the queue is not empty). Returns
    /// (went to sleep, wake the send side).
    pub(crate) fn try_sleep(&mut self, local: &mut VecDeque<T>, delivered: usize) -> (bool, bool) {
        let wake_tx = self.give_back(delivered);
        if self.queue.is_empty() && !self.disconnected {
            self.rx_sleeping = true;
            return (true, wake_tx);
        }
        std::mem::swap(&mut self.queue, local);
        (false, wake_tx)
    }

    fn give_back(&mut self, delivered: usize) -> bool {
        self.len -= delivered.min(self.len);
        delivered > 0 && self.len < self.cap && self.signal_tx()
    }

    /// Capacity came back, or the receiver is gone: if a sender waits for
    /// room and the send-side notifier is not signalled yet, marks it
    /// signalled. Returns whether the caller must write it (after
    /// unlocking).
    #[inline]
    pub(crate) fn signal_tx(&mut self) -> bool {
        if (self.tx_waiters > 0 || self.tx_want) && !self.tx_signaled {
            self.tx_signaled = true;
            return true;
        }
        false
    }

    /// A sender found the channel full and is about to wait for room, or a
    /// [`SendReady`](super::SendReady) source is about to fire: consumes a
    /// send-side signal that is no longer news, under the lock, so that the
    /// notifier turns readable again only when capacity comes back after
    /// this point. `drain` reads the notifier; the flag stays set if it
    /// fails.
    #[inline]
    pub(crate) fn consume_tx_signal<E>(
        &mut self,
        drain: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        if self.tx_signaled {
            drain()?;
            self.tx_signaled = false;
        }
        Ok(())
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! `RUSTFLAGS="--cfg loom" cargo test -p fdloop --lib --release loom`
    //!
    //! One sender sends a message while the receiver, having found nothing,
    //! goes to sleep. The receiver's fd is a mutex-protected flag. At the
    //! end, a receiver that went to sleep must find its fd readable (or it
    //! would sleep forever with a message queued).
    use super::*;
    use loom::sync::{Arc, Mutex};
    use loom::thread;
    use std::convert::Infallible;

    #[derive(Clone, Copy, Debug)]
    struct Variant {
        drain_after_sleep: bool,
        skip_empty_check: bool,
    }

    const CORRECT: Variant = Variant {
        drain_after_sleep: false,
        skip_empty_check: false,
    };

    fn check(v: Variant) {
        loom::model(move || {
            let core = Arc::new(Mutex::new(Core::<u32>::new(usize::MAX)));
            // Receiver awake at first (it is about to look and find nothing).
            core.lock().unwrap().rx_sleeping = false;
            let fd = Arc::new(Mutex::new(false));
            let (c2, f2) = (core.clone(), fd.clone());
            let sender = thread::spawn(move || {
                let wake = match c2.lock().unwrap().push(7) {
                    Push::Queued { wake_rx } => wake_rx,
                    _ => false,
                };
                if wake {
                    *f2.lock().unwrap() = true;
                }
            });
            let mut local = VecDeque::new();
            let drain = |fd: &Mutex<bool>| *fd.lock().unwrap() = false;
            if !v.drain_after_sleep {
                drain(&fd);
            }
            let slept = {
                let mut c = core.lock().unwrap();
                if v.skip_empty_check {
                    c.rx_sleeping = true;
                    true
                } else {
                    c.try_sleep(&mut local, 0).0
                }
            };
            if v.drain_after_sleep {
                drain(&fd);
            }
            sender.join().unwrap();
            if slept {
                let readable = *fd.lock().unwrap();
                let queued = !core.lock().unwrap().queue.is_empty();
                assert!(
                    readable || !queued,
                    "receiver asleep, fd not readable, message queued: lost wake-up"
                );
            } else {
                assert_eq!(
                    local.pop_front(),
                    Some(7),
                    "stayed awake without the message"
                );
            }
        });
    }

    #[test]
    fn loom_channel_wake_protocol_is_correct() {
        check(CORRECT);
    }

    /// Runs a model on a deliberately broken variant: it must fail.
    fn must_fail<V: Copy + std::fmt::Debug + std::panic::UnwindSafe>(check: fn(V), v: V) {
        let r = std::panic::catch_unwind(move || check(v));
        assert!(r.is_err(), "loom did not catch the broken protocol {v:?}");
    }

    #[test]
    fn loom_catches_drain_after_sleep() {
        must_fail(
            check,
            Variant {
                drain_after_sleep: true,
                ..CORRECT
            },
        );
    }

    #[test]
    fn loom_catches_sleep_without_empty_check() {
        must_fail(
            check,
            Variant {
                skip_empty_check: true,
                ..CORRECT
            },
        );
    }

    // --- bounded channels: capacity coming back to a blocked sender -------

    #[derive(Clone, Copy, Debug)]
    struct TxVariant {
        /// Wake senders only for `tx_want` (forget blocked `tx_waiters`).
        ignore_waiters: bool,
        /// The blocked sender drains a stale signal after unlocking.
        drain_outside_lock: bool,
    }

    const TX_CORRECT: TxVariant = TxVariant {
        ignore_waiters: false,
        drain_outside_lock: false,
    };

    /// Capacity 1, one message queued (full). The receiver takes it and
    /// returns the capacity; a sender tries to send and, finding the channel
    /// full, registers and "blocks" on the send-side fd. At the end a sender
    /// that blocked must find its fd readable while there is room.
    fn check_tx(v: TxVariant) {
        loom::model(move || {
            let mut c = Core::<u32>::new(1);
            assert!(matches!(c.push(1), Push::Queued { .. }));
            // A stale signal from an earlier round, to exercise the drain.
            c.tx_signaled = true;
            let core = Arc::new(Mutex::new(c));
            let fd = Arc::new(Mutex::new(true));
            let (c2, f2) = (core.clone(), fd.clone());
            let receiver = thread::spawn(move || {
                let mut local = VecDeque::new();
                c2.lock().unwrap().refill(&mut local, 0);
                assert_eq!(local.pop_front(), Some(1));
                let wake = {
                    let mut c = c2.lock().unwrap();
                    if v.ignore_waiters {
                        c.len -= 1;
                        let w = c.tx_want && !c.tx_signaled;
                        c.tx_signaled |= w;
                        w
                    } else {
                        c.refill(&mut local, 1)
                    }
                };
                if wake {
                    *f2.lock().unwrap() = true;
                }
            });
            let blocked = {
                let mut c = core.lock().unwrap();
                match c.push(2) {
                    Push::Full(_) => {
                        if v.drain_outside_lock {
                            // Broken: the drain comes after unlocking, below.
                            c.tx_signaled = false;
                        } else {
                            let Ok(()) = c.consume_tx_signal(|| {
                                *fd.lock().unwrap() = false;
                                Ok::<(), Infallible>(())
                            });
                        }
                        c.tx_waiters += 1;
                        true
                    }
                    _ => false,
                }
            };
            if blocked && v.drain_outside_lock {
                *fd.lock().unwrap() = false;
            }
            receiver.join().unwrap();
            if blocked {
                let room = core.lock().unwrap().len < 1;
                let readable = *fd.lock().unwrap();
                assert!(
                    !room || readable,
                    "sender blocked on an unreadable fd while the channel has room: lost wake-up"
                );
            }
        });
    }

    #[test]
    fn loom_bounded_capacity_wakeup_is_correct() {
        check_tx(TX_CORRECT);
    }

    #[test]
    fn loom_catches_ignoring_blocked_senders() {
        must_fail(
            check_tx,
            TxVariant {
                ignore_waiters: true,
                ..TX_CORRECT
            },
        );
    }

    #[test]
    fn loom_catches_drain_outside_the_lock() {
        must_fail(
            check_tx,
            TxVariant {
                drain_outside_lock: true,
                ..TX_CORRECT
            },
        );
    }
}
