//! Shared pieces of the timer comparisons (`benches/timers.rs`, the report
//! and the C peers): the deterministic deadline generator, the arm+cancel
//! contender trait and the lateness patterns.
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
    /// A short name for the table.
    fn name(&self) -> &'static str;

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
