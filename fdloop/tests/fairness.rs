//! Fairness under load: a flooded channel must not starve a periodic timer
//! or a socket served by the same loop.
//!
//! The figures (timer lateness percentiles, echo round trips, messages
//! taken) are printed; run with `--nocapture` to see them.

mod util;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fdloop::channel::{self, Event};
use fdloop::{Action, EventLoop, Interest, Io, LoopHandle, Mode, SourceId, Timer};

#[derive(Default)]
struct Load {
    lateness: Vec<Duration>,
    msgs: u64,
    echoed: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A producer thread floods a channel as fast as it can while a 1 ms
/// periodic timer and a socket echo run on the same loop: the timer's
/// lateness p99 stays under 5 ms and every request gets its reply.
#[test]
fn flooded_channel_does_not_starve_timer_or_socket() {
    let run_for = Duration::from_millis(1500);
    let mut ev: EventLoop<Load> = EventLoop::new().unwrap();

    // The flood: a bounded channel, so memory stays bounded; the producer
    // blocks only while it is full.
    let (tx, rx) = channel::bounded::<u64>(4096).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let producer = std::thread::spawn(move || {
        let mut i = 0u64;
        while !s.load(Ordering::Relaxed) {
            if tx.send(i).is_err() {
                break;
            }
            i += 1;
        }
    });
    ev.insert(rx, |e, _, st: &mut Load| {
        if let Event::Msg(_) = e {
            st.msgs += 1;
        }
        Action::Continue
    })
    .unwrap();

    // The timer.
    ev.insert(
        Timer::every(Duration::from_millis(1)),
        |e, _, st: &mut Load| {
            st.lateness.push(e.late);
            Action::Continue
        },
    )
    .unwrap();

    // The echo: the loop answers each 8-byte request on a socket.
    let (server, mut client) = UnixStream::pair().unwrap();
    server.set_nonblocking(true).unwrap();
    ev.insert(
        Io::new(server, Interest::READABLE, Mode::Level),
        |_, io, st: &mut Load| {
            let mut buf = [0u8; 8];
            while let Ok(8) = io.fd_mut().read(&mut buf) {
                io.fd_mut().write_all(&buf).unwrap();
                st.echoed += 1;
            }
            Action::Continue
        },
    )
    .unwrap();
    let c_stop = stop.clone();
    let pinger = std::thread::spawn(move || {
        let mut rtts = Vec::new();
        let mut n = 0u64;
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        while !c_stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            client.write_all(&n.to_ne_bytes()).unwrap();
            let mut buf = [0u8; 8];
            client
                .read_exact(&mut buf)
                .expect("every request gets a reply");
            assert_eq!(u64::from_ne_bytes(buf), n);
            rtts.push(t.elapsed());
            n += 1;
            std::thread::sleep(Duration::from_micros(500));
        }
        rtts
    });

    let mut st = Load::default();
    let start = Instant::now();
    while start.elapsed() < run_for {
        ev.run_once(&mut st, Some(Duration::from_millis(10)))
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    // Let the producer and the pinger see the stop: keep serving until both
    // are gone.
    while !(producer.is_finished() && pinger.is_finished()) {
        ev.run_once(&mut st, Some(Duration::from_millis(10)))
            .unwrap();
    }
    producer.join().unwrap();
    let mut rtts = pinger.join().unwrap();

    let mut late = st.lateness.clone();
    late.sort();
    rtts.sort();
    let p99 = percentile(&late, 0.99);
    println!(
        "fairness: {} timer ticks, lateness p50 {:?} p99 {:?} max {:?}; {} echoes, rtt p50 {:?} p99 {:?}; {} messages",
        late.len(),
        percentile(&late, 0.5),
        p99,
        late.last().copied().unwrap_or_default(),
        rtts.len(),
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99),
        st.msgs,
    );
    assert!(st.msgs > 1000, "the flood reached the loop");
    assert!(
        late.len() > 100,
        "the timer kept firing: {} ticks",
        late.len()
    );
    assert!(p99 < Duration::from_millis(5), "timer lateness p99 {p99:?}");
    assert!(rtts.len() > 100, "the echo kept answering: {}", rtts.len());
    assert_eq!(st.echoed, rtts.len() as u64);
}

/// An eventfd that stays readable (counter 1, never read): a source that
/// is ready on every iteration.
fn always_ready() -> Io<fdloop::EventFd> {
    Io::new(
        fdloop::EventFd::new(1).unwrap(),
        Interest::READABLE,
        Mode::Level,
    )
}

