#include "ledger/store/store.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "ledger/store/store_parts.hpp"
#include "primitives/assert.hpp"

namespace kassa::ledger::store {

std::string_view name(errc code) {
  switch (code) {
    case errc::ok: return "ok";
    case errc::invalid_argument: return "invalid_argument";
    case errc::io: return "io";
    case errc::map_full: return "map_full";
    case errc::corrupt: return "corrupt";
    case errc::version_mismatch: return "version_mismatch";
  }
  return "unknown";
}

store::store(const options& o) : options_(o), impl_(std::make_unique<impl>()) {}

store::~store() {
  if (options_.checkpoint_on_close && impl_->ready) (void)checkpoint(); // shortens the next recovery
}

uint64_t store::checkpoint_timestamp() const { return impl_->checkpoint_timestamp; }
uint64_t store::account_transfers_indexed() const { return impl_->indexed_timestamp; }

namespace {

// Options open() refuses before it touches the disk.
error options_check(const options& o) {
  if (o.path.empty()) return make_error(errc::invalid_argument, "store path is empty: set store.path / data dir");
  if (o.checkpoint_commits_max == 0 || o.checkpoint_transfers_max == 0 || o.index_commits_max == 0 ||
      o.index_transfers_max == 0) {
    return make_error(errc::invalid_argument, "store checkpoint and index intervals must be at least 1");
  }
  if (o.map_size_bytes < (64u << 10)) {
    return make_error(errc::invalid_argument, "store map size " + std::to_string(o.map_size_bytes) +
                                                  " bytes is below 64 KiB: raise store.map_size_mib");
  }
  return {};
}

} // namespace

std::unique_ptr<store> store::open(const options& o, error& err) {
  err = options_check(o);
  if (!err.ok()) return nullptr;
  std::error_code ec;
  std::filesystem::create_directories(o.path, ec);
  if (ec) {
    err = make_error(errc::io, "cannot create store directory " + o.path + ": " + ec.message() +
                                   ": check the path and permissions");
    return nullptr;
  }

  std::unique_ptr<store> s(new store(o));
  impl& m = *s->impl_;
  // MDB_NOTLS: read transactions belong to the transaction object, not the thread, so actors
  // that CAF moves between worker threads may read, and a reset read txn can be renewed by
  // whichever thread uses it next. The single writer is one thread per shard by design.
  unsigned flags = MDB_NOTLS;
  if (o.durability == durability::none) flags |= MDB_NOSYNC;
  int rc = lmdb::env_open(m.env, o.path, flags, dbi_count + 1, o.map_size_bytes);
  if (rc != 0) {
    err = lmdb_error(rc, m.env ? "opening the LMDB environment" : "mdb_env_create", o);
    return nullptr;
  }
  txn_guard txn;
  if ((rc = mdb_txn_begin(m.env, nullptr, 0, &txn.txn)) != 0) {
    err = lmdb_error(rc, "beginning the open transaction", o);
    return nullptr;
  }
  bool index_dropped = false;
  if ((err = s->open_tables(txn.txn, index_dropped)).ok() && (err = s->open_format(txn.txn)).ok() &&
      (err = s->open_meta(txn.txn, index_dropped)).ok() && (err = s->open_check_last_commit(txn.txn)).ok()) {
    err = s->recover(txn.txn);
  }
  if (!err.ok()) return nullptr;
  if ((rc = txn.commit()) != 0) {
    err = lmdb_error(rc, "committing the open transaction", o);
    return nullptr;
  }
  m.ready = true;
  return s;
}

// Opens (creating) every table. An index in the old one-row-per-entry layout is dropped
// (`index_dropped`); the next bulk index rebuilds it.
error store::open_tables(MDB_txn* txn, bool& index_dropped) {
  impl& m = *impl_;
  const options& o = options_;
  int rc = 0;
  for (const impl::table& d : m.tables()) {
    if ((rc = mdb_dbi_open(txn, d.name, MDB_CREATE | d.flags, d.dbi)) != 0) {
      return lmdb_error(rc, std::string("opening table ") + d.name, o);
    }
  }
  MDB_dbi rows;
  rc = mdb_dbi_open(txn, dbi_account_transfers_rows, 0, &rows);
  if (rc == 0) {
    rc = mdb_drop(txn, rows, 1);
    index_dropped = true;
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc, "dropping the old account_transfers table", o);
  return {};
}

// The format version: a new store gets meta (every table must be empty then, or someone
// removed meta); version 1 is upgraded in place; any other version is refused.
error store::open_format(MDB_txn* txn) {
  impl& m = *impl_;
  const options& o = options_;
  uint64_t version = 0;
  bool found = false;
  int rc = get_u64(txn, m.meta, meta_format_version, version, found);
  if (rc != 0) return lmdb_error(rc, "reading meta.format_version", o);
  if (!found) {
    for (const impl::table& d : m.tables()) {
      MDB_stat st;
      if ((rc = mdb_stat(txn, *d.dbi, &st)) != 0) return lmdb_error(rc, "mdb_stat", o);
      if (st.ms_entries != 0) {
        return corrupt(o, std::string("meta.format_version is missing but table ") + d.name + " holds " +
                              std::to_string(st.ms_entries) + " rows");
      }
    }
    if ((rc = put_u64(txn, m.meta, meta_format_version, format_version)) != 0 ||
        (rc = put_u64(txn, m.meta, meta_commit_sequence, 0)) != 0 ||
        (rc = put_u64(txn, m.meta, meta_timestamp_last, 0)) != 0 ||
        (rc = put_u64(txn, m.meta, meta_transfer_timestamp_last, 0)) != 0 ||
        (rc = put_u64(txn, m.meta, meta_accounts_checkpoint_timestamp, 0)) != 0 ||
        (rc = put_u64(txn, m.meta, meta_account_transfers_indexed, 0)) != 0) {
      return lmdb_error(rc, "initialising meta", o);
    }
    return {};
  }
  if (version == 1) {
    // Version 1 wrote every account row and index row at every commit: its rows are a
    // checkpoint at timestamp_last and its index is complete. Upgrade in place.
    uint64_t ts_last = 0, transfer_ts_last = 0;
    bool f1 = false, f2 = false;
    if ((rc = get_u64(txn, m.meta, meta_timestamp_last, ts_last, f1)) != 0 ||
        (rc = get_u64(txn, m.meta, meta_transfer_timestamp_last, transfer_ts_last, f2)) != 0 ||
        (rc = put_u64(txn, m.meta, meta_accounts_checkpoint_timestamp, ts_last)) != 0 ||
        (rc = put_u64(txn, m.meta, meta_account_transfers_indexed, transfer_ts_last)) != 0 ||
        (rc = put_u64(txn, m.meta, meta_format_version, format_version)) != 0) {
      return lmdb_error(rc, "upgrading meta from format version 1", o);
    }
    return {};
  }
  if (version != format_version) {
    return make_error(errc::version_mismatch, "store " + o.path + " has format version " + std::to_string(version) +
                                                  ", this kassa reads version " + std::to_string(format_version) +
                                                  ": run the kassa release that wrote it");
  }
  return {};
}

// What meta says of the last commit, the checkpoint and the index.
error store::open_meta(MDB_txn* txn, bool index_dropped) {
  impl& m = *impl_;
  const options& o = options_;
  bool f1, f2, f3;
  int rc = 0;
  if ((rc = get_u64(txn, m.meta, meta_commit_sequence, commit_sequence_, f1)) != 0 ||
      (rc = get_u64(txn, m.meta, meta_timestamp_last, timestamp_last_, f2)) != 0 ||
      (rc = get_u64(txn, m.meta, meta_transfer_timestamp_last, transfer_timestamp_last_, f3)) != 0) {
    return lmdb_error(rc, "reading meta", o);
  }
  if (!f1 || !f2 || !f3) return corrupt(o, "meta lacks commit_sequence, timestamp_last or transfer_timestamp_last");
  if ((rc = get_u64(txn, m.meta, meta_accounts_checkpoint_timestamp, m.checkpoint_timestamp, f1)) != 0 ||
      (rc = get_u64(txn, m.meta, meta_account_transfers_indexed, m.indexed_timestamp, f2)) != 0) {
    return lmdb_error(rc, "reading meta", o);
  }
  if (index_dropped) {
    m.indexed_timestamp = 0;
    if ((rc = put_u64(txn, m.meta, meta_account_transfers_indexed, 0)) != 0) {
      return lmdb_error(rc, "resetting meta.account_transfers_indexed", o);
    }
  }
  if (!f1 || !f2 || m.checkpoint_timestamp > timestamp_last_ || m.indexed_timestamp > transfer_timestamp_last_) {
    return corrupt(o, "meta lacks accounts_checkpoint_timestamp or account_transfers_indexed, "
                      "or they lie after the last commit");
  }
  return {};
}

// Recovery check: LMDB commits are atomic, so after a crash the journal's last entry, meta
// and the transfers table must describe the same commit.
error store::open_check_last_commit(MDB_txn* txn) {
  impl& m = *impl_;
  const options& o = options_;
  MDB_val k, v;
  {
    cursor_guard c;
    int rc = mdb_cursor_open(txn, m.journal, &c.cursor);
    if (rc != 0) return lmdb_error(rc, "opening a journal cursor", o);
    rc = mdb_cursor_get(c.cursor, &k, &v, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
      if (commit_sequence_ != 0) {
        return corrupt(o, "meta.commit_sequence is " + std::to_string(commit_sequence_) + " but the journal is empty");
      }
    } else if (rc != 0) {
      return lmdb_error(rc, "reading the journal", o);
    } else {
      journal_entry je;
      if (k.mv_size != 8 || v.mv_size != sizeof je) return corrupt(o, "the last journal entry has a bad size");
      std::memcpy(&je, v.mv_data, sizeof je);
      const uint64_t key = get_be64(static_cast<const uint8_t*>(k.mv_data));
      if (key != commit_sequence_ || je.sequence != key || je.timestamp_last != timestamp_last_) {
        return corrupt(o, "the last journal entry (sequence " + std::to_string(key) + ", timestamp_last " +
                              std::to_string(je.timestamp_last) + ") disagrees with meta (commit_sequence " +
                              std::to_string(commit_sequence_) + ", timestamp_last " +
                              std::to_string(timestamp_last_) + ")");
      }
    }
  }
  cursor_guard c;
  int rc = mdb_cursor_open(txn, m.transfers, &c.cursor);
  if (rc != 0) return lmdb_error(rc, "opening a transfers cursor", o);
  rc = mdb_cursor_get(c.cursor, &k, &v, MDB_LAST);
  uint64_t last = 0;
  if (rc == 0) {
    if (k.mv_size != 8) return corrupt(o, "a transfers key is not 8 bytes");
    last = get_be64(static_cast<const uint8_t*>(k.mv_data));
  } else if (rc != MDB_NOTFOUND) {
    return lmdb_error(rc, "reading the transfers", o);
  }
  if (last != transfer_timestamp_last_ || last > timestamp_last_) {
    return corrupt(o, "the newest transfer has timestamp " + std::to_string(last) +
                          " but meta.transfer_timestamp_last is " + std::to_string(transfer_timestamp_last_) +
                          " and meta.timestamp_last " + std::to_string(timestamp_last_));
  }
  return {};
}

// Brings the account rows changed after the checkpoint forward by replaying the journal tail
// into `dirty`, and counts the commits and transfers since the checkpoint and the index.
error store::recover(MDB_txn* txn) {
  impl& m = *impl_;
  m.dirty = {};
  // A node map while replaying: apply_transfer holds two account pointers at once.
  std::unordered_map<u128, account, u128_hash> replayed;
  uint64_t transfers = 0;
  u128 missing = 0;
  auto find_account = [&](u128 id) -> account* {
    auto it = replayed.find(id);
    if (it != replayed.end()) return &it->second;
    key_id key(id);
    MDB_val k = val_of(key), v;
    if (mdb_get(txn, m.accounts, &k, &v) != 0 || v.mv_size != sizeof(account)) {
      missing = id;
      return nullptr;
    }
    account a;
    std::memcpy(&a, v.mv_data, sizeof a);
    return &replayed.emplace(id, a).first->second;
  };
  if (error e = m.replay_after_checkpoint(txn, m.checkpoint_timestamp, find_account, options_, transfers); !e.ok())
    return e;
  if (missing != 0)
    return corrupt(options_, "replaying the journal: account " + to_string_u128(missing) +
                                 " is not stored");
  for (const auto& [id, a] : replayed) m.dirty.upsert(a);
  m.transfers_since_checkpoint = transfers;

  // Commits since the checkpoint and since the index, from the journal's newest entries.
  cursor_guard c;
  int rc;
  if ((rc = mdb_cursor_open(txn, m.journal, &c.cursor)) != 0)
    return lmdb_error(rc, "opening a journal cursor", options_);
  MDB_val k, v;
  m.commits_since_checkpoint = m.commits_since_index = 0;
  for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_LAST); rc == 0;
       rc = mdb_cursor_get(c.cursor, &k, &v, MDB_PREV)) {
    if (v.mv_size != sizeof(journal_entry)) return corrupt(options_, "a journal entry has a bad size");
    journal_entry je;
    std::memcpy(&je, v.mv_data, sizeof je);
    const bool after_checkpoint = je.timestamp_last > m.checkpoint_timestamp;
    const bool after_index = je.timestamp_last > m.indexed_timestamp;
    if (!after_checkpoint && !after_index) break;
    m.commits_since_checkpoint += after_checkpoint;
    m.commits_since_index += after_index;
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc, "reading the journal", options_);

  cursor_guard t;
  if ((rc = mdb_cursor_open(txn, m.transfers, &t.cursor)) != 0)
    return lmdb_error(rc, "opening a transfers cursor", options_);
  m.transfers_unindexed = 0;
  m.unindexed_sides.clear();
  key_u64 start(m.indexed_timestamp + 1);
  k = val_of(start);
  for (rc = mdb_cursor_get(t.cursor, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(t.cursor, &k, &v, MDB_NEXT)) {
    if (v.mv_size != sizeof(transfer)) return corrupt(options_, "a transfers row has a bad size");
    transfer tr;
    std::memcpy(&tr, v.mv_data, sizeof tr);
    m.unindexed_sides.push_back({tr.debit_account_id, tr.timestamp});
    m.unindexed_sides.push_back({tr.credit_account_id, tr.timestamp});
    ++m.transfers_unindexed;
  }
  if (rc != MDB_NOTFOUND) return lmdb_error(rc, "reading the transfers not indexed", options_);
  return {};
}

