//! Shared pieces of the timer comparisons (the report's timers group and
//! the C peers): the deterministic deadline generator, the arm+cancel
//! contender trait, the lateness patterns and their driver, and the
//! `Instant` to `CLOCK_MONOTONIC` conversion.
//!
//! Nothing here measures anything by itself.

use std::io;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*), so that every contender
/// sees the same deadlines.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let mut a = fdloop_bench::timers::Rng::new(7);
/// let mut b = fdloop_bench::timers::Rng::new(7);
/// assert_eq!(a.next(), b.next());
/// assert!(a.within(Duration::from_millis(5)) < Duration::from_millis(5));
/// ```
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced by 1: xorshift needs
    /// a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next pseudo-random number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A duration in `[0, span)`, at microsecond granularity.
    pub fn within(&mut self, span: Duration) -> Duration {
        let us = span.as_micros().max(1) as u64;
        Duration::from_micros(self.next() % us)
    }
}

/// A timer store with K timers pending that can arm and cancel more.
pub trait ArmCancel {
    /// Inserts a timer at each deadline and removes it again, one by one.
    ///
    /// # Errors
    ///
    /// The timer store's own error, as `io::Error`.
    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()>;
}

/// Lateness of every timer of one run, in ns (negative for one that fired
/// early: by that much).
pub type Late = Vec<f64>;

/// The pattern of deadlines of a lateness run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// n timers of [`STEP`], each armed when the previous one has fired.
    Sequential(usize),
    /// n timers at pseudo-random deadlines in the next [`SPREAD`] (from
    /// [`spread_deadlines`]), armed at once.
    Spread(usize),
}

impl Pattern {
    /// How many timers the run fires.
    pub fn count(self) -> usize {
        match self {
            Pattern::Sequential(n) | Pattern::Spread(n) => n,
        }
    }
}

/// Drives one lateness run of `pat` on a loop `lp`: `arm(lp, deadline)`
/// arms a one-shot timer whose callback records its lateness, and returns
/// what must live until the timer has fired; `run_until(lp, k)` runs the
/// loop until `k` timers have fired. [`Pattern::Sequential`]: each timer
/// at [`STEP`] from now, armed when the previous one has fired;
/// [`Pattern::Spread`]: [`spread_deadlines`]`(n, seed)`, armed at once.
///
/// # Errors
///
/// The first error of `arm` or `run_until`.
///
/// # Examples
///
/// ```
/// use fdloop_bench::timers::{run_pattern, Pattern};
/// let mut fired = Vec::new();
/// run_pattern(Pattern::Spread(3), 1, &mut fired, |f, d| Ok(f.push(d)), |_, _| Ok(()))?;
/// assert_eq!(fired.len(), 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run_pattern<L, T>(
    pat: Pattern,
    seed: u64,
    lp: &mut L,
    mut arm: impl FnMut(&mut L, Instant) -> io::Result<T>,
    mut run_until: impl FnMut(&mut L, usize) -> io::Result<()>,
) -> io::Result<()> {
    match pat {
        Pattern::Sequential(n) => {
            for i in 0..n {
                let armed = arm(lp, Instant::now() + STEP)?;
                run_until(lp, i + 1)?;
                drop(armed);
            }
        }
        Pattern::Spread(n) => {
            let armed = spread_deadlines(n, seed)
                .into_iter()
                .map(|d| arm(lp, d))
                .collect::<io::Result<Vec<T>>>()?;
            run_until(lp, n)?;
            drop(armed);
        }
    }
    Ok(())
}

/// The window of [`Pattern::Spread`].
pub const SPREAD: Duration = Duration::from_millis(200);
/// The delay of each timer of [`Pattern::Sequential`].
pub const STEP: Duration = Duration::from_millis(1);

/// `n` deadlines at pseudo-random points of the next [`SPREAD`] (after 2 ms
/// of head room, so that arming all of them finishes first); the same
/// `seed` gives the same offsets.
///
/// # Examples
///
/// ```
/// let d = fdloop_bench::timers::spread_deadlines(10, 3);
/// assert_eq!(d.len(), 10);
/// ```
pub fn spread_deadlines(n: usize, seed: u64) -> Vec<Instant> {
    let mut rng = Rng::new(seed | 1);
    let start = Instant::now() + Duration::from_millis(2);
    (0..n).map(|_| start + rng.within(SPREAD)).collect()
}

