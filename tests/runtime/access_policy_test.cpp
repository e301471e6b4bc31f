// Access control as pure functions: the authenticate exchange, each client's operations and
// ledgers, and the filtering of lookups.
#include <catch2/catch.hpp>

#include <cstring>

#include "ledger/payments/records.hpp"
#include "runtime/access.hpp"

using namespace kassa;
using namespace kassa::runtime;
using wire::operation;
using wire::status;

namespace {

access::client client_7() {
  access::client c;
  c.id = 7;
  for (size_t i = 0; i < wire::key_bytes; ++i) c.key[i] = uint8_t(i);
  return c;
}

struct exchange {
  uint8_t server_nonce[wire::nonce_bytes];
  wire::authenticate_request request;
  wire::header h;

  exchange(const access::client& c, uint64_t id) {
    for (size_t i = 0; i < wire::nonce_bytes; ++i) {
      server_nonce[i] = uint8_t(0xa0 + i);
      request.client_nonce[i] = uint8_t(0xb0 + i);
    }
    request.client_id = id;
    const auto proof = wire::auth_proof(wire::proof_side::client, c.key, server_nonce, request.client_nonce, id);
    std::memcpy(request.proof, proof.data(), proof.size());
    h.op = operation::authenticate;
    h.request_id = 1;
    h.event_count = 1;
    h.ctx.client_id = id;
  }
};

template <class T>
std::vector<uint8_t> body_of(const std::vector<T>& records) {
  std::vector<uint8_t> out(records.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), records.data(), out.size());
  return out;
}

template <class T>
status check(const access::client& c, operation op, const std::vector<T>& records, bool shadow = false) {
  const auto body = body_of(records);
  wire::header h;
  h.op = op;
  h.ctx.shadow = shadow;
  return access::check_request(c, h, body.data(), body.size());
}

ledger::transfer transfer_on(uint32_t ledger) {
  ledger::transfer t{};
  t.id = 1;
  t.debit_account_id = 1;
  t.credit_account_id = 2;
  t.amount = 1;
  t.ledger = ledger;
  t.code = 1;
  return t;
}

} // namespace

TEST_CASE("a client with the right key authenticates and the server proves it holds the key too", "[access]") {
  access::policy p;
  p.clients = {client_7()};
  p.clients[0].ledgers = {840, 1};
  exchange x(p.clients[0], 7);
  const auto a = access::authenticate(p, x.server_nonce, x.h, x.request);
  REQUIRE(a.st == status::ok);
  CHECK(a.who == &p.clients[0]);
  const auto server = wire::auth_proof(wire::proof_side::server, p.clients[0].key, x.server_nonce,
                                       x.request.client_nonce, 7);
  CHECK(std::memcmp(a.reply.proof, server.data(), server.size()) == 0);
  CHECK(a.reply.ledgers_count == 2);
  CHECK((a.reply.operations & access::operation_bit(operation::authenticate)) != 0);
  CHECK((a.reply.operations & access::operation_bit(operation::create_transfers)) != 0);
}

TEST_CASE("a wrong key, an unknown client, another nonce or a header naming another client fail", "[access]") {
  access::policy p;
  p.clients = {client_7()};
  access::client impostor = client_7();
  impostor.key[0] ^= 1;
  {
    exchange x(impostor, 7);
    CHECK(access::authenticate(p, x.server_nonce, x.h, x.request).st == status::authentication_failed);
  }
  {
    access::client stranger = client_7();
    stranger.id = 8;
    exchange x(stranger, 8);
    CHECK(access::authenticate(p, x.server_nonce, x.h, x.request).st == status::authentication_failed);
  }
  {
    // A proof made for another connection's challenge (a replay) does not answer this one.
    exchange x(p.clients[0], 7);
    x.server_nonce[5] ^= 1;
    CHECK(access::authenticate(p, x.server_nonce, x.h, x.request).st == status::authentication_failed);
  }
  {
    exchange x(p.clients[0], 7);
    x.h.ctx.client_id = 8;
    CHECK(access::authenticate(p, x.server_nonce, x.h, x.request).st == status::authentication_failed);
  }
  {
    exchange x(p.clients[0], 7);
    CHECK(access::authenticate(p, x.server_nonce, x.h, x.request).who != nullptr);
  }
}

TEST_CASE("operations outside a client's list are forbidden; hello and authenticate never are", "[access]") {
  access::client c = client_7();
  c.operations = access::operation_bit(operation::lookup_accounts);
  CHECK(c.operation_allowed(operation::hello));
  CHECK(c.operation_allowed(operation::authenticate));
  CHECK(check(c, operation::lookup_accounts, std::vector<u128>{1}) == status::ok);
  CHECK(check(c, operation::create_transfers, std::vector<ledger::transfer>{transfer_on(1)}) == status::forbidden);
  CHECK(check(c, operation::lookup_orders, std::vector<u128>{1}) == status::forbidden);
}

