//! Property test: random sequences of `LoopHandle::call_at`, `remove`,
//! `reschedule_timer_at`, `disable`, `enable` and loop iterations, against
//! a model of what the docs promise. Deadlines are either already past
//! (due at the next iteration) or an hour away (never due during the
//! test), from a handful of values so that ties are common.
//!
//! Checked after every step: each call's result; on each iteration,
//! exactly the live, enabled calls with a past deadline run, once each, in
//! deadline order (ties in scheduling order, where moving a call or
//! enabling it again counts as scheduling it anew); `len()`. At the end,
//! that every closure was dropped exactly once, whether it ran, was
//! removed, or was still pending when the loop was dropped.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use fdloop::{Error, EventLoop, SourceId};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// A new call: past (true) or an hour away, at tick k.
    Add(bool, u8),
    Remove(usize),
    Move(usize, bool, u8),
    Disable(usize),
    Enable(usize),
    Run,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0u8..4).prop_map(|(p, k)| Op::Add(p, k)),
        2 => (0usize..24).prop_map(Op::Remove),
        2 => (0usize..24, any::<bool>(), 0u8..4).prop_map(|(i, p, k)| Op::Move(i, p, k)),
        1 => (0usize..24).prop_map(Op::Disable),
        1 => (0usize..24).prop_map(Op::Enable),
        2 => Just(Op::Run),
    ]
}

/// The model of one call.
struct Call {
    id: SourceId,
    /// (past, tick): the order of deadlines is past before future, then
    /// by tick (a later tick is a later deadline).
    at: (bool, u8),
    enabled: bool,
    /// Scheduling order among equal deadlines.
    seq: u64,
    live: bool,
}

struct World {
    base: Instant,
    seq: u64,
}

impl World {
    fn deadline(&self, (past, k): (bool, u8)) -> Instant {
        let k = Duration::from_micros(u64::from(k));
        if past {
            self.base - Duration::from_millis(1) + k
        } else {
            self.base + Duration::from_secs(3600) + k
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let drops = Rc::new(Cell::new(0u32));
    let mut ev: EventLoop<Vec<usize>> = EventLoop::new().unwrap();
    let h = ev.handle();
    let mut w = World {
        base: Instant::now(),
        seq: 0,
    };
    let mut calls: Vec<Call> = Vec::new();
    for op in ops {
        match op {
            Op::Add(past, k) => {
                let i = calls.len();
                let guard = DropGuard(drops.clone());
                let id = h
                    .call_at(w.deadline((past, k)), move |ran: &mut Vec<usize>| {
                        let _g = &guard;
                        ran.push(i);
                    })
                    .unwrap();
                let seq = w.next_seq();
                calls.push(Call {
                    id,
                    at: (past, k),
                    enabled: true,
                    seq,
                    live: true,
                });
            }
            Op::Remove(i) => {
                let Some(c) = calls.get_mut(i) else { continue };
                let r = h.remove(c.id);
                if c.live {
                    prop_assert!(r.is_ok(), "remove of a live call: {r:?}");
                    c.live = false;
                } else {
                    prop_assert!(matches!(r, Err(Error::NoSuchSource(_))), "{r:?}");
                }
            }
            Op::Move(i, past, k) => {
                let Some(c) = calls.get_mut(i) else { continue };
                let r = h.reschedule_timer_at(c.id, w.deadline((past, k)));
                if !c.live {
                    prop_assert!(matches!(r, Err(Error::NoSuchSource(_))), "{r:?}");
                } else if c.enabled {
                    prop_assert_eq!(r.unwrap(), true);
                    c.at = (past, k);
                    w.seq += 1;
                    c.seq = w.seq;
                } else {
                    // Disabled: out of the timer store, nothing moves.
                    prop_assert_eq!(r.unwrap(), false);
                }
            }
            Op::Disable(i) | Op::Enable(i) => {
                let on = matches!(op, Op::Enable(_));
                let Some(c) = calls.get_mut(i) else { continue };
                let r = if on { h.enable(c.id) } else { h.disable(c.id) };
                if !c.live {
                    prop_assert!(matches!(r, Err(Error::NoSuchSource(_))), "{r:?}");
                    continue;
                }
                prop_assert!(r.is_ok(), "{r:?}");
                if on && !c.enabled {
                    w.seq += 1;
                    c.seq = w.seq;
                }
                c.enabled = on;
            }
            Op::Run => {
                let mut due: Vec<&Call> = calls
                    .iter()
                    .filter(|c| c.live && c.enabled && c.at.0)
                    .collect();
                due.sort_by_key(|c| (c.at.1, c.seq));
                let want: Vec<usize> = due
                    .iter()
                    .map(|c| calls.iter().position(|d| d.id == c.id).unwrap())
                    .collect();
                let mut ran = Vec::new();
                if want.is_empty() {
                    ev.run_once(&mut ran, Some(Duration::ZERO)).unwrap();
                } else {
                    let start = Instant::now();
                    while ran.is_empty() && start.elapsed() < Duration::from_secs(5) {
                        ev.run_once(&mut ran, Some(Duration::from_secs(1))).unwrap();
                    }
                }
                prop_assert_eq!(&ran, &want);
                for &i in &ran {
                    calls[i].live = false;
                }
            }
        }
        let live = calls.iter().filter(|c| c.live).count();
        prop_assert_eq!(ev.len(), live);
    }
    let created = calls.len() as u32;
    drop(h);
    drop(ev);
    prop_assert_eq!(drops.get(), created, "each closure dropped exactly once");
    Ok(())
}

/// Counts its drop.
struct DropGuard(Rc<Cell<u32>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

proptest! {
    // 256 cases by default, 10^4 with `FDLOOP_SOAK=1`.
    #![proptest_config(ProptestConfig {
        cases: util::size(256, 10_000) as u32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn calls_at_deadlines_match_the_model(ops in prop::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
