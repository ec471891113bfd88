//! The comparisons of the head-to-head report, one module per group:
//!
//! * [`wake`]: the wake primitives (eventfd, pipe, Mutex+Condvar queues,
//!   thread park as the floor);
//! * [`channel`]: channel throughput (1 and 4 producers) and round trips
//!   between two loops;
//! * [`dispatch`]: loop dispatch overhead with N = 1, 100, 10 000 ready fds;
//! * [`timers`]: timer arm+cancel with K pending, and firing lateness.
//!
//! These modules use the Rust peers, which are dev-dependencies of
//! fdloop-bench, so they are compiled into the `report` example and the
//! benches (`#[path]` includes), never into the library.
//!
//! Every group builds [`Entry`]s (a contender: a name, a [`Role`] and a
//! closure that measures it once) and hands each case to
//! [`Ctx::run_case`], which interleaves the repetitions, counts system
//! calls in one extra untimed run, records every figure in the
//! [`Report`] and prints the case's table as soon as it is done.

// Each includer uses a different subset of these items.
#![allow(dead_code)]

pub mod channel;
pub mod dispatch;
pub mod timers;
pub mod wake;

use std::io::{self, IsTerminal, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fdloop_bench::record::{Better, Report, Role};
use fdloop_bench::report::interleave;
use fdloop_bench::syscount::counted;
use fdloop_bench::Pin;

/// The groups, in report order.
pub const GROUPS: [&str; 4] = ["wake", "channel", "dispatch", "timers"];

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// Smaller samples, 3 repetitions, fewer sizes: the whole report in
    /// well under a minute.
    pub quick: bool,
    /// Tiny sizes and one repetition: proves every contender and output
    /// works (the tests use it); its figures mean nothing.
    pub smoke: bool,
    /// Pinning of the two-thread cases.
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
    /// Where to write the JSON records (charts go beside it).
    pub json: Option<PathBuf>,
    /// Run nothing: redraw the tables and charts of a saved JSON file.
    pub redraw: Option<PathBuf>,
}

impl Config {
    fn reps(&self) -> usize {
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
}

impl Case {
    /// A case timed in ns per operation.
    pub fn time(title: impl Into<String>, metric: &'static str) -> Case {
        Case {
            title: title.into(),
            metric,
            unit: "ns",
            better: Better::Lower,
            warmup: true,
            note: String::new(),
        }
    }