type Log = Vec<(i32, u32)>;

#[test]
fn ready_sources_run_in_priority_order_timers_included() {
    let mut ev: EventLoop<Log> = EventLoop::new().unwrap();
    let h = ev.handle();
    let prios = [5, -3, 0, 5, i32::MIN, 2, -3, i32::MAX, 0, 1];
    for (i, &p) in prios.iter().enumerate() {
        h.insert_with_priority(always_ready(), p, move |_, _, log: &mut Log| {
            log.push((p, i as u32));
            Action::Continue
        })
        .unwrap();
    }
    // Two timers due in the same batch, at priorities between the
    // descriptors'.
    for (k, p) in [(100u32, 1), (101, -4)] {
        h.insert_with_priority(
            Timer::after(Duration::ZERO),
            p,
            move |_, _, log: &mut Log| {
                log.push((p, k));
                Action::Continue
            },
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(2));
    let mut log = Log::new();
    // The first iteration arms the timers; run until both fired.
    while log.iter().filter(|e| e.1 >= 100).count() < 2 {
        log.clear();
        ev.run_once(&mut log, Some(Duration::from_millis(100)))
            .unwrap();
    }
    let got: Vec<i32> = log.iter().map(|e| e.0).collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "dispatched out of priority order: {log:?}");
    assert_eq!(log.len(), prios.len() + 2, "{log:?}");
    // Equal priorities keep epoll's order, the same on every iteration.
    log.clear();
    ev.dispatch_pending(&mut log).unwrap();
    let first: Log = log.clone();
    log.clear();
    ev.dispatch_pending(&mut log).unwrap();
    assert_eq!(log, first);
}

#[test]
fn priority_can_change_and_stale_ids_are_refused() {
    let mut ev: EventLoop<Log> = EventLoop::new().unwrap();
    let h = ev.handle();
    let a = h
        .insert(always_ready(), |_, _, log: &mut Log| {
            log.push((0, 0));
            Action::Continue
        })
        .unwrap();
    let b = h
        .insert(always_ready(), |_, _, log: &mut Log| {
            log.push((0, 1));
            Action::Continue
        })
        .unwrap();
    let mut log = Log::new();
    for (pa, pb, want) in [(1, 0, [1, 0]), (0, 1, [0, 1]), (-1, -2, [1, 0])] {
        h.set_priority(a, pa).unwrap();
        h.set_priority(b, pb).unwrap();
        assert_eq!(h.priority(a).unwrap(), pa);
        log.clear();
        ev.dispatch_pending(&mut log).unwrap();
        let order: Vec<u32> = log.iter().map(|e| e.1).collect();
        assert_eq!(order, want);
    }
    ev.remove(a).unwrap();
    assert!(matches!(
        h.set_priority(a, 3),
        Err(fdloop::Error::NoSuchSource(_))
    ));
    // A new source in the reused slot starts at the default.
    let c = h
        .insert(always_ready(), |_, _, _| Action::Continue)
        .unwrap();
    assert_eq!(h.priority(c).unwrap(), 0);
}

#[test]
fn idle_callbacks_run_only_when_nothing_is_ready() {
    let mut ev: EventLoop<(u32, u32)> = EventLoop::new().unwrap();
    let h = ev.handle();
    let busy = h
        .insert(always_ready(), |_, _, st: &mut (u32, u32)| {
            st.0 += 1;
            Action::Continue
        })
        .unwrap();
    h.insert_idle(|st: &mut (u32, u32)| {
        st.1 += 1;
        Action::Continue
    })
    .unwrap();
    let mut st = (0, 0);
    for _ in 0..10 {
        ev.run_once(&mut st, Some(Duration::from_millis(50)))
            .unwrap();
    }
    assert_eq!(
        st,
        (10, 0),
        "the idle callback ran while a source was ready"
    );
    h.disable(busy).unwrap();
    ev.run_once(&mut st, Some(Duration::from_millis(1)))
        .unwrap();
    assert_eq!(st, (10, 1));
}

#[derive(Default)]
struct Limited {
    /// Dispatch times since start.
    hits: Vec<Duration>,
    /// (entered?, when)
    changes: Vec<(bool, Duration)>,
}

