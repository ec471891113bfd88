//! libevent's declarations (the calls used here, from `event2/event.h`
//! and `event2/thread.h` of libevent 2.1, linked by `build.rs` with
//! `-levent -levent_pthreads`) and their thin safe wrappers: RAII owners
//! of an `event_config`, an `event_base` and an `event`.
//!
//! Hand-written rather than `libevent-sys` (0.4): that crate generates its
//! bindings with bindgen at build time (libclang needed; otherwise it wants
//! a pre-generated file named by an environment variable) and pulls in
//! OpenSSL by default, all for the twenty declarations below.

#![allow(non_camel_case_types)]

use std::ffi::CStr;
use std::io;
use std::os::raw::{c_char, c_int, c_short, c_void};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;
use std::time::Duration;

use crate::cpeers::opaque;

opaque!(event_base, event, event_config);

/// `event_callback_fn`: `void (*)(evutil_socket_t, short, void *)`
/// (`evutil_socket_t` is `int` on Linux).
pub type event_callback_fn = extern "C" fn(fd: c_int, what: c_short, arg: *mut c_void);

pub const EV_READ: c_short = 0x02;
pub const EV_PERSIST: c_short = 0x10;

pub const EVLOOP_ONCE: c_int = 0x01;
pub const EVLOOP_NONBLOCK: c_int = 0x02;
pub const EVLOOP_NO_EXIT_ON_EMPTY: c_int = 0x04;

pub const EVENT_BASE_FLAG_NOLOCK: c_int = 0x01;
pub const EVENT_BASE_FLAG_PRECISE_TIMER: c_int = 0x20;

extern "C" {
    pub fn evthread_use_pthreads() -> c_int;
    pub fn evthread_make_base_notifiable(base: *mut event_base) -> c_int;

    pub fn event_config_new() -> *mut event_config;
    pub fn event_config_free(cfg: *mut event_config);
    pub fn event_config_set_flag(cfg: *mut event_config, flag: c_int) -> c_int;

    pub fn event_base_new() -> *mut event_base;
    pub fn event_base_new_with_config(cfg: *const event_config) -> *mut event_base;
    pub fn event_base_free(base: *mut event_base);
    pub fn event_base_get_method(base: *const event_base) -> *const c_char;
    pub fn event_base_loop(base: *mut event_base, flags: c_int) -> c_int;

    pub fn event_new(
        base: *mut event_base,
        fd: c_int,
        events: c_short,
        cb: Option<event_callback_fn>,
        arg: *mut c_void,
    ) -> *mut event;
    pub fn event_free(ev: *mut event);
    pub fn event_add(ev: *mut event, timeout: *const libc::timeval) -> c_int;
    pub fn event_del(ev: *mut event) -> c_int;
    pub fn event_active(ev: *mut event, res: c_int, ncalls: c_short);
}

/// An error for a libevent call that reported failure (libevent returns -1
/// or NULL and may leave errno set; it is quoted, not trusted).
pub(super) fn failed(what: &str) -> io::Error {
    let os = io::Error::last_os_error();
    io::Error::other(format!("libevent: {what} failed (errno says: {os})"))
}

/// Switches libevent to pthreads locking, once per process; every base
/// created afterwards without `EVENT_BASE_FLAG_NOLOCK` has a lock and a
/// notify fd.
///
/// # Errors
///
/// `evthread_use_pthreads` returning non-zero (libevent built without
/// thread support, or out of memory).
pub(super) fn use_pthreads() -> io::Result<()> {
    static RC: OnceLock<c_int> = OnceLock::new();
    // SAFETY: evthread_use_pthreads only installs libevent's global lock,
    // condition and thread-id callbacks; OnceLock makes it run once per
    // process, and it takes no pointers.
    let rc = *RC.get_or_init(|| unsafe { evthread_use_pthreads() });
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "libevent: evthread_use_pthreads returned {rc}"
        )))
    }
}

