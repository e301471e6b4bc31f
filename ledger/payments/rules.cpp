#include "ledger/payments/rules.hpp"

#include <cstring>

namespace kassa::ledger::payments {

namespace {
bool provider_empty(const payment_command& c) {
  for (char ch : c.provider)
    if (ch != 0) return false;
  return true;
}
} // namespace

payment_result validate(const payment_command& c) {
  using r = payment_result;
  if (c.reserved[0] != 0 || c.reserved[1] != 0) return r::reserved_field;
  if (c.key == 0) return r::key_must_not_be_zero;
  if (c.key == u128_max) return r::key_must_not_be_int_max;
  if (!kind_known(c.kind)) return r::kind_invalid;
  const auto k = static_cast<kind>(c.kind);
  if (k == kind::pay ? (c.source != uint16_t(source::balance) && c.source != uint16_t(source::provider))
                     : c.source != 0)
    return r::source_invalid;
  if (c.order_id == 0) return r::order_id_must_not_be_zero;
  if (c.order_id == u128_max) return r::order_id_must_not_be_int_max;
  // refund acts on an existing order and names no accounts: they come from the order
  if (k != kind::refund && c.account_id == 0) return r::account_id_must_not_be_zero;
  if (k == kind::refund && (c.account_id != 0 || c.counterparty_id != 0 || c.ledger != 0)) return r::reserved_field;
  if (k == kind::transfer && c.counterparty_id == 0) return r::counterparty_id_must_not_be_zero;
  if (k != kind::transfer && c.counterparty_id != 0) return r::reserved_field;
  if (k == kind::transfer && c.counterparty_id == c.account_id) return r::accounts_must_be_different;
  if (c.amount == 0) return r::amount_must_not_be_zero;
  if ((k == kind::pay || k == kind::refund) && c.ledger != 0) return r::reserved_field;
  if (k == kind::pay && c.source == uint16_t(source::balance) && !provider_empty(c)) return r::reserved_field;
  if ((k == kind::transfer || k == kind::create_order) && !provider_empty(c)) return r::reserved_field;
  return r::ok;
}

bool same_fields(const payment_command& a, const payment_command& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

bool final_state(order_state s) {
  switch (s) {
    case order_state::completed:
    case order_state::failed:
    case order_state::refunded:
    case order_state::partially_refunded:
    case order_state::in_review: return true;
    default: return false;
  }
}

bool scale_ppm(u128 amount, uint32_t ppm, rounding round, u128& out) {
  constexpr u128 million = 1'000'000;
  // amount = q * 1e6 + r: amount * ppm / 1e6 = q * ppm + r * ppm / 1e6, no 128-bit overflow
  // in the remainder product (r < 1e6, ppm <= 1e6).
  const u128 q = amount / million, r = amount % million;
  u128 whole;
  if (ppm != 0 && q > u128_max / ppm) return false;
  whole = q * ppm;
  const u128 rp = r * ppm;
  u128 part = rp / million;
  const u128 rest = rp % million;
  if (rest != 0) {
    if (round == rounding::up) part += 1;
    else if (round == rounding::half_even) {
      const u128 twice = rest * 2;
      if (twice > million || (twice == million && ((whole + part) & 1) != 0)) part += 1;
    }
  }
  return add_checked(whole, part, out);
}

bool fee_of(const fee_rule& rule, u128 amount, u128& fee) {
  u128 scaled = 0;
  if (!scale_ppm(amount, rule.rate_ppm, rule.round, scaled)) return false;
  u128 f = 0;
  if (!add_checked(rule.fixed, scaled, f)) return false;
  if (f < rule.min) f = rule.min;
  if (rule.max != 0 && f > rule.max) f = rule.max;
  fee = f;
  return true;
}

} // namespace kassa::ledger::payments
