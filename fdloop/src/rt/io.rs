//! [`Async`]: a descriptor whose reads and writes are futures.
//!
//! # Readiness
//!
//! An `Async` joins the loop's epoll set the first time an operation would
//! block (lazily: one that never blocks makes no `epoll_ctl`), edge-
//! triggered for both directions, under one loop source whose dispatch
//! only records readiness and wakes the waiting task. Each direction keeps
//! a *ready* flag: set at creation (so the first operation is simply
//! tried) and by every readiness report, cleared when an operation through
//! this `Async` returns `WouldBlock` — then the task waits for the next
//! report. Reports and operations run on the same thread, so no report can
//! fall between an operation and the clearing of its flag.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{SocketAddr as UnixSocketAddr, UnixListener, UnixStream};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};

use super::context;
use super::time::{store_waker, wake_slot};
use crate::event_loop::{stateless, Reactor};
use crate::sys;
use crate::{Action, Interest, LoopHandle, Mode, Readiness, Registrar, Source, SourceId};

#[derive(Clone, Copy)]
pub(super) enum Dir {
    Read,
    Write,
}

/// The readiness flags and waiting tasks of one `Async`, shared with its
/// loop source.
struct IoState {
    ready: [Cell<bool>; 2],
    wakers: [RefCell<Option<Waker>>; 2],
    /// The `Async` is gone: its descriptor may be closed, so the source
    /// must not name it any more.
    gone: Cell<bool>,
}

/// The loop source of an `Async`: its descriptor number and shared state.
struct Watched {
    fd: RawFd,
    state: Rc<IoState>,
}

impl Watched {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        if self.state.gone.get() {
            return None;
        }
        // SAFETY: by the contract of `Registration`, its descriptor stays
        // open until the `Registration` is dropped, and dropping it removes
        // this source (out of epoll at once, as the source is never busy
        // then: its dispatch only wakes tasks) and then sets `gone`. So
        // while `gone` is false the descriptor is open; the borrow lasts
        // only for the caller's `epoll_ctl`.
        Some(unsafe { BorrowedFd::borrow_raw(self.fd) })
    }
}

impl Source for Watched {
    type Event = Readiness;
    type Metadata = ();

    fn register(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        match self.fd() {
            Some(fd) => r.add(fd, 0, Interest::BOTH, Mode::Edge),
            None => Ok(()),
        }
    }

    fn unregister(&mut self, r: &mut Registrar<'_>) -> io::Result<()> {
        match self.fd() {
            Some(fd) => r.delete(fd),
            // Closed: the kernel took it out of the epoll set.
            None => Ok(()),
        }
    }

    fn process(
        &mut self,
        ready: Readiness,
        _sub: u8,
        _r: &mut Registrar<'_>,
        callback: &mut dyn FnMut(Readiness, &mut ()) -> Action,
    ) -> io::Result<Action> {
        let s = &self.state;
        let failed = ready.is_error() || ready.is_hangup();
        if ready.is_readable() || ready.is_read_closed() || failed {
            s.ready[0].set(true);
            wake_slot(&s.wakers[0]);
        }
        if ready.is_writable() || failed {
            s.ready[1].set(true);
            wake_slot(&s.wakers[1]);
        }
        Ok(callback(ready, &mut ()))
    }
}

/// The loop registration of one descriptor: its readiness flags, joined
/// to the epoll set on first need, left when dropped.
///
/// Contract (crate-private): the descriptor given to [`new`](Registration::new)
/// stays open until the `Registration` is dropped — its owner declares the
/// `Registration` before the descriptor's owner, so it drops first.
pub(super) struct Registration {
    fd: RawFd,
    /// A pipe or stream socket: a short read or write means the buffer was
    /// drained or filled (see [`poll_io`](Registration::poll_io)).
    stream_like: bool,
    state: Rc<IoState>,
    reactor: Rc<dyn Reactor>,
    id: Cell<Option<SourceId>>,
}

impl Registration {
    pub(super) fn new(reactor: Rc<dyn Reactor>, fd: BorrowedFd<'_>) -> Registration {
        Registration {
            fd: fd.as_raw_fd(),
            stream_like: false,
            state: Rc::new(IoState {
                ready: [Cell::new(true), Cell::new(true)],
                wakers: [RefCell::new(None), RefCell::new(None)],
                gone: Cell::new(false),
            }),
            reactor,
            id: Cell::new(None),
        }
    }

    /// Makes `fd` non-blocking, then as [`new`](Registration::new).
    pub(super) fn nonblocking(reactor: Rc<dyn Reactor>, fd: BorrowedFd<'_>) -> io::Result<Self> {
        sys::fd::set_nonblocking(fd, true)?;
        let mut reg = Registration::new(reactor, fd);
        reg.stream_like = sys::fd::is_stream_like(fd)?;
        Ok(reg)
    }

