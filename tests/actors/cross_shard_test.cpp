// Events across shards that the directory decides with the single-shard model: linked chains
// of accounts, balancing transfers, two-phase transfers (pending, post, void, expiry, closing),
// and chains that mix a post or void with a debit of a split account. Each answer (codes, rows, the transfer lookup_transfers shows) must be the one a
// single state machine gives for the same requests. Tagged [directory].
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "ledger/state_machine.hpp"
#include "ledger/system_ids.hpp"
#include "tests/actors/directory_node.hpp"
#include "tests/ledger/ledger_fixture.hpp"

using namespace kassa;
using namespace kassa::actors;
using namespace kassa::ledger;
using namespace kassa::test;
namespace sid = kassa::ledger::system_ids;

namespace {

// The single-shard model beside the node: every request goes to both.
struct twin {
  explicit twin(node& n) : nd(n) {}
  node& nd;
  state_machine sm;
  uint64_t now = 1'000'000'000;

  std::vector<uint32_t> accounts(std::vector<account> as) {
    const auto got = nd.accounts(as);
    REQUIRE(got.status == outcome::ok);
    std::vector<uint32_t> codes;
    for (uint32_t k = 0; k < as.size(); ++k) codes.push_back(code_of(got, k));
    const auto want = sm.create_accounts(as.data(), as.size(), now += 1000);
    sm.changes_take();
    for (uint32_t k = 0; k < as.size(); ++k) {
      INFO("account event " << k);
      CHECK(name(static_cast<account_result>(codes[k])) == name(want[k]));
    }
    return codes;
  }
  std::vector<uint32_t> transfers(std::vector<transfer> ts) {
    const auto got = nd.transfers(ts);
    REQUIRE(got.status == outcome::ok);
    std::vector<uint32_t> codes;
    for (uint32_t k = 0; k < ts.size(); ++k) codes.push_back(code_of(got, k));
    const auto want = sm.create_transfers(ts.data(), ts.size(), now += 1000);
    sm.changes_take();
    for (uint32_t k = 0; k < ts.size(); ++k) {
      INFO("transfer event " << k);
      CHECK(name(static_cast<transfer_result>(codes[k])) == name(want[k]));
    }
    return codes;
  }
  // Every account and transfer named reads as the model holds it (timestamps aside).
  void same(const std::vector<u128>& account_ids, const std::vector<u128>& transfer_ids) {
    auto rows = nd.ask<accounts_reply>(nd.directory, lookup_accounts_request{{}, account_ids});
    REQUIRE(rows.status == outcome::ok);
    std::map<u128, account> got;
    for (const account& a : rows.accounts) got[a.id] = a;
    for (u128 id : account_ids) {
      INFO("account " << to_string_u128(id));
      const account* want = sm.account_find(id);
      REQUIRE((want == nullptr) == (got.count(id) == 0));
      if (want == nullptr) continue;
      account x = *want, y = got[id];
      x.timestamp = y.timestamp = 0;
      CHECK(std::memcmp(&x, &y, sizeof x) == 0);
    }
    std::map<u128, transfer> found;
    for (const transfer& t : nd.lookup_transfers(transfer_ids)) found[t.id] = t;
    for (u128 id : transfer_ids) {
      INFO("transfer " << to_string_u128(id));
      const transfer* want = sm.transfer_find(id);
      REQUIRE((want == nullptr) == (found.count(id) == 0));
      if (want == nullptr) continue;
      transfer x = *want, y = found[id];
      x.timestamp = y.timestamp = 0;
      CHECK(std::memcmp(&x, &y, sizeof x) == 0);
    }
  }
};

// Per shard: debits equal credits over every account, kassa's own included.
void check_shards_balance(node& nd, uint32_t n, const std::vector<u128>& client_ids) {
  std::vector<std::vector<u128>> ids(n);
  for (u128 id : client_ids) ids[shard_of(id, n)].push_back(id);
  for (uint32_t s = 0; s < n; ++s) {
    auto rows = nd.ask<accounts_reply>(nd.shards[s], lookup_accounts_request{{}, ids[s]});
    auto own = nd.ask<accounts_reply>(nd.shards[s], system_accounts_request{});
    REQUIRE(rows.status == outcome::ok);
    REQUIRE(own.status == outcome::ok);
    rows.accounts.insert(rows.accounts.end(), own.accounts.begin(), own.accounts.end());
    u128 debits = 0, credits = 0;
    for (const account& a : rows.accounts) {
      debits += a.debits_posted + a.debits_pending;
      credits += a.credits_posted + a.credits_pending;
    }
    INFO("shard " << s);
    CHECK(debits == credits);
  }
}

// The split hot account tests' accounts: `hot` (its debits limited by its credits) and six
// payers, two in each of the `n` shards. `all` gets their ids, `hot` first.
std::vector<account> hot_and_payers(u128 hot, uint32_t n, std::vector<u128>& all) {
  std::vector<account> as{make_account(hot, 1, account_debits_must_not_exceed_credits)};
  all = {hot};
  for (uint32_t k = 0; k < 6; ++k) {
    all.push_back(id_in(k % n, n, 10 + k));
    as.push_back(make_account(all.back()));
  }
  return as;
}

// Thirty credits to `hot` from the payers all[1..6] (ids 100..129), through both sides of
// `t`; returns what they add up to.
u128 credit_hot(twin& t, u128 hot, const std::vector<u128>& all) {
  std::vector<transfer> credits;
  u128 total = 0;
  for (uint32_t k = 0; k < 30; ++k) {
    credits.push_back(make_transfer(100 + k, all[1 + k % 6], hot, 10 + k));
    total += 10 + k;
  }
  t.transfers(credits);
  return total;
}

std::string aname(uint32_t code) { return std::string(name(static_cast<account_result>(code))); }
std::string tname_of(uint32_t code) { return std::string(name(static_cast<transfer_result>(code))); }

} // namespace

