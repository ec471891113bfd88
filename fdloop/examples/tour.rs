//! The fdloop tour: the program fdloop exists to make easy.
//!
//! ```text
//! cargo run --release --example tour                 # drives itself for 3 s
//! cargo run --release --example tour -- --serve 127.0.0.1:7070
//! ```
//!
//! * A pool of worker threads, each running its own `EventLoop`: it serves
//!   TCP clients (a line protocol: each line is a job, the reply line is its
//!   result), takes jobs from the main thread over an fdloop channel, and
//!   reports statistics on a periodic `Timer` — all in one epoll set.
//! * The main thread's loop accepts connections and hands them out, watches
//!   `Signals` (SIGINT/SIGTERM: graceful shutdown — stop accepting, finish
//!   every job in flight, exit 0 with nothing lost; SIGHUP: print
//!   statistics; the signals have priority over other ready sources) and a
//!   `Child` (a helper process whose exit it reports). Out of descriptors,
//!   it pauses its listener with `disable_for`. Under systemd
//!   (`Type=notify`, `WatchdogSec=`) it says READY/STATUS/STOPPING and pets
//!   the watchdog from its loop.
//! * With no arguments it also drives itself: client threads load the
//!   server over TCP while the main thread feeds jobs through the channels;
//!   after `--duration` it shuts down as if sent SIGTERM, and prints a
//!   summary: jobs in and out per worker, wake-ups per message, latency.
//!
//! Jobs: `sum 1 2 3` → `6`, `fib 40` → `102334155`, `rev abc` → `cba`;
//! anything else → `error: ...`.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fdloop::channel::{self, Event, Sender};
use fdloop::process::Child;
use fdloop::signal::{self, Signal, Signals};
use fdloop::{Action, EventLoop, Interest, Io, IoCtl, LoopHandle, Mode, Readiness, Timer};

#[path = "resp_server/accept.rs"]
mod accept;
use accept::{Accepted, Acceptor};

/// Connections accepted per listener event (fairness).
const ACCEPT_BATCH: usize = 64;
/// The line a connection refused for want of descriptors gets.
const REFUSAL: &[u8] = b"error: server full (out of descriptors), try again later\n";

const USAGE: &str = "\
usage: tour [--serve ADDR] [--workers N] [--clients N] [--duration SECS]
  (no options)      serve on 127.0.0.1 and drive a load for --duration seconds
  --serve ADDR      serve on ADDR (e.g. 127.0.0.1:7070) until SIGINT/SIGTERM
  --workers N       worker threads, each with its own event loop (default: CPUs)
  --clients N       load-generating client threads when driving itself (default 4)
  --duration SECS   how long to drive the load (default 3)
Signals: SIGINT/SIGTERM shut down gracefully; SIGHUP prints statistics.";

struct Config {
    serve: Option<String>,
    workers: usize,
    clients: usize,
    duration: Duration,
}

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        serve: None,
        workers: thread::available_parallelism().map_or(2, |n| n.get()),
        clients: 4,
        duration: Duration::from_secs(3),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--serve" => cfg.serve = Some(value("--serve")?),
            "--workers" => cfg.workers = parse_count(&value("--workers")?, "--workers")?,
            "--clients" => cfg.clients = parse_count(&value("--clients")?, "--clients")?,
            "--duration" => {
                let v = value("--duration")?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--duration: {v:?} is not a number of seconds"))?;
                if !(secs > 0.0 && secs < 86_400.0) {
                    return Err(format!("--duration: {v} is out of range (0, 86400)"));
                }
                cfg.duration = Duration::from_secs_f64(secs);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(cfg)
}

fn parse_count(v: &str, name: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!("{name}: {v:?} is not a number from 1 to 256")),
    }
}

// ---------------------------------------------------------------------------
// Jobs

