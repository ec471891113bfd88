//! Timers (issue 5): fdloop's `Timer` against tokio (`DelayQueue`, `Sleep`)
//! and calloop's `Timer`.
//!
//! * **Arm + cancel**: with K timers already pending (deadlines spread over
//!   the hour starting an hour from now), the time to insert one more timer
//!   (at a pseudo-random deadline in the same hour, the same sequence for
//!   every contender) and remove it again. The loops never run, so nothing
//!   fires.
//! * **Lateness**: on an otherwise idle loop, how long after its deadline a
//!   timer's callback runs (`Instant::now()` in the callback minus the
//!   deadline). *Sequential*: n one-shot timers of 1 ms, one after the other.
//!   *Spread*: n timers at pseudo-random deadlines in the next 200 ms, all
//!   armed at once. A blocking read on a bare timerfd is the floor.
//!
//! Every contender runs `reps` times, interleaved (repetition *r* starts at
//! contender *r* mod *n*); the tables give the median and min–max of the
//! repetitions and ratios of medians.
//!
//! ```text
//! cargo bench -p fdloop-bench --bench timers -- [--quick] [--part arm|late]
//!     [--pending 1000,100000,1000000] [--reps R] [--only SUBSTR] [--calloop-all]
//! ```

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::{pin, Pin};
use std::process::ExitCode;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use fdloop::{Action, EventLoop, SourceId, Timer};
use fdloop_bench::report::{fmt_ns, interleave, percentile, Summary};
use fdloop_bench::timers::{late_ns, spread_deadlines, ArmCancel, Late, Pattern, Rng, STEP};

const USAGE: &str = "\
usage: timers [--quick] [--part all|arm|late] [--pending K,K,...] [--reps R]
              [--only SUBSTR] [--calloop-all]

Arm+cancel cost with K timers pending, and firing lateness on an idle loop:
fdloop against tokio (DelayQueue, Sleep), calloop and a bare timerfd.

  --quick          K = 1000,100000; fewer ops and timers; 3 repetitions
  --part P         only the arm+cancel (arm) or the lateness (late) tables
  --pending LIST   the values of K (default 1000,100000,1000000)
  --reps R         repetitions per contender (default 5; --quick 3)
  --only SUBSTR    only contenders whose name contains SUBSTR
  --calloop-all    run calloop's arm+cancel even for K > 200 000 (its
                   set-up is O(K²): minutes at 10^6)
  -h, --help       print this help";

// ---------------------------------------------------------------- arm + cancel

struct FdloopArm {
    ev: EventLoop<u64>,
}

impl FdloopArm {
    fn new(pending: &[Instant]) -> io::Result<FdloopArm> {
        let mut ev = EventLoop::new()?;
        for &d in pending {
            ev.insert(Timer::at(d), fired)?;
        }
        Ok(FdloopArm { ev })
    }
}

fn fired(_: fdloop::TimerEvent, _: &mut fdloop::TimerCtl, n: &mut u64) -> Action {
    *n += 1;
    Action::Continue
}

impl ArmCancel for FdloopArm {
    fn name(&self) -> &'static str {
        "fdloop insert(Timer::at) + remove"
    }

    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        for &d in deadlines {
            let id: SourceId = self.ev.insert(Timer::at(d), fired)?;
            self.ev.remove(id)?;
        }
        Ok(())
    }
}

struct CalloopArm {
    ev: calloop::EventLoop<'static, u64>,
}

impl CalloopArm {
    fn new(pending: &[Instant]) -> io::Result<CalloopArm> {
        let ev = calloop::EventLoop::try_new().map_err(io::Error::other)?;
        let h = ev.handle();
        for &d in pending {
            h.insert_source(calloop::timer::Timer::from_deadline(d), calloop_fired)
                .map_err(|e| io::Error::other(e.error))?;
        }
        Ok(CalloopArm { ev })
    }
}

fn calloop_fired(_: Instant, _: &mut (), n: &mut u64) -> calloop::timer::TimeoutAction {
    *n += 1;
    calloop::timer::TimeoutAction::Drop
}

impl ArmCancel for CalloopArm {
    fn name(&self) -> &'static str {
        "calloop insert_source(Timer) + remove"
    }

    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        let h = self.ev.handle();
        for &d in deadlines {
            let t = h
                .insert_source(calloop::timer::Timer::from_deadline(d), calloop_fired)
                .map_err(|e| io::Error::other(e.error))?;
            h.remove(t);
        }
        Ok(())
    }
}