TEST_CASE("a linked chain of accounts across shards is decided as one shard decides it", "[directory]") {
  temp_dir dir;
  const uint32_t n = 3;
  node nd(dir.path, n);
  twin t{nd};
  const u128 a = id_in(0, n, 1), b = id_in(1, n, 1), c = id_in(2, n, 1);

  // Every account applies, in its own shard, `linked` kept as the client wrote it.
  auto codes = t.accounts({make_account(a, 1, account_linked), make_account(b, 1, account_linked), make_account(c)});
  CHECK(codes == std::vector<uint32_t>{0, 0, 0});
  CHECK(has(nd.lookup(a, &nd.shards[0]).flags, account_linked));
  CHECK(nd.lookup(b, &nd.shards[1]).id == b);
  CHECK(nd.lookup(c, &nd.shards[2]).id == c);

  // The same chain again: the first event answers exists and the chain fails.
  codes = t.accounts({make_account(a, 1, account_linked), make_account(b, 1, account_linked), make_account(c)});
  CHECK(aname(codes[0]) == "exists");
  CHECK(aname(codes[2]) == "linked_event_failed");

  // A later event that fails undoes the earlier ones in every shard.
  const u128 d = id_in(0, n, 2), e = id_in(1, n, 2), f = id_in(2, n, 2);
  codes = t.accounts({make_account(d, 1, account_linked), make_account(e, 0, account_linked), make_account(f)});
  CHECK(aname(codes[0]) == "linked_event_failed");
  CHECK(aname(codes[1]) == "ledger_must_not_be_zero");
  // One that exists with other flags, mid-chain.
  codes = t.accounts({make_account(d, 1, account_linked), make_account(b, 1, account_history | account_linked),
                      make_account(f)});
  CHECK(aname(codes[1]) == "exists_with_different_flags");
  // A chain left open at the end of the request.
  codes = t.accounts({make_account(d), make_account(e, 1, account_linked), make_account(f, 1, account_linked)});
  CHECK(aname(codes[0]) == "ok");
  CHECK(aname(codes[1]) == "linked_event_failed");
  CHECK(aname(codes[2]) == "linked_event_chain_open");
  // A chain whose accounts a unit before it in the same request creates: it waits for the
  // next round and sees them.
  const u128 g = id_in(1, n, 3), h = id_in(2, n, 3);
  codes = t.accounts({make_account(g), make_account(g, 1, account_linked), make_account(h)});
  CHECK(aname(codes[1]) == "exists_with_different_flags");
  codes = t.accounts({make_account(h, 1, account_linked), make_account(e, 1, account_linked), make_account(f)});
  CHECK(codes == std::vector<uint32_t>{0, 0, 0});
  // The account code keeps its number, and is answered no more.
  CHECK(static_cast<uint32_t>(account_result::not_supported_across_shards) == 23);

  // Money moves through the new accounts as through any.
  CHECK(t.transfers({make_transfer(1, a, b, 10), make_transfer(2, b, h, 4)}) == std::vector<uint32_t>{0, 0});
  t.same({a, b, c, d, e, f, g, h}, {1, 2});
  check_shards_balance(nd, n, {a, b, c, d, e, f, g, h});
}

