//! Channels: ordering, exact delivery, disconnection, capacity, readiness,
//! destructors, and the loop source.

mod util;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fdloop::channel::{
    self, Event, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError,
};
use fdloop::{Action, EventFd, EventLoop, Interest, Io, Mode};

const SEC5: Option<Duration> = Some(Duration::from_secs(5));

#[test]
fn per_producer_fifo_and_exact_multiset_through_a_loop() {
    const P: u64 = 4;
    const N: u64 = 1_000_000;
    let (tx, rx) = channel::unbounded::<u64>().unwrap();
    let producers: Vec<_> = (0..P)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..N {
                    tx.send(p << 32 | i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    struct St {
        next: [u64; P as usize],
        count: u64,
        closed: bool,
    }
    let mut ev = EventLoop::new().unwrap();
    ev.insert(rx, |e, _, st: &mut St| {
        match e {
            Event::Msg(m) => {
                let (p, i) = ((m >> 32) as usize, m & 0xffff_ffff);
                assert_eq!(i, st.next[p], "producer {p}: out of order or duplicated");
                st.next[p] += 1;
                st.count += 1;
            }
            Event::Closed => {
                assert!(!st.closed, "Closed twice");
                st.closed = true;
            }
        }
        Action::Continue
    })
    .unwrap();
    let mut st = St {
        next: [0; P as usize],
        count: 0,
        closed: false,
    };
    while !st.closed {
        ev.run_once(&mut st, SEC5).unwrap();
    }
    for p in producers {
        p.join().unwrap();
    }
    // In-order per producer with no gaps, and all counted: the exact
    // multiset, nothing lost or duplicated.
    assert_eq!(st.next, [N; P as usize]);
    assert_eq!(st.count, P * N);
    assert!(ev.is_empty(), "the source removes itself after Closed");
}

#[test]
fn exact_multiset_with_blocking_recv_on_a_bounded_channel() {
    let (tx, rx) = channel::bounded::<u32>(64).unwrap();
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..50_000u32 {
                    tx.send(p * 1_000_000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut seen: HashMap<u32, u32> = HashMap::new();
    for m in rx.iter() {
        *seen.entry(m).or_default() += 1;
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(seen.len(), 200_000);
    assert!(seen.values().all(|&c| c == 1));
}

#[test]
fn senders_gone_means_disconnected_after_the_last_message() {
    let (tx, rx) = channel::unbounded().unwrap();
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_disconnected(), "one sender remains");
    tx2.send(2).unwrap();
    drop(tx2);
    assert!(rx.is_disconnected());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn receiver_gone_hands_messages_back() {
    let (tx, rx) = channel::unbounded::<String>().unwrap();
    drop(rx);
    assert!(tx.is_disconnected());
    assert_eq!(tx.send("a".into()).unwrap_err().into_inner(), "a");
    match tx.try_send("b".into()) {
        Err(TrySendError::Disconnected(m)) => assert_eq!(m, "b"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn blocked_sender_wakes_when_the_receiver_goes() {
    let (tx, rx) = channel::bounded::<u8>(1).unwrap();
    tx.send(0).unwrap();
    let t = thread::spawn(move || tx.send(1));
    thread::sleep(Duration::from_millis(50));
    drop(rx);
    let r = t.join().unwrap();
    assert_eq!(r.unwrap_err().into_inner(), 1);
}

#[test]
fn bounded_full_then_blocking_send_resumes_after_recv() {
    let (tx, rx) = channel::bounded::<u32>(2).unwrap();
    assert_eq!(tx.capacity(), Some(2));
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
    let start = Instant::now();
    assert!(matches!(
        tx.send_timeout(3, Duration::from_millis(30)),
        Err(SendTimeoutError::Timeout(3))
    ));
    assert!(
        start.elapsed() >= Duration::from_millis(30),
        "send_timeout early"
    );
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let t = thread::spawn(move || {
        tx.send(3).unwrap();
        done_tx.send(()).unwrap();
        tx
    });
    // Still blocked: the channel is full.
    assert!(done_rx.recv_timeout(Duration::from_millis(50)).is_err());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    // Capacity comes back once the receiver's batch is consumed.
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(3));
    done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let _tx = t.join().unwrap();
}

#[test]
fn unbounded_has_no_capacity_and_never_blocks() {
    let (tx, rx) = channel::unbounded::<u32>().unwrap();
    assert_eq!(tx.capacity(), None);
    for i in 0..100_000 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(tx.len(), 100_000);
    assert_eq!(rx.try_iter().count(), 100_000);
}

#[test]
fn receiver_readiness_in_plain_poll() {
    let (tx, rx) = channel::unbounded::<u8>().unwrap();
    assert!(
        !util::readiness(&rx).0,
        "empty channel must not be readable"
    );
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert!(util::readiness(&rx).0);
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(util::readiness(&rx).0, "a message still waits");
    assert_eq!(rx.try_recv(), Ok(2));
    assert!(
        !util::readiness(&rx).0,
        "the last message taken: not readable, with no extra try_recv"
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(!util::readiness(&rx).0, "drained: not readable");
    tx.send(3).unwrap();
    assert!(util::readiness(&rx).0);
    assert_eq!(rx.try_recv(), Ok(3));
    drop(tx);
    assert!(util::readiness(&rx).0, "senders gone: readable");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert!(util::readiness(&rx).0, "stays readable once disconnected");
}

/// Counts its drops.
struct Tracked(Arc<AtomicUsize>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn destructors_run_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let (tx, rx) = channel::unbounded().unwrap();
        for _ in 0..100 {
            tx.send(Tracked(drops.clone())).unwrap();
        }
        // Receive some (dropped here), leave some in the receiver's private
        // batch, and some in the shared queue.
        for _ in 0..30 {
            drop(rx.try_recv().unwrap());
        }
        for _ in 0..50 {
            tx.send(Tracked(drops.clone())).unwrap();
        }
        assert_eq!(drops.load(Ordering::SeqCst), 30);
        drop(rx);
        // The receiver is gone: a refused message comes back, not dropped.
        let back = tx.send(Tracked(drops.clone())).unwrap_err().into_inner();
        assert_eq!(drops.load(Ordering::SeqCst), 150);
        drop(back);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 151);
    // Dropping the senders last also frees everything once.
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let (tx, rx) = channel::bounded(10).unwrap();
        for _ in 0..10 {
            tx.send(Tracked(drops.clone())).unwrap();
        }
        drop(rx);
        drop(tx);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 10);
}

#[test]
fn sends_to_a_busy_receiver_make_almost_no_syscalls() {
    // All sends before the receiver wakes: one write in total.
    let (tx, rx) = channel::unbounded::<u32>().unwrap();
    for i in 0..100_000 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.wake_writes(), 1);
    assert_eq!(rx.try_iter().count(), 100_000);
    // Concurrent: the receiver is kept busy (it does ~2 µs of work per
    // message) while a producer streams. Writes happen only when it sleeps.
    let (tx, mut rx) = channel::unbounded::<u32>().unwrap();
    rx.set_batch_limit(64);
    let probe = tx.clone();
    const N: u32 = 200_000;
    let producer = thread::spawn(move || {
        for i in 0..N {
            tx.send(i).unwrap();
        }
    });
    let before = probe.wake_writes();
    let mut ev = EventLoop::new().unwrap();
    ev.insert(rx, |e, _, n: &mut u32| {
        if let Event::Msg(_) = e {
            *n += 1;
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(2) {
                std::hint::spin_loop();
            }
        }
        Action::Continue
    })
    .unwrap();
    let mut n = 0;
    while n < N {
        ev.run_once(&mut n, SEC5).unwrap();
    }
    producer.join().unwrap();
    let per_msg = (probe.wake_writes() - before) as f64 / f64::from(N);
    eprintln!("writes per message with a busy receiver: {per_msg:.5}");
    assert!(per_msg < 0.01, "{per_msg} writes per message");
}

#[test]
fn loop_source_is_fair_with_other_sources() {
    let (tx, rx) = channel::unbounded::<u32>().unwrap();
    for i in 0..10_000 {
        tx.send(i).unwrap();
    }
    #[derive(Default)]
    struct St {
        msgs: usize,
        io: usize,
    }
    let mut ev = EventLoop::new().unwrap();
    ev.insert(rx, |e, _, st: &mut St| {
        if let Event::Msg(_) = e {
            st.msgs += 1;
        }
        Action::Continue
    })
    .unwrap();
    let efd = EventFd::options().nonblocking(true).open().unwrap();
    efd.write(1).unwrap();
    ev.insert(
        Io::new(efd, Interest::READABLE, Mode::Level),
        |_, _, st: &mut St| {
            st.io += 1;
            Action::Continue
        },
    )
    .unwrap();
    let mut st = St::default();
    ev.run_once(&mut st, SEC5).unwrap();
    assert_eq!(st.msgs, channel::DEFAULT_BATCH, "one batch per iteration");
    assert_eq!(st.io, 1, "the other source ran in the same iteration");
    while st.msgs < 10_000 {
        ev.run_once(&mut st, SEC5).unwrap();
    }
    assert_eq!(st.msgs, 10_000);
    drop(tx);
}

#[test]
fn closed_comes_once_after_the_last_message() {
    let (tx, rx) = channel::unbounded::<u8>().unwrap();
    let mut ev = EventLoop::new().unwrap();
    ev.insert(rx, |e, _, log: &mut Vec<Event<u8>>| {
        log.push(e);
        Action::Continue
    })
    .unwrap();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    let mut log = Vec::new();
    for _ in 0..3 {
        ev.run_once(&mut log, Some(Duration::from_millis(20)))
            .unwrap();
    }
    assert_eq!(log, [Event::Msg(1), Event::Msg(2), Event::Closed]);
    assert!(ev.is_empty());
}

#[test]
fn recv_timeout_is_never_early() {
    let (_tx, rx) = channel::unbounded::<u8>().unwrap();
    for t in [Duration::from_micros(200), Duration::from_millis(15)] {
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(t), Err(RecvTimeoutError::Timeout));
        assert!(start.elapsed() >= t);
    }
}

#[test]
fn ping_pong_between_two_loops_loses_nothing() {
    // Two loops on two threads bounce a counter 20 000 times.
    let (to_b, b_rx) = channel::unbounded::<u32>().unwrap();
    let (to_a, a_rx) = channel::unbounded::<u32>().unwrap();
    const ROUNDS: u32 = 20_000;
    let b = thread::spawn(move || {
        let mut ev = EventLoop::new().unwrap();
        ev.insert(b_rx, move |e, _, done: &mut bool| {
            match e {
                Event::Msg(n) => to_a.send(n + 1).unwrap(),
                Event::Closed => *done = true,
            }
            Action::Continue
        })
        .unwrap();
        let mut done = false;
        while !done {
            ev.run_once(&mut done, SEC5).unwrap();
        }
    });
    let mut ev = EventLoop::new().unwrap();
    let tx = to_b.clone();
    ev.insert(a_rx, move |e, _, last: &mut u32| {
        if let Event::Msg(n) = e {
            *last = n;
            if n < 2 * ROUNDS {
                tx.send(n + 1).unwrap();
            }
        }
        Action::Continue
    })
    .unwrap();
    to_b.send(0).unwrap();
    let mut last = 0;
    let start = Instant::now();
    while last < 2 * ROUNDS {
        assert!(
            ev.run_once(&mut last, SEC5).unwrap() > 0,
            "stalled at {last}"
        );
    }
    eprintln!("{} round trips in {:?}", ROUNDS, start.elapsed());
    drop(ev); // drops the `tx` clone inside the callback
    drop(to_b);
    b.join().unwrap();
}

#[test]
fn a_panicking_callback_uses_up_one_message_and_closed_ends_the_source() {
    let (tx, rx) = channel::unbounded::<u32>().unwrap();
    for m in 1..=3 {
        tx.send(m).unwrap();
    }
    drop(tx);
    let mut ev: EventLoop<Vec<Option<u32>>> = EventLoop::new().unwrap();
    ev.insert(rx, |e, _, seen: &mut Vec<Option<u32>>| {
        let m = match e {
            Event::Msg(m) => Some(m),
            Event::Closed => None,
        };
        seen.push(m);
        if m == Some(1) || m.is_none() {
            panic!("on {m:?}");
        }
        Action::Continue
    })
    .unwrap();
    let mut seen = Vec::new();
    let once = |ev: &mut EventLoop<_>, seen: &mut _| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ev.run_once(seen, Some(Duration::from_secs(5)))
        }))
        .is_err()
    };
    assert!(
        once(&mut ev, &mut seen),
        "the panic on message 1 propagates"
    );
    assert_eq!(seen, [Some(1)]);
    // Messages 2 and 3, then Closed (which panics too).
    assert!(once(&mut ev, &mut seen));
    assert_eq!(seen, [Some(1), Some(2), Some(3), None]);
    // Closed was delivered: the source left, it is not delivered again.
    assert!(ev.is_empty());
}

