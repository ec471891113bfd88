//! Signals integration tests.
//!
//! `harness = false`: signal masks belong to threads, and the standard test
//! harness runs tests on threads it spawned before any test could block
//! anything. Here `main` blocks the signals first, while it is the only
//! thread, then runs each case in turn on that same thread.

mod util;

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fdloop::signal::{self, Signal, SignalInfo, Signals, UnblockedThreads};
use fdloop::{Action, EventLoop};

const LONG: Duration = Duration::from_secs(5);

/// Signals `main` blocks before anything else happens; every thread the
/// tests spawn inherits this mask.
fn main_signals() -> Vec<Signal> {
    vec![
        Signal::INT,
        Signal::TERM,
        Signal::HUP,
        Signal::USR1,
        Signal::USR2,
        rt(1),
        rt(2),
    ]
}

fn rt(n: u32) -> Signal {
    Signal::realtime(n).expect("realtime signal")
}

fn bit(s: Signal) -> u64 {
    1 << (s.as_raw() - 1)
}

fn getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// `kill(getpid(), sig)`: a process-directed signal.
fn kill_self(sig: Signal) {
    // SAFETY: kill has no memory-safety preconditions; the signal is
    // blocked in every thread, so it only becomes pending.
    let rc = unsafe { libc::kill(libc::getpid(), sig.as_raw()) };
    assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
}

/// Runs `ev` until `got` holds `n` records or five seconds pass.
fn run_until(ev: &mut EventLoop<Vec<SignalInfo>>, got: &mut Vec<SignalInfo>, n: usize) {
    let deadline = Instant::now() + LONG;
    while got.len() < n && Instant::now() < deadline {
        ev.run_once(got, Some(Duration::from_millis(100)))
            .expect("run_once");
    }
    assert!(got.len() >= n, "expected {n} records, got {got:?}");
}

fn collecting_loop(signals: Signals) -> EventLoop<Vec<SignalInfo>> {
    let mut ev = EventLoop::new().expect("EventLoop::new");
    ev.insert(signals, |info, _, got: &mut Vec<SignalInfo>| {
        got.push(info);
        Action::Continue
    })
    .expect("insert Signals");
    ev
}

// ---------------------------------------------------------------------------

/// `kill -USR1 <our pid>` run by a child shell reaches the loop callback,
/// naming the child as sender.
fn kill_from_child_names_sender() {
    let mut ev = collecting_loop(Signals::new(&[Signal::USR1]).unwrap());
    let mut child = Command::new("/bin/sh")
        .args(["-c", "kill -USR1 \"$0\""])
        .arg(std::process::id().to_string())
        .spawn()
        .expect("spawn sh");
    let child_pid = child.id();
    assert!(child.wait().unwrap().success());
    let mut got = Vec::new();
    run_until(&mut ev, &mut got, 1);
    let info = got[0];
    assert_eq!(info.signal, Signal::USR1);
    assert_eq!(info.pid, child_pid, "sender is the child shell");
    assert_eq!(info.uid, getuid());
    assert_eq!(info.code, libc::SI_USER);
    assert!(info.sent_by_process());
}

/// SIGINT by `raise` (to this thread) and SIGTERM by `kill(getpid())`.
fn int_and_term_from_self() {
    let mut ev = collecting_loop(Signals::new(&[Signal::INT, Signal::TERM]).unwrap());
    Signal::INT.raise().unwrap();
    kill_self(Signal::TERM);
    let mut got = Vec::new();
    run_until(&mut ev, &mut got, 2);
    let mut sigs: Vec<Signal> = got.iter().map(|i| i.signal).collect();
    sigs.sort();
    assert_eq!(sigs, [Signal::INT, Signal::TERM]);
    for i in &got {
        assert_eq!(i.pid, std::process::id());
        assert_eq!(i.uid, getuid());
    }
    let int = got.iter().find(|i| i.signal == Signal::INT).unwrap();
    assert_eq!(int.code, libc::SI_TKILL);
}