    /// As [`new`](Registration::new), for a descriptor known to be a
    /// non-blocking stream socket (made or accepted by `rt` itself): no
    /// system call.
    fn stream(reactor: Rc<dyn Reactor>, fd: BorrowedFd<'_>) -> Self {
        let mut reg = Registration::new(reactor, fd);
        reg.stream_like = true;
        reg
    }

    pub(super) fn reactor(&self) -> &Rc<dyn Reactor> {
        &self.reactor
    }

    /// Whether `dir`'s flag is set.
    pub(super) fn is_ready(&self, dir: Dir) -> bool {
        self.state.ready[dir as usize].get()
    }

    /// Clears `dir`'s flag: the next [`poll_ready`](Registration::poll_ready)
    /// waits for a readiness report.
    pub(super) fn clear(&self, dir: Dir) {
        self.state.ready[dir as usize].set(false);
    }

    /// Joins the epoll set on first need.
    #[inline]
    pub(super) fn register(&self) -> io::Result<()> {
        if self.id.get().is_some() {
            return Ok(());
        }
        self.insert()
    }

    /// Inserts the loop source ([`register`](Registration::register)'s
    /// first call).
    #[cold]
    #[inline(never)]
    fn insert(&self) -> io::Result<()> {
        let watched = Watched {
            fd: self.fd,
            state: self.state.clone(),
        };
        let id = self
            .reactor
            .insert(stateless(watched, |_, _: &mut ()| Action::Continue))?;
        self.id.set(Some(id));
        Ok(())
    }

