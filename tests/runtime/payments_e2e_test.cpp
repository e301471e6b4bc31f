// End-to-end: the payment core in a real kassad against a real kassa-channel-sim, both on
// 127.0.0.1. Every payment type and every exception, each followed by the money check: the
// ledger balances (kassa verify on the stopped store), and each provider's clearing account
// holds exactly what the provider's own statement says moved (charges - payouts - refunds).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "ledger/payments/case_resolution.hpp"
#include "ledger/payments/ids.hpp"
#include "ledger/payments/rules.hpp"
#include "ledger/payments/records.hpp"
#include "tests/channels/sim_fixture.hpp"
#include "tests/payments_money.hpp"
#include "tests/process.hpp"
#include "tests/runtime/kassad_fixture.hpp"
#include "tests/runtime/scrape.hpp"

using namespace kassa;
using namespace kassa::test;
using namespace std::chrono_literals;
namespace lp = kassa::ledger::payments;
using lp::kind;
using lp::order_state;
using lp::payment_result;

namespace {

constexpr uint32_t usd = 840;

// Runs `argv` every 100 ms until `done` holds for its output or `timeout` passes; returns the
// last output (the caller checks it).
std::string poll(const std::vector<std::string>& argv, const std::function<bool(const std::string&)>& done,
                 std::chrono::milliseconds timeout = 10s) {
  std::string out;
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    run(argv, out, 20s);
    if (done(out) || std::chrono::steady_clock::now() >= until) return out;
    std::this_thread::sleep_for(100ms);
  }
}

// True when the output holds `needle`.
std::function<bool(const std::string&)> has(std::string needle) {
  return [needle = std::move(needle)](const std::string& out) { return out.find(needle) != std::string::npos; };
}

// Providers the simulator plays: alpha (fast, tried first) and beta.
const char* sim_providers =
    "  alpha:\n"
    "    latency: {min_ms: 1, median_ms: 3, p99_ms: 10, max_ms: 20}\n"
    "    callback_delay_ms: 600\n"
    "    late_callback_ms: 400\n"
    "    timeout_hold_ms: 2000\n"
    "    mismatch_delta: 7\n"
    "  beta:\n"
    "    latency: {min_ms: 1, median_ms: 3, p99_ms: 10, max_ms: 20}\n"
    "    credentials_required: true\n";

std::string payments_yaml(uint16_t sim_port, const std::string& exceptions = "", const std::string& extra = "",
                          const std::string& reconciliation = "  reconciliation: {enabled: true, interval_ms: 100, grace_ms: 60000}\n") {
  const std::string url = "http://127.0.0.1:" + std::to_string(sim_port);
  return "payments:\n"
         "  enabled: true\n"
         "  flow_wait_ms: 4000\n"
         "  ledgers: [{ledger: 840, currency: USD}]\n"
         "  providers:\n"
         "    - {name: alpha, url: \"" + url + "/p/alpha\", ledgers: [840], priority: 1, timeout_ms: 400,\n"
         "       retries_max: 0, events_poll_ms: 50, status_query: {interval_ms: 100, queries_max: 100},\n"
         "       breaker: {failures_min: 3, window_ms: 10000, open_ms: 3000}}\n"
         "    - {name: beta, url: \"" + url + "/p/beta\", ledgers: [840], priority: 2, timeout_ms: 400,\n"
         "       retries_max: 0, events_poll_ms: 50, credentials: true,\n"
         "       breaker: {failures_min: 3, window_ms: 10000, open_ms: 3000},\n"
         "       status_query: {interval_ms: 100, queries_max: 100}}\n"
         "  fees:\n"
         "    - {type: withdrawal, ledger: 840, fixed: 25}\n"
         "    - {type: transfer, ledger: 840, rate_ppm: 10000, rounding: up}\n"
         "  limits:\n"
         "    - {type: transfer, ledger: 840, account_day_max: 10000}\n"
         "    - {type: withdrawal, ledger: 840, payment_max: 100000}\n" +
         (exceptions.empty() ? "" : "  exceptions:\n" + exceptions) +
         reconciliation + extra;
}

lp::payment_command command(kind k, u128 key, u128 order_id, u128 account, u128 amount, uint32_t ledger = usd) {
  lp::payment_command c{};
  c.key = key;
  c.order_id = order_id;
  c.account_id = account;
  c.amount = amount;
  c.ledger = k == kind::pay || k == kind::refund ? 0 : ledger;
  c.kind = uint16_t(k);
  if (k == kind::refund) c.account_id = 0;
  return c;
}

lp::payment_command with_provider(lp::payment_command c, const char* name) {
  std::strncpy(c.provider, name, sizeof c.provider);
  return c;
}

lp::payment_command paying(u128 key, u128 order_id, u128 payer, u128 amount, lp::source s) {
  auto c = command(kind::pay, key, order_id, payer, amount);
  c.source = uint16_t(s);
  return c;
}

struct payments_env {
  channel_sim sim;
  std::unique_ptr<kassad_instance> kassad;
  client::blocking_client client;
  std::string config_extra;

  explicit payments_env(const std::string& exceptions = "", const std::string& extra = "",
                        const std::string& reconciliation = "", const std::string& store_extra = "",
                        const std::function<void(std::string&)>& edit = {})
      : sim(sim_providers, 42) {
    config_extra = reconciliation.empty() ? payments_yaml(sim.port(), exceptions, extra)
                                          : payments_yaml(sim.port(), exceptions, extra, reconciliation);
    if (edit) edit(config_extra);
    kassad = std::make_unique<kassad_instance>(store_extra + config_extra);
    client = kassad->connect();
  }

  lp::payment_reply submit(const lp::payment_command& c) {
    std::vector<lp::payment_reply> r;
    try {
      r = client.submit_payments({c});
    } catch (const std::exception& e) {
      FAIL(e.what() << "\nkassad:\n" << kassad->output());
    }
    REQUIRE(r.size() == 1);
    return r[0];
  }

  lp::order order(u128 id) {
    auto rows = client.lookup_orders({id});
    REQUIRE(rows.size() == 1);
    return rows[0];
  }

  // Polls until the row reaches `state` (or the time is up); returns the row.
  lp::order wait_for(u128 id, order_state state, std::chrono::milliseconds timeout = 10s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    lp::order row{};
    while (std::chrono::steady_clock::now() < until) {
      auto rows = client.lookup_orders({id});
      if (!rows.empty()) {
        row = rows[0];
        if (row.state == uint16_t(state)) return row;
      }
      std::this_thread::sleep_for(50ms);
    }
    FAIL("row " << to_string_u128(id) << " did not reach " << lp::name(state) << ", it is "
                << lp::name(static_cast<order_state>(row.state)));
    return row;
  }

  void account(u128 id, uint16_t flags = ledger::account_debits_must_not_exceed_credits) {
    ledger::account a{};
    a.id = id;
    a.ledger = usd;
    a.code = 1;
    a.flags = flags;
    auto out = client.create_accounts({a});
    for (const auto& o : out) REQUIRE(o.result == ledger::account_result::ok);
  }

  // The payer 1 (10000 topped up), the payer 2 who pays by card, and the merchant 100.
  void payers_and_merchant() {
    account(1);
    account(2);
    account(100, 0);
    REQUIRE(submit(command(kind::topup, 1, 1, 1, 10000)).result == uint32_t(payment_result::ok));
  }

  ledger::account lookup(u128 id) {
    auto a = client.lookup_accounts({id});
    REQUIRE(a.size() == 1);
    return a[0];
  }

  // credits - debits posted (a user's spendable balance when nothing is pending)
  __int128 balance(u128 id) {
    auto a = lookup(id);
    return static_cast<__int128>(a.credits_posted) - static_cast<__int128>(a.debits_posted);
  }
  __int128 pending_debits(u128 id) { return static_cast<__int128>(lookup(id).debits_pending); }

