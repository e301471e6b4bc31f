#pragma once
// A log-bucketed latency histogram (HDR-style): values below 64 have a bucket each, every
// power of two above is split into 32 equal sub-buckets, so a bucket is at most ~3% wide.
// Integer counts, a fixed size, mergeable; a percentile is the upper bound of the bucket that
// holds the value of that rank (never below it, and in the same bucket).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace kassa::bench {

class histogram {
public:
  static constexpr int sub_bits = 5;                 // 32 sub-buckets a power of two
  static constexpr uint64_t exact_max = 64;          // values below have a bucket each
  static constexpr size_t buckets = exact_max + (64 - 6) * (size_t{1} << sub_bits);

  void add(uint64_t value, uint64_t count = 1) {
    counts_[bucket(value)] += count;
    total_ += count;
    sum_ += value * count;
    max_ = std::max(max_, value);
    min_ = std::min(min_, value);
  }

  void merge(const histogram& o) {
    for (size_t i = 0; i < buckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }

  void clear() { *this = histogram{}; }

  // The value at rank ceil(p / 100 * total) (at least 1) as its bucket's upper bound, never
  // above the largest value added; 0 when empty.
  uint64_t percentile(double p) const {
    if (total_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(p / 100.0 * double(total_));
    if (double(rank) < p / 100.0 * double(total_)) ++rank;
    rank = std::clamp<uint64_t>(rank, 1, total_);
    uint64_t seen = 0;
    for (size_t i = 0; i < buckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return total_ == 0 ? 0 : min_; }
  uint64_t sum() const { return sum_; }
  double mean() const { return total_ == 0 ? 0.0 : double(sum_) / double(total_); }
  uint64_t count_at(size_t bucket) const { return counts_[bucket]; }

  static size_t bucket(uint64_t v) {
    if (v < exact_max) return size_t(v);
    const int e = 63 - __builtin_clzll(v); // >= 6
    const uint64_t sub = (v >> (e - sub_bits)) & ((uint64_t{1} << sub_bits) - 1);
    return size_t(exact_max) + size_t(e - 6) * (size_t{1} << sub_bits) + size_t(sub);
  }
  // The largest value that falls into bucket b.
  static uint64_t upper(size_t b) {
    if (b < exact_max) return b;
    const int e = int((b - exact_max) >> sub_bits) + 6;
    const uint64_t sub = (b - exact_max) & ((uint64_t{1} << sub_bits) - 1);
    const uint64_t sub_count = uint64_t{1} << sub_bits;
    if (e == 63 && sub == sub_count - 1) return UINT64_MAX;
    return ((sub_count + sub + 1) << (e - sub_bits)) - 1;
  }

private:
  std::array<uint64_t, buckets> counts_{};
  uint64_t total_ = 0, sum_ = 0, max_ = 0, min_ = UINT64_MAX;
};

} // namespace kassa::bench
