//! An indexed d-ary min-heap of `(key, slot)` nodes.
//!
//! Every move of a node is reported to an [`Index`], which records the
//! node's position per slot; so a node can be removed or re-keyed where it
//! stands in O(log n) — no stale entries, nothing to rebuild. Ties between
//! equal keys are broken by the slots' scheduling sequence numbers (older
//! first), which the index also provides.
//!
//! The arity is 4: a node's children are adjacent, so a sift-down compares
//! four keys from one or two cache lines per level, over half the levels
//! of a binary heap. (Measured against arity 2 on arm + cancel with 10^6
//! timers pending: see `fdloop-bench`'s timers group.)

/// Children per node.
pub(super) const ARITY: usize = 4;

/// One scheduled timer: its key (ns on the queue's clock) and its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Node {
    pub(super) key: u64,
    pub(super) slot: u32,
}

/// Where the heap records positions, and how it breaks ties.
pub(super) trait Index {
    /// `slot`'s node now stands at `pos`.
    fn set_pos(&mut self, slot: u32, pos: u32);
    /// `slot`'s scheduling sequence number (smaller: scheduled earlier).
    fn seq(&self, slot: u32) -> u64;
}

/// The heap. Positions fit in `u32`: the loop has at most 2^24 slots.
#[derive(Default)]
pub(super) struct Heap {
    v: Vec<Node>,
}

#[inline]
fn less(a: Node, b: Node, ix: &impl Index) -> bool {
    a.key < b.key || (a.key == b.key && ix.seq(a.slot) < ix.seq(b.slot))
}

