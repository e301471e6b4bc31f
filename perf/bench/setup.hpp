#pragma once
// A scenario's setup: the accounts its load moves money between, funded from a bank account,
// created through the client library (idempotent: `exists` is fine, so a second run on the
// same store goes on). Ledger kinds: accounts 1..N with debits_must_not_exceed_credits and
// the bank N+1, each account funded by transfer (1 << 100) + id. Payments: the same, plus the
// merchant N+2 the orders pay. Ids are account_base(s) + i (workload.hpp).
#include <string>

#include "perf/bench/scenario.hpp"
#include "runtime/client/client.hpp"

namespace kassa::bench {

// Throws std::runtime_error (what failed) or client::error.
void setup_accounts(const scenario& s, const std::string& host, uint16_t port, const client::options& o, bool shadow);

} // namespace kassa::bench