fn tokio_rt() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

struct DelayQueueArm {
    rt: tokio::runtime::Runtime,
    q: tokio_util::time::DelayQueue<u32>,
}

impl DelayQueueArm {
    fn new(pending: &[Instant]) -> io::Result<DelayQueueArm> {
        let rt = tokio_rt()?;
        let mut q = {
            let _g = rt.enter();
            let mut q = tokio_util::time::DelayQueue::with_capacity(pending.len());
            for &d in pending {
                q.insert_at(0, d.into());
            }
            q
        };
        // Let the queue register its wake-up with the driver, as it would
        // in use (poll it once: nothing is due).
        let _g = rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        if q.poll_expired(&mut cx).is_ready() {
            return Err(io::Error::other("DelayQueue: a far timer expired"));
        }
        drop(_g);
        Ok(DelayQueueArm { rt, q })
    }
}

impl ArmCancel for DelayQueueArm {
    fn name(&self) -> &'static str {
        "tokio-util DelayQueue insert_at + remove"
    }

    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        let _g = self.rt.enter();
        for &d in deadlines {
            let k = self.q.insert_at(1, d.into());
            self.q.remove(&k);
        }
        Ok(())
    }
}

/// tokio `Sleep`s: each is created, polled once (which registers it in the
/// runtime's timer wheel) and dropped (which deregisters it).
struct SleepArm {
    rt: tokio::runtime::Runtime,
    _pending: Vec<Pin<Box<tokio::time::Sleep>>>,
}

impl SleepArm {
    fn new(pending: &[Instant]) -> io::Result<SleepArm> {
        let rt = tokio_rt()?;
        let _g = rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        let mut v = Vec::with_capacity(pending.len());
        for &d in pending {
            let mut s = Box::pin(tokio::time::sleep_until(d.into()));
            if s.as_mut().poll(&mut cx).is_ready() {
                return Err(io::Error::other("tokio: a far Sleep completed"));
            }
            v.push(s);
        }
        drop(_g);
        Ok(SleepArm { rt, _pending: v })
    }
}

impl ArmCancel for SleepArm {
    fn name(&self) -> &'static str {
        "tokio sleep_until + first poll + drop"
    }

    fn run(&mut self, deadlines: &[Instant]) -> io::Result<()> {
        let _g = self.rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        for &d in deadlines {
            let s = pin!(tokio::time::sleep_until(d.into()));
            if s.poll(&mut cx).is_ready() {
                return Err(io::Error::other("tokio: a far Sleep completed"));
            }
        }
        Ok(())
    }
}

type ArmMaker = (
    &'static str,
    fn(&[Instant]) -> io::Result<Box<dyn ArmCancel>>,
);

const ARM: [ArmMaker; 4] = [
    ("fdloop insert(Timer::at) + remove", |p| {
        Ok(Box::new(FdloopArm::new(p)?))
    }),
    ("tokio-util DelayQueue insert_at + remove", |p| {
        Ok(Box::new(DelayQueueArm::new(p)?))
    }),
    ("tokio sleep_until + first poll + drop", |p| {
        Ok(Box::new(SleepArm::new(p)?))
    }),
    ("calloop insert_source(Timer) + remove", |p| {
        Ok(Box::new(CalloopArm::new(p)?))
    }),
];

/// One arm+cancel sample: chunks of the deadline sequence until `max_ops`
/// were done or `budget` has passed (at least one chunk). Returns
/// (ns per op, ops).
fn arm_sample(
    c: &mut dyn ArmCancel,
    seq: &[Instant],
    max_ops: usize,
    budget: Duration,
) -> io::Result<(f64, usize)> {
    let chunk = 64.min(seq.len());
    let mut ops = 0;
    let mut at = 0;
    let start = Instant::now();
    loop {
        if at + chunk > seq.len() {
            at = 0;
        }
        c.run(&seq[at..at + chunk])?;
        at += chunk;
        ops += chunk;
        if ops >= max_ops || start.elapsed() >= budget {
            break;
        }
    }
    Ok((start.elapsed().as_nanos() as f64 / ops as f64, ops))
}

