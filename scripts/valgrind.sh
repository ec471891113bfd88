#!/usr/bin/env bash
# Runs fdloop integration-test binaries under valgrind memcheck; exits
# non-zero on any memory error or definite leak.
#
#   scripts/valgrind.sh                # the default set below
#   scripts/valgrind.sh channel        # one test binary, default filters
#   VALGRIND_ARGS="--track-origins=yes" scripts/valgrind.sh
#
# Each binary is built with `cargo test --no-run`, its path taken from
# cargo's JSON messages, and run single-threaded (--test-threads=1) under
#   valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
#
# Tests that do not suit valgrind are skipped by name (--skip): those that
# fork or re-run the binary under seccomp/rlimits (the child would run
# natively and prove nothing), those that open 10^4+ descriptors or make
# 10^6 timers (valgrind reserves descriptors and runs ~50x slower), and
# those that assert wall-clock bounds or syscall counts that an
# instrumented, serialised run cannot meet.
#
# rustix's default (linux_raw) backend finds the vDSO through the auxiliary
# vector, which under valgrind points at an unmapped page: the first
# clock_gettime crashes (rustix issue #1559). So the binaries are built with
# rustix's libc backend (RUSTFLAGS=--cfg=rustix_use_libc), in their own
# target directory ($CARGO_TARGET_DIR/valgrind, or target/valgrind) so the
# normal build is not invalidated.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} --cfg=rustix_use_libc"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/valgrind"
# valgrind does not know epoll_pwait2 (it would warn and fail it with ENOSYS):
# start the loops on the timerfd fallback instead.
export FDLOOP_FORCE_TIMEOUT="${FDLOOP_FORCE_TIMEOUT:-timerfd}"

if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind.sh: valgrind not found" >&2
  exit 2
fi

# Per-binary --skip filters (substring match on test names).
skips_for() {
  case "$1" in
    channel)
      # blocked_senders_on_tiny_capacities: 80 000 blocking sends against
      # 10 s timeouts (12–15 s for the whole test under valgrind). One
      # clean-clone CI run on 2026-12-03 saw all four senders time out
      # under valgrind; 40 native runs and 6 more under valgrind (three at
      # a time) did not repeat it. It runs natively in every CI test step.
      # The loom model loom_several_blocked_senders_are_never_stranded
      # (channel/core.rs) finds no lost wake-up with two senders blocked on
      # one tx fd; valgrind's default thread lock is unfair (see its
      # --fair-sched), and the test's receiver polls with sched_yield, so
      # starved senders are the likelier cause.
      echo "sends_to_a_busy_receiver_make_almost_no_syscalls blocked_senders_on_tiny_capacities"
      ;;
    event_loop)
      echo "forked_child_gets_a_clear_error ten_thousand_sources random_insert_remove"
      echo "timeouts_are_never_early_and_not_rounded stats_count remote_wakes_cost_no_syscall"
      ;;
    timer)
      echo "a_million_timers scenario_child timers_run_without_timerfd wall_clock_timer"
      echo "lateness_is_small does_not_drift overlapping_slack missed_periods"
      ;;
    notifier)
      echo "scenario_child falls_back no_backend emfile"
      ;;
    *) ;;
  esac
}

binaries=("$@")
if [ ${#binaries[@]} -eq 0 ]; then
  binaries=(channel event_loop timer notifier)
fi

status=0
for t in "${binaries[@]}"; do
  exe=$(cargo test -p fdloop --test "$t" --no-run --message-format=json 2>/dev/null |
    grep '"reason":"compiler-artifact"' |
    grep "\"name\":\"$t\"" |
    grep '"test":true' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
  if [ -z "$exe" ] || [ ! -x "$exe" ]; then
    echo "valgrind.sh: no test executable found for '$t'" >&2
    exit 2
  fi
  skip_args=()
  for s in $(skips_for "$t"); do
    skip_args+=(--skip "$s")
  done
  echo "=== valgrind: $t ($exe) ${skip_args[*]:-}"
  # shellcheck disable=SC2086 # VALGRIND_ARGS is a word list on purpose
  if ! valgrind --quiet --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    ${VALGRIND_ARGS:-} \
    "$exe" --test-threads=1 "${skip_args[@]}"; then
    echo "valgrind.sh: $t FAILED under valgrind" >&2
    status=1
  fi
done
exit $status
