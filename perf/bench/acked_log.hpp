#pragma once
// --acked-log FILE: after each acknowledged create_transfers request one line
// `<first_id_hex> <count> <failed indexes, comma separated, or ->`; after each acknowledged
// submit_payments request one line per command (record_payments); flushed at once, so a line
// is there only if kassad acknowledged the request. Each scenario starts with a `#` header
// with its settings. tests/reliability/acked_check.cpp reads the transfer lines,
// tests/reliability/payments_check.cpp the payment lines (docs/performance.md#--acked-log).
#include <cstdio>
#include <mutex>
#include <string>

#include "ledger/payments/records.hpp"
#include "perf/bench/scenario.hpp"
#include "primitives/u128.hpp"
#include "runtime/wire/wire.hpp"

namespace kassa::bench {

class acked_log {
public:
  // Opens `path` for appending; throws std::runtime_error when it cannot.
  explicit acked_log(const std::string& path);
  ~acked_log();
  acked_log(const acked_log&) = delete;
  acked_log& operator=(const acked_log&) = delete;

  // The header of a scenario's requests: for transfers and hot, every transfer moves
  // `amount_min`; for payments, the accounts, ledger and funding of the setup.
  void begin(const scenario& s);
  // One acknowledged request: its first id, its event count, the failed events of its reply.
  // Exits the process (status 3) when the line cannot be written: a log missing an
  // acknowledged request would mislead its checker.
  void record(u128 first_id, uint32_t count, const wire::event_result* failed, size_t failed_count);
  // One acknowledged submit_payments request: a line per answered command, `<kind> <key>
  // <order_id> <account_id> <counterparty_id> <amount> <ledger> <source> <provider or ->
  // <user_data_64> <result> <state>` (ids in hex, the others decimal, result and state by
  // name), all written and flushed at once. Exits like record().
  void record_payments(const ledger::payments::payment_command* commands, size_t command_count,
                       const ledger::payments::payment_reply* replies, size_t reply_count);

private:
  void write(const std::string& line);
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

std::string hex(u128 v);

} // namespace kassa::bench