fn arm_table(cfg: &Config, k: usize) -> io::Result<String> {
    // calloop finds a free source slot by a linear scan, so inserting K
    // timers costs O(K²): ~4 s for 10^5, ~6 min for 10^6. Left out there.
    let skip_calloop = k > CALLOOP_MAX_K && !cfg.calloop_all;
    let makers: Vec<&ArmMaker> = ARM
        .iter()
        .filter(|(n, _)| cfg.selected(n))
        .filter(|(n, _)| !(skip_calloop && n.starts_with("calloop")))
        .collect();
    if makers.is_empty() {
        return Ok(String::new());
    }
    let base = Instant::now() + Duration::from_secs(3600);
    let hour = Duration::from_secs(3600);
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ k as u64);
    let pending: Vec<Instant> = (0..k).map(|_| base + rng.within(hour)).collect();
    let seq: Vec<Instant> = (0..100_000).map(|_| base + rng.within(hour)).collect();
    let t = Instant::now();
    let mut cs = makers
        .iter()
        .map(|(_, make)| make(&pending))
        .collect::<io::Result<Vec<_>>>()?;
    let setup = t.elapsed();
    drop(pending);
    let max_ops = if cfg.quick { 20_000 } else { 200_000 };
    let budget = Duration::from_millis(if cfg.quick { 50 } else { 250 });
    // Warm-up: one short sample each.
    for c in cs.iter_mut() {
        arm_sample(c.as_mut(), &seq, max_ops / 10, budget / 10)?;
    }
    let mut ops: Vec<usize> = vec![0; cs.len()];
    let ns = interleave(cs.len(), cfg.reps, |i| {
        let (ns, n) = arm_sample(cs[i].as_mut(), &seq, max_ops, budget)?;
        ops[i] += n;
        Ok(ns)
    })?;
    let sums: Vec<Summary> = ns.iter().map(|v| Summary::of(v)).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### Arm + cancel with K = {k} timers pending ({} reps; ≤ {max_ops} ops or {} ms per sample; set-up {:.1} s)\n",
        cfg.reps,
        budget.as_millis(),
        setup.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| contender | median ns per insert+remove | min–max | × fdloop | ops per sample |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    let fd = cs
        .iter()
        .position(|c| c.name().starts_with("fdloop"))
        .map(|i| sums[i].median);
    for (i, c) in cs.iter().enumerate() {
        let s = sums[i];
        let _ = writeln!(
            out,
            "| {} | {} | {}–{} | {} | {} |",
            c.name(),
            fmt_ns(s.median),
            fmt_ns(s.min),
            fmt_ns(s.max),
            fd.map_or("–".into(), |f| format!("{:.2}", s.median / f)),
            ops[i] / cfg.reps.max(1),
        );
    }
    if skip_calloop && cfg.selected("calloop") {
        let _ = writeln!(
            out,
            "\ncalloop not run at K > {CALLOOP_MAX_K}: inserting K sources is O(K²) in calloop \
             (linear free-slot scan); pass --calloop-all to wait for it."
        );
    }
    Ok(out)
}

/// Above this K, calloop's arm+cancel row is left out unless asked for.
const CALLOOP_MAX_K: usize = 200_000;

// ---------------------------------------------------------------- lateness

fn late_fdloop(pat: Pattern, seed: u64) -> io::Result<Late> {
    let mut ev: EventLoop<Late> = EventLoop::new()?;
    let mut late = Vec::new();
    match pat {
        Pattern::Sequential(n) => {
            for _ in 0..n {
                let d = Instant::now() + STEP;
                ev.insert(Timer::at(d), move |_, _, l: &mut Late| {
                    l.push(late_ns(d));
                    Action::Continue
                })?;
                let want = late.len() + 1;
                while late.len() < want {
                    ev.run_once(&mut late, None)?;
                }
            }
        }
        Pattern::Spread(n) => {
            for d in spread_deadlines(n, seed) {
                ev.insert(Timer::at(d), move |_, _, l: &mut Late| {
                    l.push(late_ns(d));
                    Action::Continue
                })?;
            }
            while late.len() < n {
                ev.run_once(&mut late, None)?;
            }
        }
    }
    Ok(late)
}

fn late_calloop(pat: Pattern, seed: u64) -> io::Result<Late> {
    use calloop::timer::{TimeoutAction, Timer as CTimer};
    let mut ev: calloop::EventLoop<'static, Late> =
        calloop::EventLoop::try_new().map_err(io::Error::other)?;
    let h = ev.handle();
    let add = |d: Instant| {
        h.insert_source(CTimer::from_deadline(d), move |_, _, l: &mut Late| {
            l.push(late_ns(d));
            TimeoutAction::Drop
        })
        .map(|_| ())
        .map_err(|e| io::Error::other(e.error))
    };
    let mut late = Vec::new();
    match pat {
        Pattern::Sequential(n) => {
            for _ in 0..n {
                add(Instant::now() + STEP)?;
                let want = late.len() + 1;
                while late.len() < want {
                    ev.dispatch(None, &mut late).map_err(io::Error::other)?;
                }
            }
        }
        Pattern::Spread(n) => {
            for d in spread_deadlines(n, seed) {
                add(d)?;
            }
            while late.len() < n {
                ev.dispatch(None, &mut late).map_err(io::Error::other)?;
            }
        }
    }
    Ok(late)
}

