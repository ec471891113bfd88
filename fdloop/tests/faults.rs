//! Injected faults: every syscall with a fallback refused (seccomp, ENOSYS
//! and EPERM), out of descriptors (EMFILE), an EINTR storm, a saturated
//! eventfd counter, fork, and close-on-exec of every descriptor fdloop
//! makes. Faults that change the whole process (seccomp, rlimits, fork) run
//! in a child process: this test binary re-run on `scenario_child`.

mod util;

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use fdloop::channel::{self, Event};
use fdloop::process::Child;
use fdloop::signal::{self, Signal, Signals};
use fdloop::watch::{Watch, WatchMask};
use fdloop::{
    Action, Backend, Clock, Error, EventFd, EventLoop, Notifier, Ping, TimeoutPrecision, Timer,
    TimerEvent, FORCE_PIPE_ENV, FORCE_TIMEOUT_ENV, MAX_COUNTER,
};

// ---------------------------------------------------------------------------
// The child side.

/// Plays the scenario named by `util::SCENARIO_ENV` when this binary was
/// re-run as a child; a no-op in the normal test run.
#[test]
fn scenario_child() {
    let Some(s) = util::scenario() else { return };
    if let Some((call, errno)) = s.split_once(':') {
        let errno = match errno {
            "ENOSYS" => libc::ENOSYS,
            "EPERM" => libc::EPERM,
            other => panic!("unknown errno {other}"),
        };
        let rules: Vec<(libc::c_long, i32)> =
            call.split('+').map(|c| (syscall_nr(c), errno)).collect();
        util::seccomp_fail_syscalls(&rules);
        match call {
            "eventfd2" => child_no_eventfd(),
            "timerfd_create" | "epoll_pwait2" | "epoll_pwait2+timerfd_create" => child_timeouts(),
            "signalfd4" => child_no_signalfd(),
            "pidfd_open" => child_no_pidfd(),
            "inotify_init1" => child_no_inotify(),
            other => panic!("no checks for {other}"),
        }
        return;
    }
    match s.as_str() {
        "emfile" => child_emfile(),
        "emfile_pause" => child_emfile_pause(),
        "fork" => child_fork(),
        "cloexec" => child_cloexec(),
        other => panic!("unknown scenario {other}"),
    }
}

fn syscall_nr(name: &str) -> libc::c_long {
    match name {
        "eventfd2" => libc::SYS_eventfd2,
        "timerfd_create" => libc::SYS_timerfd_create,
        "signalfd4" => libc::SYS_signalfd4,
        "pidfd_open" => libc::SYS_pidfd_open,
        "epoll_pwait2" => libc::SYS_epoll_pwait2,
        "inotify_init1" => libc::SYS_inotify_init1,
        other => panic!("unknown syscall {other}"),
    }
}

#[derive(Default)]
struct Flow {
    msgs: [u64; 2],
    closed: u32,
    pings: u32,
    timers: Vec<(Instant, Instant)>, // (deadline, fired)
    ticks: u64,
}

/// Drives one loop end to end: two channels (unbounded and bounded) fed
/// from another thread, a ping from that thread, three one-shot timers and
/// a periodic one. Asserts exact counts and order, timers never early;
/// prints `flow=ok` and the loop's timeout precision.
fn exercise_loop() {
    const N: u64 = 2000;
    let mut ev: EventLoop<Flow> = EventLoop::new().unwrap();
    let (utx, urx) = channel::unbounded::<u64>().unwrap();
    let (btx, brx) = channel::bounded::<u64>(4).unwrap();
    for (k, rx) in [urx, brx].into_iter().enumerate() {
        ev.insert(rx, move |e, _, f: &mut Flow| {
            match e {
                Event::Msg(m) => {
                    assert_eq!(m, f.msgs[k], "channel {k} out of order");
                    f.msgs[k] += 1;
                }
                Event::Closed => f.closed += 1,
            }
            Action::Continue
        })
        .unwrap();
    }
    let (ph, ping) = Ping::new().unwrap();
    ev.insert(ping, |(), _, f: &mut Flow| {
        f.pings += 1;
        Action::Continue
    })
    .unwrap();
    for ms in [3u64, 1, 2] {
        let deadline = Instant::now() + Duration::from_millis(ms);
        ev.insert(Timer::at(deadline), move |_, _, f: &mut Flow| {
            f.timers.push((deadline, Instant::now()));
            Action::Continue
        })
        .unwrap();
    }
    ev.insert(
        Timer::every(Duration::from_millis(1)),
        |e: TimerEvent, _, f: &mut Flow| {
            f.ticks += e.expirations;
            if f.ticks >= 5 {
                Action::Remove
            } else {
                Action::Continue
            }
        },
    )
    .unwrap();
    let producer = thread::spawn(move || {
        for i in 0..N {
            utx.send(i).unwrap();
            btx.send(i).unwrap();
        }
        ph.ping().unwrap();
    });
    let mut f = Flow::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.closed < 2 || f.pings == 0 || f.timers.len() < 3 || f.ticks < 5 {
        assert!(Instant::now() < deadline, "loop stalled");
        ev.run_once(&mut f, Some(Duration::from_millis(50)))
            .unwrap();
    }
    producer.join().unwrap();
    assert_eq!(f.msgs, [N, N]);
    assert_eq!(f.pings, 1);
    for (want, got) in &f.timers {
        assert!(got >= want, "timer fired early");
    }
    let order: Vec<_> = f.timers.iter().map(|t| t.0).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "timers fired out of deadline order");
    // A sub-millisecond timeout is honoured, never early.
    let mut idle: EventLoop<()> = EventLoop::new().unwrap();
    let _epoll = util::stay_in_epoll(&idle);
    for us in [300u64, 50, 900] {
        let t0 = Instant::now();
        idle.run_once(&mut (), Some(Duration::from_micros(us)))
            .unwrap();
        assert!(t0.elapsed() >= Duration::from_micros(us), "early timeout");
    }
    println!("precision={:?}", idle.timeout_precision());
    println!("flow=ok");
}