TEST_CASE("recovery creates a logged chain of accounts across shards whole", "[directory]") {
  temp_dir dir;
  const uint32_t n = 2;
  const u128 a = id_in(0, n, 1), b = id_in(1, n, 1);
  const account row_a = make_account(a, 1, account_linked), row_b = make_account(b);
  {
    // A crash inside a round: its record is in the log, shard 0 created its account, shard 1
    // nothing.
    node nd(dir.path, n, {}, false);
    ks::saga s;
    s.id = 7;
    s.accounts = {{0, system_unlinked, row_a}, {1, system_unlinked, row_b}};
    REQUIRE(nd.log->write({s}, {}).ok());
    REQUIRE(nd.ask<create_reply>(nd.shards[0], create_accounts_request{{}, {row_a}, {system_unlinked}}).failures.empty());
  }
  node nd(dir.path, n);
  // The client's retry (queued until recovery is done): the chain exists.
  auto r = nd.accounts({row_a, row_b});
  CHECK(aname(code_of(r, 0)) == "exists");
  CHECK(aname(code_of(r, 1)) == "linked_event_failed");
  CHECK(nd.lookup(b, &nd.shards[1]).id == b);
  CHECK(has(nd.lookup(a, &nd.shards[0]).flags, account_linked));
  std::vector<ks::saga> left;
  REQUIRE(nd.log->load(left).ok());
  CHECK(left.empty());
}

TEST_CASE("a credit that a logged round landed on a sub-account it created reads as the split account's after "
          "recovery", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 2;
  const u128 hot = id_in(1, n, 1);
  const u128 sub = ledger::system_ids::sub(hot, 0);
  const uint32_t s = shard_of(sub, n);
  const u128 payer = id_in(s, n, 2);
  account sub_row = make_account(sub, 1, account_debits_must_not_exceed_credits);
  sub_row.code = ledger::system_ids::sub_code;
  sub_row.user_data_128 = hot;
  sub_row.user_data_32 = 0;
  transfer t = make_transfer(500, payer, hot, 10);
  {
    node nd(dir.path, n);
    REQUIRE(nd.accounts({make_account(payer), make_account(hot)}).failures.empty());
  }
  {
    // A crash inside a round that split the hot account: its record (the new sub-account, and
    // the credit that landed on it) is in the log; no shard applied any of it.
    node nd(dir.path, n, {}, false);
    transfer leg = t;
    leg.credit_account_id = sub;
    ks::saga rec;
    rec.id = 3;
    rec.accounts = {{s, system_own, sub_row}};
    rec.transfers = {{s, system_own, leg}};
    REQUIRE(nd.log->write({rec}, {}).ok());
  }
  node nd(dir.path, n);
  // The client's retry after the lost reply: the transfer it sent, once, naming the account it named.
  auto r = nd.transfers({t});
  CHECK(tname(r, 0) == "exists");
  auto found = nd.lookup_transfers({t.id});
  REQUIRE(found.size() == 1);
  CHECK(found[0].credit_account_id == hot);
  CHECK(nd.lookup(hot).credits_posted == 10);
}

TEST_CASE("balancing transfers across shards move the amount one shard would, and store it as one shard does", "[directory]") {
  temp_dir dir;
  const uint32_t n = 2;
  node nd(dir.path, n);
  twin t{nd};
  const u128 bank = id_in(1, n, 1), a = id_in(0, n, 1), c = id_in(1, n, 2), x = id_in(0, n, 2);
  t.accounts({make_account(bank), make_account(a, 1, account_debits_must_not_exceed_credits),
              make_account(c, 1, account_credits_must_not_exceed_debits), make_account(x)});
  t.transfers({make_transfer(1, bank, a, 70), make_transfer(2, c, x, 50)});
  // A balancing debit capped at 100 moves a's 70; then a holds nothing: exceeds_credits.
  CHECK(t.transfers({make_transfer(3, a, bank, 100, transfer_balancing_debit)}) == std::vector<uint32_t>{0});
  CHECK(name(static_cast<transfer_result>(t.transfers({make_transfer(4, a, bank, 0, transfer_balancing_debit)})[0])) ==
        "exceeds_credits");
  // A balancing credit with no cap fills c up to its debits: 50. In a chain with a plain
  // event after it, across shards again.
  CHECK(t.transfers({make_transfer(5, x, c, 0, transfer_balancing_credit | transfer_linked),
                     make_transfer(6, x, bank, 1)}) == std::vector<uint32_t>{0, 0});
  // Retries: the cap that covers the stored amount answers exists, a smaller one differs.
  t.transfers({make_transfer(3, a, bank, 100, transfer_balancing_debit)});
  t.transfers({make_transfer(3, a, bank, 69, transfer_balancing_debit)});
  auto found = nd.lookup_transfers({3, 5});
  REQUIRE(found.size() == 2);
  for (const transfer& f : found) {
    CHECK(f.amount == (f.id == 3 ? 70 : 50));
    CHECK(has(f.flags, f.id == 3 ? transfer_balancing_debit : transfer_balancing_credit));
  }
  t.same({bank, a, c, x}, {1, 2, 3, 4, 5, 6});
  check_shards_balance(nd, n, {bank, a, c, x});

  // The legs replayed from the round's redo record answer exists (recovery is deterministic).
  const transfer debit_leg = [&] {
    transfer l = make_transfer(3, a, sid::clearing(0, 1, 1), 70, transfer_balancing_debit);
    return l;
  }();
  auto again = nd.ask<create_reply>(nd.shards[0], create_transfers_request{{}, {debit_leg}, {system_unlinked}});
  CHECK(tname(again, 0) == "exists");
}

