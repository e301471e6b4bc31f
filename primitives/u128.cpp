#include "primitives/u128.hpp"

#include "primitives/assert.hpp"

namespace kassa {

std::string to_string_u128(u128 v) {
  char buf[40]; // 2^128 - 1 has 39 digits
  size_t n = sizeof buf;
  do {
    buf[--n] = static_cast<char>('0' + static_cast<unsigned>(v % 10));
    v /= 10;
  } while (v != 0);
  return std::string(buf + n, sizeof buf - n);
}

std::string to_hex_u128(u128 v, size_t digits_min) {
  KASSA_ASSERT(digits_min <= 32);
  char buf[32];
  size_t n = sizeof buf;
  do {
    buf[--n] = "0123456789abcdef"[static_cast<unsigned>(v & 0xf)];
    v >>= 4;
  } while (v != 0 || sizeof buf - n < digits_min);
  return std::string(buf + n, sizeof buf - n);
}

bool parse_u128_digits(std::string_view digits, unsigned base, u128& out) {
  if (digits.empty()) return false;
  u128 v = 0;
  for (char c : digits) {
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else return false;
    if (v > (u128_max - d) / base) return false;
    v = v * base + d;
  }
  out = v;
  return true;
}

bool parse_u128(std::string_view text, u128& out) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
    return parse_u128_digits(text.substr(2), 16, out);
  return parse_u128_digits(text, 10, out);
}

} // namespace kassa
