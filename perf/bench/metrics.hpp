#pragma once
// --metrics HOST:PORT: kassad's per-stage latency during a scenario, from two scrapes of its
// Prometheus endpoint (GET /metrics, histogram kassa_stage_seconds with a `stage` label and
// cumulative `le` buckets of 1e-6 * 2^k seconds), before and after.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json_fwd.hpp>

namespace kassa::bench {

struct stage_histogram {
  std::vector<std::pair<double, uint64_t>> buckets; // (le in seconds, cumulative count), +Inf last
  double sum_s = 0;
  uint64_t count = 0;
};
using stage_histograms = std::map<std::string, stage_histogram>;

// The kassa_stage_seconds series of a text exposition; other metrics are skipped.
stage_histograms parse_stage_histograms(const std::string& exposition);

// The body of GET /metrics; throws std::runtime_error saying what failed (5 s at most).
std::string scrape(const boost::asio::ip::tcp::endpoint& at);

// The stages in pipeline order (decode, routing, accounts, commit_wait, encode; any other
// after them), each with count, mean_us, p50_us and p99_us of what happened between the two
// scrapes; percentiles are bucket upper bounds.
nlohmann::ordered_json stage_differences(const stage_histograms& before, const stage_histograms& after);

} // namespace kassa::bench