  // What the provider is owed by kassa's books: debits - credits of its clearing account.
  __int128 clearing(uint32_t provider) { return clearing_net(lookup(lp::account_id(lp::role::provider_clearing, provider, 0, usd))); }
  __int128 suspense() {
    auto a = lookup(lp::account_id(lp::role::suspense, 0, 0, usd));
    return static_cast<__int128>(a.credits_posted) - static_cast<__int128>(a.debits_posted);
  }

  // What the provider's statement says moved: charges in, payouts and refunds out.
  __int128 statement_net(const std::string& provider) {
    return test::statement_net([this](const std::string& target) { return sim.json(false, target); }, provider);
  }

  // No money created or lost: each provider's clearing account mirrors its statement, then
  // the stopped store verifies (balances, totals, indexes).
  void check_money() {
    // callbacks and late successes may still be on the way: wait until the books agree
    const auto until = std::chrono::steady_clock::now() + 30s; // generous: sanitizer builds on a loaded machine
    while (std::chrono::steady_clock::now() < until &&
           (clearing(0) != statement_net("alpha") || clearing(1) != statement_net("beta")))
      std::this_thread::sleep_for(100ms);
    CHECK(clearing(0) == statement_net("alpha"));
    CHECK(clearing(1) == statement_net("beta"));
    // the general ledger is derived off the core link, a little later: wait for it
    poll({KASSA_CLI, "gl", "--data", kassad->data_dir()}, has("(behind by 0)"));
    client.close();
    const int stopped = kassad->stop();
    INFO(kassad->output());
    REQUIRE(stopped == 0);
    std::string out;
    CHECK(run({KASSA_CLI, "verify", "--data", kassad->data_dir()}, out, 60s) == 0);
    INFO(out);
    CHECK(out.find("verify: consistent") != std::string::npos);
    // the general ledger was derived from the journal, balances, and has caught up
    CHECK(run({KASSA_CLI, "gl", "--data", kassad->data_dir()}, out, 60s) == 0);
    INFO(out);
    CHECK(out.find("(behind by 0)") != std::string::npos);
    CHECK(out.find("NOT BALANCED") == std::string::npos);
  }
};

} // namespace

TEST_CASE("a topup credits the user once the provider confirms; a repeated key moves nothing twice", "[e2e][payments]") {
  payments_env env;
  env.account(1);
  auto r = env.submit(command(kind::topup, 101, 1001, 1, 5000));
  CHECK(r.result == uint32_t(payment_result::ok));
  CHECK(r.state == uint16_t(order_state::completed));
  CHECK(r.amount == 5000);
  CHECK(env.balance(1) == 5000);
  // the same command again: exists, the same outcome, no second credit
  r = env.submit(command(kind::topup, 101, 1001, 1, 5000));
  CHECK(r.result == uint32_t(payment_result::exists));
  CHECK(r.state == uint16_t(order_state::completed));
  CHECK(env.balance(1) == 5000);
  // the same key with another amount is refused and changes nothing
  r = env.submit(command(kind::topup, 101, 1001, 1, 5001));
  CHECK(r.result == uint32_t(payment_result::exists_with_different_fields));
  // a new key for an order id in use
  r = env.submit(command(kind::topup, 102, 1001, 1, 10));
  CHECK(r.result == uint32_t(payment_result::order_exists));
  // bad input: a clear code, nothing moves
  CHECK(env.submit(command(kind::topup, 0, 1003, 1, 10)).result == uint32_t(payment_result::key_must_not_be_zero));
  CHECK(env.submit(command(kind::topup, 103, 1003, 1, 0)).result == uint32_t(payment_result::amount_must_not_be_zero));
  CHECK(env.submit(command(kind::topup, 104, 1004, 1, 10, 978)).result == uint32_t(payment_result::ledger_not_served));
  CHECK(env.submit(command(kind::topup, 105, 1005, 999, 10)).result == uint32_t(payment_result::account_not_found));
  CHECK(env.submit(with_provider(command(kind::topup, 106, 1006, 1, 10), "nobody")).result ==
        uint32_t(payment_result::provider_unknown));
  // a declined topup fails and credits nothing
  env.sim.force("alpha", {"declined"});
  r = env.submit(command(kind::topup, 107, 1007, 1, 700));
  CHECK(r.result == uint32_t(payment_result::provider_declined));
  CHECK(r.state == uint16_t(order_state::failed));
  CHECK(env.balance(1) == 5000);
  // concurrent duplicates of one key: one credit
  std::vector<lp::payment_command> same(8, command(kind::topup, 108, 1008, 1, 300));
  auto replies = env.client.submit_payments(same);
  size_t firsts = 0;
  for (const auto& x : replies) {
    if (x.result == uint32_t(payment_result::ok) || x.result == uint32_t(payment_result::in_progress)) ++firsts;
    else CHECK(x.result == uint32_t(payment_result::exists));
  }
  CHECK(firsts == 1);
  env.wait_for(1008, order_state::completed);
  CHECK(env.balance(1) == 5300);
  env.check_money();
}

TEST_CASE("a withdrawal holds the money, posts it with its fee on success and releases it on decline", "[e2e][payments]") {
  payments_env env;
  env.account(1);
  REQUIRE(env.submit(command(kind::topup, 1, 1, 1, 10000)).result == uint32_t(payment_result::ok));
  auto r = env.submit(command(kind::withdrawal, 2, 2, 1, 4000));
  CHECK(r.result == uint32_t(payment_result::ok));
  CHECK(r.fee == 25);
  CHECK(env.balance(1) == 10000 - 4000 - 25);
  CHECK(env.pending_debits(1) == 0);
  env.sim.force("alpha", {"declined"});
  r = env.submit(command(kind::withdrawal, 3, 3, 1, 1000));
  CHECK(r.result == uint32_t(payment_result::provider_declined));
  CHECK(env.balance(1) == 10000 - 4025);
  CHECK(env.pending_debits(1) == 0); // the hold went back
  // more than the balance: refused by the hold, nothing sent to the provider
  r = env.submit(command(kind::withdrawal, 4, 4, 1, 9000));
  CHECK(r.result == uint32_t(payment_result::insufficient_funds));
  // above the per-payment limit of the YAML
  r = env.submit(command(kind::withdrawal, 5, 5, 1, 100001));
  CHECK(r.result == uint32_t(payment_result::limit_exceeded));
  CHECK(env.balance(1) == 10000 - 4025);
  env.check_money();
}

TEST_CASE("a transfer between users honours the per-day limit, the fee and the balance", "[e2e][payments]") {
  payments_env env;
  env.account(1);
  env.account(2);
  REQUIRE(env.submit(command(kind::topup, 1, 1, 1, 50000)).result == uint32_t(payment_result::ok));
  auto t = command(kind::transfer, 2, 2, 1, 6000);
  t.counterparty_id = 2;
  auto r = env.submit(t);
  CHECK(r.result == uint32_t(payment_result::ok));
  CHECK(r.fee == 60); // 1% rounded up
  CHECK(env.balance(2) == 6000);
  CHECK(env.balance(1) == 50000 - 6060);
  // 6000 + 5000 > 10000 a day
  t = command(kind::transfer, 3, 3, 1, 5000);
  t.counterparty_id = 2;
  CHECK(env.submit(t).result == uint32_t(payment_result::limit_exceeded));
  // a refused transfer does not use up the day's limit
  t = command(kind::transfer, 4, 4, 1, 4000);
  t.counterparty_id = 2;
  CHECK(env.submit(t).result == uint32_t(payment_result::ok));
  CHECK(env.balance(2) == 10000);
  t = command(kind::transfer, 5, 5, 1, 1);
  t.counterparty_id = 1;
  CHECK(env.submit(t).result == uint32_t(payment_result::accounts_must_be_different));
  env.check_money();
}

