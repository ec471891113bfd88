//! Reusing the allocations of removed sources.
//!
//! Every source lives in the loop boxed with its callback. A program that
//! inserts and removes sources at a high rate — a timeout per request,
//! armed and cancelled — would otherwise pay an allocation and a free for
//! each (about an eighth of an insert + remove, measured with callgrind).
//! So when a source is removed, its value is dropped at once (the source
//! closes its descriptors, the callback's captures go) but the memory is
//! kept, and the next insert of a source with the same size and alignment
//! writes into it instead of allocating. At most [`KEEP`] allocations are
//! kept per loop; they are freed with the loop.

use std::alloc::Layout;
use std::ptr::NonNull;

use super::registration::Dispatch;
use super::shared::Shared;

/// The most allocations one loop keeps for reuse.
const KEEP: usize = 16;

/// Allocations kept for reuse: each of `Layout`, allocated by the global
/// allocator, holding no value.
#[derive(Default)]
pub(super) struct Spare {
    blocks: Vec<(Layout, NonNull<u8>)>,
}

impl Drop for Spare {
    fn drop(&mut self) {
        for (layout, p) in self.blocks.drain(..) {
            // SAFETY: each block was allocated by the global allocator with
            // `layout` (it came from a `Box` of a value of that layout,
            // see `recycle`) and holds no value; nothing else refers to it.
            unsafe { std::alloc::dealloc(p.as_ptr(), layout) };
        }
    }
}

impl<S> Shared<S> {
    /// Boxes `d`, in a kept allocation of its layout if there is one.
    #[inline]
    pub(super) fn boxed<D>(&self, d: D) -> Box<dyn Dispatch<S>>
    where
        D: Dispatch<S> + 'static,
    {
        self.boxed_value(d)
    }

    /// Boxes `v`, in a kept allocation of its layout if there is one (the
    /// caller turns the box into the trait object it stores).
    #[inline]
    pub(super) fn boxed_value<T>(&self, v: T) -> Box<T> {
        let layout = Layout::new::<T>();
        let found = {
            let mut spare = self.spare.borrow_mut();
            match spare.blocks.iter().rposition(|(l, _)| *l == layout) {
                Some(i) => Some(spare.blocks.swap_remove(i).1),
                None => None,
            }
        };
        match found {
            Some(p) => {
                let p = p.as_ptr().cast::<T>();
                // SAFETY: `p` was allocated by the global allocator with
                // `T`'s layout (size and alignment equal, checked above;
                // the spares never hold zero-sized layouts), holds no
                // value, and is ours alone (taken out of the spares).
                // Writing `v` makes it a valid `T`, and a `Box<T>` may own
                // memory allocated with `T`'s layout, which is what
                // `Box::from_raw` requires.
                unsafe {
                    p.write(v);
                    Box::from_raw(p)
                }
            }
            None => Box::new(v),
        }
    }

    /// Drops a removed source's value (a dispatcher, a timeout's closure)
    /// and keeps its allocation for reuse (or frees it when enough are
    /// kept).
    pub(super) fn recycle<T: ?Sized>(&self, d: Box<T>) {
        let layout = Layout::for_value(&*d);
        if layout.size() == 0 || self.spare.borrow().blocks.len() >= KEEP {
            drop(d);
            return;
        }
        let raw: *mut T = Box::into_raw(d);
        // SAFETY: `raw` came from `Box::into_raw`, so it points to a valid
        // value that nothing else refers to; it is dropped exactly once,
        // here. If its drop panics, the allocation leaks (never freed
        // twice): it has not been put among the spares yet.
        unsafe { std::ptr::drop_in_place(raw) };
        if let Some(p) = NonNull::new(raw.cast::<u8>()) {
            self.spare.borrow_mut().blocks.push((layout, p));
        }
    }
}
