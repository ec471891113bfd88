//! The `eventfd(2)` man page demonstration, in Rust with [`fdloop::EventFd`].
//!
//! ```text
//! cargo run --release --example eventfd_demo -- 1 2 4 7 14
//! ```
//!
//! Every argument is added to an eventfd counter by a writer, and the reader
//! then gets the sum of all of them from one `read`. This runs twice:
//!
//! 1. the writer is a thread of this process;
//! 2. the writer is a child process made with `fork`, which shares the
//!    eventfd with its parent through the inherited descriptor.
//!
//! Finally a non-blocking read of the (now zero) counter shows that it fails
//! with `EAGAIN` (`WouldBlock`) instead of blocking.
//!
//! Numbers are read the way `strtoull(arg, NULL, 0)` reads them: decimal,
//! `0x`-prefixed hexadecimal or `0`-prefixed octal. Unlike the man page
//! program, bad input is refused up front instead of hanging: numbers that
//! are not numbers, `u64::MAX` (which eventfd refuses), or numbers whose sum
//! would pass [`fdloop::MAX_COUNTER`] (the writer would then block forever).
//!
//! Exit status: 0 on success, 1 on a system call failure, 2 on bad arguments.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;

use fdloop::{EventFd, MAX_COUNTER};

/// Why the demo stopped early.
enum Failure {
    /// Bad command line: message, then the usage line; exit status 2.
    Usage(String),
    /// A system call failed: what was being done, and the error; exit status 1.
    Os(String, io::Error),
    /// Something that eventfd promises did not hold; exit status 1.
    Check(String),
}

fn os(what: &str) -> impl FnOnce(io::Error) -> Failure + '_ {
    move |e| Failure::Os(what.to_string(), e)
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let prog = args
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "eventfd_demo".to_string());
    let args: Vec<OsString> = args.collect();

    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", usage(&prog));
        return ExitCode::SUCCESS;
    }

    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("{prog}: {msg}");
            eprintln!("{}", usage(&prog));
            ExitCode::from(2)
        }
        Err(Failure::Os(what, err)) => {
            eprintln!("{prog}: {what}: {err}");
            ExitCode::from(1)
        }
        Err(Failure::Check(msg)) => {
            eprintln!("{prog}: {msg}");
            ExitCode::from(1)
        }
    }
}

fn usage(prog: &str) -> String {
    format!(
        "usage: {prog} NUM...\n  \
         each NUM is an unsigned 64-bit number: decimal, 0x-prefixed hexadecimal \
         or 0-prefixed octal;\n  \
         their total must be at most {MAX_COUNTER} ({MAX_COUNTER:#x})"
    )
}

fn run(args: &[OsString]) -> Result<(), Failure> {
    let numbers = parse_args(args)?;
    // parse_args guarantees the total fits in the counter.
    let expected: u64 = numbers.iter().map(|&(n, _)| n).sum();

    println!("== round 1: a writer thread ==");
    round_thread(&numbers, expected)?;

    println!();
    println!("== round 2: a writer child process (fork) ==");
    let efd = round_fork(&numbers, expected)?;

    println!();
    println!("== round 3: a non-blocking read of the zero counter ==");
    round_nonblocking(&efd)
}

/// Parses every argument; returns `(value, argument text)` pairs.
fn parse_args(args: &[OsString]) -> Result<Vec<(u64, String)>, Failure> {
    if args.is_empty() {
        return Err(Failure::Usage("no numbers given".to_string()));
    }
    let mut numbers = Vec::with_capacity(args.len());
    let mut total: u64 = 0;
    for raw in args {
        let Some(arg) = raw.to_str() else {
            return Err(Failure::Usage(format!(
                "bad argument {:?}: not valid UTF-8, so not a number",
                raw.to_string_lossy()
            )));
        };
        let n = parse_number(arg)
            .map_err(|why| Failure::Usage(format!("bad argument {arg:?}: {why}")))?;
        if n == u64::MAX {
            return Err(Failure::Usage(format!(
                "bad argument {arg:?}: {n} ({n:#x}) is refused by eventfd (write fails \
                 with EINVAL); the largest number it takes is {MAX_COUNTER} ({MAX_COUNTER:#x})"
            )));
        }
        total = match total.checked_add(n).filter(|&t| t <= MAX_COUNTER) {
            Some(t) => t,
            None => {
                return Err(Failure::Usage(format!(
                    "bad argument {arg:?}: adding {n} ({n:#x}) takes the total past the \
                     eventfd maximum {MAX_COUNTER} ({MAX_COUNTER:#x}), so the writer \
                     would block forever"
                )))
            }
        };
        numbers.push((n, arg.to_string()));
    }
    if total == 0 {
        return Err(Failure::Usage(
            "all numbers are 0: the counter would stay 0 and the reader would block forever"
                .to_string(),
        ));
    }
    Ok(numbers)
}