#[test]
fn a_panicking_send_ready_callback_uses_up_its_report_only() {
    let (tx, rx) = channel::bounded::<u32>(1).unwrap();
    tx.try_send(0).unwrap();
    assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
    let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
    ev.insert(tx.ready_source(), move |(), _, n: &mut u32| -> Action {
        *n += 1;
        panic!("report {n}")
    })
    .unwrap();
    let mut n = 0;
    // Dropping the receiver makes the source fire.
    drop(rx);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ev.run_once(&mut n, Some(Duration::from_secs(5)))
    }));
    assert!(r.is_err());
    assert_eq!(n, 1);
    // Used up: not reported again; the source stays.
    assert_eq!(
        ev.run_once(&mut n, Some(Duration::from_millis(50)))
            .unwrap(),
        0
    );
    assert_eq!((n, ev.len()), (1, 1));
}

/// Takes one message from a receiver.
type Take = fn(&channel::Receiver<u32>) -> u32;

/// Whether a receive path settles the descriptor before it returns the
/// last message (the non-blocking ones), or at the next call that finds the
/// channel empty (the blocking ones), as the module docs say.
fn settles_at_once(name: &str) -> bool {
    name.starts_with("try_")
}

/// Each way of receiving, as a function that takes one message.
fn receive_paths() -> Vec<(&'static str, Take)> {
    vec![
        ("try_recv", |rx| loop {
            // Non-blocking: in the threaded tests, wait for the producer.
            match rx.try_recv() {
                Ok(m) => return m,
                Err(TryRecvError::Empty) => thread::yield_now(),
                Err(e) => panic!("{e:?}"),
            }
        }),
        ("recv", |rx| rx.recv().unwrap()),
        ("recv_timeout", |rx| {
            rx.recv_timeout(Duration::from_secs(5)).unwrap()
        }),
        ("try_iter", |rx| loop {
            if let Some(m) = rx.try_iter().next() {
                return m;
            }
            thread::yield_now();
        }),
        ("iter", |rx| rx.iter().next().unwrap()),
    ]
}

