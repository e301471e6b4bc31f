#include "ledger/store/recon_store.hpp"

#include <lmdb.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "ledger/store/layout.hpp"
#include "ledger/store/lmdb_util.hpp"

namespace kassa::ledger::store {

std::string_view name(case_kind k) {
  switch (k) {
    case case_kind::none: return "none";
    case case_kind::missing_internal: return "missing_internal";
    case case_kind::missing_provider: return "missing_provider";
    case case_kind::amount_mismatch: return "amount_mismatch";
    case case_kind::suspense: return "suspense";
    case case_kind::missing_booking: return "missing_booking";
    case case_kind::booking_amount_mismatch: return "booking_amount_mismatch";
    case case_kind::row_status_mismatch: return "row_status_mismatch";
    case case_kind::booking_without_row: return "booking_without_row";
  }
  return "unknown";
}

std::string_view name(case_status s) {
  switch (s) {
    case case_status::open: return "open";
    case case_status::resolved: return "resolved";
  }
  return "unknown";
}

namespace {

using namespace lmdb_util;

// Bumped on any incompatible change of the tables below; open() refuses any other version.
// 2 added the resolutions table; a store of format 1 is upgraded in place when opened for
// writing (its resolved cases keep no journal entry: format 1 recorded none). 3 added the
// resolution order (the sequence the general ledger tails); a store of format 1 or 2 is
// upgraded when opened for writing, its journaled resolutions numbered in case-id order.
constexpr uint64_t recon_format_version = 3;
constexpr uint64_t recon_format_version_no_order = 2;
constexpr uint64_t recon_format_version_no_journal = 1;
constexpr int table_count = 8;

constexpr const char* dbi_cases = "cases";         // case id (8 B BE) -> recon_case
constexpr const char* dbi_case_keys = "case_keys"; // case_key -> case id (8 B BE)
constexpr const char* dbi_seen = "seen";           // payment id (16 B BE) -> 1 byte (seen_* / case_kind)
constexpr const char* dbi_pending = "pending";     // provider (16 B), sequence (8 B BE) -> recon_pending
constexpr const char* dbi_cursors = "cursors";     // provider name -> u64 LE
constexpr const char* dbi_meta = "meta";           // ASCII name -> u64 LE
constexpr const char* dbi_resolutions = "resolutions"; // case id (8 B BE) -> recon_resolution
constexpr const char* dbi_resolution_order = "resolution_order"; // sequence (8 B BE) -> case id (8 B BE)
constexpr const char* meta_format_version = "format_version";
constexpr const char* meta_case_id_last = "case_id_last";
constexpr const char* meta_cases_open = "cases_open";
constexpr const char* meta_matched = "matched";
constexpr const char* meta_resolution_sequence_last = "resolution_sequence_last";
// Added without a format change: a store written before it reads as 0.
constexpr const char* meta_booking_rows_checked = "booking_rows_checked";
constexpr const char* meta_booking_journal_cursor = "booking_journal_cursor";
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "cases are the host's little-endian bytes");

// What makes two cases the same case.
struct case_key {
  uint8_t bytes[1 + provider_bytes + 16 * 4 + 8];
  explicit case_key(const recon_case& c) {
    uint8_t* p = bytes;
    *p++ = c.kind;
    std::memcpy(p, c.provider, provider_bytes), p += provider_bytes;
    layout::put_be128(p, c.row_id), p += 16;
    layout::put_be128(p, c.payment_id), p += 16;
    layout::put_be128(p, c.internal_amount), p += 16;
    layout::put_be128(p, c.provider_amount), p += 16;
    layout::put_be64(p, c.statement_sequence);
  }
};

struct pending_key {
  uint8_t bytes[provider_bytes + 8];
  explicit pending_key(const recon_pending& r) {
    std::memcpy(bytes, r.provider, provider_bytes);
    layout::put_be64(bytes + provider_bytes, r.sequence);
  }
};

error lmdb_error(int rc, const std::string& what, MDB_env* env) {
  const std::string where = what + " in the reconciliation store " + path_of(env) + ": " + mdb_strerror(rc);
  return from_rc(rc, where, "the reconciliation store is full (" + where + "): raise its map size and restart",
                 "the reconciliation store is damaged; restore the data directory from a backup");
}

// Format 1 or 2 -> 3: numbers the journaled resolutions 1, 2, ... in case-id order (the order
// they were made in was not kept) and records the last number.
int number_resolutions(MDB_txn* txn, MDB_dbi resolutions, MDB_dbi order, MDB_dbi meta) {
  uint64_t sequence = 0;
  int rc = lmdb::for_each(txn, resolutions, [&](const MDB_val& k, const MDB_val&) {
    if (k.mv_size != 8) return MDB_CORRUPTED;
    uint8_t seq_be[8];
    layout::put_be64(seq_be, ++sequence);
    MDB_val sk = val_of_bytes(seq_be, 8), id = k;
    return mdb_put(txn, order, &sk, &id, MDB_APPEND);
  });
  if (rc != 0) return rc;
  return put_u64(txn, meta, meta_resolution_sequence_last, sequence);
}

} // namespace