    pub(super) fn deregister(&self) -> io::Result<()> {
        let res = match self.id.take() {
            Some(id) => self.reactor.remove(id).map_err(io::Error::from),
            None => Ok(()),
        };
        self.state.gone.set(true);
        match res {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    /// `Ready` when `dir`'s flag is set; else registers and waits.
    #[inline]
    pub(super) fn poll_ready(&self, dir: Dir, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state.ready[dir as usize].get() {
            return Poll::Ready(Ok(()));
        }
        self.wait(dir, cx)
    }

    /// `dir`'s flag is clear: joins the epoll set on first need and keeps
    /// `cx`'s waker for the next readiness report. `Pending`, or the
    /// error of joining.
    fn wait(&self, dir: Dir, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.register()?;
        store_waker(&self.state.wakers[dir as usize], cx.waker());
        Poll::Pending
    }

    /// [`poll_op`](Registration::poll_op) for a read or write of `want`
    /// bytes on a pipe or stream socket: one that moves fewer (but some)
    /// bytes drained or filled the buffer, so the flag is cleared at once —
    /// the next call waits for the next edge instead of making a system
    /// call only to meet `EAGAIN`. (Not after 0 bytes: end of file stays
    /// readable. Not for other kinds of descriptor: a terminal returns a
    /// line per read.)
    #[inline]
    pub(super) fn poll_io(
        &self,
        dir: Dir,
        cx: &mut Context<'_>,
        want: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let r = self.poll_op(dir, cx, op);
        if let Poll::Ready(Ok(n)) = r {
            if self.stream_like && n > 0 && n < want {
                self.clear(dir);
            }
        }
        r
    }

    /// Runs `op` when `dir` is ready, until it returns something other
    /// than `WouldBlock` (which clears the flag) or `Interrupted`.
    #[inline]
    pub(super) fn poll_op<R>(
        &self,
        dir: Dir,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let ready = &self.state.ready[dir as usize];
        loop {
            if !ready.get() {
                return match self.wait(dir, cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                };
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.set(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // An error cannot be reported: the descriptor closes next, which
        // takes it out of the set anyway.
        let _ = self.deregister();
    }
}

/// A descriptor `T` (socket, pipe, terminal, anything [`AsFd`]) made
/// non-blocking and driven by the loop: [`readable`](Async::readable) and
/// [`writable`](Async::writable) futures, [`read_with`](Async::read_with)
/// and [`write_with`](Async::write_with) for any operation,
/// [`AsyncRead`]/[`AsyncWrite`] (from `futures-io`) when `T` is
/// [`Read`]/[`Write`], and [`accept`](Async::accept)/[`incoming`](Async::incoming)
/// for a [`TcpListener`].
///
/// It joins the loop's own epoll set lazily (see the module docs): no
/// second poller, no thread. Dropping it takes the descriptor out of the
/// loop before `T` closes it. An `Async` belongs to its loop's thread (it
/// is not `Send`).
///
/// Operations retry `EINTR` (`ErrorKind::Interrupted`) and wait on
/// `EAGAIN`/`EWOULDBLOCK`; other errors (`EMFILE` from an accept, a reset
/// connection) are returned as they came, and the readiness flag stays
/// set, so the next call tries again at once.
///
/// # Examples
///
/// ```
/// use std::os::unix::net::UnixStream;
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use fdloop::rt::Async;
///
/// let got = fdloop::rt::block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     let (mut a, mut b) = (Async::new(a)?, Async::new(b)?);
///     fdloop::rt::spawn(async move { a.write_all(b"ping").await })?.detach();
///     let mut buf = [0u8; 4];
///     b.read_exact(&mut buf).await?;
///     Ok::<_, Box<dyn std::error::Error>>(buf)
/// })?.unwrap();
/// assert_eq!(&got, b"ping");
/// # Ok::<(), fdloop::Error>(())
/// ```
pub struct Async<T: AsFd> {
    // Declared first: dropped (out of epoll) before `io` closes.
    reg: Registration,
    io: T,
}

impl<T: AsFd> Unpin for Async<T> {}

impl<T: AsFd> Async<T> {
    /// Wraps `io` for the loop running the current task, and makes it
    /// non-blocking (`fcntl(F_GETFL)`/`fcntl(F_SETFL, O_NONBLOCK)`); an
    /// `fstat` (and for a socket `getsockopt(SO_TYPE)`) tells whether it is
    /// a pipe or stream socket, where a short read or write shows the
    /// buffer drained or full and saves the call that would meet `EAGAIN`.
    ///
    /// # Errors
    ///
    /// Kind `Other` outside a task of an fdloop loop (use
    /// [`new_on`](Async::new_on) there); the `fcntl` error (`EBADF`) if
    /// the descriptor is not valid (`fstat`/`getsockopt` errors likewise).
    /// `io` is dropped then.
    ///
    /// # Examples
    ///
    /// See [`Async`].
    pub fn new(io: T) -> io::Result<Async<T>> {
        let reactor = context::current("wrapping a descriptor in Async")?;
        Async::with_reactor(reactor, io)
    }

    /// As [`new`](Async::new), for the loop of `handle` (for use outside
    /// its tasks).
    ///
    /// # Errors
    ///
    /// The `fcntl` error.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let (r, _w) = std::io::pipe()?;
    /// let r = fdloop::rt::Async::new_on(&ev.handle(), r)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_on<S: 'static>(handle: &LoopHandle<S>, io: T) -> io::Result<Async<T>> {
        Async::with_reactor(handle.reactor(), io)
    }

    fn with_reactor(reactor: Rc<dyn Reactor>, io: T) -> io::Result<Async<T>> {
        let reg = Registration::nonblocking(reactor, io.as_fd())?;
        Ok(Async { reg, io })
    }

    /// An `Async` of `io`, a stream socket already non-blocking.
    fn stream(reactor: Rc<dyn Reactor>, io: T) -> Async<T> {
        let reg = Registration::stream(reactor, io.as_fd());
        Async { reg, io }
    }

    /// The descriptor. Use it for operations that do not block; for those
    /// that may, use [`read_with`](Async::read_with) or
    /// [`write_with`](Async::write_with), which learn of `WouldBlock`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let l = fdloop::rt::Async::new_on(&ev.handle(), l)?;
    /// println!("listening on {}", l.get_ref().local_addr()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The descriptor, mutably; as [`get_ref`](Async::get_ref).
    ///
    /// # Safety
    ///
    /// The descriptor must stay the one this `Async` was made with: do not
    /// replace `T` (`*a.get_mut() = other`), swap it out or close it through
    /// this reference. The loop's epoll set names the descriptor by number;
    /// with another descriptor in its place, the registration would be
    /// deleted by number from whatever open file then has it — possibly
    /// another `Async` of the same loop. (As `async-io`'s `get_mut`.)
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let proc = std::process::Command::new("true").spawn()?;
    /// let child = fdloop::process::Child::new(&proc)?;
    /// let mut child = fdloop::rt::Async::new_on(&ev.handle(), child)?;
    /// // SAFETY: `try_wait` leaves the child's descriptor in place.
    /// let _ = unsafe { child.get_mut() }.try_wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Takes the descriptor back out of the loop and returns it (still
    /// non-blocking).
    ///
    /// # Errors
    ///
    /// The `epoll_ctl` error, if taking it out failed (other than
    /// `ENOENT`/`EBADF`); the descriptor is dropped then.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev: fdloop::EventLoop<()> = fdloop::EventLoop::new()?;
    /// let (r, _w) = std::io::pipe()?;
    /// let r: std::io::PipeReader = fdloop::rt::Async::new_on(&ev.handle(), r)?.into_inner()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> io::Result<T> {
        let Async { reg, io } = self;
        reg.deregister()?;
        Ok(io)
    }

    /// Resolves when the descriptor may be readable: at once if no
    /// operation through this `Async` has met `WouldBlock` since the last
    /// readiness report (so possibly spuriously: then do the operation
    /// with [`read_with`](Async::read_with), which records it).
    ///
    /// # Errors
    ///
    /// If the descriptor cannot join the epoll set (`EPERM` for a regular
    /// file, `ENOSPC`, `ENOMEM`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use fdloop::rt::Async;
    /// fdloop::rt::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let b = Async::new(b)?;
    ///     drop(a); // end of file: readable
    ///     b.readable().await
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readable(&self) -> Readable<'_, T> {
        Readable(self)
    }

    /// Resolves when the descriptor may be writable; as
    /// [`readable`](Async::readable).
    ///
    /// # Errors
    ///
    /// As [`readable`](Async::readable).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use fdloop::rt::Async;
    /// fdloop::rt::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     Async::new(a)?.writable().await
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writable(&self) -> Writable<'_, T> {
        Writable(self)
    }

    /// The poll form of [`readable`](Async::readable): `Ready` at once
    /// while no operation through this `Async` has met `WouldBlock` since
    /// the last readiness report, else `Pending` with `cx`'s waker kept
    /// (the latest one of the read side only: one task per direction
    /// waits, as with `AsyncRead`). A `WouldBlock` met through
    /// [`get_ref`](Async::get_ref) is not recorded, so this stays `Ready`:
    /// for hand-written `poll_*` adapters, [`poll_read_with`](Async::poll_read_with)
    /// does the operation and the recording together.
    ///
    /// # Errors
    ///
    /// As [`readable`](Async::readable).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use fdloop::rt::Async;
    /// fdloop::rt::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let b = Async::new(b)?;
    ///     drop(a);
    ///     std::future::poll_fn(|cx| b.poll_readable(cx)).await
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.reg.poll_ready(Dir::Read, cx)
    }

