// Random edits of the default file must load or fail with a config_error, never anything
// else: no other exception, no crash, no silently wrapped number.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "config/config.hpp"
#include "tests/seed.hpp"

using namespace kassa::config;

namespace {

std::vector<std::string> default_lines() {
  std::ifstream in(KASSA_SOURCE_DIR "/config/kassa.yaml");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() > 10);
  return lines;
}

// Lines that are plausible edits: typos, wrong types, edge values, broken YAML.
const std::vector<std::string> replacements = {
    "",  "  port: -1", "  port: 65536", "  shards: 0", "  shards: 18446744073709551616",
    "  batch_events_max: 65535", "  frame_bytes_max: 256", "  commit_events_max: 1",
    "  durability: maybe", "  durabilty: none", "  data_dir:", "  level: [info]",
    "server: 3", "store:", "  : x", "- item", "  port: {a: 1}", "  port: \"3100\"",
    "  port: 1.5", "&a x: *a", "*unknown", "\t tab: 1", "[", "}", "? complex", "  level: info",
    "---", "...", "%YAML 1.2", "!!map", "  data_dir: !!binary AAAA", "      deep: 1",
};

} // namespace

TEST_CASE("random edits of the default file load or fail with a config_error", "[config]") {
  const std::vector<std::string> original = default_lines();
  std::mt19937_64 rng(kassa::test::seed("config mutation"));
  auto below = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };

  int loaded = 0, refused = 0;
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::string> lines = original;
    const size_t edits = 1 + below(3);
    for (size_t i = 0; i < edits && !lines.empty(); ++i) {
      const size_t at = below(lines.size());
      switch (below(4)) {
      case 0: lines.erase(lines.begin() + long(at)); break;
      case 1: lines.insert(lines.begin() + long(at), lines[at]); break;
      case 2: lines[at] = lines[below(lines.size())]; break;
      case 3: lines[at] = replacements[below(replacements.size())]; break;
      }
    }
    std::ostringstream text;
    for (const std::string& line : lines) text << line << '\n';
    try {
      const config c = load_string(text.str(), "mutated.yaml");
      CHECK(c.batching.commit_events_max >= c.batching.batch_events_max);
      CHECK(uint64_t(c.server.frame_bytes_max) >= 128u * c.batching.batch_events_max + 256);
      ++loaded;
    } catch (const config_error& e) {
      CHECK(e.source == "mutated.yaml");
      CHECK(e.line >= 0);
      CHECK(e.line <= int(lines.size()) + 1);
      ++refused;
    } catch (const std::exception& e) {
      FAIL("round " << round << ": " << e.what() << " for:\n" << text.str());
    }
  }
  INFO("loaded " << loaded << ", refused " << refused);
  CHECK(loaded > 0);
  CHECK(refused > 0);
}