#[test]
fn capacity_comes_back_with_each_message_received() {
    for (name, take) in receive_paths() {
        let (tx, rx) = channel::bounded::<u32>(1).unwrap();
        tx.try_send(1).unwrap();
        assert!(
            matches!(tx.try_send(2), Err(TrySendError::Full(2))),
            "{name}"
        );
        assert_eq!(tx.len(), 1, "{name}");
        assert_eq!(take(&rx), 1, "{name}");
        assert_eq!(tx.len(), 0, "{name}: len after the receive");
        tx.try_send(2)
            .unwrap_or_else(|e| panic!("{name}: room did not come back: {e:?}"));
        assert_eq!(take(&rx), 2, "{name}");
    }
    // And in a loop callback: inside the callback that got the message,
    // its slot is free already.
    let (tx, rx) = channel::bounded::<u32>(1).unwrap();
    tx.try_send(1).unwrap();
    let mut ev: EventLoop<Vec<u32>> = EventLoop::new().unwrap();
    let tx2 = tx.clone();
    ev.insert(rx, move |e, _, got: &mut Vec<u32>| {
        if let Event::Msg(m) = e {
            got.push(m);
            assert_eq!(tx2.len(), 0, "len inside the callback");
            if m == 1 {
                tx2.try_send(2).expect("room inside the callback");
            }
        }
        Action::Continue
    })
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        ev.run_once(&mut got, SEC5).unwrap();
    }
    assert_eq!(got, [1, 2]);
}

