//! The report's "wake to poll" case alone, for strace, callgrind and quick
//! A/B runs: a task waits on a future, another thread wakes it after the
//! loop has gone to sleep, and the time from `wake()` to the task's poll is
//! printed: median, mean, p99 and maximum per wake.
//!
//! ```text
//! cargo build --release -p fdloop-bench --features peers --example wake_probe
//! target/release/examples/wake_probe 4000 fdloop cross   # or smol; same, off
//! target/release/examples/wake_probe 4000 raw,fdloop,smol cross 40
//! ```
//!
//! Each line ends with where the loop thread slept: the system call it
//! was blocked in half-way through each block (`epoll_pwait ×60`). smol's
//! `block_on` parks on a futex instead of its poller while `async-io`'s
//! helper thread holds the reactor — which it takes whenever no `block_on`
//! is running, so smol interleaved with other runtimes sleeps on a futex;
//! `smol-epoll` is smol with the reactor kept on its `block_on` thread
//! (see `smol_epoll_wake_to_poll`).
//!
//! Arguments: rounds, runtime (`fdloop`, `smol`, `smol-epoll`, `tokio`, `calloop`, or
//! `raw`: the report's floor, no runtime; `raw-et`: the same with the
//! eventfd edge-triggered and never read; several separated by commas),
//! placement (`cross`: loop on CPU 0, waker on CPU 1; `same`: both on
//! CPU 0; anything else: unpinned), and blocks (default 1). With more than
//! one block, each runtime runs rounds / blocks wakes per block, the
//! runtimes taking turns block by block, and the figures pool every
//! block's wakes: the runtimes are then compared over the same stretches
//! of time, which separate runs on a noisy machine are not.

use std::io;

use fdloop_bench::groups::async_rt::{
    raw_edge_wake_to_poll, raw_wake_to_poll, smol_epoll_wake_to_poll, wake_to_poll, Rt, WakeTimes,
};
use fdloop_bench::Pin;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let names = args.next().unwrap_or_else(|| "fdloop".into());
    let pin = match args.next().as_deref() {
        Some("cross") => Pin::Cross,
        Some("same") => Pin::Same,
        _ => Pin::Off,
    };
    let blocks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let names: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
    let per_block = (rounds / blocks).max(1);
    let warmup = (per_block / 10).max(1);
    let mut runs: Vec<Vec<WakeTimes>> = vec![Vec::new(); names.len()];
    for _ in 0..blocks {
        for (name, run) in names.iter().zip(&mut runs) {
            let w = match *name {
                "raw" => raw_wake_to_poll(per_block + warmup, warmup, pin)?,
                "raw-et" => raw_edge_wake_to_poll(per_block + warmup, warmup, pin)?,
                "smol" => wake_to_poll(Rt::Smol, per_block + warmup, warmup, pin)?,
                "smol-epoll" => smol_epoll_wake_to_poll(per_block + warmup, warmup, pin)?,
                "tokio" => wake_to_poll(Rt::Tokio, per_block + warmup, warmup, pin)?,
                "calloop" => wake_to_poll(Rt::Calloop, per_block + warmup, warmup, pin)?,
                "fdloop" => wake_to_poll(Rt::Fdloop, per_block + warmup, warmup, pin)?,
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                        "unknown runtime {other}: raw, raw-et, fdloop, smol, smol-epoll, tokio or calloop"
                    ),
                    ))
                }
            };
            run.push(w);
        }
    }
    let us = |ns: f64| ns / 1000.0;
    for (name, run) in names.iter().zip(runs) {
        let w = WakeTimes::pooled(run);
        let label = if *name == "raw" {
            "raw epoll_wait + eventfd".to_string()
        } else {
            name.to_string()
        };
        println!(
            "{label}, {}, {} wakes in {blocks} blocks: per wake median {:.2} µs, mean {:.2} µs, p99 {:.2} µs, max {:.2} µs; slept in {}",
            pin.describe(),
            w.len(),
            us(w.quantile_ns(0.5)),
            us(w.mean_ns()),
            us(w.quantile_ns(0.99)),
            us(w.quantile_ns(1.0)),
            w.sleeps_in(),
        );
    }
    Ok(())
}
