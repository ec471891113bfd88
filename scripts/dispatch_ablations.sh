#!/usr/bin/env bash
# Dispatch ablations (BENCHMARKS.md, "The same, in nanoseconds"): builds
# fdloop-bench's `dispatch_ab` example unchanged and with each patch of
# bench-results/ablations/ applied in turn (throwaway changes to fdloop's
# dispatch path, most of them unsound; the patches are never committed as
# code), then runs each build right after the unchanged one, twice, at
# N = 1 and N = 100 ready eventfds (SIZES="1 100 10000" for others).
# Prints every contender's ratios to the floor per run, mio's among them,
# fdloop's `dispatch_pending` last.
#
# The patches were written against the dispatch path of commit ea5b2a2
# (the one the BENCHMARKS table measured); the dispatch path has changed
# since, so the builds are made in a temporary worktree of that commit
# (ABLATION_BASE=COMMIT to choose another), leaving this checkout alone.
# The patch `lowerbound-unsound` was written against commit 63b71ab:
#
#   ABLATION_BASE=63b71ab SIZES="1 100 10000" \
#     bash scripts/dispatch_ablations.sh lowerbound-unsound
#
#   bash scripts/dispatch_ablations.sh [PATCH-NAME...]   # default: all but lowerbound-*
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
base=${ABLATION_BASE:-ea5b2a2}
sizes=${SIZES:-1 100}
wt=$(mktemp -d)
out=$(mktemp -d)
cleanup() {
    git -C "$repo" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
    rm -rf "$out"
}
trap cleanup EXIT
git worktree add -q --detach "$wt" "$base"
cd "$wt"
build() {
    # The patched builds leave code unused: their warnings go to a log,
    # shown only if the build fails.
    if ! cargo build -q --release -p fdloop-bench --features peers --example dispatch_ab 2>"$out/build.log"; then
        cat "$out/build.log" >&2
        exit 1
    fi
    cp target/release/examples/dispatch_ab "$out/$1"
}
build base
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for p in "$repo"/bench-results/ablations/dispatch-*.patch; do
        n=${p##*/dispatch-}
        n=${n%.patch}
        # The lower bound has its own base (above): asked for by name only.
        [[ $n == lowerbound-* ]] || names+=("$n")
    done
fi
for n in "${names[@]}"; do
    if ! git apply "$repo/bench-results/ablations/dispatch-$n.patch"; then
        echo "patch $n does not apply to $base: set ABLATION_BASE (see the top of this script)" >&2
        exit 1
    fi
    build "$n"
    git checkout -q -- fdloop/src
done
for n in "${names[@]}"; do
    for size in $sizes; do
        for run in 1 2; do
            printf '%-16s run %s: ' unchanged "$run"
            "$out/base" "$size" 300
            printf '%-16s run %s: ' "$n" "$run"
            "$out/$n" "$size" 300
        done
    done
done
