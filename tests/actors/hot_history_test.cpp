// The history of a split hot account through the directory: get_account_transfers and
// get_account_balances list what one account would, whatever sub-account a credit landed on,
// in whichever shard, swept or not. Tagged [directory][hot].
#include <catch2/catch.hpp>

#include <thread>

#include "ledger/system_ids.hpp"
#include "tests/actors/directory_node.hpp"
#include "tests/ledger/ledger_fixture.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::ledger;
using namespace kassa::test;
namespace sid = kassa::ledger::system_ids;

namespace {

// What one unsplit account would show after each of its transfers, in order.
struct expected {
  explicit expected(u128 id) : account(id) {}
  u128 account = 0;
  std::vector<u128> ids;
  std::vector<account_balance> balances;
  account_balance now{};
  void add(const transfer& t) {
    ids.push_back(t.id);
    if (t.debit_account_id == account) now.debits_posted += t.amount;
    if (t.credit_account_id == account) now.credits_posted += t.amount;
    balances.push_back(now);
  }
};

store::account_filter filter_of(u128 id, uint32_t limit, bool reversed) {
  store::account_filter f;
  f.account_id = id;
  f.limit = limit;
  f.reversed = reversed;
  return f;
}

// Pages as a client does: from the last timestamp + 1 (or - 1) while a page is full.
std::vector<transfer> transfers_paged(node& nd, store::account_filter f) {
  std::vector<transfer> out;
  for (int pages = 0; pages < 1000; ++pages) {
    auto r = nd.ask<transfers_reply>(nd.directory, account_transfers_request{{}, f});
    REQUIRE(r.status == outcome::ok);
    out.insert(out.end(), r.transfers.begin(), r.transfers.end());
    if (r.transfers.size() < f.limit) break;
    if (f.reversed) f.timestamp_max = r.transfers.back().timestamp - 1;
    else f.timestamp_min = r.transfers.back().timestamp + 1;
  }
  return out;
}
std::vector<account_balance> balances_paged(node& nd, store::account_filter f) {
  std::vector<account_balance> out;
  for (int pages = 0; pages < 1000; ++pages) {
    auto r = nd.ask<balances_reply>(nd.directory, account_balances_request{{}, f});
    REQUIRE(r.status == outcome::ok);
    out.insert(out.end(), r.balances.begin(), r.balances.end());
    if (r.balances.size() < f.limit) break;
    if (f.reversed) f.timestamp_max = r.balances.back().timestamp - 1;
    else f.timestamp_min = r.balances.back().timestamp + 1;
  }
  return out;
}

// The account's history, whole and in pages of 1, 2 and 5 either way, is `want`'s.
void check_history(node& nd, const expected& want) {
  for (uint32_t limit : {1u, 2u, 5u, 1000u}) {
    for (bool reversed : {false, true}) {
      INFO("limit " << limit << (reversed ? ", reversed" : ""));
      auto got = transfers_paged(nd, filter_of(want.account, limit, reversed));
      auto snaps = balances_paged(nd, filter_of(want.account, limit, reversed));
      if (reversed) {
        std::reverse(got.begin(), got.end());
        std::reverse(snaps.begin(), snaps.end());
      }
      std::vector<u128> ids;
      for (const transfer& t : got) ids.push_back(t.id);
      CHECK(ids == want.ids);
      REQUIRE(snaps.size() == want.balances.size());
      for (size_t k = 0; k < got.size(); ++k) {
        INFO("transfer " << k);
        // Named as written: the split account, never a sub-account.
        CHECK(sid::kind_of(got[k].credit_account_id) == sid::kind::none);
        CHECK(sid::kind_of(got[k].debit_account_id) == sid::kind::none);
        CHECK((got[k].credit_account_id == want.account || got[k].debit_account_id == want.account));
        if (k > 0) CHECK(got[k - 1].timestamp < got[k].timestamp);
        CHECK(snaps[k].timestamp == got[k].timestamp);
        CHECK(snaps[k].credits_posted == want.balances[k].credits_posted);
        CHECK(snaps[k].debits_posted == want.balances[k].debits_posted);
        CHECK(snaps[k].credits_pending == 0);
        CHECK(snaps[k].debits_pending == 0);
      }
    }
  }
  // One side only.
  store::account_filter debits = filter_of(want.account, 3, false);
  debits.credits = false;
  size_t n = 0;
  for (const transfer& t : transfers_paged(nd, debits)) {
    CHECK(t.debit_account_id == want.account);
    ++n;
  }
  store::account_filter credits = filter_of(want.account, 3, true);
  credits.debits = false;
  for (const transfer& t : transfers_paged(nd, credits)) {
    CHECK(t.credit_account_id == want.account);
    ++n;
  }
  CHECK(n == want.ids.size());
}

// Sends `t` alone (one round each, so that the order is the one sent) and books it.
void send(node& nd, expected& want, const transfer& t) {
  REQUIRE(nd.transfers({t}).failures.empty());
  want.add(t);
}

} // namespace

