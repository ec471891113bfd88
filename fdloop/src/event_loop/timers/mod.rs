//! The loop's timer store: one queue and one timerfd per clock.
//!
//! A queue keeps its timers in indexed 4-ary min-heaps ([`heap`]), each
//! node `(key, slot)` 16 bytes, with the node's position recorded in the
//! slot's [`Meta`]. Timers without slack (the default) live in one heap
//! ordered by deadline. Timers with slack live in two: by deadline (what
//! is due) and by latest acceptable firing time, deadline + slack (when
//! the timerfd must fire at the latest). The timerfd is armed, absolute,
//! at the earliest latest-time; when it fires, every timer whose
//! *deadline* has passed runs — so timers whose slack windows overlap
//! share one wake-up.
//!
//! Arming, cancelling and moving a deadline are O(log n), and O(1) on
//! average for random deadlines: a cancel removes the node where it stands
//! (its position is in the slot's `Meta`), so the heaps never hold stale
//! entries and never need rebuilding. (The previous store cancelled lazily
//! and rebuilt its heaps when stale entries outnumbered live ones; with
//! 10^6 timers pending, that rebuild — a scan with a random `Meta` read
//! per entry — took half of every arm + cancel.)
//!
//! Moving a pending timer's deadline re-keys its node in place, and the
//! timerfd is only re-armed when the earliest firing time moves *earlier*:
//! one armed too early costs a spurious wake-up, after which it is
//! re-armed.
//!
//! Where `timerfd_create` fails (or `FDLOOP_FORCE_NO_TIMERFD=1`), the loop
//! instead bounds its `epoll_wait` timeout by the next firing time and checks
//! the queues after every wait.

mod heap;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::epoll::EventFlags;

use super::token;
use crate::sys;
pub(crate) use crate::sys::timerfd::Clock;
use heap::{Heap, Index, Node};

/// `sub` index the loop passes to a timer source's `process`: the deadline passed.
pub(crate) const SUB_DUE: u8 = 0;
/// `sub` index: the realtime clock was set.
pub(crate) const SUB_CLOCK_SET: u8 = 1;

const CLOCKS: [Clock; 3] = [Clock::Monotonic, Clock::Boottime, Clock::Realtime];

fn clock_index(c: Clock) -> usize {
    match c {
        Clock::Monotonic => 0,
        Clock::Boottime => 1,
        Clock::Realtime => 2,
    }
}

/// epoll tokens of the three timerfds (≥ `token::INTERNAL_MIN`).
pub(crate) fn clock_token(c: Clock) -> u64 {
    token::TIMER - 1 - clock_index(c) as u64
}

pub(crate) fn token_clock(t: u64) -> Option<Clock> {
    CLOCKS.into_iter().find(|c| clock_token(*c) == t)
}

