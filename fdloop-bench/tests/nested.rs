//! fdloop nested in tokio: the example `examples/nested_in_tokio.rs`, run
//! as a test, plus a level-triggered source that stays ready (the case that
//! a "clear readiness after every dispatch" driver would sleep through).

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use fdloop::{Action, EventLoop, Interest, Io, Mode};

#[path = "../examples/nested_in_tokio.rs"]
#[allow(dead_code)] // the example's `main`
mod demo;

#[test]
fn ping_and_stream_inside_tokio_while_a_timer_ticks() {
    let r = demo::run_demo(false).expect("demo");
    assert_eq!(r.pings, demo::ROUNDS, "{r:?}");
    assert_eq!(r.lines, demo::ROUNDS, "{r:?}");
    assert!(r.eof, "{r:?}");
    // "message 1\n" .. "message 40\n"
    let expected: usize = (1..=demo::ROUNDS)
        .map(|i| format!("message {i}\n").len())
        .sum();
    assert_eq!(r.bytes, expected, "{r:?}");
    // The producer paces 40 rounds 3 ms apart (>= 120 ms), the timer ticks
    // every 5 ms on the same thread: it must have run meanwhile.
    assert!(r.ticks_during >= 5, "timer starved: {r:?}");
    assert!(r.driven.readable >= 1 && r.driven.callbacks >= u64::from(2 * demo::ROUNDS));
    assert!(r.elapsed < Duration::from_secs(3), "{r:?}");
}

/// An always-readable eventfd whose callback never reads it: it stays ready
/// after every dispatch, without a new edge on the loop's epoll fd.
fn ready_eventfd() -> OwnedFd {
    // SAFETY: plain system call; no pointers.
    let fd = unsafe { libc::eventfd(1, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned by `eventfd` and nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn a_source_left_ready_keeps_being_dispatched() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap();
    let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
    ev.insert(
        Io::new(ready_eventfd(), Interest::READABLE, Mode::Level),
        |_, _, hits: &mut u32| {
            *hits += 1;
            if *hits == 50 {
                Action::Remove
            } else {
                Action::Continue
            }
        },
    )
    .unwrap();
    let mut hits = 0;
    let driven = rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(2),
                demo::drive_in_tokio(&mut ev, &mut hits, |h| *h >= 50),
            )
            .await
        })
        .expect("the driver slept through a source that stayed ready")
        .unwrap();
    assert_eq!(hits, 50);
    assert_eq!(driven.callbacks, 50);
    assert!(ev.is_empty());
}
