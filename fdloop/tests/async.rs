//! The executor and the futures of `fdloop::rt`: tasks, wakers, panics,
//! cancellation, `Async` I/O and timers.

#[path = "util/async_util.rs"]
mod async_util;

use std::cell::{Cell, RefCell};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_util::{yield_now, DropProbe, Gate};
use fdloop::rt::{self, Async, JoinError};
use fdloop::{Action, EventLoop, Ping, Timer};
use futures_util::{AsyncReadExt, AsyncWriteExt, StreamExt};

#[test]
fn tasks_run_and_join_in_spawn_order() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..5)
        .map(|i| {
            let log = log.clone();
            ev.spawn(async move {
                log.borrow_mut().push(i);
                yield_now().await;
                i * 10
            })
        })
        .collect();
    let sum = ev
        .block_on(&mut (), async move {
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        })
        .unwrap();
    assert_eq!(sum, 100);
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
    assert_eq!(ev.handle().live_tasks(), 0);
}

#[test]
fn a_panicking_task_is_reported_and_the_loop_goes_on() {
    let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
    let bad = ev.spawn(async {
        yield_now().await;
        panic!("task failed on purpose");
    });
    let good = ev.spawn(async {
        yield_now().await;
        yield_now().await;
        7
    });
    ev.handle()
        .insert(
            Timer::after(Duration::from_millis(1)),
            |_, _, n: &mut u32| {
                *n += 1;
                Action::Continue
            },
        )
        .unwrap();
    let mut n = 0;
    let (bad, good) = ev
        .block_on(&mut n, async move { (bad.await, good.await) })
        .unwrap();
    let err = bad.unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("task failed on purpose"), "{err}");
    assert_eq!(good.unwrap(), 7);
    while n == 0 {
        ev.run_once(&mut n, None).unwrap();
    }
}

#[test]
fn block_on_propagates_the_main_future_panic_and_the_loop_stays_usable() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ev.block_on(&mut (), async { panic!("main") })
    }));
    assert!(r.is_err());
    assert_eq!(ev.block_on(&mut (), async { 5 }).unwrap(), 5);
}

#[test]
fn dropping_a_handle_from_another_thread_drops_the_future_on_the_loop_thread() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let dropped_on = Arc::new(Mutex::new(None));
    let probe = DropProbe(dropped_on.clone());
    let gate = Gate::default();
    let g = gate.clone();
    let task = ev.spawn(async move {
        let _probe = probe;
        g.wait().await;
        unreachable!("cancelled before the gate opened");
    });
    ev.dispatch_pending(&mut ()).unwrap();
    assert!(gate.has_waker());
    // `JoinHandle<T>` is `Send` when `T` is: cancel from another thread.
    std::thread::spawn(move || drop(task)).join().unwrap();
    assert!(dropped_on.lock().unwrap().is_none());
    ev.run_once(&mut (), Some(Duration::from_secs(5))).unwrap();
    ev.dispatch_pending(&mut ()).unwrap();
    assert_eq!(
        *dropped_on.lock().unwrap(),
        Some(std::thread::current().id())
    );
    assert_eq!(ev.handle().live_tasks(), 0);
}

#[test]
fn cancel_reports_cancelled_to_nobody_and_the_future_never_runs_again() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let t = ev.spawn(async move {
        loop {
            p.set(p.get() + 1);
            yield_now().await;
        }
    });
    ev.dispatch_pending(&mut ()).unwrap();
    ev.dispatch_pending(&mut ()).unwrap();
    let before = polls.get();
    assert!(before >= 1);
    t.cancel();
    for _ in 0..3 {
        ev.dispatch_pending(&mut ()).unwrap();
    }
    assert_eq!(polls.get(), before);
    assert_eq!(ev.handle().live_tasks(), 0);
}

#[test]
fn a_task_cancelled_by_dropping_the_loop_reports_cancelled() {
    let ev: EventLoop<()> = EventLoop::new().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let task = ev.spawn(async move { g.wait().await });
    let mut ev2: EventLoop<()> = EventLoop::new().unwrap();
    drop(ev);
    let r = ev2.block_on(&mut (), task).unwrap();
    assert!(matches!(r, Err(JoinError::Cancelled)));
}

#[test]
fn wakes_on_the_loop_thread_make_no_system_call() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let remote = ev.remote();
    let before = remote.writes();
    ev.block_on(&mut (), async {
        for _ in 0..1000 {
            yield_now().await;
        }
    })
    .unwrap();
    assert_eq!(remote.writes(), before);
}

#[test]
fn a_wake_from_another_thread_reaches_a_sleeping_loop_once() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let opener = std::thread::spawn(move || {
        while !g.has_waker() {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20)); // the loop is asleep by now
        g.open();
    });
    let remote = ev.remote();
    let before = remote.writes();
    let start = Instant::now();
    ev.block_on(&mut (), gate.wait()).unwrap();
    opener.join().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert!(
        remote.writes() - before <= 1,
        "{}",
        remote.writes() - before
    );
}

