//! `epoll_ctl` failing with `ENOMEM` (a seccomp filter in a child process,
//! aimed at one descriptor and one operation) while inserting a source,
//! enabling it, and re-arming it: each call returns a typed error with the
//! errno, nothing is half-registered, and the loop's other sources keep
//! being dispatched.

mod util;

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use fdloop::{
    Action, Error, EventLoop, Interest, Io, Mode, Ping, PingHandle, Readiness, Registrar, Source,
};

/// A source of two pipe read ends (sub-indices 0 and 1), registered in that
/// order: the second `EPOLL_CTL_ADD` can fail after the first succeeded.
struct Pair(std::io::PipeReader, std::io::PipeReader);

impl Source for Pair {
    type Event = u8;
    type Metadata = ();
    fn register(&mut self, r: &mut Registrar<'_>) -> std::io::Result<()> {
        r.add(&self.0, 0, Interest::READABLE, Mode::Level)?;
        r.add(&self.1, 1, Interest::READABLE, Mode::Level)
    }
    fn unregister(&mut self, r: &mut Registrar<'_>) -> std::io::Result<()> {
        r.delete(&self.0)?;
        r.delete(&self.1)
    }
    fn process(
        &mut self,
        _: Readiness,
        sub: u8,
        _: &mut Registrar<'_>,
        callback: &mut dyn FnMut(u8, &mut ()) -> Action,
    ) -> std::io::Result<Action> {
        Ok(callback(sub, &mut ()))
    }
}

/// Whether `fd` is in `ev`'s epoll set (deleting it if it was).
fn registered(ev: &EventLoop<Seen>, fd: impl AsFd) -> bool {
    match rustix::event::epoll::delete(ev.as_fd(), fd) {
        Ok(()) => true,
        Err(rustix::io::Errno::NOENT) => false,
        Err(e) => panic!("epoll_ctl(DEL): {e}"),
    }
}

#[derive(Default)]
struct Seen {
    pings: u32,
    b: u32,
    c: u32,
    d: u32,
}

#[test]
fn scenario_child() {
    match util::scenario().as_deref() {
        None => {}
        Some("enomem") => child_enomem(),
        Some(other) => panic!("unknown scenario {other}"),
    }
}

/// Runs iterations until `done`, failing after 5 s; errors are returned.
fn run_until(
    ev: &mut EventLoop<Seen>,
    s: &mut Seen,
    done: impl Fn(&Seen) -> bool,
) -> fdloop::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(s) {
        assert!(Instant::now() < deadline, "loop stalled");
        ev.run_once(s, Some(Duration::from_millis(50)))?;
    }
    Ok(())
}

/// The bystander ping still reaches its callback.
fn bystander_works(ev: &mut EventLoop<Seen>, s: &mut Seen, ph: &PingHandle) {
    let before = s.pings;
    ph.ping().unwrap();
    run_until(ev, s, |s| s.pings > before).unwrap();
}

fn enomem(e: &Error) -> bool {
    e.raw_os_error() == Some(libc::ENOMEM)
}