TEST_CASE("a client uses the real store only, unless it may use the shadow store; a load tester may use only that",
          "[access]") {
  const std::vector<ledger::transfer> one{transfer_on(840)};
  access::client c = client_7();
  CHECK(check(c, operation::create_transfers, one) == status::ok);
  CHECK(check(c, operation::create_transfers, one, true) == status::forbidden);
  CHECK(check(c, operation::lookup_accounts, std::vector<u128>{1}, true) == status::forbidden);
  c.shadow_store = true;
  CHECK(check(c, operation::create_transfers, one, true) == status::ok);
  c.real_store = false;
  CHECK(check(c, operation::create_transfers, one, true) == status::ok);
  CHECK(check(c, operation::create_transfers, one) == status::forbidden);
  CHECK(check(c, operation::lookup_transfers, std::vector<u128>{1}) == status::forbidden);
  // the operations and ledgers of the client bind in the shadow store too
  c.ledgers = {978};
  CHECK(check(c, operation::create_transfers, one, true) == status::forbidden);
  c.ledgers.clear();
  c.operations = access::operation_bit(operation::lookup_accounts);
  CHECK(check(c, operation::create_transfers, one, true) == status::forbidden);
}

TEST_CASE("one event on a ledger the client may not use forbids the whole request", "[access]") {
  access::client c = client_7();
  c.ledgers = {840, 1};
  CHECK(check(c, operation::create_transfers, std::vector<ledger::transfer>{transfer_on(1), transfer_on(840)}) ==
        status::ok);
  CHECK(check(c, operation::create_transfers,
              std::vector<ledger::transfer>{transfer_on(1), transfer_on(2), transfer_on(840)}) == status::forbidden);
  // A post or void that leaves the ledger to the pending transfer must state it.
  ledger::transfer post = transfer_on(0);
  post.flags = ledger::transfer_post_pending;
  CHECK(check(c, operation::create_transfers, std::vector<ledger::transfer>{post}) == status::forbidden);
  ledger::account a{};
  a.id = 5;
  a.code = 1;
  a.ledger = 978;
  CHECK(check(c, operation::create_accounts, std::vector<ledger::account>{a}) == status::forbidden);
  a.ledger = 840;
  CHECK(check(c, operation::create_accounts, std::vector<ledger::account>{a}) == status::ok);

  // Without a ledger list every ledger is allowed.
  const access::client any = client_7();
  CHECK(check(any, operation::create_transfers, std::vector<ledger::transfer>{transfer_on(2)}) == status::ok);
}

TEST_CASE("payment commands must name one of the client's ledgers, except pay and refund, which the payment core checks",
          "[access]") {
  namespace lp = ledger::payments;
  using commands = std::vector<lp::payment_command>;
  access::client c = client_7();
  c.ledgers = {840, 1};
  auto command = [](lp::kind k, uint32_t ledger) {
    lp::payment_command out{};
    out.kind = uint16_t(k);
    out.ledger = ledger;
    return out;
  };
  const auto topup = command(lp::kind::topup, 840);
  const auto pay = command(lp::kind::pay, 0);       // acts on an existing order: its ledger is the order's
  const auto refund = command(lp::kind::refund, 0); // likewise
  CHECK(check(c, operation::submit_payments, commands{topup}) == status::ok);
  CHECK(check(c, operation::submit_payments, commands{topup, pay, refund}) == status::ok);
  CHECK(check(c, operation::submit_payments, commands{pay, command(lp::kind::topup, 978)}) == status::forbidden);
  CHECK(check(c, operation::submit_payments, commands{command(lp::kind::create_order, 0)}) == status::forbidden);
  CHECK(check(c, operation::submit_payments, commands{command(lp::kind::transfer, 0)}) == status::forbidden);
  // a pay that states a ledger (invalid: reserved_field) is checked like any other command
  CHECK(check(c, operation::submit_payments, commands{command(lp::kind::pay, 978)}) == status::forbidden);
  // without a ledger list every command is allowed
  CHECK(check(client_7(), operation::submit_payments, commands{pay, command(lp::kind::topup, 978)}) == status::ok);
}

TEST_CASE("lookups leave out the records of ledgers the client may not use", "[access]") {
  access::client c = client_7();
  c.ledgers = {1};
  std::vector<ledger::transfer> found{transfer_on(1), transfer_on(2), transfer_on(1)};
  found[2].id = 3;
  access::keep_allowed(c, found);
  REQUIRE(found.size() == 2);
  CHECK(found[0].ledger == 1);
  CHECK(found[1].id == 3);
  std::vector<ledger::transfer> all{transfer_on(1), transfer_on(2)};
  access::keep_allowed(client_7(), all);
  CHECK(all.size() == 2);
}
