//! Two-thread ping-pong: each operation is A signals B, B wakes and signals
//! A, A wakes. Both threads block (sleep in the kernel) while waiting, so
//! one round trip is two wake-ups through the scheduler.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::Instant;

use fdloop::{Backend, EventFd, Notifier};

use crate::{pin_opt, Pin, Sample};

/// A contender in the two-thread blocking round-trip case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundTrip {
    /// Two blocking `EventFd`s: `write(1)` to signal, a blocking `read()` to
    /// wait.
    EventFd,
    /// Two `Notifier`s on eventfds: `notify()` / `wait(None)` (which polls,
    /// then drains: one more syscall than a blocking read).
    NotifierEventFd,
    /// Two `Notifier`s on `pipe2` pipes: `notify()` / `wait(None)`.
    NotifierPipe2,
    /// Two `Mutex<VecDeque>` + `Condvar` queues, as GLib's `GAsyncQueue`:
    /// push under the lock and signal the condvar if a consumer waits; pop
    /// waits on the condvar while the queue is empty.
    CondvarQueue,
    /// `std::thread::park` / `unpark` with a flag: one futex each way, the
    /// floor for a blocking wake-up.
    Park,
}

impl RoundTrip {
    /// All contenders, in table order (the floor last).
    pub const ALL: [RoundTrip; 5] = [
        RoundTrip::EventFd,
        RoundTrip::NotifierEventFd,
        RoundTrip::NotifierPipe2,
        RoundTrip::CondvarQueue,
        RoundTrip::Park,
    ];

    /// A short name for the tables.
    pub fn name(self) -> &'static str {
        match self {
            RoundTrip::EventFd => "EventFd blocking read/write",
            RoundTrip::NotifierEventFd => "Notifier (eventfd) notify/wait",
            RoundTrip::NotifierPipe2 => "Notifier (pipe2) notify/wait",
            RoundTrip::CondvarQueue => "Mutex<VecDeque>+Condvar queue",
            RoundTrip::Park => "thread park/unpark (floor)",
        }
    }

    /// Spawns an echoing thread and times `iters` round trips with it, after
    /// `warmup` untimed ones.
    ///
    /// The calling thread is not pinned here (pin it once with
    /// [`pin_opt`] and [`Pin::main_cpu`]); the echoing thread is
    /// pinned to [`Pin::echo_cpu`].
    ///
    /// # Errors
    ///
    /// Creating the primitives, spawning or pinning the thread, or a signal
    /// or wait failing. If the echoing thread fails while the caller is
    /// blocked waiting for it, it prints its error and exits the process
    /// with status 1, since the caller could otherwise wait forever.
    pub fn run(self, iters: u64, warmup: u64, pin: Pin) -> io::Result<Sample> {
        match self {
            RoundTrip::EventFd => ping_pong(self, pin, iters, warmup, BlockingEventFd::new),
            RoundTrip::NotifierEventFd => ping_pong(self, pin, iters, warmup, || {
                NotifierWake::new(Backend::EventFd)
            }),
            RoundTrip::NotifierPipe2 => ping_pong(self, pin, iters, warmup, || {
                NotifierWake::new(Backend::Pipe2)
            }),
            RoundTrip::CondvarQueue => ping_pong(self, pin, iters, warmup, || Ok(Queue::new())),
            RoundTrip::Park => ping_pong(self, pin, iters, warmup, || Ok(ParkSlot::new())),
        }
    }
}

impl fmt::Display for RoundTrip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One direction of a ping-pong: a signal that one thread sends and the
/// other blocks on.
trait Wake: Send + Sync + 'static {
    fn signal(&self) -> io::Result<()>;
    fn wait(&self) -> io::Result<()>;
    /// Tells the wake which thread will `wait` on it, before any `signal`.
    fn set_waiter(&self, _waiter: Thread) {}
}

fn ping_pong<W: Wake>(
    which: RoundTrip,
    pin: Pin,
    iters: u64,
    warmup: u64,
    make: impl Fn() -> io::Result<W>,
) -> io::Result<Sample> {
    let to_echo = Arc::new(make()?);
    let to_main = Arc::new(make()?);
    to_main.set_waiter(thread::current());
    let total = warmup + iters;
    let (e_in, e_out) = (to_echo.clone(), to_main.clone());
    let echo = thread::Builder::new()
        .name("fdloop-bench-echo".into())
        .spawn(move || {
            let r = echo_loop(&*e_in, &*e_out, total, pin);
            if let Err(e) = &r {
                eprintln!("fdloop-bench: echo thread of {which} failed: {e}");
                std::process::exit(1);
            }
            r
        })
        .map_err(|e| io::Error::new(e.kind(), format!("spawning the echo thread failed: {e}")))?;
    to_echo.set_waiter(echo.thread().clone());

    for _ in 0..warmup {
        to_echo.signal()?;
        to_main.wait()?;
    }
    let start = Instant::now();
    for _ in 0..iters {
        to_echo.signal()?;
        to_main.wait()?;
    }
    let elapsed = start.elapsed();
    match echo.join() {
        Ok(r) => r?,
        Err(_) => return Err(io::Error::other(format!("echo thread of {which} panicked"))),
    }
    Ok(Sample {
        elapsed,
        ops: iters,
        writes: None,
    })
}

