//! Runs one dispatch contender for a fixed number of turns, for profiling
//! user-space cost per event with an instruction counter (the kernel's
//! share, `epoll_wait` itself, is the same for every contender and is not
//! counted):
//!
//! ```text
//! cargo build --release -p fdloop-bench --example dispatch_profile
//! valgrind --tool=callgrind target/release/examples/dispatch_profile fdloop 100 20000
//! valgrind --tool=callgrind target/release/examples/dispatch_profile floor 100 20000
//! ```
//!
//! Arguments: the contender (`floor`, `floor-inline` (its system call made
//! inline, see `RawEpollInline`), `fdloop` for `dispatch_pending`,
//! `fdloop-block` for `run_once(None)`, `fdloop-prio`, and `mio` when built
//! with `--features peers`), N ready
//! eventfds, turns. Prints the events dispatched.

use std::io;

use fdloop_bench::dispatch::{
    ready_eventfds, Contender, FdloopDrive, FdloopSet, RawEpoll, RawEpollInline, Work,
};

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "fdloop".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let turns: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let fds = ready_eventfds(n)?;
    let mut c: Box<dyn Contender> = match which.as_str() {
        "floor" => Box::new(RawEpoll::new(&fds)?),
        "floor-inline" => Box::new(RawEpollInline::new(&fds)?),
        "fdloop" => Box::new(FdloopSet::new(&fds, FdloopDrive::DispatchPending)?),
        "fdloop-block" => Box::new(FdloopSet::new(&fds, FdloopDrive::RunOnceBlocking)?),
        "fdloop-prio" => Box::new(FdloopSet::new(
            &fds,
            FdloopDrive::DispatchPendingPriorities,
        )?),
        #[cfg(feature = "peers")]
        "mio" => Box::new(fdloop_bench::groups::dispatch::MioSet::new(&fds)?),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "unknown contender {other}: floor, floor-inline, fdloop, fdloop-block, fdloop-prio or mio"
                ),
            ))
        }
    };
    let mut work = Work::default();
    let mut events = 0;
    for _ in 0..turns {
        events += c.turn(&mut work)?;
    }
    println!("{} dispatched {events} events in {turns} turns", c.name());
    Ok(())
}
