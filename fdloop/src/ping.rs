//! [`Ping`]: wake a loop from any thread and run a callback there.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::event_loop::single_readable_fd;
use crate::event_loop::{Action, Readiness, Registrar, Source};
use crate::notify::Notifier;

/// A loop source backed by a [`Notifier`]: any thread holding a
/// [`PingHandle`] can make the callback run on the loop's thread.
///
/// Pings are coalesced: the callback runs once per drained burst, however
/// many `ping()` calls the burst held, and only the first ping of a burst
/// makes a system call.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fdloop::{Action, EventLoop, Ping};
///
/// let (handle, ping) = Ping::new()?;
/// let mut ev = EventLoop::new()?;
/// ev.insert(ping, |(), _, runs: &mut u32| {
///     *runs += 1;
///     Action::Continue
/// })?;
/// std::thread::spawn(move || {
///     for _ in 0..10 { handle.ping().unwrap(); }
/// }).join().unwrap();
/// let mut runs = 0;
/// ev.run_once(&mut runs, Some(Duration::from_secs(1)))?;
/// assert_eq!(runs, 1); // ten pings, one burst
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Ping {
    notifier: Arc<Notifier>,
}

/// The sending side of a [`Ping`]: `Send + Sync + Clone`.
///
/// # Examples
///
/// ```
/// let (handle, _ping) = fdloop::Ping::new()?;
/// let h2 = handle.clone();
/// std::thread::spawn(move || h2.ping()).join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct PingHandle {
    notifier: Arc<Notifier>,
}

impl Ping {
    /// A new ping source and its handle.
    ///
    /// # Errors
    ///
    /// As [`Notifier::new`]: `EMFILE`/`ENFILE` when out of descriptors.
    pub fn new() -> io::Result<(PingHandle, Ping)> {
        let notifier = Arc::new(Notifier::new()?);
        Ok((
            PingHandle {
                notifier: notifier.clone(),
            },
            Ping { notifier },
        ))
    }
}

impl PingHandle {
    /// Makes the ping's callback run on the loop's thread. Never blocks.
    ///
    /// # Errors
    ///
    /// As [`Notifier::notify`]: practically never.
    pub fn ping(&self) -> io::Result<()> {
        self.notifier.notify().map(drop)
    }
}

impl Source for Ping {
    type Event = ();
    type Metadata = ();

    single_readable_fd!(notifier);

    fn process(
        &mut self,
        _ready: Readiness,
        _sub: u8,
        _r: &mut Registrar<'_>,
        callback: &mut dyn FnMut((), &mut ()) -> Action,
    ) -> io::Result<Action> {
        if self.notifier.drain()? {
            Ok(callback((), &mut ()))
        } else {
            Ok(Action::Continue)
        }
    }
}

impl fmt::Debug for Ping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ping")
            .field("notifier", &self.notifier)
            .finish()
    }
}

impl fmt::Debug for PingHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingHandle").finish_non_exhaustive()
    }
}
