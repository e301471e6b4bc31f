#include "ledger/store/voucher_store.hpp"

#include <lmdb.h>

#include <cstring>
#include <filesystem>
#include <system_error>

#include "ledger/store/layout.hpp"
#include "ledger/store/lmdb_util.hpp"
#include "primitives/assert.hpp"

namespace kassa::ledger::store {

namespace {

using namespace lmdb_util;

// Bumped on any incompatible change of the tables below; open() refuses any other version.
// 2 added the corrections table and meta.recon_cursor; a store of format 1 is upgraded in place
// when opened for writing (recon_cursor 0: every resolution is still to be accounted for).
constexpr uint64_t voucher_format_version = 2;
constexpr uint64_t voucher_format_version_no_corrections = 1;

constexpr const char* dbi_vouchers = "vouchers"; // journal sequence (8 B BE) -> voucher
constexpr const char* dbi_corrections = "corrections"; // resolution sequence (8 B BE) -> voucher
constexpr const char* dbi_totals = "totals";     // account (2 B BE), ledger (4 B BE) -> totals_value
constexpr const char* dbi_meta = "meta";         // ASCII name -> u64 LE
constexpr const char* meta_format_version = "format_version";
constexpr const char* meta_cursor = "cursor";     // the last journal sequence accounted for
constexpr const char* meta_vouchers = "vouchers"; // vouchers written, corrections included
constexpr const char* meta_recon_cursor = "recon_cursor"; // the last resolution accounted for

struct totals_value {
  u128 debits, credits;
};
static_assert(sizeof(totals_value) == 32);
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "vouchers are the host's little-endian bytes");

struct totals_key {
  uint8_t bytes[6];
  totals_key(uint16_t account, uint32_t ledger) {
    bytes[0] = uint8_t(account >> 8), bytes[1] = uint8_t(account);
    for (int i = 0; i < 4; ++i) bytes[2 + i] = uint8_t(ledger >> (24 - 8 * i));
  }
};

error lmdb_error(int rc, const std::string& what, MDB_env* env) {
  const std::string where = what + " in the accounting store " + path_of(env) + ": " + mdb_strerror(rc);
  return from_rc(rc, where,
                 "the accounting store is full (" + where + "): raise its map size and restart",
                 "the accounting store is damaged; move DIR/accounting away and restart kassad, which "
                 "derives the vouchers again from the payments journal");
}

} // namespace

std::unique_ptr<voucher_store> voucher_store::open(const std::string& path, enum durability durability,
                                                   uint64_t map_size_bytes, error& err) {
  return open_env(path, false, durability, map_size_bytes, err);
}

std::unique_ptr<voucher_store> voucher_store::open_read_only(const std::string& path, error& err) {
  return open_env(path, true, durability::none, 0, err);
}

