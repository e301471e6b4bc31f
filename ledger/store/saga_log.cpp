#include "ledger/store/saga_log.hpp"

#include <lmdb.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "ledger/store/layout.hpp"
#include "ledger/store/lmdb_util.hpp"
#include "primitives/assert.hpp"
#include "primitives/crc32c.hpp"

namespace kassa::ledger::store {

namespace {

constexpr const char* dbi_sagas = "sagas"; // saga id (8 B, big-endian) -> record (below)
constexpr const char* dbi_meta = "meta";   // ASCII name -> u64 LE
constexpr const char* meta_format_version = "format_version";
// The largest saga id ever written: ids stay unique after every record was removed.
constexpr const char* meta_id_last = "id_last";

// A record of format version 1, little-endian: u32 leg count, then per leg u32 shard and the
// 16-byte pending transfer id, then the CRC-32C of every byte before it.
// Format version 2 puts a kind byte first: kind_legs, then the version 1 bytes (the CRC
// covering the kind byte too); or kind_redo, then u32 account count, u32 transfer count, per
// account u32 shard, u8 system and the 128-byte account, per transfer the same with the
// 128-byte transfer, then the CRC-32C.
constexpr uint8_t kind_legs = 1;
constexpr uint8_t kind_redo = 2;
constexpr size_t redo_event_bytes = 4 + 1 + 128;
constexpr size_t record_head_bytes = 4;
constexpr size_t record_leg_bytes = 4 + 16;
constexpr size_t record_crc_bytes = 4;
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "records are the host's little-endian bytes");
static_assert(sizeof(u128) == 16);

using namespace lmdb_util;

uint64_t map_size_of(MDB_env* env) {
  MDB_envinfo info;
  return mdb_env_info(env, &info) == 0 ? uint64_t(info.me_mapsize) : 0;
}

std::string size_text(uint64_t bytes) {
  return bytes % (1u << 20) == 0 ? std::to_string(bytes >> 20) + " MiB"
                                 : std::to_string(bytes) + " bytes";
}

// Maps an LMDB return code to an error whose message tells the operator what to do.
error lmdb_error(int rc, const std::string& what, const std::string& path, uint64_t map_size_bytes) {
  const std::string where = what + " in the saga log " + path + ": " + mdb_strerror(rc);
  return from_rc(rc, where,
                 "saga log is full (map size " + size_text(map_size_bytes) + ", " + where +
                     "): raise the saga log's map size and restart; records leave the log as their "
                     "sagas resolve, so also check that every shard is up",
                 "the saga log is damaged; restore the data directory from a backup");
}

error lmdb_error(int rc, const std::string& what, MDB_env* env) {
  return lmdb_error(rc, what, path_of(env), map_size_of(env));
}

error corrupt(MDB_env* env, const std::string& what) {
  return make_error(errc::corrupt, "saga log " + path_of(env) + " is inconsistent: " + what +
                                       "; restore the data directory from a backup");
}

// The version 1 bytes of a legs record (without CRC) from `p`; `size` excludes the CRC.
std::string legs_decode(const uint8_t* p, size_t size, saga& out) {
  if (size < record_head_bytes || (size - record_head_bytes) % record_leg_bytes != 0)
    return "its record has a bad length (" + std::to_string(size + record_crc_bytes) + " bytes)";
  uint32_t count;
  std::memcpy(&count, p, 4);
  if (uint64_t(count) * record_leg_bytes != size - record_head_bytes)
    return "its record holds " + std::to_string(count) + " legs in " +
           std::to_string(size + record_crc_bytes) + " bytes";
  out.legs.resize(count);
  p += record_head_bytes;
  for (saga_leg& leg : out.legs) {
    std::memcpy(&leg.shard, p, 4);
    std::memcpy(&leg.id, p + 4, 16);
    p += record_leg_bytes;
  }
  return {};
}

std::string redo_decode(const uint8_t* p, size_t size, saga& out) {
  if (size < 8) return "its redo record has a bad length (" + std::to_string(size) + " bytes)";
  uint32_t accounts, transfers;
  std::memcpy(&accounts, p, 4);
  std::memcpy(&transfers, p + 4, 4);
  if ((uint64_t(accounts) + transfers) * redo_event_bytes != size - 8)
    return "its redo record holds " + std::to_string(accounts) + " accounts and " +
           std::to_string(transfers) + " transfers in " + std::to_string(size) + " bytes";
  p += 8;
  out.accounts.resize(accounts);
  for (saga_account& a : out.accounts) {
    std::memcpy(&a.shard, p, 4);
    a.system = p[4];
    std::memcpy(static_cast<void*>(&a.value), p + 5, 128);
    p += redo_event_bytes;
  }
  out.transfers.resize(transfers);
  for (saga_transfer& t : out.transfers) {
    std::memcpy(&t.shard, p, 4);
    t.system = p[4];
    std::memcpy(static_cast<void*>(&t.value), p + 5, 128);
    p += redo_event_bytes;
  }
  return {};
}

void record_encode(const saga& s, std::vector<uint8_t>& out) {
  out.clear();
  auto put32 = [&out](uint32_t v) {
    const size_t at = out.size();
    out.resize(at + 4);
    std::memcpy(out.data() + at, &v, 4);
  };
  auto put_event = [&out, &put32](uint32_t shard, uint8_t system, const void* value) {
    put32(shard);
    out.push_back(system);
    const size_t at = out.size();
    out.resize(at + 128);
    std::memcpy(out.data() + at, value, 128);
  };
  if (!s.redo()) {
    KASSA_ASSERT(s.legs.size() <= UINT32_MAX && s.accounts.empty() && s.transfers.empty());
    out.push_back(kind_legs);
    put32(uint32_t(s.legs.size()));
    for (const saga_leg& leg : s.legs) {
      put32(leg.shard);
      const size_t at = out.size();
      out.resize(at + 16);
      std::memcpy(out.data() + at, &leg.id, 16);
    }
  } else {
    KASSA_ASSERT(s.accounts.size() <= UINT32_MAX && s.transfers.size() <= UINT32_MAX);
    out.push_back(kind_redo);
    put32(uint32_t(s.accounts.size()));
    put32(uint32_t(s.transfers.size()));
    for (const saga_account& a : s.accounts) put_event(a.shard, a.system, &a.value);
    for (const saga_transfer& t : s.transfers) put_event(t.shard, t.system, &t.value);
  }
  put32(crc32c(out.data(), out.size()));
}

// An empty string when `v` (a record of format version `version`) decodes into `out`, else
// what is wrong with it.
std::string record_decode(const MDB_val& v, saga& out, uint64_t version = saga_format_version) {
  const auto* p = static_cast<const uint8_t*>(v.mv_data);
  const size_t size = v.mv_size;
  if (size < 1 + record_crc_bytes) return "its record has a bad length (" + std::to_string(size) + " bytes)";
  // The length first (a cut record is a bad length, not a bad checksum), then the checksum.
  const size_t body = size - (version == 1 ? 0 : 1) - record_crc_bytes;
  const uint8_t kind = version == 1 ? kind_legs : p[0];
  if (kind == kind_legs && (body < record_head_bytes || (body - record_head_bytes) % record_leg_bytes != 0))
    return "its record has a bad length (" + std::to_string(size) + " bytes)";
  if (kind == kind_redo && (body < 8 || (body - 8) % redo_event_bytes != 0))
    return "its record has a bad length (" + std::to_string(size) + " bytes)";
  uint32_t crc_stored;
  std::memcpy(&crc_stored, p + size - record_crc_bytes, 4);
  if (crc32c(p, size - record_crc_bytes) != crc_stored) return "its record fails its checksum";
  if (version == 1) return legs_decode(p, body, out);
  if (p[0] == kind_legs) return legs_decode(p + 1, body, out);
  if (p[0] == kind_redo) return redo_decode(p + 1, body, out);
  return "its record has an unknown kind " + std::to_string(p[0]);
}

// Rewrites every record of format version 1 in the format of this version, in the open
// transaction (so an upgrade is whole or not at all).
int upgrade_from_1(MDB_txn* txn, MDB_dbi sagas, std::string& problem) {
  std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> rewritten;
  {
    cursor_guard c;
    int rc = mdb_cursor_open(txn, sagas, &c.cursor);
    if (rc != 0) return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
      saga s;
      if (std::string p = record_decode(v, s, 1); !p.empty()) {
        problem = p;
        return 0;
      }
      std::vector<uint8_t> record;
      record_encode(s, record);
      const auto* key = static_cast<const uint8_t*>(k.mv_data);
      rewritten.emplace_back(std::vector<uint8_t>(key, key + k.mv_size), std::move(record));
    }
    if (rc != MDB_NOTFOUND) return rc;
  }
  for (auto& [key, record] : rewritten) {
    MDB_val k{key.size(), key.data()}, v{record.size(), record.data()};
    if (int rc = mdb_put(txn, sagas, &k, &v, 0); rc != 0) return rc;
  }
  return 0;
}
} // namespace

