// The directory over several real shards (LMDB stores in a temp dir, durability none): transfers
// across shards as sagas, linked chains spanning shards, recovery of sagas from the log, split
// hot accounts, and the money invariants under random load. Tagged [directory].
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <map>
#include <set>
#include <random>
#include <thread>

#include "actors/directory.hpp"
#include "actors/shard.hpp"
#include "actors/writer.hpp"
#include "ledger/system_ids.hpp"
#include "tests/actors/directory_node.hpp"
#include "tests/ask.hpp"
#include "tests/ledger/ledger_fixture.hpp"
#include "tests/seed.hpp"
#include "tests/store/store_fixture.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::ledger;
using namespace kassa::test;
namespace ks = kassa::ledger::store;
namespace sid = kassa::ledger::system_ids;

namespace {


// Per shard and ledger: debits posted == credits posted, pending likewise, over all accounts
// including clearing and sub-accounts; and each pair of clearing accounts mirrors the other.
void check_books(node& nd, uint32_t n, const std::vector<u128>& client_ids) {
  std::vector<std::vector<u128>> ids(n);
  for (u128 id : client_ids) ids[shard_of(id, n)].push_back(id);
  std::map<u128, account> clearing; // kassa's clearing accounts, by id
  for (uint32_t s = 0; s < n; ++s) {
    auto sys_rows = nd.ask<accounts_reply>(nd.shards[s], system_accounts_request{});
    REQUIRE(sys_rows.status == outcome::ok);
    auto rows = nd.ask<accounts_reply>(nd.shards[s], lookup_accounts_request{{}, ids[s]});
    REQUIRE(rows.status == outcome::ok);
    rows.accounts.insert(rows.accounts.end(), sys_rows.accounts.begin(), sys_rows.accounts.end());
    u128 dp = 0, dpo = 0, cp = 0, cpo = 0;
    for (const account& a : rows.accounts) {
      dp += a.debits_pending;
      dpo += a.debits_posted;
      cp += a.credits_pending;
      cpo += a.credits_posted;
      if (has(a.flags, account_debits_must_not_exceed_credits)) {
        CHECK(a.debits_posted + a.debits_pending <= a.credits_posted);
      }
      if (sid::is_clearing(a.id)) clearing[a.id] = a;
    }
    INFO("shard " << s);
    CHECK(dpo == cpo);
    CHECK(dp == cp);
  }
  for (const auto& [id, a] : clearing) {
    auto other = clearing.find(sid::clearing(sid::clearing_to(id), sid::clearing_from(id), sid::clearing_ledger(id),
                                             sid::is_two_phase_clearing(id)));
    REQUIRE(other != clearing.end());
    CHECK(a.credits_posted == other->second.debits_posted);
    CHECK(a.debits_posted == other->second.credits_posted);
    CHECK(a.credits_pending == other->second.debits_pending);
    CHECK(a.debits_pending == other->second.credits_pending);
    if (!sid::is_two_phase_clearing(id)) { // only two-phase transfers across shards hold legs pending
      CHECK(a.debits_pending == 0);
      CHECK(a.credits_pending == 0);
    }
  }
}

} // namespace

TEST_CASE("a transfer across shards moves the money once, and every shard balances", "[directory]") {
  temp_dir dir;
  node nd(dir.path, 2);
  const u128 a = id_in(0, 2), b = id_in(1, 2);
  REQUIRE(nd.accounts({make_account(a), make_account(b)}).failures.empty());
  auto r = nd.transfers({make_transfer(1000, a, b, 100)});
  REQUIRE(r.status == outcome::ok);
  CHECK(r.failures.empty());
  CHECK(nd.lookup(a).debits_posted == 100);
  CHECK(nd.lookup(a).debits_pending == 0);
  CHECK(nd.lookup(b).credits_posted == 100);
  CHECK(nd.lookup(b).credits_pending == 0);
  auto seen = nd.lookup_transfers({1000});
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].debit_account_id == a);
  CHECK(seen[0].credit_account_id == b);
  CHECK(seen[0].amount == 100);
  CHECK(seen[0].flags == 0);
  // Retries answer from the legs; nothing moves again.
  CHECK(nd.transfers({make_transfer(1000, a, b, 100)}).failures.at(0).code ==
        static_cast<uint32_t>(transfer_result::exists));
  CHECK(tname(nd.transfers({make_transfer(1000, a, b, 101)}), 0) == "exists_with_different_amount");
  CHECK(tname(nd.transfers({make_transfer(1000, b, a, 100)}), 0) == "exists_with_different_debit_account_id");
  CHECK(nd.lookup(b).credits_posted == 100);
  // The same id inside one shard is the same id: refused there too.
  const u128 a2 = id_in(0, 2, 1);
  REQUIRE(nd.accounts({make_account(a2)}).failures.empty());
  CHECK(tname(nd.transfers({make_transfer(1000, a, a2, 100)}), 0) == "exists_with_different_credit_account_id");
  check_books(nd, 2, {a, b, a2});
}

