//! The two lock-free queues behind a channel: [`List`] (unbounded, a linked
//! list of fixed-size blocks) and [`Ring`] (bounded, one array). Both are
//! multi-producer, single-consumer: any number of senders push, and the one
//! receiver pops without any read-modify-write instruction.
//!
//! # The tail word
//!
//! Each queue has one atomic *tail word*: the next position to claim,
//! shifted left by [`SHIFT`], with three flags in the low bits:
//!
//! * [`SLEEP`]: the receiver is asleep on its descriptor. Set only by the
//!   receiver, with a compare-exchange that succeeds only when the tail
//!   position equals the receiver's head (nothing claimed and not yet taken).
//!   Every claim clears it, and the claimer whose compare-exchange read it
//!   set writes the descriptor — exactly one sender per sleep.
//! * [`DISC`]: every sender is gone.
//! * [`RX_GONE`]: the receiver is gone; a sender that sees it keeps its
//!   message.
//!
//! Because the sleep flag lives in the word the senders compare-exchange,
//! "is it empty, and if so sleep" and "claim a slot, and was it asleep" are
//! single read-modify-writes on one atomic, totally ordered: the wake-up
//! cannot be lost and needs no `SeqCst` fence on the send path (see
//! `core.rs`).
//!
//! # Slots
//!
//! A sender claims a position by advancing the tail word, then writes the
//! message into the position's slot and marks the slot written (`Release`).
//! The receiver reads slot after slot (`Acquire`); a claimed slot that is not
//! written yet reads as empty for that instant.

use std::mem::MaybeUninit;
use std::ptr;

use crate::sync::{AtomicPtr, AtomicUsize, Backoff, Ordering, Padded, RawCell};

/// The receiver is asleep: the next claim must write its descriptor.
pub(crate) const SLEEP: usize = 1;
/// Every sender is gone.
pub(crate) const DISC: usize = 2;
/// The receiver is gone.
pub(crate) const RX_GONE: usize = 4;
/// Positions sit above the flags.
pub(crate) const SHIFT: u32 = 3;

/// What a push did.
pub(crate) enum Push<T> {
    /// Queued; `wake_rx`: this push found the receiver asleep and must write
    /// its descriptor.
    Queued { wake_rx: bool },
    /// No room (bounded); the message comes back.
    Full(T),
    /// The receiver is gone; the message comes back.
    NoReceiver(T),
}

// ------------------------------------------------------------------ list

/// Positions per block: `BLOCK_CAP` slots and one position that is never a
/// slot (while the tail sits on it, the next block is being linked in).
#[cfg(not(loom))]
const LAP: usize = 32;
/// Small blocks under the model, so a few messages cross a block boundary.
#[cfg(loom)]
const LAP: usize = 3;
const BLOCK_CAP: usize = LAP - 1;

struct Slot<T> {
    /// `lap + 1` once the message of lap `lap` (position / `LAP`) is
    /// written. Blocks are reused for later laps without clearing: an old
    /// lap's mark never equals the current one.
    ready: AtomicUsize,
    msg: RawCell<MaybeUninit<T>>,
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    /// A new block: every slot empty, no successor.
    fn alloc() -> *mut Block<T> {
        #[cfg(not(loom))]
        {
            let layout = std::alloc::Layout::new::<Block<T>>();
            // SAFETY: `Block<T>` has non-zero size (it holds an AtomicPtr).
            let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Block<T>>();
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            // All-zero bytes are a valid `Block`: a null `AtomicPtr`, `0`
            // (never a lap's mark) `AtomicUsize`s, and `MaybeUninit` cells,
            // which accept any bytes. Allocating zeroed memory directly (not `Box::new`)
            // keeps blocks of large messages off the stack.
            p
        }
        #[cfg(loom)]
        {
            Box::into_raw(Box::new(Block {
                next: AtomicPtr::new(ptr::null_mut()),
                slots: std::array::from_fn(|_| Slot {
                    ready: AtomicUsize::new(0),
                    msg: RawCell::new(MaybeUninit::uninit()),
                }),
            }))
        }
    }

