//! Small helpers shared by the `harness = false` benches: interleaved
//! repetitions, medians and min–max, percentiles, number formatting and a
//! command-line pin mode that can name both pinned modes at once.
//!
//! Nothing here measures anything; it only orders runs and prints results.

use std::io;

use crate::Pin;

/// Runs `n` contenders `reps` times each, interleaved: repetition *r*
/// starts at contender *r* mod *n*, so slow drift of the machine (another
/// build starting, the host getting busier) spreads over every contender
/// instead of landing on one. `run(i)` times contender `i` once and returns
/// one number (a rate or a time). Returns `reps` numbers per contender, in
/// the order taken.
///
/// # Errors
///
/// The first error any `run(i)` returns; nothing more runs after it.
///
/// # Examples
///
/// ```
/// let mut order = Vec::new();
/// let v = fdloop_bench::report::interleave(3, 2, |i| {
///     order.push(i);
///     Ok(i as f64)
/// })?;
/// assert_eq!(order, [0, 1, 2, 1, 2, 0]);
/// assert_eq!(v, [vec![0.0, 0.0], vec![1.0, 1.0], vec![2.0, 2.0]]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn interleave(
    n: usize,
    reps: usize,
    mut run: impl FnMut(usize) -> io::Result<f64>,
) -> io::Result<Vec<Vec<f64>>> {
    let mut out = vec![Vec::with_capacity(reps); n];
    for r in 0..reps {
        for k in 0..n {
            let i = (r + k) % n;
            out[i].push(run(i)?);
        }
    }
    Ok(out)
}

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

/// Which pinned modes a two-thread bench runs, from `--pin`: one mode, or
/// `both` (same, then cross).
///
/// # Errors
///
/// A message naming the accepted values.
///
/// # Examples
///
/// ```
/// use fdloop_bench::{report::pin_modes, Pin};
/// assert_eq!(pin_modes("both"), Ok(vec![Pin::Same, Pin::Cross]));
/// assert_eq!(pin_modes("off"), Ok(vec![Pin::Off]));
/// assert!(pin_modes("all").is_err());
/// ```
pub fn pin_modes(arg: &str) -> Result<Vec<Pin>, String> {
    if arg == "both" {
        return Ok(vec![Pin::Same, Pin::Cross]);
    }
    arg.parse::<Pin>()
        .map(|p| vec![p])
        .map_err(|e| format!("{e}, or both"))
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

/// The `main` every bench binary shares: parses the arguments with `parse`
/// (`Ok(None)` asks for help), runs with `run`, and maps the outcome to an
/// exit code — 0 on success or `--help`, 2 with the usage on a bad flag, 1
/// on an I/O error. Messages are prefixed with `name`.
///
/// # Examples
///
/// ```
/// use fdloop_bench::report::bench_main;
/// let code = bench_main(
///     "demo",
///     "usage: demo",
///     std::iter::empty(),
///     |_args| Ok(Some(())),
///     |()| Ok(()),
/// );
/// assert_eq!(code, std::process::ExitCode::SUCCESS);
/// ```
pub fn bench_main<C>(
    name: &str,
    usage: &str,
    args: impl IntoIterator<Item = String>,
    parse: impl FnOnce(Vec<String>) -> Result<Option<C>, String>,
    run: impl FnOnce(&C) -> io::Result<()>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let cfg = match parse(args.into_iter().collect()) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{name}: {e}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    match run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}
