#include "runtime/log.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <unistd.h>

namespace kassa::log {
namespace {

std::atomic<int> threshold{static_cast<int>(level::info)};

const char* name(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

// Values with spaces, quotes or '=' are quoted so that the line stays machine-readable.
void append_value(std::string& out, const std::string& v) {
  bool plain = !v.empty();
  for (char c : v) plain = plain && c != ' ' && c != '"' && c != '=' && c != '\n';
  if (plain) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  out += '"';
}

} // namespace

void set_level(level l) { threshold = static_cast<int>(l); }

void write(level l, const std::string& msg, fields kv) {
  write(l, msg, std::vector<std::pair<const char*, std::string>>(kv));
}

void write(level l, const std::string& msg, const std::vector<std::pair<const char*, std::string>>& kv) {
  if (static_cast<int>(l) < threshold.load(std::memory_order_relaxed)) return;
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[80];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line = stamp;
  line += " level=";
  line += name(l);
  line += " msg=";
  append_value(line, msg);
  for (const auto& [k, v] : kv) {
    line += ' ';
    line += k;
    line += '=';
    append_value(line, v);
  }
  line += '\n';
  ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc; // nowhere left to report a failed log write
}

} // namespace kassa::log
