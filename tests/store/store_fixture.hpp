#pragma once
// Helpers for store tests: a temporary directory, record builders, direct LMDB access for
// tampering, and the deterministic fields the crash workload gives each transfer id.
#include <lmdb.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "ledger/state_machine.hpp"
#include "ledger/store/layout.hpp"
#include "ledger/store/store.hpp"
#include "primitives/lmdb.hpp"
#include "tests/ledger/ledger_fixture.hpp" // make_account, make_transfer, make_resolve

#include <catch2/catch.hpp>

namespace kassa::test {

using namespace kassa::ledger;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at scope exit.
struct temp_dir {
  std::string path;
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/kassa-store-XXXXXX";
    char* made = mkdtemp(pattern.data());
    if (made == nullptr) std::abort();
    path = made;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

inline store::options store_options(const std::string& path,
                                    store::durability d = store::durability::none) {
  store::options o;
  o.path = path;
  o.durability = d;
  o.map_size_bytes = 256ull << 20;
  o.transfers_resident_max = 1000;
  return o;
}

// Direct LMDB access to a closed store, for tests that damage it on purpose.
struct raw_lmdb {
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  explicit raw_lmdb(const std::string& path) {
    if (lmdb::env_open(env, path, 0, 16) != 0 || mdb_txn_begin(env, nullptr, 0, &txn) != 0)
      std::abort();
  }
  MDB_dbi dbi(const char* name) {
    MDB_dbi d;
    if (mdb_dbi_open(txn, name, 0, &d) != 0) std::abort();
    return d;
  }
  void commit() {
    if (mdb_txn_commit(txn) != 0) std::abort();
    txn = nullptr;
  }
  ~raw_lmdb() {
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
  }
};

// Rewrites account `id`'s checkpointed row in the stopped store at `path`, bypassing the store:
// how the tests make a row disagree with the journal.
template <class Change>
void tamper_account_row(const std::string& path, u128 id, Change&& change) {
  raw_lmdb raw(path);
  MDB_dbi accounts = raw.dbi(store::layout::dbi_accounts);
  store::layout::key_id key(id);
  MDB_val k{sizeof key, &key}, v;
  REQUIRE(mdb_get(raw.txn, accounts, &k, &v) == 0);
  account a;
  std::memcpy(&a, v.mv_data, sizeof a);
  change(a);
  v = MDB_val{sizeof a, &a};
  REQUIRE(mdb_put(raw.txn, accounts, &k, &v, 0) == 0);
  raw.commit();
}

// --- the crash workload ------------------------------------------------------------------
// Transfer ids are make_u128(cycle, index): unique across the crash cycles. Each id's fields
// follow from the id, so the parent can check a durable transfer without knowing the batch.
namespace crash {

constexpr uint32_t accounts_count = 64;

inline uint64_t mix(u128 id) {
  uint64_t x = u128_lo(id) ^ (u128_hi(id) * 0x9E3779B97F4A7C15ull);
  x ^= x >> 30; x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27; x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline u128 debit_of(u128 id) { return 1 + mix(id) % accounts_count; }
inline u128 credit_of(u128 id) {
  u128 c = 1 + (mix(id) >> 20) % (accounts_count - 1);
  return c >= debit_of(id) ? c + 1 : c; // never the debit account
}
inline u128 amount_of(u128 id) { return 1 + (mix(id) >> 40) % 10'000; }

} // namespace crash
// Prefetches and applies one batch, as the shard does.
inline std::vector<transfer_result> apply(store::store& s, state_machine& sm, std::vector<transfer> batch,
                                   uint64_t now = 2000) {
  REQUIRE(s.prefetch(sm, batch.data(), batch.size()).ok());
  return sm.create_transfers(batch.data(), batch.size(), now);
}

inline void commit_ok(store::store& s, state_machine& sm) {
  store::error err = s.commit(sm.changes_take());
  INFO(err.message);
  REQUIRE(err.ok());
}

// Every resident account of `expected` equals the one `loaded` recovered, byte for byte.
inline void require_same_accounts(const state_machine& expected, const state_machine& loaded) {
  REQUIRE(expected.account_count() == loaded.account_count());
  expected.accounts_for_each([&](const account& a) {
    const account* b = loaded.account_find(a.id);
    REQUIRE(b != nullptr);
    REQUIRE(std::memcmp(&a, b, sizeof a) == 0);
  });
}

} // namespace kassa::test
