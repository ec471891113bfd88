//! Dispatch overhead per ready event: fdloop against a hand-written epoll
//! loop (the floor), mio and calloop.
//!
//! N eventfds are readable on every iteration (counter 1, never read,
//! level-triggered); each contender waits with a zero timeout and runs one
//! callback per ready descriptor, each doing the same [`Work`]. One sample
//! runs iterations until it has dispatched a fixed number of events and
//! reports ns per event. Every contender runs in one process, 7 repetitions
//! interleaved (repetition *r* starts at contender *r* mod *n*), each sample
//! after an untimed warm-up; the table gives the median, min–max and the
//! ratio of medians to the floor.
//!
//! ```text
//! cargo bench -p fdloop-bench --bench dispatch -- [--quick] [--sizes 1,100,10000] [--only NAME]
//! ```

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use fdloop_bench::dispatch::{
    ensure_nofile, epoll_add_level, ready_eventfds, Contender, FdloopDrive, FdloopSet, RawEpoll,
    Work,
};

const USAGE: &str = "\
usage: dispatch [--quick] [--sizes N,N,...] [--only SUBSTRING]

Times the dispatch of N always-ready eventfds (level-triggered) by fdloop,
a hand-written epoll loop (the floor), mio and calloop; prints ns per
dispatched event and the ratio to the floor.

  --quick          fewer events per sample, 3 repetitions (a few seconds)
  --sizes LIST     the values of N (default 1,100,10000)
  --only SUBSTR    only contenders whose name contains SUBSTR (for
                   profiling one of them; ratios need the floor kept)
  -h, --help       print this help";

/// A callback of the mio contender.
type MioHandler = Box<dyn FnMut(&mio::event::Event, &mut Work)>;

/// mio: `Poll::poll` into an `Events` of capacity N, then token → index in
/// a `Vec` of boxed callbacks.
///
/// mio registers everything edge-triggered, which would report each eventfd
/// once; so the descriptors are added to mio's epoll set (its `AsRawFd`)
/// level-triggered by hand, with the token as the data word, which is what
/// mio reads back. The timed path is mio's own: `poll` and `Events`.
struct MioSet {
    poll: mio::Poll,
    events: mio::Events,
    handlers: Vec<MioHandler>,
}

impl MioSet {
    fn new(fds: &[Rc<OwnedFd>]) -> io::Result<MioSet> {
        let poll = mio::Poll::new()?;
        let mut handlers: Vec<MioHandler> = Vec::with_capacity(fds.len());
        for (i, fd) in fds.iter().enumerate() {
            epoll_add_level(poll.as_raw_fd(), fd.as_raw_fd(), i as u64)?;
            let key = i as u32;
            handlers.push(Box::new(move |_ev, w: &mut Work| w.record(key)));
        }
        Ok(MioSet {
            poll,
            events: mio::Events::with_capacity(fds.len().max(1)),
            handlers,
        })
    }
}

impl Contender for MioSet {
    fn name(&self) -> &'static str {
        "mio Poll + Vec<Box<dyn FnMut>>"
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        self.poll.poll(&mut self.events, Some(Duration::ZERO))?;
        let mut n = 0;
        for ev in self.events.iter() {
            if let Some(h) = self.handlers.get_mut(ev.token().0) {
                h(ev, work);
                n += 1;
            }
        }
        Ok(n)
    }

    fn batch(&self) -> usize {
        self.events.capacity()
    }
}

/// calloop: one `Generic` source per eventfd, level-triggered, readable.
struct CalloopSet {
    ev: calloop::EventLoop<'static, Work>,
}

impl CalloopSet {
    fn new(fds: &[Rc<OwnedFd>]) -> io::Result<CalloopSet> {
        let ev = calloop::EventLoop::try_new().map_err(io::Error::other)?;
        for (i, fd) in fds.iter().enumerate() {
            let key = i as u32;
            let src = calloop::generic::Generic::new(
                fd.clone(),
                calloop::Interest::READ,
                calloop::Mode::Level,
            );
            ev.handle()
                .insert_source(src, move |_ready, _fd, w: &mut Work| {
                    w.record(key);
                    Ok(calloop::PostAction::Continue)
                })
                .map_err(|e| io::Error::other(e.error))?;
        }
        Ok(CalloopSet { ev })
    }
}

