//! Property tests: random single-threaded sequences of channel operations
//! (send, send_timeout, try_send, try_recv, cloning and dropping senders,
//! dropping the receiver), bounded and unbounded, against a `VecDeque`
//! model. Checked after every step: each result, `len`, disconnection on
//! both sides, and the receiver descriptor's readiness; at the end, that
//! every message was dropped exactly once.
//!
//! The model is what the docs promise: one FIFO queue; a bounded channel's
//! capacity comes back with each message received; the receiver's
//! descriptor is readable exactly while a message waits or every sender is
//! gone. Bursts of sends take the unbounded queue across its 31-slot block
//! boundaries and the bounded ring around its laps.

mod util;

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use fdloop::channel::{self, Receiver, SendTimeoutError, Sender, TryRecvError, TrySendError};
use proptest::prelude::*;

/// A message that counts its drops.
#[derive(Debug)]
struct Msg {
    id: u32,
    drops: Rc<Cell<u64>>,
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Blocking send (only issued when it cannot block).
    Send(usize),
    /// `send_timeout` with a zero timeout.
    SendNow(usize),
    TrySend(usize),
    /// `try_send` this many in a row.
    Burst(u8),
    TryRecv,
    Clone(usize),
    DropSender(usize),
    DropReceiver,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<usize>().prop_map(Op::Send),
        2 => any::<usize>().prop_map(Op::SendNow),
        4 => any::<usize>().prop_map(Op::TrySend),
        1 => (1u8..70).prop_map(Op::Burst),
        10 => Just(Op::TryRecv),
        1 => any::<usize>().prop_map(Op::Clone),
        1 => any::<usize>().prop_map(Op::DropSender),
        1 => prop_oneof![19 => Just(Op::TryRecv), 1 => Just(Op::DropReceiver)],
    ]
}

#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Ok,
    Full(u32),
    Timeout(u32),
    Disconnected(u32),
}

#[derive(Debug, PartialEq, Eq)]
enum Got {
    Msg(u32),
    Empty,
    Disconnected,
}

/// The channel as the docs describe it.
struct Model {
    cap: Option<usize>,
    queue: VecDeque<u32>,
    senders: usize,
    rx_alive: bool,
}

impl Model {
    fn new(cap: Option<usize>) -> Model {
        Model {
            cap,
            queue: VecDeque::new(),
            senders: 1,
            rx_alive: true,
        }
    }

    fn full(&self) -> bool {
        self.cap.is_some_and(|c| self.queue.len() >= c)
    }

    /// A non-blocking send attempt; `full` says how the refusal reads.
    fn send(&mut self, id: u32, full: fn(u32) -> Sent) -> Sent {
        if !self.rx_alive {
            return Sent::Disconnected(id);
        }
        if self.full() {
            return full(id);
        }
        self.queue.push_back(id);
        Sent::Ok
    }

    fn try_recv(&mut self) -> Got {
        match self.queue.pop_front() {
            Some(m) => Got::Msg(m),
            None if self.senders == 0 => Got::Disconnected,
            None => Got::Empty,
        }
    }

    fn readable(&self) -> bool {
        !self.queue.is_empty() || self.senders == 0
    }
}

struct Real {
    senders: Vec<Sender<Msg>>,
    rx: Option<Receiver<Msg>>,
    drops: Rc<Cell<u64>>,
    made: u64,
    next: u32,
}

impl Real {
    fn msg(&mut self) -> Msg {
        self.made += 1;
        self.next += 1;
        Msg {
            id: self.next,
            drops: self.drops.clone(),
        }
    }
}

fn sent<E>(r: Result<(), E>, f: impl FnOnce(E) -> Sent) -> Sent {
    match r {
        Ok(()) => Sent::Ok,
        Err(e) => f(e),
    }
}

