//! Pinning threads to CPUs with `sched_setaffinity`.

use std::fmt;
use std::io;
use std::str::FromStr;

/// Where the two threads of a round trip run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pin {
    /// No pinning: the scheduler places both threads.
    #[default]
    Off,
    /// Both threads on CPU 0 (every wake-up is a context switch on one CPU).
    Same,
    /// The measuring thread on CPU 0, the echoing thread on CPU 1 (every
    /// wake-up crosses CPUs, often waking an idle one).
    Cross,
}

impl Pin {
    /// The CPU for the measuring (main) thread, if pinned.
    pub fn main_cpu(self) -> Option<usize> {
        match self {
            Pin::Off => None,
            Pin::Same | Pin::Cross => Some(0),
        }
    }

    /// The CPU for the echoing (second) thread, if pinned.
    pub fn echo_cpu(self) -> Option<usize> {
        match self {
            Pin::Off => None,
            Pin::Same => Some(0),
            Pin::Cross => Some(1),
        }
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pin::Off => "off",
            Pin::Same => "same",
            Pin::Cross => "cross",
        })
    }
}

impl FromStr for Pin {
    type Err = String;

    /// Parses `off`, `same` or `cross`.
    fn from_str(s: &str) -> Result<Pin, String> {
        match s {
            "off" => Ok(Pin::Off),
            "same" => Ok(Pin::Same),
            "cross" => Ok(Pin::Cross),
            other => Err(format!(
                "unknown pin mode {other:?} (expected same, cross or off)"
            )),
        }
    }
}

/// Restricts the calling thread to the single CPU `cpu`.
///
/// # Errors
///
/// `InvalidInput` if `cpu` does not fit in a `cpu_set_t`; otherwise the
/// error of `sched_setaffinity`, with the CPU named in the message (`EINVAL`
/// usually means the CPU does not exist or is outside this process's cpuset).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // cpu_set_t is a fixed bitmap of CPU_SETSIZE bits.
    let max = libc::CPU_SETSIZE as usize;
    if cpu >= max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot pin to CPU {cpu}: cpu_set_t holds CPUs 0..{max}"),
        ));
    }
    // SAFETY: cpu_set_t is a plain bitmap of integers, for which all-zero
    // bytes is a valid (empty) value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed cpu_set_t, and
    // `cpu < CPU_SETSIZE` was checked above, so CPU_SET stays in bounds.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 means the calling thread; the size and pointer describe
    // the live, initialised `set` above, which the kernel only reads.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!("sched_setaffinity to CPU {cpu} failed: {e} (does CPU {cpu} exist and is it in this process's cpuset?)"),
        ))
    }
}

/// Pins the calling thread to `cpu` if it is `Some` (one side of a
/// [`Pin`] mode: [`Pin::main_cpu`] or [`Pin::echo_cpu`]).
///
/// # Errors
///
/// As [`pin_current_thread`].
pub fn pin_opt(cpu: Option<usize>) -> io::Result<()> {
    match cpu {
        Some(c) => pin_current_thread(c),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for p in [Pin::Off, Pin::Same, Pin::Cross] {
            assert_eq!(p.to_string().parse::<Pin>(), Ok(p));
        }
        assert!("both".parse::<Pin>().is_err());
    }

    #[test]
    fn out_of_range_cpu_is_an_error_not_a_panic() {
        let e = pin_current_thread(usize::MAX).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn pin_to_cpu0_in_a_scratch_thread() {
        // A scratch thread, so the test harness's threads keep their mask.
        // CPU 0 may be outside a restricted cpuset; then an error is fine.
        let r = std::thread::spawn(|| pin_current_thread(0)).join();
        assert!(r.is_ok(), "pinning must not panic");
    }
}
