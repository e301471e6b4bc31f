#include "perf/bench/acked_log.hpp"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace kassa::bench {

std::string hex(u128 v) { return "0x" + to_hex_u128(v); }

acked_log::acked_log(const std::string& path) {
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr) throw std::runtime_error("cannot open --acked-log " + path + ": " + std::strerror(errno));
}

acked_log::~acked_log() {
  if (file_ != nullptr) std::fclose(file_);
}

void acked_log::begin(const scenario& s) {
  if (s.kind == scenario_kind::payments) {
    write("# kassa-bench acked-log seed=" + std::to_string(s.seed) + " accounts=" + std::to_string(s.accounts) +
          " ledger=" + std::to_string(s.ledger) + " funding=" + std::to_string(s.funding) + " mix=payments scenario=" +
          s.name + "\n");
    return;
  }
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

void acked_log::record_payments(const ledger::payments::payment_command* commands, size_t command_count,
                                const ledger::payments::payment_reply* replies, size_t reply_count) {
  namespace lp = ledger::payments;
  std::string lines;
  for (size_t i = 0; i < reply_count; ++i) {
    const lp::payment_reply& r = replies[i];
    if (r.index >= command_count) continue; // not a command of this request: nothing to record
    const lp::payment_command& c = commands[r.index];
    const std::string provider(c.provider, strnlen(c.provider, sizeof c.provider));
    const std::string_view result = r.result <= lp::payment_result_max
                                        ? lp::name(lp::payment_result(r.result)) : std::string_view("unknown");
    const std::string_view state = r.state <= lp::order_state_max ? lp::name(lp::order_state(r.state)) : std::string_view("unknown");
    lines += std::string(lp::name(lp::kind(c.kind))) + " " + hex(c.key) + " " + hex(c.order_id) + " " + hex(c.account_id) + " " +
             hex(c.counterparty_id) + " " + to_string_u128(c.amount) + " " + std::to_string(c.ledger) + " " +
             std::to_string(c.source) + " " + (provider.empty() ? "-" : provider) + " " + std::to_string(c.user_data_64) + " " +
             std::string(result) + " " + std::string(state) + "\n";
  }
  if (!lines.empty()) write(lines);
}

void acked_log::write(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::fputs(line.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    std::fprintf(stderr, "kassa-bench: writing --acked-log failed\n");
    std::exit(3);
  }
}

} // namespace kassa::bench
