#include "ledger/payments/records.hpp"

#include <cstring>

namespace kassa::ledger::payments {

std::string_view name(kind k) {
  switch (k) {
    case kind::none: return "none";
    case kind::create_order: return "create_order";
    case kind::pay: return "pay";
    case kind::topup: return "topup";
    case kind::withdrawal: return "withdrawal";
    case kind::refund: return "refund";
    case kind::transfer: return "transfer";
  }
  return "unknown";
}

bool kind_known(uint16_t k) { return k >= 1 && k <= kind_max; }

std::string_view name(order_state s) {
  switch (s) {
#define KASSA_PAYMENT_NAME(n, v)                                                             \
  case order_state::n: return #n;
    KASSA_ORDER_STATES(KASSA_PAYMENT_NAME)
#undef KASSA_PAYMENT_NAME
  }
  return "invalid"; // ("unknown" is a state)
}

std::string_view name(payment_result r) {
  switch (r) {
#define KASSA_PAYMENT_NAME(n)                                                                \
  case payment_result::n: return #n;
    KASSA_PAYMENT_RESULTS(KASSA_PAYMENT_NAME)
#undef KASSA_PAYMENT_NAME
  }
  return "unknown";
}

order_item item_of(const order& row, u128 provider_payment_id) {
  order_item out{};
  out.id = row.id;
  out.order_id = row.parent_id;
  out.account_id = row.account_id;
  out.refund_of = row.kind == uint16_t(kind::refund) ? row.counterparty_id : 0;
  out.amount = row.amount;
  out.amount_moved = row.amount_captured;
  out.amount_refunded = row.kind == uint16_t(kind::pay) ? row.amount_refunded : 0;
  out.amount_refund_pending = row.kind == uint16_t(kind::pay) ? row.amount_refund_pending : 0;
  out.fee = fee_charged(row);
  out.provider_payment_id = row.source == uint16_t(source::provider) ? provider_payment_id : 0;
  std::memcpy(out.provider, row.provider, sizeof out.provider);
  out.sequence = row.sequence;
  out.ledger = row.ledger;
  out.kind = row.kind;
  out.state = row.state;
  out.result = row.result;
  out.source = row.source;
  return out;
}

} // namespace kassa::ledger::payments