TEST_CASE("a balancing debit of a split account across shards gathers it first", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 3;
  const u128 hot = id_in(0, n, 3);
  directory_options o;
  o.hot_static.push_back(hot_account_rule{hot, 6});
  o.sweep_interval_ns = 0; // never swept
  node nd(dir.path, n, o);
  twin t{nd};
  std::vector<u128> all;
  std::vector<account> as = hot_and_payers(hot, n, all);
  const u128 out = id_in(2, n, 30);
  as.push_back(make_account(out));
  all.push_back(out);
  t.accounts(as);
  credit_hot(t, hot, all);
  REQUIRE(nd.lookup(hot, &nd.shards[0]).credits_posted == 0); // all on sub-accounts
  CHECK(t.transfers({make_transfer(200, hot, out, 0, transfer_balancing_debit)}) == std::vector<uint32_t>{0});
  t.same(all, {200});
}

TEST_CASE("a chain that mixes a post with a debit of a split account is judged on all the account holds", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 3;
  const u128 hot = id_in(0, n, 3);
  directory_options o;
  o.hot_static.push_back(hot_account_rule{hot, 6});
  o.sweep_interval_ns = 0; // never swept
  node nd(dir.path, n, o);
  twin t{nd};
  std::vector<u128> all;
  std::vector<account> as = hot_and_payers(hot, n, all);
  const u128 p = id_in(0, n, 40), q = id_in(0, n, 41), out = id_in(0, n, 42);
  for (u128 id : {p, q, out}) {
    as.push_back(make_account(id));
    all.push_back(id);
  }
  t.accounts(as);
  const u128 total = credit_hot(t, hot, all);
  t.transfers({make_transfer(300, p, q, 5, transfer_pending), make_transfer(301, p, q, 5, transfer_pending)});
  // A post, then a debit of exactly what the account holds over all its sub-accounts.
  auto post_first = make_resolve(302, 300, transfer_post_pending); // the whole amount
  post_first.flags |= transfer_linked;
  CHECK(t.transfers({post_first, make_transfer(303, hot, out, total)}) == std::vector<uint32_t>{0, 0});
  // A void linked to a balancing debit: more credits first, then the clamp takes all of them.
  CHECK(t.transfers({make_transfer(310, all[2], hot, 25), make_transfer(311, all[3], hot, 17)}) ==
        std::vector<uint32_t>{0, 0});
  auto void_first = make_resolve(304, 301, transfer_void_pending);
  void_first.flags |= transfer_linked;
  CHECK(t.transfers({void_first, make_transfer(305, hot, out, 0, transfer_balancing_debit)}) ==
        std::vector<uint32_t>{0, 0});
  t.same(all, {300, 301, 302, 303, 304, 305, 310, 311});
}

