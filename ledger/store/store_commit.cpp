#include "ledger/store/store_parts.hpp"

#include <algorithm>

#include "primitives/assert.hpp"
#include "primitives/crc32c.hpp"

namespace kassa::ledger::store {

namespace {

// Writes account rows in key order, so that each leaf page is visited once. Of several rows
// with one id, the last in `rows` wins (a stable sort keeps their order). `rows` ends up
// holding the rows written.
int write_account_rows(MDB_txn* txn, MDB_dbi dbi, std::vector<account>& rows) {
  std::stable_sort(rows.begin(), rows.end(),
                   [](const account& a, const account& b) { return a.id < b.id; });
  cursor_guard c;
  int rc = mdb_cursor_open(txn, dbi, &c.cursor);
  if (rc != 0) return rc;
  size_t written = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i + 1 < rows.size() && rows[i + 1].id == rows[i].id) continue; // a later row follows
    key_id key(rows[i].id);
    MDB_val k = val_of(key), v = val_of(rows[i]);
    if ((rc = mdb_cursor_put(c.cursor, &k, &v, 0)) != 0) return rc;
    rows[written++] = rows[i];
  }
  rows.resize(written);
  return 0;
}

// Indexes `sides` (account, stamp), in stamp order, into account_transfers (key account id,
// one 8-byte big-endian stamp per transfer side as a fixed-size duplicate). The stamps are
// grouped by account with a counting sort (which keeps their stamp order), then each account gets all of its new stamps in one MDB_MULTIPLE put: one descent
// and one dirtied leaf per account and pass, instead of one per transfer side and commit.
int index_transfers(MDB_txn* txn, MDB_dbi account_transfers, const std::vector<id_ts>& sides,
                    index_scratch& x) {
  if (sides.empty()) return 0;
  int rc;
  MDB_val k;
  // Counting sort by account: count, order the distinct accounts, place.
  x.groups = {};
  x.accounts.clear();
  for (const id_ts& e : sides) {
    auto [g, inserted] = x.groups.insert(index_group{e.id, 0});
    if (inserted) x.accounts.push_back(e.id);
    ++g->next;
  }
  std::sort(x.accounts.begin(), x.accounts.end());
  x.starts.resize(x.accounts.size() + 1);
  uint64_t offset = 0;
  for (size_t i = 0; i < x.accounts.size(); ++i) {
    index_group* g = x.groups.find(x.accounts[i]);
    x.starts[i] = offset;
    offset += g->next;
    g->next = x.starts[i];
  }
  x.starts[x.accounts.size()] = offset;
  x.stamps.resize(offset);
  for (const id_ts& e : sides) {
    index_group* g = x.groups.find(e.id);
    put_be64(x.stamps[g->next++].data(), e.ts);
  }

  cursor_guard a;
  if ((rc = mdb_cursor_open(txn, account_transfers, &a.cursor)) != 0) return rc;
  for (size_t i = 0; i < x.accounts.size(); ++i) {
    key_id key(x.accounts[i]);
    k = val_of(key);
    MDB_val data[2];
    data[0] = MDB_val{8, x.stamps[x.starts[i]].data()};
    data[1] = MDB_val{size_t(x.starts[i + 1] - x.starts[i]), nullptr};
    if ((rc = mdb_cursor_put(a.cursor, &k, data, MDB_MULTIPLE)) != 0) return rc;
  }
  return 0;
}

// The steps of a commit that write one table each (store::commit): LMDB return codes.

// The journal of transfers: timestamps strictly increase, so every put is an append. Leaves
// the last timestamp in `ts_prev` and the records' CRC-32C in `crc`.
int append_transfers(MDB_txn* txn, MDB_dbi dbi, const std::vector<transfer>& created, uint64_t& ts_prev,
                     uint32_t& crc) {
  cursor_guard c;
  int rc = mdb_cursor_open(txn, dbi, &c.cursor);
  if (rc != 0) return rc;
  MDB_val k, v;
  for (const transfer& t : created) {
    KASSA_ASSERT(t.timestamp > ts_prev);
    ts_prev = t.timestamp;
    key_u64 key(t.timestamp);
    k = val_of(key);
    v = val_of(t);
    if ((rc = mdb_cursor_put(c.cursor, &k, &v, MDB_APPEND)) != 0) return rc;
    crc = crc32c_extend(crc, &t, sizeof t);
  }
  return 0;
}

