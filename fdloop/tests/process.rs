//! process::Child: exit statuses delivered once, on both backends (pidfd and
//! the SIGCHLD fallback, in process and forced in child scenarios), zombies
//! watched after the fact, merged SIGCHLDs, and never reaping a child that
//! is not ours.

// The children spawned here are reaped by fdloop, not by std's `wait`.
#![allow(clippy::zombie_processes)]

mod util;

use std::io::ErrorKind;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fdloop::process::{Child, ChildBackend, Exit, FORCE_SIGCHLD_ENV};
use fdloop::{Action, EventLoop};

const BOTH: [ChildBackend; 2] = [ChildBackend::PidFd, ChildBackend::Sigchld];

/// (pid, exit) pairs delivered by the loop.
type Seen = Vec<(u32, Exit)>;

fn sh(script: &str) -> std::process::Child {
    Command::new("sh")
        .args(["-c", script])
        .spawn()
        .expect("spawn sh")
}

/// Inserts every child into one loop and runs it until every source has
/// removed itself (at most 20 s). Returns what was delivered.
fn run_to_completion(children: Vec<Child>) -> Seen {
    let mut ev: EventLoop<Seen> = EventLoop::new().unwrap();
    for c in children {
        let pid = c.pid();
        ev.insert(c, move |exit, _, seen: &mut Seen| {
            seen.push((pid, exit));
            // The source leaves after its one event whatever we say.
            Action::Continue
        })
        .unwrap();
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ev.is_empty() {
        assert!(Instant::now() < deadline, "children not reported: {seen:?}");
        ev.run_once(&mut seen, Some(Duration::from_millis(500)))
            .unwrap();
    }
    // Nothing more comes: the sources are gone.
    assert_eq!(ev.dispatch_pending(&mut seen).unwrap(), 0);
    seen
}

fn watch(p: &std::process::Child, backend: ChildBackend) -> Child {
    let c = Child::with_backend(p.id(), backend).unwrap();
    assert_eq!(c.backend(), backend);
    assert_eq!(c.pid(), p.id());
    c
}

#[test]
fn exit_statuses_are_delivered_once_on_both_backends() {
    for backend in BOTH {
        let cases: Vec<(std::process::Child, Exit)> = vec![
            (Command::new("true").spawn().unwrap(), Exit::Exited(0)),
            (Command::new("false").spawn().unwrap(), Exit::Exited(1)),
            (sh("exit 7"), Exit::Exited(7)),
        ];
        for (mut p, want) in cases {
            let seen = run_to_completion(vec![watch(&p, backend)]);
            assert_eq!(seen, vec![(p.id(), want)], "{backend}");
            // fdloop reaped it: std can no longer wait for it.
            assert!(p.wait().is_err(), "{backend}: std::process::Child::wait");
        }
    }
}

#[test]
fn killed_child_reports_the_signal() {
    for backend in BOTH {
        let mut p = Command::new("sleep").arg("30").spawn().unwrap();
        let c = watch(&p, backend);
        p.kill().unwrap();
        let seen = run_to_completion(vec![c]);
        let want = Exit::Signaled {
            signal: libc::SIGKILL,
            core_dumped: false,
        };
        assert_eq!(seen, vec![(p.id(), want)], "{backend}");
        let status = want.status();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}

#[test]
fn child_that_exited_before_insertion_is_reported() {
    for backend in BOTH {
        let p = sh("exit 4");
        util::wait_until_zombie(p.id());
        // Let its SIGCHLD come and go before we watch.
        std::thread::sleep(Duration::from_millis(20));
        let seen = run_to_completion(vec![watch(&p, backend)]);
        assert_eq!(seen, vec![(p.id(), Exit::Exited(4))], "{backend}");
    }
}

#[test]
fn many_children_exiting_at_once_are_all_reported() {
    for backend in BOTH {
        let procs: Vec<_> = (0..24).map(|i| sh(&format!("exit {i}"))).collect();
        let children = procs.iter().map(|p| watch(p, backend)).collect();
        let mut seen = run_to_completion(children);
        seen.sort_by_key(|(pid, _)| *pid);
        let mut want: Vec<_> = procs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id(), Exit::Exited(i as i32)))
            .collect();
        want.sort_by_key(|(pid, _)| *pid);
        assert_eq!(seen, want, "{backend}");
    }
}

