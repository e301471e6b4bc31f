// The pure part of a split account's history: merging its rows into one order, and its
// aggregate balance after each record, with sweeps across shards counted once.
#include <catch2/catch.hpp>

#include "actors/split_history.hpp"

using namespace kassa;
using namespace kassa::ledger;
namespace sh = kassa::actors::split_history;

namespace {

transfer at(uint64_t id, uint64_t timestamp) {
  transfer t{};
  t.id = id;
  t.timestamp = timestamp;
  return t;
}

account_balance snap(uint64_t timestamp, u128 debits_posted, u128 credits_posted) {
  account_balance b{};
  b.timestamp = timestamp;
  b.debits_posted = debits_posted;
  b.credits_posted = credits_posted;
  return b;
}

std::vector<uint64_t> ids(const std::vector<sh::record>& records) {
  std::vector<uint64_t> out;
  for (const auto& r : records) out.push_back(static_cast<uint64_t>(r.transfer.id));
  return out;
}

} // namespace

TEST_CASE("rows merge into timestamp order, equal timestamps by shard", "[split_history]") {
  std::vector<sh::row_transfers> rows{{0, {at(1, 10), at(2, 30), at(3, 50)}},
                                      {2, {at(4, 20), at(5, 30)}},
                                      {1, {at(6, 30), at(7, 60)}}};
  CHECK(ids(sh::merge(rows, 100, false)) == std::vector<uint64_t>{1, 4, 2, 6, 5, 3, 7});
  CHECK(ids(sh::merge(rows, 3, false)) == std::vector<uint64_t>{1, 4, 2});
  std::vector<sh::row_transfers> down{{0, {at(3, 50), at(2, 30), at(1, 10)}},
                                      {2, {at(5, 30), at(4, 20)}},
                                      {1, {at(7, 60), at(6, 30)}}};
  CHECK(ids(sh::merge(down, 100, true)) == std::vector<uint64_t>{7, 3, 5, 6, 2, 4, 1});
  CHECK(ids(sh::merge(down, 2, true)) == std::vector<uint64_t>{7, 3});
  CHECK(sh::merge({}, 5, false).empty());
}

TEST_CASE("a split account's balance adds what its sub-accounts hold at that point", "[split_history]") {
  // The account (shard 0): a debit of 5 at 20. Sub-account (shard 1): credits 10 at 10, 7 at 30.
  sh::row_balances own{0, {snap(20, 5, 0)}};
  std::vector<sh::row_balances> subs{{1, {snap(10, 0, 10), snap(30, 0, 17)}}};
  account_balance b;
  REQUIRE(sh::aggregate_at({10, 1}, own, subs, {}, b));
  CHECK((b.credits_posted == 10 && b.debits_posted == 0 && b.timestamp == 10));
  REQUIRE(sh::aggregate_at({20, 0}, own, subs, {}, b));
  CHECK((b.credits_posted == 10 && b.debits_posted == 5));
  REQUIRE(sh::aggregate_at({30, 1}, own, subs, {}, b));
  CHECK((b.credits_posted == 17 && b.debits_posted == 5));
}

TEST_CASE("a sweep across shards counts once between its legs, in either order", "[split_history]") {
  // Sub-account (shard 1) takes 10 at 10; a sweep moves it: debit leg at 40 in shard 1, credit
  // leg at 50 in shard 0. The account's client debits of 1 at 45 and of 2 at 60 see 10 held.
  std::vector<sh::row_balances> subs{{1, {snap(10, 0, 10), snap(40, 10, 10)}}};
  sh::row_balances own{0, {snap(45, 1, 0), snap(50, 1, 10), snap(60, 3, 10)}};
  std::vector<sh::sweep> sweeps{{{40, 1}, {50, 0}, 10}};
  account_balance b;
  for (uint64_t t : {45, 60}) {
    REQUIRE(sh::aggregate_at({t, 0}, own, subs, sweeps, b));
    CHECK(b.credits_posted == 10);
  }
  // The credit leg first (at 40 in shard 0), the debit leg later (at 50 in shard 1).
  std::vector<sh::row_balances> subs2{{1, {snap(10, 0, 10), snap(50, 10, 10)}}};
  sh::row_balances own2{0, {snap(40, 0, 10), snap(45, 1, 10)}};
  std::vector<sh::sweep> sweeps2{{{50, 1}, {40, 0}, 10}};
  REQUIRE(sh::aggregate_at({45, 0}, own2, subs2, sweeps2, b));
  CHECK((b.credits_posted == 10 && b.debits_posted == 1));
  // A sweep whose credit leg has not been applied yet.
  std::vector<sh::sweep> open{{{40, 1}, {UINT64_MAX, 0}, 10}};
  sh::row_balances none{0, {snap(45, 1, 0)}};
  REQUIRE(sh::aggregate_at({45, 0}, none, subs, open, b));
  CHECK(b.credits_posted == 10);
}