fn run_job(line: &str) -> String {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("sum") => {
            let mut total: i64 = 0;
            for w in words {
                match w.parse::<i64>() {
                    Ok(n) => total = total.wrapping_add(n),
                    Err(_) => return format!("error: {w:?} is not a number"),
                }
            }
            total.to_string()
        }
        Some("fib") => match words.next().map(str::parse::<u32>) {
            Some(Ok(n)) if n <= 90 => {
                let (mut a, mut b) = (0u64, 1u64);
                for _ in 0..n {
                    (a, b) = (b, a + b);
                }
                a.to_string()
            }
            _ => "error: fib takes a number from 0 to 90".into(),
        },
        Some("rev") => line
            .trim_start()
            .strip_prefix("rev")
            .unwrap_or("")
            .trim()
            .chars()
            .rev()
            .collect(),
        Some(other) => format!("error: unknown job {other:?}"),
        None => "error: empty job".into(),
    }
}

// ---------------------------------------------------------------------------
// Workers

enum ToWorker {
    Conn(TcpStream),
    Job { id: u64, text: String },
    Shutdown,
}

#[derive(Clone, Copy, Default, Debug)]
struct WorkerStats {
    worker: usize,
    tcp_in: u64,
    tcp_out: u64,
    chan_in: u64,
    conns: u64,
    /// Connections cut while holding work (jobs lost with them).
    aborted_conns: u64,
    /// Idle connections closed by the shutdown grace period.
    idle_closed: u64,
    wakeups: u64,
    iterations: u64,
}

enum FromWorker {
    Result { id: u64, reply: String },
    Stats(WorkerStats),
    Done(WorkerStats),
}

struct Worker {
    stats: WorkerStats,
    to_main: Sender<FromWorker>,
    /// Open connections: their source, and whether they hold work (a
    /// partial job or unsent replies).
    open_conns: HashMap<u64, (fdloop::SourceId, bool)>,
    next_conn: u64,
    shutting_down: bool,
    inbox_closed: bool,
    handle: LoopHandle<Worker>,
}

impl Worker {
    fn maybe_finish(&mut self) {
        if self.shutting_down && self.open_conns.is_empty() {
            self.handle.stop();
        }
    }
}

/// One client connection's buffers.
#[derive(Default)]
struct Conn {
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    eof: bool,
}

fn on_conn(
    id: u64,
    conn: &mut Conn,
    ready: Readiness,
    io: &mut IoCtl<TcpStream>,
    w: &mut Worker,
) -> Action {
    if ready.is_readable() || ready.is_read_closed() {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match io.fd_mut().read(&mut buf) {
                Ok(0) => {
                    conn.eof = true;
                    break;
                }
                Ok(n) => conn.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.eof = true;
                    break;
                }
            }
        }
        let mut start = 0;
        while let Some(pos) = conn.inbuf[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&conn.inbuf[start..start + pos]).into_owned();
            start += pos + 1;
            w.stats.tcp_in += 1;
            conn.outbuf.extend_from_slice(run_job(&line).as_bytes());
            conn.outbuf.push(b'\n');
        }
        conn.inbuf.drain(..start);
    }
    while !conn.outbuf.is_empty() {
        match io.fd_mut().write(&conn.outbuf) {
            Ok(n) => {
                // A reply counts as out once its last byte is written.
                w.stats.tcp_out += conn.outbuf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                conn.outbuf.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                // The peer is gone: its unsent replies are lost with it.
                w.stats.aborted_conns += 1;
                w.open_conns.remove(&id);
                w.maybe_finish();
                return Action::Remove;
            }
        }
    }
    if conn.eof && conn.outbuf.is_empty() {
        // Every job read has been answered: close.
        let _ = io.fd().shutdown(Shutdown::Both);
        w.open_conns.remove(&id);
        w.maybe_finish();
        return Action::Remove;
    }
    if let Some(entry) = w.open_conns.get_mut(&id) {
        entry.1 = !conn.outbuf.is_empty() || !conn.inbuf.is_empty();
    }
    io.set_interest(if conn.outbuf.is_empty() {
        Interest::READABLE
    } else {
        Interest::BOTH
    });
    Action::Continue
}

