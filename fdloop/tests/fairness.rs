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
use fdloop::{Action, EventLoop, Interest, Io, Mode, Timer};

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
            client.read_exact(&mut buf).expect("every request gets a reply");
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