TEST_CASE("a refused transfer across shards uses no id, up front or after another event of its round", "[directory]") {
  temp_dir dir;
  node nd(dir.path, 2);
  const u128 a = id_in(0, 2), b = id_in(1, 2), funder = id_in(1, 2, 1);
  REQUIRE(nd.accounts({make_account(a, 1, account_debits_must_not_exceed_credits), make_account(b),
                       make_account(funder)}).failures.empty());
  // Up front: a holds nothing.
  CHECK(tname(nd.transfers({make_transfer(1, a, b, 10)}), 0) == "exceeds_credits");
  REQUIRE(nd.transfers({make_transfer(2, funder, a, 100)}).failures.empty());
  CHECK(nd.transfers({make_transfer(1, a, b, 10)}).failures.empty()); // id 1 was not used up
  // In one round: each fits alone, together they do not; the second is refused as one shard
  // would refuse it, and nothing of it is written.
  auto r = nd.transfers({make_transfer(3, a, b, 60), make_transfer(4, a, b, 60)});
  CHECK(r.failures.size() == 1);
  CHECK(tname(r, 1) == "exceeds_credits");
  CHECK(nd.lookup(a).debits_posted == 70);
  CHECK(nd.lookup(a).debits_pending == 0);
  CHECK(nd.lookup(b).credits_posted == 70);
  CHECK(nd.lookup(b).credits_pending == 0);
  CHECK(nd.lookup_transfers({4}).empty());
  CHECK(tname(nd.transfers({make_transfer(4, a, b, 60)}), 0) == "exceeds_credits");
  REQUIRE(nd.transfers({make_transfer(5, funder, a, 30)}).failures.empty());
  CHECK(nd.transfers({make_transfer(4, a, b, 60)}).failures.empty()); // id 4 was free
  CHECK(nd.lookup_transfers({4}).size() == 1);
  check_books(nd, 2, {a, b, funder});
}

TEST_CASE("a linked chain spanning shards applies all or nothing", "[directory]") {
  temp_dir dir;
  node nd(dir.path, 3);
  const u128 a = id_in(0, 3), b = id_in(1, 3), c = id_in(2, 3), a2 = id_in(0, 3, 1);
  REQUIRE(nd.accounts({make_account(a, 1, account_debits_must_not_exceed_credits), make_account(b),
                       make_account(c), make_account(a2)}).failures.empty());
  REQUIRE(nd.transfers({make_transfer(1, b, a, 100)}).failures.empty());

  SECTION("every event applies") {
    auto r = nd.transfers({make_transfer(10, a, b, 30, transfer_linked), make_transfer(11, b, c, 20, transfer_linked),
                           make_transfer(12, a2, a, 5, transfer_linked), make_transfer(13, c, a2, 1)});
    CHECK(r.failures.empty());
    CHECK(nd.lookup(a).debits_posted == 30);
    CHECK(nd.lookup(a).credits_posted == 105);
    CHECK(nd.lookup(c).credits_posted == 20);
    CHECK(nd.lookup(a2).debits_posted == 5);
    CHECK(nd.lookup(a2).credits_posted == 1);
    CHECK(nd.lookup_transfers({10, 11, 12, 13}).size() == 4);
    // The whole chain again: the first event answers exists, the chain fails, nothing moves.
    auto again = nd.transfers({make_transfer(10, a, b, 30, transfer_linked), make_transfer(11, b, c, 20)});
    CHECK(tname(again, 0) == "exists");
    CHECK(tname(again, 1) == "linked_event_failed");
  }
  SECTION("a leg refused in one shard undoes the chain in every shard") {
    // 7 takes 60 of a's 100 first in the same round; the chain's 60 then fails in a's shard.
    auto r = nd.transfers({make_transfer(7, a, c, 60), make_transfer(20, b, c, 5, transfer_linked),
                           make_transfer(21, a, b, 60, transfer_linked), make_transfer(22, c, a2, 1)});
    CHECK(code_of(r, 0) == 0);
    CHECK(tname(r, 1) == "linked_event_failed");
    CHECK(tname(r, 2) == "exceeds_credits");
    CHECK(tname(r, 3) == "linked_event_failed");
    CHECK(nd.lookup(b).debits_posted == 100); // only the first funding
    CHECK(nd.lookup(c).credits_posted == 60);
    CHECK(nd.lookup(a2).credits_posted == 0);
    CHECK(nd.lookup(a).debits_pending == 0);
    CHECK(nd.lookup_transfers({20, 21, 22}).empty());
  }
  check_books(nd, 3, {a, b, c, a2});
}

