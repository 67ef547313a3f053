#!/usr/bin/env bash
# Runs one libFuzzer target briefly on its committed seeds, for ctest:
#   fuzz/run.sh BINARY SEED_DIR WORK_DIR SECONDS MAX_LEN [DICT]
# New inputs go to WORK_DIR/corpus (emptied first, so the seeds in the tree
# are only read and a second run starts the same way); a crash, a leak or a
# broken check leaves its input in WORK_DIR/artifacts/ and fails the test.
set -euo pipefail
bin=$1 seeds=$2 work=$3 seconds=$4 max_len=$5 dict=${6:-}

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
[ -d "$seeds" ] || { echo "run.sh: no seed corpus at $seeds" >&2; exit 1; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
opts=()
[ -n "$dict" ] && opts=(-dict="$dict")
if ! "$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${opts[@]}" -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds"; then
    echo "run.sh: $(basename "$bin") failed; the input is in $work/artifacts/:" >&2
    ls -l "$work/artifacts" >&2
    exit 1
fi
