//! The report's "wake to poll" case alone, for strace, callgrind and quick
//! A/B runs: a task waits on a future, another thread wakes it after the
//! loop has gone to sleep, and the time from `wake()` to the task's poll is
//! printed: median, mean, p99 and maximum per wake.
//!
//! ```text
//! cargo build --release -p fdloop-bench --example wake_probe
//! target/release/examples/wake_probe 4000 fdloop cross   # or smol; same, off
//! ```
//!
//! Arguments: rounds, runtime (`fdloop`, `smol`, `tokio`, `calloop`, or
//! `raw`: the report's floor, no runtime),
//! placement (`cross`: loop on CPU 0, waker on CPU 1; `same`: both on
//! CPU 0; anything else: unpinned).

use std::io;

use fdloop_bench::groups::async_rt::{raw_wake_to_poll, wake_to_poll, Rt};
use fdloop_bench::Pin;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let name = args.next().unwrap_or_else(|| "fdloop".into());
    let rt = match name.as_str() {
        "smol" => Rt::Smol,
        "tokio" => Rt::Tokio,
        "calloop" => Rt::Calloop,
        _ => Rt::Fdloop,
    };
    let pin = match args.next().as_deref() {
        Some("cross") => Pin::Cross,
        Some("same") => Pin::Same,
        _ => Pin::Off,
    };
    let warmup = rounds / 10;
    let w = if name == "raw" {
        raw_wake_to_poll(rounds + warmup, warmup, pin)?
    } else {
        wake_to_poll(rt, rounds + warmup, warmup, pin)?
    };
    let label = if name == "raw" {
        "raw epoll_wait + eventfd".to_string()
    } else {
        format!("{rt:?}")
    };
    let us = |ns: f64| ns / 1000.0;
    println!(
        "{label}, {}: per wake median {:.2} µs, mean {:.2} µs, p99 {:.2} µs, max {:.2} µs",
        pin.describe(),
        us(w.quantile_ns(0.5)),
        us(w.mean_ns()),
        us(w.quantile_ns(0.99)),
        us(w.quantile_ns(1.0)),
    );
    Ok(())
}
