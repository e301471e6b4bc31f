#pragma once
// The example frames of docs/protocol.md, built with the codec. The doc's hex dumps are these
// bytes; wire_test checks them, and the fuzz corpus starts from them.
#include <cstdint>
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

} // namespace kassa::test
