//! Channels (issue 4): fdloop's pollable channel against crossbeam-channel,
//! std mpsc, flume, tokio mpsc and calloop's channel.
//!
//! * **Throughput**: P producer threads send `msgs` u64 in total (each its
//!   share, values 0..msgs) to one consumer, which sums them; the sum is
//!   checked. Reported as millions of messages per second, from before the
//!   producers are spawned until the last message is received.
//! * **Round trip**: two threads ping-pong one message each way; for the
//!   loop contenders each thread is an event loop with the other's channel
//!   as a source. The floor is two threads blocked in `epoll_wait` on an
//!   eventfd each, writing each other's eventfd (`fdloop_bench::pingpong`).
//!
//! Every contender runs `reps` times, interleaved (repetition *r* starts at
//! contender *r* mod *n*), after one untimed warm-up pass; the tables give
//! the median and min–max of the repetitions and ratios of medians.
//!
//! ```text
//! cargo bench -p fdloop-bench --bench channel -- [--quick] [--part throughput|latency]
//!     [--producers 1,4] [--msgs N] [--reps R] [--rts N] [--pin same|cross|off|both]
//!     [--only SUBSTR] [--once]
//! ```

use std::fmt::Write as _;
use std::io;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use fdloop::channel::{self, Event};
use fdloop::{Action, EventLoop};
use fdloop_bench::pingpong::raw_round_trips;
use fdloop_bench::report::{fmt_ns, interleave, pin_modes, Summary};
use fdloop_bench::threads::{join_producers, spawn_producers, two_sides, Acc};
use fdloop_bench::Pin;

const USAGE: &str = "\
usage: channel [--quick] [--part all|throughput|latency] [--producers 1,4]
               [--msgs N] [--reps R] [--rts N] [--pin same|cross|off|both]
               [--only SUBSTR] [--once]

Channel throughput (P producers -> 1 consumer) and loop-to-loop round-trip
latency: fdloop against crossbeam-channel, std mpsc, flume, tokio mpsc,
calloop, and a raw epoll+eventfd floor.

  --quick          10^6 messages, 2 000 round trips, 3 repetitions
  --part P         only the throughput or the latency tables
  --producers L    producer counts (default 1,4)
  --msgs N         messages per throughput sample (default 10^7)
  --reps R         repetitions per contender (default 5; --quick 3)
  --rts N          round trips per latency sample (default 20 000)
  --pin MODE       latency thread placement (default both: same, then cross)
  --only SUBSTR    only contenders whose name contains SUBSTR
  --once           one sample per selected case, no warm-up, raw figures
                   only (for counting syscalls under perf stat)
  -h, --help       print this help";

// ---------------------------------------------------------------- throughput

/// One throughput sample.
#[derive(Clone, Copy, Debug)]
struct TpOut {
    elapsed: Duration,
    /// fdloop: the receiver's wake writes (syscalls by senders).
    wake_writes: Option<u64>,
    /// fdloop in a loop: `run_once` calls.
    iterations: Option<u64>,
}

impl TpOut {
    fn plain(elapsed: Duration) -> TpOut {
        TpOut {
            elapsed,
            wake_writes: None,
            iterations: None,
        }
    }
}

fn fdloop_pair(cap: Option<usize>) -> io::Result<(channel::Sender<u64>, channel::Receiver<u64>)> {
    match cap {
        Some(c) => channel::bounded(c),
        None => channel::unbounded(),
    }
}

