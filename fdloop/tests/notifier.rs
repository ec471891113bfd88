//! Notifier: coalescing, cross-thread wake-ups, every backend, timeouts,
//! and the run-time fallback when eventfd (or pipe2) is unavailable.

mod util;

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fdloop::{Backend, Notifier, FORCE_PIPE_ENV};

const ALL: [Backend; 3] = [Backend::EventFd, Backend::Pipe2, Backend::PipeFcntl];

/// How many signals the descriptor holds, read behind the notifier's back:
/// the eventfd counter (each write adds 1) or the bytes in the pipe (each
/// write adds one byte). This is the kernel's own count of writes.
fn signals_in_fd(n: &Notifier) -> u64 {
    if n.backend().is_pipe() {
        util::bytes_waiting(n)
    } else {
        match util::raw_eventfd_read(n) {
            Ok(v) => {
                // Put it back so the notifier's state is unchanged.
                let fd = n.as_raw_fd();
                let b = v.to_ne_bytes();
                // SAFETY: fd is a live eventfd owned by `n`; 8-byte buffer.
                assert_eq!(unsafe { libc::write(fd, b.as_ptr().cast(), 8) }, 8);
                v
            }
            Err(e) if e == rustix::io::Errno::AGAIN => 0,
            Err(e) => panic!("read eventfd: {e}"),
        }
    }
}

#[test]
fn ten_thousand_notifies_before_drain_make_one_write() {
    for b in ALL {
        let n = Notifier::with_backend(b).unwrap();
        for _ in 0..10_000 {
            n.notify().unwrap();
        }
        assert_eq!(signals_in_fd(&n), 1, "{b}: kernel saw more than one write");
        assert_eq!(n.writes(), 1, "{b}");
        assert!(n.drain().unwrap(), "{b}");
        assert_eq!(signals_in_fd(&n), 0, "{b}");
        // Re-armed: the next burst writes exactly once more.
        for _ in 0..10_000 {
            n.notify().unwrap();
        }
        assert_eq!(signals_in_fd(&n), 1, "{b}");
        assert_eq!(n.writes(), 2, "{b}");
    }
}

