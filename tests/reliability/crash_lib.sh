# The crash cycle shared by crash_under_load.sh and crash_payments.sh. Source it after setting
# dir, cycles, secs, kassad, kassa, load, load_args, start_timeout_s, check_timeout_s and
# acked_unit, and after defining fail() and run_check THIS_CYCLE_LOG EARLIER_LOGS... (the
# script's own checker); a script may also define run_final_check, run once on the last
# kassad before it is stopped. It runs nothing by itself.

starts=0
start_kassad() {
  starts=$((starts + 1))
  local log=$dir/kassad-$starts.log
  kassad_start "$kassad" "$dir/kassa.yaml" "$log" "$start_timeout_s"
  if [ -z "$address" ]; then cat "$log"; fail "kassad start $starts did not get ready in ${start_timeout_s}s"; exit 1; fi
}

# Waits for pid (a child) at most $2 seconds; its status goes into $waited, 124 on timeout.
wait_for() {
  local pid=$1 limit_ds=$(( $2 * 10 ))
  for _ in $(seq "$limit_ds"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; waited=124; return; fi
  waited=0; wait "$pid" || waited=$?
}

run_verify() { # on the stopped (or killed) store
  local status=0
  timeout "$check_timeout_s" "$kassa" verify --data "$dir/data" > "$dir/verify.log" 2>&1 || status=$?
  sed 's/^/  /' "$dir/verify.log"
  [ "$status" -eq 0 ] || { violations=$((violations + 1)); fail "kassa verify exited $status"; }
}

# Starts kassad, runs the setup and a first short load that is not interrupted (seed 1), then
# each cycle: the load with a new seed, kill -9 kassad at a random moment 25-90% into it,
# `kassa verify` on what the crash left, a restart and run_check. $1: a pattern of the setup
# run's output lines worth showing. CRASH=0 runs the same cycles without a crash: each load
# runs to its end, then kassad stops with SIGTERM (exit 0 expected) and starts again.
crash_cycles() {
  local setup_lines=$1 status=0 cycle cycle_log kill_after_ms
  start_kassad
  # (status 1 is a request refused as a whole, e.g. busy: the acked-log holds only what was acknowledged)
  timeout $((secs + 120)) "$load" --address "$address" --seed 1 --duration-s 1 --out "$dir/bench-0.jsonl" \
    --acked-log "$dir/acked-0.log" "${load_args[@]}" > "$dir/load-0.log" 2>&1 || status=$?
  [ "$status" -le 1 ] || { cat "$dir/load-0.log"; fail "kassa-bench with the setup exited $status"; exit 1; }
  grep -E "$setup_lines" "$dir/load-0.log" | sed 's/^/  /'
  logs=("$dir/acked-0.log")

  for cycle in $(seq "$cycles"); do
    cycle_log=$dir/acked-$cycle.log
    kill_after_ms=$(( secs * (250 + RANDOM % 650) ))
    if [ "${CRASH:-1}" = 1 ]; then
      echo "cycle $cycle: kassa-bench --seed $((cycle + 1)) for ${secs}s, kill -9 kassad after ${kill_after_ms}ms"
    else
      echo "cycle $cycle: kassa-bench --seed $((cycle + 1)) for ${secs}s, then kassad stopped with SIGTERM"
    fi
    timeout $((secs + 120)) "$load" --address "$address" --seed $((cycle + 1)) --duration-s "$secs" --no-setup \
      --out "$dir/bench-$cycle.jsonl" --acked-log "$cycle_log" "${load_args[@]}" > "$dir/load-$cycle.log" 2>&1 &
    loader_pid=$!
    if [ "${CRASH:-1}" = 1 ]; then
      sleep "$(awk -v ms="$kill_after_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
      kill -9 "$kassad_pid" 2>/dev/null || { cat "$dir/kassad-$starts.log"; fail "kassad died before the kill in cycle $cycle"; exit 1; }
      wait "$kassad_pid" 2>/dev/null || true
      kassad_pid=""
      wait_for "$loader_pid" $((secs + 130)); loader_pid=""
    else
      # No crash: the load runs to its end, then kassad stops cleanly.
      wait_for "$loader_pid" $((secs + 130)); loader_pid=""
      local loader_waited=$waited
      kill -TERM "$kassad_pid"
      wait_for "$kassad_pid" "$stop_timeout_s"; kassad_pid=""
      [ "$waited" -eq 0 ] || fail "kassad exited $waited on SIGTERM in cycle $cycle (expected 0)"
      waited=$loader_waited
    fi
    # The loader loses its connections (status 1); anything else is a failure of the tool.
    if [ "$waited" -gt 1 ]; then cat "$dir/load-$cycle.log"; fail "kassa-bench exited $waited in cycle $cycle"; fi
    echo "  acknowledged $acked_unit this cycle: $(grep -vc '^#' "$cycle_log" || true)"
    run_verify
    start_kassad
    run_check "$cycle_log" "${logs[@]}"
    logs+=("$cycle_log")
  done

  if declare -F run_final_check > /dev/null; then run_final_check; fi
  kill -TERM "$kassad_pid"
  wait_for "$kassad_pid" "$stop_timeout_s"; kassad_pid=""
  [ "$waited" -eq 0 ] || fail "kassad exited $waited on SIGTERM (expected 0)"
  run_verify
}
