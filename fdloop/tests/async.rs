//! The executor and the futures of `fdloop::rt`: tasks, wakers, panics,
//! cancellation, `Async` I/O and timers.

#[path = "util/async_util.rs"]
mod async_util;
mod util;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_util::{DropProbe, Gate};
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
                rt::yield_now().await;
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
        rt::yield_now().await;
        panic!("task failed on purpose");
    });
    let good = ev.spawn(async {
        rt::yield_now().await;
        rt::yield_now().await;
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
            rt::yield_now().await;
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
            rt::yield_now().await;
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

/// A task woken from another thread while the loop sleeps is polled by
/// the call that the wake ends, whether the loop slept on its futex (no
/// source) or in `epoll_wait` (a source it waits for): the wake's call
/// returns with the task run, not with 0 and the task left for the next.
#[test]
fn a_task_woken_from_another_thread_runs_in_the_call_the_wake_ends() {
    for in_epoll in [false, true] {
        let mut ev: EventLoop<()> = EventLoop::new().unwrap();
        let _stay = in_epoll.then(|| util::stay_in_epoll(&ev));
        let gate = Gate::default();
        let g = gate.clone();
        let t = ev.spawn(async move { g.wait().await });
        ev.dispatch_pending(&mut ()).unwrap();
        assert!(gate.has_waker() && !t.is_finished());
        let opener = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20)); // the loop is asleep by now
            gate.open();
        });
        let start = Instant::now();
        let ran = ev.run_once(&mut (), Some(Duration::from_secs(10))).unwrap();
        let waited = start.elapsed();
        opener.join().unwrap();
        assert!(waited < Duration::from_secs(10), "in epoll: {in_epoll}");
        assert!(
            t.is_finished(),
            "in epoll: {in_epoll}: the task waits for the next call"
        );
        assert_eq!(ran, 1, "in epoll: {in_epoll}");
    }
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
fn wakes_of_the_block_on_future_before_its_poll_make_one_poll() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let remote = ev.remote();
    let before = remote.writes();
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    ev.block_on(&mut (), async move {
        std::future::poll_fn(|cx| {
            p.set(p.get() + 1);
            if p.get() > 1 {
                return std::task::Poll::Ready(());
            }
            // Ten wakes, from this thread and another, before the next poll.
            for _ in 0..5 {
                cx.waker().wake_by_ref();
            }
            let w = cx.waker().clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    w.wake_by_ref();
                }
            })
            .join()
            .unwrap();
            std::task::Poll::Pending
        })
        .await;
    })
    .unwrap();
    assert_eq!(polls.get(), 2);
    // The loop was awake: none of the wakes wrote its notifier.
    assert_eq!(remote.writes(), before);
    assert_eq!(ev.handle().live_tasks(), 0);
}

#[test]
fn a_block_on_waker_used_after_block_on_returned_does_nothing() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let kept = ev
        .block_on(
            &mut (),
            std::future::poll_fn(|cx| std::task::Poll::Ready(cx.waker().clone())),
        )
        .unwrap();
    // The future is gone: waking it is a no-op, here and from another thread.
    kept.wake_by_ref();
    let k2 = kept.clone();
    std::thread::spawn(move || k2.wake()).join().unwrap();
    // The next block_on is not disturbed (at most a spurious poll, which
    // futures tolerate), and the loop still sleeps when it has nothing to do.
    let start = Instant::now();
    ev.block_on(&mut (), rt::sleep(Duration::from_millis(20)))
        .unwrap()
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(ev.block_on(&mut (), async { 7 }).unwrap(), 7);
    drop(ev);
    kept.wake();
}

