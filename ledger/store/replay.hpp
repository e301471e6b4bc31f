#pragma once
// Brings account rows forward by the journal: account rows are a checkpoint, and the transfers
// and expirations stamped after it are the truth. One set of rules for recovery (store::open)
// and for verify, so that the two cannot disagree about what an event does to an account.
#include <lmdb.h>

#include <string>

#include "ledger/store/layout.hpp"
#include "ledger/types.hpp"
#include "primitives/u128.hpp"

namespace kassa::ledger::store::replay {

// What one event does to its two accounts:
//   plain transfer   posted += amount
//   pending          pending += amount; closing flags close the account
//   post             pending -= the pending transfer's full amount; posted += own amount
//   void             pending -= the pending transfer's amount; reopens on its closing flags
//   expiration       as void
// `find_account(u128) -> account*` returns the row to change, or null to leave that side alone
// (a caller that must know every account reports a missing one itself);
// `find_transfer(u128, transfer&) -> bool` finds the pending transfer a post, void or
// expiration resolves. Returns "" or a problem.
namespace detail {

inline std::string add(u128& field, u128 amount, const char* name, u128 account_id) {
  if (add_overflows(field, amount))
    return std::string(name) + " of account " + to_string_u128(account_id) + " overflows";
  field += amount;
  return {};
}

inline std::string sub(u128& field, u128 amount, const char* name, u128 account_id) {
  if (field < amount)
    return std::string(name) + " of account " + to_string_u128(account_id) + " would go below zero";
  field -= amount;
  return {};
}

template <class FindAccount>
std::string release(const transfer& pending, bool reopen, FindAccount&& find_account) {
  std::string p;
  if (account* dr = find_account(pending.debit_account_id)) {
    p = sub(dr->debits_pending, pending.amount, "debits_pending", dr->id);
    if (reopen && has(pending.flags, transfer_closing_debit)) dr->flags &= ~account_closed;
  }
  if (account* cr = find_account(pending.credit_account_id); cr != nullptr && p.empty()) {
    p = sub(cr->credits_pending, pending.amount, "credits_pending", cr->id);
    if (reopen && has(pending.flags, transfer_closing_credit)) cr->flags &= ~account_closed;
  }
  return p;
}

} // namespace detail

template <class FindAccount, class FindTransfer>
std::string apply_transfer(const transfer& t, FindAccount&& find_account, FindTransfer&& find_transfer) {
  using detail::add;
  account* dr = find_account(t.debit_account_id);
  account* cr = find_account(t.credit_account_id);
  if (dr == nullptr && cr == nullptr) return {};
  if (has(t.flags, transfer_post_pending | transfer_void_pending)) {
    transfer p;
    if (!find_transfer(t.pending_id, p) || !has(p.flags, transfer_pending))
      return "transfer " + to_string_u128(t.id) + " resolves " + to_string_u128(t.pending_id) +
             ", which is not a stored pending transfer";
    if (p.debit_account_id != t.debit_account_id || p.credit_account_id != t.credit_account_id)
      return "transfer " + to_string_u128(t.id) + " names other accounts than the pending " +
             "transfer it resolves";
    const bool post = has(t.flags, transfer_post_pending);
    std::string problem = detail::release(p, !post, find_account);
    if (!problem.empty() || !post) return problem;
  }
  const bool pending = has(t.flags, transfer_pending);
  std::string p;
  if (dr != nullptr) {
    p = add(pending ? dr->debits_pending : dr->debits_posted, t.amount,
            pending ? "debits_pending" : "debits_posted", dr->id);
    if (has(t.flags, transfer_closing_debit)) dr->flags |= account_closed;
  }
  if (cr != nullptr && p.empty()) {
    p = add(pending ? cr->credits_pending : cr->credits_posted, t.amount,
            pending ? "credits_pending" : "credits_posted", cr->id);
    if (has(t.flags, transfer_closing_credit)) cr->flags |= account_closed;
  }
  return p;
}

template <class FindAccount, class FindTransfer>
std::string apply_expiration(u128 pending_id, FindAccount&& find_account, FindTransfer&& find_transfer) {
  transfer p;
  if (!find_transfer(pending_id, p) || !has(p.flags, transfer_pending))
    return "expiration of " + to_string_u128(pending_id) + ", which is not a stored pending transfer";
  return detail::release(p, true, find_account);
}

// Walks in replay order the transfers stamped after `after` and the expirations whose replay
// stamp is after it: an expiration with stamp s comes before the transfer stamped s and after
// every transfer stamped below s. `on_transfer(const transfer&)` and
// `on_expiration(uint64_t stamp, u128 pending_id)` return false to stop.
// Returns 0, an LMDB code, or MDB_CORRUPTED for a row of the wrong size.
template <class OnTransfer, class OnExpiration>
int walk(MDB_txn* txn, MDB_dbi transfers, MDB_dbi expirations, uint64_t after,
         OnTransfer&& on_transfer, OnExpiration&& on_expiration) {
  if (after == UINT64_MAX) return 0;
  struct cursor {
    MDB_cursor* c = nullptr;
    ~cursor() { if (c) mdb_cursor_close(c); }
  } tc, ec;
  int rc;
  if ((rc = mdb_cursor_open(txn, transfers, &tc.c)) != 0) return rc;
  if ((rc = mdb_cursor_open(txn, expirations, &ec.c)) != 0) return rc;
  layout::key_u64 tstart(after + 1);
  layout::key_ts_id estart(after + 1, 0);
  MDB_val tk{sizeof tstart, &tstart}, tv, ek{sizeof estart, &estart}, ev;
  int trc = mdb_cursor_get(tc.c, &tk, &tv, MDB_SET_RANGE);
  int erc = mdb_cursor_get(ec.c, &ek, &ev, MDB_SET_RANGE);
  for (;;) {
    if (trc != 0 && trc != MDB_NOTFOUND) return trc;
    if (erc != 0 && erc != MDB_NOTFOUND) return erc;
    if (trc == MDB_NOTFOUND && erc == MDB_NOTFOUND) return 0;
    if (trc == 0 && (tk.mv_size != 8 || tv.mv_size != sizeof(transfer))) return MDB_CORRUPTED;
    if (erc == 0 && ek.mv_size != 24) return MDB_CORRUPTED;
    const uint64_t ts = trc == 0 ? layout::get_be64(static_cast<const uint8_t*>(tk.mv_data)) : 0;
    const uint64_t stamp = erc == 0 ? layout::get_be64(static_cast<const uint8_t*>(ek.mv_data)) : 0;
    if (erc == 0 && (trc == MDB_NOTFOUND || stamp <= ts)) {
      if (!on_expiration(stamp, layout::get_be128(static_cast<const uint8_t*>(ek.mv_data) + 8)))
        return 0;
      erc = mdb_cursor_get(ec.c, &ek, &ev, MDB_NEXT);
    } else {
      transfer t;
      std::memcpy(&t, tv.mv_data, sizeof t);
      if (!on_transfer(t)) return 0;
      trc = mdb_cursor_get(tc.c, &tk, &tv, MDB_NEXT);
    }
  }
}

} // namespace kassa::ledger::store::replay
