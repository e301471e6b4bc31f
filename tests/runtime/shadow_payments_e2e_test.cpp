// End-to-end: shadow payments. A real kassad with the payment core on and two kassa-channel-sims
// on 127.0.0.1: one plays the real provider (payments.providers), the other the shadow one
// (shadow.providers). Shadow top-ups move shadow balances only and never reach the real provider.
#include <catch2/catch.hpp>

#include <functional>
#include <thread>

#include "ledger/payments/records.hpp"
#include "tests/channels/sim_fixture.hpp"
#include "tests/process.hpp"
#include "tests/runtime/kassad_fixture.hpp"

using namespace kassa;
using namespace kassa::test;
using namespace std::chrono_literals;
namespace lp = kassa::ledger::payments;

namespace {

constexpr uint32_t usd = 840;

const char* sim_alpha = "  alpha:\n    latency: {min_ms: 1, median_ms: 2, p99_ms: 5, max_ms: 10}\n";

std::string provider_yaml(uint16_t port) {
  return "    - {name: alpha, url: \"http://127.0.0.1:" + std::to_string(port) +
         "/p/alpha\", ledgers: [840], timeout_ms: 2000, retries_max: 0, events_poll_ms: 50}\n";
}

std::string payments_yaml(uint16_t real_port, const std::string& shadow) {
  return "payments:\n"
         "  enabled: true\n"
         "  flow_wait_ms: 4000\n"
         "  ledgers: [{ledger: 840, currency: USD}]\n"
         "  providers:\n" +
         provider_yaml(real_port) +
         "  reconciliation: {enabled: true, interval_ms: 100, grace_ms: 60000}\n"
         "  accounting: {enabled: true, interval_ms: 50}\n" +
         shadow;
}

lp::payment_command topup(u128 key, u128 order_id, u128 account, u128 amount) {
  lp::payment_command c{};
  c.key = key;
  c.order_id = order_id;
  c.account_id = account;
  c.amount = amount;
  c.ledger = usd;
  c.kind = uint16_t(lp::kind::topup);
  return c;
}

wire::context shadow_ctx() {
  wire::context ctx;
  ctx.shadow = true;
  return ctx;
}

ledger::account user(u128 id) {
  ledger::account a{};
  a.id = id;
  a.ledger = usd;
  a.code = 1;
  a.flags = ledger::account_debits_must_not_exceed_credits;
  return a;
}

__int128 balance(client::blocking_client& c, u128 id, const wire::context& ctx = {}) {
  const auto found = c.lookup_accounts({id}, ctx);
  REQUIRE(found.size() == 1);
  return static_cast<__int128>(found[0].credits_posted) - static_cast<__int128>(found[0].debits_posted);
}

uint64_t payments_seen(channel_sim& sim) { return sim.stats("alpha")["payments"].get<uint64_t>(); }

} // namespace

TEST_CASE("shadow top-ups go through the shadow provider and move shadow balances only; the real provider sees none",
          "[e2e][payments][shadow]") {
  channel_sim real_sim(sim_alpha, 7);
  channel_sim shadow_sim(sim_alpha, 8);
  kassad_instance k(payments_yaml(real_sim.port(), "shadow:\n  providers:\n" + provider_yaml(shadow_sim.port())));
  auto c = k.connect();
  const wire::context shadow = shadow_ctx();
  REQUIRE(c.create_accounts({user(1)}).empty());
  REQUIRE(c.create_accounts({user(1)}, shadow).empty());

  for (u128 i = 0; i < 5; ++i) {
    const auto r = c.submit_payments({topup(100 + i, 1000 + i, 1, 700)}, shadow);
    REQUIRE(r.size() == 1);
    INFO(k.output());
    CHECK(r[0].result == uint32_t(lp::payment_result::ok));
    CHECK(r[0].state == uint16_t(lp::order_state::completed));
  }
  CHECK(balance(c, 1, shadow) == 3500);
  CHECK(balance(c, 1) == 0);
  CHECK(payments_seen(shadow_sim) == 5);
  CHECK(payments_seen(real_sim) == 0);

  // the same key and order id in the real store are new there: a real top-up, through the real provider
  const auto real = c.submit_payments({topup(100, 1000, 1, 50)});
  REQUIRE(real.size() == 1);
  CHECK(real[0].result == uint32_t(lp::payment_result::ok));
  CHECK(balance(c, 1) == 50);
  CHECK(balance(c, 1, shadow) == 3500);
  CHECK(payments_seen(real_sim) == 1);
  CHECK(payments_seen(shadow_sim) == 5);

  // orders do not cross either
  const auto shadow_orders = c.lookup_orders({1000, 1004}, shadow);
  REQUIRE(shadow_orders.size() == 2);
  CHECK(shadow_orders[0].amount == 700);
  const auto real_orders = c.lookup_orders({1000, 1004});
  REQUIRE(real_orders.size() == 1);
  CHECK(real_orders[0].amount == 50);

  // the shadow core's flow log lines are marked
  CHECK(k.wait_for_output("shadow=1"));

  // the shadow store's general ledger catches up on its own
  std::string gl;
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until) {
    run({KASSA_CLI, "gl", "--data", k.data_dir() + "/shadow"}, gl, 20s);
    if (gl.find("(behind by 0)") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  INFO(gl);
  CHECK(gl.find("(behind by 0)") != std::string::npos);
  CHECK(gl.find("NOT BALANCED") == std::string::npos);

  c.close();
  REQUIRE(k.stop() == 0);
  std::string out;
  CHECK(run({KASSA_CLI, "verify", "--data", k.data_dir()}, out, 60s) == 0);
  INFO(out);
  CHECK(out.find(k.data_dir() + "/shadow/shard-000: verify: consistent") != std::string::npos);
  CHECK(out.find(k.data_dir() + "/shard-000: verify: consistent") != std::string::npos);
}

TEST_CASE("without shadow providers shadow payment requests are refused and reach no provider",
          "[e2e][payments][shadow]") {
  channel_sim real_sim(sim_alpha, 9);
  kassad_instance k(payments_yaml(real_sim.port(), ""));
  auto c = k.connect();
  const wire::context shadow = shadow_ctx();
  REQUIRE(c.create_accounts({user(1)}, shadow).empty());
  auto status_of = [](const std::function<void()>& request) {
    try {
      request();
    } catch (const client::error& e) {
      return e.status;
    }
    return wire::status::ok;
  };
  CHECK(status_of([&] { c.submit_payments({topup(1, 1, 1, 700)}, shadow); }) == wire::status::payments_disabled);
  CHECK(status_of([&] { c.lookup_orders({1}, shadow); }) == wire::status::payments_disabled);
  CHECK(balance(c, 1, shadow) == 0);
  CHECK(payments_seen(real_sim) == 0);
  std::string out;
  CHECK(run({KASSA_CLI, "order", "show", "1", "--shadow", "--address", k.address()}, out) == 4);
  CHECK(out.find("no payment core") != std::string::npos);
  c.close();
  REQUIRE(k.stop() == 0);
}