    /// Frees a block made by [`Block::alloc`]. Messages in it are not
    /// dropped.
    ///
    /// # Safety
    ///
    /// `p` came from [`Block::alloc`], is not freed yet, and no thread will
    /// access it again.
    unsafe fn free(p: *mut Block<T>) {
        // SAFETY: by the contract, `p` is a live allocation with
        // `Block<T>`'s layout that nobody else uses; `Box` frees it with that
        // layout (`Block` has no drop glue that touches the messages).
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Slots ahead of the head whose cache line the receiver asks for early.
const PREFETCH_AHEAD: usize = 8;

/// Receiver, after reading slot `off` of `b`: requests the line of the slot
/// [`PREFETCH_AHEAD`] further on (same block), so that by the time it gets
/// there the line is on its way from the sender's core.
#[inline(always)]
fn prefetch_ahead<T>(b: &Block<T>, off: usize) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    if let Some(s) = b.slots.get(off + PREFETCH_AHEAD) {
        let p = std::ptr::from_ref(s).cast::<i8>();
        // SAFETY: SSE is part of the x86_64 baseline, so the instruction
        // exists; a prefetch is a hint that never faults, whatever `p` is
        // (here it points into the live block anyway).
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = (b, off);
}

/// The unbounded queue.
pub(crate) struct List<T> {
    tail: Padded<ListTail<T>>,
    /// One block kept for reuse: the receiver leaves a finished block here
    /// and the sender that needs a block next takes it, so a steady stream
    /// of messages allocates nothing. On its own line: the receiver writes
    /// it while senders read the lines around it.
    spare: Padded<AtomicPtr<Block<T>>>,
}

struct ListTail<T> {
    word: AtomicUsize,
    /// The block that holds the tail position.
    block: AtomicPtr<Block<T>>,
}

/// A position claimed by [`List::claim`], not yet filled.
pub(crate) struct Claim<T> {
    block: *mut Block<T>,
    pos: usize,
    /// The claim found the receiver asleep.
    pub(crate) wake_rx: bool,
}

/// The receiver's end of a [`List`]: its head position and block. Only the
/// receiver uses it.
pub(crate) struct ListHead<T> {
    pos: usize,
    block: *mut Block<T>,
}

/// Messages before position `pos` (positions skip one per block).
fn list_count(pos: usize) -> usize {
    pos / LAP * BLOCK_CAP + (pos % LAP).min(BLOCK_CAP)
}

impl<T> List<T> {
    /// A list whose receiver starts asleep, and the receiver's head.
    pub(crate) fn new() -> (List<T>, ListHead<T>) {
        let first = Block::alloc();
        (
            List {
                tail: Padded(ListTail {
                    word: AtomicUsize::new(SLEEP),
                    block: AtomicPtr::new(first),
                }),
                spare: Padded(AtomicPtr::new(ptr::null_mut())),
            },
            ListHead {
                pos: 0,
                block: first,
            },
        )
    }

    pub(crate) fn word(&self) -> &AtomicUsize {
        &self.tail.word
    }

    fn take_block(&self) -> *mut Block<T> {
        let p = self.spare.swap(ptr::null_mut(), Ordering::Acquire);
        if p.is_null() {
            Block::alloc()
        } else {
            p
        }
    }

    /// Keeps `p` as the spare, or frees it if there is one already.
    ///
    /// # Safety
    ///
    /// `p` is a block nobody else uses (its slots may hold old laps' marks:
    /// they never match a later lap).
    unsafe fn give_block(&self, p: *mut Block<T>) {
        if p.is_null() {
            return;
        }
        if self
            .spare
            .compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: by the contract, nobody else uses `p`.
            unsafe { Block::free(p) };
        }
    }

    /// Appends `msg`.
    #[inline(always)]
    pub(crate) fn push(&self, msg: T) -> Push<T> {
        match self.claim() {
            Some(c) => {
                let wake_rx = c.wake_rx;
                // SAFETY: `c` was just claimed by this call.
                unsafe { self.fill(c, msg) };
                Push::Queued { wake_rx }
            }
            None => Push::NoReceiver(msg),
        }
    }

    /// The first half of a push: claims the next position (linking in the
    /// next block if it is the block's last slot). `None`: the receiver is
    /// gone. Until [`List::fill`], the receiver waits at this position.
    ///
    /// The common case inline: one compare-exchange that wins, on a slot
    /// that is not its block's last; [`List::claim_rest`] does the rest.
    #[inline(always)]
    pub(crate) fn claim(&self) -> Option<Claim<T>> {
        let t = self.tail.word.load(Ordering::Acquire);
        let pos = t >> SHIFT;
        if t & RX_GONE == 0 && pos % LAP + 1 < BLOCK_CAP {
            // As in `claim_rest`: loaded after the word, so the block of
            // `pos` if the claim wins.
            let block = self.tail.block.load(Ordering::Acquire);
            if self
                .tail
                .word
                .compare_exchange_weak(t, (pos + 1) << SHIFT, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(Claim {
                    block,
                    pos,
                    wake_rx: t & SLEEP != 0,
                });
            }
        }
        self.claim_rest()
    }

    /// [`List::claim`] past its common case: the receiver gone, a block's
    /// last slot or sentinel, or a lost compare-exchange.
    #[inline(never)]
    fn claim_rest(&self) -> Option<Claim<T>> {
        let mut backoff = Backoff::new();
        let mut fresh: *mut Block<T> = ptr::null_mut();
        let mut t = self.tail.word.load(Ordering::Acquire);
        loop {
            if t & RX_GONE != 0 {
                // SAFETY: `fresh` was taken by this call and never shared.
                unsafe { self.give_block(fresh) };
                return None;
            }
            let pos = t >> SHIFT;
            let off = pos % LAP;
            if off == BLOCK_CAP {
                // Another sender is linking in the next block.
                backoff.snooze();
                t = self.tail.word.load(Ordering::Acquire);
                continue;
            }
            // Loaded after the word (both `Acquire`; the linker stores the
            // block before moving the word on): if our claim below succeeds,
            // this is the block of `pos`.
            let block = self.tail.block.load(Ordering::Acquire);
            if off + 1 == BLOCK_CAP && fresh.is_null() {
                // Claiming the last slot obliges us to link the next block:
                // get it before claiming, so the others wait only briefly.
                fresh = self.take_block();
            }
            match self.tail.word.compare_exchange_weak(
                t,
                (pos + 1) << SHIFT,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if off + 1 == BLOCK_CAP {
                        // Link the next block before filling the last slot:
                        // the receiver follows `next` only after reading it.
                        // SAFETY: as in `fill`: the claim makes `block` the
                        // block of `pos`, alive until that slot is read.
                        let b = unsafe { &*block };
                        b.next.store(fresh, Ordering::Release);
                        self.tail.block.store(fresh, Ordering::Release);
                        // Off the sentinel, onto the next block's first
                        // position; an add keeps flags set meanwhile
                        // (RX_GONE; SLEEP and DISC cannot be set while the
                        // tail is on the sentinel and this sender lives).
                        self.tail.word.fetch_add(1 << SHIFT, Ordering::Release);
                        fresh = ptr::null_mut();
                    }
                    // SAFETY: `fresh` (if any) was taken by this call and
                    // never shared.
                    unsafe { self.give_block(fresh) };
                    return Some(Claim {
                        block,
                        pos,
                        wake_rx: t & SLEEP != 0,
                    });
                }
                Err(cur) => {
                    t = cur;
                    backoff.spin();
                }
            }
        }
    }

