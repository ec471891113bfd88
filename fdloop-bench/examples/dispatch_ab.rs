//! The floor, fdloop's `dispatch_pending` and `run_once(None)` (also with
//! `set_time_stats(true)`), and mio side by side in one process, alternating short blocks of turns, for A/B
//! comparisons of dispatch changes that the report's five samples per
//! contender cannot resolve on a noisy machine: build it before and after a
//! change and compare the printed ratios.
//!
//! ```text
//! cargo build --release -p fdloop-bench --example dispatch_ab
//! target/release/examples/dispatch_ab 100 300    # N ready eventfds, blocks
//! ```
//!
//! Each block runs about 20 000 events (at least 4 turns) of one
//! contender; every contender runs once per round, the first five rounds
//! untimed. Printed: the 10th percentile and the median of the blocks' ns
//! per event for each contender, and its ratios to the floor's. The last
//! line is fdloop's `dispatch_pending` against the floor (the line
//! `scripts/dispatch_ablations.sh` reads).

use std::io;
use std::time::Instant;

use fdloop_bench::dispatch::{
    ensure_nofile, ready_eventfds, Contender, FdloopDrive, FdloopSet, RawEpoll, RawEpollInline,
    Work,
};

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let blocks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let turns: u64 = (20_000 / n.max(1) as u64).max(4);
    ensure_nofile(n as u64 + 64)?;
    let fds = ready_eventfds(n)?;
    let mut cs: Vec<Box<dyn Contender>> = vec![
        Box::new(RawEpoll::new(&fds)?),
        Box::new(FdloopSet::new(&fds, FdloopDrive::DispatchPending)?),
        Box::new(FdloopSet::new(&fds, FdloopDrive::RunOnceBlocking)?),
        Box::new(FdloopSet::new(&fds, FdloopDrive::RunOnceBlockingTimed)?),
    ];
    #[cfg(feature = "peers")]
    cs.push(Box::new(fdloop_bench::groups::dispatch::MioSet::new(&fds)?));
    cs.push(Box::new(RawEpollInline::new(&fds)?));
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cs.len()];
    let mut work = Work::default();
    for b in 0..blocks + 5 {
        for (c, t) in cs.iter_mut().zip(&mut times) {
            let start = Instant::now();
            let mut events = 0;
            for _ in 0..turns {
                events += c.turn(&mut work)?;
            }
            if b >= 5 {
                t.push(start.elapsed().as_nanos() as f64 / events.max(1) as f64);
            }
        }
    }
    let q = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v.get(((v.len().max(1) - 1) as f64 * p) as usize).copied()
    };
    let mut quantiles = Vec::new();
    for t in &mut times {
        let (Some(p10), Some(p50)) = (q(t, 0.1), q(t, 0.5)) else {
            return Err(io::Error::other("no timed blocks"));
        };
        quantiles.push((p10, p50));
    }
    let (f10, f50) = quantiles[0];
    for (c, &(p10, p50)) in cs.iter().zip(&quantiles).skip(1) {
        println!(
            "N = {n}: {}: p10 {p10:.1} p50 {p50:.1} ns/event, × floor p10 {:.3} p50 {:.3}",
            c.name(),
            p10 / f10,
            p50 / f50
        );
    }
    let (d10, d50) = quantiles[1];
    println!(
        "N = {n}: floor p10 {f10:.1} p50 {f50:.1} ns/event | fdloop p10 {d10:.1} p50 {d50:.1} | \
         fdloop × floor: p10 {:.3}, p50 {:.3}",
        d10 / f10,
        d50 / f50
    );
    Ok(())
}
