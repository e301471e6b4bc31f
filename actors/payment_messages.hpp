#pragma once
// Messages between a client session and the payment core (submit_payments, lookup_orders).
// In-process only: plain C++ values, allowed as "unsafe" message types like messages.hpp.
#include <caf/all.hpp>
#include <cstdint>
#include <vector>

#include "actors/messages.hpp"
#include "ledger/payments/records.hpp"

namespace kassa::actors {

struct submit_payments_request {
  request_context ctx;
  std::vector<ledger::payments::payment_command> commands;
  // The ledgers the client may use (docs/security.md); empty: every ledger. pay and refund
  // carry no ledger, so the gateway checks the order's ledger against this list.
  std::vector<uint32_t> ledgers;
};
// One reply per command, in order (unless status is not ok: then nothing was done).
struct payments_reply {
  outcome status = outcome::ok;
  std::vector<ledger::payments::payment_reply> replies;
};

struct lookup_orders_request {
  request_context ctx;
  std::vector<u128> ids;
};
// The rows found, in request order; ids not found are left out.
struct orders_reply {
  outcome status = outcome::ok;
  std::vector<ledger::payments::order> orders;
};

// lookup_order_items: the pay items and refunds of each order named, in request order, each
// order's by sequence; ids that name no order (or a row of another kind) add nothing.
struct lookup_items_request {
  request_context ctx;
  std::vector<u128> ids;
  size_t items_max = 0; // more items than this: status too_many (nothing returned)
};
struct items_reply {
  outcome status = outcome::ok;
  std::vector<ledger::payments::order_item> items;
};

} // namespace kassa::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::submit_payments_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::payments_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::lookup_orders_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::orders_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::lookup_items_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kassa::actors::items_reply)
