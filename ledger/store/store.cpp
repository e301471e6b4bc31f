#include "ledger/store/store.hpp"

#include <lmdb.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <unordered_map>

#include "ledger/store/layout.hpp"
#include "ledger/store/lmdb_util.hpp"
#include "ledger/store/replay.hpp"
#include "primitives/assert.hpp"
#include "primitives/crc32c.hpp"

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

namespace {

using namespace layout;

using namespace lmdb_util;

uint64_t mono_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}
uint64_t wall_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

// Maps an LMDB return code to an error whose message tells the operator what to do.
error lmdb_error(int rc, const std::string& what, const options& o) {
  const std::string where = what + " in " + o.path + ": " + mdb_strerror(rc);
  return from_rc(rc, where,
                 "store is full (map_size_mib=" + std::to_string(o.map_size_bytes >> 20) + ", " + where +
                     "): raise store.map_size_mib and restart",
                 "the store is damaged; run `kassa verify` and restore from a backup");
}

error corrupt(const options& o, const std::string& what) {
  return make_error(errc::corrupt, "store " + o.path + " is inconsistent: " + what +
                                       "; run `kassa verify` and restore from a backup");
}

// Reads a transfer by id: transfer_ids gives its timestamp, transfers its record.
// Returns MDB_NOTFOUND when the id is unknown, MDB_CORRUPTED when the index points nowhere.
int transfer_get(MDB_txn* txn, MDB_dbi ids, MDB_dbi transfers, u128 id, transfer& out) {
  key_id k(id);
  MDB_val kv = val_of(k), v;
  int rc = mdb_get(txn, ids, &kv, &v);
  if (rc != 0) return rc;
  if (v.mv_size != 8) return MDB_CORRUPTED;
  uint64_t ts;
  std::memcpy(&ts, v.mv_data, 8);
  key_u64 tk(ts);
  MDB_val tkv = val_of(tk);
  rc = mdb_get(txn, transfers, &tkv, &v);
  if (rc == MDB_NOTFOUND) return MDB_CORRUPTED;
  if (rc != 0) return rc;
  if (v.mv_size != sizeof(transfer)) return MDB_CORRUPTED;
  std::memcpy(&out, v.mv_data, sizeof(transfer));
  return out.id == id ? 0 : MDB_CORRUPTED;
}

int pending_get(MDB_txn* txn, MDB_dbi dbi, u128 id, pending_row& out) {
  key_id k(id);
  MDB_val kv = val_of(k), v;
  int rc = mdb_get(txn, dbi, &kv, &v);
  if (rc != 0) return rc;
  if (v.mv_size != sizeof(pending_row)) return MDB_CORRUPTED;
  std::memcpy(&out, v.mv_data, sizeof(pending_row));
  return 0;
}

struct id_ts {
  u128 id;
  uint64_t ts;
  bool operator<(const id_ts& o) const { return id != o.id ? id < o.id : ts < o.ts; }
};

// Scratch of a bulk index, reused between passes.
struct index_group {
  u128 id;       // account id (0 = empty slot of the id_map)
  uint64_t next; // count, then the next free position of its stamps
};
struct index_group_id {
  u128 operator()(const index_group& g) const { return g.id; }
};
struct index_scratch {
  id_map<index_group, index_group_id> groups;
  std::vector<u128> accounts;  // distinct, sorted
  std::vector<uint64_t> starts; // accounts[i]'s stamps are stamps[starts[i], starts[i + 1])
  std::vector<std::array<uint8_t, 8>> stamps; // big-endian
};

} // namespace

struct store::impl {
  MDB_env* env = nullptr;
  MDB_dbi meta = 0, accounts = 0, transfers = 0, transfer_ids = 0, pending = 0, expiry = 0,
          history = 0, account_transfers = 0, journal = 0, expirations = 0;
  MDB_txn* prefetch_txn = nullptr; // reset between uses, renewed by prefetch (writer thread)
  bool ready = false;              // open() succeeded

  // Account rows changed since the checkpoint, as of the last commit: at most one per account.
  // The next checkpoint writes them; load() prefers them to the rows on disk.
  struct account_id {
    u128 operator()(const account& a) const { return a.id; }
  };
  id_map<account, account_id> dirty;
  uint64_t checkpoint_timestamp = 0; // meta.accounts_checkpoint_timestamp
  uint64_t commits_since_checkpoint = 0, transfers_since_checkpoint = 0;
  uint64_t indexed_timestamp = 0;    // meta.account_transfers_indexed
  uint64_t commits_since_index = 0, transfers_unindexed = 0;

  // Scratch buffers reused by every commit: no allocation per event once warm.
  std::vector<account> account_rows;
  std::vector<id_ts> ids;
  index_scratch index;
  // (account, stamp) of both sides of every transfer after indexed_timestamp, in stamp order:
  // what the next bulk index writes (2 per transfer, at most index_transfers_max transfers).
  std::vector<id_ts> unindexed_sides;
  std::vector<uint32_t> history_order;
  std::vector<u128> prefetch_ids;
  std::vector<id_ts> expiration_keys; // (pending id, replay stamp)