    /// The second half of a push: writes `msg` into the claimed slot and
    /// marks it written.
    ///
    /// # Safety
    ///
    /// `c` came from [`List::claim`] on this list and is filled once.
    #[inline]
    pub(crate) unsafe fn fill(&self, c: Claim<T>, msg: T) {
        // SAFETY: the claim succeeded, so `c.block` is the block of `c.pos`
        // (see `claim`), and it stays allocated until the receiver has read
        // the slot — which it cannot do before `ready` is set below.
        let slot = &unsafe { &*c.block }.slots[c.pos % LAP];
        // SAFETY: position `c.pos` was claimed by this sender alone; the
        // receiver reads the cell only after `ready`.
        slot.msg.with_mut(|p| unsafe { (*p).write(msg) });
        slot.ready.store(c.pos / LAP + 1, Ordering::Release);
    }

    /// Takes the message at the head, if it is written.
    ///
    /// # Safety
    ///
    /// Only the receiver calls it, with the head [`List::new`] returned.
    #[inline]
    pub(crate) unsafe fn pop(&self, head: &mut ListHead<T>) -> Option<T> {
        let off = head.pos % LAP;
        // SAFETY: the head block stays allocated while the receiver (the
        // caller) has not passed it.
        let b = unsafe { &*head.block };
        let slot = &b.slots[off];
        if slot.ready.load(Ordering::Acquire) != head.pos / LAP + 1 {
            return None;
        }
        // SAFETY: `ready` says the sender finished writing (its `Release`
        // store, our `Acquire` load); nobody else reads it.
        let msg = slot.msg.with_mut(|p| unsafe { (*p).assume_init_read() });
        prefetch_ahead(b, off);
        if off + 1 == BLOCK_CAP {
            // The last slot's sender linked `next` before marking it.
            let next = b.next.load(Ordering::Acquire);
            let done = head.block;
            head.block = next;
            head.pos += 2;
            // SAFETY: every slot of `done` has been read, so every sender
            // that claimed one has finished with it, and no later sender can
            // reach it (the tail moved on). Its `next` is stale but is read
            // only after the block's next linker rewrote it.
            unsafe { self.give_block(done) };
        } else {
            head.pos += 1;
        }
        Some(msg)
    }

