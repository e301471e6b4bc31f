#include "ledger/store/payments_store.hpp"

#include <lmdb.h>

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ledger/store/layout.hpp"
#include "ledger/store/lmdb_util.hpp"

namespace kassa::ledger::store {

namespace {

using namespace lmdb_util;
using payments::order;
using payments::payment_command;

constexpr uint64_t format_version = payments_format_version;
constexpr uint64_t format_version_legacy_ids = 1; // before installation ids; upgraded in place
constexpr const char* meta_installation_id = "installation_id";
constexpr const char* meta_restore_pending = "restore_pending";
constexpr unsigned table_count = 9;
constexpr const char* table_names[table_count] = {"rows",   "keys",        "sequences", "children",   "journal",
                                                  "traces", "row_journal", "meta",      "generations"};

// Value of `generations` (key: the number, big-endian u64).
struct generation_row {
  uint32_t number;
  uint32_t nonce;
  uint64_t sequence_first;
  uint64_t created_ns; // wall clock, for operators only
  uint64_t reserved;   // zero
};
static_assert(sizeof(generation_row) == 32);
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

// Random bytes from the kernel (getrandom, else /dev/urandom): never the clock, so that two
// data directories created at the same instant still differ.
bool random_u64(uint64_t& out) {
  uint8_t buf[8];
  size_t got = 0;
  for (int tries = 0; got < sizeof buf && tries < 16; ++tries) {
    const ssize_t n = getrandom(buf + got, sizeof buf - got, 0);
    if (n > 0) got += size_t(n);
    else if (n < 0 && errno != EINTR) break;
  }
  if (got < sizeof buf) {
    std::ifstream f("/dev/urandom", std::ios::binary);
    if (!f.read(reinterpret_cast<char*>(buf), sizeof buf)) return false;
  }
  std::memcpy(&out, buf, sizeof out);
  return true;
}

uint64_t now_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count());
}

// The installation id and the generations, oldest first.
int load_ids(MDB_txn* txn, MDB_dbi meta, MDB_dbi generations, payments::provider_ids& out) {
  uint64_t installation = 0;
  bool found = false;
  int rc = get_u64(txn, meta, meta_installation_id, installation, found);
  if (rc != 0) return rc;
  std::vector<payments::id_generation> gens;
  rc = lmdb::for_each(txn, generations, [&gens](const MDB_val&, const MDB_val& v) {
    if (v.mv_size != sizeof(generation_row)) return MDB_CORRUPTED;
    generation_row g;
    std::memcpy(&g, v.mv_data, sizeof g);
    gens.push_back(payments::id_generation{g.number, g.nonce, g.sequence_first});
    return lmdb::scan_next;
  });
  if (rc != 0) return rc;
  if (!gens.empty() && (!found || !payments::installation_id_valid(installation))) return MDB_CORRUPTED;
  for (size_t i = 1; i < gens.size(); ++i)
    if (gens[i].sequence_first < gens[i - 1].sequence_first) return MDB_CORRUPTED;
  out = payments::provider_ids(installation, std::move(gens));
  return 0;
}