/// Runs `ev` for `d` with short waits.
/// A loop with one always-ready source that records its dispatch times
/// (since the returned start) in `Limited::hits`.
fn recording_loop() -> (EventLoop<Limited>, LoopHandle<Limited>, SourceId, Instant) {
    let ev: EventLoop<Limited> = EventLoop::new().unwrap();
    let h = ev.handle();
    let t0 = Instant::now();
    let id = h
        .insert(always_ready(), move |_, _, st: &mut Limited| {
            st.hits.push(t0.elapsed());
            Action::Continue
        })
        .unwrap();
    (ev, h, id, t0)
}

fn run_for<S>(ev: &mut EventLoop<S>, st: &mut S, d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        ev.run_once(st, Some(Duration::from_millis(2))).unwrap();
    }
}

#[test]
fn rate_limit_allows_exactly_burst_per_interval_and_always_resumes() {
    let (mut ev, h, id, t0) = recording_loop();
    let interval = Duration::from_millis(40);
    h.set_rate_limit_with(id, interval, 7, move |_, entered, st: &mut Limited| {
        st.changes.push((entered, t0.elapsed()));
    })
    .unwrap();
    let mut st = Limited::default();
    run_for(&mut ev, &mut st, Duration::from_millis(300));
    // Entered and left alternately, starting with "entered".
    assert!(st.changes.len() >= 8, "{:?}", st.changes);
    for (i, c) in st.changes.iter().enumerate() {
        assert_eq!(c.0, i % 2 == 0, "{:?}", st.changes);
    }
    // Between a release and the next hold: exactly `burst` dispatches,
    // and the hold lasts until its interval ends.
    let windows: Vec<Duration> = std::iter::once(Duration::ZERO)
        .chain(st.changes.iter().filter(|c| !c.0).map(|c| c.1))
        .collect();
    for w in windows.windows(2) {
        let n = st.hits.iter().filter(|&&t| t >= w[0] && t < w[1]).count();
        assert_eq!(n, 7, "dispatches in window {w:?}");
        assert!(
            w[1] - w[0] >= interval,
            "window {w:?} shorter than the interval"
        );
    }
    assert!(!h.is_rate_limited(id).unwrap() || st.changes.len() % 2 == 1);
}

#[test]
fn a_limited_source_comes_back_after_disable_and_enable_meanwhile() {
    let (mut ev, h, id, _) = recording_loop();
    h.set_rate_limit(id, Duration::from_millis(30), 2).unwrap();
    let mut st = Limited::default();
    ev.dispatch_pending(&mut st).unwrap();
    ev.dispatch_pending(&mut st).unwrap();
    assert_eq!(st.hits.len(), 2);
    assert!(h.is_rate_limited(id).unwrap());
    // Disabled and enabled again while limited: still held ...
    h.disable(id).unwrap();
    h.enable(id).unwrap();
    ev.dispatch_pending(&mut st).unwrap();
    assert_eq!(st.hits.len(), 2, "dispatched while limited");
    // ... and back when the interval ends.
    run_for(&mut ev, &mut st, Duration::from_millis(45));
    assert!(st.hits.len() >= 3, "stuck in the limited state");
    assert!(st.hits[2] >= Duration::from_millis(30));
}

#[test]
fn a_source_disabled_while_limited_stays_disabled_and_resumes_when_enabled() {
    let (mut ev, h, id, _) = recording_loop();
    h.set_rate_limit(id, Duration::from_millis(20), 1).unwrap();
    let mut st = Limited::default();
    ev.dispatch_pending(&mut st).unwrap();
    assert!(h.is_rate_limited(id).unwrap());
    h.disable(id).unwrap();
    run_for(&mut ev, &mut st, Duration::from_millis(40));
    assert_eq!(st.hits.len(), 1, "a disabled source was dispatched");
    assert!(!h.is_rate_limited(id).unwrap(), "the hold ended");
    h.enable(id).unwrap();
    ev.dispatch_pending(&mut st).unwrap();
    assert_eq!(st.hits.len(), 2);
}

#[test]
fn an_interval_that_ends_during_a_long_callback_does_not_hold() {
    let mut ev: EventLoop<Limited> = EventLoop::new().unwrap();
    let h = ev.handle();
    let t0 = Instant::now();
    let id = h
        .insert(always_ready(), move |_, _, st: &mut Limited| {
            st.hits.push(t0.elapsed());
            if st.hits.len() == 2 {
                // Outlasts the interval.
                std::thread::sleep(Duration::from_millis(30));
            }
            Action::Continue
        })
        .unwrap();
    h.set_rate_limit(id, Duration::from_millis(20), 2).unwrap();
    let mut st = Limited::default();
    ev.dispatch_pending(&mut st).unwrap();
    ev.dispatch_pending(&mut st).unwrap();
    assert!(
        !h.is_rate_limited(id).unwrap(),
        "held for an interval already over"
    );
    ev.dispatch_pending(&mut st).unwrap();
    assert_eq!(st.hits.len(), 3);
}