/// An `event_config` (RAII: `event_config_free`).
struct Config(NonNull<event_config>);

impl Config {
    fn new() -> io::Result<Config> {
        // SAFETY: plain allocation; the result is checked before use.
        let p = unsafe { event_config_new() };
        NonNull::new(p)
            .map(Config)
            .ok_or_else(|| failed("event_config_new"))
    }

    fn set_flag(&self, flag: c_int) -> io::Result<()> {
        // SAFETY: the config is live (owned by self).
        if unsafe { event_config_set_flag(self.0.as_ptr(), flag) } != 0 {
            return Err(failed("event_config_set_flag"));
        }
        Ok(())
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        // SAFETY: the config is live and owned by self; a base made from it
        // does not keep a pointer to it.
        unsafe { event_config_free(self.0.as_ptr()) };
    }
}

/// An `event_base` (RAII: `event_base_free`). Every [`Event`] made on it
/// must be dropped first; the structs below order their fields so.
pub(super) struct Base(NonNull<event_base>);

impl Base {
    /// A base for cross-thread use: process-wide pthreads locking switched
    /// on first, then the default configuration (locked, notifiable).
    pub(super) fn threaded() -> io::Result<Base> {
        use_pthreads()?;
        // SAFETY: plain constructor; the result is checked before use.
        let p = unsafe { event_base_new() };
        let base = NonNull::new(p)
            .map(Base)
            .ok_or_else(|| failed("event_base_new"))?;
        // With locking on, event_base_new already made the base notifiable
        // (then this returns 0 at once); asking again checks it.
        // SAFETY: the base is live (owned by `base`).
        if unsafe { evthread_make_base_notifiable(base.0.as_ptr()) } != 0 {
            return Err(failed("evthread_make_base_notifiable"));
        }
        Ok(base)
    }

    /// A base for one thread: `EVENT_BASE_FLAG_NOLOCK`, plus
    /// `EVENT_BASE_FLAG_PRECISE_TIMER` if `precise`.
    pub(super) fn single_thread(precise: bool) -> io::Result<Base> {
        // libevent wants its thread callbacks set before any other call;
        // switching them on first keeps a later `threaded()` (possibly on
        // another thread, as in the tests) from racing this base's set-up.
        // A NOLOCK base has no lock either way.
        use_pthreads()?;
        let cfg = Config::new()?;
        cfg.set_flag(EVENT_BASE_FLAG_NOLOCK)?;
        if precise {
            cfg.set_flag(EVENT_BASE_FLAG_PRECISE_TIMER)?;
        }
        // SAFETY: the config is live for the call; libevent copies what it
        // needs from it.
        let p = unsafe { event_base_new_with_config(cfg.0.as_ptr()) };
        NonNull::new(p)
            .map(Base)
            .ok_or_else(|| failed("event_base_new_with_config"))
    }