TEST_CASE("a split account a closing credit closed holds all it has when a void reopens it", "[directory][hot]") {
  temp_dir dir;
  const uint32_t n = 3;
  const u128 hot = id_in(0, n, 3);
  directory_options o;
  o.hot_static.push_back(hot_account_rule{hot, 6});
  o.sweep_interval_ns = 0; // never swept
  node nd(dir.path, n, o);
  twin t{nd};
  std::vector<u128> all;
  std::vector<account> as = hot_and_payers(hot, n, all);
  const u128 out = id_in(1, n, 42);
  as.push_back(make_account(out));
  all.push_back(out);
  t.accounts(as);
  const u128 total = credit_hot(t, hot, all);
  REQUIRE(nd.lookup(hot, &nd.shards[0]).credits_posted == 0); // all on sub-accounts
  // A pending closing credit closes the account; a credit after it is refused.
  CHECK(t.transfers({make_transfer(200, out, hot, 1, transfer_pending | transfer_closing_credit),
                     make_transfer(201, all[1], hot, 5)}) ==
        std::vector<uint32_t>{0, static_cast<uint32_t>(transfer_result::credit_account_already_closed)});
  // Voiding it reopens the account, and a debit linked to the void takes all it holds.
  auto reopen = make_resolve(202, 200, transfer_void_pending);
  reopen.flags |= transfer_linked;
  CHECK(t.transfers({reopen, make_transfer(203, hot, out, total)}) == std::vector<uint32_t>{0, 0});
  t.same(all, {200, 201, 202, 203});
  check_shards_balance(nd, n, all);
}

TEST_CASE("pending, post, void and closing transfers across shards answer as on one shard", "[directory]") {
  temp_dir dir;
  const uint32_t n = 3;
  node nd(dir.path, n);
  twin tw(nd);
  const u128 a = id_in(0, n, 1), b = id_in(1, n, 1), c = id_in(2, n, 1), f = id_in(1, n, 2);
  tw.accounts({make_account(a, 1, account_debits_must_not_exceed_credits), make_account(b), make_account(c),
               make_account(f)});
  tw.transfers({make_transfer(1, f, a, 100)});
  // A hold across shards counts against the limit of its debit account, as on one shard.
  CHECK(tw.transfers({make_transfer(10, a, b, 60, transfer_pending)})[0] == 0);
  CHECK(tname_of(tw.transfers({make_transfer(11, a, c, 50, transfer_pending)})[0]) == "exceeds_credits");
  // Posted in part; posted again; voided after: the codes one shard gives.
  CHECK(tw.transfers({make_resolve(12, 10, transfer_post_pending, 40)})[0] == 0);
  CHECK(tname_of(tw.transfers({make_resolve(13, 10, transfer_post_pending)})[0]) == "pending_transfer_already_posted");
  CHECK(tname_of(tw.transfers({make_resolve(14, 10, transfer_void_pending)})[0]) == "pending_transfer_already_posted");
  // The rest of a's money is free again: a hold of 60 fits.
  CHECK(tw.transfers({make_transfer(15, a, c, 60, transfer_pending)})[0] == 0);
  CHECK(tw.transfers({make_resolve(16, 15, transfer_void_pending)})[0] == 0);
  CHECK(tname_of(tw.transfers({make_resolve(17, 15, transfer_post_pending)})[0]) == "pending_transfer_already_voided");
  // A post that names other accounts or a larger amount is refused as on one shard.
  CHECK(tw.transfers({make_transfer(18, a, c, 10, transfer_pending)})[0] == 0);
  transfer wrong = make_resolve(19, 18, transfer_post_pending, 11);
  CHECK(tname_of(tw.transfers({wrong})[0]) == "exceeds_pending_transfer_amount");
  wrong = make_resolve(20, 18, transfer_post_pending);
  wrong.credit_account_id = b;
  CHECK(tname_of(tw.transfers({wrong})[0]) == "pending_transfer_has_different_credit_account_id");
  // In one request: a hold and its post, linked; then a chain whose post fails undoes the hold.
  tw.transfers({make_transfer(21, a, b, 5, transfer_pending | transfer_linked), make_resolve(22, 21, transfer_post_pending)});
  auto failed = tw.transfers({make_transfer(23, a, c, 5, transfer_pending | transfer_linked),
                              make_resolve(24, 23, transfer_post_pending, 6)});
  CHECK(tname_of(failed[1]) == "exceeds_pending_transfer_amount");
  // Closing across shards: the pending transfer closes c (not the clearing account in c's
  // shard); a debit of c is refused; the void opens c again.
  CHECK(tw.transfers({make_transfer(25, c, b, 1, transfer_pending | transfer_closing_debit)})[0] == 0);
  CHECK(tname_of(tw.transfers({make_transfer(26, c, a, 1)})[0]) == "debit_account_already_closed");
  CHECK(tname_of(tw.transfers({make_transfer(27, b, c, 1)})[0]) == "credit_account_already_closed");
  CHECK(tw.transfers({make_resolve(28, 25, transfer_void_pending)})[0] == 0);
  CHECK(tw.transfers({make_transfer(29, c, a, 1)})[0] == 0);
  // A repeat of a transfer across shards answers exists; with other fields, the first that differs.
  CHECK(tname_of(tw.transfers({make_transfer(10, a, b, 60, transfer_pending)})[0]) == "exists");
  CHECK(tname_of(tw.transfers({make_transfer(10, a, b, 61, transfer_pending)})[0]) == "exists_with_different_amount");
  CHECK(tname_of(tw.transfers({make_resolve(12, 10, transfer_post_pending, 40)})[0]) == "exists");
  tw.same({a, b, c, f}, {1, 10, 11, 12, 15, 16, 18, 21, 22, 23, 24, 25, 26, 27, 28, 29});
  check_shards_balance(nd, n, {a, b, c, f});
}

