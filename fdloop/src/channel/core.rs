//! The state behind a channel and the protocols that guard it.
//!
//! # Structure
//!
//! A lock-free multi-producer, single-consumer queue ([`queue`](super::queue)):
//! a list of 31-slot blocks for unbounded channels, a ring of `capacity`
//! slots for bounded ones. A send is one compare-exchange on the tail word
//! (claim a position), a plain write of the message and a `Release` store
//! marking the slot written. A receive reads the head slot (`Acquire`) and
//! touches no shared counter: only the receiver moves the head. No lock is
//! taken anywhere; the benchmark (`fdloop-bench`, BENCHMARKS.md) compares
//! the result with crossbeam-channel in three thread placements.
//!
//! # Wake protocol (receiver side)
//!
//! The receiver's descriptor is a [`Notifier`](crate::Notifier) written
//! only by the protocol below; the receiver counts the writes it is owed
//! (`owed`) and the drain subtracts what it consumed, so it always knows
//! whether a write is still on its way.
//!
//! ```text
//! send:                                  receiver finds the queue empty (settle):
//!   S1 t = CAS tail: pos → pos+1,          R1 if owed > 0: drain the fd (owed -= consumed)
//!      clearing SLEEP                      R2 CAS tail: (head, no flags) → (head, SLEEP)
//!   S2 write the slot, mark it written        ok: asleep
//!   S3 if t had SLEEP: write the fd           failed (a claim or the disconnection came
//!                                              after R1): keep the fd readable (write it
//!                                              if nothing is owed), stay awake
//! ```
//!
//! * **A send makes a system call only if the receiver is asleep**, and only
//!   the first send after it fell asleep: S1 clears the flag. While the
//!   receiver is awake, a send is one compare-exchange and two stores.
//! * **No lost wake-up.** S1 and R2 are read-modify-writes of one atomic, so
//!   they are totally ordered. If R2 comes first, the next S1 reads SLEEP
//!   and S3 writes the fd — after R1, so the drain cannot swallow it. If S1
//!   comes first, the tail position differs from the head at R2, which
//!   fails. No `SeqCst` fence is needed on either side.
//! * **Readable exactly while a message waits.** Awake, the receiver is
//!   always owed a write (it was woken by one, or wrote one itself), so the
//!   fd is readable; it sleeps (R1, R2) as soon as it finds the queue empty
//!   — after taking the last message, not at the next call — so a poller
//!   sees the fd turn unreadable with the last message. A write still on its
//!   way when the receiver drained (the waking sender between S1 and S3) is
//!   known from `owed` and consumed the next time the receiver looks.
//! * **Disconnection.** The last sender sets DISC and clears SLEEP in one
//!   read-modify-write and writes the fd if SLEEP was set; R2 fails on DISC.
//!   Once the receiver has seen DISC with the queue empty, the fd stays
//!   readable for good.
//!
//! # Capacity (bounded channels)
//!
//! A receive frees its slot at once (the slot's stamp), so capacity comes
//! back per message: after a receive, `try_send` succeeds. Senders that wait
//! for room (a blocking `send`, or a [`SendReady`](super::SendReady) source
//! after `try_send` said `Full`) register in `tx_wait` and sleep on a second
//! notifier. The receiver looks for them at checkpoints: every
//! `capacity / 2` receives (at least every receive for capacities 1 to 3)
//! and whenever it finds the channel empty. A woken sender thus finds about
//! half the ring free and refills it in one go, instead of waking once per
//! freed slot; and since the receiver checks before it can sleep, a sender
//! is never left blocked beside an empty channel. The check is a Dekker
//! handshake on two variables, so both sides fence:
//!
//! ```text
//! waiting sender:                      receiver, at a checkpoint:
//!   T1 tx_wait += 1 (or set WANT)        F1 slot freed (stamp store)
//!   T2 fence(SeqCst)                     F2 fence(SeqCst)
//!   T3 drain a stale tx signal           F3 if tx_wait != 0: notify tx fd
//!   T4 try to push again (sees F1?)
//!   T5 if still full: wait on the tx fd
//! ```
//!
//! The fences make "T4 misses F1 and F3 misses T1" impossible (F1: every
//! slot freed before the checkpoint), so a sender that blocks at T5 is seen
//! by the first checkpoint whose fence follows its T2; the
//! notifier's own coalescing (its `pending` flag, an `AcqRel` swap in both
//! notify and drain) makes a notify that T3 consumed visible to T4. The loom
//! models at the end of this file check both protocols, and that they fail
//! when a step is dropped or reordered.

use std::io;

