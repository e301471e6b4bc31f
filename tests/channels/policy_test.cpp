// The pure policies of a channel: the circuit breaker driven by a hand-held clock, and the
// backoff's bounds and determinism. Tagged [channels].
#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "channels/backoff.hpp"
#include "channels/breaker.hpp"
#include "tests/seed.hpp"

using namespace kassa::channels;

TEST_CASE("the breaker opens after failures_min failures within the window", "[channels]") {
  breaker b({3, 1000, 500});
  uint64_t t = 10'000;
  CHECK(b.allow(t));
  b.failure(t);
  b.failure(t + 100);
  CHECK(b.state(t + 100) == breaker_state::closed);
  b.failure(t + 200);
  CHECK(b.state(t + 200) == breaker_state::open);
  CHECK_FALSE(b.allow(t + 300));
  CHECK_FALSE(b.allow(t + 699));
  CHECK(b.opened_count() == 1);
}

TEST_CASE("failures spread wider than the window keep the breaker closed", "[channels]") {
  breaker b({3, 1000, 500});
  for (uint64_t t = 0; t < 20'000; t += 600) {
    CHECK(b.allow(t));
    b.failure(t);
    CHECK(b.state(t) == breaker_state::closed);
  }
}

TEST_CASE("a half-open breaker lets one probe through; its success closes it", "[channels]") {
  breaker b({1, 1000, 500});
  b.failure(0);
  CHECK(b.state(499) == breaker_state::open);
  CHECK(b.state(500) == breaker_state::half_open);
  CHECK(b.allow(500));
  CHECK_FALSE(b.allow(501)); // one probe at a time
  b.success(600);
  CHECK(b.state(600) == breaker_state::closed);
  CHECK(b.allow(601));
  CHECK(b.allow(602));
}

TEST_CASE("a failed probe opens the breaker for another open_ms", "[channels]") {
  breaker b({2, 1000, 500});
  b.failure(0);
  b.failure(1);
  CHECK(b.allow(600));
  b.failure(650);
  CHECK(b.state(650) == breaker_state::open);
  CHECK_FALSE(b.allow(1149));
  CHECK(b.allow(1150));
  CHECK(b.opened_count() == 2);
}

TEST_CASE("backoff delays grow, stay within bounds, and replay from the seed", "[channels]") {
  const uint64_t seed = kassa::test::seed("backoff");
  std::mt19937_64 rng(seed);
  backoff_policy p{50, 2000, seed};
  backoff_policy same{50, 2000, seed};
  for (int i = 0; i < 1000; ++i) {
    const uint32_t attempt = 1 + static_cast<uint32_t>(rng() % 40);
    const uint64_t key = rng();
    const uint32_t d = p.delay_ms(attempt, key);
    CHECK(d >= 50);
    CHECK(d <= 2000);
    CHECK(d == same.delay_ms(attempt, key));
  }
  // Equal jitter: attempt n waits between half and all of min * 2^(n-1) (capped).
  for (uint64_t key = 0; key < 100; ++key) {
    CHECK(p.delay_ms(1, key) <= 50);
    CHECK(p.delay_ms(3, key) >= 100);
    CHECK(p.delay_ms(3, key) <= 200);
    CHECK(p.delay_ms(20, key) >= 1000);
  }
  // Jitter spreads calls that fail together.
  std::set<uint32_t> seen;
  for (uint64_t key = 0; key < 100; ++key) seen.insert(p.delay_ms(5, key));
  CHECK(seen.size() > 20);
  backoff_policy flat{100, 100, seed};
  CHECK(flat.delay_ms(7, 1) == 100);
}