TEST_CASE("a pending transfer across shards expires once, at the directory's clock, in both shards", "[directory]") {
  temp_dir dir;
  const uint32_t n = 2;
  node nd(dir.path, n);
  const u128 a = id_in(0, n, 1), b = id_in(1, n, 1), f = id_in(1, n, 2);
  REQUIRE(nd.accounts({make_account(a, 1, account_debits_must_not_exceed_credits), make_account(b), make_account(f)})
              .failures.empty());
  REQUIRE(nd.transfers({make_transfer(1, f, a, 100)}).failures.empty());
  transfer hold = make_transfer(2, a, b, 70, transfer_pending);
  hold.timeout = 1;
  transfer quick = make_transfer(3, a, b, 10, transfer_pending);
  quick.timeout = 1;
  REQUIRE(nd.transfers({hold, quick}).failures.empty());
  CHECK(nd.transfers({make_resolve(4, 3, transfer_post_pending)}).failures.empty()); // before its deadline
  // After the deadline: a post is refused, and both legs' holds are released.
  bool released = false;
  for (int i = 0; i < 100 && !released; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    released = nd.lookup(a).debits_pending == 0 && nd.lookup(b).credits_pending == 0;
  }
  CHECK(released);
  CHECK(tname(nd.transfers({make_resolve(5, 2, transfer_post_pending)}), 0) == "pending_transfer_expired");
  CHECK(tname(nd.transfers({make_resolve(6, 2, transfer_void_pending)}), 0) == "pending_transfer_expired");
  const account row = nd.lookup(a);
  CHECK(row.debits_posted == 10);
  CHECK(row.credits_posted == 100);
  // The money is free again: a debit of the rest applies.
  CHECK(nd.transfers({make_transfer(7, a, b, 90)}).failures.empty());
  check_shards_balance(nd, n, {a, b, f});
}

TEST_CASE("after a crash, recovery finishes a logged post across shards in both shards", "[directory]") {
  temp_dir dir;
  const uint32_t n = 2;
  const u128 a = id_in(0, n, 1), b = id_in(1, n, 1), f = id_in(0, n, 2);
  {
    node nd(dir.path, n);
    REQUIRE(nd.accounts({make_account(a), make_account(b), make_account(f)}).failures.empty());
    REQUIRE(nd.transfers({make_transfer(1, f, a, 100), make_transfer(2, a, b, 30, transfer_pending)}).failures.empty());
  }
  {
    // A crash inside the round of a post: its record is in the log, shard 0 applied its leg,
    // shard 1 nothing.
    node nd(dir.path, n, {}, false);
    transfer debit_leg = make_resolve(3, 2, transfer_post_pending);
    debit_leg.debit_account_id = a;
    debit_leg.credit_account_id = sid::clearing(0, 1, 1, true);
    transfer credit_leg = make_resolve(3, 2, transfer_post_pending);
    credit_leg.debit_account_id = sid::clearing(1, 0, 1, true);
    credit_leg.credit_account_id = b;
    ks::saga s;
    s.id = 9;
    s.transfers = {{0, system_unlinked, debit_leg}, {1, system_unlinked, credit_leg}};
    REQUIRE(nd.log->write({s}, {}).ok());
    REQUIRE(nd.ask<create_reply>(nd.shards[0], create_transfers_request{{}, {debit_leg}, {system_unlinked}}).failures.empty());
  }
  node nd(dir.path, n);
  // The client's retry: the post exists whole.
  CHECK(tname(nd.transfers({make_resolve(3, 2, transfer_post_pending)}), 0) == "exists");
  CHECK(nd.lookup(b).credits_posted == 30);
  CHECK(nd.lookup(b).credits_pending == 0);
  CHECK(nd.lookup(a).debits_posted == 30);
  auto shown = nd.lookup_transfers({2, 3});
  REQUIRE(shown.size() == 2);
  CHECK(shown[1].debit_account_id == a);
  CHECK(shown[1].credit_account_id == b);
  check_shards_balance(nd, n, {a, b, f});
}

