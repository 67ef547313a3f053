#!/usr/bin/env bash
# Runs every test of Armonía Hub on a fresh machine: installs what is missing,
# builds, starts a private PostgreSQL (through CTest's pg fixture), runs the
# unit tests, the integration tests (real hubs, real PostgreSQL, local FCM,
# Twilio and SMTP stand-ins), the JS client's tests and the guard console in
# headless Chromium, then builds and runs all of it again under
# AddressSanitizer + UndefinedBehaviorSanitizer, and finally builds the
# libFuzzer targets of fuzz/ with clang and runs each briefly on its seeds.
# Before all that, the other builds people make (Release, Debug, MinSizeRel,
# clang) must compile clean (scripts/build-matrix.sh). Every build here
# treats warnings as errors (HUB_WERROR=ON).
#
#   scripts/test.sh            all four passes
#   scripts/test.sh builds     only the build matrix (no tests run)
#   scripts/test.sh plain      only the normal build
#   scripts/test.sh sanitize   only the sanitizer build
#   scripts/test.sh fuzz       only the fuzz targets (HUB_FUZZ_SECONDS each, default 8)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/deps.sh
(cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
# The JS client's packages and Debian's chromium for the console's browser test.
bash scripts/browser-deps.sh

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:halt_on_error=1:quarantine_size_mb=32}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
jobs=$(nproc 2>/dev/null || echo 2)

run_pass() {
    local name=$1 sanitize=$2 dir="$root/build/test-$1"
    echo "== $name build"
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHUB_WERROR=ON -DHUB_SANITIZE="$sanitize" >/dev/null
    cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1 || { cat "$dir/build.log"; exit 1; }
    echo "== $name tests"
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 900
}

# Every fuzz target for HUB_FUZZ_SECONDS on its seeds (fuzz/README.md); a
# crash, a leak or a broken check fails the pass and names the saved input.
run_fuzz() {
    local dir="$root/build/test-fuzz"
    echo "== fuzz build (clang, libFuzzer, ASan + UBSan)"
    CC=clang cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHUB_WERROR=ON -DHUB_FUZZ=ON \
        -DHUB_FUZZ_SECONDS="${HUB_FUZZ_SECONDS:-8}" >/dev/null
    cmake --build "$dir" --target fuzz -j "$jobs" >"$dir/build.log" 2>&1 || { cat "$dir/build.log"; exit 1; }
    echo "== fuzz targets"
    ctest --test-dir "$dir" -R '^fuzz\.' --output-on-failure -j "$jobs" --timeout 300
}

passes=("${@:-builds plain sanitize fuzz}")
for p in ${passes[*]}; do
    case $p in
    builds) bash scripts/build-matrix.sh ;;
    plain) run_pass plain OFF ;;
    sanitize) run_pass sanitize ON ;;
    fuzz) run_fuzz ;;
    *) echo "unknown pass '$p' (builds, plain, sanitize or fuzz)" >&2; exit 2 ;;
    esac
done
echo "== all tests passed"