TEST_CASE("what the directory answers itself", "[directory]") {
  temp_dir dir;
  node nd(dir.path, 2);
  const u128 a = id_in(0, 2), b = id_in(1, 2);
  REQUIRE(nd.accounts({make_account(a), make_account(b)}).failures.empty());
  // Two-phase across shards applies as on one shard (tests/actors/cross_shard_test.cpp).
  CHECK(tname(nd.transfers({make_transfer(1, a, b, 10, transfer_pending)}), 0) == "ok");
  CHECK(tname(nd.transfers({make_transfer(2, a, b, 0)}), 0) == "amount_must_not_be_zero");
  CHECK(tname(nd.transfers({make_transfer(3, a, id_in(1, 2, 5), 1)}), 0) == "credit_account_not_found");
  CHECK(tname(nd.transfers({make_transfer(4, a, b, 1, 0, 2)}), 0) == "transfer_must_have_the_same_ledger_as_accounts");
  CHECK(tname(nd.transfers({make_transfer(sid::transfer(9), a, b, 1)}), 0) == "id_must_not_be_reserved");
  // A post of a transfer across shards: it was never pending for the client.
  REQUIRE(nd.transfers({make_transfer(6, a, b, 10)}).failures.empty());
  CHECK(tname(nd.transfers({make_resolve(7, 6, transfer_post_pending)}), 0) == "pending_transfer_not_pending");
  // That transfer created the clearing accounts; clients may not touch them.
  CHECK(tname(nd.transfers({make_transfer(5, a, sid::clearing(0, 1, 1), 1)}), 0) == "accounts_must_not_be_reserved");
  // Linked accounts across shards apply as on one shard (tests/actors/cross_shard_test.cpp).
  auto r = nd.accounts({make_account(id_in(0, 2, 3), 1, account_linked), make_account(id_in(1, 2, 3))});
  CHECK(r.failures.empty());
  // A request that ends inside a chain spanning shards: nothing of it applies.
  auto open = nd.transfers({make_transfer(30, a, b, 1, transfer_linked), make_transfer(31, b, a, 1, transfer_linked)});
  CHECK(tname(open, 0) == "linked_event_failed");
  CHECK(tname(open, 1) == "linked_event_chain_open");
  CHECK(nd.lookup_transfers({30, 31}).empty());
  // Within a shard, two-phase works as ever.
  const u128 a2 = id_in(0, 2, 1);
  REQUIRE(nd.accounts({make_account(a2)}).failures.empty());
  REQUIRE(nd.transfers({make_transfer(8, a, a2, 10, transfer_pending)}).failures.empty());
  CHECK(nd.transfers({make_resolve(9, 8, transfer_post_pending, 4)}).failures.empty());
  CHECK(nd.lookup(a2).credits_posted == 4);
  check_books(nd, 2, {a, b, a2});
}

TEST_CASE("duplicate ids in flight from many clients apply once", "[directory]") {
  temp_dir dir;
  node nd(dir.path, 2);
  std::vector<u128> ids;
  for (uint32_t k = 0; k < 4; ++k) ids.push_back(id_in(k % 2, 2, k));
  std::vector<account> as;
  for (u128 id : ids) as.push_back(make_account(id));
  REQUIRE(nd.accounts(as).failures.empty());
  std::vector<transfer> batch;
  for (uint32_t t = 0; t < 200; ++t) batch.push_back(make_transfer(5000 + t, ids[t % 4], ids[(t + 1) % 4], 1 + t % 7));
  u128 total = 0;
  for (const auto& t : batch) total += t.amount;
  std::vector<std::thread> clients;
  std::atomic<size_t> ok{0}, exists{0}, not_ok{0};
  for (int c = 0; c < 8; ++c) {
    // Catch's assertions are not thread-safe: the clients count, the test thread checks.
    clients.emplace_back([&] {
      auto r = nd.transfers(batch);
      if (r.status != outcome::ok) {
        ++not_ok;
        return;
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        const uint32_t code = code_of(r, static_cast<uint32_t>(i));
        if (code == 0) ++ok;
        else if (code == static_cast<uint32_t>(transfer_result::exists)) ++exists;
      }
    });
  }
  for (auto& t : clients) t.join();
  REQUIRE(not_ok == 0);
  CHECK(ok == batch.size());
  CHECK(exists == batch.size() * 7);
  u128 credits = 0;
  for (u128 id : ids) credits += nd.lookup(id).credits_posted;
  CHECK(credits == total);
  check_books(nd, 2, ids);
}

