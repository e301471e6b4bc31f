#include "ledger/store/payments_store.hpp"

#include <lmdb.h>

#include <cstring>
#include <filesystem>

#include "ledger/store/layout.hpp"
#include "ledger/store/lmdb_util.hpp"

namespace kassa::ledger::store {

namespace {

using namespace lmdb_util;
using payments::order;
using payments::payment_command;

constexpr uint64_t format_version = 1;
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "rows are the host's little-endian bytes");

// Keys of ids and sequences are big-endian (layout.hpp): LMDB's byte order is numeric order.
using layout::get_be128;
using layout::get_be64;
using layout::key_id;
using layout::key_id_ts;
using layout::key_u64;

error lmdb_error(int rc, const std::string& what, MDB_env* env) {
  const std::string where = what + " in the payments store " + path_of(env) + ": " + mdb_strerror(rc);
  return from_rc(rc, where,
                 "the payments store is full (" + where + "): raise store.map_size_mib and restart",
                 "the payments store is damaged; restore the data directory from a backup");
}

} // namespace

std::unique_ptr<payments_store> payments_store::open(const std::string& path, enum durability durability,
                                                     uint64_t map_size_bytes, error& err) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    err = make_error(errc::io, "cannot create the payments store directory " + path + ": " +
                                   ec.message() + ": check the path and permissions");
    return nullptr;
  }
  std::unique_ptr<payments_store> s(new payments_store());
  s->durability_ = durability;
  int rc = mdb_env_create(&s->env_);
  if (rc != 0) {
    s->env_ = nullptr;
    err = make_error(errc::io, "mdb_env_create for " + path + ": " + mdb_strerror(rc));
    return nullptr;
  }
  unsigned flags = MDB_NOTLS;
  if (durability == durability::none) flags |= MDB_NOSYNC;
  if ((rc = mdb_env_set_maxdbs(s->env_, 10)) != 0 || (rc = mdb_env_set_mapsize(s->env_, map_size_bytes)) != 0 ||
      (rc = mdb_env_open(s->env_, path.c_str(), flags, 0640)) != 0) {
    err = lmdb_error(rc, "opening the LMDB environment", s->env_);
    return nullptr;
  }
  txn_guard txn;
  if ((rc = mdb_txn_begin(s->env_, nullptr, 0, &txn.txn)) != 0) {
    err = lmdb_error(rc, "beginning the open transaction", s->env_);
    return nullptr;
  }
  MDB_dbi dbis[8];
  const char* names[8] = {"rows", "keys", "sequences", "children", "journal", "traces", "row_journal", "meta"};
  for (int i = 0; i < 8; ++i) {
    if ((rc = mdb_dbi_open(txn.txn, names[i], MDB_CREATE, &dbis[i])) != 0) {
      err = lmdb_error(rc, std::string("opening table ") + names[i], s->env_);
      return nullptr;
    }
  }
  s->dbi_rows_ = dbis[0], s->dbi_keys_ = dbis[1], s->dbi_seqs_ = dbis[2], s->dbi_children_ = dbis[3];
  s->dbi_journal_ = dbis[4], s->dbi_traces_ = dbis[5], s->dbi_row_journal_ = dbis[6];
  s->dbi_meta_ = dbis[7];
  uint64_t version = 0;
  bool found = false;
  if ((rc = get_u64(txn.txn, s->dbi_meta_, "format_version", version, found)) != 0) {
    err = lmdb_error(rc, "reading meta.format_version", s->env_);
    return nullptr;
  }
  if (!found) {
    if ((rc = put_u64(txn.txn, s->dbi_meta_, "format_version", format_version)) != 0) {
      err = lmdb_error(rc, "initialising meta", s->env_);
      return nullptr;
    }
  } else if (version != format_version) {
    err = make_error(errc::version_mismatch, "payments store " + path + " has format version " +
                                                 std::to_string(version) + ", this kassa reads " +
                                                 std::to_string(format_version));
    return nullptr;
  }
  // The last sequence and journal entry: the largest keys of their tables.
  auto last_key = [&](MDB_dbi dbi, uint64_t& out) {
    cursor_guard c;
    int r = mdb_cursor_open(txn.txn, dbi, &c.cursor);
    if (r != 0) return r;
    MDB_val k, v;
    r = mdb_cursor_get(c.cursor, &k, &v, MDB_LAST);
    if (r == MDB_NOTFOUND) return 0;
    if (r != 0) return r;
    if (k.mv_size != 8) return MDB_CORRUPTED;
    out = get_be64(static_cast<const uint8_t*>(k.mv_data));
    return 0;
  };
  if ((rc = last_key(s->dbi_seqs_, s->sequence_last_)) != 0 || (rc = last_key(s->dbi_journal_, s->journal_last_)) != 0) {
    err = lmdb_error(rc, "reading the last sequences", s->env_);
    return nullptr;
  }
  if ((rc = txn.commit()) != 0) {
    err = lmdb_error(rc, "committing the open transaction", s->env_);
    return nullptr;
  }
  return s;
}

