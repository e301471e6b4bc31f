#pragma once
// The simulator's configuration: one behaviour per provider, the same keys in the YAML file
// and in POST /v1/admin/behaviour. Rates are integers in parts per million; times are ms.
// Every key is documented in config/channel-sim.yaml and docs/channels.md.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace kassa::channels::sim {

struct behaviour {
  // Latency of payment calls and status queries: a piecewise-linear distribution through
  // (0%, min), (50%, median), (99%, p99), (100%, max).
  uint64_t latency_min_ms = 5;
  uint64_t latency_median_ms = 20;
  uint64_t latency_p99_ms = 100;
  uint64_t latency_max_ms = 250;
  uint64_t decline_ppm = 0;
  uint64_t timeout_ppm = 0;   // no answer; applied as succeeded
  uint64_t unknown_ppm = 0;   // connection closed after processing; applied as succeeded
  uint64_t pending_ppm = 0;   // answered pending; succeeded event after callback_delay_ms
  uint64_t partial_ppm = 0;   // partial, moving amount * partial_amount_ppm / 1e6 (at least 1)
  uint64_t partial_amount_ppm = 500'000;
  uint64_t mismatch_ppm = 0;  // succeeded with amount + mismatch_delta
  uint64_t mismatch_delta = 1;
  uint64_t duplicate_callback_ppm = 0; // the final event is emitted twice
  uint64_t late_callback_ppm = 0;      // answered declined; succeeded event after late_callback_ms
  uint64_t late_callback_ms = 1000;
  uint64_t callback_delay_ms = 500;
  bool credentials_required = false;
  uint64_t credential_latency_ms = 10;
  uint64_t credential_ttl_ms = 60'000;
  uint64_t statement_missing_ppm = 0;         // a moved payment's entry is left out
  uint64_t statement_amount_mismatch_ppm = 0; // an entry's amount is off by statement_mismatch_delta
  uint64_t statement_mismatch_delta = 1;
  uint64_t statement_extra_ppm = 0;           // an entry for a payment kassa never made is added
  uint64_t timeout_hold_ms = 30'000;          // how long a "timeout" holds the connection silent
  // Bounds.
  uint64_t payments_max = 1'000'000; // beyond: new payments get 503
  uint64_t events_max = 1'000'000;   // the feeds keep this many newest entries
  uint64_t forced_max = 100'000;     // forced outcomes queued
};

struct server_limits {
  uint64_t connections_max = 4096;
  uint64_t body_bytes_max = 64 * 1024;
  uint64_t idle_ms = 60'000; // an idle keep-alive connection is closed after this
};

struct sim_config {
  server_limits server;
  std::map<std::string, behaviour> providers;
  uint64_t seed = 0;
  bool seed_set = false;
};

// Reads the YAML file; false with a message naming the key (and line) on any error.
bool load_config(const std::string& path, sim_config& out, std::string& error);
// Applies the keys of a JSON object onto `b` (all or nothing); false on unknown keys, wrong
// types or values out of range.
bool apply_json(const nlohmann::json& j, behaviour& b, std::string& error);
// Every behaviour key and its value, as JSON (for admin/stats).
nlohmann::json to_json(const behaviour& b);
// Cross-key rules: ppm <= 1e6, latency points in order, limits above zero.
bool validate(const behaviour& b, std::string& error);

} // namespace kassa::channels::sim
