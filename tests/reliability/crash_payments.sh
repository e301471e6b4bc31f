#!/usr/bin/env bash
# Crash consistency of the payment core under load: kassad (durability fsync, payments on,
# against kassa-channel-sim with two providers) is killed with SIGKILL while kassa-bench runs
# its payments scenario (top-ups, withdrawals, transfers, orders paid through a provider or
# from the payer's balance and refunded), restarted, and checked after every crash:
#   (a) before the restart, `kassa verify` finds the store the crash left consistent;
#   (b) after the restart, every payment row becomes final (the resume at boot and the status
#       queries settle the ones cut short), within a bound;
#   (c) every command acknowledged ok or in_progress in any cycle so far is stored with the
#       fields sent, and this cycle's, sent again, answer `exists`;
#   (d) no money moved twice or got lost: each provider's clearing accounts (one per shard)
#       add up to the simulator's statement, each user holds the funding plus its completed
#       payments, the merchant what its orders captured less refunds, refunds never beyond
#       what was captured, no overdraft, debits equal credits;
#   (e) the general ledger, once caught up, equals the ledger: provider_receivable, suspense
#       and fee_income hold what the chart's clearing, suspense and fee accounts hold;
# and, at the end, three-way reconciliation (statements <-> rows <-> ledger) has no open case,
# kassad stops on SIGTERM with status 0, `kassa verify` passes and the general ledger balances. (b)-(e) are tests/reliability/payments_check.cpp; see
# docs/reliability.md.
#
# FAULTS=1 adds provider faults to alpha: timeouts, unknown outcomes, partial payments,
# payments moving another amount than asked, duplicate callbacks, late successes, and
# discrepancies put into its statement (an entry left out, one with another amount, one for a
# payment nobody made). Then (d) leaves out the statements, and at the end the open cases must
# be exactly the discrepancies the simulator says it injected (GET /v1/admin/injected): an
# entry left out is `missing_provider`, another amount `amount_mismatch`, an extra entry
# `missing_internal`; a payment of another amount, a partial payout or refund, and a
# compensating refund (role 2 of the payment id, ids.hpp) that succeeds only late `suspense`
# (the payment core parks the difference, or books what moved, and opens the case itself),
# named by the row's main payment id. A compensating refund that succeeds only late leaves its
# case behind resolved: reconciliation reads the refund in the statement, books it out of
# suspense and resolves the case as a refund by kassa (docs/accounting.md); unless its entry is
# left out of the statement too: kassa cannot learn of it then, and the case stays open. A compensating
# refund's entry left out is `missing_provider` under its own id (role 2), like a row's main
# payment. Everything else (a partial charge under the default
# partial policy, a late success of a charge, payout or refund, duplicate callbacks, timeouts,
# unknown outcomes) the payment core must settle without a case. Declines are ordinary
# outcomes, not faults: a declined compensating refund would rightly open a case too, so the
# faults leave declines out.
#
# CRASH=0 runs the same cycles without killing kassad (each load runs to its end, then kassad
# stops with SIGTERM and starts again): a clean run, which must end with no case at all.
#
# usage: crash_payments.sh [cycles=3] [seconds_per_cycle=3] [accounts=100]
# BUILD_DIR (default build) holds the built kassad, kassa, kassa-bench, kassa-channel-sim and
# payments_check; this script builds nothing. SHARDS (default 1) sets store.shards: with more,
# transfers between users and pay-from-balance items' forwards from the payer's escrow to the
# merchant cross shards (sagas), so the kills fall between saga legs. KASSA_SEED=N replays the
# kill times and the simulator's draws of a run. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
cycles=${1:-3}; secs=${2:-3}; accounts=${3:-100}; shards=${SHARDS:-1}; faults=${FAULTS:-0}
build=${BUILD_DIR:-build}
seed=${KASSA_SEED:-$(( (RANDOM << 15) | RANDOM ))}
RANDOM=$seed
[[ $cycles =~ ^[0-9]+$ && $secs =~ ^[0-9]+$ && $accounts =~ ^[0-9]+$ && $shards =~ ^[0-9]+$ ]] ||
  { echo "crash_payments: arguments and SHARDS are whole numbers"; exit 2; }