std::unique_ptr<voucher_store> voucher_store::open_env(const std::string& path, bool read_only,
                                                       enum durability durability, uint64_t map_size_bytes,
                                                       error& err) {
  err = {};
  std::error_code ec;
  if (read_only) {
    if (!std::filesystem::exists(std::filesystem::path(path) / "data.mdb", ec)) {
      err = make_error(errc::io, "no accounting store in " + path + " (expected data.mdb): is accounting enabled?");
      return nullptr;
    }
  } else {
    if (path.empty()) {
      err = make_error(errc::invalid_argument, "accounting store path is empty: set the data dir");
      return nullptr;
    }
    std::filesystem::create_directories(path, ec);
    if (ec) {
      err = make_error(errc::io, "cannot create the accounting store directory " + path + ": " + ec.message() +
                                     ": check the path and permissions");
      return nullptr;
    }
  }
  std::unique_ptr<voucher_store> s(new voucher_store());
  // MDB_NOTLS: CAF moves actors (and so their transactions' threads) around.
  unsigned flags = MDB_NOTLS;
  if (read_only) flags |= MDB_RDONLY;
  if (durability == durability::none) flags |= MDB_NOSYNC;
  int rc = lmdb::env_open(s->env_, path, flags, 4, read_only ? 0 : map_size_bytes);
  if (rc != 0) {
    err = s->env_ ? lmdb_error(rc, "opening the LMDB environment", s->env_)
                  : make_error(errc::io, "mdb_env_create for " + path + ": " + mdb_strerror(rc));
    return nullptr;
  }
  txn_guard txn;
  if ((rc = mdb_txn_begin(s->env_, nullptr, read_only ? MDB_RDONLY : 0, &txn.txn)) != 0) {
    err = lmdb_error(rc, "beginning the open transaction", s->env_);
    return nullptr;
  }
  const unsigned create = read_only ? 0 : MDB_CREATE;
  MDB_dbi vouchers, totals, meta;
  if ((rc = mdb_dbi_open(txn.txn, dbi_vouchers, create, &vouchers)) != 0 ||
      (rc = mdb_dbi_open(txn.txn, dbi_totals, create, &totals)) != 0 ||
      (rc = mdb_dbi_open(txn.txn, dbi_meta, create, &meta)) != 0) {
    err = lmdb_error(rc, "opening the tables", s->env_);
    return nullptr;
  }
  uint64_t version = 0;
  bool found = false;
  if ((rc = get_u64(txn.txn, meta, meta_format_version, version, found)) != 0) {
    err = lmdb_error(rc, "reading meta.format_version", s->env_);
    return nullptr;
  }
  if (!found && !read_only) {
    if ((rc = put_u64(txn.txn, meta, meta_format_version, voucher_format_version)) != 0 ||
        (rc = put_u64(txn.txn, meta, meta_cursor, 0)) != 0 || (rc = put_u64(txn.txn, meta, meta_vouchers, 0)) != 0 ||
        (rc = put_u64(txn.txn, meta, meta_recon_cursor, 0)) != 0) {
      err = lmdb_error(rc, "initialising meta", s->env_);
      return nullptr;
    }
    version = voucher_format_version;
  } else if (version != voucher_format_version && version != voucher_format_version_no_corrections) {
    err = make_error(errc::version_mismatch, "accounting store " + path + " has format version " +
                                                 std::to_string(version) + ", this kassa reads versions " +
                                                 std::to_string(voucher_format_version_no_corrections) + " and " +
                                                 std::to_string(voucher_format_version));
    return nullptr;
  }
  // A reader of a format 1 store (kassad has not started on it since) finds no corrections and
  // reads recon_cursor as 0; a writer creates both and upgrades.
  const bool corrections = !read_only || version == voucher_format_version;
  MDB_dbi corrections_dbi = 0;
  if (corrections && (rc = mdb_dbi_open(txn.txn, dbi_corrections, create, &corrections_dbi)) != 0) {
    err = lmdb_error(rc, "opening table corrections", s->env_);
    return nullptr;
  }
  if (!read_only && version == voucher_format_version_no_corrections &&
      ((rc = put_u64(txn.txn, meta, meta_recon_cursor, 0)) != 0 ||
       (rc = put_u64(txn.txn, meta, meta_format_version, voucher_format_version)) != 0)) {
    err = lmdb_error(rc, "upgrading to format 2", s->env_);
    return nullptr;
  }
  if ((rc = get_u64(txn.txn, meta, meta_cursor, s->cursor_, found)) != 0 ||
      (rc = get_u64(txn.txn, meta, meta_vouchers, s->vouchers_, found)) != 0 ||
      (rc = get_u64(txn.txn, meta, meta_recon_cursor, s->recon_cursor_, found)) != 0) {
    err = lmdb_error(rc, "reading meta", s->env_);
    return nullptr;
  }
  if ((rc = txn.commit()) != 0) {
    err = lmdb_error(rc, "committing the open transaction", s->env_);
    return nullptr;
  }
  s->dbi_vouchers_ = vouchers, s->dbi_totals_ = totals, s->dbi_meta_ = meta;
  s->dbi_corrections_ = corrections_dbi;
  return s;
}

voucher_store::~voucher_store() {
  if (env_) mdb_env_close(env_);
}

error voucher_store::write(const std::vector<voucher>& vouchers, uint64_t cursor_before, uint64_t cursor_after) {
  voucher_batch b;
  b.vouchers = vouchers;
  b.cursor_before = cursor_before, b.cursor_after = cursor_after;
  b.recon_cursor_before = b.recon_cursor_after = recon_cursor_;
  return write(b);
}