/// fdloop: the receiver is a source of an `EventLoop`, driven by
/// `run_once(None)`; the callback sums.
fn tp_fdloop_loop(p: usize, msgs: u64, cap: Option<usize>) -> io::Result<TpOut> {
    let (tx, rx) = fdloop_pair(cap)?;
    let probe = tx.clone();
    let mut ev: EventLoop<Acc> = EventLoop::new()?;
    ev.insert(rx, |e, _, acc: &mut Acc| {
        if let Event::Msg(v) = e {
            acc.add(v);
        }
        Action::Continue
    })?;
    let mut acc = Acc::default();
    let start = Instant::now();
    let hs = spawn_producers(p, msgs, tx, |tx, v| tx.send(v).is_ok())?;
    while acc.n < msgs {
        ev.run_once(&mut acc, None)?;
    }
    let elapsed = start.elapsed();
    join_producers(hs, "fdloop loop")?;
    acc.check(msgs, "fdloop loop")?;
    Ok(TpOut {
        elapsed,
        wake_writes: Some(probe.wake_writes()),
        iterations: Some(ev.stats().iterations),
    })
}

/// fdloop: plain blocking `Receiver::recv` (ppoll on the descriptor).
fn tp_fdloop_recv(p: usize, msgs: u64, cap: Option<usize>) -> io::Result<TpOut> {
    let (tx, rx) = fdloop_pair(cap)?;
    let mut acc = Acc::default();
    let start = Instant::now();
    let hs = spawn_producers(p, msgs, tx, |tx, v| tx.send(v).is_ok())?;
    while acc.n < msgs {
        acc.add(rx.recv().map_err(io::Error::other)?);
    }
    let elapsed = start.elapsed();
    join_producers(hs, "fdloop recv")?;
    acc.check(msgs, "fdloop recv")?;
    Ok(TpOut {
        elapsed,
        wake_writes: Some(rx.wake_writes()),
        iterations: None,
    })
}

fn tp_crossbeam(p: usize, msgs: u64, cap: Option<usize>) -> io::Result<TpOut> {
    let (tx, rx) = match cap {
        Some(c) => crossbeam_channel::bounded(c),
        None => crossbeam_channel::unbounded(),
    };
    let mut acc = Acc::default();
    let start = Instant::now();
    let hs = spawn_producers(p, msgs, tx, |tx, v| tx.send(v).is_ok())?;
    while acc.n < msgs {
        acc.add(rx.recv().map_err(io::Error::other)?);
    }
    let elapsed = start.elapsed();
    join_producers(hs, "crossbeam")?;
    acc.check(msgs, "crossbeam")?;
    Ok(TpOut::plain(elapsed))
}

fn tp_std_mpsc(p: usize, msgs: u64) -> io::Result<TpOut> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut acc = Acc::default();
    let start = Instant::now();
    let hs = spawn_producers(p, msgs, tx, |tx, v| tx.send(v).is_ok())?;
    while acc.n < msgs {
        acc.add(rx.recv().map_err(io::Error::other)?);
    }
    let elapsed = start.elapsed();
    join_producers(hs, "std mpsc")?;
    acc.check(msgs, "std mpsc")?;
    Ok(TpOut::plain(elapsed))
}

fn tp_flume(p: usize, msgs: u64) -> io::Result<TpOut> {
    let (tx, rx) = flume::unbounded();
    let mut acc = Acc::default();
    let start = Instant::now();
    let hs = spawn_producers(p, msgs, tx, |tx, v| tx.send(v).is_ok())?;
    while acc.n < msgs {
        acc.add(rx.recv().map_err(io::Error::other)?);
    }
    let elapsed = start.elapsed();
    join_producers(hs, "flume")?;
    acc.check(msgs, "flume")?;
    Ok(TpOut::plain(elapsed))
}

/// tokio: unbounded mpsc, received with `recv().await` on a current-thread
/// runtime (built before the clock starts).
fn tp_tokio(p: usize, msgs: u64) -> io::Result<TpOut> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut acc = Acc::default();
    let start = Instant::now();
    let hs = spawn_producers(p, msgs, tx, |tx, v| tx.send(v).is_ok())?;
    let ok = rt.block_on(async {
        while acc.n < msgs {
            match rx.recv().await {
                Some(v) => acc.add(v),
                None => return false,
            }
        }
        true
    });
    let elapsed = start.elapsed();
    if !ok {
        return Err(io::Error::other("tokio: channel closed early"));
    }
    join_producers(hs, "tokio")?;
    acc.check(msgs, "tokio")?;
    Ok(TpOut::plain(elapsed))
}

