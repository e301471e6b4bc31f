#include <catch2/catch.hpp>

#include <stdexcept>
#include <vector>

#include "config/config.hpp"
#include "tests/config/error_cases.hpp"

using namespace kassa::config;
using Catch::Matchers::Contains;
using kassa::test::check_errors;
using kassa::test::error_of;

namespace {

const std::string store = "store:\n  data_dir: /tmp/kassa\n  durability: none\n"; // lines 1-3

} // namespace

TEST_CASE("an unknown nested key is named by its full path, with a hint", "[config]") {
  const config_error e = error_of("store:\n  data_dir: /tmp/kassa\n  durabilty: none\n");
  CHECK(e.source == "<string>");
  CHECK(e.line == 3);
  CHECK(e.key_path == "store.durabilty");
  CHECK(e.message == "unknown key, did you mean durability?");
  CHECK(std::string(e.what()) ==
        "<string>:3: store.durabilty: unknown key, did you mean durability?");
}

TEST_CASE("an unknown key with no near match gets no hint", "[config]") {
  const config_error e = error_of(store + "channels:\n  card: {}\n");
  CHECK(e.line == 4);
  CHECK(e.key_path == "channels");
  CHECK(e.message == "unknown key");
}

TEST_CASE("a key given twice in one map is refused", "[config]") {
  const config_error e = error_of(store + "log:\n  level: info\n  level: debug\n");
  CHECK(e.line == 6);
  CHECK(e.key_path == "log.level");
  CHECK_THAT(e.message, Contains("duplicate key (first at line 5)"));
}

TEST_CASE("a value of the wrong type is refused at its line", "[config]") {
  auto server = [](const std::string& line) { return store + "server:\n  " + line + "\n"; };
  struct {
    std::string yaml;
    std::string message;
  } cases[] = {
      {server("port: abc"), "expected an integer, got 'abc'"},
      {server("port: 12abc"), "expected an integer, got '12abc'"},
      {server("port: 1.5"), "expected an integer, got '1.5'"},
      {server("port: 1e3"), "expected an integer, got '1e3'"},
      {server("port: 0x10"), "expected an integer, got '0x10'"},
      {server("port: +80"), "expected an integer, got '+80'"},
      {server("port: 080"), "expected a decimal integer without leading zeros, got '080'"},
      {server("port: \"3100\""), "expected a plain integer (no quotes), got '3100'"},
      {server("port:"), "expected an integer, got nothing"},
      {server("port: [1, 2]"), "expected an integer, got a list"},
      {server("port: {a: 1}"), "expected an integer, got a map"},
      {server("address: {a: 1}"), "expected a string, got a map"},
      {server("address: ''"), "must not be empty"},
  };
  for (const auto& c : cases) {
    INFO(c.yaml);
    const config_error e = error_of(c.yaml);
    CHECK(e.line == 5);
    CHECK(e.key_path.rfind("server.", 0) == 0);
    CHECK(e.message == c.message);
  }
}

TEST_CASE("a word outside its set is refused with the allowed words", "[config]") {
  const config_error e = error_of("store:\n  data_dir: /tmp/kassa\n  durability: fsnyc\n");
  CHECK(e.line == 3);
  CHECK(e.key_path == "store.durability");
  CHECK(e.message == "'fsnyc' is not one of: fsync, none");
}

TEST_CASE("a section that is not a map is refused", "[config]") {
  const config_error e = error_of(store + "batching: 5\n");
  CHECK(e.line == 4);
  CHECK(e.key_path == "batching");
  CHECK(e.message == "expected a map of keys, got '5'");
}

TEST_CASE("a missing required key is named, at the line of its section", "[config]") {
  const config_error e = error_of("log:\n  level: warn\nstore:\n  data_dir: /tmp/kassa\n");
  CHECK(e.line == 3);
  CHECK(e.key_path == "store.durability");
  CHECK(e.message == "missing required key");

  const config_error section = error_of("log:\n  level: warn\n");
  CHECK(section.line == 1);
  CHECK(section.key_path == "store");
  CHECK(section.message == "missing required key");
}

TEST_CASE("a value out of range states the allowed range", "[config]") {
  struct {
    std::string yaml;
    std::string key_path;
    std::string message;
  } cases[] = {
      {"  shards: 0", "store.shards", "must be between 1 and 256, got '0'"},
      {"  shards: 257", "store.shards", "must be between 1 and 256, got '257'"},
      {"  shards: -1", "store.shards", "must be between 1 and 256, got '-1'"},
      {"  transfers_resident_max: 999", "store.transfers_resident_max",
       "must be between 1000 and 4294967296, got '999'"},
      {"  map_size_mib: 99999999999999999999999", "store.map_size_mib",
       "must be between 1 and 16777216, got '99999999999999999999999'"},
      {"batching:\n  commit_delay_us_max: 1000001", "batching.commit_delay_us_max",
       "must be between 0 and 1000000, got '1000001'"},
      {"server:\n  port: 65536", "server.port", "must be between 0 and 65535, got '65536'"},
  };
  for (const auto& c : cases) {
    const std::string yaml = store + c.yaml + "\n";
    INFO(yaml);
    const config_error e = error_of(yaml);
    CHECK(e.line == (c.yaml[0] == ' ' ? 4 : 5));
    CHECK(e.key_path == c.key_path);
    CHECK(e.message == c.message);
  }
}

