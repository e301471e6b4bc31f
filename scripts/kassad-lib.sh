# Shell helpers for scripts that run kassad on 127.0.0.1 (perf/payments_latency.sh,
# tests/reliability/crash_under_load.sh). Source it; it runs nothing by itself.

# kassad_config FILE DATA_DIR SHARDS [MAP_SIZE_MIB]: a loopback config, OS-chosen port, fsync.
kassad_config() {
  {
    printf 'server:\n  address: 127.0.0.1\n  port: 0\nstore:\n  data_dir: %s\n  durability: fsync\n' "$2"
    if [ -n "${4:-}" ]; then printf '  map_size_mib: %s\n' "$4"; fi
    printf '  shards: %s\n' "$3"
  } > "$1"
}

# kassad_start KASSAD CONFIG LOG TIMEOUT_S: starts kassad in the background (its stderr to LOG)
# and waits until it logs ready, exits, or TIMEOUT_S pass. Sets kassad_pid, and address to
# HOST:PORT from the ready line ("" when kassad did not get ready).
kassad_start() {
  "$1" --config "$2" 2> "$3" &
  kassad_pid=$!
  for _ in $(seq $(( $4 * 10 ))); do
    grep -q "msg=ready" "$3" && break
    kill -0 "$kassad_pid" 2>/dev/null || break
    sleep 0.1
  done
  address=$(sed -n 's/.*msg=ready address=\(127\.0\.0\.1:[0-9]*\).*/\1/p' "$3")
}
