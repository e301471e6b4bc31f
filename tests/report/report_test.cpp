#include "perf/report/report.hpp"

#include "tests/seed.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <sstream>

using json = nlohmann::json;
using kassa::report::input;
using kassa::report::read_json_lines;
using kassa::report::render_report;

namespace {

// The <svg> element with this id, up to its </svg> ("" when there is none).
std::string chart(const std::string& page, const std::string& id) {
  size_t at = page.find("<svg id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  size_t end = page.find("</svg>", at);
  REQUIRE(end != std::string::npos);
  return page.substr(at, end + 6 - at);
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The number in data-points="N" of a chart.
long declared_points(const std::string& svg) {
  size_t at = svg.find("data-points=\"");
  REQUIRE(at != std::string::npos);
  return std::stol(svg.substr(at + 13));
}

// Checks that every tag is closed in order (void elements and "/>" excepted) and returns the
// first problem, or "" when the markup is balanced.
std::string unbalanced(const std::string& page) {
  std::vector<std::string> open;
  size_t at = 0;
  while ((at = page.find('<', at)) != std::string::npos) {
    size_t end = page.find('>', at);
    if (end == std::string::npos) return "a tag that never ends at " + std::to_string(at);
    std::string tag = page.substr(at + 1, end - at - 1);
    at = end + 1;
    if (tag.empty()) return "an empty tag";
    if (tag[0] == '!') continue; // <!DOCTYPE html>
    bool closing = tag[0] == '/';
    std::string name = tag.substr(closing ? 1 : 0);
    name = name.substr(0, name.find_first_of(" \t\n/"));
    if (closing) {
      if (open.empty() || open.back() != name) {
        return "</" + name + "> closes <" + (open.empty() ? "nothing" : open.back()) + ">";
      }
      open.pop_back();
    } else if (tag.back() != '/' && name != "meta") {
      open.push_back(name);
    }
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  return "";
}

// The ids that occur more than once in the page.
std::vector<std::string> repeated_ids(const std::string& page) {
  std::set<std::string> seen;
  std::vector<std::string> repeated;
  for (size_t at = page.find(" id=\""); at != std::string::npos;
       at = page.find(" id=\"", at + 1)) {
    size_t start = at + 5;
    std::string id = page.substr(start, page.find('"', start) - start);
    if (!seen.insert(id).second) repeated.push_back(id);
  }
  return repeated;
}

json run_line(const std::string& scenario) {
  return {{"type", "run"},
          {"scenario", scenario},
          {"kind", "transfers"},
          {"started_utc", "2026-11-25T22:00:00Z"},
          {"machine", "test machine, 2 cores"},
          {"command", "kassa-bench --scenario " + scenario},
          {"settings", {{"connections", 4}, {"depth", 4}, {"mix", scenario}}},
          {"shadow", false}};
}

// A scenario of `ticks` seconds with random figures, a summary with a histogram of `buckets`
// log buckets, and (when `stages`) a stages line.
std::vector<json> scenario_lines(const std::string& name, int ticks, int buckets, bool stages,
                                 std::mt19937_64& rng) {
  std::uniform_real_distribution<double> rate(1e5, 9e5), p50(500, 50000), factor(1, 20);
  std::vector<json> out{run_line(name)};
  for (int t = 1; t <= ticks; ++t) {
    double events_per_s = std::floor(rate(rng)), median = std::floor(p50(rng));
    out.push_back({{"type", "tick"},
                   {"scenario", name},
                   {"t_s", double(t)},
                   {"requests", int(events_per_s / 2000)},
                   {"events", events_per_s},
                   {"events_per_s", events_per_s},
                   {"p50_us", median},
                   {"p99_us", std::floor(median * factor(rng))},
                   {"errors", 0}});
  }
  json upper = json::array(), counts = json::array();
  for (int b = 0; b < buckets; ++b) {
    upper.push_back(std::pow(2.0, 10 + b));
    counts.push_back(std::uniform_int_distribution<int>(1, 5000)(rng));
  }
  out.push_back({{"type", "summary"},
                 {"scenario", name},
                 {"seconds", double(ticks)},
                 {"requests", 1000},
                 {"events", 2000000},
                 {"events_per_s", 200000.0},
                 {"requests_per_s", 100.0},
                 {"latency_us",
                  {{"p50", 850}, {"p90", 2000}, {"p99", 4100}, {"p999", 9000}, {"max", 12000},
                   {"mean", 1100}}},
                 {"histogram", {{"upper_us", upper}, {"counts", counts}}},
                 {"results", {{"ok", 1999000}, {"exceeds_credits", 1000}}},
                 {"request_errors", {{"busy", 3}}}});
  if (stages) {
    json list = json::array();
    for (const char* stage : {"decode", "routing", "accounts", "commit_wait", "encode"}) {
      list.push_back({{"stage", stage},
                      {"count", 1000},
                      {"mean_us", std::floor(p50(rng))},
                      {"p50_us", 100},
                      {"p99_us", std::floor(p50(rng)) * 4}});
    }
    out.push_back({{"type", "stages"},
                   {"scenario", name},
                   {"source", "http://127.0.0.1:9464/metrics"},
                   {"stages", list}});
  }
  return out;
}

json compare_line() {
  return {{"type", "compare"},
          {"scenario", "compare"},
          {"machine", "test machine, 2 cores"},
          {"command", "perf/compare"},
          {"rows",
           {{{"workload", "uniform, durable"}, {"kassa_per_s", 582268.0}, {"peer_per_s", 13157.0},
             {"ratio", 44.3}, {"target", ">= 25x"}, {"met", true}, {"p99_us", 366900}},
            {{"workload", "hot, durable"}, {"kassa_per_s", 600561.0}, {"peer_per_s", 2870.0},
             {"ratio", 209.2}, {"target", ">= 300x"}, {"met", false}, {"p99_us", 335400}}}}};
}

} // namespace

TEST_CASE("a synthetic results file renders every chart with one mark per point", "[report]") {
  std::mt19937_64 rng(kassa::test::seed("report synthetic"));
  int ticks_a = std::uniform_int_distribution<int>(1, 300)(rng);
  int ticks_b = std::uniform_int_distribution<int>(1, 30)(rng);
  int buckets = std::uniform_int_distribution<int>(1, 20)(rng);
  std::vector<json> lines = scenario_lines("uniform", ticks_a, buckets, true, rng);
  std::vector<json> hot = scenario_lines("hot", ticks_b, 3, false, rng);
  lines.insert(lines.end(), hot.begin(), hot.end());
  lines.push_back(compare_line());

  // Through text, as kassa-report reads it.
  std::stringstream file;
  for (const json& j : lines) file << j.dump() << "\n";
  input in;
  read_json_lines(file, "synthetic.jsonl", in);
  REQUIRE(in.lines.size() == lines.size());
  REQUIRE(in.notes.empty());
  std::string page = render_report(in);
  INFO("ticks " << ticks_a << " and " << ticks_b << ", " << buckets << " buckets");

  struct expected {
    std::string id;
    long points;
  };
  for (const expected& e : std::vector<expected>{{"throughput-uniform", ticks_a},
                                                 {"latency-uniform", 2 * ticks_a},
                                                 {"percentiles-uniform", 5},
                                                 {"histogram-uniform", buckets},
                                                 {"stages-uniform", 10},
                                                 {"shares-uniform", 5},
                                                 {"throughput-hot", ticks_b},
                                                 {"latency-hot", 2 * ticks_b},
                                                 {"percentiles-hot", 5},
                                                 {"histogram-hot", 3},
                                                 {"compare-1", 4}}) {
    INFO(e.id);
    std::string svg = chart(page, e.id);
    REQUIRE(!svg.empty());
    CHECK(declared_points(svg) == e.points);
    CHECK(long(count(svg, "class=\"pt\"")) == e.points);
    CHECK(unbalanced(svg) == "");
  }
  CHECK(chart(page, "stages-hot").empty()); // no stages line for it
  CHECK(page.find("No stage breakdown") != std::string::npos);
  CHECK(page.find("id=\"results-uniform\"") != std::string::npos);
  CHECK(page.find("exceeds_credits") != std::string::npos);
  CHECK(page.find("id=\"errors-uniform\"") != std::string::npos);
  CHECK(page.find("id=\"compare-1-table\"") != std::string::npos);
  CHECK(page.find("44.3×") != std::string::npos);
  CHECK(page.find("✗ missed") != std::string::npos);
  CHECK(page.find("id=\"notes\"") == std::string::npos);
  CHECK(unbalanced(page) == "");
  CHECK(repeated_ids(page).empty());
}

TEST_CASE("the page needs nothing from outside: no script, no link, no external source",
          "[report]") {
  std::mt19937_64 rng(kassa::test::seed("report self-contained"));
  std::string page = render_report(scenario_lines("uniform", 10, 8, true, rng));
  CHECK(page.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("<link") == std::string::npos);
  CHECK(page.find("src=") == std::string::npos);
  CHECK(page.find("http://127.0.0.1:9464/metrics") != std::string::npos); // as text only
  CHECK(page.find("<style>") != std::string::npos);
}

TEST_CASE("every string from the input is escaped", "[report]") {
  const std::string evil = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>";
  json run = run_line(evil);
  run["machine"] = evil;
  run["command"] = evil;
  run["kind"] = evil;
  run["started_utc"] = evil;
  run["settings"] = {{evil, evil}, {"n", {{"nested", evil}}}};
  json tick = {{"type", "tick"}, {"scenario", evil}, {"t_s", 1.0}, {"events_per_s", 5.0},
               {"p50_us", 10}, {"p99_us", 20}};
  json summary = {{"type", "summary"}, {"scenario", evil}, {"results", {{evil, 1}}},
                  {"request_errors", {{evil, 2}}}, {"latency_us", {{"p50", 10}}}};
  json stages = {{"type", "stages"}, {"scenario", evil}, {"source", evil},
                 {"stages", {{{"stage", evil}, {"mean_us", 3}, {"p99_us", 9}}}}};
  json compare = compare_line();
  compare["machine"] = evil;
  compare["command"] = evil;
  compare["rows"][0]["workload"] = evil;
  compare["rows"][0]["target"] = evil;
  json unknown = {{"type", evil}, {"scenario", evil}};
  std::string page = render_report(std::vector<json>{run, tick, summary, stages, compare, unknown});

  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("<img") == std::string::npos);
  CHECK(page.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(page.find("unknown type") != std::string::npos); // noted, and the note escaped too
  CHECK(unbalanced(page) == "");
  // The name becomes a safe id.
  CHECK(page.find("id=\"throughput-script-alert-1-script-img-src-x-onerror-alert-2\"") !=
        std::string::npos);
}

TEST_CASE("malformed lines are skipped with a note and the rest still renders", "[report]") {
  std::mt19937_64 rng(kassa::test::seed("report malformed"));
  std::stringstream file;
  for (const json& j : scenario_lines("uniform", 5, 4, false, rng)) file << j.dump() << "\n";
  file << "this is not json\n"                                          // line 8
       << "\n"                                                          // blank: ignored
       << "[1, 2, 3]\n"                                                 // line 10
       << R"({"scenario":"uniform"})" << "\n"                           // line 11: no type
       << R"({"type":"tick"})" << "\n"                                  // line 12: no scenario
       << R"({"type":"tick","scenario":"uniform","t_s":"six"})" << "\n" // line 13
       << R"({"type":"teleport","scenario":"uniform"})" << "\n"         // line 14
       << R"({"type":"summary","scenario":"uniform"})" << "\n"          // line 15: second
       << R"({"type":"stages","scenario":"uniform","stages":{}})" << "\n" // line 16
       << R"({"type":"compare","scenario":"compare","rows":[1,{"workload":"w"}]})" << "\n"
       << R"({"type":"tick","scenario":"uniform","t_s":6,"events_per_s":1e5})"; // no newline
  input in;
  read_json_lines(file, "bad.jsonl", in);
  REQUIRE(in.notes.size() == 1);
  CHECK(in.notes[0] == "bad.jsonl:8: not JSON, skipped");
  std::string page;
  REQUIRE_NOTHROW(page = render_report(in));

  CHECK(page.find("id=\"notes\"") != std::string::npos);
  for (const char* note :
       {"bad.jsonl:8: not JSON", "bad.jsonl:10: not a JSON object",
        "bad.jsonl:11: no &quot;type&quot;",
        "bad.jsonl:12: no &quot;scenario&quot;", "bad.jsonl:13: tick without numbers",
        "bad.jsonl:14: unknown type &quot;teleport&quot;", "bad.jsonl:15: a second summary",
        "bad.jsonl:16: stages line without", "a row that is not an object"}) {
    INFO(note);
    CHECK(page.find(note) != std::string::npos);
  }
  // Five good ticks and the last line make six points; the compare row without numbers draws
  // nothing but is listed.
  CHECK(declared_points(chart(page, "throughput-uniform")) == 6);
  CHECK(declared_points(chart(page, "compare-1")) == 0);
  CHECK(unbalanced(page) == "");
}

TEST_CASE("broken parts of a summary are left out and noted", "[report]") {
  json summary = {{"type", "summary"},
                  {"scenario", "s"},
                  {"latency_us", "fast"},
                  {"histogram", {{"upper_us", {100, 50}}, {"counts", {1, 2}}}},
                  {"results", {{"ok", 5}, {"exists", "many"}}},
                  {"request_errors", 7}};
  std::string page = render_report(std::vector<json>{summary});
  CHECK(page.find("&quot;latency_us&quot; is not an object") != std::string::npos);
  CHECK(page.find("histogram bucket 1") != std::string::npos);
  CHECK(page.find("entry &quot;exists&quot; is not a count") != std::string::npos);
  CHECK(page.find("&quot;request_errors&quot; is not an object") != std::string::npos);
  CHECK(chart(page, "histogram-s").empty());
  CHECK(page.find("id=\"results-s\"") != std::string::npos);
  CHECK(unbalanced(page) == "");
}

TEST_CASE("numbers that are not finite are treated as missing", "[report]") {
  json tick = {{"type", "tick"}, {"scenario", "s"}, {"t_s", 1.0}, {"events_per_s", NAN}};
  json good = {{"type", "tick"}, {"scenario", "s"}, {"t_s", 2.0}, {"events_per_s", 10.0},
               {"p50_us", INFINITY}};
  std::string page = render_report(std::vector<json>{tick, good});
  CHECK(declared_points(chart(page, "throughput-s")) == 1);
  CHECK(chart(page, "latency-s").empty());
  CHECK(page.find("No per-second latency") != std::string::npos);
}

TEST_CASE("empty input gives a page that says there is no data", "[report]") {
  for (const std::string& text : {std::string(""), std::string("\n\n"), std::string("garbage\n")}) {
    std::stringstream file(text);
    input in;
    read_json_lines(file, "empty.jsonl", in);
    std::string page = render_report(in);
    CHECK(page.find("id=\"no-data\"") != std::string::npos);
    CHECK(page.find("class=\"chart\"") == std::string::npos);
    CHECK(unbalanced(page) == "");
  }
  CHECK(render_report(std::vector<json>{}).find("No data") != std::string::npos);
}

TEST_CASE("the same scenario run twice shows twice, under ids of its own", "[report]") {
  std::mt19937_64 rng(kassa::test::seed("report twice"));
  std::vector<json> lines = scenario_lines("uniform", 3, 2, false, rng);
  std::vector<json> again = scenario_lines("uniform", 4, 2, false, rng);
  lines.insert(lines.end(), again.begin(), again.end());
  lines.push_back(run_line("Uniform!")); // slugs to "uniform" too
  std::string page = render_report(lines);
  CHECK(declared_points(chart(page, "throughput-uniform")) == 3);
  CHECK(declared_points(chart(page, "throughput-uniform-2")) == 4);
  CHECK(page.find("id=\"scenario-uniform-3\"") != std::string::npos);
  CHECK(unbalanced(page) == "");
}

TEST_CASE("randomly damaged lines never break the page", "[report][property]") {
  std::mt19937_64 rng(kassa::test::seed("report damaged"));
  std::vector<json> good = scenario_lines("uniform", 10, 6, true, rng);
  good.push_back(compare_line());
  const std::vector<json> replacements = {nullptr, "text", -1, 0, 1e308, json::array(),
                                          json::object(), true, json::array({1, "x"})};
  for (int round = 0; round < 200; ++round) {
    std::vector<json> lines = good;
    int damage = std::uniform_int_distribution<int>(1, 8)(rng);
    for (int d = 0; d < damage; ++d) {
      json& line = lines[std::uniform_int_distribution<size_t>(0, lines.size() - 1)(rng)];
      // Pick a value somewhere in the line (depth up to 3) and replace or remove it.
      json* at = &line;
      for (int depth = 0; depth < 3 && (at->is_object() || at->is_array()) && !at->empty();
           ++depth) {
        auto it = at->begin();
        std::advance(it, std::uniform_int_distribution<size_t>(0, at->size() - 1)(rng));
        at = &*it;
      }
      *at = replacements[std::uniform_int_distribution<size_t>(0, replacements.size() - 1)(rng)];
    }
    std::string page;
    REQUIRE_NOTHROW(page = render_report(lines));
    INFO("round " << round);
    REQUIRE(unbalanced(page) == "");
  }
}

namespace {

// kassa-bench's buckets: one per value below 64, then 32 a power of two.
uint64_t bench_bucket_upper(size_t b) {
  if (b < 64) return b;
  int e = int((b - 64) >> 5) + 6;
  uint64_t sub = (b - 64) & 31;
  return ((32 + sub + 1) << (e - 5)) - 1;
}

} // namespace

TEST_CASE("fine histogram buckets are summed into bins of a twentieth of a decade", "[report]") {
  std::mt19937_64 rng(kassa::test::seed("report fine histogram"));
  json upper = json::array(), counts = json::array();
  std::set<long> bins;
  double total = 0;
  for (size_t b = 1; b < 64 + 20 * 32; ++b) { // from 1 µs: 0 has a test of its own
    if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) continue; // some left empty
    int n = std::uniform_int_distribution<int>(1, 1000)(rng);
    uint64_t u = bench_bucket_upper(b);
    upper.push_back(u);
    counts.push_back(n);
    total += n;
    bins.insert(long(std::ceil(20 * std::log10(double(u)) - 1e-9)));
  }
  json summary = {{"type", "summary"}, {"scenario", "s"},
                  {"histogram", {{"upper_us", upper}, {"counts", counts}}}};
  std::string svg = chart(render_report(std::vector<json>{summary}), "histogram-s");
  REQUIRE(!svg.empty());
  CHECK(declared_points(svg) == long(bins.size()));
  CHECK(long(count(svg, "class=\"pt\"")) == long(bins.size()));
  // Every request is in some bar: add up the counts the tooltips give.
  double drawn = 0;
  for (size_t at = svg.find("class=\"pt\""); at != std::string::npos;
       at = svg.find("class=\"pt\"", at + 1)) {
    size_t end = svg.find("</title>", at);
    size_t colon = svg.rfind(": ", end);
    std::string n = svg.substr(colon + 2, end - colon - 2);
    n.erase(std::remove(n.begin(), n.end(), ','), n.end());
    drawn += std::stod(n);
  }
  CHECK(drawn == total);
}

TEST_CASE("a histogram bucket of 0 µs is drawn with the next one", "[report]") {
  json summary = {{"type", "summary"}, {"scenario", "s"},
                  {"histogram", {{"upper_us", {0, 1000, 2000}}, {"counts", {5, 10, 20}}}}};
  std::string svg = chart(render_report(std::vector<json>{summary}), "histogram-s");
  CHECK(declared_points(svg) == 2);
  CHECK(svg.find("500 µs – 1 ms: 15") != std::string::npos);

  summary["histogram"] = {{"upper_us", {0}}, {"counts", {7}}};
  svg = chart(render_report(std::vector<json>{summary}), "histogram-s");
  CHECK(declared_points(svg) == 1);
}

TEST_CASE("ticks draw in time order with their requests and errors in the tooltip",
          "[report]") {
  json late = {{"type", "tick"}, {"scenario", "s"}, {"t_s", 2.0}, {"events_per_s", 20.0},
               {"requests", 10}, {"errors", 1}};
  json early = {{"type", "tick"}, {"scenario", "s"}, {"t_s", 1.0}, {"events_per_s", 10.0},
                {"requests", 5}, {"errors", 0}};
  json summary = {{"type", "summary"}, {"scenario", "s"}, {"events_per_s", 15.0}};
  std::string svg = chart(render_report(std::vector<json>{late, early, summary}), "throughput-s");
  size_t first = svg.find("1 s: 10 events/s, 5 requests, 0 errors");
  size_t second = svg.find("2 s: 20 events/s, 10 requests, 1 errors");
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  CHECK(first < second);
  CHECK(svg.find("class=\"reference\"") != std::string::npos); // the run's mean
  CHECK(svg.find("run: 15/s") != std::string::npos);
}

TEST_CASE("a payments summary lists its commands", "[report]") {
  json summary = {{"type", "summary"}, {"scenario", "payments"},
                  {"results", {{"ok", 90}, {"declined", 10}}},
                  {"commands", {{"top_up", 70}, {"refund", 30}}}};
  std::string page = render_report(std::vector<json>{summary});
  CHECK(page.find("id=\"commands-payments\"") != std::string::npos);
  CHECK(page.find("top_up") != std::string::npos);
  CHECK(page.find("declined") != std::string::npos);
  CHECK(unbalanced(page) == "");
}

TEST_CASE("the run's last, partial second is left out of the throughput chart, a second "
          "without replies out of the latency chart", "[report]") {
  // As kassa-bench writes them: the last tick covers the few ms until the drain ended.
  std::vector<json> lines;
  for (double t : {1.0, 2.0, 2.012}) {
    bool last = t > 2;
    lines.push_back({{"type", "tick"}, {"scenario", "s"}, {"t_s", t},
                     {"requests", last ? 0 : 250}, {"events_per_s", last ? 2607840.1 : 5e5},
                     {"p50_us", last ? 0 : 47103}, {"p99_us", last ? 0 : 184774}});
  }
  std::string page = render_report(lines);
  std::string throughput = chart(page, "throughput-s");
  CHECK(declared_points(throughput) == 2);
  CHECK(throughput.find("left out: a tick of 0.012 s at 2.01 s") != std::string::npos);
  CHECK(throughput.find(">0 s</text>") != std::string::npos); // time starts at 0
  CHECK(declared_points(chart(page, "latency-s")) == 4);
}

TEST_CASE("every id in the page is unique, whatever the scenarios are called", "[report]") {
  std::mt19937_64 rng(kassa::test::seed("report ids"));
  std::vector<json> lines;
  // Names whose ids could meet another's: a prefix of one chart id plus a name is never the id
  // of another chart.
  for (const char* name : {"x", "time-x", "share-x", "table-x", "stages-x", "compare 1", "X"}) {
    std::vector<json> more = scenario_lines(name, 3, 2, true, rng);
    lines.insert(lines.end(), more.begin(), more.end());
  }
  lines.push_back(compare_line());
  std::string page = render_report(lines);
  CHECK(repeated_ids(page) == std::vector<std::string>{});
  CHECK(count(page, "class=\"chart\"") == 7 * 6 + 1);
}

TEST_CASE("values nested deeper than the report prints are named, not printed", "[report]") {
  // As text: printing such a value is what must not happen.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::stringstream file;
  file << deep << "\n"
       << R"({"type":"run","scenario":"deep","machine":)" << deep << R"(,"settings":{"x":)" << deep
       << "}}\n";
  input in;
  read_json_lines(file, "deep.jsonl", in);
  REQUIRE(in.lines.size() == 2);
  std::string page;
  REQUIRE_NOTHROW(page = render_report(in));
  CHECK(page.find("deep.jsonl:1: not a JSON object") != std::string::npos);
  CHECK(count(page, "(nested deeper than 64 levels)") == 3); // machine twice, the setting once
  CHECK(unbalanced(page) == "");
}
