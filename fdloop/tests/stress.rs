//! Load: many producers into one loop, ping-pong between two loops, and
//! random insertion/removal of thousands of sources while events fire —
//! with every message and every event accounted for.
//!
//! Sizes: the default run is sized for CI (debug build, 2 cores shared with
//! other jobs); `FDLOOP_SOAK=1` runs the long sizes (use `--release`):
//!
//! | test                         | default          | FDLOOP_SOAK=1     |
//! |------------------------------|------------------|-------------------|
//! | producers (×4, per producer) | 2·10^5 messages  | 10^7 messages     |
//! | ping-pong round trips        | 2·10^4           | 10^6              |
//! | churn: sources inserted      | 10^4             | 10^5              |

mod util;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fdloop::channel::{self, Event, Receiver, Sender};
use fdloop::{
    Action, EventFd, EventLoop, Interest, Io, IoCtl, LoopHandle, Mode, Ping, PingHandle, Readiness,
    SourceId, Timer,
};
use util::XorShift;

const PRODUCERS: usize = 4;
const SEQ_BITS: u32 = 48;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

// ---------------------------------------------------------------------------
// 4 producers × N messages into one loop.

#[derive(Default)]
struct Tally {
    next: [u64; PRODUCERS],
    total: u64,
    closed: u32,
}

