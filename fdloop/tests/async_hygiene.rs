//! 10^5 tasks spawned and finished (or cancelled) leave no descriptor and
//! no memory behind: a counting global allocator checks the bytes live in
//! this process before and after, and `/proc/self/fd` the descriptors.
//! One test in its own binary, so nothing else allocates meanwhile.

#[path = "util/async_util.rs"]
mod async_util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::TcpListener;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use fdloop::rt::{self, Async};
use fdloop::EventLoop;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

const TASKS: usize = 100_000;

/// One round: spawn `TASKS` tasks of three kinds (finishing at once,
/// yielding, cancelled while pending), some with a timer and a socket,
/// and run them out.
fn round(ev: &mut EventLoop<()>) {
    let mut cancel = Vec::new();
    for i in 0..TASKS {
        match i % 4 {
            0 => ev.spawn(async move { i }).detach(),
            1 => ev
                .spawn(async {
                    rt::yield_now().await;
                    rt::yield_now().await;
                })
                .detach(),
            2 => cancel.push(ev.spawn(std::future::pending::<()>())),
            _ if i % 1000 == 3 => ev
                .spawn(async {
                    rt::sleep(Duration::from_micros(10)).await.unwrap();
                    let l = Async::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
                    // Registers it (nothing to accept yet), then drops it.
                    let _ = futures_util::future::select(
                        std::pin::pin!(l.accept()),
                        std::pin::pin!(rt::yield_now()),
                    )
                    .await;
                })
                .detach(),
            _ => ev.spawn(rt::yield_now()).detach(),
        }
    }
    ev.block_on(&mut (), async {
        for _ in 0..10 {
            rt::yield_now().await;
        }
        rt::sleep(Duration::from_millis(1)).await.unwrap();
    })
    .unwrap();
    drop(cancel);
    ev.block_on(&mut (), async {}).unwrap();
    assert_eq!(ev.handle().live_tasks(), 0);
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn a_hundred_thousand_tasks_leave_no_descriptor_and_no_memory_behind() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    // Warm-up: queues and slabs grow to their working size (the run queue
    // and its swap partner each reach theirs after a round of their own).
    round(&mut ev);
    round(&mut ev);
    let fds = open_fds();
    let bytes = LIVE_BYTES.load(Ordering::Relaxed);
    round(&mut ev);
    round(&mut ev);
    assert_eq!(open_fds(), fds, "descriptors leaked");
    let grown = LIVE_BYTES.load(Ordering::Relaxed) - bytes;
    // Two rounds of 10^5 tasks: a leak of one byte per task would show as
    // 200 kB; allow a little for buffers that settle after the warm-up.
    assert!(
        grown < 64 * 1024,
        "{grown} bytes still live after 2x10^5 tasks"
    );
    let fds_with_loop = open_fds();
    drop(ev);
    assert!(
        open_fds() < fds_with_loop,
        "the loop's descriptors were not closed"
    );
}