std::unique_ptr<payments_store> payments_store::open_read_only(const std::string& path, error& err) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(path) / "data.mdb", ec)) {
    err = make_error(errc::io, "no payments store in " + path + " (expected data.mdb): check --data");
    return nullptr;
  }
  std::unique_ptr<payments_store> s(new payments_store());
  int rc = mdb_env_create(&s->env_);
  if (rc != 0) {
    s->env_ = nullptr;
    err = make_error(errc::io, "mdb_env_create for " + path + ": " + mdb_strerror(rc));
    return nullptr;
  }
  if ((rc = mdb_env_set_maxdbs(s->env_, 10)) != 0 ||
      (rc = mdb_env_open(s->env_, path.c_str(), MDB_NOTLS | MDB_RDONLY, 0640)) != 0) {
    err = lmdb_error(rc, "opening the LMDB environment read-only", s->env_);
    return nullptr;
  }
  read_txn t(s->env_);
  if (t.rc != 0) {
    err = lmdb_error(t.rc, "beginning the open transaction", s->env_);
    return nullptr;
  }
  MDB_dbi dbis[8];
  const char* names[8] = {"rows", "keys", "sequences", "children", "journal", "traces", "row_journal", "meta"};
  for (int i = 0; i < 8; ++i) {
    if ((rc = mdb_dbi_open(t.g.txn, names[i], 0, &dbis[i])) != 0) {
      err = lmdb_error(rc, std::string("opening table ") + names[i], s->env_);
      return nullptr;
    }
  }
  s->dbi_rows_ = dbis[0], s->dbi_keys_ = dbis[1], s->dbi_seqs_ = dbis[2], s->dbi_children_ = dbis[3];
  s->dbi_journal_ = dbis[4], s->dbi_traces_ = dbis[5], s->dbi_row_journal_ = dbis[6];
  s->dbi_meta_ = dbis[7];
  uint64_t version = 0;
  bool found = false;
  if ((rc = get_u64(t.g.txn, s->dbi_meta_, "format_version", version, found)) != 0) {
    err = lmdb_error(rc, "reading meta.format_version", s->env_);
    return nullptr;
  }
  if (!found || version != format_version) {
    err = make_error(errc::version_mismatch, "payments store " + path + " has format version " +
                                                 std::to_string(version) + ", this kassa reads " +
                                                 std::to_string(format_version));
    return nullptr;
  }
  // Handles opened in a read transaction stay valid once it ends without a commit.
  t.g.commit();
  if ((err = s->read_journal_last(s->journal_last_)).code != errc::ok) return nullptr;
  return s;
}

payments_store::~payments_store() {
  if (env_) mdb_env_close(env_);
}

std::string payments_store::path() const { return path_of(env_); }

