//! Single-thread contenders: signal and consume on the same thread.

use std::fmt;
use std::hint::black_box;
use std::io;
use std::time::Instant;

use fdloop::{Backend, EventFd, Notifier};

use crate::Sample;

/// Untimed operations before each timed loop: a tenth, at most this many.
const MAX_WARMUP: u64 = 10_000;

fn warmup_for(iters: u64) -> u64 {
    (iters / 10).min(MAX_WARMUP)
}

/// A contender in the one-thread "notify then drain" case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// `Notifier` on an eventfd: `notify()` (one `write`) + `drain()` (one
    /// `read`), with the coalescing flag's atomics around them.
    NotifierEventFd,
    /// `Notifier` on a `pipe2` pipe: `notify()` writes one byte, `drain()`
    /// reads it back.
    NotifierPipe2,
    /// A bare non-blocking `EventFd`: `write(1)` + `read()`, no coalescing.
    RawEventFd,
}

impl Local {
    /// All contenders, in table order.
    pub const ALL: [Local; 3] = [
        Local::NotifierEventFd,
        Local::NotifierPipe2,
        Local::RawEventFd,
    ];

    /// A short name for the tables.
    pub fn name(self) -> &'static str {
        match self {
            Local::NotifierEventFd => "Notifier (eventfd)",
            Local::NotifierPipe2 => "Notifier (pipe2)",
            Local::RawEventFd => "EventFd write+read",
        }
    }

    /// Times `iters` signal-and-consume operations on a fresh primitive,
    /// after an untimed warm-up.
    ///
    /// # Errors
    ///
    /// Creating the descriptor, or any write/read, failing; or a drain that
    /// finds nothing right after a signal (which would mean a broken
    /// primitive, and a meaningless figure).
    pub fn run(self, iters: u64) -> io::Result<Sample> {
        match self {
            Local::NotifierEventFd => notifier_rounds::<1>(Backend::EventFd, iters),
            Local::NotifierPipe2 => notifier_rounds::<1>(Backend::Pipe2, iters),
            Local::RawEventFd => raw_rounds::<1>(iters),
        }
    }
}

impl fmt::Display for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn open_notifier(backend: Backend) -> io::Result<Notifier> {
    Notifier::with_backend(backend).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("creating a {backend} Notifier failed: {e}"),
        )
    })
}

fn open_raw() -> io::Result<EventFd> {
    EventFd::options()
        .nonblocking(true)
        .open()
        .map_err(|e| io::Error::new(e.kind(), format!("creating an eventfd failed: {e}")))
}

fn nothing_pending(what: &str) -> io::Error {
    io::Error::other(format!("{what}: drain found nothing right after notify"))
}

/// Times `rounds` rounds of `K` notifies and one drain on a fresh
/// Notifier, after an untimed warm-up: the [`Local`] case is `K = 1`, the
/// [`Burst`] case `K =` [`Burst::PER_DRAIN`]. One operation is a notify.
fn notifier_rounds<const K: u64>(backend: Backend, rounds: u64) -> io::Result<Sample> {
    let n = open_notifier(backend)?;
    let round = |n: &Notifier| -> io::Result<()> {
        for _ in 0..K {
            black_box(n.notify()?);
        }
        if !n.drain()? {
            return Err(nothing_pending("Notifier"));
        }
        Ok(())
    };
    for _ in 0..warmup_for(rounds) {
        round(&n)?;
    }
    let before = n.writes();
    let start = Instant::now();
    for _ in 0..rounds {
        round(black_box(&n))?;
    }
    let elapsed = start.elapsed();
    Ok(Sample {
        elapsed,
        ops: rounds * K,
        writes: Some(n.writes() - before),
    })
}

/// As [`notifier_rounds`] on a bare eventfd: `K` writes, then one read.
fn raw_rounds<const K: u64>(rounds: u64) -> io::Result<Sample> {
    let efd = open_raw()?;
    let round = |e: &EventFd| -> io::Result<()> {
        for _ in 0..K {
            e.write(1)?;
        }
        black_box(e.read()?);
        Ok(())
    };
    for _ in 0..warmup_for(rounds) {
        round(&efd)?;
    }
    let start = Instant::now();
    for _ in 0..rounds {
        round(black_box(&efd))?;
    }
    Ok(Sample {
        elapsed: start.elapsed(),
        ops: rounds * K,
        writes: Some(rounds * K),
    })
}

/// A contender in the "many notifies, then one drain" case.
///
/// One operation is one signal; a round is [`Burst::PER_DRAIN`] signals and
/// one drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Burst {
    /// `Notifier` on an eventfd: the first `notify` writes, the rest only
    /// see the pending flag.
    NotifierEventFd,
    /// `Notifier` on a pipe: same coalescing, one byte per round.
    NotifierPipe2,
    /// A bare `EventFd`: every signal is a `write` (what code without a
    /// pending flag pays).
    RawEventFd,
}

impl Burst {
    /// All contenders, in table order.
    pub const ALL: [Burst; 3] = [
        Burst::NotifierEventFd,
        Burst::NotifierPipe2,
        Burst::RawEventFd,
    ];

    /// Signals per drain.
    pub const PER_DRAIN: u64 = 100;

    /// A short name for the tables.
    pub fn name(self) -> &'static str {
        match self {
            Burst::NotifierEventFd => "Notifier (eventfd)",
            Burst::NotifierPipe2 => "Notifier (pipe2)",
            Burst::RawEventFd => "EventFd write each",
        }
    }

    /// Times `rounds` rounds of [`PER_DRAIN`](Burst::PER_DRAIN) signals and
    /// one drain, after an untimed warm-up. The sample's `ops` counts
    /// signals, and `writes` the signals that made a system call.
    ///
    /// # Errors
    ///
    /// As for [`Local::run`].
    pub fn run(self, rounds: u64) -> io::Result<Sample> {
        match self {
            Burst::NotifierEventFd => {
                notifier_rounds::<{ Burst::PER_DRAIN }>(Backend::EventFd, rounds)
            }
            Burst::NotifierPipe2 => notifier_rounds::<{ Burst::PER_DRAIN }>(Backend::Pipe2, rounds),
            Burst::RawEventFd => raw_rounds::<{ Burst::PER_DRAIN }>(rounds),
        }
    }
}

impl fmt::Display for Burst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_local_contender_runs() {
        for c in Local::ALL {
            let s = c.run(100).unwrap();
            assert_eq!(s.ops, 100);
            assert_eq!(s.writes, Some(100), "{c}");
        }
    }

    #[test]
    fn notifier_bursts_coalesce() {
        for c in [Burst::NotifierEventFd, Burst::NotifierPipe2] {
            let s = c.run(10).unwrap();
            assert_eq!(s.ops, 10 * Burst::PER_DRAIN);
            assert_eq!(s.writes, Some(10), "{c}: one write per round");
        }
        let raw = Burst::RawEventFd.run(10).unwrap();
        assert_eq!(raw.writes, Some(10 * Burst::PER_DRAIN));
    }
}
