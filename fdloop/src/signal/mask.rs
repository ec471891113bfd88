//! The calling thread's signal mask: [`block`] (with its [`SignalMask`]
//! guard), [`unblock`], [`is_blocked`], [`unblock_in_child`], and the
//! bitmask conversions the rest of the module uses.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::process::Command;

use super::Signal;
use crate::sys;

/// The bitmask for `signals`, refusing those that cannot be blocked.
pub(super) fn mask_of(signals: &[Signal]) -> io::Result<u64> {
    let mut mask = 0;
    for &s in signals {
        if s == Signal::KILL || s == Signal::STOP {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{s} cannot be blocked, caught or read from a signalfd"),
            ));
        }
        mask |= s.bit();
    }
    Ok(mask)
}

/// The signals in a bitmask, in numeric order.
pub(super) fn signals_in(mask: u64) -> Vec<Signal> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| Signal(b + 1))
        .collect()
}

/// Blocks `signals` in the calling thread (`pthread_sigmask(SIG_BLOCK)`)
/// and returns a guard that unblocks them again when dropped.
///
/// Call it **at the start of `main()`, before any thread is spawned**:
/// every thread inherits its creator's mask, so all threads created
/// afterwards block the signals too, which is what a signalfd needs (see
/// the [module docs](super)). Keep the mask for the life of the program with
/// [`SignalMask::keep`].
///
/// The guard undoes exactly what this call changed: signals that were
/// already blocked stay blocked. It is not `Send`, because a mask belongs to
/// a thread. A signal still pending when it is unblocked is delivered then.
///
/// Children inherit the mask, across `exec` too — including those started
/// with [`std::process::Command`]; use [`unblock_in_child`] for them.
///
/// # Errors
///
/// `InvalidInput` for [`Signal::KILL`] and [`Signal::STOP`], which cannot be
/// blocked. `pthread_sigmask` itself cannot fail with valid arguments.
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
///
/// fn main() -> std::io::Result<()> {
///     // First thing: before any thread exists.
///     let mask = signal::block(&[Signal::INT, Signal::TERM])?;
///     assert!(signal::is_blocked(Signal::TERM)?);
///     let worker = std::thread::spawn(|| signal::is_blocked(Signal::TERM));
///     assert!(worker.join().unwrap()?); // inherited
///     drop(mask); // or `mask.keep()` to keep them blocked for good
///     assert!(!signal::is_blocked(Signal::TERM)?);
///     Ok(())
/// }
/// ```
pub fn block(signals: &[Signal]) -> io::Result<SignalMask> {
    let mask = mask_of(signals)?;
    let old = sys::signalfd::thread_block(mask)?;
    Ok(SignalMask {
        changed: mask & !old,
        _not_send: PhantomData,
    })
}

/// Whether `signal` is blocked in the calling thread.
///
/// # Errors
///
/// None in practice (`pthread_sigmask` only fails for invalid arguments).
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
/// assert!(!signal::is_blocked(Signal::WINCH)?);
/// let _mask = signal::block(&[Signal::WINCH])?;
/// assert!(signal::is_blocked(Signal::WINCH)?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn is_blocked(signal: Signal) -> io::Result<bool> {
    Ok(sys::signalfd::thread_mask()? & signal.bit() != 0)
}

/// Unblocks `signals` in the calling thread (`pthread_sigmask(SIG_UNBLOCK)`).
///
/// Meant for a `fork` child that does not `exec` and should receive the
/// signals the ordinary way again, or for a thread that must undo a mask it
/// inherited. A pending signal among them is delivered before this returns
/// (for most signals, by default, that terminates the process).
///
/// # Errors
///
/// `InvalidInput` for [`Signal::KILL`]/[`Signal::STOP`].
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
/// signal::block(&[Signal::TSTP])?.keep();
/// signal::unblock(&[Signal::TSTP])?;
/// assert!(!signal::is_blocked(Signal::TSTP)?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unblock(signals: &[Signal]) -> io::Result<()> {
    sys::signalfd::thread_unblock(mask_of(signals)?).map(drop)
}

/// Makes `cmd` unblock `signals` in the child, just before `exec`, so the
/// program it runs receives them normally although the spawning thread
/// blocks them (children inherit the mask; [`std::process::Command`] does
/// not reset it). Installs a `pre_exec` hook, so the command spawns with
/// `fork`/`exec` rather than `posix_spawn`.
///
/// # Errors
///
/// `InvalidInput` for [`Signal::KILL`]/[`Signal::STOP`]. A failure in the
/// child (practically impossible) makes `spawn` fail.
///
/// # Examples
///
/// ```
/// use std::process::Command;
/// use fdloop::signal::{self, Signal};
///
/// let _mask = signal::block(&[Signal::INT, Signal::TERM])?;
/// let mut cmd = Command::new("true");
/// signal::unblock_in_child(&mut cmd, &[Signal::INT, Signal::TERM])?;
/// assert!(cmd.status()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unblock_in_child<'c>(
    cmd: &'c mut Command,
    signals: &[Signal],
) -> io::Result<&'c mut Command> {
    let mask = mask_of(signals)?;
    Ok(sys::signalfd::unblock_before_exec(cmd, mask))
}

/// The guard [`block`] returns: while it lives, the signals stay blocked in
/// the thread that called `block`; dropping it unblocks those that `block`
/// newly blocked. Not `Send`: it must be dropped on that thread.
///
/// # Examples
///
/// ```
/// use fdloop::signal::{self, Signal};
/// let mask = signal::block(&[Signal::USR1, Signal::USR2])?;
/// assert_eq!(mask.newly_blocked(), [Signal::USR1, Signal::USR2]);
/// mask.keep(); // stay blocked for the rest of the thread's life
/// assert!(signal::is_blocked(Signal::USR1)?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "dropping the guard unblocks the signals again; call `.keep()` to keep them blocked"]
pub struct SignalMask {
    changed: u64,
    _not_send: PhantomData<*const ()>,
}

impl SignalMask {
    /// Keeps the signals blocked: consumes the guard without unblocking.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{self, Signal};
    /// signal::block(&[Signal::PIPE])?.keep();
    /// assert!(signal::is_blocked(Signal::PIPE)?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn keep(mut self) {
        self.changed = 0;
    }

    /// The signals this guard blocked, which dropping it would unblock
    /// (those already blocked before [`block`] are not included).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::signal::{self, Signal};
    /// let outer = signal::block(&[Signal::ALRM])?;
    /// let inner = signal::block(&[Signal::ALRM, Signal::CONT])?;
    /// assert_eq!(inner.newly_blocked(), [Signal::CONT]);
    /// drop(inner);
    /// assert!(signal::is_blocked(Signal::ALRM)?); // still outer's
    /// # drop(outer);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn newly_blocked(&self) -> Vec<Signal> {
        signals_in(self.changed)
    }
}

impl Drop for SignalMask {
    fn drop(&mut self) {
        if self.changed != 0 {
            // Cannot fail with valid arguments; nothing to report from drop.
            let _ = sys::signalfd::thread_unblock(self.changed);
        }
    }
}

impl fmt::Debug for SignalMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalMask")
            .field("newly_blocked", &self.newly_blocked())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        let m = mask_of(&[Signal::INT, Signal::USR1]).unwrap();
        assert_eq!(m, (1 << 1) | (1 << 9));
        assert_eq!(signals_in(m), [Signal::INT, Signal::USR1]);
        assert_eq!(
            mask_of(&[Signal::KILL]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
