//! Thread scaffolding shared by the channel comparisons (the report's
//! channel group and the C peers): producers that send a known sequence,
//! the consumer's checked sum, a throughput run, and the two sides of a
//! ping-pong — each placed on CPUs as a [`Pin`] says.
//!
//! A throughput run under a pinned placement pins the calling thread (the
//! consumer) to [`Pin::main_cpu`] for the run ([`consumer`]) and every
//! producer to [`Pin::echo_cpu`]. A placement whose CPUs this process may
//! not use fails up front ([`Pin::check`]); a producer whose pinning fails
//! anyway (the cpuset shrank meanwhile) still sends its share, so the
//! consumer never waits forever, and the failure is returned when the
//! producers are joined.

use std::io;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{pin_opt, pin_scoped, Pin, PinGuard};

/// What a consumer accumulates: a count and a sum, checked against the
/// sequence the producers sent.
///
/// # Examples
///
/// ```
/// let mut acc = fdloop_bench::threads::Acc::default();
/// (0..10).for_each(|v| acc.add(v));
/// acc.check(10, "demo")?;
/// assert!(acc.check(11, "demo").is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Default, Debug)]
pub struct Acc {
    /// Messages received.
    pub n: u64,
    /// Their wrapping sum.
    pub sum: u64,
}

impl Acc {
    /// Counts one received value.
    #[inline]
    pub fn add(&mut self, v: u64) {
        self.n += 1;
        self.sum = self.sum.wrapping_add(v);
    }

    /// Checks that exactly the values `0..msgs` arrived.
    ///
    /// # Errors
    ///
    /// A message naming `name` and what arrived instead.
    pub fn check(&self, msgs: u64, name: &str) -> io::Result<()> {
        let want = msgs.wrapping_mul(msgs.wrapping_sub(1)) / 2;
        if self.n != msgs || self.sum != want {
            return Err(io::Error::other(format!(
                "{name}: received {} messages summing to {}, expected {msgs} summing to {want}",
                self.n, self.sum
            )));
        }
        Ok(())
    }
}

/// A producer of [`spawn_producers`]: its outcome, read by
/// [`join_producers`].
pub type Producer = JoinHandle<io::Result<()>>;

/// Spawns `p` producers, each pinned to `cpu` (if `Some`: a placement's
/// [`echo_cpu`](Pin::echo_cpu)); producer k sends its share of `0..msgs` in
/// order through its clone of `tx` with `send` (false: the receiver is
/// gone). A producer whose pinning fails sends its share all the same and
/// returns the error.
///
/// # Errors
///
/// Spawning a thread failing.
pub fn spawn_producers<T: Clone + Send + 'static>(
    cpu: Option<usize>,
    p: usize,
    msgs: u64,
    tx: T,
    send: fn(&T, u64) -> bool,
) -> io::Result<Vec<Producer>> {
    let p = p.max(1);
    let per = msgs / p as u64;
    (0..p as u64)
        .map(|k| {
            let tx = tx.clone();
            let hi = if k + 1 == p as u64 {
                msgs
            } else {
                (k + 1) * per
            };
            thread::Builder::new()
                .name(format!("producer-{k}"))
                .spawn(move || {
                    let pinned = pin_opt(cpu);
                    let sent = (k * per..hi).all(|v| send(&tx, v));
                    pinned?;
                    if sent {
                        Ok(())
                    } else {
                        Err(io::Error::other(format!("producer {k}: a send failed")))
                    }
                })
        })
        .collect()
}

/// Joins the producers of [`spawn_producers`].
///
/// # Errors
///
/// The first producer's error (a failed send, or pinning), or a producer
/// having panicked, prefixed with `name`.
pub fn join_producers(hs: Vec<Producer>, name: &str) -> io::Result<()> {
    let mut first = Ok(());
    for h in hs {
        let r = match h.join() {
            Ok(r) => r.map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}"))),
            Err(_) => Err(io::Error::other(format!("{name}: a producer panicked"))),
        };
        first = first.and(r);
    }
    first
}