/// calloop: its channel (std mpsc + a `Ping`) as a source of a calloop
/// loop, driven by `dispatch(None)`.
fn tp_calloop(p: usize, msgs: u64) -> io::Result<TpOut> {
    let (tx, ch) = calloop::channel::channel::<u64>();
    let mut ev: calloop::EventLoop<'static, Acc> =
        calloop::EventLoop::try_new().map_err(io::Error::other)?;
    ev.handle()
        .insert_source(ch, |e, _, acc: &mut Acc| {
            if let calloop::channel::Event::Msg(v) = e {
                acc.add(v);
            }
        })
        .map_err(|e| io::Error::other(e.error))?;
    let mut acc = Acc::default();
    let mut iterations = 0;
    let start = Instant::now();
    let hs = spawn_producers(p, msgs, tx, |tx, v| tx.send(v).is_ok())?;
    while acc.n < msgs {
        ev.dispatch(None, &mut acc).map_err(io::Error::other)?;
        iterations += 1;
    }
    let elapsed = start.elapsed();
    join_producers(hs, "calloop")?;
    acc.check(msgs, "calloop")?;
    Ok(TpOut {
        elapsed,
        wake_writes: None,
        iterations: Some(iterations),
    })
}

type TpFn = fn(usize, u64) -> io::Result<TpOut>;

const CROSSBEAM: &str = "crossbeam-channel unbounded, recv";
const CALLOOP: &str = "calloop channel in calloop loop";

/// Every throughput contender; the ratios refer to `CROSSBEAM`, `CALLOOP`.
const TP: [(&str, TpFn); 9] = [
    ("fdloop unbounded in EventLoop", |p, m| {
        tp_fdloop_loop(p, m, None)
    }),
    ("fdloop unbounded, recv", |p, m| tp_fdloop_recv(p, m, None)),
    ("fdloop bounded(1024) in EventLoop", |p, m| {
        tp_fdloop_loop(p, m, Some(1024))
    }),
    (CROSSBEAM, |p, m| tp_crossbeam(p, m, None)),
    ("crossbeam-channel bounded(1024), recv", |p, m| {
        tp_crossbeam(p, m, Some(1024))
    }),
    ("std::sync::mpsc, recv", tp_std_mpsc),
    ("flume unbounded, recv", tp_flume),
    ("tokio mpsc unbounded, current_thread", tp_tokio),
    (CALLOOP, tp_calloop),
];

