//! Channels (issues 4 and 13): fdloop's pollable channel against
//! crossbeam-channel, std mpsc, flume, tokio mpsc and calloop's channel.
//!
//! * **Throughput**: P producer threads send `msgs` u64 in total (each its
//!   share, values 0..msgs) to one consumer, which sums them; the sum is
//!   checked. Reported as millions of messages per second, from before the
//!   producers are spawned until the last message is received. Four
//!   shapes: 1 and 4 producers, unbounded and bounded(1024). fdloop runs
//!   twice in each, with the receiver as a source of an `EventLoop` and
//!   with blocking `recv`; the `× floor` column is the reference,
//!   crossbeam-channel of the same capacity (issue 13 asks fdloop to match
//!   it), so `× best peer` compares with the best of the others.
//! * **Placements**: every throughput shape runs in the three placements
//!   of [`Pin::ALL`], each its own case: *pinned across CPUs* (consumer on
//!   CPU 0, every producer on CPU 1: the headline, first and in the
//!   summary), *pinned on one CPU* (every thread on CPU 0: throughput then
//!   depends on time slices, and a blocking receiver sleeps while producers
//!   fill the queue) and *unpinned* (on a 2-vCPU machine bimodal: the
//!   scheduler sometimes puts both threads on one CPU). The consumer is the
//!   report's own thread, pinned for the run and unpinned after
//!   ([`crate::threads`]). `--pin` does not apply to this group.
//! * **Slow peers**: tokio (4 producers), calloop and GLib's
//!   GAsyncQueue + GMainContext write a descriptor or contend on a lock per
//!   message (≤ 3 M msg/s anywhere); they run in the headline placement
//!   only, where they make their point, since the other placements would
//!   add minutes and nothing new. They and GLib's plain GAsyncQueue (1.3 M
//!   msg/s on one CPU: a futex hand-off per message) send a fifth of the
//!   messages (`SLOW_SHARE`), as each table's note says.
//! * **Message count**: 5·10^6 per sample in full mode (`MSGS`; the
//!   issue used 10^7): 0.1–0.4 s per sample for fdloop and crossbeam, long
//!   enough that a time slice or an idle-CPU wake-up is under 1 % of it,
//!   while the whole group stays near 2 minutes on a 2-vCPU VM (a 10^7
//!   count would double that without narrowing the spread, which the
//!   machine's noise sets). Quick mode: 2·10^5.
//! * **Round trip**: two threads ping-pong one message each way; for the
//!   loop contenders each thread is an event loop with the other's channel
//!   as a source. The floor is two threads blocked in `epoll_wait` on an
//!   eventfd each, writing each other's eventfd (`crate::pingpong`). Run in
//!   the three placements too, on one CPU first: that one is in the
//!   summary (issue 13's criterion is the same-CPU round trip against the
//!   floor; across CPUs it mostly measures how fast the host wakes an idle
//!   vCPU), and 2·10^4 round trips per sample; the other two, half as many.
//!
//! On one CPU every contender here finishes in bounded time: each sleeps
//! (or yields) when its queue is empty or full, so the other side runs.
//! A contender that spun through its time slice instead would fail with
//! `TimedOut` after [`crate::threads::SAMPLE_LIMIT`] rather than hold the
//! report for hours (every contender but tokio and libevent, whose
//! consumers sleep in their runtimes, receives through
//! [`crate::threads::throughput`], which sets that limit).
//!
//! A placement the machine cannot give (across CPUs with one CPU, or CPU 0
//! outside the process's cpuset) is skipped with the reason printed where
//! its tables would be ([`Pin::check`]).
//!
//! Every contender runs `reps` times, interleaved (repetition *r* starts at
//! contender *r* mod *n*), after one untimed warm-up pass (the round trips
//! have none); the tables give the median and min–max of the repetitions
//! and ratios of medians.
//!
//! In the report: `cargo run --release -p fdloop-bench --bin report --
//! --only channel`, or `cargo bench -p fdloop-bench --bench channel`.
//! With feature `c-peers`, GLib (GAsyncQueue, GMainContext), libevent and
//! sd-event join the tables.

