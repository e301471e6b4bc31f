#include "perf/bench/acked_log.hpp"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace kassa::bench {

std::string hex(u128 v) {
  char digits[33];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[static_cast<unsigned>(v & 0xf)];
    v >>= 4;
  } while (v != 0 && n < 32);
  std::string out = "0x";
  while (n > 0) out += digits[--n];
  return out;
}

acked_log::acked_log(const std::string& path) {
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr) throw std::runtime_error("cannot open --acked-log " + path + ": " + std::strerror(errno));
}

acked_log::~acked_log() {
  if (file_ != nullptr) std::fclose(file_);
}

void acked_log::begin(const scenario& s) {
  write("# kassa-bench acked-log seed=" + std::to_string(s.seed) + " accounts=" + std::to_string(s.accounts) +
        " transfer_amount=" + std::to_string(s.amount_min) + " mix=" + std::string(name(s.kind)) +
        " scenario=" + s.name + "\n");
}

void acked_log::record(u128 first_id, uint32_t count, const wire::event_result* failed, size_t failed_count) {
  std::string line = hex(first_id) + " " + std::to_string(count) + " ";
  if (failed_count == 0) line += "-";
  for (size_t i = 0; i < failed_count; ++i) {
    if (i > 0) line += ",";
    line += std::to_string(failed[i].index);
  }
  line += "\n";
  write(line);
}

void acked_log::write(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::fputs(line.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    std::fprintf(stderr, "kassa-bench: writing --acked-log failed\n");
    std::exit(3);
  }
}

} // namespace kassa::bench
