//! Pinning threads to CPUs with `sched_setaffinity`: the placements of
//! the two-thread cases ([`Pin`]), a check that a placement's CPUs exist
//! for this process ([`Pin::check`]), and a pin that lasts until a guard
//! drops ([`pin_scoped`]), for the report's own thread.
//!
//! On a machine (or cpuset) with a single CPU, placement [`Pin::Cross`]
//! cannot be had: [`Pin::check`] says so with an `Unsupported` error naming
//! the CPUs, and the report skips that placement with the message printed
//! in its place. There is no silent fall-back to another placement: a
//! figure labelled "pinned across CPUs" always was.

use std::fmt;
use std::io;
use std::str::FromStr;

/// Where the threads of a two-thread case run: the measuring (main)
/// thread — the consumer of a throughput run, side A of a round trip — and
/// the other thread(s): producers, the echoing side B.
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
    /// Every placement, the headline first: across CPUs, on one CPU,
    /// unpinned.
    pub const ALL: [Pin; 3] = [Pin::Cross, Pin::Same, Pin::Off];

    /// The placement in words, as the report's case titles give it.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop_bench::Pin;
    /// assert_eq!(Pin::Cross.describe(), "pinned across CPUs");
    /// assert_eq!(Pin::Same.describe(), "pinned on one CPU");
    /// assert_eq!(Pin::Off.describe(), "unpinned");
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Pin::Off => "unpinned",
            Pin::Same => "pinned on one CPU",
            Pin::Cross => "pinned across CPUs",
        }
    }

    /// Checks that the CPUs this placement pins to are among those the
    /// calling thread may run on: its affinity mask, which a one-CPU
    /// machine, a cpuset or `taskset` restricts, and which the threads it
    /// spawns inherit.
    ///
    /// # Errors
    ///
    /// `Unsupported`, naming the placement, the CPU missing and the CPUs
    /// allowed (e.g. [`Pin::Cross`] on a one-CPU machine); or the error of
    /// `sched_getaffinity`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop_bench::Pin;
    /// Pin::Off.check()?; // needs no particular CPU
    /// if let Err(e) = Pin::Cross.check() {
    ///     assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn check(self) -> io::Result<()> {
        let wanted = [self.main_cpu(), self.echo_cpu()];
        if wanted.iter().all(Option::is_none) {
            return Ok(());
        }
        let allowed = allowed_cpus()?;
        match wanted.into_iter().flatten().find(|c| !allowed.contains(c)) {
            None => Ok(()),
            Some(missing) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "placement \"{}\" needs CPU {missing}, but this thread may only run on CPUs {allowed:?}",
                    self.describe()
                ),
            )),
        }
    }

    /// The CPU for the measuring (main) thread, if pinned.
    pub fn main_cpu(self) -> Option<usize> {
        match self {
            Pin::Off => None,
            Pin::Same | Pin::Cross => Some(0),
        }
    }

    /// The CPU for the echoing (second) thread, or every producer, if
    /// pinned.
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

/// The calling thread's CPU affinity mask.
fn get_mask() -> io::Result<libc::cpu_set_t> {
    // SAFETY: all-zero bytes is a valid (empty) cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; size and pointer describe the
    // live, exclusively borrowed `set`, which the kernel fills in.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc == 0 {
        Ok(set)
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("sched_getaffinity: {e}")))
    }
}

/// The CPUs the calling thread may run on, ascending.
///
/// # Errors
///
/// The error of `sched_getaffinity`.
///
/// # Examples
///
/// ```
/// let cpus = fdloop_bench::allowed_cpus()?;
/// assert!(!cpus.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = get_mask()?;
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `set` is a valid cpu_set_t and every index is below
        // CPU_SETSIZE, so CPU_ISSET reads inside it.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// The calling thread pinned by [`pin_scoped`]: dropping it gives the
/// thread back the affinity mask it had before.
#[must_use = "the thread is unpinned again when the guard drops"]
pub struct PinGuard {
    /// The mask to restore; `None` if nothing was pinned.
    saved: Option<libc::cpu_set_t>,
    /// Not `Send`: the mask belongs to the thread that made the guard.
    _thread: std::marker::PhantomData<*const ()>,
}

impl std::fmt::Debug for PinGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinGuard")
            .field("pinned", &self.saved.is_some())
            .finish()
    }
}

