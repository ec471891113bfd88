//! The async group: fdloop's executor (`fdloop::rt`) against tokio's
//! current-thread runtime (with its I/O driver), smol's `async-executor` +
//! `async-io`, and calloop's executor.
//!
//! * **spawn and complete**: spawn N trivial `!Send`-capable tasks (each
//!   bumps a counter) and run the executor until all have finished; time
//!   per task.
//! * **wake to poll, another thread**: a task waits on a future; another
//!   thread makes it ready and wakes its waker, then spins until the task
//!   has been polled and said so (an atomic store). The loop sleeps between
//!   rounds, so each wake goes through the runtime's cross-thread path and
//!   a blocked poller; in every placement, the median wake of each sample
//!   (latency's usual statistic), with the mean and the p99 beside it.
//!   Pinned on one CPU the spinning waker holds the CPU the loop needs
//!   until the scheduler preempts it, which now and then takes a tick:
//!   a few wakes of milliseconds that the mean shows and the median not.
//!   The floor: no runtime, a thread blocked in `epoll_wait` on an eventfd
//!   that the waker writes ([`raw_wake_to_poll`]).
//! * **echo, 50 connections**: a TCP echo server on the runtime, one task
//!   per connection; a client thread with 50 blocking sockets sends one
//!   message on each, then reads every echo back, round after round.
//!   Round trips per second, in every placement (server on the main CPU,
//!   client on the other).
//!
//! In the report: `cargo run --release -p fdloop-bench --bin report --
//! --only async`.

use std::cell::Cell;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin as StdPin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{entry, Case, Ctx, Entry, Measured};
use crate::record::Role;
use crate::{pin_opt, Pin};

/// The runtimes compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rt {
    /// `fdloop::rt`.
    Fdloop,
    /// tokio's current-thread runtime with its IO driver.
    Tokio,
    /// smol's `async-executor` on `async-io`'s `block_on`.
    Smol,
    /// calloop's executor in a calloop loop.
    Calloop,
}

impl Rt {
    const ALL: [Rt; 4] = [Rt::Fdloop, Rt::Tokio, Rt::Smol, Rt::Calloop];

    fn name(self) -> &'static str {
        match self {
            Rt::Fdloop => "fdloop rt",
            Rt::Tokio => "tokio current_thread",
            Rt::Smol => "smol async-executor + async-io",
            Rt::Calloop => "calloop executor",
        }
    }

    fn role(self) -> Role {
        if self == Rt::Fdloop {
            Role::Fdloop
        } else {
            Role::Peer
        }
    }
}

fn tokio_rt() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn calloop_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("calloop: {e}"))
}

// ---------------------------------------------------------------------------
// Spawn and complete.

/// Spawns `n` tasks that bump a counter and runs them all; returns the
/// time taken.
fn spawn_complete(rt: Rt, n: u64) -> io::Result<Duration> {
    let count = Rc::new(Cell::new(0u64));
    let task = |c: &Rc<Cell<u64>>| {
        let c = c.clone();
        async move { c.set(c.get() + 1) }
    };
    let start;
    match rt {
        Rt::Fdloop => {
            let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
            start = Instant::now();
            for _ in 0..n {
                ev.spawn(task(&count)).detach();
            }
            while count.get() < n {
                ev.dispatch_pending(&mut ()).map_err(io::Error::from)?;
            }
        }
        Rt::Tokio => {
            let rt = tokio_rt()?;
            let local = tokio::task::LocalSet::new();
            start = Instant::now();
            local.block_on(&rt, async {
                for _ in 0..n {
                    drop(tokio::task::spawn_local(task(&count)));
                }
                while count.get() < n {
                    tokio::task::yield_now().await;
                }
            });
        }
        Rt::Smol => {
            let ex = async_executor::LocalExecutor::new();
            start = Instant::now();
            for _ in 0..n {
                ex.spawn(task(&count)).detach();
            }
            while count.get() < n && ex.try_tick() {}
        }
        Rt::Calloop => {
            let mut ev: calloop::EventLoop<'_, u64> =
                calloop::EventLoop::try_new().map_err(calloop_err)?;
            let (exec, sched) = calloop::futures::executor::<()>().map_err(calloop_err)?;
            ev.handle()
                .insert_source(exec, |(), _, done: &mut u64| *done += 1)
                .map_err(|e| calloop_err(e.error))?;
            let mut done = 0u64;
            start = Instant::now();
            for _ in 0..n {
                sched.schedule(task(&count)).map_err(calloop_err)?;
            }
            while done < n {
                ev.dispatch(Some(Duration::ZERO), &mut done)
                    .map_err(calloop_err)?;
            }
        }
    }
    let took = start.elapsed();
    if count.get() != n {
        return Err(io::Error::other(format!(
            "{} of {n} tasks ran",
            count.get()
        )));
    }
    Ok(took)
}