/// `add` and `remove`, from outside and from inside the callback.
fn add_and_remove() {
    let mut s = Signals::new(&[Signal::USR1]).unwrap();
    s.add(Signal::USR2).unwrap();
    s.add(Signal::USR2).unwrap(); // no-op
    assert_eq!(s.signals(), [Signal::USR1, Signal::USR2]);
    Signal::USR2.raise().unwrap();
    assert_eq!(s.wait(Some(LONG)).unwrap().unwrap().signal, Signal::USR2);

    s.remove(Signal::USR2).unwrap();
    s.remove(Signal::USR2).unwrap(); // no-op
    assert_eq!(s.signals(), [Signal::USR1]);
    // Still blocked by main, so it stays pending, but this signalfd no
    // longer reads it.
    Signal::USR2.raise().unwrap();
    assert_eq!(s.try_read().unwrap(), None);
    let other = Signals::new(&[Signal::USR2]).unwrap();
    assert_eq!(other.try_read().unwrap().unwrap().signal, Signal::USR2);

    // From the callback: on USR1, watch HUP; on HUP, stop watching USR1.
    let mut ev: EventLoop<Vec<SignalInfo>> = EventLoop::new().unwrap();
    ev.insert(s, |info, signals, got: &mut Vec<SignalInfo>| {
        got.push(info);
        if info.signal == Signal::USR1 {
            signals.add(Signal::HUP).unwrap();
        } else {
            signals.remove(Signal::USR1).unwrap();
        }
        Action::Continue
    })
    .unwrap();
    let mut got = Vec::new();
    Signal::USR1.raise().unwrap();
    run_until(&mut ev, &mut got, 1);
    Signal::HUP.raise().unwrap();
    run_until(&mut ev, &mut got, 2);
    Signal::USR1.raise().unwrap();
    ev.run_once(&mut got, Some(Duration::from_millis(50)))
        .unwrap();
    let sigs: Vec<Signal> = got.iter().map(|i| i.signal).collect();
    assert_eq!(sigs, [Signal::USR1, Signal::HUP]);
    // Clean up the USR1 left pending for this thread.
    let cleanup = Signals::new(&[Signal::USR1]).unwrap();
    assert_eq!(cleanup.read_all().unwrap().len(), 1);
}

/// A thread spawned before the signal was blocked would steal it: the loop
/// refuses the source and names the thread; with the opt-out it inserts.
fn thread_check_names_early_thread() {
    // SIGWINCH is not blocked by main (and is ignored by default, so a
    // stolen one does no harm).
    let sig = Signal::WINCH;
    assert!(!signal::is_blocked(sig).unwrap());
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let early = thread::Builder::new()
        .name("early-thread".into())
        .spawn(move || {
            tid_tx.send(util::gettid()).unwrap();
            done_rx.recv().ok();
        })
        .unwrap();
    let early_tid = tid_rx.recv().unwrap();

    let mask = signal::block(&[sig]).unwrap(); // too late for `early`
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let err = ev
        .insert(Signals::new(&[sig]).unwrap(), |_, _, _| Action::Continue)
        .unwrap_err();
    let found = UnblockedThreads::find(&err).expect("UnblockedThreads inside the loop's error");
    assert_eq!(found.threads().len(), 1, "{err}");
    let t = &found.threads()[0];
    assert_eq!((t.tid, t.name.as_str()), (early_tid, "early-thread"));
    assert_eq!(t.signals, [sig]);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("thread {early_tid} \"early-thread\" (SIGWINCH)")),
        "{msg}"
    );
    // The same from the explicit check, and as an io::Error.
    let s = Signals::new(&[sig]).unwrap();
    let io_err = s.check_threads().unwrap_err();
    assert_eq!(io_err.kind(), io::ErrorKind::Other);
    assert_eq!(UnblockedThreads::find(&io_err), Some(found));

    // Opt-out: inserts.
    ev.insert(s.allow_unblocked_threads(true), |_, _, _| Action::Continue)
        .unwrap();

    // Once the early thread is gone, the check passes.
    done_tx.send(()).unwrap();
    early.join().unwrap();
    let s = Signals::new(&[sig]).unwrap();
    s.check_threads().unwrap();
    ev.insert(s, |_, _, _| Action::Continue).unwrap();
    drop(ev);
    drop(mask);
}

/// Threads spawned after `block` inherit the mask and pass the check.
fn threads_spawned_after_block_pass() {
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut stops = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let ready_tx = ready_tx.clone();
        workers.push(thread::spawn(move || {
            ready_tx.send(util::own_sigblk()).unwrap();
            stop_rx.recv().ok();
        }));
        stops.push(stop_tx);
    }
    for _ in 0..3 {
        let blk = ready_rx.recv().unwrap();
        for s in main_signals() {
            assert_ne!(blk & bit(s), 0, "{s} not inherited");
        }
    }
    Signals::new(&main_signals())
        .unwrap()
        .check_threads()
        .unwrap();
    drop(stops);
    for w in workers {
        w.join().unwrap();
    }
}

