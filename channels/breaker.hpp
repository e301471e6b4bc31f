#pragma once
// A circuit breaker as a pure value: the caller passes the time in, so tests drive it without
// clocks. Closed: calls pass; failures_min failures within window_ms open it. Open: calls are
// refused for open_ms. Then half-open: one probe call at a time passes; its success closes
// the breaker, its failure opens it again for another open_ms.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kassa::channels {

enum class breaker_state : uint8_t { closed = 0, half_open = 1, open = 2 };

struct breaker_options {
  uint32_t failures_min = 5;
  uint64_t window_ms = 10'000;
  uint64_t open_ms = 5'000;
};

class breaker {
public:
  explicit breaker(breaker_options o = {});

  // May a call go out now? In half-open, true once until that probe reports back.
  bool allow(uint64_t now_ms);
  void success(uint64_t now_ms);
  void failure(uint64_t now_ms);
  // The state as allow() would see it (open turns half-open once open_ms has passed).
  breaker_state state(uint64_t now_ms) const;
  uint64_t opened_count() const { return opened_count_; }

private:
  void open(uint64_t now_ms);

  breaker_options opts_;
  breaker_state state_ = breaker_state::closed;
  uint64_t opened_at_ms_ = 0;
  bool probe_out_ = false;
  // The times of the last failures_min failures while closed, as a ring.
  std::vector<uint64_t> failures_ms_;
  size_t failures_next_ = 0;
  size_t failures_count_ = 0;
  uint64_t opened_count_ = 0;
};

} // namespace kassa::channels
