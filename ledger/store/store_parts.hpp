#pragma once
// What the parts of the ledger store (store.cpp: open, recovery, load; store_commit.cpp:
// commits and checkpoints; store_reads.cpp: lookups and queries) share: the LMDB handles and
// scratch of one store, and the helpers they all use. Internal to ledger/store.
#include <lmdb.h>

#include <array>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "ledger/store/layout.hpp"
#include "ledger/store/lmdb_util.hpp"
#include "ledger/store/replay.hpp"
#include "ledger/store/store.hpp"

namespace kassa::ledger::store {

namespace parts {

using namespace layout;
using namespace lmdb_util;

inline uint64_t mono_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}
inline uint64_t wall_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

// Maps an LMDB return code to an error whose message tells the operator what to do.
inline error lmdb_error(int rc, const std::string& what, const options& o) {
  const std::string where = what + " in " + o.path + ": " + mdb_strerror(rc);
  return from_rc(rc, where,
                 "store is full (map_size_mib=" + std::to_string(o.map_size_bytes >> 20) + ", " + where +
                     "): raise store.map_size_mib and restart",
                 "the store is damaged; run `kassa verify` and restore from a backup");
}

inline error corrupt(const options& o, const std::string& what) {
  return make_error(errc::corrupt, "store " + o.path + " is inconsistent: " + what +
                                       "; run `kassa verify` and restore from a backup");
}

// Reads a transfer by id: transfer_ids gives its timestamp, transfers its record.
// Returns MDB_NOTFOUND when the id is unknown, MDB_CORRUPTED when the index points nowhere.
inline int transfer_get(MDB_txn* txn, MDB_dbi ids, MDB_dbi transfers, u128 id, transfer& out) {
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

inline int pending_get(MDB_txn* txn, MDB_dbi dbi, u128 id, pending_row& out) {
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


} // namespace parts

using namespace parts; // the parts of the store are one translation unit's worth of code

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

  // Brings the rows find_account(u128) -> account* returns forward by the journal after
  // `checkpoint` (replay.hpp: the transfers and expirations stamped after it), in `txn`;
  // counts the transfers replayed in `transfers`. {} or the store's error.
  template <class FindAccount>
  error replay_after_checkpoint(MDB_txn* txn, uint64_t checkpoint, FindAccount&& find_account,
                                const options& o, uint64_t& transfers_replayed) {
    std::string problem;
    auto find_transfer = [&](u128 id, transfer& out) {
      return transfer_get(txn, transfer_ids, transfers, id, out) == 0;
    };
    int rc = replay::walk(
        txn, transfers, expirations, checkpoint,
        [&](const transfer& t) {
          ++transfers_replayed;
          problem = replay::apply_transfer(t, find_account, find_transfer);
          return problem.empty();
        },
        [&](uint64_t, u128 id) {
          problem = replay::apply_expiration(id, find_account, find_transfer);
          return problem.empty();
        });
    if (rc == MDB_CORRUPTED) return corrupt(o, "a transfers or expirations row has a bad size");
    if (rc != 0) return lmdb_error(rc, "replaying the journal after the checkpoint", o);
    if (!problem.empty()) return corrupt(o, "replaying the journal: " + problem);
    return {};
  }

  // A commit is durable: the rows it left for the next checkpoint, or the checkpoint it made;
  // the sides it left for the next bulk index, or the index it made.
  void committed(const change_set& changes, bool checkpoint, bool indexed, uint64_t timestamp_last,
                 uint64_t transfer_timestamp_last) {
    const size_t transfers = changes.transfers_created.size();
    if (checkpoint) {
      dirty = {};
      checkpoint_timestamp = timestamp_last;
      commits_since_checkpoint = transfers_since_checkpoint = 0;
    } else {
      for (const account& a : changes.account_rows) dirty.upsert(a);
      ++commits_since_checkpoint;
      transfers_since_checkpoint += transfers;
    }
    if (indexed) {
      indexed_timestamp = transfer_timestamp_last;
      commits_since_index = transfers_unindexed = 0;
      unindexed_sides.clear();
    } else {
      ++commits_since_index;
      transfers_unindexed += transfers;
    }
  }

  ~impl() {
    if (prefetch_txn) mdb_txn_abort(prefetch_txn);
    if (env) mdb_env_close(env);
  }
};

} // namespace kassa::ledger::store
