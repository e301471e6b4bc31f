// The store as a shard sees it: what is committed comes back after a restart, a full disk
// map is a clean error, and verify catches a damaged store.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "ledger/store/layout.hpp"
#include "ledger/store/verify.hpp"
#include "tests/seed.hpp"
#include "tests/store/store_fixture.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;
namespace ks = kassa::ledger::store;

namespace {

std::unique_ptr<ks::store> open_ok(const ks::options& o) {
  ks::error err;
  auto s = ks::store::open(o, err);
  INFO(err.message);
  REQUIRE(s);
  return s;
}

void create_accounts(state_machine& sm, std::vector<account> as, uint64_t now = 1000) {
  for (auto r : sm.create_accounts(as.data(), as.size(), now)) REQUIRE(r == account_result::ok);
}


void require_verify_consistent(const std::string& path) {
  ks::verify_report r = ks::verify(path);
  INFO(r.summary);
  for (const auto& p : r.problems) UNSCOPED_INFO(p);
  REQUIRE(r.consistent);
}

} // namespace

TEST_CASE("a commit comes back after reopening: accounts, transfers and pending states", "[store]") {
  temp_dir dir;
  state_machine sm;
  {
    auto s = open_ok(store_options(dir.path, ks::durability::fsync));
    REQUIRE(s->load(sm).ok());
    create_accounts(sm, {make_account(1, 1, account_history), make_account(2), make_account(3),
                         make_account(4, 2)});
    auto rs = apply(*s, sm,
                    {make_transfer(10, 1, 2, 100), make_transfer(11, 2, 3, 40, transfer_pending),
                     make_transfer(12, 1, 3, 7, transfer_pending),
                     make_transfer(13, 3, 1, 5, transfer_pending)});
    for (auto r : rs) REQUIRE(r == transfer_result::ok);
    transfer timed = make_transfer(14, 1, 2, 9, transfer_pending);
    timed.timeout = 3600;
    REQUIRE(apply(*s, sm, {timed}).at(0) == transfer_result::ok);
    commit_ok(*s, sm);
    rs = apply(*s, sm, {make_resolve(20, 11, transfer_post_pending, 30),
                        make_resolve(21, 12, transfer_void_pending)});
    for (auto r : rs) REQUIRE(r == transfer_result::ok);
    commit_ok(*s, sm);
    CHECK(s->commit_sequence() == 2);
  }
  require_verify_consistent(dir.path);

  auto s = open_ok(store_options(dir.path));
  CHECK(s->commit_sequence() == 2);
  state_machine loaded;
  REQUIRE(s->load(loaded).ok());
  require_same_accounts(sm, loaded);
  CHECK(loaded.timestamp_last() == sm.timestamp_last());
  // Still-pending transfers are resident with their deadline; resolved ones are on disk.
  CHECK(loaded.pending_find(13).status == pending_status::pending);
  CHECK(loaded.pending_find(14).status == pending_status::pending);
  CHECK(loaded.pending_find(14).expires_at_ns == sm.pending_find(14).expires_at_ns);
  CHECK(loaded.pending_deadline_next_ns() == sm.pending_deadline_next_ns());
  pending_state ps;
  REQUIRE(s->lookup_pending(11, ps).ok());
  CHECK(ps.status == pending_status::posted);
  REQUIRE(s->lookup_pending(12, ps).ok());
  CHECK(ps.status == pending_status::voided);

  std::vector<u128> ids{10, 11, 12, 13, 14, 20, 21, 99};
  std::vector<transfer> found;
  REQUIRE(s->lookup_transfers(ids.data(), ids.size(), found).ok());
  REQUIRE(found.size() == 7);
  for (const transfer& t : found) CHECK(std::memcmp(&t, sm.transfer_find(t.id), sizeof t) == 0);
  std::vector<account> accounts;
  const u128 account_1 = 1;
  REQUIRE(s->lookup_accounts(&account_1, 1, accounts).ok());
  REQUIRE(accounts.size() == 1);
  CHECK(accounts[0].debits_posted == 100);

  // The per-account indexes answer range queries in both directions.
  ks::account_filter f;
  f.account_id = 1;
  f.limit = 10;
  std::vector<transfer> of_1;
  REQUIRE(s->account_transfers(f, of_1).ok());
  std::vector<u128> got;
  for (const auto& t : of_1) got.push_back(t.id);
  CHECK(got == std::vector<u128>{10, 12, 13, 14, 21});
  f.reversed = true;
  f.limit = 2;
  REQUIRE(s->account_transfers(f, of_1).ok());
  REQUIRE(of_1.size() == 2);
  CHECK((of_1[0].id == 21 && of_1[1].id == 14));
  f.reversed = false;
  f.limit = 10;
  f.credits = false;
  REQUIRE(s->account_transfers(f, of_1).ok());
  CHECK(of_1.size() == 4); // 10, 12, 14 and the void 21 debit account 1
  std::vector<account_balance> balances;
  f.credits = true;
  REQUIRE(s->account_balances(f, balances).ok());
  CHECK(balances.size() == 5);
  CHECK(balances.back().debits_posted == 100);
  f.account_id = 2; // no history flag
  REQUIRE(s->account_balances(f, balances).ok());
  CHECK(balances.empty());
}

