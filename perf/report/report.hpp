#pragma once
// The benchmark report: kassa-bench's JSON lines (docs/performance.md, "Results format") in,
// one self-contained HTML page out: inline CSS and SVG charts, no script, no external file.
// Lines that are missing or malformed are skipped with a note on the page, never a failure.
#include <nlohmann/json.hpp>

#include <istream>
#include <string>
#include <vector>

namespace kassa::report {

struct input {
  std::vector<nlohmann::json> lines;
  std::vector<std::string> origins; // "file:line" of each line when known (else empty)
  std::vector<std::string> notes;   // lines that were not JSON at all
};

// Appends every line of `in` to `out`: blank lines are ignored, a line that does not parse
// becomes a note naming `origin` and its line number.
void read_json_lines(std::istream& in, const std::string& origin, input& out);

std::string render_report(const input& in);
std::string render_report(const std::vector<nlohmann::json>& lines);

} // namespace kassa::report