#[test]
fn hand_off_where_the_consumer_waits_for_the_next_send_does_not_deadlock() {
    // bounded(1): the producer's second send blocks until the consumer has
    // taken the first; the consumer takes it and then waits for the second.
    // With capacity returned only at a later refill this deadlocked.
    for (name, take) in receive_paths() {
        let (tx, rx) = channel::bounded::<u32>(1).unwrap();
        let producer = thread::spawn(move || {
            for i in 0..1000 {
                tx.send_timeout(i, Duration::from_secs(10))
                    .expect("send blocked for 10 s: capacity never came back");
            }
        });
        for i in 0..1000 {
            assert_eq!(take(&rx), i, "{name}");
        }
        producer.join().unwrap();
    }
}

#[test]
fn readable_exactly_while_a_message_waits_for_every_receive_path() {
    for bounded in [false, true] {
        for (name, take) in receive_paths() {
            let (tx, rx) = if bounded {
                channel::bounded::<u32>(4).unwrap()
            } else {
                channel::unbounded::<u32>().unwrap()
            };
            assert!(!util::readiness(&rx).0, "{name}: new channel");
            for round in 0..3 {
                tx.send(round).unwrap();
                tx.send(round + 10).unwrap();
                assert!(util::readiness(&rx).0, "{name}: two waiting");
                assert_eq!(take(&rx), round);
                assert!(util::readiness(&rx).0, "{name}: one still waiting");
                assert_eq!(take(&rx), round + 10);
                if !settles_at_once(name) {
                    // The blocking calls leave the receiver awake until a
                    // receive finds the channel empty.
                    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
                }
                assert!(
                    !util::readiness(&rx).0,
                    "{name} (bounded: {bounded}): readable after the last message was taken"
                );
            }
            drop(tx);
            assert!(util::readiness(&rx).0, "{name}: disconnected");
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
            assert!(util::readiness(&rx).0, "{name}: stays readable");
        }
    }
}

