//! The `async_echo` example: it drives itself, checks every echo, prints
//! its figure and exits 0; bad flags give the usage and exit 2.

mod util;

use util::run_example;

#[test]
fn drives_itself_and_checks_every_echo() {
    let run = run_example("async_echo", &["--conns", "20", "--rounds", "200"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(
        run.stdout
            .contains("20 connections (20 accepted), 4000 round trips"),
        "{run:?}"
    );
    assert!(run.stdout.contains("round trips/s"), "{run:?}");
}

#[test]
fn bad_flags_give_usage_and_exit_2() {
    for args in [&["--bogus"][..], &["--conns", "0"], &["--rounds"]] {
        let run = run_example("async_echo", args);
        assert_eq!(run.code(), Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains("usage: async_echo"), "{run:?}");
    }
}