/// Makes the calling thread a throughput run's consumer under placement
/// `pin`: checks the placement ([`Pin::check`]), then pins the thread to
/// [`Pin::main_cpu`] until the guard drops.
///
/// # Errors
///
/// As [`Pin::check`] and [`pin_scoped`].
pub fn consumer(pin: Pin) -> io::Result<PinGuard> {
    pin.check()?;
    pin_scoped(pin.main_cpu())
}

/// The longest a [`throughput`] sample may run: far beyond any contender's
/// 5·10^6 messages on this VM (under 5 s at 1 M msg/s), short of a hang.
/// On one CPU a side that spins while waiting for the other keeps it off
/// the CPU for its whole time slice: a bounded channel then moves a
/// capacity's worth of messages per slice, and a sample can take hours.
pub const SAMPLE_LIMIT: Duration = Duration::from_secs(60);

/// One throughput run under placement `pin`: `p` producers send `0..msgs`
/// through their clones of `tx` with `send` ([`spawn_producers`]), while
/// the calling thread, pinned as the [`consumer`] for the run, calls
/// `step` (receive what there is into the [`Acc`]) until it has them all.
/// Returns the time from before the producers are spawned until the last
/// message is received; the sum is checked.
///
/// # Errors
///
/// The placement unavailable ([`Pin::check`]), spawning a producer, `step`
/// failing (returned at once, producers left to finish on their own), the
/// run passing [`SAMPLE_LIMIT`] (`TimedOut`, likewise), a producer failing,
/// or a wrong sum.
///
/// # Examples
///
/// ```
/// use fdloop_bench::Pin;
/// let (tx, rx) = std::sync::mpsc::channel();
/// fdloop_bench::threads::throughput("demo", Pin::Off, 2, 100, tx, |t, v| t.send(v).is_ok(), |acc| {
///     rx.recv().map(|v| acc.add(v)).map_err(std::io::Error::other)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn throughput<T: Clone + Send + 'static>(
    name: &str,
    pin: Pin,
    p: usize,
    msgs: u64,
    tx: T,
    send: fn(&T, u64) -> bool,
    step: impl FnMut(&mut Acc) -> io::Result<()>,
) -> io::Result<Duration> {
    let _consumer = consumer(pin)?;
    let start = Instant::now();
    let hs = spawn_producers(pin.echo_cpu(), p, msgs, tx, send)?;
    let acc = consume(msgs, start, SAMPLE_LIMIT, step)
        .map_err(|e| io::Error::new(e.kind(), format!("{name}, {}: {e}", pin.describe())))?;
    let elapsed = start.elapsed();
    join_producers(hs, name)?;
    acc.check(msgs, name)?;
    Ok(elapsed)
}

/// Calls `step` until the [`Acc`] holds `msgs` messages and returns it.
///
/// # Errors
///
/// `step`'s error, or `TimedOut` once `limit` has passed since `start`
/// (checked every 4096 steps: a clock read costs as much as a receive).
fn consume(
    msgs: u64,
    start: Instant,
    limit: Duration,
    mut step: impl FnMut(&mut Acc) -> io::Result<()>,
) -> io::Result<Acc> {
    let mut acc = Acc::default();
    let mut steps: u32 = 0;
    while acc.n < msgs {
        step(&mut acc)?;
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(4096) && start.elapsed() > limit {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} of {msgs} messages after {limit:?}: a side that spins instead of \
                     sleeping starves the other on one CPU",
                    acc.n
                ),
            ));
        }
    }
    Ok(acc)
}

