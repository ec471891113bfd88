//! `socket(AF_UNIX, SOCK_DGRAM)` and `sendto(2)` on a unix address (a
//! filesystem path or an abstract-namespace name): what the systemd notify
//! protocol needs.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType};

pub use rustix::net::SocketAddrUnix;

use super::res;

/// `socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)`: an
/// unbound datagram socket. `EMFILE`/`ENFILE` when out of descriptors,
/// `EAFNOSUPPORT`/`EPERM` where a sandbox refuses unix sockets.
pub fn socket() -> io::Result<OwnedFd> {
    res(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    ))
}

/// The address of a socket bound at filesystem `path`. `ENAMETOOLONG` when
/// the path does not fit `sun_path` (108 bytes with its NUL), `EINVAL` when
/// it contains a NUL byte.
pub fn path_addr(path: &Path) -> io::Result<SocketAddrUnix> {
    res(SocketAddrUnix::new(path))
}

/// The address of a socket bound to abstract-namespace `name` (the bytes
/// after the leading NUL). `EINVAL` when it does not fit `sun_path`.
pub fn abstract_addr(name: &[u8]) -> io::Result<SocketAddrUnix> {
    res(SocketAddrUnix::new_abstract_name(name))
}

/// One `sendto(fd, buf, MSG_NOSIGNAL | MSG_DONTWAIT, addr)`: the whole of
/// `buf` as one datagram, or an error. `EAGAIN` when the receiver's queue
/// is full (the datagram is dropped, nothing blocks), `ECONNREFUSED` when
/// no socket is bound at `addr` any more, `ENOENT` when no file exists at
/// a path address, `EMSGSIZE` for a datagram over the socket's send buffer,
/// `EINTR` if a signal interrupted the call.
pub fn send_to(fd: impl AsFd, buf: &[u8], addr: &SocketAddrUnix) -> io::Result<usize> {
    res(rustix::net::sendto(
        fd,
        buf,
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        addr,
    ))
}