#[test]
fn a_task_that_wakes_itself_does_not_starve_other_sources() {
    let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
    let spin = ev.spawn(async {
        loop {
            rt::yield_now().await;
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

/// A loop with a `Ping` source whose callback counts its dispatches.
fn loop_with_counted_ping() -> (EventLoop<u32>, fdloop::PingHandle, Rc<Cell<u32>>) {
    let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
    let (ping_handle, ping) = Ping::new().unwrap();
    let seen = Rc::new(Cell::new(0u32));
    let s = seen.clone();
    ev.insert(ping, move |(), _, _: &mut u32| {
        s.set(s.get() + 1);
        Action::Continue
    })
    .unwrap();
    (ev, ping_handle, seen)
}

#[test]
fn yield_now_lets_the_loop_dispatch_ready_descriptors_before_the_task_goes_on() {
    let (mut ev, ping_handle, seen) = loop_with_counted_ping();
    let seen_after_yield = ev
        .block_on(&mut 0, async move {
            let mut got = Vec::new();
            for _ in 0..3 {
                ping_handle.ping().unwrap();
                rt::yield_now().await;
                got.push(seen.get());
            }
            got
        })
        .unwrap();
    assert_eq!(seen_after_yield, [1, 2, 3]);
}

#[test]
fn yield_now_waits_for_a_look_in_a_task_woken_from_another_thread() {
    // The wake ends the loop's epoll_wait; the task runs right after that
    // batch, and its yield must not end in the same iteration's later turn.
    let (mut ev, ping_handle, seen) = loop_with_counted_ping();
    let gate = Gate::default();
    let g = gate.clone();
    let opener = std::thread::spawn(move || {
        while !gate.has_waker() {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        gate.open();
    });
    let seen_after_yield = ev
        .block_on(&mut 0, async move {
            g.wait().await;
            ping_handle.ping().unwrap();
            rt::yield_now().await;
            seen.get()
        })
        .unwrap();
    opener.join().unwrap();
    assert_eq!(seen_after_yield, 1);
}

#[test]
fn yield_now_outside_fdloop_wakes_itself_at_once() {
    struct Count(std::sync::atomic::AtomicU32);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let count = Arc::new(Count(std::sync::atomic::AtomicU32::new(0)));
    let waker = std::task::Waker::from(count.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let mut y = std::pin::pin!(rt::yield_now());
    assert!(y.as_mut().poll(&mut cx).is_pending());
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(y.as_mut().poll(&mut cx).is_ready());
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

/// The task context nests: a task that runs another loop's `block_on`
/// inside its poll finds its own loop current again afterwards, and none
/// is current once the outer loop's turn ends.
#[test]
fn a_block_on_inside_a_task_restores_the_outer_loop_as_current() {
    let mut outer: EventLoop<()> = EventLoop::new().unwrap();
    let h = outer.handle();
    let out = outer
        .block_on(&mut (), async move {
            let inner = rt::block_on(async {
                let t = rt::spawn(async { 2 }).unwrap();
                t.await.unwrap()
            })
            .unwrap();
            let t = rt::spawn(async { 40 }).unwrap();
            assert_eq!(h.live_tasks(), 1, "spawned on the outer loop");
            inner + t.await.unwrap()
        })
        .unwrap();
    assert_eq!(out, 42);
    assert!(rt::spawn(async {}).is_err());
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
        futures_util::future::select(s, std::pin::pin!(rt::yield_now())).await;
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

/// Echoes what `s` reads until end of file.
async fn echo_until_eof<T>(mut s: T) -> std::io::Result<()>
where
    T: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin,
{
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n]).await?;
    }
}

#[test]
fn tcp_accept_stream_and_echo_over_several_connections() {
    let total = rt::block_on(async {
        let listener = Async::new(TcpListener::bind("127.0.0.1:0")?)?;
        let addr = listener.get_ref().local_addr()?;
        let server = rt::spawn(async move {
            let mut incoming = listener.incoming();
            for _ in 0..8 {
                let s = incoming.next().await.unwrap()?;
                rt::spawn(echo_until_eof(s))?.detach();
            }
            Ok::<_, std::io::Error>(())
        })?;
        let mut clients = Vec::new();
        for c in 0..8u8 {
            clients.push(rt::spawn(async move {
                let mut s = Async::<TcpStream>::connect(addr).await?;
                let mut got = 0;
                for round in 0..50u8 {
                    let msg = [c, round, 1, 2, 3];
                    s.write_all(&msg).await?;
                    let mut back = [0u8; 5];
                    s.read_exact(&mut back).await?;
                    assert_eq!(back, msg);
                    got += 1;
                }
                Ok::<_, std::io::Error>(got)
            })?);
        }
        let mut total = 0;
        for c in clients {
            total += c.await.unwrap()?;
        }
        server.await.unwrap()?;
        Ok::<_, std::io::Error>(total)
    })
    .unwrap()
    .unwrap();
    assert_eq!(total, 8 * 50);
}

/// A listener whose accept queue holds one connection (`listen(0)`) and
/// holds it already: the kernel drops a further SYN, and that connect stays
/// under way until the client's SYN is sent again (about 1 s later) after
/// the queue has room.
fn full_listener() -> (TcpListener, std::net::SocketAddr, TcpStream) {
    use rustix::net::{AddressFamily, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    rustix::net::bind(&fd, &any).unwrap();
    rustix::net::listen(&fd, 0).unwrap();
    let l = TcpListener::from(fd);
    let addr = l.local_addr().unwrap();
    let queued = TcpStream::connect(addr).unwrap();
    (l, addr, queued)
}

/// Sockets in SYN_SENT (state 02) towards `port`, from /proc/net/tcp
/// (other tests' descriptors come and go meanwhile; none of them connects
/// to this port).
fn syn_sent_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let rem = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2].ends_with(&rem) && f[3] == "02"
        })
        .count()
}

#[test]
fn tcp_connect_waits_for_the_handshake_while_the_loop_runs_other_tasks() {
    let (l, addr, _queued) = full_listener();
    let (pending_after_300ms, stream_ok) = rt::block_on(async move {
        let started = Instant::now();
        let connect = rt::spawn(async move { Async::<TcpStream>::connect(addr).await })?;
        // The loop goes on: this task's sleep ends while the connect waits.
        rt::sleep(Duration::from_millis(300)).await?;
        let pending = !connect.is_finished();
        // Room in the queue: the SYN sent again completes the handshake.
        let (first, _) = l.accept()?;
        drop(first);
        let mut s = connect.await.unwrap()?;
        assert!(started.elapsed() < Duration::from_secs(20));
        let (mut peer, _) = l.accept()?;
        s.write_all(b"up").await?;
        let mut got = [0u8; 2];
        peer.read_exact(&mut got)?;
        Ok::<_, std::io::Error>((pending, &got == b"up"))
    })
    .unwrap()
    .unwrap();
    assert!(
        pending_after_300ms,
        "the connect finished while the listener's queue was full"
    );
    assert!(stream_ok);
}

#[test]
fn a_connect_cancelled_while_under_way_closes_its_socket() {
    let (_l, addr, _queued) = full_listener();
    let (during, after) = rt::block_on(async move {
        let connect = rt::spawn(async move { Async::<TcpStream>::connect(addr).await })?;
        rt::sleep(Duration::from_millis(100)).await?;
        assert!(!connect.is_finished());
        let during = syn_sent_to(addr.port());
        connect.cancel();
        rt::yield_now().await;
        Ok::<_, std::io::Error>((during, syn_sent_to(addr.port())))
    })
    .unwrap()
    .unwrap();
    assert_eq!((during, after), (1, 0));
}

#[test]
fn a_connect_under_a_timeout_elapses_and_closes_its_socket() {
    let (_l, addr, _queued) = full_listener();
    let start = Instant::now();
    let (r, during, after) = rt::block_on(async move {
        let mut connect = Box::pin(rt::timeout(
            Duration::from_millis(150),
            Async::<TcpStream>::connect(addr),
        ));
        let during = std::future::poll_fn(|cx| {
            let _ = connect.as_mut().poll(cx);
            std::task::Poll::Ready(syn_sent_to(addr.port()))
        })
        .await;
        let r = connect.as_mut().await.map(|_| ());
        // The timeout hands back no socket and keeps the future until
        // dropped: dropping it closes the connecting socket.
        drop(connect);
        (r, during, syn_sent_to(addr.port()))
    })
    .unwrap();
    assert!(matches!(r, Err(rt::TimeoutError::Elapsed)), "{r:?}");
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!((during, after), (1, 0));
}

#[test]
fn timeout_returns_the_output_of_a_future_that_wins_and_leaves_no_timer() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let base = ev.len();
    let h = ev.handle();
    let t = rt::timeout_on(
        &h,
        Duration::from_secs(10),
        rt::sleep_on(&h, Duration::from_millis(5)),
    );
    let r = ev.block_on(&mut (), t).unwrap();
    assert!(matches!(r, Ok(Ok(()))), "{r:?}");
    assert_eq!(ev.len(), base, "both timers left the loop");
    // Elapsed: never early, and the converted error is TimedOut.
    let start = Instant::now();
    let t = rt::timeout_on(&h, Duration::from_millis(20), std::future::pending::<()>());
    let e = std::io::Error::from(ev.block_on(&mut (), t).unwrap().unwrap_err());
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(ev.len(), base);
}

#[test]
fn a_timeout_outside_a_task_reports_its_timer_error() {
    let mut t = std::pin::pin!(rt::timeout(
        Duration::from_secs(1),
        std::future::pending::<()>()
    ));
    let waker = futures_util::task::noop_waker();
    let r = t.as_mut().poll(&mut std::task::Context::from_waker(&waker));
    match r {
        std::task::Poll::Ready(Err(rt::TimeoutError::Timer(e))) => {
            assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::Other)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tcp_connect_over_ipv6() {
    let l = match TcpListener::bind("[::1]:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tcp_connect_over_ipv6: skipped, no IPv6 loopback here ({e})");
            return;
        }
    };
    let addr = l.local_addr().unwrap();
    let local = rt::block_on(async move {
        let s = Async::<TcpStream>::connect(addr).await?;
        s.get_ref().local_addr()
    })
    .unwrap()
    .unwrap();
    let (_peer, from) = l.accept().unwrap();
    assert_eq!(from, local);
    assert!(local.is_ipv6());
}

#[test]
fn tcp_connect_to_a_closed_port_is_refused_with_its_errno() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The listener is closed: nothing listens on `addr` now.
    let e = rt::block_on(async move { Async::<TcpStream>::connect(addr).await.map(|_| ()) })
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
}

