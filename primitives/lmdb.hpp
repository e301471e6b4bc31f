#pragma once
// What every LMDB environment of kassa does alike: open it, and walk a table in key order.
// Plain LMDB return codes: each store turns them into its own errors.
#include <lmdb.h>

#include <cstdint>
#include <string>

namespace kassa::lmdb {

// Creates `env` and opens it at `path` with `flags`, room for `tables_max` named tables and,
// unless `map_size_bytes` is 0, that map size. Returns LMDB's code. When creating fails, `env`
// stays null; when a later step fails, `env` is left for its owner to close.
int env_open(MDB_env*& env, const std::string& path, unsigned flags, unsigned tables_max,
             uint64_t map_size_bytes = 0, mdb_mode_t mode = 0640);

// What a visitor of for_each returns: go on, or stop here (the scan then returns 0); any
// other value ends the scan with that value (an LMDB code such as MDB_CORRUPTED).
constexpr int scan_next = 0;
constexpr int scan_stop = -1;
static_assert(scan_stop != MDB_SUCCESS && scan_stop != MDB_NOTFOUND);

// Calls `visit(key, value)` for the records of `dbi` in key order: every record, or with
// `from` the records from the first key >= *from. Returns 0 when the records ran out or the
// visitor stopped, else the code that ended the scan.
template <class Visit>
int for_each(MDB_txn* txn, MDB_dbi dbi, Visit&& visit, const MDB_val* from = nullptr) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, dbi, &cursor);
  if (rc != 0) return rc;
  MDB_val k{}, v{};
  if (from) k = *from;
  for (rc = mdb_cursor_get(cursor, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    if ((rc = visit(k, v)) != scan_next) break;
  }
  mdb_cursor_close(cursor);
  return rc == MDB_NOTFOUND || rc == scan_stop ? 0 : rc;
}

} // namespace kassa::lmdb
