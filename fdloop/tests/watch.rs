//! watch::Watch: inotify events decoded with names, rename pairs, the
//! watched directory's own removal, queue overflow, errors, and the loop
//! source (bounded batches, watches added from the callback).

mod util;

use std::ffi::OsStr;
use std::fs;
use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use fdloop::watch::{EventMask, Watch, WatchEvent, WatchId, WatchMask};
use fdloop::{Action, EventLoop};
use util::TempDir;

/// Reads until `n` events arrived or 5 s passed.
fn collect(w: &mut Watch, n: usize) -> Vec<WatchEvent> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        out.extend(w.wait(Some(left)).unwrap());
    }
    out
}

fn name(e: &WatchEvent) -> Option<&str> {
    e.name.as_deref().and_then(OsStr::to_str)
}

#[test]
fn create_modify_delete_carry_names() {
    let dir = TempDir::new("watch-cmd");
    let mut w = Watch::new().unwrap();
    let id = w
        .add(
            dir.path(),
            WatchMask::CREATE | WatchMask::MODIFY | WatchMask::DELETE | WatchMask::CLOSE_WRITE,
        )
        .unwrap();
    assert_eq!(w.path(id), Some(dir.path()));
    assert!(util::is_cloexec(&w) && util::is_nonblocking(&w));

    let file = dir.path().join("a.txt");
    let mut f = fs::File::create(&file).unwrap();
    f.write_all(b"hello").unwrap();
    drop(f);
    fs::remove_file(&file).unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();

    let evs = collect(&mut w, 5);
    let got: Vec<_> = evs.iter().map(|e| (e.mask, name(e))).collect();
    assert_eq!(
        got,
        vec![
            (EventMask::CREATE, Some("a.txt")),
            (EventMask::MODIFY, Some("a.txt")),
            (EventMask::CLOSE_WRITE, Some("a.txt")),
            (EventMask::DELETE, Some("a.txt")),
            (EventMask::CREATE | EventMask::ISDIR, Some("sub")),
        ]
    );
    for e in &evs {
        assert_eq!((e.id, e.path.as_path(), e.cookie), (id, dir.path(), 0));
    }
    assert!(evs[4].mask.is_dir());
    assert_eq!(evs[0].full_path(), file);
    assert!(w.read_events().unwrap().is_empty());
}

#[test]
fn rename_gives_a_moved_pair_with_one_cookie() {
    let dir = TempDir::new("watch-mv");
    fs::write(dir.path().join("old"), b"x").unwrap();
    let mut w = Watch::new().unwrap();
    w.add(dir.path(), WatchMask::MOVE).unwrap();
    fs::rename(dir.path().join("old"), dir.path().join("new")).unwrap();
    fs::write(dir.path().join("x1"), b"").unwrap();
    fs::rename(dir.path().join("x1"), dir.path().join("x2")).unwrap();
    let evs = collect(&mut w, 4);
    assert_eq!(evs.len(), 4, "{evs:?}");
    for pair in evs.chunks(2) {
        assert_eq!(pair[0].mask, EventMask::MOVED_FROM);
        assert_eq!(pair[1].mask, EventMask::MOVED_TO);
        assert_ne!(pair[0].cookie, 0);
        assert_eq!(pair[0].cookie, pair[1].cookie);
    }
    assert_ne!(evs[0].cookie, evs[2].cookie);
    let names: Vec<_> = evs.iter().map(name).collect();
    assert_eq!(names, [Some("old"), Some("new"), Some("x1"), Some("x2")]);
}

