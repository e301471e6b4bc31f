// Account rows are checkpoints and account_transfers is a bulk index: between checkpoints the
// journal is the truth, and a reopened store must answer exactly as the one that wrote it.
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

constexpr uint64_t second_ns = 1'000'000'000;

std::unique_ptr<ks::store> open_ok(const ks::options& o) {
  ks::error err;
  auto s = ks::store::open(o, err);
  INFO(err.message);
  REQUIRE(s);
  return s;
}

// Checkpoints and bulk indexes only when the test says so, and never at close.
ks::options rare_checkpoints(const std::string& path) {
  ks::options o = store_options(path);
  o.checkpoint_commits_max = 1'000'000;
  o.index_commits_max = 1'000'000;
  o.checkpoint_on_close = false;
  return o;
}


void require_verify_consistent(const std::string& path) {
  ks::verify_report r = ks::verify(path);
  INFO(r.summary);
  for (const auto& p : r.problems) UNSCOPED_INFO(p);
  REQUIRE(r.consistent);
}

std::vector<u128> ids_of(const std::vector<transfer>& ts) {
  std::vector<u128> ids;
  for (const transfer& t : ts) ids.push_back(t.id);
  return ids;
}

} // namespace

TEST_CASE("account rows written at a checkpoint plus journal replay give the same balances as "
          "before the crash",
          "[store]") {
  const uint64_t seed = kassa::test::seed("store checkpoint replay");
  std::mt19937_64 rng(seed);
  temp_dir dir;
  ks::options o = store_options(dir.path);
  o.checkpoint_commits_max = 7; // a crash lands between checkpoints
  o.index_commits_max = 5;
  o.checkpoint_on_close = false; // the store is dropped as if killed
  state_machine sm;
  uint64_t now = 1'000 * second_ns;
  const uint32_t accounts_count = 12;
  std::vector<u128> open_pending;
  u128 next_id = 1000;
  {
    auto s = open_ok(o);
    std::vector<account> as;
    for (uint32_t i = 1; i <= accounts_count; ++i)
      as.push_back(make_account(i, 1, i % 5 == 0 ? account_history : 0));
    for (auto r : sm.create_accounts(as.data(), as.size(), now)) REQUIRE(r == account_result::ok);
    commit_ok(*s, sm);

    // A closing pending transfer that expires, then, in the same group, another closing one
    // on the same account: replay must expire the first before applying the second.
    transfer first = make_transfer(next_id++, 1, 2, 10, transfer_pending | transfer_closing_debit);
    first.timeout = 1;
    REQUIRE(apply(*s, sm, {first}, now).at(0) == transfer_result::ok);
    commit_ok(*s, sm);
    now += 2 * second_ns;
    REQUIRE(sm.expire_pending(now) == 1);
    transfer second = make_transfer(next_id++, 1, 3, 20, transfer_pending | transfer_closing_debit);
    REQUIRE(apply(*s, sm, {make_transfer(next_id++, 4, 5, 1), second}, now).at(1) ==
            transfer_result::ok);
    commit_ok(*s, sm);
    REQUIRE(has(sm.account_find(1)->flags, account_closed));

    // Then random groups: plain, pending (some expiring), posts (partial too) and voids,
    // between accounts 2..12 (account 1 stays closed).
    const int commits = 10 + int(rng() % 20);
    for (int c = 0; c < commits; ++c) {
      now += second_ns / 2;
      sm.expire_pending(now);
      std::vector<transfer> batch;
      const size_t size = 1 + rng() % 40;
      for (size_t i = 0; i < size; ++i) {
        const uint64_t kind = rng() % 10;
        if (kind >= 8 && !open_pending.empty()) {
          const size_t pick = rng() % open_pending.size();
          batch.push_back(make_resolve(next_id++, open_pending[pick],
                                       kind == 8 ? transfer_post_pending : transfer_void_pending,
                                       kind == 8 ? rng() % 3 : 0));
          open_pending[pick] = open_pending.back();
          open_pending.pop_back();
          continue;
        }
        const u128 debit = 2 + rng() % (accounts_count - 1);
        u128 credit = 2 + rng() % (accounts_count - 1);
        if (credit == debit) credit = debit == accounts_count ? 2 : debit + 1;
        transfer t = make_transfer(next_id++, debit, credit, 1 + rng() % 100);
        if (kind >= 5) {
          t.flags = transfer_pending;
          if (kind == 5) t.timeout = 1;
          else open_pending.push_back(t.id);
        }
        batch.push_back(t);
      }
      apply(*s, sm, batch, now); // outcomes vary (posting an expired one fails): persist them
      commit_ok(*s, sm);
    }
    if (s->checkpoint_timestamp() == sm.timestamp_last()) { // ended on a checkpoint: one more
      REQUIRE(apply(*s, sm, {make_transfer(next_id++, 2, 3, 1)}, now).at(0) == transfer_result::ok);
      commit_ok(*s, sm);
    }
    REQUIRE(s->checkpoint_timestamp() < sm.timestamp_last()); // rows on disk are behind
  }
  require_verify_consistent(dir.path);

  auto s = open_ok(o);
  state_machine loaded;
  REQUIRE(s->load(loaded).ok());
  require_same_accounts(sm, loaded);
  CHECK(loaded.timestamp_last() == sm.timestamp_last());
  // lookup_accounts brings the checkpointed rows forward too.
  std::vector<u128> ids;
  for (uint32_t i = 1; i <= accounts_count; ++i) ids.push_back(i);
  std::vector<account> found;
  REQUIRE(s->lookup_accounts(ids.data(), ids.size(), found).ok());
  REQUIRE(found.size() == accounts_count);
  for (const account& a : found) CHECK(std::memcmp(&a, sm.account_find(a.id), sizeof a) == 0);

  // A checkpoint writes exactly the replayed rows.
  REQUIRE(s->checkpoint().ok());
  CHECK(s->checkpoint_timestamp() == sm.timestamp_last());
  s.reset();
  require_verify_consistent(dir.path);
  s = open_ok(o);
  state_machine again;
  REQUIRE(s->load(again).ok());
  require_same_accounts(sm, again);
}

