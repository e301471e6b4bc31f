#pragma once
// kassad's metrics: counters, gauges and fixed-bucket histograms, each a few relaxed atomics,
// so recording one costs an uncontended add and never takes a lock or allocates. Metrics are
// created (under the registry's lock) when their owner starts; the owner keeps the reference
// and records through it. text() writes every metric in the Prometheus text format 0.0.4.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kassa::metrics {

using label = std::pair<std::string, std::string>;
using labels = std::vector<label>;

// The clock of every latency metric: steady_clock, in nanoseconds.
inline uint64_t steady_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// A cache line each: counters of different owners never share one.
class alignas(64) counter {
public:
  void add(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<uint64_t> value_{0};
};

class alignas(64) gauge {
public:
  void set(int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<int64_t> value_{0};
};

// A histogram's buckets: inclusive upper bounds, ascending, in the unit values are recorded
// in. That unit is 1 / `scale` of the unit shown: a histogram of seconds records nanoseconds
// with scale 1e9 and shows `le="0.000001"` for the bound 1000. Scale is a power of ten, so
// bounds and sums print exactly.
struct buckets {
  std::vector<uint64_t> bounds;
  uint64_t scale = 1;
};

// 1 us * 2^k for k = 0 .. 24 (1 us .. 16.777216 s), recorded in ns: every *_seconds histogram.
buckets seconds_buckets();
// 1, 2, 4 .. 2^k_max: counts such as events per commit.
buckets powers_of_two(unsigned k_max);

class histogram {
public:
  explicit histogram(buckets b);

  void observe(uint64_t value) noexcept {
    counts_[index(value)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  // A consistent-enough copy: buckets made cumulative, count = the +Inf bucket.
  struct snapshot {
    std::vector<uint64_t> cumulative; // one per bound, then +Inf
    uint64_t count = 0;
    uint64_t sum = 0;
  };
  snapshot read() const;
  const buckets& spec() const { return spec_; }

private:
  size_t index(uint64_t value) const noexcept {
    size_t lo = 0, hi = spec_.bounds.size(); // the first bound >= value; size() is +Inf
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (spec_.bounds[mid] < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  buckets spec_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> sum_{0};
};

class registry {
public:
  registry() = default;
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // The metric `name` with exactly these labels, created on first use; later calls return the
  // same one. A name is one type with one help text and (for histograms) one set of buckets;
  // a bad name, label name or a mismatch throws std::logic_error (a programming error).
  counter& get_counter(std::string_view name, std::string_view help, const labels& l = {});
  gauge& get_gauge(std::string_view name, std::string_view help, const labels& l = {});
  histogram& get_histogram(std::string_view name, std::string_view help, const labels& l,
                           const buckets& b);

  // Every metric in the Prometheus text exposition format 0.0.4, in the order they were
  // first created.
  std::string text() const;

private:
  enum class kind { counter, gauge, histogram };
  struct child {
    labels l;
    std::unique_ptr<metrics::counter> c;
    std::unique_ptr<metrics::gauge> g;
    std::unique_ptr<metrics::histogram> h;
  };
  struct family {
    std::string name, help;
    kind type;
    std::vector<uint64_t> bounds;
    uint64_t scale = 1;
    std::vector<std::unique_ptr<child>> children;
  };
  child& find(std::string_view name, std::string_view help, kind type, const labels& l,
              const buckets* b);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<family>> families_;
  std::map<std::string, family*, std::less<>> by_name_;
};

// Metrics indexed by a small number (an operation, a result code), each created on first use:
// the first use of an index takes the registry's lock, every later one is an atomic load.
template <class M>
class row {
public:
  row(size_t size, std::function<M&(size_t)> make)
      : size_(size), slots_(new std::atomic<M*>[size]()), make_(std::move(make)) {}
  M& operator[](size_t i) {
    if (i >= size_) i = size_ - 1; // the last slot stands for anything out of range
    M* m = slots_[i].load(std::memory_order_acquire);
    if (m == nullptr) {
      m = &make_(i); // the registry returns the same metric to a racing thread
      slots_[i].store(m, std::memory_order_release);
    }
    return *m;
  }

private:
  size_t size_;
  std::unique_ptr<std::atomic<M*>[]> slots_;
  std::function<M&(size_t)> make_;
};

// The registry kassad serves on /metrics; actors and the server record into it unless they
// are given another one (tests).
registry& process_registry();

// Helpers of the exposition, public for tests: a label value with \, " and newline escaped;
// `value / scale` as an exact decimal without trailing zeros ("0.000512", "16.777216", "3").
std::string escape_label_value(std::string_view v);
std::string decimal(uint64_t value, uint64_t scale);

} // namespace kassa::metrics
