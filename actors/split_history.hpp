#pragma once
// The history of a split hot account as one account would show it. Its records live in
// several rows (the account's own row and its sub-accounts', each in its own shard); these
// plain functions merge the rows' client transfers into one timestamp order and compute the
// account's aggregate balance after each of them. No actors, no I/O: the directory reads the
// rows and calls these (docs/sharding.md, "Hot accounts").
#include <cstdint>
#include <vector>

#include "ledger/types.hpp"

namespace kassa::actors::split_history {

// Where a record stands in an account's history across shards: by timestamp, then by shard.
// One shard never stamps two transfers alike, so this is a total order of the records.
struct position {
  uint64_t timestamp = 0;
  uint32_t shard = 0;
};
inline bool operator<(const position& a, const position& b) {
  return a.timestamp != b.timestamp ? a.timestamp < b.timestamp : a.shard < b.shard;
}
inline bool operator<=(const position& a, const position& b) { return !(b < a); }

// One row's client transfers, shown as the client wrote them, in the order asked (ascending
// timestamps, or descending when reversed). A row that holds more than it lists must list
// at least the first `limit` of them.
struct row_transfers {
  uint32_t shard = 0;
  std::vector<ledger::transfer> transfers;
};

struct record {
  ledger::transfer transfer{};
  uint32_t shard = 0;
  position at() const { return {transfer.timestamp, shard}; }
};

// The first `limit` records of all rows together, in position order (descending when
// `reversed`).
std::vector<record> merge(const std::vector<row_transfers>& rows, uint32_t limit, bool reversed);

// One row's balance snapshots (of an account with the `history` flag) in ascending order:
// every snapshot of the range asked for, and the last one before it first.
struct row_balances {
  uint32_t shard = 0;
  std::vector<ledger::account_balance> snapshots;
};

// Money a sweep or gather moved from a sub-account into the account: a transfer whose debit
// leg (in the sub-account's shard) and credit leg (in the account's) each have their stamp.
struct sweep {
  position sub_leg;
  position parent_leg;
  u128 amount = 0;
};

// The split account's balance just after the record at `at`: its own row as of then, plus
// what each sub-account held as of then (credits not yet swept), with a sweep whose legs
// stand on either side of `at` counted once (as the instant of its credit leg).
// `sweeps` must hold every sweep whose legs stand on either side of `at` (others are
// ignored). Returns false on overflow.
bool aggregate_at(position at, const row_balances& parent, const std::vector<row_balances>& subs,
                  const std::vector<sweep>& sweeps, ledger::account_balance& out);

} // namespace kassa::actors::split_history
