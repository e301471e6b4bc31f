#pragma once
// 128-bit unsigned integers for ids and amounts, with overflow as a value, never wraparound.
#include <cstdint>
#include <string>
#include <string_view>

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

// Decimal text, as printed by the CLI, in logs and on the provider API.
std::string to_string_u128(u128 v);
// Lowercase hex digits without a prefix, zero-padded to at least `digits_min` (at most 32).
std::string to_hex_u128(u128 v, size_t digits_min = 1);

// Exactly the digits of `base` (10, or 16 in either case): false on empty input, any other
// character, or a value above 2^128 - 1.
bool parse_u128_digits(std::string_view digits, unsigned base, u128& out);
// Parses decimal or 0x-prefixed hex; false on empty input, stray characters or overflow.
bool parse_u128(std::string_view text, u128& out);

} // namespace kassa