namespace {

// A new log gets meta; an older format is upgraded in place; a newer one is refused.
error open_format(MDB_txn* txn, MDB_dbi sagas, MDB_dbi meta, MDB_env* env, const std::string& path) {
  uint64_t version = 0;
  bool found = false;
  int rc;
  if ((rc = get_u64(txn, meta, meta_format_version, version, found)) != 0)
    return lmdb_error(rc, "reading meta.format_version", env);
  if (!found) {
    // A new log: the sagas table must be empty, or someone removed meta.
    MDB_stat st;
    if ((rc = mdb_stat(txn, sagas, &st)) != 0) return lmdb_error(rc, "mdb_stat", env);
    if (st.ms_entries != 0)
      return corrupt(env, "meta.format_version is missing but the sagas table holds " +
                              std::to_string(st.ms_entries) + " records");
    if ((rc = put_u64(txn, meta, meta_format_version, saga_format_version)) != 0 ||
        (rc = put_u64(txn, meta, meta_id_last, 0)) != 0)
      return lmdb_error(rc, "initialising meta", env);
  } else if (version == 1) {
    std::string problem;
    if ((rc = upgrade_from_1(txn, sagas, problem)) != 0 ||
        (rc = put_u64(txn, meta, meta_format_version, saga_format_version)) != 0)
      return lmdb_error(rc, "upgrading the saga log from format version 1", env);
    if (!problem.empty()) return corrupt(env, "upgrading from format version 1: a record: " + problem);
  } else if (version == 2) {
    // Format 3 writes the same records; its redo records may also hold two-phase legs across
    // shards and expiries (system_expire), which a kassa of format 2 must not replay.
    if ((rc = put_u64(txn, meta, meta_format_version, saga_format_version)) != 0)
      return lmdb_error(rc, "upgrading the saga log from format version 2", env);
  } else if (version != saga_format_version) {
    return make_error(errc::version_mismatch,
                      "saga log " + path + " has format version " + std::to_string(version) +
                          ", this kassa reads version " + std::to_string(saga_format_version) +
                          ": run the kassa release that wrote it");
  }
  return {};
}

// meta.id_last, which covers every record: the newest key must not lie beyond it.
error read_id_last(MDB_txn* txn, MDB_dbi sagas, MDB_dbi meta, MDB_env* env, uint64_t& id_last) {
  bool found = false;
  int rc;
  if ((rc = get_u64(txn, meta, meta_id_last, id_last, found)) != 0) return lmdb_error(rc, "reading meta.id_last", env);
  if (!found) return corrupt(env, "meta lacks id_last");
  cursor_guard c;
  MDB_val k, v;
  if ((rc = mdb_cursor_open(txn, sagas, &c.cursor)) != 0) return lmdb_error(rc, "opening a sagas cursor", env);
  rc = mdb_cursor_get(c.cursor, &k, &v, MDB_LAST);
  if (rc == MDB_NOTFOUND) return {};
  if (rc != 0) return lmdb_error(rc, "reading the sagas", env);
  if (k.mv_size != 8) return corrupt(env, "a sagas key is not 8 bytes");
  const uint64_t newest = layout::get_be64(static_cast<const uint8_t*>(k.mv_data));
  if (newest > id_last)
    return corrupt(env, "the newest saga has id " + std::to_string(newest) + " but meta.id_last is " +
                            std::to_string(id_last));
  return {};
}

} // namespace