    /// Whether the head slot is written (a `pop` would succeed).
    ///
    /// # Safety
    ///
    /// As [`List::pop`].
    #[inline]
    pub(crate) unsafe fn head_ready(&self, head: &ListHead<T>) -> bool {
        // SAFETY: as in `pop`.
        let b = unsafe { &*head.block };
        b.slots[head.pos % LAP].ready.load(Ordering::Acquire) == head.pos / LAP + 1
    }

    /// The receiver leaves: sets [`RX_GONE`] (no more claims succeed),
    /// waits for the slots already claimed to be written, and drops every
    /// message left, once each; then frees the head block.
    ///
    /// # Safety
    ///
    /// As [`List::pop`]; called once, and `head` is not used again.
    pub(crate) unsafe fn close(&self, head: &mut ListHead<T>) {
        let end = self.tail.word.fetch_or(RX_GONE, Ordering::AcqRel) >> SHIFT;
        let mut backoff = Backoff::new();
        while head.pos < end {
            // SAFETY: forwarded contract.
            match unsafe { self.pop(head) } {
                Some(m) => drop(m),
                // Claimed, not written yet: the sender is mid-write.
                None => backoff.snooze(),
            }
        }
        // SAFETY: no sender can claim a slot any more, and every claimed
        // one has been read, so nobody uses the head block.
        unsafe { Block::free(head.block) };
        head.block = ptr::null_mut();
    }

    /// Messages queued, counted from the receiver's published head `pos`.
    pub(crate) fn len(&self, head_pos: usize) -> usize {
        let tail = self.tail.word.load(Ordering::Acquire) >> SHIFT;
        list_count(tail).saturating_sub(list_count(head_pos))
    }
}

impl<T> ListHead<T> {
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
}

impl<T> Drop for List<T> {
    fn drop(&mut self) {
        let p = self.spare.swap(ptr::null_mut(), Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: the list is being dropped: nobody else can reach the
            // spare block.
            unsafe { Block::free(p) };
        }
    }
}

// SAFETY: a `List` hands each message from exactly one sender to the one
// receiver through its slots (claimed by one compare-exchange, published by
// a `Release` store, read after an `Acquire` load), so sharing it between
// threads moves `T`s across threads and never shares one: `T: Send` is
// what that needs.
unsafe impl<T: Send> Send for List<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for List<T> {}

// ------------------------------------------------------------------ ring

struct RSlot<T> {
    /// `pos + 1` once the message for position `pos` is written;
    /// `pos + one_lap` once it is read (free for the next lap's `pos`).
    stamp: AtomicUsize,
    msg: RawCell<MaybeUninit<T>>,
}

/// The bounded queue: `cap` slots. A position is `lap * one_lap + index`,
/// with `one_lap` the power of two above `cap`, so moving to the next lap
/// needs no division.
pub(crate) struct Ring<T> {
    word: Padded<AtomicUsize>,
    slots: Box<[RSlot<T>]>,
    cap: usize,
    one_lap: usize,
}

