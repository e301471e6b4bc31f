#include "ledger/store/saga_log.hpp"

#include <lmdb.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "ledger/assert.hpp"
#include "ledger/crc32c.hpp"
#include "ledger/store/layout.hpp"
#include "ledger/store/lmdb_util.hpp"

namespace kassa::ledger::store {

namespace {

// Bumped on any incompatible change of the tables below; open() refuses any other version.
constexpr uint64_t saga_format_version = 1;

constexpr const char* dbi_sagas = "sagas"; // saga id (8 B, big-endian) -> record (below)
constexpr const char* dbi_meta = "meta";   // ASCII name -> u64 LE
constexpr const char* meta_format_version = "format_version";
// The largest saga id ever written: ids stay unique after every record was removed.
constexpr const char* meta_id_last = "id_last";

// A record, little-endian: u32 leg count, then per leg u32 shard and the 16-byte pending
// transfer id, then the CRC-32C of every byte before it.
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

void record_encode(const saga& s, std::vector<uint8_t>& out) {
  KASSA_ASSERT(s.legs.size() <= UINT32_MAX);
  const uint32_t count = uint32_t(s.legs.size());
  out.resize(record_head_bytes + count * record_leg_bytes + record_crc_bytes);
  uint8_t* p = out.data();
  std::memcpy(p, &count, 4);
  p += 4;
  for (const saga_leg& leg : s.legs) {
    std::memcpy(p, &leg.shard, 4);
    std::memcpy(p + 4, &leg.id, 16);
    p += record_leg_bytes;
  }
  const uint32_t crc = crc32c(out.data(), size_t(p - out.data()));
  std::memcpy(p, &crc, 4);
  KASSA_ASSERT(size_t(p + 4 - out.data()) == out.size());
}

// An empty string when `v` decodes into `out`, else what is wrong with it.
std::string record_decode(const MDB_val& v, saga& out) {
  const auto* p = static_cast<const uint8_t*>(v.mv_data);
  const size_t size = v.mv_size;
  if (size < record_head_bytes + record_crc_bytes ||
      (size - record_head_bytes - record_crc_bytes) % record_leg_bytes != 0)
    return "its record has a bad length (" + std::to_string(size) + " bytes)";
  uint32_t count, crc_stored;
  std::memcpy(&count, p, 4);
  std::memcpy(&crc_stored, p + size - record_crc_bytes, 4);
  const uint32_t crc = crc32c(p, size - record_crc_bytes);
  if (crc != crc_stored) return "its record fails its checksum";
  if (uint64_t(count) * record_leg_bytes != size - record_head_bytes - record_crc_bytes)
    return "its record holds " + std::to_string(count) + " legs in " + std::to_string(size) +
           " bytes";
  out.legs.resize(count);
  p += record_head_bytes;
  for (saga_leg& leg : out.legs) {
    std::memcpy(&leg.shard, p, 4);
    std::memcpy(&leg.id, p + 4, 16);
    p += record_leg_bytes;
  }
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
  int rc = mdb_env_create(&log->env_);
  if (rc != 0) {
    log->env_ = nullptr;
    err = lmdb_error(rc, "mdb_env_create", path, map_size_bytes);
    return nullptr;
  }
  // As the store: MDB_NOTLS because CAF moves the directory between threads; fsync commits
  // flush data and meta page, none leaves them to the page cache.
  unsigned flags = MDB_NOTLS;
  if (durability == durability::none) flags |= MDB_NOSYNC;
  if ((rc = mdb_env_set_maxdbs(log->env_, 2)) != 0 ||
      (rc = mdb_env_set_mapsize(log->env_, map_size_bytes)) != 0 ||
      (rc = mdb_env_open(log->env_, path.c_str(), flags, 0640)) != 0) {
    err = lmdb_error(rc, "opening the LMDB environment", path, map_size_bytes);
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

  uint64_t version = 0, id_last = 0;
  bool found = false;
  if ((rc = get_u64(txn.txn, meta, meta_format_version, version, found)) != 0) {
    err = lmdb_error(rc, "reading meta.format_version", log->env_);
    return nullptr;
  }
  if (!found) {
    // A new log: the sagas table must be empty, or someone removed meta.
    MDB_stat st;
    if ((rc = mdb_stat(txn.txn, sagas, &st)) != 0) {
      err = lmdb_error(rc, "mdb_stat", log->env_);
      return nullptr;
    }
    if (st.ms_entries != 0) {
      err = corrupt(log->env_, "meta.format_version is missing but the sagas table holds " +
                                   std::to_string(st.ms_entries) + " records");
      return nullptr;
    }
    if ((rc = put_u64(txn.txn, meta, meta_format_version, saga_format_version)) != 0 ||
        (rc = put_u64(txn.txn, meta, meta_id_last, 0)) != 0) {
      err = lmdb_error(rc, "initialising meta", log->env_);
      return nullptr;
    }
  } else if (version != saga_format_version) {
    err = make_error(errc::version_mismatch,
                     "saga log " + path + " has format version " + std::to_string(version) +
                         ", this kassa reads version " + std::to_string(saga_format_version) +
                         ": run the kassa release that wrote it");
    return nullptr;
  }
  if ((rc = get_u64(txn.txn, meta, meta_id_last, id_last, found)) != 0) {
    err = lmdb_error(rc, "reading meta.id_last", log->env_);
    return nullptr;
  }
  if (!found) {
    err = corrupt(log->env_, "meta lacks id_last");
    return nullptr;
  }
  // id_last covers every record: the newest key must not lie beyond it.
  {
    cursor_guard c;
    MDB_val k, v;
    if ((rc = mdb_cursor_open(txn.txn, sagas, &c.cursor)) != 0) {
      err = lmdb_error(rc, "opening a sagas cursor", log->env_);
      return nullptr;
    }
    rc = mdb_cursor_get(c.cursor, &k, &v, MDB_LAST);
    if (rc == 0) {
      if (k.mv_size != 8) {
        err = corrupt(log->env_, "a sagas key is not 8 bytes");
        return nullptr;
      }
      const uint64_t newest = layout::get_be64(static_cast<const uint8_t*>(k.mv_data));
      if (newest > id_last) {
        err = corrupt(log->env_, "the newest saga has id " + std::to_string(newest) +
                                     " but meta.id_last is " + std::to_string(id_last));
        return nullptr;
      }
    } else if (rc != MDB_NOTFOUND) {
      err = lmdb_error(rc, "reading the sagas", log->env_);
      return nullptr;
    }
  }
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