// transfer_ids, sorted. Ids that all exceed the largest stored id (time-based or sequential
// ids) are appended; otherwise MDB_NOOVERWRITE refuses a second copy of an id: MDB_KEYEXIST,
// with the id in `duplicate`.
int index_transfer_ids(MDB_txn* txn, MDB_dbi dbi, const std::vector<transfer>& created, std::vector<id_ts>& ids,
                       u128& duplicate) {
  ids.clear();
  for (const transfer& t : created) ids.push_back({t.id, t.timestamp});
  std::sort(ids.begin(), ids.end());
  if (ids.empty()) return 0;
  cursor_guard c;
  int rc = mdb_cursor_open(txn, dbi, &c.cursor);
  if (rc != 0) return rc;
  MDB_val k, v;
  unsigned put_flags = MDB_NOOVERWRITE;
  rc = mdb_cursor_get(c.cursor, &k, &v, MDB_LAST);
  if (rc == MDB_NOTFOUND) {
    put_flags = MDB_APPEND;
  } else if (rc != 0) {
    return rc;
  } else if (k.mv_size == 16 && get_be128(static_cast<const uint8_t*>(k.mv_data)) < ids.front().id) {
    put_flags = MDB_APPEND;
  }
  for (const id_ts& e : ids) {
    key_id key(e.id);
    k = val_of(key);
    v = val_of(e.ts);
    rc = mdb_cursor_put(c.cursor, &k, &v, put_flags);
    if (rc == MDB_KEYEXIST) duplicate = e.id;
    if (rc != 0) return rc;
  }
  return 0;
}

// Balance history of accounts with the history flag, in key order.
int write_history(MDB_txn* txn, MDB_dbi dbi, const std::vector<history_entry>& history, std::vector<uint32_t>& order) {
  if (history.empty()) return 0;
  order.resize(history.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const history_entry& x = history[a];
    const history_entry& y = history[b];
    return x.account_id != y.account_id ? x.account_id < y.account_id : x.balance.timestamp < y.balance.timestamp;
  });
  cursor_guard c;
  int rc = mdb_cursor_open(txn, dbi, &c.cursor);
  if (rc != 0) return rc;
  MDB_val k, v;
  for (uint32_t i : order) {
    const history_entry& h = history[i];
    key_id_ts key(h.account_id, h.balance.timestamp);
    k = val_of(key);
    v = val_of(h.balance);
    if ((rc = mdb_cursor_put(c.cursor, &k, &v, 0)) != 0) return rc;
  }
  return 0;
}

// Pending states, in apply order (a group may create a pending transfer and post it), and
// the expiry index. A resolution of a transfer never stored as pending: MDB_NOTFOUND, with
// its id in `unknown`.
int write_pending(MDB_txn* txn, MDB_dbi pending, MDB_dbi expiry, const std::vector<pending_update>& updates,
                  u128& unknown) {
  MDB_val k, v, empty{0, nullptr};
  int rc = 0;
  for (const pending_update& u : updates) {
    pending_row row{};
    row.status = uint8_t(u.status);
    row.expires_at_ns = u.expires_at_ns;
    if (u.status != pending_status::pending) {
      pending_row old;
      rc = pending_get(txn, pending, u.id, old);
      if (rc == MDB_NOTFOUND) unknown = u.id;
      if (rc != 0) return rc;
      if (old.status == uint8_t(pending_status::pending) && old.expires_at_ns != 0) {
        key_ts_id ek(old.expires_at_ns, u.id);
        k = val_of(ek);
        rc = mdb_del(txn, expiry, &k, nullptr);
        if (rc != 0 && rc != MDB_NOTFOUND) return rc;
      }
      if (row.expires_at_ns == 0) row.expires_at_ns = old.expires_at_ns;
    } else if (u.expires_at_ns != 0) {
      key_ts_id ek(u.expires_at_ns, u.id);
      k = val_of(ek);
      if ((rc = mdb_put(txn, expiry, &k, &empty, 0)) != 0) return rc;
    }
    key_id key(u.id);
    k = val_of(key);
    v = val_of(row);
    if ((rc = mdb_put(txn, pending, &k, &v, 0)) != 0) return rc;
  }
  return 0;
}

// Expirations join the journal: they release holds and reopen closed accounts, so replay
// must see each at its place. Each carries its own stamp (an expiry takes a timestamp like
// any event), inside this commit's stamps (`after`, `through`], so a checkpoint never splits
// it from its commit.
int journal_expirations(MDB_txn* txn, MDB_dbi dbi, const std::vector<pending_update>& updates, std::vector<id_ts>& keys,
                        uint64_t after, uint64_t through) {
  keys.clear();
  for (const pending_update& u : updates) {
    if (u.status == pending_status::expired) keys.push_back({u.id, u.timestamp});
  }
  MDB_val k, empty{0, nullptr};
  for (const id_ts& e : keys) {
    KASSA_ASSERT(e.ts > after && e.ts <= through);
    key_ts_id key(e.ts, e.id);
    k = val_of(key);
    if (int rc = mdb_put(txn, dbi, &k, &empty, MDB_NOOVERWRITE); rc != 0) return rc;
  }
  return 0;
}

