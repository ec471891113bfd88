//! The fallback policy, in one place: when a kernel feature counts as
//! unavailable, so that fdloop does the same job another way, and the
//! `FDLOOP_FORCE_*` environment variables that make it take a fallback on
//! purpose (so that CI can run the suite down every path).
//!
//! | what | first choice | then | forced by |
//! |---|---|---|---|
//! | [`Notifier`](crate::Notifier) | eventfd | `pipe2`, then `pipe` + `fcntl` | [`FORCE_PIPE_ENV`] |
//! | loop timeouts | `epoll_pwait2` | a timerfd, then whole milliseconds | [`FORCE_TIMEOUT_ENV`] |
//! | loop timers | a timerfd per clock | the epoll timeout | [`FORCE_NO_TIMERFD_ENV`] |
//! | [`Child`](crate::process::Child) | pidfd | a `SIGCHLD` handler | [`FORCE_SIGCHLD_ENV`] |
//!
//! The call sites (`notify/mod.rs`, `event_loop/waiter.rs`,
//! `event_loop/timers.rs`, `process.rs`) decide *what* to try next; whether
//! an error means "not offered here" is decided by [`unavailable`] and
//! [`call_missing`], and each variable is read by one function here. `sys/`
//! only makes the calls.
//!
//! Every variable is read **once per process**, on first use, and cached: a
//! test that wants another value runs in a child process with the variable
//! set (as `tests/process.rs` and `tests/faults.rs` do). With the `tracing`
//! feature, a forced fallback is reported once, when its variable is read,
//! and each fallback taken for an error where it is taken.

use std::io;
use std::sync::OnceLock;

use rustix::io::Errno;

/// The environment variable that forces [`Notifier::new`](crate::Notifier::new)
/// onto a pipe.
///
/// * unset, empty or `0`: automatic (eventfd, falling back to a pipe);
/// * `fcntl`: the oldest path, `pipe()` followed by `fcntl`
///   ([`Backend::PipeFcntl`](crate::Backend::PipeFcntl));
/// * any other value, such as `1`: a pipe made with `pipe2`, falling back to
///   `pipe()` + `fcntl` ([`Backend::Pipe2`](crate::Backend::Pipe2)).
///
/// The value is trimmed and `fcntl` matched without regard to case. Read once
/// per process, on the first [`Notifier::new`](crate::Notifier::new).
pub const FORCE_PIPE_ENV: &str = "FDLOOP_FORCE_PIPE";

/// The environment variable that forces an [`EventLoop`](crate::EventLoop)'s
/// timeouts onto a fallback ([`TimeoutPrecision`](crate::TimeoutPrecision)):
///
/// * `timerfd`: a timerfd armed at the deadline instead of `epoll_pwait2`;
/// * `millis` (or `ms`): whole milliseconds, rounded up;
/// * unset or anything else: automatic (`epoll_pwait2`, then the others).
///
/// The value is trimmed and matched without regard to case. Read once per
/// process, on the first wait with a non-zero timeout.
pub const FORCE_TIMEOUT_ENV: &str = "FDLOOP_FORCE_TIMEOUT";

/// The environment variable that makes every
/// [`EventLoop`](crate::EventLoop) run its timers without timerfds, on the
/// epoll timeout (what it does where `timerfd_create` fails): any value but
/// empty or `0`.
///
/// Unlike the other switches, the value is not trimmed: ` 0` counts as set.
/// Read once per process, when the first loop is created.
pub const FORCE_NO_TIMERFD_ENV: &str = "FDLOOP_FORCE_NO_TIMERFD";

/// The environment variable that forces every
/// [`Child`](crate::process::Child) onto the `SIGCHLD` fallback
/// ([`ChildBackend::Sigchld`](crate::process::ChildBackend::Sigchld)): any
/// value but empty or `0` (trimmed). Read once per process, on the first
/// [`Child::from_pid`](crate::process::Child::from_pid).
pub const FORCE_SIGCHLD_ENV: &str = "FDLOOP_FORCE_SIGCHLD";

