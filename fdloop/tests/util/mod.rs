//! Helpers shared by fdloop's integration tests.
#![allow(dead_code)] // each test file uses a different subset

use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

/// Readiness of `fd` right now (poll with a zero timeout): (readable, writable).
pub fn readiness(fd: impl AsFd) -> (bool, bool) {
    let mut fds = [PollFd::new(&fd, PollFlags::IN | PollFlags::OUT)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut fds, Some(&zero)).expect("poll");
    let r = fds[0].revents();
    (r.contains(PollFlags::IN), r.contains(PollFlags::OUT))
}

/// Whether `FD_CLOEXEC` is set on `fd`.
pub fn is_cloexec(fd: impl AsFd) -> bool {
    rustix::io::fcntl_getfd(fd)
        .expect("fcntl(F_GETFD)")
        .contains(rustix::io::FdFlags::CLOEXEC)
}

/// Whether `O_NONBLOCK` is set on `fd`.
pub fn is_nonblocking(fd: impl AsFd) -> bool {
    rustix::fs::fcntl_getfl(fd)
        .expect("fcntl(F_GETFL)")
        .contains(rustix::fs::OFlags::NONBLOCK)
}

/// Whether descriptor number `fd` is open in a freshly exec'd shell (a
/// descriptor without close-on-exec survives `exec`). The shell's `test`
/// builtin only stats `/proc/$$/fd/N`, opening nothing that could take the
/// number itself.
pub fn fd_survives_exec(fd: i32) -> bool {
    let status = Command::new("/bin/sh")
        .args(["-c", "test -e /proc/$$/fd/$0"])
        .arg(fd.to_string())
        .status()
        .expect("run /bin/sh");
    status.success()
}

/// Reads the raw 8-byte counter of an eventfd behind fdloop's back.
pub fn raw_eventfd_read(fd: impl AsFd) -> rustix::io::Result<u64> {
    let mut b = [0u8; 8];
    rustix::io::read(fd, &mut b)?;
    Ok(u64::from_ne_bytes(b))
}

/// Bytes waiting in a pipe or socket (`FIONREAD`).
pub fn bytes_waiting(fd: impl AsFd) -> u64 {
    rustix::io::ioctl_fionread(fd).expect("FIONREAD")
}

// ---------------------------------------------------------------------------
// Child scenarios: some tests must change process-wide state (seccomp
// filters, resource limits). They re-run this test binary as a child process
// that executes one named test with an environment variable telling it which
// scenario to play; the parent checks the child's output.

/// The environment variable that carries a child scenario's name.
pub const SCENARIO_ENV: &str = "FDLOOP_TEST_SCENARIO";

/// The scenario this process was started to play, if any.
pub fn scenario() -> Option<String> {
    std::env::var(SCENARIO_ENV).ok()
}

/// Runs test `test_name` of this same test binary in a child process with
/// `SCENARIO_ENV=scenario` and returns its output.
pub fn run_scenario(test_name: &str, scenario: &str) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO_ENV, scenario)
        .output()
        .expect("spawn child scenario")
}

/// The value of the line `key=value` that a child scenario printed.
pub fn scenario_value(out: &Output, key: &str) -> Option<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("{key}=");
    // The harness may print "test name ... " on the same line first.
    stdout.lines().find_map(|l| {
        l.split_once(&prefix)
            .filter(|(before, _)| before.is_empty() || before.ends_with(' '))
            .map(|(_, v)| v.trim().to_owned())
    })
}

/// Installs a seccomp filter on the calling thread that makes each listed
/// syscall fail with the paired errno; everything else is allowed. Irreversible:
/// only for child scenarios.
pub fn seccomp_fail_syscalls(rules: &[(libc::c_long, i32)]) {
    const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let stmt = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    // offsetof(struct seccomp_data, nr) == 0
    let mut prog = vec![stmt(BPF_LD_W_ABS, 0)];
    for &(nr, errno) in rules {
        prog.push(libc::sock_filter {
            code: BPF_JEQ_K,
            jt: 0,
            jf: 1,
            k: nr as u32,
        });
        prog.push(stmt(
            BPF_RET_K,
            libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA),
        ));
    }
    prog.push(stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW));
    install_seccomp_filter(&mut prog);
}