#[test]
fn connect_outside_a_task_is_an_error_not_a_panic() {
    use futures_util::FutureExt;
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = Async::<TcpStream>::connect(addr).now_or_never().unwrap();
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::Other);
    let r = Async::<UnixStream>::connect("/nonexistent")
        .now_or_never()
        .unwrap();
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::Other);
}

#[test]
fn unix_listener_incoming_accept_and_connect_echo() {
    use std::os::unix::net::UnixListener;
    let dir = util::TempDir::new("unix-echo");
    let path = dir.path().join("echo.sock");
    let path2 = path.clone();
    let total = rt::block_on(async move {
        let listener = Async::new(UnixListener::bind(&path)?)?;
        let server = rt::spawn(async move {
            let mut incoming = listener.incoming();
            for i in 0..4 {
                let s = if i % 2 == 0 {
                    incoming.next().await.unwrap()?
                } else {
                    listener.accept().await?.0
                };
                rt::spawn(echo_until_eof(s))?.detach();
            }
            Ok::<_, std::io::Error>(())
        })?;
        let mut total = 0;
        for c in 0..4u8 {
            let mut s = Async::<UnixStream>::connect(&path2).await?;
            for round in 0..20u8 {
                s.write_all(&[c, round]).await?;
                let mut back = [0u8; 2];
                s.read_exact(&mut back).await?;
                assert_eq!(back, [c, round]);
                total += 1;
            }
        }
        server.await.unwrap()?;
        Ok::<_, std::io::Error>(total)
    })
    .unwrap()
    .unwrap();
    assert_eq!(total, 4 * 20);
}