namespace {

// An account's history as one client reads it: transfer id -> timestamp, and the timestamps
// of its balance snapshots.
std::map<u128, uint64_t> history_stamps(node& nd, u128 account, std::vector<uint64_t>* balances = nullptr) {
  ks::account_filter f;
  f.account_id = account;
  f.limit = 100;
  auto got = nd.ask<transfers_reply>(nd.directory, account_transfers_request{{}, f});
  REQUIRE(got.status == outcome::ok);
  std::map<u128, uint64_t> out;
  for (const transfer& t : got.transfers) out[t.id] = t.timestamp;
  if (balances != nullptr) {
    auto b = nd.ask<balances_reply>(nd.directory, account_balances_request{{}, f});
    REQUIRE(b.status == outcome::ok);
    for (const account_balance& x : b.balances) balances->push_back(x.timestamp);
  }
  return out;
}

} // namespace

TEST_CASE("a transfer across shards has one timestamp: in lookup_transfers, in both histories, after recovery",
          "[directory]") {
  temp_dir dir;
  const uint32_t n = 3;
  const u128 a = id_in(0, n, 1), b = id_in(1, n, 1), c = id_in(2, n, 1);
  std::map<u128, uint64_t> stamp; // transfer id -> the timestamp lookup_transfers shows
  {
    node nd(dir.path, n);
    REQUIRE(nd.accounts({make_account(a, 1, account_history), make_account(b, 1, account_history),
                         make_account(c, 1, account_history)})
                .failures.empty());
    // Plain, pending and post across shards; a request of several in a row.
    REQUIRE(nd.transfers({make_transfer(1, c, a, 100)}).failures.empty());
    REQUIRE(nd.transfers({make_transfer(2, a, b, 30), make_transfer(3, a, c, 10, transfer_pending)}).failures.empty());
    REQUIRE(nd.transfers({make_resolve(4, 3, transfer_post_pending), make_transfer(5, b, c, 1),
                          make_transfer(6, c, a, 1), make_transfer(7, a, b, 1)})
                .failures.empty());
    for (const transfer& t : nd.lookup_transfers({1, 2, 3, 4, 5, 6, 7})) stamp[t.id] = t.timestamp;
    REQUIRE(stamp.size() == 7);
    // One clock for every shard: the events of a request are stamped in order, wherever they go.
    for (u128 id = 2; id < 7; ++id) CHECK(stamp[id] < stamp[id + 1]);
    for (u128 account : {a, b, c}) {
      INFO("account " << to_string_u128(account));
      std::vector<uint64_t> balances;
      const auto seen = history_stamps(nd, account, &balances);
      for (const auto& [id, ts] : seen) {
        INFO("transfer " << to_string_u128(id));
        CHECK(ts == stamp[id]);
      }
      std::vector<uint64_t> want;
      for (const auto& [id, ts] : seen) want.push_back(ts);
      std::sort(want.begin(), want.end());
      CHECK(balances == want); // a snapshot at each transfer's one timestamp
    }
  }
  {
    // A crash inside the round of a transfer across shards: its record is in the log with its
    // stamp, shard 0 applied its leg, shard 1 nothing.
    node nd(dir.path, n, {}, false);
    const uint64_t at = stamp[7] + 1000;
    transfer debit_leg = make_transfer(8, a, sid::clearing(0, 1, 1, false), 2);
    transfer credit_leg = make_transfer(8, sid::clearing(1, 0, 1, false), b, 2);
    ks::saga s;
    s.id = 9;
    transfer logged_debit = debit_leg, logged_credit = credit_leg;
    logged_debit.timestamp = logged_credit.timestamp = at;
    s.transfers = {{0, system_unlinked, logged_debit}, {1, system_unlinked, logged_credit}};
    REQUIRE(nd.log->write({s}, {}).ok());
    REQUIRE(nd.ask<create_reply>(nd.shards[0], create_transfers_request{{}, {debit_leg}, {system_unlinked}, {at}})
                .failures.empty());
  }
  node nd(dir.path, n);
  // Recovery applies shard 1's leg at the stamp the record holds; later rounds stamp above
  // every shard's latest.
  CHECK(tname(nd.transfers({make_transfer(8, a, b, 2)}), 0) == "exists");
  REQUIRE(nd.transfers({make_transfer(10, b, a, 1)}).failures.empty());
  for (const transfer& t : nd.lookup_transfers({8, 10})) stamp[t.id] = t.timestamp;
  CHECK(stamp[8] == stamp[7] + 1000);
  CHECK(history_stamps(nd, a)[8] == stamp[8]);
  CHECK(history_stamps(nd, b)[8] == stamp[8]);
  CHECK(stamp[10] > stamp[8]);
  CHECK(history_stamps(nd, a)[10] == stamp[10]);
  CHECK(history_stamps(nd, b)[10] == stamp[10]);
  check_shards_balance(nd, n, {a, b, c});
}