/// Runs the two sides of a ping-pong on threads pinned as `pin` says;
/// side A returns the time of its timed round trips.
///
/// # Errors
///
/// Either side's error, a side panicking, or spawning failing.
pub fn two_sides(
    pin: Pin,
    a: impl FnOnce() -> io::Result<Duration> + Send + 'static,
    b: impl FnOnce() -> io::Result<()> + Send + 'static,
) -> io::Result<Duration> {
    let hb = thread::Builder::new()
        .name("side-b".into())
        .spawn(move || {
            pin_opt(pin.echo_cpu())?;
            b()
        })?;
    let ha = thread::Builder::new()
        .name("side-a".into())
        .spawn(move || {
            pin_opt(pin.main_cpu())?;
            a()
        })?;
    let r = ha.join().map_err(|_| io::Error::other("side A panicked"))?;
    hb.join()
        .map_err(|_| io::Error::other("side B panicked"))??;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowed_cpus;
    use crate::pin::tests::on_one_cpu;

    fn mpsc_run(pin: Pin, p: usize, msgs: u64) -> io::Result<Duration> {
        let (tx, rx) = std::sync::mpsc::channel();
        throughput(
            "mpsc",
            pin,
            p,
            msgs,
            tx,
            |t, v| t.send(v).is_ok(),
            |acc| rx.recv().map(|v| acc.add(v)).map_err(io::Error::other),
        )
    }

    #[test]
    fn every_available_placement_delivers_every_message() {
        for pin in Pin::ALL {
            if pin.check().is_err() {
                continue; // e.g. Cross on a one-CPU machine
            }
            for p in [1, 3] {
                mpsc_run(pin, p, 10_000).unwrap();
            }
            mpsc_run(pin, 2, 0).unwrap();
        }
    }

    #[test]
    fn the_consumer_is_pinned_for_the_run_only() {
        if Pin::Same.check().is_err() {
            return; // CPU 0 is not ours
        }
        std::thread::spawn(|| {
            let before = allowed_cpus().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let mut seen = Vec::new();
            throughput(
                "mpsc",
                Pin::Same,
                1,
                100,
                tx,
                |t, v| t.send(v).is_ok(),
                |acc| {
                    seen.push(allowed_cpus()?);
                    rx.recv().map(|v| acc.add(v)).map_err(io::Error::other)
                },
            )
            .unwrap();
            assert!(seen.iter().all(|s| s == &[0]), "{seen:?}");
            assert_eq!(allowed_cpus().unwrap(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn across_cpus_on_one_cpu_fails_up_front() {
        let r = on_one_cpu(|_| mpsc_run(Pin::Cross, 1, 1_000));
        let e = r.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
    }

    #[test]
    fn a_producer_that_cannot_pin_still_sends_and_reports() {
        let (tx, rx) = std::sync::mpsc::channel();
        // CPU_SETSIZE - 1 (1023) exists on no machine this runs on.
        let cpu = libc::CPU_SETSIZE as usize - 1;
        let hs = spawn_producers(Some(cpu), 2, 1_000, tx, |t, v| t.send(v).is_ok()).unwrap();
        let mut acc = Acc::default();
        while let Ok(v) = rx.recv() {
            acc.add(v);
        }
        acc.check(1_000, "demo").unwrap();
        let msg = join_producers(hs, "demo").unwrap_err().to_string();
        assert!(
            msg.starts_with("demo: ") && msg.contains(&format!("CPU {cpu}")),
            "{msg}"
        );
    }

    #[test]
    fn a_consumer_that_gets_nowhere_times_out() {
        let start = Instant::now();
        let limit = Duration::from_millis(20);
        let e = consume(10, start, limit, |_| Ok(())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            e.to_string().starts_with("0 of 10 messages after 20ms"),
            "{e}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        // One that finishes is not cut short.
        let acc = consume(3, Instant::now(), limit, |acc| {
            acc.add(acc.n);
            Ok(())
        })
        .unwrap();
        acc.check(3, "consume").unwrap();
    }

    #[test]
    fn a_failed_send_is_reported() {
        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        drop(rx);
        let hs = spawn_producers(None, 2, 10, tx, |t, v| t.send(v).is_ok()).unwrap();
        let msg = join_producers(hs, "gone").unwrap_err().to_string();
        assert!(
            msg.contains("gone: producer") && msg.contains("send failed"),
            "{msg}"
        );
    }
}