/// `accept` is one `accept4` (non-blocking and close-on-exec from the
/// start) and still reports the peer's address as std does: unnamed
/// (twice: the second is a copy of the first), a path, an abstract name.
#[test]
fn unix_accept_reports_each_peers_address_and_hands_out_a_non_blocking_stream() {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::UnixListener;
    let dir = util::TempDir::new("unix-accept-addr");
    let path = dir.path().join("l.sock");
    let bound = dir.path().join("client.sock");
    let name = format!("fdloop-test-accept-{}", std::process::id());
    let listener = UnixListener::bind(&path).unwrap();
    let to = SocketAddrUnix::new(path.as_path()).unwrap();
    let client = |from: Option<SocketAddrUnix>| {
        let s = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
        if let Some(from) = from {
            rustix::net::bind(&s, &from).unwrap();
        }
        rustix::net::connect(&s, &to).unwrap();
        s
    };
    let _clients = [
        client(None),
        client(None),
        client(Some(SocketAddrUnix::new(bound.as_path()).unwrap())),
        client(Some(
            SocketAddrUnix::new_abstract_name(name.as_bytes()).unwrap(),
        )),
    ];
    let got = rt::block_on(async move {
        let l = Async::new(listener)?;
        let mut out = Vec::new();
        for _ in 0..4 {
            let (s, addr) = l.accept().await?;
            let fd = s.as_fd();
            let fl = rustix::fs::fcntl_getfl(fd)?;
            let fdfl = rustix::io::fcntl_getfd(fd)?;
            let mut buf = [0u8; 1];
            let e = s.get_ref().read(&mut buf).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
            out.push((
                addr,
                fl.contains(rustix::fs::OFlags::NONBLOCK),
                fdfl.contains(rustix::io::FdFlags::CLOEXEC),
            ));
        }
        Ok::<_, std::io::Error>(out)
    })
    .unwrap()
    .unwrap();
    assert!(
        got.iter().all(|g| g.1 && g.2),
        "non-blocking, close-on-exec"
    );
    assert!(got[0].0.is_unnamed() && got[1].0.is_unnamed(), "{got:?}");
    assert_eq!(got[0].0.as_pathname(), None);
    assert_eq!(got[2].0.as_pathname(), Some(bound.as_path()));
    assert_eq!(got[3].0.as_abstract_name(), Some(name.as_bytes()));
    assert!(!got[3].0.is_unnamed() && got[3].0.as_pathname().is_none());
}