TEST_CASE("an order paid from balance and through a provider is refunded, never beyond what was captured, also concurrently",
          "[e2e][payments]") {
  payments_env env;
  env.payers_and_merchant();
  auto r = env.submit(command(kind::create_order, 10, 500, 100, 9000));
  CHECK(r.result == uint32_t(payment_result::ok));
  CHECK(r.state == uint16_t(order_state::created));
  r = env.submit(paying(11, 500, 1, 4000, lp::source::balance));
  CHECK(r.result == uint32_t(payment_result::ok));
  CHECK(r.state == uint16_t(order_state::partially_paid));
  // more than what is left
  CHECK(env.submit(paying(12, 500, 2, 5001, lp::source::provider)).result ==
        uint32_t(payment_result::amount_exceeds_order_remaining));
  r = env.submit(paying(13, 500, 2, 5000, lp::source::provider));
  CHECK(r.result == uint32_t(payment_result::ok));
  CHECK(r.state == uint16_t(order_state::completed));
  CHECK(env.balance(100) == 9000);
  CHECK(env.balance(1) == 6000);
  CHECK(env.submit(paying(14, 500, 1, 1, lp::source::balance)).result == uint32_t(payment_result::order_not_payable));
  // eight refunds of 2000 at once against 9000 captured: at most 9000 comes back
  std::vector<lp::payment_command> refunds;
  for (u128 k = 0; k < 8; ++k) refunds.push_back(command(kind::refund, 20 + k, 500, 0, 2000));
  std::vector<lp::payment_reply> replies;
  try {
    replies = env.client.submit_payments(refunds);
  } catch (const std::exception& e) {
    auto c2 = env.kassad->connect();
    std::string rows;
    for (const auto& o : c2.lookup_orders({20, 21, 22, 23, 24, 25, 26, 27}))
      rows += to_string_u128(o.id) + " " + std::string(lp::name(order_state(o.state))) + " " +
              std::string(lp::name(payment_result(o.result))) + " src " + std::to_string(o.source) + "\n";
    FAIL(e.what() << "\nrows:\n" << rows);
  }
  u128 refunded = 0;
  for (const auto& x : replies) {
    if (x.result == uint32_t(payment_result::ok)) refunded += 2000;
    else CHECK(x.result == uint32_t(payment_result::refund_exceeds_captured));
  }
  auto o = env.order(500);
  CHECK(o.amount_refunded == refunded);
  CHECK(o.amount_refunded <= o.amount_captured);
  CHECK(o.amount_refund_pending == 0);
  CHECK(env.balance(100) == static_cast<__int128>(9000 - refunded));
  CHECK(env.balance(2) == 0); // the card payer's refunds go back to the card
  // a refund of an order kind that has none
  CHECK(env.submit(command(kind::refund, 40, 1, 0, 1)).result == uint32_t(payment_result::order_kind_invalid));
  CHECK(env.submit(command(kind::refund, 41, 77777, 0, 1)).result == uint32_t(payment_result::order_not_found));
  env.check_money();
}

TEST_CASE("kassa order show lists an order's items with what moved, the fee and the provider's payment id",
          "[e2e][payments]") {
  payments_env env;
  env.payers_and_merchant();
  REQUIRE(env.submit(command(kind::create_order, 10, 500, 100, 9000)).result == uint32_t(payment_result::ok));
  REQUIRE(env.submit(paying(11, 500, 1, 4000, lp::source::balance)).result == uint32_t(payment_result::ok));
  REQUIRE(env.submit(with_provider(paying(13, 500, 2, 5000, lp::source::provider), "alpha")).result ==
          uint32_t(payment_result::ok));
  REQUIRE(env.submit(command(kind::refund, 20, 500, 0, 1000)).result == uint32_t(payment_result::ok));
  // over the protocol: the items in the order kassa numbered them
  const auto items = env.client.lookup_order_items({500, 1, 77777});
  REQUIRE(items.size() == 3); // the top-up 1 and the unknown 77777 have none
  CHECK(items[0].id == 11);
  CHECK(items[0].kind == uint16_t(kind::pay));
  CHECK(items[0].amount_moved == 4000);
  CHECK(items[0].provider_payment_id == 0); // from the payer's balance
  CHECK(items[1].id == 13);
  CHECK(items[1].amount_moved == 5000);
  CHECK(items[1].amount_refunded == 1000); // the newest item took the refund
  CHECK(items[1].provider_payment_id != 0);
  CHECK(std::string(items[1].provider) == "alpha");
  CHECK(items[2].id == 20);
  CHECK(items[2].kind == uint16_t(kind::refund));
  CHECK(items[2].refund_of == 13);
  CHECK(items[2].amount_moved == 1000);
  for (const auto& i : items) CHECK(i.order_id == 500);
  // the CLI prints them under the order
  const std::string address = env.kassad->address();
  std::string out;
  REQUIRE(run({KASSA_CLI, "--address", address, "order", "show", "500"}, out, 20s) == 0);
  INFO(out);
  CHECK(out.find("order 500  kind create_order") != std::string::npos);
  CHECK(out.find("payment_id") != std::string::npos);
  char pid[40];
  std::snprintf(pid, sizeof pid, "0x%016llx%016llx", (unsigned long long)u128_hi(items[1].provider_payment_id),
                (unsigned long long)u128_lo(items[1].provider_payment_id));
  CHECK(out.find(pid) != std::string::npos);
  REQUIRE(run({KASSA_CLI, "--address", address, "order", "show", "500", "--json"}, out, 20s) == 0);
  CHECK(out.find("\"order_items\":[{\"id\":\"11\",\"kind\":\"pay\"") != std::string::npos);
  CHECK(out.find("\"provider_payment_id\":\"" + std::string(pid) + "\"") != std::string::npos);
  // more than either item has left (4000 each): split over both, the newest first
  const auto split = env.submit(command(kind::refund, 21, 500, 0, 7000));
  CHECK(split.result == uint32_t(payment_result::ok));
  CHECK(split.amount == 7000);
  CHECK(split.state == uint16_t(order_state::partially_refunded));
  const auto after = env.client.lookup_order_items({500});
  REQUIRE(after.size() == 5);
  CHECK(after[3].id == 21);
  CHECK(after[3].refund_of == 13);
  CHECK(after[3].amount_moved == 4000);
  CHECK(after[4].refund_of == 11);
  CHECK(after[4].amount_moved == 3000);
  CHECK(env.order(500).amount_refunded == 8000);
  CHECK(env.submit(command(kind::refund, 22, 500, 0, 1001)).result ==
        uint32_t(payment_result::refund_exceeds_captured));
  CHECK(env.balance(100) == 1000);
  env.check_money();
}

TEST_CASE("a duplicate payment of an order already paid is refunded through the provider", "[e2e][payments]") {
  payments_env env;
  env.account(2);
  env.account(100, 0);
  REQUIRE(env.submit(command(kind::create_order, 10, 600, 100, 3000)).result == uint32_t(payment_result::ok));
  // the first card payment stays pending at the provider: kassa does not know, the payer
  // pays again, the order is paid; then the first one succeeds too
  env.sim.force("alpha", {"pending"});
  auto r = env.submit(paying(11, 600, 2, 3000, lp::source::provider));
  CHECK(r.result == uint32_t(payment_result::in_progress));
  CHECK(r.state == uint16_t(order_state::unknown));
  r = env.submit(paying(12, 600, 2, 3000, lp::source::provider));
  CHECK(r.result == uint32_t(payment_result::ok));
  CHECK(r.state == uint16_t(order_state::completed));
  auto dup = env.wait_for(11, order_state::refunded);
  CHECK(dup.provider_amount == 3000);
  auto o = env.order(600);
  CHECK(o.amount_captured == 3000);
  CHECK(env.balance(100) == 3000);
  CHECK(env.suspense() == 0);
  env.check_money();
}

