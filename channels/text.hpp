#pragma once
// Text forms of 128-bit values on the provider API: amounts are decimal strings (JSON numbers
// lose precision past 2^53), ids are exactly 32 hex digits. Parsers are strict and total.
#include <string>
#include <string_view>

#include "primitives/u128.hpp"

namespace kassa::channels {

// Decimal digits, no sign, no leading zeros (except "0" itself).
inline std::string amount_text(u128 v) { return to_string_u128(v); }

// False on empty input, anything but digits, leading zeros, or a value above 2^128 - 1.
inline bool parse_amount(std::string_view text, u128& out) {
  if (text.size() > 39) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  return parse_u128_digits(text, 10, out);
}

// Exactly 32 lowercase hex digits, most significant first.
inline std::string id_text(u128 v) { return to_hex_u128(v, 32); }

// Exactly 32 hex digits (either case); false otherwise.
inline bool parse_id(std::string_view text, u128& out) {
  return text.size() == 32 && parse_u128_digits(text, 16, out);
}

} // namespace kassa::channels
