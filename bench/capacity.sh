#!/usr/bin/env bash
# bench/capacity.sh - shows the load generator holding 51,000 welcomed
# WebSocket connections at once on this machine: three armonia-limit servers
# (one process may hold at most 20,000 descriptors) and six armonia-loadgen
# processes of 8,500 connections, spread over source addresses
# 127.0.0.2-127.0.0.9. Prints each process's counts and the socket summary.
#   bench/capacity.sh [BIN_DIR]   (default build/bench-tools, built by bench/run.mjs)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/bench-tools}
[ -x "$bin/armonia-limit" ] || { cmake -S "$here" -B "$bin" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$bin" >/dev/null; }
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT
for i in 0 1 2; do
    "$bin/armonia-limit" --port $((41000 + i)) --ctl-port $((41100 + i)) >/dev/null 2>&1 &
    pids+=($!)
done
sleep 0.5
for i in 0 1 2 3 4 5; do
    (sleep 30; echo quit) | "$bin/armonia-loadgen" --port $((41000 + i / 2)) --secret capacity \
        --conns 8500 --base $((i * 8500)) >"$out/$i" &
done
sleep 25
ss -s | sed -n 2p
total=0
for i in 0 1 2 3 4 5; do
    r=$(head -1 "$out/$i" | sed 's/.*"ready":\([0-9]*\).*/\1/')
    echo "loadgen $i: $r of 8500 welcomed"
    total=$((total + r))
done
echo "total welcomed and open at once: $total"
wait