TEST_CASE("recovery finishes the sagas of pending legs that an older kassa logged", "[directory]") {
  temp_dir dir;
  const u128 a = id_in(0, 2), b = id_in(1, 2);
  {
    node nd(dir.path, 2);
    REQUIRE(nd.accounts({make_account(a), make_account(b)}).failures.empty());
    REQUIRE(nd.transfers({make_transfer(1, a, b, 1)}).failures.empty()); // clearing accounts exist
  }
  {
    // A crash between the legs and their posts: saga 100 wrote both legs, saga 101 only its
    // debit leg (the credit leg never became durable).
    node nd(dir.path, 2, {}, false);
    const uint8_t sys[1] = {1};
    auto leg = [&](u128 id, u128 dr, u128 cr, u128 amount) {
      transfer t = make_transfer(id, dr, cr, amount, transfer_pending);
      return create_transfers_request{{}, {t}, {sys[0]}};
    };
    REQUIRE(nd.ask<create_reply>(nd.shards[0], leg(50, a, sid::clearing(0, 1, 1), 7)).failures.empty());
    REQUIRE(nd.ask<create_reply>(nd.shards[1], leg(50, sid::clearing(1, 0, 1), b, 7)).failures.empty());
    REQUIRE(nd.ask<create_reply>(nd.shards[0], leg(51, a, sid::clearing(0, 1, 1), 9)).failures.empty());
    ks::saga s100, s101;
    s100.id = 100;
    s100.legs = {{0, 50}, {1, 50}};
    s101.id = 101;
    s101.legs = {{0, 51}, {1, 51}};
    REQUIRE(nd.log->write({s100, s101}, {}).ok());
  }
  node nd(dir.path, 2);
  // Requests wait for recovery; this lookup goes after it through the same shards.
  REQUIRE(nd.transfers({make_transfer(2, a, b, 1)}).failures.empty());
  CHECK(nd.lookup(a).debits_posted == 1 + 7 + 1);
  CHECK(nd.lookup(a).debits_pending == 0);
  CHECK(nd.lookup(b).credits_posted == 1 + 7 + 1);
  CHECK(nd.lookup_transfers({50}).size() == 1);
  CHECK(nd.lookup_transfers({51}).empty());
  CHECK(tname(nd.transfers({make_transfer(51, a, b, 9)}), 0) == "id_already_failed");
  check_books(nd, 2, {a, b});
  std::vector<ks::saga> left;
  REQUIRE(nd.log->load(left).ok());
  CHECK(left.size() <= 2); // removed with the next write of the log
}

TEST_CASE("recovery applies a logged round again: a transfer whose reply was lost stands whole and its retry answers exists", "[directory]") {
  temp_dir dir;
  const u128 a = id_in(0, 2), b = id_in(1, 2), a2 = id_in(0, 2, 1);
  {
    node nd(dir.path, 2);
    REQUIRE(nd.accounts({make_account(a), make_account(b), make_account(a2)}).failures.empty());
    REQUIRE(nd.transfers({make_transfer(1, a, b, 1)}).failures.empty()); // clearing accounts exist
  }
  {
    // A crash inside a round: its record is in the log, shard 0 made its part durable
    // (a2 -> a 20, then the debit leg of a -> b 20), shard 1 nothing.
    node nd(dir.path, 2, {}, false);
    ks::saga s;
    s.id = 100;
    const transfer fund = make_transfer(60, a2, a, 20);
    transfer debit_leg = make_transfer(61, a, sid::clearing(0, 1, 1), 20);
    transfer credit_leg = make_transfer(61, sid::clearing(1, 0, 1), b, 20);
    s.transfers = {{0, 0, fund}, {0, 1, debit_leg}, {1, 1, credit_leg}};
    REQUIRE(nd.log->write({s}, {}).ok());
    const uint8_t sys[2] = {0, 1};
    REQUIRE(nd.ask<create_reply>(nd.shards[0], create_transfers_request{{}, {fund, debit_leg}, {sys[0], sys[1]}}).failures.empty());
  }
  node nd(dir.path, 2);
  CHECK(tname(nd.transfers({make_transfer(61, a, b, 20)}), 0) == "exists");
  CHECK(tname(nd.transfers({make_transfer(60, a2, a, 20)}), 0) == "exists");
  CHECK(nd.lookup(a).debits_posted == 1 + 20);
  CHECK(nd.lookup(a).credits_posted == 20);
  CHECK(nd.lookup(b).credits_posted == 1 + 20);
  CHECK(nd.lookup(b).credits_pending == 0);
  auto found = nd.lookup_transfers({61});
  REQUIRE(found.size() == 1);
  CHECK(found[0].debit_account_id == a);
  CHECK(found[0].credit_account_id == b);
  check_books(nd, 2, {a, b, a2});
}