TEST_CASE("a rule between two keys is blamed on the key written later", "[config]") {
  SECTION("a frame too small for the batch, set after the batch") {
    const config_error e =
        error_of(store + "batching:\n  batch_events_max: 100\nserver:\n  frame_bytes_max: 1000\n");
    CHECK(e.line == 7);
    CHECK(e.key_path == "server.frame_bytes_max");
    CHECK_THAT(e.message, Contains("at least 128 * batching.batch_events_max + 256 = 13056"));
  }
  SECTION("a batch too large for the frame, set after the frame") {
    const config_error e =
        error_of(store + "server:\n  frame_bytes_max: 1000\nbatching:\n  batch_events_max: 100\n");
    CHECK(e.line == 7);
    CHECK(e.key_path == "batching.batch_events_max");
    CHECK_THAT(e.message, Contains("at most (server.frame_bytes_max - 256) / 128 = 5"));
  }
  SECTION("a batch larger than the default frame") {
    const config_error e = error_of(store + "batching:\n  batch_events_max: 8191\n");
    CHECK(e.line == 5);
    CHECK(e.key_path == "batching.batch_events_max");
  }
  SECTION("a group commit smaller than one batch") {
    const config_error e = error_of(
        store + "batching:\n  batch_events_max: 100\n  commit_events_max: 99\n");
    CHECK(e.line == 6);
    CHECK(e.key_path == "batching.commit_events_max");
    CHECK(e.message == "must be at least batching.batch_events_max = 100");
  }
  SECTION("a batch larger than the group commit written before it") {
    const config_error e =
        error_of(store + "batching:\n  commit_events_max: 10\n  batch_events_max: 11\n");
    CHECK(e.line == 6);
    CHECK(e.key_path == "batching.batch_events_max");
    CHECK(e.message == "must be at most batching.commit_events_max = 10");
  }
  SECTION("limits that fit exactly are accepted") {
    const config c = load_string(store + "batching:\n  batch_events_max: 100\n"
                                         "  commit_events_max: 100\nserver:\n"
                                         "  frame_bytes_max: 13056\n");
    CHECK(c.server.frame_bytes_max == 13056);
  }
}

TEST_CASE("a YAML syntax error is reported at its line", "[config]") {
  const config_error e = error_of(store + "server:\n  port: [1,\n  address: x\n");
  CHECK(e.line >= 5);
  CHECK(e.key_path.empty());
  CHECK_THAT(e.message, Contains("YAML syntax"));
  CHECK_THAT(std::string(e.what()), Contains("<string>:" + std::to_string(e.line) + ": YAML"));

  const config_error tab = error_of("store:\n  data_dir: [x\n");
  CHECK(tab.line >= 2);
}

TEST_CASE("an empty file, a file of comments and a non-map top level are refused", "[config]") {
  for (std::string yaml : {"", "\n\n", "# nothing here\n", "---\n"}) {
    INFO(yaml);
    const config_error e = error_of(yaml);
    CHECK(e.line == 0);
    CHECK_THAT(e.message, Contains("empty configuration"));
  }
  const config_error scalar = error_of("just words\n");
  CHECK(scalar.line == 1);
  CHECK(scalar.key_path.empty());
  CHECK(scalar.message == "expected a map of keys, got 'just words'");

  const config_error list = error_of("- store\n");
  CHECK(list.message == "expected a map of keys, got a list");
}

TEST_CASE("a second YAML document in the file is refused at its marker", "[config]") {
  const config_error e = error_of(store + "---\n" + store);
  CHECK(e.line == 4);
  CHECK(e.key_path.empty());
  CHECK(e.message == "a second YAML document starts here; expected one");

  CHECK(error_of(store + "...\nlog: {}\n").line == 5);
  // Found by fuzzing: yaml-cpp 0.7 allocates without bound on this second document.
  CHECK(error_of(",str: [X\n---\nlo\x96").line == 2);
}

TEST_CASE("document markers around the one document are accepted", "[config]") {
  CHECK_NOTHROW(load_string("%YAML 1.2\n# kassa\n---\n" + store + "...\n# end\n"));
  CHECK_NOTHROW(load_string("--- {store: {data_dir: d, durability: none}}\n"));
}

