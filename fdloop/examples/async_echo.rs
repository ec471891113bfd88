//! A TCP echo server written with async/await on fdloop, and its own load
//! generator.
//!
//! ```text
//! cargo run --release --example async_echo                      # 50 connections, 2000 round trips each
//! cargo run --release --example async_echo -- --conns 200 --rounds 500 --size 512
//! ```
//!
//! * The server is one task on the main thread's loop: it accepts
//!   connections from an `Async<TcpListener>` stream and spawns one echo
//!   task per connection (`AsyncRead`/`AsyncWrite` from `futures-io`). It
//!   stops when the load generator says it is done, over an fdloop channel
//!   awaited as a future — next to the listener, in one `select`.
//! * The load generator runs on another thread with a loop of its own:
//!   one task per connection connects (`Async::<TcpStream>::connect`, which
//!   waits for the handshake without blocking the loop), writes a message,
//!   reads the echo back and checks it, `--rounds` times. Then it prints the round trips per second
//!   and the exit status says whether every echo came back intact.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fdloop::rt::{self, Async};
use futures_util::future::{select, Either};
use futures_util::{AsyncReadExt, AsyncWriteExt, StreamExt};

const USAGE: &str = "\
usage: async_echo [--conns N] [--rounds N] [--size BYTES]
  --conns N      client connections (default 50)
  --rounds N     round trips per connection (default 2000)
  --size BYTES   message size (default 64)";

struct Config {
    conns: usize,
    rounds: usize,
    size: usize,
}

fn parse_args() -> Result<Config, String> {
    let mut c = Config {
        conns: 50,
        rounds: 2000,
        size: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--conns" => &mut c.conns,
            "--rounds" => &mut c.rounds,
            "--size" => &mut c.size,
            _ => return Err(format!("unknown option {flag}")),
        };
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        *slot = match value.parse() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{flag}: not a positive number: {value}")),
        };
    }
    Ok(c)
}

/// Echoes what `s` sends until it closes.
async fn echo(mut s: Async<TcpStream>) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n]).await?;
    }
}

/// Accepts and serves until `done` says the load is over.
async fn serve(
    listener: Async<TcpListener>,
    done: Async<fdloop::channel::Receiver<()>>,
) -> io::Result<usize> {
    let mut accepted = 0;
    let mut incoming = listener.incoming();
    let mut stop = Box::pin(done.recv());
    loop {
        match select(incoming.next(), stop).await {
            Either::Left((Some(conn), s)) => {
                stop = s;
                accepted += 1;
                // A connection's failure (a reset) ends that connection only.
                rt::spawn(async move {
                    if let Err(e) = echo(conn?).await {
                        eprintln!("async_echo: connection: {e}");
                    }
                    Ok::<_, io::Error>(())
                })?
                .detach();
            }
            Either::Left((None, _)) => return Ok(accepted),
            Either::Right(_) => return Ok(accepted),
        }
    }
}

/// One client: `rounds` round trips of `size` bytes, each checked.
async fn client(addr: SocketAddr, id: usize, rounds: usize, size: usize) -> io::Result<usize> {
    let mut s = Async::<TcpStream>::connect(addr).await?;
    s.get_ref().set_nodelay(true)?;
    let mut msg = vec![0u8; size];
    let mut back = vec![0u8; size];
    for round in 0..rounds {
        for (i, b) in msg.iter_mut().enumerate() {
            *b = (id + round + i) as u8;
        }
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        if back != msg {
            return Err(io::Error::other(format!("connection {id}: echo differs")));
        }
    }
    Ok(rounds)
}

/// The load generator: its own loop on this thread, one task per
/// connection. Returns the round trips done and how long they took.
fn load(addr: SocketAddr, c: &Config) -> io::Result<(usize, Duration)> {
    let (conns, rounds, size) = (c.conns, c.rounds, c.size);
    rt::block_on(async move {
        let start = Instant::now();
        let tasks = (0..conns)
            .map(|id| rt::spawn(client(addr, id, rounds, size)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut total = 0;
        for t in tasks {
            total += t.await??;
        }
        Ok::<_, io::Error>((total, start.elapsed()))
    })?
}

fn run(c: Config) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (done_tx, done_rx) = fdloop::channel::bounded::<()>(1)?;
    let loader = std::thread::spawn(move || {
        let r = load(addr, &c);
        // The server stops when this sender is gone, whatever happened.
        drop(done_tx);
        r.map(|(n, t)| (n, t, c.conns))
    });
    let accepted =
        rt::block_on(async move { serve(Async::new(listener)?, Async::new(done_rx)?).await })??;
    let (trips, took, conns) = loader
        .join()
        .map_err(|_| io::Error::other("the load generator panicked"))??;
    println!(
        "async_echo: {conns} connections ({accepted} accepted), {trips} round trips in {:.3} s: {:.0} round trips/s",
        took.as_secs_f64(),
        trips as f64 / took.as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("async_echo: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async_echo: {e}");
            ExitCode::FAILURE
        }
    }
}
