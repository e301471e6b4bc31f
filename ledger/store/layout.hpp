#pragma once
// The on-disk layout of a store: DBI names, key encodings and the small value records that
// are not ledger records. docs/storage.md describes every table byte by byte.
// Keys are big-endian so that LMDB's lexicographic order is numeric order; values are the
// host's little-endian records (ledger/types.hpp), exactly as they travel on the wire.
#include <cstdint>
#include <cstring>

#include "primitives/u128.hpp"

namespace kassa::ledger::store::layout {

// Bumped on any incompatible change of a table below; open() refuses newer formats and
// upgrades version 1 (account rows current at every commit, index complete) in place.
constexpr uint64_t format_version = 2;

constexpr const char* dbi_meta = "meta";
constexpr const char* dbi_accounts = "accounts";
constexpr const char* dbi_transfers = "transfers";
constexpr const char* dbi_transfer_ids = "transfer_ids";
constexpr const char* dbi_pending = "pending";
constexpr const char* dbi_expiry = "expiry";
constexpr const char* dbi_history = "history";
// MDB_DUPSORT | MDB_DUPFIXED: key account id, values the 8-byte stamps of its transfers.
constexpr const char* dbi_account_transfers = "transfers_by_account";
// The per-row table of format version 1 and early version 2; dropped at open and rebuilt
// into transfers_by_account by the next bulk index.
constexpr const char* dbi_account_transfers_rows = "account_transfers";
constexpr const char* dbi_journal = "journal";
constexpr const char* dbi_expirations = "expirations";
constexpr unsigned dbi_count = 10;

// Keys of the `meta` table; every value is a u64, little-endian.
constexpr const char* meta_format_version = "format_version";
constexpr const char* meta_commit_sequence = "commit_sequence";
constexpr const char* meta_timestamp_last = "timestamp_last";
constexpr const char* meta_transfer_timestamp_last = "transfer_timestamp_last";
// Account rows hold every event with a timestamp <= this (the last checkpoint); recovery
// replays the transfers and expirations after it.
constexpr const char* meta_accounts_checkpoint_timestamp = "accounts_checkpoint_timestamp";
// account_transfers holds exactly the transfers with a timestamp <= this; queries scan the
// transfers after it.
constexpr const char* meta_account_transfers_indexed = "account_transfers_indexed";

inline void put_be64(uint8_t* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}
inline uint64_t get_be64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}
inline void put_be128(uint8_t* p, u128 v) {
  put_be64(p, u128_hi(v));
  put_be64(p + 8, u128_lo(v));
}
inline u128 get_be128(const uint8_t* p) { return make_u128(get_be64(p), get_be64(p + 8)); }

// accounts, transfer_ids, pending: the 16-byte id.
struct key_id {
  uint8_t bytes[16];
  explicit key_id(u128 id) { put_be128(bytes, id); }
};
// transfers, journal: a u64 (timestamp or commit sequence).
struct key_u64 {
  uint8_t bytes[8];
  explicit key_u64(uint64_t v) { put_be64(bytes, v); }
};
// history, account_transfers: account id ++ timestamp.
// expiry: expires_at ++ pending id. expirations: replay stamp ++ pending id (see below).
struct key_id_ts {
  uint8_t bytes[24];
  key_id_ts() = default;
  key_id_ts(u128 id, uint64_t ts) { put_be128(bytes, id); put_be64(bytes + 16, ts); }
  u128 id() const { return get_be128(bytes); }
  uint64_t ts() const { return get_be64(bytes + 16); }
};
struct key_ts_id {
  uint8_t bytes[24];
  key_ts_id(uint64_t ts, u128 id) { put_be64(bytes, ts); put_be128(bytes + 8, id); }
};
static_assert(sizeof(key_id) == 16 && sizeof(key_u64) == 8 && sizeof(key_id_ts) == 24 &&
              sizeof(key_ts_id) == 24);

// Value of `pending`: the state of a pending transfer.
struct pending_row {
  uint8_t status;       // ledger::pending_status
  uint8_t reserved[7];  // zero
  uint64_t expires_at_ns;
};
static_assert(sizeof(pending_row) == 16);

// Value of `journal`: one per committed write transaction (a group of batches).
struct journal_entry {
  uint64_t sequence;               // equal to the key; 1, 2, 3, ... without gaps
  uint64_t timestamp_last;         // the store's timestamp_last after this commit
  uint64_t transfer_timestamp_min; // range of the transfers this commit appended; 0 if none
  uint64_t transfer_timestamp_max;
  uint64_t committed_at_ns;        // wall clock at commit, for operators only
  uint32_t accounts_created;
  uint32_t accounts_written;       // account rows written (created + updated)
  uint32_t transfers_created;
  uint32_t pending_updates;
  uint32_t history_entries;
  uint32_t transfers_crc32c;       // CRC-32C of the appended 128-byte transfers, in order
};
static_assert(sizeof(journal_entry) == 64);

} // namespace kassa::ledger::store::layout
