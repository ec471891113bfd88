#!/usr/bin/env bash
# redis-benchmark against the resp_server example and against Debian's
# redis-server, side by side.
#
#   scripts/bench_resp.sh            # needs redis-server and redis-tools
#
# Each server runs pinned to CPU $SERVER_CPU, redis-benchmark to CPU
# $CLIENT_CPU. For each pipeline depth the runs alternate (fdloop, redis,
# fdloop, redis, ...) after one unrecorded warm-up run each; the table shows
# the median requests/s over $ROUNDS runs, the ratio fdloop/redis, and each
# server's CPU time per request (from /proc/PID/stat around each run: on a
# 2-CPU machine the single-threaded redis-benchmark client is often the
# bottleneck, and then CPU per request is the sharper comparison).
#
# Knobs (environment): ROUNDS (5), REQUESTS (200000; x depth/2 when
# pipelined), CLIENTS (50),
# PIPELINES ("1 16"), TESTS (ping,set,get), SERVER_CPU (0), CLIENT_CPU (1),
# FDLOOP_PORT (6390), REDIS_PORT (6391), CARGO_TARGET_DIR (target),
# ASYNC (0; 1 adds resp_server --async on ASYNC_PORT, 6392, as a third
# server in the same alternation, and columns async/callback: the ratio of
# the medians, and the median of the per-round ratios with their range —
# each round's two runs were next to each other in time, so the paired
# ratio is the steadier figure on a machine whose rates drift).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINES=${PIPELINES:-"1 16"}
TESTS=${TESTS:-ping,set,get}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
FDLOOP_PORT=${FDLOOP_PORT:-6390}
REDIS_PORT=${REDIS_PORT:-6391}
ASYNC=${ASYNC:-0}
ASYNC_PORT=${ASYNC_PORT:-6392}
TARGET=${CARGO_TARGET_DIR:-target}

for tool in redis-server redis-benchmark redis-cli taskset; do
  if ! command -v "$tool" >/dev/null; then
    echo "bench_resp: $tool not found (apt-get install redis-server redis-tools util-linux)" >&2
    exit 1
  fi
done

cargo build --release --quiet -p fdloop --example resp_server
exe="$TARGET/release/examples/resp_server"

pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT

port_busy() { redis-cli -h 127.0.0.1 -p "$1" ping >/dev/null 2>&1; }

wait_ready() {
  for _ in $(seq 100); do
    port_busy "$1" && return 0
    sleep 0.05
  done
  echo "bench_resp: nothing answers on port $1" >&2
  exit 1
}

names=(fdloop redis)
ports=("$FDLOOP_PORT" "$REDIS_PORT")
[ "$ASYNC" = 1 ] && names+=(fdloop-async) && ports+=("$ASYNC_PORT")
for port in "${ports[@]}"; do
  if port_busy "$port"; then
    echo "bench_resp: port $port is already in use" >&2
    exit 1
  fi
done

taskset -c "$SERVER_CPU" "$exe" --port "$FDLOOP_PORT" >/dev/null &
pids+=($!)
taskset -c "$SERVER_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
  --save '' --appendonly no --daemonize no --logfile '' >/dev/null &
pids+=($!)
if [ "$ASYNC" = 1 ]; then
  taskset -c "$SERVER_CPU" "$exe" --async --port "$ASYNC_PORT" >/dev/null &
  pids+=($!)
fi
for port in "${ports[@]}"; do
  wait_ready "$port"
done

