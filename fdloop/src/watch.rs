//! File-system watches as a loop source: [`Watch`], over `inotify(7)`.
//!
//! One [`Watch`] is one inotify instance (close-on-exec, non-blocking)
//! holding any number of watched paths. Each change becomes a
//! [`WatchEvent`] naming the watch, the watched path, the entry's name
//! inside a watched directory, and what happened ([`EventMask`]).
//!
//! inotify's own limits show through, as events rather than errors:
//!
//! * The kernel queue holds at most `/proc/sys/fs/inotify/max_queued_events`
//!   events; past that it drops the rest and queues one
//!   [`EventMask::Q_OVERFLOW`] event. After an overflow, rescan what you
//!   watch.
//! * When a watched object goes away (deleted, its file system unmounted)
//!   or a watch is `IN_ONESHOT`, the kernel removes the watch and queues
//!   [`EventMask::IGNORED`]; [`Watch`] then forgets the watch too.
//! * Identical consecutive events (same watch, mask, cookie and name) are
//!   merged by the kernel into one.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::ContextError;
use crate::event_loop::single_readable_fd;
use crate::event_loop::{Action, AfterPanic, Readiness, Registrar, Source};
use crate::sys;

const IN_ACCESS: u32 = 0x0000_0001;
const IN_MODIFY: u32 = 0x0000_0002;
const IN_ATTRIB: u32 = 0x0000_0004;
const IN_CLOSE_WRITE: u32 = 0x0000_0008;
const IN_CLOSE_NOWRITE: u32 = 0x0000_0010;
const IN_OPEN: u32 = 0x0000_0020;
const IN_MOVED_FROM: u32 = 0x0000_0040;
const IN_MOVED_TO: u32 = 0x0000_0080;
const IN_CREATE: u32 = 0x0000_0100;
const IN_DELETE: u32 = 0x0000_0200;
const IN_DELETE_SELF: u32 = 0x0000_0400;
const IN_MOVE_SELF: u32 = 0x0000_0800;
const IN_UNMOUNT: u32 = 0x0000_2000;
const IN_Q_OVERFLOW: u32 = 0x0000_4000;
const IN_IGNORED: u32 = 0x0000_8000;
const IN_ONLYDIR: u32 = 0x0100_0000;
const IN_DONT_FOLLOW: u32 = 0x0200_0000;
const IN_EXCL_UNLINK: u32 = 0x0400_0000;
const IN_MASK_CREATE: u32 = 0x1000_0000;
const IN_MASK_ADD: u32 = 0x2000_0000;
const IN_ISDIR: u32 = 0x4000_0000;
const IN_ONESHOT: u32 = 0x8000_0000;
const IN_ALL_EVENTS: u32 = 0x0000_0fff;

/// Bytes read from the kernel per wake-up: room for about 2000 events with
/// short names (each is 16 bytes plus its name, padded), or 120 with names
/// of the maximal 255 bytes.
const BUF_SIZE: usize = 32 * 1024;

/// Writes the names of the bits of `bits` found in `names`, `|`-separated,
/// and any unnamed remainder in hex.
fn fmt_bits(f: &mut fmt::Formatter<'_>, bits: u32, names: &[(u32, &str)]) -> fmt::Result {
    let mut rest = bits;
    let mut first = true;
    for &(bit, name) in names {
        if bit.count_ones() == 1 && rest & bit != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
            rest &= !bit;
            first = false;
        }
    }
    if rest != 0 || first {
        if !first {
            f.write_str(" | ")?;
        }
        write!(f, "{rest:#x}")?;
    }
    Ok(())
}