// Begins a generation whose rows start at `sequence_first`: draws the installation id first
// when the store has none, then a nonce no earlier generation has. Reloads `ids`.
error begin_generation_in(MDB_env* env, MDB_txn* txn, MDB_dbi meta, MDB_dbi generations, uint64_t sequence_first,
                          payments::provider_ids& ids, uint32_t& number) {
  int rc = load_ids(txn, meta, generations, ids);
  if (rc != 0) return lmdb_error(rc, "reading the generations", env);
  uint64_t installation = ids.installation_id();
  const std::string no_random = "cannot read random bytes (getrandom, /dev/urandom) for the provider ids of " +
                                path_of(env) + ": check that /dev/urandom is readable";
  if (sequence_first > payments::payment_sequence_max - payments::restore_sequence_gap)
    return make_error(errc::io, "the payments store " + path_of(env) +
                                    " has no room for another generation of row sequences: start a new data "
                                    "directory");
  for (int tries = 0; !payments::installation_id_valid(installation) && tries < 16; ++tries)
    if (!random_u64(installation)) return make_error(errc::io, no_random);
  if (!payments::installation_id_valid(installation)) return make_error(errc::io, no_random);
  uint32_t nonce = 0;
  auto used = [&](uint32_t n) {
    for (const auto& g : ids.generations())
      if (g.nonce == n) return true;
    return n == 0;
  };
  uint64_t r = 0;
  for (int tries = 0; used(nonce) && tries < 16; ++tries) {
    if (!random_u64(r)) return make_error(errc::io, no_random);
    nonce = uint32_t(r);
  }
  if (used(nonce)) return make_error(errc::io, no_random);
  number = ids.generations().empty() ? 1 : ids.generations().back().number + 1;
  const generation_row g{number, nonce, sequence_first, now_ns(), 0};
  const key_u64 k(number);
  MDB_val kv = val_of(k), vv = val_of(g);
  if ((rc = put_u64(txn, meta, meta_installation_id, installation)) != 0 ||
      (rc = mdb_put(txn, generations, &kv, &vv, 0)) != 0 || (rc = put_u64(txn, meta, meta_restore_pending, 0)) != 0)
    return lmdb_error(rc, "writing a generation", env);
  rc = load_ids(txn, meta, generations, ids);
  return rc == 0 ? error{} : lmdb_error(rc, "reading the generations", env);
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
  unsigned flags = MDB_NOTLS;
  if (durability == durability::none) flags |= MDB_NOSYNC;
  int rc = lmdb::env_open(s->env_, path, flags, 10, map_size_bytes);
  if (rc != 0) {
    err = s->env_ ? lmdb_error(rc, "opening the LMDB environment", s->env_)
                  : make_error(errc::io, "mdb_env_create for " + path + ": " + mdb_strerror(rc));
    return nullptr;
  }
  txn_guard txn;
  if ((rc = mdb_txn_begin(s->env_, nullptr, 0, &txn.txn)) != 0) {
    err = lmdb_error(rc, "beginning the open transaction", s->env_);
    return nullptr;
  }
  MDB_dbi dbis[table_count];
  for (unsigned i = 0; i < table_count; ++i) {
    if ((rc = mdb_dbi_open(txn.txn, table_names[i], MDB_CREATE, &dbis[i])) != 0) {
      err = lmdb_error(rc, std::string("opening table ") + table_names[i], s->env_);
      return nullptr;
    }
  }
  s->dbi_rows_ = dbis[0], s->dbi_keys_ = dbis[1], s->dbi_seqs_ = dbis[2], s->dbi_children_ = dbis[3];
  s->dbi_journal_ = dbis[4], s->dbi_traces_ = dbis[5], s->dbi_row_journal_ = dbis[6];
  s->dbi_meta_ = dbis[7], s->dbi_generations_ = dbis[8];
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
  uint64_t version = 0, restore_pending = 0;
  bool found = false, pending_found = false;
  if ((rc = get_u64(txn.txn, s->dbi_meta_, "format_version", version, found)) != 0 ||
      (rc = get_u64(txn.txn, s->dbi_meta_, meta_restore_pending, restore_pending, pending_found)) != 0) {
    err = lmdb_error(rc, "reading meta", s->env_);
    return nullptr;
  }
  if (found && version != format_version && version != format_version_legacy_ids) {
    err = make_error(errc::version_mismatch, "payments store " + path + " has format version " +
                                                 std::to_string(version) + ", this kassa reads " +
                                                 std::to_string(format_version));
    return nullptr;
  }
  // A new store, a store of format 1 (its rows so far keep legacy ids) and a restored copy
  // begin a generation: the rows from the next sequence on get ids no earlier run has sent
  // (after a restore, the next sequence is one the original cannot have reached).
  uint32_t number = 0;
  if (!found || version == format_version_legacy_ids || restore_pending != 0) {
    const uint64_t first = s->sequence_last_ + 1 + (restore_pending != 0 ? payments::restore_sequence_gap : 0);
    err = begin_generation_in(s->env_, txn.txn, s->dbi_meta_, s->dbi_generations_, first, s->ids_, number);
    if (!err.ok()) return nullptr;
    s->generation_begun_at_open_ = true;
  } else if ((rc = load_ids(txn.txn, s->dbi_meta_, s->dbi_generations_, s->ids_)) != 0) {
    err = lmdb_error(rc, "reading the generations", s->env_);
    return nullptr;
  }
  if (s->ids_.generations().empty()) {
    err = lmdb_error(MDB_CORRUPTED, "reading the generations (none)", s->env_);
    return nullptr;
  }
  // new rows are numbered from the newest generation's first sequence on
  s->sequence_last_ = std::max(s->sequence_last_, s->ids_.generations().back().sequence_first - 1);
  if ((rc = put_u64(txn.txn, s->dbi_meta_, "format_version", format_version)) != 0) {
    err = lmdb_error(rc, "writing meta.format_version", s->env_);
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
  int rc = lmdb::env_open(s->env_, path, MDB_NOTLS | MDB_RDONLY, 10);
  if (rc != 0) {
    err = s->env_ ? lmdb_error(rc, "opening the LMDB environment read-only", s->env_)
                  : make_error(errc::io, "mdb_env_create for " + path + ": " + mdb_strerror(rc));
    return nullptr;
  }
  read_txn t(s->env_);
  if (t.rc != 0) {
    err = lmdb_error(t.rc, "beginning the open transaction", s->env_);
    return nullptr;
  }
  // meta first: a store of format 1 (not upgraded yet: kassad has not started on it since)
  // has no generations, and all its ids are legacy
  MDB_dbi meta = 0;
  if ((rc = mdb_dbi_open(t.g.txn, "meta", 0, &meta)) != 0) {
    err = lmdb_error(rc, "opening table meta", s->env_);
    return nullptr;
  }
  uint64_t version = 0;
  bool found = false;
  if ((rc = get_u64(t.g.txn, meta, "format_version", version, found)) != 0) {
    err = lmdb_error(rc, "reading meta.format_version", s->env_);
    return nullptr;
  }
  if (!found || (version != format_version && version != format_version_legacy_ids)) {
    err = make_error(errc::version_mismatch, "payments store " + path + " has format version " +
                                                 std::to_string(version) + ", this kassa reads " +
                                                 std::to_string(format_version));
    return nullptr;
  }
  const unsigned tables = version == format_version ? table_count : table_count - 1;
  MDB_dbi dbis[table_count] = {};
  for (unsigned i = 0; i < tables; ++i) {
    if ((rc = mdb_dbi_open(t.g.txn, table_names[i], 0, &dbis[i])) != 0) {
      err = lmdb_error(rc, std::string("opening table ") + table_names[i], s->env_);
      return nullptr;
    }
  }
  s->dbi_rows_ = dbis[0], s->dbi_keys_ = dbis[1], s->dbi_seqs_ = dbis[2], s->dbi_children_ = dbis[3];
  s->dbi_journal_ = dbis[4], s->dbi_traces_ = dbis[5], s->dbi_row_journal_ = dbis[6];
  s->dbi_meta_ = dbis[7], s->dbi_generations_ = dbis[8];
  if (version == format_version && (rc = load_ids(t.g.txn, s->dbi_meta_, s->dbi_generations_, s->ids_)) != 0) {
    err = lmdb_error(rc, "reading the generations", s->env_);
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

error payments_store::begin_generation(uint32_t& number) {
  txn_guard txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a write", env_);
  payments::provider_ids ids;
  error err = begin_generation_in(env_, txn.txn, dbi_meta_, dbi_generations_,
                                  sequence_last_ + 1 + payments::restore_sequence_gap, ids, number);
  if (!err.ok()) return err;
  if ((rc = txn.commit()) != 0) return lmdb_error(rc, "committing a generation", env_);
  ids_ = std::move(ids);
  sequence_last_ = ids_.generations().back().sequence_first - 1;
  return {};
}

error payments_store::mark_restore_pending() {
  txn_guard txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a write", env_);
  if ((rc = put_u64(txn.txn, dbi_meta_, meta_restore_pending, 1)) != 0 || (rc = txn.commit()) != 0)
    return lmdb_error(rc, "marking the store restore_pending", env_);
  return {};
}

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
  const int rc = lmdb::for_each(t.g.txn, dbi_rows_, [&visit](const MDB_val&, const MDB_val& v) {
    if (v.mv_size != sizeof(order)) return MDB_CORRUPTED;
    order row;
    std::memcpy(&row, v.mv_data, sizeof row);
    return visit(row) ? lmdb::scan_next : lmdb::scan_stop;
  });
  return rc == 0 ? error{} : lmdb_error(rc, "scanning rows", env_);
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
  const key_u64 start(sequence + 1);
  const size_t room = limit > out.size() ? limit - out.size() : 0; // the limit counts what `out` holds
  const int rc = take_fixed<journal_entry>(t.g.txn, dbi_journal_, val_of(start), room, [&out](const journal_entry& e) {
    out.push_back(e);
    return true;
  });
  return rc == 0 ? error{} : lmdb_error(rc, "reading the journal", env_);
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