use super::queue::{List, ListHead, Push, Ring, DISC, SHIFT, SLEEP};
use crate::sync::{fence, AtomicBool, AtomicUsize, Ordering, Padded};

/// What the receiver's descriptor must do for the protocol.
pub(crate) trait RxFd {
    /// One write, never coalesced.
    fn raise(&self) -> io::Result<()>;
    /// Consumes what is pending; returns how many writes that was.
    fn consume(&self) -> io::Result<u64>;
}

impl RxFd for crate::Notifier {
    #[inline]
    fn raise(&self) -> io::Result<()> {
        self.raise_uncoalesced()
    }
    #[inline]
    fn consume(&self) -> io::Result<u64> {
        self.consume_count()
    }
}

/// What the send side's descriptor must do (bounded channels); the loom
/// model's stand-in implements it like the notifier.
#[cfg(loom)]
pub(crate) trait TxFd {
    /// Makes it readable (coalesced).
    fn notify(&self) -> io::Result<bool>;
    /// Consumes a pending signal.
    fn drain(&self) -> io::Result<bool>;
}

#[cfg(loom)]
impl TxFd for crate::Notifier {
    #[inline]
    fn notify(&self) -> io::Result<bool> {
        crate::Notifier::notify(self)
    }
    #[inline]
    fn drain(&self) -> io::Result<bool> {
        crate::Notifier::drain(self)
    }
}

/// `tx_wait` bit: a [`SendReady`](super::SendReady) source wants to hear of
/// room; the rest of the word counts blocked senders.
pub(crate) const WANT: usize = 1 << (usize::BITS - 1);

pub(crate) enum Queue<T> {
    List(List<T>),
    Ring(Ring<T>),
}

/// The receiver's position in the queue.
enum Head<T> {
    List(ListHead<T>),
    Ring(usize),
}

/// Everything shared by the senders and the receiver.
pub(crate) struct Core<T> {
    queue: Queue<T>,
    /// The receiver's head position, published after each receive for
    /// [`Core::len`].
    head_pub: Padded<AtomicUsize>,
    /// Bounded: blocked senders, plus [`WANT`].
    tx_wait: Padded<AtomicUsize>,
    /// A hint, not part of any protocol: the receiver has waited more than
    /// a few microseconds at a slot that a sender claimed and has not
    /// written — that sender was preempted in the few instructions between
    /// the two. While it is set, senders yield the CPU after each send (see
    /// [`Core::push`]). Written only when it changes, so senders read it
    /// from their own cache.
    stalled: Padded<AtomicBool>,
}

/// What [`Core::settle`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// The queue is empty and the receiver asleep: its fd is not readable
    /// (and turns readable at the next send).
    Asleep,
    /// A message is claimed and being written: look again in a moment.
    Pending,
    /// Every sender is gone and every message was taken.
    Disconnected,
}

/// The receiver's private state.
pub(crate) struct RxState<T> {
    head: Head<T>,
    /// R2 succeeded and no message has been taken since.
    asleep: bool,
    /// Writes to the fd made (or on their way) and not yet drained.
    owed: u64,
    /// `close` ran.
    closed: bool,
    /// Bounded: receives between two checks for waiting senders (half the
    /// capacity, at least 1); 0 for unbounded channels.
    check_every: usize,
    since_check: usize,
    /// The receiver's copy of [`Core::stalled`].
    stalled: bool,
}

// SAFETY: the raw block pointer in `ListHead` is owned by the receiver
// alone (no other thread dereferences the head block through it); moving
// the state to another thread moves that ownership, which is sound when
// the messages themselves may move (`T: Send`).
unsafe impl<T: Send> Send for RxState<T> {}

impl<T> Core<T> {
    /// A channel core (`cap`: `None` for unbounded) and its receiver state,
    /// asleep.
    pub(crate) fn new(cap: Option<usize>) -> (Core<T>, RxState<T>) {
        let (queue, head) = match cap {
            None => {
                let (l, h) = List::new();
                (Queue::List(l), Head::List(h))
            }
            Some(c) => {
                let (r, h) = Ring::new(c);
                (Queue::Ring(r), Head::Ring(h))
            }
        };
        (
            Core {
                queue,
                head_pub: Padded(AtomicUsize::new(0)),
                tx_wait: Padded(AtomicUsize::new(0)),
                stalled: Padded(AtomicBool::new(false)),
            },
            RxState {
                head,
                asleep: true,
                owed: 0,
                closed: false,
                check_every: cap.map_or(0, |c| (c / 2).max(1)),
                since_check: 0,
                stalled: false,
            },
        )
    }

    #[inline]
    fn word(&self) -> &AtomicUsize {
        match &self.queue {
            Queue::List(l) => l.word(),
            Queue::Ring(r) => r.word(),
        }
    }

