//! Benchmarks of fdloop against its peers (placeholder crate root).