error store::load(state_machine& sm) {
  KASSA_ASSERT(sm.account_count() == 0);
  impl& m = *impl_;
  txn_guard txn;
  int rc = mdb_txn_begin(m.env, nullptr, MDB_RDONLY, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning the load transaction", options_);

  {
    cursor_guard c;
    if ((rc = mdb_cursor_open(txn.txn, m.accounts, &c.cursor)) != 0)
      return lmdb_error(rc, "opening an accounts cursor", options_);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
      if (k.mv_size != 16 || v.mv_size != sizeof(account))
        return corrupt(options_, "an accounts row has a bad size");
      account a;
      std::memcpy(&a, v.mv_data, sizeof a);
      if (a.id != get_be128(static_cast<const uint8_t*>(k.mv_data)))
        return corrupt(options_, "an accounts row is stored under another id");
      const account* replayed = m.dirty.find(a.id); // changed after the checkpoint
      sm.account_load(replayed != nullptr ? *replayed : a);
    }
    if (rc != MDB_NOTFOUND) return lmdb_error(rc, "reading the accounts", options_);
  }
  {
    cursor_guard c;
    if ((rc = mdb_cursor_open(txn.txn, m.pending, &c.cursor)) != 0)
      return lmdb_error(rc, "opening a pending cursor", options_);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
      if (k.mv_size != 16 || v.mv_size != sizeof(pending_row))
        return corrupt(options_, "a pending row has a bad size");
      pending_row row;
      std::memcpy(&row, v.mv_data, sizeof row);
      if (row.status != uint8_t(pending_status::pending)) continue;
      u128 id = get_be128(static_cast<const uint8_t*>(k.mv_data));
      transfer t;
      int trc = transfer_get(txn.txn, m.transfer_ids, m.transfers, id, t);
      if (trc == MDB_NOTFOUND || trc == MDB_CORRUPTED)
        return corrupt(options_, "pending transfer " + to_string_u128(id) + " is not stored");
      if (trc != 0) return lmdb_error(trc, "reading a pending transfer", options_);
      sm.transfer_load(t, pending_state{pending_status::pending, row.expires_at_ns});
    }
    if (rc != MDB_NOTFOUND) return lmdb_error(rc, "reading the pending transfers", options_);
  }
  {
    // Every stored id, so that the state machine knows which new ids need no disk lookup
    // and which must be prefetched (a repeat after a restart still answers `exists`).
    cursor_guard c;
    if ((rc = mdb_cursor_open(txn.txn, m.transfer_ids, &c.cursor)) != 0)
      return lmdb_error(rc, "opening a transfer_ids cursor", options_);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
      if (k.mv_size != 16) return corrupt(options_, "a transfer_ids key is not 16 bytes");
      sm.transfer_id_load(get_be128(static_cast<const uint8_t*>(k.mv_data)));
    }
    if (rc != MDB_NOTFOUND) return lmdb_error(rc, "reading the transfer ids", options_);
  }
  sm.timestamp_last_load(timestamp_last_);
  return {};
}