    /// The poll form of [`writable`](Async::writable); as
    /// [`poll_readable`](Async::poll_readable).
    ///
    /// # Errors
    ///
    /// As [`readable`](Async::readable).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use fdloop::rt::Async;
    /// fdloop::rt::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let a = Async::new(a)?;
    ///     std::future::poll_fn(|cx| a.poll_writable(cx)).await
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.reg.poll_ready(Dir::Write, cx)
    }

    /// The poll form of [`read_with`](Async::read_with), for hand-written
    /// futures and `poll_*` adapters (as `AsyncRead` is built): runs `op`
    /// while the read side is ready; `WouldBlock` clears the flag and
    /// leaves `Pending` with `cx`'s waker kept; `Interrupted` is retried.
    ///
    /// # Errors
    ///
    /// As [`read_with`](Async::read_with).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    /// use fdloop::rt::Async;
    /// let got = fdloop::rt::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let b = Async::new(b)?;
    ///     std::io::Write::write_all(&mut &a, b"hi")?;
    ///     let mut buf = [0u8; 2];
    ///     std::future::poll_fn(|cx| b.poll_read_with(cx, |mut s| s.read(&mut buf))).await?;
    ///     Ok::<_, std::io::Error>(buf)
    /// })??;
    /// assert_eq!(&got, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_read_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.reg.poll_op(Dir::Read, cx, || op(&self.io))
    }

    /// The poll form of [`write_with`](Async::write_with); as
    /// [`poll_read_with`](Async::poll_read_with).
    ///
    /// # Errors
    ///
    /// As [`read_with`](Async::read_with).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use fdloop::rt::Async;
    /// let n = fdloop::rt::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let a = Async::new(a)?;
    ///     std::future::poll_fn(|cx| a.poll_write_with(cx, |mut s| s.write(b"hey"))).await
    /// })??;
    /// assert_eq!(n, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_write_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.reg.poll_op(Dir::Write, cx, || op(&self.io))
    }

    /// Runs `op` (a read, a `recv`, an `accept`: anything that waits for
    /// readability) until it does not return `WouldBlock`, waiting for
    /// readability in between; retries `Interrupted`.
    ///
    /// # Errors
    ///
    /// What `op` returned other than `WouldBlock`/`Interrupted`; errors of
    /// [`readable`](Async::readable).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::UdpSocket;
    /// use fdloop::rt::Async;
    /// let n = fdloop::rt::block_on(async {
    ///     let a = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
    ///     let b = UdpSocket::bind("127.0.0.1:0")?;
    ///     b.send_to(b"hi", a.get_ref().local_addr()?)?;
    ///     let mut buf = [0u8; 8];
    ///     a.read_with(|s| s.recv(&mut buf)).await
    /// })??;
    /// assert_eq!(n, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op_with(Dir::Read, op).await
    }

    /// As [`read_with`](Async::read_with), for operations that wait for
    /// writability.
    ///
    /// # Errors
    ///
    /// As [`read_with`](Async::read_with).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use fdloop::rt::Async;
    /// let n = fdloop::rt::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let a = Async::new(a)?;
    ///     a.write_with(|mut s| s.write(b"hello")).await
    /// })??;
    /// assert_eq!(n, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op_with(Dir::Write, op).await
    }

    async fn op_with<R>(&self, dir: Dir, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        std::future::poll_fn(|cx| self.reg.poll_op(dir, cx, || op(&self.io))).await
    }

    /// The registration, for the source-specific futures of `rt`.
    pub(super) fn reg(&self) -> &Registration {
        &self.reg
    }

    /// The registration and the descriptor, apart.
    pub(super) fn parts(&mut self) -> (&Registration, &mut T) {
        (&self.reg, &mut self.io)
    }
}