use std::io;
use std::time::{Duration, Instant};

use fdloop::channel::{self, Event};
use fdloop::{Action, EventLoop};

use crate::harness::{entry, Case, Ctx, Entry, Measured};
use crate::pingpong::raw_round_trips;
use crate::record::Role;
use crate::threads::{consumer, join_producers, spawn_producers, throughput, two_sides, Acc};
use crate::Pin;

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
fn tp_fdloop_loop(pin: Pin, p: usize, msgs: u64, cap: Option<usize>) -> io::Result<TpOut> {
    let (tx, rx) = fdloop_pair(cap)?;
    let probe = tx.clone();
    let mut ev: EventLoop<Acc> = EventLoop::new()?;
    ev.insert(rx, |e, _, acc: &mut Acc| {
        if let Event::Msg(v) = e {
            acc.add(v);
        }
        Action::Continue
    })?;
    let step = |acc: &mut Acc| Ok(ev.run_once(acc, None).map(drop)?);
    let send = |t: &channel::Sender<u64>, v| t.send(v).is_ok();
    let elapsed = throughput("fdloop loop", pin, p, msgs, tx, send, step)?;
    Ok(TpOut {
        elapsed,
        wake_writes: Some(probe.wake_writes()),
        iterations: Some(ev.stats().iterations),
    })
}

/// The step of a plain channel's throughput run: one blocking receive.
fn recv_one<E: std::error::Error + Send + Sync + 'static>(
    recv: impl Fn() -> Result<u64, E>,
) -> impl FnMut(&mut Acc) -> io::Result<()> {
    move |acc| recv().map(|v| acc.add(v)).map_err(io::Error::other)
}

/// fdloop: plain blocking `Receiver::recv` (ppoll on the descriptor).
fn tp_fdloop_recv(pin: Pin, p: usize, msgs: u64, cap: Option<usize>) -> io::Result<TpOut> {
    let (tx, rx) = fdloop_pair(cap)?;
    let step = recv_one(|| rx.recv());
    let send = |t: &channel::Sender<u64>, v| t.send(v).is_ok();
    let elapsed = throughput("fdloop recv", pin, p, msgs, tx, send, step)?;
    Ok(TpOut {
        elapsed,
        wake_writes: Some(rx.wake_writes()),
        iterations: None,
    })
}

/// A plain channel's throughput: producers `send` through clones of the
/// pair's sender, the calling thread blocks in `recv` on its receiver
/// (errors name the receiver's type).
fn tp_plain<S, R, E>(
    pin: Pin,
    p: usize,
    msgs: u64,
    (tx, rx): (S, R),
    send: fn(&S, u64) -> bool,
    recv: fn(&R) -> Result<u64, E>,
) -> io::Result<TpOut>
where
    S: Clone + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let name = std::any::type_name::<R>();
    throughput(name, pin, p, msgs, tx, send, recv_one(|| recv(&rx))).map(TpOut::plain)
}

fn tp_crossbeam(pin: Pin, p: usize, msgs: u64, cap: Option<usize>) -> io::Result<TpOut> {
    let pair = cap.map_or_else(crossbeam_channel::unbounded, crossbeam_channel::bounded);
    tp_plain(pin, p, msgs, pair, |t, v| t.send(v).is_ok(), |r| r.recv())
}

fn tp_std_mpsc(pin: Pin, p: usize, msgs: u64) -> io::Result<TpOut> {
    let pair = std::sync::mpsc::channel();
    tp_plain(pin, p, msgs, pair, |t, v| t.send(v).is_ok(), |r| r.recv())
}

fn tp_std_sync(pin: Pin, p: usize, msgs: u64, cap: usize) -> io::Result<TpOut> {
    let pair = std::sync::mpsc::sync_channel(cap);
    tp_plain(pin, p, msgs, pair, |t, v| t.send(v).is_ok(), |r| r.recv())
}

fn tp_flume(pin: Pin, p: usize, msgs: u64, cap: Option<usize>) -> io::Result<TpOut> {
    let pair = cap.map_or_else(flume::unbounded, flume::bounded);
    tp_plain(pin, p, msgs, pair, |t, v| t.send(v).is_ok(), |r| r.recv())
}

