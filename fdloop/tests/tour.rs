//! The tour example: self-driven run, SIGTERM mid-load, serve mode with a
//! real TCP client, SIGHUP statistics, and bad flags.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{example_exe, finish_example, run_example};

fn kill(pid: u32, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

#[test]
fn drives_itself_and_accounts_for_every_job() {
    let run = run_example(
        "tour",
        &["--duration", "1", "--workers", "2", "--clients", "2"],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    let out = &run.stdout;
    assert!(out.contains("all jobs accounted for"), "{run:?}");
    assert!(
        out.contains("helper process exited: exit code 3"),
        "{run:?}"
    );
    assert!(out.contains("wake-ups per message"), "{run:?}");
    assert!(out.contains("latency"), "{run:?}");
    assert!(
        out.contains("worker 0:") && out.contains("worker 1:"),
        "{run:?}"
    );
}

#[test]
fn sigterm_mid_load_shuts_down_gracefully_with_nothing_lost() {
    let args = ["--duration", "60", "--workers", "2", "--clients", "3"];
    let child = Command::new(example_exe("tour"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(1500));
    kill(pid, libc::SIGTERM);
    let run = finish_example(child, "tour", &args);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let me = std::process::id();
    assert!(
        run.stdout
            .contains(&format!("shutting down (SIGTERM from pid {me})")),
        "{run:?}"
    );
    assert!(run.stdout.contains("all jobs accounted for"), "{run:?}");
    assert!(!run.stdout.contains("MISMATCH"), "{run:?}");
}

/// Reads the first line of `tour --serve`, "fdloop tour: 2 workers serving
/// on 127.0.0.1:PORT (pid N); ...": the line and the address.
fn serving_on(out: &mut impl BufRead) -> (String, String) {
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first
        .split("serving on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    (first, addr)
}

#[test]
fn serve_mode_answers_a_client_prints_stats_on_sighup_and_stops_on_sigint() {
    let mut child = Command::new(example_exe("tour"))
        .args(["--serve", "127.0.0.1:0", "--workers", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (first, addr) = serving_on(&mut out);
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.write_all(b"sum 1 2 3\nfib 10\nrev abc\nbogus\n")
        .unwrap();
    let mut replies = BufReader::new(conn.try_clone().unwrap());
    let mut got = Vec::new();
    for _ in 0..4 {
        let mut l = String::new();
        replies.read_line(&mut l).unwrap();
        got.push(l.trim_end().to_owned());
    }
    assert_eq!(got[..3], ["6", "55", "cba"]);
    assert!(got[3].starts_with("error: unknown job"), "{got:?}");
    // Worker statistics reach the main thread every 250 ms.
    std::thread::sleep(Duration::from_millis(600));
    kill(pid, libc::SIGHUP);
    // Half-close: the server answers what it has and closes its side.
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = String::new();
    replies.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "nothing more to say after the replies");
    kill(pid, libc::SIGINT);
    let status = child.wait().unwrap();
    let mut log = first;
    out.read_to_string(&mut log).unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}\n{log}");
    assert!(log.contains("tcp jobs in        4 out        4"), "{log}");
    assert!(log.contains("shutting down (SIGINT"), "{log}");
    assert!(log.contains("all jobs accounted for: 4 over tcp"), "{log}");
}

#[test]
fn bad_flags_give_usage_and_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--workers", "0"],
        &["--duration", "soon"],
        &["--serve"],
    ] {
        let run = run_example("tour", args);
        assert_eq!(run.code(), Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains("usage: tour"), "{run:?}");
    }
}

#[test]
fn serve_mode_out_of_descriptors_refuses_sleeps_and_recovers() {
    let mut cmd = Command::new(example_exe("tour"));
    cmd.args(["--serve", "127.0.0.1:0", "--workers", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    util::child_nofile_limit(&mut cmd, 48);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (_, addr) = serving_on(&mut out);
    let mut err = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let job = |s: &TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (&*s).write_all(b"sum 1 2\n")?;
        let mut l = String::new();
        BufReader::new(s).read_line(&mut l)?;
        Ok::<_, std::io::Error>(l)
    };

    let all: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (mut served, mut refused, mut bare_eof) = (Vec::new(), 0, 0);
    for s in all {
        match util::unsolicited(&s, Duration::from_secs(5)) {
            None => served.push(s),
            // Seen once in CI under load (not reproduced since): a
            // connection closed with no line. Counted and bounded here,
            // reported in issue 15's notes, until its cause is found.
            Some(line) if line.is_empty() => bare_eof += 1,
            Some(line) => {
                assert!(line.starts_with("error: server full"), "{line:?}");
                refused += 1;
            }
        }
    }
    println!(
        "tour: served {}, refused {refused}, closed without a line {bare_eof}",
        served.len()
    );
    assert!(
        bare_eof <= 2,
        "{bare_eof} connections closed without a line"
    );
    assert!(
        served.len() >= 5 && refused >= 50,
        "{} / {refused}",
        served.len()
    );

    let ticks0 = util::cpu_ticks_of(pid);
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        for s in &served {
            assert_eq!(job(s).unwrap(), "3\n");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu = (util::cpu_ticks_of(pid) - ticks0) as f64
        / util::clock_ticks_per_sec()
        / t0.elapsed().as_secs_f64();
    println!("tour under EMFILE: CPU {:.1} %", cpu * 100.0);
    assert!(
        cpu < 0.10,
        "tour used {:.1} % CPU under EMFILE",
        cpu * 100.0
    );

    served.clear();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = TcpStream::connect(&addr).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        if util::unsolicited(&s, Duration::from_secs(5)).is_none()
            && job(&s).is_ok_and(|l| l == "3\n")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not served again");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(pid, libc::SIGINT);
    let status = child.wait().unwrap();
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}\n{log}");
    let lines = log.lines().filter(|l| l.contains("accept")).count();
    println!("{lines} log line(s) about refusals:\n{log}");
    assert!((1..=6).contains(&lines), "{lines} log lines:\n{log}");
}

/// Under a (stand-in) systemd: the tour says READY=1 and its status once it
/// serves, pets the watchdog from its loop at half `WATCHDOG_USEC`, and says
/// STOPPING=1 on its way out.
#[test]
fn under_systemd_it_notifies_ready_pets_the_watchdog_and_says_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = util::TempDir::new("tour-notify");
    let path = dir.path().join("notify.sock");
    let manager = UnixDatagram::bind(&path).unwrap();
    manager
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let args = ["--duration", "1", "--workers", "2", "--clients", "2"];
    let child = Command::new(example_exe("tour"))
        .args(args)
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "100000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut got: Vec<String> = Vec::new();
    let mut buf = [0u8; 512];
    while !got.iter().any(|m| m.contains("STOPPING=1")) {
        let n = manager
            .recv(&mut buf)
            .expect("a datagram from the tour within 10 s");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let run = finish_example(child, "tour", &args);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let first = |m: &str| got.iter().position(|g| g == m);
    let ready = first("READY=1").expect("READY=1");
    assert!(first("STATUS=serving").is_some(), "{got:?}");
    let pings = got.iter().filter(|g| *g == "WATCHDOG=1").count();
    // About 1 s of run at one ping per 50 ms; generous bounds.
    assert!(pings >= 5, "{pings} watchdog pings: {got:?}");
    assert!(ready < got.len() - 1, "{got:?}");
    assert_eq!(got.last().map(String::as_str), Some("STOPPING=1"));
}