#[test]
fn concurrent_notifiers_coalesce_to_one_write() {
    for b in ALL {
        let n = Arc::new(Notifier::with_backend(b).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let n = n.clone();
                thread::spawn(move || {
                    for _ in 0..10_000 {
                        n.notify().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(signals_in_fd(&n), 1, "{b}");
        assert_eq!(n.writes(), 1, "{b}");
    }
}

#[test]
fn notify_reports_whether_it_wrote() {
    for b in ALL {
        let n = Notifier::with_backend(b).unwrap();
        assert!(n.notify().unwrap(), "{b}");
        assert!(!n.notify().unwrap(), "{b}");
        assert!(n.drain().unwrap(), "{b}");
        assert!(!n.drain().unwrap(), "{b}: nothing left");
        assert!(n.notify().unwrap(), "{b}: re-armed after drain");
    }
}

#[test]
fn readable_in_poll_iff_notified() {
    for b in ALL {
        let n = Notifier::with_backend(b).unwrap();
        assert!(!util::readiness(&n).0, "{b}");
        n.notify().unwrap();
        assert!(util::readiness(&n).0, "{b}");
        n.drain().unwrap();
        assert!(!util::readiness(&n).0, "{b}");
    }
}

#[test]
fn wakes_a_thread_blocked_in_wait() {
    for b in ALL {
        let n = Arc::new(Notifier::with_backend(b).unwrap());
        let n2 = n.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            n2.notify().unwrap();
        });
        assert!(n.wait(Some(Duration::from_secs(10))).unwrap(), "{b}");
        t.join().unwrap();
    }
}

#[test]
fn ping_pong_never_loses_a_wakeup() {
    // Two threads bounce a token 20 000 times through two notifiers; a lost
    // wake-up would stall one side until the 10 s timeout.
    for b in ALL {
        let ab = Arc::new(Notifier::with_backend(b).unwrap());
        let ba = Arc::new(Notifier::with_backend(b).unwrap());
        let (ab2, ba2) = (ab.clone(), ba.clone());
        const ROUNDS: u32 = 20_000;
        let t = thread::spawn(move || {
            for i in 0..ROUNDS {
                assert!(
                    ab2.wait(Some(Duration::from_secs(10))).unwrap(),
                    "pong lost at {i}"
                );
                ba2.notify().unwrap();
            }
        });
        for i in 0..ROUNDS {
            ab.notify().unwrap();
            assert!(
                ba.wait(Some(Duration::from_secs(10))).unwrap(),
                "{b}: ping lost at {i}"
            );
        }
        t.join().unwrap();
    }
}

#[test]
fn producer_work_is_visible_after_wakeup() {
    // The producer publishes with Relaxed stores only: visibility must come
    // from the notifier's protocol, not from the test's own orderings.
    for b in ALL {
        let n = Arc::new(Notifier::with_backend(b).unwrap());
        let work = Arc::new(AtomicU64::new(0));
        const N: u64 = 200_000;
        let (n2, w2) = (n.clone(), work.clone());
        let producer = thread::spawn(move || {
            for _ in 0..N {
                w2.fetch_add(1, Ordering::Relaxed);
                n2.notify().unwrap();
            }
        });
        let mut seen = 0;
        while seen < N {
            assert!(
                n.wait(Some(Duration::from_secs(10))).unwrap(),
                "{b}: stalled at {seen} of {N}"
            );
            seen = work.load(Ordering::Relaxed);
        }
        producer.join().unwrap();
        assert!(n.writes() <= N, "{b}");
    }
}

#[test]
fn wait_times_out_never_early() {
    for b in ALL {
        let n = Notifier::with_backend(b).unwrap();
        for t in [Duration::from_micros(300), Duration::from_millis(20)] {
            let start = Instant::now();
            assert!(!n.wait(Some(t)).unwrap(), "{b}");
            let took = start.elapsed();
            assert!(took >= t, "{b}: wait({t:?}) returned after {took:?}");
        }
    }
}

#[test]
fn wait_zero_only_checks() {
    for b in ALL {
        let n = Notifier::with_backend(b).unwrap();
        assert!(!n.wait(Some(Duration::ZERO)).unwrap(), "{b}");
        n.notify().unwrap();
        assert!(n.wait(Some(Duration::ZERO)).unwrap(), "{b}");
        assert!(!n.wait(Some(Duration::ZERO)).unwrap(), "{b}: consumed");
    }
}

#[test]
fn huge_timeout_does_not_overflow() {
    let n = Notifier::new().unwrap();
    n.notify().unwrap();
    assert!(n.wait(Some(Duration::MAX)).unwrap());
}

#[test]
fn wait_survives_a_signal_storm() {
    for b in ALL {
        let n = Arc::new(Notifier::with_backend(b).unwrap());
        // A timeout under EINTR storm: still never early, no error.
        let n2 = n.clone();
        let (r, sent) = util::under_signal_storm(
            move || {
                let start = Instant::now();
                let r = n2.wait(Some(Duration::from_millis(50)));
                (r, start.elapsed())
            },
            || {},
        );
        assert!(sent > 10, "{b}: storm sent {sent}");
        let (r, took) = r;
        assert!(!r.unwrap(), "{b}");
        assert!(took >= Duration::from_millis(50), "{b}: early by EINTR");
        // A wake-up under EINTR storm is still delivered.
        let n2 = n.clone();
        let (r, _) = util::under_signal_storm(
            move || n2.wait(Some(Duration::from_secs(10))),
            || {
                n.notify().unwrap();
            },
        );
        assert!(r.unwrap(), "{b}");
    }
}

#[test]
fn descriptors_are_cloexec_and_nonblocking() {
    for b in ALL {
        let n = Notifier::with_backend(b).unwrap();
        assert!(util::is_cloexec(&n), "{b}");
        assert!(util::is_nonblocking(&n), "{b}");
        assert!(
            !util::fd_survives_exec(n.as_raw_fd()),
            "{b}: leaked into exec"
        );
    }
}

#[test]
fn backends_report_themselves() {
    for b in ALL {
        assert_eq!(Notifier::with_backend(b).unwrap().backend(), b);
    }
    assert_eq!(Backend::EventFd.to_string(), "eventfd");
    assert!(Backend::Pipe2.is_pipe() && Backend::PipeFcntl.is_pipe());
}

#[test]
fn new_honours_force_pipe_env() {
    // CI runs the suite twice: without the variable, and with
    // FDLOOP_FORCE_PIPE=1. This test checks whichever applies.
    let n = Notifier::new().unwrap();
    match std::env::var(FORCE_PIPE_ENV).ok().as_deref() {
        None | Some("") | Some("0") => assert_eq!(n.backend(), Backend::EventFd),
        Some("fcntl") => assert_eq!(n.backend(), Backend::PipeFcntl),
        Some(_) => assert_eq!(n.backend(), Backend::Pipe2),
    }
}

// --- fallback scenarios, each in a child process (seccomp / rlimit are
// process-wide and irreversible) ---------------------------------------------

/// Plays the scenario named by `util::SCENARIO_ENV` when this binary was
/// re-run as a child; a no-op in the normal test run.
#[test]
fn scenario_child() {
    let Some(s) = util::scenario() else { return };
    let enosys = libc::ENOSYS;
    match s.as_str() {
        "no-eventfd-enosys" => {
            util::seccomp_fail_syscalls(&[(libc::SYS_eventfd2, enosys)]);
        }
        "no-eventfd-eperm" => {
            util::seccomp_fail_syscalls(&[(libc::SYS_eventfd2, libc::EPERM)]);
        }
        "no-eventfd-einval" => {
            util::seccomp_fail_syscalls(&[(libc::SYS_eventfd2, libc::EINVAL)]);
        }
        "no-eventfd-no-pipe2" => {
            util::seccomp_fail_syscalls(&[(libc::SYS_eventfd2, enosys), (libc::SYS_pipe2, enosys)])
        }
        "nothing" => util::seccomp_fail_syscalls(&[
            (libc::SYS_eventfd2, enosys),
            (libc::SYS_pipe2, enosys),
            #[cfg(target_arch = "x86_64")]
            (libc::SYS_pipe, enosys),
        ]),
        "emfile" => util::set_nofile_limit(0),
        other => panic!("unknown scenario {other}"),
    }
    match Notifier::new() {
        Ok(n) => {
            // The fallback must work end to end, not only be chosen.
            let n = Arc::new(n);
            let n2 = n.clone();
            let t = thread::spawn(move || n2.notify().unwrap());
            let woke = n.wait(Some(Duration::from_secs(10))).unwrap();
            t.join().unwrap();
            // A second notifier reuses the cached decision.
            let again = Notifier::new().unwrap().backend();
            println!("backend={:?}", n.backend());
            println!("woke={woke}");
            println!("again={again:?}");
        }
        Err(e) => {
            println!("error_kind={:?}", e.kind());
            println!("errno={:?}", e.raw_os_error());
        }
    }
}

fn scenario(name: &str) -> std::process::Output {
    let out = util::run_scenario("scenario_child", name);
    assert!(
        out.status.success(),
        "scenario {name} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn falls_back_to_pipe2_when_eventfd_is_unavailable() {
    for s in ["no-eventfd-enosys", "no-eventfd-eperm", "no-eventfd-einval"] {
        let out = scenario(s);
        // In a run with FDLOOP_FORCE_PIPE=fcntl the child starts at PipeFcntl.
        let want = if std::env::var(FORCE_PIPE_ENV).as_deref() == Ok("fcntl") {
            "PipeFcntl"
        } else {
            "Pipe2"
        };
        assert_eq!(
            util::scenario_value(&out, "backend").as_deref(),
            Some(want),
            "{s}"
        );
        assert_eq!(util::scenario_value(&out, "again").as_deref(), Some(want));
        assert_eq!(util::scenario_value(&out, "woke").as_deref(), Some("true"));
    }
}

// Elsewhere (aarch64, riscv64) `pipe()` is itself `pipe2` with no flags.
#[cfg(target_arch = "x86_64")]
#[test]
fn falls_back_to_pipe_fcntl_without_pipe2() {
    let out = scenario("no-eventfd-no-pipe2");
    assert_eq!(
        util::scenario_value(&out, "backend").as_deref(),
        Some("PipeFcntl")
    );
    assert_eq!(util::scenario_value(&out, "woke").as_deref(), Some("true"));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn no_backend_at_all_is_a_clear_error() {
    let out = scenario("nothing");
    assert_eq!(
        util::scenario_value(&out, "errno"),
        Some(format!("Some({})", libc::ENOSYS))
    );
    assert_eq!(
        util::scenario_value(&out, "error_kind").as_deref(),
        Some(&*format!("{:?}", ErrorKind::Unsupported))
    );
}

#[test]
fn emfile_is_returned_not_masked_by_fallback() {
    let out = scenario("emfile");
    assert_eq!(
        util::scenario_value(&out, "errno"),
        Some(format!("Some({})", libc::EMFILE))
    );
}
