//! Resource hygiene: creating and dropping every kind of fdloop object many
//! times leaves the open-descriptor set exactly as it was, and the resident
//! set size flat after a warm-up.
//!
//! Cycles per object kind: 10^4 by default, 10^5 with `FDLOOP_SOAK=1` —
//! except whole inotify instances, whose teardown waits for an RCU grace
//! period in the kernel (~9 ms each here): 200 by default, 5000 with
//! `FDLOOP_SOAK=1` (adding and removing watches on one instance runs the
//! full count).
//! Descriptor counts and RSS are process-wide, so the tests of this file
//! take one lock and run one at a time.

mod util;

use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fdloop::channel::{self, Event};
use fdloop::process::{Child, ChildBackend};
use fdloop::signal::{Signal, Signals};
use fdloop::watch::{Watch, WatchMask};
use fdloop::{
    Action, Backend, Clock, EventFd, EventLoop, Interest, Io, Mode, Notifier, Ping, Timer,
};

/// RSS may grow this much over the measured cycles (allocator slack,
/// harness output) without counting as a leak. A leak of 100 bytes per
/// cycle is 1 MB over 10^4 cycles.
const RSS_TOLERANCE: u64 = 768 * 1024;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn cycles() -> usize {
    util::size(10_000, 100_000) as usize
}

/// Runs `cycle` a tenth of [`cycles`] times to warm up, then [`cycles`]
/// times measured: descriptors must match exactly, RSS within tolerance.
fn check(what: &str, cycle: impl FnMut(usize)) {
    check_n(what, cycles(), cycle);
}

/// The caller holds [`serial`] from its first line, so no other test
/// opens or closes anything while it measures.
fn check_n(what: &str, n: usize, mut cycle: impl FnMut(usize)) {
    for i in 0..n / 10 {
        cycle(i);
    }
    let fds = util::open_fds();
    let rss = util::rss_bytes();
    let start = Instant::now();
    for i in 0..n {
        cycle(i);
    }
    let took = start.elapsed();
    let fds_after = util::open_fds();
    let rss_after = util::rss_bytes();
    assert_eq!(
        fds_after, fds,
        "{what}: descriptors differ after {n} cycles"
    );
    let grew = rss_after.saturating_sub(rss);
    eprintln!(
        "{what}: {n} cycles in {took:?}; {} fds; RSS {} KiB -> {} KiB",
        fds.len(),
        rss / 1024,
        rss_after / 1024
    );
    assert!(
        grew <= RSS_TOLERANCE,
        "{what}: RSS grew by {} KiB over {n} cycles",
        grew / 1024
    );
}

#[test]
fn notifiers_of_every_backend() {
    let _serial = serial();
    check("Notifier", |i| {
        let n = match i % 4 {
            0 => Notifier::new(),
            1 => Notifier::with_backend(Backend::EventFd),
            2 => Notifier::with_backend(Backend::Pipe2),
            _ => Notifier::with_backend(Backend::PipeFcntl),
        }
        .unwrap();
        n.notify().unwrap();
        assert!(n.drain().unwrap());
    });
}

#[test]
fn eventfds() {
    let _serial = serial();
    check("EventFd", |i| {
        let e = EventFd::options()
            .nonblocking(i % 2 == 0)
            .semaphore(i % 3 == 0)
            .open()
            .unwrap();
        e.write(1).unwrap();
        let e2 = e.try_clone().unwrap();
        assert_eq!(e2.read().unwrap(), 1);
    });
}

#[test]
fn event_loops_with_remote_timers_and_precise_waits() {
    let _serial = serial();
    check("EventLoop", |i| {
        let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
        let remote = ev.remote();
        remote.wake().unwrap();
        if i % 2 == 0 {
            // The timer store's timerfd, and a deferred call.
            ev.insert(Timer::after(Duration::ZERO), |_, _, n: &mut u32| {
                *n += 1;
                Action::Continue
            })
            .unwrap();
            ev.handle().defer(|n| *n += 1).unwrap();
        }
        let mut n = 0;
        if i % 8 == 0 {
            // A timed wait: the waiter's precision path (its own timerfd
            // where epoll_pwait2 is missing or a fallback is forced).
            ev.run_once(&mut n, Some(Duration::from_micros(1))).unwrap();
        }
        ev.dispatch_pending(&mut n).unwrap();
        drop(remote);
    });
}