#[test]
fn unix_connect_to_nothing_is_enoent_and_to_a_closed_listener_refused() {
    use std::os::unix::net::UnixListener;
    let dir = util::TempDir::new("unix-refused");
    let absent = dir.path().join("absent.sock");
    let closed = dir.path().join("closed.sock");
    drop(UnixListener::bind(&closed).unwrap());
    let (a, c) = rt::block_on(async move {
        let a = Async::<UnixStream>::connect(&absent).await.map(|_| ());
        let c = Async::<UnixStream>::connect(&closed).await.map(|_| ());
        (a, c)
    })
    .unwrap();
    assert_eq!(a.unwrap_err().raw_os_error(), Some(libc::ENOENT));
    assert_eq!(c.unwrap_err().raw_os_error(), Some(libc::ECONNREFUSED));
}

#[test]
fn poll_read_with_waits_after_would_block_instead_of_spinning() {
    let (a, b) = UnixStream::pair().unwrap();
    let calls = Rc::new(Cell::new(0u32));
    let c = calls.clone();
    let got = rt::block_on(async move {
        let b = Async::new(b)?;
        let reader = rt::spawn(async move {
            let mut buf = [0u8; 8];
            let n = std::future::poll_fn(|cx| {
                b.poll_read_with(cx, |mut s| {
                    c.set(c.get() + 1);
                    s.read(&mut buf)
                })
            })
            .await?;
            Ok::<_, std::io::Error>(buf[..n].to_vec())
        })?;
        // Several loop iterations with nothing to read.
        for _ in 0..5 {
            rt::sleep(Duration::from_millis(2)).await?;
        }
        std::io::Write::write_all(&mut &a, b"late")?;
        reader.await.unwrap()
    })
    .unwrap()
    .unwrap();
    assert_eq!(got, b"late");
    assert_eq!(
        calls.get(),
        2,
        "one read met WouldBlock, the next one after readiness got the data"
    );
}

#[test]
fn a_reader_task_and_a_writer_task_share_one_stream_through_references() {
    // The peer echoes on a thread of its own: the client must read while
    // it writes, or both sides' buffers fill and everything stops.
    const TOTAL: usize = 4 << 20;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut done = 0;
        while done < TOTAL {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            std::io::Write::write_all(&mut s, &buf[..n]).unwrap();
            done += n;
        }
    });
    let ok = rt::block_on(async move {
        let s = Rc::new(Async::<TcpStream>::connect(addr).await?);
        let w = s.clone();
        let writer = rt::spawn(async move {
            let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
            for _ in 0..TOTAL / chunk.len() {
                (&*w).write_all(&chunk).await?;
            }
            Ok::<_, std::io::Error>(())
        })?;
        let mut got = vec![0u8; TOTAL];
        (&*s).read_exact(&mut got).await?;
        writer.await.unwrap()?;
        Ok::<_, std::io::Error>(
            got.iter()
                .enumerate()
                .all(|(i, &b)| b == ((i % (64 * 1024)) % 251) as u8),
        )
    })
    .unwrap()
    .unwrap();
    peer.join().unwrap();
    assert!(ok);
}

#[test]
fn udp_datagrams_are_waited_for_and_keep_their_boundaries() {
    use std::net::UdpSocket;
    let got = rt::block_on(async {
        let a = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
        let b = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
        let to = a.get_ref().local_addr()?;
        let from = b.get_ref().local_addr()?;
        // The receiver waits first: nothing has been sent yet.
        let receiver = rt::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            for _ in 0..3 {
                let (n, peer) = a.recv_from(&mut buf).await?;
                assert_eq!(peer, from);
                got.push(buf[..n].to_vec());
            }
            Ok::<_, std::io::Error>(got)
        })?;
        rt::sleep(Duration::from_millis(5)).await?;
        for msg in [&b"one"[..], b"two!", b"three"] {
            b.send_to(msg, to).await?;
        }
        receiver.await.unwrap()
    })
    .unwrap()
    .unwrap();
    assert_eq!(got, [b"one".to_vec(), b"two!".to_vec(), b"three".to_vec()]);
}