impl Drop for PinGuard {
    /// Restores the saved mask. It was in effect a moment ago, so this
    /// can only fail if the process's cpuset shrank meanwhile; the thread
    /// then stays pinned, which is harmless to the report (a drop has no
    /// one to return the error to).
    fn drop(&mut self) {
        if let Some(set) = &self.saved {
            // SAFETY: pid 0 is the calling thread (a guard is not `Send`,
            // so it drops on the thread that made it); size and pointer
            // describe the live, initialised `set`, which the kernel only
            // reads.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(set), set) };
        }
    }
}

/// Pins the calling thread to `cpu` (if `Some`) until the returned guard
/// drops, which restores the mask the thread had before: for pinning the
/// report's own thread (a throughput run's consumer) for one run.
///
/// # Errors
///
/// As [`pin_current_thread`], or reading the current mask failing.
///
/// # Examples
///
/// ```
/// let before = fdloop_bench::allowed_cpus()?;
/// {
///     let _pinned = fdloop_bench::pin_scoped(Some(before[0]))?;
///     assert_eq!(fdloop_bench::allowed_cpus()?, [before[0]]);
/// }
/// assert_eq!(fdloop_bench::allowed_cpus()?, before);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pin_scoped(cpu: Option<usize>) -> io::Result<PinGuard> {
    let Some(cpu) = cpu else {
        return Ok(PinGuard {
            saved: None,
            _thread: std::marker::PhantomData,
        });
    };
    let saved = get_mask()?;
    pin_current_thread(cpu)?;
    Ok(PinGuard {
        saved: Some(saved),
        _thread: std::marker::PhantomData,
    })
}

#[cfg(test)]
pub(crate) mod tests {
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
    fn placements_in_order_with_distinct_words() {
        assert_eq!(Pin::ALL[0], Pin::Cross, "the headline placement first");
        let words: Vec<&str> = Pin::ALL.iter().map(|p| p.describe()).collect();
        assert_eq!(
            words,
            ["pinned across CPUs", "pinned on one CPU", "unpinned"]
        );
    }

    /// A one-CPU machine, simulated: `f` runs on a scratch thread
    /// restricted to CPU 0 if allowed (else the first allowed CPU), and is
    /// given that CPU.
    pub(crate) fn on_one_cpu<R: Send + 'static>(f: impl FnOnce(usize) -> R + Send + 'static) -> R {
        std::thread::spawn(move || {
            let cpu = allowed_cpus().unwrap()[0];
            pin_current_thread(cpu).unwrap();
            assert_eq!(allowed_cpus().unwrap(), [cpu]);
            f(cpu)
        })
        .join()
        .unwrap()
    }

    #[test]
    fn across_cpus_on_one_cpu_is_a_clear_error() {
        let (first, cross, same, off) =
            on_one_cpu(|cpu| (cpu, Pin::Cross.check(), Pin::Same.check(), Pin::Off.check()));
        assert!(off.is_ok());
        // Cross needs CPUs 0 and 1; only `first` is allowed.
        let e = cross.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        let msg = e.to_string();
        assert!(
            msg.contains("pinned across CPUs") && msg.contains("CPU"),
            "{msg}"
        );
        // Same needs CPU 0: fine exactly when the one CPU is CPU 0.
        assert_eq!(same.is_ok(), first == 0, "{same:?}");
    }

    #[test]
    fn scoped_pin_restores_the_mask() {
        let (before, during, after) = std::thread::spawn(|| {
            let before = allowed_cpus().unwrap();
            let g = pin_scoped(Some(*before.last().unwrap())).unwrap();
            let during = allowed_cpus().unwrap();
            drop(g);
            (before.clone(), during, allowed_cpus().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(during, [*before.last().unwrap()]);
        assert_eq!(after, before);
        // None pins nothing.
        let g = pin_scoped(None).unwrap();
        assert!(format!("{g:?}").contains("false"));
    }

    #[test]
    fn pin_to_cpu0_in_a_scratch_thread() {
        // A scratch thread, so the test harness's threads keep their mask.
        // CPU 0 may be outside a restricted cpuset; then an error is fine.
        let r = std::thread::spawn(|| pin_current_thread(0)).join();
        assert!(r.is_ok(), "pinning must not panic");
    }
}
