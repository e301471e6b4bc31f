#include "ledger/store/store_parts.hpp"

#include <algorithm>

#include "primitives/assert.hpp"

namespace kassa::ledger::store {

// --- reads ---------------------------------------------------------------------------------

error store::lookup_accounts(const u128* ids, size_t count, std::vector<account>& out) const {
  out.clear();
  txn_guard txn;
  int rc = mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a read transaction", options_);
  std::unordered_map<u128, account, u128_hash> rows;
  for (size_t i = 0; i < count; ++i) {
    if (rows.count(ids[i])) continue;
    key_id key(ids[i]);
    MDB_val k = val_of(key), v;
    rc = mdb_get(txn.txn, impl_->accounts, &k, &v);
    if (rc == MDB_NOTFOUND) continue;
    if (rc != 0) return lmdb_error(rc, "looking up accounts", options_);
    if (v.mv_size != sizeof(account)) return corrupt(options_, "an accounts row has a bad size");
    account a;
    std::memcpy(&a, v.mv_data, sizeof a);
    rows.emplace(a.id, a);
  }
  // The rows are the checkpoint: bring them forward by the journal after it (at most
  // options.checkpoint_transfers_max transfers). The shard answers from memory instead.
  uint64_t checkpoint = 0;
  bool found = false;
  if ((rc = get_u64(txn.txn, impl_->meta, meta_accounts_checkpoint_timestamp, checkpoint, found)) != 0)
    return lmdb_error(rc, "reading meta", options_);
  if (!found) return corrupt(options_, "meta lacks accounts_checkpoint_timestamp");
  if (!rows.empty()) {
    auto find_account = [&](u128 id) -> account* {
      auto it = rows.find(id);
      return it == rows.end() ? nullptr : &it->second;
    };
    uint64_t replayed = 0;
    if (error e = impl_->replay_after_checkpoint(txn.txn, checkpoint, find_account, options_, replayed); !e.ok())
      return e;
  }
  for (size_t i = 0; i < count; ++i) {
    auto it = rows.find(ids[i]);
    if (it != rows.end()) out.push_back(it->second);
  }
  return {};
}

error store::lookup_transfers(const u128* ids, size_t count, std::vector<transfer>& out) const {
  out.clear();
  txn_guard txn;
  int rc = mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a read transaction", options_);
  for (size_t i = 0; i < count; ++i) {
    transfer t;
    rc = transfer_get(txn.txn, impl_->transfer_ids, impl_->transfers, ids[i], t);
    if (rc == MDB_NOTFOUND) continue;
    if (rc == MDB_CORRUPTED)
      return corrupt(options_, "transfer_ids names transfer " + to_string_u128(ids[i]) +
                                   " but its row is missing");
    if (rc != 0) return lmdb_error(rc, "looking up transfers", options_);
    out.push_back(t);
  }
  return {};
}

error store::transfers_by_id(u128 id_min, u128 id_end, size_t limit, std::vector<transfer>& out) const {
  out.clear();
  KASSA_ASSERT(limit > 0);
  if (id_min >= id_end) return {};
  txn_guard txn;
  int rc = mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a read transaction", options_);
  cursor_guard cur;
  rc = mdb_cursor_open(txn.txn, impl_->transfer_ids, &cur.cursor);
  if (rc != 0) return lmdb_error(rc, "opening a cursor on transfer_ids", options_);
  key_id start(id_min);
  MDB_val k = val_of(start), v;
  for (rc = mdb_cursor_get(cur.cursor, &k, &v, MDB_SET_RANGE); rc == 0 && out.size() < limit;
       rc = mdb_cursor_get(cur.cursor, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 16) return corrupt(options_, "a transfer_ids key is not 16 bytes");
    const u128 id = get_be128(static_cast<const uint8_t*>(k.mv_data));
    if (id >= id_end) break;
    transfer t;
    const int got = transfer_get(txn.txn, impl_->transfer_ids, impl_->transfers, id, t);
    if (got == MDB_CORRUPTED || got == MDB_NOTFOUND)
      return corrupt(options_, "transfer_ids names transfer " + to_string_u128(id) + " but its row is missing");
    if (got != 0) return lmdb_error(got, "reading transfers by id", options_);
    out.push_back(t);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc, "scanning transfer_ids", options_);
  return {};
}

error store::lookup_pending(u128 id, pending_state& out) const {
  out = {};
  txn_guard txn;
  int rc = mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a read transaction", options_);
  pending_row row;
  rc = pending_get(txn.txn, impl_->pending, id, row);
  if (rc == MDB_NOTFOUND) return {};
  if (rc != 0) return lmdb_error(rc, "looking up a pending state", options_);
  out = pending_state{pending_status(row.status), row.expires_at_ns};
  return {};
}

namespace {

// Walks the rows of `account_id` in an (account id ++ timestamp) table within
// [ts_min, ts_max], oldest first or newest first; `f(ts, value)` returns false to stop.
template <class F>
int scan_account_range(MDB_cursor* c, u128 account_id, uint64_t ts_min, uint64_t ts_max,
                       bool reversed, F&& f) {
  MDB_val k, v;
  int rc;
  if (!reversed) {
    key_id_ts start(account_id, ts_min);
    k = val_of(start);
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  } else {
    if (ts_max == UINT64_MAX) {
      // No key above (id, max) within this account: start after the account's range.
      key_id_ts start(account_id + 1, 0);
      k = val_of(start);
      rc = account_id == u128_max ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    } else {
      key_id_ts start(account_id, ts_max + 1);
      k = val_of(start);
      rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    rc = rc == 0 ? mdb_cursor_get(c, &k, &v, MDB_PREV)
                 : rc == MDB_NOTFOUND ? mdb_cursor_get(c, &k, &v, MDB_LAST) : rc;
  }
  for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, reversed ? MDB_PREV : MDB_NEXT)) {
    if (k.mv_size != 24) return MDB_CORRUPTED;
    const auto* bytes = static_cast<const uint8_t*>(k.mv_data);
    if (get_be128(bytes) != account_id) break;
    uint64_t ts = get_be64(bytes + 16);
    if (ts < ts_min || ts > ts_max) break;
    if (!f(ts, v)) break;
  }
  return rc == MDB_NOTFOUND ? 0 : rc;
}

// Walks the stamps of `account_id` in account_transfers (fixed-size duplicates) within
// [ts_min, ts_max], oldest first or newest first; `f(ts)` returns false to stop.
template <class F>
int scan_account_stamps(MDB_cursor* c, u128 account_id, uint64_t ts_min, uint64_t ts_max,
                        bool reversed, F&& f) {
  key_id key(account_id);
  MDB_val k = val_of(key), v;
  int rc;
  if (!reversed) {
    key_u64 from(ts_min);
    v = val_of(from);
    rc = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH_RANGE); // first stamp >= ts_min
  } else {
    key_u64 from(ts_max);
    v = val_of(from);
    rc = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH_RANGE);
    if (rc == 0 && v.mv_size == 8 && get_be64(static_cast<const uint8_t*>(v.mv_data)) > ts_max) {
      rc = mdb_cursor_get(c, &k, &v, MDB_PREV_DUP);
    } else if (rc == MDB_NOTFOUND) { // every stamp is below ts_max, or the account has none
      k = val_of(key);
      rc = mdb_cursor_get(c, &k, &v, MDB_SET);
      if (rc == 0) rc = mdb_cursor_get(c, &k, &v, MDB_LAST_DUP);
    }
  }
  for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, reversed ? MDB_PREV_DUP : MDB_NEXT_DUP)) {
    if (v.mv_size != 8) return MDB_CORRUPTED;
    const uint64_t ts = get_be64(static_cast<const uint8_t*>(v.mv_data));
    if (ts < ts_min || ts > ts_max) break;
    if (!f(ts)) break;
  }
  return rc == MDB_NOTFOUND ? 0 : rc;
}

} // namespace

