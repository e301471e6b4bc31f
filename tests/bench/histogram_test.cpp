#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "perf/bench/histogram.hpp"
#include "tests/seed.hpp"

using kassa::bench::histogram;

namespace {

// The reference: the value of rank ceil(p / 100 * n) in the sorted values.
uint64_t reference(const std::vector<uint64_t>& sorted, double p) {
  uint64_t rank = uint64_t(p / 100.0 * double(sorted.size()));
  if (double(rank) < p / 100.0 * double(sorted.size())) ++rank;
  rank = std::clamp<uint64_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

} // namespace

TEST_CASE("a histogram's percentiles fall in the bucket of the sorted reference, never below it", "[bench]") {
  std::mt19937_64 rng(kassa::test::seed("histogram percentiles"));
  for (int round = 0; round < 20; ++round) {
    const size_t n = 1 + rng() % 20000;
    // Latency-like: mostly around a few ms, a tail up to seconds, some tiny values.
    std::lognormal_distribution<double> shape(7.0 + double(rng() % 30) / 10.0, 1.0 + double(rng() % 10) / 10.0);
    std::vector<uint64_t> values;
    histogram h;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t v = rng() % 50 == 0 ? rng() % 100 : uint64_t(shape(rng));
      values.push_back(v);
      h.add(v);
    }
    std::sort(values.begin(), values.end());
    REQUIRE(h.total() == n);
    REQUIRE(h.max() == values.back());
    REQUIRE(h.min() == values.front());
    for (double p : {0.0, 1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
      const uint64_t want = reference(values, p);
      const uint64_t got = h.percentile(p);
      INFO("n " << n << " p " << p << " reference " << want << " histogram " << got);
      CHECK(got >= want);
      CHECK(histogram::bucket(got) == histogram::bucket(want));
      CHECK(got <= h.max());
      // A bucket is at most 1/32 of its values wide.
      CHECK(double(got - want) <= double(want) / 32.0 + 1.0);
    }
  }
}

TEST_CASE("merging histograms is the histogram of all their values", "[bench]") {
  std::mt19937_64 rng(kassa::test::seed("histogram merge"));
  histogram a, b, both;
  for (int i = 0; i < 5000; ++i) {
    const uint64_t v = rng() % 1'000'000;
    (i % 3 == 0 ? a : b).add(v);
    both.add(v);
  }
  a.merge(b);
  REQUIRE(a.total() == both.total());
  REQUIRE(a.sum() == both.sum());
  REQUIRE(a.max() == both.max());
  for (size_t i = 0; i < histogram::buckets; ++i) REQUIRE(a.count_at(i) == both.count_at(i));
  for (double p : {50.0, 99.0, 99.9}) REQUIRE(a.percentile(p) == both.percentile(p));
}

TEST_CASE("buckets are exact below 64 and cover every value up to the largest", "[bench]") {
  for (uint64_t v = 0; v < 64; ++v) REQUIRE(histogram::upper(histogram::bucket(v)) == v);
  for (uint64_t v : {uint64_t{64}, uint64_t{65}, uint64_t{1000}, uint64_t{123456789}, uint64_t{1} << 40, UINT64_MAX}) {
    const size_t b = histogram::bucket(v);
    REQUIRE(b < histogram::buckets);
    REQUIRE(histogram::upper(b) >= v);
    REQUIRE((b == 0 || histogram::upper(b - 1) < v));
  }
  histogram empty;
  REQUIRE(empty.percentile(99) == 0);
  REQUIRE(empty.mean() == 0);
}
