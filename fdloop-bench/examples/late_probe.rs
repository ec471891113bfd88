//! The report's timer lateness cases alone, alternating contenders, for
//! quick A/B runs of the path from a timer's expiry to its callback:
//!
//! ```text
//! cargo build --release -p fdloop-bench --example late_probe
//! target/release/examples/late_probe seq 1000 5 floor "fdloop Timer::at"
//! target/release/examples/late_probe spread 5000 5 floor "fdloop Timer::at"
//! ```
//!
//! Arguments: the pattern (`seq`: n sequential 1 ms one-shots; `spread`:
//! n timers over 200 ms), n, rounds, then the contenders (a part of the
//! report's name; `floor` for the bare timerfd). Each round runs every
//! contender once, in turn; printed per round and contender: p50, p99 and
//! max lateness, and how many fired early; at the end, per contender, the
//! quantiles of every round's timers pooled. With `LATE_PROBE_WORST=1` set,
//! each round also lists its eight latest timers by firing order (how the
//! bench's own vector growth was found: spikes at timers 1 025, 2 049 and
//! 4 097 of every round).

use std::io;

use fdloop_bench::groups::timers::lateness_of;
use fdloop_bench::timers::Pattern;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let pat = args.next().unwrap_or_else(|| "seq".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let who: Vec<String> = args.collect();
    let pat = match pat.as_str() {
        "seq" => Pattern::Sequential(n),
        "spread" => Pattern::Spread(n),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pattern: seq or spread, not {other:?}"),
            ))
        }
    };
    let us = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize] / 1000.0;
    let worst = std::env::var_os("LATE_PROBE_WORST").is_some();
    let mut pooled: Vec<Vec<f64>> = vec![Vec::new(); who.len()];
    for r in 0..rounds {
        for (w, pool) in who.iter().zip(&mut pooled) {
            let mut late = lateness_of(w, pat, r + 1).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("no contender {w:?}"))
            })??;
            pool.extend_from_slice(&late);
            if worst {
                // In firing order: a spike at the same index in every round
                // is the contender's own doing, not the host's.
                let mut idx: Vec<usize> = (0..late.len()).collect();
                idx.sort_by(|&a, &b| late[b].total_cmp(&late[a]));
                let top: Vec<String> = idx
                    .iter()
                    .take(8)
                    .map(|&i| format!("#{i} {:.0}", late[i] / 1000.0))
                    .collect();
                println!(
                    "  latest timers (firing order # and µs): {}",
                    top.join(", ")
                );
            }
            late.sort_by(f64::total_cmp);
            let early = late.iter().filter(|&&l| l < 0.0).count();
            println!(
                "round {r} {w:>24}: p50 {:7.2} µs  p99 {:7.2} µs  max {:8.2} µs  early {early}",
                us(&late, 0.5),
                us(&late, 0.99),
                us(&late, 1.0),
            );
        }
    }
    for (w, mut pool) in who.iter().zip(pooled) {
        if pool.is_empty() {
            continue;
        }
        pool.sort_by(f64::total_cmp);
        println!(
            "pooled {w:>24}: p50 {:7.2} µs  p90 {:7.2} µs  p99 {:7.2} µs  p99.9 {:8.2} µs  ({} timers)",
            us(&pool, 0.5),
            us(&pool, 0.9),
            us(&pool, 0.99),
            us(&pool, 0.999),
            pool.len(),
        );
    }
    Ok(())
}
