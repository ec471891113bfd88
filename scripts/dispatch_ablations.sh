#!/usr/bin/env bash
# Dispatch ablations (BENCHMARKS.md, "The same, in nanoseconds"): builds
# fdloop-bench's `dispatch_ab` example unchanged and with each patch of
# bench-results/ablations/ applied in turn (throwaway changes to fdloop's
# dispatch path, most of them unsound; the patches are never committed as
# code), then runs each build right after the unchanged one, twice, at
# N = 1 and N = 100 ready eventfds. Prints fdloop's ratio to the floor per
# run. Needs a clean fdloop/src; restores it after each build.
#
#   bash scripts/dispatch_ablations.sh [PATCH-NAME...]   # default: all
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git diff --quiet -- fdloop/src; then
    echo "fdloop/src has local changes; commit or stash them first" >&2
    exit 1
fi
out=$(mktemp -d)
trap 'git checkout -q -- fdloop/src; rm -rf "$out"' EXIT
build() {
    # The patched builds leave code unused: their warnings go to a log,
    # shown only if the build fails.
    if ! cargo build -q --release -p fdloop-bench --example dispatch_ab 2>"$out/build.log"; then
        cat "$out/build.log" >&2
        exit 1
    fi
    cp target/release/examples/dispatch_ab "$out/$1"
}
build base
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for p in bench-results/ablations/dispatch-*.patch; do
        n=${p##*/dispatch-}
        names+=("${n%.patch}")
    done
fi
for n in "${names[@]}"; do
    git apply "bench-results/ablations/dispatch-$n.patch"
    build "$n"
    git checkout -q -- fdloop/src
done
for n in "${names[@]}"; do
    for size in 1 100; do
        for run in 1 2; do
            printf '%-16s run %s: ' unchanged "$run"
            "$out/base" "$size" 300
            printf '%-16s run %s: ' "$n" "$run"
            "$out/$n" "$size" 300
        done
    done
done