TEST_CASE("a partial payment follows the YAML policy: refund, accept or hold then refund", "[e2e][payments]") {
  SECTION("refund") {
    payments_env env("    partial_payment: refund\n");
    env.account(1);
    env.sim.force("alpha", {"partial"});
    auto r = env.submit(command(kind::topup, 1, 1, 1, 1000));
    CHECK(r.result == uint32_t(payment_result::partial_payment_refunded));
    CHECK(r.state == uint16_t(order_state::failed));
    CHECK(env.balance(1) == 0);
    CHECK(env.suspense() == 0);
    env.check_money();
  }
  SECTION("accept") {
    payments_env env("    partial_payment: accept\n");
    env.account(1);
    env.sim.force("alpha", {"partial"});
    auto r = env.submit(command(kind::topup, 1, 1, 1, 1000));
    CHECK(r.result == uint32_t(payment_result::ok));
    CHECK(r.amount == 500);
    CHECK(env.balance(1) == 500);
    env.check_money();
  }
  SECTION("hold") {
    payments_env env("    partial_payment: hold\n    partial_hold_ms: 500\n");
    env.account(1);
    env.sim.force("alpha", {"partial"});
    auto r = env.submit(command(kind::topup, 1, 1, 1, 1000));
    CHECK(r.result == uint32_t(payment_result::in_progress));
    CHECK(r.state == uint16_t(order_state::partially_paid));
    CHECK(env.suspense() == 500);
    auto row = env.wait_for(1, order_state::failed);
    CHECK(row.result == uint32_t(payment_result::partial_payment_refunded));
    CHECK(env.suspense() == 0);
    CHECK(env.balance(1) == 0);
    env.check_money();
  }
}

TEST_CASE("a compensating refund the provider makes only in part gives back what it refunded; the rest stays in "
          "suspense with a case",
          "[e2e][payments]") {
  payments_env env("    partial_payment: refund\n");
  env.account(1);
  env.sim.force("alpha", {"partial", "partial"}); // the charge moves 500 of 1000, its refund 250 of 500
  const auto start = std::chrono::steady_clock::now();
  auto r = env.submit(command(kind::topup, 1, 1, 1, 1000));
  // final at once: a partial refund is the provider's last word, not asked again and again
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(r.state == uint16_t(order_state::in_review));
  CHECK(env.balance(1) == 0);
  CHECK(env.suspense() == 250); // 500 parked, 250 given back
  const std::string out = poll({KASSA_CLI, "recon", "--data", env.kassad->data_dir()},
                               has("payment core: open cases: suspense 1"));
  INFO(out);
  CHECK(out.find("payment core: open cases: suspense 1") != std::string::npos);
  env.check_money();
}

TEST_CASE("an amount mismatch goes to suspense and opens a reconciliation case", "[e2e][payments]") {
  payments_env env;
  env.account(1);
  env.sim.force("alpha", {"mismatch"});
  auto r = env.submit(command(kind::topup, 1, 1, 1, 1000));
  CHECK(r.result == uint32_t(payment_result::amount_mismatch));
  CHECK(r.state == uint16_t(order_state::in_review));
  CHECK(env.balance(1) == 0);
  CHECK(env.suspense() == 1007);
  auto row = env.order(1);
  CHECK(row.provider_amount == 1007);
  const std::string out = poll({KASSA_CLI, "recon", "--data", env.kassad->data_dir()},
                               has("payment core: open cases: suspense 1"));
  INFO(out);
  CHECK(out.find("payment core: open cases: suspense 1") != std::string::npos);
  env.check_money();
}

TEST_CASE("an operator lists the case an amount mismatch opened, books it out of suspense once, and cannot book "
          "it again", "[e2e][payments][cases]") {
  payments_env env;
  env.account(1);
  env.sim.force("alpha", {"mismatch"});
  REQUIRE(env.submit(command(kind::topup, 1, 1, 1, 1000)).result == uint32_t(payment_result::amount_mismatch));
  REQUIRE(env.suspense() == 1007);
  const std::string address = "127.0.0.1:" + std::to_string(env.kassad->port());
  auto cli = [&](std::vector<std::string> args, std::string& out) {
    args.insert(args.begin(), KASSA_CLI);
    args.insert(args.end(), {"--address", address});
    return run(args, out, 20s);
  };
  // the case is opened once the payment core's message is durable
  std::string out = poll({KASSA_CLI, "cases", "list", "--open", "--json", "--address", address}, has("\"suspense\""));
  INFO(out);
  REQUIRE(out.find("\"kind\":\"suspense\"") != std::string::npos);
  REQUIRE(out.find("\"id\":1,") != std::string::npos);
  // `kassa gl`'s line of a GL account in ledger 840, once the general ledger has caught up with
  // the journal and `resolutions` case resolutions
  auto gl_line = [&](const std::string& account, uint64_t resolutions) {
    const std::string caught_up = "of " + std::to_string(resolutions) + " (resolutions behind by 0)";
    const std::string gl = poll({KASSA_CLI, "gl", "--data", env.kassad->data_dir()}, [&](const std::string& out) {
      return has("(behind by 0)")(out) && has(caught_up)(out);
    });
    INFO(gl);
    REQUIRE(gl.find(caught_up) != std::string::npos);
    std::istringstream lines(gl);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      std::string code, name, ledger;
      words >> code >> name >> ledger;
      if (name == account && ledger == "840") return line;
    }
    return std::string();
  };
  // the parked money is in the GL's suspense account
  const std::string suspense_before = gl_line("suspense", 0);
  CHECK(suspense_before.find(" 1007  Cr 1007") != std::string::npos);

  // bad input is refused before anything is booked
  CHECK(cli({"cases", "resolve", "1", "--action", "book"}, out) == 2);            // no note
  CHECK(cli({"cases", "resolve", "1", "--action", "void", "--note", "x"}, out) == 2);
  CHECK(cli({"cases", "resolve", "1", "--action", "refund", "--note", "x", "--direction", "from_suspense"}, out) == 2);
  CHECK(cli({"cases", "resolve", "1", "--action", "book", "--note", "x", "--amount", "0",
             "--direction", "from_suspense"}, out) == 2);
  CHECK(cli({"cases", "resolve", "1", "--action", "book", "--note", "x", "--amount",
             "340282366920938463463374607431768211456", "--direction", "from_suspense"}, out) == 2);
  CHECK(cli({"cases", "resolve", "99", "--action", "accept", "--note", "x"}, out) == 1);
  CHECK(out.find("case_not_found") != std::string::npos);
  CHECK(env.suspense() == 1007);

  // book: all the parked money to the customer
  CHECK(cli({"cases", "resolve", "1", "--action", "book", "--note", "the provider took 1007", "--by", "ops-anna"},
            out) == 0);
  CHECK(out.find("resolved (book)") != std::string::npos);
  CHECK(env.suspense() == 0);
  CHECK(env.balance(1) == 1007);
  const u128 correction = lp::case_transfer_id(1);
  auto transfers = env.client.lookup_transfers({correction});
  REQUIRE(transfers.size() == 1);
  CHECK(transfers[0].amount == 1007);
  CHECK(transfers[0].credit_account_id == 1);

  // again (as after a lost reply): refused, nothing booked a second time
  CHECK(cli({"cases", "resolve", "1", "--action", "book", "--note", "again"}, out) == 1);
  CHECK(out.find("case_resolved") != std::string::npos);
  CHECK(env.suspense() == 0);
  CHECK(env.balance(1) == 1007);
  wire::filter f;
  f.account_id = 1;
  f.limit = 100;
  size_t corrections = 0;
  for (const auto& t : env.client.get_account_transfers(f)) corrections += t.id == correction ? 1 : 0;
  CHECK(corrections == 1);

  // the general ledger books the correction once: its suspense account back where it was
  // before the mismatch, the customer's funds up by what was parked
  const std::string suspense_after = gl_line("suspense", 1);
  INFO(suspense_after);
  CHECK(suspense_after.find(" 1007  Dr 0") != std::string::npos);
  const std::string funds_after = gl_line("customer_funds", 1);
  INFO(funds_after);
  CHECK(funds_after.find(" 1007  Cr 1007") != std::string::npos);

  // the journal: who, when, why, the transfer
  CHECK(cli({"cases", "show", "1"}, out) == 0);
  CHECK(out.find("by ops-anna") != std::string::npos);
  CHECK(out.find("note: the provider took 1007") != std::string::npos);
  CHECK(out.find("correcting transfer " + to_string_u128(correction)) != std::string::npos);
  CHECK(cli({"cases", "list", "--open"}, out) == 0);
  CHECK(out.find("suspense") == std::string::npos);
  env.check_money();
}

