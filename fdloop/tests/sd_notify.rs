//! The systemd notify protocol and the loop's watchdog, against a unix
//! datagram socket each test binds itself (standing in for the service
//! manager). Tests that need `NOTIFY_SOCKET`/`WATCHDOG_*` in the
//! environment, or a full descriptor table, run as child processes (this
//! binary re-run on `scenario_child`), so no test mutates its own
//! environment.

mod util;

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fdloop::systemd::{parse_watchdog, NotifyAddress, NotifyError, SystemdNotifier};
use fdloop::{Action, EventLoop};

/// The stand-in service manager: a bound datagram socket and a thread that
/// collects what arrives, with arrival times, so the receiver's queue (10
/// datagrams by default, `net.unix.max_dgram_qlen`) never fills.
struct Manager {
    /// As `NOTIFY_SOCKET` would say it.
    address: String,
    got: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    _dir: Option<util::TempDir>,
}

/// A datagram socket bound at `notify` in a fresh temp dir, and its address.
fn bind_path() -> (UnixDatagram, String, util::TempDir) {
    let dir = util::TempDir::new("sd-notify");
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    (sock, path.to_str().unwrap().to_owned(), dir)
}

/// A datagram socket bound to a unique abstract name, and its address.
fn bind_abstract(tag: &str) -> (UnixDatagram, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("fdloop-test-{tag}-{}-{nanos}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    (UnixDatagram::bind_addr(&addr).unwrap(), format!("@{name}"))
}

impl Manager {
    /// Bound at `notify` in a fresh temp dir.
    fn at_path() -> Manager {
        let (sock, address, dir) = bind_path();
        Manager::collect(sock, address, Some(dir))
    }

    /// Bound to a unique abstract name.
    fn abstract_named(tag: &str) -> Manager {
        let (sock, address) = bind_abstract(tag);
        Manager::collect(sock, address, None)
    }

    fn collect(sock: UnixDatagram, address: String, dir: Option<util::TempDir>) -> Manager {
        sock.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, st) = (got.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        let msg = String::from_utf8(buf[..n].to_vec()).unwrap();
                        g.lock().unwrap().push((Instant::now(), msg));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("recv: {e}"),
                }
            }
        });
        Manager {
            address,
            got,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Every datagram received so far (taken), after a short grace period
    /// for those in flight.
    fn drain(&self) -> Vec<String> {
        thread::sleep(Duration::from_millis(30));
        self.take().into_iter().map(|(_, m)| m).collect()
    }

    fn take(&self) -> Vec<(Instant, String)> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }

    /// The next datagram, waiting up to 5 s.
    fn next(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            {
                let mut got = self.got.lock().unwrap();
                if !got.is_empty() {
                    return got.remove(0).1;
                }
            }
            assert!(Instant::now() < deadline, "no datagram arrived");
            thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}

// ---------------------------------------------------------------------------
// Messages.

#[test]
fn each_call_sends_exactly_its_datagram() {
    let m = Manager::at_path();
    let n = SystemdNotifier::connect(&m.address).unwrap();
    assert!(n.is_enabled());
    assert_eq!(
        n.address(),
        Some(&NotifyAddress::Path(PathBuf::from(&m.address)))
    );
    assert!(n.notify_ready().unwrap());
    assert_eq!(m.next(), "READY=1");
    assert!(n.notify_status("serving 3 clients; load=0.5").unwrap());
    assert_eq!(m.next(), "STATUS=serving 3 clients; load=0.5");
    assert!(n.notify_status("").unwrap());
    assert_eq!(m.next(), "STATUS=");
    assert!(n.notify_watchdog().unwrap());
    assert_eq!(m.next(), "WATCHDOG=1");
    assert!(n.notify_stopping().unwrap());
    assert_eq!(m.next(), "STOPPING=1");
    assert!(n.notify("FDSTORE=1\nFDNAME=x").unwrap());
    assert_eq!(m.next(), "FDSTORE=1\nFDNAME=x");

    let before = monotonic_usec();
    assert!(n.notify_reloading().unwrap());
    let after = monotonic_usec();
    let msg = m.next();
    let (first, second) = msg.split_once('\n').expect("two lines");
    assert_eq!(first, "RELOADING=1");
    let usec: u64 = second
        .strip_prefix("MONOTONIC_USEC=")
        .expect("MONOTONIC_USEC line")
        .parse()
        .unwrap();
    assert!(
        (before..=after).contains(&usec),
        "{before} <= {usec} <= {after}"
    );

    // One datagram per call, nothing extra; clones share the counters.
    assert!(m.drain().is_empty());
    let clone = n.clone();
    assert!(clone.notify_ready().unwrap());
    assert_eq!(m.next(), "READY=1");
    assert_eq!((n.sent(), n.failed()), (8, 0));
}

