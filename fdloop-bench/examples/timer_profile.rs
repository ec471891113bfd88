//! Arms and cancels fdloop timers with K others pending, for profiling the
//! user-space cost per arm + cancel with an instruction counter:
//!
//! ```text
//! cargo build --release -p fdloop-bench --example timer_profile
//! valgrind --tool=callgrind target/release/examples/timer_profile 1000 200000
//! valgrind --tool=callgrind target/release/examples/timer_profile 1000 200000 call
//! ```
//!
//! Arguments: K pending timers, operations (one arm + one cancel each),
//! and what is armed: `timer` (the default: `insert(Timer::at(..))` +
//! `remove`) or `call` (`LoopHandle::call_at` with a closure that captures
//! a word, + `remove`); or `push`: no arming, each operation moves one of
//! the K pending timers to a new deadline with `reschedule_timer_at` (an
//! idle timeout pushed back).
//! Deadlines are spread over 10 s from now in a fixed pseudo-random order,
//! as in the report's timer group. Prints the operations done.

use std::io;
use std::time::{Duration, Instant};

use fdloop::{Action, EventLoop, SourceId, Timer};

fn fired(_: fdloop::TimerEvent, _: &mut fdloop::TimerCtl, n: &mut u64) -> Action {
    *n += 1;
    Action::Continue
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let k: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let ops: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let (call, push) = match args.next().as_deref() {
        None | Some("timer") => (false, false),
        Some("call") => (true, false),
        Some("push") => (false, true),
        Some(other) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("what to arm: timer, call or push, not {other:?}"),
            ))
        }
    };
    let now = Instant::now();
    // A fixed LCG: the same deadlines every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        now + Duration::from_secs(60) + Duration::from_nanos((x >> 11) % 10_000_000_000)
    };
    let mut ev: EventLoop<u64> = EventLoop::new()?;
    let mut ids = Vec::with_capacity(k as usize);
    for _ in 0..k {
        ids.push(ev.insert(Timer::at(next()), fired)?);
    }
    let h = ev.handle();
    if push {
        if ids.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "push moves pending timers: K must be at least 1",
            ));
        }
        for i in 0..ops {
            let id = ids[(i % k) as usize];
            if !h.reschedule_timer_at(id, next())? {
                return Err(io::Error::other("a pending timer was not pending"));
            }
        }
        println!("{ops} push backs with {k} pending");
        return Ok(());
    }
    for i in 0..ops {
        let id: SourceId = if call {
            h.call_at(next(), move |n| *n += i)?
        } else {
            ev.insert(Timer::at(next()), fired)?
        };
        ev.remove(id)?;
    }
    let what = if call { "call_at" } else { "Timer" };
    println!("{ops} arm + cancel ({what}) with {k} pending");
    Ok(())
}