    /// The capacity of a bounded channel.
    pub(crate) fn capacity(&self) -> Option<usize> {
        match &self.queue {
            Queue::List(_) => None,
            Queue::Ring(r) => Some(r.capacity()),
        }
    }

    /// S1–S2. The caller writes the receiver's fd if `wake_rx`.
    ///
    /// While the receiver is [stalled](Core::stalled) behind a preempted
    /// sender, the send then yields the CPU: if the sender it waits for
    /// shares this CPU, it runs now and the receiver goes on, instead of
    /// waiting out the time slices of every sender queued before it while
    /// they grow the queue into fresh memory (page faults, and blocks the
    /// receiver frees again). Measured with four senders sharing one CPU,
    /// the receiver on the other (BENCHMARKS.md). A sender elsewhere pays
    /// one `sched_yield` per send for as long as the stall lasts.
    #[inline(always)]
    pub(crate) fn push(&self, msg: T) -> Push<T> {
        let r = match &self.queue {
            Queue::List(l) => l.push(msg),
            Queue::Ring(r) => r.push(msg),
        };
        // Not under loom: a hint outside the protocols the models check.
        #[cfg(not(loom))]
        if self.stalled.load(Ordering::Relaxed) {
            std::thread::yield_now();
        }
        r
    }

    /// Receiver: it has waited long at a claimed, unwritten slot (`true`),
    /// or moved past it (`false`); see [`Core::stalled`].
    #[inline]
    pub(crate) fn set_stalled(&self, st: &mut RxState<T>, on: bool) {
        if st.stalled != on {
            st.stalled = on;
            self.stalled.store(on, Ordering::Relaxed);
        }
    }

    /// Messages sent and not yet received.
    pub(crate) fn len(&self) -> usize {
        let head = self.head_pub.load(Ordering::Acquire);
        match &self.queue {
            Queue::List(l) => l.len(head),
            Queue::Ring(r) => r.len(head),
        }
    }

    /// Whether every sender is gone (messages may still wait).
    pub(crate) fn is_disconnected(&self) -> bool {
        self.word().load(Ordering::Acquire) & DISC != 0
    }

    /// Whether the receiver is gone.
    pub(crate) fn is_rx_gone(&self) -> bool {
        self.word().load(Ordering::Acquire) & super::queue::RX_GONE != 0
    }

    /// The last sender left: sets DISC and clears SLEEP. Returns whether the
    /// receiver was asleep (the caller writes its fd).
    pub(crate) fn disconnect(&self) -> bool {
        let mut t = self.word().load(Ordering::Relaxed);
        loop {
            match self.word().compare_exchange_weak(
                t,
                (t | DISC) & !SLEEP,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return t & SLEEP != 0,
                Err(cur) => t = cur,
            }
        }
    }

    /// Receiver: takes the next message if it is written.
    ///
    /// # Safety
    ///
    /// Only the receiver calls it, with the state [`Core::new`] returned,
    /// before [`Core::close`].
    #[inline]
    pub(crate) unsafe fn take(&self, st: &mut RxState<T>) -> Option<T> {
        let (m, pos) = match (&self.queue, &mut st.head) {
            // SAFETY: forwarded contract.
            (Queue::List(l), Head::List(h)) => (unsafe { l.pop(h) }?, h.pos()),
            // SAFETY: forwarded contract.
            (Queue::Ring(r), Head::Ring(h)) => (unsafe { r.pop(h) }?, *h),
            _ => return None,
        };
        if st.asleep {
            // The message was claimed after R2, so its claim (or an
            // earlier one) cleared SLEEP and writes the fd.
            st.asleep = false;
            st.owed += 1;
        }
        if st.stalled {
            self.set_stalled(st, false);
        }
        self.head_pub.store(pos, Ordering::Release);
        Some(m)
    }

    /// Receiver: whether the next [`take`](Core::take) would succeed.
    ///
    /// # Safety
    ///
    /// As [`Core::take`].
    #[inline]
    pub(crate) unsafe fn head_ready(&self, st: &RxState<T>) -> bool {
        match (&self.queue, &st.head) {
            // SAFETY: forwarded contract.
            (Queue::List(l), Head::List(h)) => unsafe { l.head_ready(h) },
            (Queue::Ring(r), Head::Ring(h)) => r.head_ready(*h),
            _ => false,
        }
    }

    /// Receiver, after each receive: whether this is a checkpoint (every
    /// `check_every` receives, bounded channels only) at which a sender
    /// waiting for room must hear of it (F2–F3; the caller notifies the tx
    /// fd).
    #[inline]
    pub(crate) fn tx_checkpoint(&self, st: &mut RxState<T>) -> bool {
        if st.check_every == 0 {
            return false;
        }
        st.since_check += 1;
        if st.since_check < st.check_every {
            return false;
        }
        st.since_check = 0;
        self.senders_waiting()
    }

