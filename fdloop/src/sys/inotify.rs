//! `inotify(7)`: the instance, its watches, and decoding the records that
//! `read(2)` returns.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

use super::res;

/// `inotify_init1(IN_CLOEXEC | IN_NONBLOCK)` (Linux ≥ 2.6.27). `EMFILE`
/// also when the user's `max_user_instances` is reached; `ENFILE`, `ENOMEM`.
pub fn init() -> io::Result<OwnedFd> {
    res(inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK))
}

/// `inotify_add_watch(fd, path, mask)`: the watch descriptor. Adding a path
/// whose inode is already watched returns the same descriptor and replaces
/// its mask (or adds to it with `IN_MASK_ADD`). `ENOENT` (no such path),
/// `EACCES`, `ENOTDIR` (with `IN_ONLYDIR`), `EEXIST` (with `IN_MASK_CREATE`),
/// `EINVAL` (no event bit in `mask`), `ENOSPC` (the user's
/// `max_user_watches` is reached).
pub fn add_watch(fd: impl AsFd, path: &Path, mask: u32) -> io::Result<i32> {
    res(inotify::add_watch(
        fd,
        path,
        WatchFlags::from_bits_retain(mask),
    ))
}

/// `inotify_rm_watch(fd, wd)`. The kernel then queues an `IN_IGNORED`
/// record for `wd`. `EINVAL` if `wd` is not a live watch of this instance.
pub fn rm_watch(fd: impl AsFd, wd: i32) -> io::Result<()> {
    res(inotify::remove_watch(fd, wd))
}

/// The fixed part of a record: `struct inotify_event` without its name.
pub const HEADER: usize = 16;
/// The largest record: header plus `NAME_MAX + 1` bytes of name. A read
/// buffer must hold at least one, or `read(2)` fails with `EINVAL`.
pub const MAX_RECORD: usize = HEADER + 256;

/// One record as the kernel wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The watch descriptor; -1 for `IN_Q_OVERFLOW`.
    pub wd: i32,
    /// `IN_*` bits.
    pub mask: u32,
    /// Links the two halves of a rename; 0 otherwise.
    pub cookie: u32,
    /// The name inside a watched directory, without its NUL padding; empty
    /// when the event is about the watched object itself.
    pub name: &'a [u8],
}

/// Decodes the records in `buf` (the bytes one `read(2)` returned). Stops
/// at a truncated record, which the kernel never produces.
pub fn records(buf: &[u8]) -> impl Iterator<Item = Record<'_>> + '_ {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let header = rest.get(..HEADER)?;
        let word = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&header[i * 4..i * 4 + 4]);
            u32::from_ne_bytes(b)
        };
        let len = usize::try_from(word(3)).ok()?;
        let raw_name = rest.get(HEADER..HEADER.checked_add(len)?)?;
        let name_len = raw_name.iter().position(|&b| b == 0).unwrap_or(len);
        let rec = Record {
            wd: word(0) as i32,
            mask: word(1),
            cookie: word(2),
            name: &raw_name[..name_len],
        };
        rest = &rest[HEADER + len..];
        Some(rec)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(wd: i32, mask: u32, cookie: u32, name: &[u8], pad: usize) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&wd.to_ne_bytes());
        v.extend_from_slice(&mask.to_ne_bytes());
        v.extend_from_slice(&cookie.to_ne_bytes());
        v.extend_from_slice(&((name.len() + pad) as u32).to_ne_bytes());
        v.extend_from_slice(name);
        v.extend(std::iter::repeat_n(0u8, pad));
        v
    }

    #[test]
    fn decodes_records_and_strips_padding() {
        let mut buf = record(1, 0x100, 0, b"file.txt", 8);
        buf.extend(record(-1, 0x4000, 0, b"", 0));
        buf.extend(record(2, 0x40, 77, b"a", 3));
        let v: Vec<_> = records(&buf).collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].name, b"file.txt");
        assert_eq!((v[1].wd, v[1].mask, v[1].name), (-1, 0x4000, &b""[..]));
        assert_eq!((v[2].cookie, v[2].name), (77, &b"a"[..]));
    }

    #[test]
    fn truncated_record_ends_the_iteration() {
        let buf = record(1, 2, 0, b"name", 4);
        assert_eq!(records(&buf[..buf.len() - 1]).count(), 0);
        assert_eq!(records(&buf[..10]).count(), 0);
    }
}