TEST_CASE("a timeout leaves the payment unknown and kassa asks the provider until it knows", "[e2e][payments]") {
  payments_env env;
  env.account(1);
  SECTION("the provider does not answer in time, then says succeeded") {
    env.sim.force("alpha", {"timeout"});
    auto r = env.submit(command(kind::topup, 1, 1, 1, 1000));
    // the answer comes from the status query after the timeout
    auto row = r.state == uint16_t(order_state::completed) ? env.order(1) : env.wait_for(1, order_state::completed);
    CHECK(row.amount_captured == 1000);
    CHECK(env.balance(1) == 1000);
    std::string out;
    CHECK(run({KASSA_CLI, "trace", "1", "--data", env.kassad->data_dir()}, out, 20s) == 0);
    INFO(out);
    CHECK(out.find("parked") != std::string::npos);
    CHECK(out.find("resolved") != std::string::npos);
    env.check_money();
  }
  SECTION("the provider says pending; the callback settles it") {
    env.sim.force("alpha", {"pending"});
    auto r = env.submit(command(kind::topup, 1, 1, 1, 1000));
    CHECK(r.result == uint32_t(payment_result::in_progress));
    CHECK(r.state == uint16_t(order_state::unknown));
    env.wait_for(1, order_state::completed);
    CHECK(env.balance(1) == 1000);
    env.check_money();
  }
}

TEST_CASE("kassad stops at once on SIGTERM while payments wait for their provider; they finish after the restart",
          "[e2e][payments]") {
  // status queries go on for a long time: a flow that outlived kassad's actors would hold the stop
  payments_env env("", "", "", "", [](std::string& yaml) {
    for (size_t at = yaml.find("queries_max: 100}"); at != std::string::npos; at = yaml.find("queries_max: 100}", at + 1))
      yaml.replace(at, std::strlen("queries_max: 100}"), "queries_max: 100000}");
  });
  env.account(1);
  env.sim.force("alpha", {"pending", "pending", "pending"}); // confirmed by a callback after 600 ms
  for (u128 k = 1; k <= 3; ++k)
    CHECK(env.submit(command(kind::topup, k, k, 1, 100)).result == uint32_t(payment_result::in_progress));
  env.client.close();
  const auto start = std::chrono::steady_clock::now();
  const int stopped = env.kassad->stop();
  INFO(env.kassad->output());
  CHECK(stopped == 0);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  // the payments resume at the next start and complete once the provider's callbacks arrive
  env.kassad->start();
  env.client = env.kassad->connect();
  for (u128 k = 1; k <= 3; ++k) env.wait_for(k, order_state::completed);
  CHECK(env.balance(1) == 300);
  env.check_money();
}

TEST_CASE("a late success after a failure is compensated", "[e2e][payments]") {
  SECTION("withdrawal: the hold was voided, then the payout succeeded: the user is debited") {
    payments_env env;
    env.account(1);
    REQUIRE(env.submit(command(kind::topup, 1, 1, 1, 10000)).result == uint32_t(payment_result::ok));
    env.sim.force("alpha", {"late_success"});
    auto r = env.submit(command(kind::withdrawal, 2, 2, 1, 3000));
    CHECK(r.result == uint32_t(payment_result::provider_declined));
    CHECK(env.pending_debits(1) == 0);
    env.wait_for(2, order_state::completed);
    CHECK(env.balance(1) == 10000 - 3000);
    env.check_money();
  }
  SECTION("topup with late_success: accept credits the user") {
    payments_env env("    late_success: accept\n");
    env.account(1);
    env.sim.force("alpha", {"late_success"});
    CHECK(env.submit(command(kind::topup, 1, 1, 1, 800)).result == uint32_t(payment_result::provider_declined));
    env.wait_for(1, order_state::completed);
    CHECK(env.balance(1) == 800);
    env.check_money();
  }
  SECTION("topup with late_success: refund gives it back through the provider") {
    payments_env env("    late_success: refund\n");
    env.account(1);
    env.sim.force("alpha", {"late_success"});
    CHECK(env.submit(command(kind::topup, 1, 1, 1, 800)).result == uint32_t(payment_result::provider_declined));
    // the books agree with the statement once the refund went through
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until && env.statement_net("alpha") != 0) std::this_thread::sleep_for(100ms);
    CHECK(env.statement_net("alpha") == 0);
    CHECK(env.balance(1) == 0);
    env.check_money();
  }
}

TEST_CASE("a top-up whose channel refuses connections completes on the next channel, booked once", "[e2e][payments]") {
  // alpha's address: a port nobody listens on, so every connection is refused (nothing sent)
  payments_env env("", "", "", "", [](std::string& y) {
    const auto at = y.find("/p/alpha\"");
    REQUIRE(at != std::string::npos);
    const auto from = y.rfind("http://", at);
    y.replace(from, at - from, "http://127.0.0.1:1");
  });
  env.account(1);
  for (u128 k = 1; k <= 4; ++k) {
    auto r = env.submit(command(kind::topup, k, k, 1, 100));
    CHECK(r.result == uint32_t(payment_result::ok));
    CHECK(std::string(env.order(k).provider) == "beta");
  }
  CHECK(env.balance(1) == 400); // each once
  // the first three refusals opened alpha's breaker: logged with the channel, and counted
  CHECK(env.kassad->wait_for_output("refused the call unsent"));
  CHECK(env.kassad->wait_for_output("channel alpha: circuit breaker opened"));
  REQUIRE(env.kassad->metrics_port() != 0);
  const http_reply m = scrape(env.kassad->metrics_port());
  REQUIRE(m.status == 200);
  const exposition e(m.body);
  CHECK(e.value("kassa_channel_breaker_transitions_total", {{"channel", "alpha"}, {"to", "open"}}) == 1);
  CHECK(e.value("kassa_channel_breaker_state", {{"channel", "alpha"}}) == 2);
  CHECK(e.value("kassa_channel_breaker_state", {{"channel", "beta"}}) == 0);
  env.check_money();
}