/// Installs a seccomp filter on the calling thread that makes `epoll_ctl`
/// fail with `errno` when its operation (`EPOLL_CTL_ADD`, `_MOD`, `_DEL`)
/// and its target descriptor number match one of `rules` (`(op, fd)`);
/// every other call is allowed. Filters stack, so a later call adds rules.
/// Irreversible: only for child scenarios.
pub fn seccomp_fail_epoll_ctl(rules: &[(i32, i32)], errno: i32) {
    const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // struct seccomp_data: nr at 0, args[i] at 16 + 8 * i (the low 32 bits
    // first on little-endian targets).
    const ARG_OP: u32 = 16 + 8;
    const ARG_FD: u32 = 16 + 2 * 8;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let per_rule = 5u8;
    let mut prog = vec![
        ins(BPF_LD_W_ABS, 0, 0, 0),
        ins(
            BPF_JEQ_K,
            0,
            per_rule * rules.len() as u8,
            libc::SYS_epoll_ctl as u32,
        ),
    ];
    for &(op, fd) in rules {
        // A mismatch jumps to the next rule (or the final "allow").
        prog.push(ins(BPF_LD_W_ABS, 0, 0, ARG_OP));
        prog.push(ins(BPF_JEQ_K, 0, 3, op as u32));
        prog.push(ins(BPF_LD_W_ABS, 0, 0, ARG_FD));
        prog.push(ins(BPF_JEQ_K, 0, 1, fd as u32));
        prog.push(ins(
            BPF_RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA),
        ));
    }
    prog.push(ins(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    install_seccomp_filter(&mut prog);
}

/// Installs seccomp filter `prog` on the calling thread (setting
/// `no_new_privs` first). Irreversible.
fn install_seccomp_filter(prog: &mut [libc::sock_filter]) {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: plain prctl/seccomp calls with a valid, live filter program;
    // the kernel copies the program before returning.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let rc = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        );
        assert_eq!(rc, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

/// Lowers this process's soft `RLIMIT_NOFILE` to `n` (child scenarios only).
pub fn set_nofile_limit(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: setrlimit with a valid pointer to an initialised struct.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

// ---------------------------------------------------------------------------
// Signal storms: interrupt a thread's blocking syscalls with EINTR.

extern "C" fn noop_handler(_: libc::c_int) {}

/// Installs a no-op SIGUSR1 handler *without* `SA_RESTART`, so blocking
/// syscalls in the signalled thread fail with `EINTR`.
pub fn install_eintr_handler() {
    // SAFETY: a zeroed sigaction is a valid starting value; the handler is an
    // async-signal-safe no-op function that lives for the whole program.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = noop_handler as *const () as usize;
        sa.sa_flags = 0; // no SA_RESTART
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// Sends SIGUSR1 to `target` every `every` until dropped. Counts the signals.
pub struct SignalStorm {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl SignalStorm {
    /// Starts the storm against the pthread `target`.
    pub fn start(target: libc::pthread_t, every: Duration) -> SignalStorm {
        install_eintr_handler();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut sent = 0;
            while !s.load(Ordering::Relaxed) {
                // SAFETY: `target` is a live thread for the storm's lifetime
                // (the caller stops the storm before the thread exits).
                unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                sent += 1;
                std::thread::sleep(every);
            }
            sent
        });
        SignalStorm {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the storm and returns how many signals were sent.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().map(|h| h.join().unwrap()).unwrap_or(0)
    }
}

impl Drop for SignalStorm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Runs `op` on a new thread while a signal storm (SIGUSR1 every 200 µs, no
/// `SA_RESTART`) hits that thread; after 100 ms of storm, `during` runs on the
/// calling thread (it should let `op` finish). Returns `op`'s result and the
/// number of signals sent. The thread stays alive until the storm has
/// stopped, so no signal targets a dead thread.
pub fn under_signal_storm<T: Send + 'static>(
    op: impl FnOnce() -> T + Send + 'static,
    during: impl FnOnce(),
) -> (T, u64) {
    use std::sync::mpsc;
    let (tid_tx, tid_rx) = mpsc::channel();
    let (res_tx, res_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        tid_tx.send(this_thread()).unwrap();
        let r = op();
        res_tx.send(r).ok();
        let _ = exit_rx.recv();
    });
    let target = tid_rx.recv().unwrap();
    let storm = SignalStorm::start(target, Duration::from_micros(200));
    std::thread::sleep(Duration::from_millis(100));
    during();
    let r = res_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("operation under signal storm did not finish");
    let sent = storm.stop();
    exit_tx.send(()).ok();
    h.join().unwrap();
    (r, sent)
}

/// The calling thread's pthread id.
pub fn this_thread() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() }
}

/// Raw descriptor number, for messages.
pub fn raw(fd: &impl AsRawFd) -> i32 {
    fd.as_raw_fd()
}

// ---------------------------------------------------------------------------
// Signal masks as /proc shows them (tests/signals.rs).

/// The `SigBlk` bitmask (bit `n - 1` = signal `n`) in a `/proc/.../status`
/// text, such as `cat /proc/self/status` prints.
pub fn status_sigblk(status: &str) -> u64 {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .expect("no SigBlk line in status");
    u64::from_str_radix(line.trim(), 16).expect("SigBlk is hex")
}

/// The calling thread's `SigBlk`, read from `/proc/thread-self/status`.
pub fn own_sigblk() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/status").expect("read own status");
    status_sigblk(&text)
}

/// The `SigBlk` of a freshly spawned child (`cat /proc/self/status`, run
/// through `std::process::Command`), after `configure` has had its say on
/// the command.
pub fn child_sigblk(configure: impl FnOnce(&mut Command)) -> u64 {
    let mut cmd = Command::new("cat");
    cmd.arg("/proc/self/status");
    configure(&mut cmd);
    let out = cmd.output().expect("run cat");
    assert!(out.status.success(), "cat /proc/self/status failed");
    status_sigblk(&String::from_utf8_lossy(&out.stdout))
}

/// The calling thread's kernel id (`gettid`).
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

// ---------------------------------------------------------------------------
// Helpers for the process and watch tests.

/// Like [`run_scenario`], with extra environment variables for the child.
pub fn run_scenario_env(test_name: &str, scenario: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO_ENV, scenario)
        .envs(env.iter().copied())
        .output()
        .expect("spawn child scenario")
}