// ---------------------------------------------------------------------------
// Wake to poll from another thread.

/// What the waking thread and the waiting task share.
#[derive(Default)]
struct Gate {
    /// The round the waker has opened.
    open: AtomicU64,
    /// The round the task has seen (polled after the wake).
    seen: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

/// Ready once round `round` is open; else leaves its waker.
struct WaitRound<'a>(&'a Gate, u64);

impl Future for WaitRound<'_> {
    type Output = ();
    fn poll(self: StdPin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut w = self.0.waker.lock().unwrap_or_else(|e| e.into_inner());
        if self.0.open.load(Ordering::Acquire) >= self.1 {
            return Poll::Ready(());
        }
        *w = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The task side: `rounds` waits, each reported.
async fn waiter(gate: Arc<Gate>, rounds: u64) {
    for r in 1..=rounds {
        WaitRound(&gate, r).await;
        gate.seen.store(r, Ordering::Release);
    }
}

/// The waking side, on its own thread: per round, waits until the task
/// sleeps on its waker, lets the loop fall asleep, then times wake → poll.
/// Once per run, half-way, while the loop should be asleep, it also reads
/// which system call the loop thread `sleeper` is blocked in.
fn waker_thread(
    gate: Arc<Gate>,
    rounds: u64,
    warmup: u64,
    cpu: Option<usize>,
    sleeper: libc::pid_t,
) -> io::Result<WakeTimes> {
    pin_opt(cpu)?;
    let mut each = Vec::with_capacity(rounds.saturating_sub(warmup) as usize);
    let mut sleeps_in = Vec::new();
    for r in 1..=rounds {
        let w = loop {
            if let Some(w) = gate.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                break w;
            }
            std::hint::spin_loop();
        };
        // Long enough for the loop to block in its poller.
        std::thread::sleep(Duration::from_micros(50));
        if r == (rounds + warmup) / 2 {
            // Not asleep yet (a loaded machine): look again a little later,
            // before this round's wake (its time starts after).
            let mut call = blocked_in(sleeper);
            for _ in 0..20 {
                if call != "running" {
                    break;
                }
                std::thread::sleep(Duration::from_micros(50));
                call = blocked_in(sleeper);
            }
            sleeps_in.push(call);
        }
        let t0 = Instant::now();
        gate.open.store(r, Ordering::Release);
        w.wake();
        while gate.seen.load(Ordering::Acquire) < r {
            std::hint::spin_loop();
        }
        if r > warmup {
            each.push(t0.elapsed());
        }
    }
    each.sort_unstable();
    Ok(WakeTimes { each, sleeps_in })
}

/// The calling thread's id, for [`blocked_in`].
fn this_tid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The system call thread `tid` of this process is in, by name (from
/// `/proc/self/task/TID/syscall`): `futex`, `epoll_wait`, `epoll_pwait`,
/// `epoll_pwait2`, another number, `running`, or `unknown` if the file
/// cannot be read.
fn blocked_in(tid: libc::pid_t) -> &'static str {
    let Ok(text) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return "unknown";
    };
    let Some(first) = text.split_whitespace().next() else {
        return "unknown";
    };
    if first == "running" {
        return "running";
    }
    let Ok(nr) = first.parse::<libc::c_long>() else {
        return "unknown";
    };
    match nr {
        libc::SYS_futex => "futex",
        libc::SYS_epoll_pwait => "epoll_pwait",
        libc::SYS_epoll_pwait2 => "epoll_pwait2",
        #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
        libc::SYS_epoll_wait => "epoll_wait",
        _ => "another system call",
    }
}