std::unique_ptr<recon_store> recon_store::open(const std::string& path, enum durability durability,
                                               uint64_t map_size_bytes, error& err) {
  return open_env(path, false, durability, map_size_bytes, err);
}

std::unique_ptr<recon_store> recon_store::open_read_only(const std::string& path, error& err) {
  return open_env(path, true, durability::none, 0, err);
}

std::unique_ptr<recon_store> recon_store::open_env(const std::string& path, bool read_only, enum durability durability,
                                                   uint64_t map_size_bytes, error& err) {
  err = {};
  std::error_code ec;
  if (read_only) {
    if (!std::filesystem::exists(std::filesystem::path(path) / "data.mdb", ec)) {
      err = make_error(errc::io, "no reconciliation store in " + path +
                                     " (expected data.mdb): is reconciliation enabled?");
      return nullptr;
    }
  } else {
    if (path.empty()) {
      err = make_error(errc::invalid_argument, "reconciliation store path is empty: set the data dir");
      return nullptr;
    }
    std::filesystem::create_directories(path, ec);
    if (ec) {
      err = make_error(errc::io, "cannot create the reconciliation store directory " + path + ": " +
                                     ec.message() + ": check the path and permissions");
      return nullptr;
    }
  }
  std::unique_ptr<recon_store> s(new recon_store());
  unsigned flags = MDB_NOTLS;
  if (read_only) flags |= MDB_RDONLY;
  if (durability == durability::none) flags |= MDB_NOSYNC;
  int rc = lmdb::env_open(s->env_, path, flags, table_count, read_only ? 0 : map_size_bytes);
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
  const char* names[table_count - 1] = {dbi_cases, dbi_case_keys, dbi_seen, dbi_pending, dbi_cursors, dbi_meta,
                                        dbi_resolutions};
  const char* names_order = dbi_resolution_order;
  MDB_dbi dbis[table_count] = {};
  for (int i = 0; i < table_count - 2; ++i) {
    if ((rc = mdb_dbi_open(txn.txn, names[i], create, &dbis[i])) != 0) {
      err = lmdb_error(rc, std::string("opening table ") + names[i], s->env_);
      return nullptr;
    }
  }
  uint64_t version = 0;
  bool found = false;
  if ((rc = get_u64(txn.txn, dbis[5], meta_format_version, version, found)) != 0) {
    err = lmdb_error(rc, "reading meta.format_version", s->env_);
    return nullptr;
  }
  if (found && version != recon_format_version && version != recon_format_version_no_order &&
      version != recon_format_version_no_journal) {
    err = make_error(errc::version_mismatch, "reconciliation store " + path + " has format version " +
                                                 std::to_string(version) + ", this kassa reads versions " +
                                                 std::to_string(recon_format_version_no_journal) + " to " +
                                                 std::to_string(recon_format_version));
    return nullptr;
  }
  // A reader of a format 1 store (not upgraded yet: kassad has not started on it since) finds
  // no journal; a writer creates the table and upgrades.
  const bool journal = !read_only || version >= recon_format_version_no_order;
  if (journal && (rc = mdb_dbi_open(txn.txn, dbi_resolutions, create, &dbis[6])) != 0) {
    err = lmdb_error(rc, "opening table resolutions", s->env_);
    return nullptr;
  }
  // Likewise the order: a reader of a format 1 or 2 store finds none (nothing to tail yet).
  const bool order = !read_only || version == recon_format_version;
  if (order && (rc = mdb_dbi_open(txn.txn, names_order, create, &dbis[7])) != 0) {
    err = lmdb_error(rc, "opening table resolution_order", s->env_);
    return nullptr;
  }
  if (!read_only && found && version != recon_format_version &&
      (rc = number_resolutions(txn.txn, dbis[6], dbis[7], dbis[5])) != 0) {
    err = lmdb_error(rc, "numbering the resolutions (upgrading to format 3)", s->env_);
    return nullptr;
  }
  if (!found && !read_only) {
    if ((rc = put_u64(txn.txn, dbis[5], meta_case_id_last, 0)) != 0 ||
        (rc = put_u64(txn.txn, dbis[5], meta_cases_open, 0)) != 0 ||
        (rc = put_u64(txn.txn, dbis[5], meta_matched, 0)) != 0) {
      err = lmdb_error(rc, "initialising meta", s->env_);
      return nullptr;
    }
  } else if (!found) {
    err = make_error(errc::version_mismatch, "reconciliation store " + path + " has no format version");
    return nullptr;
  }
  if (!read_only && (rc = put_u64(txn.txn, dbis[5], meta_format_version, recon_format_version)) != 0) {
    err = lmdb_error(rc, "writing meta.format_version", s->env_);
    return nullptr;
  }
  if ((rc = txn.commit()) != 0) {
    err = lmdb_error(rc, "committing the open transaction", s->env_);
    return nullptr;
  }
  s->dbi_cases_ = dbis[0], s->dbi_case_keys_ = dbis[1], s->dbi_seen_ = dbis[2];
  s->dbi_pending_ = dbis[3], s->dbi_cursors_ = dbis[4], s->dbi_meta_ = dbis[5];
  s->dbi_resolutions_ = journal ? dbis[6] : 0;
  s->dbi_resolution_order_ = order ? dbis[7] : 0;
  return s;
}