#[test]
fn many_wakes_from_another_thread_while_the_loop_is_awake_cost_at_most_one_write_each_sleep() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let remote = ev.remote();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
    let c = count.clone();
    let waker_thread = std::thread::spawn(move || {
        for w in rx {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            w.wake();
        }
    });
    let before = remote.writes();
    let rounds = 2000;
    ev.block_on(&mut (), async move {
        for _ in 0..rounds {
            let mut sent = false;
            std::future::poll_fn(|cx| {
                if sent {
                    return std::task::Poll::Ready(());
                }
                sent = true;
                tx.send(cx.waker().clone()).unwrap();
                std::task::Poll::Pending
            })
            .await;
        }
    })
    .unwrap();
    waker_thread.join().unwrap();
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), rounds);
    // At most one write per round trip, and none when the loop was awake.
    assert!(remote.writes() - before <= rounds as u64);
}

#[test]
fn a_waker_used_after_its_loop_is_gone_does_nothing() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    ev.spawn(async move { g.wait().await }).detach();
    ev.dispatch_pending(&mut ()).unwrap();
    let waker = gate.take_waker().unwrap();
    let w2 = waker.clone();
    drop(ev);
    waker.wake_by_ref();
    std::thread::spawn(move || w2.wake()).join().unwrap();
    waker.wake();
}

#[test]
fn a_task_that_wakes_itself_does_not_starve_other_sources() {
    let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
    let spin = ev.spawn(async {
        loop {
            yield_now().await;
        }
    });
    let (ping_handle, ping) = Ping::new().unwrap();
    let h = ev.handle();
    ev.insert(ping, move |(), _, n: &mut u32| {
        *n += 1;
        h.stop();
        Action::Remove
    })
    .unwrap();
    ping_handle.ping().unwrap();
    let mut n = 0;
    ev.run(&mut n).unwrap();
    assert_eq!(n, 1);
    drop(spin);
}

#[test]
fn spawn_from_a_callback_and_from_a_task() {
    let mut ev: EventLoop<Vec<&'static str>> = EventLoop::new().unwrap();
    let h = ev.handle();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    ev.handle()
        .defer(move |log| {
            log.push("callback");
            let s = s.clone();
            h.spawn(async move {
                s.borrow_mut().push("task");
                let s2 = s.clone();
                rt::spawn(async move { s2.borrow_mut().push("grandchild") })
                    .unwrap()
                    .await
                    .unwrap();
            })
            .detach();
        })
        .unwrap();
    let mut log = Vec::new();
    for _ in 0..4 {
        ev.dispatch_pending(&mut log).unwrap();
    }
    assert_eq!(log, ["callback"]);
    assert_eq!(*seen.borrow(), ["task", "grandchild"]);
}

#[test]
fn spawn_outside_a_task_is_an_error() {
    let err = rt::spawn(async {}).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other);
    assert!(Async::new(UnixStream::pair().unwrap().0).is_err());
    let r = rt::block_on(async {
        // Inside a task: fine.
        rt::spawn(async {}).map(|h| h.detach())
    });
    r.unwrap().unwrap();
}

#[test]
fn sleep_is_never_early_and_interval_ticks_on_its_grid() {
    rt::block_on(async {
        for ms in [1u64, 3, 7] {
            let start = Instant::now();
            rt::sleep(Duration::from_millis(ms)).await.unwrap();
            assert!(start.elapsed() >= Duration::from_millis(ms));
        }
        let start = Instant::now();
        let mut every = rt::interval(Duration::from_millis(2));
        let mut n = 0;
        while n < 5 {
            n += every.next().await.unwrap().unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(10));
    })
    .unwrap();
}

#[test]
fn a_dropped_sleep_leaves_the_loop() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let h = ev.handle();
    ev.block_on(&mut (), async move {
        let s = rt::sleep_on(&h, Duration::from_secs(3600));
        // Polled once (inserted), then dropped.
        futures_util::future::select(s, std::pin::pin!(yield_now())).await;
    })
    .unwrap();
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn async_unix_stream_echo_with_futures_io() {
    let got = rt::block_on(async {
        let (a, b) = UnixStream::pair()?;
        let (a, mut b) = (Async::new(a)?, Async::new(b)?);
        let echo = rt::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = b.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                b.write_all(&buf[..n]).await?;
            }
        })?;
        // More than a socket buffer, so both sides must wait.
        let payload: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let (mut r, mut w) = a.split();
        let writer = rt::spawn(async move {
            w.write_all(&payload).await?;
            w.close().await?;
            Ok::<_, std::io::Error>(payload)
        })?;
        let mut back = Vec::new();
        let mut buf = vec![0u8; 65536];
        while back.len() < 1_000_000 {
            let n = r.read(&mut buf).await?;
            assert!(n > 0);
            back.extend_from_slice(&buf[..n]);
        }
        let payload = writer.await.unwrap()?;
        drop(r);
        echo.await.unwrap()?;
        Ok::<_, Box<dyn std::error::Error>>(back == payload)
    })
    .unwrap()
    .unwrap();
    assert!(got);
}
