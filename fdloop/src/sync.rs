//! The atomics fdloop's protocols use: `std`'s normally, `loom`'s when the
//! crate is built with `RUSTFLAGS="--cfg loom"` for model checking.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
