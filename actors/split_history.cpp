#include "actors/split_history.hpp"

#include <algorithm>

#include "primitives/u128.hpp"

namespace kassa::actors::split_history {

using ledger::account_balance;

std::vector<record> merge(const std::vector<row_transfers>& rows, uint32_t limit, bool reversed) {
  std::vector<size_t> next(rows.size(), 0);
  std::vector<record> out;
  while (out.size() < limit) {
    // The row whose next record comes first (a few rows: a linear pick is enough).
    size_t best = rows.size();
    position best_at{};
    for (size_t r = 0; r < rows.size(); ++r) {
      if (next[r] >= rows[r].transfers.size()) continue;
      const position at{rows[r].transfers[next[r]].timestamp, rows[r].shard};
      if (best == rows.size() || (reversed ? best_at < at : at < best_at)) {
        best = r;
        best_at = at;
      }
    }
    if (best == rows.size()) break;
    out.push_back(record{rows[best].transfers[next[best]], rows[best].shard});
    ++next[best];
  }
  return out;
}

namespace {

// The row's last snapshot at or before `at`, or null when the row had none yet.
const account_balance* snapshot_at(const row_balances& row, position at) {
  auto it = std::upper_bound(row.snapshots.begin(), row.snapshots.end(), at,
                             [&](const position& p, const account_balance& b) {
                               return p < position{b.timestamp, row.shard};
                             });
  return it == row.snapshots.begin() ? nullptr : &*(it - 1);
}

} // namespace

bool aggregate_at(position at, const row_balances& parent, const std::vector<row_balances>& subs,
                  const std::vector<sweep>& sweeps, account_balance& out) {
  out = account_balance{};
  if (const account_balance* p = snapshot_at(parent, at)) out = *p;
  out.timestamp = at.timestamp;
  out.reserved = 0;
  // Sub-accounts take credits only; their debits are sweeps into the account (see
  // add_balances in directory.cpp, which reads the current rows the same way).
  u128 credits_posted = out.credits_posted;
  for (const row_balances& row : subs) {
    const account_balance* s = snapshot_at(row, at);
    if (s == nullptr) continue;
    const u128 held = s->credits_posted - std::min(s->credits_posted, s->debits_posted);
    if (!add_checked(credits_posted, held, credits_posted)) return false;
    if (!add_checked(out.credits_pending, s->credits_pending, out.credits_pending)) return false;
    out.credits_pending -= std::min(out.credits_pending, s->debits_pending);
  }
  // A sweep across shards happens at its credit leg: between its legs the money has left
  // the sub-account but not reached the account (or the other way round).
  for (const sweep& w : sweeps) {
    if (w.sub_leg <= at && at < w.parent_leg) {
      if (!add_checked(credits_posted, w.amount, credits_posted)) return false;
    } else if (w.parent_leg <= at && at < w.sub_leg) {
      credits_posted -= std::min(credits_posted, w.amount);
    }
  }
  out.credits_posted = credits_posted;
  return true;
}

} // namespace kassa::actors::split_history