namespace {

// Adds a voucher's two legs to the totals: the debit's account, then the credit's.
int add_to_totals(MDB_txn* txn, MDB_dbi totals, const voucher& v, bool& overflow) {
  overflow = false;
  for (int leg = 0; leg < 2; ++leg) {
    totals_key tk(leg == 0 ? v.debit_account : v.credit_account, v.ledger);
    MDB_val tkv = val_of_bytes(tk.bytes, sizeof tk.bytes), tv;
    totals_value t{0, 0};
    int rc = mdb_get(txn, totals, &tkv, &tv);
    if (rc == 0) {
      if (tv.mv_size != sizeof t) return MDB_CORRUPTED;
      std::memcpy(&t, tv.mv_data, sizeof t);
    } else if (rc != MDB_NOTFOUND) {
      return rc;
    }
    u128& side = leg == 0 ? t.debits : t.credits;
    if (!add_checked(side, v.amount, side)) return overflow = true, 0;
    MDB_val nv = val_of(t);
    if ((rc = mdb_put(txn, totals, &tkv, &nv, 0)) != 0) return rc;
  }
  return 0;
}

} // namespace

error voucher_store::put_vouchers(MDB_txn* txn, const std::vector<voucher>& vouchers, bool corrections,
                                  uint64_t before, uint64_t after) {
  const char* what = corrections ? "resolution " : "journal entry ";
  for (const voucher& v : vouchers) {
    KASSA_ASSERT(v.journal_sequence > before && v.journal_sequence <= after);
    uint8_t key[8];
    layout::put_be64(key, v.journal_sequence);
    MDB_val k = val_of_bytes(key, 8), val = val_of(v);
    int rc = mdb_put(txn, corrections ? dbi_corrections_ : dbi_vouchers_, &k, &val, MDB_NOOVERWRITE);
    if (rc != 0)
      return lmdb_error(rc, "writing the voucher of " + std::string(what) + std::to_string(v.journal_sequence), env_);
    bool overflow = false;
    if ((rc = add_to_totals(txn, dbi_totals_, v, overflow)) != 0) return lmdb_error(rc, "writing GL totals", env_);
    if (overflow)
      return make_error(errc::invalid_argument, "a GL total would pass 2^128 at " + std::string(what) +
                                                    std::to_string(v.journal_sequence) + ": nothing was written");
  }
  return {};
}

error voucher_store::write(const voucher_batch& b) {
  KASSA_ASSERT(b.cursor_after >= b.cursor_before && b.recon_cursor_after >= b.recon_cursor_before);
  KASSA_ASSERT(dbi_corrections_ != 0);
  txn_guard txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a write", env_);
  uint64_t cursor = 0, recon_cursor = 0, count = 0;
  bool found = false;
  if ((rc = get_u64(txn.txn, dbi_meta_, meta_cursor, cursor, found)) != 0 ||
      (rc = get_u64(txn.txn, dbi_meta_, meta_recon_cursor, recon_cursor, found)) != 0 ||
      (rc = get_u64(txn.txn, dbi_meta_, meta_vouchers, count, found)) != 0)
    return lmdb_error(rc, "reading meta", env_);
  if (cursor != b.cursor_before || recon_cursor != b.recon_cursor_before)
    return make_error(errc::invalid_argument, "accounting store " + path_of(env_) + " is at journal entry " +
                                                  std::to_string(cursor) + " and resolution " +
                                                  std::to_string(recon_cursor) + ", not " +
                                                  std::to_string(b.cursor_before) + " and " +
                                                  std::to_string(b.recon_cursor_before) +
                                                  ": a second writer? nothing was written");
  error err = put_vouchers(txn.txn, b.vouchers, false, b.cursor_before, b.cursor_after);
  if (err.ok()) err = put_vouchers(txn.txn, b.corrections, true, b.recon_cursor_before, b.recon_cursor_after);
  if (!err.ok()) return err;
  count += b.vouchers.size() + b.corrections.size();
  if ((rc = put_u64(txn.txn, dbi_meta_, meta_cursor, b.cursor_after)) != 0 ||
      (rc = put_u64(txn.txn, dbi_meta_, meta_recon_cursor, b.recon_cursor_after)) != 0 ||
      (rc = put_u64(txn.txn, dbi_meta_, meta_vouchers, count)) != 0)
    return lmdb_error(rc, "writing meta", env_);
  if ((rc = txn.commit()) != 0) return lmdb_error(rc, "committing", env_);
  cursor_ = b.cursor_after, recon_cursor_ = b.recon_cursor_after, vouchers_ = count;
  return {};
}

