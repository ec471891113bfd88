//! The event-data word epoll hands back: `[generation:32][slot:24][sub:8]`.
//! The generation is the slot's *registration* generation, bumped whenever
//! the slot's descriptors are (re-)registered, so an event queued for an
//! earlier registration — a removed source, a reused slot, a disable/enable
//! — never reaches the current one.

/// Slots are 24 bits; the top two values are reserved for the loop.
pub(crate) const MAX_SLOTS: u32 = (1 << 24) - 2;
/// The loop's own wake-up notifier.
pub(crate) const REMOTE: u64 = u64::MAX;
/// The loop's timerfd (sub-millisecond timeouts without epoll_pwait2).
pub(crate) const TIMER: u64 = u64::MAX - 1;
/// The lowest internal token (the timer store's three clock timerfds
/// sit just below [`TIMER`]); every source token is below it, because a
/// source's slot is at most `MAX_SLOTS - 1`.
pub(crate) const INTERNAL_MIN: u64 = u64::MAX - 4;

#[inline]
pub(crate) fn encode(slot: u32, reg_gen: u32, sub: u8) -> u64 {
    (u64::from(reg_gen) << 32) | (u64::from(slot) << 8) | u64::from(sub)
}

#[inline]
pub(crate) fn decode(t: u64) -> (u32, u32, u8) {
    ((t >> 8) as u32 & 0xff_ffff, (t >> 32) as u32, t as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        for (slot, gen, sub) in [(0, 0, 0), (MAX_SLOTS - 1, u32::MAX, 255), (12345, 7, 3)] {
            let t = encode(slot, gen, sub);
            assert!(t < INTERNAL_MIN);
            assert_eq!(decode(t), (slot, gen, sub));
        }
    }
}