recon_store::~recon_store() {
  if (env_) mdb_env_close(env_);
}

error recon_store::write(recon_batch& batch) {
  txn_guard txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a write", env_);
  uint64_t id_last = 0, open = 0, matched = 0, booking_rows_checked = 0, resolution_sequence = 0;
  bool found = false;
  if ((rc = get_u64(txn.txn, dbi_meta_, meta_resolution_sequence_last, resolution_sequence, found)) != 0 ||
      (rc = get_u64(txn.txn, dbi_meta_, meta_case_id_last, id_last, found)) != 0 ||
      (rc = get_u64(txn.txn, dbi_meta_, meta_cases_open, open, found)) != 0 ||
      (rc = get_u64(txn.txn, dbi_meta_, meta_matched, matched, found)) != 0 ||
      (rc = get_u64(txn.txn, dbi_meta_, meta_booking_rows_checked, booking_rows_checked, found)) != 0)
    return lmdb_error(rc, "reading meta", env_);
  for (recon_case& c : batch.cases) {
    c.id = 0;
    if (c.status == 0) c.status = static_cast<uint8_t>(case_status::open);
    case_key ck(c);
    uint8_t id_be[8];
    layout::put_be64(id_be, id_last + 1);
    MDB_val k = val_of_bytes(ck.bytes, sizeof ck.bytes), v = val_of_bytes(id_be, 8);
    rc = mdb_put(txn.txn, dbi_case_keys_, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) continue; // the same case is open (or was) already
    if (rc != 0) return lmdb_error(rc, "writing a case key", env_);
    c.id = ++id_last;
    MDB_val ik = val_of_bytes(id_be, 8), cv = val_of(c);
    if ((rc = mdb_put(txn.txn, dbi_cases_, &ik, &cv, MDB_APPEND)) != 0) return lmdb_error(rc, "writing a case", env_);
    if (c.status == static_cast<uint8_t>(case_status::open)) ++open;
  }
  batch.resolutions_applied.assign(batch.resolutions.size(), false);
  for (size_t i = 0; i < batch.resolutions.size(); ++i) {
    const recon_resolution& r = batch.resolutions[i];
    uint8_t id_be[8];
    layout::put_be64(id_be, r.case_id);
    recon_case c;
    if ((rc = get_fixed(txn.txn, dbi_cases_, val_of_bytes(id_be, 8), c, found)) != 0)
      return lmdb_error(rc, "reading a case", env_);
    if (!found || c.status != static_cast<uint8_t>(case_status::open)) continue;
    c.status = static_cast<uint8_t>(case_status::resolved);
    c.resolved_ns = r.resolved_ns;
    MDB_val ik = val_of_bytes(id_be, 8), cv = val_of(c), rv = val_of(r);
    if ((rc = mdb_put(txn.txn, dbi_cases_, &ik, &cv, 0)) != 0) return lmdb_error(rc, "resolving a case", env_);
    if ((rc = mdb_put(txn.txn, dbi_resolutions_, &ik, &rv, 0)) != 0)
      return lmdb_error(rc, "journaling a resolution", env_);
    uint8_t seq_be[8];
    layout::put_be64(seq_be, ++resolution_sequence);
    MDB_val sk = val_of_bytes(seq_be, 8);
    if ((rc = mdb_put(txn.txn, dbi_resolution_order_, &sk, &ik, MDB_APPEND)) != 0)
      return lmdb_error(rc, "ordering a resolution", env_);
    batch.resolutions_applied[i] = true;
    if (open > 0) --open;
  }
  for (const auto& [payment_id, what] : batch.seen) {
    uint8_t key[16];
    layout::put_be128(key, payment_id);
    MDB_val k = val_of_bytes(key, 16), v = val_of_bytes(&what, 1);
    // A statement's word outranks a missing_provider mark; never the other way round.
    rc = mdb_put(txn.txn, dbi_seen_, &k, &v, what == seen_only_missing_case ? MDB_NOOVERWRITE : 0);
    if (rc != 0 && rc != MDB_KEYEXIST) return lmdb_error(rc, "writing a seen payment id", env_);
  }
  for (const recon_pending& p : batch.pending_remove) {
    pending_key pk(p);
    MDB_val k = val_of_bytes(pk.bytes, sizeof pk.bytes);
    rc = mdb_del(txn.txn, dbi_pending_, &k, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc, "removing a pending line", env_);
  }
  for (const recon_pending& p : batch.pending_add) {
    pending_key pk(p);
    MDB_val k = val_of_bytes(pk.bytes, sizeof pk.bytes), v = val_of(p);
    if ((rc = mdb_put(txn.txn, dbi_pending_, &k, &v, 0)) != 0) return lmdb_error(rc, "writing a pending line", env_);
  }
  for (const auto& [provider, cursor] : batch.cursors) {
    MDB_val k = val_of_bytes(provider.data(), provider.size()), v = val_of(cursor);
    if ((rc = mdb_put(txn.txn, dbi_cursors_, &k, &v, 0)) != 0) return lmdb_error(rc, "writing a cursor", env_);
  }
  matched += batch.matched;
  booking_rows_checked += batch.booking_rows_checked;
  if ((rc = put_u64(txn.txn, dbi_meta_, meta_case_id_last, id_last)) != 0 ||
      (rc = put_u64(txn.txn, dbi_meta_, meta_resolution_sequence_last, resolution_sequence)) != 0 ||
      (rc = put_u64(txn.txn, dbi_meta_, meta_cases_open, open)) != 0 ||
      (rc = put_u64(txn.txn, dbi_meta_, meta_matched, matched)) != 0 ||
      (booking_rows_checked != 0 &&
       (rc = put_u64(txn.txn, dbi_meta_, meta_booking_rows_checked, booking_rows_checked)) != 0) ||
      (batch.booking_journal_cursor != 0 &&
       (rc = put_u64(txn.txn, dbi_meta_, meta_booking_journal_cursor, batch.booking_journal_cursor)) != 0))
    return lmdb_error(rc, "writing meta", env_);
  if ((rc = txn.commit()) != 0) return lmdb_error(rc, "committing", env_);
  return {};
}