/// ns from `deadline` to now: negative if now is before it (an early
/// firing, by that much).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let d = Instant::now();
/// assert!(fdloop_bench::timers::late_ns(d) >= 0.0);
/// let ahead = Instant::now() + Duration::from_secs(1);
/// assert!(fdloop_bench::timers::late_ns(ahead) < -0.9e9);
/// ```
pub fn late_ns(deadline: Instant) -> f64 {
    let now = Instant::now();
    match now.checked_duration_since(deadline) {
        Some(d) => d.as_nanos() as f64,
        None => -(deadline.duration_since(now).as_nanos() as f64),
    }
}

/// A reading of `Instant::now()` and then of `CLOCK_MONOTONIC` (the clock
/// `Instant` uses on Linux), to turn `Instant` deadlines into absolute
/// times of that clock: for a timerfd (the lateness floor), and the µs
/// that GLib and sd-event take. The second reading is not earlier than
/// the first, so converted deadlines err late by a few ns, never early.
#[derive(Clone, Copy, Debug)]
pub struct MonoClock {
    /// `Instant::now()`.
    pub at: Instant,
    /// `CLOCK_MONOTONIC` in ns, read just after `at`.
    pub ns: u128,
}

impl MonoClock {
    /// Takes the two readings.
    ///
    /// # Errors
    ///
    /// `clock_gettime` failing.
    pub fn now() -> io::Result<MonoClock> {
        let at = Instant::now();
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let ns = (ts.tv_sec.max(0) as u128) * 1_000_000_000 + ts.tv_nsec.max(0) as u128;
        Ok(MonoClock { at, ns })
    }

    /// `d` in ns of `CLOCK_MONOTONIC`; 0 at the earliest.
    pub fn ns(&self, d: Instant) -> u128 {
        match d.checked_duration_since(self.at) {
            Some(after) => self.ns + after.as_nanos(),
            None => self.ns.saturating_sub(self.at.duration_since(d).as_nanos()),
        }
    }

    /// `d` in µs of `CLOCK_MONOTONIC`, rounded up (a library comparing with
    /// the clock truncated to µs never fires early); 0 at the earliest.
    pub fn us_ceil(&self, d: Instant) -> u64 {
        u64::try_from(self.ns(d).div_ceil(1000)).unwrap_or(u64::MAX - 1)
    }
}

/// N connections, each with an idle timeout pending, whose timeouts are
/// pushed back one request at a time (the timers group's "push back"
/// case).
pub trait PushBack {
    /// For each `(conn, deadline)`: moves connection `conn`'s pending
    /// timeout to `deadline` (later than its current one).
    ///
    /// # Errors
    ///
    /// The timer store's own error, as `io::Error`; a contender that finds
    /// the timeout no longer pending reports that too.
    fn run(&mut self, reqs: &[(usize, Instant)]) -> io::Result<()>;
}

/// The request sequence of the push-back case: `n` requests on `conns`
/// connections chosen pseudo-randomly, each moving that connection's idle
/// timeout to `first` plus 100 ns per request so far (always later than
/// before, as a fresh `now + idle` would be).
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// let t = Instant::now();
/// let r = fdloop_bench::timers::push_back_requests(5, 3, t);
/// assert_eq!(r.len(), 5);
/// assert!(r.iter().all(|&(c, d)| c < 3 && d > t));
/// assert!(r.windows(2).all(|w| w[0].1 < w[1].1));
/// ```
pub fn push_back_requests(n: usize, conns: usize, first: Instant) -> Vec<(usize, Instant)> {
    let mut rng = Rng::new(0x1d1e);
    (0..n)
        .map(|i| {
            let c = (rng.next() % conns.max(1) as u64) as usize;
            (c, first + Duration::from_nanos(100 * (i as u64 + 1)))
        })
        .collect()
}

/// Bytes the C allocator (glibc's `malloc`, which Rust's default allocator
/// and the C peers share) has handed out and not had back: `mallinfo2`'s
/// `uordblks` (in-use chunks, their headers included) plus `hblkhd`
/// (blocks it mapped separately), over every arena.
///
/// # Examples
///
/// ```
/// let before = fdloop_bench::timers::malloc_in_use();
/// let v = vec![0u8; 1 << 20];
/// assert!(fdloop_bench::timers::malloc_in_use() >= before + v.len());
/// ```
pub fn malloc_in_use() -> usize {
    // SAFETY: `mallinfo2` only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    m.uordblks + m.hblkhd
}
