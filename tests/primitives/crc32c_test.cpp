// CRC-32C: the standard check value, every implementation against Boost.CRC, and throughput.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "primitives/crc32c.hpp"
#include "tests/seed.hpp"

using namespace kassa;

TEST_CASE("crc32c of \"123456789\" is the standard check value 0xE3069283", "[primitives]") {
  const char text[] = "123456789";
  CHECK(crc32c(text, 9) == 0xE3069283u);
  CHECK(crc32c_extend_slicing8(0, text, 9) == 0xE3069283u);
  CHECK(crc32c_extend_boost(0, text, 9) == 0xE3069283u);
  CHECK(crc32c(text, 0) == 0);
}

TEST_CASE("every crc32c implementation agrees with Boost.CRC, in one piece or extended", "[primitives]") {
  std::mt19937_64 rng(kassa::test::seed("crc32c agreement"));
  for (int round = 0; round < 200; ++round) {
    std::vector<uint8_t> data(rng() % 3000);
    for (auto& b : data) b = uint8_t(rng());
    const uint32_t expected = crc32c_extend_boost(0, data.data(), data.size());
    CHECK(crc32c(data.data(), data.size()) == expected);
    CHECK(crc32c_extend_slicing8(0, data.data(), data.size()) == expected);
    const size_t cut = data.empty() ? 0 : rng() % data.size();
    CHECK(crc32c_extend(crc32c(data.data(), cut), data.data() + cut, data.size() - cut) == expected);
    CHECK(crc32c_extend_slicing8(crc32c_extend_boost(0, data.data(), cut), data.data() + cut,
                                 data.size() - cut) == expected);
    CHECK(crc32c_extend_boost(crc32c(data.data(), cut), data.data() + cut, data.size() - cut) ==
          expected);
  }
}

// Not run by default: `test_wire "[.bench]"` prints MB/s of each implementation.
TEST_CASE("crc32c throughput", "[wire][.bench]") {
  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 131);
  auto measure = [&](const char* what, uint32_t (*fn)(uint32_t, const void*, size_t)) {
    const int rounds = 200;
    uint32_t sink = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < rounds; ++r) sink ^= fn(sink, data.data(), data.size());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-22s %8.0f MB/s (%08x)\n", what, rounds * data.size() / s / 1e6, sink);
  };
  measure("boost::crc_optimal", crc32c_extend_boost);
  measure("slicing-by-8", crc32c_extend_slicing8);
  measure(crc32c_hardware() ? "crc32c_extend (sse4.2)" : "crc32c_extend", crc32c_extend);
}