#[test]
fn removing_the_watched_directory_ends_the_watch() {
    let parent = TempDir::new("watch-self");
    let dir = parent.path().join("watched");
    fs::create_dir(&dir).unwrap();
    let mut w = Watch::new().unwrap();
    let id = w.add(&dir, WatchMask::DELETE_SELF).unwrap();
    assert_eq!(w.len(), 1);
    fs::remove_dir(&dir).unwrap();
    let evs = collect(&mut w, 2);
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs[0].mask, EventMask::DELETE_SELF);
    assert!(evs[1].mask.ignored());
    for e in &evs {
        assert_eq!((e.id, e.path.as_path(), e.name.as_ref()), (id, &*dir, None));
    }
    // The kernel dropped the watch, and so did we.
    assert!(w.is_empty());
    assert_eq!(w.path(id), None);
    assert_eq!(w.remove(id).unwrap_err().raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn queue_overflow_is_an_event() {
    let max: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(usize::MAX);
    if max > 65_536 {
        // Filling a huge queue would take too long; the limit is global and
        // root-only, so it is not lowered here.
        eprintln!("skipped: max_queued_events is {max} (> 65536)");
        return;
    }
    let dir = TempDir::new("watch-overflow");
    let mut w = Watch::new().unwrap();
    w.add(dir.path(), WatchMask::MODIFY).unwrap();
    // Alternate two files so that consecutive events differ (the kernel
    // merges identical consecutive events).
    let mut a = fs::File::create(dir.path().join("a")).unwrap();
    let mut b = fs::File::create(dir.path().join("b")).unwrap();
    for _ in 0..(max + 100).div_ceil(2) {
        a.write_all(b"x").unwrap();
        b.write_all(b"x").unwrap();
    }
    let mut total = 0;
    let mut overflow = None;
    loop {
        let batch = w.read_events().unwrap();
        if batch.is_empty() {
            break;
        }
        total += batch.len();
        if let Some(e) = batch.iter().find(|e| e.mask.queue_overflow()) {
            overflow = Some(e.clone());
        }
    }
    let e = overflow.expect("no queue-overflow event");
    assert_eq!(e.id, WatchId::NONE);
    assert_eq!(
        (e.path.as_os_str(), e.name.as_ref()),
        (OsStr::new(""), None)
    );
    // max events plus the overflow marker.
    assert_eq!(total, max + 1);
}

#[test]
fn adding_a_missing_path_is_a_clear_error() {
    let dir = TempDir::new("watch-enoent");
    let missing = dir.path().join("not-here");
    let mut w = Watch::new().unwrap();
    let e = w.add(&missing, WatchMask::ALL).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("not-here"), "{e}");
    let inner = e
        .get_ref()
        .and_then(std::error::Error::source)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    assert_eq!(inner, Some(libc::ENOENT));
    // ONLYDIR on a file: ENOTDIR.
    fs::write(dir.path().join("f"), b"").unwrap();
    let e = w
        .add(dir.path().join("f"), WatchMask::CREATE | WatchMask::ONLYDIR)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotADirectory);
    assert!(w.is_empty());
}

#[test]
fn removed_watch_delivers_nothing_more() {
    let dir = TempDir::new("watch-rm");
    let mut w = Watch::new().unwrap();
    let id = w.add(dir.path(), WatchMask::CREATE).unwrap();
    fs::write(dir.path().join("queued"), b"").unwrap();
    w.remove(id).unwrap();
    fs::write(dir.path().join("after"), b"").unwrap();
    // Neither the queued CREATE nor the IGNORED for the removal comes out.
    assert!(w.wait(Some(Duration::from_millis(50))).unwrap().is_empty());
    assert!(w.is_empty());
}

#[test]
fn same_inode_twice_gives_the_same_id() {
    let dir = TempDir::new("watch-same");
    let mut w = Watch::new().unwrap();
    let a = w.add(dir.path(), WatchMask::CREATE).unwrap();
    let b = w
        .add(
            dir.path().join("."),
            WatchMask::DELETE | WatchMask::MASK_ADD,
        )
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(w.len(), 1);
    fs::write(dir.path().join("f"), b"").unwrap();
    fs::remove_file(dir.path().join("f")).unwrap();
    let evs = collect(&mut w, 2);
    let masks: Vec<_> = evs.iter().map(|e| e.mask).collect();
    assert_eq!(masks, [EventMask::CREATE, EventMask::DELETE]);
}

struct State {
    seen: Vec<WatchEvent>,
    per_iteration: Vec<usize>,
}