/// A duration in ns, saturating (u64 arithmetic: cheaper than going
/// through `as_nanos`'s u128).
#[inline]
pub(crate) fn duration_ns(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// Converts an `Instant` (CLOCK_MONOTONIC) to nanoseconds on `clock`,
/// rounding so a deadline is never early.
#[inline]
pub(crate) fn instant_to_ns(clock: Clock, when: Instant) -> u64 {
    // `Instant` is CLOCK_MONOTONIC: map it through one fixed anchor pair, so
    // equal instants always give equal deadlines. The anchor's `Instant` is
    // read first, so the clock reading that follows is later and every
    // conversion errs towards a later deadline (never early).
    static ANCHOR: std::sync::OnceLock<(Instant, u64)> = std::sync::OnceLock::new();
    let (now_i, now) = match clock {
        Clock::Monotonic => *ANCHOR.get_or_init(monotonic_anchor),
        // Other clocks drift against CLOCK_MONOTONIC (suspend, clock
        // setting): convert against the current time.
        _ => {
            let i = Instant::now();
            (i, sys::timerfd::now_ns(clock))
        }
    };
    // One subtraction in the common case (a deadline after the anchor).
    match when.checked_duration_since(now_i) {
        Some(ahead) => now.saturating_add(duration_ns(ahead)),
        None => now.saturating_sub(duration_ns(now_i - when)),
    }
}

/// How a clock's timerfd joins epoll: edge-triggered except for the
/// realtime clock (see [`Timers::on_fired`]).
fn timerfd_flags(clock: Clock) -> EventFlags {
    match clock {
        Clock::Realtime => EventFlags::IN,
        _ => EventFlags::IN | EventFlags::ET,
    }
}

/// A pair (`Instant`, CLOCK_MONOTONIC ns) read back to back, for
/// [`instant_to_ns`]. Every monotonic deadline is late by the gap between
/// the two readings, for the life of the process; a preemption between
/// them would make that tens of µs. So the pair is bracketed by a second
/// `Instant` reading and retaken (a few times at most) until the bracket
/// is under 1 µs, keeping the tightest.
fn monotonic_anchor() -> (Instant, u64) {
    let mut best: Option<(Duration, Instant, u64)> = None;
    for _ in 0..8 {
        let i = Instant::now();
        let ns = sys::timerfd::now_ns(Clock::Monotonic);
        let gap = i.elapsed();
        if best.is_none_or(|b| gap < b.0) {
            best = Some((gap, i, ns));
        }
        if gap < Duration::from_micros(1) {
            break;
        }
    }
    match best {
        Some((_, i, ns)) => (i, ns),
        None => (Instant::now(), sys::timerfd::now_ns(Clock::Monotonic)),
    }
}

/// No position (a slot not in that heap).
const NO_POS: u32 = u32::MAX;

/// What the store knows of one slot. 32 bytes: two per cache line.
#[derive(Clone, Copy, Debug)]
struct Meta {
    /// The deadline last scheduled (kept after it is taken due or
    /// cancelled: the source reads it when it runs).
    deadline: u64,
    /// Scheduling order, for ties; 0: not scheduled.
    seq: u64,
    /// Position in the queue's deadline heap (`exact` or `slack_due`).
    pos: u32,
    /// Position in `slack_latest` (timers with slack only).
    pos_latest: u32,
    /// The slot's registration generation when this was scheduled: the
    /// loop dispatches a due timer with it, so a source that took the slot
    /// over in the meantime never receives the old timer's event.
    reg_gen: u32,
    clock: u8,
    /// Scheduled with slack: in `slack_due` and `slack_latest`.
    slacked: bool,
    /// The loop's own wake-up for the slot (the end of a pause or a rate
    /// limit, see `event_loop/hold.rs`), not the source's timer.
    wake: bool,
}

const NO_META: Meta = Meta {
    deadline: 0,
    seq: 0,
    pos: NO_POS,
    pos_latest: NO_POS,
    reg_gen: 0,
    clock: 0,
    slacked: false,
    wake: false,
};

/// The heaps' view of the slots' `Meta`: which position field a heap
/// records (`latest`: `pos_latest`), and the sequence numbers for ties.
struct Ix<'a, const LATEST: bool> {
    meta: &'a mut [Meta],
}

impl<const LATEST: bool> Index for Ix<'_, LATEST> {
    #[inline]
    fn set_pos(&mut self, slot: u32, pos: u32) {
        if let Some(m) = self.meta.get_mut(slot as usize) {
            if LATEST {
                m.pos_latest = pos;
            } else {
                m.pos = pos;
            }
        }
    }

    #[inline]
    fn seq(&self, slot: u32) -> u64 {
        self.meta.get(slot as usize).map_or(0, |m| m.seq)
    }
}

/// The view of the deadline heaps (`exact`, `slack_due`).
fn ix(meta: &mut [Meta]) -> Ix<'_, false> {
    Ix { meta }
}

/// The view of the latest-time heap (`slack_latest`).
fn ix_latest(meta: &mut [Meta]) -> Ix<'_, true> {
    Ix { meta }
}

struct Queue {
    clock: Clock,
    /// Timers without slack, by deadline.
    exact: Heap,
    /// Timers with slack, by deadline.
    slack_due: Heap,
    /// The same timers by deadline + slack.
    slack_latest: Heap,
    fd: Option<OwnedFd>,
    /// Creating the timerfd failed for want of a resource (`EMFILE`,
    /// `ENFILE`, `ENOMEM`): this queue runs on the epoll timeout, as in
    /// the fallback, and the next schedule tries the timerfd again.
    no_fd: bool,
    /// When the timerfd is armed to fire (ns on the clock), if armed.
    armed_at: Option<u64>,
}

impl Queue {
    fn live(&self) -> usize {
        self.exact.len() + self.slack_due.len()
    }

