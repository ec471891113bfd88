//! Side-by-side timing of fdloop's wake primitives and their alternatives.
//!
//! Runs every case in one process, interleaving the contenders across
//! repetitions (each repetition starts at a different contender) so that
//! drift on a noisy machine spreads over all of them, and prints Markdown
//! tables of the medians.
//!
//! ```text
//! cargo run --release -p fdloop-bench --bin wake -- [--quick] [--pin same|cross|off]
//! ```

use std::fmt::Write as _;
use std::io;
use std::process::ExitCode;
use std::time::Instant;

use fdloop_bench::{pin_current_thread, Burst, Local, Pin, RoundTrip, Sample};

/// Repetitions of every contender in every case.
const REPS: usize = 7;

const USAGE: &str = "\
usage: wake [--quick] [--pin same|cross|off]

Times fdloop's wake primitives against pipes, a Mutex+Condvar queue and
thread park/unpark, alternating the contenders over 7 repetitions.

  --quick             fewer iterations (whole run well under 15 s)
  --pin same          pin both threads of a round trip to CPU 0
  --pin cross         pin the measuring thread to CPU 0, the echoing one to CPU 1
  --pin off           no pinning (default)
  -h, --help          print this help";

#[derive(Debug)]
struct Config {
    quick: bool,
    pin: Pin,
}

/// Iteration counts per timed sample.
struct Sizes {
    local: u64,
    burst_rounds: u64,
    round_trips: u64,
    round_trip_warmup: u64,
}

impl Sizes {
    fn for_config(cfg: &Config) -> Sizes {
        if cfg.quick {
            Sizes {
                local: 20_000,
                burst_rounds: 2_000,
                round_trips: 3_000,
                round_trip_warmup: 300,
            }
        } else {
            Sizes {
                local: 200_000,
                burst_rounds: 20_000,
                round_trips: 20_000,
                round_trip_warmup: 1_000,
            }
        }
    }
}

enum Parsed {
    Run(Config),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut cfg = Config {
        quick: false,
        pin: Pin::Off,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--quick" => cfg.quick = true,
            "--pin" => {
                let v = args
                    .next()
                    .ok_or("--pin needs a value: same, cross or off")?;
                cfg.pin = v.parse()?;
            }
            s if s.starts_with("--pin=") => cfg.pin = s["--pin=".len()..].parse()?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Parsed::Run(cfg))
}

fn main() -> ExitCode {
    let parse = |args: Vec<String>| {
        parse_args(args).map(|p| match p {
            Parsed::Run(cfg) => Some(cfg),
            Parsed::Help => None,
        })
    };
    fdloop_bench::report::bench_main("wake", USAGE, std::env::args().skip(1), parse, run)
}