[[ $faults = 0 || $faults = 1 ]] || { echo "crash_payments: FAULTS is 0 or 1"; exit 2; }
[[ ${CRASH:-1} = 0 || ${CRASH:-1} = 1 ]] || { echo "crash_payments: CRASH is 0 or 1"; exit 2; }
(( cycles >= 1 && cycles <= 1000 && secs >= 1 && secs <= 600 && accounts >= 2 && accounts <= 100000 &&
   shards >= 1 && shards <= 256 )) ||
  { echo "crash_payments: an argument is out of range"; exit 2; }

kassad=$build/runtime/kassad; kassa=$build/runtime/kassa; sim=$build/channels/sim/kassa-channel-sim
load=$build/perf/kassa-bench; check=$build/tests/reliability/payments_check
for b in "$kassad" "$kassa" "$sim" "$load" "$check"; do
  [ -x "$b" ] || { echo "crash_payments: $b is not built (cmake --build $build)"; exit 2; }
done

# The load: every kind of command, both providers in turn, half the pay items from the payer's
# balance; users funded with about 20 payments' worth, so that withdrawals, transfers and pay
# items from balance run into the balance limit too.
providers=alpha,beta
load_args=(perf/scenarios/payments.yaml --quiet --connections 4 --depth 4 --events 10 --accounts "$accounts"
  --set funding=10000 --set "providers=[$providers]" --set pay_from_balance_percent=50 --set request_timeout_ms=30000)
start_timeout_s=30; stop_timeout_s=60; check_timeout_s=600; settle_s=60

dir=$(mktemp -d /tmp/kassa-paycrash.XXXX)
kassad_pid=""; loader_pid=""; sim_pid=""; failed=0
cleanup() {
  [ -n "$loader_pid" ] && kill -9 "$loader_pid" 2>/dev/null || true
  [ -n "$kassad_pid" ] && kill -9 "$kassad_pid" 2>/dev/null || true
  [ -n "$sim_pid" ] && kill -TERM "$sim_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$failed" -eq 0 ]; then rm -rf "$dir"; else echo "crash_payments: logs and data kept in $dir"; fi
}
trap cleanup EXIT
fail() { echo "crash_payments: FAILED: $*"; failed=1; }

# The providers: fast, and alpha leaves 2% of its payments pending (settled by a callback or a
# status query 300 ms later), so that crashes find payments in every state.
cat > "$dir/sim.yaml" <<'EOF'
server:
  connections_max: 4096
providers:
  alpha:
    latency: {min_ms: 1, median_ms: 3, p99_ms: 10, max_ms: 20}
    pending_ppm: 20000
    callback_delay_ms: 300
    payments_max: 10000000
  beta:
    latency: {min_ms: 1, median_ms: 3, p99_ms: 10, max_ms: 20}
    credentials_required: true
    payments_max: 10000000
EOF
if [ "$faults" = 1 ]; then
  cat > "$dir/faults.json" <<'EOF'
{"timeout_ppm": 5000, "timeout_hold_ms": 3000, "unknown_ppm": 5000,
 "partial_ppm": 10000, "mismatch_ppm": 5000, "mismatch_delta": 3, "duplicate_callback_ppm": 20000,
 "late_callback_ppm": 5000, "late_callback_ms": 400, "statement_missing_ppm": 3000,
 "statement_amount_mismatch_ppm": 3000, "statement_extra_ppm": 3000}
EOF
fi
"$sim" --config "$dir/sim.yaml" --port 0 --seed "$seed" > "$dir/sim.log" 2>&1 &
sim_pid=$!
sim_port=""
for _ in $(seq 100); do
  sim_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/sim.log" 2>/dev/null || true)
  [ -n "$sim_port" ] && break
  kill -0 "$sim_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$sim_port" ] || { cat "$dir/sim.log"; fail "kassa-channel-sim did not start"; exit 1; }
if [ "$faults" = 1 ]; then
  curl -sf -X POST --data-binary @"$dir/faults.json" "http://127.0.0.1:$sim_port/p/alpha/v1/admin/behaviour" > /dev/null ||
    { fail "the simulator refused the faults"; exit 1; }
fi