TEST_CASE("routing goes around a channel that is down and fails fast when none is left", "[e2e][payments]") {
  payments_env env;
  env.account(1);
  // the command may name a channel: beta wants a credential, fetched before the charge
  auto r = env.submit(with_provider(command(kind::topup, 1, 1, 1, 100), "beta"));
  CHECK(r.result == uint32_t(payment_result::ok));
  CHECK(env.order(1).provider[0] == 'b');
  // alpha stops answering: its breaker opens after a few failures, then topups go to beta
  env.sim.json(true, "/p/alpha/v1/admin/behaviour", R"({"unknown_ppm": 1000000})");
  for (u128 k = 10; k < 13; ++k) CHECK(env.submit(command(kind::topup, k, k, 1, 10)).result == uint32_t(payment_result::in_progress));
  r = env.submit(command(kind::topup, 20, 20, 1, 100));
  CHECK(r.result == uint32_t(payment_result::ok));
  CHECK(std::string(env.order(20).provider) == "beta");
  {
    // The metrics show it: alpha is down, beta up; alpha's calls ended unknown.
    REQUIRE(env.kassad->metrics_port() != 0);
    const http_reply m = scrape(env.kassad->metrics_port());
    REQUIRE(m.status == 200);
    const exposition e(m.body);
    CHECK(e.value("kassa_channel_up", {{"channel", "alpha"}}) == 0);
    CHECK(e.value("kassa_channel_up", {{"channel", "beta"}}) == 1);
    CHECK(e.value("kassa_channel_calls_total", {{"channel", "alpha"}, {"outcome", "unknown"}}) >= 3);
    CHECK(e.value("kassa_channel_calls_total", {{"channel", "beta"}, {"outcome", "succeeded"}}) >= 2);
    CHECK(e.value("kassa_channel_call_seconds_count", {{"channel", "beta"}}) >= 2);
    CHECK(e.value("kassa_channel_inflight", {{"channel", "beta"}}) >= 0);
    CHECK(e.value("kassa_mailbox_depth", {{"actor", "payments"}}) >= 0);
    CHECK(e.value("kassa_requests_total", {{"operation", "submit_payments"}}) >= 5);
  }
  // beta too: nothing left, a clear code at once
  env.sim.json(true, "/p/beta/v1/admin/behaviour", R"({"unknown_ppm": 1000000})");
  for (u128 k = 30; k < 33; ++k) {
    auto x = env.submit(command(kind::topup, k, k, 1, 10));
    CHECK(x.result == uint32_t(payment_result::in_progress));
  }
  r = env.submit(command(kind::topup, 40, 40, 1, 100));
  CHECK(r.result == uint32_t(payment_result::no_channel_available));
  // the providers recover; the unknown topups are settled by status queries
  env.sim.json(true, "/p/alpha/v1/admin/behaviour", R"({"unknown_ppm": 0})");
  env.sim.json(true, "/p/beta/v1/admin/behaviour", R"({"unknown_ppm": 0})");
  for (u128 k : {u128(10), u128(11), u128(12), u128(30), u128(31), u128(32)}) {
    const auto row = env.order(k);
    if (row.state != uint16_t(order_state::failed)) env.wait_for(k, order_state::completed, 20s);
  }
  env.check_money();
}

namespace {

std::string strip_0x(std::string s) {
  if (s.rfind("0x", 0) == 0) s = s.substr(2);
  for (auto& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// (kind, payment id) of every case `kassa recon --all` lists.
std::set<std::pair<std::string, std::string>> recon_cases(const std::string& data_dir) {
  std::string out;
  run({KASSA_CLI, "recon", "--all", "--data", data_dir}, out, 20s);
  std::set<std::pair<std::string, std::string>> cases;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string id, kind, status, opened, provider, payment_id;
    if (!(words >> id >> kind >> status >> opened >> provider >> payment_id)) continue;
    if (id.empty() || !std::isdigit(static_cast<unsigned char>(id[0]))) continue;
    cases.insert({kind, strip_0x(payment_id)});
  }
  return cases;
}

} // namespace

TEST_CASE("an operator refunds the money an amount mismatch parked through the provider once; reconciliation "
          "matches the refund", "[e2e][payments][cases]") {
  payments_env env;
  env.account(1);
  env.sim.force("alpha", {"mismatch"});
  REQUIRE(env.submit(command(kind::topup, 1, 1, 1, 1000)).result == uint32_t(payment_result::amount_mismatch));
  REQUIRE(env.suspense() == 1007);
  REQUIRE(env.clearing(0) == 1007);
  const std::string address = "127.0.0.1:" + std::to_string(env.kassad->port());
  auto cli = [&](std::vector<std::string> args, std::string& out) {
    args.insert(args.begin(), KASSA_CLI);
    args.insert(args.end(), {"--address", address});
    return run(args, out, 20s);
  };
  std::string out = poll({KASSA_CLI, "cases", "list", "--open", "--json", "--address", address}, has("\"id\":1,"));
  INFO(out);
  REQUIRE(out.find("\"kind\":\"suspense\"") != std::string::npos);

  // more than was parked is refused before the provider is asked
  CHECK(cli({"cases", "resolve", "1", "--action", "refund", "--note", "x", "--amount", "1008"}, out) == 1);
  CHECK(out.find("refund_exceeds_parked") != std::string::npos);
  // all 1007 back to the payer
  CHECK(cli({"cases", "resolve", "1", "--action", "refund", "--note", "the customer meant 1000", "--by", "ops-anna"},
            out) == 0);
  INFO(out);
  CHECK(out.find("resolved (refund)") != std::string::npos);
  CHECK(out.find(" of 1007") != std::string::npos);
  CHECK(env.suspense() == 0);
  CHECK(env.clearing(0) == 0); // the provider owes kassa nothing more: it gave the 1007 back
  CHECK(env.balance(1) == 0);  // the customer's balance never held it
  auto transfers = env.client.lookup_transfers({lp::case_transfer_id(1)});
  REQUIRE(transfers.size() == 1);
  CHECK(transfers[0].amount == 1007);
  CHECK(transfers[0].debit_account_id == lp::account_id(lp::role::suspense, 0, 0, usd));
  CHECK(transfers[0].credit_account_id == lp::account_id(lp::role::provider_clearing, 0, 0, usd));

  // the provider refunded the charge once: one refund line of 1007 in its statement
  auto refunds = [&] {
    const auto st = env.sim.json(false, "/p/alpha/v1/statement?after=0&limit=10000");
    std::vector<std::string> amounts;
    for (const auto& e : st.at("entries"))
      if (e.at("kind").get<std::string>() == "refund") amounts.push_back(e.at("amount").get<std::string>());
    return amounts;
  };
  CHECK(refunds() == std::vector<std::string>{"1007"});
  CHECK(env.statement_net("alpha") == 0);

  // again (as after a lost reply): refused; the provider is not asked again
  CHECK(cli({"cases", "resolve", "1", "--action", "refund", "--note", "again"}, out) == 1);
  CHECK(out.find("case_resolved") != std::string::npos);
  CHECK(refunds().size() == 1);
  CHECK(env.suspense() == 0);

  // the journal says refund; the GL books it out of suspense against the provider's receivable
  CHECK(cli({"cases", "show", "1"}, out) == 0);
  CHECK(out.find(": refund") != std::string::npos);
  const std::string gl = poll({KASSA_CLI, "gl", "--data", env.kassad->data_dir()}, [](const std::string& out) {
    return has("(behind by 0)")(out) && has("of 1 (resolutions behind by 0)")(out);
  });
  INFO(gl);
  CHECK(gl.find("of 1 (resolutions behind by 0)") != std::string::npos);
  for (const std::string account : {"suspense", "provider_receivable"}) {
    std::istringstream lines(gl);
    bool seen = false;
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      std::string code, name, ledger;
      words >> code >> name >> ledger;
      if (name != account || ledger != "840") continue;
      seen = true;
      INFO(line);
      CHECK(line.find(" 1007  Dr 0") != std::string::npos);
    }
    CHECK(seen);
  }

  // reconciliation reads the refund's statement line and matches it: no case beside the one resolved
  // (the charge's line and the refund's)
  out = poll({KASSA_CLI, "recon", "--data", env.kassad->data_dir()}, has("statement lines matched 2"));
  INFO(out);
  CHECK(out.find("statement lines matched 2") != std::string::npos);
  const auto cases = recon_cases(env.kassad->data_dir());
  REQUIRE(cases.size() == 1);
  CHECK(cases.begin()->first == "suspense");
  env.check_money();
}