fn add_conn(stream: TcpStream, w: &mut Worker) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let id = w.next_conn;
    w.next_conn += 1;
    let mut conn = Conn::default();
    let io = Io::new(stream, Interest::READABLE, Mode::Level);
    match w.handle.insert(io, move |ready, io, w: &mut Worker| {
        on_conn(id, &mut conn, ready, io, w)
    }) {
        Ok(sid) => {
            w.stats.conns += 1;
            w.open_conns.insert(id, (sid, false));
        }
        Err(e) => eprintln!("worker {}: cannot watch a connection: {e}", w.stats.worker),
    }
}

/// A worker thread: sets up its loop, says so on `started` (or why it
/// could not), then runs it.
fn worker_main(
    index: usize,
    inbox: channel::Receiver<ToWorker>,
    to_main: Sender<FromWorker>,
    started: std::sync::mpsc::Sender<io::Result<()>>,
) -> io::Result<()> {
    let setup = worker_setup(index, inbox, to_main);
    // A copy of the error for the main thread; this thread returns its own.
    let _ = started.send(match &setup {
        Ok(_) => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    });
    drop(started);
    let (mut ev, mut w) = setup?;
    worker_run(&mut ev, &mut w)
}

/// A worker's loop and sources, made before the main thread accepts its
/// first connection: out of descriptors later, they already exist.
fn worker_setup(
    index: usize,
    inbox: channel::Receiver<ToWorker>,
    to_main: Sender<FromWorker>,
) -> io::Result<(EventLoop<Worker>, Worker)> {
    let mut ev: EventLoop<Worker> = EventLoop::new()?;
    let handle = ev.handle();
    ev.insert(inbox, |event, _, w: &mut Worker| {
        match event {
            Event::Msg(ToWorker::Conn(s)) => add_conn(s, w),
            Event::Msg(ToWorker::Job { id, text }) => {
                w.stats.chan_in += 1;
                let reply = run_job(&text);
                let _ = w.to_main.send(FromWorker::Result { id, reply });
            }
            Event::Msg(ToWorker::Shutdown) => {
                w.shutting_down = true;
                // Connections from clients that never close get a grace
                // period, then are cut (and counted as aborted).
                let _ = w.handle.insert(
                    Timer::after(Duration::from_secs(3)),
                    |_, _, w: &mut Worker| {
                        for (_, (sid, busy)) in w.open_conns.drain() {
                            if busy {
                                w.stats.aborted_conns += 1;
                            } else {
                                w.stats.idle_closed += 1;
                            }
                            let _ = w.handle.remove(sid);
                        }
                        w.handle.stop();
                        Action::Remove
                    },
                );
                w.maybe_finish();
            }
            Event::Closed => w.inbox_closed = true,
        }
        Action::Continue
    })
    .map_err(io::Error::from)?;
    ev.insert(
        Timer::every(Duration::from_millis(250)),
        |_, _, w: &mut Worker| {
            let _ = w.to_main.send(FromWorker::Stats(w.stats));
            Action::Continue
        },
    )
    .map_err(io::Error::from)?;
    let w = Worker {
        stats: WorkerStats {
            worker: index,
            ..WorkerStats::default()
        },
        to_main,
        open_conns: HashMap::new(),
        next_conn: 0,
        shutting_down: false,
        inbox_closed: false,
        handle,
    };
    Ok((ev, w))
}

/// Runs a worker's loop until the shutdown, then reports its statistics.
fn worker_run(ev: &mut EventLoop<Worker>, w: &mut Worker) -> io::Result<()> {
    loop {
        ev.run(w).map_err(io::Error::from)?;
        if w.shutting_down {
            break;
        }
    }
    // Jobs queued in the channel before the shutdown message were handled
    // in order before it; nothing else can arrive from the main thread.
    let s = ev.stats();
    w.stats.wakeups = s.wakeups;
    w.stats.iterations = s.iterations;
    let _ = w.to_main.send(FromWorker::Done(w.stats));
    let _ = w.inbox_closed;
    Ok(())
}

