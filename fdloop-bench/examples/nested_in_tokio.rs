//! An fdloop [`EventLoop`] nested in a tokio runtime.
//!
//! The loop's own descriptor (its epoll fd, through `AsFd`) is readable
//! whenever one of its sources has an event, so tokio can watch it with
//! [`AsyncFd`] and the loop is dispatched without blocking
//! ([`EventLoop::dispatch_pending`]) each time it turns readable. The fdloop
//! loop is `!Send`, so it stays on the runtime's thread: a current-thread
//! runtime and a [`LocalSet`].
//!
//! What runs:
//!
//! * a plain thread writes a line into a `UnixStream` and pings a [`Ping`]
//!   source, [`ROUNDS`] times, waiting each time for the ping callback's
//!   acknowledgement, then closes the stream;
//! * inside fdloop, the `Ping` callback counts and acknowledges, and an
//!   [`Io`] source on the other end of the stream reads the lines until end
//!   of file, then removes itself;
//! * meanwhile a tokio task ticks a timer every [`TICK`].
//!
//! ```text
//! cargo run -p fdloop-bench --example nested_in_tokio
//! ```
//!
//! `tests/nested.rs` runs the same code and checks the counts.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fdloop::{Action, EventLoop, Interest, Io, Mode, Ping};
use tokio::io::unix::AsyncFd;
use tokio::task::LocalSet;

/// Lines written and pings sent by the producer thread.
pub const ROUNDS: u32 = 40;
/// The producer's pause between rounds.
pub const PACE: Duration = Duration::from_millis(3);
/// The tokio timer's period.
pub const TICK: Duration = Duration::from_millis(5);
/// The whole demo gives up (with an error) after this long.
pub const LIMIT: Duration = Duration::from_secs(2);

/// An event loop's epoll descriptor, by number, for [`AsyncFd`].
///
/// An `AsyncFd` over `ev.as_fd()` would borrow the loop for as long as
/// tokio watches it, and the loop must be borrowed mutably to dispatch; so
/// the number is copied instead. The `AsyncFd` must be dropped (deregistering
/// the descriptor from tokio) before the loop is: [`drive_in_tokio`] takes
/// the loop by `&mut` and drops its `AsyncFd` before returning.
struct LoopFd(RawFd);

impl AsRawFd for LoopFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// What [`drive_in_tokio`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Driven {
    /// Times tokio reported the loop's descriptor readable.
    pub readable: u32,
    /// `dispatch_pending` calls.
    pub dispatches: u32,
    /// Callbacks those calls ran.
    pub callbacks: u64,
}

/// Dispatches `ev` from the current tokio task whenever its epoll fd turns
/// readable, until `done(state)`.
///
/// Readiness is cleared only after a `dispatch_pending` that ran nothing:
/// tokio watches the epoll fd edge-triggered, and a level-triggered source
/// that is still ready after its callback (it read only part of its input)
/// re-queues itself inside the inner epoll set without a new edge, so
/// clearing after every dispatch could sleep through it. While dispatches
/// run callbacks, the task yields between them so other tasks keep running.
///
/// # Errors
///
/// Registering the descriptor with tokio, waiting on it, or a dispatch
/// failing (fdloop's error as `io::Error::other`).
pub async fn drive_in_tokio<S: 'static>(
    ev: &mut EventLoop<S>,
    state: &mut S,
    mut done: impl FnMut(&S) -> bool,
) -> io::Result<Driven> {
    let fd = LoopFd(ev.as_raw_fd());
    // SAFETY: `fd` is the loop's epoll descriptor, which stays open for as
    // long as the loop lives; the loop is borrowed mutably for this whole
    // function (and so cannot be dropped or replaced), and `afd` is dropped
    // before the function returns — or with the future, inside that same
    // borrow, if the future is dropped early. `LoopFd` always returns the
    // same number.
    let afd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)? };
    let mut d = Driven::default();
    // Work may already be queued (nothing has told tokio about it).
    d.callbacks += ev.dispatch_pending(state).map_err(io::Error::other)? as u64;
    d.dispatches += 1;
    while !done(state) {
        let mut guard = afd.readable().await?;
        d.readable += 1;
        let ran = ev.dispatch_pending(state).map_err(io::Error::other)?;
        d.dispatches += 1;
        d.callbacks += ran as u64;
        if ran == 0 {
            guard.clear_ready();
        } else {
            drop(guard);
            tokio::task::yield_now().await;
        }
    }
    drop(afd);
    Ok(d)
}

/// What the demo observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Ping callbacks run (one per round: the producer waits for each).
    pub pings: u32,
    /// Lines read from the stream.
    pub lines: u32,
    /// Bytes read from the stream.
    pub bytes: usize,
    /// Whether the stream's end of file was seen.
    pub eof: bool,
    /// Timer ticks in all.
    pub ticks: u32,
    /// Timer ticks while the fdloop loop had work outstanding.
    pub ticks_during: u32,
    /// How the fdloop loop was driven.
    pub driven: Driven,
    /// Wall time of the whole demo.
    pub elapsed: Duration,
}

/// The fdloop loop's state.
struct State {
    report: Report,
    partial: Vec<u8>,
    ack: mpsc::Sender<u32>,
    start: Instant,
    verbose: bool,
}

