// Flows are checked when the configuration loads (actors::check_flows, run by kassad and
// kassad --check-config): every registered step has its money effects declared, the shipped
// flows pass, and a flow that breaks an invariant is refused at its file and line with the
// invariant in words.
#include <catch2/catch.hpp>

#include <string>

#include "actors/payments.hpp"
#include "actors/payments_core.hpp"
#include "config/config.hpp"
#include "ledger/payments/flow_check.hpp"

using namespace kassa;
namespace lp = kassa::ledger::payments;

namespace {

// lines 1-7; the flows follow from line 8
const std::string head = "store: {data_dir: /tmp/kassa, durability: none}\n"
                         "payments:\n"
                         "  enabled: true\n"
                         "  ledgers: [{ledger: 840, currency: USD}]\n"
                         "  providers:\n"
                         "    - {name: alpha, url: \"http://127.0.0.1:1/p/alpha\", ledgers: [840]}\n"
                         "  flows:\n";

config::config_error refusal(const std::string& flows) {
  const config::config c = config::load_string(head + flows, "flows.yaml");
  try {
    actors::check_flows(c.payments);
  } catch (const config::config_error& e) {
    return e;
  }
  FAIL("expected the flows to be refused:\n" << flows);
  throw std::logic_error("unreachable");
}

} // namespace

TEST_CASE("every step the payment core registers declares its money effects, and only those", "[config][flows]") {
  for (const auto& [name, make] : actors::pay::steps()) {
    INFO(name);
    CHECK(lp::effects_of(name) != nullptr);
  }
  for (const auto& e : lp::step_effects_table()) {
    INFO(e.step);
    CHECK(actors::pay::steps().count(std::string(e.step)) == 1);
    if (!e.compensation.empty()) CHECK(actors::pay::steps().count(std::string(e.compensation)) == 1);
  }
}

TEST_CASE("the default flows and the shipped configurations pass the flow check", "[config][flows]") {
  config::payments_config defaults;
  CHECK_NOTHROW(actors::check_flows(defaults));
  for (const char* file : {"/config/kassa.yaml", "/config/kassa-payments.yaml"}) {
    INFO(file);
    const config::config c = config::load_file(std::string(KASSA_SOURCE_DIR) + file);
    CHECK_NOTHROW(actors::check_flows(c.payments));
  }
}

TEST_CASE("a flow that breaks money conservation is refused at its line with the invariant in words", "[config][flows]") {
  SECTION("a withdrawal without hold_funds") {
    const auto e = refusal("    withdrawal:\n"
                           "      - {step: check_accounts}\n"
                           "      - {step: route}\n"
                           "      - {step: provider_call}\n" // line 11
                           "      - {step: settle_hold}\n");
    CHECK(e.line == 11);
    CHECK(e.key_path == "payments.flows.withdrawal[2].step");
    CHECK(std::string(e.what()).rfind("flows.yaml:11: payments.flows.withdrawal[2].step: an outgoing payment holds "
                                      "the funds before any provider call",
                                      0) == 0);
  }
  SECTION("a withdrawal that settles before the provider call") {
    const auto e = refusal("    withdrawal:\n"
                           "      - {step: route}\n"
                           "      - {step: hold_funds, compensate: release_hold}\n"
                           "      - {step: settle_hold}\n" // line 11
                           "      - {step: provider_call}\n");
    CHECK(e.line == 11);
    CHECK(e.message.rfind("a hold is settled only after the provider paid out: settle_hold", 0) == 0);
  }
  SECTION("a top-up that books before the provider call") {
    const auto e = refusal("    topup:\n"
                           "      - {step: route}\n"
                           "      - {step: book_topup}\n" // line 10
                           "      - {step: provider_call, compensate: provider_refund}\n");
    CHECK(e.line == 10);
    CHECK(e.message.rfind("incoming money is booked only after the provider confirmed it: book_topup", 0) == 0);
  }
  SECTION("a refund without its bound") {
    const auto e = refusal("    refund:\n"
                           "      - {step: route}\n"
                           "      - {step: provider_call}\n" // line 10
                           "      - {step: book_refund}\n");
    CHECK(e.line == 10);
    CHECK(e.message.rfind("a refund is bounded before money moves", 0) == 0);
  }
  SECTION("a hold without its compensation, reported at the step (compensate not written)") {
    const auto e = refusal("    pay:\n"
                           "      - {step: route}\n"
                           "      - {step: hold_funds}\n" // line 10
                           "      - {step: provider_call, compensate: provider_refund}\n"
                           "      - {step: capture}\n");
    CHECK(e.line == 10);
    CHECK(e.key_path == "payments.flows.pay[1].compensate");
    CHECK(e.message.rfind("every step that moves money has its compensation on failure paths: hold_funds moves "
                          "money and needs compensate: release_hold",
                          0) == 0);
  }
  SECTION("a wrong compensation, reported at its own line") {
    const auto e = refusal("    topup:\n"
                           "      - {step: route}\n"
                           "      - step: provider_call\n"
                           "        compensate: release_hold\n" // line 11
                           "      - {step: book_topup}\n");
    CHECK(e.line == 11);
    CHECK(e.key_path == "payments.flows.topup[1].compensate");
  }
}
