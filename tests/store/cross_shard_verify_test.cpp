// kassa verify across shards: the clearing account of shard A for shard B mirrors B's for A.
// Two real shard stores are written through the state machine with system-marked events, as
// the directory writes the legs of a transfer between shards, then verified.
#include <catch2/catch.hpp>

#include <map>

#include "ledger/store/verify.hpp"
#include "ledger/system_ids.hpp"
#include "tests/store/store_fixture.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;
namespace ks = kassa::ledger::store;
namespace sys = kassa::ledger::system_ids;

namespace {

constexpr uint32_t ledger_id = 1;
constexpr uint64_t now = 1'000'000'000'000;

// Accounts and transfers of one shard, every event marked as kassa's own.
struct shard_store {
  temp_dir dir;
  std::unique_ptr<ks::store> store;
  state_machine sm;
  uint64_t sequence = 0;

  shard_store() {
    ks::error err;
    store = ks::store::open(store_options(dir.path), err);
    INFO(err.message);
    REQUIRE(store);
  }

  void accounts(std::vector<account> as) {
    const std::vector<uint8_t> system(as.size(), 1);
    for (auto r : sm.create_accounts(as.data(), as.size(), now, system.data()))
      REQUIRE(r == account_result::ok);
    commit_ok(*store, sm);
  }

  void transfer_posted(u128 debit, u128 credit, u128 amount) {
    std::vector<transfer> ts{make_transfer(sys::transfer(++sequence), debit, credit, amount)};
    const std::vector<uint8_t> system(ts.size(), 1);
    REQUIRE(store->prefetch(sm, ts.data(), ts.size()).ok());
    for (auto r : sm.create_transfers(ts.data(), ts.size(), now + sequence, system.data()))
      REQUIRE(r == transfer_result::ok);
    commit_ok(*store, sm);
  }

  // Closes the store and verifies it on its own; returns its clearing rows.
  std::vector<account> verified() {
    store.reset();
    ks::verify_report r = ks::verify(dir.path);
    INFO(r.summary);
    for (const auto& p : r.problems) UNSCOPED_INFO(p);
    REQUIRE(r.consistent);
    return r.clearing;
  }
};

account clearing_account(uint32_t from, uint32_t to) {
  return make_account(sys::clearing(from, to, ledger_id), ledger_id, 0, sys::clearing_code);
}

// Shard 0 holds account 1 and clearing(0 -> 1); shard 1 holds account 2 and clearing(1 -> 0).
// Money moves from 1 to 2 as two legs: 1 -> clearing(0 -> 1) in shard 0 and
// clearing(1 -> 0) -> 2 in shard 1, of the amounts given.
std::map<uint32_t, std::vector<account>> two_shards(u128 leg_0, u128 leg_1,
                                                    bool counterpart = true) {
  shard_store s0, s1;
  s0.accounts({make_account(1, ledger_id), clearing_account(0, 1)});
  s1.accounts(counterpart ? std::vector<account>{make_account(2, ledger_id), clearing_account(1, 0)}
                          : std::vector<account>{make_account(2, ledger_id)});
  if (leg_0 != 0) s0.transfer_posted(1, sys::clearing(0, 1, ledger_id), leg_0);
  if (leg_1 != 0 && counterpart) s1.transfer_posted(sys::clearing(1, 0, ledger_id), 2, leg_1);
  return {{0, s0.verified()}, {1, s1.verified()}};
}

std::string problems_of(const ks::cross_shard_report& r) {
  std::string out;
  for (const auto& p : r.problems) out += p + "\n";
  return out;
}

} // namespace

TEST_CASE("clearing accounts whose legs match across two shards are consistent", "[store]") {
  const auto clearing = two_shards(100, 100);
  REQUIRE(clearing.at(0).size() == 1);
  REQUIRE(clearing.at(1).size() == 1);
  CHECK(clearing.at(0)[0].credits_posted == 100);
  CHECK(clearing.at(1)[0].debits_posted == 100);

  const ks::cross_shard_report r = ks::verify_clearing(clearing, 0);
  INFO(problems_of(r));
  CHECK(r.consistent);
  CHECK(r.pairs == 1);
  CHECK(r.shards == 2);
  CHECK(r.summary == "cross-shard: consistent: 1 clearing pair across 2 shards mirror each other");
}

