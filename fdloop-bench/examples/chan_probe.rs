//! One throughput run of one channel, for `perf stat`, `perf
//! record` and callgrind:
//!
//! `chan_probe fdloop|crossbeam[-bounded] PRODUCERS MSGS CONSUMER_CPU|- PRODUCER_CPU|-`
//!
//! (`-`: unpinned; `-bounded`: capacity 1024, else unbounded). With
//! `PRODUCERS` 0 the main thread sends every message, then receives them
//! all, and prints the cost of each half per message (a bounded channel then
//! gets room for all): the instructions of a send and of a receive,
//! without any cache line moving between CPUs. The consumer (the main thread) sums the messages with a
//! blocking `recv`. With `MON=1` in the environment, a monitor thread
//! samples the queue's length every 0.5 ms for 0.2 s and prints its p50,
//! p90 and maximum: whether the consumer keeps up (the monitor's wake-ups
//! share the CPUs and cut the rate: read the lengths, not the rate, then).
use std::io;
use std::thread;
use std::time::{Duration, Instant};

use fdloop_bench::pin_opt;

fn cpu(a: Option<String>) -> Option<usize> {
    a.and_then(|s| s.parse().ok())
}

/// The sending side of a probed channel.
trait ProbeTx: Clone + Send + 'static {
    fn put(&self, v: u64);
    fn queued(&self) -> usize;
}

impl ProbeTx for fdloop::channel::Sender<u64> {
    fn put(&self, v: u64) {
        self.send(v).expect("receiver alive");
    }
    fn queued(&self) -> usize {
        self.len()
    }
}

impl ProbeTx for crossbeam_channel::Sender<u64> {
    fn put(&self, v: u64) {
        self.send(v).expect("receiver alive");
    }
    fn queued(&self) -> usize {
        self.len()
    }
}

/// Spawns `p` producers sending `per` values each through clones of `tx`,
/// and the monitor if asked; returns the sum of what `recv_all` received
/// and the time until it had.
fn run<S: ProbeTx>(
    tx: S,
    p: u64,
    per: u64,
    pcpu: Option<usize>,
    recv_all: impl FnOnce() -> u64,
) -> (u64, Duration) {
    let t0 = Instant::now();
    if p == 0 {
        for v in 0..per {
            tx.put(v);
        }
        let sent = t0.elapsed();
        drop(tx);
        let sum = recv_all();
        let dt = t0.elapsed();
        let ns = |d: Duration| d.as_nanos() as f64 / per as f64;
        eprintln!(
            "one thread: send {:.2} ns/msg, receive {:.2} ns/msg",
            ns(sent),
            ns(dt - sent)
        );
        return (sum, dt);
    }
    let producers: Vec<_> = (0..p)
        .map(|k| {
            let tx = tx.clone();
            thread::spawn(move || {
                pin_opt(pcpu).expect("pin a producer");
                for v in k * per..(k + 1) * per {
                    tx.put(v);
                }
            })
        })
        .collect();
    let monitor = std::env::var_os("MON").is_some().then(|| {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut lens: Vec<usize> = (0..400)
                .map(|_| {
                    thread::sleep(Duration::from_micros(500));
                    tx.queued()
                })
                .collect();
            lens.sort_unstable();
            eprintln!("len p50 {} p90 {} max {}", lens[200], lens[360], lens[399]);
        })
    });
    drop(tx);
    let sum = recv_all();
    let dt = t0.elapsed();
    producers.into_iter().for_each(|h| h.join().unwrap());
    if let Some(m) = monitor {
        m.join().unwrap();
    }
    (sum, dt)
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "fdloop".into());
    let p: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(4);
    let msgs: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000_000);
    let ccpu = cpu(args.next());
    let pcpu = cpu(args.next());
    pin_opt(ccpu)?;
    let (p, per, cap) = match p {
        0 => (0, msgs, usize::try_from(msgs).unwrap_or(usize::MAX)),
        p => (p, msgs / p, 1024),
    };
    let (sum, dt) = match which.as_str() {
        "fdloop" => {
            let (tx, rx) = fdloop::channel::unbounded::<u64>()?;
            run(tx, p, per, pcpu, move || rx.iter().sum())
        }
        "fdloop-bounded" => {
            let (tx, rx) = fdloop::channel::bounded::<u64>(cap)?;
            run(tx, p, per, pcpu, move || rx.iter().sum())
        }
        "crossbeam" => {
            let (tx, rx) = crossbeam_channel::unbounded::<u64>();
            run(tx, p, per, pcpu, move || rx.iter().sum())
        }
        "crossbeam-bounded" => {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(cap);
            run(tx, p, per, pcpu, move || rx.iter().sum())
        }
        other => return Err(io::Error::other(format!("unknown channel {other}"))),
    };
    let n = per * p.max(1);
    assert_eq!(sum, n * (n - 1) / 2, "every message, once");
    println!(
        "{which} p={p}: {:.1} M msg/s",
        n as f64 / dt.as_secs_f64() / 1e6
    );
    Ok(())
}