const EVENT_NAMES: [(u32, &str); 12] = [
    (IN_ACCESS, "ACCESS"),
    (IN_MODIFY, "MODIFY"),
    (IN_ATTRIB, "ATTRIB"),
    (IN_CLOSE_WRITE, "CLOSE_WRITE"),
    (IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"),
    (IN_OPEN, "OPEN"),
    (IN_MOVED_FROM, "MOVED_FROM"),
    (IN_MOVED_TO, "MOVED_TO"),
    (IN_CREATE, "CREATE"),
    (IN_DELETE, "DELETE"),
    (IN_DELETE_SELF, "DELETE_SELF"),
    (IN_MOVE_SELF, "MOVE_SELF"),
];

/// What a watch asks to hear about, and how it is set up (`IN_*` flags for
/// `inotify_add_watch`). Combine with `|`.
///
/// # Examples
///
/// ```
/// use fdloop::watch::WatchMask;
/// let m = WatchMask::CREATE | WatchMask::DELETE;
/// assert!(m.contains(WatchMask::CREATE));
/// assert!(!m.contains(WatchMask::MODIFY));
/// assert!(WatchMask::ALL.contains(m));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WatchMask(u32);

impl WatchMask {
    /// A file was read (`IN_ACCESS`).
    pub const ACCESS: WatchMask = WatchMask(IN_ACCESS);
    /// A file was written or truncated (`IN_MODIFY`).
    pub const MODIFY: WatchMask = WatchMask(IN_MODIFY);
    /// Metadata changed: permissions, timestamps, owner, links, xattrs
    /// (`IN_ATTRIB`).
    pub const ATTRIB: WatchMask = WatchMask(IN_ATTRIB);
    /// A file opened for writing was closed (`IN_CLOSE_WRITE`).
    pub const CLOSE_WRITE: WatchMask = WatchMask(IN_CLOSE_WRITE);
    /// A file not opened for writing was closed (`IN_CLOSE_NOWRITE`).
    pub const CLOSE_NOWRITE: WatchMask = WatchMask(IN_CLOSE_NOWRITE);
    /// Either kind of close.
    pub const CLOSE: WatchMask = WatchMask(IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
    /// A file or directory was opened (`IN_OPEN`).
    pub const OPEN: WatchMask = WatchMask(IN_OPEN);
    /// An entry was renamed away from a watched directory (`IN_MOVED_FROM`).
    pub const MOVED_FROM: WatchMask = WatchMask(IN_MOVED_FROM);
    /// An entry was renamed into a watched directory (`IN_MOVED_TO`).
    pub const MOVED_TO: WatchMask = WatchMask(IN_MOVED_TO);
    /// Both halves of a rename.
    pub const MOVE: WatchMask = WatchMask(IN_MOVED_FROM | IN_MOVED_TO);
    /// An entry was created in a watched directory (`IN_CREATE`).
    pub const CREATE: WatchMask = WatchMask(IN_CREATE);
    /// An entry was deleted from a watched directory (`IN_DELETE`).
    pub const DELETE: WatchMask = WatchMask(IN_DELETE);
    /// The watched object itself was deleted (`IN_DELETE_SELF`).
    pub const DELETE_SELF: WatchMask = WatchMask(IN_DELETE_SELF);
    /// The watched object itself was moved (`IN_MOVE_SELF`).
    pub const MOVE_SELF: WatchMask = WatchMask(IN_MOVE_SELF);
    /// Every event above (`IN_ALL_EVENTS`).
    pub const ALL: WatchMask = WatchMask(IN_ALL_EVENTS);
    /// Fail with `ENOTDIR` unless the path is a directory (`IN_ONLYDIR`).
    pub const ONLYDIR: WatchMask = WatchMask(IN_ONLYDIR);
    /// Watch a symbolic link itself, not its target (`IN_DONT_FOLLOW`).
    pub const DONT_FOLLOW: WatchMask = WatchMask(IN_DONT_FOLLOW);
    /// Stop reporting entries once they are unlinked from a watched
    /// directory (`IN_EXCL_UNLINK`).
    pub const EXCL_UNLINK: WatchMask = WatchMask(IN_EXCL_UNLINK);
    /// Add to the mask of an existing watch on the same object instead of
    /// replacing it (`IN_MASK_ADD`).
    pub const MASK_ADD: WatchMask = WatchMask(IN_MASK_ADD);
    /// Fail with `EEXIST` if the object is already watched (`IN_MASK_CREATE`,
    /// Linux ≥ 4.18).
    pub const MASK_CREATE: WatchMask = WatchMask(IN_MASK_CREATE);
    /// Report one event, then remove the watch (`IN_ONESHOT`; an
    /// [`EventMask::IGNORED`] follows).
    pub const ONESHOT: WatchMask = WatchMask(IN_ONESHOT);

    /// No bits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(fdloop::watch::WatchMask::empty().bits(), 0);
    /// ```
    pub const fn empty() -> WatchMask {
        WatchMask(0)
    }

    /// The raw `IN_*` bits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(fdloop::watch::WatchMask::CREATE.bits(), 0x100);
    /// ```
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// A mask from raw `IN_*` bits, as they are (unknown bits included; the
    /// kernel rejects what it does not know with `EINVAL`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::watch::WatchMask;
    /// assert_eq!(WatchMask::from_bits(0x200), WatchMask::DELETE);
    /// ```
    pub const fn from_bits(bits: u32) -> WatchMask {
        WatchMask(bits)
    }

    /// Whether every bit of `other` is set in `self`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::watch::WatchMask;
    /// assert!(WatchMask::MOVE.contains(WatchMask::MOVED_TO));
    /// ```
    pub const fn contains(self, other: WatchMask) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for WatchMask {
    type Output = WatchMask;
    fn bitor(self, rhs: WatchMask) -> WatchMask {
        WatchMask(self.0 | rhs.0)
    }
}

impl BitOrAssign for WatchMask {
    fn bitor_assign(&mut self, rhs: WatchMask) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for WatchMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WatchMask(")?;
        fmt_bits(
            f,
            self.0,
            &[
                EVENT_NAMES.as_slice(),
                &[
                    (IN_ONLYDIR, "ONLYDIR"),
                    (IN_DONT_FOLLOW, "DONT_FOLLOW"),
                    (IN_EXCL_UNLINK, "EXCL_UNLINK"),
                    (IN_MASK_ADD, "MASK_ADD"),
                    (IN_MASK_CREATE, "MASK_CREATE"),
                    (IN_ONESHOT, "ONESHOT"),
                ],
            ]
            .concat(),
        )?;
        f.write_str(")")
    }
}

/// What happened, as the kernel reported it: the event bits of
/// [`WatchMask`] plus a few that only appear in events.
///
/// # Examples
///
/// ```
/// use fdloop::watch::EventMask;
/// let m = EventMask::CREATE | EventMask::ISDIR;
/// assert!(m.contains(EventMask::CREATE) && m.is_dir());
/// assert!(!m.queue_overflow());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventMask(u32);

impl EventMask {
    /// See [`WatchMask::ACCESS`].
    pub const ACCESS: EventMask = EventMask(IN_ACCESS);
    /// See [`WatchMask::MODIFY`].
    pub const MODIFY: EventMask = EventMask(IN_MODIFY);
    /// See [`WatchMask::ATTRIB`].
    pub const ATTRIB: EventMask = EventMask(IN_ATTRIB);
    /// See [`WatchMask::CLOSE_WRITE`].
    pub const CLOSE_WRITE: EventMask = EventMask(IN_CLOSE_WRITE);
    /// See [`WatchMask::CLOSE_NOWRITE`].
    pub const CLOSE_NOWRITE: EventMask = EventMask(IN_CLOSE_NOWRITE);
    /// See [`WatchMask::OPEN`].
    pub const OPEN: EventMask = EventMask(IN_OPEN);
    /// See [`WatchMask::MOVED_FROM`].
    pub const MOVED_FROM: EventMask = EventMask(IN_MOVED_FROM);
    /// See [`WatchMask::MOVED_TO`].
    pub const MOVED_TO: EventMask = EventMask(IN_MOVED_TO);
    /// See [`WatchMask::CREATE`].
    pub const CREATE: EventMask = EventMask(IN_CREATE);
    /// See [`WatchMask::DELETE`].
    pub const DELETE: EventMask = EventMask(IN_DELETE);
    /// See [`WatchMask::DELETE_SELF`].
    pub const DELETE_SELF: EventMask = EventMask(IN_DELETE_SELF);
    /// See [`WatchMask::MOVE_SELF`].
    pub const MOVE_SELF: EventMask = EventMask(IN_MOVE_SELF);
    /// The file system holding the watched object was unmounted
    /// (`IN_UNMOUNT`); an [`IGNORED`](EventMask::IGNORED) follows.
    pub const UNMOUNT: EventMask = EventMask(IN_UNMOUNT);
    /// The kernel queue overflowed and events were lost (`IN_Q_OVERFLOW`).
    pub const Q_OVERFLOW: EventMask = EventMask(IN_Q_OVERFLOW);
    /// The watch was removed, by the kernel or by [`Watch::remove`]
    /// (`IN_IGNORED`).
    pub const IGNORED: EventMask = EventMask(IN_IGNORED);
    /// The entry is a directory (`IN_ISDIR`).
    pub const ISDIR: EventMask = EventMask(IN_ISDIR);

    /// The raw `IN_*` bits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(fdloop::watch::EventMask::IGNORED.bits(), 0x8000);
    /// ```
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set in `self`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::watch::EventMask;
    /// assert!((EventMask::DELETE | EventMask::ISDIR).contains(EventMask::DELETE));
    /// ```
    pub const fn contains(self, other: EventMask) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set in `self`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::watch::{EventMask, WatchMask};
    /// assert!(EventMask::MOVED_TO.intersects(WatchMask::MOVE.into()));
    /// ```
    pub const fn intersects(self, other: EventMask) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether the entry is a directory (`IN_ISDIR`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(fdloop::watch::EventMask::ISDIR.is_dir());
    /// ```
    pub const fn is_dir(self) -> bool {
        self.0 & IN_ISDIR != 0
    }

    /// Whether this is a queue overflow (`IN_Q_OVERFLOW`): events were lost.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(fdloop::watch::EventMask::Q_OVERFLOW.queue_overflow());
    /// ```
    pub const fn queue_overflow(self) -> bool {
        self.0 & IN_Q_OVERFLOW != 0
    }

    /// Whether the watch is gone (`IN_IGNORED`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(fdloop::watch::EventMask::IGNORED.ignored());
    /// ```
    pub const fn ignored(self) -> bool {
        self.0 & IN_IGNORED != 0
    }

    /// Whether the watched object's file system was unmounted (`IN_UNMOUNT`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!fdloop::watch::EventMask::CREATE.unmounted());
    /// ```
    pub const fn unmounted(self) -> bool {
        self.0 & IN_UNMOUNT != 0
    }
}

impl BitOr for EventMask {
    type Output = EventMask;
    fn bitor(self, rhs: EventMask) -> EventMask {
        EventMask(self.0 | rhs.0)
    }
}

impl From<WatchMask> for EventMask {
    /// The event bits of a watch mask (its set-up flags dropped).
    fn from(m: WatchMask) -> EventMask {
        EventMask(m.0 & IN_ALL_EVENTS)
    }
}

impl fmt::Debug for EventMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventMask(")?;
        fmt_bits(
            f,
            self.0,
            &[
                EVENT_NAMES.as_slice(),
                &[
                    (IN_UNMOUNT, "UNMOUNT"),
                    (IN_Q_OVERFLOW, "Q_OVERFLOW"),
                    (IN_IGNORED, "IGNORED"),
                    (IN_ISDIR, "ISDIR"),
                ],
            ]
            .concat(),
        )?;
        f.write_str(")")
    }
}

/// Names one watch of a [`Watch`] (the kernel's watch descriptor).
///
/// # Examples
///
/// ```
/// let mut w = fdloop::watch::Watch::new()?;
/// let id = w.add(std::env::temp_dir(), fdloop::watch::WatchMask::CREATE)?;
/// assert!(id.as_raw() > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(i32);

impl WatchId {
    /// The id carried by [`EventMask::Q_OVERFLOW`] events, which belong to
    /// no watch (the kernel's `wd` of -1).
    pub const NONE: WatchId = WatchId(-1);

    /// The kernel's watch descriptor number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(fdloop::watch::WatchId::NONE.as_raw(), -1);
    /// ```
    pub const fn as_raw(self) -> i32 {
        self.0
    }
}

impl fmt::Debug for WatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WatchId({})", self.0)
    }
}

/// One change, decoded.
///
/// # Examples
///
/// ```
/// use fdloop::watch::{Watch, WatchMask};
///
/// let dir = std::env::temp_dir().join(format!("fdloop-doc-event-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let mut w = Watch::new()?;
/// let id = w.add(&dir, WatchMask::CREATE)?;
/// std::fs::write(dir.join("hello"), b"")?;
/// let ev = w.wait(None)?.remove(0);
/// assert_eq!((ev.id, ev.path.as_path()), (id, dir.as_path()));
/// assert_eq!(ev.name.as_deref(), Some("hello".as_ref()));
/// assert_eq!(ev.full_path(), dir.join("hello"));
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The watch it belongs to; [`WatchId::NONE`] for a queue overflow.
    pub id: WatchId,
    /// The watched path, as given to [`Watch::add`]; empty for a queue
    /// overflow.
    pub path: PathBuf,
    /// The entry's name when the watched path is a directory and the event
    /// is about something inside it; `None` when it is about the watched
    /// object itself.
    pub name: Option<OsString>,
    /// What happened.
    pub mask: EventMask,
    /// Equal and non-zero on the [`MOVED_FROM`](EventMask::MOVED_FROM) and
    /// [`MOVED_TO`](EventMask::MOVED_TO) halves of one rename; 0 otherwise.
    pub cookie: u32,
}

