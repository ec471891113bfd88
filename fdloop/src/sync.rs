//! The atomics fdloop's protocols use: `std`'s normally, `loom`'s when the
//! crate is built with `RUSTFLAGS="--cfg loom"` for model checking.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// An `UnsafeCell` with loom's closure API, so code that stores values in
/// shared slots runs unchanged under the model (which then checks that no
/// two threads touch a cell at once).
#[derive(Debug)]
pub(crate) struct RawCell<T> {
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))]
    inner: std::cell::UnsafeCell<T>,
}

impl<T> RawCell<T> {
    pub(crate) fn new(v: T) -> RawCell<T> {
        RawCell {
            #[cfg(loom)]
            inner: loom::cell::UnsafeCell::new(v),
            #[cfg(not(loom))]
            inner: std::cell::UnsafeCell::new(v),
        }
    }

    /// Runs `f` with a raw pointer to the value. Whoever dereferences it
    /// must know that no other thread accesses the value meanwhile.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        {
            self.inner.with_mut(f)
        }
        #[cfg(not(loom))]
        {
            f(self.inner.get())
        }
    }
}

/// Pads and aligns a value to 128 bytes (two cache lines: x86's adjacent
/// line prefetcher pulls pairs), so atomics written by different threads do
/// not share a line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Spins, then yields the CPU: for waits on another thread that is in the
/// middle of a few-instruction step (a sender between claiming a slot and
/// filling it). Yielding lets that thread run when both share a CPU.
pub(crate) struct Backoff(u32);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(0)
    }

    /// After a lost compare-exchange: spin a little longer each time (never
    /// yields), so contending threads spread their retries out instead of
    /// pulling the line back and forth in lock step.
    #[inline]
    pub(crate) fn spin(&mut self) {
        #[cfg(loom)]
        {
            loom::thread::yield_now();
        }
        #[cfg(not(loom))]
        {
            for _ in 0..1u32 << self.0.min(6) {
                std::hint::spin_loop();
            }
            if self.0 <= 6 {
                self.0 += 1;
            }
        }
    }

    /// Whether [`snooze`](Backoff::snooze) has moved on from spinning to
    /// yielding the CPU: the wait is no longer a matter of nanoseconds.
    #[inline]
    pub(crate) fn is_yielding(&self) -> bool {
        self.0 >= 6
    }

    #[inline]
    pub(crate) fn snooze(&mut self) {
        #[cfg(loom)]
        {
            loom::thread::yield_now();
        }
        #[cfg(not(loom))]
        {
            if self.0 < 6 {
                for _ in 0..1u32 << self.0 {
                    std::hint::spin_loop();
                }
                self.0 += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}
