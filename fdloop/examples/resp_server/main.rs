//! A small Redis-compatible key/value server on one fdloop thread.
//!
//! ```text
//! cargo run --release --example resp_server -- --port 6380
//! redis-cli -p 6380 set greeting hello
//! redis-benchmark -p 6380 -q -t ping,set,get -P 16
//! ```
//!
//! * Speaks RESP2: arrays of bulk strings and inline commands (`PING\r\n`),
//!   pipelined. Commands: `PING [msg]`, `ECHO msg`, `SET key value [EX s |
//!   PX ms] [NX | XX]`, `GET`, `DEL key...`, `EXISTS key...`, `INCR`, `QUIT`,
//!   and enough `COMMAND` / `CONFIG GET` for `redis-cli` and
//!   `redis-benchmark`. Keys and values are binary-safe.
//! * One `EventLoop`: a level-triggered `Io` source for the listener and one
//!   per connection, plus `Signals` for SIGINT/SIGTERM (graceful exit 0).
//!   An idle connection is nothing but an entry in the epoll set: no timer,
//!   no wake-up, no CPU.
//! * Per connection, one read per readiness event; every complete request
//!   in the input buffer is executed, the replies collect in an output
//!   buffer that is written with one `write` per batch. While replies are
//!   pending the connection also watches `WRITABLE`.
//! * Back-pressure: past `--output-limit` (default 4 MiB) of pending replies
//!   a connection stops executing and reading requests until the client
//!   catches up, so a client that pipelines and never reads holds at most
//!   that much plus one reply (and the kernel's socket buffers). A
//!   connection whose pending replies exceed `--output-hard-limit`
//!   (default 64 MiB; reached only by a single reply that big) is closed.
//! * Out of descriptors (EMFILE/ENFILE): the server keeps one spare
//!   descriptor; it gives it up to accept the waiting connection, answers
//!   `-ERR max number of clients reached`, closes it and reopens the spare
//!   (see `accept.rs`). Existing clients are served as usual, the loop
//!   sleeps while nobody new knocks, a connection is accepted again as soon
//!   as a descriptor frees up, and the log says so once a second at most,
//!   with a count.
//! * Malformed input gets `-ERR Protocol error: ...` and the connection is
//!   closed once the reply is out; no input makes the server panic.
//! * Keys with a TTL expire lazily, when next touched (no timers). The
//!   commands and the store are in `commands.rs`.
//! * `--async` serves the same protocol with async/await: one `fdloop::rt`
//!   task per connection over the same `Conn` (see `async_mode.rs`).
//! * `--port 0` binds a free port; the first line on stdout is always
//!   `listening on ADDR`.

mod accept;
#[cfg(feature = "async")]
mod async_mode;
mod commands;
mod parser;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use fdloop::signal::{self, Signal, Signals};
use fdloop::{Action, EventLoop, Interest, Io, IoCtl, LoopHandle, Mode, Readiness, SourceId};
use fdloop::{Timer, TimerEvent};

use accept::{Accepted, Acceptor};
use commands::{put_raw, run_command, Args, Flow, Store};
use parser::{Parser, ProtocolError};

const USAGE: &str = "\
usage: resp_server [--port PORT] [--bind ADDR] [--output-limit BYTES]
                   [--output-hard-limit BYTES] [--async]
  --port PORT   TCP port to listen on (default 6380; 0 picks a free port)
  --bind ADDR   address to bind (default 127.0.0.1)
  --output-limit BYTES
                pending replies past which a connection stops reading
                (back-pressure; default 4194304)
  --output-hard-limit BYTES
                pending replies past which a connection is closed
                (default 67108864)
  --async       serve with async/await (fdloop::rt tasks), same protocol
  --help        this text
The first line on stdout is `listening on ADDR:PORT`. SIGINT/SIGTERM exit 0.";