# Server CPU time so far (utime + stime), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# One redis-benchmark run per test in $TESTS against one server; prints
# "TEST RPS CPU_US" lines, CPU_US being the server's CPU time per request
# in microseconds (shared evenly by the tests of one run, e.g. ping's two).
bench() { # pid port pipeline requests
  local t out before after lines
  for t in ${TESTS//,/ }; do
    before=$(cpu_ticks "$1")
    out=$(taskset -c "$CLIENT_CPU" redis-benchmark -h 127.0.0.1 -p "$2" -q -t "$t" \
      -c "$CLIENTS" -n "$4" -P "$3" 2>&1 |
      tr '\r' '\n' |
      sed -n 's/^ *\([A-Z_]*\): \([0-9.]*\) requests per second.*/\1 \2/p')
    after=$(cpu_ticks "$1")
    lines=$(printf '%s\n' "$out" | grep -c . || true)
    [ "$lines" -gt 0 ] || { echo "bench_resp: no result for $t on port $2" >&2; exit 1; }
    printf '%s\n' "$out" | awk -v ticks=$((after - before)) -v hz="$HZ" -v n="$4" -v k="$lines" \
      '{ printf "%s %s %.2f\n", $1, $2, ticks / hz * 1e6 / (n * k) }'
  done
}

# Requests per run: REQUESTS at -P 1, REQUESTS x depth/2 deeper, so that a
# pipelined run lasts seconds rather than a fraction of one (short runs on
# a shared VM scatter by a factor of 3).
requests() { echo $((REQUESTS * ($1 > 2 ? $1 / 2 : 1))); }

results=$(mktemp)
trap 'cleanup; rm -f "$results"' EXIT

echo "# $(nproc) CPUs, $(uname -r); $(redis-server --version | cut -d' ' -f1-3)"
echo "# redis-benchmark -q -t <test> -c $CLIENTS -P <depth> -n <$REQUESTS x max(1, depth/2)>; servers on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
for p in $PIPELINES; do
  for i in "${!names[@]}"; do
    bench "${pids[$i]}" "${ports[$i]}" "$p" 20000 >/dev/null # warm-up
  done
  for round in $(seq "$ROUNDS"); do
    for i in "${!names[@]}"; do
      server=${names[$i]} port=${ports[$i]}
      bench "${pids[$i]}" "$port" "$p" "$(requests "$p")" | while read -r test rps cpu; do
        echo "$server $p $test $rps $cpu $round" | tee -a "$results" | sed "s/^/# round $round: /"
      done
    done
  done
done

# Paired ratios: per round, server A's rate over server B's (their runs
# were next to each other in time); prints "median [min-max]".
paired() { # serverA serverB depth test
  awk -v a="$1" -v b="$2" -v p="$3" -v t="$4" '
    $2 == p && $3 == t && $1 == a { ra[$6] = $4 }
    $2 == p && $3 == t && $1 == b { rb[$6] = $4 }
    END { for (r in ra) if ((r in rb) && rb[r] > 0) print ra[r] / rb[r] }' "$results" |
    sort -g | awk '{ v[NR] = $1 } END {
      m = (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)
      printf "%.2f× [%.2f–%.2f]", m, v[1], v[NR] }'
}

# Medians per (server, depth, test), then the table.
median() { # server depth test column
  awk -v s="$1" -v p="$2" -v t="$3" -v c="$4" '$1 == s && $2 == p && $3 == t { print $c }' "$results" |
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
echo
echo "Medians of $ROUNDS runs; CPU/req: the server's CPU time per request."
echo
if [ "$ASYNC" = 1 ]; then
  echo "| test | -P | fdloop req/s | redis-server req/s | fdloop/redis | fdloop CPU/req | redis CPU/req | fdloop --async req/s | async/callback | async/callback, per round: median [min–max] | --async CPU/req |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
else
  echo "| test | -P | fdloop req/s | redis-server req/s | fdloop/redis | fdloop CPU/req | redis CPU/req |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
fi
for p in $PIPELINES; do
  for t in $(awk -v p="$p" '$2 == p { print $3 }' "$results" | awk '!seen[$0]++'); do
    f=$(median fdloop "$p" "$t" 4) r=$(median redis "$p" "$t" 4)
    fc=$(median fdloop "$p" "$t" 5) rc=$(median redis "$p" "$t" 5)
    row=$(awk -v t="$t" -v p="$p" -v f="$f" -v r="$r" -v fc="$fc" -v rc="$rc" 'BEGIN {
      printf "| %s | %s | %.0f | %.0f | %.2f× | %.2f µs | %.2f µs |", t, p, f, r, (r > 0 ? f / r : 0), fc, rc
    }')
    if [ "$ASYNC" = 1 ]; then
      a=$(median fdloop-async "$p" "$t" 4) ac=$(median fdloop-async "$p" "$t" 5)
      pr=$(paired fdloop-async fdloop "$p" "$t")
      row+=$(awk -v f="$f" -v a="$a" -v ac="$ac" -v pr="$pr" 'BEGIN {
        printf " %.0f | %.2f× | %s | %.2f µs |", a, (f > 0 ? a / f : 0), pr, ac
      }')
    fi
    echo "$row"
  done
done