/// The time from each timed `wake()` to the task's poll, sorted.
///
/// # Examples
///
/// ```
/// use fdloop_bench::groups::async_rt::{wake_to_poll, Rt};
/// let t = wake_to_poll(Rt::Fdloop, 5, 1, fdloop_bench::Pin::Off)?;
/// assert!(t.quantile_ns(0.5) <= t.quantile_ns(0.99));
/// assert!(t.mean_ns() > 0.0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WakeTimes {
    each: Vec<Duration>,
    /// Per run, the system call the loop thread was blocked in half-way.
    sleeps_in: Vec<&'static str>,
}

impl WakeTimes {
    /// The wakes of several runs together (for runs interleaved with other
    /// runtimes' and pooled).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop_bench::groups::async_rt::{raw_wake_to_poll, WakeTimes};
    /// let a = raw_wake_to_poll(3, 1, fdloop_bench::Pin::Off)?;
    /// let b = raw_wake_to_poll(3, 1, fdloop_bench::Pin::Off)?;
    /// assert_eq!(WakeTimes::pooled([a, b]).len(), 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pooled(runs: impl IntoIterator<Item = WakeTimes>) -> WakeTimes {
        let mut each = Vec::new();
        let mut sleeps_in = Vec::new();
        for w in runs {
            each.extend(w.each);
            sleeps_in.extend(w.sleeps_in);
        }
        each.sort_unstable();
        WakeTimes { each, sleeps_in }
    }

    /// The share of runs whose loop thread was blocked in an epoll wait
    /// half-way through (see [`sleeps_in`](WakeTimes::sleeps_in)). A
    /// runtime may not sleep in its poller: smol's `block_on` parks on a
    /// futex while `async-io`'s helper thread holds the reactor.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop_bench::groups::async_rt::{raw_wake_to_poll, WakeTimes};
    /// let a = raw_wake_to_poll(9, 1, fdloop_bench::Pin::Off)?;
    /// // The floor sleeps in epoll_wait (unless the sample caught it
    /// // elsewhere on a loaded machine).
    /// assert!((0.0..=1.0).contains(&a.epoll_share()), "{}", a.sleeps_in());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn epoll_share(&self) -> f64 {
        let epoll = self
            .sleeps_in
            .iter()
            .filter(|n| n.starts_with("epoll"))
            .count();
        epoll as f64 / self.sleeps_in.len().max(1) as f64
    }

    /// Where the loop thread slept: the system call it was blocked in
    /// half-way through each run, counted over the runs pooled, e.g.
    /// `"epoll_pwait ×3"` or `"futex ×2, epoll_pwait ×1"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop_bench::groups::async_rt::raw_wake_to_poll;
    /// let a = raw_wake_to_poll(9, 1, fdloop_bench::Pin::Off)?;
    /// assert!(a.sleeps_in().ends_with("×1"), "{}", a.sleeps_in());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sleeps_in(&self) -> String {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for &name in &self.sleeps_in {
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => counts.push((name, 1)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let parts: Vec<String> = counts.iter().map(|(n, c)| format!("{n} ×{c}")).collect();
        parts.join(", ")
    }

    /// How many wakes were timed.
    pub fn len(&self) -> usize {
        self.each.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.each.is_empty()
    }

    /// The wake at quantile `q` (0.5: the median), in ns; 0 if none.
    pub fn quantile_ns(&self, q: f64) -> f64 {
        let Some(last) = self.each.len().checked_sub(1) else {
            return 0.0;
        };
        let i = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
        self.each[i.min(last)].as_nanos() as f64
    }

    /// The mean wake, in ns; 0 if none.
    pub fn mean_ns(&self) -> f64 {
        let total: Duration = self.each.iter().sum();
        total.as_nanos() as f64 / self.each.len().max(1) as f64
    }
}

