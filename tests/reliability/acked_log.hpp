#pragma once
// Reading kassa-bench's --acked-log (docs/performance.md#--acked-log), shared by the crash
// tests' checkers (acked_check: transfer lines, payments_check: payment lines).
#include <fstream>
#include <functional>
#include <string>

namespace kassa::test {

using log_usage = void (*)(const std::string& why); // reports a bad log and exits

// The value of ` key=` in a header line.
inline std::string log_field(const std::string& header, const std::string& key, log_usage usage) {
  const size_t at = header.find(" " + key + "=");
  if (at == std::string::npos) usage("log header has no " + key + ": " + header);
  const size_t begin = at + key.size() + 2;
  return header.substr(begin, header.find(' ', begin) - begin);
}

// Hands each header line ('#') to on_header and each other non-empty line to on_line, with
// "path:line" for messages.
inline void read_acked_log(const std::string& path, log_usage usage,
                           const std::function<void(const std::string& line, const std::string& where)>& on_header,
                           const std::function<void(const std::string& line, const std::string& where)>& on_line) {
  std::ifstream in(path);
  if (!in) usage("cannot read " + path);
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const std::string where = path + ":" + std::to_string(line_number);
    if (line.empty()) continue;
    if (line[0] == '#') on_header(line, where);
    else on_line(line, where);
  }
}

} // namespace kassa::test