error payments_store::write(payments_batch& batch) {
  txn_guard txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a write", env_);
  uint64_t seq_last = sequence_last_, journal_last = journal_last_;
  for (const order& row : batch.rows) {
    const key_id k(row.id);
    MDB_val kv = val_of(k), vv = val_of(row);
    if ((rc = mdb_put(txn.txn, dbi_rows_, &kv, &vv, 0)) != 0) return lmdb_error(rc, "writing a payment row", env_);
    if (row.sequence != 0) {
      const key_u64 sk(row.sequence);
      MDB_val skv = val_of(sk), svv = val_of(k);
      if ((rc = mdb_put(txn.txn, dbi_seqs_, &skv, &svv, 0)) != 0) return lmdb_error(rc, "writing a sequence", env_);
      if (row.sequence > seq_last) seq_last = row.sequence;
    }
    if (row.parent_id != 0) {
      // children are keyed (parent, sequence) so that they list in creation order
      const key_id_ts ck(row.parent_id, row.sequence);
      MDB_val ckv = val_of(ck), cvv = val_of(k);
      if ((rc = mdb_put(txn.txn, dbi_children_, &ckv, &cvv, 0)) != 0) return lmdb_error(rc, "writing a child", env_);
    }
  }
  for (const payment_command& cmd : batch.keys) {
    const key_id k(cmd.key);
    MDB_val kv = val_of(k), vv = val_of(cmd);
    if ((rc = mdb_put(txn.txn, dbi_keys_, &kv, &vv, 0)) != 0) return lmdb_error(rc, "writing a key", env_);
  }
  for (journal_entry& e : batch.journal) {
    e.sequence = ++journal_last;
    const key_u64 k(e.sequence);
    MDB_val kv = val_of(k), vv = val_of(e);
    if ((rc = mdb_put(txn.txn, dbi_journal_, &kv, &vv, 0)) != 0) return lmdb_error(rc, "writing the journal", env_);
    MDB_val empty{0, nullptr};
    if (e.trace_id != 0) {
      const key_id_ts tk(e.trace_id, e.sequence);
      MDB_val tkv = val_of(tk);
      if ((rc = mdb_put(txn.txn, dbi_traces_, &tkv, &empty, 0)) != 0) return lmdb_error(rc, "writing a trace", env_);
    }
    if (e.row_id != 0) {
      const key_id_ts rk(e.row_id, e.sequence);
      MDB_val rkv = val_of(rk);
      if ((rc = mdb_put(txn.txn, dbi_row_journal_, &rkv, &empty, 0)) != 0) return lmdb_error(rc, "writing a row index", env_);
    }
  }
  for (const auto& [key, value] : batch.meta) {
    if ((rc = put_u64(txn.txn, dbi_meta_, key.c_str(), value)) != 0) return lmdb_error(rc, "writing meta", env_);
  }
  if ((rc = txn.commit()) != 0) return lmdb_error(rc, "committing", env_);
  sequence_last_ = seq_last, journal_last_ = journal_last;
  return {};
}

error payments_store::get_row(u128 id, order& out, bool& found) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  const key_id k(id);
  int rc = get_fixed(t.g.txn, dbi_rows_, val_of(k), out, found);
  return rc == 0 ? error{} : lmdb_error(rc, "reading a payment row", env_);
}

error payments_store::get_key(u128 key, payment_command& out, bool& found) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  const key_id k(key);
  int rc = get_fixed(t.g.txn, dbi_keys_, val_of(k), out, found);
  return rc == 0 ? error{} : lmdb_error(rc, "reading a key", env_);
}

error payments_store::find_sequence(uint64_t sequence, order& out, bool& found) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  const key_u64 k(sequence);
  key_id id(0);
  int rc = get_fixed(t.g.txn, dbi_seqs_, val_of(k), id, found);
  if (rc == 0 && found) rc = get_fixed(t.g.txn, dbi_rows_, val_of(id), out, found);
  return rc == 0 ? error{} : lmdb_error(rc, "reading a sequence", env_);
}

error payments_store::children(u128 parent, std::vector<order>& out) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  cursor_guard c;
  int rc = mdb_cursor_open(t.g.txn, dbi_children_, &c.cursor);
  if (rc != 0) return lmdb_error(rc, "opening a cursor", env_);
  const key_id_ts start(parent, 0);
  MDB_val k = val_of(start), v;
  for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
    if (k.mv_size != sizeof(key_id_ts) || v.mv_size != sizeof(key_id)) return lmdb_error(MDB_CORRUPTED, "children", env_);
    if (get_be128(static_cast<const uint8_t*>(k.mv_data)) != parent) break;
    order row;
    bool found = false;
    MDB_val idk{v.mv_size, v.mv_data};
    int r = get_fixed(t.g.txn, dbi_rows_, idk, row, found);
    if (r != 0) return lmdb_error(r, "reading a child row", env_);
    if (found) out.push_back(row);
  }
  return rc == MDB_NOTFOUND || rc == 0 ? error{} : lmdb_error(rc, "listing children", env_);
}