TEST_CASE("a file that cannot be read names the file and the reason", "[config]") {
  for (const std::string path : {"/nonexistent/kassa.yaml", KASSA_SOURCE_DIR "/config"}) {
    INFO(path);
    try {
      load_file(path);
      FAIL("expected a config_error");
    } catch (const config_error& e) {
      CHECK(e.source == path);
      CHECK(e.line == 0);
      CHECK(e.key_path.empty());
      CHECK_THAT(std::string(e.what()), Contains(path + ":0: cannot read the file: "));
    }
  }
}

TEST_CASE("the directory's queue is bounded and holds at least one full request", "[config]") {
  SECTION("out of range") {
    for (const std::string value : {"0", "67108865"}) {
      const config_error e = error_of(store + "batching:\n  queue_events_max: " + value + "\n");
      CHECK(e.line == 5);
      CHECK(e.key_path == "batching.queue_events_max");
      CHECK(e.message == "must be between 1 and 67108864, got '" + value + "'");
    }
  }
  SECTION("smaller than a request, set after the batch") {
    const config_error e =
        error_of(store + "batching:\n  batch_events_max: 100\n  queue_events_max: 99\n");
    CHECK(e.line == 6);
    CHECK(e.key_path == "batching.queue_events_max");
    CHECK(e.message ==
          "must be at least batching.batch_events_max = 100 so that a full request can wait");
  }
  SECTION("smaller than the default request") {
    const config_error e = error_of(store + "batching:\n  queue_events_max: 8189\n");
    CHECK(e.line == 5);
    CHECK(e.key_path == "batching.queue_events_max");
  }
  SECTION("a request larger than the queue written before it") {
    const config_error e = error_of(store + "batching:\n  queue_events_max: 10\n"
                                            "  commit_events_max: 10\n  batch_events_max: 11\n");
    CHECK(e.line == 7);
    CHECK(e.key_path == "batching.batch_events_max");
  }
}

TEST_CASE("a bad hot-account rule names its list index and line", "[config]") {
  // Lines: 1-3 store, 4 hot_accounts:, 5 static:, 6 the first item's id, 7 its next key...
  auto rules = [](const std::string& items) {
    return store + "hot_accounts:\n  static:\n" + items;
  };
  check_errors({
      {rules("    - id: 0\n"), 6, "hot_accounts.static[0].id",
       "must not be 0; ids 0 and 2^128 - 1 are reserved"},
      {rules("    - id: 0x0\n"), 6, "hot_accounts.static[0].id",
       "must not be 0; ids 0 and 2^128 - 1 are reserved"},
      {rules("    - id: 340282366920938463463374607431768211455\n"), 6,
       "hot_accounts.static[0].id", "must not be 2^128 - 1; ids 0 and 2^128 - 1 are reserved"},
      {rules("    - id: 340282366920938463463374607431768211456\n"), 6,
       "hot_accounts.static[0].id", "does not fit in 128 bits, got '340282366920938463463374607431768211456'"},
      {rules("    - id: 0x1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\n"), 6, "hot_accounts.static[0].id",
       "does not fit in 128 bits, got '0x1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF'"},
      // A clearing account of kassa's own (kind 1), and the lowest id of the reserved corner.
      {rules("    - id: 0xFFFFFFFFFFFFFF010000000100000001\n"), 6, "hot_accounts.static[0].id",
       "'0xFFFFFFFFFFFFFF010000000100000001' lies in the ids kassa reserves for its own "
       "accounts (the high 64 bits 0xffffffffffffff00 and above); choose another id"},
      {rules("    - id: \"0xffffffffffffff000000000000000000\"\n"), 6, "hot_accounts.static[0].id",
       "'0xffffffffffffff000000000000000000' lies in the ids kassa reserves for its own "
       "accounts (the high 64 bits 0xffffffffffffff00 and above); choose another id"},
      {rules("    - id: -5\n"), 6, "hot_accounts.static[0].id",
       "expected an id (decimal or 0x-hex), got '-5'"},
      {rules("    - id: 12abc\n"), 6, "hot_accounts.static[0].id",
       "expected an id (decimal or 0x-hex), got '12abc'"},
      {rules("    - id: 0x\n"), 6, "hot_accounts.static[0].id",
       "expected an id (decimal or 0x-hex), got '0x'"},
      {rules("    - id: 1.5\n"), 6, "hot_accounts.static[0].id",
       "expected an id (decimal or 0x-hex), got '1.5'"},
      {rules("    - id: 010\n"), 6, "hot_accounts.static[0].id",
       "expected an id without leading zeros (YAML 1.1 reads them as octal), got '010'"},
      {rules("    - id: [1]\n"), 6, "hot_accounts.static[0].id",
       "expected an id (decimal or 0x-hex), got a list"},
      {rules("    - id:\n"), 6, "hot_accounts.static[0].id",
       "expected an id (decimal or 0x-hex), got nothing"},
      {rules("    - sub_accounts: 4\n"), 6, "hot_accounts.static[0].id", "missing required key"},
      {rules("    - id: 1\n      sub_accounts: 1\n"), 7, "hot_accounts.static[0].sub_accounts",
       "must be between 2 and 256, got '1'"},
      {rules("    - id: 1\n      sub_accounts: 257\n"), 7,
       "hot_accounts.static[0].sub_accounts", "must be between 2 and 256, got '257'"},
      {rules("    - id: 1\n      subaccounts: 4\n"), 7, "hot_accounts.static[0].subaccounts",
       "unknown key, did you mean sub_accounts?"},
      {rules("    - id: 1\n    - id: 2\n    - id: 1\n"), 8, "hot_accounts.static[2].id",
       "duplicate id (first at hot_accounts.static[0].id, line 6)"},
      {rules("    - id: 1000\n    - id: 0x3e8\n"), 7, "hot_accounts.static[1].id",
       "duplicate id (first at hot_accounts.static[0].id, line 6)"},
      {rules("    - 1000\n"), 6, "hot_accounts.static[0]", "expected a map of keys, got '1000'"},
      {store + "hot_accounts:\n  static: {id: 1}\n", 5, "hot_accounts.static",
       "expected a list of {id, sub_accounts} maps, got a map"},
      {store + "hot_accounts:\n  static: 1000\n", 5, "hot_accounts.static",
       "expected a list of {id, sub_accounts} maps, got '1000'"},
      {store + "hot_accounts: [1]\n", 4, "hot_accounts", "expected a map of keys, got a list"},
  });
}

