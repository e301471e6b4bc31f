#pragma once
// Messages between a client session and the payment core (submit_payments, lookup_orders).
// Inside one process they travel as plain C++ values; each also has an `inspect` overload
// (below; the records' in actors/serial_payments.hpp), so that CAF can serialise it.
#include <caf/all.hpp>
#include <cstdint>
#include <vector>

#include "actors/messages.hpp"
#include "actors/serial_payments.hpp"
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

// ------------------------------------------------------------------ serialisation

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, submit_payments_request& x) {
  return f(caf::meta::type_name("kassa.submit_payments_request"), x.ctx, x.commands, x.ledgers);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payments_reply& x) {
  return f(caf::meta::type_name("kassa.payments_reply"), serial::enum_of(x.status), x.replies);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lookup_orders_request& x) {
  return f(caf::meta::type_name("kassa.lookup_orders_request"), x.ctx, serial::wide_list{&x.ids});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, orders_reply& x) {
  return f(caf::meta::type_name("kassa.orders_reply"), serial::enum_of(x.status), x.orders);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lookup_items_request& x) {
  return f(caf::meta::type_name("kassa.lookup_items_request"), x.ctx, serial::wide_list{&x.ids},
           serial::count{&x.items_max});
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, items_reply& x) {
  return f(caf::meta::type_name("kassa.items_reply"), serial::enum_of(x.status), x.items);
}

} // namespace kassa::actors
