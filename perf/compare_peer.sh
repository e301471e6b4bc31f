#!/usr/bin/env bash
# Runs kassa and the PostgreSQL peer (../shared/peer/postgres/run.sh) on the same transfer
# workload in the same run, and prints throughput and the ratios. Durable on both sides:
# kassad with durability fsync, PostgreSQL with synchronous_commit=on.
#
# usage: perf/compare_peer.sh [seconds=10] [accounts=100000] [connections=4] [batch=2000]
# KASSA_SHARDS=N (default 1) runs kassad with N shards; KASSA_HOT_SPLIT=K (default 0: off) splits
# the hot mix's hot account (id 1) into K sub-accounts (docs/sharding.md).
# Writes the table to perf/results/compare-<UTC time>.txt as well.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; accounts=${2:-100000}; connections=${3:-4}; batch=${4:-2000}
shards=${KASSA_SHARDS:-1}; hot_split=${KASSA_HOT_SPLIT:-0}
peer=${KASSA_PEER:-../shared/peer/postgres/run.sh}
[ -x build/runtime/kassad ] && [ -x build/perf/kassa_load ] || scripts/build.sh build >/dev/null

. scripts/kassad-lib.sh
dir=$(mktemp -d /tmp/kassa-compare.XXXX)
trap '[ -f "$dir/kassad.pid" ] && kill "$(cat "$dir/kassad.pid")" 2>/dev/null; sleep 0.5; rm -rf "$dir"' EXIT

# Each mix runs against its own fresh store, as the peer loads its accounts afresh.
run_mix() { # mix seed -> the loader's result line
  rm -rf "$dir/data"
  kassad_config "$dir/kassa.yaml" "$dir/data" "$shards"
  if [ "$hot_split" -gt 0 ]; then
    printf 'hot_accounts:\n  static:\n    - id: 1\n      sub_accounts: %s\n' "$hot_split" >> "$dir/kassa.yaml"
  fi
  kassad_start build/runtime/kassad "$dir/kassa.yaml" "$dir/kassad.log" 10
  echo "$kassad_pid" > "$dir/kassad.pid"
  [ -n "$address" ] || { cat "$dir/kassad.log" >&2; exit 1; }
  build/perf/kassa_load --address "$address" --accounts "$accounts" --seconds "$secs" \
    --connections "$connections" --batch "$batch" --setup --mix "$1" --seed "$2" | grep '^kassa '
  kill -TERM "$kassad_pid"; wait "$kassad_pid" || true
  rm -f "$dir/kassad.pid"
}
uniform_line=$(run_mix uniform 1)
hot_line=$(run_mix hot 2)

peer_out=$("$peer" "$secs" 16 "$accounts")
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
k_uniform=$(field transfers_per_s "$uniform_line")
k_hot=$(field transfers_per_s "$hot_line")
p_uniform=$(field transfers_per_s "$(grep 'durable=on mix=uniform' <<<"$peer_out")")
p_hot=$(field transfers_per_s "$(grep 'durable=on mix=hot' <<<"$peer_out")")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }

out="perf/results/compare-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "# kassa vs PostgreSQL peer, durable, same machine, same run"
  grep -m1 '^machine:' <(build/perf/bench_ledger 2 0.01 1 2>/dev/null) || true
  echo "command: KASSA_SHARDS=$shards KASSA_HOT_SPLIT=$hot_split perf/compare_peer.sh $secs $accounts $connections $batch   (uptime: $(uptime | sed 's/.*load/load/'))"
  echo "$uniform_line"
  echo "$hot_line"
  echo "$peer_out"
  echo
  printf "%-34s %14s %14s %10s\n" "workload" "kassa/s" "postgres/s" "ratio"
  printf "%-34s %14s %14s %10s\n" "uniform, durable" "$k_uniform" "$p_uniform" "$(ratio "$k_uniform" "$p_uniform")x"
  printf "%-34s %14s %14s %10s\n" "hot (90% credit one account)" "$k_hot" "$p_hot" "$(ratio "$k_hot" "$p_hot")x"
  printf "%-34s %14s\n" "kassa hot / kassa uniform" "$(ratio "$k_hot" "$k_uniform")"
} | tee "$out"
