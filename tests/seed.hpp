#pragma once
// Seeds for randomized tests: KASSA_SEED=N replays a run; otherwise a fresh seed is drawn.
// The seed is always printed so that a failing run can be replayed.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace kassa::test {

inline uint64_t seed(const char* what) {
  uint64_t s;
  if (const char* env = std::getenv("KASSA_SEED")) {
    s = std::strtoull(env, nullptr, 10);
  } else {
    s = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  }
  std::printf("%s: seed %llu (replay with KASSA_SEED=%llu)\n", what, (unsigned long long)s,
              (unsigned long long)s);
  std::fflush(stdout);
  return s;
}

} // namespace kassa::test