/// tokio: `sleep_until(d).await` on a current-thread runtime with IO and
/// time enabled (what `#[tokio::main(flavor = "current_thread")]` builds).
fn late_tokio(pat: Pattern, seed: u64) -> io::Result<Late> {
    let rt = tokio_rt()?;
    match pat {
        Pattern::Sequential(n) => Ok(rt.block_on(async {
            let mut late = Vec::with_capacity(n);
            for _ in 0..n {
                let d = Instant::now() + STEP;
                tokio::time::sleep_until(d.into()).await;
                late.push(late_ns(d));
            }
            late
        })),
        Pattern::Spread(n) => rt.block_on(async {
            let hs: Vec<_> = spread_deadlines(n, seed)
                .into_iter()
                .map(|d| {
                    tokio::spawn(async move {
                        tokio::time::sleep_until(d.into()).await;
                        late_ns(d)
                    })
                })
                .collect();
            let mut late = Vec::with_capacity(n);
            for h in hs {
                late.push(h.await.map_err(io::Error::other)?);
            }
            Ok(late)
        }),
    }
}

/// The floor: a bare timerfd armed at the absolute deadline, then a
/// blocking `read`. Sequential pattern only.
fn late_timerfd(pat: Pattern, _seed: u64) -> io::Result<Late> {
    let Pattern::Sequential(n) = pat else {
        return Err(io::Error::other("timerfd floor: sequential only"));
    };
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut late = Vec::with_capacity(n);
    for _ in 0..n {
        // Instant is CLOCK_MONOTONIC on Linux; read both to convert.
        let now_i = Instant::now();
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let d = now_i + STEP;
        // time_t and c_long are i32 on some targets.
        #[allow(clippy::unnecessary_cast)]
        let (mut sec, mut ns) = (ts.tv_sec as i64, ts.tv_nsec as i64);
        ns += STEP.as_nanos() as i64;
        sec += ns / 1_000_000_000;
        ns %= 1_000_000_000;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: sec as libc::time_t,
                tv_nsec: ns as libc::c_long,
            },
        };
        // SAFETY: `fd` is an open timerfd; `spec` is valid and only read.
        let rc = unsafe {
            libc::timerfd_settime(
                fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 8];
        loop {
            // SAFETY: `fd` is open and `buf` holds the 8 bytes read.
            let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
            if r == 8 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        late.push(late_ns(d));
    }
    Ok(late)
}

type LateFn = fn(Pattern, u64) -> io::Result<Late>;

const FLOOR: &str = "bare timerfd + blocking read (floor)";

const LATE: [(&str, LateFn); 4] = [
    (FLOOR, late_timerfd),
    ("fdloop Timer::at", late_fdloop),
    ("tokio sleep_until (current_thread, enable_all)", late_tokio),
    ("calloop Timer::from_deadline", late_calloop),
];

/// p50, p99 and max of one run, and how many fired early.
#[derive(Clone, Copy, Debug, Default)]
struct LateStats {
    p50: f64,
    p99: f64,
    max: f64,
    early: usize,
}

fn late_stats(mut v: Late) -> LateStats {
    let early = v.iter().filter(|&&x| x < 0.0).count();
    v.sort_by(f64::total_cmp);
    LateStats {
        p50: percentile(&v, 50.0),
        p99: percentile(&v, 99.0),
        max: v.last().copied().unwrap_or(0.0),
        early,
    }
}