TEST_CASE("a split hot account: credits spread, reads aggregate, the sweeper merges", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 2;
  const u128 hot = id_in(0, n, 7);
  directory_options o;
  o.hot_static.push_back(hot_account_rule{hot, 4});
  o.sweep_interval_ns = 0; // swept by hand below
  auto nd = std::make_unique<node>(dir.path, n, o);
  std::vector<u128> payers;
  std::vector<account> as{make_account(hot, 1, account_debits_must_not_exceed_credits)};
  for (uint32_t k = 0; k < 10; ++k) {
    payers.push_back(id_in(k % n, n, 20 + k));
    as.push_back(make_account(payers.back()));
  }
  const u128 out = id_in(1, n, 40);
  as.push_back(make_account(out));
  REQUIRE(nd->accounts(as).failures.empty());
  std::vector<transfer> credits;
  u128 total = 0;
  for (uint32_t t = 0; t < 100; ++t) {
    credits.push_back(make_transfer(100 + t, payers[t % payers.size()], hot, 1 + t));
    total += 1 + t;
  }
  REQUIRE(nd->transfers(credits).failures.empty());
  const account seen = nd->lookup(hot);
  CHECK(seen.credits_posted == total);
  // main + sub-accounts = the account's balance; the main account itself got none of it.
  u128 subs = 0;
  size_t used = 0;
  for (uint32_t i = 0; i < 4; ++i) {
    auto r = nd->ask<accounts_reply>(nd->shards[shard_of(sid::sub(hot, i), n)], lookup_accounts_request{{}, {sid::sub(hot, i)}});
    if (r.accounts.empty()) continue;
    ++used;
    subs += r.accounts[0].credits_posted;
    CHECK(r.accounts[0].user_data_128 == hot);
  }
  const account main = nd->lookup(hot, &nd->shards[shard_of(hot, n)]);
  CHECK(main.credits_posted == 0);
  CHECK(subs == total);
  CHECK(used >= 2);
  // A retried credit is the same transfer, and lookups name the hot account.
  CHECK(tname(nd->transfers({credits[5]}), 0) == "exists");
  auto t5 = nd->lookup_transfers({credits[5].id});
  REQUIRE(t5.size() == 1);
  CHECK(t5[0].credit_account_id == hot);
  // A debit is judged on all the account holds (its sub-accounts are gathered first): one more
  // than the balance is refused.
  CHECK(tname(nd->transfers({make_transfer(900, hot, out, total + 1)}), 0) == "exceeds_credits");
  // Restart with sweeping on: the split comes back from the sub-accounts, the sweeper merges.
  nd.reset();
  o.sweep_interval_ns = 20'000'000;
  nd = std::make_unique<node>(dir.path, n, o);
  for (int tries = 0; tries < 200 && nd->lookup(hot, &nd->shards[shard_of(hot, n)]).credits_posted != total; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(nd->lookup(hot, &nd->shards[shard_of(hot, n)]).credits_posted == total);
  CHECK(nd->lookup(hot).credits_posted == total);       // aggregated: swept money counted once
  CHECK(nd->lookup(hot).debits_posted == 0);            // sweeps are not the account's debits
  CHECK(nd->transfers({make_transfer(900, hot, out, total)}).failures.empty());
  CHECK(tname(nd->transfers({make_transfer(901, hot, out, 1)}), 0) == "exceeds_credits");
  std::vector<u128> all = payers;
  all.push_back(hot);
  all.push_back(out);
  check_books(*nd, n, all);
}

TEST_CASE("a split account is one account to its users: a debit of exactly the balance lookup shows applies, without a sweeper", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 3;
  const u128 hot = id_in(0, n, 3);
  directory_options o;
  o.hot_static.push_back(hot_account_rule{hot, 6});
  o.sweep_interval_ns = 0; // never swept
  node nd(dir.path, n, o);
  std::vector<account> as{make_account(hot, 1, account_debits_must_not_exceed_credits)};
  std::vector<u128> payers;
  for (uint32_t k = 0; k < 6; ++k) {
    payers.push_back(id_in(k % n, n, 10 + k));
    as.push_back(make_account(payers.back()));
  }
  const u128 out = id_in(2, n, 30);
  as.push_back(make_account(out));
  REQUIRE(nd.accounts(as).failures.empty());
  u128 total = 0;
  std::vector<transfer> credits;
  for (uint32_t t = 0; t < 30; ++t) {
    credits.push_back(make_transfer(100 + t, payers[t % payers.size()], hot, 10 + t));
    total += 10 + t;
  }
  REQUIRE(nd.transfers(credits).failures.empty());
  REQUIRE(nd.lookup(hot, &nd.shards[shard_of(hot, n)]).credits_posted == 0); // all on sub-accounts
  const account seen = nd.lookup(hot);
  REQUIRE(seen.credits_posted == total);
  // In one request: a credit, then a debit of the balance with that credit, then one more.
  auto r = nd.transfers({make_transfer(200, payers[0], hot, 5), make_transfer(201, hot, out, total + 5),
                         make_transfer(202, hot, out, 1)});
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].index == 2);
  CHECK(tname(r, 2) == "exceeds_credits");
  const account after = nd.lookup(hot);
  CHECK(after.credits_posted == total + 5);
  CHECK(after.debits_posted == total + 5);
  CHECK(nd.lookup(out).credits_posted == total + 5);
  // The history of the debit shows it once, as written.
  auto t = nd.lookup_transfers({201});
  REQUIRE(t.size() == 1);
  CHECK(t[0].debit_account_id == hot);
  CHECK(t[0].amount == total + 5);
  std::vector<u128> all = payers;
  all.push_back(hot);
  all.push_back(out);
  check_books(nd, n, all);
}