// ---------------------------------------------------------------------------
// Load: client threads (only when driving itself)

#[derive(Default)]
struct ClientReport {
    sent: u64,
    answered: u64,
    wrong: u64,
    latencies_ns: Vec<u64>,
}

fn client_job(seed: &mut u64) -> (String, String) {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let r = *seed;
    let line = match r % 3 {
        0 => format!("sum {} {} {}", r % 1000, (r >> 10) % 1000, (r >> 20) % 1000),
        1 => format!("fib {}", r % 60),
        _ => format!("rev job{}", r % 100_000),
    };
    let expect = run_job(&line);
    (line, expect)
}

/// A client: sends pipelined batches of jobs and checks every reply, until
/// told to stop; then half-closes and reads the rest, so every job it sent
/// is answered before it reports.
fn client_main(addr: SocketAddr, stop: Arc<AtomicBool>, seed: u64) -> io::Result<ClientReport> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut rep = ClientReport::default();
    let mut seed = seed | 1;
    let mut line = String::new();
    const DEPTH: usize = 8;
    while !stop.load(Ordering::Relaxed) {
        let mut expected = Vec::with_capacity(DEPTH);
        let mut batch = String::new();
        for _ in 0..DEPTH {
            let (job, expect) = client_job(&mut seed);
            batch.push_str(&job);
            batch.push('\n');
            expected.push(expect);
        }
        let t0 = Instant::now();
        writer.write_all(batch.as_bytes())?;
        rep.sent += DEPTH as u64;
        for expect in expected {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "server closed early",
                ));
            }
            rep.latencies_ns.push(t0.elapsed().as_nanos() as u64);
            rep.answered += 1;
            if line.trim_end() != expect {
                rep.wrong += 1;
            }
        }
    }
    writer.shutdown(Shutdown::Write)?;
    line.clear();
    if reader.read_line(&mut line)? != 0 {
        rep.wrong += 1; // the server must have nothing more to say
    }
    Ok(rep)
}

// ---------------------------------------------------------------------------
// Main thread

/// Stops watching the listener for 100 ms after an `accept` failure the
/// acceptor could not absorb; it resumes by itself (`disable_for` needs no
/// new descriptor).
fn pause_listener(st: &mut Main) -> Action {
    if let Some(id) = st.listener {
        // Cannot fail for want of descriptors; `id` is the running source.
        let _ = st.handle.disable_for(id, Duration::from_millis(100));
    }
    Action::Continue
}

struct Main {
    workers: Vec<Sender<ToWorker>>,
    latest: Vec<WorkerStats>,
    done: Vec<Option<WorkerStats>>,
    next_worker: usize,
    listener: Option<fdloop::SourceId>,
    acceptor: Acceptor,
    feeder: Option<fdloop::SourceId>,
    chan_sent: u64,
    chan_answered: u64,
    chan_wrong: u64,
    pending: HashMap<u64, String>,
    next_job: u64,
    shutting_down: bool,
    stop_clients: Arc<AtomicBool>,
    helper: Option<String>,
    started: Instant,
    handle: LoopHandle<Main>,
}