fn child_no_eventfd() {
    let n = Notifier::new().unwrap();
    println!("backend={:?}", n.backend());
    // Every notifier inside the loop and the channels took the same road.
    exercise_loop();
}

fn child_timeouts() {
    exercise_loop();
}

fn child_no_signalfd() {
    let before = signal::is_blocked(Signal::USR2).unwrap();
    let e = Signals::new(&[Signal::USR2]).unwrap_err();
    println!("errno={:?}", e.raw_os_error());
    println!("message={e}");
    println!(
        "mask_restored={}",
        signal::is_blocked(Signal::USR2).unwrap() == before
    );
    exercise_loop();
}

fn child_no_inotify() {
    let e = Watch::new().unwrap_err();
    println!("errno={:?}", e.raw_os_error());
    println!("message={e}");
    exercise_loop();
}

fn child_no_pidfd() {
    let procs: Vec<_> = (0..3)
        .map(|i| {
            Command::new("/bin/sh")
                .args(["-c", &format!("exit {}", 20 + i)])
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ev: EventLoop<BTreeMap<u32, i32>> = EventLoop::new().unwrap();
    for p in &procs {
        let c = Child::new(p).unwrap();
        println!("backend={:?}", c.backend());
        let pid = p.id();
        ev.insert(c, move |exit, _, got: &mut BTreeMap<u32, i32>| {
            got.insert(pid, exit.code().unwrap_or(-1));
            Action::Continue
        })
        .unwrap();
    }
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 3 {
        assert!(Instant::now() < deadline, "children not reported");
        ev.run_once(&mut got, Some(Duration::from_millis(100)))
            .unwrap();
    }
    let codes: Vec<i32> = procs.iter().map(|p| got[&p.id()]).collect();
    println!("codes={codes:?}");
    exercise_loop();
}

// --- EMFILE ----------------------------------------------------------------

type Outcome = Result<(), (Option<i32>, String)>;

fn io_res<T>(r: io::Result<T>) -> Outcome {
    r.map(drop).map_err(|e| (e.raw_os_error(), e.to_string()))
}

fn loop_res<T>(r: fdloop::Result<T>) -> Outcome {
    r.map(drop).map_err(|e| (e.raw_os_error(), e.to_string()))
}

/// Creates one of each source kind (dropping it at once) and reports how
/// each attempt went.
fn attempts(
    ev: &mut EventLoop<u64>,
    pid: u32,
    dir: &std::path::Path,
) -> Vec<(&'static str, Outcome)> {
    let mut out: Vec<(&'static str, Outcome)> = vec![
        ("Notifier::new", io_res(Notifier::new())),
        ("EventFd::new", io_res(EventFd::new(0))),
        ("EventLoop::new", loop_res(EventLoop::<()>::new())),
        ("channel::unbounded", io_res(channel::unbounded::<u8>())),
        ("channel::bounded", io_res(channel::bounded::<u8>(4))),
        ("Ping::new", io_res(Ping::new())),
    ];
    let blocked = signal::is_blocked(Signal::USR2).unwrap();
    out.push(("Signals::new", io_res(Signals::new(&[Signal::USR2]))));
    assert_eq!(
        signal::is_blocked(Signal::USR2).unwrap(),
        blocked,
        "a failed Signals::new left the mask changed"
    );
    out.push((
        "Watch::new+add",
        io_res(Watch::new().and_then(|mut w| w.add(dir, WatchMask::CREATE).map(|_| w))),
    ));
    out.push(("Child::from_pid", io_res(Child::from_pid(pid))));
    // A fresh loop whose first timer needs a timerfd.
    let fresh = EventLoop::<()>::new().map_err(|e| (e.raw_os_error(), e.to_string()));
    out.push((
        "EventLoop::new+insert(Timer)",
        fresh.and_then(|mut l| {
            loop_res(
                l.insert(
                    Timer::after(Duration::from_secs(3600)).clock(Clock::Boottime),
                    |_, _, _| Action::Continue,
                )
                .map_err(Error::from),
            )
        }),
    ));
    // A fresh loop whose first call at a deadline needs the monotonic
    // timerfd: without it, the call must still run (on the epoll timeout).
    let fresh = EventLoop::<bool>::new().map_err(|e| (e.raw_os_error(), e.to_string()));
    out.push((
        "EventLoop::new+call_after (runs)",
        fresh.and_then(|mut l| {
            loop_res(
                l.handle()
                    .call_after(Duration::from_micros(200), |ran| *ran = true),
            )?;
            let (start, mut ran) = (Instant::now(), false);
            while !ran && start.elapsed() < Duration::from_secs(5) {
                loop_res(l.run_once(&mut ran, Some(Duration::from_millis(100))))?;
            }
            if ran {
                Ok(())
            } else {
                Err((None, "the call never ran".to_string()))
            }
        }),
    ));
    // A new ping into the loop that is already running.
    out.push((
        "loop.insert(Ping)",
        Ping::new()
            .map_err(|e| (e.raw_os_error(), e.to_string()))
            .and_then(|(_h, p)| {
                let id = ev
                    .insert(p, |(), _, _| Action::Continue)
                    .map_err(|e| (e.error.raw_os_error(), e.to_string()))?;
                ev.remove(id).map_err(|e| (e.raw_os_error(), e.to_string()))
            }),
    ));
    out
}

fn child_emfile() {
    // A working loop with sources, set up before descriptors run out.
    let mut ev: EventLoop<u64> = EventLoop::new().unwrap();
    let (tx, rx) = channel::unbounded::<u64>().unwrap();
    ev.insert(rx, |e, _, n: &mut u64| {
        if let Event::Msg(_) = e {
            *n += 1;
        }
        Action::Continue
    })
    .unwrap();
    let (ph, ping) = Ping::new().unwrap();
    ev.insert(ping, |(), _, n: &mut u64| {
        *n += 1_000_000;
        Action::Continue
    })
    .unwrap();
    ev.insert(
        Timer::after(Duration::from_micros(100)),
        |_, _, n: &mut u64| {
            *n += 1_000_000_000;
            Action::Continue
        },
    )
    .unwrap();
    let mut n = 0;
    while n < 1_000_000_000 {
        ev.run_once(&mut n, Some(Duration::from_millis(100)))
            .unwrap();
    }
    let dir = util::TempDir::new("faults-emfile");
    let mut proc = spawn_sleeper();
    let baseline = util::open_fds();
    let mut errors = 0;
    let mut first_ok: BTreeMap<&str, usize> = BTreeMap::new();
    for headroom in 0..=8usize {
        // Exactly `headroom` free descriptor numbers below the limit (the
        // process may hold inherited descriptors with high numbers).
        let taken: HashSet<i32> = baseline.iter().map(|f| f.0).collect();
        let limit = (0..).filter(|n| !taken.contains(n)).nth(headroom).unwrap();
        let old = util::set_soft_nofile_limit(limit as u64);
        let results = attempts(&mut ev, proc.id(), dir.path());
        util::set_soft_nofile_limit(old);
        for (what, r) in results {
            match r {
                Ok(()) => {
                    first_ok.entry(what).or_insert(headroom);
                }
                Err((errno, msg)) => {
                    assert_eq!(
                        errno,
                        Some(libc::EMFILE),
                        "{what} at headroom {headroom}: {msg}"
                    );
                    assert!(
                        !first_ok.contains_key(what),
                        "{what} failed at {headroom} after succeeding with less"
                    );
                    errors += 1;
                }
            }
        }
        assert_eq!(
            util::open_fds(),
            baseline,
            "descriptors leaked at headroom {headroom}"
        );
    }
    // Every kind failed with no room and worked with enough.
    assert_eq!(first_ok.len(), 12, "{first_ok:?}");
    assert!(first_ok.values().all(|&h| h > 0), "{first_ok:?}");
    println!("emfile_errors={errors}");
    println!("first_ok={first_ok:?}");
    // The loop kept working with the sources it had.
    let mut n = 0;
    for i in 0..100 {
        tx.send(i).unwrap();
    }
    ph.ping().unwrap();
    ev.insert(
        Timer::after(Duration::from_micros(100)),
        |_, _, n: &mut u64| {
            *n += 1_000_000_000;
            Action::Continue
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while n != 1_001_000_100 {
        assert!(Instant::now() < deadline, "loop stalled at {n}");
        ev.run_once(&mut n, Some(Duration::from_millis(100)))
            .unwrap();
    }
    proc.kill().unwrap();
    proc.wait().unwrap();
    println!("loop_after=ok");
}

/// With no descriptor left at all, the loop still pauses a source for a
/// while (`disable_for`), inserts timers on the clock it already uses and
/// on a clock it has never used (the epoll timeout serves), runs a call at
/// a deadline (`call_after`), and keeps
/// sub-millisecond run_once timeouts: none of it needs a new descriptor.
fn child_emfile_pause() {
    let mut ev: EventLoop<Vec<&'static str>> = EventLoop::new().unwrap();
    // The loop has its monotonic timerfd (a first timer made it).
    ev.insert(
        Timer::after(Duration::from_micros(10)),
        |_, _, log: &mut Vec<&'static str>| {
            log.push("warm");
            Action::Continue
        },
    )
    .unwrap();
    let (ph, ping) = Ping::new().unwrap();
    let pid = ev
        .insert(ping, |(), _, log: &mut Vec<&'static str>| {
            log.push("ping");
            Action::Continue
        })
        .unwrap();
    let mut log = Vec::new();
    while log.is_empty() {
        ev.run_once(&mut log, Some(Duration::from_millis(100)))
            .unwrap();
    }
    let baseline = util::open_fds();
    // No free descriptor number below the limit.
    let taken: HashSet<i32> = baseline.iter().map(|f| f.0).collect();
    let limit = (0..).find(|n| !taken.contains(n)).unwrap();
    let old = util::set_soft_nofile_limit(limit as u64);
    assert_eq!(
        Ping::new().unwrap_err().raw_os_error(),
        Some(libc::EMFILE),
        "descriptors are exhausted"
    );
    // Pause the ping for 30 ms, and ping it at once: nothing until then.
    let start = Instant::now();
    ev.handle()
        .disable_for(pid, Duration::from_millis(30))
        .unwrap();
    ph.ping().unwrap();
    ev.insert(
        Timer::after(Duration::from_millis(5)),
        |_, _, log: &mut Vec<&'static str>| {
            log.push("mono");
            Action::Continue
        },
    )
    .unwrap();
    ev.insert(
        Timer::after(Duration::from_millis(10)).clock(Clock::Boottime),
        |_, _, log: &mut Vec<&'static str>| {
            log.push("boot");
            Action::Continue
        },
    )
    .unwrap();
    ev.handle()
        .call_after(Duration::from_millis(7), |log: &mut Vec<&'static str>| {
            log.push("call")
        })
        .unwrap();
    log.clear();
    let mut ping_at = None;
    while ping_at.is_none() {
        assert!(start.elapsed() < Duration::from_secs(5), "stalled: {log:?}");
        let t = Instant::now();
        ev.run_once(&mut log, Some(Duration::from_micros(300)))
            .unwrap();
        assert!(t.elapsed() >= Duration::from_micros(300) || !log.is_empty() || ev.len() < 3);
        if log.contains(&"ping") {
            ping_at = Some(start.elapsed());
        }
    }
    let ping_at = ping_at.unwrap();
    util::set_soft_nofile_limit(old);
    assert_eq!(util::open_fds(), baseline, "a descriptor was created");
    assert_eq!(log, ["mono", "call", "boot", "ping"], "order of events");
    assert!(
        ping_at >= Duration::from_millis(30),
        "resumed early: {ping_at:?}"
    );
    println!("paused_for={ping_at:?}");
    println!("emfile_pause=ok");
}

