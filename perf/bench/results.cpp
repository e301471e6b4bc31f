#include "perf/bench/results.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger/payments/records.hpp"

namespace kassa::bench {

results_file::results_file(const std::string& path) : path_(path) {
  struct stat st {};
  created_ = ::stat(path.c_str(), &st) != 0;
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
}

results_file::~results_file() {
  if (file_ != nullptr) std::fclose(file_);
  if (created_ && !written_) ::unlink(path_.c_str());
}

void results_file::write(const nlohmann::ordered_json& line) {
  written_ = true;
  const std::string text = line.dump() + "\n";
  if (std::fputs(text.c_str(), file_) < 0 || std::fflush(file_) != 0)
    throw std::runtime_error("writing " + path_ + " failed: " + std::strerror(errno));
}

namespace {

double per_s(uint64_t n, double seconds) { return seconds > 0 ? double(n) / seconds : 0.0; }

template <class F> void nonzero(const std::vector<uint64_t>& counts, const F& each) {
  for (size_t i = 0; i < counts.size(); ++i)
    if (counts[i] != 0) each(i, counts[i]);
}

} // namespace

nlohmann::ordered_json tick_line(const scenario& s, double t_s, double window_s, const tally& t) {
  return {{"type", "tick"},
          {"scenario", s.name},
          {"t_s", std::round(t_s * 1000) / 1000},
          {"requests", t.requests},
          {"events", t.events},
          {"events_per_s", std::round(per_s(t.events, window_s) * 10) / 10},
          {"p50_us", t.latency.percentile(50)},
          {"p99_us", t.latency.percentile(99)},
          {"errors", t.errors()}};
}

nlohmann::ordered_json summary_line(const scenario& s, double seconds, const tally& t, const std::vector<std::string>& names) {
  nlohmann::ordered_json j;
  j["type"] = "summary";
  j["scenario"] = s.name;
  j["seconds"] = std::round(seconds * 1000) / 1000;
  j["requests"] = t.requests;
  j["events"] = t.events;
  j["events_per_s"] = std::round(per_s(t.events, seconds) * 10) / 10;
  j["requests_per_s"] = std::round(per_s(t.requests, seconds) * 10) / 10;
  j["latency_us"] = {{"p50", t.latency.percentile(50)},  {"p90", t.latency.percentile(90)},
                     {"p99", t.latency.percentile(99)},  {"p999", t.latency.percentile(99.9)},
                     {"max", t.latency.max()},           {"mean", std::round(t.latency.mean() * 10) / 10}};
  nlohmann::ordered_json upper = nlohmann::ordered_json::array(), counts = nlohmann::ordered_json::array();
  for (size_t b = 0; b < histogram::buckets; ++b) {
    if (t.latency.count_at(b) == 0) continue;
    upper.push_back(histogram::upper(b));
    counts.push_back(t.latency.count_at(b));
  }
  j["histogram"] = {{"upper_us", upper}, {"counts", counts}};
  nlohmann::ordered_json results = nlohmann::ordered_json::object(), errors = nlohmann::ordered_json::object();
  nonzero(t.results, [&](size_t i, uint64_t n) { results[i < names.size() ? names[i] : "unknown"] = n; });
  for (size_t i = 0; i < t.request_errors.size(); ++i)
    if (t.request_errors[i] != 0) errors[request_error_name(i)] = t.request_errors[i];
  j["results"] = results;
  j["request_errors"] = errors;
  if (s.kind == scenario_kind::payments) {
    nlohmann::ordered_json commands = nlohmann::ordered_json::object();
    for (size_t k = 1; k < t.commands.size() && k <= ledger::payments::kind_max; ++k)
      commands[std::string(ledger::payments::name(ledger::payments::kind(k)))] = t.commands[k];
    j["commands"] = commands;
  }
  return j;
}

std::string summary_text(const scenario& s, double seconds, const tally& t, const std::vector<std::string>& names) {
  char head[512];
  std::snprintf(head, sizeof head,
                "%s: %.1f s, %llu requests, %llu events, %.0f events/s, latency p50 %llu us p99 %llu us max %llu us, "
                "request errors %llu",
                s.name.c_str(), seconds, (unsigned long long)t.requests, (unsigned long long)t.events,
                per_s(t.events, seconds), (unsigned long long)t.latency.percentile(50),
                (unsigned long long)t.latency.percentile(99), (unsigned long long)t.latency.max(),
                (unsigned long long)t.errors());
  std::string out = head;
  std::string detail;
  for (size_t i = 0; i < t.request_errors.size(); ++i)
    if (t.request_errors[i] != 0) detail += " " + request_error_name(i) + "=" + std::to_string(t.request_errors[i]);
  if (!detail.empty()) out += " (" + detail.substr(1) + ")";
  out += ", results";
  nonzero(t.results, [&](size_t i, uint64_t n) { out += " " + (i < names.size() ? names[i] : "unknown") + "=" + std::to_string(n); });
  if (s.kind == scenario_kind::payments) {
    out += ", commands";
    for (size_t k = 1; k < t.commands.size() && k <= ledger::payments::kind_max; ++k)
      out += " " + std::string(ledger::payments::name(ledger::payments::kind(k))) + "=" + std::to_string(t.commands[k]);
  }
  return out;
}

std::string progress_text(const scenario& s, double t_s, double window_s, const tally& t) {
  char line[256];
  std::snprintf(line, sizeof line, "kassa-bench %s: %.1f s, %.0f events/s, p99 %llu us (last second), %llu errors",
                s.name.c_str(), t_s, per_s(t.events, window_s), (unsigned long long)t.latency.percentile(99),
                (unsigned long long)t.errors());
  return line;
}

} // namespace kassa::bench
