#!/usr/bin/env bash
# Builds Armonía Hub the ways other people will, with warnings as errors, so
# that none of them breaks unnoticed: gcc Release and clang with the unit
# tests (optimisers and clang each find warnings the others do not), gcc
# Debug and MinSizeRel the daemon alone without cmocka (HUB_BUILD_TESTS=OFF).
# The RelWithDebInfo gcc build is scripts/test.sh's own plain pass.
#
#   scripts/build-matrix.sh          every build, in build/matrix-<name>
#   scripts/build-matrix.sh release  only the named ones (release, clang, debug, minsizerel)
#
# Builds are incremental: a second run rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2

# build NAME CC BUILD_TYPE TESTS TARGET: configure and build one variant.
build() {
    local name=$1 cc=$2 type=$3 tests=$4 target=$5 dir="$root/build/matrix-$1"
    echo "== build $name ($cc, $type, tests $tests)"
    mkdir -p "$dir"
    CC=$cc cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DHUB_WERROR=ON \
        -DHUB_BUILD_TESTS="$tests" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
    cmake --build "$dir" -j "$jobs" ${target:+--target "$target"} >"$dir/build.log" 2>&1 ||
        { cat "$dir/build.log"; exit 1; }
}

variants=("${@:-release clang debug minsizerel}")
for v in ${variants[*]}; do
    case $v in
    release) build release gcc Release ON "" ;;
    clang) build clang clang RelWithDebInfo ON "" ;;
    debug) build debug gcc Debug OFF armonia-hub ;;
    minsizerel) build minsizerel gcc MinSizeRel OFF armonia-hub ;;
    *) echo "unknown build '$v' (release, clang, debug or minsizerel)" >&2; exit 2 ;;
    esac
done
echo "== every build is clean"