/// `Signals` and the `block` guard put back exactly what they changed.
fn masks_restored_on_drop() {
    let sig = Signal::URG; // not blocked by main
    assert!(!signal::is_blocked(sig).unwrap());
    let s = Signals::new(&[sig, Signal::USR1]).unwrap();
    assert!(signal::is_blocked(sig).unwrap());
    assert_ne!(util::own_sigblk() & bit(sig), 0);
    drop(s);
    assert!(!signal::is_blocked(sig).unwrap());
    assert_eq!(util::own_sigblk() & bit(sig), 0);
    // USR1 was blocked by main before: still blocked.
    assert!(signal::is_blocked(Signal::USR1).unwrap());

    let before = util::own_sigblk();
    let outer = signal::block(&[sig]).unwrap();
    let inner = signal::block(&[sig, Signal::USR1]).unwrap();
    assert!(inner.newly_blocked().is_empty());
    drop(inner);
    assert!(signal::is_blocked(sig).unwrap());
    drop(outer);
    assert_eq!(util::own_sigblk(), before);

    // `add` records what it blocked, too.
    let mut s = Signals::new(&[]).unwrap();
    s.add(sig).unwrap();
    assert!(signal::is_blocked(sig).unwrap());
    drop(s);
    assert_eq!(util::own_sigblk(), before);

    assert_eq!(
        signal::block(&[Signal::KILL]).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        Signals::new(&[Signal::STOP]).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(util::own_sigblk(), before);
}

/// Children inherit the blocked mask, `std::process::Command` ones too
/// (std stopped resetting it in rust-lang/rust#101077);
/// `signal::unblock_in_child` gives them a clean one.
fn children_inherit_mask_unless_unblocked() {
    let _s = Signals::new(&[Signal::WINCH]).unwrap();
    let ours: Vec<Signal> = main_signals().into_iter().chain([Signal::WINCH]).collect();
    let parent = util::own_sigblk();
    for &s in &ours {
        assert_ne!(parent & bit(s), 0, "{s} blocked in the parent");
    }
    let plain = util::child_sigblk(|_| {});
    for &s in &ours {
        assert_ne!(
            plain & bit(s),
            0,
            "{s} not inherited by a plain Command child (SigBlk {plain:016x}): \
             did std start resetting the mask again? Update the signal module docs."
        );
    }
    let clean = util::child_sigblk(|cmd| {
        signal::unblock_in_child(cmd, &ours).unwrap();
    });
    for &s in &ours {
        assert_eq!(
            clean & bit(s),
            0,
            "{s} still blocked in the child (SigBlk {clean:016x})"
        );
    }
    // The parent's own mask is untouched by the hook.
    assert_eq!(util::own_sigblk(), parent);
}

/// A standard signal sent twice before it is read is one record; realtime
/// signals queue, each with its `sigqueue` value.
fn standard_coalesces_realtime_queues() {
    let s = Signals::new(&[Signal::USR2, rt(1)]).unwrap();
    kill_self(Signal::USR2);
    kill_self(Signal::USR2);
    for v in [7usize, 8] {
        let val = libc::sigval {
            sival_ptr: v as *mut libc::c_void,
        };
        // SAFETY: sigqueue to ourselves with a plain integer payload; the
        // signal is blocked in every thread.
        let rc = unsafe { libc::sigqueue(libc::getpid(), rt(1).as_raw(), val) };
        assert_eq!(rc, 0, "sigqueue: {}", io::Error::last_os_error());
    }
    let got = s.read_all().unwrap();
    let usr2 = got.iter().filter(|i| i.signal == Signal::USR2).count();
    let rts: Vec<&SignalInfo> = got.iter().filter(|i| i.signal == rt(1)).collect();
    assert_eq!(usr2, 1, "{got:?}");
    assert_eq!(rts.len(), 2, "{got:?}");
    assert_eq!(rts.iter().map(|i| i.value_ptr).collect::<Vec<_>>(), [7, 8]);
    assert!(rts
        .iter()
        .all(|i| i.code == libc::SI_QUEUE && i.sent_by_process()));
    assert_eq!(s.try_read().unwrap(), None);
}

/// More pending records than one wake's batch: all arrive, over several
/// iterations.
fn batches_of_many_records() {
    let mut ev = collecting_loop(Signals::new(&[rt(2)]).unwrap());
    for _ in 0..50 {
        kill_self(rt(2));
    }
    let mut got = Vec::new();
    let n = ev.run_once(&mut got, Some(LONG)).unwrap();
    assert!(n >= 1);
    assert!(got.len() <= 32, "one wake delivers at most a batch");
    run_until(&mut ev, &mut got, 50);
    assert_eq!(got.len(), 50);
}

/// SIGCHLD carries the child's pid and exit status.
fn sigchld_reports_child() {
    let s = Signals::new(&[Signal::CHLD]).unwrap();
    s.read_all().unwrap(); // a stale SIGCHLD would merge with ours
    let mut child = Command::new("/bin/sh")
        .args(["-c", "exit 3"])
        .spawn()
        .unwrap();
    let info = s.wait(Some(LONG)).unwrap().expect("SIGCHLD");
    assert_eq!(info.signal, Signal::CHLD);
    assert_eq!(info.pid, child.id());
    assert_eq!(info.code, libc::CLD_EXITED);
    assert_eq!(info.status, 3);
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

/// Without a loop: `wait` times out, then returns a record; `read` blocks
/// until one comes from another thread.
fn standalone_reads() {
    let s = Signals::new(&[Signal::HUP]).unwrap();
    let start = Instant::now();
    assert_eq!(s.wait(Some(Duration::from_millis(30))).unwrap(), None);
    assert!(start.elapsed() >= Duration::from_millis(30));
    let sender = thread::spawn(|| {
        thread::sleep(Duration::from_millis(30));
        kill_self(Signal::HUP);
    });
    assert_eq!(s.read().unwrap().signal, Signal::HUP);
    sender.join().unwrap();
}

/// In a fork child the signalfd is refused (readiness would never come).
fn fork_child_refuses_signalfd() {
    let s = Signals::new(&[Signal::USR1]).unwrap();
    // SAFETY: this process is single-threaded here (every test joins its
    // threads), and the child only calls async-signal-safe functions plus
    // fdloop's checks, then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let ok = matches!(s.try_read(), Err(e) if e.kind() == io::ErrorKind::Unsupported)
            && matches!(s.wait(Some(Duration::ZERO)), Err(e) if e.kind() == io::ErrorKind::Unsupported);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child created above.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(s.try_read().unwrap(), None, "parent still fine");
}

// ---------------------------------------------------------------------------

/// Name filters (substrings, like libtest's) and whether `--list` was
/// asked; other libtest options, and the values of those that take one,
/// are accepted and ignored.
fn parse_args() -> (Vec<String>, bool) {
    const WITH_VALUE: [&str; 5] = [
        "--test-threads",
        "--skip",
        "--color",
        "--format",
        "--logfile",
    ];
    let mut filter = Vec::new();
    let mut list = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--list" {
            list = true;
        } else if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            filter.push(a);
        }
    }
    (filter, list)
}

