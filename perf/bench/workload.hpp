#pragma once
// What kassa-bench sends: a workload makes one generator per connection; the generator writes
// each request's body and counts the results of its reply. A generator is used by one event
// loop thread only, so it needs no locks.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "perf/bench/histogram.hpp"
#include "perf/bench/scenario.hpp"
#include "runtime/wire/wire.hpp"

namespace kassa::bench {

// Whole-request failures: the frame statuses of runtime/wire, then these two.
constexpr size_t request_error_timeout = wire::status_max + 1;
constexpr size_t request_error_connection_lost = wire::status_max + 2;
constexpr size_t request_error_count = wire::status_max + 3;
std::string request_error_name(size_t index);

// What the requests of a stretch of time came to. Results are counted by code (the
// workload's result_names()); latency in microseconds, of requests answered ok.
struct tally {
  histogram latency;
  uint64_t requests = 0; // answered ok
  uint64_t events = 0;   // in the requests answered ok
  std::vector<uint64_t> results;
  std::array<uint64_t, request_error_count> request_errors{};
  std::array<uint64_t, 8> commands{}; // payments: commands sent (answered or not), by kind

  uint64_t errors() const;
  void merge(const tally& o);
};

struct request_shape {
  wire::operation op;
  uint32_t events;
};

class generator {
public:
  virtual ~generator() = default;
  // Writes the next request's body into `body` (empty on entry). `slot` (< depth) names the
  // request until replied() or failed() is called with it.
  virtual request_shape next(size_t slot, std::vector<uint8_t>& body) = 0;
  // The ok reply to the request in `slot`: counts its events' results into `t`.
  virtual void replied(size_t slot, const uint8_t* body, size_t body_bytes, tally& t) = 0;
  // The request in `slot` got no ok reply (a status, or none); `t` counts what it sent.
  virtual void failed(size_t slot, tally& t) {}
};

class acked_log;

class workload {
public:
  virtual ~workload() = default;
  virtual std::unique_ptr<generator> make_generator(uint32_t connection) = 0;
  // Names of the result codes, by code. Events are counted as "ok" under code 0.
  virtual const std::vector<std::string>& result_names() const = 0;
};

// transfers, hot and lookups; payments (docs/performance.md says what each sends). `log`, the
// --acked-log, may be null.
std::unique_ptr<workload> make_ledger_workload(const scenario& s, acked_log* log);
std::unique_ptr<workload> make_payments_workload(const scenario& s, acked_log* log);

// The transfer ids of connection c: (seed << 80) | (c << 56) | counter, counter from 1.
inline u128 first_transfer_id(uint64_t seed, uint32_t connection) {
  return (u128{seed} << 80) | (u128{connection} << 56) | 1;
}
// Account i (1..N) of a scenario is base + i: base 0 in ledger 1, ledger << 64 in any other,
// so that scenarios of several ledgers can share one kassad.
inline u128 account_base(const scenario& s) { return s.ledger == 1 ? 0 : u128{s.ledger} << 64; }
// The funding transfer of account id made by the setup.
inline u128 funding_transfer_id(u128 account) { return (u128{1} << 100) + account; }

} // namespace kassa::bench
