//! Child processes: `pidfd_open(2)`, `waitid(2)` on one child (by pidfd or
//! by pid, never "any child"), `kill(pid, 0)`, and the process-wide
//! `SIGCHLD` handler used where pidfds are unavailable.

use std::ffi::c_void;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, WaitIdStatus};

use super::res;

/// How a reaped (or peeked-at) child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It called `exit(code)` (only the low 8 bits survive).
    Exited(i32),
    /// A signal terminated it.
    Killed {
        /// The signal number.
        signal: i32,
        /// Whether a core file was written.
        core_dumped: bool,
    },
}

/// Which child `waitid` looks at. There is deliberately no "any child".
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// `P_PIDFD` (Linux ≥ 5.4).
    PidFd(BorrowedFd<'a>),
    /// `P_PID`.
    Pid(i32),
}

fn pid(raw: i32) -> io::Result<Pid> {
    if raw <= 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Pid::from_raw(raw).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `pidfd_open(pid, 0)`: a close-on-exec descriptor that turns readable when
/// the process exits (Linux ≥ 5.3). `ESRCH` if no such process exists (a
/// reaped child included), `ENOSYS` on older kernels or under a seccomp
/// filter, `EINVAL` for `pid <= 0` (and, before Linux 6.9, for a thread that
/// is not a thread-group leader), `EMFILE`/`ENFILE`.
pub fn pidfd_open(raw_pid: i32) -> io::Result<OwnedFd> {
    res(rustix::process::pidfd_open(
        pid(raw_pid)?,
        PidfdFlags::empty(),
    ))
}

/// `waitid(target, WEXITED | WNOHANG [| WNOWAIT])`: `Ok(None)` while the
/// child runs, `Ok(Some(how))` once it has ended. With `reap` false
/// (`WNOWAIT`) the child stays a zombie, so a later call can still collect
/// it. `ECHILD` if the target is not an unreaped child of this process
/// (or `SIGCHLD` is ignored, which makes the kernel reap children itself);
/// `EINTR` is returned, not retried.
pub fn waitid(target: Target<'_>, reap: bool) -> io::Result<Option<Ended>> {
    let mut opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
    if !reap {
        opts |= WaitIdOptions::NOWAIT;
    }
    let id = match target {
        Target::PidFd(fd) => WaitId::PidFd(fd),
        Target::Pid(raw) => WaitId::Pid(pid(raw)?),
    };
    Ok(res(rustix::process::waitid(id, opts))?.and_then(|s| ended(&s)))
}

fn ended(s: &WaitIdStatus) -> Option<Ended> {
    if let Some(code) = s.exit_status() {
        Some(Ended::Exited(code))
    } else {
        s.terminating_signal().map(|signal| Ended::Killed {
            signal,
            core_dumped: s.dumped(),
        })
    }
}

/// `kill(pid, 0)`: `Ok(())` if the process exists (a zombie counts),
/// `ESRCH` if it does not, `EPERM` if it exists but belongs to someone we
/// may not signal.
pub fn probe(raw_pid: i32) -> io::Result<()> {
    res(rustix::process::test_kill_process(pid(raw_pid)?))
}

// ---------------------------------------------------------------------------
// The SIGCHLD handler (fallback for systems without pidfd).

/// The hook the handler calls, as a `fn()` address; 0 before installation.
static HOOK: AtomicUsize = AtomicUsize::new(0);
/// The handler that was installed before ours, and its flags, for chaining.
static PREV_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREV_FLAGS: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_sigchld(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: `__errno_location` returns this thread's errno slot, valid
    // for the thread's lifetime; saving and restoring it keeps the
    // interrupted code's errno intact.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: see above; a plain read of an int.
    let saved = unsafe { *errno };
    let hook = HOOK.load(Ordering::Acquire);
    if hook != 0 {
        // SAFETY: `HOOK` only ever holds 0 or a `fn()` stored by
        // `install_sigchld_handler`; the hook is documented to be
        // async-signal-safe.
        let hook: fn() = unsafe { std::mem::transmute::<usize, fn()>(hook) };
        hook();
    }
    let prev = PREV_HANDLER.load(Ordering::Acquire);
    if prev != libc::SIG_DFL && prev != libc::SIG_IGN && prev != libc::SIG_ERR {
        if PREV_FLAGS.load(Ordering::Acquire) & libc::SA_SIGINFO != 0 {
            type Action3 = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void);
            // SAFETY: the previous disposition was a real handler declared
            // with SA_SIGINFO, so it has the three-argument signature; we
            // pass on the kernel's own arguments.
            let f = unsafe { std::mem::transmute::<usize, Action3>(prev) };
            f(sig, info, ctx);
        } else {
            // SAFETY: a real handler without SA_SIGINFO takes one argument.
            let f = unsafe { std::mem::transmute::<usize, extern "C" fn(libc::c_int)>(prev) };
            f(sig);
        }
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// `sigaction(SIGCHLD, NULL, &old)` then `sigaction(SIGCHLD, &ours, NULL)`:
/// installs a process-wide handler that calls `hook` on every `SIGCHLD`,
/// then the handler that was there before (if it was a function, with its
/// own calling convention). Flags: `SA_SIGINFO | SA_RESTART`, plus
/// `SA_NOCLDSTOP` unless the previous handler wanted stop/continue
/// notifications. A previous `SIG_IGN` is replaced (while `SIGCHLD` is
/// ignored the kernel reaps children itself, and no exit status could be
/// collected).
///
/// `hook` must be async-signal-safe: no locks, no allocation. Call this
/// once per process; a second call would chain the handler to itself.
/// A `SIGCHLD` that arrives between the two `sigaction` calls reaches only
/// the old disposition.
pub fn install_sigchld_handler(hook: fn()) -> io::Result<()> {
    // SAFETY: a zeroed `sigaction` is a valid value to be overwritten.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying the current disposition with a valid out-pointer.
    if unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    PREV_FLAGS.store(old.sa_flags, Ordering::Release);
    PREV_HANDLER.store(old.sa_sigaction, Ordering::Release);
    HOOK.store(hook as usize, Ordering::Release);
    let real_prev = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
    let mut flags = libc::SA_SIGINFO | libc::SA_RESTART;
    if !real_prev || old.sa_flags & libc::SA_NOCLDSTOP != 0 {
        flags |= libc::SA_NOCLDSTOP;
    }
    // SAFETY: zeroed is a valid start; every field we rely on is set below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_sigchld as *const () as usize;
    sa.sa_flags = flags;
    // The chained handler keeps the mask it asked for.
    sa.sa_mask = old.sa_mask;
    // SAFETY: installing a handler that lives for the whole program, with a
    // valid `sigaction` struct; the old one is not requested again.
    if unsafe { libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()) } != 0 {
        HOOK.store(0, Ordering::Release);
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