/// tokio: unbounded mpsc, received with `recv().await` on a current-thread
/// runtime (built before the clock starts).
fn tp_tokio(pin: Pin, p: usize, msgs: u64) -> io::Result<TpOut> {
    let _consumer = consumer(pin)?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut acc = Acc::default();
    let start = Instant::now();
    let hs = spawn_producers(pin.echo_cpu(), p, msgs, tx, |tx, v| tx.send(v).is_ok())?;
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
    join_producers(hs, "tokio")?;
    if !ok {
        return Err(io::Error::other("tokio: channel closed early"));
    }
    acc.check(msgs, "tokio")?;
    Ok(TpOut::plain(elapsed))
}

/// calloop: its channel (std mpsc + a `Ping`) as a source of a calloop
/// loop, driven by `dispatch(None)`.
fn tp_calloop(pin: Pin, p: usize, msgs: u64) -> io::Result<TpOut> {
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
    let mut iterations = 0;
    let step = |acc: &mut Acc| {
        iterations += 1;
        ev.dispatch(None, acc).map_err(io::Error::other)
    };
    let send = |t: &calloop::channel::Sender<u64>, v| t.send(v).is_ok();
    let elapsed = throughput("calloop", pin, p, msgs, tx, send, step)?;
    Ok(TpOut {
        elapsed,
        wake_writes: None,
        iterations: Some(iterations),
    })
}

/// Messages per throughput sample in full mode.
const MSGS: u64 = 5_000_000;

/// The capacity of the bounded throughput cases (the figure).
const CAP: usize = 1024;

/// The shape of a throughput case: producers, and the channels' capacity
/// (`None`: unbounded).
#[derive(Clone, Copy, Debug)]
struct Shape {
    producers: usize,
    cap: Option<usize>,
}

/// The throughput cases of each placement, in order.
const SHAPES: [Shape; 4] = [
    Shape {
        producers: 1,
        cap: None,
    },
    Shape {
        producers: 4,
        cap: None,
    },
    Shape {
        producers: 1,
        cap: Some(CAP),
    },
    Shape {
        producers: 4,
        cap: Some(CAP),
    },
];

impl Shape {
    /// The case title under placement `pin`.
    fn title(self, pin: Pin) -> String {
        let p = self.producers;
        format!(
            "throughput{}, {p} producer{} → 1 consumer, {}",
            self.cap
                .map_or(String::new(), |c| format!(", bounded({c})")),
            if p == 1 { "" } else { "s" },
            pin.describe()
        )
    }

    /// The reference (the `× floor` column): crossbeam-channel of the same
    /// capacity.
    fn reference(self) -> &'static str {
        match self.cap {
            None => "crossbeam-channel unbounded, recv",
            Some(_) => "crossbeam-channel bounded(1024), recv",
        }
    }
}

type TpFn = fn(Pin, usize, u64) -> io::Result<TpOut>;

/// A throughput contender: its name, its run (placement, producers,
/// messages), whether it runs in every placement or only the headline one
/// ([`HEADLINE`]), and whether it is slow (sends [`SLOW_SHARE`] of the
/// messages).
struct TpContender {
    name: &'static str,
    run: TpFn,
    every_placement: bool,
    slow: bool,
}

/// The slow contenders (≤ 3 M msg/s in some placement: a descriptor
/// written per message, or a futex hand-off per message on one CPU) send
/// this fraction of a sample's messages: at the full count they would add
/// minutes to the report, and their rate hardly depends on the count.
const SLOW_SHARE: u64 = 5;