impl<T: AsFd> AsFd for Async<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async")
            .field("io", &self.io)
            .field("registered", &self.reg.id.get().is_some())
            .finish()
    }
}

/// The future of [`Async::readable`].
///
/// # Examples
///
/// See [`Async::readable`].
#[must_use = "futures do nothing unless polled"]
pub struct Readable<'a, T: AsFd>(&'a Async<T>);

/// The future of [`Async::writable`].
///
/// # Examples
///
/// See [`Async::writable`].
#[must_use = "futures do nothing unless polled"]
pub struct Writable<'a, T: AsFd>(&'a Async<T>);

impl<T: AsFd> Future for Readable<'_, T> {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.reg.poll_ready(Dir::Read, cx)
    }
}

impl<T: AsFd> Future for Writable<'_, T> {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.reg.poll_ready(Dir::Write, cx)
    }
}

impl<T: AsFd> fmt::Debug for Readable<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Readable")
    }
}

impl<T: AsFd> fmt::Debug for Writable<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Writable")
    }
}

impl<T: AsFd + Read> AsyncRead for Async<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        {
            let (reg, io) = self.get_mut().parts();
            reg.poll_io(Dir::Read, cx, buf.len(), || io.read(buf))
        }
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        {
            let want = bufs.iter().map(|b| b.len()).sum();
            let (reg, io) = self.get_mut().parts();
            reg.poll_io(Dir::Read, cx, want, || io.read_vectored(bufs))
        }
    }
}

impl<T: AsFd + Write> AsyncWrite for Async<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        {
            let (reg, io) = self.get_mut().parts();
            reg.poll_io(Dir::Write, cx, buf.len(), || io.write(buf))
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        {
            let want = bufs.iter().map(|b| b.len()).sum();
            let (reg, io) = self.get_mut().parts();
            reg.poll_io(Dir::Write, cx, want, || io.write_vectored(bufs))
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        {
            let (reg, io) = self.get_mut().parts();
            reg.poll_op(Dir::Write, cx, || io.flush())
        }
    }

    /// Flushes; the descriptor closes when the `Async` is dropped (for a
    /// socket, shut down the write side with
    /// `get_ref().shutdown(Shutdown::Write)` to signal the end earlier).
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl Async<UdpSocket> {
    /// Receives one datagram and its sender, waiting for one
    /// (`recvfrom(2)`; a datagram longer than `buf` is cut, as there).
    ///
    /// # Errors
    ///
    /// As `recvfrom(2)` (`ECONNREFUSED` after an ICMP error on a connected
    /// socket); errors of [`readable`](Async::readable).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::UdpSocket;
    /// use fdloop::rt::Async;
    /// let (n, from) = fdloop::rt::block_on(async {
    ///     let a = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
    ///     let b = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
    ///     b.send_to(b"ping", a.get_ref().local_addr()?).await?;
    ///     let mut buf = [0u8; 16];
    ///     a.recv_from(&mut buf).await
    /// })??;
    /// assert_eq!(n, 4);
    /// assert!(from.ip().is_loopback());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read_with(|s| s.recv_from(buf)).await
    }