// Takes back what a commit added to a list unless the commit succeeded (keep).
struct sides_guard {
  std::vector<id_ts>& sides;
  size_t size_before;
  bool keep = false;
  ~sides_guard() {
    if (!keep) sides.resize(size_before);
  }
};

// The journal entry of commit `sequence`: what it wrote, and the CRC-32C of its transfers.
journal_entry journal_entry_of(const change_set& changes, uint64_t sequence, uint64_t timestamp_last,
                               size_t accounts_written, uint32_t crc) {
  journal_entry je{};
  je.sequence = sequence;
  je.timestamp_last = timestamp_last;
  if (!changes.transfers_created.empty()) {
    je.transfer_timestamp_min = changes.transfers_created.front().timestamp;
    je.transfer_timestamp_max = changes.transfers_created.back().timestamp;
    KASSA_ASSERT(je.transfer_timestamp_max <= timestamp_last);
  }
  je.committed_at_ns = wall_ns();
  je.accounts_created = uint32_t(changes.accounts_created.size());
  je.accounts_written = uint32_t(accounts_written);
  je.transfers_created = uint32_t(changes.transfers_created.size());
  je.pending_updates = uint32_t(changes.pending_updates.size());
  je.history_entries = uint32_t(changes.history.size());
  je.transfers_crc32c = crc;
  return je;
}

// Meta after a commit: its sequence and timestamps, and the checkpoint's and the bulk index's
// when this commit made them.
int write_meta(MDB_txn* txn, MDB_dbi meta, uint64_t sequence, uint64_t timestamp_last, uint64_t transfer_timestamp_last,
               bool checkpoint, bool indexed) {
  int rc;
  if ((rc = put_u64(txn, meta, meta_commit_sequence, sequence)) != 0 ||
      (rc = put_u64(txn, meta, meta_timestamp_last, timestamp_last)) != 0 ||
      (rc = put_u64(txn, meta, meta_transfer_timestamp_last, transfer_timestamp_last)) != 0)
    return rc;
  if (checkpoint && (rc = put_u64(txn, meta, meta_accounts_checkpoint_timestamp, timestamp_last)) != 0) return rc;
  if (indexed && (rc = put_u64(txn, meta, meta_account_transfers_indexed, transfer_timestamp_last)) != 0) return rc;
  return 0;
}

} // namespace

