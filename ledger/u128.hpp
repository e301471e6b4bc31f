#pragma once
// 128-bit unsigned integers for ids and amounts, with overflow as a value, never wraparound.
#include <cstdint>
#include <string>

namespace kassa {

using u128 = unsigned __int128;
constexpr u128 u128_max = ~u128{0};

// Returns false (and leaves `out` untouched) when a + b does not fit in 128 bits.
inline bool add_checked(u128 a, u128 b, u128& out) {
  u128 sum = a + b;
  if (sum < a) return false;
  out = sum;
  return true;
}

inline bool add_overflows(u128 a, u128 b) { return a + b < a; }

inline constexpr u128 make_u128(uint64_t hi, uint64_t lo) { return (u128{hi} << 64) | lo; }
inline constexpr uint64_t u128_hi(u128 v) { return static_cast<uint64_t>(v >> 64); }
inline constexpr uint64_t u128_lo(u128 v) { return static_cast<uint64_t>(v); }

// Decimal text, as printed by the CLI and in logs.
std::string to_string_u128(u128 v);
// Parses decimal or 0x-prefixed hex; false on empty input, stray characters or overflow.
// Inline so that config/ can read ids without linking the ledger.
inline bool parse_u128(const std::string& text, u128& out) {
  if (text.empty()) return false;
  unsigned base = 10;
  size_t i = 0;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    i = 2;
  }
  u128 v = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
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

} // namespace kassa
