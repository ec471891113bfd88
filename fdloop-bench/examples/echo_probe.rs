//! The report's "echo" case alone, for `perf stat`, strace and quick A/B
//! runs: `conns` TCP connections served by one runtime on this thread, a
//! blocking client on another thread; prints round trips per second.
//!
//! ```text
//! cargo build --release -p fdloop-bench --features peers --example echo_probe
//! target/release/examples/echo_probe fdloop 50 2000 cross   # or tokio, smol, calloop; same, off
//! target/release/examples/echo_probe fdloop-once 50 2000 cross   # fdloop driven by run_once(None)
//! ```
//!
//! Arguments: runtime (several separated by commas run in turn, `reps`
//! times), connections, rounds (one message on every connection per
//! round), placement (`cross`: server on CPU 0, client on CPU 1; `same`:
//! both on CPU 0; anything else: unpinned), reps (default 1).

use std::io;

use fdloop_bench::groups::async_rt::{echo, echo_run_once, Rt};
use fdloop_bench::Pin;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let names = args.next().unwrap_or_else(|| "fdloop".into());
    let conns: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let pin = match args.next().as_deref() {
        Some("cross") => Pin::Cross,
        Some("same") => Pin::Same,
        _ => Pin::Off,
    };
    let reps: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    for rep in 1..=reps {
        for name in names.split(',').filter(|n| !n.is_empty()) {
            let rt = match name {
                "fdloop-once" => None,
                "fdloop" => Some(Rt::Fdloop),
                "tokio" => Some(Rt::Tokio),
                "smol" => Some(Rt::Smol),
                "calloop" => Some(Rt::Calloop),
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "unknown runtime {other}: fdloop, fdloop-once, tokio, smol or calloop"
                        ),
                    ))
                }
            };
            let took = match rt {
                Some(rt) => echo(rt, conns, rounds, pin)?,
                None => echo_run_once(conns, rounds, pin)?,
            };
            let trips = conns as f64 * rounds as f64;
            println!(
                "{name}, {}, rep {rep}: {conns} connections, {rounds} rounds: {:.3} M round trips/s",
                pin.describe(),
                trips / took.as_secs_f64() / 1e6
            );
        }
    }
    Ok(())
}
