//! The report's command line: `cargo run --release -p fdloop-bench --bin
//! report [-- FLAGS]` (`src/bin/report.rs`), and `cargo bench -p
//! fdloop-bench --bench GROUP` for one group (`benches/`).

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::groups::{self, GROUPS};
use crate::harness::{Config, Ctx};
use crate::record::Report;
use crate::render::{summary, write_files};
use crate::Pin;

/// Runs the groups `cfg` selects, prints the tables, and writes the JSON,
/// Markdown and charts if asked (`--json`).
///
/// # Errors
///
/// A contender's error, or writing a file failing.
pub fn run(cfg: &Config) -> io::Result<Report> {
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
        groups::run(g, &mut ctx)?;
        println!("({g} took {:.1} s)\n", t.elapsed().as_secs_f64());
    }
    if let Some(note) = ctx.syscall_note() {
        println!("syscalls/op not counted: {note}\n");
    }
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = &cfg.json {
        wrote(write_files(&ctx.report, path, true)?);
    }
    Ok(ctx.report)
}

/// Runs nothing: reads the JSON files of earlier runs, prints their
/// tables, rewrites each one's Markdown and charts beside it, and with
/// more than one file prints their combined summary (one value per run in
/// every cell).
///
/// # Errors
///
/// Reading or parsing a file, or writing one, failing.
pub fn redraw(paths: &[PathBuf]) -> io::Result<Vec<Report>> {
    let mut reports = Vec::with_capacity(paths.len());
    for path in paths {
        let report = std::fs::read_to_string(path)
            .and_then(|text| {
                Report::from_json(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            })
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        println!("# {}\n", path.display());
        for g in report.groups() {
            println!("## {g}\n");
            for case in report.cases(g) {
                println!("{}", report.table(g, case));
            }
        }
        wrote(write_files(&report, path, false)?);
        reports.push(report);
    }
    if reports.len() > 1 {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let runs: Vec<&Report> = reports.iter().collect();
        println!(
            "\n## Summary of {} (one value per run, in that order)\n\n{}",
            names.join(", "),
            summary(&runs)
        );
    }
    Ok(reports)
}

fn wrote(files: Vec<PathBuf>) {
    for f in files {
        println!("wrote {}", f.display());
    }
}

/// The command-line help.
pub const USAGE: &str = "\
usage: report [--quick] [--only GROUP[,GROUP…]] [--pin same|cross|off] [--json PATH]
              [--reps R] [--contender SUBSTR] [--sizes LIST] [--no-syscalls]
       report --redraw PATH [--redraw PATH…]

Runs fdloop against its peers — the raw-syscall floor, mio, calloop, tokio,
crossbeam-channel, flume, std, and with feature c-peers GLib, libevent and
sd-event — in one process, alternating the contenders, and prints a table
per case: median, min–max, cost relative to the best peer (the ratio of the
medians, and paired: the median over the reps of the ratio within each
round, which a slow drift of the machine cannot tip) and to the floor, and
system calls per operation.

  --quick            smaller samples, 3 reps, fewer sizes (under a minute)
  --only GROUPS      only these groups: wake, channel, dispatch, timers, async
  --pin MODE         the wake group's two-thread cases: same (both on CPU 0),
                     cross (CPUs 0 and 1) or off (default: the scheduler
                     decides); the channel group runs all three placements
  --json PATH        write every figure to PATH as JSON records, every table
                     beside it as Markdown (PATH with .md) and one SVG chart
                     per group (PATH-stem-GROUP.svg)
  --reps R           repetitions per contender (default 5; quick 3)
  --contender S      only contenders whose name contains S (and the floor)
  --sizes LIST       dispatch group: these numbers of ready fds (default
                     1,100,10000)
  --no-syscalls      skip the untimed runs that count system calls
  --redraw PATH      run nothing: print the tables of a saved --json file and
                     rewrite its Markdown and charts beside it; given more than
                     once, also print the runs' combined summary
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
        redraw: Vec::new(),
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
            "--redraw" => cfg.redraw.push(PathBuf::from(value("--redraw")?)),
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

/// The `main` of the report (`forced`: `None`) and of the per-group
/// benches (`Some(group)`): 0 on success or `--help`, 2 with the usage on
/// a bad flag, 1 on an I/O error.
pub fn main_with(forced: Option<&str>) -> ExitCode {
    let name = forced.unwrap_or("report");
    let cfg = match parse_args(std::env::args().skip(1), forced) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{name}: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let done = if cfg.redraw.is_empty() {
        run(&cfg).map(drop)
    } else {
        redraw(&cfg.redraw).map(drop)
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Role;

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
    /// too), the tables, the JSON, Markdown and charts, and redrawing them,
    /// at smoke-test sizes.
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
        let md = std::fs::read_to_string(dir.join("r.md")).expect("markdown");
        let j = json.to_str().unwrap();
        let cfg = parse(&["--redraw", j, "--redraw", j]).unwrap().unwrap();
        let again = redraw(&cfg.redraw).expect("redraw");
        assert_eq!(again.len(), 2);
        assert_eq!(again[1].records, report.records);
        // Markdown and charts are rewritten the same from the JSON.
        assert_eq!(std::fs::read_to_string(dir.join("r.md")).unwrap(), md);
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