impl Heap {
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.v.len()
    }

    /// The smallest node.
    #[inline]
    pub(super) fn peek(&self) -> Option<Node> {
        self.v.first().copied()
    }

    /// The node at `pos`.
    #[inline]
    pub(super) fn at(&self, pos: u32) -> Option<Node> {
        self.v.get(pos as usize).copied()
    }

    pub(super) fn push(&mut self, node: Node, ix: &mut impl Index) {
        self.v.push(node);
        self.sift_up(self.v.len() - 1, node, ix);
    }

    /// Removes and returns the node at `pos` (`None` past the end).
    pub(super) fn remove(&mut self, pos: u32, ix: &mut impl Index) -> Option<Node> {
        let pos = pos as usize;
        if pos >= self.v.len() {
            return None;
        }
        let last = self.v.pop()?;
        if pos == self.v.len() {
            return Some(last);
        }
        let removed = self.v[pos];
        self.place(pos, last, ix);
        Some(removed)
    }

    /// Gives the node at `pos` the key `key` (its slot's sequence number
    /// may have changed too) and restores the order.
    pub(super) fn rekey(&mut self, pos: u32, key: u64, ix: &mut impl Index) {
        let pos = pos as usize;
        if let Some(n) = self.v.get(pos).copied() {
            self.place(pos, Node { key, ..n }, ix);
        }
    }

    /// Puts `node` into the hole at `pos`, sifting it whichever way it
    /// belongs.
    fn place(&mut self, pos: usize, node: Node, ix: &mut impl Index) {
        if pos > 0 && less(node, self.v[(pos - 1) / ARITY], ix) {
            self.sift_up(pos, node, ix);
        } else {
            self.sift_down(pos, node, ix);
        }
    }

    /// Moves the hole at `i` up while `node` is smaller than its parent,
    /// then fills it with `node`.
    fn sift_up(&mut self, mut i: usize, node: Node, ix: &mut impl Index) {
        while i > 0 {
            let p = (i - 1) / ARITY;
            let parent = self.v[p];
            if !less(node, parent, ix) {
                break;
            }
            self.v[i] = parent;
            ix.set_pos(parent.slot, i as u32);
            i = p;
        }
        self.v[i] = node;
        ix.set_pos(node.slot, i as u32);
    }

    /// Moves the hole at `i` down while a child is smaller than `node`,
    /// then fills it with `node`.
    fn sift_down(&mut self, mut i: usize, node: Node, ix: &mut impl Index) {
        let n = self.v.len();
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                break;
            }
            let mut m = first;
            for c in first + 1..(first + ARITY).min(n) {
                if less(self.v[c], self.v[m], ix) {
                    m = c;
                }
            }
            let child = self.v[m];
            if !less(child, node, ix) {
                break;
            }
            self.v[i] = child;
            ix.set_pos(child.slot, i as u32);
            i = m;
        }
        self.v[i] = node;
        ix.set_pos(node.slot, i as u32);
    }

    /// Every node, in storage order (for scans and invariant checks).
    pub(super) fn nodes(&self) -> &[Node] {
        &self.v
    }

    /// Checks the heap order against `ix` (test builds).
    #[cfg(test)]
    pub(super) fn is_ordered(&self, ix: &impl Index) -> bool {
        (1..self.v.len()).all(|i| !less(self.v[i], self.v[(i - 1) / ARITY], ix))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! The heap alone against a sorted model: random pushes, removals at
    //! recorded positions and re-keyings keep the order, the positions and
    //! the contents exact.
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// Positions and sequence numbers per slot.
    #[derive(Default)]
    struct Ix {
        pos: Vec<Option<u32>>,
        seq: Vec<u64>,
    }

    impl Index for Ix {
        fn set_pos(&mut self, slot: u32, pos: u32) {
            self.pos[slot as usize] = Some(pos);
        }
        fn seq(&self, slot: u32) -> u64 {
            self.seq[slot as usize]
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(u32, u64),
        Remove(u32),
        Rekey(u32, u64),
        Pop,
    }

    const SLOTS: u32 = 40;

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..SLOTS, 0u64..30).prop_map(|(s, k)| Op::Push(s, k)),
            2 => (0..SLOTS).prop_map(Op::Remove),
            2 => (0..SLOTS, 0u64..30).prop_map(|(s, k)| Op::Rekey(s, k)),
            1 => Just(Op::Pop),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn indexed_heap_matches_a_sorted_set(ops in prop::collection::vec(op(), 1..200)) {
            let mut h = Heap::default();
            let mut ix = Ix { pos: vec![None; SLOTS as usize], seq: vec![0; SLOTS as usize] };
            // (key, seq, slot)
            let mut model = BTreeSet::new();
            let mut seq = 0;
            for op in ops {
                match op {
                    Op::Push(s, k) => if ix.pos[s as usize].is_none() {
                        seq += 1;
                        ix.seq[s as usize] = seq;
                        h.push(Node { key: k, slot: s }, &mut ix);
                        model.insert((k, seq, s));
                    },
                    Op::Remove(s) => if let Some(p) = ix.pos[s as usize].take() {
                        let n = h.remove(p, &mut ix).unwrap();
                        prop_assert_eq!(n.slot, s);
                        prop_assert!(model.remove(&(n.key, ix.seq[s as usize], s)));
                    },
                    Op::Rekey(s, k) => if let Some(p) = ix.pos[s as usize] {
                        let old = h.at(p).unwrap();
                        prop_assert!(model.remove(&(old.key, ix.seq[s as usize], s)));
                        seq += 1;
                        ix.seq[s as usize] = seq;
                        h.rekey(p, k, &mut ix);
                        model.insert((k, seq, s));
                    },
                    Op::Pop => {
                        let top = h.peek();
                        prop_assert_eq!(top.map(|n| n.slot), model.first().map(|m| m.2));
                        if let Some(n) = top {
                            h.remove(0, &mut ix);
                            ix.pos[n.slot as usize] = None;
                            model.pop_first();
                        }
                    }
                }
                prop_assert!(h.is_ordered(&ix));
                prop_assert_eq!(h.len(), model.len());
                for (i, n) in h.nodes().iter().enumerate() {
                    prop_assert_eq!(ix.pos[n.slot as usize], Some(i as u32));
                }
            }
        }
    }
}
