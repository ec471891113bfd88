//! `signalfd(2)`, per-thread signal masks (`pthread_sigmask(3)`), and the
//! `/proc/self/task/*/status` files that show every thread's mask.
//!
//! rustix offers none of the signal-mask calls, so this module uses `libc`
//! directly; each `unsafe` block says why it is sound.
//!
//! Signal sets cross this module's boundary as a plain `u64` bitmask: bit
//! `n - 1` stands for signal `n`. Linux has 64 signals on every architecture
//! fdloop supports (MIPS, with 128, is not one of them).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The lowest realtime signal number the C library leaves to applications
/// (glibc keeps 32 and 33 for its own threads, so this is usually 34).
pub fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

/// The highest realtime signal number (64 on Linux).
pub fn sigrtmax() -> i32 {
    libc::SIGRTMAX()
}

/// Builds a C `sigset_t` from a bitmask.
fn to_sigset(mask: u64) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the whole set it is given; the pointer
    // is valid for writes of one `sigset_t`.
    let mut set = unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    };
    for bit in 0..64 {
        if mask & (1 << bit) != 0 {
            // SAFETY: `set` is an initialised sigset_t; sigaddset only fails
            // (EINVAL) for numbers outside 1..=_NSIG-1, which 1..=64 is not.
            unsafe { libc::sigaddset(&mut set, bit + 1) };
        }
    }
    set
}

/// Reads a C `sigset_t` back into a bitmask.
fn from_sigset(set: &libc::sigset_t) -> u64 {
    let mut mask = 0u64;
    for bit in 0..64 {
        // SAFETY: `set` is an initialised sigset_t; sigismember reads it only.
        if unsafe { libc::sigismember(set, bit + 1) } == 1 {
            mask |= 1 << bit;
        }
    }
    mask
}

/// One `pthread_sigmask(how, set, &old)` on the calling thread; returns the
/// mask as it was before. `how` is `SIG_BLOCK`, `SIG_UNBLOCK` or
/// `SIG_SETMASK`; `None` only queries.
fn sigmask(how: libc::c_int, mask: Option<u64>) -> io::Result<u64> {
    let set = mask.map(to_sigset);
    let set_ptr = set
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::sigset_t);
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `set_ptr` is null or points to an initialised sigset_t that
    // outlives the call; `old` is valid for writes of one sigset_t, and on
    // success (return 0) the call has filled it in.
    let rc = unsafe { libc::pthread_sigmask(how, set_ptr, old.as_mut_ptr()) };
    if rc != 0 {
        // pthread functions return the error number instead of setting errno.
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: initialised by the successful call above.
    let old = unsafe { old.assume_init() };
    Ok(from_sigset(&old))
}

/// `pthread_sigmask(SIG_BLOCK, mask)`: adds `mask` to the calling thread's
/// blocked set. Returns the previous blocked set. `EINVAL` only for a bad
/// `how`, which cannot happen here. glibc silently leaves out the two
/// signals it reserves (32 and 33).
pub fn thread_block(mask: u64) -> io::Result<u64> {
    sigmask(libc::SIG_BLOCK, Some(mask))
}

/// `pthread_sigmask(SIG_UNBLOCK, mask)`: removes `mask` from the calling
/// thread's blocked set. Returns the previous blocked set. A signal in
/// `mask` that is pending is delivered (handler or default action) before
/// this returns.
pub fn thread_unblock(mask: u64) -> io::Result<u64> {
    sigmask(libc::SIG_UNBLOCK, Some(mask))
}

/// `pthread_sigmask(SIG_BLOCK, NULL, &old)`: the calling thread's blocked set.
pub fn thread_mask() -> io::Result<u64> {
    sigmask(libc::SIG_BLOCK, None)
}

/// Installs a `pre_exec` hook on `cmd`: in the child, between `fork` and
/// `exec`, one `pthread_sigmask(SIG_UNBLOCK, mask)`. The set is built here,
/// in the parent, so the hook neither allocates nor takes locks. Makes the
/// command spawn with `fork`/`exec` rather than `posix_spawn`.
pub fn unblock_before_exec(cmd: &mut Command, mask: u64) -> &mut Command {
    let set = to_sigset(mask);
    let hook = move || {
        // SAFETY: `set` is an initialised sigset_t owned by the closure; a
        // null old-set pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            // Does not allocate: a plain OS error code.
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(())
    };
    // SAFETY: `pre_exec` hooks run in the forked child, where only
    // async-signal-safe functions may be called. The hook calls only
    // `pthread_sigmask` (async-signal-safe per POSIX) and builds an
    // `io::Error` from a code, which does not allocate; it touches no lock
    // and no memory shared with other threads.
    unsafe { cmd.pre_exec(hook) }
}

