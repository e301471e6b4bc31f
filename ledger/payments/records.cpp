#include "ledger/payments/records.hpp"

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

} // namespace kassa::ledger::payments