    /// The backend's name (`"epoll"` on Linux unless disabled by the
    /// environment).
    pub(super) fn method(&self) -> String {
        // SAFETY: the base is live; libevent returns a pointer to a static
        // NUL-terminated name (or NULL, checked).
        let p = unsafe { event_base_get_method(self.0.as_ptr()) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-NULL, NUL-terminated and static (see above).
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// One `event_base_loop(flags)`. Returns false when libevent exited
    /// because no events were pending or active (return value 1).
    pub(super) fn run(&self, flags: c_int) -> io::Result<bool> {
        // SAFETY: the base is live; callbacks of its events run inside this
        // call, and every event's argument outlives the event (see
        // `Event::new`'s contract).
        match unsafe { event_base_loop(self.0.as_ptr(), flags) } {
            0 => Ok(true),
            1 => Ok(false),
            _ => Err(failed("event_base_loop")),
        }
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        // SAFETY: the base is live and owned by self; its events were freed
        // before (field order of the owners), and no thread runs its loop.
        unsafe { event_base_free(self.0.as_ptr()) };
    }
}

/// An `event` from `event_new` (RAII: `event_free`, which deletes it from
/// its base first).
pub(super) struct Event(NonNull<event>);

impl Event {
    /// `event_new(base, fd, what, cb, arg)`.
    ///
    /// # Safety
    ///
    /// `base` must outlive the event, and `arg` must stay valid for what
    /// `cb` does with it for as long as the event lives (`cb` may run
    /// during any `event_base_loop` of `base` while the event is pending or
    /// active).
    pub(super) unsafe fn new(
        base: &Base,
        fd: c_int,
        what: c_short,
        cb: event_callback_fn,
        arg: *mut c_void,
    ) -> io::Result<Event> {
        // SAFETY: the base is live; the caller guarantees `arg`'s validity.
        let p = unsafe { event_new(base.0.as_ptr(), fd, what, Some(cb), arg) };
        NonNull::new(p)
            .map(Event)
            .ok_or_else(|| failed("event_new"))
    }

    /// `event_add(ev, timeout)`: pending, with a relative timeout if given.
    pub(super) fn add(&self, timeout: Option<&libc::timeval>) -> io::Result<()> {
        let tv = timeout.map_or(ptr::null(), |t| t as *const libc::timeval);
        // SAFETY: the event is live; `tv` is NULL or points to a timeval
        // that libevent only reads during the call.
        if unsafe { event_add(self.0.as_ptr(), tv) } != 0 {
            return Err(failed("event_add"));
        }
        Ok(())
    }

    /// `event_del(ev)`: no longer pending.
    pub(super) fn del(&self) -> io::Result<()> {
        // SAFETY: the event is live.
        if unsafe { event_del(self.0.as_ptr()) } != 0 {
            return Err(failed("event_del"));
        }
        Ok(())
    }

    /// `event_active(ev, EV_READ, 0)`: makes the event active (a no-op
    /// beyond or-ing the flags if it already is); wakes its base's loop if
    /// another thread is blocked in it and the base is notifiable.
    pub(super) fn activate(&self) {
        // SAFETY: the event is live. Calls from a thread other than the
        // base's loop happen only through the contenders' `Send`/`Sync`
        // wrappers, whose bases are locked (see their SAFETY notes).
        unsafe { activate(self.0.as_ptr()) };
    }

    /// The event's address, for a callback that knows it only by pointer
    /// (see [`activate`]).
    pub(super) fn as_ptr(&self) -> *mut event {
        self.0.as_ptr()
    }
}

/// `event_active(ev, EV_READ, 0)` on an event known by address.
///
/// # Safety
///
/// `ev` must be a live event; from a thread other than the one running
/// its base's loop, only if that base is locked (made after
/// [`use_pthreads`], without `EVENT_BASE_FLAG_NOLOCK`).
pub(super) unsafe fn activate(ev: *mut event) {
    // SAFETY: the caller's contract.
    unsafe { event_active(ev, c_int::from(EV_READ), 0) };
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: the event is live and owned by self; its base is still
        // live (field order of the owners).
        unsafe { event_free(self.0.as_ptr()) };
    }
}

/// `d` as a `timeval`, rounded **up** to the microsecond (a deadline must
/// not move earlier).
pub(super) fn timeval_ceil(d: Duration) -> libc::timeval {
    let mut secs = d.as_secs();
    let mut us = d.subsec_nanos().div_ceil(1000);
    if us >= 1_000_000 {
        secs += 1;
        us -= 1_000_000;
    }
    libc::timeval {
        tv_sec: secs.min(i64::MAX as u64) as libc::time_t,
        tv_usec: us as libc::suseconds_t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeval_rounds_up() {
        let t = timeval_ceil(Duration::from_nanos(1_999_999_001));
        assert_eq!((t.tv_sec, t.tv_usec), (2, 0));
        let t = timeval_ceil(Duration::from_nanos(1_500));
        assert_eq!((t.tv_sec, t.tv_usec), (0, 2));
    }
}
