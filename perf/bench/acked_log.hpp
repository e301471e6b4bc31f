#pragma once
// --acked-log FILE: after each acknowledged create_transfers request one line
// `<first_id_hex> <count> <failed indexes, comma separated, or ->`, flushed at once, so a line
// is there only if kassad acknowledged the request; the first line is a `#` header with the
// settings. tests/reliability/acked_check.cpp reads it (docs/reliability.md).
#include <cstdio>
#include <mutex>
#include <string>

#include "ledger/u128.hpp"
#include "perf/bench/scenario.hpp"
#include "runtime/wire/wire.hpp"

namespace kassa::bench {

class acked_log {
public:
  // Opens `path` for appending; throws std::runtime_error when it cannot.
  explicit acked_log(const std::string& path);
  ~acked_log();
  acked_log(const acked_log&) = delete;
  acked_log& operator=(const acked_log&) = delete;

  // The header of a scenario's requests (every transfer of it moves `amount`).
  void begin(const scenario& s);
  // One acknowledged request: its first id, its event count, the failed events of its reply.
  // Exits the process (status 3) when the line cannot be written: a log missing an
  // acknowledged request would mislead its checker.
  void record(u128 first_id, uint32_t count, const wire::event_result* failed, size_t failed_count);

private:
  void write(const std::string& line);
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

std::string hex(u128 v);

} // namespace kassa::bench