fn run(cfg: &Config) -> io::Result<()> {
    // Counted before pinning, which would shrink it to 1.
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    check_pinning(cfg.pin)?;
    if let Some(cpu) = cfg.pin.main_cpu() {
        pin_current_thread(cpu)?;
    }
    let sizes = Sizes::for_config(cfg);
    let started = Instant::now();
    println!(
        "wake primitives: {REPS} interleaved reps per contender, pin {}, {cpus} CPUs available, {} mode\n",
        cfg.pin,
        if cfg.quick { "quick" } else { "full" },
    );

    let local = interleave(&Local::ALL, |c| c.run(sizes.local))?;
    print_local(&local, sizes.local);

    let burst = interleave(&Burst::ALL, |c| c.run(sizes.burst_rounds))?;
    print_burst(&burst, sizes.burst_rounds);

    let rt = interleave(&RoundTrip::ALL, |c| {
        c.run(sizes.round_trips, sizes.round_trip_warmup, cfg.pin)
    })?;
    print_round_trips(&rt, sizes.round_trips, cfg.pin);

    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Fails early, with a clear message, if a pinned CPU is not usable (rather
/// than from inside an echo thread mid-run).
fn check_pinning(pin: Pin) -> io::Result<()> {
    for cpu in [pin.main_cpu(), pin.echo_cpu()].into_iter().flatten() {
        let r = std::thread::spawn(move || pin_current_thread(cpu))
            .join()
            .map_err(|_| io::Error::other("pinning check thread panicked"))?;
        r.map_err(|e| io::Error::new(e.kind(), format!("--pin {pin}: {e}")))?;
    }
    Ok(())
}

/// Runs every contender `REPS` times; repetition `r` starts with contender
/// `r % n`, so no contender always runs first (or right after another).
fn interleave<C: Copy + std::fmt::Display>(
    contenders: &[C],
    mut measure: impl FnMut(C) -> io::Result<Sample>,
) -> io::Result<Vec<(C, Vec<Sample>)>> {
    let n = contenders.len();
    let mut out: Vec<(C, Vec<Sample>)> = contenders
        .iter()
        .map(|&c| (c, Vec::with_capacity(REPS)))
        .collect();
    for rep in 0..REPS {
        for k in 0..n {
            let i = (rep + k) % n;
            let c = out[i].0;
            let s = measure(c).map_err(|e| io::Error::new(e.kind(), format!("{c}: {e}")))?;
            out[i].1.push(s);
        }
    }
    Ok(out)
}

/// Median, min and max of ns/op.
struct Stats {
    median: f64,
    min: f64,
    max: f64,
    writes_per_op: Option<f64>,
}

fn stats(samples: &[Sample]) -> Stats {
    let mut ns: Vec<f64> = samples.iter().map(Sample::ns_per_op).collect();
    ns.sort_by(f64::total_cmp);
    let median = match ns.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => ns[n / 2],
        n => (ns[n / 2 - 1] + ns[n / 2]) / 2.0,
    };
    let (ops, writes) = samples.iter().fold((0u64, Some(0u64)), |(o, w), s| {
        (o + s.ops, w.zip(s.writes).map(|(a, b)| a + b))
    });
    Stats {
        median,
        min: ns.first().copied().unwrap_or(f64::NAN),
        max: ns.last().copied().unwrap_or(f64::NAN),
        writes_per_op: writes.map(|w| w as f64 / ops.max(1) as f64),
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

fn best_median(stats: &[Stats]) -> f64 {
    stats.iter().map(|s| s.median).fold(f64::INFINITY, f64::min)
}

fn print_local(results: &[(Local, Vec<Sample>)], iters: u64) {
    println!("### notify + drain, one thread ({iters} ops per sample)\n");
    println!("| contender | median ns/op | min–max | × best | writes/op |");
    println!("|---|---:|---:|---:|---:|");
    let all: Vec<Stats> = results.iter().map(|(_, s)| stats(s)).collect();
    let best = best_median(&all);
    for ((c, _), s) in results.iter().zip(&all) {
        println!(
            "| {c} | {} | {}–{} | {:.2} | {} |",
            fmt_ns(s.median),
            fmt_ns(s.min),
            fmt_ns(s.max),
            s.median / best,
            fmt_writes(s.writes_per_op),
        );
    }
    println!();
}

fn print_burst(results: &[(Burst, Vec<Sample>)], rounds: u64) {
    println!(
        "### {} × notify, then 1 drain, one thread ({rounds} rounds per sample)\n",
        Burst::PER_DRAIN
    );
    println!("| contender | median ns/notify | min–max | × best | writes/notify |");
    println!("|---|---:|---:|---:|---:|");
    let all: Vec<Stats> = results.iter().map(|(_, s)| stats(s)).collect();
    let best = best_median(&all);
    for ((c, _), s) in results.iter().zip(&all) {
        println!(
            "| {c} | {} | {}–{} | {:.2} | {} |",
            fmt_ns(s.median),
            fmt_ns(s.min),
            fmt_ns(s.max),
            s.median / best,
            fmt_writes(s.writes_per_op),
        );
    }
    println!(
        "\n(ns/notify includes the round's one drain, spread over its {} notifies.)\n",
        Burst::PER_DRAIN
    );
}

fn print_round_trips(results: &[(RoundTrip, Vec<Sample>)], iters: u64, pin: Pin) {
    println!("### blocking round trip, two threads, pin {pin} ({iters} round trips per sample)\n");
    println!("| contender | median ns/round trip | min–max | × best | × park floor |");
    println!("|---|---:|---:|---:|---:|");
    let all: Vec<Stats> = results.iter().map(|(_, s)| stats(s)).collect();
    let best = best_median(&all);
    let floor = results
        .iter()
        .zip(&all)
        .find(|((c, _), _)| *c == RoundTrip::Park)
        .map_or(f64::NAN, |(_, s)| s.median);
    for ((c, _), s) in results.iter().zip(&all) {
        println!(
            "| {c} | {} | {}–{} | {:.2} | {:.2} |",
            fmt_ns(s.median),
            fmt_ns(s.min),
            fmt_ns(s.max),
            s.median / best,
            s.median / floor,
        );
    }
    println!();
}

fn fmt_writes(w: Option<f64>) -> String {
    let mut s = String::new();
    match w {
        Some(w) => {
            let _ = write!(s, "{w:.3}");
        }
        None => s.push('–'),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        match parse(&["--quick", "--pin", "cross"]) {
            Ok(Parsed::Run(c)) => {
                assert!(c.quick);
                assert_eq!(c.pin, Pin::Cross);
            }
            _ => panic!("valid flags rejected"),
        }
        assert!(matches!(parse(&["--pin=same"]), Ok(Parsed::Run(c)) if c.pin == Pin::Same));
        assert!(matches!(parse(&[]), Ok(Parsed::Run(c)) if c.pin == Pin::Off && !c.quick));
        assert!(matches!(parse(&["--help"]), Ok(Parsed::Help)));
        assert!(parse(&["--pin"]).is_err());
        assert!(parse(&["--pin", "both"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }

    #[test]
    fn median_of_odd_and_even() {
        let s = |ns: u64| Sample {
            elapsed: std::time::Duration::from_nanos(ns),
            ops: 1,
            writes: None,
        };
        assert_eq!(stats(&[s(3), s(1), s(2)]).median, 2.0);
        assert_eq!(stats(&[s(4), s(1), s(2), s(3)]).median, 2.5);
        assert!(stats(&[s(1)]).writes_per_op.is_none());
    }
}