impl Contender for CalloopSet {
    fn name(&self) -> &'static str {
        "calloop Generic"
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        let before = work.hits;
        self.ev
            .dispatch(Some(Duration::ZERO), work)
            .map_err(io::Error::other)?;
        Ok(work.hits - before)
    }

    fn batch(&self) -> usize {
        // calloop polls through `polling`, whose `Events::new()` holds 1024.
        1024
    }
}

#[derive(Debug)]
struct Config {
    quick: bool,
    sizes: Vec<usize>,
    only: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, String> {
    let mut cfg = Config {
        quick: false,
        sizes: vec![1, 100, 10_000],
        only: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => cfg.quick = true,
            // cargo bench passes `--bench` to every bench binary.
            "--bench" => {}
            "--sizes" => {
                let v = args.next().ok_or("--sizes needs a list")?;
                cfg.sizes = v
                    .split(',')
                    .map(|s| s.trim().parse::<usize>().map_err(|e| format!("{s}: {e}")))
                    .collect::<Result<_, _>>()?;
                if cfg.sizes.contains(&0) {
                    return Err("N must be at least 1".into());
                }
            }
            "--only" => cfg.only = Some(args.next().ok_or("--only needs a name")?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(cfg))
}

/// Events per timed sample: about 0.1–0.2 s each on a 2-vCPU VM.
fn events_per_sample(n: usize, quick: bool) -> u64 {
    // At N = 1 every event costs a whole epoll_wait.
    let full: u64 = if n < 10 { 200_000 } else { 2_000_000 };
    if quick {
        full / 10
    } else {
        full
    }
}

/// One timed sample.
#[derive(Clone, Copy, Debug)]
struct Sample {
    elapsed: Duration,
    events: u64,
    turns: u64,
}

impl Sample {
    fn ns_per_event(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.events.max(1) as f64
    }
}

/// Warms `c` up, then runs turns until `target` events were dispatched.
fn sample(c: &mut dyn Contender, target: u64) -> io::Result<Sample> {
    let mut work = Work::default();
    // Warm-up: at least 20 turns (fdloop's buffer grows to fit N by then)
    // and a tenth of the sample's events.
    let mut warm = 0;
    let mut turns = 0;
    while turns < 20 || warm < target / 10 {
        warm += c.turn(&mut work)?;
        turns += 1;
    }
    let mut work = Work::default();
    let mut events = 0;
    let mut turns = 0;
    let start = Instant::now();
    while events < target {
        events += c.turn(&mut work)?;
        turns += 1;
    }
    let elapsed = start.elapsed();
    if work.hits != events {
        return Err(io::Error::other(format!(
            "{}: {events} events reported, {} callbacks ran",
            c.name(),
            work.hits
        )));
    }
    std::hint::black_box(work.acc);
    Ok(Sample {
        elapsed,
        events,
        turns,
    })
}

/// A contender's table name and how to build it over some descriptors.
type Maker = (
    &'static str,
    fn(&[Rc<OwnedFd>]) -> io::Result<Box<dyn Contender>>,
);

/// Every contender, the floor first. Names match [`Contender::name`].
const CONTENDERS: [Maker; 5] = [
    (FLOOR, |f| Ok(Box::new(RawEpoll::new(f)?))),
    ("fdloop dispatch_pending", |f| {
        Ok(Box::new(FdloopSet::new(f, FdloopDrive::DispatchPending)?))
    }),
    ("fdloop run_once(None)", |f| {
        Ok(Box::new(FdloopSet::new(f, FdloopDrive::RunOnceBlocking)?))
    }),
    ("mio Poll + Vec<Box<dyn FnMut>>", |f| {
        Ok(Box::new(MioSet::new(f)?))
    }),
    ("calloop Generic", |f| Ok(Box::new(CalloopSet::new(f)?))),
];

const FLOOR: &str = "raw epoll + Vec<Box<dyn FnMut>> (floor)";

/// Builds the contenders that `only` selects (all without it).
fn build(fds: &[Rc<OwnedFd>], only: Option<&str>) -> io::Result<Vec<Box<dyn Contender>>> {
    CONTENDERS
        .iter()
        .filter(|(name, _)| only.is_none_or(|o| name.contains(o)))
        .map(|(_, make)| make(fds))
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
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

/// Runs every contender `reps` times at size `n`, interleaved, and returns
/// the Markdown table and the verdict lines.
fn run_size(
    n: usize,
    fds: &[Rc<OwnedFd>],
    reps: usize,
    quick: bool,
    only: Option<&str>,
) -> io::Result<String> {
    let mut cs = build(&fds[..n], only)?;
    if cs.is_empty() {
        return Err(io::Error::other("--only matched no contender"));
    }
    let target = events_per_sample(n, quick);
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cs.len()];
    for r in 0..reps {
        for k in 0..cs.len() {
            let i = (r + k) % cs.len();
            samples[i].push(sample(cs[i].as_mut(), target)?);
        }
    }
    let meds: Vec<f64> = samples
        .iter()
        .map(|s| median(&mut s.iter().map(Sample::ns_per_event).collect::<Vec<_>>()))
        .collect();
    // Ratios are to the floor; with `--only` leaving it out, to the first
    // contender (and no verdicts are printed).
    let has_floor = cs[0].name() == FLOOR;
    let floor = meds[0];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### N = {n} ready eventfds ({target} events per sample, {reps} reps)\n"
    );
    let _ = writeln!(
        out,
        "| contender | median ns/event | min–max | × floor | events/turn | ns/turn |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (i, c) in cs.iter().enumerate() {
        let per: Vec<f64> = samples[i].iter().map(Sample::ns_per_event).collect();
        let lo = per.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per.iter().copied().fold(0.0, f64::max);
        let (ev, turns) = samples[i]
            .iter()
            .fold((0, 0), |(e, t), s| (e + s.events, t + s.turns));
        let per_turn = ev as f64 / turns.max(1) as f64;
        let _ = writeln!(
            out,
            "| {} | {} | {}–{} | {:.2} | {:.0} (buf {}) | {} |",
            c.name(),
            fmt_ns(meds[i]),
            fmt_ns(lo),
            fmt_ns(hi),
            meds[i] / floor,
            per_turn,
            c.batch(),
            fmt_ns(meds[i] * per_turn),
        );
    }
    let calloop = cs
        .iter()
        .position(|c| c.name().starts_with("calloop"))
        .map(|i| meds[i]);
    for (i, c) in cs.iter().enumerate() {
        if !has_floor || !c.name().starts_with("fdloop") {
            continue;
        }
        let ratio = meds[i] / floor;
        let _ = write!(
            out,
            "\n{}: {:.2}× floor (goal ≤ 1.20: {})",
            c.name(),
            ratio,
            if ratio <= 1.2 { "met" } else { "MISSED" }
        );
        if let Some(cl) = calloop {
            let _ = write!(
                out,
                "; {:.2}× calloop (goal < 1: {})",
                meds[i] / cl,
                if meds[i] < cl { "met" } else { "MISSED" }
            );
        }
    }
    out.push('\n');
    Ok(out)
}

fn run(cfg: &Config) -> io::Result<()> {
    let max_n = cfg.sizes.iter().copied().max().unwrap_or(1);
    // The eventfds, six epoll sets and their helpers, stdio, slack.
    let limit = ensure_nofile(max_n as u64 + 64)?;
    let reps = if cfg.quick { 3 } else { 7 };
    println!(
        "# dispatch overhead: {} mode, RLIMIT_NOFILE soft limit {limit}, {} CPUs",
        if cfg.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let fds = ready_eventfds(max_n)?;
    for &n in &cfg.sizes {
        let t = Instant::now();
        let table = run_size(n, &fds, reps, cfg.quick, cfg.only.as_deref())?;
        println!("{table}(N = {n} took {:.1} s)", t.elapsed().as_secs_f64());
    }
    Ok(())
}

fn main() -> ExitCode {
    fdloop_bench::report::bench_main("dispatch", USAGE, std::env::args().skip(1), parse_args, run)
}