/// Pending replies past which a connection stops reading requests.
const OUT_LIMIT: usize = 4 * 1024 * 1024;
/// Pending replies past which a connection is closed.
const OUT_HARD_LIMIT: usize = 64 * 1024 * 1024;
/// The line a connection refused for want of descriptors gets.
const REFUSAL: &[u8] = b"-ERR max number of clients reached\r\n";
/// The input buffer's initial size, and the least room one read gets.
const READ_CHUNK: usize = 16 * 1024;
/// Most bytes one connection may buffer for a single request.
const MAX_QUERY: usize = 1024 * 1024 * 1024;
/// Buffers bigger than this are given back when they empty.
const KEEP_BUFFER: usize = 1024 * 1024;
/// Connections accepted per listener event (fairness).
const ACCEPT_BATCH: usize = 64;

struct Config {
    bind: String,
    port: u16,
    limits: Limits,
    /// `--async`: connections as tasks of `fdloop::rt` (`async_mode.rs`).
    async_mode: bool,
}

/// Per-connection bounds on pending replies.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// Stop reading past this (back-pressure).
    soft: usize,
    /// Close past this.
    hard: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            soft: OUT_LIMIT,
            hard: OUT_HARD_LIMIT,
        }
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, String> {
    let mut cfg = Config {
        bind: "127.0.0.1".into(),
        port: 6380,
        limits: Limits::default(),
        async_mode: false,
    };
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--port" | "-p" => {
                let v = value("--port")?;
                cfg.port = v
                    .parse()
                    .map_err(|_| format!("--port: {v:?} is not a port number (0-65535)"))?;
            }
            "--bind" => cfg.bind = value("--bind")?,
            "--async" if cfg!(feature = "async") => cfg.async_mode = true,
            "--async" => return Err("--async: built without feature \"async\"".into()),
            "--output-limit" | "--output-hard-limit" => {
                let v = value(&a)?;
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("{a}: {v:?} is not a number of bytes"))?;
                if a == "--output-limit" {
                    cfg.limits.soft = n;
                } else {
                    cfg.limits.hard = n;
                }
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(Some(cfg))
}

fn main() -> ExitCode {
    let cfg = match parse_args(std::env::args().skip(1)) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("resp_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resp_server: {e}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------
// The loop

struct Server {
    store: Store,
    /// The input buffer lent to whichever connection reads with an empty
    /// buffer of its own (see [`Conn::tidy`]).
    scratch: Vec<u8>,
    handle: LoopHandle<Server>,
    listener: Option<SourceId>,
    acceptor: Acceptor,
    /// The listener is disabled until a connection closes (accept failed
    /// and no timer could be armed to retry).
    listener_waits_for_close: bool,
    limits: Limits,
    conns: usize,
}

fn run(cfg: &Config) -> io::Result<()> {
    // Before any thread exists, so that every thread inherits the mask and
    // only the loop's signalfd sees SIGINT/SIGTERM.
    let sigs = [Signal::INT, Signal::TERM];
    signal::block(&sigs)?.keep();

    let bind = format!("{}:{}", cfg.bind, cfg.port);
    let listener = TcpListener::bind(&bind)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {bind}: {e}")))?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    #[cfg(feature = "async")]
    if cfg.async_mode {
        return async_mode::run(listener, &sigs, cfg.limits);
    }

    let mut ev: EventLoop<Server> = EventLoop::new()?;
    let mut srv = Server {
        store: Store::default(),
        scratch: Vec::new(),
        handle: ev.handle(),
        listener: None,
        acceptor: Acceptor::new("resp_server", REFUSAL)?,
        listener_waits_for_close: false,
        limits: cfg.limits,
        conns: 0,
    };
    let io = Io::new(listener, Interest::READABLE, Mode::Level);
    srv.listener = Some(ev.insert(io, on_listener).map_err(io::Error::from)?);
    ev.insert(Signals::new(&sigs)?, |info, _, srv: &mut Server| {
        eprintln!(
            "resp_server: {} received, closing {} connection(s)",
            info.signal, srv.conns
        );
        srv.handle.stop();
        Action::Continue
    })
    .map_err(io::Error::from)?;

    ev.run(&mut srv).map_err(io::Error::from)?;
    Ok(())
}

fn on_listener(_: Readiness, io: &mut IoCtl<TcpListener>, srv: &mut Server) -> Action {
    for _ in 0..ACCEPT_BATCH {
        match srv.acceptor.accept(io.fd()) {
            Ok(Accepted::Conn(stream)) => add_conn(stream, srv),
            Ok(Accepted::Refused) => {}
            Ok(Accepted::Drained) => break,
            // Out of memory, or of descriptors with no spare to give up: a
            // level-triggered listener would report the same connection
            // forever. Stop watching it for 100 ms (the loop's timers need
            // no new descriptor), or, if even that fails, until a
            // connection closes. (Logged, rate-limited, by the acceptor.)
            Err(_) => {
                let paused = srv.handle.insert(
                    Timer::after(Duration::from_millis(100)),
                    |_: TimerEvent, _, srv: &mut Server| {
                        if let Some(id) = srv.listener {
                            let _ = srv.handle.enable(id);
                        }
                        Action::Remove
                    },
                );
                srv.listener_waits_for_close = paused.is_err();
                return Action::Disable;
            }
        }
    }
    Action::Continue
}

/// A connection closed: a descriptor is free again.
fn conn_closed(srv: &mut Server) {
    srv.conns -= 1;
    if srv.listener_waits_for_close {
        srv.listener_waits_for_close = false;
        if let Some(id) = srv.listener {
            let _ = srv.handle.enable(id);
        }
    }
}

fn add_conn(stream: TcpStream, srv: &mut Server) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        limits: srv.limits,
        ..Conn::default()
    };
    let io = Io::new(stream, Interest::READABLE, Mode::Level);
    match srv.handle.insert(io, move |ready, io, srv: &mut Server| {
        let action = conn.on_ready(ready, io, &mut srv.store, &mut srv.scratch);
        if action == Action::Remove {
            conn_closed(srv);
        }
        action
    }) {
        Ok(_) => srv.conns += 1,
        // The connection closes (dropped with the error); rate-limited.
        Err(e) => srv
            .acceptor
            .note(&io::Error::from(e.error), "connection(s) not watched"),
    }
}