fn late_table(cfg: &Config, pat: Pattern) -> io::Result<String> {
    let cs: Vec<&(&str, LateFn)> = LATE
        .iter()
        .filter(|(n, _)| cfg.selected(n))
        .filter(|(n, _)| *n != FLOOR || matches!(pat, Pattern::Sequential(_)))
        .collect();
    if cs.is_empty() {
        return Ok(String::new());
    }
    // Warm-up: a few timers each.
    for (_, f) in &cs {
        f(Pattern::Sequential(5), 1)?;
    }
    let mut stats: Vec<Vec<LateStats>> = vec![Vec::new(); cs.len()];
    let mut rep = 0u64;
    interleave(cs.len(), cfg.reps, |i| {
        rep += 1;
        // The same deadlines for every contender within a repetition.
        let seed = 0x5eed + rep / cs.len() as u64;
        let s = late_stats((cs[i].1)(pat, seed)?);
        stats[i].push(s);
        Ok(s.p50)
    })?;
    let mut out = String::new();
    let title = match pat {
        Pattern::Sequential(n) => format!("{n} sequential one-shot timers of 1 ms"),
        Pattern::Spread(n) => format!("{n} timers spread over the next 200 ms, armed at once"),
    };
    let _ = writeln!(
        out,
        "\n### Lateness: {title} ({} reps; per rep p50/p99/max, then median [min–max] over reps)\n",
        cfg.reps
    );
    let _ = writeln!(
        out,
        "| contender | p50 | p50 min–max | p99 | p99 min–max | max (median) | × fdloop p50 | early |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let sum = |i: usize, f: fn(&LateStats) -> f64| {
        Summary::of(&stats[i].iter().map(f).collect::<Vec<_>>())
    };
    let fd = cs
        .iter()
        .position(|c| c.0.starts_with("fdloop"))
        .map(|i| sum(i, |s| s.p50).median);
    for (i, (name, _)) in cs.iter().enumerate() {
        let (p50, p99, max) = (sum(i, |s| s.p50), sum(i, |s| s.p99), sum(i, |s| s.max));
        let early: usize = stats[i].iter().map(|s| s.early).sum();
        let _ = writeln!(
            out,
            "| {name} | {} | {}–{} | {} | {}–{} | {} | {} | {early} |",
            fmt_ns(p50.median),
            fmt_ns(p50.min),
            fmt_ns(p50.max),
            fmt_ns(p99.median),
            fmt_ns(p99.min),
            fmt_ns(p99.max),
            fmt_ns(max.median),
            fd.map_or("–".into(), |f| format!("{:.2}", p50.median / f)),
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------- driver

#[derive(Debug)]
struct Config {
    quick: bool,
    arm: bool,
    late: bool,
    pending: Vec<usize>,
    reps: usize,
    only: Option<String>,
    calloop_all: bool,
}

impl Config {
    fn selected(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name.contains(o))
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, String> {
    let mut cfg = Config {
        quick: false,
        arm: true,
        late: true,
        pending: Vec::new(),
        reps: 0,
        only: None,
        calloop_all: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => cfg.quick = true,
            "--bench" => {}
            "--calloop-all" => cfg.calloop_all = true,
            "--part" => match args.next().as_deref() {
                Some("all") => (cfg.arm, cfg.late) = (true, true),
                Some("arm") => (cfg.arm, cfg.late) = (true, false),
                Some("late") => (cfg.arm, cfg.late) = (false, true),
                other => return Err(format!("--part {other:?}: all, arm or late")),
            },
            "--pending" => {
                let v = args.next().ok_or("--pending needs a list")?;
                cfg.pending = v
                    .split(',')
                    .map(|s| s.trim().parse::<usize>().map_err(|e| format!("{s}: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--reps" => {
                let v = args.next().ok_or("--reps needs a number")?;
                cfg.reps = v.parse().map_err(|e| format!("--reps {v}: {e}"))?;
            }
            "--only" => cfg.only = Some(args.next().ok_or("--only needs a name")?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if cfg.pending.is_empty() {
        cfg.pending = if cfg.quick {
            vec![1_000, 100_000]
        } else {
            vec![1_000, 100_000, 1_000_000]
        };
    }
    if cfg.reps == 0 {
        cfg.reps = if cfg.quick { 3 } else { 5 };
    }
    Ok(Some(cfg))
}

fn run(cfg: &Config) -> io::Result<()> {
    println!(
        "# timers: {} mode, {} CPUs",
        if cfg.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if cfg.arm {
        for &k in &cfg.pending {
            let t = Instant::now();
            let table = arm_table(cfg, k)?;
            println!("{table}(K = {k} took {:.1} s)", t.elapsed().as_secs_f64());
        }
    }
    if cfg.late {
        let (seq, spread) = if cfg.quick { (100, 200) } else { (500, 1000) };
        for pat in [Pattern::Sequential(seq), Pattern::Spread(spread)] {
            let t = Instant::now();
            let table = late_table(cfg, pat)?;
            println!("{table}(took {:.1} s)", t.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    fdloop_bench::report::bench_main("timers", USAGE, std::env::args().skip(1), parse_args, run)
}