#[test]
fn pipes_and_readable_writable() {
    rt::block_on(async {
        let (r, w) = std::io::pipe()?;
        let (mut r, mut w) = (Async::new(r)?, Async::new(w)?);
        w.writable().await?;
        // Fill the pipe: the writer must wait for the reader.
        let big = vec![7u8; 1 << 20];
        let writer = rt::spawn(async move {
            w.write_all(&big).await?;
            Ok::<_, std::io::Error>(())
        })?;
        r.readable().await?;
        let mut all = Vec::new();
        r.read_to_end(&mut all).await?;
        writer.await.unwrap()?;
        assert_eq!(all.len(), 1 << 20);
        Ok::<_, std::io::Error>(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn dropping_an_async_takes_it_out_of_the_loop_before_it_closes() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let h = ev.handle();
    ev.block_on(&mut (), async move {
        let (a, _b) = UnixStream::pair().unwrap();
        let a = Async::new_on(&h, a).unwrap();
        // Registered by a read that would block.
        let mut buf = [0u8; 1];
        let read = Box::pin(a.read_with(|mut s| s.read(&mut buf)));
        futures_util::future::select(read, rt::yield_now()).await;
        drop(a);
    })
    .unwrap();
    assert!(ev.is_empty());
}

#[test]
fn channel_receiver_is_a_stream_and_recv_waits_across_threads() {
    let (tx, rx) = fdloop::channel::bounded::<u32>(4).unwrap();
    let producer = std::thread::spawn(move || {
        for i in 0..10_000 {
            tx.send(i).unwrap();
        }
    });
    let sum = rt::block_on(async move {
        let mut rx = Async::new(rx)?;
        let first = rx.recv().await?.unwrap();
        let mut sum = u64::from(first);
        while let Some(m) = rx.next().await {
            sum += u64::from(m?);
        }
        Ok::<_, std::io::Error>(sum)
    })
    .unwrap()
    .unwrap();
    producer.join().unwrap();
    assert_eq!(sum, (0..10_000u64).sum::<u64>());
}

#[test]
fn a_child_exit_is_a_future() {
    let exit = rt::block_on(async {
        let proc = std::process::Command::new("sh")
            .args(["-c", "sleep 0.02; exit 3"])
            .spawn()?;
        let mut child = Async::new(fdloop::process::Child::new(&proc)?)?;
        child.exit().await
    })
    .unwrap()
    .unwrap();
    assert_eq!(exit.code(), Some(3));
}

#[test]
fn a_watch_is_a_stream() {
    let dir = std::env::temp_dir().join(format!("fdloop-async-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.clone();
    let n = rt::block_on(async move {
        let mut w = fdloop::watch::Watch::new()?;
        w.add(&d, fdloop::watch::WatchMask::CREATE)?;
        let mut w = Async::new(w)?;
        let d2 = d.clone();
        rt::spawn(async move {
            rt::sleep(Duration::from_millis(5)).await.unwrap();
            std::fs::write(d2.join("a"), b"").unwrap();
        })?
        .detach();
        let batch = w.next().await.unwrap()?;
        Ok::<_, std::io::Error>(batch.len())
    })
    .unwrap()
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(n >= 1);
}

#[test]
fn futures_util_combinators_run_unchanged() {
    use futures_util::future::{join_all, select, Either};
    use futures_util::stream;
    let out = rt::block_on(async {
        // join_all over our timers.
        let sleeps = (1..=3).map(|ms| rt::sleep(Duration::from_millis(ms)));
        assert!(join_all(sleeps).await.iter().all(Result::is_ok));
        // select: a short sleep wins over a long one.
        let r = select(
            rt::sleep(Duration::from_millis(1)),
            rt::sleep(Duration::from_secs(60)),
        )
        .await;
        assert!(matches!(r, Either::Left(_)));
        // Stream combinators over an interval.
        let ticks: Vec<u64> = rt::interval(Duration::from_millis(1))
            .map(|t| t.unwrap())
            .take(3)
            .collect()
            .await;
        // And a plain futures-util stream.
        let s: u32 = stream::iter(1..=4)
            .fold(0, |a, b| async move { a + b })
            .await;
        (ticks.len(), s)
    })
    .unwrap();
    assert_eq!(out, (3, 10));
}

/// Blocking work goes to `blocking`'s thread pool (the crate smol uses):
/// its future is woken from a pool thread through fdloop's waker. Here a
/// name lookup (which blocks) feeds a non-blocking connect, while a timer
/// task of the same loop keeps ticking.
#[test]
fn blocking_unblock_runs_unchanged_name_lookup_then_connect() {
    use std::net::ToSocketAddrs;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (connected, ticks) = rt::block_on(async move {
        let ticker = rt::spawn(async {
            let mut n = 0u32;
            let mut every = rt::interval(Duration::from_millis(1));
            while n < 3 {
                every.tick().await?;
                n += 1;
            }
            Ok::<_, fdloop::Error>(n)
        })?;
        let addrs: Vec<std::net::SocketAddr> = blocking::unblock(move || {
            std::thread::sleep(Duration::from_millis(20));
            ("127.0.0.1", port).to_socket_addrs().map(Iterator::collect)
        })
        .await?;
        let s = Async::<TcpStream>::connect(addrs[0]).await?;
        let ticks = ticker.await.unwrap()?;
        Ok::<_, std::io::Error>((s.get_ref().peer_addr()?.port(), ticks))
    })
    .unwrap()
    .unwrap();
    assert_eq!((connected, ticks), (port, 3));
    drop(l.accept().unwrap());
}

#[test]
fn bounded_senders_wait_for_room_on_the_loop() {
    // Two async senders on one loop (each its own duplicate of the room
    // descriptor), a consumer thread slower than them.
    let (tx, rx) = fdloop::channel::bounded::<u32>(2).unwrap();
    let consumer = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Ok(m) = rx.recv() {
            if got.len() % 100 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            got.push(m);
        }
        got
    });
    rt::block_on(async move {
        let a = rt::AsyncSender::new(tx.clone())?;
        let b = rt::AsyncSender::new(tx)?;
        let ta = rt::spawn(async move {
            for i in 0..1000 {
                a.send(i).await.unwrap();
            }
        })?;
        let tb = rt::spawn(async move {
            for i in 1000..2000 {
                b.send(i).await.unwrap();
            }
        })?;
        ta.await.unwrap();
        tb.await.unwrap();
        Ok::<_, std::io::Error>(())
    })
    .unwrap()
    .unwrap();
    let mut got = consumer.join().unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..2000).collect::<Vec<_>>());
}

#[test]
fn a_bounded_channel_between_two_tasks_of_one_loop() {
    let n = rt::block_on(async {
        let (tx, rx) = fdloop::channel::bounded::<u32>(1)?;
        let tx = rt::AsyncSender::new(tx)?;
        let rx = Async::new(rx)?;
        let producer = rt::spawn(async move {
            for i in 0..500 {
                tx.send(i).await.unwrap();
            }
        })?;
        let mut n = 0;
        while let Some(m) = rx.recv().await? {
            assert_eq!(m, n);
            n += 1;
        }
        producer.await.unwrap();
        Ok::<_, std::io::Error>(n)
    })
    .unwrap()
    .unwrap();
    assert_eq!(n, 500);
}

#[test]
fn send_to_a_dropped_receiver_hands_the_message_back() {
    rt::block_on(async {
        let (tx, rx) = fdloop::channel::bounded::<String>(1).unwrap();
        let tx = rt::AsyncSender::new(tx).unwrap();
        drop(rx);
        let err = tx.send("lost".into()).await.unwrap_err();
        assert_eq!(err.0, "lost");
    })
    .unwrap();
}

/// A loop driven by an outer poller (nested in tokio, say) is called only
/// when its descriptor is readable: a task spawned or woken on the loop's
/// thread outside a call, or left queued when a call returns, must make it
/// readable, and the next call runs it; one spawned or woken inside a call
/// is run by that call.
#[test]
fn tasks_queued_on_the_loop_thread_make_the_loop_fd_readable() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    ev.dispatch_pending(&mut ()).unwrap();
    assert!(!util::readiness(ev.as_fd()).0);
    // Spawned between calls.
    let t = ev.spawn(async { 5 });
    assert!(util::readiness(ev.as_fd()).0, "spawn left the fd quiet");
    ev.dispatch_pending(&mut ()).unwrap();
    assert!(t.is_finished());
    ev.dispatch_pending(&mut ()).unwrap();
    assert!(!util::readiness(ev.as_fd()).0);
    // Spawned by a callback, after this call's tasks ran: polled by this
    // call, after its batch, with no notifier write.
    let remote = ev.remote();
    let (ping, src) = Ping::new().unwrap();
    let h = ev.handle();
    let spawned = Rc::new(RefCell::new(None));
    let s2 = spawned.clone();
    ev.insert(src, move |(), _, _| {
        *s2.borrow_mut() = Some(h.spawn(async { 6 }));
        Action::Continue
    })
    .unwrap();
    ping.ping().unwrap();
    let before = remote.writes();
    ev.dispatch_pending(&mut ()).unwrap();
    let t = spawned.borrow_mut().take().expect("the callback ran");
    assert!(t.is_finished(), "a task spawned by a callback waited");
    assert_eq!(remote.writes(), before, "a wake on the loop thread wrote");
    assert!(!util::readiness(ev.as_fd()).0);
    // Woken by a deferred call, then waking itself, while a `run_once`
    // that may block (so is marked awake) polls it.
    let gate = Gate::default();
    let g = gate.clone();
    let t = ev.spawn(async move {
        g.wait().await;
        rt::yield_now().await;
        rt::yield_now().await;
    });
    ev.dispatch_pending(&mut ()).unwrap();
    assert!(!util::readiness(ev.as_fd()).0);
    ev.handle().defer(move |_| gate.open()).unwrap();
    ev.run_once(&mut (), Some(Duration::from_millis(50)))
        .unwrap();
    assert!(!t.is_finished());
    assert!(
        util::readiness(ev.as_fd()).0,
        "a woken task left the fd quiet"
    );
    while !t.is_finished() {
        ev.dispatch_pending(&mut ()).unwrap();
    }
    ev.dispatch_pending(&mut ()).unwrap();
    assert!(!util::readiness(ev.as_fd()).0);
}