error voucher_store::read_cursor(uint64_t& cursor, uint64_t& vouchers) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  bool found = false;
  int rc = get_u64(t.g.txn, dbi_meta_, meta_cursor, cursor, found);
  if (rc == 0) rc = get_u64(t.g.txn, dbi_meta_, meta_vouchers, vouchers, found);
  return rc == 0 ? error{} : lmdb_error(rc, "reading meta", env_);
}

error voucher_store::load_totals(std::vector<gl_total>& out, uint64_t* cursor, uint64_t* vouchers,
                                 uint64_t* recon_cursor) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  bool found = false;
  int rc = 0;
  if (cursor && (rc = get_u64(t.g.txn, dbi_meta_, meta_cursor, *cursor, found)) != 0)
    return lmdb_error(rc, "reading meta", env_);
  if (vouchers && (rc = get_u64(t.g.txn, dbi_meta_, meta_vouchers, *vouchers, found)) != 0)
    return lmdb_error(rc, "reading meta", env_);
  if (recon_cursor) *recon_cursor = 0; // format 1, not upgraded yet: none accounted for
  if (recon_cursor && (rc = get_u64(t.g.txn, dbi_meta_, meta_recon_cursor, *recon_cursor, found)) != 0)
    return lmdb_error(rc, "reading meta", env_);
  rc = lmdb::for_each(t.g.txn, dbi_totals_, [&out](const MDB_val& k, const MDB_val& v) {
    if (k.mv_size != 6 || v.mv_size != sizeof(totals_value)) return MDB_CORRUPTED;
    const auto* b = static_cast<const uint8_t*>(k.mv_data);
    totals_value tv;
    std::memcpy(&tv, v.mv_data, sizeof tv);
    gl_total g;
    g.account = uint16_t(b[0] << 8 | b[1]);
    g.ledger = uint32_t(b[2]) << 24 | uint32_t(b[3]) << 16 | uint32_t(b[4]) << 8 | b[5];
    g.debits = tv.debits, g.credits = tv.credits;
    out.push_back(g);
    return lmdb::scan_next;
  });
  return rc == 0 ? error{} : lmdb_error(rc, "reading GL totals", env_);
}

namespace {

// At most `limit` vouchers of `dbi` (keyed by a big-endian sequence) after `sequence`, in order.
error vouchers_of(MDB_env* env, MDB_dbi dbi, uint64_t sequence, uint32_t limit, std::vector<voucher>& out,
                  const char* what) {
  if (sequence == UINT64_MAX) return {};
  read_txn t(env);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env);
  uint8_t key[8];
  layout::put_be64(key, sequence + 1);
  const int rc = take_fixed<voucher>(t.g.txn, dbi, val_of_bytes(key, 8), limit, [&out](const voucher& vo) {
    out.push_back(vo);
    return true;
  });
  return rc == 0 ? error{} : lmdb_error(rc, what, env);
}

} // namespace

error voucher_store::vouchers_after(uint64_t journal_sequence, uint32_t limit, std::vector<voucher>& out) const {
  return vouchers_of(env_, dbi_vouchers_, journal_sequence, limit, out, "reading vouchers");
}

error voucher_store::corrections_after(uint64_t resolution_sequence, uint32_t limit, std::vector<voucher>& out) const {
  if (dbi_corrections_ == 0) return {};
  return vouchers_of(env_, dbi_corrections_, resolution_sequence, limit, out, "reading corrections");
}

} // namespace kassa::ledger::store