impl Main {
    fn begin_shutdown(&mut self, why: &str) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        println!(
            "[{:6.2}s] shutting down ({why}): no new connections, finishing jobs in flight",
            self.secs()
        );
        for id in [self.listener.take(), self.feeder.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.handle.remove(id);
        }
        // Clients stop sending, half-close, and read their last replies;
        // workers close each connection once every job it sent is answered.
        self.stop_clients.store(true, Ordering::Relaxed);
        for w in &self.workers {
            let _ = w.send(ToWorker::Shutdown);
        }
    }

    fn secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn print_stats(&self) {
        let (tin, tout, cin) = self.latest.iter().fold((0, 0, 0), |a, s| {
            (a.0 + s.tcp_in, a.1 + s.tcp_out, a.2 + s.chan_in)
        });
        println!(
            "[{:6.2}s] tcp jobs in {tin:>8} out {tout:>8} | channel jobs sent {:>7} handled {cin:>7} answered {:>7} | per worker tcp: {}",
            self.secs(),
            self.chan_sent,
            self.chan_answered,
            self.latest
                .iter()
                .map(|s| s.tcp_in.to_string())
                .collect::<Vec<_>>()
                .join("/")
        );
    }
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tour: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(cfg) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("tour: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cfg: Config) -> io::Result<bool> {
    // Block the signals before any thread exists, so every thread inherits
    // the mask and only the main loop's signalfd receives them.
    let sigs = [Signal::INT, Signal::TERM, Signal::HUP];
    signal::block(&sigs)?.keep();

    let bind = cfg.serve.clone().unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&bind)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {bind}: {e}")))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    println!(
        "fdloop tour: {} workers serving on {addr} (pid {}); {}",
        cfg.workers,
        std::process::id(),
        if cfg.serve.is_some() {
            "send jobs like `sum 1 2 3` with `nc`; SIGINT/SIGTERM to stop, SIGHUP for stats"
                .to_string()
        } else {
            format!("driving {} clients for {:?}", cfg.clients, cfg.duration)
        }
    );

    let (to_main, from_workers) = channel::unbounded::<FromWorker>()?;
    let mut workers = Vec::new();
    let mut joins = Vec::new();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    for i in 0..cfg.workers {
        let (tx, rx) = channel::unbounded::<ToWorker>()?;
        let to_main = to_main.clone();
        let started = started_tx.clone();
        workers.push(tx);
        joins.push(
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || worker_main(i, rx, to_main, started))?,
        );
    }
    drop(started_tx);
    // Every worker has its loop before this thread accepts a connection:
    // accepted connections may take the last descriptors, and a worker
    // still setting up would then fail.
    for _ in 0..cfg.workers {
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(io::Error::new(e.kind(), format!("a worker: {e}"))),
            Err(_) => return Err(io::Error::other("a worker thread panicked")),
        }
    }
    let wake_probe: Vec<Sender<ToWorker>> = workers.clone();
    drop(to_main);

    let mut ev: EventLoop<Main> = EventLoop::new()?;
    // The summary prints the time the main loop spent blocked.
    ev.set_time_stats(true);
    let handle = ev.handle();
    let stop_clients = Arc::new(AtomicBool::new(false));
    let mut st = Main {
        workers,
        latest: vec![WorkerStats::default(); cfg.workers],
        done: vec![None; cfg.workers],
        next_worker: 0,
        listener: None,
        acceptor: Acceptor::new("tour", REFUSAL)?,
        feeder: None,
        chan_sent: 0,
        chan_answered: 0,
        chan_wrong: 0,
        pending: HashMap::new(),
        next_job: 0,
        shutting_down: false,
        stop_clients: stop_clients.clone(),
        helper: None,
        started: Instant::now(),
        handle: handle.clone(),
    };

    // Accept connections and hand them to the workers in turn.
    st.listener = Some(
        ev.insert(
            Io::new(listener, Interest::READABLE, Mode::Level),
            |_, io, st: &mut Main| {
                // Out of descriptors, the acceptor refuses the waiting
                // connection through its reserve descriptor (no spin, no
                // new descriptor, one log line a second at most).
                for _ in 0..ACCEPT_BATCH {
                    match st.acceptor.accept(io.fd()) {
                        Ok(Accepted::Conn(s)) => {
                            let w = st.next_worker % st.workers.len();
                            st.next_worker += 1;
                            let _ = st.workers[w].send(ToWorker::Conn(s));
                        }
                        Ok(Accepted::Refused) => {}
                        Ok(Accepted::Drained) => break,
                        // Not even a spare to give up (or out of memory):
                        // stop watching the listener for 100 ms.
                        Err(_) => return pause_listener(st),
                    }
                }
                Action::Continue
            },
        )
        .map_err(io::Error::from)?,
    );

    // Signals: INT/TERM shut down, HUP prints statistics. Priority -10:
    // when a signal and a flood of work are ready in the same iteration,
    // the signal goes first (lower runs first; the default is 0).
    ev.handle()
        .insert_with_priority(Signals::new(&sigs)?, -10, |info, _, st: &mut Main| {
            match info.signal {
                s if s == Signal::HUP => st.print_stats(),
                s => st.begin_shutdown(&format!("{s} from pid {}", info.pid)),
            }
            Action::Continue
        })
        .map_err(io::Error::from)?;

    // Under systemd (Type=notify, WatchdogSec=), say when we are ready and
    // pet the watchdog from the loop itself: a stuck loop stops petting.
    // Outside systemd both do nothing.
    let notifier = fdloop::systemd::SystemdNotifier::from_env().map_err(io::Error::from)?;
    ev.enable_systemd_watchdog().map_err(io::Error::from)?;

    // Results of the jobs the main thread sent, and worker statistics.
    ev.insert(from_workers, |event, _, st: &mut Main| {
        match event {
            Event::Msg(FromWorker::Result { id, reply }) => {
                st.chan_answered += 1;
                match st.pending.remove(&id) {
                    Some(expect) if expect == reply => {}
                    _ => st.chan_wrong += 1,
                }
            }
            Event::Msg(FromWorker::Stats(s)) => st.latest[s.worker] = s,
            Event::Msg(FromWorker::Done(s)) => {
                st.latest[s.worker] = s;
                st.done[s.worker] = Some(s);
                if st.done.iter().all(Option::is_some) {
                    st.handle.stop();
                }
            }
            Event::Closed => st.handle.stop(),
        }
        Action::Continue
    })
    .map_err(io::Error::from)?;

    // A helper process; its exit arrives through a pidfd.
    let helper = std::process::Command::new("/bin/sh")
        .args(["-c", "sleep 0.2; exit 3"])
        .spawn()?;
    println!("[  0.00s] started helper process {}", helper.id());
    ev.insert(Child::new(&helper)?, |exit, _, st: &mut Main| {
        let msg = format!("helper process exited: {exit}");
        println!("[{:6.2}s] {msg}", st.secs());
        st.helper = Some(msg);
        Action::Continue
    })
    .map_err(io::Error::from)?;

    // Live log.
    ev.insert(
        Timer::every(Duration::from_millis(500)),
        |_, _, st: &mut Main| {
            st.print_stats();
            Action::Continue
        },
    )
    .map_err(io::Error::from)?;

    let mut clients = Vec::new();
    if cfg.serve.is_none() {
        // Feed jobs to the workers over the channels: a batch per tick.
        st.feeder = Some(
            ev.insert(
                Timer::every(Duration::from_millis(1)),
                |_, _, st: &mut Main| {
                    for _ in 0..16 {
                        let id = st.next_job;
                        st.next_job += 1;
                        let text = format!("sum {id} {}", id * 2);
                        st.pending.insert(id, run_job(&text));
                        let w = (id as usize) % st.workers.len();
                        if st.workers[w].send(ToWorker::Job { id, text }).is_ok() {
                            st.chan_sent += 1;
                        }
                    }
                    Action::Continue
                },
            )
            .map_err(io::Error::from)?,
        );
        ev.insert(Timer::after(cfg.duration), |_, _, st: &mut Main| {
            st.begin_shutdown("load finished");
            Action::Continue
        })
        .map_err(io::Error::from)?;
        for i in 0..cfg.clients {
            let stop = stop_clients.clone();
            clients.push(thread::spawn(move || {
                client_main(addr, stop, 0x9e37_79b9 + i as u64)
            }));
        }
    }

    notifier
        .notify_ready()
        .and_then(|_| notifier.notify_status("serving"))
        .map_err(io::Error::from)?;
    ev.run(&mut st).map_err(io::Error::from)?;
    notifier.notify_stopping().map_err(io::Error::from)?;
    for j in joins {
        match j.join() {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::other("a worker thread panicked")),
        }
    }
    let mut reports = Vec::new();
    for c in clients {
        match c.join() {
            Ok(r) => reports.push(r?),
            Err(_) => return Err(io::Error::other("a client thread panicked")),
        }
    }
    let main_stats = ev.stats();
    Ok(summary(&st, &reports, &wake_probe, main_stats))
}

