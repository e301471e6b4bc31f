// The access section: clients with keys, ledgers and operations read into their fields, the
// defaults, and each bad value refused at its key and line.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.hpp"
#include "tests/config/error_cases.hpp"

using namespace kassa::config;
using kassa::test::check_errors;
using kassa::test::error_of;

namespace {

const std::string store = "store:\n  data_dir: /tmp/kassa\n  durability: none\n"; // lines 1-3
const std::string key_hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

// A key file in a fresh temporary directory, with the given mode.
struct key_file {
  std::string dir, path;
  key_file(const std::string& content, mode_t mode) {
    char tmpl[] = "/tmp/kassa-key-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/client.key";
    std::ofstream(path) << content;
    ::chmod(path.c_str(), mode);
  }
  ~key_file() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
};

} // namespace

TEST_CASE("without an access section anyone may connect and no client is listed", "[config]") {
  const config c = load_string(store);
  CHECK_FALSE(c.access.required);
  CHECK(c.access.authentication_failures_max == 3);
  CHECK(c.access.clients.empty());
}

TEST_CASE("the default file binds to loopback and requires no authentication", "[config]") {
  const config c = load_file(KASSA_SOURCE_DIR "/config/kassa.yaml");
  CHECK(c.server.address == "127.0.0.1");
  CHECK_FALSE(c.access.required);
  CHECK(c.access.clients.empty());
  CHECK(c.access.authentication_failures_max == access_config{}.authentication_failures_max);
}

TEST_CASE("every access key is read into its field", "[config]") {
  key_file file(key_hex + "\n", 0600);
  const config c = load_string(store + "access:\n"
                                       "  required: true\n"
                                       "  authentication_failures_max: 100\n"
                                       "  clients:\n"
                                       "    - id: 7\n"
                                       "      key: \"" + key_hex + "\"\n"
                                       "      ledgers: [840, 1]\n"
                                       "      operations: [create_transfers, lookup_accounts, submit_payments]\n"
                                       "    - id: 18446744073709551615\n"
                                       "      key_file: " + file.path + "\n");
  CHECK(c.access.required);
  CHECK(c.access.authentication_failures_max == 100);
  REQUIRE(c.access.clients.size() == 2);
  const access_client& a = c.access.clients[0];
  CHECK(a.id == 7);
  for (size_t i = 0; i < access_key_bytes; ++i) CHECK(a.key[i] == i);
  CHECK(a.key_file.empty());
  CHECK(a.ledgers == std::vector<uint32_t>{840, 1});
  CHECK(a.operations == ((1u << 3) | (1u << 4) | (1u << 8)));
  const access_client& b = c.access.clients[1];
  CHECK(b.id == UINT64_MAX);
  CHECK(b.key_file == file.path);
  CHECK(b.key[31] == 0x1f);
  CHECK(b.ledgers.empty());
  CHECK(b.operations == access_operations_all);
}

TEST_CASE("the operation names are the wire's, numbered as on the wire", "[config]") {
  uint32_t all = 0;
  for (const auto& [name, number] : access_operation_names()) all |= 1u << number;
  // the default is every operation but the case desk's, which a client's list must name
  CHECK(all == (access_operations_all | (1u << 11) | (1u << 12)));
  CHECK(access_operation_names().front() == std::pair<std::string_view, uint16_t>{"create_accounts", 2});
  CHECK(access_operation_names().back() == std::pair<std::string_view, uint16_t>{"lookup_order_items", 21});
}