TEST_CASE("get_account_transfers returns transfers not yet indexed", "[store]") {
  temp_dir dir;
  ks::options o = rare_checkpoints(dir.path);
  auto s = open_ok(o);
  state_machine sm;
  std::vector<account> as{make_account(1), make_account(2), make_account(3)};
  for (auto r : sm.create_accounts(as.data(), as.size(), 1000)) REQUIRE(r == account_result::ok);
  commit_ok(*s, sm);
  // 10, 11 indexed by a checkpoint; 12, 13 and 14 only in the journal.
  apply(*s, sm, {make_transfer(10, 1, 2, 1), make_transfer(11, 2, 3, 1)}, 2000);
  commit_ok(*s, sm);
  REQUIRE(s->checkpoint().ok());
  CHECK(s->account_transfers_indexed() == sm.transfer_find(11)->timestamp);
  apply(*s, sm, {make_transfer(12, 3, 1, 1), make_transfer(13, 1, 3, 1)}, 3000);
  commit_ok(*s, sm);
  apply(*s, sm, {make_transfer(14, 2, 1, 1)}, 4000);
  commit_ok(*s, sm);
  CHECK(s->account_transfers_indexed() < sm.transfer_find(12)->timestamp);

  ks::account_filter f;
  f.account_id = 1;
  f.limit = 10;
  std::vector<transfer> got;
  REQUIRE(s->account_transfers(f, got).ok());
  CHECK(ids_of(got) == std::vector<u128>{10, 12, 13, 14});
  f.reversed = true;
  REQUIRE(s->account_transfers(f, got).ok());
  CHECK(ids_of(got) == std::vector<u128>{14, 13, 12, 10});
  f.limit = 2; // the limit counts across the journal tail and the index
  REQUIRE(s->account_transfers(f, got).ok());
  CHECK(ids_of(got) == std::vector<u128>{14, 13});
  f.reversed = false;
  REQUIRE(s->account_transfers(f, got).ok());
  CHECK(ids_of(got) == std::vector<u128>{10, 12});
  f.limit = 10;
  f.debits = false; // credits only
  REQUIRE(s->account_transfers(f, got).ok());
  CHECK(ids_of(got) == std::vector<u128>{12, 14});
  f.debits = true;
  f.timestamp_min = sm.transfer_find(12)->timestamp + 1; // a range inside the tail
  f.timestamp_max = sm.transfer_find(13)->timestamp;
  REQUIRE(s->account_transfers(f, got).ok());
  CHECK(ids_of(got) == std::vector<u128>{13});

  // After a reopen the tail is still answered, and a bulk index makes no difference.
  s.reset();
  require_verify_consistent(dir.path);
  s = open_ok(o);
  f.timestamp_min = f.timestamp_max = 0;
  REQUIRE(s->account_transfers(f, got).ok());
  CHECK(ids_of(got) == std::vector<u128>{10, 12, 13, 14});
  REQUIRE(s->checkpoint().ok());
  CHECK(s->account_transfers_indexed() == sm.transfer_find(14)->timestamp);
  REQUIRE(s->account_transfers(f, got).ok());
  CHECK(ids_of(got) == std::vector<u128>{10, 12, 13, 14});
  s.reset();
  require_verify_consistent(dir.path);
}