fn throughput_table(cfg: &Config, p: usize) -> io::Result<String> {
    let cs: Vec<&(&str, TpFn)> = TP.iter().filter(|(n, _)| cfg.selected(n)).collect();
    if cs.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::new();
    if cfg.once {
        for (name, f) in &cs {
            let s = f(p, cfg.msgs)?;
            let _ = writeln!(
                out,
                "once | {p} producers | {name} | {} msgs | {:.3} s | wake writes {}",
                cfg.msgs,
                s.elapsed.as_secs_f64(),
                s.wake_writes.map_or("-".into(), |w| w.to_string())
            );
        }
        return Ok(out);
    }
    // Untimed warm-up pass: page in the code, grow the allocators' arenas.
    for (_, f) in &cs {
        f(p, (cfg.msgs / 10).max(1000))?;
    }
    let mut extra: Vec<Vec<TpOut>> = vec![Vec::new(); cs.len()];
    let rates = interleave(cs.len(), cfg.reps, |i| {
        let s = (cs[i].1)(p, cfg.msgs)?;
        extra[i].push(s);
        Ok(cfg.msgs as f64 / s.elapsed.as_secs_f64() / 1e6)
    })?;
    let sums: Vec<Summary> = rates.iter().map(|r| Summary::of(r)).collect();
    let med_of = |name: &str| cs.iter().position(|c| c.0 == name).map(|i| sums[i].median);
    let (cb, cl) = (med_of(CROSSBEAM), med_of(CALLOOP));
    let ratio = |m: f64, base: Option<f64>| base.map_or("–".into(), |b| format!("{:.2}", m / b));
    let _ = writeln!(
        out,
        "\n### Throughput, {p} producer{} → 1 consumer ({} msgs per sample, {} reps)\n",
        if p == 1 { "" } else { "s" },
        cfg.msgs,
        cfg.reps
    );
    let _ = writeln!(
        out,
        "| contender | median M msg/s | min–max | × crossbeam | × calloop | wake writes/msg | msgs/iteration |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for (i, (name, _)) in cs.iter().enumerate() {
        let n = extra[i].len().max(1) as f64;
        let per_msg = |f: fn(&TpOut) -> Option<u64>| {
            let v: Option<u64> = extra[i].iter().map(f).sum();
            v.map(|w| w as f64 / (n * cfg.msgs as f64))
        };
        let ww = per_msg(|s| s.wake_writes).map_or("–".into(), |w| format!("{w:.4}"));
        let it = per_msg(|s| s.iterations).map_or("–".into(), |r| format!("{:.0}", 1.0 / r));
        let s = sums[i];
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.1}–{:.1} | {} | {} | {ww} | {it} |",
            s.median,
            s.min,
            s.max,
            ratio(s.median, cb),
            ratio(s.median, cl),
        );
    }
    for (i, (name, _)) in cs.iter().enumerate() {
        if !name.starts_with("fdloop unbounded") {
            continue;
        }
        let m = sums[i].median;
        if let Some(b) = cb {
            let _ = write!(
                out,
                "\n{name}: {:.2}× crossbeam (goal ≥ 1.0: {})",
                m / b,
                if m >= b { "met" } else { "MISSED" }
            );
        }
        if let Some(b) = cl {
            let _ = write!(
                out,
                "; {:.1}× calloop (goal ≥ 10: {})",
                m / b,
                if m >= 10.0 * b { "met" } else { "MISSED" }
            );
        }
    }
    out.push('\n');
    Ok(out)
}

// ---------------------------------------------------------------- latency

/// Side A's state in the fdloop loop ping-pong.
struct PingState {
    got: u64,
    warmup: u64,
    start: Instant,
}

/// Two fdloop `EventLoop`s, each with the other's channel receiver as a
/// source; B's callback echoes, A's counts and sends the next ping.
fn rt_fdloop_loop(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    let (tx_ab, rx_ab) = channel::unbounded::<u64>()?;
    let (tx_ba, rx_ba) = channel::unbounded::<u64>()?;
    let total = rts + warmup;
    let b = move || -> io::Result<()> {
        let mut ev: EventLoop<bool> = EventLoop::new()?;
        ev.insert(rx_ab, move |e, _, closed: &mut bool| {
            match e {
                Event::Msg(v) => {
                    let _ = tx_ba.send(v);
                }
                Event::Closed => *closed = true,
            }
            Action::Continue
        })?;
        let mut closed = false;
        while !closed {
            ev.run_once(&mut closed, None)?;
        }
        Ok(())
    };
    let a = move || -> io::Result<Duration> {
        let mut ev: EventLoop<PingState> = EventLoop::new()?;
        let first = tx_ab.clone();
        ev.insert(rx_ba, move |e, _, st: &mut PingState| {
            if let Event::Msg(_) = e {
                st.got += 1;
                if st.got == st.warmup {
                    st.start = Instant::now();
                }
                if st.got < total {
                    let _ = tx_ab.send(st.got);
                }
            }
            Action::Continue
        })?;
        let mut st = PingState {
            got: 0,
            warmup,
            start: Instant::now(),
        };
        first
            .send(0)
            .map_err(|_| io::Error::other("echo side gone"))?;
        drop(first);
        while st.got < total {
            ev.run_once(&mut st, None)?;
        }
        let elapsed = st.start.elapsed();
        // Dropping the loop drops the callback's sender: B sees Closed.
        drop(ev);
        Ok(elapsed)
    };
    two_sides(pin, a, b)
}

