#include "channels/backoff.hpp"

#include "primitives/assert.hpp"

namespace kassa::channels {

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint32_t backoff_policy::delay_ms(uint32_t attempt, uint64_t key) const {
  KASSA_ASSERT(delay_ms_min <= delay_ms_max);
  KASSA_ASSERT(attempt >= 1);
  // ceiling = min * 2^(attempt-1), computed without overflow.
  uint64_t ceiling = delay_ms_min == 0 ? 1 : delay_ms_min;
  for (uint32_t i = 1; i < attempt && ceiling < delay_ms_max; ++i) ceiling *= 2;
  if (ceiling > delay_ms_max) ceiling = delay_ms_max;
  const uint64_t half = ceiling / 2;
  const uint64_t draw = mix64(seed ^ mix64(key) ^ (uint64_t{attempt} << 48)) % (ceiling - half + 1);
  uint64_t d = half + draw;
  if (d < delay_ms_min) d = delay_ms_min;
  if (d > delay_ms_max) d = delay_ms_max;
  return static_cast<uint32_t>(d);
}

} // namespace kassa::channels