    /// F2–F3: whether a sender waits for room.
    #[inline]
    pub(crate) fn senders_waiting(&self) -> bool {
        fence(Ordering::SeqCst);
        self.tx_wait.load(Ordering::Relaxed) != 0
    }

    /// T1–T2 for a blocked sender; undone by [`Core::tx_unwait`].
    pub(crate) fn tx_wait(&self) {
        self.tx_wait.fetch_add(1, Ordering::AcqRel);
        fence(Ordering::SeqCst);
    }

    pub(crate) fn tx_unwait(&self) {
        self.tx_wait.fetch_sub(1, Ordering::AcqRel);
    }

    /// T1–T2 for a `try_send` that found the channel full: a
    /// [`SendReady`](super::SendReady) source will fire once room frees up.
    pub(crate) fn tx_want(&self) {
        self.tx_wait.fetch_or(WANT, Ordering::AcqRel);
        fence(Ordering::SeqCst);
    }

    /// A `SendReady` source fires: the want is used up (a `Full` seen by its
    /// callback sets it again).
    pub(crate) fn tx_want_consumed(&self) {
        self.tx_wait.fetch_and(!WANT, Ordering::AcqRel);
    }

    /// Receiver: the queue looked empty. Puts the receiver to sleep if it
    /// is (R1, R2), so its fd is readable exactly while a message waits.
    pub(crate) fn settle<F: RxFd>(&self, st: &mut RxState<T>, fd: &F) -> Settled {
        let head = match &st.head {
            Head::List(h) => h.pos(),
            Head::Ring(h) => *h,
        };
        let word = self.word();
        if st.asleep {
            if word.load(Ordering::Acquire) & SLEEP != 0 {
                // Still asleep. A write owed from an earlier round that
                // landed after that round's drain is stale: consume it.
                if st.owed > 0 {
                    drain(st, fd);
                }
                return Settled::Asleep;
            }
            // A claim whose message is not written yet, or the
            // disconnection, cleared SLEEP; its write is on its way.
            st.asleep = false;
            st.owed += 1;
        }
        let t = word.load(Ordering::Acquire);
        if t >> SHIFT != head {
            return Settled::Pending;
        }
        if t & DISC != 0 {
            keep_readable(st, fd);
            return Settled::Disconnected;
        }
        // R1.
        if st.owed > 0 {
            drain(st, fd);
        }
        // R2.
        match word.compare_exchange(
            head << SHIFT,
            (head << SHIFT) | SLEEP,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                st.asleep = true;
                Settled::Asleep
            }
            Err(t) => {
                // A claim or the disconnection came after R1: stay awake,
                // and readable while awake.
                keep_readable(st, fd);
                if t >> SHIFT == head && t & DISC != 0 {
                    Settled::Disconnected
                } else {
                    Settled::Pending
                }
            }
        }
    }

    /// Receiver leaves: no send succeeds after this, and every message
    /// still queued is dropped here, once each. Idempotent.
    ///
    /// # Safety
    ///
    /// As [`Core::take`]; the state is not used for receiving afterwards.
    pub(crate) unsafe fn close(&self, st: &mut RxState<T>) {
        if st.closed {
            return;
        }
        st.closed = true;
        // Senders that see the receiver gone need not yield to anyone.
        self.set_stalled(st, false);
        match (&self.queue, &mut st.head) {
            // SAFETY: forwarded contract; `closed` makes it once.
            (Queue::List(l), Head::List(h)) => unsafe { l.close(h) },
            // SAFETY: as above.
            (Queue::Ring(r), Head::Ring(h)) => unsafe { r.close(h) },
            _ => {}
        }
    }
}

/// R1: consume the fd; what it held is no longer owed.
fn drain<T, F: RxFd>(st: &mut RxState<T>, fd: &F) {
    // A failed read (not possible on a live descriptor we own) leaves
    // `owed` as it was: the next look drains again.
    if let Ok(n) = fd.consume() {
        st.owed = st.owed.saturating_sub(n);
    }
}

