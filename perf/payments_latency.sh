#!/usr/bin/env bash
# Top-up throughput against provider latency, in one run: for each latency (2 ms, then
# 200 ms) a fresh kassa-channel-sim with one provider that always answers after exactly that
# long (no faults) and a fresh kassad (durability fsync, payment core on), driven by
# kassa-bench (perf/scenarios/payments.yaml, top-ups only) with the same number of top-ups in
# flight: connections x depth requests of per_request top-ups, depth = inflight / per_request /
# connections rounded up. A flow waiting on its
# provider holds no thread, so the two throughputs should be within 10% of each other.
#
# usage: perf/payments_latency.sh [seconds=20] [inflight=3000] [per_request=10] [connections=8]
#   [warmup=3]
# BUILD_DIR (default build) holds kassad, kassa-channel-sim and kassa-bench; this
# script builds nothing. LATENCIES (default "2 200") lists the provider latencies in ms.
# CHANNELS (default "1 2") lists how many channels kassad runs to that one provider: a channel
# has at most 1024 HTTP connections and one call on each at a time, so it carries at most
# 1024 / latency calls a second (5,120/s at 200 ms); with N > 1 the load names the channels in
# turn, only alpha reads the provider's callback feed, and reconciliation is off (every channel's
# statement would show every payment of the one provider account: duplicates, each a case).
# See docs/performance.md. ROUNDS (default 3) repeats the whole sequence; the two latencies
# run back to back in each round and the ratio is taken per round, so that other work on a
# shared machine moves both alike. Before each run the script waits (60 s at most) for a
# second in which the machine is QUIET percent idle (default 80; 0: no wait). Every run has a
# fresh kassad and sim.
# Prints a table and writes it to OUT (default perf/results/payments-latency-<UTC time>.txt;
# /dev/null for none), and kassa-bench's JSON lines next to it (.jsonl; none with /dev/null);
# needs jq. Exits 1 when a run had a top-up that was not ok or a request error:
# such a run's figure is not a throughput. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-12}; inflight=${2:-3000}; per_request=${3:-10}; connections=${4:-8}; warmup=${5:-3}
build=${BUILD_DIR:-build}
latencies=${LATENCIES:-2 200}
channel_counts=${CHANNELS:-1 2}
rounds=${ROUNDS:-3}
quiet=${QUIET:-80}
for v in "$secs" "$inflight" "$per_request" "$connections" "$warmup" "$rounds" "$quiet" $latencies $channel_counts; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "payments_latency: arguments are whole numbers"; exit 2; }
done
for c in $channel_counts; do (( c >= 1 && c <= 8 )) || { echo "payments_latency: CHANNELS are 1 .. 8"; exit 2; }; done
(( secs >= 1 && secs <= 600 && warmup < secs && inflight >= 1 && inflight <= 100000 && rounds >= 1 && rounds <= 10 )) ||
  { echo "payments_latency: an argument is out of range"; exit 2; }

kassad=$build/runtime/kassad; sim=$build/channels/sim/kassa-channel-sim; load=$build/perf/kassa-bench
command -v jq >/dev/null || { echo "payments_latency: needs jq (apt-get install jq)"; exit 2; }
depth=$(( (inflight / per_request + connections - 1) / connections ))
(( inflight % per_request == 0 && depth >= 1 && depth <= 4096 )) ||
  { echo "payments_latency: inflight must be a multiple of per_request, with at least one request a connection"; exit 2; }
for b in "$kassad" "$sim" "$load"; do
  [ -x "$b" ] || { echo "payments_latency: $b is not built (cmake --build $build)"; exit 2; }
done

dir=$(mktemp -d /tmp/kassa-paylat.XXXX)
sim_pid=""; kassad_pid=""; load_pid=""
cleanup() {
  local rc=$?
  for p in $load_pid $kassad_pid $sim_pid; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in $load_pid $kassad_pid $sim_pid; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir/data"
  if [ "$rc" -eq 0 ]; then rm -rf "$dir"; else echo "payments_latency: logs kept in $dir" >&2; fi
}
trap cleanup EXIT

