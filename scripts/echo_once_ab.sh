#!/bin/bash
# A/B of the echo server driven by `run_once` (echo_probe fdloop-once) between
# two commits' library code, with this commit's benchmark code on both, each
# `run_once` bounded to 10 ms (so that a library where `run_once` blocks after
# its last task, as before 92ab8c6, still ends). Counts the loop's notifier
# writes with `perf stat` (Debian linux-perf) and prints round trips per
# second, alternating the two builds.
#
#   bash scripts/echo_once_ab.sh OLD_COMMIT NEW_COMMIT [reps] [placement]
set -euo pipefail
old=$1; new=$2; reps=${3:-5}; place=${4:-cross}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/old" >/dev/null 2>&1 || true; git -C "$root" worktree remove --force "$work/new" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
for side in old new; do
  commit=${!side}
  git -C "$root" worktree add -q "$work/$side" "$commit"
  cp "$root/fdloop-bench/src/groups/async_rt.rs" "$work/$side/fdloop-bench/src/groups/async_rt.rs"
  cp "$root/fdloop-bench/examples/echo_probe.rs" "$work/$side/fdloop-bench/examples/echo_probe.rs"
  sed -i 's/ev.run_once(&mut (), None)/ev.run_once(\&mut (), Some(Duration::from_millis(10)))/' \
    "$work/$side/fdloop-bench/src/groups/async_rt.rs"
  (cd "$work/$side" && CARGO_TARGET_DIR="$work/target-$side" \
    cargo build --release -q -p fdloop-bench --features peers --example echo_probe)
done
for i in $(seq "$reps"); do
  for side in old new; do
    out=$(perf stat -x, -e syscalls:sys_enter_write \
      "$work/target-$side/release/examples/echo_probe" fdloop-once 50 2000 "$place" 2>&1)
    rate=$(echo "$out" | grep -o '[0-9.]* M round trips/s' | cut -d' ' -f1)
    writes=$(echo "$out" | grep sys_enter_write | cut -d, -f1)
    echo "$side ${!side} $place rep $i: $rate M round trips/s, $writes writes"
  done
done