/// Waits (up to 10 s) until process `pid` is a zombie: it has exited and
/// nobody has reaped it yet. Reads the state field of `/proc/PID/stat`.
pub fn wait_until_zombie(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
        // "pid (comm) S ...": the state follows the last ')'.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?");
        if state == "Z" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pid {pid} did not exit (state {state})"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A directory under the system temp dir with a unique name, removed (with
/// its contents) on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/fdloop-<tag>-<pid>-<n>-<nanos>`.
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::AtomicU64;
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "fdloop-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&p).expect("create temp dir");
        TempDir(p)
    }

    /// The directory's path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Running the examples (moved here from demo.rs so every test can use them).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Instant;

/// How long one run of an example may take before it counts as hung.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of example `name`, built once per test binary with the same
/// `cargo` that runs the tests (cargo only builds examples for `cargo test`
/// when no target is selected); the path comes from cargo's JSON messages,
/// right for any target dir or profile.
pub fn example_exe(name: &str) -> PathBuf {
    static EXES: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut exes = EXES.lock().unwrap();
    if let Some((_, p)) = exes.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let path = {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--message-format=json"])
            .args(["--example", name, "--manifest-path"])
            .arg(&manifest)
            .stderr(Stdio::inherit());
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("running cargo to build the example");
        assert!(
            out.status.success(),
            "cargo build --example {name} failed: {}",
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
            .filter(|l| l.contains(&format!(r#""name":"{name}""#)))
            .find_map(json_executable)
            .unwrap_or_else(|| panic!("no executable for {name} in cargo's output:\n{stdout}"))
    };
    exes.push((name.to_owned(), path.clone()));
    path
}

/// The `"executable"` string of one cargo JSON message, if it has one.
fn json_executable(line: &str) -> Option<PathBuf> {
    let start = line.find(r#""executable":""#)? + r#""executable":""#.len();
    let mut path = String::new();
    let mut chars = line[start..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(PathBuf::from(path)),
            '\\' => match chars.next()? {
                'n' => path.push('\n'),
                't' => path.push('\t'),
                c => path.push(c), // `\\`, `\"`, `\/`
            },
            c => path.push(c),
        }
    }
}

pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs example `name` with `args`; kills it and fails if it runs too
/// long.
pub fn run_example(name: &str, args: &[&str]) -> Run {
    let child = Command::new(example_exe(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the example");
    finish_example(child, name, args)
}

/// Collects a started example's output and status (its stdout and stderr
/// must be piped); kills it and fails after [`RUN_TIMEOUT`].
pub fn finish_example(mut child: std::process::Child, name: &str, args: &[&str]) -> Run {
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).expect("reading the demo's output");
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));

    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the example") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} still running after {RUN_TIMEOUT:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

// ---------------------------------------------------------------------------
// System tools some tests drive (tests/resp.rs: redis-cli, redis-benchmark).

/// Set to `1` to make a test fail, instead of skipping, when a system tool
/// it drives is missing (CI sets it).
pub const REQUIRE_TOOLS_ENV: &str = "FDLOOP_REQUIRE_TOOLS";

/// The path of executable `name` on `PATH`. When it is missing, prints
/// `skipped: NAME not found (HINT)` and returns `None` so the test can
/// return early — or panics if [`REQUIRE_TOOLS_ENV`] is `1`.
pub fn find_tool(name: &str, hint: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    if found.is_none() {
        let required = std::env::var(REQUIRE_TOOLS_ENV).is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{name} not found on PATH and {REQUIRE_TOOLS_ENV}=1 ({hint})"
        );
        println!("skipped: {name} not found ({hint})");
    }
    found
}

// ---------------------------------------------------------------------------
// Resource accounting (tests/faults.rs, tests/hygiene.rs, tests/stress.rs).

/// This process's open descriptors, as `(number, link target)` pairs sorted
/// by number (from `/proc/self/fd`; the directory's own descriptor, open
/// only while it is read, is left out).
pub fn open_fds() -> Vec<(i32, String)> {
    let dir = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    let mut fds: Vec<(i32, String)> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let n: i32 = e.file_name().to_str()?.parse().ok()?;
            // A descriptor closed meanwhile (the directory's own) has no link.
            let target = std::fs::read_link(e.path()).ok()?;
            Some((n, target.to_string_lossy().into_owned()))
        })
        .filter(|(_, t)| !t.starts_with("/proc/") || !t.ends_with("/fd"))
        .collect();
    fds.sort();
    fds
}

/// How many descriptors this process has open (see [`open_fds`]).
pub fn open_fd_count() -> usize {
    open_fds().len()
}

/// Resident set size in bytes, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm has a resident field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page as u64
}