/// An awake receiver's fd must be readable: write it unless a write is owed.
fn keep_readable<T, F: RxFd>(st: &mut RxState<T>, fd: &F) {
    if st.owed == 0 && fd.raise().is_ok() {
        st.owed = 1;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// A sender preempted between claiming a slot and writing it holds the
    /// receiver up; once the receiver has waited past spinning it raises
    /// the stall hint, other senders yield (and still deliver, behind it),
    /// and the hint drops as soon as the slot is written and taken.
    #[test]
    fn a_receiver_held_up_by_an_unwritten_slot_raises_the_stall_hint_until_it_moves_on() {
        let (tx, rx) = crate::channel::unbounded::<u32>().unwrap();
        let shared = std::sync::Arc::clone(&tx.shared);
        let Queue::List(list) = &shared.core.queue else {
            unreachable!("unbounded channels use the list")
        };
        // A "preempted" sender: claimed, not written.
        let claim = list.claim().expect("the receiver lives");
        let wake_rx = claim.wake_rx;
        let receiver = std::thread::spawn(move || {
            let first = rx.recv();
            let second = rx.recv();
            (first, second, rx)
        });
        let t0 = Instant::now();
        while !shared.core.stalled.load(Ordering::Relaxed) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the receiver never raised the stall hint"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // Another sender: yields once (the hint is up), and its message
        // queues behind the unwritten one.
        tx.send(2).unwrap();
        // The preempted sender finishes its send.
        // SAFETY: `claim` came from this list and is filled once.
        unsafe { list.fill(claim, 1) };
        if wake_rx {
            shared.wake_rx();
        }
        let (first, second, rx) = receiver.join().unwrap();
        assert_eq!((first, second), (Ok(1), Ok(2)));
        assert!(
            !shared.core.stalled.load(Ordering::Relaxed),
            "the hint outlived the stall"
        );
        drop(rx);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! `RUSTFLAGS="--cfg loom" cargo test -p fdloop --lib --release loom`
    //!
    //! The real queues and protocol functions, with the descriptors replaced
    //! by counters behind a mutex (the kernel serialises reads and writes of
    //! one eventfd the same way).
    use super::*;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    /// An eventfd: a counter.
    #[derive(Default)]
    struct FakeFd(Mutex<u64>);

    impl RxFd for FakeFd {
        fn raise(&self) -> io::Result<()> {
            *self.0.lock().unwrap() += 1;
            Ok(())
        }
        fn consume(&self) -> io::Result<u64> {
            Ok(std::mem::take(&mut *self.0.lock().unwrap()))
        }
    }

    impl FakeFd {
        fn readable(&self) -> bool {
            *self.0.lock().unwrap() > 0
        }
    }

    /// Deliberate breakages the models must catch.
    #[derive(Clone, Copy, Debug)]
    struct Variant {
        /// The waking sender does not write the fd.
        sender_ignores_sleep: bool,
        /// R2 is a plain store of SLEEP (no emptiness check).
        blind_sleep: bool,
        /// R1 after R2.
        drain_after_sleep: bool,
    }

    const CORRECT: Variant = Variant {
        sender_ignores_sleep: false,
        blind_sleep: false,
        drain_after_sleep: false,
    };

    /// Receiver-side settle with the variant's breakage.
    fn settle_v<T>(core: &Core<T>, st: &mut RxState<T>, fd: &FakeFd, v: Variant) -> Settled {
        if !v.blind_sleep && !v.drain_after_sleep {
            return core.settle(st, fd);
        }
        // Broken variants, written out (awake receiver only).
        let head = match &st.head {
            Head::List(h) => h.pos(),
            Head::Ring(h) => *h,
        };
        let word = core.word();
        if st.asleep {
            return core.settle(st, fd);
        }
        if !v.drain_after_sleep && st.owed > 0 {
            drain(st, fd);
        }
        let ok = if v.blind_sleep {
            word.fetch_or(SLEEP, Ordering::AcqRel);
            true
        } else {
            word.compare_exchange(
                head << SHIFT,
                (head << SHIFT) | SLEEP,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        };
        if v.drain_after_sleep && st.owed > 0 {
            drain(st, fd);
        }
        if ok {
            st.asleep = true;
            Settled::Asleep
        } else {
            keep_readable(st, fd);
            Settled::Pending
        }
    }

    fn send(core: &Core<u32>, fd: &FakeFd, v: u32, var: Variant) {
        match core.push(v) {
            Push::Queued { wake_rx } => {
                if wake_rx && !var.sender_ignores_sleep {
                    fd.raise().unwrap();
                }
            }
            _ => panic!("push failed"),
        }
    }

    /// One sender sends `n` messages while the receiver, awake after an
    /// earlier wake-up, takes what it finds and settles. At the end, a
    /// receiver that is asleep must have a readable fd if a message waits
    /// (no lost wake-up), and an unreadable one if none does (exact
    /// readiness, once the stale write has been consumed by a last look).
    fn check(cap: Option<usize>, n: u32, rounds: usize, var: Variant) {
        loom::model(move || {
            let (core, mut st) = Core::<u32>::new(cap);
            if cap.is_some() {
                // Start the ring one position in, so the messages wrap.
                assert!(matches!(core.push(99), Push::Queued { .. }));
                // SAFETY: this thread is the only receiver.
                assert_eq!(unsafe { core.take(&mut st) }, Some(99));
            }
            let core = Arc::new(core);
            let fd = Arc::new(FakeFd::default());
            // Start awake, owed one write (as after a wake-up).
            fd.raise().unwrap();
            st.asleep = false;
            st.owed = 1;
            core.word().fetch_and(!SLEEP, Ordering::AcqRel);
            let (c2, f2) = (core.clone(), fd.clone());
            let sender = thread::spawn(move || {
                for i in 0..n {
                    send(&c2, &f2, i, var);
                }
            });
            let mut got = Vec::new();
            // The receiver looks and settles, `rounds` times; the last
            // settle decides whether it would block.
            for _ in 0..rounds {
                // SAFETY: this thread is the only receiver.
                while let Some(m) = unsafe { core.take(&mut st) } {
                    got.push(m);
                }
                let _ = settle_v(&core, &mut st, &fd, var);
            }
            sender.join().unwrap();
            // SAFETY: as above.
            let waiting = unsafe { core.head_ready(&st) };
            if st.asleep && waiting {
                assert!(
                    fd.readable(),
                    "asleep over a waiting message, fd not readable"
                );
            }
            // Take the rest as a woken receiver would, then settle: the
            // fd must end unreadable with nothing waiting.
            // SAFETY: as above.
            while let Some(m) = unsafe { core.take(&mut st) } {
                got.push(m);
            }
            assert_eq!(
                got,
                (0..n).collect::<Vec<_>>(),
                "messages lost or reordered"
            );
            assert_eq!(core.settle(&mut st, &*fd), Settled::Asleep);
            assert!(!fd.readable(), "fd readable with nothing waiting");
            // SAFETY: as above.
            unsafe { core.close(&mut st) };
        });
    }

    #[test]
    fn loom_channel_wake_protocol_unbounded() {
        check(None, 3, 1, CORRECT);
        check(None, 3, 2, CORRECT);
    }

    #[test]
    fn loom_channel_wake_protocol_bounded() {
        check(Some(2), 2, 1, CORRECT);
        check(Some(2), 2, 2, CORRECT);
    }

    /// Two senders race to claim the slots around a block boundary (blocks
    /// hold two messages under the model) while the receiver takes what it
    /// finds: every message arrives once, each sender's in order, and the
    /// receiver's close frees everything.
    #[test]
    fn loom_two_senders_across_a_block_boundary() {
        loom::model(|| {
            let (core, mut st) = Core::<u32>::new(None);
            let core = Arc::new(core);
            let senders: Vec<_> = (0..2u32)
                .map(|k| {
                    let c = core.clone();
                    thread::spawn(move || {
                        for i in 0..2 {
                            assert!(matches!(c.push(k * 10 + i), Push::Queued { .. }));
                        }
                    })
                })
                .collect();
            let mut got = Vec::new();
            // SAFETY: this thread is the only receiver.
            if let Some(m) = unsafe { core.take(&mut st) } {
                got.push(m);
            }
            for s in senders {
                s.join().unwrap();
            }
            // SAFETY: as above.
            while let Some(m) = unsafe { core.take(&mut st) } {
                got.push(m);
            }
            let mine = |k: u32| {
                got.iter()
                    .filter(|m| **m / 10 == k)
                    .copied()
                    .collect::<Vec<_>>()
            };
            assert_eq!(mine(0), [0, 1]);
            assert_eq!(mine(1), [10, 11]);
            assert_eq!(core.len(), 0);
            // SAFETY: as above.
            unsafe { core.close(&mut st) };
        });
    }

    /// The receiver leaves while a sender sends two messages (the second
    /// links the next block under the model's two-slot blocks): each
    /// message is either handed back to its sender or dropped by the
    /// receiver's close — once.
    #[test]
    fn loom_close_racing_senders_drops_each_message_once() {
        use loom::sync::atomic::AtomicUsize as Count;
        struct Counted(Arc<Count>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        loom::model(|| {
            let (core, mut st) = Core::<Counted>::new(None);
            let core = Arc::new(core);
            let drops = Arc::new(Count::new(0));
            let senders: Vec<_> = (0..1)
                .map(|_| {
                    let (c, d) = (core.clone(), drops.clone());
                    thread::spawn(move || {
                        let mut back = 0;
                        for _ in 0..2 {
                            match c.push(Counted(d.clone())) {
                                Push::Queued { .. } => {}
                                Push::NoReceiver(m) | Push::Full(m) => {
                                    drop(m);
                                    back += 1;
                                }
                            }
                        }
                        back
                    })
                })
                .collect();
            // SAFETY: this thread is the only receiver; it closes once.
            unsafe { core.close(&mut st) };
            let back: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
            // Every message was dropped exactly once (a double drop would
            // count 3 or more; a leak 1 or fewer).
            assert_eq!(drops.load(Ordering::Relaxed), 2, "{back} handed back");
        });
    }

    fn must_fail(f: impl FnOnce() + std::panic::UnwindSafe, what: &str) {
        assert!(
            std::panic::catch_unwind(f).is_err(),
            "loom did not catch the broken protocol: {what}"
        );
    }

    #[test]
    fn loom_catches_a_sender_that_ignores_sleep() {
        must_fail(
            || {
                check(
                    None,
                    1,
                    1,
                    Variant {
                        sender_ignores_sleep: true,
                        ..CORRECT
                    },
                )
            },
            "sender ignores SLEEP",
        );
    }

    #[test]
    fn loom_catches_sleep_without_the_empty_check() {
        must_fail(
            || {
                check(
                    None,
                    1,
                    1,
                    Variant {
                        blind_sleep: true,
                        ..CORRECT
                    },
                )
            },
            "blind sleep",
        );
    }

    #[test]
    fn loom_catches_drain_after_sleep() {
        must_fail(
            || {
                check(
                    None,
                    1,
                    1,
                    Variant {
                        drain_after_sleep: true,
                        ..CORRECT
                    },
                )
            },
            "drain after sleep",
        );
    }

    // ------------------------------------------------ capacity (bounded)

    /// The send side's notifier: a counter with the real notifier's
    /// coalescing flag.
    #[derive(Default)]
    struct FakeTx {
        fd: Mutex<u64>,
        pending: loom::sync::atomic::AtomicBool,
    }

    impl TxFd for FakeTx {
        fn notify(&self) -> io::Result<bool> {
            if self.pending.swap(true, Ordering::AcqRel) {
                return Ok(false);
            }
            *self.fd.lock().unwrap() += 1;
            Ok(true)
        }
        fn drain(&self) -> io::Result<bool> {
            let had = std::mem::take(&mut *self.fd.lock().unwrap()) > 0;
            self.pending.swap(false, Ordering::AcqRel);
            Ok(had)
        }
    }

    #[derive(Clone, Copy, Debug)]
    struct TxVariant {
        /// The receiver checks `tx_wait` without the fence.
        no_rx_fence: bool,
        /// The sender does not re-check for room after registering.
        no_recheck: bool,
    }

    /// Capacity 1, full. The receiver takes the message (capacity comes
    /// back) while a sender that found the channel full registers and, if
    /// still full, would block on the tx fd. A sender that blocks must find
    /// the fd readable (or it sleeps forever next to a free slot).
    fn check_tx(v: TxVariant) {
        loom::model(move || {
            let (core, mut st) = Core::<u32>::new(Some(1));
            assert!(matches!(core.push(1), Push::Queued { .. }));
            let core = Arc::new(core);
            let tx = Arc::new(FakeTx::default());
            // A stale signal from an earlier round.
            tx.notify().unwrap();
            let (c2, t2) = (core.clone(), tx.clone());
            let receiver = thread::spawn(move || {
                // SAFETY: this thread is the only receiver.
                assert_eq!(unsafe { c2.take(&mut st) }, Some(1));
                let waiting = if v.no_rx_fence {
                    c2.tx_wait.load(Ordering::Relaxed) != 0
                } else {
                    c2.senders_waiting()
                };
                if waiting {
                    t2.notify().unwrap();
                }
                st
            });
            let mut blocked = false;
            if let Push::Full(m) = core.push(2) {
                core.tx_wait();
                tx.drain().unwrap();
                let again = if v.no_recheck {
                    Push::Full(m)
                } else {
                    core.push(m)
                };
                if let Push::Full(_) = again {
                    blocked = true;
                }
            }
            let mut st = receiver.join().unwrap();
            if blocked {
                assert!(
                    *tx.fd.lock().unwrap() > 0,
                    "sender blocked on an unreadable fd next to a free slot"
                );
            }
            // SAFETY: the receiver thread is done; this is the only receiver.
            unsafe { core.close(&mut st) };
        });
    }

    /// How one blocking send of the model ended.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Sent {
        Yes,
        /// Registered in `tx_wait` and asleep on an unreadable tx fd: only a
        /// later notify wakes it.
        Asleep,
        /// Woken as often as the model allows; it would go on retrying.
        Retrying,
    }

    /// `Sender::send_until` without its spinning and its deadline: push;
    /// when full, T1–T4; if still full, "sleep" — the model stops the sender
    /// there when the fd is unreadable (it would block) and loops when it is
    /// readable (it would wake at once), `rounds` times at most.
    fn blocking_send(core: &Core<u32>, tx: &FakeTx, mut msg: u32, rounds: usize) -> Sent {
        for _ in 0..rounds {
            match core.push(msg) {
                Push::Queued { .. } => return Sent::Yes,
                Push::Full(m) => msg = m,
                Push::NoReceiver(_) => unreachable!(),
            }
            core.tx_wait();
            tx.drain().unwrap();
            match core.push(msg) {
                Push::Queued { .. } => {
                    core.tx_unwait();
                    return Sent::Yes;
                }
                Push::Full(m) => msg = m,
                Push::NoReceiver(_) => unreachable!(),
            }
            if *tx.fd.lock().unwrap() == 0 {
                // Blocks, still registered in `tx_wait`.
                return Sent::Asleep;
            }
            core.tx_unwait();
        }
        Sent::Retrying
    }

    /// Several senders blocked on one tx fd. The channel starts full; two
    /// senders each send one message with the blocking algorithm while the
    /// receiver takes messages (a checkpoint after each, as `took` does) and,
    /// finding the channel empty, makes its last check and falls asleep (as
    /// `settle` does). One sender's T3 drain can eat the signal raised for
    /// the other; the protocol must still never leave a sender asleep on an
    /// unreadable fd while nothing will ever notify it: at the end, a sender
    /// asleep needs a readable fd or a message still queued (the receiver
    /// wakes for it, and its checkpoint sees the sender), and the coalescing
    /// flag must not be stuck on over an empty fd.
    fn check_tx_many(cap: usize, preemptions: usize) {
        let mut model = loom::model::Builder::new();
        // Unbounded, the three threads' interleavings do not finish in
        // twenty minutes; every lost wake-up these models have caught so
        // far needs two preemptions at most.
        model.preemption_bound = Some(preemptions);
        model.check(move || {
            let (core, mut st) = Core::<u32>::new(Some(cap));
            for i in 0..cap as u32 {
                assert!(matches!(core.push(100 + i), Push::Queued { .. }));
            }
            let core = Arc::new(core);
            let tx = Arc::new(FakeTx::default());
            let senders: Vec<_> = (0..2u32)
                .map(|i| {
                    let (c, t) = (core.clone(), tx.clone());
                    thread::spawn(move || blocking_send(&c, &t, i, 2))
                })
                .collect();
            let mut got = 0;
            for _ in 0..cap + 2 {
                // SAFETY: this thread is the only receiver.
                if unsafe { core.take(&mut st) }.is_some() {
                    got += 1;
                    if core.tx_checkpoint(&mut st) {
                        tx.notify().unwrap();
                    }
                } else {
                    // Found empty: the last check before sleeping.
                    if core.senders_waiting() {
                        tx.notify().unwrap();
                    }
                    break;
                }
            }
            let ends: Vec<Sent> = senders.into_iter().map(|h| h.join().unwrap()).collect();
            let readable = *tx.fd.lock().unwrap() > 0;
            let sent = ends.iter().filter(|e| **e == Sent::Yes).count();
            let queued = cap + sent > got;
            if ends.contains(&Sent::Asleep) {
                assert!(
                    readable || queued,
                    "a sender sleeps on an unreadable fd beside an empty channel ({ends:?})"
                );
            }
            assert!(
                !tx.pending.load(Ordering::Acquire) || readable,
                "coalescing flag set over an empty tx fd: later notifies are lost"
            );
            // SAFETY: the receiver is done; this is the only receiver.
            unsafe { core.close(&mut st) };
        });
    }

    #[test]
    fn loom_several_blocked_senders_are_never_stranded() {
        check_tx_many(1, 3);
        check_tx_many(2, 3);
    }

    #[test]
    fn loom_bounded_capacity_wakeup_is_correct() {
        check_tx(TxVariant {
            no_rx_fence: false,
            no_recheck: false,
        });
    }

    #[test]
    fn loom_catches_capacity_check_without_fence() {
        must_fail(
            || {
                check_tx(TxVariant {
                    no_rx_fence: true,
                    no_recheck: false,
                })
            },
            "receiver without fence",
        );
    }

    #[test]
    fn loom_catches_sender_without_recheck() {
        must_fail(
            || {
                check_tx(TxVariant {
                    no_rx_fence: false,
                    no_recheck: true,
                })
            },
            "sender without re-check",
        );
    }
}