    /// The earliest time (ns on the clock) at which something must run.
    fn next_fire(&self) -> Option<u64> {
        let a = self.exact.peek().map(|n| n.key);
        let b = self.slack_latest.peek().map(|n| n.key);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Every timer of one loop.
pub(crate) struct Timers {
    queues: [Queue; 3],
    /// Per slot.
    meta: Vec<Meta>,
    next_seq: u64,
    /// No timerfds: the loop bounds its wait instead.
    fallback: bool,
    /// Arming the realtime timerfd reported that the clock was set.
    clock_was_set: bool,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        let q = |clock| Queue {
            clock,
            exact: Heap::default(),
            slack_due: Heap::default(),
            slack_latest: Heap::default(),
            fd: None,
            no_fd: false,
            armed_at: None,
        };
        Timers {
            queues: [q(Clock::Monotonic), q(Clock::Boottime), q(Clock::Realtime)],
            meta: Vec::new(),
            next_seq: 1,
            fallback: crate::fallback::forced_no_timerfd(),
            clock_was_set: false,
        }
    }

    /// Nothing scheduled and no notice pending: the loop may skip the store
    /// this iteration.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        !self.clock_was_set && self.queues.iter().all(|q| q.live() == 0)
    }

    /// Whether timers run on the epoll timeout instead of timerfds (all of
    /// them, or those of a clock whose timerfd could not be created for
    /// want of descriptors).
    pub(crate) fn is_fallback(&self) -> bool {
        self.fallback || self.queues.iter().any(|q| q.no_fd)
    }

    /// Schedules the loop's own wake-up for `slot` at `deadline` (ns on the
    /// monotonic clock): see `event_loop/hold.rs`. Needs no new descriptor:
    /// if the monotonic timerfd cannot be created, the epoll timeout
    /// serves.
    ///
    /// # Errors
    ///
    /// As `schedule_gen`.
    pub(crate) fn schedule_wake(
        &mut self,
        ep: BorrowedFd<'_>,
        slot: u32,
        reg_gen: u32,
        deadline: u64,
    ) -> io::Result<()> {
        self.schedule_gen(ep, slot, reg_gen, Clock::Monotonic, deadline, 0)?;
        if let Some(m) = self.meta.get_mut(slot as usize) {
            m.wake = true;
        }
        Ok(())
    }

    /// Cancels `slot`'s schedule if it is the loop's wake-up (not the
    /// source's own timer).
    pub(crate) fn cancel_wake(&mut self, slot: u32) {
        if self.is_wake(slot) {
            let _ = self.cancel(slot);
        }
    }

    /// Whether `slot`'s last schedule was the loop's wake-up.
    pub(crate) fn is_wake(&self, slot: u32) -> bool {
        self.meta.get(slot as usize).is_some_and(|m| m.wake)
    }

    /// Schedules `slot` at `deadline` (ns on `clock`), replacing any earlier
    /// schedule of that slot (test builds; the loop uses `schedule_gen`).
    ///
    /// # Errors
    ///
    /// As `schedule_gen`.
    #[cfg(test)]
    pub(crate) fn schedule(
        &mut self,
        ep: BorrowedFd<'_>,
        slot: u32,
        clock: Clock,
        deadline: u64,
        slack: u64,
    ) -> io::Result<()> {
        self.schedule_gen(ep, slot, 1, clock, deadline, slack)
    }