impl WatchEvent {
    /// `path` joined with `name` (just `path` when there is no name).
    ///
    /// # Examples
    ///
    /// See [`WatchEvent`].
    pub fn full_path(&self) -> PathBuf {
        match &self.name {
            Some(n) => self.path.join(n),
            None => self.path.clone(),
        }
    }
}

/// An inotify instance watching any number of paths: a loop [`Source`]
/// delivering [`WatchEvent`]s, also usable on its own
/// ([`read_events`](Watch::read_events), [`wait`](Watch::wait), or its
/// descriptor ([`AsFd`]) in your own poll set).
///
/// In a loop, each wake-up reads once from the kernel (up to 32 KiB: about
/// 2000 events with short names) and delivers those events; whatever is
/// still queued keeps the descriptor readable and comes next iteration, so
/// a flood of changes cannot starve other sources. The callback's metadata
/// is the `Watch` itself, so it can add or remove watches (to follow new
/// subdirectories, say).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::watch::{EventMask, Watch, WatchEvent, WatchMask};
/// use fdloop::{Action, EventLoop};
///
/// let dir = std::env::temp_dir().join(format!("fdloop-doc-watch-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let mut w = Watch::new()?;
/// w.add(&dir, WatchMask::CREATE | WatchMask::DELETE)?;
/// let mut ev = EventLoop::new()?;
/// ev.insert(w, |e: WatchEvent, _w: &mut Watch, seen: &mut Vec<WatchEvent>| {
///     seen.push(e);
///     Action::Continue
/// })?;
/// std::fs::write(dir.join("a"), b"")?;
/// std::fs::remove_file(dir.join("a"))?;
/// let mut seen = Vec::new();
/// while seen.len() < 2 {
///     ev.run_once(&mut seen, Some(Duration::from_secs(5)))?;
/// }
/// assert!(seen[0].mask.contains(EventMask::CREATE));
/// assert!(seen[1].mask.contains(EventMask::DELETE));
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Watch {
    fd: OwnedFd,
    watches: HashMap<i32, PathBuf>,
    buf: Vec<u8>,
    /// Events read but not yet delivered (a callback stopped the batch).
    pending: VecDeque<WatchEvent>,
    /// The most events one loop iteration delivers.
    batch: usize,
}