#[test]
fn channels_unbounded_and_bounded_with_messages_left_inside() {
    let _serial = serial();
    check("channel", |i| {
        if i % 2 == 0 {
            let (tx, rx) = channel::unbounded::<Box<u64>>().unwrap();
            let tx2 = tx.clone();
            for k in 0..4 {
                tx2.send(Box::new(k)).unwrap();
            }
            assert_eq!(*rx.try_recv().unwrap(), 0);
            // Three boxed messages dropped with the channel.
        } else {
            let (tx, rx) = channel::bounded::<String>(2).unwrap();
            tx.try_send("a".repeat(100)).unwrap();
            tx.try_send("b".into()).unwrap();
            assert!(tx.try_send("c".into()).is_err());
            drop(rx);
            assert!(tx.send("d".into()).is_err());
        }
    });
}

#[test]
fn signals_standalone() {
    let _serial = serial();
    check("Signals", |_| {
        let s = Signals::new(&[Signal::USR2, Signal::WINCH]).unwrap();
        assert!(s.try_read().unwrap().is_none());
    });
}

/// Whole inotify instances are slow to tear down (see the header).
fn watch_instance_cycles() -> usize {
    util::size(200, 5000) as usize
}

#[test]
fn watches_standalone() {
    let _serial = serial();
    let dir = util::TempDir::new("hygiene-watch");
    check_n("Watch instance", watch_instance_cycles(), |_| {
        let mut w = Watch::new().unwrap();
        w.add(dir.path(), WatchMask::CREATE).unwrap();
    });
    let mut w = Watch::new().unwrap();
    check("Watch add/remove", |_| {
        let id = w.add(dir.path(), WatchMask::CREATE).unwrap();
        w.remove(id).unwrap();
        // The IGNORED event each removal queues.
        let _ = w.read_events().unwrap();
    });
}

#[test]
fn watch_in_a_loop() {
    let _serial = serial();
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let dir = util::TempDir::new("hygiene-watch-loop");
    check_n("Watch in a loop", watch_instance_cycles(), |_| {
        let mut w = Watch::new().unwrap();
        w.add(dir.path(), WatchMask::DELETE).unwrap();
        let id = ev.insert(w, |_, _, _| Action::Continue).unwrap();
        ev.dispatch_pending(&mut ()).unwrap();
        ev.remove(id).unwrap();
    });
}