/// A panicking callback uses up its signal only: the others stay pending
/// in the kernel and arrive on the next call.
fn a_panicking_callback_loses_no_other_signal() {
    let mut ev: EventLoop<Vec<SignalInfo>> = EventLoop::new().unwrap();
    ev.insert(
        Signals::new(&[Signal::USR1, Signal::USR2]).unwrap(),
        |info, _, got: &mut Vec<SignalInfo>| {
            got.push(info);
            if got.len() == 1 {
                panic!("first signal");
            }
            Action::Continue
        },
    )
    .unwrap();
    kill_self(Signal::USR1);
    kill_self(Signal::USR2);
    let mut got = Vec::new();
    let r = panic::catch_unwind(AssertUnwindSafe(|| ev.run_once(&mut got, Some(LONG))));
    assert!(r.is_err(), "the panic propagates");
    assert_eq!(got.len(), 1);
    run_until(&mut ev, &mut got, 2);
    let mut sigs: Vec<Signal> = got.iter().map(|i| i.signal).collect();
    sigs.sort();
    assert_eq!(sigs, [Signal::USR1, Signal::USR2]);
    assert_eq!(ev.len(), 1, "the source stays");
}

fn main() {
    // First, while this is the only thread: block what the tests watch.
    signal::block(&main_signals())
        .expect("block signals in main")
        .keep();
    let threads = std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count());
    assert_eq!(
        threads, 1,
        "main must block signals before any thread exists"
    );

    let cases: &[(&str, fn())] = &[
        ("kill_from_child_names_sender", kill_from_child_names_sender),
        ("int_and_term_from_self", int_and_term_from_self),
        ("add_and_remove", add_and_remove),
        (
            "thread_check_names_early_thread",
            thread_check_names_early_thread,
        ),
        (
            "threads_spawned_after_block_pass",
            threads_spawned_after_block_pass,
        ),
        ("masks_restored_on_drop", masks_restored_on_drop),
        (
            "children_inherit_mask_unless_unblocked",
            children_inherit_mask_unless_unblocked,
        ),
        (
            "standard_coalesces_realtime_queues",
            standard_coalesces_realtime_queues,
        ),
        ("batches_of_many_records", batches_of_many_records),
        ("sigchld_reports_child", sigchld_reports_child),
        ("standalone_reads", standalone_reads),
        ("fork_child_refuses_signalfd", fork_child_refuses_signalfd),
        (
            "a_panicking_callback_loses_no_other_signal",
            a_panicking_callback_loses_no_other_signal,
        ),
    ];
    let (filter, list) = parse_args();
    if list {
        for (name, _) in cases {
            println!("{name}: test");
        }
        return;
    }
    println!("\nrunning {} tests", cases.len());
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    for (name, case) in cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            filtered += 1;
            continue;
        }
        match panic::catch_unwind(AssertUnwindSafe(case)) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    if filtered != 0 {
        println!("({filtered} filtered out)");
    }
    println!("\ntest result: {verdict}. {passed} passed; {failed} failed\n");
    if failed != 0 {
        std::process::exit(101);
    }
}