/// The most events one loop iteration delivers unless
/// [`Watch::set_batch_limit`] says otherwise.
pub const DEFAULT_BATCH: usize = 64;

impl Watch {
    /// A new inotify instance, close-on-exec and non-blocking, watching
    /// nothing yet.
    ///
    /// # Errors
    ///
    /// `EMFILE` when the process is out of descriptors *or* the user has
    /// `/proc/sys/fs/inotify/max_user_instances` instances already;
    /// `ENFILE`, `ENOMEM`; `ENOSYS` where inotify is compiled out or filtered.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = fdloop::watch::Watch::new()?;
    /// assert!(w.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Watch> {
        Ok(Watch {
            fd: sys::inotify::init()?,
            watches: HashMap::new(),
            buf: vec![0; BUF_SIZE.max(sys::inotify::MAX_RECORD)],
            pending: VecDeque::new(),
            batch: DEFAULT_BATCH,
        })
    }

    /// Sets how many events the loop callback gets per iteration before
    /// other sources run (at least 1; default [`DEFAULT_BATCH`]). One read
    /// can bring hundreds; the rest wait in the watch and are delivered on
    /// the next iteration, with no wake-up system call
    /// ([`Registrar::dispatch_again`](crate::Registrar::dispatch_again)).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut w = fdloop::watch::Watch::new()?;
    /// w.set_batch_limit(16);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_batch_limit(&mut self, n: usize) {
        self.batch = n.max(1);
    }

    /// Starts watching `path` for the events in `mask` (a directory: also
    /// the entries inside it, one level deep). Adding a path whose file is
    /// already watched (the same inode, by any name) returns the same
    /// [`WatchId`] and replaces its mask, unless `mask` has
    /// [`WatchMask::MASK_ADD`]; the id then reports the new path.
    ///
    /// # Errors
    ///
    /// The kernel's `errno`, with the path in the message:
    /// [`NotFound`](io::ErrorKind::NotFound) (`ENOENT`) for a missing path,
    /// `EACCES` without read permission, `ENOTDIR` with
    /// [`WatchMask::ONLYDIR`], `EEXIST` with [`WatchMask::MASK_CREATE`],
    /// `EINVAL` when `mask` has no event bit, `ENOSPC` when the user's
    /// `/proc/sys/fs/inotify/max_user_watches` is reached. The original OS
    /// error is the error's [`source`](std::error::Error::source).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use fdloop::watch::{Watch, WatchMask};
    /// let mut w = Watch::new()?;
    /// let err = w.add("/no/such/path/here", WatchMask::ALL).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn add(&mut self, path: impl AsRef<Path>, mask: WatchMask) -> io::Result<WatchId> {
        let path = path.as_ref();
        let wd = sys::inotify::add_watch(&self.fd, path, mask.bits()).map_err(|e| {
            ContextError::wrap(e.kind(), format!("cannot watch {}", path.display()), e)
        })?;
        self.watches.insert(wd, path.to_path_buf());
        Ok(WatchId(wd))
    }

    /// Stops watching. Events of this watch still queued, and the
    /// [`EventMask::IGNORED`] event the kernel sends for the removal, are
    /// dropped rather than delivered.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `id` is not a live watch of this instance (never added,
    /// already removed, or removed by the kernel: see
    /// [`EventMask::IGNORED`]). The watch is forgotten in any case.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop::watch::{Watch, WatchMask};
    /// let mut w = Watch::new()?;
    /// let id = w.add(std::env::temp_dir(), WatchMask::CREATE)?;
    /// w.remove(id)?;
    /// assert!(w.is_empty());
    /// assert!(w.remove(id).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn remove(&mut self, id: WatchId) -> io::Result<()> {
        self.watches.remove(&id.0);
        self.pending.retain(|e| e.id != id);
        sys::inotify::rm_watch(&self.fd, id.0)
    }

    /// How many watches are live.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(fdloop::watch::Watch::new()?.len(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.watches.len()
    }

    /// Whether no watch is live.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(fdloop::watch::Watch::new()?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }

    /// The path a live watch was added with.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut w = fdloop::watch::Watch::new()?;
    /// let tmp = std::env::temp_dir();
    /// let id = w.add(&tmp, fdloop::watch::WatchMask::CREATE)?;
    /// assert_eq!(w.path(id), Some(tmp.as_path()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn path(&self, id: WatchId) -> Option<&Path> {
        self.watches.get(&id.0).map(PathBuf::as_path)
    }

    /// One batch of events without blocking: those left over from an
    /// interrupted batch, or else what one `read(2)` returns (up to 32 KiB).
    /// An empty vector means nothing is queued. Call it until it returns an
    /// empty vector to drain the queue.
    ///
    /// An [`EventMask::IGNORED`] event removes its watch from this
    /// instance's table (after being decoded, so it still carries the path).
    ///
    /// # Errors
    ///
    /// `read(2)` errors other than `EAGAIN` (which means "nothing") and
    /// `EINTR` (retried).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut w = fdloop::watch::Watch::new()?;
    /// assert!(w.read_events()?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_events(&mut self) -> io::Result<Vec<WatchEvent>> {
        if !self.pending.is_empty() {
            return Ok(self.pending.drain(..).collect());
        }
        let n = loop {
            match sys::fd::read(&self.fd, &mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        };
        let mut out = Vec::new();
        for rec in sys::inotify::records(&self.buf[..n]) {
            if let Some(ev) = decode(&mut self.watches, rec) {
                out.push(ev);
            }
        }
        Ok(out)
    }

    /// Blocks until events arrive or `timeout` passes (`None`: no limit),
    /// then returns one batch as [`read_events`](Watch::read_events) does.
    /// An empty vector means the timeout passed. Waits with `ppoll`.
    ///
    /// # Errors
    ///
    /// As [`read_events`](Watch::read_events); `ppoll` errors other than
    /// `EINTR` (retried with the time left).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut w = fdloop::watch::Watch::new()?;
    /// assert!(w.wait(Some(Duration::from_millis(1)))?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<Vec<WatchEvent>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let batch = self.read_events()?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            // `None`: no limit, or one too far away to represent.
            let remaining = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(batch);
                    }
                    Some(d - now)
                }
                None => None,
            };
            match sys::fd::poll_one(&self.fd, true, false, remaining) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Turns one kernel record into an event, updating the watch table; `None`