#[test]
fn a_rate_limited_periodic_timer_keeps_its_grid_and_comes_back() {
    let mut ev: EventLoop<Limited> = EventLoop::new().unwrap();
    let h = ev.handle();
    let t0 = Instant::now();
    let id = h
        .insert(
            Timer::every(Duration::from_millis(2)),
            move |_, _, st: &mut Limited| {
                st.hits.push(t0.elapsed());
                Action::Continue
            },
        )
        .unwrap();
    h.set_rate_limit(id, Duration::from_millis(30), 3).unwrap();
    let mut st = Limited::default();
    run_for(&mut ev, &mut st, Duration::from_millis(100));
    // 3 per 30 ms window: 3 windows started in 100 ms, maybe a 4th.
    assert!((9..=12).contains(&st.hits.len()), "{:?}", st.hits);
    h.clear_rate_limit(id).unwrap();
    let before = st.hits.len();
    run_for(&mut ev, &mut st, Duration::from_millis(40));
    assert!(st.hits.len() - before >= 10, "unlimited again");
}

#[test]
fn disable_for_pauses_then_resumes_and_explicit_calls_override_it() {
    let (mut ev, h, id, t0) = recording_loop();
    let mut st = Limited::default();
    h.disable_for(id, Duration::from_millis(20)).unwrap();
    run_for(&mut ev, &mut st, Duration::from_millis(10));
    assert!(st.hits.is_empty());
    run_for(&mut ev, &mut st, Duration::from_millis(20));
    assert!(!st.hits.is_empty() && st.hits[0] >= Duration::from_millis(20));
    // A plain disable cancels a pending resumption.
    h.disable_for(id, Duration::from_millis(5)).unwrap();
    h.disable(id).unwrap();
    st.hits.clear();
    run_for(&mut ev, &mut st, Duration::from_millis(20));
    assert!(st.hits.is_empty(), "a cancelled pause resumed the source");
    // A removed source's pending resumption is forgotten.
    h.remove(id).unwrap();
    let id2 = h
        .insert(always_ready(), move |_, _, st: &mut Limited| {
            st.changes.push((true, t0.elapsed()));
            Action::Continue
        })
        .unwrap();
    h.disable_for(id2, Duration::from_millis(15)).unwrap();
    ev.remove(id2).unwrap();
    run_for(&mut ev, &mut st, Duration::from_millis(25));
    assert!(st.changes.is_empty(), "a removed source's pause fired");
    // Idle and deferred callbacks cannot be paused.
    let d = h.defer(|_| {}).unwrap();
    assert!(matches!(
        h.disable_for(d, Duration::from_millis(1)),
        Err(fdloop::Error::NotApplicable(_))
    ));
}

#[test]
fn a_source_pauses_itself_from_its_callback() {
    let mut ev: EventLoop<Vec<Duration>> = EventLoop::new().unwrap();
    let h = ev.handle();
    let t0 = Instant::now();
    let me = std::rc::Rc::new(std::cell::Cell::new(None));
    let me2 = me.clone();
    let h2 = h.clone();
    let id = h
        .insert(always_ready(), move |_, _, hits: &mut Vec<Duration>| {
            hits.push(t0.elapsed());
            if let Some(id) = me2.get() {
                h2.disable_for(id, Duration::from_millis(10)).unwrap();
            }
            Action::Continue
        })
        .unwrap();
    me.set(Some(id));
    let mut hits = Vec::new();
    run_for(&mut ev, &mut hits, Duration::from_millis(55));
    assert!((2..=6).contains(&hits.len()), "{hits:?}");
    for w in hits.windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(10), "{hits:?}");
    }
}

