#pragma once
// The payment core's pure rules: which commands are well-formed, when a repeated key is the
// same command, and fee arithmetic. No actors, no I/O: the property tests hammer these.
#include <cstdint>

#include "ledger/payments/records.hpp"
#include "primitives/u128.hpp"

namespace kassa::ledger::payments {

// The checks that need nothing but the command itself, in the order of payment_result (the
// smallest failing code wins). ok means: well-formed; the order, accounts and limits are
// checked later.
payment_result validate(const payment_command& c);

// True when `a` and `b` ask for the same thing (a repeated key answers exists, not
// exists_with_different_fields).
bool same_fields(const payment_command& a, const payment_command& b);

// Rows that will not change any more unless a provider says something late.
bool final_state(order_state s);

enum class rounding : uint8_t { up, down, half_even };

struct fee_rule {
  u128 fixed = 0;
  uint32_t rate_ppm = 0; // parts per million of the amount
  rounding round = rounding::up;
  u128 min = 0;
  u128 max = 0; // 0: none
};

// fee = clamp(fixed + round(amount * rate_ppm / 1e6), min, max). False on overflow (the
// caller answers amount_overflow); exact in 128 bits: amount is split to avoid a 128x32
// product overflowing.
bool fee_of(const fee_rule& rule, u128 amount, u128& fee);

// amount * ppm / 1e6 rounded by `round`; false on overflow.
bool scale_ppm(u128 amount, uint32_t ppm, rounding round, u128& out);

// Days since the unix epoch (UTC) of a time in ns: the unit of per-day limits.
inline uint32_t utc_day(uint64_t ns) { return static_cast<uint32_t>(ns / (86'400ull * 1'000'000'000ull)); }

} // namespace kassa::ledger::payments