TEST_CASE("a split account's history is one account's: credits on sub-accounts of every shard, gathers and sweeps left out", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 3;
  const u128 hot = id_in(0, n, 5);
  directory_options o;
  o.hot_static.push_back(hot_account_rule{hot, 6});
  o.sweep_interval_ns = 0; // not swept: debits gather
  auto nd = std::make_unique<node>(dir.path, n, o);
  std::vector<account> as{make_account(hot, 1, account_history | account_debits_must_not_exceed_credits)};
  std::vector<u128> payers;
  for (uint32_t k = 0; k < 6; ++k) {
    payers.push_back(id_in(k % n, n, 10 + k));
    as.push_back(make_account(payers.back()));
  }
  const u128 out = id_in(2, n, 30);
  as.push_back(make_account(out));
  REQUIRE(nd->accounts(as).failures.empty());
  expected want{hot};
  uint64_t id = 100;
  for (uint32_t t = 0; t < 24; ++t) {
    send(*nd, want, make_transfer(id++, payers[t % payers.size()], hot, 10 + t));
    if (t % 7 == 6) send(*nd, want, make_transfer(id++, hot, out, 25)); // gathers the sub-accounts
  }
  // Sub-accounts keep history when their account does, and some sit in other shards.
  uint32_t elsewhere = 0;
  for (uint32_t i = 0; i < 6; ++i) {
    auto r = nd->ask<accounts_reply>(nd->shards[shard_of(sid::sub(hot, i), n)], lookup_accounts_request{{}, {sid::sub(hot, i)}});
    if (r.accounts.empty()) continue;
    CHECK(has(r.accounts[0].flags, account_history));
    elsewhere += shard_of(sid::sub(hot, i), n) != shard_of(hot, n) ? 1 : 0;
  }
  CHECK(elsewhere > 0);
  check_history(*nd, want);
  // With the sweeper on, everything moves to the account itself; the history stays.
  nd.reset();
  o.sweep_interval_ns = 5'000'000;
  nd = std::make_unique<node>(dir.path, n, o);
  const u128 total = want.now.credits_posted;
  // (Waits a while for the sweeps; the history must be right whether or not they are done.)
  for (int tries = 0; tries < 400 && nd->lookup(hot, &nd->shards[shard_of(hot, n)]).credits_posted != total; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (uint32_t t = 0; t < 12; ++t) {
    send(*nd, want, make_transfer(id++, payers[(t * 5) % payers.size()], hot, 3 + t));
    if (t % 4 == 3) send(*nd, want, make_transfer(id++, hot, out, 7));
  }
  check_history(*nd, want);
  // Several credits in one request land in several shards: all of them show, and the last
  // snapshot is the account's balance.
  std::vector<transfer> together;
  for (uint32_t k = 0; k < 6; ++k) together.push_back(make_transfer(id++, payers[k], hot, 1));
  REQUIRE(nd->transfers(together).failures.empty());
  auto all = transfers_paged(*nd, filter_of(hot, 1000, false));
  CHECK(all.size() == want.ids.size() + together.size());
  auto snaps = balances_paged(*nd, filter_of(hot, 1000, false));
  REQUIRE(!snaps.empty());
  CHECK(snaps.back().credits_posted == nd->lookup(hot).credits_posted);
  CHECK(snaps.back().debits_posted == nd->lookup(hot).debits_posted);
}

TEST_CASE("an adaptively split account's history runs on across the split, unswept", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 2;
  directory_options o;
  o.adaptive_window_ns = 60'000'000'000ull;
  o.adaptive_credits_min = 10;
  o.adaptive_sub_accounts = 4;
  o.sweep_interval_ns = 0;
  node nd(dir.path, n, o);
  const u128 hot = id_in(1, n), payer = id_in(0, n), payer2 = id_in(1, n, 1), out = id_in(0, n, 1);
  REQUIRE(nd.accounts({make_account(hot, 1, account_history), make_account(payer), make_account(payer2),
                       make_account(out)}).failures.empty());
  expected want{hot};
  for (uint32_t t = 0; t < 40; ++t) {
    send(nd, want, make_transfer(10 + t, t % 3 == 0 ? payer2 : payer, hot, 1 + t));
    if (t == 30) send(nd, want, make_transfer(500, hot, out, 100));
  }
  CHECK(nd.lookup(hot, &nd.shards[shard_of(hot, n)]).credits_posted < want.now.credits_posted); // split
  check_history(nd, want);
}

TEST_CASE("a split account without the history flag has no balance history", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 2;
  const u128 hot = id_in(0, n), payer = id_in(1, n);
  directory_options o;
  o.hot_static.push_back(hot_account_rule{hot, 4});
  o.sweep_interval_ns = 0;
  node nd(dir.path, n, o);
  REQUIRE(nd.accounts({make_account(hot), make_account(payer)}).failures.empty());
  for (uint32_t t = 0; t < 5; ++t) REQUIRE(nd.transfers({make_transfer(10 + t, payer, hot, 1)}).failures.empty());
  CHECK(transfers_paged(nd, filter_of(hot, 10, false)).size() == 5);
  CHECK(balances_paged(nd, filter_of(hot, 10, false)).empty());
  // A filter that breaks the rules is refused as on one shard.
  store::account_filter bad = filter_of(hot, 10, false);
  bad.debits = bad.credits = false;
  CHECK(nd.ask<transfers_reply>(nd.directory, account_transfers_request{{}, bad}).status == outcome::filter_invalid);
  CHECK(nd.ask<balances_reply>(nd.directory, account_balances_request{{}, bad}).status == outcome::filter_invalid);
}

TEST_CASE("sub-accounts created before they took the history flag are counted from their transfers", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 2;
  const u128 hot = id_in(0, n, 2);
  directory_options o;
  o.hot_static.push_back(hot_account_rule{hot, 4});
  o.sweep_interval_ns = 0;
  {
    // As an older kassa left them: the account with history, its sub-accounts without.
    node nd(dir.path, n, {}, false);
    REQUIRE(nd.ask<create_reply>(nd.shards[shard_of(hot, n)],
                                 create_accounts_request{{}, {make_account(hot, 1, account_history)}, {}})
                .failures.empty());
    for (uint32_t i = 0; i < 4; ++i) {
      account sub = make_account(sid::sub(hot, i), 1, account_debits_must_not_exceed_credits, sid::sub_code);
      sub.user_data_128 = hot;
      sub.user_data_32 = i;
      REQUIRE(nd.ask<create_reply>(nd.shards[shard_of(sub.id, n)], create_accounts_request{{}, {sub}, {1}})
                  .failures.empty());
    }
  }
  node nd(dir.path, n, o);
  const u128 payer = id_in(0, n, 9), payer2 = id_in(1, n, 9), out = id_in(1, n, 10);
  REQUIRE(nd.accounts({make_account(payer), make_account(payer2), make_account(out)}).failures.empty());
  expected want{hot};
  for (uint32_t t = 0; t < 16; ++t) {
    send(nd, want, make_transfer(100 + t, t % 2 ? payer : payer2, hot, 5 + t));
    if (t % 5 == 4) send(nd, want, make_transfer(200 + t, hot, out, 9));
  }
  uint32_t without = 0;
  for (uint32_t i = 0; i < 4; ++i) {
    auto r = nd.ask<accounts_reply>(nd.shards[shard_of(sid::sub(hot, i), n)], lookup_accounts_request{{}, {sid::sub(hot, i)}});
    REQUIRE(r.accounts.size() == 1);
    without += has(r.accounts[0].flags, account_history) ? 0 : 1;
  }
  CHECK(without == 4);
  check_history(nd, want);
}