#[test]
fn readiness_through_a_loop_callback() {
    // The loop source settles after the last message's callback (so a reply
    // the callback provokes is taken in the same dispatch): while a callback
    // runs with more messages waiting, the descriptor is readable; once the
    // dispatch is over and nothing waits, it is not.
    let (tx, rx) = channel::unbounded::<u32>().unwrap();
    let fd = util::raw(&rx);
    let mut ev: EventLoop<Vec<(u32, bool)>> = EventLoop::new().unwrap();
    ev.insert(rx, move |e, _, seen: &mut Vec<(u32, bool)>| {
        if let Event::Msg(m) = e {
            // SAFETY: `fd` is the receiver's descriptor, alive while the
            // source is in the loop (we are in its callback).
            let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            seen.push((m, util::readiness(b).0));
        }
        Action::Continue
    })
    .unwrap();
    for round in 0..3 {
        tx.send(2 * round).unwrap();
        tx.send(2 * round + 1).unwrap();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            ev.run_once(&mut seen, SEC5).unwrap();
        }
        assert_eq!(seen[0], (2 * round, true), "one more waits: readable");
        // SAFETY: as above; the loop (and so the receiver) is alive.
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        assert!(
            !util::readiness(b).0,
            "dispatch over, nothing waits: not readable"
        );
    }
}