TEST_CASE("adaptive splitting: an account that receives many credits is split", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 2;
  directory_options o;
  o.adaptive_window_ns = 60'000'000'000ull;
  o.adaptive_credits_min = 20;
  o.adaptive_sub_accounts = 4;
  o.sweep_interval_ns = 0;
  node nd(dir.path, n, o);
  const u128 hot = id_in(1, n), payer = id_in(0, n);
  REQUIRE(nd.accounts({make_account(hot), make_account(payer)}).failures.empty());
  for (uint32_t t = 0; t < 60; ++t) REQUIRE(nd.transfers({make_transfer(10 + t, payer, hot, 1)}).failures.empty());
  const account main = nd.lookup(hot, &nd.shards[shard_of(hot, n)]);
  CHECK(main.credits_posted >= 19);
  CHECK(main.credits_posted < 60); // later credits went to sub-accounts
  CHECK(nd.lookup(hot).credits_posted == 60);
  check_books(nd, n, {hot, payer});
}

TEST_CASE("random load across shards keeps every invariant", "[directory][property]") {
  const uint64_t s = seed("directory random load");
  std::mt19937_64 rng(s);
  temp_dir dir;
  const uint32_t n = 3;
  node nd(dir.path, n);
  std::vector<u128> ids;
  std::vector<account> as;
  for (uint32_t k = 0; k < 12; ++k) {
    ids.push_back(id_in(k % n, n, k));
    as.push_back(make_account(ids.back(), 1, k % 3 == 0 ? account_debits_must_not_exceed_credits : 0));
  }
  REQUIRE(nd.accounts(as).failures.empty());
  std::map<u128, transfer> applied; // id -> transfer acknowledged ok
  uint64_t next_id = 1;
  for (int round = 0; round < 40; ++round) {
    std::vector<transfer> batch;
    const size_t len = 1 + rng() % 30;
    for (size_t e = 0; e < len; ++e) {
      transfer t;
      if (!applied.empty() && rng() % 8 == 0) {
        t = std::next(applied.begin(), static_cast<long>(rng() % applied.size()))->second; // a retry
        t.timestamp = 0;
      } else {
        const u128 dr = ids[rng() % ids.size()];
        u128 cr = ids[rng() % ids.size()];
        if (cr == dr) cr = ids[(std::find(ids.begin(), ids.end(), dr) - ids.begin() + 1) % ids.size()];
        t = make_transfer(next_id++, dr, cr, 1 + rng() % 50);
      }
      if (e + 1 < len && rng() % 4 == 0) t.flags |= transfer_linked;
      else t.flags &= static_cast<uint16_t>(~transfer_linked);
      batch.push_back(t);
    }
    auto r = nd.transfers(batch);
    REQUIRE(r.status == outcome::ok);
    for (size_t e = 0; e < batch.size(); ++e) {
      if (code_of(r, static_cast<uint32_t>(e)) == 0) {
        INFO("seed " << s << " id " << to_string_u128(batch[e].id));
        REQUIRE(applied.count(batch[e].id) == 0); // no id applied twice
        applied[batch[e].id] = batch[e];
      }
    }
  }
  // What was acknowledged is exactly what the accounts hold.
  std::map<u128, u128> debits, credits;
  for (const auto& [id, t] : applied) {
    debits[t.debit_account_id] += t.amount;
    credits[t.credit_account_id] += t.amount;
  }
  for (u128 id : ids) {
    const account a = nd.lookup(id);
    INFO("seed " << s);
    CHECK(a.debits_posted == debits[id]);
    CHECK(a.credits_posted == credits[id]);
    CHECK(a.debits_pending == 0);
  }
  check_books(nd, n, ids);
}

