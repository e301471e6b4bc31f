#pragma once
// Offline consistency check of a stopped store (`kassa verify --data DIR`): balances per
// ledger, every account's totals replayed from its transfers (and equal to its checkpointed row
// brought forward by the journal after the checkpoint), every index against the rows; and
// across shards, that each pair of clearing accounts mirrors the other.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ledger/types.hpp"

namespace kassa::ledger::store {

struct verify_report {
  bool consistent = false;
  std::string summary;               // one line, "verify: consistent: ..." or "verify: INCONSISTENT: ..."
  std::vector<std::string> problems; // one line each; at most problems_max are kept
  uint64_t problems_total = 0;       // all problems found, also those not kept
  uint64_t ledgers = 0, accounts = 0, transfers = 0, pending = 0, commits = 0;
  uint64_t replayed = 0; // transfers after the account checkpoint, replayed onto the rows
  // The shard's clearing accounts (system_ids::kind::clearing), brought forward by the
  // journal, in id order: the input of verify_clearing().
  std::vector<account> clearing;
};

constexpr size_t verify_problems_max = 100;

// Opens `path` read-only. Never writes to the data file.
verify_report verify(const std::string& path);

struct cross_shard_report {
  bool consistent = false;
  std::string summary;               // one line, "cross-shard: consistent: ..." or "... INCONSISTENT: ..."
  std::vector<std::string> problems; // one line each; at most verify_problems_max are kept
  uint64_t problems_total = 0;
  uint64_t shards = 0;
  uint64_t pairs = 0;      // pairs of clearing accounts compared
  uint64_t sagas_open = 0; // as given
};

// The cross-shard invariant: clearing(a, b, L) lives in shard a, and with every saga finished
// its credits equal the debits of clearing(b, a, L) in shard b and its debits their credits,
// posted and pending alike; a clearing account with a balance and no counterpart is a problem.
// `clearing` maps each shard number to its verify_report::clearing. With `sagas_open` > 0 the
// legs of a transfer may be in one shard only until the next start finishes them, so the pairs
// are not compared (the placement of each account still is).
cross_shard_report verify_clearing(const std::map<uint32_t, std::vector<account>>& clearing,
                                   uint64_t sagas_open);

} // namespace kassa::ledger::store