/// A watch that read many events at once hands them over a batch per
/// iteration, letting a ready socket run in between, with no wake-up.
#[test]
fn a_watch_delivers_a_batch_per_iteration_then_yields() {
    use fdloop::watch::{Watch, WatchMask};
    let dir = util::TempDir::new("fairness-watch");
    let mut w = Watch::new().unwrap();
    w.add(dir.path(), WatchMask::CREATE).unwrap();
    w.set_batch_limit(10);
    for i in 0..45 {
        std::fs::write(dir.path().join(format!("f{i}")), b"").unwrap();
    }
    let mut ev: EventLoop<Vec<&'static str>> = EventLoop::new().unwrap();
    ev.insert(w, |_, _, log: &mut Vec<&'static str>| {
        log.push("w");
        Action::Continue
    })
    .unwrap();
    ev.insert(always_ready(), |_, _, log: &mut Vec<&'static str>| {
        log.push("s");
        Action::Continue
    })
    .unwrap();
    let remote = ev.remote();
    let writes = remote.writes();
    let mut per_iter = Vec::new();
    let mut log = Vec::new();
    for _ in 0..8 {
        log.clear();
        ev.run_once(&mut log, Some(Duration::from_millis(100)))
            .unwrap();
        per_iter.push(log.iter().filter(|&&e| e == "w").count());
        assert!(log.contains(&"s"), "the socket waited: {log:?}");
    }
    assert_eq!(per_iter.iter().sum::<usize>(), 45, "{per_iter:?}");
    assert!(per_iter.iter().all(|&n| n <= 10), "{per_iter:?}");
    assert_eq!(remote.writes(), writes, "a wake-up write");
}

mod order_props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the priorities and however they change between
        /// batches (few distinct ones or more than 256, repeated batches,
        /// sources removed), every ready source runs once per batch, in
        /// priority order, and equal priorities keep one stable order.
        #[test]
        fn batches_run_in_priority_order(
            n in 1usize..40,
            rounds in proptest::collection::vec(
                (proptest::collection::vec(-3i32..3, 40), any::<bool>(), 0usize..40),
                1..6,
            ),
        ) {
            let mut ev: EventLoop<Log> = EventLoop::new().unwrap();
            let h = ev.handle();
            let mut ids = Vec::new();
            for i in 0..n {
                let id = h
                    .insert(always_ready(), move |_, _, log: &mut Log| {
                        log.push((0, i as u32));
                        Action::Continue
                    })
                    .unwrap();
                ids.push(Some(id));
            }
            let mut prio = vec![0i32; n];
            for (prios, wide, remove) in rounds {
                for (i, id) in ids.iter().enumerate() {
                    if let Some(id) = id {
                        // `wide`: spread over more than 256 distinct values.
                        let p = if wide { prios[i] * 1000 + i as i32 * 7 } else { prios[i] };
                        h.set_priority(*id, p).unwrap();
                        prio[i] = p;
                    }
                }
                if let Some(Some(id)) = ids.get(remove).copied() {
                    ev.remove(id).unwrap();
                    ids[remove] = None;
                }
                let live = ids.iter().filter(|i| i.is_some()).count();
                let mut last: Option<Log> = None;
                for _ in 0..2 {
                    let mut log = Log::new();
                    ev.dispatch_pending(&mut log).unwrap();
                    prop_assert_eq!(log.len(), live);
                    let ps: Vec<i32> = log.iter().map(|e| prio[e.1 as usize]).collect();
                    let mut sorted = ps.clone();
                    sorted.sort();
                    prop_assert_eq!(ps, sorted);
                    if let Some(last) = &last {
                        prop_assert_eq!(last, &log, "equal priorities changed order");
                    }
                    last = Some(log);
                }
            }
        }
    }
}

#[test]
fn a_rate_limit_a_callback_sets_on_its_own_source_counts_that_dispatch() {
    // Always readable: without a limit it would run on every iteration.
    let (a, mut b) = UnixStream::pair().unwrap();
    b.write_all(b"x").unwrap();
    let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
    let h = ev.handle();
    let h2 = h.clone();
    let me = std::rc::Rc::new(std::cell::Cell::new(None::<SourceId>));
    let me2 = me.clone();
    let id = ev
        .insert(
            Io::new(a, Interest::READABLE, Mode::Level),
            move |_, _, n: &mut u32| {
                *n += 1;
                if *n == 1 {
                    // One dispatch per second, this one included.
                    let id = me2.get().unwrap();
                    h2.set_rate_limit(id, Duration::from_secs(1), 1).unwrap();
                }
                Action::Continue
            },
        )
        .unwrap();
    me.set(Some(id));
    let mut n = 0;
    ev.run_once(&mut n, Some(Duration::ZERO)).unwrap();
    assert_eq!(n, 1);
    assert!(h.is_rate_limited(id).unwrap());
    for _ in 0..5 {
        ev.run_once(&mut n, Some(Duration::ZERO)).unwrap();
    }
    assert_eq!(n, 1, "held back for the rest of the second");
}
