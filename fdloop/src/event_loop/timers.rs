//! The loop's timer store: one queue and one timerfd per clock.
//!
//! Each queue keeps two binary heaps of `(time, seq, slot)`: by deadline
//! (what is due) and by latest acceptable firing time, deadline + slack (when
//! the timerfd must fire at the latest). The timerfd is armed, absolute, at
//! the earliest latest-time; when it fires, every timer whose *deadline* has
//! passed runs — so timers whose slack windows overlap share one wake-up.
//!
//! Cancelling is O(1): the slot's current sequence number is cleared, and
//! heap entries whose sequence no longer matches are skipped when they reach
//! the top (lazy deletion). When stale entries outnumber live ones the heaps
//! are rebuilt, so memory stays proportional to the live timers. Arming is
//! O(log n).
//!
//! Where `timerfd_create` fails (or `FDLOOP_FORCE_NO_TIMERFD=1`), the loop
//! instead bounds its `epoll_wait` timeout by the next firing time and checks
//! the queues after every wait.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::epoll::EventFlags;

use super::token;
use crate::sys;
pub(crate) use crate::sys::timerfd::Clock;

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

type Heap = BinaryHeap<Reverse<(u64, u64, u32)>>;

struct Queue {
    clock: Clock,
    by_deadline: Heap,
    by_latest: Heap,
    fd: Option<OwnedFd>,
    /// When the timerfd is armed to fire (ns on the clock), if armed.
    armed_at: Option<u64>,
    live: usize,
    stale: usize,
}

/// What is scheduled for one slot.
#[derive(Clone, Copy)]
struct Current {
    seq: u64,
    clock: u8,
    /// The slot's registration generation when this was scheduled: the loop
    /// dispatches a due timer with it, so a source that took the slot over
    /// in the meantime never receives the old timer's event.
    reg_gen: u32,
}