/// `signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK)`: a new descriptor that
/// reads the signals in `mask` pending for the calling thread or process.
/// `EMFILE`/`ENFILE` when out of descriptors, `ENOMEM`, `ENOSYS` before
/// Linux 2.6.27 (or under a sandbox that filters it).
pub fn signalfd(mask: u64) -> io::Result<OwnedFd> {
    let set = to_sigset(mask);
    // SAFETY: `set` is an initialised sigset_t that outlives the call; -1
    // asks for a new descriptor, so no existing descriptor is touched.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by signalfd, is open, and nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `signalfd(fd, mask, 0)`: replaces the set of signals an existing signalfd
/// reads. `EINVAL` if `fd` is not a signalfd.
pub fn set_mask(fd: impl AsFd, mask: u64) -> io::Result<()> {
    let set = to_sigset(mask);
    // SAFETY: `fd` is borrowed, hence open for the duration of the call; the
    // set is initialised. With an existing descriptor, signalfd only updates
    // its mask (flags must be 0 and are ignored).
    let rc = unsafe { libc::signalfd(fd.as_fd().as_raw_fd(), &set, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The size of one record a signalfd hands out (`struct signalfd_siginfo`).
pub const RECORD_SIZE: usize = 128;

/// The most records [`read`] takes in one call.
pub const MAX_RECORDS: usize = 32;

/// One `struct signalfd_siginfo`, the fields fdloop exposes, decoded from
/// the kernel's fixed layout (native byte order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawSigInfo {
    pub signo: u32,
    pub errno: i32,
    pub code: i32,
    pub pid: u32,
    pub uid: u32,
    pub fd: i32,
    pub tid: u32,
    pub band: u32,
    pub overrun: u32,
    pub trapno: u32,
    pub status: i32,
    pub int: i32,
    pub ptr: u64,
    pub utime: u64,
    pub stime: u64,
    pub addr: u64,
}

impl RawSigInfo {
    /// Decodes one 128-byte record (field offsets from `<sys/signalfd.h>`,
    /// checked against libc's struct in the tests below).
    fn decode(b: &[u8; RECORD_SIZE]) -> RawSigInfo {
        let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let i32_at = |o: usize| i32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_ne_bytes(a)
        };
        RawSigInfo {
            signo: u32_at(0),
            errno: i32_at(4),
            code: i32_at(8),
            pid: u32_at(12),
            uid: u32_at(16),
            fd: i32_at(20),
            tid: u32_at(24),
            band: u32_at(28),
            overrun: u32_at(32),
            trapno: u32_at(36),
            status: i32_at(40),
            int: i32_at(44),
            ptr: u64_at(48),
            utime: u64_at(56),
            stime: u64_at(64),
            addr: u64_at(72),
        }
    }
}

/// One `read(2)` of up to `out.len()` records (at most [`MAX_RECORDS`]).
/// Returns how many were read, at least one. `EAGAIN` when none is pending
/// (the descriptor is non-blocking), `InvalidData` if the kernel returned a
/// partial record (it never does for a signalfd).
pub fn read(fd: impl AsFd, out: &mut [RawSigInfo]) -> io::Result<usize> {
    let want = out.len().min(MAX_RECORDS);
    let mut buf = [0u8; RECORD_SIZE * MAX_RECORDS];
    let n = super::fd::read(fd, &mut buf[..want * RECORD_SIZE])?;
    if n % RECORD_SIZE != 0 || (n == 0 && want > 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("signalfd read returned {n} bytes, not a whole number of records"),
        ));
    }
    for (slot, rec) in out.iter_mut().zip(buf[..n].chunks_exact(RECORD_SIZE)) {
        let mut arr = [0u8; RECORD_SIZE];
        arr.copy_from_slice(rec);
        *slot = RawSigInfo::decode(&arr);
    }
    Ok(n / RECORD_SIZE)
}

/// `raise(3)`: sends `sig` to the calling thread (glibc uses `tgkill`).
pub fn raise(sig: i32) -> io::Result<()> {
    // SAFETY: raise has no memory-safety preconditions; a blocked signal
    // stays pending, an unblocked one runs its handler or default action.
    if unsafe { libc::raise(sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The `status` file of every thread of this process: one
/// `read_dir("/proc/self/task")`, then one read of
/// `/proc/self/task/<tid>/status` per thread. A thread that exits meanwhile
/// shows up with a `NotFound` (or `ESRCH`) error; the caller decides.
/// `NotFound` for the whole call when `/proc` is not mounted.
pub fn task_statuses() -> io::Result<Vec<(i32, io::Result<String>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status"));
        out.push((tid, status));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn layout_matches_libc() {
        assert_eq!(std::mem::size_of::<libc::signalfd_siginfo>(), RECORD_SIZE);
        type S = libc::signalfd_siginfo;
        let offsets = [
            (offset_of!(S, ssi_signo), 0),
            (offset_of!(S, ssi_errno), 4),
            (offset_of!(S, ssi_code), 8),
            (offset_of!(S, ssi_pid), 12),
            (offset_of!(S, ssi_uid), 16),
            (offset_of!(S, ssi_fd), 20),
            (offset_of!(S, ssi_tid), 24),
            (offset_of!(S, ssi_band), 28),
            (offset_of!(S, ssi_overrun), 32),
            (offset_of!(S, ssi_trapno), 36),
            (offset_of!(S, ssi_status), 40),
            (offset_of!(S, ssi_int), 44),
            (offset_of!(S, ssi_ptr), 48),
            (offset_of!(S, ssi_utime), 56),
            (offset_of!(S, ssi_stime), 64),
            (offset_of!(S, ssi_addr), 72),
        ];
        for (actual, expected) in offsets {
            assert_eq!(actual, expected);
        }
    }

    #[test]
    fn sigset_round_trip() {
        let m = (1 << 1) | (1 << 9) | (1 << 63) | (1 << 40);
        assert_eq!(from_sigset(&to_sigset(m)), m);
        assert_eq!(from_sigset(&to_sigset(0)), 0);
    }
}