    /// As [`recv_from`](Async::<UdpSocket>::recv_from), leaving the
    /// datagram queued (`MSG_PEEK`).
    ///
    /// # Errors
    ///
    /// As [`recv_from`](Async::<UdpSocket>::recv_from).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::UdpSocket;
    /// use fdloop::rt::Async;
    /// fdloop::rt::block_on(async {
    ///     let a = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
    ///     UdpSocket::bind("127.0.0.1:0")?.send_to(b"hi", a.get_ref().local_addr()?)?;
    ///     let mut buf = [0u8; 8];
    ///     let (peeked, _) = a.peek_from(&mut buf).await?;
    ///     let (got, _) = a.recv_from(&mut buf).await?;
    ///     assert_eq!(peeked, got);
    ///     Ok::<_, std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read_with(|s| s.peek_from(buf)).await
    }

    /// Receives one datagram from the connected peer (`recv(2)`), waiting
    /// for one.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](Async::<UdpSocket>::recv_from) (an unconnected
    /// socket receives from anyone).
    ///
    /// # Examples
    ///
    /// See [`send`](Async::<UdpSocket>::send).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|s| s.recv(buf)).await
    }

    /// Sends one datagram to `addr` (`sendto(2)`), waiting for room in the
    /// send buffer.
    ///
    /// # Errors
    ///
    /// As `sendto(2)`: `EMSGSIZE` for a datagram too long, `ENETUNREACH`;
    /// errors of [`writable`](Async::writable).
    ///
    /// # Examples
    ///
    /// See [`recv_from`](Async::<UdpSocket>::recv_from).
    pub async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.write_with(|s| s.send_to(buf, addr)).await
    }

    /// Sends one datagram to the connected peer (`send(2)`).
    ///
    /// # Errors
    ///
    /// As [`send_to`](Async::<UdpSocket>::send_to); `ENOTCONN` if not
    /// connected (`get_ref().connect(addr)` connects: it does not block).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::UdpSocket;
    /// use fdloop::rt::Async;
    /// let got = fdloop::rt::block_on(async {
    ///     let a = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
    ///     let b = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
    ///     a.get_ref().connect(b.get_ref().local_addr()?)?;
    ///     b.get_ref().connect(a.get_ref().local_addr()?)?;
    ///     a.send(b"hey").await?;
    ///     let mut buf = [0u8; 8];
    ///     let n = b.recv(&mut buf).await?;
    ///     Ok::<_, std::io::Error>(buf[..n].to_vec())
    /// })??;
    /// assert_eq!(got, b"hey");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(|s| s.send(buf)).await
    }
}

/// Reads through a shared reference, for descriptors whose `&T` reads
/// (`&TcpStream`, `&UnixStream`, `&File`...): a reader task and a writer
/// task can share one `Rc<Async<T>>` without a lock. One task per
/// direction waits at a time (the last to poll is woken).
///
/// # Examples
///
/// ```
/// use std::os::unix::net::UnixStream;
/// use std::rc::Rc;
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use fdloop::rt::{self, Async};
/// let got = rt::block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     let (a, b) = (Rc::new(Async::new(a)?), Async::new(b)?);
///     let writer = a.clone();
///     rt::spawn(async move { (&*writer).write_all(b"both ways").await })?.detach();
///     let mut buf = [0u8; 9];
///     (&b).read_exact(&mut buf).await?;
///     (&b).write_all(&buf).await?;
///     let mut back = [0u8; 9];
///     (&*a).read_exact(&mut back).await?;
///     Ok::<_, std::io::Error>(back)
/// })??;
/// assert_eq!(&got, b"both ways");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<T: AsFd> AsyncRead for &Async<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let a: &Async<T> = *self;
        a.reg
            .poll_io(Dir::Read, cx, buf.len(), || (&a.io).read(buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let a: &Async<T> = *self;
        let want = bufs.iter().map(|b| b.len()).sum();
        a.reg
            .poll_io(Dir::Read, cx, want, || (&a.io).read_vectored(bufs))
    }
}

