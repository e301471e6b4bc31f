#include "perf/report/format.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace kassa::report;

TEST_CASE("counts print with three significant digits and k, M, G", "[report]") {
  CHECK(format_count(0) == "0");
  CHECK(format_count(7) == "7");
  CHECK(format_count(950) == "950");
  CHECK(format_count(12.5) == "12.5");
  CHECK(format_count(1000) == "1k");
  CHECK(format_count(1234) == "1.23k");
  CHECK(format_count(12345) == "12.3k");
  CHECK(format_count(123456) == "123k");
  CHECK(format_count(999700) == "1M"); // rounds into the next unit, not "1000k"
  CHECK(format_count(2468000) == "2.47M");
  CHECK(format_count(2500000) == "2.5M");
  CHECK(format_count(3e9) == "3G");
  CHECK(format_count(-1500) == "-1.5k");
  CHECK(format_count(NAN) == "n/a");
  CHECK(format_count(INFINITY) == "n/a");
}

TEST_CASE("durations given in microseconds print in µs, ms or s", "[report]") {
  CHECK(format_duration_us(0) == "0");
  CHECK(format_duration_us(850) == "850 µs");
  CHECK(format_duration_us(12.26) == "12.3 µs");
  CHECK(format_duration_us(999.9) == "1 ms");
  CHECK(format_duration_us(4100) == "4.1 ms");
  CHECK(format_duration_us(34120) == "34.1 ms");
  CHECK(format_duration_us(366900) == "367 ms");
  CHECK(format_duration_us(1250000) == "1.25 s");
  CHECK(format_duration_us(90e6) == "90 s");
}

TEST_CASE("whole numbers print with thousands separators, ratios with one decimal",
          "[report]") {
  CHECK(format_grouped(0) == "0");
  CHECK(format_grouped(999) == "999");
  CHECK(format_grouped(1000) == "1,000");
  CHECK(format_grouped(2468000) == "2,468,000");
  CHECK(format_grouped(-1234567) == "-1,234,567");
  CHECK(format_grouped(NAN) == "n/a");
  CHECK(format_ratio(44.26) == "44.3×");
  CHECK(format_ratio(209.2) == "209.2×");
  CHECK(format_seconds(2.5) == "2.5 s");
  CHECK(format_seconds(10) == "10 s");
}

TEST_CASE("HTML escaping covers every character that could open markup or end an attribute",
          "[report]") {
  CHECK(escape_html("<script>alert('x')</script>") ==
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
  CHECK(escape_html("a & \"b\"") == "a &amp; &quot;b&quot;");
  CHECK(escape_html("µs ✓") == "µs ✓");
  CHECK(escape_html(std::string("nul") + '\0' + "x\a\tend\n") == "nul\uFFFDx\uFFFD\tend\n");
}

TEST_CASE("ids are made of lower-case letters, digits and dashes", "[report]") {
  CHECK(slug("uniform") == "uniform");
  CHECK(slug("Uniform, durable") == "uniform-durable");
  CHECK(slug("<script>x</script>") == "script-x-script");
  CHECK(slug("µ") == "scenario");
  CHECK(slug("") == "scenario");
}

TEST_CASE("linear axis ticks fall on 1-2-5 steps and cover the data", "[report]") {
  ticks t = linear_ticks(0, 2468000, 5);
  CHECK(t.lo == 0);
  CHECK(t.hi == 2500000);
  CHECK(t.values == std::vector<double>{0, 500000, 1000000, 1500000, 2000000, 2500000});

  t = linear_ticks(1, 10, 8);
  CHECK(t.values == std::vector<double>{0, 2, 4, 6, 8, 10});

  t = linear_ticks(0, 0.9, 5);
  CHECK(t.values.size() == 6);
  CHECK(t.hi == Approx(1.0));

  t = linear_ticks(0, 0, 5); // all zero: still an axis
  CHECK(t.lo == 0);
  CHECK(t.hi > 0);

  t = linear_ticks(5, 5, 5);
  CHECK(t.lo <= 5);
  CHECK(t.hi > 5);

  t = linear_ticks(NAN, INFINITY, 5);
  CHECK(t.values.size() >= 2);
}

TEST_CASE("log axis ticks run from a power of ten to a power of ten", "[report]") {
  ticks t = log_ticks(8192, 524288);
  CHECK(t.lo == 1000);
  CHECK(t.hi == 1000000);
  CHECK(t.values == std::vector<double>{1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6});

  t = log_ticks(2, 2e9); // nine decades: powers only
  CHECK(t.values.size() == 11);
  CHECK(t.values.front() == 1);

  t = log_ticks(100, 100);
  CHECK(t.lo == 100);
  CHECK(t.hi == 1000);

  t = log_ticks(0, -1); // nothing positive: still an axis
  CHECK(t.lo > 0);
  CHECK(t.hi > t.lo);
}
