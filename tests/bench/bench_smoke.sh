#!/usr/bin/env bash
# kassa-bench end to end, a few seconds per scenario kind, against a fresh kassad (fsync, the
# payment core on, access required: every run authenticates, with --client-id/--key-file or
# their environment variables) and
# kassa-channel-sim: uniform, hot, single, lookups (closed and open loop) and payments, one of
# them on two event loop threads. Checks that every results line is JSON, that each scenario
# has its run, tick and summary lines, and that the summary's counts agree with each other
# (requests x events, results, histogram, ticks) with no request failing; then that a bad
# scenario, a bad override and an address off loopback are refused with status 2.
#
# usage: tests/bench/bench_smoke.sh [seconds=2]
# BUILD_DIR (default build) holds kassad, kassa-channel-sim and kassa-bench; builds nothing.
# Needs jq.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-2}
build=${BUILD_DIR:-build}
[[ $secs =~ ^[0-9]+$ ]] && (( secs >= 1 && secs <= 60 )) || { echo "bench_smoke: seconds are 1 .. 60"; exit 2; }
command -v jq >/dev/null || { echo "bench_smoke: needs jq"; exit 2; }
kassad=$build/runtime/kassad; sim=$build/channels/sim/kassa-channel-sim; bench=$build/perf/kassa-bench
for b in "$kassad" "$sim" "$bench"; do
  [ -x "$b" ] || { echo "bench_smoke: $b is not built (cmake --build $build)"; exit 2; }
done

dir=$(mktemp -d /tmp/kassa-bench-smoke.XXXX)
sim_pid=""; kassad_pid=""; failed=0
cleanup() {
  for p in $kassad_pid $sim_pid; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$failed" -eq 0 ]; then rm -rf "$dir"; else echo "bench_smoke: logs kept in $dir"; fi
}
trap cleanup EXIT
fail() { echo "bench_smoke: FAILED: $*"; failed=1; }

"$sim" --config config/channel-sim.yaml --port 0 --seed 7 > "$dir/sim.out" 2>&1 &
sim_pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/sim.out" 2>/dev/null || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$dir/sim.out"; fail "kassa-channel-sim did not start"; exit 1; }

key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
printf '%s\n' "$key" > "$dir/bench.key"; chmod 600 "$dir/bench.key"
. scripts/kassad-lib.sh
kassad_config "$dir/kassa.yaml" "$dir/data" 1 4096
{
  printf 'payments:\n  enabled: true\n  flow_wait_ms: 30000\n  ledgers:\n    - {ledger: 840, currency: USD}\n'
  printf '  providers:\n    - {name: alpha, url: "http://127.0.0.1:%s/p/alpha", ledgers: [840]}\n' "$port"
  printf 'access:\n  required: true\n  clients:\n    - {id: 7, key_file: %s}\n' "$dir/bench.key"
} >> "$dir/kassa.yaml"
kassad_start "$kassad" "$dir/kassa.yaml" "$dir/kassad.log" 30
[ -n "$address" ] || { cat "$dir/kassad.log"; fail "kassad did not start"; exit 1; }

out=$dir/results.jsonl
auth=(--client-id 7 --key-file "$dir/bench.key")
run() { # what, then kassa-bench's arguments
  local what=$1 status=0; shift
  timeout 300 "$bench" --address "$address" --out "$out" --quiet "${auth[@]}" "$@" > "$dir/$what.out" 2> "$dir/$what.err" || status=$?
  sed 's/^/  /' "$dir/$what.out"
  [ "$status" -eq 0 ] || { cat "$dir/$what.err"; fail "$what: kassa-bench exited $status"; }
}
run uniform --duration-s "$secs" --accounts 1000 perf/scenarios/uniform.yaml
run hot --duration-s "$secs" --accounts 1000 --threads 2 perf/scenarios/hot.yaml
run single --duration-s "$secs" --accounts 1000 perf/scenarios/single.yaml
run lookups --duration-s "$secs" --accounts 1000 --set rate_per_s=200 perf/scenarios/lookups.yaml --scenario lookups-open
run lookups-closed --duration-s "$secs" --accounts 1000 --no-setup perf/scenarios/lookups.yaml --scenario lookups
# (the client id and key from the environment, as kassa takes them)
auth=()
export KASSA_CLIENT_ID=7 KASSA_CLIENT_KEY_FILE=$dir/bench.key
run payments --duration-s $((secs + 2)) --accounts 100 perf/scenarios/payments.yaml
unset KASSA_CLIENT_ID KASSA_CLIENT_KEY_FILE