/// Writes through a shared reference; as the `AsyncRead` for `&Async<T>`.
///
/// # Examples
///
/// See the `AsyncRead` for `&Async<T>`.
impl<T: AsFd> AsyncWrite for &Async<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let a: &Async<T> = *self;
        a.reg
            .poll_io(Dir::Write, cx, buf.len(), || (&a.io).write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let a: &Async<T> = *self;
        let want = bufs.iter().map(|b| b.len()).sum();
        a.reg
            .poll_io(Dir::Write, cx, want, || (&a.io).write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let a: &Async<T> = *self;
        a.reg.poll_op(Dir::Write, cx, || (&a.io).flush())
    }

    /// Flushes; as for `Async<T>`.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl Async<TcpListener> {
    /// Accepts a connection, waiting for one; the stream comes back as an
    /// `Async` on the same loop. One `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`
    /// per connection: the stream is non-blocking from the start and no
    /// further system call is made for it.
    ///
    /// # Errors
    ///
    /// As `accept(2)`: `EMFILE`/`ENFILE` when out of descriptors (the
    /// pending connection stays queued and the next call tries again at
    /// once: back off, e.g. with [`sleep`](crate::rt::sleep)),
    /// `ECONNABORTED`; errors of [`readable`](Async::readable).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use fdloop::rt::Async;
    /// let peer = fdloop::rt::block_on(async {
    ///     let l = Async::new(TcpListener::bind("127.0.0.1:0")?)?;
    ///     let addr = l.get_ref().local_addr()?;
    ///     let _c = TcpStream::connect(addr)?;
    ///     let (_s, peer) = l.accept().await?;
    ///     Ok::<_, std::io::Error>(peer)
    /// })??;
    /// assert!(peer.ip().is_loopback());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(Async<TcpStream>, SocketAddr)> {
        let (s, addr) = self.read_with(|l| sys::net::accept_inet(l)).await?;
        Ok((
            Async::stream(self.reg.reactor().clone(), TcpStream::from(s)),
            addr,
        ))
    }

    /// The connections as a stream (never ends; errors are items, as for
    /// [`accept`](Async::accept)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use futures_util::StreamExt;
    /// use fdloop::rt::Async;
    /// fdloop::rt::block_on(async {
    ///     let l = Async::new(TcpListener::bind("127.0.0.1:0")?)?;
    ///     let _c = TcpStream::connect(l.get_ref().local_addr()?)?;
    ///     let mut incoming = l.incoming();
    ///     let s = incoming.next().await.unwrap()?;
    ///     assert!(s.get_ref().peer_addr()?.ip().is_loopback());
    ///     Ok::<_, std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn incoming(&self) -> Accept<'_> {
        Accept(self)
    }
}

impl Async<TcpStream> {
    /// Opens a TCP connection to `addr` without blocking the loop: a
    /// non-blocking socket (`socket(SOCK_NONBLOCK | SOCK_CLOEXEC)`), one
    /// `connect`, and if that is under way (`EINPROGRESS`) the task waits
    /// until the socket is writable, then reads `SO_ERROR` to learn how the
    /// handshake ended. Dropping the future meanwhile closes the socket
    /// (and so abandons the connection). Name lookup blocks and is not done
    /// here: resolve first, off the loop's thread (`ToSocketAddrs` inside
    /// the `blocking` crate's `unblock`, say), then try the addresses in
    /// turn.
    ///
    /// # Errors
    ///
    /// Kind `Other` outside a task of an fdloop loop. As `connect(2)`, with
    /// the raw `errno`: `ECONNREFUSED` (nothing listens), `ETIMEDOUT` (the
    /// kernel gave up on the handshake, after about two minutes with
    /// default settings: wrap the future in [`timeout`](crate::rt::timeout)
    /// for less),
    /// `ENETUNREACH`/`EHOSTUNREACH`; `EMFILE`/`ENFILE` when out of
    /// descriptors (nothing is left open). `EINTR` is not an error: the
    /// connection goes on in the background and is waited for as above.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::TcpListener;
    /// use futures_util::AsyncWriteExt;
    /// use fdloop::rt::Async;
    /// let l = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = l.local_addr()?;
    /// fdloop::rt::block_on(async move {
    ///     let mut s = Async::<std::net::TcpStream>::connect(addr).await?;
    ///     s.write_all(b"hello").await
    /// })??;
    /// let (_peer, _) = l.accept()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn connect<A: Into<SocketAddr>>(addr: A) -> io::Result<Async<TcpStream>> {
        let addr = addr.into();
        let reactor = context::current("connecting a TcpStream")?;
        let fd = sys::net::stream_socket(sys::net::family_of(&addr))?;
        let made = sys::net::connect_start(&fd, &addr)?;
        let s = Async::stream(reactor, TcpStream::from(fd));
        if !made {
            // Wait for the handshake's end: writable once connected, error
            // or hang-up (which set the flag too) once failed.
            s.reg.clear(Dir::Write);
            s.writable().await?;
            sys::net::take_error(&s.io)?;
            // Writable with no error recorded but not connected would be a
            // kernel oddity; report it rather than hand out such a socket.
            s.io.peer_addr()?;
        }
        Ok(s)
    }
}

