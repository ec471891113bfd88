//! GLib's thin safe wrappers: RAII owners of a `GMainContext` (and of its
//! acquisition by a thread), a `GAsyncQueue` of non-NULL integers and a
//! `GSource`, and the ready-time timer source the contenders use. The
//! declarations come from the `glib-sys` crate (gtk-rs), linked through
//! pkg-config; 0.21 is the newest series whose MSRV (1.83) fits this
//! workspace's.

use std::ffi::{c_int, c_uint};
use std::io;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::os::fd::RawFd;
use std::ptr::{self, NonNull};
use std::time::Instant;

use glib_sys as sys;
pub(super) use sys::{gboolean, gpointer, GSourceFunc, G_SOURCE_CONTINUE, G_SOURCE_REMOVE};

use crate::timers::MonoClock as Clock;

/// The callback type of a unix-fd source (`GUnixFDSourceFunc`).
pub(super) type FdFunc =
    unsafe extern "C" fn(fd: c_int, condition: c_uint, data: gpointer) -> gboolean;

/// `f` as the `GSourceFunc` that `g_source_set_callback` stores for a
/// unix-fd source (`G_SOURCE_FUNC (f)` in C).
pub(super) fn fd_callback(f: FdFunc) -> GSourceFunc {
    // SAFETY: GLib calls a unix-fd source's callback only through the
    // GUnixFDSourceFunc type (g_unix_fd_source_dispatch casts it back),
    // which is `f`'s real type; GSourceFunc is just the slot it is stored
    // in. Both are `extern "C"` function pointers of the same size.
    Some(unsafe { std::mem::transmute::<FdFunc, unsafe extern "C" fn(gpointer) -> gboolean>(f) })
}

/// A `GMainContext` reference, unref'ed on drop.
pub(super) struct Context(NonNull<sys::GMainContext>);

// SAFETY: a GMainContext is reference-counted atomically and every public
// function takes the context's own lock; the calls made on a `Context`
// from a thread other than its owner's are `g_main_context_wakeup` and
// `g_main_context_unref`, both documented as callable from any thread.
unsafe impl Send for Context {}
// SAFETY: as for `Send`: the shared (`&self`) calls are thread-safe.
unsafe impl Sync for Context {}

impl Context {
    /// A fresh context, owned by no thread.
    pub(super) fn new() -> io::Result<Context> {
        // SAFETY: no arguments; the result is checked for NULL.
        let p = unsafe { sys::g_main_context_new() };
        NonNull::new(p)
            .map(Context)
            .ok_or_else(|| io::Error::other("g_main_context_new failed (returned NULL)"))
    }

    pub(super) fn as_ptr(&self) -> *mut sys::GMainContext {
        self.0.as_ptr()
    }

    /// Makes the calling thread the context's owner until the guard drops.
    pub(super) fn acquire(&self) -> io::Result<Owner> {
        // SAFETY: the context is alive (we hold a reference); the extra
        // reference taken here is given back by `Owner::drop` (or below).
        let ctx = unsafe { sys::g_main_context_ref(self.as_ptr()) };
        let ctx = NonNull::new(ctx)
            .ok_or_else(|| io::Error::other("g_main_context_ref failed (returned NULL)"))?;
        // SAFETY: `ctx` is a live context reference.
        if unsafe { sys::g_main_context_acquire(ctx.as_ptr()) } == sys::GFALSE {
            // SAFETY: gives back the reference taken above.
            unsafe { sys::g_main_context_unref(ctx.as_ptr()) };
            return Err(io::Error::other(
                "g_main_context_acquire failed (another thread owns the context)",
            ));
        }
        Ok(Owner {
            ctx,
            _thread_bound: PhantomData,
        })
    }

    /// One `g_main_context_iteration`; true if a source was dispatched.
    pub(super) fn iterate(&self, block: bool) -> bool {
        let may_block = if block { sys::GTRUE } else { sys::GFALSE };
        // SAFETY: the context is alive. Iterating from any thread is
        // allowed (GLib acquires the context, or waits for it, itself). The
        // sources attached to a `Context` by this module keep their
        // callback data alive while attached (see their owners).
        unsafe { sys::g_main_context_iteration(self.as_ptr(), may_block) != sys::GFALSE }
    }

