//! The C event loops fdloop is measured against (feature `c-peers`), each
//! driven through a small hand-written FFI binding of just the calls used:
//!
//! * [`glib`]: GLib's `GMainContext` (woken from another thread) and
//!   `GAsyncQueue`;
//! * [`libevent`]: an `event_base` made thread-aware with
//!   `evthread_use_pthreads`, woken by `event_active` from another thread;
//! * [`sdevent`]: systemd's `sd-event`.
//!
//! Every module offers the same contenders, so the report and the benches
//! can put them in the same tables as the Rust peers:
//!
//! * `round_trips(pin, rts, warmup) -> io::Result<Duration>`: two threads,
//!   each running the library's loop, ping-pong one message; the time of
//!   the `rts` timed round trips (after `warmup` untimed ones);
//! * `throughput(producers, msgs) -> io::Result<Duration>`: producers send
//!   `0..msgs` to one consumer, whose sum is checked
//!   ([`Acc`](crate::threads::Acc)); the time from before the producers
//!   start until the last message is received;
//! * `Dispatch`: a [`Contender`](crate::dispatch::Contender) over the
//!   always-ready eventfds of the dispatch-overhead bench;
//! * `Arm`: an [`ArmCancel`](crate::timers::ArmCancel) with K timers
//!   pending;
//! * `lateness(pattern, seed) -> io::Result<Late>`: how late each timer's
//!   callback runs ([`Pattern`](crate::timers::Pattern)).
//!
//! Every function returns `io::Result`; a C call that fails becomes an
//! `io::Error` naming it.

pub mod glib;
pub mod libevent;
pub mod sdevent;
