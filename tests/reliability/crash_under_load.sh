#!/usr/bin/env bash
# Crash consistency under load: kassad (durability fsync) is killed with SIGKILL while
# kassa-bench writes transfers (perf/scenarios/uniform.yaml), restarted, and checked after
# every crash:
#   (a) every acknowledged transfer of every cycle so far is stored as sent, and every
#       refused one is absent;
#   (b) sending this cycle's acknowledged transfers again answers `exists` for each one;
#   (c) no account with debits_must_not_exceed_credits is overdrawn;
#   (d) over all accounts (and the bank) debits equal credits;
#   (e) before the restart, `kassa verify` finds the store the crash left consistent;
# and, at the end, kassad stops on SIGTERM with status 0 and `kassa verify` finds the store
# consistent. (a)-(d) are tests/reliability/acked_check.cpp; see docs/reliability.md.
#
# usage: crash_under_load.sh [cycles=3] [seconds_per_cycle=3] [accounts=1000]
# BUILD_DIR (default build) holds the built kassad, kassa, kassa-bench and acked_check; this
# script builds nothing. SHARDS (default 1) sets store.shards: with more, most transfers cross
# shards and the crashes fall between saga legs. KASSA_SEED=N replays the kill times of a run. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
cycles=${1:-3}; secs=${2:-3}; accounts=${3:-1000}
build=${BUILD_DIR:-build}
seed=${KASSA_SEED:-$(( (RANDOM << 15) | RANDOM ))}
RANDOM=$seed
[[ $cycles =~ ^[0-9]+$ && $secs =~ ^[0-9]+$ && $accounts =~ ^[0-9]+$ ]] || { echo "crash_under_load: arguments are whole numbers"; exit 2; }
(( cycles >= 1 && cycles <= 1000 && secs >= 1 && secs <= 600 && accounts >= 2 && accounts <= 1000000 )) ||
  { echo "crash_under_load: an argument is out of range"; exit 2; }

kassad=$build/runtime/kassad; kassa=$build/runtime/kassa
load=$build/perf/kassa-bench; check=$build/tests/reliability/acked_check
for b in "$kassad" "$kassa" "$load" "$check"; do
  [ -x "$b" ] || { echo "crash_under_load: $b is not built (cmake --build $build)"; exit 2; }
done

# The load: accounts funded with 20 transfers' worth, so that some of them run dry and the
# balance limit refuses transfers; small batches, so that a crash falls between many acks.
funding=10000; amount=500
load_args=(perf/scenarios/uniform.yaml --quiet --connections 4 --depth 4 --events 500 --accounts "$accounts"
  --set amount_min="$amount" --set amount_max="$amount" --set funding="$funding")
start_timeout_s=30; stop_timeout_s=60; check_timeout_s=600

dir=$(mktemp -d /tmp/kassa-crash.XXXX)
kassad_pid=""; loader_pid=""; failed=0
cleanup() {
  [ -n "$loader_pid" ] && kill -9 "$loader_pid" 2>/dev/null || true
  [ -n "$kassad_pid" ] && kill -9 "$kassad_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$failed" -eq 0 ]; then rm -rf "$dir"; else echo "crash_under_load: logs and data kept in $dir"; fi
}
trap cleanup EXIT
fail() { echo "crash_under_load: FAILED: $*"; failed=1; }

. scripts/kassad-lib.sh
kassad_config "$dir/kassa.yaml" "$dir/data" "${SHARDS:-1}" 16384

. tests/reliability/crash_lib.sh
acked_unit=requests
violations=0; acked=0; logs=()
run_check() { # $1: this cycle's log (sent again), then every earlier log
  local out status=0
  out=$(timeout "$check_timeout_s" "$check" --address "$address" --resend "$@" 2>&1) || status=$?
  echo "$out" | sed 's/^/  /'
  local line; line=$(grep '^acked_check:.*violations=' <<<"$out" || true)
  if [ -z "$line" ]; then fail "acked_check did not finish (status $status)"; return; fi
  violations=$((violations + $(sed -n 's/.*violations=\([0-9]*\).*/\1/p' <<<"$line")))
  acked=$(sed -n 's/.* acked=\([0-9]*\).*/\1/p' <<<"$line")
  [ "$status" -le 1 ] || fail "acked_check exited $status"
}

echo "crash_under_load: seed=$seed cycles=$cycles seconds_per_cycle=$secs accounts=$accounts dir=$dir"
crash_cycles '^(uniform: |kassa-bench uniform: setup)'

echo "crash_under_load: cycles=$cycles acked_transfers=$acked violations=$violations"
[ "$violations" -eq 0 ] || failed=1
if [ "$failed" -ne 0 ]; then echo "crash_under_load: KASSA_SEED=$seed replays the kill times"; exit 1; fi
