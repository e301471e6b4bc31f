#pragma once
// The error a configuration must get, and a table of them checked in one go.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace kassa::test {

inline config::config_error error_of(const std::string& yaml) {
  try {
    config::load_string(yaml);
  } catch (const config::config_error& e) {
    return e;
  }
  FAIL("expected a config_error for:\n" << yaml);
  throw std::logic_error("unreachable");
}

// A configuration and the error it must get: its line, key path and message.
struct error_case {
  std::string yaml;
  int line;
  std::string key_path;
  std::string message;
};

inline void check_errors(const std::vector<error_case>& cases) {
  for (const auto& c : cases) {
    INFO(c.yaml);
    const config::config_error e = error_of(c.yaml);
    CHECK(e.line == c.line);
    CHECK(e.key_path == c.key_path);
    CHECK(e.message == c.message);
  }
}

} // namespace kassa::test
