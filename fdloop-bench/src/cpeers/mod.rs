//! The C event loops fdloop is measured against (feature `c-peers`). Each
//! is two modules: a private `ffi` (the declarations and thin safe RAII
//! wrappers: GLib's declarations from `glib-sys`, libevent's and
//! sd-event's written by hand, for the reasons given there) and the
//! contenders, which only use those wrappers and their own callbacks:
//!
//! * [`glib`]: GLib's `GMainContext` (woken from another thread) and
//!   `GAsyncQueue`;
//! * [`libevent`]: an `event_base` made thread-aware with
//!   `evthread_use_pthreads`, woken by `event_active` from another thread;
//! * [`sdevent`]: systemd's `sd-event`.
//!
//! Every module offers the same contenders, so the report and the benches
//! can put them in the same tables as the Rust peers:
//!
//! * `round_trips(pin, rts, warmup) -> io::Result<Duration>`: two threads,
//!   each running the library's loop, ping-pong one message; the time of
//!   the `rts` timed round trips (after `warmup` untimed ones);
//! * `throughput(pin, producers, msgs) -> io::Result<Duration>`: producers
//!   send `0..msgs` to one consumer (the calling thread), whose sum is
//!   checked ([`Acc`](crate::threads::Acc)), placed on CPUs as `pin` says
//!   ([`crate::threads`]); the time from before the producers start until
//!   the last message is received;
//! * `Dispatch`: a [`Contender`](crate::dispatch::Contender) over the
//!   always-ready eventfds of the dispatch-overhead bench;
//! * `Arm`: an [`ArmCancel`](crate::timers::ArmCancel) with K timers
//!   pending;
//! * `lateness(pattern, seed) -> io::Result<Late>`: how late each timer's
//!   callback runs ([`Pattern`](crate::timers::Pattern)).
//!
//! Every function returns `io::Result`; a C call that fails becomes an
//! `io::Error` naming it.

pub mod glib;
pub mod libevent;
pub mod sdevent;

/// Declares opaque C types, only ever handled behind a pointer: neither
/// `Send`, `Sync` nor `Unpin`, and of no size Rust could read.
macro_rules! opaque {
    ($($name:ident),*) => {$(
        #[doc = concat!("`", stringify!($name), "` (opaque).")]
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: std::marker::PhantomData<(*mut u8, std::marker::PhantomPinned)>,
        }
    )*};
}
pub(crate) use opaque;

use std::cell::{Cell, RefCell};
use std::os::raw::c_void;
use std::ptr;
use std::time::Instant;

use crate::dispatch::Work;
use crate::timers::{late_ns, Late};

/// The callback arguments of a C loop's dispatch contender: one slot per
/// descriptor, each knowing its key and where the [`Work`] of the current
/// turn is (null between turns). The C library gets a slot's address as
/// its callback argument and hands it back to [`record`].
pub(crate) struct WorkSlots {
    slots: Box<[Slot]>,
    // Boxed so that its address, stored in every slot, stays put.
    cur: Box<Cell<*mut Work>>,
}

struct Slot {
    key: u32,
    cur: *const Cell<*mut Work>,
}

impl WorkSlots {
    /// `n` slots, keys `0..n`.
    pub(crate) fn new(n: usize) -> WorkSlots {
        let cur: Box<Cell<*mut Work>> = Box::new(Cell::new(ptr::null_mut()));
        let slots = (0..n)
            .map(|i| Slot {
                key: i as u32,
                cur: &*cur,
            })
            .collect();
        WorkSlots { slots, cur }
    }

    /// How many slots.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The callback argument of every slot, in key order (each valid while
    /// `self` lives: the slots are never resized).
    pub(crate) fn args(&self) -> impl Iterator<Item = *mut c_void> + '_ {
        self.slots.iter().map(|s| s as *const Slot as *mut c_void)
    }

    /// Runs `f` (one turn of the C loop) with `work` as the current
    /// [`Work`], and returns its result and the callbacks it recorded.
    pub(crate) fn turn<R>(&self, work: &mut Work, f: impl FnOnce() -> R) -> (R, u64) {
        let before = work.hits;
        self.cur.set(work as *mut Work);
        let r = f();
        self.cur.set(ptr::null_mut());
        (r, work.hits - before)
    }
}

/// The body of every dispatch callback: records the slot's key in the
/// current [`Work`], if a turn is running.
///
/// # Safety
///
/// `arg` must come from [`WorkSlots::args`] of a `WorkSlots` that is still
/// alive, and the call must happen on the thread running
/// [`WorkSlots::turn`] (the C loops call back from inside their run call).
pub(crate) unsafe fn record(arg: *mut c_void) {
    // SAFETY: the caller promises `arg` is a live slot; its `cur` points to
    // the same `WorkSlots`' boxed cell.
    let slot = unsafe { &*(arg as *const Slot) };
    // SAFETY: as above.
    let w = unsafe { &*slot.cur }.get();
    if !w.is_null() {
        // SAFETY: non-null only inside `turn`, where it is the `&mut Work`
        // passed in, which nothing else touches during the loop call.
        unsafe { (*w).record(slot.key) };
    }
}

/// A lateness timer's callback argument: its deadline, and the sink its
/// lateness goes into ([`Fire::fired`]).
pub(crate) struct Fire {
    deadline: Instant,
    sink: *const RefCell<Late>,
}

impl Fire {
    /// A timer at `deadline` recording into `sink`, boxed so that its
    /// address, handed to C, stays put.
    pub(crate) fn new(deadline: Instant, sink: &RefCell<Late>) -> Box<Fire> {
        Box::new(Fire { deadline, sink })
    }

    /// The callback argument to hand to C.
    pub(crate) fn arg(&self) -> *mut c_void {
        self as *const Fire as *mut c_void
    }

    /// The body of every lateness callback: pushes how late it runs.
    ///
    /// # Safety
    ///
    /// `arg` must come from [`Fire::arg`] of a live `Fire` whose sink is
    /// alive too.
    pub(crate) unsafe fn fired(arg: *mut c_void) {
        // SAFETY: the caller's contract.
        let f = unsafe { &*(arg as *const Fire) };
        let late = late_ns(f.deadline);
        // SAFETY: the caller's contract.
        let sink = unsafe { &*f.sink };
        // No borrow is held while a loop runs; on the impossible failure the
        // firing would go unrecorded, and the run would wait for it.
        if let Ok(mut l) = sink.try_borrow_mut() {
            l.push(late);
        }
    }
}
