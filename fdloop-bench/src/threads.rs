//! Thread scaffolding shared by the channel comparisons (the report's
//! channel group and the C peers): producers that send a known sequence,
//! the consumer's checked sum, a throughput run, and the two sides of a
//! ping-pong.

use std::io;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{pin_opt, Pin};

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

/// Spawns `p` producers; producer k sends its share of `0..msgs` in order
/// through its clone of `tx` with `send` (false: the receiver is gone).
///
/// # Errors
///
/// Spawning a thread failing.
pub fn spawn_producers<T: Clone + Send + 'static>(
    p: usize,
    msgs: u64,
    tx: T,
    send: fn(&T, u64) -> bool,
) -> io::Result<Vec<JoinHandle<bool>>> {
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
                .spawn(move || (k * per..hi).all(|v| send(&tx, v)))
        })
        .collect()
}

/// Joins the producers of [`spawn_producers`].
///
/// # Errors
///
/// A producer whose send failed or that panicked.
pub fn join_producers(hs: Vec<JoinHandle<bool>>, name: &str) -> io::Result<()> {
    for h in hs {
        match h.join() {
            Ok(true) => {}
            Ok(false) => return Err(io::Error::other(format!("{name}: a send failed"))),
            Err(_) => return Err(io::Error::other(format!("{name}: a producer panicked"))),
        }
    }
    Ok(())
}

/// One throughput run: `p` producers send `0..msgs` through their clones
/// of `tx` with `send` ([`spawn_producers`]), while the calling thread
/// calls `step` (receive what there is into the [`Acc`]) until it has them
/// all. Returns the time from before the producers are spawned until the
/// last message is received; the sum is checked.
///
/// # Errors
///
/// Spawning a producer, `step` failing (returned at once, producers left
/// to finish on their own), a producer failing, or a wrong sum.
///
/// # Examples
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// fdloop_bench::threads::throughput("demo", 2, 100, tx, |t, v| t.send(v).is_ok(), |acc| {
///     rx.recv().map(|v| acc.add(v)).map_err(std::io::Error::other)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn throughput<T: Clone + Send + 'static>(
    name: &str,
    p: usize,
    msgs: u64,
    tx: T,
    send: fn(&T, u64) -> bool,
    mut step: impl FnMut(&mut Acc) -> io::Result<()>,
) -> io::Result<Duration> {
    let mut acc = Acc::default();
    let start = Instant::now();
    let hs = spawn_producers(p, msgs, tx, send)?;
    while acc.n < msgs {
        step(&mut acc)?;
    }
    let elapsed = start.elapsed();
    join_producers(hs, name)?;
    acc.check(msgs, name)?;
    Ok(elapsed)
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
