#pragma once
// Text forms of 128-bit values on the provider API: amounts are decimal strings (JSON numbers
// lose precision past 2^53), ids are exactly 32 hex digits. Parsers are strict and total.
#include <string>
#include <string_view>

#include "ledger/u128.hpp"

namespace kassa::channels {

// Decimal digits, no sign, no leading zeros (except "0" itself).
inline std::string amount_text(u128 v) {
  char buf[40];
  size_t n = sizeof buf;
  do {
    buf[--n] = static_cast<char>('0' + static_cast<unsigned>(v % 10));
    v /= 10;
  } while (v != 0);
  return std::string(buf + n, sizeof buf - n);
}

// False on empty input, anything but digits, leading zeros, or a value above 2^128 - 1.
inline bool parse_amount(std::string_view text, u128& out) {
  if (text.empty() || text.size() > 39) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  u128 v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const unsigned d = static_cast<unsigned>(c - '0');
    if (v > (u128_max - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

// Exactly 32 lowercase hex digits, most significant first.
inline std::string id_text(u128 v) {
  static const char digits[] = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 31; i >= 0; --i) {
    s[static_cast<size_t>(i)] = digits[static_cast<unsigned>(v & 0xf)];
    v >>= 4;
  }
  return s;
}

// Exactly 32 hex digits (either case); false otherwise.
inline bool parse_id(std::string_view text, u128& out) {
  if (text.size() != 32) return false;
  u128 v = 0;
  for (char c : text) {
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else return false;
    v = (v << 4) | d;
  }
  out = v;
  return true;
}

} // namespace kassa::channels