/// The throughput contenders of a case of capacity `cap`.
fn tp_contenders(cap: Option<usize>) -> Vec<TpContender> {
    let c = |name, run: TpFn| TpContender {
        name,
        run,
        every_placement: true,
        slow: false,
    };
    let slow = |name, run: TpFn| TpContender {
        slow: true,
        ..c(name, run)
    };
    let headline_only = |name, run: TpFn| TpContender {
        every_placement: false,
        ..slow(name, run)
    };
    if cap.is_some() {
        return vec![
            c("fdloop bounded(1024) in EventLoop", |pin, p, m| {
                tp_fdloop_loop(pin, p, m, Some(CAP))
            }),
            c("fdloop bounded(1024), recv", |pin, p, m| {
                tp_fdloop_recv(pin, p, m, Some(CAP))
            }),
            c("crossbeam-channel bounded(1024), recv", |pin, p, m| {
                tp_crossbeam(pin, p, m, Some(CAP))
            }),
            c("std::sync::mpsc::sync_channel(1024), recv", |pin, p, m| {
                tp_std_sync(pin, p, m, CAP)
            }),
            c("flume bounded(1024), recv", |pin, p, m| {
                tp_flume(pin, p, m, Some(CAP))
            }),
        ];
    }
    #[cfg_attr(not(feature = "c-peers"), allow(unused_mut))]
    let mut v = vec![
        c("fdloop unbounded in EventLoop", |pin, p, m| {
            tp_fdloop_loop(pin, p, m, None)
        }),
        c("fdloop unbounded, recv", |pin, p, m| {
            tp_fdloop_recv(pin, p, m, None)
        }),
        c("crossbeam-channel unbounded, recv", |pin, p, m| {
            tp_crossbeam(pin, p, m, None)
        }),
        c("std::sync::mpsc, recv", tp_std_mpsc),
        c("flume unbounded, recv", |pin, p, m| {
            tp_flume(pin, p, m, None)
        }),
        headline_only("tokio mpsc unbounded, current_thread", tp_tokio),
        headline_only("calloop channel in calloop loop", tp_calloop),
    ];
    #[cfg(feature = "c-peers")]
    {
        use crate::cpeers::{glib, libevent};
        v.push(slow("GLib GAsyncQueue, pop", |pin, p, m| {
            glib::throughput_queue(pin, p, m).map(TpOut::plain)
        }));
        v.push(headline_only(
            "GLib GAsyncQueue + GMainContext wakeup",
            |pin, p, m| glib::throughput_context(pin, p, m).map(TpOut::plain),
        ));
        v.push(c("libevent event_active + Mutex<VecDeque>", |pin, p, m| {
            libevent::throughput(pin, p, m).map(TpOut::plain)
        }));
    }
    v
}

/// The placement whose throughput cases are the headline: first, with
/// every contender, and in the summary.
const HEADLINE: Pin = Pin::Cross;