TEST_CASE("many group commits with eviction come back whole after reopening", "[store]") {
  const uint64_t seed = kassa::test::seed("store group commits");
  std::mt19937_64 rng(seed);
  temp_dir dir;
  state_machine sm;
  const uint32_t accounts_count = 50;
  uint64_t now = 1'000'000;
  u128 next_id = 1000;
  std::vector<u128> pendings;
  {
    auto s = open_ok(store_options(dir.path));
    REQUIRE(s->load(sm).ok());
    std::vector<account> as;
    for (uint32_t i = 1; i <= accounts_count; ++i)
      as.push_back(make_account(i, 1 + i % 3, i % 7 == 0 ? account_history : 0));
    create_accounts(sm, as, now);
    commit_ok(*s, sm);
    std::vector<u128> by_ledger[3];
    for (const account& a : as) by_ledger[a.ledger - 1].push_back(a.id);
    for (int commit = 0; commit < 200; ++commit) {
      const int batches = 1 + int(rng() % 4);
      for (int b = 0; b < batches; ++b) {
        now += 50'000'000; // 50 ms per batch: timeouts of 1 s expire along the way
        sm.expire_pending(now);
        std::vector<transfer> batch;
        const size_t size = 1 + rng() % 64;
        for (size_t i = 0; i < size; ++i) {
          const uint64_t kind = rng() % 12;
          if (kind >= 9 && !pendings.empty()) {
            // Post, void, or repeat an old id (possibly evicted): the outcome is whatever the
            // ledger says; the store must persist exactly that.
            u128 target = pendings[rng() % pendings.size()];
            if (kind == 11) batch.push_back(make_transfer(1000 + rng() % (next_id - 1000), 1, 2, 1));
            else batch.push_back(make_resolve(next_id++, target, kind == 9 ? transfer_post_pending : transfer_void_pending));
            continue;
          }
          const auto& on_ledger = by_ledger[rng() % 3];
          const u128 debit = on_ledger[rng() % on_ledger.size()];
          u128 credit = on_ledger[rng() % on_ledger.size()];
          if (credit == debit) credit = on_ledger[(rng() % (on_ledger.size() - 1) + 1 + (debit - on_ledger[0]) / 3) % on_ledger.size()];
          transfer t = make_transfer(next_id++, debit, credit, 1 + rng() % 1000, 0,
                                     sm.account_find(debit)->ledger);
          if (kind >= 6) {
            t.flags = transfer_pending;
            t.timeout = kind == 8 ? 1 : 0;
            pendings.push_back(t.id);
          }
          batch.push_back(t);
        }
        apply(*s, sm, batch, now);
      }
      commit_ok(*s, sm);
      sm.transfers_evict(s->opts().transfers_resident_max / 10, sm.timestamp_last());
    }
  }
  require_verify_consistent(dir.path);
  auto s = open_ok(store_options(dir.path));
  state_machine loaded;
  REQUIRE(s->load(loaded).ok());
  require_same_accounts(sm, loaded);
  CHECK(loaded.timestamp_last() == sm.timestamp_last());
  for (u128 id : pendings) {
    pending_state on_disk;
    REQUIRE(s->lookup_pending(id, on_disk).ok());
    const pending_state in_memory = sm.pending_find(id);
    if (in_memory.status != pending_status::none) CHECK(on_disk.status == in_memory.status);
    if (on_disk.status == pending_status::pending) CHECK(loaded.pending_find(id).status == pending_status::pending);
  }
}

