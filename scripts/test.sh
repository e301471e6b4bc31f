#!/usr/bin/env bash
# Installs what kassa needs, builds it and runs every test:
#   1. the whole suite (unit, property, store, crash, end-to-end) with ctest;
#   2. the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. each fuzz target for a bounded time (clang + libFuzzer).
# Every randomized test prints its seed; KASSA_SEED=N replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
jobs=$(nproc)

echo "== build (RelWithDebInfo, assertions on)"
scripts/build.sh build
echo "== tests"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 900)

echo "== build (ASan + UBSan)"
scripts/build.sh build-asan -DKASSA_SANITIZE=address,undefined
echo "== tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs" --timeout 1800)

if [ -x scripts/fuzz.sh ]; then
  echo "== fuzz (bounded)"
  scripts/fuzz.sh "${KASSA_FUZZ_SECONDS:-30}"
fi
echo "== all tests passed"
