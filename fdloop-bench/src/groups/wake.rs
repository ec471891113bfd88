//! Wake primitives: the cost of signalling a sleeping thread (or one's own
//! loop) through fdloop's `EventFd` and `Notifier` (eventfd or pipe),
//! against Mutex+Condvar queues (GLib's `GAsyncQueue`, and the same in
//! Rust) and thread park/unpark, the floor for a blocking wake-up.
//!
//! * **notify + drain, one thread**: signal and consume on the same thread
//!   (the syscalls alone, no scheduler); the floor is a bare eventfd
//!   write + read.
//! * **100 notifies, then 1 drain**: shows the Notifier's coalescing (one
//!   write per drain cycle) against writing on every signal.
//! * **blocking round trip, two threads**: each side blocks until the other
//!   signals it; two sleeps and two wake-ups through the scheduler per
//!   round trip.
//!
//! In the report: `cargo run --release -p fdloop-bench --bin report --
//! --only wake [--pin same|cross|off]`, or `cargo bench -p fdloop-bench --bench wake`.

use std::io;

use crate::harness::{entry, Case, Ctx, Entry, Measured};
use crate::record::Role;
use crate::{pin_opt, Burst, Local, Pin, RoundTrip, Sample};

fn measured(s: Sample) -> Measured {
    let m = Measured::time(s.elapsed, s.ops);
    match s.writes_per_op() {
        Some(w) => m.with("wake writes/op", "", w),
        None => m,
    }
}

/// Runs `f` on a new thread pinned as the measuring side of `pin`, so the
/// report's own thread keeps its affinity.
fn on_main_cpu<T: Send + 'static>(
    pin: Pin,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    std::thread::Builder::new()
        .name("measure".into())
        .spawn(move || {
            pin_opt(pin.main_cpu())?;
            f()
        })?
        .join()
        .map_err(|_| io::Error::other("measuring thread panicked"))?
}

/// The wake group.
///
/// # Errors
///
/// A primitive failing, or pinning failing (`--pin` on a machine without
/// the CPU).
pub fn run(ctx: &mut Ctx<'_>) -> io::Result<()> {
    // The one-thread cases: the bare eventfd is the floor, the rest fdloop.
    let role = |floor: bool| if floor { Role::Floor } else { Role::Fdloop };
    let iters = ctx.cfg.size(500, 50_000, 300_000);
    let entries: Vec<Entry<'_>> = Local::ALL
        .iter()
        .map(|&c| {
            let run = move || c.run(iters).map(measured);
            entry(c.name(), role(c == Local::RawEventFd), run)
        })
        .collect();
    let case = Case::time("notify + drain, one thread", "time/op").note(format!(
        "{iters} signal+consume pairs per sample on one thread: the syscalls alone."
    ));
    ctx.run_case("wake", case, entries)?;

    let rounds = ctx.cfg.size(50, 5_000, 20_000);
    let entries: Vec<Entry<'_>> = Burst::ALL
        .iter()
        .map(|&c| {
            let run = move || c.run(rounds).map(measured);
            entry(c.name(), role(c == Burst::RawEventFd), run)
        })
        .collect();
    let case = Case::time(
        format!("{} notifies, then 1 drain, one thread", Burst::PER_DRAIN),
        "time/notify",
    )
    .note(
        "The \"floor\" here writes the eventfd on every signal, which is what code without \
         a pending flag pays; under 1 × floor is the coalescing at work.",
    );
    ctx.run_case("wake", case, entries)?;

    let pin = ctx.cfg.pin;
    let rts = ctx.cfg.size(50, 3_000, 20_000);
    let warmup = rts / 10;
    #[cfg_attr(not(feature = "c-peers"), allow(unused_mut))]
    let mut entries: Vec<Entry<'_>> = RoundTrip::ALL
        .iter()
        .map(|&c| {
            let (name, role) = match c {
                RoundTrip::Park => ("thread park/unpark", Role::Floor),
                RoundTrip::CondvarQueue => ("Mutex<VecDeque>+Condvar queue (Rust)", Role::Peer),
                _ => (c.name(), Role::Fdloop),
            };
            entry(name, role, move || {
                on_main_cpu(pin, move || c.run(rts, warmup, pin)).map(measured)
            })
        })
        .collect();
    #[cfg(feature = "c-peers")]
    entries.push(entry("GLib GAsyncQueue push/pop", Role::Peer, move || {
        let d = crate::cpeers::glib::round_trips_queue(pin, rts, warmup)?;
        Ok(Measured::time(d, rts))
    }));
    let case = Case::time(
        format!("blocking round trip, two threads, pin {pin}"),
        "time/round trip",
    )
    .no_warmup()
    .note(format!(
        "{rts} round trips per sample after {warmup} untimed ones; each side blocks until \
         signalled."
    ));
    ctx.run_case("wake", case, entries)
}