TEST_CASE("adaptive splitting and the sweeper refuse values out of range", "[config]") {
  auto adaptive = [](const std::string& line) {
    return store + "hot_accounts:\n  adaptive:\n    " + line + "\n"; // the line is line 6
  };
  check_errors({
      {adaptive("enabled: yes"), 6, "hot_accounts.adaptive.enabled",
       "expected true or false, got 'yes'"},
      {adaptive("enabled: \"true\""), 6, "hot_accounts.adaptive.enabled",
       "expected true or false, got 'true'"},
      {adaptive("enabled: 1"), 6, "hot_accounts.adaptive.enabled",
       "expected true or false, got '1'"},
      {adaptive("enabled: [true]"), 6, "hot_accounts.adaptive.enabled",
       "expected true or false, got a list"},
      {adaptive("window_ms: 0"), 6, "hot_accounts.adaptive.window_ms",
       "must be between 1 and 600000, got '0'"},
      {adaptive("window_ms: 600001"), 6, "hot_accounts.adaptive.window_ms",
       "must be between 1 and 600000, got '600001'"},
      {adaptive("credits_min: 0"), 6, "hot_accounts.adaptive.credits_min",
       "must be between 1 and 1000000000, got '0'"},
      {adaptive("credits_min: 1000000001"), 6, "hot_accounts.adaptive.credits_min",
       "must be between 1 and 1000000000, got '1000000001'"},
      {adaptive("sub_accounts: 1"), 6, "hot_accounts.adaptive.sub_accounts",
       "must be between 2 and 256, got '1'"},
      {adaptive("sub_accounts: 257"), 6, "hot_accounts.adaptive.sub_accounts",
       "must be between 2 and 256, got '257'"},
      {adaptive("enable: true"), 6, "hot_accounts.adaptive.enable",
       "unknown key, did you mean enabled?"},
      {store + "hot_accounts:\n  sweep_interval_ms: 3600001\n", 5,
       "hot_accounts.sweep_interval_ms", "must be between 0 and 3600000, got '3600001'"},
      {store + "hot_accounts:\n  sweep_interval_ms: -1\n", 5, "hot_accounts.sweep_interval_ms",
       "must be between 0 and 3600000, got '-1'"},
      {store + "hot_accounts:\n  adaptive: on\n", 5, "hot_accounts.adaptive",
       "expected a map of keys, got 'on'"},
      {store + "hot_accounts:\n  sweep_ms: 5\n", 5, "hot_accounts.sweep_ms", "unknown key"},
  });
}

TEST_CASE("an error in a hot-account rule reads as one line with the file, line and index", "[config]") {
  const config_error e =
      error_of(store + "hot_accounts:\n  static:\n    - id: 7\n    - id: 7\n");
  CHECK(std::string(e.what()) == "<string>:7: hot_accounts.static[1].id: duplicate id (first "
                                 "at hot_accounts.static[0].id, line 6)");
}
