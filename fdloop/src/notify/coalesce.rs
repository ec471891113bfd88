//! The wake-coalescing protocol behind [`Notifier`](super::Notifier).
//!
//! # Protocol
//!
//! One flag, `pending`, says "a signal has been (or is being) raised on the
//! descriptor and nobody has consumed it yet".
//!
//! ```text
//! notify:                          drain:
//!   [caller publishes its work]      D1  consume the descriptor (read)
//!   N1  if pending.swap(true, AcqRel)  D2  pending.swap(false, AcqRel)
//!         == true: return            [caller looks for work]
//!   N2  raise the descriptor (write)
//! ```
//!
//! Only the notifier that flips `pending` from false to true makes a system
//! call, so any number of `notify` calls between two drains cost one write.
//!
//! **No lost wake-up.** Suppose notifier N finds `pending == true` at N1 and
//! returns without writing. Some earlier notifier M flipped the flag and wrote
//! (or is about to write). Two cases, by where D2 falls in the flag's
//! modification order:
//!
//! * D2 after N1: D2 is a read-modify-write, so it reads N1's value (or a
//!   later one in the same release sequence) and, being `Acquire`, sees every
//!   write N made before N1 — including N's work. The waiter finds the work
//!   after `drain` returns.
//! * D2 before N1: then N1 would have read `false` (D2's value) and N would
//!   have written. Contradiction, so this case cannot occur.
//!
//! If the drainer cleared the flag *before* consuming (D2 then D1), a notifier
//! could see `false`, write, and have its write eaten by D1 while the flag
//! stays `true`: every later `notify` would skip the write and the waiter
//! would sleep forever. The order D1-then-D2 is therefore essential; the loom
//! model in this file checks it (and that weaker orderings fail).
//!
//! A failed raise (an unexpected error from `write`) resets the flag so the
//! next `notify` tries again, and the error goes to the caller.

use std::io;

use crate::sync::{AtomicBool, Ordering};

/// The memory orderings and step order of the protocol. Production code uses
/// [`Protocol::CORRECT`] only; the loom tests also run deliberately broken
/// variants and check that the model catches them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Protocol {
    pub claim: Ordering,
    pub reset: Ordering,
    pub reset_before_consume: bool,
}

impl Protocol {
    pub(crate) const CORRECT: Protocol = Protocol {
        claim: Ordering::AcqRel,
        reset: Ordering::AcqRel,
        reset_before_consume: false,
    };
}

/// The `pending` flag and the two protocol halves.
#[derive(Debug)]
pub(crate) struct Coalescer {
    pending: AtomicBool,
}

impl Coalescer {
    pub(crate) fn new() -> Self {
        Coalescer {
            pending: AtomicBool::new(false),
        }
    }

    /// Notifier side: runs `raise` only if no signal is pending. Returns
    /// whether `raise` ran.
    #[inline]
    pub(crate) fn notify_with(
        &self,
        p: Protocol,
        raise: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<bool> {
        if self.pending.swap(true, p.claim) {
            return Ok(false);
        }
        if let Err(e) = raise() {
            self.pending.store(false, Ordering::Release);
            return Err(e);
        }
        Ok(true)
    }

    /// Waiter side: consumes the signal with `consume`, then clears the flag
    /// (even when `consume` failed: a stale `true` would swallow every later
    /// wake-up, while a spurious extra write is harmless).
    #[inline]
    pub(crate) fn drain_with<T>(
        &self,
        p: Protocol,
        consume: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        if p.reset_before_consume {
            self.pending.swap(false, p.reset);
            return consume();
        }
        let r = consume();
        self.pending.swap(false, p.reset);
        r
    }

    #[inline]
    pub(crate) fn notify(&self, raise: impl FnOnce() -> io::Result<()>) -> io::Result<bool> {
        self.notify_with(Protocol::CORRECT, raise)
    }

    #[inline]
    pub(crate) fn drain<T>(&self, consume: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        self.drain_with(Protocol::CORRECT, consume)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Run with:
    //! `RUSTFLAGS="--cfg loom" cargo test -p fdloop --lib --release loom`
    //!
    //! The descriptor is modelled by a mutex-protected counter (the kernel
    //! takes a lock on the eventfd, so a write and a read are totally ordered
    //! and synchronise). The "work" is a relaxed atomic: all ordering must
    //! come from the protocol itself.
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    struct Model {
        co: Coalescer,
        fd: Mutex<u64>,
        work: AtomicUsize,
    }

    /// Two notifiers publish one unit of work each and notify; the waiter
    /// drains once and looks at the work. At quiescence, every unit of work
    /// is either seen by the waiter or still announced by a readable
    /// descriptor (so the next wait wakes), and `pending` never stays set
    /// over an empty descriptor.
    fn check(p: Protocol) {
        loom::model(move || {
            let m = Arc::new(Model {
                co: Coalescer::new(),
                fd: Mutex::new(0),
                work: AtomicUsize::new(0),
            });
            let notifiers: Vec<_> = (0..2)
                .map(|_| {
                    let m = m.clone();
                    thread::spawn(move || {
                        m.work.fetch_add(1, Ordering::Relaxed);
                        m.co.notify_with(p, || {
                            *m.fd.lock().unwrap() += 1;
                            Ok(())
                        })
                        .unwrap();
                    })
                })
                .collect();
            let got =
                m.co.drain_with(p, || {
                    let mut c = m.fd.lock().unwrap();
                    let v = *c;
                    *c = 0;
                    Ok(v)
                })
                .unwrap();
            let _ = got;
            let seen = m.work.load(Ordering::Relaxed);
            for n in notifiers {
                n.join().unwrap();
            }
            let readable = *m.fd.lock().unwrap() > 0;
            assert!(
                seen == 2 || readable,
                "lost wake-up: waiter saw {seen} of 2 work items and the fd is empty"
            );
            let pending = m.co.pending.load(Ordering::Acquire);
            assert!(
                !pending || readable,
                "pending flag left set over an empty descriptor: later wake-ups are lost"
            );
        });
    }

    #[test]
    fn loom_correct_protocol_never_loses_a_wakeup() {
        check(Protocol::CORRECT);
    }

    fn must_fail(p: Protocol) {
        let r = std::panic::catch_unwind(|| check(p));
        assert!(r.is_err(), "loom did not catch the broken protocol {p:?}");
    }

    #[test]
    fn loom_catches_reset_before_consume() {
        must_fail(Protocol {
            reset_before_consume: true,
            ..Protocol::CORRECT
        });
    }

    #[test]
    fn loom_catches_relaxed_reset() {
        must_fail(Protocol {
            reset: Ordering::Release,
            ..Protocol::CORRECT
        });
    }

    #[test]
    fn loom_catches_relaxed_claim() {
        must_fail(Protocol {
            claim: Ordering::Acquire,
            ..Protocol::CORRECT
        });
    }
}
