#include "channels/breaker.hpp"

#include "primitives/assert.hpp"

namespace kassa::channels {

breaker::breaker(breaker_options o) : opts_(o) {
  KASSA_ASSERT(opts_.failures_min >= 1);
  failures_ms_.assign(opts_.failures_min, 0);
}

breaker_state breaker::state(uint64_t now_ms) const {
  if (state_ == breaker_state::open && now_ms >= opened_at_ms_ + opts_.open_ms) return breaker_state::half_open;
  return state_;
}

bool breaker::allow(uint64_t now_ms) {
  if (state_ == breaker_state::open && now_ms >= opened_at_ms_ + opts_.open_ms) {
    state_ = breaker_state::half_open;
    probe_out_ = false;
  }
  switch (state_) {
    case breaker_state::closed: return true;
    case breaker_state::open: return false;
    case breaker_state::half_open:
      if (probe_out_) return false;
      probe_out_ = true;
      return true;
  }
  return false;
}

void breaker::success(uint64_t now_ms) {
  if (state_ == breaker_state::half_open) {
    state_ = breaker_state::closed;
    probe_out_ = false;
    failures_count_ = 0;
  }
}

void breaker::failure(uint64_t now_ms) {
  switch (state_) {
    case breaker_state::open: return; // a call sent before it opened; already counted
    case breaker_state::half_open: open(now_ms); return;
    case breaker_state::closed: break;
  }
  failures_ms_[failures_next_] = now_ms;
  failures_next_ = (failures_next_ + 1) % failures_ms_.size();
  if (failures_count_ < failures_ms_.size()) ++failures_count_;
  if (failures_count_ < failures_ms_.size()) return;
  // The ring is full: its oldest entry is the one about to be overwritten.
  const uint64_t oldest_ms = failures_ms_[failures_next_];
  if (now_ms - oldest_ms <= opts_.window_ms) open(now_ms);
}

void breaker::open(uint64_t now_ms) {
  state_ = breaker_state::open;
  opened_at_ms_ = now_ms;
  probe_out_ = false;
  failures_count_ = 0;
  ++opened_count_;
}

} // namespace kassa::channels