#[test]
fn abstract_addresses_reach_the_abstract_namespace() {
    let m = Manager::abstract_named("abstract");
    assert!(m.address.starts_with('@'));
    let n = SystemdNotifier::connect(&m.address).unwrap();
    let Some(NotifyAddress::Abstract(name)) = n.address() else {
        panic!("not abstract: {:?}", n.address())
    };
    assert_eq!(name.as_slice(), &m.address.as_bytes()[1..]);
    assert!(n.notify_ready().unwrap());
    assert!(n.notify_status("abstract ok").unwrap());
    assert_eq!(m.next(), "READY=1");
    assert_eq!(m.next(), "STATUS=abstract ok");
    // No file named "@..." was involved: the same name as a path is absent.
    assert!(!std::path::Path::new(&m.address).exists());
}

#[test]
fn a_status_with_a_newline_is_refused_and_nothing_is_sent() {
    let m = Manager::at_path();
    let n = SystemdNotifier::connect(&m.address).unwrap();
    for bad in ["ok\nREADY=1", "\n", "trailing\n"] {
        match n.notify_status(bad) {
            Err(e @ NotifyError::InvalidMessage(_)) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput)
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(matches!(
        n.notify_status("nul\0byte"),
        Err(NotifyError::InvalidMessage(_))
    ));
    assert!(matches!(n.notify(""), Err(NotifyError::InvalidMessage(_))));
    assert!(m.drain().is_empty(), "a refused message went out");
    assert_eq!((n.sent(), n.failed()), (0, 0));
}

#[test]
fn nobody_listening_is_a_clear_error_and_no_socket_is_ok_false() {
    // No file at the path: ENOENT.
    let dir = util::TempDir::new("sd-notify-missing");
    let path = dir.path().join("nobody");
    let n = SystemdNotifier::connect(&path).unwrap();
    let e = n.notify_ready().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("nobody listening"), "{e}");
    // A socket file whose socket is closed: ECONNREFUSED.
    drop(UnixDatagram::bind(&path).unwrap());
    let e = n.notify_ready().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{e}");
    // An abstract name nobody holds: ECONNREFUSED.
    let a = SystemdNotifier::connect("@fdloop-test-nobody-holds-this").unwrap();
    assert_eq!(
        a.notify_watchdog().unwrap_err().raw_os_error(),
        Some(libc::ECONNREFUSED)
    );
    assert_eq!((n.sent(), n.failed()), (0, 2));
    // The error converts into an io::Error with the errno intact.
    let io_err: io::Error = a.notify_ready().unwrap_err().into();
    assert_eq!(io_err.kind(), io::ErrorKind::ConnectionRefused);

    // No NOTIFY_SOCKET at all: every call does nothing and says so.
    let off = SystemdNotifier::disabled();
    assert!(!off.is_enabled());
    for r in [
        off.notify_ready(),
        off.notify_stopping(),
        off.notify_reloading(),
        off.notify_watchdog(),
        off.notify_status("x"),
        off.notify("A=1"),
    ] {
        assert!(!r.unwrap());
    }
}

#[test]
fn a_full_receiver_queue_is_eagain_and_never_blocks() {
    // Nobody reads: the receiver's queue fills.
    let (sock, address, _dir) = bind_path();
    let n = SystemdNotifier::connect(&address).unwrap();
    let t0 = Instant::now();
    let mut sent = 0u64;
    let err = loop {
        match n.notify_watchdog() {
            Ok(true) => sent += 1,
            Ok(false) => unreachable!(),
            Err(e) => break e,
        }
        assert!(sent < 1_000_000, "the queue never filled");
    };
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN), "{err}");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Every datagram that was accepted is there; after draining, sends work.
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let queued = std::iter::from_fn(|| sock.recv(&mut buf).ok()).count();
    assert_eq!(queued as u64, sent);
    assert!(n.notify_watchdog().unwrap());
    assert_eq!(n.failed(), 1);
}