/// Reads an unsigned number like `strtoull(s, NULL, 0)`, but strictly: the
/// whole string must be the number (no spaces, no trailing text), a `-` sign
/// is refused and overflow is an error instead of `ULLONG_MAX`.
fn parse_number(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err("empty, not a number".to_string());
    }
    if let Some(rest) = s.strip_prefix('-') {
        return Err(if parse_unsigned(rest).is_ok() {
            "negative numbers are not allowed (the eventfd counter is unsigned)".to_string()
        } else {
            "not a number".to_string()
        });
    }
    parse_unsigned(s.strip_prefix('+').unwrap_or(s))
}

fn parse_unsigned(s: &str) -> Result<u64, String> {
    let (radix, digits, base) = if let Some(hex) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (16, hex, "a hexadecimal digit")
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..], "an octal digit (a leading 0 means octal)")
    } else {
        (10, s, "a decimal digit")
    };
    if digits.is_empty() {
        return Err(if radix == 16 {
            "not a number: no hexadecimal digits after 0x".to_string()
        } else {
            "not a number: no digits".to_string()
        });
    }
    let mut value: u64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            return Err(format!("not a number: {c:?} is not {base}"));
        };
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or_else(|| {
                format!(
                    "too large for an unsigned 64-bit number (the maximum is {})",
                    u64::MAX
                )
            })?;
    }
    Ok(value)
}

/// Round 1: a thread writes every number; the main thread joins it, then
/// reads the sum.
fn round_thread(numbers: &[(u64, String)], expected: u64) -> Result<(), Failure> {
    let efd = EventFd::new(0).map_err(os("creating an eventfd"))?;

    let written = std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .name("writer".to_string())
            .spawn_scoped(s, || -> io::Result<()> {
                for (n, arg) in numbers {
                    efd.write(*n)?;
                    println!(
                        "writer thread: wrote {}{} to eventfd",
                        n,
                        from_text(*n, arg)
                    );
                }
                Ok(())
            })
            .map_err(os("spawning the writer thread"))?;
        match writer.join() {
            Ok(r) => r.map_err(os("writer thread: writing to the eventfd")),
            Err(_) => Err(Failure::Check("the writer thread panicked".to_string())),
        }
    });
    written?;
    println!("main thread: joined the writer thread");

    let sum = efd.read().map_err(os("reading the eventfd"))?;
    report_sum("main thread", sum, expected)
}

