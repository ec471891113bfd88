//! Process identity: detecting that the current process is a `fork` child
//! of the one that created a resource.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// Bumped in the child after every `fork`, by a `pthread_atfork` handler.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

extern "C" fn in_child_after_fork() {
    // Async-signal-safe: a single atomic add.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The number of `fork`s between the first call of this function in the
/// process's ancestry and now, as seen by this process: a resource records
/// it at creation and compares later; a different value means "we are a
/// forked child".
///
/// Costs one relaxed atomic load after the first call (no `getpid` system
/// call). Installs a `pthread_atfork` child handler on first use; forks made
/// by raw `clone`/`vfork` system calls, which skip `pthread_atfork`, are not
/// seen (and a `vfork` child may only `exec` or `_exit` anyway).
///
/// `pthread_atfork` can only fail with `ENOMEM`; then fork detection is off
/// for the process (the generation never changes).
pub fn fork_generation() -> u64 {
    INSTALL.call_once(|| {
        // SAFETY: registering a child handler that only performs an atomic
        // add is async-signal-safe; the handler is a `'static` function.
        unsafe { libc::pthread_atfork(None, None, Some(in_child_after_fork)) };
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// [`fork_generation`] for a resource that already called it once (at
/// creation): the `pthread_atfork` handler is installed, so this is the one
/// relaxed load, without the `Once` check.
#[inline]
pub fn fork_generation_installed() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}
