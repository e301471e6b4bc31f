#pragma once
// Retry delays: exponential from delay_ms_min, capped at delay_ms_max, with "equal jitter"
// (half fixed, half drawn) drawn deterministically from (seed, key, attempt), so a replay with
// the same seed waits the same times. Pure: no clock, no global RNG.
#include <cstdint>

namespace kassa::channels {

struct backoff_policy {
  uint32_t delay_ms_min = 50;
  uint32_t delay_ms_max = 2000;
  uint64_t seed = 0;

  // The wait before retry number `attempt` (1 = the first retry) of the call named by `key`.
  // Always within [delay_ms_min, delay_ms_max].
  uint32_t delay_ms(uint32_t attempt, uint64_t key) const;
};

// A 64-bit mix (splitmix64's finaliser): deterministic, well spread.
uint64_t mix64(uint64_t x);

} // namespace kassa::channels