/// The floor's waker: writes an eventfd, as a runtime's cross-thread wake
/// does at least.
struct EventFdWaker(Arc<std::os::fd::OwnedFd>);

impl std::task::Wake for EventFdWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // A failed write shows as the round never ending (the sample
        // limit), not as a wrong time.
        let _ = crate::pingpong::signal(&self.0);
    }
}

/// The floor of "wake to poll": no runtime. This thread blocks in
/// `epoll_wait` on an eventfd that the waker writes; woken, it checks the
/// gate and says so (the "poll"), then drains the eventfd — the least any
/// runtime that sleeps in epoll does between a cross-thread wake and the
/// poll. Same waking thread and protocol as [`wake_to_poll`].
///
/// # Examples
///
/// ```
/// use fdloop_bench::groups::async_rt::raw_wake_to_poll;
/// let t = raw_wake_to_poll(3, 1, fdloop_bench::Pin::Off)?;
/// assert_eq!(t.len(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn raw_wake_to_poll(rounds: u64, warmup: u64, pin: Pin) -> io::Result<WakeTimes> {
    raw_wake_to_poll_as(false, rounds, warmup, pin)
}

/// [`raw_wake_to_poll`] with the eventfd registered edge-triggered and
/// never read, as mio's waker (and so tokio's) and fdloop's loop do: each
/// write is one event, so the woken thread makes no `read`.
///
/// # Examples
///
/// ```
/// use fdloop_bench::groups::async_rt::raw_edge_wake_to_poll;
/// let t = raw_edge_wake_to_poll(3, 1, fdloop_bench::Pin::Off)?;
/// assert_eq!(t.len(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn raw_edge_wake_to_poll(rounds: u64, warmup: u64, pin: Pin) -> io::Result<WakeTimes> {
    raw_wake_to_poll_as(true, rounds, warmup, pin)
}

fn raw_wake_to_poll_as(edge: bool, rounds: u64, warmup: u64, pin: Pin) -> io::Result<WakeTimes> {
    pin_opt(pin.main_cpu())?;
    let side = if edge {
        crate::pingpong::EpollEventFd::new_edge()?
    } else {
        crate::pingpong::EpollEventFd::new()?
    };
    let efd = side.eventfd();
    let waker = Waker::from(Arc::new(EventFdWaker(efd.clone())));
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let cpu = pin.echo_cpu();
    let sleeper = this_tid();
    let thread = std::thread::spawn(move || waker_thread(g, rounds, warmup, cpu, sleeper));
    for r in 1..=rounds {
        *gate.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
        while gate.open.load(Ordering::Acquire) < r {
            side.wait_readable()?;
            if gate.open.load(Ordering::Acquire) < r && !edge {
                crate::pingpong::drain(&efd)?;
            }
        }
        gate.seen.store(r, Ordering::Release);
        if !edge {
            crate::pingpong::drain(&efd)?;
        }
    }
    thread
        .join()
        .map_err(|_| io::Error::other("waking thread panicked"))?
}

/// The "wake to poll" case once: `rounds` wakes from another thread (the
/// first `warmup` untimed), each after the runtime has gone to sleep;
/// returns the time from each timed `wake()` to the task's poll. Used by
/// the report and by `examples/wake_probe.rs`.
///
/// smol runs as it falls: its `block_on` thread sleeps in `epoll_pwait`
/// while it holds async-io's reactor, and on a futex while async-io's
/// helper thread does, which the helper takes whenever no `block_on` runs
/// (so after any earlier smol run in the process). The result's
/// [`sleeps_in`](WakeTimes::sleeps_in) says which;
/// [`smol_epoll_wake_to_poll`] makes it the former.
///
/// # Examples
///
/// ```
/// use fdloop_bench::groups::async_rt::{wake_to_poll, Rt};
/// let t = wake_to_poll(Rt::Fdloop, 3, 1, fdloop_bench::Pin::Off)?;
/// assert_eq!(t.len(), 2);
/// assert!(t.quantile_ns(0.5) > 0.0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wake_to_poll(rt: Rt, rounds: u64, warmup: u64, pin: Pin) -> io::Result<WakeTimes> {
    wake_to_poll_as(rt, false, rounds, warmup, pin)
}