. scripts/kassad-lib.sh
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime + stime

# The machine's idle percent over one second (idle + iowait, all cores, from /proc/stat).
idle_percent() {
  local a b
  a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); total = 0
    for (i = 2; i <= n; i++) total += y[i] - x[i]
    printf "%.0f", (total > 0 ? 100 * ((y[5] - x[5]) + (y[6] - x[6])) / total : 0) }'
}
# Waits until a second is $quiet percent idle, 60 s at most; prints the last idle percent.
wait_quiet() {
  local idle=0
  for _ in $(seq 60); do
    idle=$(idle_percent)
    [ "$idle" -ge "$quiet" ] && break
  done
  echo "$idle"
}

# The provider: every payment answered after exactly $1 ms, no faults. payments_max well above
# what one run creates (a provider at payments_max answers 503).
sim_config() { # latency_ms file
  {
    printf 'seed: 7\nserver:\n  connections_max: 4096\n  idle_ms: 600000\nproviders:\n  alpha:\n'
    printf '    latency: {min_ms: %s, median_ms: %s, p99_ms: %s, max_ms: %s}\n' "$1" "$1" "$1" "$1"
    printf '    payments_max: 10000000\n    events_max: 1000000\n'
  } > "$2"
}

# kassad: fsync, one shard, the payment core with channels alpha, alpha-2, ... all to the one
# provider. flow_wait_ms far above any latency here, so that every reply carries the final
# result; inflight_max and orders_inflight_max above the load's in-flight count;
# connections_max at its maximum. alpha-2, ... are extra connection pools: no feed of their own,
# and no reconciliation (see the top).
channel_names() { # count -> alpha,alpha-2,...
  local names=alpha
  for i in $(seq 2 "$1"); do names="$names,alpha-$i"; done
  echo "$names"
}
kassa_config() { # file data_dir sim_port channels
  kassad_config "$1" "$2" 1 16384
  {
    printf 'payments:\n  enabled: true\n  orders_inflight_max: 100000\n  flow_wait_ms: 60000\n'
    if [ "$4" -gt 1 ]; then printf '  reconciliation: {enabled: false}\n'; fi
    printf '  ledgers:\n    - {ledger: 840, currency: USD}\n  providers:\n'
    for name in $(channel_names "$4" | tr , ' '); do
      local poll=200
      [ "$name" = alpha ] || poll=0
      printf '    - {name: %s, url: "http://127.0.0.1:%s/p/alpha", ledgers: [840], inflight_max: 100000, connections_max: 1024, timeout_ms: 10000, events_poll_ms: %s}\n' \
        "$name" "$3" "$poll"
    done
  } >> "$1"
}