fn echo_loop(incoming: &dyn Wake, outgoing: &dyn Wake, total: u64, pin: Pin) -> io::Result<()> {
    pin_opt(pin.echo_cpu())?;
    for _ in 0..total {
        incoming.wait()?;
        outgoing.signal()?;
    }
    Ok(())
}

struct BlockingEventFd(EventFd);

impl BlockingEventFd {
    fn new() -> io::Result<Self> {
        EventFd::new(0)
            .map(BlockingEventFd)
            .map_err(|e| io::Error::new(e.kind(), format!("creating an eventfd failed: {e}")))
    }
}

impl Wake for BlockingEventFd {
    fn signal(&self) -> io::Result<()> {
        self.0.write(1)
    }
    fn wait(&self) -> io::Result<()> {
        self.0.read().map(drop)
    }
}

struct NotifierWake(Notifier);

impl NotifierWake {
    fn new(backend: Backend) -> io::Result<Self> {
        Notifier::with_backend(backend)
            .map(NotifierWake)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("creating a {backend} Notifier failed: {e}"),
                )
            })
    }
}

impl Wake for NotifierWake {
    fn signal(&self) -> io::Result<()> {
        self.0.notify().map(drop)
    }
    fn wait(&self) -> io::Result<()> {
        // Only one notify is ever outstanding, so a wake-up is never
        // spurious here; wait(None) returns only when notified.
        self.0.wait(None).map(drop)
    }
}

/// GLib's `GAsyncQueue`, reduced: a deque and a count of blocked poppers
/// under one mutex, and a condvar signalled only when someone waits.
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

struct QueueState {
    items: VecDeque<u64>,
    waiting: usize,
}

fn poisoned() -> io::Error {
    io::Error::other("queue mutex poisoned (the other thread panicked)")
}

impl Queue {
    fn new() -> Self {
        Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::with_capacity(16),
                waiting: 0,
            }),
            ready: Condvar::new(),
        }
    }
}

impl Wake for Queue {
    fn signal(&self) -> io::Result<()> {
        // g_async_queue_push_unlocked: push, then g_cond_signal while still
        // holding the lock, and only if a popper is blocked.
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        s.items.push_back(1);
        if s.waiting > 0 {
            self.ready.notify_one();
        }
        Ok(())
    }
    fn wait(&self) -> io::Result<()> {
        // g_async_queue_pop_intern_unlocked: count ourselves as waiting and
        // sleep on the condvar until an item is there.
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        if s.items.is_empty() {
            s.waiting += 1;
            while s.items.is_empty() {
                s = self.ready.wait(s).map_err(|_| poisoned())?;
            }
            s.waiting -= 1;
        }
        s.items.pop_front();
        Ok(())
    }
}

/// A flag plus `unpark`: the waiter parks until the flag is set. `park` may
/// return spuriously, hence the flag.
struct ParkSlot {
    flag: AtomicBool,
    waiter: OnceLock<Thread>,
}

impl ParkSlot {
    fn new() -> Self {
        ParkSlot {
            flag: AtomicBool::new(false),
            waiter: OnceLock::new(),
        }
    }
}

impl Wake for ParkSlot {
    fn signal(&self) -> io::Result<()> {
        // Release pairs with the waiter's Acquire swap. unpark after the
        // store: if the waiter checked the flag too early, the unpark token
        // makes its next park return at once.
        self.flag.store(true, Ordering::Release);
        match self.waiter.get() {
            Some(t) => {
                t.unpark();
                Ok(())
            }
            None => Err(io::Error::other(
                "park slot signalled before its waiter was set",
            )),
        }
    }
    fn wait(&self) -> io::Result<()> {
        while !self.flag.swap(false, Ordering::Acquire) {
            thread::park();
        }
        Ok(())
    }
    fn set_waiter(&self, waiter: Thread) {
        // Set once, by the main thread, before its first signal; ignoring a
        // second set is harmless (same thread).
        let _ = self.waiter.set(waiter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_contender_completes_a_few_round_trips() {
        for c in RoundTrip::ALL {
            let s = c.run(50, 5, Pin::Off).unwrap();
            assert_eq!(s.ops, 50, "{c}");
            assert!(s.elapsed > Duration::ZERO, "{c}");
        }
    }
}
