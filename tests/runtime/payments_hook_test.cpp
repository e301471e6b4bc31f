// The server's hand-over of submit_payments and lookup_orders to the payment core: a real
// server on 127.0.0.1 with stand-in ledger and payment actors, driven by the client.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <string>

#include "actors/payment_messages.hpp"
#include "runtime/client/client.hpp"
#include "runtime/server.hpp"

using namespace kassa;
using namespace std::chrono_literals;
namespace pay = kassa::ledger::payments;

namespace {

// Answers every command in_progress with its order and amount, and every order id below
// 1000 with an order; context echoed into the trace id of orders.
// (an unused argument: CAF 0.17 spawns an actor without any through a null tuple, which UBSan
// reports)
caf::behavior stand_in_payments(caf::event_based_actor*, int) {
  return {
      [](actors::submit_payments_request& r) {
        actors::payments_reply out;
        for (uint32_t i = 0; i < r.commands.size(); ++i) {
          pay::payment_reply p{};
          p.index = i;
          p.result = uint32_t(pay::payment_result::in_progress);
          p.state = uint16_t(pay::order_state::processing);
          p.order_id = r.commands[i].order_id;
          p.amount = r.commands[i].amount;
          out.replies.push_back(p);
        }
        return out;
      },
      [](actors::lookup_orders_request& r) {
        actors::orders_reply out;
        if (r.ctx.trace_id == 13) {
          out.status = actors::outcome::busy;
          return out;
        }
        for (u128 id : r.ids) {
          if (id >= 1000) continue;
          pay::order o{};
          o.id = id;
          o.trace_id = r.ctx.trace_id;
          o.state = uint16_t(pay::order_state::completed);
          out.orders.push_back(o);
        }
        return out;
      },
  };
}

caf::behavior no_ledger(caf::event_based_actor*, int) {
  return {[](actors::lookup_accounts_request&) { return actors::accounts_reply{}; }};
}

struct served {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<runtime::server> srv;

  explicit served(bool with_payments) {
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    runtime::server_options o;
    o.port = 0;
    o.ledger = caf::actor_cast<actors::ledger_client_actor>(sys->spawn(no_ledger, 0));
    if (with_payments) o.payments = sys->spawn(stand_in_payments, 0);
    srv = std::make_unique<runtime::server>(*sys, o);
    std::string error;
    REQUIRE(srv->start(error));
  }
  ~served() { srv.reset(); }
};

pay::payment_command command(u128 order_id, u128 amount) {
  pay::payment_command c{};
  c.key = order_id + 1;
  c.order_id = order_id;
  c.account_id = 7;
  c.amount = amount;
  c.ledger = 840;
  c.kind = uint16_t(pay::kind::topup);
  return c;
}

} // namespace

TEST_CASE("a session hands payment commands and order lookups to the payment core and answers "
          "with its replies",
          "[runtime]") {
  served s(true);
  client::blocking_client c;
  c.connect("127.0.0.1", s.srv->port(), 2s);
  const auto replies = c.submit_payments({command(10, 500), command(11, 600)});
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].order_id == 10);
  CHECK(replies[1].index == 1);
  CHECK(replies[1].amount == 600);
  CHECK(replies[1].result == uint32_t(pay::payment_result::in_progress));

  wire::context ctx;
  ctx.trace_id = 77;
  const auto orders = c.lookup_orders({5, 5000, 6}, ctx);
  REQUIRE(orders.size() == 2);
  CHECK(orders[0].id == 5);
  CHECK(orders[1].id == 6);
  CHECK(orders[1].trace_id == 77); // the request's context reached the payment core

  // The payment core's outcome for a request as a whole is its frame status.
  ctx.trace_id = 13;
  try {
    c.lookup_orders({5}, ctx);
    FAIL("expected busy");
  } catch (const client::error& e) {
    CHECK(e.status == wire::status::busy);
  }
}

TEST_CASE("without a payment core, payment requests are answered payments_disabled", "[runtime]") {
  served s(false);
  client::options o;
  o.busy_retries_max = 0;
  client::blocking_client c(o);
  c.connect("127.0.0.1", s.srv->port(), 2s);
  for (int i = 0; i < 2; ++i) {
    try {
      if (i == 0) c.submit_payments({command(10, 500)});
      else c.lookup_orders({1});
      FAIL("expected payments_disabled");
    } catch (const client::error& e) {
      CHECK(e.kind == client::error_kind::status);
      CHECK(e.status == wire::status::payments_disabled);
    }
  }
  CHECK(c.lookup_accounts({1}).empty()); // the connection carries on
  CHECK(s.srv->requests_inflight() == 0);
}