/// [`wake_to_poll`] for smol with the reactor on its `block_on` thread, as
/// fdloop's and tokio's are on theirs: the task first awaits a 2 ms
/// async-io timer, whose registration wakes async-io's helper thread out
/// of the reactor and whose expiry the `block_on` thread then takes the
/// reactor to see; from there on that thread runs the reactor every round
/// and the helper leaves it (it takes the reactor only when no reactor
/// tick happens for a while). Check [`WakeTimes::sleeps_in`]: it did so in
/// every run on the machine of BENCHMARKS.md.
///
/// # Examples
///
/// ```
/// use fdloop_bench::groups::async_rt::smol_epoll_wake_to_poll;
/// let t = smol_epoll_wake_to_poll(3, 1, fdloop_bench::Pin::Off)?;
/// assert_eq!(t.len(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn smol_epoll_wake_to_poll(rounds: u64, warmup: u64, pin: Pin) -> io::Result<WakeTimes> {
    wake_to_poll_as(Rt::Smol, true, rounds, warmup, pin)
}

fn wake_to_poll_as(
    rt: Rt,
    smol_reactor_here: bool,
    rounds: u64,
    warmup: u64,
    pin: Pin,
) -> io::Result<WakeTimes> {
    pin_opt(pin.main_cpu())?;
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let cpu = pin.echo_cpu();
    let sleeper = this_tid();
    let thread = std::thread::spawn(move || waker_thread(g, rounds, warmup, cpu, sleeper));
    let task = waiter(gate, rounds);
    match rt {
        Rt::Fdloop => {
            fdloop::rt::block_on(task).map_err(io::Error::from)?;
        }
        Rt::Tokio => tokio_rt()?.block_on(task),
        Rt::Smol => {
            let ex = async_executor::LocalExecutor::new();
            async_io::block_on(ex.run(async {
                if smol_reactor_here {
                    async_io::Timer::after(Duration::from_millis(2)).await;
                }
                task.await
            }));
        }
        Rt::Calloop => {
            let mut ev: calloop::EventLoop<'_, bool> =
                calloop::EventLoop::try_new().map_err(calloop_err)?;
            let (exec, sched) = calloop::futures::executor::<()>().map_err(calloop_err)?;
            ev.handle()
                .insert_source(exec, |(), _, done: &mut bool| *done = true)
                .map_err(|e| calloop_err(e.error))?;
            sched.schedule(task).map_err(calloop_err)?;
            let mut done = false;
            while !done {
                ev.dispatch(None, &mut done).map_err(calloop_err)?;
            }
        }
    }
    thread
        .join()
        .map_err(|_| io::Error::other("waking thread panicked"))?
}

// ---------------------------------------------------------------------------
// Echo over 50 connections.

const MSG: usize = 64;

/// The client: `conns` blocking sockets; per round, one message on each,
/// then every echo read back and checked. Returns the time of the timed
/// rounds.
fn echo_client(
    addr: SocketAddr,
    conns: usize,
    rounds: u64,
    cpu: Option<usize>,
) -> io::Result<Duration> {
    pin_opt(cpu)?;
    let mut socks = (0..conns)
        .map(|_| {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            Ok(s)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let warmup = rounds / 10;
    let mut start = Instant::now();
    let mut back = [0u8; MSG];
    for r in 0..warmup + rounds {
        if r == warmup {
            start = Instant::now();
        }
        for (i, s) in socks.iter_mut().enumerate() {
            s.write_all(&[(r as usize + i) as u8; MSG])?;
        }
        for (i, s) in socks.iter_mut().enumerate() {
            s.read_exact(&mut back)?;
            if back != [(r as usize + i) as u8; MSG] {
                return Err(io::Error::other("echo differs"));
            }
        }
    }
    Ok(start.elapsed())
}

/// A futures-io echo of one connection, until it closes.
async fn echo_futures_io<S: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin>(
    mut s: S,
) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n]).await?;
    }
}

