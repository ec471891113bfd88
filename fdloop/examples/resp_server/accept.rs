//! Accepting connections when descriptors run out (shared by `resp_server`
//! and the tour, which includes this file with `#[path]`).
//!
//! When the process reaches `RLIMIT_NOFILE` (EMFILE) or the system its file
//! table limit (ENFILE), `accept` fails and the pending connection stays in
//! the backlog: a level-triggered listener reports it again at once, and a
//! loop that only logs and returns spins on a core. Pausing the listener
//! with a timer is the usual cure, but a timer may need a new descriptor
//! too, which is exactly what is missing.
//!
//! The cure here needs no new descriptor and no timer (the reserve-
//! descriptor technique, as in libev and nginx): [`Acceptor`] keeps one
//! spare descriptor open (`/dev/null`). On EMFILE/ENFILE it closes the
//! spare, accepts the waiting connection into the freed slot, writes a
//! one-line refusal, closes it, and opens the spare again. The backlog
//! drains, the listener goes quiet, and the loop sleeps; as soon as a
//! descriptor frees up, the next `accept` simply succeeds. Refusals are
//! logged at most once per [`LOG_INTERVAL`], with the count since the last
//! line, and the first accept after refusals reports those not yet logged
//! (the clock is read; no timer is armed).
//!
//! Why this rather than pausing the listener: a pause (even one whose timer
//! needs no descriptor) leaves the clients in the backlog with no answer
//! until they time out, and wakes the loop every pause to retry; the
//! reserve answers each at once and wakes the loop only when someone
//! connects. A pause stays as the fallback for what the reserve cannot
//! absorb (ENOMEM, ENOBUFS, or the spare lost to another thread).
//!
//! Measured (`faults::resp_server_out_of_descriptors_...`): under
//! `RLIMIT_NOFILE` 40 with 100 clients and one more every 10 ms, the server
//! used 2–4 % of a CPU; with 100 clients simply holding on, 0.0 % and one
//! log line, against 70.5 % and 174 240 log lines in 2.6 s for the
//! pause-with-a-timer version whose timer could not be created (debug
//! builds, this 2-vCPU VM; see RELIABILITY.md).

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The least time between two log lines about refused connections.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// What one [`Acceptor::accept`] call did.
#[derive(Debug)]
pub enum Accepted {
    /// A new connection.
    Conn(TcpStream),
    /// Out of descriptors: one waiting connection was answered with the
    /// refusal line and closed.
    Refused,
    /// No connection is waiting.
    Drained,
}

/// A listener's `accept` with a reserve descriptor and a rate-limited log.
pub struct Acceptor {
    /// Who logs (`resp_server`, `tour`).
    name: &'static str,
    /// Written to a connection refused for want of descriptors.
    refusal: &'static [u8],
    /// The reserve descriptor; `None` while it could not be reopened.
    spare: Option<File>,
    /// When the last log line was written.
    logged: Option<Instant>,
    /// Refusals (or failures) not yet reported in a log line.
    unreported: u64,
    /// Refusals since the start.
    refused: u64,
}

impl Acceptor {
    /// Opens the reserve descriptor.
    ///
    /// # Errors
    /// Opening `/dev/null` fails (already out of descriptors).
    pub fn new(name: &'static str, refusal: &'static [u8]) -> io::Result<Acceptor> {
        Ok(Acceptor {
            name,
            refusal,
            spare: Some(File::open("/dev/null")?),
            logged: None,
            unreported: 0,
            refused: 0,
        })
    }

    /// Connections refused for want of descriptors since the start.
    #[allow(dead_code)] // the tour does not report it
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Accepts one connection, or refuses one if descriptors are exhausted.
    ///
    /// # Errors
    /// An `accept` failure other than a transient one, or descriptor
    /// exhaustion with no spare to give up (then the caller must stop
    /// watching the listener until a descriptor frees up). Logged here,
    /// rate-limited.
    pub fn accept(&mut self, listener: &TcpListener) -> io::Result<Accepted> {
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    self.recovered();
                    return Ok(Accepted::Conn(s));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Accepted::Drained),
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionAborted => {}
                Err(e) if is_out_of_descriptors(&e) && self.spare.is_some() => {
                    return Ok(self.refuse_one(listener, &e));
                }
                Err(e) => {
                    self.note(&e, "accept failure(s)");
                    return Err(e);
                }
            }
        }
    }

    /// Gives up the spare, accepts into its slot, refuses, takes it back.
    fn refuse_one(&mut self, listener: &TcpListener, why: &io::Error) -> Accepted {
        self.spare = None;
        let mut refused = false;
        let outcome = match listener.accept() {
            Ok((s, _)) => {
                refuse(s, self.refusal);
                refused = true;
                Accepted::Refused
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Accepted::Drained,
            // Still no room (another thread took the slot): the next call
            // reports the error, as there is no spare left to give up.
            Err(_) => Accepted::Refused,
        };
        self.spare = File::open("/dev/null").ok();
        if refused {
            self.refused += 1;
            self.note(why, "connection(s) refused");
        }
        outcome
    }

    /// Descriptors are available again: reports the refusals not yet
    /// logged, if a line is due (the same rate limit).
    fn recovered(&mut self) {
        let now = Instant::now();
        if self.unreported == 0 || !self.log_due(now) {
            return;
        }
        log(format_args!(
            "{}: accepting again; {} more connection(s) refused or failed before",
            self.name, self.unreported
        ));
        self.logged = Some(now);
        self.unreported = 0;
    }

    fn log_due(&self, now: Instant) -> bool {
        self.logged
            .is_none_or(|t| now.duration_since(t) >= LOG_INTERVAL)
    }

    /// Counts one event and logs at most once per [`LOG_INTERVAL`].
    pub fn note(&mut self, why: &io::Error, what: &str) {
        self.unreported += 1;
        let now = Instant::now();
        if !self.log_due(now) {
            return;
        }
        let spare = if self.spare.is_some() {
            ""
        } else {
            "; no reserve descriptor"
        };
        log(format_args!(
            "{}: accept: {why}; {} {what} since the last report{spare}",
            self.name, self.unreported
        ));
        self.logged = Some(now);
        self.unreported = 0;
    }
}

/// One line on stderr; a failed write (stderr closed) is ignored, where
/// `eprintln!` would panic.
fn log(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// EMFILE or ENFILE: the descriptor table (process or system) is full.
pub fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Writes `line` to a fresh connection and closes it without a reset: our
/// side is shut down first and whatever the client already sent is read
/// (non-blocking), so that the close does not destroy the line in flight.
fn refuse(mut s: TcpStream, line: &[u8]) {
    if s.set_nonblocking(true).is_err() {
        return;
    }
    let _ = s.write(line);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 1024];
    for _ in 0..4 {
        match s.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}