/// fdloop channels without a loop: blocking `recv` (ppoll) on each side.
fn rt_fdloop_recv(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    let (tx_ab, rx_ab) = channel::unbounded::<u64>()?;
    let (tx_ba, rx_ba) = channel::unbounded::<u64>()?;
    let b = move || -> io::Result<()> {
        for v in rx_ab.iter() {
            tx_ba.send(v).map_err(|_| io::Error::other("A side gone"))?;
        }
        Ok(())
    };
    let a = move || -> io::Result<Duration> {
        let mut start = Instant::now();
        for i in 0..rts + warmup {
            if i == warmup {
                start = Instant::now();
            }
            tx_ab.send(i).map_err(|_| io::Error::other("B side gone"))?;
            rx_ba.recv().map_err(io::Error::other)?;
        }
        Ok(start.elapsed())
    };
    two_sides(pin, a, b)
}

/// crossbeam-channel, blocking send/recv (futex-based parking).
fn rt_crossbeam(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    let (tx_ab, rx_ab) = crossbeam_channel::unbounded::<u64>();
    let (tx_ba, rx_ba) = crossbeam_channel::unbounded::<u64>();
    let b = move || -> io::Result<()> {
        for v in rx_ab.iter() {
            tx_ba.send(v).map_err(|_| io::Error::other("A side gone"))?;
        }
        Ok(())
    };
    let a = move || -> io::Result<Duration> {
        let mut start = Instant::now();
        for i in 0..rts + warmup {
            if i == warmup {
                start = Instant::now();
            }
            tx_ab.send(i).map_err(|_| io::Error::other("B side gone"))?;
            rx_ba.recv().map_err(io::Error::other)?;
        }
        Ok(start.elapsed())
    };
    two_sides(pin, a, b)
}

type RtFn = fn(Pin, u64, u64) -> io::Result<Duration>;

const FLOOR: &str = "raw epoll_wait + eventfd (floor)";

const RT: [(&str, RtFn); 4] = [
    (FLOOR, raw_round_trips),
    ("fdloop channels, EventLoop each side", rt_fdloop_loop),
    ("fdloop channels, blocking recv", rt_fdloop_recv),
    ("crossbeam-channel, blocking recv", rt_crossbeam),
];

