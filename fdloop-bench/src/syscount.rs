//! Counting the system calls a piece of code makes, from inside the
//! process: a `perf_event_open` counter on the `raw_syscalls:sys_enter`
//! tracepoint, attached to the calling thread and inherited by every thread
//! it creates afterwards.
//!
//! Enabling the tracepoint makes every syscall a little slower, so the
//! report counts in separate, untimed runs.
//!
//! Needs the tracefs id file (`/sys/kernel/tracing/events/raw_syscalls/
//! sys_enter/id`, or under `/sys/kernel/debug/tracing`) and the right to
//! open a tracepoint counter (root, `CAP_PERFMON`, or
//! `kernel.perf_event_paranoid` ≤ 1); without them [`SyscallCounter::open`]
//! fails with a clear error and the report prints "n/a".

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The kernel's `struct perf_event_attr`, first published size (64 bytes,
/// `PERF_ATTR_SIZE_VER0`), which every kernel accepts.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// Bit 0 `disabled`, bit 1 `inherit`, … (a C bitfield).
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == 64);

const PERF_TYPE_TRACEPOINT: u32 = 2;
const FLAG_DISABLED: u64 = 1 << 0;
const FLAG_INHERIT: u64 = 1 << 1;
/// `_IO('$', 0)` and `_IO('$', 1)`.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;

const ID_FILES: [&str; 2] = [
    "/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
    "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
];

/// A running count of the system calls made by the thread that opened it
/// and by the threads it (and they) create afterwards.
///
/// # Examples
///
/// ```
/// use fdloop_bench::syscount::SyscallCounter;
/// // Needs tracefs and perf rights: skip quietly where they are missing.
/// if let Ok(c) = SyscallCounter::open() {
///     let before = c.read()?;
///     for _ in 0..10 {
///         std::fs::metadata("/")?;
///     }
///     assert!(c.read()? - before >= 10);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SyscallCounter {
    fd: OwnedFd,
}

impl SyscallCounter {
    /// Opens and starts the counter.
    ///
    /// # Errors
    ///
    /// The tracepoint id file missing or unreadable (tracefs not mounted),
    /// or `perf_event_open` refusing (`EACCES`/`EPERM`: not allowed,
    /// `ENOENT`/`ENODEV`/`ENOSYS`: no tracepoint or no perf in this
    /// kernel); each with a message naming the step.
    pub fn open() -> io::Result<SyscallCounter> {
        let mut last = None;
        let mut id = None;
        for f in ID_FILES {
            match std::fs::read_to_string(f) {
                Ok(s) => {
                    id = Some(s.trim().parse::<u64>().map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("{f}: {e}"))
                    })?);
                    break;
                }
                Err(e) => last = Some(io::Error::new(e.kind(), format!("{f}: {e}"))),
            }
        }
        let Some(id) = id else {
            return Err(last.unwrap_or_else(|| io::Error::other("no tracepoint id file")));
        };
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: id,
            flags: FLAG_DISABLED | FLAG_INHERIT,
            ..PerfEventAttr::default()
        };
        // SAFETY: `attr` is a valid perf_event_attr of the size it states
        // and outlives the call; pid 0 / cpu -1 / group -1 / flags
        // PERF_FLAG_FD_CLOEXEC (8) are plain integers.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                0 as libc::pid_t,
                -1 as libc::c_int,
                -1 as libc::c_int,
                8 as libc::c_ulong,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("perf_event_open(raw_syscalls:sys_enter): {e}"),
            ));
        }
        // SAFETY: the syscall returned a new descriptor that nothing else
        // owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        let c = SyscallCounter { fd };
        c.ioctl(PERF_EVENT_IOC_ENABLE, "enable")?;
        Ok(c)
    }

    fn ioctl(&self, req: libc::c_ulong, what: &str) -> io::Result<()> {
        // SAFETY: a perf ioctl without argument on a perf fd we own.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), req, 0) } < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("perf ioctl {what}: {e}")));
        }
        Ok(())
    }

    /// The number of system calls counted so far (threads that have exited
    /// included).
    ///
    /// # Errors
    ///
    /// `read` failing on the counter.
    pub fn read(&self) -> io::Result<u64> {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into `v`, a valid, writable u64.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut v as *mut u64).cast::<libc::c_void>(),
                8,
            )
        };
        if n != 8 {
            let e = if n < 0 {
                io::Error::last_os_error()
            } else {
                io::Error::other(format!("short read of {n} bytes"))
            };
            return Err(io::Error::new(
                e.kind(),
                format!("reading the perf counter: {e}"),
            ));
        }
        Ok(v)
    }
}

impl Drop for SyscallCounter {
    fn drop(&mut self) {
        let _ = self.ioctl(PERF_EVENT_IOC_DISABLE, "disable");
    }
}

/// Runs `f` under a fresh [`SyscallCounter`] and returns its result and the
/// system calls it made (it and the threads it created), or the reason they
/// could not be counted.
///
/// # Errors
///
/// `f`'s own error.
///
/// # Examples
///
/// ```
/// let (v, calls) = fdloop_bench::syscount::counted(|| Ok(2 + 2))?;
/// assert_eq!(v, 4);
/// if let Ok(c) = calls {
///     assert!(c < 10);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn counted<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<(T, io::Result<u64>)> {
    let start = SyscallCounter::open().and_then(|c| {
        let b = c.read()?;
        Ok((c, b))
    });
    let v = f()?;
    let calls = start.and_then(|(c, b)| Ok(c.read()?.saturating_sub(b)));
    Ok((v, calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_calls_of_spawned_threads() {
        let Ok(c) = SyscallCounter::open() else {
            eprintln!("skipped: no syscall tracepoint counter here");
            return;
        };
        let before = c.read().expect("read");
        std::thread::spawn(|| {
            for _ in 0..1000 {
                let _ = std::fs::metadata("/");
            }
        })
        .join()
        .expect("join");
        let n = c.read().expect("read") - before;
        assert!((1000..2000).contains(&n), "{n} syscalls counted");
    }
}