/// for records of watches this instance no longer knows (removed with
/// [`Watch::remove`]).
fn decode(
    watches: &mut HashMap<i32, PathBuf>,
    rec: sys::inotify::Record<'_>,
) -> Option<WatchEvent> {
    let mask = EventMask(rec.mask);
    let name = (!rec.name.is_empty()).then(|| OsString::from_vec(rec.name.to_vec()));
    if rec.wd == -1 || mask.queue_overflow() {
        return Some(WatchEvent {
            id: WatchId::NONE,
            path: PathBuf::new(),
            name,
            mask,
            cookie: rec.cookie,
        });
    }
    let path = if mask.ignored() {
        watches.remove(&rec.wd)?
    } else {
        watches.get(&rec.wd)?.clone()
    };
    Some(WatchEvent {
        id: WatchId(rec.wd),
        path,
        name,
        mask,
        cookie: rec.cookie,
    })
}

/// The loop source: each wake-up delivers one batch (see [`Watch`]). If the
/// callback returns anything but [`Action::Continue`], the rest of the
/// batch is kept and delivered first on the next wake-up (after a
/// [`Action::Disable`], that is when new events arrive; or call
/// [`Watch::read_events`]). If the callback panics, the rest of the batch is
/// delivered by the next `run_once`. An iteration delivers at most the
/// batch limit ([`Watch::set_batch_limit`]); the rest come on the next
/// iteration, after the other ready sources. While a batch is delivered, its
/// undelivered events are what [`Watch::read_events`] returns first.
impl Source for Watch {
    type Event = WatchEvent;
    type Metadata = Watch;