/// A child that lives long enough; its output does not hold the
/// scenario's pipes open should the scenario fail before killing it.
fn spawn_sleeper() -> std::process::Child {
    Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

// --- fork ----------------------------------------------------------------------

fn child_fork() {
    let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
    let (_tx, rx) = channel::unbounded::<u8>().unwrap();
    ev.insert(rx, |_, _, _| Action::Continue).unwrap();
    ev.insert(Timer::after(Duration::from_secs(3600)), |_, _, _| {
        Action::Continue
    })
    .unwrap();
    ev.dispatch_pending(&mut 0).unwrap();
    let signals = Signals::new(&[Signal::USR2]).unwrap();
    let id = ev.handle().defer(|n| *n += 1).unwrap();
    let (_h, spare_ping) = Ping::new().unwrap();
    let mut spare = Some(spare_ping);
    // SAFETY: this scenario process runs one test; the other thread (the
    // harness's) waits on a channel and holds no lock the child needs.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let forked = |r: fdloop::Result<()>| matches!(r, Err(Error::Forked));
        let mut fails = 0u32;
        let checks = [
            forked(ev.run_once(&mut 0, Some(Duration::ZERO)).map(drop)),
            forked(ev.dispatch_pending(&mut 0).map(drop)),
            forked(ev.run(&mut 0)),
            forked(
                ev.insert(spare.take().unwrap(), |(), _, _| Action::Continue)
                    .map(drop)
                    .map_err(Error::from),
            ),
            forked(ev.remove(id)),
            forked(ev.disable(id)),
            forked(ev.enable(id)),
            forked(ev.handle().defer(|_| {}).map(drop)),
            forked(ev.handle().insert_idle(|_| Action::Continue).map(drop)),
            signals.try_read().is_err(),
        ];
        for (i, ok) in checks.iter().enumerate() {
            if !ok {
                fails |= 1 << i;
            }
        }
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(fails as i32) };
    }
    let mut status = 0;
    // SAFETY: our own child; a valid status pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: {status:#x}");
    println!("child_failed_checks={:#b}", libc::WEXITSTATUS(status));
    // The parent's loop is untouched: the deferred call still runs.
    let mut n = 0;
    assert_eq!(ev.dispatch_pending(&mut n).unwrap(), 1);
    println!("parent_after={n}");
}

