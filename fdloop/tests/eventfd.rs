//! EventFd: one test per rule of eventfd(2).

mod util;

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use fdloop::{EventFd, MAX_COUNTER};

fn nb() -> EventFd {
    EventFd::options().nonblocking(true).open().unwrap()
}

#[test]
fn read_returns_sum_of_writes() {
    let e = nb();
    for n in [1, 2, 4, 7, 14] {
        e.write(n).unwrap();
    }
    assert_eq!(e.read().unwrap(), 28);
}

#[test]
fn initial_value_is_readable() {
    let e = EventFd::options()
        .initial(u32::MAX)
        .nonblocking(true)
        .open()
        .unwrap();
    assert_eq!(e.read().unwrap(), u64::from(u32::MAX));
}

#[test]
fn read_resets_counter_to_zero() {
    let e = nb();
    e.write(5).unwrap();
    assert_eq!(e.read().unwrap(), 5);
    assert_eq!(e.read().unwrap_err().kind(), ErrorKind::WouldBlock);
    e.write(3).unwrap();
    assert_eq!(e.read().unwrap(), 3);
}

#[test]
fn semaphore_read_returns_one_and_decrements() {
    let e = EventFd::options()
        .semaphore(true)
        .nonblocking(true)
        .open()
        .unwrap();
    e.write(3).unwrap();
    for _ in 0..3 {
        assert_eq!(e.read().unwrap(), 1);
    }
    assert_eq!(e.read().unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn nonblocking_read_on_zero_would_block() {
    let e = nb();
    let err = e.read().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
}

#[test]
fn nonblocking_write_past_max_would_block_and_leaves_counter() {
    let e = nb();
    e.write(MAX_COUNTER - 1).unwrap();
    e.write(1).unwrap(); // exactly MAX_COUNTER: allowed
    assert_eq!(e.write(1).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert_eq!(e.read().unwrap(), MAX_COUNTER);
}

#[test]
fn write_u64_max_is_invalid_input() {
    let e = nb();
    e.write(2).unwrap();
    let err = e.write(u64::MAX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // EINVAL, as eventfd(2) says, errno intact; the counter is untouched.
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(e.read().unwrap(), 2);
}

#[test]
fn blocking_read_waits_for_a_write() {
    let e = Arc::new(EventFd::new(0).unwrap());
    let written = Arc::new(AtomicBool::new(false));
    let (e2, w2) = (e.clone(), written.clone());
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        w2.store(true, Ordering::SeqCst);
        e2.write(9).unwrap();
    });
    assert_eq!(e.read().unwrap(), 9);
    assert!(
        written.load(Ordering::SeqCst),
        "read returned before the write"
    );
    writer.join().unwrap();
}

#[test]
fn blocking_write_waits_while_it_would_overflow() {
    let e = Arc::new(EventFd::new(0).unwrap());
    e.write(MAX_COUNTER).unwrap();
    let (tx, rx) = mpsc::channel();
    let e2 = e.clone();
    let writer = thread::spawn(move || {
        e2.write(5).unwrap();
        tx.send(()).unwrap();
    });
    // The writer must still be blocked: the counter is full.
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    assert_eq!(e.read().unwrap(), MAX_COUNTER);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("write did not complete after the read made room");
    assert_eq!(e.read().unwrap(), 5);
    writer.join().unwrap();
}

#[test]
fn readable_in_poll_iff_counter_nonzero() {
    let e = nb();
    assert!(!util::readiness(&e).0);
    e.write(1).unwrap();
    assert!(util::readiness(&e).0);
    e.read().unwrap();
    assert!(!util::readiness(&e).0);
}

#[test]
fn writable_in_poll_unless_saturated() {
    let e = nb();
    assert!(util::readiness(&e).1);
    e.write(MAX_COUNTER - 1).unwrap();
    assert!(util::readiness(&e).1, "one more can still be added");
    e.write(1).unwrap();
    assert!(
        !util::readiness(&e).1,
        "saturated counter must not be writable"
    );
    e.read().unwrap();
    assert!(util::readiness(&e).1);
}

#[test]
fn descriptor_is_cloexec_and_not_inherited_by_exec() {
    let e = EventFd::new(0).unwrap();
    assert!(util::is_cloexec(&e));
    let clone = e.try_clone().unwrap();
    assert!(util::is_cloexec(&clone));
    assert!(
        !util::fd_survives_exec(e.as_raw_fd()),
        "fd leaked into exec"
    );
    assert!(
        !util::fd_survives_exec(clone.as_raw_fd()),
        "fd leaked into exec"
    );
    // The check itself works: a descriptor without CLOEXEC does survive.
    let leaky = rustix::io::fcntl_dupfd_cloexec(&e, 0).unwrap();
    rustix::io::fcntl_setfd(&leaky, rustix::io::FdFlags::empty()).unwrap();
    assert!(util::fd_survives_exec(leaky.as_raw_fd()), "control failed");
}

#[test]
fn blocking_flag_follows_options() {
    assert!(!util::is_nonblocking(EventFd::new(0).unwrap()));
    assert!(util::is_nonblocking(nb()));
    let e = EventFd::new(0).unwrap();
    e.set_nonblocking(true).unwrap();
    assert!(e.is_nonblocking().unwrap());
    assert_eq!(e.read().unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn counter_is_shared_with_forked_child() {
    let e = EventFd::new(0).unwrap();
    let fd = e.as_raw_fd();
    // SAFETY: after fork the child only makes async-signal-safe calls
    // (write, _exit) before exiting.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        for n in [1u64, 2, 4, 7, 14] {
            let b = n.to_ne_bytes();
            // SAFETY: valid fd (inherited) and an 8-byte buffer.
            if unsafe { libc::write(fd, b.as_ptr().cast(), 8) } != 8 {
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(1) };
            }
        }
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid status pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(e.read().unwrap(), 28);
}

#[test]
fn clone_shares_counter() {
    let a = nb();
    let b = a.try_clone().unwrap();
    assert_ne!(a.as_raw_fd(), b.as_raw_fd());
    b.write(6).unwrap();
    assert_eq!(a.read().unwrap(), 6);
    // The non-blocking flag belongs to the shared open file description.
    assert!(b.is_nonblocking().unwrap());
}

#[test]
fn owned_fd_round_trip() {
    let e = nb();
    e.write(4).unwrap();
    let owned: OwnedFd = e.into();
    let e = EventFd::from(owned);
    assert_eq!(e.read().unwrap(), 4);
    let raw = e.into_raw_fd();
    // SAFETY: `raw` came from into_raw_fd and is owned by nobody else.
    let e = EventFd::from(unsafe { OwnedFd::from_raw_fd(raw) });
    e.write(1).unwrap();
    assert_eq!(e.read().unwrap(), 1);
    let _ = e.as_fd();
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<EventFd>();
}

#[test]
fn blocking_read_retries_eintr() {
    let e = Arc::new(EventFd::new(0).unwrap());
    let e2 = e.clone();
    let (got, sent) = util::under_signal_storm(move || e2.read(), || e.write(42).unwrap());
    assert!(sent > 10, "the storm sent only {sent} signals");
    assert_eq!(got.unwrap(), 42, "EINTR must be retried, not returned");
}

#[test]
fn blocking_write_retries_eintr() {
    let e = Arc::new(EventFd::new(0).unwrap());
    e.write(MAX_COUNTER).unwrap();
    let e2 = e.clone();
    let (got, sent) = util::under_signal_storm(
        move || e2.write(3),
        || assert_eq!(e.read().unwrap(), MAX_COUNTER),
    );
    assert!(sent > 10, "the storm sent only {sent} signals");
    got.expect("EINTR must be retried, not returned");
    assert_eq!(e.read().unwrap(), 3);
}