    single_readable_fd!(fd);

    fn process(
        &mut self,
        _ready: Readiness,
        _sub: u8,
        r: &mut Registrar<'_>,
        callback: &mut dyn FnMut(WatchEvent, &mut Watch) -> Action,
    ) -> io::Result<Action> {
        if self.pending.is_empty() {
            let batch = self.read_events()?;
            self.pending.extend(batch);
        }
        // The batch waits in `pending` while it is delivered, so whatever
        // ends the delivery early — an action other than `Continue`, or a
        // panic — leaves the rest there, delivered first next time.
        for _ in 0..self.batch {
            let Some(ev) = self.pending.pop_front() else {
                return Ok(Action::Continue);
            };
            match callback(ev, self) {
                Action::Continue => {}
                other => return Ok(other),
            }
        }
        if !self.pending.is_empty() {
            // The batch limit: the rest on the next iteration.
            r.dispatch_again();
        }
        Ok(Action::Continue)
    }

    /// The callback panicked: the rest of its batch is delivered by the
    /// next `run_once`, whether or not new events arrive.
    fn after_panic(&mut self, _r: &mut Registrar<'_>) -> AfterPanic {
        if self.pending.is_empty() {
            AfterPanic::Stay
        } else {
            AfterPanic::Redeliver
        }
    }
}