fn run(cap: Option<usize>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (tx, rx) = match cap {
        Some(c) => channel::bounded::<Msg>(c),
        None => channel::unbounded::<Msg>(),
    }
    .unwrap();
    let mut real = Real {
        senders: vec![tx],
        rx: Some(rx),
        drops: Rc::new(Cell::new(0)),
        made: 0,
        next: 0,
    };
    let mut m = Model::new(cap);
    for op in ops {
        let n = real.senders.len();
        match op {
            Op::Send(i) | Op::SendNow(i) | Op::TrySend(i) if n > 0 => {
                let blocking = matches!(op, Op::Send(_));
                if blocking && m.rx_alive && m.full() {
                    continue; // would block forever: single-threaded
                }
                let msg = real.msg();
                let id = msg.id;
                let tx = &real.senders[i % n];
                let got = match op {
                    Op::Send(_) => sent(tx.send(msg), |e| Sent::Disconnected(e.0.id)),
                    Op::SendNow(_) => sent(tx.send_timeout(msg, Duration::ZERO), |e| match e {
                        SendTimeoutError::Timeout(m) => Sent::Timeout(m.id),
                        SendTimeoutError::Disconnected(m) => Sent::Disconnected(m.id),
                    }),
                    _ => sent(tx.try_send(msg), |e| match e {
                        TrySendError::Full(m) => Sent::Full(m.id),
                        TrySendError::Disconnected(m) => Sent::Disconnected(m.id),
                    }),
                };
                let want = match op {
                    Op::SendNow(_) => m.send(id, Sent::Timeout),
                    _ => m.send(id, Sent::Full),
                };
                prop_assert_eq!(got, want, "{:?}", op);
            }
            Op::Burst(k) if n > 0 => {
                for _ in 0..k {
                    let msg = real.msg();
                    let id = msg.id;
                    let got = sent(real.senders[0].try_send(msg), |e| match e {
                        TrySendError::Full(m) => Sent::Full(m.id),
                        TrySendError::Disconnected(m) => Sent::Disconnected(m.id),
                    });
                    prop_assert_eq!(got, m.send(id, Sent::Full), "burst");
                }
            }
            Op::TryRecv => {
                let Some(rx) = &real.rx else { continue };
                let got = match rx.try_recv() {
                    Ok(msg) => Got::Msg(msg.id),
                    Err(TryRecvError::Empty) => Got::Empty,
                    Err(TryRecvError::Disconnected) => Got::Disconnected,
                };
                prop_assert_eq!(got, m.try_recv());
            }
            Op::Clone(i) if n > 0 => {
                let c = real.senders[i % n].clone();
                real.senders.push(c);
                m.senders += 1;
            }
            Op::DropSender(i) if n > 0 => {
                real.senders.swap_remove(i % n);
                m.senders -= 1;
            }
            Op::DropReceiver if real.rx.take().is_some() => {
                m.rx_alive = false;
                m.queue.clear();
            }
            _ => {}
        }
        // State visible from both ends.
        if let Some(tx) = real.senders.first() {
            prop_assert_eq!(tx.is_disconnected(), !m.rx_alive);
            prop_assert_eq!(tx.capacity(), cap);
            if m.rx_alive {
                prop_assert_eq!(tx.len(), m.queue.len(), "len");
            }
        }
        if let Some(rx) = &real.rx {
            prop_assert_eq!(rx.is_disconnected(), m.senders == 0);
            let (readable, _) = util::readiness(rx);
            prop_assert_eq!(
                readable,
                m.readable(),
                "readable exactly while a message waits or the senders are gone ({} queued)",
                m.queue.len()
            );
        }
    }
    // Every message ever made is dropped exactly once: by us (received or
    // handed back in an error) or by the channel.
    drop(real.senders);
    drop(real.rx);
    prop_assert_eq!(real.drops.get(), real.made);
    Ok(())
}

/// 256 cases per property by default, 10^4 with `FDLOOP_SOAK=1`.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: util::size(256, 10_000) as u32,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn unbounded_channel_matches_a_vecdeque(ops in prop::collection::vec(op(), 1..200)) {
        run(None, ops)?;
    }

    #[test]
    fn bounded_channel_matches_a_vecdeque(
        cap in 1usize..6,
        ops in prop::collection::vec(op(), 1..200),
    ) {
        run(Some(cap), ops)?;
    }
}