error store::prefetch(state_machine& sm, const transfer* events, size_t count) {
  impl& m = *impl_;
  m.prefetch_ids = sm.transfer_ids_to_prefetch(events, count);
  if (m.prefetch_ids.empty()) return {};
  // Sorted lookups walk the B-tree in key order: neighbouring ids share their leaf pages.
  std::sort(m.prefetch_ids.begin(), m.prefetch_ids.end());
  m.prefetch_ids.erase(std::unique(m.prefetch_ids.begin(), m.prefetch_ids.end()),
                       m.prefetch_ids.end());
  int rc = m.prefetch_txn ? mdb_txn_renew(m.prefetch_txn)
                          : mdb_txn_begin(m.env, nullptr, MDB_RDONLY, &m.prefetch_txn);
  if (rc != 0) return lmdb_error(rc, "beginning a prefetch transaction", options_);
  error result;
  for (u128 id : m.prefetch_ids) {
    transfer t;
    rc = transfer_get(m.prefetch_txn, m.transfer_ids, m.transfers, id, t);
    if (rc == MDB_NOTFOUND) continue; // a new id
    if (rc == MDB_CORRUPTED) {
      result = corrupt(options_, "transfer_ids names transfer " + to_string_u128(id) +
                                     " but its row is missing");
      break;
    }
    if (rc != 0) {
      result = lmdb_error(rc, "prefetching transfers", options_);
      break;
    }
    pending_state state;
    if (has(t.flags, transfer_pending)) {
      pending_row row;
      rc = pending_get(m.prefetch_txn, m.pending, id, row);
      if (rc != 0) {
        result = rc == MDB_NOTFOUND
                     ? corrupt(options_, "pending transfer " + to_string_u128(id) + " has no pending row")
                     : lmdb_error(rc, "prefetching pending states", options_);
        break;
      }
      state = pending_state{pending_status(row.status), row.expires_at_ns};
    }
    sm.transfer_load(t, state);
  }
  mdb_txn_reset(m.prefetch_txn);
  return result;
}

} // namespace kassa::ledger::store
