//! sd-event's declarations (the calls used here, from
//! `systemd/sd-event.h`, linked by `build.rs` with `-lsystemd`) and their
//! thin safe wrappers: RAII owners of an `sd_event` and an
//! `sd_event_source`.
//!
//! Hand-written rather than `libsystemd-sys` (0.10): that crate builds
//! here, but lacks `sd_event_source_disable_unref` (systemd 243), which
//! the arm+cancel contender times, and its LGPL-2.1 licence would be
//! linked statically into this MIT/Apache crate; the ten declarations
//! below are shorter than the workarounds.

#![allow(non_camel_case_types)]

use std::io;
use std::os::raw::{c_int, c_void};
use std::ptr::{self, NonNull};

use crate::cpeers::opaque;

opaque!(sd_event, sd_event_source);

/// `sd_event_io_handler_t`.
pub type sd_event_io_handler_t =
    extern "C" fn(s: *mut sd_event_source, fd: c_int, revents: u32, userdata: *mut c_void) -> c_int;

/// `sd_event_time_handler_t`.
pub type sd_event_time_handler_t =
    extern "C" fn(s: *mut sd_event_source, usec: u64, userdata: *mut c_void) -> c_int;

extern "C" {
    pub fn sd_event_new(e: *mut *mut sd_event) -> c_int;
    pub fn sd_event_unref(e: *mut sd_event) -> *mut sd_event;
    pub fn sd_event_add_io(
        e: *mut sd_event,
        s: *mut *mut sd_event_source,
        fd: c_int,
        events: u32,
        callback: Option<sd_event_io_handler_t>,
        userdata: *mut c_void,
    ) -> c_int;
    pub fn sd_event_add_time(
        e: *mut sd_event,
        s: *mut *mut sd_event_source,
        clock: libc::clockid_t,
        usec: u64,
        accuracy: u64,
        callback: Option<sd_event_time_handler_t>,
        userdata: *mut c_void,
    ) -> c_int;
    pub fn sd_event_run(e: *mut sd_event, usec: u64) -> c_int;
    pub fn sd_event_source_disable_unref(s: *mut sd_event_source) -> *mut sd_event_source;
}

/// `r` if non-negative, else the `io::Error` of errno `-r`, naming `what`.
pub(super) fn check(r: c_int, what: &str) -> io::Result<c_int> {
    if r >= 0 {
        return Ok(r);
    }
    let e = io::Error::from_raw_os_error(r.saturating_neg());
    Err(io::Error::new(e.kind(), format!("{what}: {e}")))
}

/// An `sd_event` (RAII: `sd_event_unref`). Not `Send`: an `sd_event` is
/// used only by the thread that made it.
pub(super) struct Loop(NonNull<sd_event>);

impl Loop {
    pub(super) fn new() -> io::Result<Loop> {
        let mut p = ptr::null_mut();
        // SAFETY: `p` is a valid out-pointer for the call.
        check(unsafe { sd_event_new(&mut p) }, "sd_event_new")?;
        NonNull::new(p)
            .map(Loop)
            .ok_or_else(|| io::Error::other("sd_event_new: returned NULL"))
    }

    /// `sd_event_add_io(e, &s, fd, events, cb, userdata)`.
    ///
    /// # Safety
    ///
    /// `fd` must stay open, and `userdata` valid for what `cb` does with it,
    /// until the returned source is dropped (`cb` may run during any
    /// `sd_event_run` of this loop until then).
    pub(super) unsafe fn add_io(
        &self,
        fd: c_int,
        events: u32,
        cb: sd_event_io_handler_t,
        userdata: *mut c_void,
    ) -> io::Result<Source> {
        let mut s = ptr::null_mut();
        // SAFETY: the loop is live, `s` a valid out-pointer; the caller
        // guarantees `fd` and `userdata`.
        let r = unsafe { sd_event_add_io(self.0.as_ptr(), &mut s, fd, events, Some(cb), userdata) };
        check(r, "sd_event_add_io")?;
        Source::from_raw(s, "sd_event_add_io")
    }

    /// `sd_event_add_time(e, &s, CLOCK_MONOTONIC, usec, accuracy, cb,
    /// userdata)`.
    ///
    /// # Safety
    ///
    /// `userdata` must stay valid for what `cb` does with it until the
    /// returned source is dropped.
    pub(super) unsafe fn add_time(
        &self,
        usec: u64,
        accuracy: u64,
        cb: sd_event_time_handler_t,
        userdata: *mut c_void,
    ) -> io::Result<Source> {
        let mut s = ptr::null_mut();
        // SAFETY: the loop is live, `s` a valid out-pointer; the caller
        // guarantees `userdata`.
        let r = unsafe {
            sd_event_add_time(
                self.0.as_ptr(),
                &mut s,
                libc::CLOCK_MONOTONIC,
                usec,
                accuracy,
                Some(cb),
                userdata,
            )
        };
        check(r, "sd_event_add_time")?;
        Source::from_raw(s, "sd_event_add_time")
    }

    /// `sd_event_run(e, timeout_us)` (`u64::MAX`: no timeout): one
    /// iteration, dispatching at most one source. Returns whether one was.
    pub(super) fn run(&self, timeout_us: u64) -> io::Result<bool> {
        // SAFETY: the loop is live and used by this thread only; every
        // source's userdata is valid while the source lives (the add_*
        // contracts).
        let r = unsafe { sd_event_run(self.0.as_ptr(), timeout_us) };
        check(r, "sd_event_run").map(|r| r > 0)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // SAFETY: drops this handle's reference; the loop itself is freed
        // once the sources (which hold references too) are gone.
        unsafe { sd_event_unref(self.0.as_ptr()) };
    }
}

/// An `sd_event_source` (RAII: `sd_event_source_disable_unref`, which
/// also stops the callback from running again). Not `Send`, like its loop.
pub(super) struct Source(NonNull<sd_event_source>);

impl Source {
    fn from_raw(s: *mut sd_event_source, what: &str) -> io::Result<Source> {
        NonNull::new(s)
            .map(Source)
            .ok_or_else(|| io::Error::other(format!("{what}: returned no source")))
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        // SAFETY: the source is live and this is the reference we hold.
        unsafe { sd_event_source_disable_unref(self.0.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_errno_becomes_an_error() {
        let e = check(-libc::EINVAL, "sd_event_demo").unwrap_err();
        assert_eq!(e.raw_os_error(), None);
        assert!(e.to_string().starts_with("sd_event_demo: "));
        assert_eq!(check(2, "x").unwrap(), 2);
    }
}