  // Every table: its name, handle and flags.
  struct table {
    const char* name;
    MDB_dbi* dbi;
    unsigned flags;
  };
  std::array<table, dbi_count> tables() {
    return {{{dbi_meta, &meta, 0},
             {dbi_accounts, &accounts, 0},
             {dbi_transfers, &transfers, 0},
             {dbi_transfer_ids, &transfer_ids, 0},
             {dbi_pending, &pending, 0},
             {dbi_expiry, &expiry, 0},
             {dbi_history, &history, 0},
             {dbi_account_transfers, &account_transfers, MDB_DUPSORT | MDB_DUPFIXED},
             {dbi_journal, &journal, 0},
             {dbi_expirations, &expirations, 0}}};
  }

  ~impl() {
    if (prefetch_txn) mdb_txn_abort(prefetch_txn);
    if (env) mdb_env_close(env);
  }
};

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
  std::string problem;
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
  auto find_transfer = [&](u128 id, transfer& out) {
    return transfer_get(txn, m.transfer_ids, m.transfers, id, out) == 0;
  };
  int rc = replay::walk(
      txn, m.transfers, m.expirations, m.checkpoint_timestamp,
      [&](const transfer& t) {
        ++transfers;
        problem = replay::apply_transfer(t, find_account, find_transfer);
        return problem.empty();
      },
      [&](uint64_t, u128 id) {
        problem = replay::apply_expiration(id, find_account, find_transfer);
        return problem.empty();
      });
  if (rc == MDB_CORRUPTED) return corrupt(options_, "a transfers or expirations row has a bad size");
  if (rc != 0) return lmdb_error(rc, "replaying the journal after the checkpoint", options_);
  if (!problem.empty()) return corrupt(options_, "replaying the journal: " + problem);
  if (missing != 0)
    return corrupt(options_, "replaying the journal: account " + to_string_u128(missing) +
                                 " is not stored");
  for (const auto& [id, a] : replayed) m.dirty.upsert(a);
  m.transfers_since_checkpoint = transfers;

  // Commits since the checkpoint and since the index, from the journal's newest entries.
  cursor_guard c;
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
  struct sides_guard {
    std::vector<id_ts>& sides;
    size_t size_before;
    bool keep = false;
    ~sides_guard() { if (!keep) sides.resize(size_before); }
  } sides{m.unindexed_sides, m.unindexed_sides.size()};
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
  je.accounts_written = uint32_t(m.account_rows.size());
  je.transfers_created = uint32_t(changes.transfers_created.size());
  je.pending_updates = uint32_t(changes.pending_updates.size());
  je.history_entries = uint32_t(changes.history.size());
  je.transfers_crc32c = crc;
  {
    key_u64 key(sequence);
    k = val_of(key);
    v = val_of(je);
    if ((rc = mdb_put(txn.txn, m.journal, &k, &v, MDB_APPEND)) != 0) return fail(rc);
  }
  stage = "writing meta";
  if ((rc = put_u64(txn.txn, m.meta, meta_commit_sequence, sequence)) != 0 ||
      (rc = put_u64(txn.txn, m.meta, meta_timestamp_last, timestamp_last)) != 0 ||
      (rc = put_u64(txn.txn, m.meta, meta_transfer_timestamp_last, ts_prev)) != 0)
    return fail(rc);
  if (checkpoint_due &&
      (rc = put_u64(txn.txn, m.meta, meta_accounts_checkpoint_timestamp, timestamp_last)) != 0)
    return fail(rc);
  if (index_due && (rc = put_u64(txn.txn, m.meta, meta_account_transfers_indexed, ts_prev)) != 0)
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
  if (checkpoint_due) {
    m.dirty = {};
    m.checkpoint_timestamp = timestamp_last;
    m.commits_since_checkpoint = m.transfers_since_checkpoint = 0;
  } else {
    for (const account& a : changes.account_rows) m.dirty.upsert(a);
    ++m.commits_since_checkpoint;
    m.transfers_since_checkpoint += transfers_count;
  }
  sides.keep = true;
  if (index_due) {
    m.indexed_timestamp = ts_prev;
    m.commits_since_index = m.transfers_unindexed = 0;
    m.unindexed_sides.clear();
  } else {
    ++m.commits_since_index;
    m.transfers_unindexed += transfers_count;
  }
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
    std::string problem;
    auto find_account = [&](u128 id) -> account* {
      auto it = rows.find(id);
      return it == rows.end() ? nullptr : &it->second;
    };
    auto find_transfer = [&](u128 id, transfer& t) {
      return transfer_get(txn.txn, impl_->transfer_ids, impl_->transfers, id, t) == 0;
    };
    rc = replay::walk(
        txn.txn, impl_->transfers, impl_->expirations, checkpoint,
        [&](const transfer& t) {
          problem = replay::apply_transfer(t, find_account, find_transfer);
          return problem.empty();
        },
        [&](uint64_t, u128 id) {
          problem = replay::apply_expiration(id, find_account, find_transfer);
          return problem.empty();
        });
    if (rc == MDB_CORRUPTED) return corrupt(options_, "a transfers or expirations row has a bad size");
    if (rc != 0) return lmdb_error(rc, "replaying the journal after the checkpoint", options_);
    if (!problem.empty()) return corrupt(options_, "replaying the journal: " + problem);
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