/// Serves `conns` connections of `listener` on `rt` until they all close.
fn echo_server(rt: Rt, listener: TcpListener, conns: usize) -> io::Result<()> {
    match rt {
        Rt::Fdloop => fdloop::rt::block_on(async move {
            let l = fdloop::rt::Async::new(listener)?;
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (s, _) = l.accept().await?;
                s.get_ref().set_nodelay(true)?;
                tasks.push(fdloop::rt::spawn(echo_futures_io(s))?);
            }
            for t in tasks {
                t.await??;
            }
            Ok(())
        })?,
        Rt::Tokio => tokio_rt()?.block_on(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            listener.set_nonblocking(true)?;
            let l = tokio::net::TcpListener::from_std(listener)?;
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (mut s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                tasks.push(tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = s.read(&mut buf).await?;
                        if n == 0 {
                            return Ok::<_, io::Error>(());
                        }
                        s.write_all(&buf[..n]).await?;
                    }
                }));
            }
            for t in tasks {
                t.await.map_err(io::Error::other)??;
            }
            Ok(())
        }),
        Rt::Smol => {
            let ex = async_executor::LocalExecutor::new();
            async_io::block_on(ex.run(async {
                let l = async_io::Async::new(listener)?;
                let mut tasks = Vec::with_capacity(conns);
                for _ in 0..conns {
                    let (s, _) = l.accept().await?;
                    s.get_ref().set_nodelay(true)?;
                    tasks.push(ex.spawn(echo_futures_io(s)));
                }
                for t in tasks {
                    t.await?;
                }
                Ok(())
            }))
        }
        Rt::Calloop => echo_server_calloop(listener, conns),
    }
}

/// calloop: the listener and streams through `LoopHandle::adapt_io`, the
/// tasks on its executor.
fn echo_server_calloop(listener: TcpListener, conns: usize) -> io::Result<()> {
    let mut ev: calloop::EventLoop<'static, usize> =
        calloop::EventLoop::try_new().map_err(calloop_err)?;
    let handle = ev.handle();
    let (exec, sched) = calloop::futures::executor::<Result<(), String>>().map_err(calloop_err)?;
    let failed: Rc<Cell<Option<io::Error>>> = Rc::new(Cell::new(None));
    let f = failed.clone();
    handle
        .insert_source(exec, move |r, _, closed: &mut usize| {
            *closed += 1;
            if let Err(e) = r {
                f.set(Some(io::Error::other(e)));
            }
        })
        .map_err(|e| calloop_err(e.error))?;
    listener.set_nonblocking(true)?;
    let mut l = handle.adapt_io(listener).map_err(calloop_err)?;
    let tasks = sched.clone();
    let h = handle.clone();
    let accept = async move {
        let mut accepted = 0;
        while accepted < conns {
            match l.get_mut().accept() {
                Ok((s, _)) => {
                    s.set_nodelay(true)?;
                    s.set_nonblocking(true)?;
                    let s = h.adapt_io(s).map_err(calloop_err)?;
                    let echo = async move { echo_futures_io(s).await.map_err(|e| e.to_string()) };
                    tasks.schedule(echo).map_err(calloop_err)?;
                    accepted += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => l.readable().await,
                Err(e) => return Err(e),
            }
        }
        Ok::<_, io::Error>(())
    };
    sched
        .schedule(async move { accept.await.map_err(|e| e.to_string()) })
        .map_err(calloop_err)?;
    let mut closed = 0;
    while closed < conns + 1 {
        ev.dispatch(None, &mut closed).map_err(calloop_err)?;
        if let Some(e) = failed.take() {
            return Err(e);
        }
    }
    Ok(())
}

/// The "echo" case once: `conns` connections served by `rt` on this
/// thread, a blocking client on another sending one message on each per
/// round; returns the time of the timed rounds (the first tenth are
/// warm-up). Used by the report and by `examples/echo_probe.rs`.
///
/// # Examples
///
/// ```
/// use fdloop_bench::groups::async_rt::{echo, Rt};
/// let t = echo(Rt::Fdloop, 4, 20, fdloop_bench::Pin::Off)?;
/// assert!(t.as_nanos() > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn echo(rt: Rt, conns: usize, rounds: u64, pin: Pin) -> io::Result<Duration> {
    pin_opt(pin.main_cpu())?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let cpu = pin.echo_cpu();
    let client = std::thread::spawn(move || echo_client(addr, conns, rounds, cpu));
    let served = echo_server(rt, listener, conns);
    let took = client
        .join()
        .map_err(|_| io::Error::other("client thread panicked"))?;
    served?;
    took
}

