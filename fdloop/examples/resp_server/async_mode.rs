//! `--async`: the same server written with async/await on `fdloop::rt` —
//! the same parser, commands, store, buffers and accept policy (the
//! `Conn` of `main.rs`), one task per connection instead of a callback.
//!
//! * The main task accepts from an `Async<TcpListener>` (through the same
//!   `Acceptor`, so out of descriptors it refuses with a line and keeps a
//!   spare) and watches `Async<Signals>` for SIGINT/SIGTERM in one
//!   `select`. Accept failing otherwise pauses accepting for 100 ms
//!   (`rt::sleep`: a loop timer, no new descriptor).
//! * A connection task reads once, executes every complete request, writes
//!   the replies (`write_all`: it waits for the socket to drain, so at most
//!   `--output-limit` of replies is pending), and reads again.

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use fdloop::rt::{self, Async};
use fdloop::signal::{Signal, Signals};
use futures_util::future::{select, Either};
use futures_util::{AsyncReadExt, AsyncWriteExt};

use super::accept::{Accepted, Acceptor};
use super::{linger_close, Conn, Limits, Stop, Store, REFUSAL};

/// Serves `listener` until one of `sigs` arrives.
pub(super) fn run(listener: TcpListener, sigs: &[Signal], limits: Limits) -> io::Result<()> {
    let signals = Signals::new(sigs)?;
    rt::block_on(serve(listener, signals, limits))?
}

async fn serve(listener: TcpListener, signals: Signals, limits: Limits) -> io::Result<()> {
    let listener = Async::new(listener)?;
    let signals = Async::new(signals)?;
    let store = Rc::new(RefCell::new(Store::default()));
    let conns = Rc::new(Cell::new(0usize));
    let mut acceptor = Acceptor::new("resp_server", REFUSAL)?;
    let mut stop = Box::pin(signals.next_signal());
    loop {
        let accept = Box::pin(listener.read_with(|l| match acceptor.accept(l) {
            Ok(Accepted::Drained) => Err(ErrorKind::WouldBlock.into()),
            r => r,
        }));
        let (accepted, pending_stop) = match select(accept, stop).await {
            Either::Left((a, s)) => (a, s),
            Either::Right((sig, _)) => {
                eprintln!(
                    "resp_server: {} received, closing {} connection(s)",
                    sig?.signal,
                    conns.get()
                );
                return Ok(());
            }
        };
        stop = pending_stop;
        match accepted {
            Ok(Accepted::Conn(s)) => {
                conns.set(conns.get() + 1);
                let (store, conns) = (store.clone(), conns.clone());
                let task = rt::spawn(async move {
                    // A failed connection (reset, too big a request) closes.
                    let _ = connection(s, &store, limits).await;
                    conns.set(conns.get() - 1);
                })?;
                task.detach();
            }
            Ok(_) => {}
            // Logged, rate-limited, by the acceptor.
            Err(_) => rt::sleep(Duration::from_millis(100)).await?,
        }
    }
}

/// One connection, until it closes.
async fn connection(s: TcpStream, store: &RefCell<Store>, limits: Limits) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut s = Async::new(s)?;
    let mut c = Conn {
        limits,
        ..Conn::default()
    };
    loop {
        loop {
            let stop = if c.closing {
                Stop::Close
            } else {
                c.execute(&mut store.borrow_mut())
            };
            s.write_all(&c.out[c.sent..]).await?;
            c.out.clear();
            c.sent = 0;
            match stop {
                Stop::OutputFull => {}
                Stop::Close => {
                    linger_close(s.get_ref());
                    return Ok(());
                }
                Stop::NeedInput => break,
            }
        }
        if c.eof {
            return Ok(());
        }
        c.make_room()?;
        let n = s.read(&mut c.inbuf[c.end..]).await?;
        if n == 0 {
            c.eof = true;
        }
        c.end += n;
    }
}