fn summary(
    st: &Main,
    reports: &[ClientReport],
    probes: &[Sender<ToWorker>],
    main: fdloop::Stats,
) -> bool {
    println!("\n=== summary after {:.2}s ===", st.secs());
    let mut t = (0u64, 0u64, 0u64, 0u64, 0u64);
    for s in st.done.iter().flatten() {
        println!(
            "worker {}: {} connections ({} idle ones closed at shutdown, {} cut with work), tcp jobs in {} out {}, channel jobs {}, {} loop iterations, {} wake-ups",
            s.worker, s.conns, s.idle_closed, s.aborted_conns, s.tcp_in, s.tcp_out, s.chan_in, s.iterations, s.wakeups
        );
        t = (
            t.0 + s.tcp_in,
            t.1 + s.tcp_out,
            t.2 + s.chan_in,
            t.3 + s.wakeups,
            t.4 + s.aborted_conns,
        );
    }
    let (sent, answered, wrong) = reports.iter().fold((0, 0, 0), |a, r| {
        (a.0 + r.sent, a.1 + r.answered, a.2 + r.wrong)
    });
    let mut lat: Vec<u64> = reports
        .iter()
        .flat_map(|r| r.latencies_ns.iter().copied())
        .collect();
    lat.sort_unstable();
    let pct = |p: usize| {
        lat.get(lat.len() * p / 100)
            .map_or(0.0, |&n| n as f64 / 1000.0)
    };
    let messages = t.0 + t.2;
    let chan_writes: u64 = probes.iter().map(|p| p.wake_writes()).sum();
    println!("tcp: clients sent {sent}, got {answered} replies ({wrong} wrong); workers read {} and answered {}", t.0, t.1);
    println!(
        "channels: main sent {} jobs, got {} results ({} wrong)",
        st.chan_sent, st.chan_answered, st.chan_wrong
    );
    if !lat.is_empty() {
        println!(
            "latency (pipelined batches of 8): p50 {:.1} µs, p99 {:.1} µs over {} replies",
            pct(50),
            pct(99),
            lat.len()
        );
    }
    if messages > 0 {
        println!(
            "wake-ups per message: {:.4} (worker loop wake-ups {} / {messages} jobs); channel fd writes per job sent to workers: {:.4}",
            t.3 as f64 / messages as f64,
            t.3,
            chan_writes as f64 / st.chan_sent.max(1) as f64
        );
    }
    println!(
        "main loop: {} iterations, {} events, {:?} blocked",
        main.iterations, main.events, main.blocked
    );
    if let Some(h) = &st.helper {
        println!("{h}");
    }
    // Driving itself, the client side must agree too; serving external
    // clients, the server's own books must balance.
    let clients_agree = reports.is_empty() || (sent == answered && answered == t.0);
    let ok = st.done.iter().all(Option::is_some)
        && clients_agree
        && t.0 == t.1
        && wrong == 0
        && st.chan_sent == st.chan_answered
        && st.chan_wrong == 0
        && st.pending.is_empty()
        && t.4 == 0;
    if ok {
        println!(
            "all jobs accounted for: {} over tcp, {} over channels",
            t.0, st.chan_sent
        );
    } else {
        println!("MISMATCH: some jobs were not accounted for");
    }
    ok
}