error store::account_transfers(const account_filter& filter, std::vector<transfer>& out) const {
  out.clear();
  if (filter.limit == 0) return {};
  const uint64_t ts_min = filter.timestamp_min;
  const uint64_t ts_max = filter.timestamp_max == 0 ? UINT64_MAX : filter.timestamp_max;
  txn_guard txn;
  int rc = mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a read transaction", options_);
  uint64_t indexed = 0;
  bool found = false;
  if ((rc = get_u64(txn.txn, impl_->meta, meta_account_transfers_indexed, indexed, found)) != 0)
    return lmdb_error(rc, "reading meta", options_);
  if (!found) return corrupt(options_, "meta lacks account_transfers_indexed");
  auto wanted = [&](const transfer& t) {
    return (filter.debits && t.debit_account_id == filter.account_id) ||
           (filter.credits && t.credit_account_id == filter.account_id);
  };

  // The tail not yet in account_transfers (stamped after `indexed`): a scan of the journal,
  // bounded by options.index_transfers_max transfers.
  std::vector<transfer> tail;
  if (ts_max > indexed) {
    cursor_guard c;
    if ((rc = mdb_cursor_open(txn.txn, impl_->transfers, &c.cursor)) != 0)
      return lmdb_error(rc, "opening a transfers cursor", options_);
    key_u64 start(std::max(indexed + 1, ts_min));
    MDB_val k = val_of(start), v;
    for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
      if (k.mv_size != 8 || v.mv_size != sizeof(transfer))
        return corrupt(options_, "a transfers row has a bad size");
      if (get_be64(static_cast<const uint8_t*>(k.mv_data)) > ts_max) break;
      transfer t;
      std::memcpy(&t, v.mv_data, sizeof t);
      if (wanted(t)) tail.push_back(t);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc, "reading the transfers", options_);
  }
  auto take_tail = [&]() {
    if (!filter.reversed) {
      for (size_t i = 0; i < tail.size() && out.size() < filter.limit; ++i) out.push_back(tail[i]);
    } else {
      for (size_t i = tail.size(); i-- > 0 && out.size() < filter.limit;) out.push_back(tail[i]);
    }
  };
  if (filter.reversed) take_tail();

  // The indexed part: stamps in [ts_min, min(ts_max, indexed)].
  if (indexed != 0 && ts_min <= indexed && out.size() < filter.limit) {
    cursor_guard c;
    if ((rc = mdb_cursor_open(txn.txn, impl_->account_transfers, &c.cursor)) != 0)
      return lmdb_error(rc, "opening an account_transfers cursor", options_);
    int inner = 0;
    rc = scan_account_stamps(c.cursor, filter.account_id, ts_min, std::min(ts_max, indexed),
                             filter.reversed, [&](uint64_t ts) {
      key_u64 key(ts);
      MDB_val k = val_of(key), v;
      inner = mdb_get(txn.txn, impl_->transfers, &k, &v);
      if (inner == 0 && v.mv_size != sizeof(transfer)) inner = MDB_CORRUPTED;
      if (inner != 0) return false;
      transfer t;
      std::memcpy(&t, v.mv_data, sizeof t);
      if (wanted(t)) out.push_back(t);
      return out.size() < filter.limit;
    });
    if (inner == MDB_NOTFOUND || inner == MDB_CORRUPTED || rc == MDB_CORRUPTED)
      return corrupt(options_, "account_transfers points at a missing or damaged transfer");
    if (inner != 0) rc = inner;
    if (rc != 0) return lmdb_error(rc, "reading account transfers", options_);
  }
  if (!filter.reversed) take_tail();
  return {};
}

error store::account_balances(const account_filter& filter,
                              std::vector<account_balance>& out) const {
  out.clear();
  if (filter.limit == 0) return {};
  const uint64_t ts_max = filter.timestamp_max == 0 ? UINT64_MAX : filter.timestamp_max;
  txn_guard txn;
  int rc = mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a read transaction", options_);
  cursor_guard c;
  if ((rc = mdb_cursor_open(txn.txn, impl_->history, &c.cursor)) != 0)
    return lmdb_error(rc, "opening a history cursor", options_);
  bool bad = false;
  rc = scan_account_range(c.cursor, filter.account_id, filter.timestamp_min, ts_max,
                          filter.reversed, [&](uint64_t, const MDB_val& v) {
    if (v.mv_size != sizeof(account_balance)) {
      bad = true;
      return false;
    }
    account_balance b;
    std::memcpy(&b, v.mv_data, sizeof b);
    out.push_back(b);
    return out.size() < filter.limit;
  });
  if (bad || rc == MDB_CORRUPTED) return corrupt(options_, "a history row has a bad size");
  if (rc != 0) return lmdb_error(rc, "reading account balances", options_);
  return {};
}

} // namespace kassa::ledger::store