/// The echo case with fdloop's server driven by `run_once(None)` calls
/// instead of `block_on` (as a program that embeds the loop in its own
/// does): the same tasks, spawned on the loop, served until every
/// connection closes. Returns the client's time, as [`echo`].
///
/// # Errors
///
/// The loop failing, or an echo coming back wrong.
///
/// # Examples
///
/// ```
/// let t = fdloop_bench::groups::async_rt::echo_run_once(4, 20, fdloop_bench::Pin::Off)?;
/// assert!(t.as_nanos() > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn echo_run_once(conns: usize, rounds: u64, pin: Pin) -> io::Result<Duration> {
    pin_opt(pin.main_cpu())?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let cpu = pin.echo_cpu();
    let client = std::thread::spawn(move || echo_client(addr, conns, rounds, cpu));
    let served = (|| -> io::Result<()> {
        let mut ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
        let l = fdloop::rt::Async::new_on(&ev.handle(), listener)?;
        let h = ev.handle();
        let server = ev.spawn(async move {
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (s, _) = l.accept().await?;
                s.get_ref().set_nodelay(true)?;
                tasks.push(h.spawn(echo_futures_io(s)));
            }
            for t in tasks {
                t.await??;
            }
            Ok::<_, io::Error>(())
        });
        while !server.is_finished() {
            ev.run_once(&mut (), None).map_err(io::Error::other)?;
        }
        let end = ev.block_on(&mut (), server).map_err(io::Error::other)?;
        end??;
        Ok(())
    })();
    let took = client
        .join()
        .map_err(|_| io::Error::other("client thread panicked"))?;
    served?;
    took
}

// ---------------------------------------------------------------------------

/// Runs `f` on a new thread (pinned by `f` itself), so the report's own
/// thread keeps its affinity.
fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    std::thread::spawn(f)
        .join()
        .map_err(|_| io::Error::other("measuring thread panicked"))?
}