# Every line is JSON; per scenario one run and one summary, ticks, and counts that agree.
jq -e . "$out" > /dev/null || fail "a results line is not JSON"
for s in uniform hot single lookups-open lookups payments; do
  check=$(jq -rs --arg s "$s" '
    [.[] | select(.scenario == $s)] as $l
    | ($l | map(select(.type == "run"))) as $run
    | ($l | map(select(.type == "summary"))) as $sum
    | ($l | map(select(.type == "tick"))) as $ticks
    | if ($run | length) != 1 or ($sum | length) != 1 then "run and summary lines: \($run | length), \($sum | length)"
      else ($sum[0]) as $m | ($run[0].settings) as $set
      | [ (if ($ticks | length) < 1 then "no tick lines" else empty end),
          (if $m.requests < 1 then "no request answered" else empty end),
          (if $m.events != $m.requests * $set.events then "events \($m.events) != requests x \($set.events)" else empty end),
          (if ([$m.results[]] | add) != $m.events then "results add up to \([$m.results[]] | add), events \($m.events)" else empty end),
          (if ($m.histogram.counts | add) != $m.requests then "histogram holds \($m.histogram.counts | add) of \($m.requests)" else empty end),
          (if ($ticks | map(.requests) | add) != $m.requests then "ticks hold \($ticks | map(.requests) | add) requests of \($m.requests)" else empty end),
          (if ($m.request_errors | length) != 0 then "request errors \($m.request_errors)" else empty end),
          (if $m.latency_us.p50 > $m.latency_us.p99 or $m.latency_us.p99 > $m.latency_us.max then "percentiles out of order" else empty end),
          (if $s == "payments" then ($m.commands | to_entries | map(select(.value == 0)) | map(.key)) as $none
             | if ($none | length) != 0 then "payment kinds that never ran: \($none)" else empty end else empty end),
          (if $s == "payments" and ([$m.commands[]] | add) != $m.events then "commands \([$m.commands[]] | add) != events" else empty end),
          (if $s == "lookups-open" and $set.loop != "open" then "not an open loop" else empty end)
        ] | join("; ")
      end' "$out")
  if [ -n "$check" ]; then fail "$s: $check"; else echo "  $s: results consistent"; fi
done

# Refusals: a bad scenario, a bad override, an address off loopback: status 2, nothing run.
printf 'name: x\nkind: transfers\nconnections: 0\n' > "$dir/bad.yaml"
refused() { # what expected-text, then arguments
  local what=$1 text=$2 status=0; shift 2
  "$bench" --out "$dir/refused.jsonl" "$@" > "$dir/refused.out" 2>&1 || status=$?
  if [ "$status" -ne 2 ] || ! grep -q -- "$text" "$dir/refused.out"; then
    cat "$dir/refused.out"; fail "$what: expected status 2 and '$text', got $status"
  else
    echo "  refused $what: $(head -1 "$dir/refused.out")"
  fi
}
refused "a bad scenario" "bad.yaml:3: connections: must be between 1 and 1024" --address "$address" "$dir/bad.yaml"
refused "a bad override" "duration_s: must be between 1 and 3600" --address "$address" --set duration_s=7200 perf/scenarios/uniform.yaml
refused "an address off loopback" "loopback only" --address 192.0.2.1:3100 perf/scenarios/uniform.yaml
[ ! -s "$dir/refused.jsonl" ] || fail "a refused run wrote results"

[ "$failed" -eq 0 ] || exit 1
echo "bench_smoke: passed"
