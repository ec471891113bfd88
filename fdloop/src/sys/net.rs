//! Stream sockets made for a non-blocking `connect`, and accepted
//! non-blocking in one call: the system calls behind
//! `rt::Async::<TcpStream>::connect`, `rt::Async::<UnixStream>::connect`
//! and the listeners' `accept`/`incoming`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{SocketAddr as UnixSocketAddr, UnixStream};
use std::path::Path;
use std::sync::OnceLock;

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::res;

/// `socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)`.
/// `EMFILE`/`ENFILE` when out of descriptors, `EAFNOSUPPORT` for a family
/// the kernel lacks (IPv6 disabled).
pub fn stream_socket(family: AddressFamily) -> io::Result<OwnedFd> {
    res(rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    ))
}

/// The address family of `addr`.
pub fn family_of(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    }
}

/// One `connect(2)` of a non-blocking socket to `addr`. `Ok(true)`:
/// connected; `Ok(false)`: under way (`EINPROGRESS`, or `EINTR`, after
/// which the connection goes on in the background as well): wait until the
/// socket is writable, then ask [`take_error`]. Other errors as they came
/// (`ECONNREFUSED`, `ENETUNREACH`, ...).
pub fn connect_start(fd: impl AsFd, addr: &SocketAddr) -> io::Result<bool> {
    match rustix::net::connect(fd, addr) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::INPROGRESS | rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(super::err(e)),
    }
}

/// One `connect(2)` of a non-blocking `AF_UNIX` stream socket to the
/// socket file at `path`. Such a connect never stays under way: it is made
/// or it fails — `ECONNREFUSED` when nothing listens, `ENOENT` when
/// nothing is at `path`, `EAGAIN` when the listener's backlog is full (the
/// connection was not queued). `EINVAL`-kind `InvalidInput` for a path too
/// long for `sun_path`.
pub fn connect_unix(fd: impl AsFd, path: &Path) -> io::Result<()> {
    let addr = res(SocketAddrUnix::new(path))?;
    res(rustix::net::connect(fd, &addr))
}

/// One `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` on a listening IPv4/IPv6
/// socket: the new connection, non-blocking already, and its peer's
/// address. `EAGAIN` when none is pending, `EMFILE`/`ENFILE` when out of
/// descriptors (the connection stays queued), `ECONNABORTED`, `EINTR`.
pub fn accept_inet(fd: impl AsFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let (s, addr) = res(rustix::net::acceptfrom_with(
        fd,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
    ))?;
    // A TCP listener's peer always has an IPv4/IPv6 address.
    let addr = addr.ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
    let addr = SocketAddr::try_from(addr).map_err(super::err)?;
    Ok((s, addr))
}

/// One `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`, the peer's address not
/// asked for. Errors as [`accept_inet`].
pub fn accept_any(fd: impl AsFd) -> io::Result<OwnedFd> {
    res(rustix::net::accept_with(
        fd,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
    ))
}

/// One `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` on a listening `AF_UNIX`
/// stream socket: the new connection, non-blocking already, and its peer's
/// address as std's type. An unnamed peer (the usual client, which never
/// bound; `accept4` returns only the family) gets a copy of the first
/// unnamed address this process saw — std's type has no constructor for
/// one, so the first such accept asks the kernel (`getpeername` on the new
/// connection: no descriptor is needed). A peer bound to a path or an
/// abstract name is asked for with `getpeername` every time (std parses
/// it; rustix's parser asserts on a path that fills `sun_path`). Errors as
/// [`accept_inet`]; should that `getpeername` fail, its error, the
/// connection closed.
pub fn accept_unix(fd: impl AsFd) -> io::Result<(UnixStream, UnixSocketAddr)> {
    let (s, addr) = res(rustix::net::acceptfrom_with(
        fd,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
    ))?;
    let s = UnixStream::from(s);
    let unnamed = addr.is_some_and(|a| {
        a.address_family() == AddressFamily::UNIX
            && a.addr_len() as usize == std::mem::size_of::<libc::sa_family_t>()
    });
    let addr = if unnamed {
        unnamed_peer(&s)?
    } else {
        s.peer_addr()?
    };
    Ok((s, addr))
}

/// An unnamed `AF_UNIX` address in std's type, which has no constructor
/// for one: `s`'s peer's (unnamed) address the first time, a copy after.
fn unnamed_peer(s: &UnixStream) -> io::Result<UnixSocketAddr> {
    static UNNAMED: OnceLock<UnixSocketAddr> = OnceLock::new();
    if let Some(a) = UNNAMED.get() {
        return Ok(a.clone());
    }
    let a = s.peer_addr()?;
    if a.is_unnamed() {
        let _ = UNNAMED.set(a.clone());
    }
    Ok(a)
}

/// `getsockopt(SO_ERROR)`: the error a background `connect` ended with
/// (`Err`), or `Ok(())`. Reading it clears it.
pub fn take_error(fd: impl AsFd) -> io::Result<()> {
    res(res(rustix::net::sockopt::socket_error(fd))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_to_a_listener_is_made_or_under_way_and_ends_without_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let s = stream_socket(family_of(&addr)).unwrap();
        let done = connect_start(&s, &addr).unwrap();
        if !done {
            // Loopback: the handshake completes without this thread's help.
            let mut fds = [rustix::event::PollFd::new(
                &s,
                rustix::event::PollFlags::OUT,
            )];
            let t = rustix::event::Timespec {
                tv_sec: 5,
                tv_nsec: 0,
            };
            assert_eq!(rustix::event::poll(&mut fds, Some(&t)).unwrap(), 1);
        }
        take_error(&s).unwrap();
        let (_peer, _) = l.accept().unwrap();
    }

    #[test]
    fn a_unix_connect_to_nothing_is_enoent_with_its_errno() {
        let dir = std::env::temp_dir().join(format!("fdloop-net-{}", std::process::id()));
        let s = stream_socket(AddressFamily::UNIX).unwrap();
        let e = connect_unix(&s, &dir.join("absent.sock")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
}