/// Whether `e`, from creating or first using a kernel feature, means "this
/// kernel or sandbox does not offer it (with these flags)", so the next way
/// should be tried: `ENOSYS` (no such call), `EPERM` (a seccomp filter
/// refuses it) or `EINVAL` (an older kernel that does not know a flag or a
/// clock, or an argument it only takes from a later version).
///
/// Anything else — `EMFILE`, `ENFILE`, `ENOMEM` — is a resource problem
/// that a fallback, which needs resources too, would not fix: it is
/// returned to the caller.
///
/// Used for eventfd and `pipe2` (notifiers) and for timerfds (loop
/// timeouts and timers). Calls whose `EINVAL` means something else use
/// [`call_missing`].
pub(crate) fn unavailable(e: &io::Error) -> bool {
    call_missing(e) || errno_is(e, Errno::INVAL)
}

/// The narrower test: the call itself is missing (`ENOSYS`) or refused
/// (`EPERM`), whatever its arguments, so the whole process may stop trying
/// it. [`unavailable`] without `EINVAL`, for the calls where `EINVAL` says
/// something else:
///
/// * `epoll_pwait2`: `EINVAL` is a bad timeout or event count, a real error
///   that the next way would hit too;
/// * `pidfd_open`: `EINVAL` can be about one pid (a thread rather than a
///   process, before Linux 6.9), so only that child falls back and the
///   process keeps using pidfds for the others.
pub(crate) fn call_missing(e: &io::Error) -> bool {
    errno_is(e, Errno::NOSYS) || errno_is(e, Errno::PERM)
}

/// Whether `e` says a resource ran out — descriptors (`EMFILE`,
/// `ENFILE`) or kernel memory (`ENOMEM`) — rather than that the call is
/// missing: worth trying again later, and meanwhile worth a way round
/// that needs no new resource.
pub(crate) fn exhausted(e: &io::Error) -> bool {
    errno_is(e, Errno::MFILE) || errno_is(e, Errno::NFILE) || errno_is(e, Errno::NOMEM)
}

/// Whether `e` carries the OS error number `errno`.
pub(crate) fn errno_is(e: &io::Error, errno: Errno) -> bool {
    e.raw_os_error() == Some(errno.raw_os_error())
}

/// The pipe that [`FORCE_PIPE_ENV`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ForcedPipe {
    /// `pipe2`, then `pipe` + `fcntl`.
    Pipe2,
    /// `pipe` + `fcntl` only.
    Fcntl,
}

/// The timeout fallback that [`FORCE_TIMEOUT_ENV`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ForcedTimeout {
    /// A timerfd armed at the deadline.
    TimerFd,
    /// Whole milliseconds, rounded up.
    Millis,
}

/// [`FORCE_PIPE_ENV`], read once per process.
pub(crate) fn forced_pipe() -> Option<ForcedPipe> {
    static VALUE: OnceLock<Option<ForcedPipe>> = OnceLock::new();
    read_once(&VALUE, FORCE_PIPE_ENV, parse_pipe)
}

/// [`FORCE_TIMEOUT_ENV`], read once per process.
pub(crate) fn forced_timeout() -> Option<ForcedTimeout> {
    static VALUE: OnceLock<Option<ForcedTimeout>> = OnceLock::new();
    read_once(&VALUE, FORCE_TIMEOUT_ENV, parse_timeout)
}

/// [`FORCE_NO_TIMERFD_ENV`], read once per process.
pub(crate) fn forced_no_timerfd() -> bool {
    static VALUE: OnceLock<bool> = OnceLock::new();
    read_once(&VALUE, FORCE_NO_TIMERFD_ENV, parse_no_timerfd)
}

/// [`FORCE_SIGCHLD_ENV`], read once per process.
pub(crate) fn forced_sigchld() -> bool {
    static VALUE: OnceLock<bool> = OnceLock::new();
    read_once(&VALUE, FORCE_SIGCHLD_ENV, parse_switch)
}

