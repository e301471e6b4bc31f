#pragma once
// The example frames of docs/protocol.md, built with the codec. The doc's hex dumps are these
// bytes; wire_test checks them, and the fuzz corpus starts from them.
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/wire/wire.hpp"

namespace kassa::test {

// hello, request_id 1, no context.
inline std::vector<uint8_t> example_hello() {
  wire::header h;
  h.op = wire::operation::hello;
  h.request_id = 1;
  h.event_count = 1;
  wire::hello_request body; // versions 1 .. 1
  std::vector<uint8_t> out;
  wire::encode(out, h, &body, sizeof body);
  return out;
}

// create_transfers of one transfer: id 1001 moves 123.45 (12345 minor units) on ledger 1
// from account 1 to account 2, code 1; request_id 2, trace id 7, order 42, client 9.
inline ledger::transfer example_transfer() {
  ledger::transfer t{};
  t.id = 1001;
  t.debit_account_id = 1;
  t.credit_account_id = 2;
  t.amount = 12345;
  t.ledger = 1;
  t.code = 1;
  return t;
}

inline std::vector<uint8_t> example_create_transfers() {
  wire::header h;
  h.op = wire::operation::create_transfers;
  h.request_id = 2;
  h.event_count = 1;
  h.ctx.trace_id = 7;
  h.ctx.business_id = 42;
  h.ctx.client_id = 9;
  const ledger::transfer t = example_transfer();
  std::vector<uint8_t> out;
  wire::encode(out, h, &t, sizeof t);
  return out;
}

// A topup of 50.00 (5000 minor units) on ledger 840 to account 7 through provider "alpha":
// key 501, order 9001.
inline ledger::payments::payment_command example_topup() {
  ledger::payments::payment_command c{};
  c.key = 501;
  c.order_id = 9001;
  c.account_id = 7;
  c.amount = 5000;
  c.ledger = 840;
  c.kind = uint16_t(ledger::payments::kind::topup);
  std::memcpy(c.provider, "alpha", 5);
  return c;
}

// submit_payments of that one topup; request_id 3, trace id 7, business id the order.
inline std::vector<uint8_t> example_submit_payments() {
  wire::header h;
  h.op = wire::operation::submit_payments;
  h.request_id = 3;
  h.event_count = 1;
  h.ctx.trace_id = 7;
  h.ctx.business_id = 9001;
  const ledger::payments::payment_command c = example_topup();
  std::vector<uint8_t> out;
  wire::encode(out, h, &c, sizeof c);
  return out;
}

// lookup_orders of order 9001 and of an order that does not exist; request_id 4.
inline std::vector<uint8_t> example_lookup_orders() {
  wire::header h;
  h.op = wire::operation::lookup_orders;
  h.request_id = 4;
  h.event_count = 2;
  const u128 ids[2] = {9001, 9002};
  std::vector<uint8_t> out;
  wire::encode(out, h, ids, sizeof ids);
  return out;
}

// authenticate as client 7 with the key 00 01 .. 1f, answering the server nonce a0 .. af with
// the client nonce b0 .. bf; request_id 2 (docs/protocol.md#authenticate-10).
inline std::vector<uint8_t> example_authenticate() {
  uint8_t key[wire::key_bytes], server_nonce[wire::nonce_bytes];
  for (size_t i = 0; i < wire::key_bytes; ++i) key[i] = uint8_t(i);
  wire::authenticate_request a;
  a.client_id = 7;
  for (size_t i = 0; i < wire::nonce_bytes; ++i) {
    server_nonce[i] = uint8_t(0xa0 + i);
    a.client_nonce[i] = uint8_t(0xb0 + i);
  }
  const auto proof = wire::auth_proof(wire::proof_side::client, key, server_nonce, a.client_nonce, a.client_id);
  std::memcpy(a.proof, proof.data(), proof.size());
  wire::header h;
  h.op = wire::operation::authenticate;
  h.request_id = 2;
  h.event_count = 1;
  h.ctx.client_id = 7;
  std::vector<uint8_t> out;
  wire::encode(out, h, &a, sizeof a);
  return out;
}

} // namespace kassa::test