fn child_enomem() {
    let mut ev: EventLoop<Seen> = EventLoop::new().unwrap();
    let mut s = Seen::default();
    let (ph, ping) = Ping::new().unwrap();
    ev.insert(ping, |(), _, s: &mut Seen| {
        s.pings += 1;
        Action::Continue
    })
    .unwrap();
    // a: its insert fails. b: inserted, disabled; its enable fails.
    // c: one-shot, inserted; re-arming it fails.
    let (a_r, _a_w) = std::io::pipe().unwrap();
    let (b_r, mut b_w) = std::io::pipe().unwrap();
    let (c_r, mut c_w) = std::io::pipe().unwrap();
    let (a, b, c) = (a_r.as_raw_fd(), b_r.as_raw_fd(), c_r.as_raw_fd());
    // Pairs whose second descriptor is refused: p on insert, q on enable.
    let p = Pair(std::io::pipe().unwrap().0, std::io::pipe().unwrap().0);
    let q = Pair(std::io::pipe().unwrap().0, std::io::pipe().unwrap().0);
    let (p1, q0, q1) = (p.1.as_raw_fd(), q.0.as_raw_fd(), q.1.as_raw_fd());
    let q_id = ev.insert(q, |_, _, _| Action::Continue).unwrap();
    ev.disable(q_id).unwrap();
    let b_id = ev
        .insert(Io::new(b_r, Interest::READABLE, Mode::Level), |_, _, s| {
            s.b += 1;
            Action::Continue
        })
        .unwrap();
    ev.disable(b_id).unwrap();
    let c_id = ev
        .insert(
            Io::new(c_r, Interest::READABLE, Mode::Oneshot),
            |_, ctl, s: &mut Seen| {
                s.c += 1;
                ctl.rearm();
                Action::Continue
            },
        )
        .unwrap();
    util::seccomp_fail_epoll_ctl(
        &[
            (libc::EPOLL_CTL_ADD, a),
            (libc::EPOLL_CTL_ADD, b),
            (libc::EPOLL_CTL_MOD, c),
            (libc::EPOLL_CTL_ADD, p1),
            (libc::EPOLL_CTL_ADD, q1),
        ],
        libc::ENOMEM,
    );
    bystander_works(&mut ev, &mut s, &ph);

    // insert: a typed error with ENOMEM, the source handed back, nothing
    // registered, the loop unchanged.
    let len = ev.len();
    let err = ev
        .insert(Io::new(a_r, Interest::READABLE, Mode::Level), |_, _, _| {
            Action::Continue
        })
        .unwrap_err();
    assert!(enomem(&err.error), "{:?}", err.error);
    assert!(matches!(err.error, Error::Io { .. }), "{:?}", err.error);
    assert_eq!(ev.len(), len);
    let a_r = err.inserted.into_inner();
    let del = rustix::event::epoll::delete(ev.as_fd(), &a_r).unwrap_err();
    assert_eq!(
        del,
        rustix::io::Errno::NOENT,
        "the failed insert left a registration"
    );
    bystander_works(&mut ev, &mut s, &ph);
    // Another descriptor still gets in and is dispatched.
    let (d_r, mut d_w) = std::io::pipe().unwrap();
    ev.insert(Io::new(d_r, Interest::READABLE, Mode::Edge), |_, _, s| {
        s.d += 1;
        Action::Continue
    })
    .unwrap();
    d_w.write_all(b"x").unwrap();
    run_until(&mut ev, &mut s, |s| s.d == 1).unwrap();
    println!("insert=ok");

    // enable: ENOMEM, the source stays in the loop and disabled.
    let e = ev.enable(b_id).unwrap_err();
    assert!(enomem(&e), "{e:?}");
    b_w.write_all(b"x").unwrap();
    for _ in 0..5 {
        ev.run_once(&mut s, Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(s.b, 0, "a source whose enable failed was dispatched");
    ev.disable(b_id).unwrap(); // already disabled: a no-op
    bystander_works(&mut ev, &mut s, &ph);
    ev.remove(b_id).unwrap();
    // Two descriptors: the first, added before the second failed, is not
    // left behind in the epoll set of a disabled source.
    let e = ev.enable(q_id).unwrap_err();
    assert!(enomem(&e), "{e:?}");
    // SAFETY: `q0` belongs to the pair `q`, still in the loop (not
    // removed), so the descriptor stays open while it is borrowed here.
    let q0_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(q0) };
    assert!(
        !registered(&ev, q0_fd),
        "a failed enable left the first descriptor registered"
    );
    ev.remove(q_id).unwrap();
    println!("enable=ok");

    // Re-arming (EPOLL_CTL_MOD) after the callback: the error names the
    // source and carries ENOMEM; the loop goes on.
    c_w.write_all(b"x").unwrap();
    let err = run_until(&mut ev, &mut s, |s| s.c == 1).and_then(|()| {
        // The callback ran in an iteration that may not have failed yet.
        ev.run_once(&mut s, Some(Duration::ZERO)).map(|_| ())
    });
    match err {
        Err(Error::Source { id, source }) => {
            assert_eq!(id, c_id);
            assert_eq!(source.raw_os_error(), Some(libc::ENOMEM));
        }
        other => panic!("re-arm failure not reported: {other:?}"),
    }
    assert_eq!(s.c, 1);
    bystander_works(&mut ev, &mut s, &ph);
    // The source is still there and can be removed cleanly.
    ev.remove(c_id).unwrap();
    bystander_works(&mut ev, &mut s, &ph);
    println!("rearm=ok");
}

#[test]
fn epoll_ctl_enomem_on_insert_enable_and_rearm_leaves_the_loop_consistent() {
    let out = util::expect_success("enomem", util::run_scenario("scenario_child", "enomem"));
    for key in ["insert", "enable", "rearm"] {
        assert_eq!(
            util::scenario_value(&out, key).as_deref(),
            Some("ok"),
            "{key}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