error recon_store::load_cases(bool open_only, std::vector<recon_case>& out) const {
  return load_cases(open_only, 0, SIZE_MAX, out);
}

error recon_store::load_cases(bool open_only, uint64_t id_min, size_t limit, std::vector<recon_case>& out) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  uint8_t id_min_be[8];
  layout::put_be64(id_min_be, id_min);
  const int rc = take_fixed<recon_case>(t.g.txn, dbi_cases_, val_of_bytes(id_min_be, 8), limit, [&](const recon_case& c) {
    const bool take = !open_only || c.status == static_cast<uint8_t>(case_status::open);
    if (take) out.push_back(c);
    return take;
  });
  return rc == 0 ? error{} : lmdb_error(rc, "reading cases", env_);
}

error recon_store::get_case(uint64_t id, recon_case& out, bool& found) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  uint8_t id_be[8];
  layout::put_be64(id_be, id);
  int rc = get_fixed(t.g.txn, dbi_cases_, val_of_bytes(id_be, 8), out, found);
  return rc == 0 ? error{} : lmdb_error(rc, "reading a case", env_);
}

error recon_store::get_resolution(uint64_t case_id, recon_resolution& out, bool& found) const {
  found = false;
  if (dbi_resolutions_ == 0) return {};
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  uint8_t id_be[8];
  layout::put_be64(id_be, case_id);
  int rc = get_fixed(t.g.txn, dbi_resolutions_, val_of_bytes(id_be, 8), out, found);
  return rc == 0 ? error{} : lmdb_error(rc, "reading a resolution", env_);
}