// ---------------------------------------------------------------------------
// Parsing the environment's values (pure functions).

#[test]
fn notify_socket_values_parse_like_sd_notify() {
    let parse = |v: &str| NotifyAddress::from_env_value(Some(OsStr::new(v)));
    assert_eq!(NotifyAddress::from_env_value(None).unwrap(), None);
    assert_eq!(parse("").unwrap(), None);
    assert_eq!(
        parse("/run/systemd/notify").unwrap(),
        Some(NotifyAddress::Path("/run/systemd/notify".into()))
    );
    assert_eq!(
        parse("@abs/name").unwrap(),
        Some(NotifyAddress::Abstract(b"abs/name".to_vec()))
    );
    for vsock in ["vsock:2:1234", "vsock-dgram:2:1234", "vsock-stream:3:9"] {
        let e = parse(vsock).unwrap_err();
        assert!(matches!(e, NotifyError::UnsupportedAddress(_)), "{e:?}");
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }
    let too_long = format!("/{}", "x".repeat(200));
    for bad in ["relative/notify", "@", "notify", &too_long] {
        let e = parse(bad).unwrap_err();
        assert!(matches!(e, NotifyError::InvalidAddress(_)), "{bad}: {e:?}");
    }
}

#[test]
fn watchdog_settings_parse_like_sd_watchdog_enabled() {
    let s = |v: &'static str| Some(OsStr::new(v));
    let ms = |n| Some(Duration::from_millis(n));
    assert_eq!(parse_watchdog(s("100000"), None, 7).unwrap(), ms(100));
    assert_eq!(parse_watchdog(s("100000"), s(""), 7).unwrap(), ms(100));
    assert_eq!(parse_watchdog(s("100000"), s("7"), 7).unwrap(), ms(100));
    // The watchdog is another process's: not ours to pet.
    assert_eq!(parse_watchdog(s("100000"), s("8"), 7).unwrap(), None);
    assert_eq!(parse_watchdog(None, s("7"), 7).unwrap(), None);
    assert_eq!(parse_watchdog(s(""), None, 7).unwrap(), None);
    for (usec, pid) in [
        ("0", None),
        ("-5", None),
        ("10s", None),
        ("100000", s("0")),
        ("100000", s("abc")),
    ] {
        let e = parse_watchdog(s(usec), pid, 7).unwrap_err();
        assert!(matches!(e, NotifyError::InvalidWatchdog(_)), "{e:?}");
    }
}

// ---------------------------------------------------------------------------
// The loop's watchdog.

fn count_watchdogs(msgs: &[String]) -> usize {
    assert!(msgs.iter().all(|m| m == "WATCHDOG=1"), "{msgs:?}");
    msgs.len()
}

/// Runs `ev` for `d`.
fn run_for<S: 'static>(ev: &mut EventLoop<S>, st: &mut S, d: Duration) {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        ev.run_once(st, Some(left)).unwrap();
    }
}

#[test]
fn the_loop_pings_at_half_the_interval() {
    let m = Manager::abstract_named("half");
    let n = SystemdNotifier::connect(&m.address).unwrap();
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    // WATCHDOG_USEC=100000: a ping every 50 ms.
    let interval = parse_watchdog(Some(OsStr::new("100000")), None, 1)
        .unwrap()
        .unwrap();
    let id = ev
        .handle()
        .insert_systemd_watchdog(&n, interval)
        .unwrap()
        .expect("a timer");
    let t0 = Instant::now();
    run_for(&mut ev, &mut (), Duration::from_millis(500));
    let elapsed = t0.elapsed();
    let pings = count_watchdogs(&m.drain());
    // 10 expected; generous bounds for a loaded machine, yet above what
    // pinging at the full interval (at most 5) would give at the low end,
    // and far from a busy loop at the high end.
    let expect = (elapsed.as_millis() / 50) as usize;
    assert!(
        (6..=expect + 1).contains(&pings),
        "{pings} pings in {elapsed:?}"
    );
    assert_eq!(n.sent() as usize, pings);
    // Removing the timer stops the pings.
    ev.remove(id).unwrap();
    run_for(&mut ev, &mut (), Duration::from_millis(120));
    assert!(m.drain().is_empty());
}