/// The one way a variable is read: on the first call, `parse` the variable
/// `name` (`None` when unset or not UTF-8) into `cell`; later calls return
/// what it holds. Reports a forced fallback (a value other than the unset
/// one) once, with the `tracing` feature.
fn read_once<T: Copy + PartialEq>(
    cell: &OnceLock<T>,
    name: &'static str,
    parse: fn(Option<&str>) -> T,
) -> T {
    *cell.get_or_init(|| {
        let raw = std::env::var(name).ok();
        let value = parse(raw.as_deref());
        #[cfg(feature = "tracing")]
        if value != parse(None) {
            crate::trace::notable!(
                warn,
                variable = name,
                value = raw.as_deref().unwrap_or_default(),
                "fallback forced by the environment"
            );
        }
        value
    })
}

fn parse_pipe(value: Option<&str>) -> Option<ForcedPipe> {
    match value.map(str::trim) {
        None | Some("") | Some("0") => None,
        Some(v) if v.eq_ignore_ascii_case("fcntl") => Some(ForcedPipe::Fcntl),
        Some(_) => Some(ForcedPipe::Pipe2),
    }
}

fn parse_timeout(value: Option<&str>) -> Option<ForcedTimeout> {
    match value.map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("timerfd") => Some(ForcedTimeout::TimerFd),
        Some(s) if s.eq_ignore_ascii_case("millis") || s.eq_ignore_ascii_case("ms") => {
            Some(ForcedTimeout::Millis)
        }
        _ => None,
    }
}

/// On unless unset, empty or `0`, after trimming.
fn parse_switch(value: Option<&str>) -> bool {
    !matches!(value.map(str::trim), None | Some("") | Some("0"))
}

/// [`parse_switch`] without the trimming (see [`FORCE_NO_TIMERFD_ENV`]).
fn parse_no_timerfd(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_errnos() {
        for (errno, unavail, missing) in [
            (Errno::NOSYS, true, true),
            (Errno::PERM, true, true),
            (Errno::INVAL, true, false),
            (Errno::MFILE, false, false),
            (Errno::NFILE, false, false),
            (Errno::NOMEM, false, false),
        ] {
            let e = io::Error::from_raw_os_error(errno.raw_os_error());
            assert_eq!(unavailable(&e), unavail, "{errno:?}");
            assert_eq!(call_missing(&e), missing, "{errno:?}");
        }
        // No errno at all: not a kernel's answer.
        assert!(!unavailable(&io::Error::other("custom")));
    }

    #[test]
    fn pipe_values() {
        assert_eq!(parse_pipe(None), None);
        assert_eq!(parse_pipe(Some("")), None);
        assert_eq!(parse_pipe(Some("0")), None);
        assert_eq!(parse_pipe(Some("1")), Some(ForcedPipe::Pipe2));
        assert_eq!(parse_pipe(Some("yes")), Some(ForcedPipe::Pipe2));
        assert_eq!(parse_pipe(Some("FCNTL")), Some(ForcedPipe::Fcntl));
    }

    #[test]
    fn timeout_values() {
        assert_eq!(parse_timeout(None), None);
        assert_eq!(parse_timeout(Some("1")), None);
        assert_eq!(
            parse_timeout(Some(" TimerFD ")),
            Some(ForcedTimeout::TimerFd)
        );
        assert_eq!(parse_timeout(Some("millis")), Some(ForcedTimeout::Millis));
        assert_eq!(parse_timeout(Some("MS")), Some(ForcedTimeout::Millis));
    }

    #[test]
    fn switch_values() {
        assert!(!parse_switch(None));
        assert!(!parse_switch(Some("")));
        assert!(!parse_switch(Some(" 0 ")));
        assert!(parse_switch(Some("1")));
        assert!(parse_switch(Some("yes")));
        assert!(!parse_no_timerfd(None));
        assert!(!parse_no_timerfd(Some("")));
        assert!(!parse_no_timerfd(Some("0")));
        assert!(parse_no_timerfd(Some("1")));
        assert!(parse_no_timerfd(Some(" 0 "))); // not trimmed, as before
    }
}