#[test]
fn messages_cross_many_blocks_in_order() {
    // The unbounded queue is a list of 31-slot blocks: take and give across
    // many block boundaries, with the receiver sometimes caught up.
    let (tx, rx) = channel::unbounded::<u32>().unwrap();
    let mut next_in = 0u32;
    let mut next_out = 0u32;
    for burst in [1u32, 30, 31, 32, 62, 63, 100, 7, 500] {
        for _ in 0..burst {
            tx.send(next_in).unwrap();
            next_in += 1;
        }
        assert_eq!(tx.len(), (next_in - next_out) as usize);
        let take = burst / 2 + 1;
        for _ in 0..take.min(next_in - next_out) {
            assert_eq!(rx.try_recv(), Ok(next_out));
            next_out += 1;
        }
    }
    while next_out < next_in {
        assert_eq!(rx.try_recv(), Ok(next_out));
        next_out += 1;
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(tx.len(), 0);
}

#[test]
fn a_send_racing_the_receivers_drop_loses_nothing_and_drops_once() {
    // Senders keep sending while the receiver is dropped: each message is
    // either handed back to its sender or dropped with the channel, once.
    for _ in 0..50 {
        let drops = Arc::new(AtomicUsize::new(0));
        let back = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel::unbounded().unwrap();
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let (tx, drops, back) = (tx.clone(), drops.clone(), back.clone());
                thread::spawn(move || {
                    let mut sent = 0;
                    for _ in 0..2000 {
                        match tx.send(Tracked(drops.clone())) {
                            Ok(()) => sent += 1,
                            Err(e) => {
                                drop(e.into_inner());
                                back.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                    sent
                })
            })
            .collect();
        drop(tx);
        thread::sleep(Duration::from_micros(200));
        drop(rx);
        let sent: usize = senders.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            4000,
            "every message dropped exactly once (sent {sent}, back {})",
            back.load(Ordering::SeqCst)
        );
        assert_eq!(sent + back.load(Ordering::SeqCst), 4000);
    }
}

#[test]
fn blocked_senders_on_tiny_capacities_never_stall() {
    // Capacities 1 to 4 (checkpoint at every receive up to 3, then every
    // second): four blocking senders and a consumer that alternates the
    // blocking and non-blocking receive calls. Every message arrives once,
    // in order per sender, and nothing waits out its timeout.
    for cap in 1..=4usize {
        let (tx, rx) = channel::bounded::<u32>(cap).unwrap();
        let producers: Vec<_> = (0..4u32)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..5_000u32 {
                        tx.send_timeout(p << 16 | i, Duration::from_secs(10))
                            .expect("a blocked sender was never woken");
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u32; 4];
        let mut n = 0u64;
        loop {
            let m = if n.is_multiple_of(3) {
                match rx.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Empty) => {
                        // Poll politely: a busy loop here would hold a CPU
                        // that woken senders wait for.
                        thread::yield_now();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.recv_timeout(Duration::from_secs(10)) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => panic!("cap {cap}: receiver stalled"),
                }
            };
            let (p, i) = ((m >> 16) as usize, m & 0xffff);
            assert_eq!(i, next[p], "cap {cap}: sender {p} out of order");
            next[p] += 1;
            n += 1;
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(next, [5_000; 4], "cap {cap}");
    }
}