/// One throughput case: `shape` under placement `pin`, `msgs` messages
/// per sample (a fifth for the slow contenders).
fn tp_case(ctx: &mut Ctx<'_>, pin: Pin, shape: Shape, msgs: u64) -> io::Result<()> {
    let reference = shape.reference();
    let contenders: Vec<TpContender> = tp_contenders(shape.cap)
        .into_iter()
        .filter(|c| c.every_placement || pin == HEADLINE)
        .collect();
    let slow: Vec<&str> = contenders
        .iter()
        .filter(|c| c.slow)
        .map(|c| c.name)
        .collect();
    let entries: Vec<Entry<'_>> = contenders
        .iter()
        .map(|c| {
            let (run, n) = (c.run, if c.slow { msgs / SLOW_SHARE } else { msgs });
            entry(c.name, Role::of(c.name, reference), move || {
                let out = run(pin, shape.producers, n)?;
                let mut m = Measured::rate(out.elapsed, n);
                if let Some(w) = out.wake_writes {
                    m = m.with("wake writes/msg", "", w as f64 / n as f64);
                }
                if let Some(it) = out.iterations {
                    m = m.with("msgs/iteration", "", n as f64 / it.max(1) as f64);
                }
                Ok(m)
            })
        })
        .collect();
    let mut note = format!(
        "{msgs} u64 per sample, from before the producers start until the consumer has \
         the last one (its sum checked). Consumer {}. × floor: against {reference}.",
        match pin {
            Pin::Cross => "on CPU 0, every producer on CPU 1",
            Pin::Same => "and every producer on CPU 0",
            Pin::Off => "and producers placed by the scheduler",
        }
    );
    if !slow.is_empty() {
        note += &format!(
            " {} u64 per sample for the slow ones ({}).",
            msgs / SLOW_SHARE,
            slow.join(", ")
        );
    }
    let case = Case::rate(shape.title(pin), "throughput", "M msg/s")
        .detail(pin != HEADLINE)
        .note(note);
    ctx.run_case("channel", case, entries)
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

/// Two channels and two threads, each blocked in `recv` between messages:
/// B echoes until its receiver closes, A sends `rts + warmup` pings and
/// times the last `rts` round trips.
fn rt_recv<S, R, F, G>(
    pin: Pin,
    rts: u64,
    warmup: u64,
    (tx_ab, rx_ab): (S, R),
    (tx_ba, rx_ba): (S, R),
    send: F,
    recv: G,
) -> io::Result<Duration>
where
    S: Send + 'static,
    R: Send + 'static,
    F: Fn(&S, u64) -> bool + Copy + Send + 'static,
    G: Fn(&R) -> Option<u64> + Copy + Send + 'static,
{
    let b = move || -> io::Result<()> {
        while let Some(v) = recv(&rx_ab) {
            if !send(&tx_ba, v) {
                return Err(io::Error::other("A side gone"));
            }
        }
        Ok(())
    };
    let a = move || -> io::Result<Duration> {
        let mut start = Instant::now();
        for i in 0..rts + warmup {
            if i == warmup {
                start = Instant::now();
            }
            if !send(&tx_ab, i) {
                return Err(io::Error::other("B side gone"));
            }
            recv(&rx_ba).ok_or_else(|| io::Error::other("B side gone"))?;
        }
        Ok(start.elapsed())
    };
    two_sides(pin, a, b)
}

/// fdloop channels without a loop: blocking `recv` (ppoll) on each side.
fn rt_fdloop_recv(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    let (ab, ba) = (channel::unbounded::<u64>()?, channel::unbounded::<u64>()?);
    rt_recv(
        pin,
        rts,
        warmup,
        ab,
        ba,
        |t, v| t.send(v).is_ok(),
        |r| r.recv().ok(),
    )
}

/// crossbeam-channel, blocking send/recv (futex-based parking).
fn rt_crossbeam(pin: Pin, rts: u64, warmup: u64) -> io::Result<Duration> {
    let (ab, ba) = (
        crossbeam_channel::unbounded(),
        crossbeam_channel::unbounded(),
    );
    rt_recv(
        pin,
        rts,
        warmup,
        ab,
        ba,
        |t, v| t.send(v).is_ok(),
        |r| r.recv().ok(),
    )
}

type RtFn = fn(Pin, u64, u64) -> io::Result<Duration>;

/// The floor's name in the round-trip table.
pub const FLOOR: &str = "raw epoll_wait + eventfd, each side";

/// Every round-trip contender, the floor first.
fn rt_contenders() -> Vec<(&'static str, RtFn)> {
    #[cfg_attr(not(feature = "c-peers"), allow(unused_mut))]
    let mut v: Vec<(&'static str, RtFn)> = vec![
        (FLOOR, raw_round_trips),
        ("fdloop channels, EventLoop each side", rt_fdloop_loop),
        ("fdloop channels, blocking recv", rt_fdloop_recv),
        ("crossbeam-channel, blocking recv", rt_crossbeam),
    ];
    #[cfg(feature = "c-peers")]
    {
        use crate::cpeers::{glib, libevent, sdevent};
        v.push((
            "GLib GMainContext each side (GAsyncQueue + wakeup)",
            glib::round_trips_context,
        ));
        v.push((
            "libevent event_base each side (event_active)",
            libevent::round_trips,
        ));
        v.push((
            "sd-event each side (eventfd io source)",
            sdevent::round_trips,
        ));
    }
    v
}

/// The placement whose round trip is the headline (in the summary): on
/// one CPU, where the criterion (≤ 1.05× the raw floor) is set;
/// across CPUs a round trip mostly measures how fast the host wakes an idle
/// vCPU.
const RT_HEADLINE: Pin = Pin::Same;

/// The round trips between two threads placed as `pin` says.
fn rt_case(ctx: &mut Ctx<'_>, pin: Pin, rts: u64) -> io::Result<()> {
    let warmup = (rts / 20).max(100);
    let entries: Vec<Entry<'_>> = rt_contenders()
        .into_iter()
        .map(|(name, f)| {
            entry(name, Role::of(name, FLOOR), move || {
                Ok(Measured::time(f(pin, rts, warmup)?, rts))
            })
        })
        .collect();
    let case = Case::time(
        format!("round trip between two loops, {}", pin.describe()),
        "time/round trip",
    )
    .no_warmup()
    .detail(pin != RT_HEADLINE)
    .note(format!(
        "{rts} round trips per sample after {warmup} untimed ones; each side blocks \
         in its loop (or recv) between messages."
    ));
    ctx.run_case("channel", case, entries)
}

/// Prints why a placement is skipped (see [`Pin::check`]); true if it is.
fn skipped(pin: Pin, what: &str) -> bool {
    match pin.check() {
        Ok(()) => false,
        Err(e) => {
            println!("({what}, {}: skipped: {e})\n", pin.describe());
            true
        }
    }
}

/// The channel group: the throughput cases in every placement (the
/// headline, across CPUs, first), then the round trips between two loops
/// in every placement. A placement this machine cannot give (across CPUs
/// with one CPU) is skipped with a note.
///
/// # Errors
///
/// A contender failing (including a wrong sum of received messages).
pub fn run(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let msgs: u64 = ctx.cfg.size(2_000, 200_000, MSGS);
    for pin in Pin::ALL {
        if skipped(pin, "throughput") {
            continue;
        }
        for shape in SHAPES {
            tp_case(ctx, pin, shape, msgs)?;
        }
    }
    // The other placements' round trips, half as many: across CPUs one
    // takes 2–5× as long, and they are not the headline.
    let rts: u64 = ctx.cfg.size(50, 3_000, 20_000);
    for pin in [RT_HEADLINE, Pin::Cross, Pin::Off] {
        if !skipped(pin, "round trip") {
            rt_case(ctx, pin, if pin == RT_HEADLINE { rts } else { rts / 2 })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_args;
    use crate::render::summary;

    /// The group at smoke sizes: every shape in every placement this
    /// machine can give, the headline first, crossbeam of the same
    /// capacity as each throughput case's reference, fdloop in a loop and
    /// with `recv` in each, and only headline cases in the summary.
    #[test]
    fn every_shape_in_every_placement_against_crossbeam() {
        let cfg = parse_args(["--smoke".to_string()], Some("channel"))
            .unwrap()
            .unwrap();
        let mut ctx = Ctx::new(&cfg);
        run(&mut ctx).unwrap();
        let r = &ctx.report;
        let cases = r.cases("channel");
        let placements: Vec<Pin> = Pin::ALL.into_iter().filter(|p| p.check().is_ok()).collect();
        assert_eq!(
            cases.len(),
            placements.len() * (SHAPES.len() + 1),
            "{cases:?}"
        );
        assert!(cases[0].ends_with(placements[0].describe()), "{cases:?}");
        let sum = summary(&[r]);
        for case in cases {
            let prim = r.primary("channel", case);
            let fdloop = prim.iter().filter(|x| x.role == Role::Fdloop).count();
            let floor = r
                .floor("channel", case)
                .expect("a reference")
                .contender
                .as_str();
            let headline = if case.starts_with("throughput") {
                let bounded = case.contains("bounded(1024)");
                assert_eq!(floor.contains("bounded(1024)"), bounded, "{case}: {floor}");
                assert!(floor.starts_with("crossbeam-channel"), "{case}: {floor}");
                assert_eq!(fdloop, 2, "{case}");
                assert!(prim
                    .iter()
                    .any(|x| x.contender.ends_with(", recv") && x.role == Role::Fdloop));
                case.ends_with(HEADLINE.describe())
            } else {
                assert_eq!(floor, FLOOR);
                case.ends_with(RT_HEADLINE.describe())
            };
            assert!(prim.iter().all(|x| x.detail != headline), "{case}");
            assert_eq!(
                sum.contains(&format!("| channel | {case} |")),
                headline,
                "{case}\n{sum}"
            );
        }
    }
}