    /// Schedules `slot` at `deadline` (ns on `clock`) with `slack`,
    /// replacing any earlier schedule of that slot (in place where the
    /// clock and the presence of slack stay the same), and records the
    /// slot's registration generation `reg_gen`. Creates the clock's
    /// timerfd on first use; if that fails with `ENOSYS`/`EPERM`/`EINVAL`,
    /// the store switches to the epoll-timeout fallback.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` creating the timerfd, or adding it to epoll.
    pub(crate) fn schedule_gen(
        &mut self,
        ep: BorrowedFd<'_>,
        slot: u32,
        reg_gen: u32,
        clock: Clock,
        deadline: u64,
        slack: u64,
    ) -> io::Result<()> {
        let qi = clock_index(clock);
        if !self.fallback && self.queues[qi].fd.is_none() {
            match self.open_timerfd(ep, qi) {
                Ok(()) => self.queues[qi].no_fd = false,
                // Out of descriptors (or memory): the timer still runs,
                // on the epoll timeout, until a later schedule gets the
                // timerfd. A loop that must pause under EMFILE can.
                Err(e) if crate::fallback::exhausted(&e) => {
                    if !self.queues[qi].no_fd {
                        crate::trace::notable!(
                            warn,
                            error = %e,
                            "no timerfd for now: this clock's timers run on the epoll timeout"
                        );
                    }
                    self.queues[qi].no_fd = true;
                }
                Err(e) => return Err(e),
            }
        }
        let i = slot as usize;
        if self.meta.len() <= i {
            self.meta.resize(i + 1, NO_META);
        }
        let m = self.meta[i];
        let slacked = slack > 0;
        if m.seq != 0 && m.clock as usize == qi && m.slacked == slacked {
            self.rekey(slot, deadline, Some(slack));
            self.meta[i].reg_gen = reg_gen;
            self.meta[i].wake = false;
            return Ok(());
        }
        if m.seq != 0 {
            // Scheduled on another queue (or heap): leave it first.
            let _ = self.cancel(slot);
        }
        let seq = self.take_seq();
        self.meta[i] = Meta {
            deadline,
            seq,
            pos: NO_POS,
            pos_latest: NO_POS,
            reg_gen,
            clock: qi as u8,
            slacked,
            wake: false,
        };
        let q = &mut self.queues[qi];
        let meta = &mut self.meta;
        let node = Node {
            key: deadline,
            slot,
        };
        if slacked {
            q.slack_due.push(node, &mut ix(meta));
            let latest = Node {
                key: deadline.saturating_add(slack),
                slot,
            };
            q.slack_latest.push(latest, &mut ix_latest(meta));
        } else {
            q.exact.push(node, &mut ix(meta));
        }
        Ok(())
    }