impl State {
    fn log(&self, what: std::fmt::Arguments<'_>) {
        if self.verbose {
            println!(
                "[{:7.1} ms] {what}",
                self.start.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}

fn on_ping(st: &mut State) -> Action {
    st.report.pings += 1;
    let n = st.report.pings;
    if n % 10 == 1 || n == ROUNDS {
        st.log(format_args!("fdloop: ping {n} handled on the loop thread"));
    }
    // The producer may have given up already; nothing to do then.
    let _ = st.ack.send(n);
    Action::Continue
}

fn on_readable(stream: &mut UnixStream, st: &mut State) -> Action {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                st.report.eof = true;
                st.log(format_args!(
                    "fdloop: end of stream, removing the Io source"
                ));
                return Action::Remove;
            }
            Ok(n) => {
                st.report.bytes += n;
                st.partial.extend_from_slice(&buf[..n]);
                while let Some(end) = st.partial.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = st.partial.drain(..=end).collect();
                    st.report.lines += 1;
                    if st.report.lines % 10 == 1 || st.report.lines == ROUNDS {
                        let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                        st.log(format_args!("fdloop: read {text:?}"));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Action::Continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                st.log(format_args!(
                    "fdloop: read error {e}, removing the Io source"
                ));
                st.report.eof = true;
                return Action::Remove;
            }
        }
    }
}

/// The producer thread: a line and a ping per round, each acknowledged.
fn produce(
    mut stream: UnixStream,
    ping: fdloop::PingHandle,
    acks: mpsc::Receiver<u32>,
) -> io::Result<()> {
    for i in 1..=ROUNDS {
        writeln!(stream, "message {i}")?;
        ping.ping()?;
        if acks.recv_timeout(LIMIT).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("ping {i} not acknowledged"),
            ));
        }
        thread::sleep(PACE);
    }
    Ok(()) // dropping the stream: end of file for the reader
}

/// Runs the demo on a fresh current-thread runtime. `verbose` prints what
/// happens as it happens.
///
/// # Errors
///
/// Setting up the runtime, the loop or the sources; a dispatch failing; the
/// producer failing; or the whole demo taking longer than [`LIMIT`].
pub fn run_demo(verbose: bool) -> io::Result<Report> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let start = Instant::now();
    let mut report = LocalSet::new().block_on(&rt, async {
        tokio::time::timeout(LIMIT, demo(start, verbose))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "demo took too long"))?
    })?;
    report.elapsed = start.elapsed();
    Ok(report)
}

async fn demo(start: Instant, verbose: bool) -> io::Result<Report> {
    let mut ev: EventLoop<State> = EventLoop::new().map_err(io::Error::other)?;
    let (ping_handle, ping) = Ping::new()?;
    ev.insert(ping, |(), _, st: &mut State| on_ping(st))
        .map_err(io::Error::other)?;
    let (writer, reader) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    ev.insert(
        Io::new(reader, Interest::READABLE, Mode::Level),
        |_ready, io, st: &mut State| on_readable(io.fd_mut(), st),
    )
    .map_err(io::Error::other)?;

    // The tokio side: a timer that must keep ticking while fdloop works.
    let ticks = Rc::new(Cell::new(0u32));
    let ticks_during = Rc::new(Cell::new(0u32));
    let busy = Rc::new(Cell::new(true));
    let timer = {
        let (ticks, ticks_during, busy) = (ticks.clone(), ticks_during.clone(), busy.clone());
        tokio::task::spawn_local(async move {
            let mut every = tokio::time::interval(TICK);
            loop {
                every.tick().await;
                ticks.set(ticks.get() + 1);
                if busy.get() {
                    ticks_during.set(ticks_during.get() + 1);
                }
                if verbose && ticks.get() % 10 == 0 {
                    println!(
                        "[{:7.1} ms] tokio: timer tick {}",
                        start.elapsed().as_secs_f64() * 1e3,
                        ticks.get()
                    );
                }
            }
        })
    };

    let (ack_tx, ack_rx) = mpsc::channel();
    let producer = thread::spawn(move || produce(writer, ping_handle, ack_rx));
    let mut st = State {
        report: Report::default(),
        partial: Vec::new(),
        ack: ack_tx,
        start,
        verbose,
    };
    let driven = drive_in_tokio(&mut ev, &mut st, |st| {
        st.report.eof && st.report.pings >= ROUNDS
    })
    .await?;
    busy.set(false);
    timer.abort();
    // The producer closed its stream before the loop saw end of file: it
    // has finished or is about to.
    producer
        .join()
        .map_err(|_| io::Error::other("producer thread panicked"))??;
    let mut report = st.report;
    report.driven = driven;
    report.ticks = ticks.get();
    report.ticks_during = ticks_during.get();
    Ok(report)
}

fn main() -> std::process::ExitCode {
    println!("fdloop nested in tokio (current_thread runtime, LocalSet)");
    match run_demo(true) {
        Ok(r) => {
            println!(
                "done in {:.1} ms: {} pings, {} lines ({} bytes), end of file: {}; \
                 tokio timer ticked {} times ({} while fdloop had work); \
                 loop fd readable {} times, {} dispatches ran {} callbacks",
                r.elapsed.as_secs_f64() * 1e3,
                r.pings,
                r.lines,
                r.bytes,
                r.eof,
                r.ticks,
                r.ticks_during,
                r.driven.readable,
                r.driven.dispatches,
                r.driven.callbacks,
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nested_in_tokio: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
