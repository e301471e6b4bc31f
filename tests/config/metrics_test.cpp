// The metrics section: defaults, valid values, and bad values refused at their key and line.
#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "tests/config/error_cases.hpp"

using namespace kassa::config;
using kassa::test::check_errors;

namespace {
const std::string store = "store:\n  data_dir: /tmp/kassa\n  durability: none\n"; // lines 1-3
} // namespace

TEST_CASE("metrics are served on 127.0.0.1:9464 unless the file says otherwise", "[config]") {
  const config c = load_string(store);
  CHECK(c.metrics.enabled);
  CHECK(c.metrics.address == "127.0.0.1");
  CHECK(c.metrics.port == 9464);
  CHECK(c.metrics.connections_max == 8);
  CHECK(c.metrics.request_bytes_max == 8192);
  CHECK(c.metrics.read_timeout_ms == 2000);
  CHECK(load_string(store + "metrics:\n").metrics.port == 9464);
}

TEST_CASE("the metrics section takes every key in range", "[config]") {
  const config c = load_string(store + "metrics:\n  enabled: false\n  address: ::1\n  port: 0\n"
                                       "  connections_max: 1\n  request_bytes_max: 256\n  read_timeout_ms: 60000\n");
  CHECK_FALSE(c.metrics.enabled);
  CHECK(c.metrics.address == "::1");
  CHECK(c.metrics.port == 0);
  CHECK(c.metrics.connections_max == 1);
  CHECK(c.metrics.request_bytes_max == 256);
  CHECK(c.metrics.read_timeout_ms == 60000);
  CHECK(load_string(store + "metrics:\n  address: 0.0.0.0\n  port: 65535\n").metrics.address == "0.0.0.0");
  // Disabled metrics may name the server's port: nothing listens on it.
  CHECK_FALSE(load_string(store + "server:\n  port: 3100\nmetrics:\n  enabled: false\n  port: 3100\n").metrics.enabled);
  // Both OS-chosen is no conflict.
  CHECK(load_string(store + "server:\n  port: 0\nmetrics:\n  port: 0\n").metrics.port == 0);
}

TEST_CASE("bad metrics values are refused at their key and line", "[config]") {
  check_errors({
      {store + "metrics:\n  enabled: yes\n", 5, "metrics.enabled",
       "expected true or false, got 'yes'"},
      {store + "metrics:\n  address: localhost\n", 5, "metrics.address",
       "'localhost' is not an IPv4 or IPv6 address"},
      {store + "metrics:\n  address: 127.0.0.256\n", 5, "metrics.address",
       "'127.0.0.256' is not an IPv4 or IPv6 address"},
      {store + "metrics:\n  port: 65536\n", 5, "metrics.port", "must be between 0 and 65535, got '65536'"},
      {store + "metrics:\n  port: -1\n", 5, "metrics.port", "must be between 0 and 65535, got '-1'"},
      {store + "metrics:\n  connections_max: 0\n", 5, "metrics.connections_max",
       "must be between 1 and 1024, got '0'"},
      {store + "metrics:\n  request_bytes_max: 100\n", 5, "metrics.request_bytes_max",
       "must be between 256 and 65536, got '100'"},
      {store + "metrics:\n  read_timeout_ms: 0\n", 5, "metrics.read_timeout_ms",
       "must be between 1 and 60000, got '0'"},
      {store + "metrics:\n  path: /metrics\n", 5, "metrics.path", "unknown key"},
      {store + "metrics: 9464\n", 4, "metrics", "expected a map of keys, got '9464'"},
  });
}

TEST_CASE("the metrics port may not be the server's port; the later key is blamed", "[config]") {
  check_errors({
      {store + "server:\n  port: 9000\nmetrics:\n  port: 9000\n", 7, "metrics.port",
       "must differ from server.port = 9000"},
      {store + "metrics:\n  port: 9000\nserver:\n  port: 9000\n", 7, "server.port",
       "must differ from metrics.port = 9000"},
      {store + "server:\n  port: 9464\n", 5, "server.port", "must differ from metrics.port = 9464"},
  });
}
