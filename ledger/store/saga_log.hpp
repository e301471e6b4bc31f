#pragma once
// The directory's saga log: a small LMDB environment of its own (`<data_dir>/sagas/`) that
// records, before any leg is prepared, which pending transfers a transfer across shards (or a
// linked chain spanning shards) consists of. Recovery reads it to finish what a crash cut
// short: when every leg exists and none was voided or expired, the saga commits (its pending
// legs are posted); otherwise it aborts (its pending legs are voided). A record is removed
// once every leg is resolved. See docs/sharding.md.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ledger/store/error.hpp"
#include "ledger/store/store.hpp"
#include "ledger/u128.hpp"

struct MDB_env;

namespace kassa::ledger::store {

struct saga_leg {
  uint32_t shard = 0;
  u128 id = 0; // the pending transfer this saga wrote in that shard
};

struct saga {
  uint64_t id = 0; // unique, increasing; assigned by the directory
  std::vector<saga_leg> legs;
};

class saga_log {
public:
  // Opens (creating when missing) the log at `path`. Null and `err` set on failure.
  static std::unique_ptr<saga_log> open(const std::string& path, enum durability durability,
                                        uint64_t map_size_bytes, error& err);
  ~saga_log();
  saga_log(const saga_log&) = delete;
  saga_log& operator=(const saga_log&) = delete;

  // One write transaction (and, with durability fsync, one fsync): adds `add`, then removes
  // the records whose ids are in `remove` (removing an absent id is not an error). ok means
  // durable. Call from one thread at a time.
  error write(const std::vector<saga>& add, const std::vector<uint64_t>& remove);

  // Every record, ordered by id. A record that fails its checksum is an error (corrupt).
  error load(std::vector<saga>& out) const;

  // The largest saga id ever written (also after its record was removed); 0 when none.
  uint64_t id_last() const { return id_last_; }

private:
  saga_log() = default;
  MDB_env* env_ = nullptr;
  unsigned dbi_ = 0;
  enum durability durability_ = durability::fsync;
  uint64_t id_last_ = 0;
};

} // namespace kassa::ledger::store