// ---------------------------------------------------------------------------
// Connections

/// Why request execution stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    /// No complete request left in the input buffer.
    NeedInput,
    /// The output buffer is past the soft limit ([`Limits::soft`]).
    OutputFull,
    /// `QUIT` or a protocol error: reply, then close.
    Close,
}

#[derive(Default)]
struct Conn {
    parser: Parser,
    /// Input: `inbuf[start..end]` is received and not yet executed; the
    /// parser's state refers to the request beginning at `start`.
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
    /// Output: `out[sent..]` is still to be written.
    out: Vec<u8>,
    sent: usize,
    /// The peer shut down its side.
    eof: bool,
    /// Close once the output is written.
    closing: bool,
    limits: Limits,
}

impl Conn {
    fn on_ready(
        &mut self,
        ready: Readiness,
        io: &mut IoCtl<TcpStream>,
        store: &mut Store,
        scratch: &mut Vec<u8>,
    ) -> Action {
        if self.inbuf.is_empty() {
            std::mem::swap(&mut self.inbuf, scratch);
        }
        let soft = self.limits.soft;
        let may_read = !self.eof && !self.closing && self.pending() < soft;
        if may_read && (ready.is_readable() || ready.is_read_closed() || ready.is_error()) {
            match self.read_some(io.fd_mut()) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Action::Remove,
            }
        }
        loop {
            let stop = if self.closing {
                Stop::Close
            } else {
                self.execute(store)
            };
            if self.flush(io.fd_mut()).is_err() {
                return Action::Remove;
            }
            if stop != Stop::OutputFull || self.pending() >= soft {
                break;
            }
        }
        if self.pending() > self.limits.hard {
            return Action::Remove;
        }
        self.tidy(scratch);
        self.next_interest(io)
    }

    /// Decides what to watch next, or closes.
    fn next_interest(&mut self, io: &mut IoCtl<TcpStream>) -> Action {
        let pending = self.pending();
        if self.closing || self.eof {
            if pending == 0 {
                if self.closing {
                    linger_close(io.fd());
                }
                return Action::Remove;
            }
            io.set_interest(Interest::WRITABLE);
        } else if pending >= self.limits.soft {
            io.set_interest(Interest::WRITABLE);
        } else if pending > 0 {
            io.set_interest(Interest::BOTH);
        } else {
            io.set_interest(Interest::READABLE);
        }
        Action::Continue
    }

    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// One read into the input buffer (level-triggered: what is left is
    /// reported again).
    fn read_some(&mut self, s: &mut TcpStream) -> io::Result<usize> {
        self.make_room()?;
        let n = s.read(&mut self.inbuf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Ensures room for a read of at least [`READ_CHUNK`]: moves the
    /// unexecuted bytes to the front, or doubles the buffer, never past what
    /// the request being received still needs. (Growth follows the bytes
    /// that arrive, not a declared length: `$536870912` alone costs nothing.)
    fn make_room(&mut self) -> io::Result<()> {
        if self.inbuf.len() - self.end >= READ_CHUNK {
            return Ok(());
        }
        if self.start > 0 {
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.inbuf.len() - self.end >= READ_CHUNK {
                return Ok(());
            }
        }
        let have = self.end;
        let need = have + self.parser.needed(have).max(READ_CHUNK);
        let grown = (self.inbuf.len() * 2)
            .max(READ_CHUNK)
            .min(need)
            .min(MAX_QUERY);
        if grown <= have {
            return Err(io::Error::other("request too big"));
        }
        self.inbuf.resize(grown, 0);
        Ok(())
    }

    /// Executes complete requests until none is left, the output is full,
    /// or the connection is to close.
    fn execute(&mut self, store: &mut Store) -> Stop {
        while self.start < self.end {
            if self.pending() >= self.limits.soft {
                return Stop::OutputFull;
            }
            let req = &self.inbuf[self.start..self.end];
            match self.parser.parse(req) {
                Ok(Some(len)) => {
                    let args = Args {
                        req,
                        ranges: self.parser.args(),
                    };
                    self.start += len;
                    if !args.is_empty() && run_command(args, store, &mut self.out) == Flow::Quit {
                        self.closing = true;
                        return Stop::Close;
                    }
                }
                Ok(None) => return Stop::NeedInput,
                Err(ProtocolError(why)) => {
                    put_raw(&mut self.out, b"-ERR Protocol error: ");
                    put_raw(&mut self.out, why.as_bytes());
                    put_raw(&mut self.out, b"\r\n");
                    self.closing = true;
                    return Stop::Close;
                }
            }
        }
        Stop::NeedInput
    }

    /// Writes pending replies until done or the socket is full.
    fn flush(&mut self, s: &mut TcpStream) -> io::Result<()> {
        while self.sent < self.out.len() {
            let want = self.out.len() - self.sent;
            match s.write(&self.out[self.sent..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    if n < want {
                        break; // the socket buffer is full
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Forget what was sent, so the buffer holds only pending replies
        // (amortised: the rest moves only once it is the smaller part).
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        } else if self.sent >= self.out.len() / 2 {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// Resets emptied buffers and gives big ones back. An emptied input
    /// buffer goes back to the server's `scratch` (the next connection to
    /// read borrows it), so an idle connection holds no buffer at all: ten
    /// thousand idle connections cost their sockets and a few hundred bytes
    /// each, not 16 KiB each.
    fn tidy(&mut self, scratch: &mut Vec<u8>) {
        if self.out.is_empty() && self.out.capacity() > KEEP_BUFFER {
            self.out = Vec::new();
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.inbuf.len() <= KEEP_BUFFER && scratch.is_empty() {
                std::mem::swap(&mut self.inbuf, scratch);
            } else {
                self.inbuf = Vec::new();
            }
        }
    }
}

/// Closes after the last reply: shut down our side (the peer sees the
/// replies, then end of file) and discard what the peer already sent, so
/// that closing does not turn into a reset that could destroy the replies
/// in flight.
fn linger_close(mut s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    for _ in 0..64 {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
