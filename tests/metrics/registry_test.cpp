// The metrics registry and its Prometheus text (format 0.0.4).
#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

#include "metrics/registry.hpp"
#include "metrics/shared.hpp"

using namespace kassa::metrics;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

} // namespace

TEST_CASE("counters and gauges are written with their HELP, TYPE and labels", "[metrics]") {
  registry r;
  r.get_counter("kassa_things_total", "Things seen", {{"kind", "a"}}).add(3);
  r.get_counter("kassa_things_total", "Things seen", {{"kind", "b"}}).add();
  r.get_gauge("kassa_depth", "Depth now").set(-2);
  const std::string text = r.text();
  CHECK(text ==
        "# HELP kassa_things_total Things seen\n"
        "# TYPE kassa_things_total counter\n"
        "kassa_things_total{kind=\"a\"} 3\n"
        "kassa_things_total{kind=\"b\"} 1\n"
        "# HELP kassa_depth Depth now\n"
        "# TYPE kassa_depth gauge\n"
        "kassa_depth -2\n");
}

TEST_CASE("asking for a metric again returns the same one", "[metrics]") {
  registry r;
  counter& a = r.get_counter("kassa_x_total", "X", {{"k", "1"}});
  counter& b = r.get_counter("kassa_x_total", "X", {{"k", "1"}});
  CHECK(&a == &b);
  CHECK(&a != &r.get_counter("kassa_x_total", "X", {{"k", "2"}}));
}

TEST_CASE("label values are escaped and so is HELP text", "[metrics]") {
  registry r;
  r.get_counter("kassa_odd_total", "A \\ help\nwith a newline", {{"v", "a\"b\\c\nd"}}).add();
  const std::string text = r.text();
  CHECK(has_line(text, "# HELP kassa_odd_total A \\\\ help\\nwith a newline"));
  CHECK(has_line(text, "kassa_odd_total{v=\"a\\\"b\\\\c\\nd\"} 1"));
  CHECK(escape_label_value("plain") == "plain");
}

TEST_CASE("a bad metric name, label name or a second type for a name is refused", "[metrics]") {
  registry r;
  CHECK_THROWS_AS(r.get_counter("9lives", "x"), std::logic_error);
  CHECK_THROWS_AS(r.get_counter("kassa-dash", "x"), std::logic_error);
  CHECK_THROWS_AS(r.get_counter("kassa_ok_total", "x", {{"bad-label", "v"}}), std::logic_error);
  CHECK_THROWS_AS(r.get_counter("kassa_ok_total", "x", {{"__reserved", "v"}}), std::logic_error);
  r.get_counter("kassa_once", "x");
  CHECK_THROWS_AS(r.get_gauge("kassa_once", "x"), std::logic_error);
  CHECK_THROWS_AS(r.get_histogram("kassa_h", "x", {{"le", "1"}}, powers_of_two(3)), std::logic_error);
}