TEST_CASE("one shard with a split hot account: credits spread, reads aggregate, sweeps merge", "[directory][hot]") {
  temp_dir dir;
  directory_options o;
  o.hot_static.push_back(hot_account_rule{500, 4});
  o.sweep_interval_ns = 10'000'000;
  node nd(dir.path, 1, o);
  REQUIRE(nd.accounts({make_account(500), make_account(1), make_account(2)}).failures.empty());
  std::vector<transfer> ts;
  for (uint32_t t = 0; t < 50; ++t) ts.push_back(make_transfer(10 + t, 1 + t % 2, 500, 3));
  REQUIRE(nd.transfers(ts).failures.empty());
  CHECK(nd.lookup(500).credits_posted == 150);
  for (int tries = 0; tries < 200 && nd.lookup(500, &nd.shards[0]).credits_posted != 150; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(nd.lookup(500, &nd.shards[0]).credits_posted == 150);
  CHECK(nd.lookup(500).credits_posted == 150);
  check_books(nd, 1, {500, 1, 2});
}

TEST_CASE("random malformed and mixed events across shards: never a crash, books always balance", "[directory][property]") {
  const uint64_t s = seed("directory mixed events");
  std::mt19937_64 rng(s);
  temp_dir dir;
  const uint32_t n = 3;
  node nd(dir.path, n);
  std::vector<u128> ids;
  std::vector<account> as;
  for (uint32_t k = 0; k < 9; ++k) {
    ids.push_back(id_in(k % n, n, k));
    as.push_back(make_account(ids.back(), 1 + (k == 8), k % 2 ? account_debits_must_not_exceed_credits : 0));
  }
  REQUIRE(nd.accounts(as).failures.empty());
  const uint16_t flag_choices[] = {0, 0, 0, transfer_linked, transfer_pending, transfer_post_pending,
                                   transfer_void_pending, transfer_balancing_debit, uint16_t(1u << 12)};
  uint64_t next_id = 1;
  std::set<u128> ok_ids;
  for (int round = 0; round < 60; ++round) {
    std::vector<transfer> batch;
    const size_t len = 1 + rng() % 20;
    for (size_t e = 0; e < len; ++e) {
      transfer t = make_transfer(rng() % 4 == 0 && next_id > 1 ? 1 + rng() % next_id : next_id++,
                                 ids[rng() % ids.size()], ids[rng() % ids.size()], rng() % 5 == 0 ? 0 : 1 + rng() % 40);
      t.flags = flag_choices[rng() % (sizeof flag_choices / sizeof flag_choices[0])];
      if (has(t.flags, transfer_post_pending | transfer_void_pending)) {
        t.pending_id = 1 + rng() % next_id;
        if (rng() % 2) t.debit_account_id = t.credit_account_id = 0;
        t.amount = rng() % 3 == 0 ? 0 : t.amount;
      }
      if (has(t.flags, transfer_pending) && rng() % 3 == 0) t.timeout = 1 + rng() % 2;
      switch (rng() % 12) {
        case 0: t.ledger = 2; break;
        case 1: t.code = 0; break;
        case 2: t.credit_account_id = sid::clearing(0, 1, 1); break;
        case 3: t.id = sid::transfer(rng()); break;
        case 4: t.timestamp = 1; break;
        case 5: t.credit_account_id = 999'999; break;
        default: break;
      }
      batch.push_back(t);
    }
    auto r = nd.transfers(batch);
    INFO("seed " << s << " round " << round);
    REQUIRE(r.status == outcome::ok);
    for (size_t e = 0; e < batch.size(); ++e) {
      const uint32_t code = code_of(r, static_cast<uint32_t>(e));
      CHECK(code < transfer_result_count);
      if (code == 0) CHECK(ok_ids.insert(batch[e].id).second); // no id applied twice
    }
  }
  check_books(nd, n, ids); // per shard balanced, no overdraft, clearing pairs mirror
}

TEST_CASE("an account's history across shards lists the transfers clients wrote, page by page", "[directory]") {
  temp_dir dir;
  node nd(dir.path, 2);
  const u128 a = id_in(0, 2), b = id_in(1, 2), a2 = id_in(0, 2, 1);
  REQUIRE(nd.accounts({make_account(a, 1, account_debits_must_not_exceed_credits), make_account(b),
                       make_account(a2)}).failures.empty());
  REQUIRE(nd.transfers({make_transfer(1, b, a, 100)}).failures.empty()); // across
  REQUIRE(nd.transfers({make_transfer(2, a, a2, 10)}).failures.empty()); // within shard 0
  // 4 fits alone but not after 3 in the same round: its legs are written and voided.
  auto r = nd.transfers({make_transfer(3, a, b, 60), make_transfer(4, a, b, 60)});
  REQUIRE(r.failures.size() == 1);
  REQUIRE(nd.transfers({make_transfer(5, a, b, 1)}).failures.empty());
  auto history = [&](uint32_t limit, uint64_t after, bool reversed = false) {
    account_transfers_request q;
    q.filter.account_id = a;
    q.filter.limit = limit;
    q.filter.reversed = reversed;
    if (reversed) q.filter.timestamp_max = after;
    else q.filter.timestamp_min = after;
    auto reply = nd.ask<transfers_reply>(nd.directory, q);
    REQUIRE(reply.status == outcome::ok);
    return reply.transfers;
  };
  auto all = history(100, 0);
  REQUIRE(all.size() == 4);
  CHECK(all[0].id == 1);
  CHECK(all[0].debit_account_id == b);
  CHECK(all[0].credit_account_id == a);
  CHECK(all[0].flags == 0);
  CHECK(all[1].id == 2);
  CHECK(all[2].id == 3);
  CHECK(all[2].credit_account_id == b);
  CHECK(all[3].id == 5);
  // Pages of one: each page is refilled past kassa's own records.
  std::vector<u128> paged;
  uint64_t after = 0;
  for (int i = 0; i < 10; ++i) {
    auto page = history(1, after);
    if (page.empty()) break;
    paged.push_back(page[0].id);
    after = page[0].timestamp + 1;
  }
  CHECK(paged == std::vector<u128>{1, 2, 3, 5});
  auto newest = history(2, 0, true);
  REQUIRE(newest.size() == 2);
  CHECK(newest[0].id == 5);
  CHECK(newest[1].id == 3);
}

TEST_CASE("a saga log that cannot take a round's sagas refuses the round and changes nothing", "[directory]") {
  temp_dir dir;
  node nd(dir.path, 2, {}, true, 256u << 10); // room for a few thousand legs, not 20,000
  const u128 a = id_in(0, 2), b = id_in(1, 2);
  REQUIRE(nd.accounts({make_account(a), make_account(b)}).failures.empty());
  std::vector<transfer> many;
  for (uint32_t t = 0; t < 10'000; ++t) many.push_back(make_transfer(100 + t, a, b, 1));
  auto r = nd.transfers(many);
  CHECK(r.status == outcome::store_unavailable);
  CHECK(nd.lookup(a).debits_posted == 0);
  CHECK(nd.lookup(a).debits_pending == 0);
  CHECK(nd.lookup(b).credits_pending == 0);
  CHECK(nd.lookup_transfers({100, 5000}).empty());
  // The log is still usable: a round that fits goes through, and the refused ids are free.
  CHECK(nd.transfers({make_transfer(100, a, b, 7)}).failures.empty());
  CHECK(nd.lookup(b).credits_posted == 7);
  check_books(nd, 2, {a, b});
}

TEST_CASE("transfers_by_id lists an id range over every shard in id order, a transfer across shards once, page by page",
          "[directory]") {
  temp_dir dir;
  node nd(dir.path, 2);
  const u128 a = id_in(0, 2), b = id_in(1, 2), a2 = id_in(0, 2, 1), b2 = id_in(1, 2, 1);
  REQUIRE(nd.accounts({make_account(a), make_account(b), make_account(a2), make_account(b2)}).failures.empty());
  // 1000 crosses shards (one leg in each), 1001 stays in shard 0, 1002 in shard 1; 999 and
  // 1100 lie outside the range asked for.
  auto r = nd.transfers({make_transfer(1002, b, b2, 3), make_transfer(1000, a, b, 1), make_transfer(1001, a, a2, 2),
                         make_transfer(999, a, a2, 9), make_transfer(1100, b, a, 9)});
  REQUIRE(r.status == outcome::ok);
  REQUIRE(r.failures.empty());
  auto page = [&](u128 from, uint32_t limit) {
    return nd.ask<transfers_by_id_reply>(nd.directory, transfers_by_id_request{from, 1100, limit});
  };

  auto all = page(1000, 10);
  REQUIRE(all.status == outcome::ok);
  REQUIRE(all.transfers.size() == 3);
  CHECK(all.next == 1100);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(all.transfers[i].id == 1000 + i);
    CHECK(all.transfers[i].amount == i + 1);
  }
  CHECK(all.transfers[0].debit_account_id == a); // as written, not as its legs
  CHECK(all.transfers[0].credit_account_id == b);
  CHECK(all.transfers[0].flags == 0);

  // One at a time: each page ends where every shard's page is complete.
  std::vector<u128> ids;
  u128 from = 999 + 1;
  for (int pages = 0; pages < 10 && from < 1100; ++pages) {
    auto p = page(from, 1);
    REQUIRE(p.status == outcome::ok);
    REQUIRE(p.next > from);
    for (const transfer& t : p.transfers) ids.push_back(t.id);
    CHECK(p.transfers.size() <= 1);
    from = p.next;
  }
  CHECK(ids == std::vector<u128>{1000, 1001, 1002});
  CHECK(from == 1100);

  // The limit is bounded by the shards' query_limit_max; 0 asks for nothing sensible.
  CHECK(page(1000, 0).status == outcome::filter_invalid);
  CHECK(page(1000, 8191).status == outcome::too_many);
  // An empty range.
  auto none = page(1100, 10);
  CHECK(none.status == outcome::ok);
  CHECK(none.transfers.empty());
}

TEST_CASE("transfers_by_id over one shard answers from that shard", "[directory]") {
  temp_dir dir;
  node nd(dir.path, 1);
  REQUIRE(nd.accounts({make_account(1), make_account(2)}).failures.empty());
  REQUIRE(nd.transfers({make_transfer(11, 1, 2, 1), make_transfer(10, 2, 1, 2), make_transfer(20, 1, 2, 3)})
              .failures.empty());
  auto p = nd.ask<transfers_by_id_reply>(nd.directory, transfers_by_id_request{10, 20, 1});
  REQUIRE(p.status == outcome::ok);
  REQUIRE(p.transfers.size() == 1);
  CHECK(p.transfers[0].id == 10);
  CHECK(p.next == 11);
  p = nd.ask<transfers_by_id_reply>(nd.directory, transfers_by_id_request{p.next, 20, 5});
  REQUIRE(p.transfers.size() == 1);
  CHECK(p.transfers[0].id == 11);
  CHECK(p.next == 20);
}