/// A loop driven by `run_once`: a task woken by its descriptor becoming
/// ready is polled by the call that dispatched the readiness, and the wake
/// (on the loop's thread) makes no system call.
#[test]
fn a_task_woken_by_its_descriptor_runs_in_the_same_call_without_a_system_call() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let remote = ev.remote();
    let (r, mut w) = std::io::pipe().unwrap();
    let got = Rc::new(Cell::new(0u8));
    let g = got.clone();
    let h = ev.handle();
    let t = ev.spawn(async move {
        let mut r = rt::Async::new(r)?;
        for _ in 0..3 {
            let mut b = [0u8; 1];
            r.read_exact(&mut b).await?;
            g.set(b[0]);
        }
        drop(h);
        Ok::<_, std::io::Error>(())
    });
    // First poll: the task registers its pipe and waits.
    ev.dispatch_pending(&mut ()).unwrap();
    assert!(!util::readiness(ev.as_fd()).0);
    for i in 1..=3u8 {
        let before = remote.writes();
        std::io::Write::write_all(&mut w, &[i]).unwrap();
        ev.run_once(&mut (), Some(Duration::from_secs(5))).unwrap();
        assert_eq!(got.get(), i, "the readiness and the poll took two calls");
        assert_eq!(remote.writes(), before, "a wake on the loop thread wrote");
        assert!(
            !util::readiness(ev.as_fd()).0,
            "the loop fd stayed readable"
        );
    }
    assert!(t.is_finished());
}