std::unique_ptr<saga_log> saga_log::open(const std::string& path, enum durability durability,
                                         uint64_t map_size_bytes, error& err) {
  err = {};
  if (path.empty()) {
    err = make_error(errc::invalid_argument, "saga log path is empty: set the data dir");
    return nullptr;
  }
  if (map_size_bytes < (64u << 10)) {
    err = make_error(errc::invalid_argument, "saga log map size " + std::to_string(map_size_bytes) +
                                                 " bytes is below 64 KiB: raise it");
    return nullptr;
  }
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    err = make_error(errc::io, "cannot create saga log directory " + path + ": " + ec.message() +
                                   ": check the path and permissions");
    return nullptr;
  }

  std::unique_ptr<saga_log> log(new saga_log());
  log->durability_ = durability;
  // As the store: MDB_NOTLS because CAF moves the directory between threads; fsync commits
  // flush data and meta page, none leaves them to the page cache.
  unsigned flags = MDB_NOTLS;
  if (durability == durability::none) flags |= MDB_NOSYNC;
  int rc = lmdb::env_open(log->env_, path, flags, 2, map_size_bytes);
  if (rc != 0) {
    err = lmdb_error(rc, log->env_ ? "opening the LMDB environment" : "mdb_env_create", path, map_size_bytes);
    return nullptr;
  }

  txn_guard txn;
  if ((rc = mdb_txn_begin(log->env_, nullptr, 0, &txn.txn)) != 0) {
    err = lmdb_error(rc, "beginning the open transaction", log->env_);
    return nullptr;
  }
  MDB_dbi sagas, meta;
  if ((rc = mdb_dbi_open(txn.txn, dbi_sagas, MDB_CREATE, &sagas)) != 0 ||
      (rc = mdb_dbi_open(txn.txn, dbi_meta, MDB_CREATE, &meta)) != 0) {
    err = lmdb_error(rc, "opening the tables", log->env_);
    return nullptr;
  }
  uint64_t id_last = 0;
  if ((err = open_format(txn.txn, sagas, meta, log->env_, path)).ok())
    err = read_id_last(txn.txn, sagas, meta, log->env_, id_last);
  if (!err.ok()) return nullptr;
  if ((rc = txn.commit()) != 0) {
    err = lmdb_error(rc, "committing the open transaction", log->env_);
    return nullptr;
  }
  log->dbi_ = sagas;
  log->id_last_ = id_last;
  return log;
}

