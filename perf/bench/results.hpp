#pragma once
// The results of kassa-bench as JSON lines (docs/performance.md, "Results format"): a `run`
// line per scenario, a `tick` line per second, a `summary`, and a `stages` line with
// --metrics; plus the one-line human summary and the progress line.
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "perf/bench/scenario.hpp"
#include "perf/bench/workload.hpp"

namespace kassa::bench {

class results_file {
public:
  // Appends to `path`; throws std::runtime_error when it cannot be opened. A file this
  // created and never wrote to is removed again (a run that could not start leaves none).
  explicit results_file(const std::string& path);
  ~results_file();
  results_file(const results_file&) = delete;
  results_file& operator=(const results_file&) = delete;
  // One line, flushed; throws std::runtime_error when it cannot be written.
  void write(const nlohmann::ordered_json& line);

private:
  std::FILE* file_ = nullptr;
  std::string path_;
  bool created_ = false;
  bool written_ = false;
};

nlohmann::ordered_json tick_line(const scenario& s, double t_s, double window_s, const tally& t);
nlohmann::ordered_json summary_line(const scenario& s, double seconds, const tally& t, const std::vector<std::string>& result_names);
// One line for stdout: the figures of the summary and the counts of the results.
std::string summary_text(const scenario& s, double seconds, const tally& t, const std::vector<std::string>& result_names);
// The progress line for stderr.
std::string progress_text(const scenario& s, double t_s, double window_s, const tally& t);

} // namespace kassa::bench