/// Round 2: a forked child writes every number; the parent waits for it,
/// then reads the sum. Returns the eventfd (its counter now 0).
fn round_fork(numbers: &[(u64, String)], expected: u64) -> Result<EventFd, Failure> {
    let efd = EventFd::new(0).map_err(os("creating an eventfd"))?;

    // Everything the child needs is made here, before `fork`: between fork
    // and _exit the child may only use async-signal-safe functions (another
    // thread's lock, e.g. the allocator's, could be held forever in it).
    let steps: Vec<ChildStep> = numbers
        .iter()
        .map(|(n, arg)| ChildStep {
            bytes: n.to_ne_bytes(),
            done: format!(
                "child process: wrote {}{} to eventfd\n",
                n,
                from_text(*n, arg)
            )
            .into_bytes(),
            failed: format!("child process: writing {n} to the eventfd failed\n").into_bytes(),
        })
        .collect();
    // Nothing buffered may be left for the child to print twice.
    io::stdout().flush().map_err(os("flushing stdout"))?;

    // SAFETY: fork has no memory-safety preconditions of its own. The child
    // (pid 0) runs only `child_writes`, which calls only the async-signal-safe
    // write(2) and _exit(2) on memory made before the fork, allocates
    // nothing, takes no locks and never returns, so the state other threads
    // may have left behind (locks held, half-updated data) is never touched.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => return Err(Failure::Os("fork".to_string(), io::Error::last_os_error())),
        0 => child_writes(efd.as_raw_fd(), &steps),
        _ => {}
    }
    println!("parent process: forked child {pid}; waiting for it");

    let status = wait_for(pid).map_err(os("waitpid"))?;
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => println!("parent process: child {pid} exited with status 0"),
            code => {
                return Err(Failure::Check(format!(
                    "child {pid} exited with status {code}: its eventfd write failed"
                )))
            }
        }
    } else if libc::WIFSIGNALED(status) {
        return Err(Failure::Check(format!(
            "child {pid} was killed by signal {}",
            libc::WTERMSIG(status)
        )));
    } else {
        return Err(Failure::Check(format!(
            "child {pid} stopped with wait status {status:#x}"
        )));
    }

    let sum = efd.read().map_err(os("reading the eventfd"))?;
    report_sum("parent process", sum, expected)?;
    Ok(efd)
}

/// One number for the child to write, with its messages.
struct ChildStep {
    bytes: [u8; 8],
    done: Vec<u8>,
    failed: Vec<u8>,
}

/// The forked child: writes each number to the eventfd, then `_exit`s.
///
/// Only async-signal-safe work here: raw `write`, `_exit`, reading `errno`
/// and plain reads of memory prepared before the fork.
fn child_writes(fd: RawFd, steps: &[ChildStep]) -> ! {
    for step in steps {
        if raw_write(fd, &step.bytes) != step.bytes.len() as isize {
            write_all(libc::STDERR_FILENO, &step.failed);
            // SAFETY: _exit is async-signal-safe; it ends the child without
            // running destructors or atexit handlers that belong to the parent.
            unsafe { libc::_exit(1) }
        }
        // Output is best effort: a closed stdout must not fail the demo.
        write_all(libc::STDOUT_FILENO, &step.done);
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

/// write(2), retried on EINTR; returns its result.
fn raw_write(fd: RawFd, buf: &[u8]) -> isize {
    loop {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole
        // call; write(2) is async-signal-safe.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        // last_os_error only reads errno; it does not allocate.
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return n;
    }
}

/// Writes all of `buf`, giving up quietly on an error.
fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        let n = raw_write(fd, buf);
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// waitpid for one child, retried on EINTR; returns the wait status.
fn wait_for(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid, writable c_int for the whole call.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Round 3: with the counter at 0, a non-blocking read fails with EAGAIN.
fn round_nonblocking(efd: &EventFd) -> Result<(), Failure> {
    efd.set_nonblocking(true)
        .map_err(os("setting the eventfd non-blocking"))?;
    match efd.read() {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            println!(
                "non-blocking read of the zero counter: {:?} ({e})",
                e.kind()
            );
            println!("(a blocking read would have waited for the next write)");
            Ok(())
        }
        Err(e) => Err(Failure::Os(
            "non-blocking read of the eventfd".to_string(),
            e,
        )),
        Ok(n) => Err(Failure::Check(format!(
            "non-blocking read of a zero counter returned {n} instead of WouldBlock"
        ))),
    }
}

/// `" (from "0x10")"` when the argument was not written as plain decimal.
fn from_text(n: u64, arg: &str) -> String {
    if n.to_string() == arg {
        String::new()
    } else {
        format!(" (from {arg:?})")
    }
}

fn report_sum(who: &str, sum: u64, expected: u64) -> Result<(), Failure> {
    println!("{who}: read {sum} ({sum:#x}) from eventfd");
    if sum == expected {
        println!("{who}: that is the sum of all the numbers written, as expected");
        Ok(())
    } else {
        Err(Failure::Check(format!(
            "{who}: read {sum} ({sum:#x}) but the numbers add up to {expected} ({expected:#x})"
        )))
    }
}