. scripts/kassad-lib.sh
kassad_config "$dir/kassa.yaml" "$dir/data" "$shards" 4096
cat >> "$dir/kassa.yaml" <<EOF
payments:
  enabled: true
  orders_inflight_max: 100000
  flow_wait_ms: 2000
  reconciliation: {enabled: true, interval_ms: 200, grace_ms: 10000}
  ledgers: [{ledger: 840, currency: USD}]
  providers:
    - {name: alpha, url: "http://127.0.0.1:$sim_port/p/alpha", ledgers: [840], priority: 1, timeout_ms: 1000,
       events_poll_ms: 50, status_query: {interval_ms: 100, queries_max: 1000}}
    - {name: beta, url: "http://127.0.0.1:$sim_port/p/beta", ledgers: [840], priority: 2, timeout_ms: 1000,
       credentials: true, events_poll_ms: 50, status_query: {interval_ms: 100, queries_max: 1000}}
  fees:
    - {type: withdrawal, ledger: 840, fixed: 25}
    - {type: transfer, ledger: 840, rate_ppm: 1000, rounding: half_even}
EOF

. tests/reliability/crash_lib.sh
acked_unit=commands
violations=0; acked=0; logs=()
run_check() { # $1: this cycle's log (sent again), then every earlier log
  local out status=0 resend=$1
  shift
  local provider_faults=()
  [ "$faults" = 0 ] || provider_faults=(--provider-faults)
  out=$(timeout "$check_timeout_s" "$check" --address "$address" --data "$dir/data" --sim "$sim_port" \
    --providers "$providers" --shards "$shards" --settle-s "$settle_s" "${provider_faults[@]}" --resend "$resend" "$@" 2>&1) || status=$?
  echo "$out" | sed 's/^/  /'
  local line; line=$(grep '^payments_check:.*violations=' <<<"$out" || true)
  if [ -z "$line" ]; then fail "payments_check did not finish (status $status)"; return; fi
  violations=$((violations + $(sed -n 's/.*violations=\([0-9]*\).*/\1/p' <<<"$line")))
  acked=$(sed -n 's/.* accepted=\([0-9]*\).*/\1/p' <<<"$line")
  [ "$status" -le 1 ] || fail "payments_check exited $status"
}

# Three-way reconciliation on the last kassad, once run_check saw every row final: the
# providers' statements, the payment rows and the ledger's bookings agree, so no case is open.
# The grace (10 s) is long enough for a restart to finish what a kill cut short: a line read
# just before a kill waits for its row that long before it becomes a case. Waits the grace
# (a final row whose line never comes becomes a case after it), then until `kassa recon` reads
# the same for 3 s in a row (a round every 200 ms), at most 60 s more.
# A suspense case names its row's main payment id, also when the call that moved another
# amount was the row's compensation (role 2, ids.hpp): compare suspense ids with role 1.
suspense_by_row() {
  awk '$1 == "suspense" && length($2) == 32 { $2 = substr($2, 1, 16) "01" substr($2, 19) } { print }'
}