    #[cold]
    fn open_timerfd(&mut self, ep: BorrowedFd<'_>, qi: usize) -> io::Result<()> {
        let clock = CLOCKS[qi];
        match sys::timerfd::create(clock) {
            Ok(fd) => {
                sys::epoll::add(ep, fd.as_fd(), clock_token(clock), timerfd_flags(clock))?;
                self.queues[qi].fd = Some(fd);
            }
            Err(e) if crate::fallback::unavailable(&e) => {
                crate::trace::notable!(
                    warn,
                    error = %e,
                    "timerfd unavailable: timers run on the epoll timeout"
                );
                self.fallback = true;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Moves the scheduled `slot` to `deadline` in place, as a fresh
    /// schedule (last among equal deadlines). `slack`: the new slack, or
    /// `None` to keep the old one (read back from the latest-time heap; a
    /// latest time that saturated at `u64::MAX` stays there).
    fn rekey(&mut self, slot: u32, deadline: u64, slack: Option<u64>) {
        let seq = self.take_seq();
        let Some(m) = self.meta.get_mut(slot as usize) else {
            return;
        };
        m.seq = seq;
        let old = std::mem::replace(&mut m.deadline, deadline);
        let m = *m;
        let q = &mut self.queues[m.clock as usize];
        let meta = &mut self.meta;
        if m.slacked {
            q.slack_due.rekey(m.pos, deadline, &mut ix(meta));
            let latest = q.slack_latest.at(m.pos_latest).map_or(deadline, |n| n.key);
            let new_latest = match slack {
                Some(s) => deadline.saturating_add(s),
                None if latest == u64::MAX => u64::MAX,
                None => deadline.saturating_add(latest - old),
            };
            q.slack_latest
                .rekey(m.pos_latest, new_latest, &mut ix_latest(meta));
        } else {
            q.exact.rekey(m.pos, deadline, &mut ix(meta));
        }
    }

    /// Moves the deadline of `slot`'s pending timer to `at(clock)` if it is
    /// scheduled under registration generation `reg_gen`, keeping its
    /// slack. Returns whether it was. O(log n); no system call.
    pub(crate) fn move_deadline(
        &mut self,
        slot: u32,
        reg_gen: u32,
        at: impl FnOnce(Clock) -> u64,
    ) -> bool {
        let Some(m) = self.meta.get(slot as usize).copied() else {
            return false;
        };
        if m.seq == 0 || m.reg_gen != reg_gen {
            return false;
        }
        let deadline = at(CLOCKS[m.clock as usize]);
        self.rekey(slot, deadline, None);
        true
    }

    /// Cancels whatever `slot` has scheduled. O(log n). Returns the
    /// deadline it was pending at, if it was.
    pub(crate) fn cancel(&mut self, slot: u32) -> Option<u64> {
        let m = self.meta.get(slot as usize).copied()?;
        if m.seq == 0 {
            return None;
        }
        let q = &mut self.queues[m.clock as usize];
        let meta = &mut self.meta;
        if m.slacked {
            q.slack_due.remove(m.pos, &mut ix(meta));
            q.slack_latest.remove(m.pos_latest, &mut ix_latest(meta));
        } else {
            q.exact.remove(m.pos, &mut ix(meta));
        }
        let m = &mut self.meta[slot as usize];
        m.seq = 0;
        m.pos = NO_POS;
        m.pos_latest = NO_POS;
        Some(m.deadline)
    }

    /// The earliest due timer of queue `qi`: (deadline, seq, slot,
    /// slacked).
    fn first_due(&self, qi: usize) -> Option<(u64, u64, u32, bool)> {
        let q = &self.queues[qi];
        let seq = |n: Node| self.meta.get(n.slot as usize).map_or(0, |m| m.seq);
        let a = q.exact.peek().map(|n| (n.key, seq(n), n.slot, false));
        let b = q.slack_due.peek().map(|n| (n.key, seq(n), n.slot, true));
        match (a, b) {
            (Some(a), Some(b)) => Some(if (b.0, b.1) < (a.0, a.1) { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// Pops every timer of `clock` whose deadline is ≤ `now` into `due`
    /// (slots), in deadline order (scheduling order among equal ones),
    /// cancelling their schedules (a periodic timer re-schedules itself
    /// when it runs).
    pub(crate) fn take_due(&mut self, clock: Clock, now: u64, due: &mut Vec<u32>) {
        let qi = clock_index(clock);
        while let Some((deadline, _, slot, slacked)) = self.first_due(qi) {
            if deadline > now {
                break;
            }
            let q = &mut self.queues[qi];
            let meta = &mut self.meta;
            if slacked {
                q.slack_due.remove(0, &mut ix(meta));
                let pl = meta.get(slot as usize).map_or(NO_POS, |m| m.pos_latest);
                q.slack_latest.remove(pl, &mut ix_latest(meta));
            } else {
                q.exact.remove(0, &mut ix(meta));
            }
            if let Some(m) = self.meta.get_mut(slot as usize) {
                m.seq = 0;
                m.pos = NO_POS;
                m.pos_latest = NO_POS;
            }
            due.push(slot);
        }
        let q = &mut self.queues[qi];
        q.armed_at = q.armed_at.filter(|&a| a > now);
    }

    /// The earliest time (ns on the queue's clock) at which something must
    /// run.
    fn next_fire(&self, qi: usize) -> Option<u64> {
        self.queues[qi].next_fire()
    }

    /// Arms each clock's timerfd for its next firing time, where that moved
    /// earlier (or the timer already fired). A timerfd armed too early only
    /// costs a spurious wake-up, after which it is re-armed.
    ///
    /// # Errors
    ///
    /// From `timerfd_settime` (not expected on a valid timerfd).
    pub(crate) fn arm(&mut self) -> io::Result<()> {
        if self.fallback {
            return Ok(());
        }
        for qi in 0..3 {
            let Some(next) = self.next_fire(qi) else {
                continue;
            };
            let q = &mut self.queues[qi];
            let Some(fd) = &q.fd else { continue };
            if q.armed_at.is_some_and(|a| a <= next) {
                continue;
            }
            let at = Some(sys::timerfd::ns_to_timespec(next));
            let realtime = q.clock == Clock::Realtime;
            match sys::timerfd::set_absolute_with(fd, at, realtime) {
                // The wall clock was set since the timer was last armed: an
                // event for the realtime timers; arming again succeeds.
                Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {
                    self.clock_was_set = true;
                    sys::timerfd::set_absolute_with(fd, at, realtime)?;
                }
                r => r?,
            }
            q.armed_at = Some(next);
        }
        Ok(())
    }

    /// Fallback mode: how long the loop may wait before a timer must run.
    pub(crate) fn fallback_timeout(&mut self) -> Option<Duration> {
        if !self.is_fallback() {
            return None;
        }
        let mut best: Option<u64> = None;
        for (qi, clock) in CLOCKS.into_iter().enumerate() {
            if !self.fallback && !self.queues[qi].no_fd {
                continue;
            }
            if let Some(next) = self.next_fire(qi) {
                let wait = next.saturating_sub(sys::timerfd::now_ns(clock));
                best = Some(best.map_or(wait, |b| b.min(wait)));
            }
        }
        best.map(Duration::from_nanos)
    }

    /// The registration generation `slot` was last scheduled under (kept
    /// after the schedule is taken due or cancelled).
    pub(crate) fn reg_gen_of(&self, slot: u32) -> u32 {
        self.meta.get(slot as usize).map_or(0, |m| m.reg_gen)
    }

    /// The deadline `slot` was last scheduled at under `reg_gen`, and
    /// whether that schedule is still pending.
    pub(crate) fn deadline_of(&self, slot: u32, reg_gen: u32) -> Option<(u64, bool)> {
        let m = self.meta.get(slot as usize)?;
        (m.reg_gen == reg_gen && reg_gen != 0).then_some((m.deadline, m.seq != 0))
    }

    /// Takes the "wall clock was set" notice that [`arm`](Timers::arm) may
    /// have found.
    pub(crate) fn take_clock_set(&mut self) -> bool {
        std::mem::take(&mut self.clock_was_set)
    }

    /// The clock's timerfd fired: consume it. Returns whether the clock was
    /// set (a cancel-on-set realtime timer read `ECANCELED`).
    ///
    /// The monotonic and boottime timerfds are edge-triggered and never
    /// read: each expiry is one new event, and re-arming resets the count.
    /// That saves a `read` between the wake-up and the callbacks (one
    /// system call of three per sequential timer). The realtime timerfd is
    /// level-triggered and read, because the read is what reports a clock
    /// set (`ECANCELED`).
    pub(crate) fn on_fired(&mut self, clock: Clock) -> bool {
        let q = &mut self.queues[clock_index(clock)];
        q.armed_at = None;
        if clock != Clock::Realtime {
            return false;
        }
        match &q.fd {
            Some(fd) => matches!(
                sys::timerfd::read_expirations(fd),
                Err(e) if e.raw_os_error() == Some(libc::ECANCELED)
            ),
            None => false,
        }
    }

    /// Every slot with a live realtime schedule (to tell them the clock was
    /// set).
    pub(crate) fn realtime_slots(&self, out: &mut Vec<u32>) {
        let q = &self.queues[clock_index(Clock::Realtime)];
        let start = out.len();
        out.extend(q.exact.nodes().iter().map(|n| n.slot));
        out.extend(q.slack_due.nodes().iter().map(|n| n.slot));
        // In slot order, as before (the heaps' storage order is arbitrary).
        out[start..].sort_unstable();
    }
}

#[cfg(all(test, not(loom)))]
mod proptests {
    //! The timer store against a model: a `BTreeMap` ordered by
    //! (deadline, scheduling order) per clock. Random sequences of schedule,
    //! cancel, move_deadline, take_due and next_fire must agree with it
    //! exactly: the same due slots in the same order, the same next firing
    //! time, the same live count. After every step the structure's own
    //! invariants hold: every heap ordered; every node's slot records that
    //! node's position; each live slot in exactly its clock's heaps (one
    //! without slack, both slack heaps with); no node of a slot that is
    //! not live (no stale entries, ever).
    use std::collections::BTreeMap;
    use std::os::fd::AsFd;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Schedule {
            slot: u32,
            clock: usize,
            deadline: u64,
            slack: u64,
        },
        Cancel {
            slot: u32,
        },
        /// `move_deadline` (the handle's `reschedule_timer_*`).
        Move {
            slot: u32,
            deadline: u64,
        },
        TakeDue {
            clock: usize,
            now: u64,
        },
        /// Schedules `n` timers on fresh slots, then cancels them all.
        Burst {
            clock: usize,
            n: u32,
            deadline: u64,
        },
        Arm,
    }

    const SLOTS: u32 = 16;
    const BURST_BASE: u32 = 1000;

    fn deadline() -> impl Strategy<Value = u64> {
        prop_oneof![
            8 => 0u64..1000,
            1 => (u64::MAX - 100)..=u64::MAX,
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0..SLOTS, 0usize..3, deadline(), prop_oneof![0u64..50, Just(u64::MAX)])
                .prop_map(|(slot, clock, deadline, slack)| Op::Schedule { slot, clock, deadline, slack }),
            3 => (0..SLOTS).prop_map(|slot| Op::Cancel { slot }),
            3 => (0..SLOTS, deadline()).prop_map(|(slot, deadline)| Op::Move { slot, deadline }),
            4 => (0usize..3, prop_oneof![0u64..1200, Just(u64::MAX)])
                .prop_map(|(clock, now)| Op::TakeDue { clock, now }),
            1 => (0usize..3, 1025u32..1500, deadline())
                .prop_map(|(clock, n, deadline)| Op::Burst { clock, n, deadline }),
            1 => Just(Op::Arm),
        ]
    }

    /// What the store should hold.
    #[derive(Default)]
    struct Model {
        /// slot → (clock, deadline, slack, seq)
        live: BTreeMap<u32, (usize, u64, u64, u64)>,
        /// Per clock: (deadline, seq) → slot.
        queues: [BTreeMap<(u64, u64), u32>; 3],
        seq: u64,
    }

    impl Model {
        fn cancel(&mut self, slot: u32) {
            if let Some((clock, deadline, _, seq)) = self.live.remove(&slot) {
                self.queues[clock].remove(&(deadline, seq));
            }
        }

        fn schedule(&mut self, slot: u32, clock: usize, deadline: u64, slack: u64) {
            self.cancel(slot);
            self.seq += 1;
            self.live.insert(slot, (clock, deadline, slack, self.seq));
            self.queues[clock].insert((deadline, self.seq), slot);
        }

        /// Moves a live timer: a fresh schedule with the same clock and
        /// slack — except that a timer with slack whose latest time
        /// saturated stays saturated (the store reads the slack back from
        /// it).
        fn move_deadline(&mut self, slot: u32, deadline: u64) -> bool {
            let Some(&(clock, old, slack, _)) = self.live.get(&slot) else {
                return false;
            };
            let slack = if slack > 0 && old.saturating_add(slack) == u64::MAX {
                u64::MAX
            } else {
                slack
            };
            self.schedule(slot, clock, deadline, slack);
            true
        }

        fn take_due(&mut self, clock: usize, now: u64) -> Vec<u32> {
            let mut due = Vec::new();
            while let Some((&(deadline, _), &slot)) = self.queues[clock].first_key_value() {
                if deadline > now {
                    break;
                }
                self.queues[clock].pop_first();
                self.live.remove(&slot);
                due.push(slot);
            }
            due
        }

        fn next_fire(&self, clock: usize) -> Option<u64> {
            self.live
                .values()
                .filter(|v| v.0 == clock)
                .map(|&(_, deadline, slack, _)| deadline.saturating_add(slack))
                .min()
        }
    }

    /// The structure's invariants (see the module docs).
    fn check_structure(t: &mut Timers, m: &Model) -> Result<(), TestCaseError> {
        let meta = &mut t.meta;
        for (qi, q) in t.queues.iter().enumerate() {
            let heaps = [
                (&q.exact, false),
                (&q.slack_due, false),
                (&q.slack_latest, true),
            ];
            for (k, (h, latest)) in heaps.into_iter().enumerate() {
                prop_assert!(h.is_ordered(&ix(meta)), "heap {} of clock {}", k, qi);
                for (i, n) in h.nodes().iter().enumerate() {
                    let mt = meta[n.slot as usize];
                    let pos = if latest { mt.pos_latest } else { mt.pos };
                    prop_assert_eq!(pos, i as u32, "position of slot {}", n.slot);
                    prop_assert!(mt.seq != 0, "stale node of slot {}", n.slot);
                    prop_assert_eq!(mt.clock as usize, qi);
                    prop_assert_eq!(mt.slacked, k > 0, "slot {} in heap {}", n.slot, k);
                    let &(clock, deadline, slack, _) = m.live.get(&n.slot).unwrap();
                    prop_assert_eq!(clock, qi);
                    let key = if latest {
                        deadline.saturating_add(slack)
                    } else {
                        deadline
                    };
                    prop_assert_eq!(n.key, key, "key of slot {} in heap {}", n.slot, k);
                }
            }
            prop_assert_eq!(q.slack_due.len(), q.slack_latest.len());
        }
        for (slot, mt) in meta.iter().enumerate() {
            prop_assert_eq!(
                mt.seq != 0,
                m.live.contains_key(&(slot as u32)),
                "slot {}",
                slot
            );
        }
        Ok(())
    }

    fn run(ops: Vec<Op>, use_timerfd: bool) -> Result<(), TestCaseError> {
        let epoll = sys::epoll::create().unwrap();
        let ep = epoll.as_fd();
        let mut t = Timers::new();
        if !use_timerfd {
            t.fallback = true;
        }
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Schedule {
                    slot,
                    clock,
                    deadline,
                    slack,
                } => {
                    t.schedule(ep, slot, CLOCKS[clock], deadline, slack)
                        .unwrap();
                    m.schedule(slot, clock, deadline, slack);
                }
                Op::Cancel { slot } => {
                    let _ = t.cancel(slot);
                    m.cancel(slot);
                }
                Op::Move { slot, deadline } => {
                    let moved = t.move_deadline(slot, 1, |_| deadline);
                    prop_assert_eq!(moved, m.move_deadline(slot, deadline));
                    // Another registration generation's schedule is not moved.
                    prop_assert!(!t.move_deadline(slot, 2, |_| deadline));
                }
                Op::TakeDue { clock, now } => {
                    let mut due = Vec::new();
                    t.take_due(CLOCKS[clock], now, &mut due);
                    prop_assert_eq!(due, m.take_due(clock, now), "take_due({}, {})", clock, now);
                }
                Op::Burst { clock, n, deadline } => {
                    for k in 0..n {
                        t.schedule(ep, BURST_BASE + k, CLOCKS[clock], deadline, 0)
                            .unwrap();
                    }
                    for k in 0..n {
                        let _ = t.cancel(BURST_BASE + k);
                    }
                }
                Op::Arm => {
                    t.arm().unwrap();
                    if !t.fallback {
                        for qi in 0..3 {
                            if let Some(next) = t.next_fire(qi) {
                                // Armed no later than the next firing time.
                                let armed = t.queues[qi].armed_at;
                                prop_assert!(
                                    armed.is_some_and(|a| a <= next),
                                    "{:?} {}",
                                    armed,
                                    next
                                );
                            }
                        }
                    }
                }
            }
            for qi in 0..3 {
                prop_assert_eq!(t.next_fire(qi), m.next_fire(qi), "next_fire({})", qi);
                let live = m.live.values().filter(|v| v.0 == qi).count();
                prop_assert_eq!(t.queues[qi].live(), live, "live count of clock {}", qi);
            }
            check_structure(&mut t, &m)?;
        }
        // Draining everything gives every live timer once, in order.
        for (qi, clock) in CLOCKS.into_iter().enumerate() {
            let mut due = Vec::new();
            t.take_due(clock, u64::MAX, &mut due);
            prop_assert_eq!(due, m.take_due(qi, u64::MAX));
            prop_assert_eq!(t.next_fire(qi), None);
        }
        Ok(())
    }

    #[test]
    fn moving_a_timer_without_slack_from_the_end_of_time() {
        // A deadline of u64::MAX without slack is not a saturated latest
        // time: once moved, the timer is due at its new deadline.
        let ops = vec![
            Op::Schedule {
                slot: 3,
                clock: 0,
                deadline: u64::MAX,
                slack: 0,
            },
            Op::Move {
                slot: 3,
                deadline: 7,
            },
            Op::TakeDue { clock: 0, now: 7 },
        ];
        run(ops, false).unwrap();
    }

    /// `cases` by default, 40 times as many with `FDLOOP_SOAK=1`.
    fn config(cases: u32) -> ProptestConfig {
        let soak = std::env::var("FDLOOP_SOAK").is_ok_and(|v| !v.is_empty() && v != "0");
        ProptestConfig {
            cases: if soak { cases * 40 } else { cases },
            // No regression files written into the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config(256))]
        #[test]
        fn timer_store_matches_the_model(ops in prop::collection::vec(op(), 1..120)) {
            run(ops, false)?;
        }
    }

    proptest! {
        #![proptest_config(config(32))]
        #[test]
        fn timer_store_with_timerfds_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
            run(ops, true)?;
        }
    }
}