TEST_CASE("a chain answers its first failing event, in order, whatever the shards hold of later ones",
          "[directory][hot]") {
  // Three orders a shard keeps: an event that fails its own checks comes before a later event
  // whose id exists; in a chain the request leaves open, the events before the last are judged
  // first; a chain that closes an account refuses its later credits to it (a split account's
  // too: they may not land on a sub-account).
  temp_dir dir;
  const uint32_t n = 3;
  const u128 hot = id_in(0, n, 40);
  directory_options o;
  o.hot_static.push_back(hot_account_rule{hot, 4});
  o.sweep_interval_ns = 0;
  node nd(dir.path, n, o);
  twin t{nd};
  const u128 a = id_in(1, n, 41), b = id_in(2, n, 42), c = id_in(0, n, 43);
  t.accounts({make_account(hot), make_account(a), make_account(b), make_account(c, 2)});
  CHECK(t.transfers({make_transfer(1, a, b, 10)}) == std::vector<uint32_t>{0});

  // An id of 0, then the id the shards hold with another amount: id_must_not_be_zero first.
  auto codes = t.transfers({make_transfer(0, a, b, 5, transfer_linked), make_transfer(1, a, b, 11)});
  CHECK(tname_of(codes[0]) == "id_must_not_be_zero");
  CHECK(tname_of(codes[1]) == "linked_event_failed");
  // One that fails on its accounts' ledgers, then the id the shards hold.
  codes = t.transfers({make_transfer(2, a, c, 5, transfer_linked), make_transfer(1, a, b, 10)});
  CHECK(tname_of(codes[0]) == "accounts_must_have_the_same_ledger");
  // A chain left open whose first event fails: that event's code, not linked_event_failed.
  codes = t.transfers({make_transfer(3, a, c, 5, transfer_linked), make_transfer(4, a, b, 5, transfer_linked)});
  CHECK(tname_of(codes[0]) == "accounts_must_have_the_same_ledger");
  CHECK(tname_of(codes[1]) == "linked_event_failed");
  // A chain that closes the split account, then credits it: refused whole, as on one shard.
  codes = t.transfers({make_transfer(5, a, hot, 5, transfer_linked | transfer_pending | transfer_closing_credit),
                       make_transfer(6, b, hot, 7)});
  CHECK(tname_of(codes[0]) == "linked_event_failed");
  CHECK(tname_of(codes[1]) == "credit_account_already_closed");
  t.same({hot, a, b, c}, {1, 2, 3, 4, 5, 6});
  check_shards_balance(nd, n, {hot, a, b, c});
}

TEST_CASE("a chain fails at its first failing event, also when a later one names an id the shards hold", "[directory]") {
  temp_dir dir;
  const uint32_t n = 2;
  node nd(dir.path, n);
  twin tw(nd);
  const u128 a = id_in(0, n, 1), b = id_in(1, n, 1), l = id_in(0, n, 2);
  tw.accounts({make_account(a), make_account(b), make_account(l, 1, account_debits_must_not_exceed_credits)});
  CHECK(tw.transfers({make_transfer(1, a, b, 5)})[0] == 0);
  // The first event fails, before the repeat of transfer 1 (as exists, or with other flags).
  auto codes = tw.transfers({make_transfer(2, id_in(1, n, 9), b, 1, transfer_linked), make_transfer(1, a, b, 5)});
  CHECK(tname_of(codes[0]) == "debit_account_not_found");
  codes = tw.transfers({make_transfer(3, a, b, 1, transfer_linked), make_transfer(4, l, a, 1, transfer_linked),
                        make_transfer(1, a, b, 5, transfer_linked), make_transfer(5, a, b, 1)});
  CHECK(tname_of(codes[1]) == "exceeds_credits");
  // Events before the repeat that pass leave the repeat's answer, and nothing of theirs.
  codes = tw.transfers({make_transfer(6, a, b, 1, transfer_linked), make_transfer(1, a, b, 5, transfer_linked),
                        make_transfer(7, a, b, 1)});
  CHECK(tname_of(codes[1]) == "exists_with_different_flags");
  tw.same({a, b, l}, {1, 2, 3, 4, 5, 6, 7});
}
