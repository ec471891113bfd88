#!/usr/bin/env bash
# System calls per message for each throughput contender of
# benches/channel.rs, counted with `perf stat` on the syscall tracepoints.
#
# Each contender runs alone (`--once --only NAME`: one sample, no warm-up)
# with N1 (tiny: the fixed costs) and then N2 messages; syscalls per message
# is (count(N2) - count(N1)) / (N2 - N1), which cancels the fixed costs
# (process start, runtime and thread set-up, joins). Every thread is counted (perf
# stat follows threads). This repeats ROUNDS times and prints the round
# with the median total. Counts depend on timing (how often a consumer finds
# its queue empty and sleeps), so expect them to move between runs.
#
# usage: fdloop-bench/scripts/channel-syscalls.sh [BENCH_BINARY]
#   (without an argument the bench is built with cargo and found from its
#   output). Env: N1 (default 1000), N2 (2000000), ROUNDS (3),
#   PRODUCERS ("1 4").
#
# Needs `perf` with tracepoint access (root, or perf_event_paranoid <= -1
# and a readable tracefs).
set -euo pipefail

N1=${N1:-1000}
N2=${N2:-2000000}
ROUNDS=${ROUNDS:-3}
PRODUCERS=${PRODUCERS:-"1 4"}

bin=${1:-}
if [[ -z $bin ]]; then
    bin=$(cargo bench -p fdloop-bench --bench channel --no-run 2>&1 |
        sed -n 's/.*Executable benches\/channel.rs (\(.*\))/\1/p')
fi
[[ -x $bin ]] || { echo "bench binary not found: '$bin'" >&2; exit 1; }

kinds=(write read futex epoll_wait epoll_pwait ppoll sched_yield)
events=raw_syscalls:sys_enter
for k in "${kinds[@]}"; do events+=",syscalls:sys_enter_$k"; done

contenders=(
    "fdloop unbounded in EventLoop"
    "fdloop unbounded, recv"
    "fdloop bounded(1024) in EventLoop"
    "crossbeam-channel unbounded"
    "crossbeam-channel bounded(1024)"
    "std::sync::mpsc"
    "flume"
    "tokio"
    "calloop"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Prints "total write read ... wake_writes" for one run of one contender.
count() { # producers name msgs
    perf stat -x, -e "$events" -o "$tmp/perf" -- \
        "$bin" --once --part throughput --producers "$1" --only "$2" --msgs "$3" >"$tmp/out"
    local ww
    ww=$(sed -n 's/.*wake writes \([0-9]*\).*/\1/p' "$tmp/out")
    awk -F, -v ww="${ww:-0}" '
        /^#/ || NF < 3 { next }
        { v[$3] = $1 }
        END {
            printf "%s", v["raw_syscalls:sys_enter"]
            n = split("write read futex epoll_wait epoll_pwait ppoll sched_yield", k, " ")
            for (i = 1; i <= n; i++) printf " %s", v["syscalls:sys_enter_" k[i]] + 0
            printf " %s\n", ww
        }' "$tmp/perf"
}

echo "| producers | contender | syscalls/msg | write | read | futex | epoll_wait | epoll_pwait | ppoll | sched_yield | fdloop wake writes/msg |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for p in $PRODUCERS; do
    for c in "${contenders[@]}"; do
        : >"$tmp/rounds"
        for _ in $(seq "$ROUNDS"); do
            a=$(count "$p" "$c" "$N1")
            b=$(count "$p" "$c" "$N2")
            paste -d' ' <(tr ' ' '\n' <<<"$a") <(tr ' ' '\n' <<<"$b") |
                awk -v d=$((N2 - N1)) '{ printf "%.4f ", ($2 - $1) / d } END { print "" }' \
                    >>"$tmp/rounds"
        done
        sort -g -k1,1 "$tmp/rounds" | awk -v r="$ROUNDS" -v p="$p" -v c="$c" '
            NR == int((r + 1) / 2) {
                printf "| %s | %s |", p, c
                for (i = 1; i <= NF; i++) {
                    if (i == NF && c !~ /^fdloop/) printf " – |"
                    else printf " %.4f |", $i
                }
                print ""
            }'
    done
done