impl AsFd for Watch {
    /// The inotify descriptor: readable while events are queued.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("fd", &self.fd.as_raw_fd())
            .field("watches", &self.watches)
            .field("pending", &self.pending.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_debug_by_name() {
        let m = WatchMask::CREATE | WatchMask::ONLYDIR;
        assert_eq!(format!("{m:?}"), "WatchMask(CREATE | ONLYDIR)");
        let e = EventMask::DELETE | EventMask::ISDIR;
        assert_eq!(format!("{e:?}"), "EventMask(DELETE | ISDIR)");
        assert_eq!(format!("{:?}", EventMask::default()), "EventMask(0x0)");
    }

    #[test]
    fn decode_handles_overflow_ignored_and_unknown() {
        let mut table = HashMap::from([(3, PathBuf::from("/x"))]);
        let rec = |wd, mask, name: &'static [u8]| sys::inotify::Record {
            wd,
            mask,
            cookie: 0,
            name,
        };
        let ov = decode(&mut table, rec(-1, IN_Q_OVERFLOW, b"")).unwrap();
        assert_eq!((ov.id, ov.mask.queue_overflow()), (WatchId::NONE, true));
        let c = decode(&mut table, rec(3, IN_CREATE, b"f")).unwrap();
        assert_eq!(c.full_path(), PathBuf::from("/x/f"));
        assert!(decode(&mut table, rec(9, IN_CREATE, b"f")).is_none());
        let ig = decode(&mut table, rec(3, IN_IGNORED, b"")).unwrap();
        assert_eq!(ig.path, PathBuf::from("/x"));
        assert!(table.is_empty());
    }
}