    /// `g_main_context_wakeup`: makes the owner's current or next
    /// iteration return (a write to the context's eventfd).
    pub(super) fn wakeup(&self) {
        // SAFETY: the context is alive; the call is thread-safe.
        unsafe { sys::g_main_context_wakeup(self.as_ptr()) }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: gives back the reference this wrapper holds; on the last
        // one GLib destroys the sources still attached (running their
        // destroy notifies) and frees the context.
        unsafe { sys::g_main_context_unref(self.as_ptr()) }
    }
}

/// Ownership of a context by the current thread (`g_main_context_acquire`),
/// released on drop; holds its own context reference.
pub(super) struct Owner {
    ctx: NonNull<sys::GMainContext>,
    /// Release must happen on the acquiring thread: not `Send`.
    _thread_bound: PhantomData<*const ()>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // SAFETY: this thread acquired the context (`Owner` is not `Send`),
        // and the guard holds a reference, given back after the release.
        unsafe {
            sys::g_main_context_release(self.ctx.as_ptr());
            sys::g_main_context_unref(self.ctx.as_ptr());
        }
    }
}

/// A `GAsyncQueue` of non-NULL pointer-sized values, unref'ed on drop.
pub(super) struct Queue(NonNull<sys::GAsyncQueue>);

// SAFETY: GAsyncQueue is GLib's thread-safe queue: every push/pop takes its
// mutex, its reference count is atomic.
unsafe impl Send for Queue {}
// SAFETY: as for `Send`.
unsafe impl Sync for Queue {}

impl Queue {
    pub(super) fn new() -> io::Result<Queue> {
        // SAFETY: no arguments; the result is checked for NULL.
        let p = unsafe { sys::g_async_queue_new() };
        NonNull::new(p)
            .map(Queue)
            .ok_or_else(|| io::Error::other("g_async_queue_new failed (returned NULL)"))
    }

    pub(super) fn push(&self, v: NonZeroUsize) {
        // SAFETY: the queue is alive; the value is a non-NULL integer
        // disguised as a pointer (GUINT_TO_POINTER), never dereferenced,
        // and the queue has no free function.
        unsafe { sys::g_async_queue_push(self.0.as_ptr(), ptr::without_provenance_mut(v.get())) }
    }

    /// Blocks until a value is queued.
    pub(super) fn pop(&self) -> usize {
        // SAFETY: the queue is alive; it only ever holds what `push` put
        // there, never NULL.
        unsafe { sys::g_async_queue_pop(self.0.as_ptr()) }.addr()
    }

    pub(super) fn try_pop(&self) -> Option<NonZeroUsize> {
        // SAFETY: the queue is alive; NULL means empty.
        NonZeroUsize::new(unsafe { sys::g_async_queue_try_pop(self.0.as_ptr()) }.addr())
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: gives back the reference this wrapper holds; the values
        // still queued are plain integers (no free function).
        unsafe { sys::g_async_queue_unref(self.0.as_ptr()) }
    }
}

/// A `GSource` reference. Dropping it destroys the source (detaching it
/// from its context, so its callback never runs again) and unrefs it; see
/// [`Source::leave_to_context`] for the other way out.
pub(super) struct Source(NonNull<sys::GSource>);

impl Source {
    fn from_raw(p: *mut sys::GSource, what: &str) -> io::Result<Source> {
        NonNull::new(p)
            .map(Source)
            .ok_or_else(|| io::Error::other(format!("{what} failed (returned NULL)")))
    }

    /// `g_unix_fd_source_new(fd, G_IO_IN)`: a source that dispatches while
    /// `fd` is readable, with a callback of type [`FdFunc`] (see
    /// [`fd_callback`]).
    ///
    /// # Safety
    ///
    /// `fd` must stay open while the source exists (GLib polls it but does
    /// not own it).
    pub(super) unsafe fn unix_fd(fd: RawFd) -> io::Result<Source> {
        // SAFETY: a plain constructor; the caller keeps `fd` open.
        let p = unsafe { sys::g_unix_fd_source_new(fd, sys::G_IO_IN) };
        Source::from_raw(p, "g_unix_fd_source_new")
    }

    /// A one-shot source of [`READY_FUNCS`] that is ready from `ready_us`
    /// (µs of the monotonic clock) on.
    pub(super) fn ready_at(ready_us: i64) -> io::Result<Source> {
        // The size is a compile-time constant far below u32::MAX.
        let size = std::mem::size_of::<sys::GSource>() as c_uint;
        // SAFETY: `READY_FUNCS` is a static, so it outlives every source;
        // GLib stores it as `const GSourceFuncs *` and never writes through
        // it (the parameter is non-const only for historical reasons). The
        // size is that of `GSource`, with no private data after it.
        let p = unsafe { sys::g_source_new(ptr::addr_of!(READY_FUNCS).cast_mut(), size) };
        let s = Source::from_raw(p, "g_source_new")?;
        // SAFETY: `s` is a live source.
        unsafe { sys::g_source_set_ready_time(s.0.as_ptr(), ready_us) };
        Ok(s)
    }

