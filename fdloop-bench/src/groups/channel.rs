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
//!   eventfd each, writing each other's eventfd (`crate::pingpong`).
//!
//! Every contender runs `reps` times, interleaved (repetition *r* starts at
//! contender *r* mod *n*), after one untimed warm-up pass; the tables give
//! the median and min–max of the repetitions and ratios of medians.
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
use crate::threads::{join_producers, spawn_producers, throughput, two_sides, Acc};
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
    let step = |acc: &mut Acc| Ok(ev.run_once(acc, None).map(drop)?);
    let elapsed = throughput("fdloop loop", p, msgs, tx, |t, v| t.send(v).is_ok(), step)?;
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
fn tp_fdloop_recv(p: usize, msgs: u64, cap: Option<usize>) -> io::Result<TpOut> {
    let (tx, rx) = fdloop_pair(cap)?;
    let step = recv_one(|| rx.recv());
    let elapsed = throughput("fdloop recv", p, msgs, tx, |t, v| t.send(v).is_ok(), step)?;
    Ok(TpOut {
        elapsed,
        wake_writes: Some(rx.wake_writes()),
        iterations: None,
    })
}

fn tp_crossbeam(p: usize, msgs: u64, cap: Option<usize>) -> io::Result<TpOut> {
    let (tx, rx) = cap.map_or_else(crossbeam_channel::unbounded, crossbeam_channel::bounded);
    let step = recv_one(|| rx.recv());
    throughput("crossbeam", p, msgs, tx, |t, v| t.send(v).is_ok(), step).map(TpOut::plain)
}

fn tp_std_mpsc(p: usize, msgs: u64) -> io::Result<TpOut> {
    let (tx, rx) = std::sync::mpsc::channel();
    let step = recv_one(|| rx.recv());
    throughput("std mpsc", p, msgs, tx, |t, v| t.send(v).is_ok(), step).map(TpOut::plain)
}

fn tp_flume(p: usize, msgs: u64) -> io::Result<TpOut> {
    let (tx, rx) = flume::unbounded();
    let step = recv_one(|| rx.recv());
    throughput("flume", p, msgs, tx, |t, v| t.send(v).is_ok(), step).map(TpOut::plain)
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
    let mut iterations = 0;
    let step = |acc: &mut Acc| {
        iterations += 1;
        ev.dispatch(None, acc).map_err(io::Error::other)
    };
    let elapsed = throughput("calloop", p, msgs, tx, |t, v| t.send(v).is_ok(), step)?;
    Ok(TpOut {
        elapsed,
        wake_writes: None,
        iterations: Some(iterations),
    })
}

type TpFn = fn(usize, u64) -> io::Result<TpOut>;

/// Every throughput contender (name, function).
fn tp_contenders() -> Vec<(&'static str, TpFn)> {
    #[cfg_attr(not(feature = "c-peers"), allow(unused_mut))]
    let mut v: Vec<(&'static str, TpFn)> = vec![
        ("fdloop unbounded in EventLoop", |p, m| {
            tp_fdloop_loop(p, m, None)
        }),
        ("fdloop unbounded, recv", |p, m| tp_fdloop_recv(p, m, None)),
        ("fdloop bounded(1024) in EventLoop", |p, m| {
            tp_fdloop_loop(p, m, Some(1024))
        }),
        ("crossbeam-channel unbounded, recv", |p, m| {
            tp_crossbeam(p, m, None)
        }),
        ("crossbeam-channel bounded(1024), recv", |p, m| {
            tp_crossbeam(p, m, Some(1024))
        }),
        ("std::sync::mpsc, recv", tp_std_mpsc),
        ("flume unbounded, recv", tp_flume),
        ("tokio mpsc unbounded, current_thread", tp_tokio),
        ("calloop channel in calloop loop", tp_calloop),
    ];
    #[cfg(feature = "c-peers")]
    {
        use crate::cpeers::{glib, libevent};
        v.push(("GLib GAsyncQueue, pop", |p, m| {
            glib::throughput_queue(p, m).map(TpOut::plain)
        }));
        v.push(("GLib GAsyncQueue + GMainContext wakeup", |p, m| {
            glib::throughput_context(p, m).map(TpOut::plain)
        }));
        v.push(("libevent event_active + Mutex<VecDeque>", |p, m| {
            libevent::throughput(p, m).map(TpOut::plain)
        }));
    }
    v
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

/// The channel group: throughput with 1 and 4 producers, then round trips
/// between two loops.
///
/// # Errors
///
/// A contender failing (including a wrong sum of received messages).
pub fn run(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let msgs: u64 = ctx.cfg.size(2_000, 200_000, 5_000_000);
    for p in [1usize, 4] {
        let entries: Vec<Entry<'_>> = tp_contenders()
            .into_iter()
            .map(|(name, f)| {
                entry(name, Role::of(name, FLOOR), move || {
                    let out = f(p, msgs)?;
                    let mut m = Measured::rate(out.elapsed, msgs);
                    if let Some(w) = out.wake_writes {
                        m = m.with("wake writes/msg", "", w as f64 / msgs as f64);
                    }
                    if let Some(it) = out.iterations {
                        m = m.with("msgs/iteration", "", msgs as f64 / it.max(1) as f64);
                    }
                    Ok(m)
                })
            })
            .collect();
        let case = Case::rate(
            format!(
                "throughput, {p} producer{} → 1 consumer",
                if p == 1 { "" } else { "s" }
            ),
            "throughput",
            "M msg/s",
        )
        .note(format!(
            "{msgs} u64 per sample, from before the producers start until the consumer has \
             the last one (its sum checked)."
        ));
        ctx.run_case("channel", case, entries)?;
    }
    let rts: u64 = ctx.cfg.size(50, 3_000, 20_000);
    let warmup = (rts / 20).max(100);
    let pin = ctx.cfg.pin;
    let entries: Vec<Entry<'_>> = rt_contenders()
        .into_iter()
        .map(|(name, f)| {
            entry(name, Role::of(name, FLOOR), move || {
                Ok(Measured::time(f(pin, rts, warmup)?, rts))
            })
        })
        .collect();
    let case = Case::time(
        format!("round trip between two loops, pin {pin}"),
        "time/round trip",
    )
    .no_warmup()
    .note(format!(
        "{rts} round trips per sample after {warmup} untimed ones; each side blocks \
             in its loop (or recv) between messages."
    ));
    ctx.run_case("channel", case, entries)
}
