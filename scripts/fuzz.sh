#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time on a copy of its
# seed corpus (tests/fuzz/corpus/<target>). A crash fails the script and leaves the input
# that caused it in build-fuzz/artifacts/. docs/reliability.md says how to run them long.
# usage: scripts/fuzz.sh [seconds per target=30]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
CXX=clang++ CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKASSA_FUZZ=ON >/dev/null
cmake --build build-fuzz --target config_fuzz wire_fuzz request_fuzz -j "$(nproc)"
mkdir -p build-fuzz/artifacts
for target in config wire request; do
  corpus=$(mktemp -d /tmp/kassa-fuzz-$target.XXXX)
  cp -r tests/fuzz/corpus/$target/. "$corpus/"
  flags=()
  [ -f tests/fuzz/$target.dict ] && flags=(-dict=tests/fuzz/$target.dict)
  # request_fuzz keeps its in-process kassad across inputs: no per-input leak check (see its header)
  [ "$target" = request ] && flags+=(-detect_leaks=0)
  echo "fuzz: $target for ${secs}s"
  status=0
  build-fuzz/tests/fuzz/${target}_fuzz "${flags[@]}" -max_total_time="$secs" -rss_limit_mb=2048 \
    -artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 "$corpus" > build-fuzz/$target.log 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY)|ERROR" build-fuzz/$target.log || true
  rm -rf "$corpus"
  if [ "$status" -ne 0 ]; then echo "fuzz: $target FAILED (input in build-fuzz/artifacts/)"; exit 1; fi
done
echo "fuzz: no crash"