impl Async<UnixStream> {
    /// Connects to the Unix-domain stream socket at `path`. An `AF_UNIX`
    /// connect is made or fails at once (it never stays under way as a TCP
    /// one does), so this future is ready on its first poll; it is `async`
    /// to match [`Async::<TcpStream>::connect`](Async::<TcpStream>::connect).
    ///
    /// # Errors
    ///
    /// Kind `Other` outside a task of an fdloop loop. As `connect(2)`, with
    /// the raw `errno`: `ENOENT` (nothing at `path`), `ECONNREFUSED`
    /// (nothing listens there), `EACCES`, `EAGAIN` (kind `WouldBlock`: the
    /// listener's backlog is full and the connection was not queued; no
    /// readiness will announce room, so try again later), `EINVAL`-kind
    /// `InvalidInput` for a path longer than `sun_path` holds;
    /// `EMFILE`/`ENFILE` when out of descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::{UnixListener, UnixStream};
    /// use fdloop::rt::Async;
    /// let path = std::env::temp_dir().join(format!("fdloop-doc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = UnixListener::bind(&path)?;
    /// let to = path.clone();
    /// let _s = fdloop::rt::block_on(async move { Async::<UnixStream>::connect(to).await })??;
    /// let (_peer, _) = l.accept()?;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn connect<P: AsRef<Path>>(path: P) -> io::Result<Async<UnixStream>> {
        let reactor = context::current("connecting a UnixStream")?;
        let fd = sys::net::stream_socket(rustix::net::AddressFamily::UNIX)?;
        sys::net::connect_unix(&fd, path.as_ref())?;
        Ok(Async::stream(reactor, UnixStream::from(fd)))
    }
}

impl Async<UnixListener> {
    /// Accepts a connection, waiting for one; the stream comes back as an
    /// `Async` on the same loop. As [`Async::<TcpListener>::accept`](Async::<TcpListener>::accept):
    /// one `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` per connection, plus a
    /// `getpeername` for a peer bound to a path or an abstract name (an
    /// unnamed peer, the usual client, needs none).
    ///
    /// # Errors
    ///
    /// As `accept(2)`: `EMFILE`/`ENFILE` when out of descriptors (the
    /// pending connection stays queued and the next call tries again at
    /// once: back off, e.g. with [`sleep`](crate::rt::sleep)); errors of
    /// [`readable`](Async::readable).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::{UnixListener, UnixStream};
    /// use fdloop::rt::Async;
    /// let path = std::env::temp_dir().join(format!("fdloop-doc-acc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = UnixListener::bind(&path)?;
    /// let to = path.clone();
    /// fdloop::rt::block_on(async move {
    ///     let l = Async::new(l)?;
    ///     let _c = UnixStream::connect(to)?;
    ///     let (_s, _peer) = l.accept().await?;
    ///     Ok::<_, std::io::Error>(())
    /// })??;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(Async<UnixStream>, UnixSocketAddr)> {
        let (s, addr) = self.read_with(|l| sys::net::accept_unix(l)).await?;
        Ok((Async::stream(self.reg.reactor().clone(), s), addr))
    }

    /// The connections as a stream (never ends; errors are items, as for
    /// [`accept`](Async::<UnixListener>::accept)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::{UnixListener, UnixStream};
    /// use futures_util::StreamExt;
    /// use fdloop::rt::Async;
    /// let path = std::env::temp_dir().join(format!("fdloop-doc-inc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = UnixListener::bind(&path)?;
    /// let to = path.clone();
    /// fdloop::rt::block_on(async move {
    ///     let l = Async::new(l)?;
    ///     let _c = UnixStream::connect(to)?;
    ///     let s = l.incoming().next().await.unwrap()?;
    ///     Ok::<_, std::io::Error>(())
    /// })??;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn incoming(&self) -> UnixAccept<'_> {
        UnixAccept(self)
    }
}

/// One poll of the stream of a listener's connections: the next one as an
/// `Async` of the same loop (one `accept4`, non-blocking from the start).
fn poll_accept<L: AsFd, S: AsFd + From<OwnedFd>>(
    l: &Async<L>,
    cx: &mut Context<'_>,
) -> Poll<Option<io::Result<Async<S>>>> {
    l.reg
        .poll_op(Dir::Read, cx, || sys::net::accept_any(&l.io))
        .map(|r| Some(r.map(|s| Async::stream(l.reg.reactor().clone(), S::from(s)))))
}

/// The stream of [`Async::<UnixListener>::incoming`](Async::<UnixListener>::incoming).
///
/// # Examples
///
/// See [`Async::<UnixListener>::incoming`](Async::<UnixListener>::incoming).
#[must_use = "streams do nothing unless polled"]
pub struct UnixAccept<'a>(&'a Async<UnixListener>);

impl Stream for UnixAccept<'_> {
    type Item = io::Result<Async<UnixStream>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_accept(self.0, cx)
    }
}

impl fmt::Debug for UnixAccept<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnixAccept")
    }
}

/// The stream of [`Async::incoming`].
///
/// # Examples
///
/// See [`Async::incoming`].
#[must_use = "streams do nothing unless polled"]
pub struct Accept<'a>(&'a Async<TcpListener>);

impl Stream for Accept<'_> {
    type Item = io::Result<Async<TcpStream>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_accept(self.0, cx)
    }
}

impl fmt::Debug for Accept<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Accept")
    }
}