    /// Sets the source's callback.
    ///
    /// # Safety
    ///
    /// `func` must accept `data` whenever the source dispatches, until the
    /// source is destroyed (after which `notify`, if any, gets `data`).
    pub(super) unsafe fn set_callback(
        &self,
        func: sys::GSourceFunc,
        data: gpointer,
        notify: sys::GDestroyNotify,
    ) {
        // SAFETY: the source is alive; the caller vouches for the callback
        // and its data.
        unsafe { sys::g_source_set_callback(self.0.as_ptr(), func, data, notify) }
    }

    pub(super) fn attach(&self, ctx: &Context) -> io::Result<()> {
        // SAFETY: both are alive; the context takes its own reference.
        let id = unsafe { sys::g_source_attach(self.0.as_ptr(), ctx.as_ptr()) };
        if id == 0 {
            return Err(io::Error::other(
                "g_source_attach failed (source destroyed or already attached)",
            ));
        }
        Ok(())
    }

    /// Drops this reference without destroying the source: the context it
    /// is attached to keeps it until it is removed (a one-shot source after
    /// it fired) or the context goes.
    pub(super) fn leave_to_context(self) {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        // SAFETY: gives back the reference this wrapper held (forgotten
        // above, so it is not given back twice).
        unsafe { sys::g_source_unref(p) }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        // SAFETY: the source is alive (we hold a reference). Destroying an
        // already destroyed or never attached source is allowed; the unref
        // gives back our reference.
        unsafe {
            sys::g_source_destroy(self.0.as_ptr());
            sys::g_source_unref(self.0.as_ptr());
        }
    }
}

/// The minimal `GSourceFuncs` of a one-shot timer: no prepare or check
/// (GLib itself compares the ready time with the clock), a dispatch that
/// runs the callback once and removes the source.
static READY_FUNCS: sys::GSourceFuncs = sys::GSourceFuncs {
    prepare: None,
    check: None,
    dispatch: Some(ready_dispatch),
    finalize: None,
    closure_callback: None,
    closure_marshal: None,
};

/// Dispatch of [`READY_FUNCS`]: calls the callback, if one is set, and
/// returns `G_SOURCE_REMOVE` (one-shot; the ready time is never reset).
///
/// # Safety
///
/// Called by GLib with the callback and data set by
/// `g_source_set_callback`, which must fit together.
unsafe extern "C" fn ready_dispatch(
    _source: *mut sys::GSource,
    callback: sys::GSourceFunc,
    user_data: gpointer,
) -> gboolean {
    if let Some(cb) = callback {
        // SAFETY: the callback and its data were set together (contract).
        unsafe { cb(user_data) };
    }
    sys::G_SOURCE_REMOVE
}

impl Clock {
    /// The GLib ready time of `deadline`, rounded up to the µs so that GLib
    /// (which compares with the clock truncated to µs) never fires early.
    /// Past deadlines give at least 0 (GLib's -1 would mean "never").
    pub(super) fn ready_us(&self, deadline: Instant) -> i64 {
        i64::try_from(self.us_ceil(deadline)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wakeup_before_the_iteration_is_not_lost() {
        let ctx = Context::new().unwrap();
        let _own = ctx.acquire().unwrap();
        ctx.wakeup();
        // Would block forever if the early wake-up were lost.
        ctx.iterate(true);
    }

    #[test]
    fn clock_matches_g_get_monotonic_time() {
        // SAFETY: no arguments.
        let before = unsafe { sys::g_get_monotonic_time() };
        let c = Clock::now().unwrap();
        let us = c.ready_us(c.at);
        // SAFETY: no arguments.
        let after = unsafe { sys::g_get_monotonic_time() };
        assert!(before <= us && us <= after + 1, "{before} {us} {after}");
        let later = c.ready_us(c.at + Duration::from_nanos(1_000_001));
        assert!((1000..=1001).contains(&(later - us)), "{us} {later}");
        if let Some(early) = c.at.checked_sub(Duration::from_secs(1 << 30)) {
            assert_eq!(c.ready_us(early), 0);
        }
    }
}
