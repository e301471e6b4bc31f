#pragma once
// The directory's saga log: a small LMDB environment of its own (`<data_dir>/sagas/`).
// Since format version 2 a record is a **redo record**: everything a round that moves money
// across shards will write, per shard, in order (kassa's own accounts and those of linked
// chains of accounts across shards, then the transfers),
// written and fsynced before any shard applies any of it. The directory has already decided
// every event of it, so each applies (or is found applied): recovery sends every shard its
// part again and each event answers ok or exists. A record is removed once every shard made
// its part durable. Records of format version 1 (pending legs, posted on commit or voided on
// abort) are upgraded in place and still finished by their old rule; a log of version 2 is
// marked version 3 in place (its records are the same). See docs/sharding.md.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ledger/store/error.hpp"
#include "ledger/store/store.hpp"
#include "primitives/u128.hpp"

struct MDB_env;

namespace kassa::ledger::store {

struct saga_leg {
  uint32_t shard = 0;
  u128 id = 0; // the pending transfer this saga wrote in that shard
};

// One event of a redo record, and the shard that applies it.
struct saga_account {
  uint32_t shard = 0;
  uint8_t system = 0; // kassa's own event (may use reserved ids); system_unlinked: a client's
                      // account of a chain across shards, decided whole already
  account value{};
};
struct saga_transfer {
  uint32_t shard = 0;
  uint8_t system = 0;
  transfer value{};
};

// A record: either pending legs (`legs`, written by format version 1) or a redo record
// (`accounts` and `transfers`, in apply order per shard).
struct saga {
  uint64_t id = 0; // unique, increasing; assigned by the directory
  std::vector<saga_leg> legs;
  std::vector<saga_account> accounts;
  std::vector<saga_transfer> transfers;
  bool redo() const { return legs.empty(); }
};

// The log's current format version (1: pending legs only; 2: tagged records, redo records;
// 3: redo records may hold the legs of two-phase transfers across shards and their expiries).
constexpr uint64_t saga_format_version = 3;

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