TEST_CASE("a store reopened between checkpoints answers exists for old ids", "[store]") {
  temp_dir dir;
  ks::options o = rare_checkpoints(dir.path);
  state_machine sm;
  {
    auto s = open_ok(o);
    std::vector<account> as{make_account(1), make_account(2)};
    for (auto r : sm.create_accounts(as.data(), as.size(), 1000)) REQUIRE(r == account_result::ok);
    commit_ok(*s, sm);
    REQUIRE(apply(*s, sm, {make_transfer(10, 1, 2, 100)}, 2000).at(0) == transfer_result::ok);
    commit_ok(*s, sm);
    REQUIRE(apply(*s, sm, {make_transfer(11, 1, 2, 50, transfer_pending)}, 3000).at(0) ==
            transfer_result::ok);
    REQUIRE(apply(*s, sm, {make_resolve(12, 11, transfer_post_pending, 20)}, 3000).at(0) ==
            transfer_result::ok);
    commit_ok(*s, sm);
    CHECK(s->checkpoint_timestamp() < sm.timestamp_last());
  }
  auto s = open_ok(o);
  state_machine loaded;
  REQUIRE(s->load(loaded).ok());
  require_same_accounts(sm, loaded);
  auto rs = apply(*s, loaded,
                  {make_transfer(10, 1, 2, 100), make_transfer(11, 1, 2, 50, transfer_pending),
                   make_resolve(12, 11, transfer_post_pending, 20),
                   make_resolve(13, 11, transfer_void_pending), make_transfer(14, 1, 2, 1)},
                  4000);
  CHECK(rs[0] == transfer_result::exists);
  CHECK(rs[1] == transfer_result::exists);
  CHECK(rs[2] == transfer_result::exists);
  CHECK(rs[3] == transfer_result::pending_transfer_already_posted);
  CHECK(rs[4] == transfer_result::ok);
  commit_ok(*s, loaded);
  CHECK(loaded.account_find(1)->debits_posted == 121);
  s.reset();
  require_verify_consistent(dir.path);
}

TEST_CASE("verify reports an account row that the journal after the checkpoint does not explain",
          "[store]") {
  temp_dir dir;
  ks::options o = rare_checkpoints(dir.path);
  {
    auto s = open_ok(o);
    state_machine sm;
    std::vector<account> as{make_account(1), make_account(2)};
    for (auto r : sm.create_accounts(as.data(), as.size(), 1000)) REQUIRE(r == account_result::ok);
    commit_ok(*s, sm);
    apply(*s, sm, {make_transfer(10, 1, 2, 100)}, 2000);
    commit_ok(*s, sm);
  }
  require_verify_consistent(dir.path);
  // Pretend a checkpoint already holds transfer 10: replaying it again doubles it.
  tamper_account_row(dir.path, 1, [](account& a) { a.debits_posted = 100; });
  ks::verify_report r = ks::verify(dir.path);
  CHECK_FALSE(r.consistent);
  REQUIRE_FALSE(r.problems.empty());
  CHECK_THAT(r.problems[0], Catch::Contains("account 1 has debits_posted 200"));
}

TEST_CASE("a version 1 store opens as a checkpoint at its last commit", "[store]") {
  temp_dir dir;
  state_machine sm;
  {
    auto s = open_ok(store_options(dir.path));
    std::vector<account> as{make_account(1), make_account(2)};
    for (auto r : sm.create_accounts(as.data(), as.size(), 1000)) REQUIRE(r == account_result::ok);
    apply(*s, sm, {make_transfer(10, 1, 2, 100)}, 2000);
    commit_ok(*s, sm);
  }
  {
    // What version 1 had: no watermarks, rows and index complete.
    raw_lmdb raw(dir.path);
    MDB_dbi meta = raw.dbi(ks::layout::dbi_meta);
    for (const char* key : {ks::layout::meta_accounts_checkpoint_timestamp,
                            ks::layout::meta_account_transfers_indexed}) {
      MDB_val k{std::strlen(key), const_cast<char*>(key)};
      REQUIRE(mdb_del(raw.txn, meta, &k, nullptr) == 0);
    }
    const char* key = ks::layout::meta_format_version;
    uint64_t version = 1;
    MDB_val k{std::strlen(key), const_cast<char*>(key)}, v{8, &version};
    REQUIRE(mdb_put(raw.txn, meta, &k, &v, 0) == 0);
    raw.commit();
  }
  auto s = open_ok(store_options(dir.path));
  CHECK(s->checkpoint_timestamp() == sm.timestamp_last());
  state_machine loaded;
  REQUIRE(s->load(loaded).ok());
  require_same_accounts(sm, loaded);
  s.reset();
  require_verify_consistent(dir.path);
}