TEST_CASE("a credit leg smaller than its debit leg makes the shards inconsistent", "[store]") {
  const ks::cross_shard_report r = ks::verify_clearing(two_shards(100, 90), 0);
  CHECK_FALSE(r.consistent);
  CHECK(r.problems_total == 1);
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0] == "clearing(0 -> 1, ledger 1) has credits_posted 100 but "
                         "clearing(1 -> 0, ledger 1) has debits_posted 90; they must be equal");
  CHECK(r.summary.rfind("cross-shard: INCONSISTENT: 1 problem ", 0) == 0);
}

TEST_CASE("a leg written in one shard only is a problem unless sagas are still open", "[store]") {
  const auto clearing = two_shards(100, 0);
  const ks::cross_shard_report closed = ks::verify_clearing(clearing, 0);
  CHECK_FALSE(closed.consistent);
  CHECK_THAT(problems_of(closed), Catch::Contains("has credits_posted 100 but clearing(1 -> 0, "
                                                 "ledger 1) has debits_posted 0"));

  // With sagas in the log the next start finishes them: not an inconsistency.
  const ks::cross_shard_report open = ks::verify_clearing(clearing, 2);
  CHECK(open.consistent);
  CHECK(open.pairs == 0);
  CHECK(open.summary.rfind("cross-shard: 2 sagas open; they are finished at the next start", 0) == 0);
}

TEST_CASE("a clearing account with a balance and no counterpart is a problem", "[store]") {
  const ks::cross_shard_report r = ks::verify_clearing(two_shards(100, 0, false), 0);
  CHECK_FALSE(r.consistent);
  REQUIRE(r.problems.size() == 1);
  CHECK_THAT(r.problems[0], Catch::Contains("clearing(0 -> 1, ledger 1) in shard 0 has "
                                            "debits_posted 0, credits_posted 100"));
  CHECK_THAT(r.problems[0], Catch::Contains("shard 1 holds no clearing(1 -> 0, ledger 1)"));

  // Without a balance a lone clearing account is fine: it may just have been created.
  const ks::cross_shard_report idle = ks::verify_clearing(two_shards(0, 0, false), 0);
  INFO(problems_of(idle));
  CHECK(idle.consistent);
  CHECK(idle.pairs == 0);

  // The counterpart's shard missing from the store altogether.
  auto lone = two_shards(100, 0, false);
  lone.erase(1);
  const ks::cross_shard_report missing = ks::verify_clearing(lone, 0);
  CHECK_THAT(problems_of(missing), Catch::Contains("shard 1 is not in this store"));
}

TEST_CASE("a clearing account stored in the wrong shard is a problem, sagas open or not", "[store]") {
  auto clearing = two_shards(100, 100);
  std::swap(clearing.at(0), clearing.at(1));
  for (uint64_t sagas : {0, 3}) {
    const ks::cross_shard_report r = ks::verify_clearing(clearing, sagas);
    CHECK_FALSE(r.consistent);
    CHECK_THAT(problems_of(r), Catch::Contains("clearing(1 -> 0, ledger 1) is stored in shard 0, "
                                               "not in shard 1"));
  }
}

TEST_CASE("one shard and no clearing accounts are consistent across shards", "[store]") {
  shard_store s;
  s.accounts({make_account(1, ledger_id), make_account(2, ledger_id)});
  s.transfer_posted(1, 2, 5);
  const ks::cross_shard_report r = ks::verify_clearing({{0, s.verified()}}, 0);
  CHECK(r.consistent);
  CHECK(r.pairs == 0);
  CHECK(r.summary == "cross-shard: consistent: 0 clearing pairs across 1 shard mirror each other");
}