error recon_store::resolutions_after(uint64_t sequence, uint32_t limit,
                                     std::vector<recon_resolution_entry>& out) const {
  if (dbi_resolution_order_ == 0 || sequence == UINT64_MAX) return {};
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  cursor_guard c;
  int rc = mdb_cursor_open(t.g.txn, dbi_resolution_order_, &c.cursor);
  if (rc != 0) return lmdb_error(rc, "opening a cursor", env_);
  uint8_t seq_be[8];
  layout::put_be64(seq_be, sequence + 1);
  MDB_val k = val_of_bytes(seq_be, 8), v;
  uint32_t n = 0;
  for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_SET_RANGE); rc == 0 && n < limit;
       rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT), ++n) {
    if (k.mv_size != 8 || v.mv_size != 8) return lmdb_error(MDB_CORRUPTED, "reading the resolution order", env_);
    recon_resolution_entry e;
    e.sequence = layout::get_be64(static_cast<const uint8_t*>(k.mv_data));
    bool found = false;
    if ((rc = get_fixed(t.g.txn, dbi_resolutions_, v, e.resolution, found)) != 0)
      return lmdb_error(rc, "reading a resolution", env_);
    if (!found) return lmdb_error(MDB_CORRUPTED, "reading an ordered resolution", env_);
    out.push_back(e);
  }
  return rc == MDB_NOTFOUND || rc == 0 ? error{} : lmdb_error(rc, "reading the resolution order", env_);
}

error recon_store::load_cursors(std::map<std::string, uint64_t>& out) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  const int rc = lmdb::for_each(t.g.txn, dbi_cursors_, [&out](const MDB_val& k, const MDB_val& v) {
    if (v.mv_size != 8) return MDB_CORRUPTED;
    uint64_t value;
    std::memcpy(&value, v.mv_data, 8);
    out[std::string(static_cast<const char*>(k.mv_data), k.mv_size)] = value;
    return lmdb::scan_next;
  });
  return rc == 0 ? error{} : lmdb_error(rc, "reading cursors", env_);
}

error recon_store::load_pending(std::vector<recon_pending>& out) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  const int rc = lmdb::for_each(t.g.txn, dbi_pending_, [&out](const MDB_val&, const MDB_val& v) {
    if (v.mv_size != sizeof(recon_pending)) return MDB_CORRUPTED;
    recon_pending p;
    std::memcpy(&p, v.mv_data, sizeof p);
    out.push_back(p);
    return lmdb::scan_next;
  });
  return rc == 0 ? error{} : lmdb_error(rc, "reading pending lines", env_);
}

error recon_store::seen(const std::vector<u128>& payment_ids, std::vector<int>& out) const {
  out.assign(payment_ids.size(), -1);
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  for (size_t i = 0; i < payment_ids.size(); ++i) {
    uint8_t key[16];
    layout::put_be128(key, payment_ids[i]);
    MDB_val k = val_of_bytes(key, 16), v;
    int rc = mdb_get(t.g.txn, dbi_seen_, &k, &v);
    if (rc == 0 && v.mv_size == 1) out[i] = *static_cast<const uint8_t*>(v.mv_data);
    else if (rc == 0) return lmdb_error(MDB_CORRUPTED, "reading seen payment ids", env_);
    else if (rc != MDB_NOTFOUND) return lmdb_error(rc, "reading seen payment ids", env_);
  }
  return {};
}

error recon_store::read_counters(recon_counters& out) const {
  read_txn t(env_);
  if (t.rc != 0) return lmdb_error(t.rc, "beginning a read", env_);
  bool found = false;
  int rc = get_u64(t.g.txn, dbi_meta_, meta_matched, out.matched, found);
  if (rc == 0) rc = get_u64(t.g.txn, dbi_meta_, meta_cases_open, out.cases_open, found);
  if (rc == 0) rc = get_u64(t.g.txn, dbi_meta_, meta_case_id_last, out.cases_total, found);
  if (rc == 0) rc = get_u64(t.g.txn, dbi_meta_, meta_booking_rows_checked, out.booking_rows_checked, found);
  if (rc == 0) rc = get_u64(t.g.txn, dbi_meta_, meta_booking_journal_cursor, out.booking_journal_cursor, found);
  if (rc == 0) rc = get_u64(t.g.txn, dbi_meta_, meta_resolution_sequence_last, out.resolution_sequence_last, found);
  return rc == 0 ? error{} : lmdb_error(rc, "reading meta", env_);
}

} // namespace kassa::ledger::store