/// A callback that spawns a task and then panics: the panic propagates out
/// of the call, the task is not lost — the loop's descriptor is readable
/// for an outer poller, and the next call polls it.
#[test]
fn a_task_queued_by_a_callback_that_panics_runs_in_the_next_call() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let h = ev.handle();
    let spawned = Rc::new(RefCell::new(None));
    let s2 = spawned.clone();
    let (ping, src) = Ping::new().unwrap();
    ev.insert(src, move |(), _, _| {
        *s2.borrow_mut() = Some(h.spawn(async { 7 }));
        panic!("callback panics after spawning");
    })
    .unwrap();
    ping.ping().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ev.run_once(&mut (), Some(Duration::from_secs(5)))
    }));
    assert!(r.is_err(), "the panic did not propagate");
    let t = spawned.borrow_mut().take().expect("the callback ran");
    assert!(!t.is_finished());
    assert!(
        util::readiness(ev.as_fd()).0,
        "a task queued before the panic left the fd quiet"
    );
    ev.dispatch_pending(&mut ()).unwrap();
    assert!(t.is_finished());
}

/// `run_once` does not block after it polled tasks, as after deferred
/// calls: a task it polled may be the last thing its caller waits for.
/// Here task `a` awaits task `b`, which reads a pipe: the call that
/// dispatches the pipe polls `b`, which ends (its pipe leaves the loop) and
/// wakes `a`; the next call polls `a`, and then the loop holds no source,
/// so nothing else could end its wait.
#[test]
fn run_once_does_not_block_after_polling_a_task() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let (r, mut w) = std::io::pipe().unwrap();
    let h = ev.handle();
    let b = ev.spawn(async move {
        let mut r = rt::Async::new_on(&h, r)?;
        let mut byte = [0u8; 1];
        r.read_exact(&mut byte).await?;
        Ok::<_, std::io::Error>(byte[0])
    });
    let a = ev.spawn(b);
    ev.dispatch_pending(&mut ()).unwrap();
    assert!(!a.is_finished());
    std::io::Write::write_all(&mut w, &[9]).unwrap();
    let start = Instant::now();
    let mut calls = 0;
    while !a.is_finished() {
        ev.run_once(&mut (), Some(Duration::from_secs(2))).unwrap();
        calls += 1;
        assert!(calls <= 3, "three calls and the task is still not done");
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "a call that polled the last task blocked for {:?}",
        start.elapsed()
    );
    let out = ev.block_on(&mut (), a).unwrap().unwrap();
    assert_eq!(out.unwrap().unwrap(), 9);
}