TEST_CASE("a bad access section is refused at its key, by list index and line", "[config]") {
  const std::string head = store + "access:\n  clients:\n"; // lines 4-5
  check_errors({
      {store + "access:\n  required: true\n", 5, "access.required",
       "is true but access.clients is empty; no client could make a request"},
      {store + "access:\n  authentication_failures_max: 0\n", 5, "access.authentication_failures_max",
       "must be between 1 and 100, got '0'"},
      {head + "    - id: 0\n      key: \"" + key_hex + "\"\n", 6, "access.clients[0].id",
       "must be between 1 and 18446744073709551615, got '0'"},
      {head + "    - id: 7\n", 6, "access.clients[0]",
       "needs key (64 hex digits) or key_file (a file holding them)"},
      {head + "    - id: 7\n      key: \"00ff\"\n", 7, "access.clients[0].key",
       "expected 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`, got 4 characters"},
      {head + "    - id: 7\n      key: \"" + std::string(63, '0') + "g\"\n", 7, "access.clients[0].key",
       "expected 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`, got a character that is "
       "not a hex digit"},
      {head + "    - id: 7\n      key: \"" + std::string(64, '0') + "\"\n", 7, "access.clients[0].key",
       "is all zero; generate a random key, e.g. `openssl rand -hex 32`"},
      {head + "    - id: 7\n      key: \"" + key_hex + "\"\n    - id: 7\n      key: \"" + key_hex + "\"\n",
       8, "access.clients[1].id", "duplicate client id (first at access.clients[0].id, line 6)"},
      {head + "    - id: 7\n      key: \"" + key_hex + "\"\n      key_file: /nonexistent/k\n", 8,
       "access.clients[0].key_file", "cannot read '/nonexistent/k': No such file or directory"},
      {head + "    - id: 7\n      key: \"" + key_hex + "\"\n      ledgers: [1, 0]\n", 8,
       "access.clients[0].ledgers[1]", "must be between 1 and 4294967295, got '0'"},
      {head + "    - id: 7\n      key: \"" + key_hex + "\"\n      ledgers: [1, 1]\n", 8,
       "access.clients[0].ledgers[1]", "duplicate ledger (first at access.clients[0].ledgers[0], line 8)"},
      {head + "    - id: 7\n      key: \"" + key_hex + "\"\n      operations: []\n", 8,
       "access.clients[0].operations",
       "must list at least one operation; leave operations out to allow every operation"},
      {head + "    - id: 7\n      key: \"" + key_hex + "\"\n      operations: [hello]\n", 8,
       "access.clients[0].operations[0]",
       "'hello' is not one of: create_accounts, create_transfers, lookup_accounts, lookup_transfers, "
       "get_account_transfers, get_account_balances, submit_payments, lookup_orders, get_cases, resolve_case, "
       "lookup_order_items (hello and authenticate are always allowed)"},
      {head + "    - id: 7\n      key: \"" + key_hex + "\"\n      operations: [lookup_accounts, lookup_accounts]\n",
       8, "access.clients[0].operations[1]", "duplicate operation lookup_accounts"},
      {head + "    - id: 7\n      secret: x\n", 7, "access.clients[0].secret", "unknown key"},
  });
}

TEST_CASE("a key file others may read, or holding no key, is refused", "[config]") {
  const std::string head = store + "access:\n  clients:\n    - id: 7\n      key_file: "; // line 7
  {
    key_file open_to_all(key_hex, 0644);
    const config_error e = error_of(head + open_to_all.path + "\n");
    CHECK(e.line == 7);
    CHECK(e.key_path == "access.clients[0].key_file");
    CHECK(e.message == "'" + open_to_all.path + "' may be read by others (mode 644); make it readable "
                                                "by its owner only: chmod 600 " + open_to_all.path);
  }
  {
    key_file short_key("abcd\n", 0600);
    const config_error e = error_of(head + short_key.path + "\n");
    CHECK(e.key_path == "access.clients[0].key_file");
    CHECK(e.message == "'" + short_key.path + "': expected 64 hex digits (32 bytes), e.g. from `openssl "
                                              "rand -hex 32`, got 4 characters");
  }
}

TEST_CASE("a key never appears in a configuration error", "[config]") {
  const std::string bad = std::string(60, 'a') + "zz11"; // 64 characters, not all hex
  const config_error e =
      error_of(store + "access:\n  clients:\n    - id: 7\n      key: \"" + bad + "\"\n");
  CHECK(std::string(e.what()).find(bad.substr(0, 16)) == std::string::npos);
}
