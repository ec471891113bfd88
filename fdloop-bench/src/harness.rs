//! How the report measures: a case is a set of contenders ([`Entry`]: a
//! name, a [`Role`] and a closure that measures it once), which
//! [`Ctx::run_case`] runs in interleaved repetitions ([`interleave`]),
//! counting system calls in one untimed run each ([`counted`]); every
//! figure goes into the [`Report`] and the case's table is printed as soon
//! as it is done.
//!
//! The groups (`crate::groups`, feature `peers`) build the cases; this
//! module knows nothing of any contender.

use std::io::{self, IsTerminal, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::record::{Better, Report, Role};
use crate::syscount::counted;
use crate::Pin;

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// Smaller samples, 3 repetitions, fewer sizes: the whole report in
    /// well under a minute.
    pub quick: bool,
    /// Tiny sizes and one repetition: proves every contender and output
    /// works (the tests use it); its figures mean nothing.
    pub smoke: bool,
    /// Pinning of the wake group's two-thread cases (the channel group
    /// runs every placement).
    pub pin: Pin,
    /// Repetitions per contender (0: 3 with `quick`, else 5).
    pub reps: usize,
    /// Groups to run (empty: all).
    pub only: Vec<String>,
    /// Only contenders whose name contains this (the floor always runs).
    pub contender: Option<String>,
    /// Dispatch group sizes (ready fds) instead of the default ones.
    pub sizes: Option<Vec<usize>>,
    /// Count system calls per operation (one extra untimed run each).
    pub syscalls: bool,
    /// Where to write the JSON records (the Markdown and charts go beside
    /// it).
    pub json: Option<PathBuf>,
    /// Run nothing: redraw the tables, Markdown and charts of these saved
    /// JSON files.
    pub redraw: Vec<PathBuf>,
}

impl Config {
    /// Repetitions per contender: `reps`, or the mode's default.
    pub fn reps(&self) -> usize {
        match self.reps {
            0 if self.smoke => 1,
            0 if self.quick => 3,
            0 => 5,
            r => r,
        }
    }

    /// Picks the smoke, quick or full value.
    pub fn size<T>(&self, smoke: T, quick: T, full: T) -> T {
        if self.smoke {
            smoke
        } else if self.quick {
            quick
        } else {
            full
        }
    }
}

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
/// let v = fdloop_bench::harness::interleave(3, 2, |i| {
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

/// One repetition's outcome: the primary figure, the operations it covered
/// (for syscalls per operation), and secondary figures.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The primary metric's value.
    pub value: f64,
    /// Operations done (events, messages, round trips, timers).
    pub ops: u64,
    /// Secondary figures: (metric, unit, value).
    pub extra: Vec<(&'static str, &'static str, f64)>,
}

impl Measured {
    /// A time per operation, in ns.
    pub fn time(elapsed: Duration, ops: u64) -> Measured {
        Measured {
            value: elapsed.as_nanos() as f64 / ops.max(1) as f64,
            ops,
            extra: Vec::new(),
        }
    }

    /// A rate, in millions of operations per second.
    pub fn rate(elapsed: Duration, ops: u64) -> Measured {
        Measured {
            value: ops as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6,
            ops,
            extra: Vec::new(),
        }
    }

    /// Adds a secondary figure.
    pub fn with(mut self, metric: &'static str, unit: &'static str, v: f64) -> Measured {
        self.extra.push((metric, unit, v));
        self
    }
}

/// One contender of a case.
pub struct Entry<'a> {
    name: String,
    role: Role,
    run: Box<dyn FnMut() -> io::Result<Measured> + 'a>,
}

impl std::fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A contender named `name` that `run` measures once per call.
pub fn entry<'a>(
    name: impl Into<String>,
    role: Role,
    run: impl FnMut() -> io::Result<Measured> + 'a,
) -> Entry<'a> {
    Entry {
        name: name.into(),
        role,
        run: Box::new(run),
    }
}