#[test]
fn loop_source_delivers_bounded_batches() {
    let dir = TempDir::new("watch-loop-batch");
    let mut w = Watch::new().unwrap();
    w.add(dir.path(), WatchMask::MODIFY).unwrap();
    const N: usize = 5000;
    // Writes alternating between two files: distinct consecutive events
    // (identical ones would be merged), and much cheaper than creating files.
    let mut files = [
        fs::File::create(dir.path().join("a")).unwrap(),
        fs::File::create(dir.path().join("b")).unwrap(),
    ];
    for i in 0..N {
        files[i % 2].write_all(b"x").unwrap();
    }
    let mut ev: EventLoop<State> = EventLoop::new().unwrap();
    ev.insert(w, |e, _, st: &mut State| {
        st.seen.push(e);
        Action::Continue
    })
    .unwrap();
    let mut st = State {
        seen: Vec::new(),
        per_iteration: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while st.seen.len() < N && Instant::now() < deadline {
        let before = st.seen.len();
        ev.run_once(&mut st, Some(Duration::from_secs(1))).unwrap();
        st.per_iteration.push(st.seen.len() - before);
    }
    assert_eq!(st.seen.len(), N);
    // 5000 records of 32 bytes do not fit one 32 KiB read.
    assert!(st.per_iteration.len() > 1, "{:?}", st.per_iteration);
    assert!(st.per_iteration.iter().all(|&n| n <= 1024));
    for (i, e) in st.seen.iter().enumerate() {
        assert_eq!(name(e), Some(["a", "b"][i % 2]));
    }
}

#[test]
fn callback_can_add_watches_and_stop_mid_batch() {
    let dir = TempDir::new("watch-loop-add");
    let mut w = Watch::new().unwrap();
    w.add(dir.path(), WatchMask::CREATE).unwrap();
    let mut ev: EventLoop<Vec<(String, bool)>> = EventLoop::new().unwrap();
    let id = ev
        .insert(w, |e, w: &mut Watch, seen: &mut Vec<(String, bool)>| {
            // Follow new subdirectories.
            if e.mask.is_dir() && e.mask.contains(EventMask::CREATE) {
                w.add(e.full_path(), WatchMask::CREATE).unwrap();
            }
            seen.push((e.full_path().display().to_string(), e.mask.is_dir()));
            // Disable after every event: the rest of the batch waits.
            Action::Disable
        })
        .unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("top"), b"").unwrap();
    let mut seen = Vec::new();
    ev.run_once(&mut seen, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    ev.enable(id).unwrap();
    // "top" was read in the first batch and kept; the fd is still readable
    // only if more events come, so make one.
    fs::write(dir.path().join("sub").join("deep"), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < 3 && Instant::now() < deadline {
        ev.run_once(&mut seen, Some(Duration::from_millis(200)))
            .unwrap();
        ev.enable(id).unwrap();
    }
    let want: Vec<(String, bool)> = vec![
        (dir.path().join("sub").display().to_string(), true),
        (dir.path().join("top").display().to_string(), false),
        (
            dir.path().join("sub").join("deep").display().to_string(),
            false,
        ),
    ];
    assert_eq!(seen, want);
}

#[test]
fn a_panicking_callback_loses_none_of_the_rest_of_its_batch() {
    let dir = TempDir::new("watch-panic");
    let mut w = Watch::new().unwrap();
    w.add(dir.path(), WatchMask::CREATE).unwrap();
    for f in ["a", "b", "c"] {
        fs::File::create(dir.path().join(f)).unwrap();
    }
    let mut ev: EventLoop<Vec<String>> = EventLoop::new().unwrap();
    ev.insert(w, |e, _, seen: &mut Vec<String>| {
        seen.push(name(&e).unwrap_or("?").to_owned());
        if seen.len() == 1 {
            panic!("first event");
        }
        Action::Continue
    })
    .unwrap();
    let mut seen = Vec::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ev.run_once(&mut seen, Some(Duration::from_secs(5)))
    }));
    assert!(r.is_err(), "the panic propagates");
    assert_eq!(seen, ["a"]);
    // Nothing new happens in the directory: the rest of the batch still
    // arrives, on the very next call.
    let start = Instant::now();
    assert_eq!(
        ev.run_once(&mut seen, Some(Duration::from_secs(5)))
            .unwrap(),
        1
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(seen, ["a", "b", "c"]);
}