/// Sets only the soft `RLIMIT_NOFILE` (the hard limit stays, so the soft
/// one can be raised again). Returns the previous soft limit.
pub fn set_soft_nofile_limit(n: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with valid pointers to initialised structs.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let old = lim.rlim_cur;
        lim.rlim_cur = n.min(lim.rlim_max);
        let rc = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
        old
    }
}

/// Whether the long ("soak") sizes were asked for with `FDLOOP_SOAK=1`.
pub fn soak() -> bool {
    std::env::var("FDLOOP_SOAK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `small` normally, `large` under `FDLOOP_SOAK=1`.
pub fn size(small: u64, large: u64) -> u64 {
    if soak() {
        large
    } else {
        small
    }
}

/// Deterministic xorshift64 generator, so a failing random run replays.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Asserts that a child scenario exited successfully, showing its output
/// otherwise; returns it.
pub fn expect_success(name: &str, out: Output) -> Output {
    assert!(
        out.status.success(),
        "scenario {name} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------------------
// The resp_server example as a child process

/// A running `resp_server` example (`--port 0`), its stdout and stderr
/// drained by threads; killed when dropped.
pub struct RespServer {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    stderr: Option<JoinHandle<String>>,
}

impl RespServer {
    /// Starts the server with default settings.
    pub fn start() -> RespServer {
        RespServer::start_with(&[], |_| {})
    }

    /// Starts the server with extra `args`, `configure` adjusting the
    /// command (environment, `pre_exec`) before the spawn.
    pub fn start_with(args: &[&str], configure: impl FnOnce(&mut Command)) -> RespServer {
        let mut cmd = Command::new(example_exe("resp_server"));
        cmd.args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("starting resp_server");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::io::BufRead::read_line(&mut out, &mut line).expect("reading the first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        // Keep draining stdout and stderr so the server never blocks on them.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        RespServer {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            let err = self.stderr.take().map(|h| h.join().unwrap());
            panic!("resp_server exited: {status}; stderr: {err:?}");
        }
    }

    /// Sends `sig`, waits (up to 10 s) for the exit; returns the status and
    /// what the server wrote on stderr.
    pub fn signal_and_wait(mut self, sig: i32) -> (ExitStatus, String) {
        // SAFETY: sending a signal to our own child process.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "no exit 10 s after signal {sig}");
            std::thread::sleep(Duration::from_millis(5));
        };
        let err = self.stderr.take().map(|h| h.join().unwrap());
        (status, err.unwrap_or_default())
    }

    /// CPU time the server has used, in clock ticks (utime + stime).
    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks_of(self.pid())
    }

    /// The server's peak resident memory (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for RespServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `cmd`'s child start with the soft `RLIMIT_NOFILE` at `n` (the
/// hard limit stays as it is).
pub fn child_nofile_limit(cmd: &mut Command, n: u64) {
    use std::os::unix::process::CommandExt;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to an initialised struct.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    lim.rlim_cur = n.min(lim.rlim_max);
    // SAFETY: the closure runs between fork and exec and only calls
    // setrlimit (async-signal-safe) on a struct copied into it; it allocates
    // nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// What a server said to a connection it did not ask anything of yet:
/// `None` while it says nothing (accepted, or not yet accepted), else what
/// arrived before end of file (a refusal line, possibly empty) within
/// `wait`.
pub fn unsolicited(s: &std::net::TcpStream, wait: Duration) -> Option<String> {
    let mut buf = [0u8; 256];
    s.set_nonblocking(true).expect("set_nonblocking");
    let n = match (&*s).read(&mut buf) {
        Ok(n) => n,
        Err(_) => {
            s.set_nonblocking(false).expect("set_nonblocking");
            return None;
        }
    };
    s.set_nonblocking(false).expect("set_nonblocking");
    let mut got = buf[..n].to_vec();
    if n > 0 {
        // The rest of the line, then end of file.
        s.set_read_timeout(Some(wait)).expect("set_read_timeout");
        let mut rest = Vec::new();
        let _ = (&*s).read_to_end(&mut rest);
        got.extend_from_slice(&rest);
    }
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// CPU time process `pid` has used, in clock ticks (utime + stime).
pub fn cpu_ticks_of(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // "pid (comm) S ppid ...": fields 14 and 15 (1-based) are utime and
    // stime; after the last ')' they are the 12th and 13th.
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Clock ticks per second (`_SC_CLK_TCK`).
pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// Keeps `ev`'s blocking waits in `epoll_wait`. A loop with no source at
/// all parks on a futex instead (only a wake can end its wait: see
/// `Remote::writes`); tests of the epoll wait itself (its timeouts, their
/// precision, the notifier's events) hold a source that never fires. Keep
/// the returned handle alive for as long as the loop must stay in epoll.
pub fn stay_in_epoll<S: 'static>(ev: &fdloop::EventLoop<S>) -> fdloop::PingHandle {
    let (handle, ping) = fdloop::Ping::new().expect("a ping for stay_in_epoll");
    ev.handle()
        .insert(ping, |(), _, _: &mut S| fdloop::Action::Continue)
        .unwrap_or_else(|e| panic!("inserting the stay_in_epoll ping: {e}"));
    handle
}
