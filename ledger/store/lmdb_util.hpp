#pragma once
// Small pieces every LMDB environment of kassa needs (the shard stores, the saga log, the
// payments, accounting and reconciliation stores):
// values over plain bytes, handles that abort or close themselves, u64 meta values, and the
// mapping of LMDB's return codes to errors that tell the operator what to do.
#include <lmdb.h>

#include <cstring>
#include <string>

#include "ledger/store/error.hpp"
#include "primitives/lmdb.hpp"

namespace kassa::ledger::store::lmdb_util {

template <class T> MDB_val val_of(const T& v) { return MDB_val{sizeof(T), const_cast<T*>(&v)}; }
inline MDB_val val_of_bytes(const void* p, size_t n) { return MDB_val{n, const_cast<void*>(p)}; }

inline error make_error(errc code, std::string message) { return error{code, std::move(message)}; }

// The environment's directory, for messages.
inline std::string path_of(MDB_env* env) {
  const char* p = nullptr;
  return env && mdb_env_get_path(env, &p) == 0 && p ? std::string(p) : std::string("(unknown)");
}

// `where` says what failed in which file; `full` is the whole message for a full map, and
// `damaged` the advice for a damaged file.
inline error from_rc(int rc, const std::string& where, const std::string& full, const std::string& damaged) {
  switch (rc) {
    case MDB_MAP_FULL: return make_error(errc::map_full, full);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID: return make_error(errc::corrupt, where + ": " + damaged);
    case MDB_VERSION_MISMATCH:
      return make_error(errc::version_mismatch, where + ": the LMDB file was written by another LMDB version");
    case MDB_READERS_FULL: return make_error(errc::io, where + ": too many concurrent readers; restart the process");
    default: return make_error(errc::io, where + ": check the disk (space, permissions, errors) and restart");
  }
}

struct txn_guard {
  MDB_txn* txn = nullptr;
  ~txn_guard() {
    if (txn) mdb_txn_abort(txn);
  }
  int commit() {
    int rc = mdb_txn_commit(txn); // frees the handle whatever the outcome
    txn = nullptr;
    return rc;
  }
};

// A read transaction of its own; `rc` is mdb_txn_begin's result.
struct read_txn {
  txn_guard g;
  int rc = 0;
  explicit read_txn(MDB_env* env) { rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &g.txn); }
};

struct cursor_guard {
  MDB_cursor* cursor = nullptr;
  ~cursor_guard() {
    if (cursor) mdb_cursor_close(cursor);
  }
};

// A fixed-size record under key `k`; `found` says whether it was there. A value of another
// size is MDB_CORRUPTED.
template <class T> int get_fixed(MDB_txn* txn, MDB_dbi dbi, MDB_val k, T& out, bool& found) {
  MDB_val v;
  int rc = mdb_get(txn, dbi, &k, &v);
  found = rc == 0;
  if (rc == MDB_NOTFOUND) return 0;
  if (rc != 0) return rc;
  if (v.mv_size != sizeof(T)) return MDB_CORRUPTED;
  std::memcpy(&out, v.mv_data, sizeof(T));
  return 0;
}

// Up to `limit` records of one T each, in key order from the first key >= `from`: `take(row)`
// gets each and says whether it counts toward the limit. A value of another size ends the
// scan with MDB_CORRUPTED. Returns 0 or LMDB's code.
template <class T, class Take>
int take_fixed(MDB_txn* txn, MDB_dbi dbi, const MDB_val& from, size_t limit, Take&& take) {
  size_t taken = 0;
  return lmdb::for_each(
      txn, dbi,
      [&](const MDB_val&, const MDB_val& v) {
        if (taken >= limit) return lmdb::scan_stop;
        if (v.mv_size != sizeof(T)) return MDB_CORRUPTED;
        T row;
        std::memcpy(&row, v.mv_data, sizeof row);
        if (take(row)) ++taken;
        return lmdb::scan_next;
      },
      &from);
}

// A u64 (host order) under an ASCII key; `found` says whether the key was there.
inline int get_u64(MDB_txn* txn, MDB_dbi dbi, const char* key, uint64_t& out, bool& found) {
  MDB_val k = val_of_bytes(key, std::strlen(key)), v;
  int rc = mdb_get(txn, dbi, &k, &v);
  found = rc == 0;
  if (rc == MDB_NOTFOUND) return 0;
  if (rc != 0) return rc;
  if (v.mv_size != 8) return MDB_CORRUPTED;
  std::memcpy(&out, v.mv_data, 8);
  return 0;
}

inline int put_u64(MDB_txn* txn, MDB_dbi dbi, const char* key, uint64_t value) {
  MDB_val k = val_of_bytes(key, std::strlen(key)), v = val_of(value);
  return mdb_put(txn, dbi, &k, &v, 0);
}

} // namespace kassa::ledger::store::lmdb_util