#[test]
fn a_loop_stuck_in_a_callback_stops_pinging() {
    let m = Manager::at_path();
    let n = SystemdNotifier::connect(&m.address).unwrap();
    let mut ev: EventLoop<Option<(Instant, Instant, u64)>> = EventLoop::new().unwrap();
    ev.handle()
        .insert_systemd_watchdog(&n, Duration::from_millis(40))
        .unwrap()
        .unwrap();
    let mut seen = None;
    run_for(&mut ev, &mut seen, Duration::from_millis(150));
    assert!(count_watchdogs(&m.drain()) >= 2, "pinging before the stall");

    // A callback that hangs for 400 ms (10 ping periods): nothing is sent
    // while it runs, since pings come from the loop's own thread.
    let sent = n.clone();
    ev.handle()
        .defer(move |seen| {
            let (t0, before) = (Instant::now(), sent.sent());
            thread::sleep(Duration::from_millis(400));
            *seen = Some((t0, Instant::now(), sent.sent() - before));
        })
        .unwrap();
    let t0 = Instant::now();
    while seen.is_none() {
        ev.run_once(&mut seen, Some(Duration::from_millis(10)))
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10));
    }
    let (start, end, sent_during) = seen.unwrap();
    assert_eq!(sent_during, 0, "pings were sent while the loop was stuck");
    // What the manager saw: nothing arrived during the stall (after a
    // 30 ms grace for a ping sent just before it).
    let late = m
        .take()
        .into_iter()
        .filter(|(at, _)| *at > start + Duration::from_millis(30) && *at < end)
        .count();
    assert_eq!(late, 0, "the manager got pings while the loop was stuck");

    // Unstuck, it pings again (the missed periods are merged into one).
    run_for(&mut ev, &mut seen, Duration::from_millis(150));
    assert!(count_watchdogs(&m.drain()) >= 2, "pinging after the stall");
}

#[test]
fn a_disabled_notifier_or_zero_interval_inserts_nothing() {
    let ev: EventLoop<()> = EventLoop::new().unwrap();
    let h = ev.handle();
    let off = SystemdNotifier::disabled();
    assert_eq!(
        h.insert_systemd_watchdog(&off, Duration::from_secs(1))
            .unwrap(),
        None
    );
    let on = SystemdNotifier::connect("@fdloop-test-zero-interval").unwrap();
    let e = h.insert_systemd_watchdog(&on, Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(ev.is_empty());
}

#[test]
fn failed_pings_are_counted_and_the_timer_keeps_running() {
    // Nobody listens: every ping fails with ECONNREFUSED; the loop goes on.
    let n = SystemdNotifier::connect("@fdloop-test-watchdog-nobody").unwrap();
    let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
    let id = ev
        .handle()
        .insert_systemd_watchdog(&n, Duration::from_millis(20))
        .unwrap()
        .unwrap();
    ev.handle()
        .insert_idle(|n| {
            *n += 1;
            Action::Continue
        })
        .unwrap();
    let mut iterations = 0;
    run_for(&mut ev, &mut iterations, Duration::from_millis(150));
    assert!(n.failed() >= 5, "{} failures", n.failed());
    assert_eq!(n.sent(), 0);
    assert!(iterations > 0);
    ev.remove(id).unwrap(); // still in the loop
}

// ---------------------------------------------------------------------------
// Child scenarios: the environment, and an exhausted descriptor table.

/// The address the parent's manager socket is bound to (child side).
const ADDR_ENV: &str = "FDLOOP_TEST_SD_ADDR";

#[test]
fn scenario_child() {
    let Some(s) = util::scenario() else { return };
    match s.as_str() {
        "env" => child_env(),
        "emfile" => child_emfile(),
        other => panic!("unknown scenario {other}"),
    }
}

/// `from_env` and `enable_systemd_watchdog` with whatever `NOTIFY_SOCKET`
/// and `WATCHDOG_*` the parent set.
fn child_env() {
    let n = SystemdNotifier::from_env().unwrap();
    println!("ready={}", n.notify_ready().unwrap());
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let id = ev.enable_systemd_watchdog().unwrap();
    println!("watchdog={}", id.is_some());
    run_for(&mut ev, &mut (), Duration::from_millis(300));
    println!("done=1");
}

/// Pings from the loop while every descriptor is taken.
fn child_emfile() {
    let addr = std::env::var(ADDR_ENV).unwrap();
    let n = SystemdNotifier::connect(&addr).unwrap();
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    ev.handle()
        .insert_systemd_watchdog(&n, Duration::from_millis(40))
        .unwrap()
        .unwrap();
    run_for(&mut ev, &mut (), Duration::from_millis(50));
    // Fill the descriptor table under a low limit.
    util::set_soft_nofile_limit(util::open_fd_count() as u64 + 8);
    let mut hoard = Vec::new();
    let errno = loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hoard.push(f),
            Err(e) => break e.raw_os_error(),
        }
    };
    println!("open_errno={errno:?}");
    let e = SystemdNotifier::connect(&addr).unwrap_err();
    println!("new_socket_errno={:?}", e.raw_os_error());
    let before = n.sent();
    run_for(&mut ev, &mut (), Duration::from_millis(300));
    println!("pings={}", n.sent() - before);
    println!("failed={}", n.failed());
    println!("status={}", n.notify_status("out of descriptors").unwrap());
    drop(hoard);
}