fn long_child() -> std::process::Child {
    Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn children_on_both_backends() {
    let _serial = serial();
    // One long-lived child watched and forgotten over and over: a pidfd
    // each time, or a SIGCHLD registration with its notifier.
    let mut proc = long_child();
    let pid = proc.id();
    check("Child", |i| {
        let backend = if i % 2 == 0 {
            ChildBackend::PidFd
        } else {
            ChildBackend::Sigchld
        };
        let mut c = Child::with_backend(pid, backend).unwrap();
        assert_eq!(c.try_wait().unwrap(), None);
    });
    proc.kill().unwrap();
    proc.wait().unwrap();
}

/// Every source kind inserted into one long-lived loop and removed again
/// (or, for a channel, closed and removed by the loop itself).
#[test]
fn every_source_inserted_into_a_loop_and_removed() {
    let _serial = serial();
    let mut ev: EventLoop<u64> = EventLoop::new().unwrap();
    let mut proc = long_child();
    let pid = proc.id();
    check("loop sources", |i| {
        let h = ev.handle();
        let id = match i % 8 {
            0 => {
                let (p, ping) = Ping::new().unwrap();
                p.ping().unwrap();
                h.insert(ping, |(), _, n: &mut u64| {
                    *n += 1;
                    Action::Continue
                })
                .map_err(fdloop::Error::from)
            }
            1 => {
                let (tx, rx) = channel::unbounded::<u64>().unwrap();
                tx.send(1).unwrap();
                h.insert(rx, |e, _, n: &mut u64| {
                    if let Event::Msg(m) = e {
                        *n += m;
                    }
                    Action::Continue
                })
                .map_err(fdloop::Error::from)
            }
            2 => {
                let (tx, _rx) = channel::bounded::<u64>(1).unwrap();
                h.insert(tx.ready_source(), |(), _, _| Action::Continue)
                    .map_err(fdloop::Error::from)
            }
            3 => {
                let e = EventFd::options().nonblocking(true).open().unwrap();
                e.write(1).unwrap();
                h.insert(Io::new(e, Interest::READABLE, Mode::Level), |_, io, _| {
                    let _ = io.read();
                    Action::Continue
                })
                .map_err(fdloop::Error::from)
            }
            4 => h
                .insert(
                    Timer::after(Duration::from_secs(3600)).clock(Clock::Monotonic),
                    |_, _, _| Action::Continue,
                )
                .map_err(fdloop::Error::from),
            5 if i % 16 == 5 => h
                .insert(
                    Signals::new(&[Signal::USR2])
                        .unwrap()
                        .allow_unblocked_threads(true),
                    |_, _, _| Action::Continue,
                )
                .map_err(fdloop::Error::from),
            5 => h
                .insert(
                    Timer::every(Duration::from_secs(3600)).clock(Clock::Realtime),
                    |_, _, _| Action::Continue,
                )
                .map_err(fdloop::Error::from),
            6 => h
                .insert(
                    Child::with_backend(pid, ChildBackend::PidFd).unwrap(),
                    |_, _, _| Action::Continue,
                )
                .map_err(fdloop::Error::from),
            _ => h
                .insert(
                    Child::with_backend(pid, ChildBackend::Sigchld).unwrap(),
                    |_, _, _| Action::Continue,
                )
                .map_err(fdloop::Error::from),
        }
        .unwrap();
        let mut n = 0;
        ev.dispatch_pending(&mut n).unwrap();
        match ev.remove(id) {
            // The channel closed (its sender is gone) and left by itself.
            Err(fdloop::Error::NoSuchSource(_)) if i % 8 == 1 => {}
            r => r.unwrap(),
        }
        assert!(ev.is_empty());
    });
    proc.kill().unwrap();
    proc.wait().unwrap();
}

#[test]
fn idle_and_deferred_calls() {
    let _serial = serial();
    let mut ev: EventLoop<u64> = EventLoop::new().unwrap();
    check("idle/defer", |_| {
        let h = ev.handle();
        let idle = h
            .insert_idle(|n| {
                *n += 1;
                Action::Remove
            })
            .unwrap();
        h.defer(|n| *n += 1).unwrap();
        let mut n = 0;
        ev.dispatch_pending(&mut n).unwrap();
        ev.run_once(&mut n, Some(Duration::from_nanos(1))).unwrap();
        let _ = ev.remove(idle);
        assert!(ev.is_empty());
    });
}

#[test]
fn calls_at_deadlines_cancelled_and_run() {
    let _serial = serial();
    let mut ev: EventLoop<usize> = EventLoop::new().unwrap();
    check("call_at", |i| {
        let h = ev.handle();
        // Each closure owns an allocation of its own, so a closure that is
        // never dropped shows in RSS.
        let kept = char::from(b'a' + (i % 26) as u8).to_string().repeat(128);
        let cancelled = h
            .call_at(Instant::now() + Duration::from_secs(3600), move |n| {
                *n += kept.len()
            })
            .unwrap();
        let ran = char::from(b'a' + (i % 26) as u8).to_string().repeat(128);
        h.call_after(Duration::ZERO, move |n| *n += ran.len())
            .unwrap();
        h.remove(cancelled).unwrap();
        let mut n = 0;
        while n == 0 {
            ev.run_once(&mut n, Some(Duration::from_secs(5))).unwrap();
        }
        assert_eq!(n, 128);
        assert!(ev.is_empty());
    });
}

/// Regression test (bug found by this suite, fixed): a callback that holds a [`LoopHandle`]
/// (the documented way to insert, remove or stop from inside a callback)
/// makes a reference cycle — the loop's shared state owns the callback, the
/// callback owns the handle, the handle is an `Rc` of that state — and
/// `EventLoop` has no `Drop` that breaks it. Dropping the loop then leaks
/// its epoll descriptor, its wake-up notifier and every source still in it
/// (descriptors and memory). valgrind reports the same as "definitely lost"
/// (see scripts/valgrind.sh).
///
/// [`LoopHandle`]: fdloop::LoopHandle
#[test]
fn dropping_a_loop_whose_callbacks_hold_its_handle_closes_everything() {
    let _serial = serial();
    let fds = util::open_fds();
    for _ in 0..10 {
        let mut ev: EventLoop<()> = EventLoop::new().unwrap();
        let h = ev.handle();
        let (_p, ping) = Ping::new().unwrap();
        ev.insert(ping, move |(), _, _| {
            h.stop();
            Action::Continue
        })
        .unwrap();
        ev.dispatch_pending(&mut ()).unwrap();
    }
    let after = util::open_fds();
    assert_eq!(
        after.len(),
        fds.len(),
        "10 dropped loops left {} descriptors open",
        after.len() - fds.len()
    );
}
