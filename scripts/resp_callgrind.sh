#!/usr/bin/env bash
# User-space instructions per request of the RESP example server, counted
# by callgrind (exact, unlike times on a shared VM): the server runs under
# valgrind for two redis-benchmark runs of different lengths, GET, 50
# clients, -P 1, and the difference of the two totals over the difference
# of the request counts is printed — start-up and shutdown cancel out.
#
#   scripts/resp_callgrind.sh            # callback mode and --async
#   MODES=async scripts/resp_callgrind.sh
#
# Needs valgrind, redis-benchmark and redis-cli. Builds the example with
# line tables into $CARGO_TARGET_DIR (default target/callgrind), with
# rustix on libc so that every system call goes through a libc function
# (callgrind then counts the same user-space work for both modes).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in valgrind redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "resp_callgrind: $tool not found" >&2; exit 1; }
done
MODES=${MODES:-"callback async"}
PORT=${PORT:-6398}
N1=${N1:-10000}
N2=${N2:-30000}
TARGET=${CARGO_TARGET_DIR:-target/callgrind}
RUSTFLAGS="--cfg rustix_use_libc" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet -p fdloop --example resp_server
exe="$TARGET/release/examples/resp_server"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Total instructions of one server run that answers `n` GETs.
count() { # mode n
  local arg=() vp
  [ "$1" = async ] && arg=(--async)
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$exe" --port "$PORT" "${arg[@]}" \
    >/dev/null 2>&1 &
  vp=$!
  for _ in $(seq 100); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    sleep 0.2
  done
  redis-benchmark -p "$PORT" -q -t get -n "$2" -c 50 -P 1 >/dev/null 2>&1
  kill -TERM "$vp"
  wait "$vp" 2>/dev/null || true
  awk '/^totals:/ { print $2 }' "$out/cg"
}

for mode in $MODES; do
  a=$(count "$mode" "$N1")
  b=$(count "$mode" "$N2")
  echo "$mode: $(( (b - a) / (N2 - N1) )) instructions per request"
done