TEST_CASE("decimals print exactly, without trailing zeros", "[metrics]") {
  CHECK(decimal(1000, 1'000'000'000) == "0.000001");
  CHECK(decimal(512'000, 1'000'000'000) == "0.000512");
  CHECK(decimal(16'777'216'000, 1'000'000'000) == "16.777216");
  CHECK(decimal(3'000'000'000, 1'000'000'000) == "3");
  CHECK(decimal(0, 1'000'000'000) == "0");
  CHECK(decimal(1, 1'000'000'000) == "0.000000001");
  CHECK(decimal(42, 1) == "42");
}

TEST_CASE("the seconds buckets are 1 us * 2^k for k = 0 .. 24", "[metrics]") {
  const buckets b = seconds_buckets();
  REQUIRE(b.bounds.size() == 25);
  CHECK(decimal(b.bounds.front(), b.scale) == "0.000001");
  CHECK(decimal(b.bounds[1], b.scale) == "0.000002");
  CHECK(decimal(b.bounds[9], b.scale) == "0.000512");
  CHECK(decimal(b.bounds.back(), b.scale) == "16.777216");
}

TEST_CASE("a histogram's buckets are cumulative, with +Inf, _sum and _count", "[metrics]") {
  registry r;
  histogram& h = r.get_histogram("kassa_stage_seconds", "Stages", {{"stage", "commit_wait"}}, seconds_buckets());
  h.observe(0);             // le 0.000001
  h.observe(1000);          // le 0.000001 (bounds are inclusive)
  h.observe(1001);          // le 0.000002
  h.observe(500'000);       // le 0.000512
  h.observe(20'000'000'000); // beyond the last bound: +Inf only
  const std::string text = r.text();
  CHECK(has_line(text, "# TYPE kassa_stage_seconds histogram"));
  CHECK(has_line(text, "kassa_stage_seconds_bucket{stage=\"commit_wait\",le=\"0.000001\"} 2"));
  CHECK(has_line(text, "kassa_stage_seconds_bucket{stage=\"commit_wait\",le=\"0.000002\"} 3"));
  CHECK(has_line(text, "kassa_stage_seconds_bucket{stage=\"commit_wait\",le=\"0.000256\"} 3"));
  CHECK(has_line(text, "kassa_stage_seconds_bucket{stage=\"commit_wait\",le=\"0.000512\"} 4"));
  CHECK(has_line(text, "kassa_stage_seconds_bucket{stage=\"commit_wait\",le=\"16.777216\"} 4"));
  CHECK(has_line(text, "kassa_stage_seconds_bucket{stage=\"commit_wait\",le=\"+Inf\"} 5"));
  CHECK(has_line(text, "kassa_stage_seconds_sum{stage=\"commit_wait\"} 20.000502001"));
  CHECK(has_line(text, "kassa_stage_seconds_count{stage=\"commit_wait\"} 5"));
  // Buckets in ascending order, each at least the one before.
  uint64_t last = 0;
  int buckets = 0;
  for (const auto& l : lines_of(text)) {
    if (l.rfind("kassa_stage_seconds_bucket", 0) != 0) continue;
    const uint64_t v = std::stoull(l.substr(l.rfind(' ') + 1));
    CHECK(v >= last);
    last = v;
    ++buckets;
  }
  CHECK(buckets == 26);
}

TEST_CASE("the stage histogram has the five stages of the contract, in order", "[metrics]") {
  registry r;
  register_stages(r);
  const std::string text = r.text();
  size_t at = 0;
  for (const char* s : {"decode", "routing", "accounts", "commit_wait", "encode"}) {
    const size_t found = text.find(std::string("kassa_stage_seconds_count{stage=\"") + s + "\"} 0");
    CHECK(found != std::string::npos);
    CHECK(found >= at);
    at = found;
  }
}

TEST_CASE("a row creates each metric on first use and returns it after", "[metrics]") {
  registry r;
  row<counter> codes(4, [&](size_t i) -> counter& {
    return r.get_counter("kassa_codes_total", "Codes", {{"code", std::to_string(i)}});
  });
  codes[2].add();
  codes[2].add();
  codes[9].add(); // out of range: the last slot
  const std::string text = r.text();
  CHECK(has_line(text, "kassa_codes_total{code=\"2\"} 2"));
  CHECK(has_line(text, "kassa_codes_total{code=\"3\"} 1"));
  CHECK(text.find("code=\"0\"") == std::string::npos); // never used: not written
}

TEST_CASE("counts from several threads add up", "[metrics]") {
  registry r;
  counter& c = r.get_counter("kassa_adds_total", "Adds");
  histogram& h = r.get_histogram("kassa_sizes", "Sizes", {}, powers_of_two(10));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.add();
        h.observe(static_cast<uint64_t>(i % 2048));
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(c.value() == 40000);
  const histogram::snapshot s = h.read();
  CHECK(s.count == 40000);
  CHECK(s.cumulative.back() == 40000);
}