run_final_check() {
  local prev="" cur stable=0 matched
  sleep 11
  for _ in $(seq 120); do
    cur=$("$kassa" recon --data "$dir/data" 2>&1) || true
    if [ "$cur" = "$prev" ]; then stable=$((stable + 1)); else stable=0; fi
    prev=$cur
    [ "$stable" -ge 6 ] && break
    sleep 0.5
  done
  echo "$cur" | sed 's/^/  /'
  [ "$stable" -ge 6 ] || { violations=$((violations + 1)); fail "reconciliation did not settle within 71 s"; return; }
  matched=$(sed -n 's/^cases open [0-9]*, total [0-9]*; statement lines matched \([0-9]*\)$/\1/p' <<<"$cur")
  [ "${matched:-0}" -gt 0 ] || { violations=$((violations + 1)); fail "reconciliation matched no statement line"; }
  if [ "$faults" = 0 ]; then
    grep -q '^cases open 0, ' <<<"$cur" ||
      { violations=$((violations + 1)); fail "reconciliation has open cases after the crashes (kassa recon above)"; }
    return
  fi
  # The cases against the discrepancies put in: (kind, payment id) each, as sorted lines.
  # $late: the compensating refunds that succeeded late, $missing: the entries left out. A late
  # refund whose entry is left out too is one kassa cannot learn of: its suspense case stays open
  # and no missing_provider case is due (nothing was booked for it).
  local p late_refunds='(.injected | map(select(.type == "payment_late" and .kind == "refund") |
      .payment_id | ascii_downcase | ltrimstr("0x") | select(.[16:18] == "02"))) as $late |
    (.injected | map(select(.type == "missing") | .payment_id | ascii_downcase | ltrimstr("0x"))) as $missing'

  for p in ${providers//,/ }; do
    curl -sf "http://127.0.0.1:$sim_port/p/$p/v1/admin/injected" | tee "$dir/injected-$p.json" |
      jq -r "$late_refunds"' | .injected[] | (.payment_id | ascii_downcase | ltrimstr("0x")) as $id |
             select((.type != "payment_partial" or .kind != "charge") and
                    (.type != "payment_late" or (.kind == "refund" and ($id | .[16:18]) == "02")) and
                    (.type != "missing" or ($late | any(. == $id) | not))) |
             if .type == "payment_late" then "suspense " + $id
             else ({"missing": "missing_provider", "amount_mismatch": "amount_mismatch", "extra": "missing_internal",
                    "payment_mismatch": "suspense", "payment_partial": "suspense"}[.type]) + " " + $id end'
  done | suspense_by_row | sort -u > "$dir/injected.txt"
  "$kassa" recon --all --data "$dir/data" |
    awk '$1 ~ /^[0-9]+$/ { id = tolower($6); sub(/^0x/, "", id); print $2, id }' | suspense_by_row | sort -u > "$dir/cases.txt"
  echo "  discrepancies injected: $(wc -l < "$dir/injected.txt"), cases: $(wc -l < "$dir/cases.txt")"
  # A compensating refund that succeeded late: reconciliation booked it out of suspense and
  # resolved the row's suspense case itself (as a refund by kassa).
  local late unsettled
  late=$(for p in ${providers//,/ }; do
           jq -r "$late_refunds"' | $late[] | select(. as $id | $missing | any(. == $id) | not) | "suspense " + .' \
             "$dir/injected-$p.json"
         done | suspense_by_row | sort -u)
  unsettled=$(comm -23 <(echo "$late" | grep . || true) <("$kassa" recon --all --data "$dir/data" |
    awk '$1 ~ /^[0-9]+$/ && $3 == "resolved" { id = tolower($6); sub(/^0x/, "", id); print $2, id }' | suspense_by_row | sort -u))
  echo "  compensating refunds that succeeded late: $(echo "$late" | grep -c . || true), their cases left open: $(echo "$unsettled" | grep -c . || true)"
  if [ -n "$unsettled" ]; then
    violations=$((violations + 1)); fail "a late compensating refund's suspense case is still open: $unsettled"
  fi
  if ! diff "$dir/injected.txt" "$dir/cases.txt" > "$dir/cases.diff"; then
    sed 's/^/  /' "$dir/cases.diff"
    violations=$((violations + 1)); fail "the cases differ from the injected discrepancies (< injected, > case)"
  fi
  [ -s "$dir/injected.txt" ] || { violations=$((violations + 1)); fail "the simulator injected nothing"; }
}

echo "crash_payments: seed=$seed cycles=$cycles seconds_per_cycle=$secs accounts=$accounts shards=$shards faults=$faults crash=${CRASH:-1} dir=$dir"
crash_cycles '^(payments: |kassa-bench payments: setup)'
# The general ledger is derived from the journal off the core link; whatever it has derived
# must balance.
if "$kassa" gl --data "$dir/data" > "$dir/gl.log" 2>&1; then
  if grep -q "NOT BALANCED" "$dir/gl.log"; then violations=$((violations + 1)); fail "the general ledger does not balance"; fi
else
  cat "$dir/gl.log"; fail "kassa gl failed"
fi

echo "crash_payments: cycles=$cycles acked_commands=$acked violations=$violations"
[ "$violations" -eq 0 ] || failed=1
if [ "$failed" -ne 0 ]; then echo "crash_payments: KASSA_SEED=$seed replays the kill times"; exit 1; fi