/// The async group.
///
/// # Errors
///
/// A runtime failing, or an echo coming back wrong.
pub fn run(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let n = ctx.cfg.size(200, 100_000, 1_000_000);
    let entries: Vec<Entry<'_>> = Rt::ALL
        .iter()
        .map(|&rt| {
            entry(rt.name(), rt.role(), move || {
                on_thread(move || spawn_complete(rt, n)).map(|d| Measured::time(d, n))
            })
        })
        .collect();
    let case = Case::time("spawn and complete", "time/task").note(format!(
        "{n} tasks spawned, then run to completion, per sample."
    ));
    ctx.run_case("async", case, entries)?;

    let rounds = ctx.cfg.size(20, 1_000, 5_000);
    let warmup = rounds / 10;
    for pin in Pin::ALL {
        if pin.check().is_err() {
            println!(
                "(wake to poll, {}: skipped: CPUs missing)\n",
                pin.describe()
            );
            continue;
        }
        let measured = |w: WakeTimes| {
            Measured {
                value: w.quantile_ns(0.5),
                ops: w.len() as u64,
                extra: Vec::new(),
            }
            .with("mean", "ns", w.mean_ns())
            .with("p99", "ns", w.quantile_ns(0.99))
            .with("asleep in epoll", "", w.epoll_share())
        };
        let floor = entry("raw epoll_wait + eventfd write", Role::Floor, move || {
            on_thread(move || raw_wake_to_poll(rounds, warmup, pin)).map(measured)
        });
        let edge = entry(
            "raw epoll_wait + eventfd, edge-triggered, no read",
            Role::Reference,
            move || on_thread(move || raw_edge_wake_to_poll(rounds, warmup, pin)).map(measured),
        );
        let smol_epoll = entry(
            "smol, reactor on its block_on thread",
            Role::Peer,
            move || on_thread(move || smol_epoll_wake_to_poll(rounds, warmup, pin)).map(measured),
        );
        let entries: Vec<Entry<'_>> = [floor, edge]
            .into_iter()
            .chain(Rt::ALL.iter().map(|&rt| {
                entry(rt.name(), rt.role(), move || {
                    on_thread(move || wake_to_poll(rt, rounds, warmup, pin)).map(measured)
                })
            }))
            .chain(std::iter::once(smol_epoll))
            .collect();
        let case = Case::time(
            format!("wake to poll, another thread, {}", pin.describe()),
            "median time/wake",
        )
        .no_warmup()
        .note(format!(
            "{rounds} wakes per sample ({warmup} untimed first); the loop sleeps before each. \
             Median: each sample's median wake (the column: their median over the reps); \
             mean and p99: each sample's, their medians over the reps. Pinned on one CPU \
             the waker spins on the CPU the loop needs, so the loop runs once the scheduler \
             preempts the waker, which now and then waits for a tick (milliseconds): that \
             moves the mean by microseconds, the median not. Asleep in epoll: 1 if, half-way \
             through the sample, the loop thread was blocked in an epoll wait, 0 if in \
             another call — smol's `block_on` parks on a futex while async-io's helper thread \
             holds the reactor, which it takes whenever no `block_on` runs, so smol's wakes \
             then skip epoll (its I/O takes the extra hop instead)."
        ));
        ctx.run_case("async", case, entries)?;
    }

    let conns = 50;
    let echo_rounds = ctx.cfg.size(20, 1_000, 4_000);
    for pin in Pin::ALL {
        if pin.check().is_err() {
            println!("(echo, {}: skipped: CPUs missing)\n", pin.describe());
            continue;
        }
        let entries: Vec<Entry<'_>> = Rt::ALL
            .iter()
            .map(|&rt| {
                entry(rt.name(), rt.role(), move || {
                    let d = on_thread(move || echo(rt, conns, echo_rounds, pin))?;
                    Ok(Measured::rate(d, echo_rounds * conns as u64))
                })
            })
            .collect();
        let case = Case::rate(
            format!(
                "echo, {conns} connections, client in another thread, {}",
                pin.describe()
            ),
            "round trips/s",
            "M/s",
        )
        .no_warmup()
        .note(format!(
            "{echo_rounds} rounds of {conns} {MSG}-byte messages (one in flight per connection)."
        ));
        ctx.run_case("async", case, entries)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_args;

    /// The group at smoke sizes: spawn-and-complete once, wake-to-poll and
    /// echo in every placement this machine can give, each with all four
    /// runtimes (so every contender ran and checked its echoes), and
    /// wake-to-poll with its no-runtime floor, the edge-triggered floor and
    /// smol with its reactor on its block_on thread besides.
    #[test]
    fn every_case_with_every_runtime() {
        let cfg = parse_args(["--smoke".to_string()], Some("async"))
            .unwrap()
            .unwrap();
        let mut ctx = Ctx::new(&cfg);
        run(&mut ctx).unwrap();
        let r = &ctx.report;
        let cases = r.cases("async");
        let placements = Pin::ALL.into_iter().filter(|p| p.check().is_ok()).count();
        assert_eq!(cases.len(), 1 + 2 * placements, "{cases:?}");
        for case in cases {
            let prim = r.primary("async", case);
            let floors = usize::from(case.starts_with("wake to poll"));
            // Wake to poll also has the edge-triggered floor (a reference)
            // and smol with its reactor kept on its block_on thread.
            assert_eq!(prim.len(), 4 + 3 * floors, "{case}");
            assert_eq!(
                prim.iter().filter(|x| x.role == Role::Reference).count(),
                floors,
                "{case}"
            );
            assert_eq!(prim.iter().filter(|x| x.role == Role::Fdloop).count(), 1);
            assert_eq!(
                prim.iter().filter(|x| x.role == Role::Floor).count(),
                floors,
                "{case}"
            );
        }
    }
}