fn latency_table(cfg: &Config, pin: Pin) -> io::Result<String> {
    let cs: Vec<&(&str, RtFn)> = RT.iter().filter(|(n, _)| cfg.selected(n)).collect();
    if cs.is_empty() {
        return Ok(String::new());
    }
    let warmup = (cfg.rts / 20).max(100);
    let mut out = String::new();
    if cfg.once {
        for (name, f) in &cs {
            let d = f(pin, cfg.rts, 0)?;
            let _ = writeln!(
                out,
                "once | pin {pin} | {name} | {} round trips | {}",
                cfg.rts,
                fmt_ns(d.as_nanos() as f64 / cfg.rts as f64)
            );
        }
        return Ok(out);
    }
    let ns = interleave(cs.len(), cfg.reps, |i| {
        let d = (cs[i].1)(pin, cfg.rts, warmup)?;
        Ok(d.as_nanos() as f64 / cfg.rts as f64)
    })?;
    let sums: Vec<Summary> = ns.iter().map(|r| Summary::of(r)).collect();
    let floor = cs.iter().position(|c| c.0 == FLOOR).map(|i| sums[i].median);
    let _ = writeln!(
        out,
        "\n### Round trip, `--pin {pin}` ({} round trips per sample after {warmup} warm-up, {} reps)\n",
        cfg.rts, cfg.reps
    );
    let _ = writeln!(
        out,
        "| contender | median per round trip | min–max | × floor |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (i, (name, _)) in cs.iter().enumerate() {
        let s = sums[i];
        let _ = writeln!(
            out,
            "| {name} | {} | {}–{} | {} |",
            fmt_ns(s.median),
            fmt_ns(s.min),
            fmt_ns(s.max),
            floor.map_or("–".into(), |f| format!("{:.2}", s.median / f)),
        );
    }
    if let (Some(f), Some(i)) = (floor, cs.iter().position(|c| c.0.contains("EventLoop"))) {
        let r = sums[i].median / f;
        let _ = writeln!(
            out,
            "\n{}: {r:.2}× floor (goal ≤ 1.05: {})",
            cs[i].0,
            if r <= 1.05 { "met" } else { "MISSED" }
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------- driver

#[derive(Debug)]
struct Config {
    quick: bool,
    throughput: bool,
    latency: bool,
    producers: Vec<usize>,
    msgs: u64,
    reps: usize,
    rts: u64,
    pins: Vec<Pin>,
    only: Option<String>,
    once: bool,
}

impl Config {
    fn selected(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name.contains(o))
    }
}

fn parse_num<T: std::str::FromStr>(v: Option<String>, flag: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let v = v.ok_or(format!("{flag} needs a value"))?;
    v.trim()
        .parse::<T>()
        .map_err(|e| format!("{flag} {v}: {e}"))
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, String> {
    let mut cfg = Config {
        quick: false,
        throughput: true,
        latency: true,
        producers: vec![1, 4],
        msgs: 0,
        reps: 0,
        rts: 0,
        pins: vec![Pin::Same, Pin::Cross],
        only: None,
        once: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => cfg.quick = true,
            "--bench" => {}
            "--once" => cfg.once = true,
            "--part" => match args.next().as_deref() {
                Some("all") => (cfg.throughput, cfg.latency) = (true, true),
                Some("throughput") => (cfg.throughput, cfg.latency) = (true, false),
                Some("latency") => (cfg.throughput, cfg.latency) = (false, true),
                other => return Err(format!("--part {other:?}: all, throughput or latency")),
            },
            "--producers" => {
                let v = args.next().ok_or("--producers needs a list")?;
                cfg.producers = v
                    .split(',')
                    .map(|s| parse_num::<usize>(Some(s.into()), "--producers"))
                    .collect::<Result<_, _>>()?;
                if cfg.producers.contains(&0) {
                    return Err("--producers: at least 1".into());
                }
            }
            "--msgs" => cfg.msgs = parse_num(args.next(), "--msgs")?,
            "--reps" => cfg.reps = parse_num(args.next(), "--reps")?,
            "--rts" => cfg.rts = parse_num(args.next(), "--rts")?,
            "--pin" => cfg.pins = pin_modes(&args.next().ok_or("--pin needs a mode")?)?,
            "--only" => cfg.only = Some(args.next().ok_or("--only needs a name")?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if cfg.msgs == 0 {
        cfg.msgs = if cfg.quick { 1_000_000 } else { 10_000_000 };
    }
    if cfg.reps == 0 {
        cfg.reps = if cfg.quick { 3 } else { 5 };
    }
    if cfg.rts == 0 {
        cfg.rts = if cfg.quick { 2_000 } else { 20_000 };
    }
    Ok(Some(cfg))
}

fn run(cfg: &Config) -> io::Result<()> {
    println!(
        "# channels: {} mode, {} CPUs",
        if cfg.once {
            "once"
        } else if cfg.quick {
            "quick"
        } else {
            "full"
        },
        thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if cfg.throughput {
        for &p in &cfg.producers {
            let t = Instant::now();
            let table = throughput_table(cfg, p)?;
            println!(
                "{table}({p} producers took {:.1} s)",
                t.elapsed().as_secs_f64()
            );
        }
    }
    if cfg.latency {
        for &pin in &cfg.pins {
            let t = Instant::now();
            let table = latency_table(cfg, pin)?;
            println!("{table}(pin {pin} took {:.1} s)", t.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    fdloop_bench::report::bench_main("channel", USAGE, std::env::args().skip(1), parse_args, run)
}
