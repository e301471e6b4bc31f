#include "perf/bench/metrics.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>

namespace kassa::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t response_bytes_max = 16u << 20;
const char* const pipeline_order[] = {"decode", "routing", "accounts", "commit_wait", "encode"};

// The value of label `name` in a `{a="x",b="y"}` block, or "".
std::string label(const std::string& labels, const std::string& name) {
  const std::string key = name + "=\"";
  size_t at = labels.find(key);
  while (at != std::string::npos && at > 0 && labels[at - 1] != '{' && labels[at - 1] != ',') at = labels.find(key, at + 1);
  if (at == std::string::npos) return "";
  const size_t begin = at + key.size();
  const size_t end = labels.find('"', begin);
  return end == std::string::npos ? "" : labels.substr(begin, end - begin);
}

// True once `response` holds a head with Content-Length and that many body bytes (a server
// that keeps the connection open has answered then).
bool complete(const std::string& response) {
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  std::string head = response.substr(0, head_end);
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  const size_t at = head.find("\r\ncontent-length:");
  if (at == std::string::npos) return false;
  const size_t length = std::strtoul(head.c_str() + at + 17, nullptr, 10);
  return response.size() - (head_end + 4) >= length;
}

std::string dechunk(const std::string& body) {
  std::string out;
  size_t at = 0;
  for (;;) {
    const size_t eol = body.find("\r\n", at);
    if (eol == std::string::npos) throw std::runtime_error("a chunked reply ends early");
    const size_t size = std::strtoul(body.substr(at, eol - at).c_str(), nullptr, 16);
    if (size == 0) return out;
    if (eol + 2 + size > body.size()) throw std::runtime_error("a chunked reply ends early");
    out.append(body, eol + 2, size);
    at = eol + 2 + size + 2;
  }
}

} // namespace

stage_histograms parse_stage_histograms(const std::string& text) {
  stage_histograms out;
  size_t at = 0;
  while (at < text.size()) {
    size_t eol = text.find('\n', at);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(at, eol - at);
    at = eol + 1;
    if (line.rfind("kassa_stage_seconds", 0) != 0) continue;
    const size_t open = line.find('{'), close = line.find('}');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    const std::string series = line.substr(0, open), labels = line.substr(open, close - open + 1);
    const std::string stage = label(labels, "stage");
    if (stage.empty()) continue;
    const double value = std::strtod(line.c_str() + close + 1, nullptr);
    stage_histogram& h = out[stage];
    if (series == "kassa_stage_seconds_bucket") {
      const std::string le = label(labels, "le");
      const double bound = le == "+Inf" ? INFINITY : std::strtod(le.c_str(), nullptr);
      h.buckets.emplace_back(bound, uint64_t(std::llround(value)));
    } else if (series == "kassa_stage_seconds_sum") {
      h.sum_s = value;
    } else if (series == "kassa_stage_seconds_count") {
      h.count = uint64_t(std::llround(value));
    }
  }
  for (auto& [stage, h] : out) std::sort(h.buckets.begin(), h.buckets.end());
  return out;
}

std::string scrape(const tcp::endpoint& at) {
  asio::io_context io;
  tcp::socket socket(io);
  std::string request = "GET /metrics HTTP/1.0\r\nHost: " + at.address().to_string() + ":" +
                        std::to_string(at.port()) + "\r\nAccept: text/plain\r\n\r\n";
  std::string response;
  std::vector<char> chunk(65536);
  boost::system::error_code failure;
  std::function<void()> read = [&] {
    socket.async_read_some(asio::buffer(chunk), [&](const boost::system::error_code& ec, size_t n) {
      response.append(chunk.data(), n);
      if (ec == asio::error::eof || (!ec && complete(response))) return;
      if (ec) failure = ec;
      else if (response.size() > response_bytes_max) failure = asio::error::message_size;
      else read();
    });
  };
  socket.async_connect(at, [&](const boost::system::error_code& ec) {
    if (ec) {
      failure = ec;
      return;
    }
    asio::async_write(socket, asio::buffer(request), [&](const boost::system::error_code& ec2, size_t) {
      if (ec2) failure = ec2;
      else read();
    });
  });
  io.run_for(std::chrono::seconds(5));
  const std::string where = "http://" + at.address().to_string() + ":" + std::to_string(at.port()) + "/metrics";
  if (!io.stopped()) throw std::runtime_error(where + ": no complete answer within 5 s");
  if (failure) throw std::runtime_error(where + ": " + failure.message());
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos || response.compare(0, 5, "HTTP/") != 0)
    throw std::runtime_error(where + ": not an HTTP answer");
  const std::string head = response.substr(0, head_end);
  const size_t space = head.find(' ');
  if (space == std::string::npos || head.compare(space + 1, 3, "200") != 0)
    throw std::runtime_error(where + ": answered " + head.substr(0, head.find('\r')));
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  std::string body = response.substr(head_end + 4);
  if (lower.find("transfer-encoding: chunked") != std::string::npos) body = dechunk(body);
  return body;
}

nlohmann::ordered_json stage_differences(const stage_histograms& before, const stage_histograms& after) {
  std::vector<std::string> order(std::begin(pipeline_order), std::end(pipeline_order));
  for (const auto& [stage, h] : after) {
    if (std::find(order.begin(), order.end(), stage) == order.end()) order.push_back(stage);
  }
  nlohmann::ordered_json stages = nlohmann::ordered_json::array();
  for (const auto& stage : order) {
    const auto a = after.find(stage);
    if (a == after.end()) continue;
    const auto b = before.find(stage);
    const stage_histogram empty;
    const stage_histogram& was = b == before.end() ? empty : b->second;
    const stage_histogram& now = a->second;
    const uint64_t count = now.count - std::min(now.count, was.count);
    // Cumulative: the count of the largest bound at or below `le` (buckets are sorted).
    auto cumulative_before = [&](double le) -> uint64_t {
      uint64_t n = 0;
      for (const auto& [bound, count] : was.buckets)
        if (bound <= le) n = count;
      return n;
    };
    auto percentile_us = [&](double p) -> double {
      if (count == 0) return 0;
      const double rank = std::max(1.0, std::ceil(p / 100.0 * double(count)));
      double last_finite = 0;
      for (const auto& [bound, n] : now.buckets) {
        const uint64_t in = n - std::min(n, cumulative_before(bound));
        if (std::isfinite(bound)) last_finite = bound;
        if (double(in) >= rank) return std::isfinite(bound) ? std::round(bound * 1e6 * 1000) / 1000 : last_finite * 1e6;
      }
      return last_finite * 1e6;
    };
    nlohmann::ordered_json j;
    j["stage"] = stage;
    j["count"] = count;
    j["mean_us"] = count == 0 ? 0.0 : std::round((now.sum_s - was.sum_s) / double(count) * 1e6 * 1000) / 1000;
    j["p50_us"] = percentile_us(50);
    j["p99_us"] = percentile_us(99);
    stages.push_back(j);
  }
  return stages;
}

} // namespace kassa::bench