TEST_CASE("a full map returns map_full and leaves the store consistent and usable", "[store]") {
  temp_dir dir;
  ks::options o = store_options(dir.path);
  o.map_size_bytes = 1u << 20;
  {
    auto s = open_ok(o);
    state_machine sm;
    REQUIRE(s->load(sm).ok());
    create_accounts(sm, {make_account(1), make_account(2)});
    std::vector<transfer> small{make_transfer(1, 1, 2, 5)};
    apply(*s, sm, small);
    commit_ok(*s, sm);

    std::vector<transfer> big;
    for (u128 id = 100; id < 100 + 20'000; ++id) big.push_back(make_transfer(id, 1, 2, 1));
    apply(*s, sm, big);
    ks::error err = s->commit(sm.changes_take());
    REQUIRE(err.code == ks::errc::map_full);
    CHECK_THAT(err.message, Catch::Contains("raise store.map_size_mib"));
    CHECK(s->commit_sequence() == 1);

    // The caller rebuilds its state from disk and goes on with a smaller commit.
    state_machine rebuilt;
    REQUIRE(s->load(rebuilt).ok());
    CHECK(rebuilt.account_find(1)->debits_posted == 5);
    REQUIRE(apply(*s, rebuilt, {make_transfer(2, 1, 2, 7)}).at(0) == transfer_result::ok);
    commit_ok(*s, rebuilt);
    CHECK(s->commit_sequence() == 2);
  }
  require_verify_consistent(dir.path);
  auto s = open_ok(o);
  state_machine sm;
  REQUIRE(s->load(sm).ok());
  CHECK(sm.account_find(1)->debits_posted == 12);
}

TEST_CASE("verify reports a tampered account row as inconsistent", "[store]") {
  temp_dir dir;
  {
    auto s = open_ok(store_options(dir.path));
    state_machine sm;
    create_accounts(sm, {make_account(1), make_account(2)});
    apply(*s, sm, {make_transfer(10, 1, 2, 100)});
    commit_ok(*s, sm);
  }
  require_verify_consistent(dir.path);
  // Give account 1 a debit that no transfer explains.
  tamper_account_row(dir.path, 1, [](account& a) { a.debits_posted += 1; });
  ks::verify_report r = ks::verify(dir.path);
  INFO(r.summary);
  CHECK_FALSE(r.consistent);
  CHECK_THAT(r.summary, Catch::StartsWith("verify: INCONSISTENT: 2 problems"));
  REQUIRE(r.problems.size() == 2);
  CHECK_THAT(r.problems[0], Catch::Contains("account 1 has debits_posted 101"));
  CHECK_THAT(r.problems[1], Catch::Contains("ledger 1: debits_posted 101 != credits_posted 100"));
}

TEST_CASE("verify reports a transfer missing from its indexes", "[store]") {
  temp_dir dir;
  {
    auto s = open_ok(store_options(dir.path));
    state_machine sm;
    create_accounts(sm, {make_account(1), make_account(2)});
    apply(*s, sm, {make_transfer(10, 1, 2, 100), make_transfer(11, 2, 1, 1)});
    commit_ok(*s, sm);
  }
  {
    raw_lmdb raw(dir.path);
    ks::layout::key_id key(11);
    MDB_val k{sizeof key, &key};
    REQUIRE(mdb_del(raw.txn, raw.dbi(ks::layout::dbi_transfer_ids), &k, nullptr) == 0);
    raw.commit();
  }
  ks::verify_report r = ks::verify(dir.path);
  CHECK_FALSE(r.consistent);
  REQUIRE(r.problems.size() == 1);
  CHECK_THAT(r.problems[0], Catch::Contains("transfer_ids: missing row (11,"));
}

TEST_CASE("a repeated transfer id resolves to exists after the transfer left memory", "[store]") {
  temp_dir dir;
  auto s = open_ok(store_options(dir.path));
  state_machine sm;
  create_accounts(sm, {make_account(1), make_account(2)});
  REQUIRE(apply(*s, sm, {make_transfer(10, 1, 2, 100)}).at(0) == transfer_result::ok);
  REQUIRE(apply(*s, sm, {make_transfer(11, 1, 2, 50, transfer_pending)}).at(0) == transfer_result::ok);
  REQUIRE(apply(*s, sm, {make_resolve(12, 11, transfer_post_pending)}).at(0) == transfer_result::ok);
  commit_ok(*s, sm);
  sm.transfers_evict(0, sm.timestamp_last());
  REQUIRE(sm.transfer_find(10) == nullptr);
  REQUIRE(sm.transfer_find(11) == nullptr);

  auto rs = apply(*s, sm, {make_transfer(10, 1, 2, 100), make_transfer(10, 1, 2, 99),
                           make_resolve(13, 11, transfer_void_pending)});
  CHECK(rs[0] == transfer_result::exists);
  CHECK(rs[1] == transfer_result::exists_with_different_amount);
  CHECK(rs[2] == transfer_result::pending_transfer_already_posted);
  CHECK(sm.changes().empty());
}

TEST_CASE("open refuses a store written by a newer format", "[store]") {
  temp_dir dir;
  { open_ok(store_options(dir.path)); }
  {
    raw_lmdb raw(dir.path);
    const char* key = ks::layout::meta_format_version;
    uint64_t version = ks::layout::format_version + 1;
    MDB_val k{std::strlen(key), const_cast<char*>(key)}, v{8, &version};
    REQUIRE(mdb_put(raw.txn, raw.dbi(ks::layout::dbi_meta), &k, &v, 0) == 0);
    raw.commit();
  }
  ks::error err;
  CHECK_FALSE(ks::store::open(store_options(dir.path), err));
  CHECK(err.code == ks::errc::version_mismatch);
  CHECK_THAT(err.message, Catch::Contains("format version " + std::to_string(ks::layout::format_version + 1)));
}

TEST_CASE("open refuses a store whose meta disagrees with its journal", "[store]") {
  temp_dir dir;
  {
    auto s = open_ok(store_options(dir.path));
    state_machine sm;
    create_accounts(sm, {make_account(1), make_account(2)});
    commit_ok(*s, sm);
  }
  {
    raw_lmdb raw(dir.path);
    const char* key = ks::layout::meta_commit_sequence;
    uint64_t sequence = 7;
    MDB_val k{std::strlen(key), const_cast<char*>(key)}, v{8, &sequence};
    REQUIRE(mdb_put(raw.txn, raw.dbi(ks::layout::dbi_meta), &k, &v, 0) == 0);
    raw.commit();
  }
  ks::error err;
  CHECK_FALSE(ks::store::open(store_options(dir.path), err));
  CHECK(err.code == ks::errc::corrupt);
  CHECK_THAT(err.message, Catch::Contains("disagrees with meta"));
  CHECK_FALSE(ks::verify(dir.path).consistent);
}

TEST_CASE("open creates a missing directory and refuses an empty path", "[store]") {
  temp_dir dir;
  auto s = open_ok(store_options(dir.path + "/a/b"));
  CHECK(s->commit_sequence() == 0);
  ks::error err;
  CHECK_FALSE(ks::store::open(store_options(""), err));
  CHECK(err.code == ks::errc::invalid_argument);
}

TEST_CASE("a repeated transfer id resolves to exists after a restart", "[store]") {
  temp_dir dir;
  {
    auto s = open_ok(store_options(dir.path));
    state_machine sm;
    create_accounts(sm, {make_account(1), make_account(2)});
    REQUIRE(apply(*s, sm, {make_transfer(10, 1, 2, 100)}).at(0) == transfer_result::ok);
    REQUIRE(apply(*s, sm, {make_transfer(11, 1, 2, 50, transfer_pending)}).at(0) == transfer_result::ok);
    REQUIRE(apply(*s, sm, {make_resolve(12, 11, transfer_void_pending)}).at(0) == transfer_result::ok);
    commit_ok(*s, sm);
  }
  auto s = open_ok(store_options(dir.path));
  state_machine sm;
  REQUIRE(s->load(sm).ok());
  auto rs = apply(*s, sm, {make_transfer(10, 1, 2, 100), make_resolve(12, 11, transfer_void_pending),
                           make_resolve(13, 11, transfer_post_pending), make_transfer(14, 1, 2, 1)});
  CHECK(rs[0] == transfer_result::exists);
  CHECK(rs[1] == transfer_result::exists);
  CHECK(rs[2] == transfer_result::pending_transfer_already_voided);
  CHECK(rs[3] == transfer_result::ok);
  commit_ok(*s, sm);
  CHECK(sm.account_find(1)->debits_posted == 101);
}

TEST_CASE("transfers_by_id lists the stored transfers of an id range in id order, a page at a time", "[store]") {
  temp_dir dir;
  state_machine sm;
  auto s = open_ok(store_options(dir.path, ks::durability::none));
  REQUIRE(s->load(sm).ok());
  create_accounts(sm, {make_account(1), make_account(2)});
  // Ids out of order across two commits, some outside the range, one at the range's end.
  const u128 base = make_u128(7, 0);
  for (auto r : apply(*s, sm, {make_transfer(base + 30, 1, 2, 3), make_transfer(base + 10, 1, 2, 1),
                               make_transfer(base - 1, 1, 2, 9)}))
    REQUIRE(r == transfer_result::ok);
  commit_ok(*s, sm);
  for (auto r : apply(*s, sm, {make_transfer(base + 20, 1, 2, 2), make_transfer(base + 40, 1, 2, 4),
                               make_transfer(make_u128(8, 0), 1, 2, 5)}))
    REQUIRE(r == transfer_result::ok);
  commit_ok(*s, sm);

  std::vector<transfer> out;
  REQUIRE(s->transfers_by_id(base, make_u128(8, 0), 100, out).ok());
  REQUIRE(out.size() == 4);
  for (size_t i = 0; i < out.size(); ++i) {
    CHECK(out[i].id == base + 10 * (i + 1));
    CHECK(out[i].amount == i + 1);
  }
  // Pages: `limit` at most, then from after the last one.
  REQUIRE(s->transfers_by_id(base, make_u128(8, 0), 3, out).ok());
  REQUIRE(out.size() == 3);
  CHECK(out.back().id == base + 30);
  REQUIRE(s->transfers_by_id(out.back().id + 1, make_u128(8, 0), 3, out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].id == base + 40);
  // An empty or inverted range holds nothing.
  REQUIRE(s->transfers_by_id(base + 41, make_u128(8, 0), 3, out).ok());
  CHECK(out.empty());
  REQUIRE(s->transfers_by_id(base + 20, base + 20, 3, out).ok());
  CHECK(out.empty());
  // The end is exclusive.
  REQUIRE(s->transfers_by_id(base + 10, base + 20, 3, out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].id == base + 10);
}
