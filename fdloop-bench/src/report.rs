//! Small helpers: medians and min–max, percentiles, number formatting,
//! optional pinning.
//!
//! Nothing here measures anything.

use std::io;

/// Median, minimum and maximum of some samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarises `v`; all zeros for an empty slice.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = fdloop_bench::report::Summary::of(&[3.0, 1.0, 2.0, 10.0]);
    /// assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
    /// ```
    pub fn of(v: &[f64]) -> Summary {
        if v.is_empty() {
            return Summary {
                median: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let m = s.len() / 2;
        let median = if s.len() % 2 == 1 {
            s[m]
        } else {
            (s[m - 1] + s[m]) / 2.0
        };
        Summary {
            median,
            min: s[0],
            max: s[s.len() - 1],
        }
    }
}

/// The `p`-th percentile (0–100) of `sorted` (ascending), nearest-rank:
/// the smallest value with at least `p` % of the samples at or below it.
/// 0 for an empty slice.
///
/// # Examples
///
/// ```
/// let v: Vec<f64> = (1..=100).map(f64::from).collect();
/// assert_eq!(fdloop_bench::report::percentile(&v, 50.0), 50.0);
/// assert_eq!(fdloop_bench::report::percentile(&v, 99.0), 99.0);
/// assert_eq!(fdloop_bench::report::percentile(&v, 100.0), 100.0);
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Formats nanoseconds as `850 ns`, `12.3 ns`, `14.2 µs` or `1.25 ms`.
///
/// # Examples
///
/// ```
/// use fdloop_bench::report::fmt_ns;
/// assert_eq!(fmt_ns(12.34), "12.3 ns");
/// assert_eq!(fmt_ns(850.0), "850 ns");
/// assert_eq!(fmt_ns(14_200.0), "14.2 µs");
/// assert_eq!(fmt_ns(1_250_000.0), "1.25 ms");
/// assert_eq!(fmt_ns(-1_250_000.0), "-1.25 ms");
/// ```
pub fn fmt_ns(ns: f64) -> String {
    if ns < 0.0 {
        return format!("-{}", fmt_ns(-ns));
    }
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

/// Pins the calling thread to `cpu` if it is `Some`.
///
/// # Errors
///
/// As [`pin_current_thread`](crate::pin_current_thread).
pub fn pin_opt(cpu: Option<usize>) -> io::Result<()> {
    match cpu {
        Some(c) => crate::pin_current_thread(c),
        None => Ok(()),
    }
}