// --- close-on-exec ---------------------------------------------------------------

fn child_cloexec() {
    let dir = util::TempDir::new("faults-cloexec");
    let sleeper = spawn_sleeper();
    let sleeper2 = spawn_sleeper();
    let before: HashSet<(i32, String)> = util::open_fds().into_iter().collect();

    let notifiers = [Backend::EventFd, Backend::Pipe2, Backend::PipeFcntl]
        .map(|b| Notifier::with_backend(b).unwrap());
    let efd = EventFd::new(0).unwrap();
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let _epoll = util::stay_in_epoll(&ev);
    // FDLOOP_FORCE_TIMEOUT=timerfd (set by the parent): the waiter's timerfd.
    ev.run_once(&mut (), Some(Duration::from_micros(100)))
        .unwrap();
    assert_eq!(ev.timeout_precision(), TimeoutPrecision::TimerFd);
    for clock in [Clock::Monotonic, Clock::Boottime, Clock::Realtime] {
        ev.insert(
            Timer::after(Duration::from_secs(3600)).clock(clock),
            |_, _, _| Action::Continue,
        )
        .unwrap();
    }
    ev.dispatch_pending(&mut ()).unwrap();
    let chans = (
        channel::unbounded::<u8>().unwrap(),
        channel::bounded::<u8>(1).unwrap(),
    );
    let (_ph, ping) = Ping::new().unwrap();
    ev.insert(ping, |(), _, _| Action::Continue).unwrap();
    let signals = Signals::new(&[Signal::USR2]).unwrap();
    let child_pidfd =
        Child::with_backend(sleeper.id(), fdloop::process::ChildBackend::PidFd).unwrap();
    let child_sigchld =
        Child::with_backend(sleeper2.id(), fdloop::process::ChildBackend::Sigchld).unwrap();
    let mut watch = Watch::new().unwrap();
    watch.add(dir.path(), WatchMask::CREATE).unwrap();

    let ours: Vec<(i32, String)> = util::open_fds()
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    let kinds: std::collections::BTreeSet<String> = ours
        .iter()
        .map(|(_, t)| match t.strip_prefix("pipe:") {
            Some(_) => "pipe".to_owned(),
            None => t.clone(),
        })
        .collect();
    println!("kinds={kinds:?}");
    let targets: BTreeMap<i32, String> = ours.iter().cloned().collect();
    for must in [
        "eventfd",
        "eventpoll",
        "timerfd",
        "signalfd",
        "pidfd",
        "inotify",
    ] {
        assert!(
            targets.values().any(|t| t.contains(must)),
            "no {must} among {targets:?}"
        );
    }
    assert!(targets.values().any(|t| t.starts_with("pipe:")));

    // Exec a program that lists its own descriptors.
    let out = Command::new("ls")
        .args(["-l", "/proc/self/fd/"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut leaked = Vec::new();
    for line in listing.lines() {
        let Some((left, target)) = line.split_once(" -> ") else {
            continue;
        };
        let Some(n) = left
            .split_whitespace()
            .last()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if targets.get(&n).is_some_and(|t| t == target.trim()) {
            leaked.push(format!("{n} -> {target}"));
        }
    }
    println!("checked={}", ours.len());
    println!("leaked={leaked:?}");
    drop((
        notifiers,
        efd,
        chans,
        signals,
        child_pidfd,
        child_sigchld,
        watch,
    ));
    for mut p in [sleeper, sleeper2] {
        let _ = p.kill();
        let _ = p.wait();
    }
    // Keep the raw numbers visible for a failing run.
    let _ = ev.as_raw_fd();
}

// ---------------------------------------------------------------------------
// The parent side: one test per row.

fn run(scenario: &str) -> std::process::Output {
    util::expect_success(scenario, util::run_scenario("scenario_child", scenario))
}

fn value(out: &std::process::Output, key: &str) -> String {
    util::scenario_value(out, key).unwrap_or_else(|| {
        panic!(
            "no {key}= in the child's output:\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The pipe a notifier falls back to here (CI reruns with the pipe forced).
fn expected_pipe() -> &'static str {
    match std::env::var(FORCE_PIPE_ENV).as_deref() {
        Ok("fcntl") => "PipeFcntl",
        _ => "Pipe2",
    }
}

/// The timeout precision an unhindered loop gets in this environment.
fn native_precision() -> TimeoutPrecision {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let _epoll = util::stay_in_epoll(&ev);
    ev.run_once(&mut (), Some(Duration::from_micros(10)))
        .unwrap();
    ev.timeout_precision()
}

fn check_no_eventfd(errno: &str) {
    let out = run(&format!("eventfd2:{errno}"));
    assert_eq!(value(&out, "backend"), expected_pipe());
    assert_eq!(value(&out, "flow"), "ok");
}

#[test]
fn eventfd2_enosys_falls_back_to_a_pipe_end_to_end() {
    check_no_eventfd("ENOSYS");
}

#[test]
fn eventfd2_eperm_falls_back_to_a_pipe_end_to_end() {
    check_no_eventfd("EPERM");
}

fn check_no_timerfd(errno: &str) {
    let out = run(&format!("timerfd_create:{errno}"));
    assert_eq!(value(&out, "flow"), "ok");
    // The loop's own timeouts never needed a timerfd where epoll_pwait2
    // works; where it does not, they drop to milliseconds.
    let want = match native_precision() {
        TimeoutPrecision::Nanos => "Nanos",
        _ => "Millis",
    };
    assert_eq!(value(&out, "precision"), want);
}

#[test]
fn timerfd_create_enosys_timers_run_on_the_epoll_timeout() {
    check_no_timerfd("ENOSYS");
}

#[test]
fn timerfd_create_eperm_timers_run_on_the_epoll_timeout() {
    check_no_timerfd("EPERM");
}

fn check_no_pwait2(errno: &str) {
    let out = run(&format!("epoll_pwait2:{errno}"));
    assert_eq!(value(&out, "flow"), "ok");
    let want = match std::env::var(FORCE_TIMEOUT_ENV).as_deref() {
        Ok("millis") | Ok("ms") => "Millis",
        _ => "TimerFd",
    };
    assert_eq!(value(&out, "precision"), want);
}

#[test]
fn epoll_pwait2_enosys_sub_ms_timeouts_use_a_timerfd() {
    check_no_pwait2("ENOSYS");
}

#[test]
fn epoll_pwait2_eperm_sub_ms_timeouts_use_a_timerfd() {
    check_no_pwait2("EPERM");
}

#[test]
fn epoll_pwait2_and_timerfd_refused_timeouts_round_up_to_milliseconds() {
    let out = run("epoll_pwait2+timerfd_create:ENOSYS");
    assert_eq!(value(&out, "flow"), "ok");
    assert_eq!(value(&out, "precision"), "Millis");
}

fn check_no_signalfd(errno: &str, raw: i32) {
    let out = run(&format!("signalfd4:{errno}"));
    assert_eq!(value(&out, "errno"), format!("Some({raw})"));
    assert_eq!(value(&out, "mask_restored"), "true");
    assert_eq!(value(&out, "flow"), "ok");
}

#[test]
fn signalfd4_enosys_is_a_clear_error_with_errno() {
    check_no_signalfd("ENOSYS", libc::ENOSYS);
}

#[test]
fn signalfd4_eperm_is_a_clear_error_with_errno() {
    check_no_signalfd("EPERM", libc::EPERM);
}

fn check_no_pidfd(errno: &str) {
    let out = run(&format!("pidfd_open:{errno}"));
    assert_eq!(value(&out, "backend"), "Sigchld");
    assert_eq!(value(&out, "codes"), "[20, 21, 22]");
    assert_eq!(value(&out, "flow"), "ok");
}

#[test]
fn pidfd_open_enosys_children_use_the_sigchld_backend() {
    check_no_pidfd("ENOSYS");
}

#[test]
fn pidfd_open_eperm_children_use_the_sigchld_backend() {
    check_no_pidfd("EPERM");
}

fn check_no_inotify(errno: &str, raw: i32) {
    let out = run(&format!("inotify_init1:{errno}"));
    assert_eq!(value(&out, "errno"), format!("Some({raw})"));
    assert_eq!(value(&out, "flow"), "ok");
}

#[test]
fn inotify_init1_enosys_is_a_clear_error_with_errno() {
    check_no_inotify("ENOSYS", libc::ENOSYS);
}

#[test]
fn inotify_init1_eperm_is_a_clear_error_with_errno() {
    check_no_inotify("EPERM", libc::EPERM);
}

#[test]
fn emfile_is_typed_leaks_nothing_and_the_loop_keeps_working() {
    let out = run("emfile");
    eprintln!("{}", value(&out, "first_ok"));
    assert!(value(&out, "emfile_errors").parse::<u32>().unwrap() >= 12);
    assert_eq!(value(&out, "loop_after"), "ok");
}

#[test]
fn under_emfile_a_pause_and_new_timers_need_no_descriptor() {
    let out = run("emfile_pause");
    eprintln!("paused_for={}", value(&out, "paused_for"));
    assert_eq!(value(&out, "emfile_pause"), "ok");
}

#[test]
fn forked_child_gets_error_forked_from_every_operation() {
    let out = run("fork");
    assert_eq!(value(&out, "child_failed_checks"), "0b0");
    assert_eq!(value(&out, "parent_after"), "1");
}

#[test]
fn no_fdloop_descriptor_survives_exec() {
    let out = util::expect_success(
        "cloexec",
        util::run_scenario_env(
            "scenario_child",
            "cloexec",
            &[(FORCE_TIMEOUT_ENV, "timerfd")],
        ),
    );
    eprintln!(
        "kinds={} checked={}",
        value(&out, "kinds"),
        value(&out, "checked")
    );
    assert_eq!(value(&out, "leaked"), "[]");
}

// ---------------------------------------------------------------------------
// In process: EINTR storm and a saturated eventfd.

#[derive(Default)]
struct Storm {
    next: [u64; 2],
    closed: u32,
    oneshots: Vec<u32>,
    early: u32,
    ticks: u64,
    /// When the first callback's earliest counted deadline was.
    first_due: Option<Instant>,
    last_tick: Option<(Instant, Duration)>,
}

#[test]
fn eintr_storm_loses_nothing_and_surfaces_no_error() {
    const M: u64 = 20_000;
    const ONESHOTS: usize = 200;
    const PERIOD: Duration = Duration::from_millis(2);
    const STORM: Duration = Duration::from_secs(2);
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<Storm>();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let looper = thread::spawn(move || {
        let mut ev: EventLoop<Storm> = EventLoop::new().unwrap();
        let (utx, urx) = channel::unbounded::<u64>().unwrap();
        let (btx, brx) = channel::bounded::<u64>(16).unwrap();
        for (k, rx) in [urx, brx].into_iter().enumerate() {
            ev.insert(rx, move |e, _, s: &mut Storm| {
                match e {
                    Event::Msg(m) => {
                        assert_eq!(m, s.next[k]);
                        s.next[k] += 1;
                    }
                    Event::Closed => s.closed += 1,
                }
                Action::Continue
            })
            .unwrap();
        }
        let mut rng = util::XorShift(0x1234_5678_9abc_def1);
        let start = Instant::now();
        for i in 0..ONESHOTS {
            let at = start + Duration::from_micros(rng.below(1_800_000) as u64);
            ev.insert(Timer::at(at), move |_, _, s: &mut Storm| {
                if Instant::now() < at {
                    s.early += 1;
                }
                s.oneshots[i] += 1;
                Action::Continue
            })
            .unwrap();
        }
        ev.insert(Timer::every(PERIOD), |e: TimerEvent, _, s: &mut Storm| {
            let now = Instant::now();
            let back = e.late + PERIOD * (e.expirations as u32 - 1);
            s.first_due.get_or_insert(now - back);
            s.ticks += e.expirations;
            s.last_tick = Some((now, e.late));
            Action::Continue
        })
        .unwrap();
        tid_tx.send(util::this_thread()).unwrap();
        let producers: Vec<_> = [utx.clone(), btx.clone()]
            .into_iter()
            .map(|tx| {
                thread::spawn(move || {
                    // Spread over the storm: bursts with pauses.
                    for chunk in 0..M / 20 {
                        for i in 0..20 {
                            tx.send(chunk * 20 + i).unwrap();
                        }
                        thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        drop((utx, btx));
        let mut s = Storm {
            oneshots: vec![0; ONESHOTS],
            ..Storm::default()
        };
        while s.closed < 2 || start.elapsed() < STORM || s.oneshots.contains(&0) {
            // Any error (EINTR included) fails the test here.
            ev.run_once(&mut s, Some(Duration::from_millis(3))).unwrap();
            assert!(start.elapsed() < Duration::from_secs(30), "stalled");
        }
        for p in producers {
            p.join().unwrap();
        }
        done_tx.send(s).unwrap();
        // Stay alive until the storm has stopped (no signal to a dead thread).
        let _ = exit_rx.recv();
    });
    let target = tid_rx.recv().unwrap();
    let storm = util::SignalStorm::start(target, Duration::from_micros(10));
    let s = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("loop under the storm did not finish");
    let sent = storm.stop();
    exit_tx.send(()).unwrap();
    looper.join().unwrap();
    assert_eq!(s.next, [M, M], "messages lost");
    assert_eq!(s.closed, 2);
    assert!(
        s.oneshots.iter().all(|&c| c == 1),
        "a one-shot timer fired 0 or 2+ times"
    );
    assert_eq!(s.early, 0, "a timer fired early");
    // The periodic timer accounts for every period: the expirations summed
    // up to the last callback match the deadlines passed (±1 for the clock
    // readings on either side).
    let (first, (last, late)) = (s.first_due.unwrap(), s.last_tick.unwrap());
    let span = (last - late).saturating_duration_since(first);
    let p = PERIOD.as_nanos();
    let expected = (span.as_nanos() + p / 2) / p + 1;
    assert!(
        (s.ticks as i128 - expected as i128).abs() <= 1,
        "periodic: {} expirations, {expected} periods",
        s.ticks
    );
    eprintln!("{sent} signals; {} ticks", s.ticks);
    assert!(sent > 2_000, "the storm was too weak ({sent} signals)");
}

fn saturate(fd: impl AsFd) {
    rustix::io::write(fd, &MAX_COUNTER.to_ne_bytes()).unwrap();
}

#[test]
fn saturated_eventfd_counter_loses_no_wakeup() {
    const ROUNDS: usize = 200;
    let n = Arc::new(Notifier::with_backend(Backend::EventFd).unwrap());
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (woke_tx, woke_rx) = mpsc::channel::<bool>();
    let n2 = n.clone();
    let waiter = thread::spawn(move || {
        for _ in 0..ROUNDS * 2 {
            go_rx.recv().unwrap();
            woke_tx
                .send(n2.wait(Some(Duration::from_secs(10))).unwrap())
                .unwrap();
        }
    });
    for _ in 0..ROUNDS {
        // Saturated by someone else: the notify's write fails with EAGAIN
        // inside and must count as sent.
        saturate(&*n);
        n.notify().unwrap();
        go_tx.send(()).unwrap();
        assert!(
            woke_rx.recv().unwrap(),
            "wake-up lost on a saturated counter"
        );
        // The waiter consumed it: the next notify must write again and
        // wake a waiter that is (or soon will be) blocked.
        go_tx.send(()).unwrap();
        thread::sleep(Duration::from_micros(50));
        assert!(n.notify().unwrap(), "notify after a drain must write");
        assert!(woke_rx.recv().unwrap(), "wake-up lost after saturation");
    }
    waiter.join().unwrap();
    assert!(!n.drain().unwrap(), "counter left readable");
}

#[test]
fn saturated_channel_eventfd_loses_no_message() {
    if Notifier::new().unwrap().backend() != Backend::EventFd {
        eprintln!("skipped: notifiers are pipes in this run");
        return;
    }
    const N: u64 = 20_000;
    let (tx, rx) = channel::unbounded::<u64>().unwrap();
    saturate(&rx);
    let mut ev: EventLoop<(u64, bool)> = EventLoop::new().unwrap();
    ev.insert(rx, |e, _, s: &mut (u64, bool)| {
        match e {
            Event::Msg(m) => {
                assert_eq!(m, s.0);
                s.0 += 1;
            }
            Event::Closed => s.1 = true,
        }
        Action::Continue
    })
    .unwrap();
    let mut s = (0, false);
    // Spurious wake from the saturated counter, then the receiver sleeps.
    ev.run_once(&mut s, Some(Duration::from_millis(5))).unwrap();
    assert_eq!(s.0, 0);
    let producer = thread::spawn(move || {
        for i in 0..N {
            if i % 1000 == 0 {
                thread::sleep(Duration::from_millis(1)); // let the loop sleep
            }
            tx.send(i).unwrap();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s.1 {
        assert!(Instant::now() < deadline, "stalled at {}", s.0);
        ev.run_once(&mut s, Some(Duration::from_secs(1))).unwrap();
    }
    producer.join().unwrap();
    assert_eq!(s.0, N);
}

// ---------------------------------------------------------------------------
// The resp_server example out of descriptors (RLIMIT_NOFILE 40, 100
// clients): refuses with a line through its reserve descriptor, keeps
// serving, sleeps, logs a bounded number of lines, recovers.

/// The server's descriptor limit: room for its own ~8 and ~30 clients.
const SERVER_NOFILE: u64 = 40;

/// Sends `PING`, expects `+PONG` (10 s timeout).
fn ping(s: &mut std::net::TcpStream) -> io::Result<()> {
    use std::io::{Read, Write};
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"PING\r\n")?;
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf)?;
    if &buf != b"+PONG\r\n" {
        return Err(io::Error::other(format!("reply {buf:?}")));
    }
    Ok(())
}

/// Connects `n` clients, waits, and sorts them into served (the server said
/// nothing) and refused (it sent the refusal line, or closed).
fn connect_and_sort(
    addr: std::net::SocketAddr,
    n: usize,
) -> (Vec<std::net::TcpStream>, Vec<String>) {
    let all: Vec<_> = (0..n)
        .map(|i| std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {i}: {e}")))
        .collect();
    thread::sleep(Duration::from_millis(500));
    let (mut served, mut refused) = (Vec::new(), Vec::new());
    for s in all {
        match util::unsolicited(&s, Duration::from_secs(5)) {
            None => served.push(s),
            Some(line) => refused.push(line),
        }
    }
    (served, refused)
}

#[test]
fn resp_server_out_of_descriptors_refuses_keeps_serving_sleeps_and_recovers() {
    out_of_descriptors_refuses_keeps_serving_sleeps_and_recovers(&[]);
}

/// The same with connections as `fdloop::rt` tasks: an `Async<TcpListener>`
/// accepting under EMFILE.
#[test]
#[cfg(feature = "async")]
fn resp_server_async_out_of_descriptors_refuses_keeps_serving_sleeps_and_recovers() {
    out_of_descriptors_refuses_keeps_serving_sleeps_and_recovers(&["--async"]);
}

fn out_of_descriptors_refuses_keeps_serving_sleeps_and_recovers(args: &[&str]) {
    let mut srv = util::RespServer::start_with(args, |cmd| {
        util::child_nofile_limit(cmd, SERVER_NOFILE);
    });
    let (mut served, refused) = connect_and_sort(srv.addr, 100);
    println!("served {}, refused {}", served.len(), refused.len());
    assert!(served.len() >= 10, "only {} served", served.len());
    assert!(refused.len() >= 50, "only {} refused", refused.len());
    for line in &refused {
        assert_eq!(line, "-ERR max number of clients reached\r\n");
    }
    for (i, s) in served.iter_mut().enumerate() {
        ping(s).unwrap_or_else(|e| panic!("served client {i}: {e}"));
    }

    // One second out of descriptors, a new client knocking every 10 ms, the
    // served ones asking all along: the server sleeps between them.
    let addr = srv.addr;
    let knocking = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let knocker = {
        let knocking = knocking.clone();
        thread::spawn(move || {
            let mut refused = 0;
            while knocking.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(s) = std::net::TcpStream::connect(addr) {
                    thread::sleep(Duration::from_millis(20));
                    refused += usize::from(util::unsolicited(&s, Duration::from_secs(5)).is_some());
                }
                thread::sleep(Duration::from_millis(10));
            }
            refused
        })
    };
    thread::sleep(Duration::from_millis(100));
    let ticks0 = srv.cpu_ticks();
    let t0 = Instant::now();
    let mut rounds = 0;
    while t0.elapsed() < Duration::from_secs(1) {
        for (i, s) in served.iter_mut().enumerate() {
            ping(s).unwrap_or_else(|e| panic!("served client {i} under EMFILE: {e}"));
        }
        rounds += 1;
        thread::sleep(Duration::from_millis(50));
    }
    let ticks = srv.cpu_ticks() - ticks0;
    let wall = t0.elapsed();
    knocking.store(false, std::sync::atomic::Ordering::Relaxed);
    let knocked_away = knocker.join().unwrap();
    let cpu = ticks as f64 / util::clock_ticks_per_sec() / wall.as_secs_f64();
    println!(
        "under EMFILE: server CPU {:.1} % of {wall:?} ({ticks} ticks), {rounds} rounds of {} \
         PINGs, {knocked_away} more clients refused",
        cpu * 100.0,
        served.len()
    );
    assert!(
        cpu < 0.10,
        "server used {:.1} % CPU under EMFILE",
        cpu * 100.0
    );
    srv.assert_alive();

    // Descriptors free up: a new client is served.
    served.clear();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        thread::sleep(Duration::from_millis(20));
        if util::unsolicited(&s, Duration::from_secs(5)).is_none() && ping(&mut s).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no client served 10 s after the others left"
        );
        thread::sleep(Duration::from_millis(50));
    }

    let (status, stderr) = srv.signal_and_wait(libc::SIGTERM);
    assert!(status.success(), "{status}; stderr: {stderr}");
    let lines = stderr.lines().filter(|l| l.contains("accept")).count();
    println!("log lines about refusals: {lines}\n{stderr}");
    assert!(lines >= 1, "no log line about refusals: {stderr}");
    // About 2 s out of descriptors: one line a second, and some slack.
    assert!(lines <= 6, "{lines} log lines: {stderr}");
}