#[test]
fn fallback_never_reaps_an_unrelated_child() {
    // Both exit; the unrelated one first, so its SIGCHLD reaches the
    // fallback's handler while a fallback source is watching.
    let mut unrelated = sh("exit 5");
    util::wait_until_zombie(unrelated.id());
    let mut watched = sh("sleep 0.1; exit 3");
    let c = watch(&watched, ChildBackend::Sigchld);
    let seen = run_to_completion(vec![c]);
    assert_eq!(seen, vec![(watched.id(), Exit::Exited(3))]);
    assert!(watched.try_wait().is_err());
    // Still a zombie, still std's to collect, status intact.
    let st = unrelated.wait().unwrap();
    assert_eq!(st.code(), Some(5));
}

#[test]
fn try_wait_and_wait_without_a_loop() {
    for backend in BOTH {
        let mut p = Command::new("sleep").arg("30").spawn().unwrap();
        let mut c = watch(&p, backend);
        assert_eq!(c.try_wait().unwrap(), None);
        let t = Instant::now();
        assert_eq!(c.wait(Some(Duration::from_millis(30))).unwrap(), None);
        assert!(t.elapsed() >= Duration::from_millis(30));
        p.kill().unwrap();
        let exit = c.wait(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(
            exit.and_then(Exit::signal),
            Some(libc::SIGKILL),
            "{backend}"
        );
        // The status is kept.
        assert_eq!(c.try_wait().unwrap(), exit);
    }
}

#[test]
fn default_backend_is_pidfd_here_unless_forced() {
    let p = Command::new("true").spawn().unwrap();
    let mut c = Child::new(&p).unwrap();
    let forced = std::env::var(FORCE_SIGCHLD_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
    if forced {
        assert_eq!(c.backend(), ChildBackend::Sigchld);
    } else if c.backend() != ChildBackend::PidFd {
        eprintln!("note: pidfd unavailable here; using {}", c.backend());
    }
    assert_eq!(c.wait(None).unwrap(), Some(Exit::Exited(0)));
}

#[test]
fn missing_process_is_a_clear_error() {
    let mut p = Command::new("true").spawn().unwrap();
    p.wait().unwrap(); // reaped by std: the pid no longer exists
    for backend in BOTH {
        let e = Child::with_backend(p.id(), backend).unwrap_err();
        // The pid could, rarely, have been reused by an unrelated process.
        assert!(
            matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput),
            "{backend}: {e}"
        );
        if e.kind() == ErrorKind::NotFound {
            assert!(e.to_string().contains("no such process"), "{e}");
        }
    }
    let e = Child::from_pid(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = Child::from_pid(u32::MAX).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_process_that_is_not_our_child_is_refused() {
    // pid 1 exists but is never our child.
    for backend in BOTH {
        let e = Child::with_backend(1, backend).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{backend}: {e}");
        assert!(e.to_string().contains("not an unreaped child"), "{e}");
    }
}

#[test]
fn reaped_behind_our_back_is_an_error_then_the_source_leaves() {
    for backend in BOTH {
        let mut p = sh("exit 2");
        let c = watch(&p, backend);
        assert_eq!(p.wait().unwrap().code(), Some(2)); // std reaps it first
        let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
        ev.insert(c, |_, _, n: &mut u32| {
            *n += 1;
            Action::Continue
        })
        .unwrap();
        let mut delivered = 0;
        let mut errors = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ev.is_empty() && Instant::now() < deadline {
            match ev.run_once(&mut delivered, Some(Duration::from_millis(200))) {
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{backend}: {e}");
                    errors += 1;
                }
            }
        }
        assert!(ev.is_empty(), "{backend}: source did not leave");
        assert_eq!((delivered, errors), (0, 1), "{backend}");
    }
}

// --- the fallback chosen at run time, in child processes -------------------

static PREVIOUS_HANDLER_RUNS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn counting_handler(_: libc::c_int) {
    PREVIOUS_HANDLER_RUNS.fetch_add(1, Ordering::Relaxed);
}

/// Plays the scenario named by `util::SCENARIO_ENV`; a no-op otherwise.
#[test]
fn scenario_child() {
    let Some(s) = util::scenario() else { return };
    match s.as_str() {
        "forced" => {
            // Someone else's SIGCHLD handler, installed first: fdloop must
            // chain to it.
            // SAFETY: installing an async-signal-safe handler (one atomic
            // add) with a zeroed, then filled, sigaction.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = counting_handler as *const () as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                assert_eq!(libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()), 0);
            }
        }
        "no-pidfd-enosys" => util::seccomp_fail_syscalls(&[(libc::SYS_pidfd_open, libc::ENOSYS)]),
        "no-pidfd-eperm" => util::seccomp_fail_syscalls(&[(libc::SYS_pidfd_open, libc::EPERM)]),
        other => panic!("unknown scenario {other}"),
    }
    // Through the public, automatic path.
    let mut unrelated = sh("exit 5");
    let procs: Vec<_> = (0..8).map(|i| sh(&format!("exit {}", 10 + i))).collect();
    let children: Vec<Child> = procs.iter().map(|p| Child::new(p).unwrap()).collect();
    println!("backend={:?}", children[0].backend());
    let mut seen = run_to_completion(children);
    seen.sort_by_key(|(pid, _)| *pid);
    let codes: Vec<i32> = procs
        .iter()
        .map(|p| {
            seen.iter()
                .find(|(pid, _)| *pid == p.id())
                .and_then(|(_, e)| e.code())
                .unwrap_or(-1)
        })
        .collect();
    println!("codes={codes:?}");
    println!("unrelated={:?}", unrelated.wait().unwrap().code());
    // A later child is not tried on pidfd again (ENOSYS/EPERM cached) and
    // works standalone.
    let p = sh("exit 9");
    let mut c = Child::new(&p).unwrap();
    println!("again={:?}", c.backend());
    println!("wait={:?}", c.wait(Some(Duration::from_secs(10))).unwrap());
    println!(
        "previous_handler_ran={}",
        PREVIOUS_HANDLER_RUNS.load(Ordering::Relaxed) > 0
    );
}

fn scenario(name: &str, env: &[(&str, &str)]) -> std::process::Output {
    let out = util::run_scenario_env("scenario_child", name, env);
    assert!(
        out.status.success(),
        "scenario {name} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn check_fallback_output(out: &std::process::Output) {
    let v = |k| util::scenario_value(out, k);
    assert_eq!(v("backend").as_deref(), Some("Sigchld"));
    assert_eq!(
        v("codes").as_deref(),
        Some("[10, 11, 12, 13, 14, 15, 16, 17]")
    );
    assert_eq!(v("unrelated").as_deref(), Some("Some(5)"));
    assert_eq!(v("again").as_deref(), Some("Sigchld"));
    assert_eq!(v("wait").as_deref(), Some("Some(Exited(9))"));
}

#[test]
fn forced_fallback_works_and_chains_to_a_previous_handler() {
    let out = scenario("forced", &[(FORCE_SIGCHLD_ENV, "1")]);
    check_fallback_output(&out);
    assert_eq!(
        util::scenario_value(&out, "previous_handler_ran").as_deref(),
        Some("true")
    );
}

#[test]
fn falls_back_at_run_time_when_pidfd_open_is_refused() {
    for s in ["no-pidfd-enosys", "no-pidfd-eperm"] {
        let out = scenario(s, &[]);
        check_fallback_output(&out);
    }
}

#[test]
fn a_child_whose_exit_callback_panics_leaves_the_loop() {
    for backend in BOTH {
        let p = Command::new("true").spawn().unwrap();
        let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
        ev.insert(watch(&p, backend), |_, _, n: &mut u32| -> Action {
            *n += 1;
            panic!("exit callback panics")
        })
        .unwrap();
        let mut n = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while n == 0 && Instant::now() < deadline {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ev.run_once(&mut n, Some(Duration::from_secs(1)))
            }));
            assert_eq!(r.is_err(), n == 1, "{backend}");
        }
        assert_eq!(n, 1, "{backend}: the exit was not delivered");
        assert!(
            ev.is_empty(),
            "{backend}: the delivered child stays in the loop"
        );
    }
}