TEST_CASE("reconciliation finds every discrepancy the provider's statement holds, and invents none", "[e2e][payments]") {
  payments_env env("", "", "  reconciliation: {enabled: true, interval_ms: 100, grace_ms: 1500}\n");
  env.account(1);
  env.sim.json(true, "/p/alpha/v1/admin/behaviour",
               R"({"statement_missing_ppm": 150000, "statement_amount_mismatch_ppm": 150000, "statement_extra_ppm": 150000})");
  for (u128 k = 1; k <= 40; ++k) REQUIRE(env.submit(command(kind::topup, k, k, 1, 100 + k)).result == uint32_t(payment_result::ok));
  auto injected = [&env] {
    std::set<std::pair<std::string, std::string>> out;
    const auto list = env.sim.json(false, "/p/alpha/v1/admin/injected"); // kept alive for the loop
    for (const auto& i : list["injected"]) {
      const std::string type = i["type"].get<std::string>();
      if (type.rfind("payment_", 0) == 0) continue; // none here: mismatch_ppm and partial_ppm are 0
      const std::string kind =
          type == "missing" ? "missing_provider" : type == "extra" ? "missing_internal" : "amount_mismatch";
      out.insert({kind, strip_0x(i["payment_id"].get<std::string>())});
    }
    return out;
  };
  std::set<std::pair<std::string, std::string>> expected, found;
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until) {
    expected = injected();
    found = recon_cases(env.kassad->data_dir());
    if (!expected.empty() && found.size() >= expected.size()) break;
    std::this_thread::sleep_for(200ms);
  }
  INFO("injected: " << expected.size());
  REQUIRE(!expected.empty());
  std::this_thread::sleep_for(500ms); // nothing more turns up
  found = recon_cases(env.kassad->data_dir());
  CHECK(found == expected);
  // the rows against the ledger: every top-up looked up, its bookings all there
  std::string out;
  run({KASSA_CLI, "recon", "--data", env.kassad->data_dir()}, out, 20s);
  INFO(out);
  const size_t at = out.find("rows <-> ledger: rows checked ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stoull(out.substr(at + std::strlen("rows <-> ledger: rows checked "))) >= 40);
  CHECK(out.find("open cases: missing_booking 0, booking_amount_mismatch 0, row_status_mismatch 0, "
                 "booking_without_row 0") != std::string::npos);
  env.client.close();
  REQUIRE(env.kassad->stop() == 0);
}

TEST_CASE("kassad refuses a flow naming a step nobody registered, at the step's line, with status 2", "[e2e][payments]") {
  temp_dir dir;
  const std::string path = dir.path() + "/kassa.yaml";
  std::ofstream(path) << "store: {data_dir: " << dir.path() << "/data, durability: fsync}\n"
                      << payments_yaml(1) << "  flows:\n    transfer:\n      - {step: check_limits}\n      - {step: teleport}\n";
  std::string out;
  CHECK(run({KASSA_KASSAD, "--config", path}, out, 20s) == 2);
  INFO(out);
  CHECK(out.find("payments.flows.transfer[1].step: unknown step \"teleport\"") != std::string::npos);
}

TEST_CASE("kassad --check-config and kassad refuse a withdrawal flow without a hold, at the step's line, with status 2",
          "[e2e][payments]") {
  temp_dir dir;
  const std::string path = dir.path() + "/kassa.yaml";
  const std::string yaml = "store: {data_dir: " + dir.path() + "/data, durability: fsync}\n" + payments_yaml(1) +
                           "  flows:\n    withdrawal:\n      - {step: check_accounts}\n      - {step: route}\n"
                           "      - {step: provider_call}\n      - {step: settle_hold}\n";
  std::ofstream(path) << yaml;
  const int line = int(std::count(yaml.begin(), yaml.end(), '\n')) - 1; // provider_call's
  const std::string where = "kassa.yaml:" + std::to_string(line) + ": payments.flows.withdrawal[2].step: an outgoing "
                            "payment holds the funds before any provider call";
  for (const bool check_only : {true, false}) {
    std::string out;
    std::vector<std::string> args{KASSA_KASSAD, "--config", path};
    if (check_only) args.push_back("--check-config");
    CHECK(run(args, out, 20s) == 2);
    INFO(out);
    CHECK(out.find(where) != std::string::npos);
  }
  CHECK(!std::filesystem::exists(dir.path() + "/data")); // refused before anything was created
}

TEST_CASE("payments work with accounts in different shards; holds stay in the payer's shard", "[e2e][payments]") {
  // the store section ends the fixture's YAML: these lines continue it
  payments_env env("", "", "", "  shards: 3\n");
  for (u128 id = 1; id <= 6; ++id) env.account(id);
  env.account(100, 0);
  for (u128 id = 1; id <= 6; ++id) REQUIRE(env.submit(command(kind::topup, 10 + id, 10 + id, id, 10000)).result == uint32_t(payment_result::ok));
  for (u128 id = 1; id <= 6; ++id) {
    auto t = command(kind::transfer, 20 + id, 20 + id, id, 1000);
    t.counterparty_id = id % 6 + 1;
    CHECK(env.submit(t).result == uint32_t(payment_result::ok));
    CHECK(env.submit(command(kind::withdrawal, 30 + id, 30 + id, id, 500)).result == uint32_t(payment_result::ok));
  }
  REQUIRE(env.submit(command(kind::create_order, 40, 400, 100, 6000)).result == uint32_t(payment_result::ok));
  for (u128 id = 1; id <= 6; ++id)
    CHECK(env.submit(paying(40 + id, 400, id, 1000, id % 2 ? lp::source::balance : lp::source::provider)).result ==
          uint32_t(payment_result::ok));
  CHECK(env.order(400).state == uint16_t(order_state::completed));
  for (u128 k = 0; k < 6; ++k) CHECK(env.submit(command(kind::refund, 50 + k, 400, 0, 1000)).result == uint32_t(payment_result::ok));
  CHECK(env.order(400).state == uint16_t(order_state::refunded));
  CHECK(env.balance(100) == 0);
  __int128 users = 0;
  for (u128 id = 1; id <= 6; ++id) users += env.balance(id);
  CHECK(users == 6 * 10000 - 6 * (10 + 525)); // transfer fee 1%, withdrawal 500 + 25
  // each provider's clearing accounts (one per shard) together mirror its statement
  __int128 alpha = 0;
  for (uint32_t s = 0; s < 3; ++s) {
    auto a = env.lookup(lp::account_id(lp::role::provider_clearing, 0, s, usd));
    alpha += clearing_net(a);
  }
  CHECK(alpha == env.statement_net("alpha"));
  env.client.close();
  REQUIRE(env.kassad->stop() == 0);
  std::string out;
  CHECK(run({KASSA_CLI, "verify", "--data", env.kassad->data_dir()}, out, 60s) == 0);
  INFO(out);
}

TEST_CASE("payments cut short by kill -9 are finished at the next start, each moving money once", "[e2e][payments]") {
  payments_env env;
  env.account(1);
  REQUIRE(env.submit(command(kind::topup, 1, 1, 1, 100000)).result == uint32_t(payment_result::ok));
  // a topup the provider keeps pending, a withdrawal holding money, and a burst in flight
  env.sim.force("alpha", {"pending", "pending"});
  CHECK(env.submit(command(kind::topup, 2, 2, 1, 1000)).result == uint32_t(payment_result::in_progress));
  CHECK(env.submit(command(kind::withdrawal, 3, 3, 1, 2000)).result == uint32_t(payment_result::in_progress));
  std::vector<lp::payment_command> burst;
  for (u128 k = 10; k < 60; ++k) burst.push_back(command(k % 2 ? kind::topup : kind::withdrawal, k, k, 1, 100 + k));
  auto in_flight = env.client.async().submit_payments(burst); // no answer expected: kassad is killed
  std::this_thread::sleep_for(5ms);
  env.kassad->stop(SIGKILL);
  env.kassad->start();
  env.client = env.kassad->connect();
  // every row the store holds ends final; no payment moved twice
  std::vector<u128> ids{2, 3};
  for (u128 k = 10; k < 60; ++k) ids.push_back(k);
  __int128 expected = 100000;
  for (u128 id : ids) {
    auto rows = env.client.lookup_orders({id});
    if (rows.empty()) continue; // never accepted: nothing happened
    auto row = rows[0];
    const auto until = std::chrono::steady_clock::now() + 15s;
    while (!lp::final_state(order_state(row.state)) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(50ms);
      row = env.client.lookup_orders({id})[0];
    }
    INFO("row " << to_string_u128(id) << " " << lp::name(order_state(row.state)));
    REQUIRE(lp::final_state(order_state(row.state)));
    if (row.state != uint16_t(order_state::completed)) continue;
    if (row.kind == uint16_t(kind::topup)) expected += static_cast<__int128>(row.amount_captured);
    else expected -= static_cast<__int128>(row.amount_captured + row.fee);
  }
  CHECK(env.balance(1) == expected);
  CHECK(env.pending_debits(1) == 0);
  env.check_money();
}