fn producers_into_one_loop(capacity: Option<usize>) {
    let n = util::size(200_000, 10_000_000);
    let (tx, rx) = match capacity {
        Some(c) => channel::bounded::<u64>(c),
        None => channel::unbounded::<u64>(),
    }
    .unwrap();
    let mut ev: EventLoop<Tally> = EventLoop::new().unwrap();
    ev.insert(rx, move |event, _, t: &mut Tally| {
        match event {
            Event::Msg(m) => {
                let p = (m >> SEQ_BITS) as usize;
                let seq = m & SEQ_MASK;
                // Per-producer FIFO; with the final counts this also proves
                // the exact multiset (each (p, seq) once, none missing).
                assert_eq!(seq, t.next[p], "producer {p}: out of order or lost");
                t.next[p] += 1;
                t.total += 1;
            }
            Event::Closed => {
                assert_eq!(t.total, PRODUCERS as u64 * n, "Closed before the end");
                t.closed += 1;
            }
        }
        Action::Continue
    })
    .unwrap();
    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS as u64)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..n {
                    tx.send(p << SEQ_BITS | i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut t = Tally::default();
    // A wake-up may find nothing (the receiver re-arms itself in a race),
    // so progress is judged by the clock, not per iteration.
    let (mut seen, mut since) = (0, Instant::now());
    while t.closed == 0 {
        ev.run_once(&mut t, Some(Duration::from_secs(1))).unwrap();
        if t.total > seen {
            (seen, since) = (t.total, Instant::now());
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "no progress for 10 s at {} messages",
            t.total
        );
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(t.next, [n; PRODUCERS]);
    assert_eq!(t.closed, 1);
    // Closed came once and the source left the loop.
    assert_eq!(
        ev.run_once(&mut t, Some(Duration::from_millis(2))).unwrap(),
        0
    );
    assert!(ev.is_empty());
    eprintln!(
        "{PRODUCERS}×{n} messages ({capacity:?}) in {:?}",
        start.elapsed()
    );
}

#[test]
fn four_producers_unbounded_exact_per_producer_order() {
    producers_into_one_loop(None);
}

#[test]
fn four_producers_bounded_64_exact_per_producer_order() {
    producers_into_one_loop(Some(64));
}

// ---------------------------------------------------------------------------
// Ping-pong between two loops, each on its own thread.

struct Side {
    /// Replies this side has received (checked in order).
    got: u64,
    rounds: u64,
    out: Option<Sender<u64>>,
    closed: bool,
}

/// Runs one side: on each message `k` (which must be the next expected
/// number), sends `k + 1` back; the initiator stops after `rounds` replies
/// and drops its sender, which closes the other side.
fn side(rx: Receiver<u64>, out: Sender<u64>, rounds: u64, initiator: bool) -> Side {
    let mut ev: EventLoop<Side> = EventLoop::new().unwrap();
    let h = ev.handle();
    ev.insert(rx, move |event, _, s: &mut Side| {
        match event {
            Event::Msg(k) => {
                // The initiator sends even numbers and receives odd ones.
                let want = 2 * s.got + u64::from(initiator);
                assert_eq!(k, want, "ping-pong lost or reordered a message");
                s.got += 1;
                if initiator && s.got == s.rounds {
                    s.out = None; // closes the other side
                    h.stop();
                } else if let Some(out) = &s.out {
                    out.send(k + 1).unwrap();
                }
            }
            Event::Closed => {
                s.closed = true;
                h.stop();
            }
        }
        Action::Continue
    })
    .unwrap();
    if initiator {
        out.send(0).unwrap();
    }
    let mut s = Side {
        got: 0,
        rounds,
        out: Some(out),
        closed: false,
    };
    ev.run(&mut s).unwrap();
    s
}

fn ping_pong(capacity: Option<usize>) {
    let rounds = util::size(20_000, 1_000_000);
    let make = || match capacity {
        Some(c) => channel::bounded::<u64>(c).unwrap(),
        None => channel::unbounded::<u64>().unwrap(),
    };
    let (to_b, b_rx) = make();
    let (to_a, a_rx) = make();
    let start = Instant::now();
    let b = thread::spawn(move || side(b_rx, to_a, rounds, false));
    let a = side(a_rx, to_b, rounds, true);
    let b = b.join().unwrap();
    assert_eq!(a.got, rounds);
    assert_eq!(b.got, rounds);
    assert!(b.closed, "the responder never saw Closed");
    eprintln!(
        "{rounds} round trips ({capacity:?}) in {:?}",
        start.elapsed()
    );
}

#[test]
fn ping_pong_between_two_loops_unbounded() {
    ping_pong(None);
}

#[test]
fn ping_pong_between_two_loops_bounded_1() {
    ping_pong(Some(1));
}

// ---------------------------------------------------------------------------
// Churn: random insert/remove of Io (eventfd), Timer and Ping sources while
// events fire; removal and insertion also happen inside callbacks.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Io,
    Timer,
    Ping,
}

struct Rec {
    id: Option<SourceId>,
    kind: Kind,
    /// In the loop, as far as the model knows.
    live: bool,
    /// Made ready and not yet dispatched (Io, Ping).
    pending: bool,
    /// Timers: not before this.
    deadline: Option<Instant>,
    fired: u32,
    efd: Option<Arc<EventFd>>,
    ping: Option<PingHandle>,
}

struct Churn {
    h: LoopHandle<Churn>,
    recs: Vec<Rec>,
    /// Tags of live sources.
    live: Vec<usize>,
    rng: XorShift,
    target: usize,
    /// No more random operations (final drain).
    calm: bool,
    events: u64,
    removed: u64,
    made_ready: u64,
    /// Io callbacks that came with no readiness at all for a source that
    /// was not made ready (see `timer_slot_reuse_delivers_a_stale_event`).
    stale: u64,
}

impl Churn {
    fn insert(&mut self) {
        if self.recs.len() >= self.target {
            return;
        }
        let tag = self.recs.len();
        let kind = [Kind::Io, Kind::Timer, Kind::Ping][self.rng.below(3)];
        let mut rec = Rec {
            id: None,
            kind,
            live: true,
            pending: false,
            deadline: None,
            fired: 0,
            efd: None,
            ping: None,
        };
        let h = self.h.clone();
        let id = match kind {
            Kind::Io => {
                let efd = Arc::new(EventFd::options().nonblocking(true).open().unwrap());
                rec.efd = Some(efd.clone());
                h.insert(
                    Io::new(efd, Interest::READABLE, Mode::Level),
                    move |r: Readiness, io: &mut IoCtl<Arc<EventFd>>, st: &mut Churn| {
                        if !(r.is_readable() || r.is_error() || r.is_hangup()) {
                            st.stale += 1;
                            return Action::Continue;
                        }
                        io.read().unwrap();
                        st.on_event(tag)
                    },
                )
                .map_err(fdloop::Error::from)
            }
            Kind::Timer => {
                let d = Duration::from_micros(self.rng.below(3000) as u64);
                rec.deadline = Some(Instant::now() + d);
                h.insert(Timer::after(d), move |_, _, st: &mut Churn| {
                    st.on_event(tag)
                })
                .map_err(fdloop::Error::from)
            }
            Kind::Ping => {
                let (handle, ping) = Ping::new().unwrap();
                rec.ping = Some(handle);
                h.insert(ping, move |(), _, st: &mut Churn| st.on_event(tag))
                    .map_err(fdloop::Error::from)
            }
        }
        .unwrap();
        rec.id = Some(id);
        self.recs.push(rec);
        self.live.push(tag);
        if kind != Kind::Timer && self.rng.below(2) == 0 {
            self.make_ready(tag);
        }
    }

    fn make_ready(&mut self, tag: usize) {
        let r = &mut self.recs[tag];
        match r.kind {
            Kind::Io => r.efd.as_ref().unwrap().write(1).unwrap(),
            Kind::Ping => r.ping.as_ref().unwrap().ping().unwrap(),
            Kind::Timer => return,
        }
        r.pending = true;
        self.made_ready += 1;
    }

    fn remove_random(&mut self) {
        if self.live.is_empty() {
            return;
        }
        let k = self.rng.below(self.live.len());
        let tag = self.live.swap_remove(k);
        let r = &mut self.recs[tag];
        r.live = false;
        // The model's references go too: the descriptors close with the
        // loop's (a soak run makes 10^5 sources).
        r.efd = None;
        r.ping = None;
        self.removed += 1;
        self.h.remove(r.id.unwrap()).unwrap();
    }

    fn ready_random(&mut self) {
        if !self.live.is_empty() {
            let k = self.rng.below(self.live.len());
            self.make_ready(self.live[k]);
        }
    }

    fn random_op(&mut self) {
        match self.rng.below(10) {
            0 | 1 => self.remove_random(),
            2 | 3 => self.insert(),
            4..=6 => self.ready_random(),
            _ => {}
        }
    }

    fn on_event(&mut self, tag: usize) -> Action {
        let r = &mut self.recs[tag];
        assert!(r.live, "event for removed source {tag} ({:?})", r.kind);
        self.events += 1;
        match r.kind {
            Kind::Io | Kind::Ping => {
                assert!(r.pending, "event for {tag} ({:?}) never made ready", r.kind);
                r.pending = false;
            }
            Kind::Timer => {
                let now = Instant::now();
                assert!(now >= r.deadline.unwrap(), "timer {tag} fired early");
                r.fired += 1;
                assert_eq!(r.fired, 1, "one-shot timer {tag} fired twice");
                // A one-shot leaves the loop after its callback.
                r.live = false;
                let k = self.live.iter().position(|&t| t == tag).unwrap();
                self.live.swap_remove(k);
            }
        }
        if !self.calm {
            for _ in 0..2 {
                self.random_op();
            }
        }
        Action::Continue
    }
}

struct ChurnReport {
    inserted: usize,
    events: u64,
    removed: u64,
    stale: u64,
}

fn churn(seed: u64) -> ChurnReport {
    let target = util::size(10_000, 100_000) as usize;
    let mut ev: EventLoop<Churn> = EventLoop::new().unwrap();
    let mut st = Churn {
        h: ev.handle(),
        recs: Vec::new(),
        live: Vec::new(),
        rng: XorShift(seed),
        target,
        calm: false,
        events: 0,
        removed: 0,
        made_ready: 0,
        stale: 0,
    };
    while st.recs.len() < target {
        if st.live.len() < 256 {
            for _ in 0..8 {
                st.insert();
            }
        }
        for _ in 0..4 {
            st.random_op();
        }
        ev.run_once(&mut st, Some(Duration::from_micros(200)))
            .unwrap();
        assert_eq!(ev.len(), st.live.len(), "loop and model disagree");
    }
    // Final drain: every source made ready must be dispatched, and every
    // timer still in the loop must fire.
    st.calm = true;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = st.live.iter().any(|&t| {
            let r = &st.recs[t];
            r.pending || r.kind == Kind::Timer
        });
        if !waiting {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ready sources not dispatched after 10 s"
        );
        ev.run_once(&mut st, Some(Duration::from_millis(5)))
            .unwrap();
    }
    assert_eq!(ev.len(), st.live.len());
    // Nothing more comes: no source is pending, and a removed source
    // never spoke (asserted in `on_event`).
    ev.run_once(&mut st, Some(Duration::from_millis(5)))
        .unwrap();
    for r in &st.recs {
        if r.kind == Kind::Timer && r.live {
            panic!("a live timer never fired");
        }
        assert!(!(r.live && r.pending));
        assert!(r.fired <= 1);
    }
    let timers_fired = st.recs.iter().filter(|r| r.fired == 1).count();
    assert!(timers_fired > 100, "only {timers_fired} timers fired");
    ChurnReport {
        inserted: st.recs.len(),
        events: st.events,
        removed: st.removed,
        stale: st.stale,
    }
}

