//! The head-to-head report: every comparison of fdloop against its peers in
//! one process, alternating the contenders, with tables (median, min–max,
//! cost relative to the best peer and to the floor, syscalls per
//! operation), optional JSON records and one SVG chart per group.
//!
//! ```text
//! cargo run --release -p fdloop-bench --example report -- [--quick] [--only GROUP]
//!     [--pin same|cross|off] [--json PATH] [--reps R] [--contender SUBSTR]
//! cargo run --release -p fdloop-bench --features c-peers --example report   # + GLib, libevent, sd-event
//! ```
//!
//! `cargo run --release -p fdloop-bench --bin report` does the same (it
//! builds and runs this example): the Rust peers are dev-dependencies of
//! fdloop-bench, which only examples, tests and benches can use.
//!
//! The groups live in `groups/` (shared with the per-group benches).

#[path = "../groups/mod.rs"]
mod groups;

fn main() -> std::process::ExitCode {
    groups::main_with("report", None)
}
