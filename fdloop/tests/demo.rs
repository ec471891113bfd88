//! Runs the `eventfd_demo` example (the eventfd(2) man page program) and
//! checks its output and exit status.
//!
//! Cargo only builds examples for `cargo test` when no target is selected,
//! so `cargo test --test demo` alone would not build it: the example is built
//! here, once, with the same `cargo` that runs this test, and its path taken
//! from cargo's JSON messages (right for any target dir or profile).

mod util;

use util::{run_example, Run};

fn run_demo(args: &[&str]) -> Run {
    run_example("eventfd_demo", args)
}

/// Checks a bad-argument run: exit status 2, nothing on stdout, and `needles`
/// plus a usage line on stderr.
fn assert_usage_error(run: &Run, needles: &[&str]) {
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.contains("usage:"), "no usage line: {run:?}");
    for needle in needles {
        assert!(run.stderr.contains(needle), "{needle:?} missing: {run:?}");
    }
}

#[test]
fn man_page_numbers_sum_to_28_in_both_rounds() {
    let run = run_demo(&["1", "2", "4", "7", "14"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
    let out = &run.stdout;
    assert_eq!(out.matches("read 28 (0x1c)").count(), 2, "{run:?}");
    for n in ["1", "2", "4", "7", "14"] {
        assert!(
            out.contains(&format!("writer thread: wrote {n} to eventfd")),
            "{run:?}"
        );
        assert!(
            out.contains(&format!("child process: wrote {n} to eventfd")),
            "{run:?}"
        );
    }
    assert!(out.contains("exited with status 0"), "{run:?}");
    assert!(out.contains("WouldBlock"), "{run:?}");

    // The child's lines come before the parent's read: it waits for the child.
    let last_child = out.rfind("child process: wrote").unwrap();
    let parent_read = out.find("parent process: read").unwrap();
    assert!(last_child < parent_read, "{run:?}");
}

#[test]
fn numbers_parse_like_strtoull_base_0() {
    // 0x10 = 16, 010 = 8 (octal), 0 = 0, +3 = 3: 27 = 0x1b.
    let run = run_demo(&["0x10", "010", "0", "+3"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.stdout.matches("read 27 (0x1b)").count(), 2, "{run:?}");
}

#[test]
fn largest_total_is_accepted() {
    let run = run_demo(&["0xfffffffffffffff0", "14"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(
        run.stdout
            .matches("read 18446744073709551614 (0xfffffffffffffffe)")
            .count(),
        2,
        "{run:?}"
    );
}

#[test]
fn not_a_number_is_a_usage_error() {
    let run = run_demo(&["abc"]);
    assert_usage_error(&run, &["\"abc\"", "not a number"]);

    let run = run_demo(&["1", "12abc"]);
    assert_usage_error(&run, &["\"12abc\"", "not a number"]);

    let run = run_demo(&["09"]);
    assert_usage_error(&run, &["\"09\"", "octal"]);

    let run = run_demo(&["0x"]);
    assert_usage_error(&run, &["\"0x\"", "not a number"]);

    let run = run_demo(&[""]);
    assert_usage_error(&run, &["\"\"", "empty"]);
}

#[test]
fn negative_is_a_usage_error() {
    let run = run_demo(&["-5"]);
    assert_usage_error(&run, &["\"-5\"", "negative"]);
}

#[test]
fn u64_max_is_a_usage_error() {
    let run = run_demo(&["18446744073709551615"]);
    assert_usage_error(&run, &["\"18446744073709551615\"", "refused by eventfd"]);

    let run = run_demo(&["0xffffffffffffffff"]);
    assert_usage_error(&run, &["\"0xffffffffffffffff\"", "refused by eventfd"]);
}

#[test]
fn too_large_is_a_usage_error() {
    let run = run_demo(&["18446744073709551616"]);
    assert_usage_error(&run, &["\"18446744073709551616\"", "too large"]);
}

#[test]
fn total_past_max_counter_is_a_usage_error() {
    // Each alone is fine; together they pass MAX_COUNTER by 1.
    let run = run_demo(&["0xfffffffffffffff0", "15"]);
    assert_usage_error(&run, &["\"15\"", "block forever"]);
}

#[test]
fn all_zero_is_a_usage_error() {
    let run = run_demo(&["0", "00", "0x0"]);
    assert_usage_error(&run, &["block forever"]);
}

#[test]
fn no_arguments_is_a_usage_error() {
    let run = run_demo(&[]);
    assert_usage_error(&run, &["no numbers"]);
}

#[test]
fn help_prints_usage_and_succeeds() {
    let run = run_demo(&["--help"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("usage:"), "{run:?}");
}
