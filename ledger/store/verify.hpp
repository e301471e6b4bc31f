#pragma once
// Offline consistency check of a stopped store (`kassa verify --data DIR`): balances per
// ledger, every account's totals replayed from its transfers (and equal to its checkpointed row
// brought forward by the journal after the checkpoint), every index against the rows.
#include <cstdint>
#include <string>
#include <vector>

namespace kassa::ledger::store {

struct verify_report {
  bool consistent = false;
  std::string summary;               // one line, "verify: consistent: ..." or "verify: INCONSISTENT: ..."
  std::vector<std::string> problems; // one line each; at most problems_max are kept
  uint64_t problems_total = 0;       // all problems found, also those not kept
  uint64_t ledgers = 0, accounts = 0, transfers = 0, pending = 0, commits = 0;
  uint64_t replayed = 0; // transfers after the account checkpoint, replayed onto the rows
};

constexpr size_t verify_problems_max = 100;

// Opens `path` read-only. Never writes to the data file.
verify_report verify(const std::string& path);

} // namespace kassa::ledger::store