    /// A case measured as a rate.
    pub fn rate(title: impl Into<String>, metric: &'static str, unit: &'static str) -> Case {
        Case {
            title: title.into(),
            metric,
            unit,
            better: Better::Higher,
            warmup: true,
            note: String::new(),
        }
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
}

/// The running report: configuration, figures so far, progress output.
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
        let reps = self.cfg.reps();
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
        for (i, e) in entries.iter().enumerate() {
            self.report.add(
                group,
                &case.title,
                &e.name,
                e.role,
                case.metric,
                case.unit,
                case.better,
                &values[i],
            );
        }
        // Secondary figures, in the order first seen.
        for (i, e) in entries.iter().enumerate() {
            let mut names: Vec<(&'static str, &'static str)> = Vec::new();
            for m in &extras[i] {
                for &(metric, unit, _) in &m.extra {
                    if !names.iter().any(|&(n, _)| n == metric) {
                        names.push((metric, unit));
                    }
                }
            }
            for (metric, unit) in names {
                let v: Vec<f64> = extras[i]
                    .iter()
                    .flat_map(|m| m.extra.iter().filter(|x| x.0 == metric).map(|x| x.2))
                    .collect();
                self.report.add(
                    group,
                    &case.title,
                    &e.name,
                    e.role,
                    metric,
                    unit,
                    Better::Lower,
                    &v,
                );
            }
            if let Some(c) = calls[i] {
                self.report.add(
                    group,
                    &case.title,
                    &e.name,
                    e.role,
                    "syscalls/op",
                    "",
                    Better::Lower,
                    &[c],
                );
            }
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

/// Runs the groups `cfg` selects (all, or `forced` alone), prints the
/// tables, and writes the JSON and the charts if asked.
///
/// # Errors
///
/// A contender's error, or writing the JSON or a chart failing.
pub fn run(cfg: &Config) -> io::Result<Report> {
    if let Some(path) = &cfg.redraw {
        return redraw(path);
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".into(), |s| s.trim().to_string());
    println!(
        "# fdloop head-to-head report\n\n{} mode, {} reps per contender (interleaved), pin {}, \
         {cpus} CPUs, Linux {kernel}, C peers {}\n",
        cfg.size("smoke-test", "quick", "full"),
        cfg.reps(),
        cfg.pin,
        if cfg!(feature = "c-peers") {
            "included"
        } else {
            "not built (feature c-peers)"
        },
    );
    let started = Instant::now();
    let mut ctx = Ctx::new(cfg);
    for g in GROUPS {
        if !cfg.only.is_empty() && !cfg.only.iter().any(|o| o == g) {
            continue;
        }
        println!("## {g}\n");
        let t = Instant::now();
        match g {
            "wake" => wake::run(&mut ctx)?,
            "channel" => channel::run(&mut ctx)?,
            "dispatch" => dispatch::run(&mut ctx)?,
            _ => timers::run(&mut ctx)?,
        }
        println!("({g} took {:.1} s)\n", t.elapsed().as_secs_f64());
    }
    if let Some(note) = ctx.syscall_note() {
        println!("syscalls/op not counted: {note}\n");
    }
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = &cfg.json {
        write_outputs(&ctx.report, path)?;
    }
    Ok(ctx.report)
}

/// Prints the tables of the records saved at `path` and rewrites the
/// charts beside it.
///
/// # Errors
///
/// Reading or parsing the file, or writing a chart, failing.
pub fn redraw(path: &std::path::Path) -> io::Result<Report> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let report = Report::from_json(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    for g in report.groups() {
        println!("## {g}\n");
        for case in report.cases(g) {
            println!("{}", report.table(g, case));
        }
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
    for g in report.groups() {
        let svg = path.with_file_name(format!("{stem}-{g}.svg"));
        std::fs::write(&svg, report.svg(g))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", svg.display())))?;
        println!("wrote {}", svg.display());
    }
    Ok(report)
}

/// Writes `report` as JSON to `path` and one SVG chart per group beside
/// it (`<stem>-<group>.svg`).
///
/// # Errors
///
/// Creating the directory or writing a file failing, with the path.
pub fn write_outputs(report: &Report, path: &std::path::Path) -> io::Result<()> {
    let with_path = |p: &std::path::Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{}: {e}", p.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| with_path(dir, e))?;
    }
    std::fs::write(path, report.to_json()).map_err(|e| with_path(path, e))?;
    println!("wrote {}", path.display());
    let stem = path
        .file_stem()
        .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
    for g in report.groups() {
        let svg = path.with_file_name(format!("{stem}-{g}.svg"));
        std::fs::write(&svg, report.svg(g)).map_err(|e| with_path(&svg, e))?;
        println!("wrote {}", svg.display());
    }
    Ok(())
}

/// The command-line help.
pub const USAGE: &str = "\
usage: report [--quick] [--only GROUP[,GROUP…]] [--pin same|cross|off] [--json PATH]
              [--reps R] [--contender SUBSTR] [--no-syscalls]

Runs fdloop against its peers — the raw-syscall floor, mio, calloop, tokio,
crossbeam-channel, flume, std, and with feature c-peers GLib, libevent and
sd-event — in one process, alternating the contenders, and prints a table
per case: median, min–max, cost relative to the best peer and to the floor,
and system calls per operation.

  --quick            smaller samples, 3 reps, fewer sizes (under a minute)
  --only GROUPS      only these groups: wake, channel, dispatch, timers
  --pin MODE         two-thread cases: same (both on CPU 0), cross (CPUs 0
                     and 1) or off (default: the scheduler decides)
  --json PATH        write every figure to PATH as JSON records, and one SVG
                     chart per group beside it (PATH-stem-GROUP.svg)
  --reps R           repetitions per contender (default 5; quick 3)
  --contender S      only contenders whose name contains S (and the floor)
  --sizes LIST       dispatch group: these numbers of ready fds (default
                     1,100,10000)
  --no-syscalls      skip the untimed runs that count system calls
  --redraw PATH      run nothing: print the tables of a saved --json file and
                     redraw its charts beside it
  --smoke            tiny sizes, 1 rep: checks that everything runs (figures
                     meaningless; used by the tests)
  -h, --help         print this help";

/// Parses the command line (`forced`: the one group a bench target runs).
/// `Ok(None)` asks for the help.
///
/// # Errors
///
/// A message naming the bad argument.
pub fn parse_args(
    args: impl IntoIterator<Item = String>,
    forced: Option<&str>,
) -> Result<Option<Config>, String> {
    let mut cfg = Config {
        quick: false,
        smoke: false,
        pin: Pin::Off,
        reps: 0,
        only: forced.map(|g| vec![g.to_string()]).unwrap_or_default(),
        contender: None,
        sizes: None,
        syscalls: true,
        json: None,
        redraw: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            // cargo bench passes `--bench` to every bench binary.
            "--bench" => {}
            "--quick" => cfg.quick = true,
            "--smoke" => cfg.smoke = true,
            "--no-syscalls" => cfg.syscalls = false,
            "--pin" => cfg.pin = value("--pin")?.parse()?,
            "--json" => cfg.json = Some(PathBuf::from(value("--json")?)),
            "--redraw" => cfg.redraw = Some(PathBuf::from(value("--redraw")?)),
            "--contender" => cfg.contender = Some(value("--contender")?),
            "--sizes" => {
                let v = value("--sizes")?;
                let sizes = v
                    .split(',')
                    .map(|s| s.trim().parse::<usize>().ok().filter(|&n| n > 0))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or(format!("--sizes: {v:?} is not a list of positive numbers"))?;
                cfg.sizes = Some(sizes);
            }
            "--reps" => {
                let v = value("--reps")?;
                cfg.reps = v
                    .parse()
                    .ok()
                    .filter(|&r| r > 0)
                    .ok_or(format!("--reps: {v:?} is not a positive number"))?;
            }
            "--only" => {
                let v = value("--only")?;
                let groups: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = groups.iter().find(|g| !GROUPS.contains(&g.as_str())) {
                    return Err(format!(
                        "--only: unknown group {bad:?} (groups: {})",
                        GROUPS.join(", ")
                    ));
                }
                if forced.is_some() {
                    return Err("--only: this target runs one group".into());
                }
                cfg.only = groups;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(cfg))
}

/// The `main` of the report and of the per-group benches.
pub fn main_with(name: &str, forced: Option<&str>) -> std::process::ExitCode {
    fdloop_bench::report::bench_main(
        name,
        USAGE,
        std::env::args().skip(1),
        |a| parse_args(a, forced),
        |cfg| run(cfg).map(|_| ()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Option<Config>, String> {
        parse_args(a.iter().map(|s| s.to_string()), None)
    }

    #[test]
    fn flags() {
        let c = parse(&[
            "--quick",
            "--only",
            "wake,timers",
            "--pin=cross",
            "--json",
            "x/r.json",
        ])
        .unwrap()
        .unwrap();
        assert!(c.quick && c.syscalls);
        assert_eq!(c.only, ["wake", "timers"]);
        assert_eq!(c.pin, Pin::Cross);
        assert_eq!(c.json.as_deref(), Some(std::path::Path::new("x/r.json")));
        assert_eq!(c.reps(), 3);
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--only", "nope"]).is_err());
        assert!(parse(&["--pin", "both"]).is_err());
        assert!(parse(&["--reps", "0"]).is_err());
        assert!(parse(&["--json"]).is_err());
        assert!(parse(&["--fast"]).is_err());
        let s = parse(&["--sizes", "1,50"]).unwrap().unwrap();
        assert_eq!(s.sizes, Some(vec![1, 50]));
        assert!(parse(&["--sizes", "1,0"]).is_err());
        let b = parse_args(["--bench".to_string()], Some("dispatch"))
            .unwrap()
            .unwrap();
        assert_eq!(b.only, ["dispatch"]);
        assert_eq!(b.reps(), 5);
    }

    /// Every group, every contender (with feature c-peers, the C ones
    /// too), the tables, the JSON and the charts, at smoke-test sizes.
    #[test]
    fn the_whole_report_runs() {
        let dir = std::env::temp_dir().join(format!("fdloop-report-{}", std::process::id()));
        let json = dir.join("r.json");
        let mut cfg = parse(&["--smoke"]).unwrap().unwrap();
        cfg.json = Some(json.clone());
        let report = run(&cfg).expect("report run");
        assert_eq!(report.groups(), GROUPS);
        for g in GROUPS {
            for case in report.cases(g) {
                let prim = report.primary(g, case);
                assert!(prim.len() >= 3, "{g}/{case}: {} contenders", prim.len());
                assert!(
                    prim.iter().any(|r| r.role == Role::Fdloop),
                    "{g}/{case}: no fdloop row"
                );
                // Lateness is signed: a timer that fired early (libevent's
                // default base reads a coarse clock) has a negative one,
                // and at smoke sizes that can be the median. Every other
                // figure is a time or a rate, so positive.
                assert!(
                    prim.iter().all(|r| r.median.is_finite()
                        && (r.median > 0.0 || r.metric.contains("lateness"))),
                    "{g}/{case}: {prim:?}"
                );
            }
            let svg = std::fs::read_to_string(dir.join(format!("r-{g}.svg"))).expect("chart");
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        }
        let text = std::fs::read_to_string(&json).expect("json");
        assert_eq!(text.matches("\"group\"").count(), report.records.len());
        let cfg = parse(&["--redraw", json.to_str().unwrap()])
            .unwrap()
            .unwrap();
        let again = run(&cfg).expect("redraw");
        assert_eq!(again.records.len(), report.records.len());
        #[cfg(feature = "c-peers")]
        for name in ["GLib", "libevent", "sd-event"] {
            assert!(
                report.records.iter().any(|r| r.contender.contains(name)),
                "no {name} figure"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