fn child(scenario: &str, env: &[(&str, &str)]) -> std::process::Output {
    util::expect_success(
        scenario,
        util::run_scenario_env("scenario_child", scenario, env),
    )
}

fn value(out: &std::process::Output, key: &str) -> String {
    util::scenario_value(out, key).unwrap_or_else(|| {
        panic!(
            "no {key}= in the child's output:\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs the `env` scenario with `NOTIFY_SOCKET=socket`,
/// `WATCHDOG_USEC=100000` and `WATCHDOG_PID=pid`; returns what it printed
/// for `ready=` and `watchdog=`.
fn env_child(socket: &str, pid: &str) -> (String, String) {
    let env = [
        ("NOTIFY_SOCKET", socket),
        ("WATCHDOG_USEC", "100000"),
        ("WATCHDOG_PID", pid),
    ];
    let out = child("env", &env);
    (value(&out, "ready"), value(&out, "watchdog"))
}

#[test]
fn from_env_and_the_loop_watchdog_follow_the_environment() {
    let m = Manager::abstract_named("env");
    let yes = ("true".to_owned(), "true".to_owned());
    assert_eq!(env_child(&m.address, ""), yes);
    let msgs = m.drain();
    assert_eq!(msgs[0], "READY=1");
    let pings = count_watchdogs(&msgs[1..]);
    assert!((3..=8).contains(&pings), "{pings} pings in 300 ms at 50 ms");

    // WATCHDOG_PID names another process (pid 1): not our watchdog.
    let (ready, watchdog) = env_child(&m.address, "1");
    assert_eq!((ready.as_str(), watchdog.as_str()), ("true", "false"));
    assert_eq!(m.drain(), ["READY=1"]);

    // No NOTIFY_SOCKET: nothing sent, no watchdog, no error.
    let (ready, watchdog) = env_child("", "");
    assert_eq!((ready.as_str(), watchdog.as_str()), ("false", "false"));
    assert!(m.drain().is_empty());
}

#[test]
fn pings_go_out_when_descriptors_are_exhausted() {
    let m = Manager::abstract_named("emfile");
    let out = child("emfile", &[(ADDR_ENV, m.address.as_str())]);
    let emfile = format!("{:?}", Some(libc::EMFILE));
    assert_eq!(value(&out, "open_errno"), emfile);
    // Creating a notifier now fails: the ping really needs no descriptor.
    assert_eq!(value(&out, "new_socket_errno"), emfile);
    let pings: usize = value(&out, "pings").parse().unwrap();
    assert!(pings >= 3, "{pings} pings in 300 ms at 20 ms");
    assert_eq!(value(&out, "failed"), "0");
    assert_eq!(value(&out, "status"), "true");
    let msgs = m.drain();
    let last = msgs.last().unwrap();
    assert_eq!(last, "STATUS=out of descriptors");
    assert!(count_watchdogs(&msgs[..msgs.len() - 1]) >= pings);
}