/// Every timer of one loop.
pub(crate) struct Timers {
    queues: [Queue; 3],
    /// Per slot: the live schedule, if any (`seq == 0`: none).
    current: Vec<Current>,
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
            by_deadline: BinaryHeap::new(),
            by_latest: BinaryHeap::new(),
            fd: None,
            armed_at: None,
            live: 0,
            stale: 0,
        };
        Timers {
            queues: [q(Clock::Monotonic), q(Clock::Boottime), q(Clock::Realtime)],
            current: Vec::new(),
            next_seq: 1,
            fallback: crate::fallback::forced_no_timerfd(),
            clock_was_set: false,
        }
    }

    /// Nothing scheduled and no notice pending: the loop may skip the store
    /// this iteration.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        !self.clock_was_set && self.queues.iter().all(|q| q.live == 0)
    }

    /// Whether timers run on the epoll timeout instead of timerfds.
    pub(crate) fn is_fallback(&self) -> bool {
        self.fallback
    }

    /// Schedules `slot` at `deadline` (ns on `clock`), replacing any earlier
    /// schedule of that slot. Creates the clock's timerfd on first use; if
    /// that fails with `ENOSYS`/`EPERM`/`EINVAL`, the store switches to the
    /// epoll-timeout fallback.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` creating the timerfd, or adding it to epoll.
    #[cfg(test)]
    pub(crate) fn schedule(
        &mut self,
        ep: BorrowedFd<'_>,
        slot: u32,
        clock: Clock,
        deadline: u64,
        slack: u64,
    ) -> io::Result<()> {
        self.schedule_gen(ep, slot, 0, clock, deadline, slack)
    }

    /// `schedule` (test builds only), recording the slot's registration
    /// generation `reg_gen`.
    pub(crate) fn schedule_gen(
        &mut self,
        ep: BorrowedFd<'_>,
        slot: u32,
        reg_gen: u32,
        clock: Clock,
        deadline: u64,
        slack: u64,
    ) -> io::Result<()> {
        self.cancel(slot);
        let qi = clock_index(clock);
        if !self.fallback && self.queues[qi].fd.is_none() {
            match sys::timerfd::create(clock) {
                Ok(fd) => {
                    sys::epoll::add(ep, fd.as_fd(), clock_token(clock), EventFlags::IN)?;
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
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let i = slot as usize;
        if self.current.len() <= i {
            self.current.resize(
                i + 1,
                Current {
                    seq: 0,
                    clock: 0,
                    reg_gen: 0,
                },
            );
        }
        self.current[i] = Current {
            seq,
            clock: qi as u8,
            reg_gen,
        };
        let q = &mut self.queues[qi];
        q.by_deadline.push(Reverse((deadline, seq, slot)));
        q.by_latest
            .push(Reverse((deadline.saturating_add(slack), seq, slot)));
        q.live += 1;
        Ok(())
    }

    /// Cancels whatever `slot` has scheduled. O(1).
    pub(crate) fn cancel(&mut self, slot: u32) {
        let Some(cur) = self.current.get_mut(slot as usize) else {
            return;
        };
        if cur.seq == 0 {
            return;
        }
        cur.seq = 0;
        let q = &mut self.queues[cur.clock as usize];
        q.live -= 1;
        q.stale += 1;
        if q.stale > 1024 && q.stale > q.live {
            let cur = &self.current;
            let keep = |e: &Reverse<(u64, u64, u32)>| {
                let (_, seq, slot) = e.0;
                cur.get(slot as usize).is_some_and(|c| c.seq == seq)
            };
            q.by_deadline.retain(keep);
            q.by_latest.retain(keep);
            q.stale = 0;
        }
    }

    fn valid(&self, seq: u64, slot: u32) -> bool {
        self.current
            .get(slot as usize)
            .is_some_and(|c| c.seq == seq)
    }

    /// Pops every timer of `clock` whose deadline is ≤ `now` into `due`
    /// (slots), cancelling their schedules (a periodic timer re-schedules
    /// itself when it runs).
    pub(crate) fn take_due(&mut self, clock: Clock, now: u64, due: &mut Vec<u32>) {
        let qi = clock_index(clock);
        while let Some(&Reverse((deadline, seq, slot))) = self.queues[qi].by_deadline.peek() {
            if !self.valid(seq, slot) {
                self.queues[qi].by_deadline.pop();
                self.queues[qi].stale = self.queues[qi].stale.saturating_sub(1);
                continue;
            }
            if deadline > now {
                break;
            }
            self.queues[qi].by_deadline.pop();
            self.current[slot as usize].seq = 0;
            self.queues[qi].live -= 1;
            due.push(slot);
        }
        self.queues[qi].armed_at = self.queues[qi].armed_at.filter(|&a| a > now);
    }

    /// The earliest time (ns on `clock`) at which something must run.
    fn next_fire(&mut self, qi: usize) -> Option<u64> {
        loop {
            let &Reverse((latest, seq, slot)) = self.queues[qi].by_latest.peek()?;
            if self.valid(seq, slot) {
                return Some(latest);
            }
            self.queues[qi].by_latest.pop();
        }
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
    pub(crate) fn fallback_timeout(&mut self) -> Option<std::time::Duration> {
        if !self.fallback {
            return None;
        }
        let mut best: Option<u64> = None;
        for (qi, clock) in CLOCKS.into_iter().enumerate() {
            if let Some(next) = self.next_fire(qi) {
                let wait = next.saturating_sub(sys::timerfd::now_ns(clock));
                best = Some(best.map_or(wait, |b| b.min(wait)));
            }
        }
        best.map(std::time::Duration::from_nanos)
    }

    /// The registration generation `slot` was last scheduled under (kept
    /// after the schedule is taken due or cancelled).
    pub(crate) fn reg_gen_of(&self, slot: u32) -> u32 {
        self.current.get(slot as usize).map_or(0, |c| c.reg_gen)
    }

    /// Takes the "wall clock was set" notice that [`arm`](Timers::arm) may
    /// have found.
    pub(crate) fn take_clock_set(&mut self) -> bool {
        std::mem::take(&mut self.clock_was_set)
    }

    /// The clock's timerfd fired: consume it. Returns whether the clock was
    /// set (a cancel-on-set realtime timer read `ECANCELED`).
    pub(crate) fn on_fired(&mut self, clock: Clock) -> bool {
        let q = &mut self.queues[clock_index(clock)];
        q.armed_at = None;
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
        let ri = clock_index(Clock::Realtime) as u8;
        out.extend(
            self.current
                .iter()
                .enumerate()
                .filter(|(_, c)| c.seq != 0 && c.clock == ri)
                .map(|(i, _)| i as u32),
        );
    }
}

#[cfg(all(test, not(loom)))]
mod proptests {
    //! The timer store against a model: a `BTreeMap` ordered by
    //! (deadline, scheduling order) per clock. Random sequences of schedule,
    //! cancel, take_due and next_fire must agree with it exactly: the same
    //! due slots in the same order, the same next firing time, the same live
    //! count. Bursts of cancellations exercise the heap rebuild.
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
        TakeDue {
            clock: usize,
            now: u64,
        },
        /// Schedules `n` timers on fresh slots, then cancels them all
        /// (more than 1024 stale entries: the heaps are rebuilt).
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
                    t.cancel(slot);
                    m.cancel(slot);
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
                        t.cancel(BURST_BASE + k);
                    }
                    // Rebuilt: no more stale entries than the rule allows.
                    let q = &t.queues[clock];
                    prop_assert!(q.stale <= 1024 || q.stale <= q.live, "stale {}", q.stale);
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
                let q = &t.queues[qi];
                prop_assert_eq!(q.live, live, "live count of clock {}", qi);
                // Every deadline-heap entry is live or counted stale.
                prop_assert_eq!(q.by_deadline.len(), q.live + q.stale);
            }
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
