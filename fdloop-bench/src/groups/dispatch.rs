//! Dispatch overhead per ready event: fdloop against a hand-written epoll
//! loop (the floor), mio and calloop.
//!
//! N eventfds are readable on every iteration (counter 1, never read,
//! level-triggered); each contender waits with a zero timeout and runs one
//! callback per ready descriptor, each doing the same [`Work`]. One sample
//! runs iterations until it has dispatched a fixed number of events and
//! reports ns per event. Every contender runs in one process, `--reps`
//! repetitions interleaved (repetition *r* starts at contender *r* mod *n*), each sample
//! after an untimed warm-up; the table gives the median, min–max and the
//! ratio of medians to the floor.
//!
//! In the report: `cargo run --release -p fdloop-bench --bin report --
//! --only dispatch`, or `cargo bench -p fdloop-bench --bench dispatch`.
//! With feature `c-peers`, GLib, libevent and sd-event join the table.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::dispatch::{
    ensure_nofile, epoll_add_level, ready_eventfds, Contender, FdloopDrive, FdloopSet, RawEpoll,
    Work,
};
use crate::harness::{entry, Case, Ctx, Entry, Measured};
use crate::record::Role;

/// A callback of the mio contender.
type MioHandler = Box<dyn FnMut(&mio::event::Event, &mut Work)>;

/// mio: `Poll::poll` into an `Events` of capacity N, then token → index in
/// a `Vec` of boxed callbacks.
///
/// mio registers everything edge-triggered, which would report each eventfd
/// once; so the descriptors are added to mio's epoll set (its `AsRawFd`)
/// level-triggered by hand, with the token as the data word, which is what
/// mio reads back. The timed path is mio's own: `poll` and `Events`.
///
/// # Examples
///
/// ```
/// use fdloop_bench::dispatch::{ready_eventfds, Contender, Work};
/// use fdloop_bench::groups::dispatch::MioSet;
/// let fds = ready_eventfds(3)?;
/// let mut m = MioSet::new(&fds)?;
/// assert_eq!(m.turn(&mut Work::default())?, 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct MioSet {
    poll: mio::Poll,
    events: mio::Events,
    handlers: Vec<MioHandler>,
}

impl MioSet {
    /// A mio `Poll` watching `fds` level-triggered, one callback each.
    ///
    /// # Errors
    ///
    /// Creating the `Poll` or `epoll_ctl` failing.
    pub fn new(fds: &[Rc<OwnedFd>]) -> io::Result<MioSet> {
        let poll = mio::Poll::new()?;
        epoll_add_level(poll.as_raw_fd(), fds)?;
        let handler = |key| -> MioHandler { Box::new(move |_ev, w: &mut Work| w.record(key)) };
        Ok(MioSet {
            poll,
            events: mio::Events::with_capacity(fds.len().max(1)),
            handlers: (0..fds.len() as u32).map(handler).collect(),
        })
    }
}

impl std::fmt::Debug for MioSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MioSet")
            .field("handlers", &self.handlers.len())
            .finish()
    }
}

impl Contender for MioSet {
    fn name(&self) -> &'static str {
        "mio Poll + Vec<Box<dyn FnMut>>"
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        self.poll.poll(&mut self.events, Some(Duration::ZERO))?;
        let mut n = 0;
        for ev in self.events.iter() {
            if let Some(h) = self.handlers.get_mut(ev.token().0) {
                h(ev, work);
                n += 1;
            }
        }
        Ok(n)
    }

    fn batch(&self) -> usize {
        self.events.capacity()
    }
}

/// calloop: one `Generic` source per eventfd, level-triggered, readable.
struct CalloopSet {
    ev: calloop::EventLoop<'static, Work>,
}

impl CalloopSet {
    fn new(fds: &[Rc<OwnedFd>]) -> io::Result<CalloopSet> {
        let ev = calloop::EventLoop::try_new().map_err(io::Error::other)?;
        for (i, fd) in fds.iter().enumerate() {
            let key = i as u32;
            let src = calloop::generic::Generic::new(
                fd.clone(),
                calloop::Interest::READ,
                calloop::Mode::Level,
            );
            ev.handle()
                .insert_source(src, move |_ready, _fd, w: &mut Work| {
                    w.record(key);
                    Ok(calloop::PostAction::Continue)
                })
                .map_err(|e| io::Error::other(e.error))?;
        }
        Ok(CalloopSet { ev })
    }
}

impl Contender for CalloopSet {
    fn name(&self) -> &'static str {
        "calloop Generic"
    }

    fn turn(&mut self, work: &mut Work) -> io::Result<u64> {
        let before = work.hits;
        self.ev
            .dispatch(Some(Duration::ZERO), work)
            .map_err(io::Error::other)?;
        Ok(work.hits - before)
    }

    fn batch(&self) -> usize {
        // calloop polls through `polling`, whose `Events::new()` holds 1024.
        1024
    }
}

/// Events per timed sample: about 0.1–0.2 s each on a 2-vCPU VM.
fn events_per_sample(n: usize, quick: bool) -> u64 {
    // At N = 1 every event costs a whole epoll_wait.
    let full: u64 = if n < 10 { 200_000 } else { 2_000_000 };
    if quick {
        full / 10
    } else {
        full
    }
}

/// One timed sample.
#[derive(Clone, Copy, Debug)]
struct Sample {
    elapsed: Duration,
    events: u64,
    turns: u64,
    /// Events dispatched by the sample's warm-up.
    warm: u64,
}