/// A case: its title and primary metric.
#[derive(Clone, Debug)]
pub struct Case {
    /// Title, e.g. `N = 100 ready fds`.
    pub title: String,
    /// Primary metric name, e.g. `time/event`.
    pub metric: &'static str,
    /// Its unit: `ns` or `M msg/s` and so on.
    pub unit: &'static str,
    /// Which direction is good.
    pub better: Better,
    /// Run every contender once, untimed, first.
    pub warmup: bool,
    /// A line printed under the table (how to read it).
    pub note: String,
    /// A secondary variant (another thread placement of a headline case):
    /// its figures are [`detail`](crate::record::Record::detail), left out
    /// of the summary.
    pub detail: bool,
    /// Repetitions per contender as a multiple of the configured ones
    /// (1 unless set with [`reps_times`](Case::reps_times)).
    pub rep_factor: usize,
}

impl Case {
    /// A case timed in ns per operation.
    pub fn time(title: impl Into<String>, metric: &'static str) -> Case {
        Case::new(title.into(), metric, "ns", Better::Lower)
    }

    /// A case measured as a rate.
    pub fn rate(title: impl Into<String>, metric: &'static str, unit: &'static str) -> Case {
        Case::new(title.into(), metric, unit, Better::Higher)
    }

    fn new(title: String, metric: &'static str, unit: &'static str, better: Better) -> Case {
        Case {
            title,
            metric,
            unit,
            better,
            warmup: true,
            note: String::new(),
            detail: false,
            rep_factor: 1,
        }
    }

    /// Runs `k` times the configured repetitions: for cases whose
    /// figures pool every repetition, shorter samples interleaved more
    /// finely compare the contenders over the same stretches of time.
    pub fn reps_times(mut self, k: usize) -> Case {
        self.rep_factor = k.max(1);
        self
    }

    /// Repetitions per contender under `cfg`.
    pub fn reps(&self, cfg: &Config) -> usize {
        cfg.reps() * self.rep_factor
    }

    /// Sets the note printed under the table.
    pub fn note(mut self, note: impl Into<String>) -> Case {
        self.note = note.into();
        self
    }

    /// Skips the untimed warm-up run.
    pub fn no_warmup(mut self) -> Case {
        self.warmup = false;
        self
    }

    /// Marks the case a secondary variant, left out of the summary when
    /// `detail` is true.
    pub fn detail(mut self, detail: bool) -> Case {
        self.detail = detail;
        self
    }
}

/// The running report: configuration, figures so far, progress output.
#[derive(Debug)]
pub struct Ctx<'c> {
    /// What to run.
    pub cfg: &'c Config,
    /// Every figure so far.
    pub report: Report,
    group: &'static str,
    tty: bool,
    syscall_note: Option<String>,
}