#[test]
fn churn_insert_remove_ten_thousand_sources_every_event_accounted_for() {
    let start = Instant::now();
    let r = churn(0x9e37_79b9_7f4a_7c15);
    eprintln!(
        "churn: {} sources, {} events, {} removals, {} stale in {:?}",
        r.inserted,
        r.events,
        r.removed,
        r.stale,
        start.elapsed()
    );
    assert_eq!(r.inserted, util::size(10_000, 100_000) as usize);
    assert_eq!(r.stale, 0, "events delivered to sources never made ready");
    assert!(r.removed > 1000, "only {} removals", r.removed);
    assert!(r.events > 5000, "only {} events", r.events);
}

/// Regression test (bug found by this suite, fixed): when two timers are due in the same
/// batch and the first one's callback removes the second and inserts a new
/// source, the new source takes the freed slot and `run_timers` dispatches
/// the stale "timer due" event to it: the slot's *current* registration
/// generation is read at dispatch time (event_loop/mod.rs, `run_timers`)
/// instead of the one the timer was scheduled under. An `Io` source that
/// was never ready gets a callback with an empty `Readiness`.
#[test]
fn timer_slot_reuse_delivers_a_stale_event() {
    #[derive(Default)]
    struct St {
        io_calls: u32,
        victim: Option<SourceId>,
    }
    let mut ev: EventLoop<St> = EventLoop::new().unwrap();
    let h = ev.handle();
    let at = Instant::now() + Duration::from_millis(2);
    ev.insert(Timer::at(at), move |_, _, st: &mut St| {
        h.remove(st.victim.take().unwrap()).unwrap();
        let quiet = EventFd::options().nonblocking(true).open().unwrap();
        h.insert(
            Io::new(quiet, Interest::READABLE, Mode::Level),
            |_, _, st: &mut St| {
                st.io_calls += 1;
                Action::Continue
            },
        )
        .unwrap();
        Action::Continue
    })
    .unwrap();
    let victim = ev
        .insert(Timer::at(at), |_, _, _| panic!("removed timer fired"))
        .unwrap();
    let mut st = St {
        victim: Some(victim),
        ..St::default()
    };
    thread::sleep(Duration::from_millis(3));
    for _ in 0..3 {
        ev.run_once(&mut st, Some(Duration::from_millis(5)))
            .unwrap();
    }
    assert_eq!(st.io_calls, 0, "a never-ready Io source was dispatched");
}