saga_log::~saga_log() {
  if (env_) mdb_env_close(env_);
}

error saga_log::write(const std::vector<saga>& add, const std::vector<uint64_t>& remove) {
  if (add.empty() && remove.empty()) return {};
  uint64_t id_last = id_last_;
  for (const saga& s : add) {
    if (s.id == 0)
      return make_error(errc::invalid_argument, "saga id 0 is reserved (id_last of an empty log)");
    id_last = std::max(id_last, s.id);
  }

  txn_guard txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a write transaction", env_);
  // Opened at open(); within a transaction this only looks the handle up by name.
  MDB_dbi meta;
  if ((rc = mdb_dbi_open(txn.txn, dbi_meta, 0, &meta)) != 0)
    return lmdb_error(rc, "opening the meta table", env_);

  std::vector<uint8_t> record;
  for (const saga& s : add) {
    layout::key_u64 key(s.id);
    record_encode(s, record);
    MDB_val k{sizeof key.bytes, key.bytes}, v{record.size(), record.data()};
    if ((rc = mdb_put(txn.txn, dbi_, &k, &v, 0)) != 0)
      return lmdb_error(rc, "writing saga " + std::to_string(s.id), env_);
  }
  for (uint64_t id : remove) {
    layout::key_u64 key(id);
    MDB_val k{sizeof key.bytes, key.bytes};
    rc = mdb_del(txn.txn, dbi_, &k, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND)
      return lmdb_error(rc, "removing saga " + std::to_string(id), env_);
  }
  if (id_last != id_last_ && (rc = put_u64(txn.txn, meta, meta_id_last, id_last)) != 0)
    return lmdb_error(rc, "writing meta.id_last", env_);
  if ((rc = txn.commit()) != 0) return lmdb_error(rc, "committing", env_);
  id_last_ = id_last;
  return {};
}

error saga_log::load(std::vector<saga>& out) const {
  txn_guard txn;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn.txn);
  if (rc != 0) return lmdb_error(rc, "beginning a read transaction", env_);
  cursor_guard c;
  if ((rc = mdb_cursor_open(txn.txn, dbi_, &c.cursor)) != 0)
    return lmdb_error(rc, "opening a sagas cursor", env_);
  std::vector<saga> sagas;
  MDB_val k, v;
  for (rc = mdb_cursor_get(c.cursor, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 8) return corrupt(env_, "a sagas key is not 8 bytes");
    saga s;
    s.id = layout::get_be64(static_cast<const uint8_t*>(k.mv_data));
    if (std::string problem = record_decode(v, s); !problem.empty())
      return corrupt(env_, "saga " + std::to_string(s.id) + ": " + problem);
    sagas.push_back(std::move(s));
  }
  if (rc != MDB_NOTFOUND) return lmdb_error(rc, "reading the sagas", env_);
  out = std::move(sagas);
  return {};
}

} // namespace kassa::ledger::store