error store::commit(const change_set& changes) {
  impl& m = *impl_;
  const uint64_t t_begin = mono_ns();
  const size_t transfers_count = changes.transfers_created.size();
  const bool checkpoint_due =
      m.commits_since_checkpoint + 1 >= options_.checkpoint_commits_max ||
      m.transfers_since_checkpoint + transfers_count >= options_.checkpoint_transfers_max;
  const bool index_due = m.commits_since_index + 1 >= options_.index_commits_max ||
                         m.transfers_unindexed + transfers_count >= options_.index_transfers_max;
  txn_guard txn;
  int rc = mdb_txn_begin(m.env, nullptr, 0, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning the commit transaction", options_);
  const char* stage = "";
  auto fail = [&](int code) { return lmdb_error(code, std::string("commit: ") + stage, options_); };
  // This commit's transfer sides join the unindexed ones; a failed commit takes them back.
  sides_guard sides{m.unindexed_sides, m.unindexed_sides.size()};
  for (const transfer& t : changes.transfers_created) {
    m.unindexed_sides.push_back({t.debit_account_id, t.timestamp});
    m.unindexed_sides.push_back({t.credit_account_id, t.timestamp});
  }

  MDB_val k, v;
  // 1. Account rows. A new account's row is written at once (replay starts from it); changed
  // rows wait in `dirty` until a checkpoint, since the journal below already explains them.
  stage = "writing accounts";
  KASSA_ASSERT(changes.account_rows.size() == changes.accounts_updated.size());
  m.account_rows.assign(changes.accounts_created.begin(), changes.accounts_created.end());
  if (checkpoint_due) {
    m.dirty.for_each([&](const account& row) { m.account_rows.push_back(row); });
    m.account_rows.insert(m.account_rows.end(), changes.account_rows.begin(),
                          changes.account_rows.end());
  }
  if ((rc = write_account_rows(txn.txn, m.accounts, m.account_rows)) != 0) return fail(rc);

  // 2. The journal of transfers.
  stage = "appending transfers";
  uint32_t crc = 0;
  uint64_t ts_prev = transfer_timestamp_last_;
  if ((rc = append_transfers(txn.txn, m.transfers, changes.transfers_created, ts_prev, crc)) != 0) return fail(rc);

  // 3. transfer_ids.
  stage = "indexing transfer ids";
  u128 duplicate = 0;
  if ((rc = index_transfer_ids(txn.txn, m.transfer_ids, changes.transfers_created, m.ids, duplicate)) != 0) {
    if (rc == MDB_KEYEXIST) return corrupt(options_, "transfer id " + to_string_u128(duplicate) + " is already stored");
    return fail(rc);
  }

  // 4. account_transfers, in bulk every few commits (queries scan the transfers after
  // meta.account_transfers_indexed until then).
  stage = "indexing account transfers";
  size_t transfers_indexed = 0;
  if (index_due) {
    if ((rc = index_transfers(txn.txn, m.account_transfers, m.unindexed_sides, m.index)) != 0) return fail(rc);
    transfers_indexed = m.unindexed_sides.size() / 2;
  }

  // 5. Balance history.
  stage = "writing history";
  if ((rc = write_history(txn.txn, m.history, changes.history, m.history_order)) != 0) return fail(rc);

  // 6. Pending states.
  stage = "writing pending states";
  const uint64_t timestamp_last = std::max(timestamp_last_, changes.timestamp_last);
  u128 unknown = 0;
  if ((rc = write_pending(txn.txn, m.pending, m.expiry, changes.pending_updates, unknown)) != 0) {
    if (rc == MDB_NOTFOUND) {
      return corrupt(options_, "pending transfer " + to_string_u128(unknown) + " is resolved but was never stored as pending");
    }
    return fail(rc);
  }

  // 7. Expirations.
  stage = "journaling expirations";
  if ((rc = journal_expirations(txn.txn, m.expirations, changes.pending_updates, m.expiration_keys, timestamp_last_,
                                timestamp_last)) != 0) {
    return fail(rc);
  }

  // 8. The commit's journal entry and meta.
  stage = "writing the journal";
  const uint64_t sequence = commit_sequence_ + 1;
  const journal_entry je = journal_entry_of(changes, sequence, timestamp_last, m.account_rows.size(), crc);
  {
    key_u64 key(sequence);
    k = val_of(key);
    v = val_of(je);
    if ((rc = mdb_put(txn.txn, m.journal, &k, &v, MDB_APPEND)) != 0) return fail(rc);
  }
  stage = "writing meta";
  if ((rc = write_meta(txn.txn, m.meta, sequence, timestamp_last, ts_prev, checkpoint_due, index_due)) != 0)
    return fail(rc);

  const uint64_t t_write = mono_ns();
  stage = "committing (write + fsync)";
  if ((rc = txn.commit()) != 0) return fail(rc);
  const uint64_t t_end = mono_ns();

  // Durable: only now does the in-memory bookkeeping move (a failed commit leaves it as the
  // disk is, and the caller reloads).
  commit_sequence_ = sequence;
  timestamp_last_ = timestamp_last;
  transfer_timestamp_last_ = ts_prev;
  sides.keep = true;
  m.committed(changes, checkpoint_due, index_due, timestamp_last, ts_prev);
  last_commit_ = commit_stats{sequence,          transfers_count, m.account_rows.size(),
                              transfers_indexed, checkpoint_due,  t_write - t_begin,
                              t_end - t_write};
  return {};
}

error store::checkpoint() {
  impl& m = *impl_;
  if (m.dirty.size() == 0 && m.checkpoint_timestamp == timestamp_last_ &&
      m.indexed_timestamp == transfer_timestamp_last_)
    return {};
  txn_guard txn;
  int rc = mdb_txn_begin(m.env, nullptr, 0, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning the checkpoint transaction", options_);
  m.account_rows.clear();
  m.dirty.for_each([&](const account& row) { m.account_rows.push_back(row); });
  if ((rc = write_account_rows(txn.txn, m.accounts, m.account_rows)) != 0)
    return lmdb_error(rc, "checkpoint: writing accounts", options_);
  rc = index_transfers(txn.txn, m.account_transfers, m.unindexed_sides, m.index);
  if (rc != 0) return lmdb_error(rc, "checkpoint: indexing account transfers", options_);
  if ((rc = put_u64(txn.txn, m.meta, meta_accounts_checkpoint_timestamp, timestamp_last_)) != 0 ||
      (rc = put_u64(txn.txn, m.meta, meta_account_transfers_indexed, transfer_timestamp_last_)) != 0)
    return lmdb_error(rc, "checkpoint: writing meta", options_);
  if ((rc = txn.commit()) != 0) return lmdb_error(rc, "checkpoint: committing", options_);
  m.dirty = {};
  m.checkpoint_timestamp = timestamp_last_;
  m.indexed_timestamp = transfer_timestamp_last_;
  m.commits_since_checkpoint = m.transfers_since_checkpoint = 0;
  m.commits_since_index = m.transfers_unindexed = 0;
  m.unindexed_sides.clear();
  return {};
}

} // namespace kassa::ledger::store