error payments_store::scan_rows(const std::function<bool(const order&)>& visit) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  cursor_guard c;
  int rc = mdb_cursor_open(t.g.txn, dbi_rows_, &c.cursor);
  if (rc != 0) return lmdb_error(rc, "opening a cursor", env_);
  MDB_val k, v;
  for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
    if (v.mv_size != sizeof(order)) return lmdb_error(MDB_CORRUPTED, "scanning rows", env_);
    order row;
    std::memcpy(&row, v.mv_data, sizeof row);
    if (!visit(row)) return {};
  }
  return rc == MDB_NOTFOUND ? error{} : lmdb_error(rc, "scanning rows", env_);
}

namespace {
error journal_by_index(MDB_env* env, MDB_dbi index, MDB_dbi journal, u128 id, std::vector<journal_entry>& out) {
  read_txn t(env);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env);
  cursor_guard c;
  int rc = mdb_cursor_open(t.g.txn, index, &c.cursor);
  if (rc != 0) return lmdb_error(rc, "opening a cursor", env);
  const key_id_ts start(id, 0);
  MDB_val k = val_of(start), v;
  for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
    if (k.mv_size != sizeof(key_id_ts)) return lmdb_error(MDB_CORRUPTED, "journal index", env);
    if (get_be128(static_cast<const uint8_t*>(k.mv_data)) != id) break;
    MDB_val jk{8, static_cast<uint8_t*>(k.mv_data) + 16};
    journal_entry e;
    bool found = false;
    int r = get_fixed(t.g.txn, journal, jk, e, found);
    if (r != 0) return lmdb_error(r, "reading the journal", env);
    if (found) out.push_back(e);
  }
  return rc == MDB_NOTFOUND || rc == 0 ? error{} : lmdb_error(rc, "reading the journal", env);
}
} // namespace

error payments_store::journal_by_trace(u128 trace_id, std::vector<journal_entry>& out) const {
  return journal_by_index(env_, dbi_traces_, dbi_journal_, trace_id, out);
}

error payments_store::journal_by_row(u128 row_id, std::vector<journal_entry>& out) const {
  return journal_by_index(env_, dbi_row_journal_, dbi_journal_, row_id, out);
}

error payments_store::journal_after(uint64_t sequence, uint32_t limit, std::vector<journal_entry>& out) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  cursor_guard c;
  int rc = mdb_cursor_open(t.g.txn, dbi_journal_, &c.cursor);
  if (rc != 0) return lmdb_error(rc, "opening a cursor", env_);
  const key_u64 start(sequence + 1);
  MDB_val k = val_of(start), v;
  for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_SET_RANGE); rc == 0 && out.size() < limit;
       rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
    if (v.mv_size != sizeof(journal_entry)) return lmdb_error(MDB_CORRUPTED, "reading the journal", env_);
    journal_entry e;
    std::memcpy(&e, v.mv_data, sizeof e);
    out.push_back(e);
  }
  return rc == MDB_NOTFOUND || rc == 0 ? error{} : lmdb_error(rc, "reading the journal", env_);
}

error payments_store::get_meta(const std::string& key, uint64_t& out, bool& found) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  int rc = get_u64(t.g.txn, dbi_meta_, key.c_str(), out, found);
  return rc == 0 ? error{} : lmdb_error(rc, "reading meta", env_);
}

error payments_store::read_journal_last(uint64_t& out) const {
  out = 0;
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  cursor_guard c;
  int rc = mdb_cursor_open(t.g.txn, dbi_journal_, &c.cursor);
  if (rc != 0) return lmdb_error(rc, "opening a cursor", env_);
  MDB_val k, v;
  rc = mdb_cursor_get(c.cursor, &k, &v, MDB_LAST);
  if (rc == MDB_NOTFOUND) return {};
  if (rc != 0) return lmdb_error(rc, "reading the journal's last entry", env_);
  if (k.mv_size != 8) return lmdb_error(MDB_CORRUPTED, "reading the journal's last entry", env_);
  out = get_be64(static_cast<const uint8_t*>(k.mv_data));
  return {};
}

} // namespace kassa::ledger::store