impl<T> Ring<T> {
    /// A ring of `cap` slots (`cap ≥ 1`) whose receiver starts asleep, and
    /// the receiver's head position.
    pub(crate) fn new(cap: usize) -> (Ring<T>, usize) {
        let cap = cap.max(1);
        let one_lap = (cap + 1).next_power_of_two();
        let slots = (0..cap)
            .map(|i| RSlot {
                stamp: AtomicUsize::new(i),
                msg: RawCell::new(MaybeUninit::uninit()),
            })
            .collect();
        (
            Ring {
                word: Padded(AtomicUsize::new(SLEEP)),
                slots,
                cap,
                one_lap,
            },
            0,
        )
    }

    pub(crate) fn word(&self) -> &AtomicUsize {
        &self.word
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    #[inline]
    fn next(&self, pos: usize) -> usize {
        let idx = pos & (self.one_lap - 1);
        if idx + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Appends `msg` if there is room.
    #[inline]
    pub(crate) fn push(&self, msg: T) -> Push<T> {
        let mut backoff = Backoff::new();
        let mut t = self.word.load(Ordering::Relaxed);
        loop {
            if t & RX_GONE != 0 {
                return Push::NoReceiver(msg);
            }
            let pos = t >> SHIFT;
            let slot = &self.slots[pos & (self.one_lap - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos {
                match self.word.compare_exchange_weak(
                    t,
                    self.next(pos) << SHIFT,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: position `pos` was claimed by this sender
                        // alone, and its slot is free (stamp == pos): the
                        // receiver read the previous lap's message.
                        slot.msg.with_mut(|p| unsafe { (*p).write(msg) });
                        slot.stamp.store(pos + 1, Ordering::Release);
                        return Push::Queued {
                            wake_rx: t & SLEEP != 0,
                        };
                    }
                    Err(cur) => {
                        t = cur;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == pos + 1 {
                // The slot still holds the previous lap's message.
                return Push::Full(msg);
            } else {
                // Another sender claimed `pos`: look again.
                backoff.snooze();
                t = self.word.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the message at `head`, if written; frees its slot at once.
    ///
    /// # Safety
    ///
    /// Only the receiver calls it, with the head [`Ring::new`] returned.
    #[inline]
    pub(crate) unsafe fn pop(&self, head: &mut usize) -> Option<T> {
        let pos = *head;
        let slot = &self.slots[pos & (self.one_lap - 1)];
        if slot.stamp.load(Ordering::Acquire) != pos + 1 {
            return None;
        }
        // SAFETY: the stamp says the sender finished writing; only the
        // receiver reads.
        let msg = slot.msg.with_mut(|p| unsafe { (*p).assume_init_read() });
        slot.stamp
            .store(pos.wrapping_add(self.one_lap), Ordering::Release);
        *head = self.next(pos);
        Some(msg)
    }

    /// Whether the head slot is written.
    #[inline]
    pub(crate) fn head_ready(&self, head: usize) -> bool {
        self.slots[head & (self.one_lap - 1)]
            .stamp
            .load(Ordering::Acquire)
            == head + 1
    }

    /// As [`List::close`].
    ///
    /// # Safety
    ///
    /// As [`Ring::pop`]; called once.
    pub(crate) unsafe fn close(&self, head: &mut usize) {
        let end = self.word.fetch_or(RX_GONE, Ordering::AcqRel) >> SHIFT;
        let mut backoff = Backoff::new();
        while *head != end {
            // SAFETY: forwarded contract.
            match unsafe { self.pop(head) } {
                Some(m) => drop(m),
                None => backoff.snooze(),
            }
        }
    }

    fn count(&self, pos: usize) -> usize {
        let lap = pos / self.one_lap;
        lap * self.cap + (pos & (self.one_lap - 1))
    }

    /// Messages queued, counted from the receiver's published head.
    pub(crate) fn len(&self, head_pos: usize) -> usize {
        let tail = self.word.load(Ordering::Acquire) >> SHIFT;
        self.count(tail).saturating_sub(self.count(head_pos))
    }
}

// SAFETY: as for `List`: each slot passes one message from one sender to
// the receiver, guarded by its stamp.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Ring<T> {}