impl<'c> Ctx<'c> {
    /// A report with nothing run yet.
    pub fn new(cfg: &'c Config) -> Ctx<'c> {
        Ctx {
            cfg,
            report: Report::default(),
            group: "",
            tty: io::stderr().is_terminal(),
            syscall_note: None,
        }
    }

    /// The reason system calls could not be counted, if they could not.
    pub fn syscall_note(&self) -> Option<&str> {
        self.syscall_note.as_deref()
    }

    /// Runs `case` of `group`: the warm-up, the interleaved repetitions,
    /// one counted run per contender, then prints the table.
    ///
    /// # Errors
    ///
    /// The first contender error, prefixed with the contender's name.
    pub fn run_case(
        &mut self,
        group: &'static str,
        case: Case,
        entries: Vec<Entry<'_>>,
    ) -> io::Result<()> {
        self.group = group;
        let mut entries: Vec<Entry<'_>> = entries
            .into_iter()
            .filter(|e| {
                e.role == Role::Floor
                    || self
                        .cfg
                        .contender
                        .as_deref()
                        .is_none_or(|c| e.name.contains(c))
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let reps = case.reps(self.cfg);
        // System calls are counted in the untimed warm-up run where there
        // is one (the tracepoint slows every syscall a little), else in one
        // extra run after the timed ones.
        let extra_count = self.cfg.syscalls && !case.warmup;
        let total = entries.len() * (reps + usize::from(case.warmup || extra_count));
        let mut done = 0;
        let ctx_err = |e: &Entry<'_>, err: io::Error| {
            io::Error::new(err.kind(), format!("{}: {err}", e.name))
        };
        let mut calls: Vec<Option<f64>> = vec![None; entries.len()];
        let mut count = |ctx: &mut Self, i: usize, e: &mut Entry<'_>| -> io::Result<()> {
            if ctx.cfg.syscalls {
                let (m, c) = counted(|| (e.run)()).map_err(|err| ctx_err(e, err))?;
                match c {
                    Ok(c) => calls[i] = Some(c as f64 / m.ops.max(1) as f64),
                    Err(err) => {
                        ctx.syscall_note.get_or_insert_with(|| err.to_string());
                    }
                }
            } else {
                (e.run)().map_err(|err| ctx_err(e, err))?;
            }
            Ok(())
        };
        if case.warmup {
            for (i, e) in entries.iter_mut().enumerate() {
                self.progress(&case.title, &e.name, done, total);
                count(self, i, e)?;
                done += 1;
            }
        }
        let mut extras: Vec<Vec<Measured>> = vec![Vec::new(); entries.len()];
        let values = interleave(entries.len(), reps, |i| {
            let e = &mut entries[i];
            self.progress(&case.title, &e.name, done, total);
            let m = (e.run)().map_err(|err| ctx_err(e, err))?;
            done += 1;
            let v = m.value;
            extras[i].push(m);
            Ok(v)
        })?;
        if extra_count {
            for (i, e) in entries.iter_mut().enumerate() {
                self.progress(&case.title, &e.name, done, total);
                count(self, i, e)?;
                done += 1;
            }
        }
        // Every contender's primary figure, then each one's secondary
        // figures (in the order first seen) and system calls.
        let title = case.title.as_str();
        let report = &mut self.report;
        let mut add = |e: &Entry<'_>, metric, unit, better, v: &[f64]| {
            report.add(group, title, &e.name, e.role, metric, unit, better, v);
        };
        for (e, v) in entries.iter().zip(&values) {
            add(e, case.metric, case.unit, case.better, v);
        }
        for (i, e) in entries.iter().enumerate() {
            let mut names: Vec<(&'static str, &'static str)> = Vec::new();
            for &(metric, unit, _) in extras[i].iter().flat_map(|m| &m.extra) {
                if !names.iter().any(|&(n, _)| n == metric) {
                    names.push((metric, unit));
                }
            }
            for (metric, unit) in names {
                let v: Vec<f64> = extras[i]
                    .iter()
                    .flat_map(|m| m.extra.iter().filter(|x| x.0 == metric).map(|x| x.2))
                    .collect();
                add(e, metric, unit, Better::Lower, &v);
            }
            if let Some(c) = calls[i] {
                add(e, "syscalls/op", "", Better::Lower, &[c]);
            }
        }
        if case.detail {
            self.report.mark_detail(group, title);
        }
        self.clear_progress();
        println!("{}", self.report.table(group, &case.title));
        if !case.note.is_empty() {
            println!("{}\n", case.note);
        }
        println!(
            "({} took {:.1} s)\n",
            case.title,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn progress(&self, case: &str, name: &str, done: usize, total: usize) {
        if self.tty {
            let line = format!("[{}] {case}: {name} ({done}/{total})", self.group);
            let line: String = line.chars().take(110).collect();
            eprint!("\r{line:<110}");
        } else if done == 0 {
            eprintln!("[{}] {case}: running {total} samples", self.group);
        }
        let _ = io::stderr().flush();
    }

    fn clear_progress(&self) {
        if self.tty {
            eprint!("\r{:<110}\r", "");
        }
    }
}
