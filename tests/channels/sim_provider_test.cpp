// The simulator's provider core without sockets: idempotency, forced outcomes, refunds and
// the feeds, with time passed in. Tagged [channels].
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "channels/sim/provider.hpp"
#include "channels/text.hpp"
#include "tests/seed.hpp"

using namespace kassa;
using namespace kassa::channels;
using namespace kassa::channels::sim;

namespace {

std::string pay(u128 id, u128 amount, pay_kind kind = pay_kind::charge, u128 refund_of = 0) {
  payment_request r;
  r.payment_id = id;
  r.kind = kind;
  r.amount = amount;
  r.ledger = 1;
  r.account_id = 99;
  r.refund_of = refund_of;
  return encode(r);
}

payment_response answer_of(const reply& r) {
  payment_response out;
  std::string why;
  REQUIRE(r.status == 200);
  REQUIRE(decode(r.body, out, why));
  return out;
}

} // namespace

TEST_CASE("a repeated payment id returns the first outcome, and different fields get 409", "[channels]") {
  provider p("alpha", behaviour{}, test::seed("sim idempotency"));
  const auto first = answer_of(p.payment(pay(1, 500), 0));
  CHECK(first.status == pay_status::succeeded);
  const auto again = answer_of(p.payment(pay(1, 500), 10));
  CHECK(again.provider_ref == first.provider_ref);
  CHECK(p.payment(pay(1, 501), 20).status == 409);
  std::vector<statement_line> lines;
  std::string why;
  REQUIRE(decode_statement(p.statement(0, 100, 30).body, lines, why));
  CHECK(lines.size() == 1); // moved once
}

TEST_CASE("forced outcomes apply one each, in order", "[channels]") {
  behaviour b;
  b.partial_amount_ppm = 1; // 3 * 1e-6 rounds down to 0: at least 1 moves
  b.mismatch_delta = 7;
  b.late_callback_ms = 100;
  b.callback_delay_ms = 50;
  provider p("alpha", b, test::seed("sim forced"));
  REQUIRE(p.admin_force(R"({"outcomes":["partial","mismatch","late_success","pending","timeout","unknown"]})").status == 200);
  auto partial = answer_of(p.payment(pay(1, 3), 0));
  CHECK((partial.status == pay_status::partial && partial.amount == 1));
  auto mismatch = answer_of(p.payment(pay(2, 10), 0));
  CHECK((mismatch.status == pay_status::succeeded && mismatch.amount == 17));
  CHECK(answer_of(p.payment(pay(3, 10), 0)).status == pay_status::declined);
  CHECK(answer_of(p.payment(pay(4, 10), 0)).status == pay_status::pending);
  CHECK(p.payment(pay(5, 10), 0).how == delivery::hold);
  CHECK(p.payment(pay(6, 10), 0).how == delivery::close);
  // Timeout and unknown were applied as succeeded.
  CHECK(answer_of(p.status(id_text(5), 1)).status == pay_status::succeeded);
  CHECK(answer_of(p.status(id_text(6), 1)).status == pay_status::succeeded);
  // The late success and the pending payment settle when their time comes.
  CHECK(answer_of(p.status(id_text(3), 99)).status == pay_status::declined);
  CHECK(answer_of(p.status(id_text(4), 60)).status == pay_status::succeeded);
  CHECK(answer_of(p.status(id_text(3), 100)).status == pay_status::succeeded);
  CHECK(p.status(id_text(7), 100).status == 404);
  CHECK(p.admin_force(R"({"outcomes":["nonsense"]})").status == 400);
}

TEST_CASE("a refund never moves more than its charge moved", "[channels]") {
  provider p("alpha", behaviour{}, test::seed("sim refunds"));
  answer_of(p.payment(pay(1, 100), 0));
  CHECK(answer_of(p.payment(pay(2, 60, pay_kind::refund, 1), 0)).status == pay_status::succeeded);
  CHECK(answer_of(p.payment(pay(3, 60, pay_kind::refund, 1), 0)).status == pay_status::declined);
  CHECK(answer_of(p.payment(pay(4, 40, pay_kind::refund, 1), 0)).status == pay_status::succeeded);
  CHECK(answer_of(p.payment(pay(5, 1, pay_kind::refund, 77), 0)).status == pay_status::declined);
  CHECK(p.payment(pay(6, 1, pay_kind::refund, 0), 0).status == 400);
}

TEST_CASE("a mismatch fault moves another amount only where it can: a refund without room for it is answered as asked",
          "[channels]") {
  behaviour b;
  b.mismatch_delta = 3;
  provider p("alpha", b, test::seed("sim refund mismatch"));
  answer_of(p.payment(pay(1, 100), 0));
  REQUIRE(p.admin_force(R"({"outcomes":["mismatch","mismatch"]})").status == 200);
  const auto part = answer_of(p.payment(pay(2, 50, pay_kind::refund, 1), 0)); // room for 53: moves 53
  CHECK(part.status == pay_status::succeeded);
  CHECK(part.amount == 53);
  const auto rest = answer_of(p.payment(pay(3, 47, pay_kind::refund, 1), 0)); // 50 would not fit: as asked
  CHECK(rest.status == pay_status::succeeded);
  CHECK(rest.amount == 47);
}

TEST_CASE("bad input to the simulator gets 400 with a JSON error", "[channels]") {
  provider p("alpha", behaviour{}, test::seed("sim bad input"));
  for (const char* body : {"", "{", "[1]", "{\"payment_id\":\"00\"}"}) {
    INFO(body);
    auto r = p.payment(body, 0);
    CHECK(r.status == 400);
    CHECK(nlohmann::json::parse(r.body, nullptr, false).contains("error"));
  }
  CHECK(p.payment(pay(0, 1), 0).status == 400);
  CHECK(p.payment(pay(1, 0), 0).status == 400);
  CHECK(p.admin_behaviour(R"({"decline_ppm": 1000001})").status == 400);
  CHECK(p.admin_behaviour(R"({"latency": {"min_ms": 900}})").status == 400); // above median
  CHECK(p.admin_behaviour(R"({"no_such_key": 1})").status == 400);
  CHECK(p.admin_behaviour(R"({"decline_ppm": 1000000})").status == 200);
  CHECK(answer_of(p.payment(pay(9, 1), 0)).status == pay_status::declined);
}

TEST_CASE("a provider that wants credentials answers 401 without a valid token", "[channels]") {
  behaviour b;
  b.credentials_required = true;
  b.credential_ttl_ms = 1000;
  provider p("alpha", b, test::seed("sim credentials"));
  CHECK(p.payment(pay(1, 5), 0).status == 401);
  credentials_response c;
  std::string why;
  REQUIRE(decode(p.credentials(0).body, c, why));
  payment_request r;
  REQUIRE(decode(pay(1, 5), r, why));
  r.token = c.token;
  CHECK(p.payment(encode(r), 10).status == 200);
  r.payment_id = 2;
  CHECK(p.payment(encode(r), 1000).status == 401); // expired
}