TEST_CASE("the general ledger is rebuilt from the journal when its store is lost, while payments go on", "[e2e][payments]") {
  payments_env env;
  env.account(1);
  for (u128 k = 1; k <= 20; ++k) REQUIRE(env.submit(command(kind::topup, k, k, 1, 1000)).result == uint32_t(payment_result::ok));
  poll({KASSA_CLI, "gl", "--data", env.kassad->data_dir()}, has("(behind by 0)"));
  env.client.close();
  REQUIRE(env.kassad->stop() == 0);
  std::filesystem::remove_all(env.kassad->data_dir() + "/accounting");
  env.kassad->start();
  env.client = env.kassad->connect();
  // payments do not wait for it
  CHECK(env.submit(command(kind::withdrawal, 100, 100, 1, 500)).result == uint32_t(payment_result::ok));
  env.check_money();
  std::string after;
  run({KASSA_CLI, "gl", "--data", env.kassad->data_dir()}, after, 20s);
  // the topups' vouchers are all back (the withdrawal added its own on top)
  CHECK(after.find("vouchers 0;") == std::string::npos);
  CHECK(after.find("(behind by 0)") != std::string::npos);
}

TEST_CASE("a payment whose provider never answers goes to review with a case, and is finished when it answers late",
          "[e2e][payments]") {
  // alpha is asked three times, 100 ms apart; its callback comes after 600 ms
  payments_env env("", "", "", "", [](std::string& yaml) {
    const std::string from = "status_query: {interval_ms: 100, queries_max: 100},\n       breaker";
    const auto at = yaml.find(from);
    REQUIRE(at != std::string::npos);
    yaml.replace(at, from.size(), "status_query: {interval_ms: 100, queries_max: 3},\n       breaker");
  });
  env.account(1);
  REQUIRE(env.submit(command(kind::topup, 1, 1, 1, 10000)).result == uint32_t(payment_result::ok));
  SECTION("a withdrawal: its hold waits, then is posted") {
    env.sim.force("alpha", {"pending"});
    CHECK(env.submit(command(kind::withdrawal, 2, 2, 1, 3000)).result == uint32_t(payment_result::in_progress));
    auto row = env.wait_for(2, order_state::in_review);
    CHECK(row.result == uint32_t(payment_result::outcome_unknown));
    CHECK(env.pending_debits(1) == 3000 + 25); // never released on a guess
    env.wait_for(2, order_state::completed);
    CHECK(env.pending_debits(1) == 0);
    CHECK(env.balance(1) == 10000 - 3025);
    env.check_money();
  }
  SECTION("a pay item of an order") {
    env.account(100, 0);
    REQUIRE(env.submit(command(kind::create_order, 3, 300, 100, 2000)).result == uint32_t(payment_result::ok));
    env.sim.force("alpha", {"pending"});
    CHECK(env.submit(paying(4, 300, 1, 2000, lp::source::provider)).result == uint32_t(payment_result::in_progress));
    env.wait_for(4, order_state::in_review);
    env.wait_for(4, order_state::completed);
    env.wait_for(300, order_state::completed);
    CHECK(env.balance(100) == 2000);
    env.check_money();
  }
}

TEST_CASE("a restored data directory and a second installation never send the provider an id it has seen",
          "[e2e][payments][ids]") {
  channel_sim sim(sim_providers, 42);
  temp_dir dir;
  const std::string yaml = payments_yaml(sim.port());
  const std::string original = dir.path() + "/original", backup = dir.path() + "/backup",
                    restored = dir.path() + "/restored", second = dir.path() + "/second";
  // One top-up through alpha on a kassad over `data_dir`; returns the user's balance after it.
  auto topup = [&](const std::string& data_dir, bool new_account, u128 key, u128 order_id, u128 amount) {
    kassad_instance k(yaml, "fsync", 256, data_dir);
    auto client = k.connect();
    if (new_account) {
      ledger::account a{};
      a.id = 1;
      a.ledger = usd;
      a.code = 1;
      a.flags = ledger::account_debits_must_not_exceed_credits;
      for (const auto& o : client.create_accounts({a})) REQUIRE(o.result == ledger::account_result::ok);
    }
    const auto r = client.submit_payments({with_provider(command(kind::topup, key, order_id, 1, amount), "alpha")});
    REQUIRE(r.size() == 1);
    INFO(k.output());
    CHECK(r[0].result == uint32_t(payment_result::ok));
    CHECK(r[0].state == uint16_t(order_state::completed));
    const auto accounts = client.lookup_accounts({1});
    REQUIRE(accounts.size() == 1);
    client.close();
    CHECK(k.stop() == 0);
    return accounts[0].credits_posted;
  };
  CHECK(topup(original, true, 101, 1001, 1000) == 1000); // row sequence 1
  std::string out;
  REQUIRE(run({KASSA_CLI, "backup", "--data", original, "--to", backup}, out, 60s) == 0);
  INFO(out);
  CHECK(out.find("restore_pending") != std::string::npos);
  CHECK(topup(original, false, 102, 1002, 2000) == 3000); // sequence 2, after the backup
  // The restored copy numbers its next row 2 again, for the same command: without a new
  // generation the provider would take it for the original's and answer its outcome, and
  // kassa would credit 2000 that never moved.
  REQUIRE(run({KASSA_CLI, "restore", "--data", restored, "--from", backup}, out, 60s) == 0);
  CHECK(out.find("generation 2") != std::string::npos);
  CHECK(topup(restored, false, 102, 1002, 2000) == 3000);
  // A second installation numbers its first row 1 like the original's first.
  CHECK(topup(second, true, 101, 1001, 1000) == 1000);
  // Four payments, four ids, all of the money moved at the provider.
  std::set<std::string> ids;
  const nlohmann::json j = sim.json(false, "/p/alpha/v1/statement?after=0&limit=100");
  for (const auto& e : j.at("entries")) ids.insert(e.at("payment_id").get<std::string>());
  CHECK(ids.size() == 4);
  CHECK(j.at("entries").size() == 4);
  CHECK(statement_net([&](const std::string& target) { return sim.json(false, target); }, "alpha") == 6000);
  // kassa restore leaves the backup as it was: a second restore of it is a third generation
  // line again, not the first restore's
  const std::string again = dir.path() + "/again";
  REQUIRE(run({KASSA_CLI, "restore", "--data", again, "--from", backup}, out, 60s) == 0);
  CHECK(topup(again, false, 102, 1002, 2000) == 3000);
  CHECK(statement_net([&](const std::string& target) { return sim.json(false, target); }, "alpha") == 8000);
  // A plain copy of the backup, started without kassa restore: the mark kassa backup left in
  // it begins the new generation at the first start.
  const std::string copied = dir.path() + "/copied";
  std::filesystem::copy(backup, copied, std::filesystem::copy_options::recursive);
  {
    kassad_instance k(yaml, "fsync", 256, copied);
    CHECK(k.output().find("msg=\"provider ids\"") != std::string::npos);
    CHECK(k.output().find("generation=2") != std::string::npos);
    CHECK(k.stop() == 0);
  }
  CHECK(topup(copied, false, 102, 1002, 2000) == 3000);
  CHECK(statement_net([&](const std::string& target) { return sim.json(false, target); }, "alpha") == 10000);
}