/// Warms `c` up, then runs turns until `target` events were dispatched or
/// `budget` has passed (at least one turn: a loop whose turn is slow, such
/// as GLib's at N = 10 000, gives fewer events).
fn sample(c: &mut dyn Contender, target: u64, budget: Duration) -> io::Result<Sample> {
    let mut work = Work::default();
    // Warm-up: at least 20 turns (fdloop's buffer grows to fit N by then)
    // and a tenth of the sample's events, unless that takes over a tenth
    // of the budget (then at least 1 turn).
    let mut warm = 0;
    let mut turns = 0;
    let t = Instant::now();
    while (turns < 20 || warm < target / 10) && (turns < 1 || t.elapsed() < budget / 10) {
        warm += c.turn(&mut work)?;
        turns += 1;
    }
    let mut work = Work::default();
    let mut events = 0;
    let mut turns = 0;
    let start = Instant::now();
    // The clock is read every 64 turns only: a read per turn would add the
    // same ~20 ns to every contender and flatter the ratios at N = 1.
    while events < target && (turns % 64 != 0 || turns == 0 || start.elapsed() < budget) {
        events += c.turn(&mut work)?;
        turns += 1;
    }
    let elapsed = start.elapsed();
    if work.hits != events {
        return Err(io::Error::other(format!(
            "{}: {events} events reported, {} callbacks ran",
            c.name(),
            work.hits
        )));
    }
    std::hint::black_box(work.acc);
    Ok(Sample {
        elapsed,
        events,
        turns,
        warm,
    })
}

/// The floor's name in the tables.
pub const FLOOR: &str = "raw epoll + Vec<Box<dyn FnMut>>";

/// Builds every contender over `fds`, the floor first, each with its role.
/// `glib`: include GLib (left out of quick runs at N = 10 000, where one
/// of its turns takes over a second).
#[cfg_attr(not(feature = "c-peers"), allow(unused_variables))]
fn build(fds: &[Rc<OwnedFd>], glib: bool) -> io::Result<Vec<(Role, Box<dyn Contender>)>> {
    #[cfg_attr(not(feature = "c-peers"), allow(unused_mut))]
    let mut v: Vec<(Role, Box<dyn Contender>)> = vec![
        (Role::Floor, Box::new(RawEpoll::new(fds)?)),
        (
            Role::Fdloop,
            Box::new(FdloopSet::new(fds, FdloopDrive::DispatchPending)?),
        ),
        (
            Role::Fdloop,
            Box::new(FdloopSet::new(fds, FdloopDrive::RunOnceBlocking)?),
        ),
        (
            Role::Fdloop,
            Box::new(FdloopSet::new(fds, FdloopDrive::DispatchPendingPriorities)?),
        ),
        (Role::Peer, Box::new(MioSet::new(fds)?)),
        (Role::Peer, Box::new(CalloopSet::new(fds)?)),
    ];
    #[cfg(feature = "c-peers")]
    {
        use crate::cpeers::{glib, libevent, sdevent};
        if glib {
            v.push((Role::Peer, Box::new(glib::Dispatch::new(fds)?)));
        }
        v.push((Role::Peer, Box::new(libevent::Dispatch::new(fds)?)));
        v.push((Role::Peer, Box::new(sdevent::Dispatch::new(fds)?)));
    }
    Ok(v)
}

/// The dispatch group: N = 1, 100, 10 000 always-ready eventfds.
///
/// # Errors
///
/// Creating the descriptors or a contender failing, or a contender's turn
/// failing.
pub fn run(ctx: &mut Ctx<'_>) -> io::Result<()> {
    let default: &[usize] = ctx
        .cfg
        .size(&[1, 100], &[1, 100, 10_000], &[1, 100, 10_000]);
    let sizes: &[usize] = ctx.cfg.sizes.as_deref().unwrap_or(default);
    let max_n = sizes.iter().copied().max().unwrap_or(1);
    // The eventfds, the contenders' epoll sets and helpers, stdio, slack.
    ensure_nofile(max_n as u64 + 64)?;
    let fds = ready_eventfds(max_n)?;
    for &n in sizes {
        let glib = !(ctx.cfg.quick && n > 1_000);
        let mut cs = build(&fds[..n], glib)?;
        let budget = Duration::from_millis(ctx.cfg.size(50, 150, 1_500));
        let target = ctx.cfg.size(
            2_000,
            events_per_sample(n, true),
            events_per_sample(n, false),
        );
        let entries: Vec<Entry<'_>> = cs
            .iter_mut()
            .map(|(role, c)| {
                let name = if *role == Role::Floor {
                    FLOOR.to_string()
                } else {
                    c.name().to_string()
                };
                let batch = c.batch();
                entry(name, *role, move || {
                    let s = sample(c.as_mut(), target, budget)?;
                    let mut m = Measured::time(s.elapsed, s.events);
                    // Syscalls are counted over the warm-up too.
                    m.ops = s.events + s.warm;
                    Ok(
                        m.with("events/turn", "", s.events as f64 / s.turns.max(1) as f64)
                            .with("buffer", "", batch as f64),
                    )
                })
            })
            .collect();
        let case = Case::time(format!("N = {n} ready eventfds"), "time/event")
            .no_warmup()
            .note(format!(
                "Each sample dispatches {target} events or runs for {} ms, whichever comes \
                 first (after its own warm-up); every callback does the same work. The floor is a hand-written epoll_wait loop \
                 calling a boxed closure per event.",
                budget.as_millis()
            ));
        let case = if !glib && cfg!(feature = "c-peers") {
            let note = format!(
                "{} GLib is left out of quick runs at this size: one of its turns takes over a \
                 second (it re-sorts its poll list per dispatched source).",
                case.note
            );
            case.note(note)
        } else {
            case
        };
        ctx.run_case("dispatch", case, entries)?;
    }
    Ok(())
}