declare -A result # channels-latency-round -> "topups_per_s p50_ms p99_ms kassad_cores sim_cores ok other in_progress idle request_errors"
run_one() { # channels latency_ms round; runs in this shell, so that the trap knows every pid
  local ch=$1 lat=$2 run=$1-$2-$3
  local named=()
  if [ "$ch" -gt 1 ]; then named=(--set "providers=[$(channel_names "$ch")]"); fi
  local idle=-
  if [ "$quiet" -gt 0 ]; then idle=$(wait_quiet); fi
  sim_config "$lat" "$dir/sim.yaml"
  "$sim" --config "$dir/sim.yaml" --port 0 --seed 7 > "$dir/sim-$run.out" 2>&1 &
  sim_pid=$!
  local port=""
  for _ in $(seq 100); do
    # (the file may not be there yet: the shell of the background job creates it)
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/sim-$run.out" 2>/dev/null || true)
    [ -n "$port" ] && break
    kill -0 "$sim_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$dir/sim-$run.out" >&2; echo "payments_latency: kassa-channel-sim did not start" >&2; exit 1; }
  rm -rf "$dir/data"
  kassa_config "$dir/kassa.yaml" "$dir/data" "$port" "$ch"
  kassad_start "$kassad" "$dir/kassa.yaml" "$dir/kassad-$run.log" 30 2>/dev/null
  [ -n "$address" ] || { cat "$dir/kassad-$run.log" >&2; echo "payments_latency: kassad did not start" >&2; exit 1; }
  local k0 s0 t0 k1 s1 t1
  "$load" --address "$address" perf/scenarios/payments.yaml --quiet --out "$dir/load-$run.jsonl" \
    --events "$per_request" --connections "$connections" --depth "$depth" --duration-s "$secs" \
    --set warmup_s="$warmup" --seed "$lat$3" --set topup_percent=100 --set withdrawal_percent=0 \
    --set transfer_percent=0 --set refund_percent=0 --set amount_min=100 --set amount_max=100 \
    --set funding=0 --set request_timeout_ms=60000 "${named[@]}" > "$dir/load-$run.out" 2>&1 &
  load_pid=$!
  # CPU time over the measured window (about: the accounts are created before it), and a look
  # at top in its middle
  sleep "$warmup"
  k0=$(cpu_ticks "$kassad_pid"); s0=$(cpu_ticks "$sim_pid"); t0=$(date +%s.%N)
  sleep $(( (secs - warmup) / 2 ))
  top -b -n1 -w 200 2>/dev/null | sed -n '1,5p;7,14p' > "$dir/top-$run.txt" || true
  sleep $(( secs - warmup - (secs - warmup) / 2 ))
  k1=$(cpu_ticks "$kassad_pid"); s1=$(cpu_ticks "$sim_pid"); t1=$(date +%s.%N)
  wait "$load_pid" || true
  load_pid=""
  local status=0
  if ! kill -0 "$kassad_pid" 2>/dev/null; then
    wait "$kassad_pid" || status=$?
    kassad_pid=""
    tail -20 "$dir/kassad-$run.log" >&2
    echo "payments_latency: kassad stopped during the run (status $status)" >&2
    exit 1
  fi
  kill -TERM "$kassad_pid"; wait "$kassad_pid" || true; kassad_pid=""
  kill -TERM "$sim_pid"; wait "$sim_pid" || true; sim_pid=""
  local summary
  summary=$(jq -c 'select(.type == "summary")' "$dir/load-$run.jsonl" 2>/dev/null | tail -1)
  [ -n "$summary" ] || { cat "$dir/load-$run.out" >&2; exit 1; }
  local cores_k cores_s
  cores_k=$(awk -v a="$k0" -v b="$k1" -v t="$ticks" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.2f", (b - a) / t / (e - s) }')
  cores_s=$(awk -v a="$s0" -v b="$s1" -v t="$ticks" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.2f", (b - a) / t / (e - s) }')
  # top-ups/s, p50 and p99 in ms, ok, other (neither ok nor in_progress), in_progress, request errors
  local figures
  figures=$(jq -r '[(.events_per_s | round), (.latency_us.p50 / 1000), (.latency_us.p99 / 1000), (.results.ok // 0),
                    (.events - (.results.ok // 0) - (.results.in_progress // 0)), (.results.in_progress // 0),
                    ([.request_errors[]] | add // 0)] | map(tostring) | join(" ")' <<<"$summary")
  local tps p50 p99 ok other inprog errors
  read -r tps p50 p99 ok other inprog errors <<<"$figures"
  result[$run]="$tps $p50 $p99 $cores_k $cores_s $ok $other $inprog $idle $errors"
}

uptime_before=$(uptime | sed 's/.*load/load/')
for r in $(seq "$rounds"); do
  for ch in $channel_counts; do
    for lat in $latencies; do run_one "$ch" "$lat" "$r"; done
  done
done

out=${OUT:-perf/results/payments-latency-$(date -u +%Y%m%dT%H%M%SZ).txt}
bad=0
for key in "${!result[@]}"; do
  read -r tps _ _ _ _ ok other inprog _ errors <<<"${result[$key]}"
  if [ -z "$ok" ] || [ "$ok" -eq 0 ] || [ "$((other + inprog))" -ne 0 ] || [ "$errors" -ne 0 ]; then bad=1; fi
done
first=${latencies%% *}; last=${latencies##* }
first_run=${channel_counts%% *}-$first-1
{
  echo "# top-up throughput against provider latency, same in-flight count, same run"
  echo "machine: $(jq -r 'select(.type == "run") | .machine' "$dir/load-$first_run.jsonl" | head -1)"
  echo "command: BUILD_DIR=$build LATENCIES=\"$latencies\" CHANNELS=\"$channel_counts\" ROUNDS=$rounds perf/payments_latency.sh $secs $inflight $per_request $connections $warmup   ($uptime_before before the run)"
  echo "source: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- actors channels config ledger runtime 2>/dev/null || echo ', with uncommitted changes in the tree')"
  echo "kassad: durability fsync, 1 shard, payments.flow_wait_ms 60000; each channel: inflight_max 100000, connections_max 1024;"
  echo "  with 2+ channels only alpha reads the provider's feed and reconciliation is off"
  echo "load: kassa-bench, $((connections * depth * per_request)) top-ups in flight ($connections connections x depth $depth x $per_request a request), ${secs}s (first ${warmup}s not measured)"
  echo "cores: CPU time over wall time in the measured window, of kassad and of kassa-channel-sim;"
  echo "  CPU us/top-up: kassad's CPU time per top-up answered (less moved by other work on the machine);"
  echo "  idle: the machine's idle percent in the second before the run"
  echo
  printf "%-6s %-9s %-8s %10s %8s %8s %7s %14s %6s %9s %6s %5s\n" "round" "channels" "latency" "top-ups/s" "p50 ms" "p99 ms" \
    "kassad" "CPU us/top-up" "sim" "ok" "other" "idle"
  for r in $(seq "$rounds"); do
    for ch in $channel_counts; do
      for lat in $latencies; do
        read -r tps p50 p99 ck cs ok other inprog idle _ <<<"${result[$ch-$lat-$r]}"
        printf "%-6s %-9s %-8s %10s %8s %8s %7s %14s %6s %9s %6s %5s\n" "$r" "$ch" "$lat ms" "$tps" "$p50" "$p99" "$ck" \
          "$(awk -v c="$ck" -v t="$tps" 'BEGIN { if (t > 0) printf "%.0f", c * 1e6 / t; else print "-" }')" "$cs" "$ok" \
          "$((other + inprog))" "$idle"
      done
    done
  done
  if [ "$first" != "$last" ]; then
    echo
    printf "%-9s %-28s %8s\n" "channels" "ratio $last ms / $first ms, by round" "median"
    for ch in $channel_counts; do
      ratios=$(for r in $(seq "$rounds"); do
        read -r ta _ <<<"${result[$ch-$first-$r]}"; read -r tb _ <<<"${result[$ch-$last-$r]}"
        awk -v a="$tb" -v b="$ta" 'BEGIN { if (b > 0) printf "%.3f\n", a / b; else print "0" }'
      done)
      printf "%-9s %-28s %8s\n" "$ch" "$(echo $ratios)" "$(sort -n <<<"$ratios" | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
    done
  fi
  for r in $(seq "$rounds"); do
    for ch in $channel_counts; do
      for lat in $latencies; do
        echo
        echo "## round $r, $ch channel(s), $lat ms: kassa-bench"
        grep -v '^kassa-bench: results in' "$dir/load-$ch-$lat-$r.out"
        echo "## top in the middle of the window"
        cat "$dir/top-$ch-$lat-$r.txt" 2>/dev/null || true
      done
    done
  done
} | tee "$out"
if [ "$out" != /dev/null ]; then
  for r in $(seq "$rounds"); do
    for ch in $channel_counts; do
      for lat in $latencies; do cat "$dir/load-$ch-$lat-$r.jsonl"; done
    done
  done > "${out%.txt}.jsonl"
fi
[ "$bad" -eq 0 ] || { echo "payments_latency: a run had top-ups that were not ok or request errors (see above)"; exit 1; }
