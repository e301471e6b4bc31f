#!/usr/bin/env bash
# Runs kassa and the PostgreSQL peer (../shared/peer/postgres/run.sh) on the same transfer
# workload in the same run, and prints throughput and the ratios. Durable on both sides:
# kassad with durability fsync, PostgreSQL with synchronous_commit=on. kassa's side is
# kassa-bench with perf/scenarios/uniform.yaml and hot.yaml, each on a fresh store.
#
# usage: perf/compare_peer.sh [seconds=10] [accounts=100000] [connections=4] [events=2000]
# KASSA_SHARDS=N (default 1) runs kassad with N shards; KASSA_HOT_SPLIT=K (default 0: off) splits
# the hot scenario's hot account (id 1) into K sub-accounts (docs/sharding.md). TARGET (default
# 25) is the ratio kassa should reach. Writes kassa-bench's JSON lines and a `compare` line to
# perf/results/compare-<UTC time>.jsonl, and the table to compare-<UTC time>.txt (needs jq).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; accounts=${2:-100000}; connections=${3:-4}; events=${4:-2000}
shards=${KASSA_SHARDS:-1}; hot_split=${KASSA_HOT_SPLIT:-0}; target=${TARGET:-25}
peer=${KASSA_PEER:-../shared/peer/postgres/run.sh}
command -v jq >/dev/null || { echo "compare_peer: needs jq (apt-get install jq)"; exit 2; }
[ -x build/runtime/kassad ] && [ -x build/perf/kassa-bench ] || scripts/build.sh build >/dev/null

. scripts/kassad-lib.sh
dir=$(mktemp -d /tmp/kassa-compare.XXXX)
trap '[ -f "$dir/kassad.pid" ] && kill "$(cat "$dir/kassad.pid")" 2>/dev/null; sleep 0.5; rm -rf "$dir"' EXIT
stamp=$(date -u +%Y%m%dT%H%M%SZ)
jsonl="perf/results/compare-$stamp.jsonl"

# Each scenario runs against its own fresh store, as the peer loads its accounts afresh.
run_scenario() { # scenario-file
  rm -rf "$dir/data"
  kassad_config "$dir/kassa.yaml" "$dir/data" "$shards"
  if [ "$hot_split" -gt 0 ]; then
    printf 'hot_accounts:\n  static:\n    - id: 1\n      sub_accounts: %s\n' "$hot_split" >> "$dir/kassa.yaml"
  fi
  kassad_start build/runtime/kassad "$dir/kassa.yaml" "$dir/kassad.log" 10
  echo "$kassad_pid" > "$dir/kassad.pid"
  [ -n "$address" ] || { cat "$dir/kassad.log" >&2; exit 1; }
  build/perf/kassa-bench --address "$address" --accounts "$accounts" --duration-s "$secs" \
    --connections "$connections" --events "$events" --quiet --out "$jsonl" "$1"
  kill -TERM "$kassad_pid"; wait "$kassad_pid" || true
  rm -f "$dir/kassad.pid"
}
run_scenario perf/scenarios/uniform.yaml
run_scenario perf/scenarios/hot.yaml

peer_out=$("$peer" "$secs" 16 "$accounts")
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
summary() { jq -r --arg s "$1" "select(.type == \"summary\" and .scenario == \$s) | $2" "$jsonl" | tail -1; }
k_uniform=$(summary uniform .events_per_s); k_hot=$(summary hot .events_per_s)
p99_uniform=$(summary uniform .latency_us.p99); p99_hot=$(summary hot .latency_us.p99)
p_uniform=$(field transfers_per_s "$(grep 'durable=on mix=uniform' <<<"$peer_out")")
p_hot=$(field transfers_per_s "$(grep 'durable=on mix=hot' <<<"$peer_out")")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "0" }'; }
machine=$(jq -r 'select(.type == "run") | .machine' "$jsonl" | head -1)
command="KASSA_SHARDS=$shards KASSA_HOT_SPLIT=$hot_split TARGET=$target perf/compare_peer.sh $secs $accounts $connections $events"
row() { # workload kassa peer p99
  jq -cn --arg w "$1" --argjson k "$2" --argjson p "${3:-0}" --argjson p99 "$4" --argjson t "$target" \
    '{workload: $w, kassa_per_s: $k, peer_per_s: $p, ratio: (if $p > 0 then ($k / $p * 10 | round / 10) else 0 end),
      target: (">= \($t)x"), met: ($p > 0 and $k / $p >= $t), p99_us: $p99}'
}
jq -cn --arg m "$machine" --arg c "$command" \
  --argjson u "$(row "uniform, durable" "$k_uniform" "$p_uniform" "$p99_uniform")" \
  --argjson h "$(row "hot (kassa: 90% credit one account; peer: every transfer credits account 1), durable" "$k_hot" "$p_hot" "$p99_hot")" \
  '{type: "compare", scenario: "compare", machine: $m, command: $c, rows: [$u, $h]}' >> "$jsonl"

{
  echo "# kassa vs PostgreSQL peer, durable, same machine, same run"
  echo "machine: $machine"
  echo "command: $command   (uptime: $(uptime | sed 's/.*load/load/'))"
  echo "kassa-bench results: $jsonl"
  echo "$peer_out"
  echo
  printf "%-34s %14s %14s %10s %12s\n" "workload" "kassa/s" "postgres/s" "ratio" "kassa p99 us"
  printf "%-34s %14s %14s %10s %12s\n" "uniform, durable" "$k_uniform" "$p_uniform" "$(ratio "$k_uniform" "$p_uniform")x" "$p99_uniform"
  printf "%-34s %14s %14s %10s %12s\n" "hot (90% credit one account)" "$k_hot" "$p_hot" "$(ratio "$k_hot" "$p_hot")x" "$p99_hot"
  printf "%-34s %14s\n" "kassa hot / kassa uniform" "$(ratio "$k_hot" "$k_uniform")"
} | tee "perf/results/compare-$stamp.txt"
